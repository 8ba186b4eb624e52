#include "reports/plan_report.h"

#include <gtest/gtest.h>

#include "scenarios/loader.h"

namespace trainsim {
namespace {

Prediction predicted(const std::vector<std::string>& overrides) {
  Result<Scenario> sc = load_embedded_quickstart(overrides);
  EXPECT_TRUE(sc.ok()) << sc.status().to_string();
  PredictOptions po;
  po.fast = true;
  Result<Prediction> p = predict(sc.value(), po);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return std::move(p).value();
}

TEST(PlanReport, RankRanges) {
  EXPECT_EQ(rank_ranges({0, 1, 2, 3, 8, 9}), "0-3,8-9");
  EXPECT_EQ(rank_ranges({5}), "5");
  EXPECT_EQ(rank_ranges({}), "");
  EXPECT_EQ(rank_ranges({0, 2, 4, 6}, 2), "0,2,...");
  EXPECT_EQ(rank_ranges({1, 2, 4}, 2), "1-2,4");
}

// Every count and time of the summary is the plan's own: the tasks of a rank add up the same
// way by stream, by category and by op, and the groups are Megatron's order (tp innermost).
TEST(PlanReport, CountsAndTimesAreThePlans) {
  const Prediction p = predicted({"parallel.tp=2", "parallel.pp=2", "parallel.dp=2", "parallel.sequence_parallel=true"});
  const Plan& plan = *p.plan;
  PlanReportOptions o;
  o.rank = 3;
  Result<nlohmann::ordered_json> jr = plan_summary_json(p, o);
  ASSERT_TRUE(jr.ok()) << jr.status().to_string();
  const nlohmann::ordered_json& j = jr.value();
  EXPECT_EQ(j["ranks"], 8);
  ASSERT_EQ(j["programs"].size(), 2u);   // one per pipeline stage
  uint64_t ranks = 0, tasks = 0;
  for (const auto& pr : j["programs"]) {
    ranks += pr["rank_count"].get<uint64_t>();
    tasks += pr["tasks"].get<uint64_t>();
    EXPECT_EQ(pr["tasks"].get<uint64_t>(), pr["compute"].get<uint64_t>() + pr["collectives"].get<uint64_t>() +
                                               pr["sends"].get<uint64_t>() + pr["recvs"].get<uint64_t>());
  }
  EXPECT_EQ(ranks, 8u);
  EXPECT_EQ(j["tasks"].get<uint64_t>(), tasks);
  // Rank 3's program, summed three ways.
  const Program& prog = plan.programs[plan.program_of_rank[3]];
  int64_t dur = 0;
  for (const Task& t : prog.tasks) dur += t.dur.count_ps();
  int64_t by_stream = 0, by_cat = 0, by_op = 0;
  uint64_t n_stream = 0, n_cat = 0, n_op = 0;
  for (const auto& s : j["streams"]) by_stream += s["busy_ps"].get<int64_t>(), n_stream += s["tasks"].get<uint64_t>();
  for (const auto& c : j["categories"]) by_cat += c["busy_ps"].get<int64_t>(), n_cat += c["tasks"].get<uint64_t>();
  int64_t last = INT64_MAX;
  for (const auto& op : j["ops"]) {
    by_op += op["total_ps"].get<int64_t>();
    n_op += op["tasks"].get<uint64_t>();
    EXPECT_LE(op["total_ps"].get<int64_t>(), last) << "ops by total time, largest first";
    last = op["total_ps"].get<int64_t>();
    if (!op["each_ps"].is_null())
      EXPECT_EQ(op["each_ps"].get<int64_t>() * op["tasks"].get<int64_t>(), op["total_ps"].get<int64_t>()) << op.dump();
  }
  EXPECT_EQ(by_stream, dur);
  EXPECT_EQ(by_cat, dur);
  EXPECT_EQ(by_op, dur);
  EXPECT_EQ(n_stream, prog.tasks.size());
  EXPECT_EQ(n_cat, prog.tasks.size());
  EXPECT_EQ(n_op, prog.tasks.size());
  // tp innermost: rank 3 is with rank 2; dp next: 1 and 3; pp outermost.
  bool tp = false, dp = false;
  for (const auto& g : j["groups"]) {
    if (g["name"] == "tp") {
      tp = true;
      EXPECT_EQ(g["members"], nlohmann::json::parse("[2,3]"));
    }
    if (g["name"] == "dp") {
      dp = true;
      EXPECT_EQ(g["members"], nlohmann::json::parse("[1,3]"));
    }
  }
  EXPECT_TRUE(tp && dp) << j["groups"].dump();
  bool peer = false;
  for (const auto& pe : j["peers"])
    if (pe["name"] == "pp-prev") {
      peer = true;
      EXPECT_EQ(pe["peer"], -1) << "rank 3 is on the first stage";
    }
  EXPECT_TRUE(peer) << j["peers"].dump();
  // The text names the same things.
  o.top_ops = 3;
  Result<std::string> text = format_plan_summary(p, o);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text.value().find("ranks 8, programs 2"), std::string::npos) << text.value();
  EXPECT_NE(text.value().find("more ops (--top N shows more"), std::string::npos) << text.value();
  EXPECT_NE(text.value().find("rank 3: program '"), std::string::npos) << text.value();
  // A rank the plan does not have.
  o.rank = 8;
  Result<std::string> bad = format_plan_summary(p, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().to_string().find("--rank = 8: no such rank; the plan has ranks 0-7"), std::string::npos)
      << bad.status().to_string();
}

}  // namespace
}  // namespace trainsim
