// Golden scenarios (STYLE.md 7, layer 3): for each, the replay's event-sequence fingerprint and a
// compact summary.json are stored under tests/golden/<name>/ and compared with a fresh full-mode
// prediction. They change only on purpose:
//
//   TRAINSIM_UPDATE_GOLDEN=1 ./test_golden     (or: TRAINSIM_UPDATE_GOLDEN=1 ctest -R Golden)
//
// rewrites the stored files (the test then passes); review the diff before committing it.
// Every scenario also runs twice in one process (identical fingerprint, byte-identical
// prediction_json dump), and the trainsim binary runs twice on one scenario (identical --json
// output, byte for byte).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "reports/json_report.h"
#include "scenarios/loader.h"
#include "scenarios/predict.h"

namespace trainsim {
namespace {

namespace fs = std::filesystem;

const fs::path kSource = TRAINSIM_SOURCE_DIR;

struct Golden {
  const char* name;      // folder under tests/golden/
  const char* scenario;  // relative to the source root
};

const Golden kGoldens[] = {
    {"quickstart", "scenarios/quickstart.json"},
    {"megatron_22b_tp8", "scenarios/megatron_22b_tp8.json"},
    {"gpt_pp4_vp2_tp2", "tests/golden/gpt_pp4_vp2_tp2.json"},
    {"zero3_dp8", "tests/golden/zero3_dp8.json"},
};

bool update_mode() {
  const char* v = std::getenv("TRAINSIM_UPDATE_GOLDEN");
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return "";
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << "cannot write " << p;
}

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// The compact summary kept per golden scenario. Integers (ps, bytes, counts) are exact;
// the derived ratios are doubles.
nlohmann::ordered_json summary_of(const Prediction& p) {
  nlohmann::ordered_json j;
  j["scenario"] = p.scenario.name;
  j["mode"] = p.fast ? "fast" : "full";
  j["gpus"] = p.gpus;
  j["simulated_ranks"] = p.simulated_ranks;
  j["events"] = p.events;
  j["step_time_ps"] = p.step_time.count_ps();
  j["tokens_per_s"] = p.tokens_per_s;
  j["mfu"] = p.mfu;
  j["hfu"] = p.hfu;
  j["critical_rank"] = p.critical_rank;
  nlohmann::ordered_json b;
  for (size_t i = 0; i < p.breakdown.size(); ++i)
    b[to_string(static_cast<Bucket>(i))] = p.breakdown[i].count_ps();
  j["breakdown_ps"] = b;
  j["peak_memory_bytes"] = p.peak_memory.total().count();
  j["peak_memory_rank"] = p.peak_memory.rank;
  nlohmann::ordered_json st = nlohmann::ordered_json::array();
  for (const auto& m : p.memory_per_stage) st.push_back(m.total().count());
  j["memory_per_stage_bytes"] = st;
  return j;
}

// Integers and strings must be equal; doubles within 1e-12 relative (they are computed from
// the exact integers; the tolerance only absorbs a different printing of the same value).
bool same_json(const nlohmann::json& a, const nlohmann::json& b, std::string* where, const std::string& path = "") {
  if (a.is_number_float() || b.is_number_float()) {
    if (!a.is_number() || !b.is_number()) {
      *where = path;
      return false;
    }
    const double x = a.get<double>(), y = b.get<double>();
    if (std::fabs(x - y) <= 1e-12 * std::max(std::fabs(x), std::fabs(y))) return true;
    *where = path;
    return false;
  }
  if (a.type() != b.type()) {
    *where = path;
    return false;
  }
  if (a.is_object()) {
    if (a.size() != b.size()) {
      *where = path + " (keys differ)";
      return false;
    }
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (!b.contains(it.key())) {
        *where = path + "/" + it.key();
        return false;
      }
      if (!same_json(it.value(), b.at(it.key()), where, path + "/" + it.key())) return false;
    }
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) {
      *where = path + " (length differs)";
      return false;
    }
    for (size_t i = 0; i < a.size(); ++i)
      if (!same_json(a[i], b[i], where, path + "/" + std::to_string(i))) return false;
    return true;
  }
  if (a != b) {
    *where = path;
    return false;
  }
  return true;
}

Prediction run_full(const fs::path& scenario) {
  auto sc = load_scenario_file(scenario.string());
  EXPECT_TRUE(sc.ok()) << sc.status().to_string();
  if (!sc.ok()) return Prediction{};
  auto pr = predict(sc.value(), PredictOptions{});
  EXPECT_TRUE(pr.ok()) << pr.status().to_string();
  if (!pr.ok()) return Prediction{};
  return std::move(pr.value());
}

class GoldenTest : public ::testing::TestWithParam<Golden> {};

TEST_P(GoldenTest, MatchesStoredFingerprintAndSummary) {
  const Golden& g = GetParam();
  const fs::path dir = kSource / "tests" / "golden" / g.name;
  const Prediction p = run_full(kSource / g.scenario);
  ASSERT_GT(p.events, 0u);
  const std::string fp = hex(p.fingerprint);
  const std::string summary = summary_of(p).dump(2) + "\n";

  if (update_mode()) {
    write_file(dir / "fingerprint.txt", fp + "\n");
    write_file(dir / "summary.json", summary);
    std::printf("updated %s\n", dir.string().c_str());
    return;
  }
  const char* how = "if the change is intended, rerun with TRAINSIM_UPDATE_GOLDEN=1 (e.g. "
                    "TRAINSIM_UPDATE_GOLDEN=1 ./test_golden) to rewrite tests/golden/*/ and "
                    "commit the new files";

  const std::string stored_fp_text = read_file(dir / "fingerprint.txt");
  ASSERT_FALSE(stored_fp_text.empty()) << dir / "fingerprint.txt" << " is missing; " << how;
  std::string stored_fp = stored_fp_text;
  while (!stored_fp.empty() && std::isspace(static_cast<unsigned char>(stored_fp.back()))) stored_fp.pop_back();

  const std::string stored_summary = read_file(dir / "summary.json");
  ASSERT_FALSE(stored_summary.empty()) << dir / "summary.json" << " is missing; " << how;
  const nlohmann::json stored = nlohmann::json::parse(stored_summary, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(stored.is_discarded()) << dir / "summary.json" << " is not valid JSON; " << how;
  std::string where;
  const bool summary_same = same_json(stored, nlohmann::json::parse(summary), &where);

  EXPECT_TRUE(summary_same) << g.name << ": summary differs at " << where << "\n--- stored "
                            << (dir / "summary.json").string() << "\n"
                            << stored_summary << "--- now\n"
                            << summary << how;
  EXPECT_EQ(stored_fp, fp) << g.name << ": replay fingerprint differs (stored " << stored_fp << ", now " << fp
                           << "; the event sequence changed" << (summary_same ? " though the summary did not" : "")
                           << ")\n"
                           << how;
}

TEST_P(GoldenTest, SameProcessRunsAreIdentical) {
  const Golden& g = GetParam();
  const Prediction a = run_full(kSource / g.scenario);
  const Prediction b = run_full(kSource / g.scenario);
  EXPECT_EQ(hex(a.fingerprint), hex(b.fingerprint)) << g.name;
  EXPECT_EQ(a.events, b.events) << g.name;
  EXPECT_EQ(prediction_json(a).dump(), prediction_json(b).dump()) << g.name;
}

INSTANTIATE_TEST_SUITE_P(Scenarios, GoldenTest, ::testing::ValuesIn(kGoldens),
                         [](const ::testing::TestParamInfo<Golden>& i) { return std::string(i.param.name); });

#ifdef TRAINSIM_BINARY
// The trainsim binary, run twice on the same scenario, writes byte-identical --json files.
// The replay's compute chains (sim/replay.h ReplayOptions::chain_compute) against an event per
// task on each golden scenario: the same step, breakdown and memory, to the picosecond, with
// and without collectives slowing the compute (costs.nccl_ctas 0): a chain times its tasks one
// by one, as the unchained run does.
TEST_P(GoldenTest, ComputeChainsGiveTheStepOfAnEventPerTask) {
  const Golden& g = GetParam();
  auto sc = load_scenario_file((kSource / g.scenario).string());
  ASSERT_TRUE(sc.ok()) << sc.status().to_string();
  for (int ctas : {0, -1}) {
    Scenario s = sc.value();
    s.options.nccl_ctas = ctas;
    PredictOptions one;
    one.chain_compute = false;
    auto a = predict(s, PredictOptions{});
    auto b = predict(s, one);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_LT(a->events, b->events) << g.name;
    EXPECT_EQ(a->step_time.count_ps(), b->step_time.count_ps()) << g.name << " ctas " << ctas;
    for (size_t i = 0; i < a->breakdown.size(); ++i)
      EXPECT_EQ(a->breakdown[i].count_ps(), b->breakdown[i].count_ps()) << g.name << " bucket " << i;
    EXPECT_EQ(a->peak_memory.total(), b->peak_memory.total()) << g.name;
    EXPECT_EQ(a->critical_rank, b->critical_rank) << g.name;
  }
}

TEST(GoldenDeterminism, BinaryJsonIsByteIdentical) {
  const fs::path tmp = fs::temp_directory_path() / ("trainsim_golden_" + std::to_string(getpid()));
  fs::create_directories(tmp);
  const fs::path scenario = kSource / "tests" / "golden" / "gpt_pp4_vp2_tp2.json";
  std::string outs[2];
  for (int i = 0; i < 2; ++i) {
    const fs::path out = tmp / ("run" + std::to_string(i) + ".json");
    const std::string cmd = std::string("\"") + TRAINSIM_BINARY + "\" run \"" + scenario.string() + "\" --json \"" +
                            out.string() + "\" > /dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    outs[i] = read_file(out);
    ASSERT_FALSE(outs[i].empty()) << out;
  }
  EXPECT_TRUE(outs[0] == outs[1]) << "two runs of `trainsim run --json` differ:\n" << outs[0] << "\n---\n" << outs[1];
  std::error_code ec;
  fs::remove_all(tmp, ec);
}
#endif

}  // namespace
}  // namespace trainsim
