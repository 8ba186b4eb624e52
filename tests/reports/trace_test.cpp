#include "reports/trace.h"

#include <gtest/gtest.h>

#include "tests/reports/fixture.h"

namespace trainsim {
namespace {

using nlohmann::ordered_json;
using testing::two_rank_prediction;

std::vector<ordered_json> with_ph(const ordered_json& doc, const char* ph) {
  std::vector<ordered_json> out;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == ph) out.push_back(e);
  }
  return out;
}

TEST(ChromeTrace, OneCompleteEventPerRecord) {
  const Prediction p = two_rank_prediction();
  const ordered_json doc = chrome_trace(p);
  const auto xs = with_ph(doc, "X");
  ASSERT_EQ(xs.size(), p.trace.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    const TraceRecord& r = p.trace[i];
    EXPECT_EQ(xs[i]["pid"].get<uint32_t>(), r.rank);
    EXPECT_DOUBLE_EQ(xs[i]["ts"].get<double>(), r.start.us_f()) << i;
    EXPECT_DOUBLE_EQ(xs[i]["dur"].get<double>(), (r.end - r.start).us_f()) << i;
    EXPECT_EQ(xs[i]["args"]["task"].get<uint32_t>(), r.task);
  }
  // rank 0 task 0: fc1 of layer 3, micro-batch 1, [0, 100) us on the compute stream
  EXPECT_EQ(xs[0]["name"], "mlp.fc1.fwd L3 mb1");
  EXPECT_EQ(xs[0]["tid"], kStreamCompute);
  EXPECT_EQ(xs[0]["cat"], to_string(Category::kCompute));
  EXPECT_EQ(xs[0]["args"]["class"], to_string(OpClass::kGemm));
  EXPECT_DOUBLE_EQ(xs[0]["args"]["flops"].get<double>(), 2.0 * 4096 * 16384 * 4096);
  EXPECT_DOUBLE_EQ(xs[0]["dur"].get<double>(), 100.0);
  // layer 0xffff: no suffix
  EXPECT_EQ(xs[2]["name"], "grad.allreduce");
  EXPECT_EQ(xs[2]["tid"], kStreamDp);
  EXPECT_EQ(xs[2]["args"]["bytes"].get<int64_t>(), 40LL << 20);
  EXPECT_EQ(xs[4]["name"], "mlp.fc1.fwd L5 mb1");
  EXPECT_DOUBLE_EQ(xs[4]["ts"].get<double>(), 100.0);
  // sub-microsecond start: 900.000123 us
  EXPECT_DOUBLE_EQ(xs[3]["ts"].get<double>(), 900.000123);
}

TEST(ChromeTrace, Metadata) {
  const ordered_json doc = chrome_trace(two_rank_prediction());
  std::vector<std::string> procs, threads;
  for (const auto& e : with_ph(doc, "M")) {
    if (e["name"] == "process_name") {
      procs.push_back(e["args"]["name"].get<std::string>());
    }
    if (e["name"] == "thread_name" && e["pid"] == 0) {
      threads.push_back(e["args"]["name"].get<std::string>());
    }
  }
  EXPECT_EQ(procs, (std::vector<std::string>{"rank 0 (stage 0)", "rank 1 (stage 1)"}));
  EXPECT_EQ(threads, (std::vector<std::string>{"compute", "dp-comm", "pp-send"}));
  EXPECT_EQ(stream_name(kStreamGather), std::string("gather"));
}

TEST(ChromeTrace, DeterministicAndEmpty) {
  const Prediction p = two_rank_prediction();
  EXPECT_EQ(chrome_trace(p).dump(), chrome_trace(p).dump());
  Prediction empty = two_rank_prediction();
  empty.trace.clear();
  empty.plan.reset();
  const ordered_json doc = chrome_trace(empty);
  EXPECT_TRUE(doc["traceEvents"].is_array());
  EXPECT_TRUE(doc["traceEvents"].empty());
}

}  // namespace
}  // namespace trainsim
