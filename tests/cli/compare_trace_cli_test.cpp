// `trainsim compare-trace` as a user runs it: the committed sample trace against the quickstart
// scenario (exit 3: a fragment of one block is far from a whole step), the JSON report, the
// record in the results store that `trainsim verify --history` shows with its kind, and exit
// code 2 with a clear message on bad input.
#include <gtest/gtest.h>

#include "tests/cli/cli_run.h"
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

namespace {

using tscli::CmdResult;
using tscli::run;

using tscli::kSrc;
const std::string kScenario = kSrc + "/scenarios/quickstart.json";
const std::string kTrace = kSrc + "/tests/calibrate/data/torch_trace_llama_block.json";

class CompareTraceCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("trainsim_compare_trace_cli_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& f) const { return (dir_ / f).string(); }
  std::filesystem::path dir_;
};

TEST_F(CompareTraceCli, SampleTraceReportJsonAndHistory) {
  CmdResult c = run("compare-trace " + kScenario + " " + kTrace + " --json " + path("c.json") + " --history-db " +
                    path("results.db") + " --html " + path("c.html"));
  EXPECT_EQ(c.rc, 3) << c.out;   // a fragment of one block against a whole step: far over 5%
  // The page is written over the tolerance too (that is when it is wanted).
  std::ifstream hin(path("c.html"));
  const std::string html((std::istreambuf_iterator<char>(hin)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find("<svg id=\"compare-timeline\""), std::string::npos);
  EXPECT_NE(html.find(">over the tolerance</p>"), std::string::npos);
  EXPECT_NE(c.out.find("trainsim compare-trace: quickstart"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("ProfilerStep#2"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("EXCEEDED"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("recorded as comparison 1"), std::string::npos) << c.out;
  std::ifstream in(path("c.json"));
  const auto j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  for (const char* k : {"kind", "scenario", "scenario_hash", "plan_hash", "version", "trace", "rank", "ranks", "costs",
                        "predicted_step_s", "measured_step_s", "step_error", "tolerance", "passed", "classes", "shares",
                        "timeline", "kernels", "notes"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["kind"], "compare-trace");
  EXPECT_EQ(j["trace"]["step"], 2);
  EXPECT_EQ(j["costs"]["source"], "embedded default");
  EXPECT_FALSE(j["passed"].get<bool>());
  for (const auto& r : j["classes"]) EXPECT_FALSE(r["source"].get<std::string>().empty()) << r.dump();

  CmdResult h = run("verify --history --history-db " + path("results.db"));
  EXPECT_EQ(h.rc, 0) << h.out;
  EXPECT_NE(h.out.find("scenario quickstart (compare-trace)"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("compare-trace"), std::string::npos) << h.out;

  // A generous tolerance passes; --no-record leaves the store as it was.
  CmdResult ok = run("compare-trace " + kScenario + " " + kTrace + " --tolerance 100000% --no-record --history-db " +
                     path("results.db"));
  EXPECT_EQ(ok.rc, 0) << ok.out;
  EXPECT_EQ(ok.out.find("recorded as"), std::string::npos) << ok.out;
}

TEST_F(CompareTraceCli, BadInputExitsWithTwo) {
  CmdResult missing = run("compare-trace " + kScenario + " " + path("nope.json") + " --no-record");
  EXPECT_EQ(missing.rc, 2) << missing.out;
  EXPECT_NE(missing.out.find("cannot open the trace file"), std::string::npos) << missing.out;
  std::ofstream(path("bad.json")) << "{\"traceEvents\": 3}";
  CmdResult bad = run("compare-trace " + kScenario + " " + path("bad.json") + " --no-record");
  EXPECT_EQ(bad.rc, 2) << bad.out;
  EXPECT_NE(bad.out.find("/traceEvents"), std::string::npos) << bad.out;
  CmdResult rank = run("compare-trace " + kScenario + " " + kTrace + " --rank 8 --no-record");
  EXPECT_EQ(rank.rc, 2) << rank.out;
  EXPECT_NE(rank.out.find("--rank"), std::string::npos) << rank.out;
  CmdResult step = run("compare-trace " + kScenario + " " + kTrace + " --step 5 --no-record");
  EXPECT_EQ(step.rc, 2) << step.out;
  EXPECT_NE(step.out.find("it has steps 2"), std::string::npos) << step.out;
  CmdResult tol = run("compare-trace " + kScenario + " " + kTrace + " --tolerance 5 --no-record");
  EXPECT_EQ(tol.rc, 2) << tol.out;
}

}  // namespace
