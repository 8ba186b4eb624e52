// The trainsim binary as a user runs it: exit codes, error messages on bad input (nothing
// written), the JSON shapes of run and validate, and the calibrate / topo subcommands.
#include <gtest/gtest.h>

#include "tests/cli/cli_run.h"

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

using tscli::CmdResult;
using tscli::run;

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("trainsim_cli_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& f) const { return (dir_ / f).string(); }
  // The first n rows of the shared published runs, as the file "runs.jsonl" in the test's
  // directory (a few rows keep a validate run fast); their JSON in `kept` when given.
  std::string first_published_rows(int n, std::vector<nlohmann::json>* kept = nullptr) const {
    const std::string rows = path("runs.jsonl");
    std::ifstream in(tscli::kSrc + "/../shared/validation/published_runs.jsonl");
    EXPECT_TRUE(in.good());
    std::ofstream out(rows);
    std::string line;
    for (int i = 0; i < n && std::getline(in, line); ++i) {
      out << line << "\n";
      if (kept) kept->push_back(nlohmann::json::parse(line));
    }
    return rows;
  }
  std::filesystem::path dir_;
};

using tscli::kSrc;

TEST_F(Cli, RunWritesJsonWithEveryFigure) {
  CmdResult r = run("run " + kSrc + "/scenarios/megatron_22b_tp8.json --json " + path("p.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("step time"), std::string::npos);
  EXPECT_NE(r.out.find("memory:"), std::string::npos);
  std::ifstream in(path("p.json"));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  for (const char* k : {"breakdown", "memory", "sources", "fingerprint", "mfu", "hfu", "calibration"})
    EXPECT_TRUE(j.contains(k)) << k;
}

TEST_F(Cli, RunWritesAnHtmlPageOfTheSamePrediction) {
  CmdResult r = run("run " + kSrc + "/scenarios/megatron_22b_tp8.json --set parallel.pp=2 --set parallel.tp=4 --fast --html " +
                    path("p.html") + " --json " + path("p.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("wrote " + path("p.html")), std::string::npos) << r.out;
  std::ifstream in(path("p.html"));
  const std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ifstream jin(path("p.json"));
  const nlohmann::json j = nlohmann::json::parse(jin);
  // The page's footer carries the prediction's fingerprint; its timeline traced both stages.
  EXPECT_NE(html.find("replay fingerprint " + j["fingerprint"].get<std::string>()), std::string::npos);
  EXPECT_NE(html.find("<svg id=\"timeline\""), std::string::npos);
  EXPECT_NE(html.find("(stage 1)"), std::string::npos);
  EXPECT_EQ(html.substr(html.size() - 8), "</html>\n");
  // --trace-ranks picks the timeline's ranks; without --trace or --html it is refused.
  r = run("run " + kSrc + "/scenarios/megatron_22b_tp8.json --html " + path("q.html") + " --trace-ranks 3");
  ASSERT_EQ(r.rc, 0) << r.out;
  std::ifstream qin(path("q.html"));
  const std::string q((std::istreambuf_iterator<char>(qin)), std::istreambuf_iterator<char>());
  EXPECT_NE(q.find(">rank 3 compute</text>"), std::string::npos);
  EXPECT_EQ(q.find(">rank 0 compute</text>"), std::string::npos);
  r = run("run " + kSrc + "/scenarios/megatron_22b_tp8.json --trace-ranks 3");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("--trace-ranks needs --trace FILE or --html FILE"), std::string::npos) << r.out;
  // A page that cannot be written (its directory does not exist): exit 2 before any work, naming
  // the option and the path, so a typo in a path does not cost the run.
  r = run("run " + kSrc + "/scenarios/megatron_22b_tp8.json --html " + path("no/such/dir/p.html"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("no/such/dir/p.html: --html: its directory"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("step time"), std::string::npos) << r.out;
  // "-" is standard output: the JSON alone there (the text goes to stderr); one "-" at most.
  const std::string solo = ::testing::TempDir() + "trainsim_cli_json_dash.json";
  r = tscli::run_cmd("{ " + std::string(TRAINSIM_BINARY) + " run " + kSrc + "/scenarios/megatron_22b_tp8.json --fast --json - 2>/dev/null > " +
              solo + "; }");
  EXPECT_EQ(r.rc, 0) << r.out;
  std::ifstream din(solo);
  const nlohmann::json dash = nlohmann::json::parse(din, nullptr, false);
  ASSERT_FALSE(dash.is_discarded()) << "stdout held more than the JSON";
  EXPECT_EQ(dash["scenario"]["name"], "megatron-22b-tp8");
  r = run("run --fast --json - --html -");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("only one report can go to standard output"), std::string::npos) << r.out;
}

// A misspelt subcommand is named with the one meant; --fast, the default of sweep, search and
// validate, is accepted there and excludes --full.
TEST_F(Cli, MisspeltSubcommandAndFastWhereItIsTheDefault) {
  CmdResult r = run("runn");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("unknown subcommand \"runn\"; did you mean \"run\"?"), std::string::npos) << r.out;
  r = run("sweep --fast --vary parallel.tp=1,2");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("fast mode"), std::string::npos) << r.out;
  r = run("search --fast --full --keys tp");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("excludes"), std::string::npos) << r.out;
}

TEST_F(Cli, BadScenarioIsExit2WithEveryErrorAndWritesNothing) {
  const std::string bad = path("bad.json");
  std::ofstream(bad) << R"({"model": {"name": "llama3-8b"}, "training": {"seq_len": 4096, "global_batch": 30},
    "cluster": {"gpu": "H100-SXM-80", "gpus": 8, "nic_bandwidth": "400"}, "parallel": {"tpp": 2, "tp": 3}})";
  CmdResult r = run("run " + bad + " --json " + path("out.json"));
  EXPECT_EQ(r.rc, 2) << r.out;
  for (const char* frag : {"/parallel/tpp", "did you mean \"tp\"", "/cluster/gpu", "/cluster/nic_bandwidth",
                           "missing unit", "/parallel/tp = 3"})
    EXPECT_NE(r.out.find(frag), std::string::npos) << frag << "\n" << r.out;
  EXPECT_FALSE(std::filesystem::exists(path("out.json")));
}

TEST_F(Cli, SetOverrideAndUnknownFile) {
  CmdResult r = run("run --set parallel.tp=64");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("--set"), std::string::npos) << r.out;
  r = run("run " + path("missing.json"));
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("missing.json"), std::string::npos) << r.out;
}

TEST_F(Cli, ValidateJsonHasTheIssuesShape) {
  const std::string rows = first_published_rows(3);
  CmdResult r = run("validate " + rows + " --json " + path("v.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  std::ifstream in(path("v.json"));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(j.contains("rows") && j.contains("summary"));
  for (const char* k : {"id", "metric", "measured", "predicted", "error_pct", "defaults", "status", "reason"})
    EXPECT_TRUE(j["rows"][0].contains(k)) << k;
  for (const char* k : {"compared", "median_abs_error_pct", "mean_abs_error_pct", "max_abs_error_pct"})
    EXPECT_TRUE(j["summary"].contains(k)) << k;
  // --csv and --html: the same rows (a header and three lines; a bar each).
  r = run("validate " + rows + " --csv " + path("v.csv") + " --html " + path("v.html"));
  ASSERT_EQ(r.rc, 0) << r.out;
  std::ifstream cin(path("v.csv"));
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(cin, line)) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "id,group,metric,status,measured,predicted,error_pct,reason,defaults\r");
  EXPECT_EQ(lines[1].rfind(j["rows"][0]["id"].get<std::string>() + ",", 0), 0u) << lines[1];
  std::ifstream hin(path("v.html"));
  const std::string html((std::istreambuf_iterator<char>(hin)), std::istreambuf_iterator<char>());
  size_t bars = 0;
  for (size_t at = html.find("class=\"err\""); at != std::string::npos; at = html.find("class=\"err\"", at + 1)) ++bars;
  EXPECT_EQ(bars, 3u);
}

// Rows a replay cannot score are skipped with their reason, never a crash: a measured figure of
// 0 (the error divides by it), and a row whose step would run past the simulator's range (a
// million-sequence micro-batch on SC'21's 64-stage pipeline: each stage alone was within range,
// together they overflowed the picoseconds).
TEST_F(Cli, ValidateSkipsRowsItCannotScore) {
  std::vector<nlohmann::json> kept;
  first_published_rows(10, &kept);   // SC'21 Table 1: the tenth row is the 1T model on 64 stages
  ASSERT_EQ(kept[9]["id"], "mlm-sc21-t1-1T");
  nlohmann::json zero = kept[0], huge = kept[9];
  zero["id"] = "zero-measured";
  for (auto& [k, v] : zero["measured"].items())
    if (v.is_number() && k != "memory_gib") v = 0;
  huge["id"] = "huge-batch";
  huge["training"]["micro_batch"] = 1000000;
  huge["training"]["global_batch"] = 6000000;   // dp 6: one micro-batch per replica
  {
    std::ofstream out(path("bad.jsonl"));
    out << zero.dump() << "\n" << huge.dump() << "\n";
  }
  CmdResult r = run("validate " + path("bad.jsonl") + " --json " + path("v.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("a measured figure must be a number > 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("beyond the simulator's range"), std::string::npos) << r.out;
  std::ifstream in(path("v.json"));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_EQ(j["rows"].size(), 2u);
  for (const auto& row : j["rows"]) EXPECT_EQ(row["status"], "skipped") << row.dump();
}

TEST_F(Cli, ValidateExplainPrintsTheRowsWholePrediction) {
  std::vector<nlohmann::json> kept;
  const std::string rows = first_published_rows(3, &kept);
  ASSERT_EQ(kept.size(), 3u);
  const std::string id = kept[1]["id"].get<std::string>();
  CmdResult r = run("validate " + rows + " --explain " + id + " --json " + path("v.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  // Only the named row gets a report, after the table, and it is the report of that row's scenario.
  const size_t at = r.out.find("\n== " + id + ": the prediction of the scenario this row becomes");
  ASSERT_NE(at, std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("== " + kept[0]["id"].get<std::string>() + ":"), std::string::npos);
  EXPECT_EQ(r.out.find("== " + kept[2]["id"].get<std::string>() + ":"), std::string::npos);
  const std::string report = r.out.substr(at);
  EXPECT_NE(report.find("trainsim prediction: " + id), std::string::npos) << report;
  EXPECT_NE(report.find("step breakdown"), std::string::npos) << report;
  EXPECT_NE(report.find("cost sources"), std::string::npos) << report;
  const auto& par = kept[1]["parallel"];
  const std::string strategy = "tp=" + std::to_string(par["tp"].get<int>()) + " pp=" + std::to_string(par["pp"].get<int>());
  EXPECT_NE(report.find(strategy), std::string::npos) << strategy << "\n" << report;
  // The figure compared in the table is the one the report prints (TFLOP/s rows: model or hardware).
  std::ifstream in(path("v.json"));
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  const auto& row = j["rows"][1];
  ASSERT_EQ(row["id"], id);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f %s", row["predicted"].get<double>(),
                row["metric"].get<std::string>().find("hardware") != std::string::npos ? "hardware" : "model");
  if (row["metric"].get<std::string>().rfind("tflops", 0) == 0) {
    EXPECT_NE(report.find(buf), std::string::npos) << buf << "\n" << report;
  }

  r = run("validate " + rows + " --explain no-such-row");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("no-such-row"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no row of this file has this id"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(id), std::string::npos) << "the error lists the ids there are: " << r.out;
}

TEST_F(Cli, RunAccuracyShowsTheNearestPublishedRunsAsValidateScoresThem) {
  const std::string rows = first_published_rows(4);
  CmdResult v = run("validate " + rows + " --json " + path("v.json"));
  ASSERT_EQ(v.rc, 0) << v.out;
  CmdResult r = run("run --fast --accuracy " + rows + " --accuracy-k 2 --json " + path("r.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  const size_t at = r.out.find("accuracy: the 2 published runs of " + rows + " most like this scenario");
  ASSERT_NE(at, std::string::npos) << r.out;
  EXPECT_GT(at, r.out.find("cost sources")) << "after the report";
  EXPECT_NE(r.out.find("(4 of 4 runs compared)"), std::string::npos) << r.out;
  std::ifstream vin(path("v.json")), rin(path("r.json"));
  const nlohmann::json vj = nlohmann::json::parse(vin, nullptr, false);
  const nlohmann::json rj = nlohmann::json::parse(rin, nullptr, false);
  ASSERT_TRUE(rj.contains("accuracy")) << rj.dump();
  const auto& near = rj["accuracy"]["nearest"];
  ASSERT_EQ(near.size(), 2u);
  // Each near run carries the error `trainsim validate` gives the same row.
  for (const auto& n : near) {
    bool found = false;
    for (const auto& row : vj["rows"]) {
      if (row["id"] != n["id"]) continue;
      found = true;
      EXPECT_EQ(row["error_pct"], n["error_pct"]) << n.dump();
      EXPECT_EQ(row["predicted"], n["predicted"]) << n.dump();
    }
    EXPECT_TRUE(found) << n.dump();
    EXPECT_NE(r.out.find(n["id"].get<std::string>()), std::string::npos);
  }
  EXPECT_LE(near[0]["distance"].get<double>(), near[1]["distance"].get<double>());
  // The prediction itself is the same with or without --accuracy.
  CmdResult plain = run("run --fast --json " + path("p.json"));
  ASSERT_EQ(plain.rc, 0) << plain.out;
  std::ifstream pin(path("p.json"));
  const nlohmann::json pj = nlohmann::json::parse(pin, nullptr, false);
  EXPECT_EQ(pj["step_time_ps"], rj["step_time_ps"]);
  EXPECT_EQ(pj["fingerprint"], rj["fingerprint"]);
  EXPECT_FALSE(pj.contains("accuracy"));

  r = run("run --fast --accuracy " + rows + " --accuracy-k 0");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("--accuracy-k"), std::string::npos) << r.out;
  r = run("run --fast --accuracy-k 5");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("--accuracy"), std::string::npos) << r.out;
  r = run("run --fast --accuracy " + path("missing.jsonl"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("missing.jsonl"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("step time"), std::string::npos) << "no report before the error: " << r.out;
}

// A repeatable option takes one value per occurrence: the scenario file after it stays the scenario.
TEST_F(Cli, ScenarioAfterARepeatableOptionIsTheScenario) {
  CmdResult r = run("run --fast --set parallel.tp=2 --set parallel.dp=4 " + kSrc + "/scenarios/quickstart.json");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("tp=2 pp=1 vp=1 dp=4"), std::string::npos) << r.out;
  r = run("validate --explain mb-llama3-8b-8gpu " + kSrc + "/scenarios/crosschecks.jsonl");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("== mb-llama3-8b-8gpu:"), std::string::npos) << r.out;
  r = run("sweep --vary parallel.tp=1,2 " + kSrc + "/scenarios/quickstart.json");
  EXPECT_EQ(r.rc, 0) << r.out;
}

// The README's cross-checks outside the shared rows, and the H100 steps trainsim measured, are
// scenario rows: every one must still load and predict (a renamed key or a refused combination
// would drop it from the table).
TEST_F(Cli, CrosscheckRowsAllRun) {
  for (const char* f : {"crosschecks.jsonl", "crosschecks_whatif.jsonl", "gpu_steps.jsonl"}) {
    const std::string file = kSrc + "/scenarios/" + f;
    CmdResult r = run("validate " + file + " --json " + path("c.json"));
    ASSERT_EQ(r.rc, 0) << r.out;
    std::ifstream in(path("c.json"));
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    ASSERT_TRUE(j.contains("rows")) << f;
    ASSERT_GE(j["rows"].size(), 8u) << f;
    for (const auto& row : j["rows"]) EXPECT_EQ(row["status"], "ok") << f << ": " << row.dump();
    EXPECT_EQ(j["summary"]["compared"], j["rows"].size()) << f;
  }
}

TEST_F(Cli, SweepPrintsATableAndWritesEveryPoint) {
  CmdResult r = run("sweep --vary parallel.tp=1,2,3 --set parallel.zero=3 --json " + path("s.json") + " --csv " +
                    path("s.csv") + " --html " + path("s.html"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("3 points: parallel.tp (3)"), std::string::npos) << r.out;
  // The CSV: a header and a line per point, best first; the page ends as a page does.
  std::ifstream cin(path("s.csv"));
  std::string header, line;
  std::getline(cin, header);
  EXPECT_EQ(header.rfind("rank,index,parallel.tp,status,dp,step_s,", 0), 0u) << header;
  int lines = 0;
  while (std::getline(cin, line)) ++lines;
  EXPECT_EQ(lines, 3);
  std::ifstream hin(path("s.html"));
  const std::string html((std::istreambuf_iterator<char>(hin)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find("<svg id=\"sweep-step\""), std::string::npos);
  EXPECT_EQ(html.substr(html.size() - 8), "</html>\n");
  EXPECT_NE(r.out.find("wrote " + path("s.csv")), std::string::npos) << r.out;
  // A CSV that cannot be written: exit 2 before predicting anything, naming the path.
  CmdResult bad = run("sweep --vary parallel.tp=1,2 --csv " + path("no/dir/s.csv"));
  EXPECT_EQ(bad.rc, 2) << bad.out;
  EXPECT_NE(bad.out.find("no/dir/s.csv: --csv: its directory"), std::string::npos) << bad.out;
  EXPECT_EQ(bad.out.find("fastest that fits"), std::string::npos) << bad.out;
  EXPECT_NE(r.out.find("every point: --set parallel.zero=3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fastest that fits: parallel.tp="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("refused: "), std::string::npos) << "tp 3 does not divide 32 heads: " << r.out;
  std::ifstream in(path("s.json"));
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  ASSERT_EQ(j["points"].size(), 3u);
  for (const char* k : {"index", "rank", "values", "status", "error", "dp", "step_s", "tokens_per_s_per_gpu", "mfu",
                        "hfu", "compute_s", "exposed_comm_s", "bubble_s", "peak_memory_gib", "peak_rank",
                        "capacity_gib", "costs", "fingerprint"})
    EXPECT_TRUE(j["points"][0].contains(k)) << k;
  EXPECT_EQ(j["points"][2]["status"], "invalid");
  EXPECT_EQ(j["points"][1]["dp"], 4);
  // The point's step is what `run` gives for the same values.
  CmdResult one = run("run --fast --set parallel.tp=2 --set parallel.dp=4 --set parallel.zero=3 --json " + path("r.json"));
  ASSERT_EQ(one.rc, 0) << one.out;
  std::ifstream rin(path("r.json"));
  const nlohmann::json rj = nlohmann::json::parse(rin, nullptr, false);
  EXPECT_EQ(rj["fingerprint"], j["points"][1]["fingerprint"]);

  r = run("sweep --vary parallel.tpp=1,2");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("did you mean \"tp\""), std::string::npos) << r.out;
  r = run("sweep " + path("missing.json") + " --vary parallel.tp=1,2");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("missing.json"), std::string::npos) << r.out;
}

// `trainsim search`: the layouts of the keys asked, best first, and where the scenario as given
// ranks; bad keys and thread counts are errors.
TEST_F(Cli, SearchRanksTheLayoutsThatFit) {
  CmdResult r = run("search --keys tp,pp,micro_batch --top 3 --jobs 2 --json " + path("search.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("trainsim search: quickstart (embedded), 49 points"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("... 46 more"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("as given (parallel.tp=1 parallel.pp=1 training.micro_batch=1): #"), std::string::npos) << r.out;
  std::ifstream in(path("search.json"));
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["points"].size(), 49u);
  // One thread: the same JSON.
  CmdResult one = run("search --keys tp,pp,micro_batch --jobs 1 --json " + path("search1.json"));
  ASSERT_EQ(one.rc, 0) << one.out;
  std::ifstream in1(path("search1.json"));
  EXPECT_EQ(nlohmann::json::parse(in1, nullptr, false), j);
  // One key is searched with the same rules: sequence parallelism only where tp > 1.
  r = run("search --keys sp --set parallel.tp=2 --set parallel.dp=4 --json " + path("sp.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  std::ifstream spin(path("sp.json"));
  EXPECT_EQ(nlohmann::json::parse(spin, nullptr, false)["points"].size(), 2u) << r.out;
  r = run("search --keys sp --json " + path("sp1.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  std::ifstream sp1(path("sp1.json"));
  EXPECT_EQ(nlohmann::json::parse(sp1, nullptr, false)["points"].size(), 1u) << "tp 1: sp false only: " << r.out;
  r = run("search --keys tp,bogus");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("\"bogus\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("accepted: tp, pp, vp"), std::string::npos) << r.out;
  r = run("search --keys tp,pp --memory-limit 60%");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("at most 60% of its GPU's (--memory-limit)"), std::string::npos) << r.out;
  r = run("search --keys tp --memory-limit 120%");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("\"120%\""), std::string::npos) << r.out;
  r = run("search --jobs -1");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("--jobs"), std::string::npos) << r.out;
}

// `trainsim sweep --shard I/N --store FILE` in three runs, then `--from-store` with the three
// stores: the same output, byte for byte, as the sweep run at once; and the errors.
TEST_F(Cli, CompareSaysWhereTheStepMovedAndChecksRegressions) {
  const std::string tp2 = "--set parallel.tp=2 --set parallel.sequence_parallel=true --set parallel.dp=4";
  CmdResult r = run("compare " + tp2 + " --json " + path("cmp.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("B  quickstart (embedded) --set parallel.tp=2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("strategy.tp  1 -> 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("verdict: B is slower than A"), std::string::npos) << r.out;
  std::ifstream in(path("cmp.json"));
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["kind"], "compare");
  // The same command, the same bytes.
  CmdResult again = run("compare " + tp2 + " --json " + path("cmp2.json"));
  EXPECT_EQ(again.out.substr(0, again.out.find("wrote ")), r.out.substr(0, r.out.find("wrote ")));
  std::ifstream in2(path("cmp2.json"));
  EXPECT_EQ(nlohmann::json::parse(in2, nullptr, false), j);
  // A regression check: B is 7% slower here.
  r = run("compare " + tp2 + " --fail-above 2%");
  EXPECT_EQ(r.rc, 3) << r.out;
  EXPECT_NE(r.out.find("regression check: step +"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FAILED (exit 3)"), std::string::npos) << r.out;
  EXPECT_EQ(run("compare " + tp2 + " --fail-above 50%").rc, 0);
  // A stored prediction alone is compared with its scenario predicted now: nothing moved.
  ASSERT_EQ(run("run --json " + path("stored.json")).rc, 0);
  r = run("compare " + path("stored.json") + " --fail-above 0%");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("(stored prediction)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the same replay"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("regression check: step +0.0%, limit 0%: passed"), std::string::npos) << r.out;
  // Two files: a stored prediction against another scenario.
  r = run("compare " + path("stored.json") + " " + kSrc + "/scenarios/megatron_22b_tp8.json");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("model.activation  swiglu -> gelu"), std::string::npos) << r.out;
  // Bad input: exit 2, the side named.
  r = run("compare");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("compare needs a B that differs"), std::string::npos) << r.out;
  r = run("compare --set parallel.tp=3");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("error: B --set: /parallel/tp = 3"), std::string::npos) << r.out;
  r = run("compare " + path("stored.json") + " --set parallel.tp=2 " + path("stored.json"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("is a stored prediction"), std::string::npos) << r.out;
  EXPECT_EQ(run("compare " + tp2 + " --fail-above fast").rc, 2);
  EXPECT_EQ(run("compare " + tp2 + " --calibration x.db --calibration-b y.db").rc, 2);
}

TEST_F(Cli, PlanDescribesTheCompiledPlan) {
  CmdResult r = run("plan " + kSrc + "/scenarios/megatron_22b_tp8.json --rank 5 --top 4 --json " + path("plan.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("trainsim plan: megatron-22b-tp8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rank 5: program '"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ops of rank 5 by total time"), std::string::npos) << r.out;
  std::ifstream in(path("plan.json"));
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["kind"], "plan");
  EXPECT_EQ(j["rank"], 5);
  bool tp8 = false;
  for (const auto& g : j["groups"])
    if (g["name"] == "tp") tp8 = g["members"] == nlohmann::json::parse("[0,1,2,3,4,5,6,7]");
  EXPECT_TRUE(tp8) << j["groups"].dump();
  r = run("plan --rank 8");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("--rank = 8: no such rank; the plan has ranks 0-7"), std::string::npos) << r.out;
  EXPECT_EQ(run("plan --set parallel.tp=3").rc, 2);
}

TEST_F(Cli, SearchAcrossPlansCapacity) {
  CmdResult r = run("search --keys tp,pp,micro_batch --across cluster.gpus=8,16 --json " + path("across.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("trainsim search across cluster.gpus (2)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("* best row by step: cluster.gpus=16"), std::string::npos) << r.out;
  std::ifstream in(path("across.json"));
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  ASSERT_EQ(j["rows"].size(), 2u);
  EXPECT_EQ(j["rows"][0]["layouts"], 49);
  // The same as the plain search of each row.
  CmdResult one = run("search --keys tp,pp,micro_batch --set cluster.gpus=16 --set parallel.dp=null --top 1 --json " +
                      path("one.json"));
  ASSERT_EQ(one.rc, 0) << one.out;
  std::ifstream in1(path("one.json"));
  const nlohmann::json o = nlohmann::json::parse(in1, nullptr, false);
  ASSERT_TRUE(o.is_object()) << one.out;
  EXPECT_EQ(o["points"][o["best"].get<size_t>()]["step_s"], j["rows"][1]["best"]["step_s"]);
  EXPECT_EQ(o["points"].size(), j["rows"][1]["layouts"].get<size_t>());
  // Bad input: exit 2.
  r = run("search --keys tp,pp --across parallel.tp=1,2");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("the search already varies parallel.tp"), std::string::npos) << r.out;
  r = run("search --across cluster.gpus=8,16 --csv " + path("x.csv"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("not with --csv"), std::string::npos) << r.out;
  r = run("search --across cluster.gpuz=8");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("error: --across"), std::string::npos) << r.out;
}

TEST_F(Cli, ValidateBaselineSaysWhichRowsMoved) {
  const std::string rows = first_published_rows(4);
  CmdResult r = run("validate " + rows + " --json " + path("v.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  r = run("validate " + rows + " --baseline " + path("v.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("against the baseline " + path("v.json")), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no row's error moved"), std::string::npos) << r.out;
  // A baseline whose first row's error was 5 points lower: that row moved +5.0.
  std::ifstream in(path("v.json"));
  nlohmann::json old = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(old.is_object());
  std::string id;
  for (auto& row : old["rows"])
    if (row["status"] == "ok") {
      row["error_pct"] = row["error_pct"].get<double>() - 5;
      id = row["id"].get<std::string>();
      break;
    }
  ASSERT_FALSE(id.empty());
  std::ofstream(path("old.json")) << old.dump();
  r = run("validate " + rows + " --baseline " + path("old.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("1 row(s) whose error moved"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(id), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("+5.0  "), std::string::npos) << r.out;
  // Not a validate report: exit 2, the file named, nothing printed before the error.
  std::ofstream(path("bad.json")) << "{\"rows\": 1}";
  r = run("validate " + rows + " --baseline " + path("bad.json"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find(path("bad.json")), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("compared "), std::string::npos) << r.out;
  EXPECT_EQ(run("validate " + rows + " --baseline " + path("none.json")).rc, 2);
}

TEST_F(Cli, ShardedSweepMergesToTheWholeSweep) {
  const std::string sweep = "sweep --vary parallel.tp=1,2,4,8 --vary parallel.zero=1,3 --set training.micro_batch=2";
  CmdResult whole = run(sweep + " --json " + path("whole.json"));
  ASSERT_EQ(whole.rc, 0) << whole.out;
  std::string stores;
  for (int i = 0; i < 3; ++i) {
    const std::string db = path("shard" + std::to_string(i) + ".db");
    CmdResult r = run(sweep + " --shard " + std::to_string(i) + "/3 --store " + db);
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("shard " + std::to_string(i) + "/3: " + (i < 2 ? "3" : "2") + " of the 8 points"),
              std::string::npos) << r.out;
    EXPECT_NE(r.out.find("recorded " + std::string(i < 2 ? "3" : "2") + " point(s) in " + db), std::string::npos) << r.out;
    stores += " --from-store " + db;
  }
  CmdResult merged = run(sweep + stores + " --json " + path("merged.json"));
  ASSERT_EQ(merged.rc, 0) << merged.out;
  EXPECT_EQ(merged.out.substr(0, merged.out.rfind("wrote ")), whole.out.substr(0, whole.out.rfind("wrote ")));
  std::ifstream a(path("whole.json")), b(path("merged.json"));
  const std::string ja((std::istreambuf_iterator<char>(a)), {}), jb((std::istreambuf_iterator<char>(b)), {});
  EXPECT_FALSE(ja.empty());
  EXPECT_EQ(ja, jb);

  CmdResult r = run(sweep + " --from-store " + path("shard0.db"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("3 of 8 points"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("missing: "), std::string::npos) << r.out;
  for (const char* bad : {"3/3", "1", "a/2", "0/0", "-1/2", "1/2/3"}) {
    r = run(sweep + " --shard " + bad);
    EXPECT_EQ(r.rc, 2) << bad << ": " << r.out;
    EXPECT_NE(r.out.find("--shard"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("0 <= I < N"), std::string::npos) << r.out;
  }
  r = run(sweep + " --shard 0/2 --from-store " + path("shard0.db"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("predicts nothing"), std::string::npos) << r.out;
  r = run(sweep + " --from-store " + path("none.db"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("none.db"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--store FILE` makes one"), std::string::npos) << r.out;
  // --from-store with --store merges the stores into one file, which alone gives the sweep back.
  r = run(sweep + stores + " --store " + path("one.db"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("recorded 8 point(s) in " + path("one.db")), std::string::npos) << r.out;
  r = run(sweep + " --from-store " + path("one.db"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(r.out, whole.out.substr(0, whole.out.rfind("wrote ")));
  // A --store that is not a results store fails before any point is predicted (no table).
  std::ofstream(path("text.db")) << "not a database\n";
  r = run(sweep + " --store " + path("text.db"));
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("not a trainsim results store"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("trainsim sweep:"), std::string::npos) << r.out;
}

// --resume: a store holding some of a sweep's points (here one shard's, as a run cut off would leave
// them) gives those back; only the rest is predicted, and the table is the one of a whole run.
TEST_F(Cli, ResumedSweepPredictsOnlyWhatTheStoreLacks) {
  const std::string sweep = "sweep --vary parallel.tp=1,2,4,8 --vary parallel.zero=1,3 --set training.micro_batch=2";
  CmdResult whole = run(sweep);
  ASSERT_EQ(whole.rc, 0) << whole.out;
  const std::string db = path("cut.db");
  CmdResult r = run(sweep + " --shard 1/3 --store " + db);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("recorded 3 point(s) in " + db), std::string::npos) << r.out;
  r = run(sweep + " --store " + db + " --resume");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("recorded 5 point(s) in " + db), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("resumed 3 point(s) recorded there before"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.substr(0, r.out.find("recorded ")), whole.out);
  // The store now holds the whole sweep: a second resume predicts nothing, the merge gives it back.
  r = run(sweep + " --store " + db + " --resume");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("recorded 0 point(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("resumed 8 point(s)"), std::string::npos) << r.out;
  r = run(sweep + " --from-store " + db);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(r.out, whole.out);
  // Another sweep (another key) resumes nothing from it.
  r = run(sweep + " --set training.seq_len=1024 --store " + db + " --resume");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("resumed 0 point(s)"), std::string::npos) << r.out;
  for (const std::string& bad : {sweep + " --resume", sweep + " --resume --store " + db + " --from-store " + db}) {
    r = run(bad);
    EXPECT_EQ(r.rc, 2) << bad << ": " << r.out;
    EXPECT_NE(r.out.find("--resume"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("needs --store FILE"), std::string::npos) << r.out;
  }
}

// validate --scenarios DIR: each published row as a scenario file, whose prediction is the
// validation's; a scenario row (that names its file) is counted, not written.
TEST_F(Cli, ValidateWritesEachRowsScenario) {
  const std::string rows = path("runs.jsonl");
  std::vector<std::string> ids;
  {
    std::ifstream in(kSrc + "/../shared/validation/published_runs.jsonl");
    ASSERT_TRUE(in.good());
    std::ofstream out(rows);
    std::string line;
    while (std::getline(in, line) && ids.size() < 3) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object() || !j.contains("id") || j.value("model", nlohmann::json::object()).value("arch", "") != "dense")
        continue;
      out << line << "\n";
      ids.push_back(j["id"].get<std::string>());
    }
    out << R"({"id": "a-scenario-row", "scenario": ")" << kSrc
        << R"(/scenarios/quickstart.json", "measured": {"tokens_per_s_per_gpu": 9000}})" << "\n";
  }
  ASSERT_EQ(ids.size(), 3u);
  CmdResult r = run("validate " + rows + " --json " + path("v.json") + " --scenarios " + path("rows/sub"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("wrote 3 scenario file(s) to " + path("rows/sub") + " (1 row(s) did not become one"),
            std::string::npos)
      << r.out;
  std::ifstream vin(path("v.json"));
  const nlohmann::json v = nlohmann::json::parse(vin, nullptr, false);
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string file = path("rows/sub/" + ids[i] + ".json");
    std::ifstream fin(file);
    const nlohmann::json doc = nlohmann::json::parse(fin, nullptr, false);
    ASSERT_TRUE(doc.is_object()) << file;
    EXPECT_EQ(doc["name"], ids[i]);
    EXPECT_NE(doc["description"].get<std::string>().find("Published run " + ids[i]), std::string::npos);
    CmdResult one = run("run --fast " + file + " --json " + path("one.json"));
    ASSERT_EQ(one.rc, 0) << one.out;
    std::ifstream oin(path("one.json"));
    const nlohmann::json o = nlohmann::json::parse(oin, nullptr, false);
    ASSERT_EQ(v["rows"][i]["id"], ids[i]);
    // The file's first dense rows (SC'21 Table 1) compare hardware TFLOP/s.
    ASSERT_EQ(v["rows"][i]["metric"], "tflops_per_gpu (hardware)") << ids[i];
    EXPECT_EQ(o["hardware_tflops_per_gpu"].get<double>(), v["rows"][i]["predicted"].get<double>())
        << ids[i] << " predicts what validate predicted";
  }
  r = run("validate " + rows + " --scenarios " + path("runs.jsonl/x"));
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("--scenarios"), std::string::npos) << r.out;
}

TEST_F(Cli, ValidateWithCalibrationPricesOnlyTheRowsOfItsGpu) {
  const std::string rows = path("runs.jsonl");
  {
    std::ifstream in(kSrc + "/../shared/validation/published_runs.jsonl");
    ASSERT_TRUE(in.good());
    std::ofstream out(rows);
    std::string line;
    int h100 = 0, a100 = 0;
    while (std::getline(in, line)) {
      if (h100 < 1 && line.find("\"gpu\": \"H100-SXM-80GB\"") != std::string::npos) out << line << "\n", ++h100;
      if (a100 < 1 && line.find("\"gpu\": \"A100-SXM-80GB\"") != std::string::npos) out << line << "\n", ++a100;
    }
    ASSERT_EQ(h100 + a100, 2);
  }
  CmdResult r = run("calibrate import " + kSrc + "/calibrate/data/h100/quickstart_calibrator.jsonl --db " + path("h.db"));
  ASSERT_EQ(r.rc, 0) << r.out;
  r = run("validate " + rows + " --calibration " + path("h.db") + " --json " + path("v.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  std::ifstream in(path("v.json"));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_EQ(j["rows"].size(), 2u);
  int priced = 0;
  for (const auto& row : j["rows"]) {
    bool cal = false;
    for (const auto& d : row["defaults"]) cal = cal || d.get<std::string>().find("costs: calibration") != std::string::npos;
    priced += cal;
  }
  EXPECT_EQ(priced, 1) << "only the H100 row is priced from the H100 database";
  r = run("validate " + rows + " --calibration " + path("missing.db"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("missing.db"), std::string::npos) << r.out;
}

TEST_F(Cli, CalibrateCompareNamesGroupsAndWritesJson) {
  CmdResult r = run("calibrate import " + kSrc + "/calibrate/data/h100/quickstart_calibrator.jsonl --db " + path("h.db"));
  ASSERT_EQ(r.rc, 0) << r.out;
  r = run("calibrate compare " + path("h.db") + " --gpu H100-SXM-80GB --json " + path("c.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("gemm bf16"), std::string::npos) << r.out;
  std::ifstream in(path("c.json"));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(j.contains("groups"));
  EXPECT_EQ(j["op_points"].get<int>(), 35);
  r = run("calibrate compare " + path("h.db") + " --gpu A100-SXM-80GB");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("NVIDIA H100 80GB HBM3"), std::string::npos) << r.out;
}

TEST_F(Cli, CalibrateJobsImportAndRun) {
  CmdResult r = run("calibrate " + kSrc + "/scenarios/quickstart.json --jobs " + path("jobs.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  std::ifstream in(path("jobs.json"));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(j.contains("ops") && j.contains("collectives"));
  EXPECT_GT(j["ops"].size(), 10u);
  r = run("calibrate import " + kSrc + "/tests/calibrate/data/all_reduce_perf_8xh100.txt --format nccl-tests --db " +
          path("c.db"));
  ASSERT_EQ(r.rc, 0) << r.out;
  r = run("run " + kSrc + "/scenarios/quickstart.json --set parallel.zero=0 --calibration " + path("c.db"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("calibration database"), std::string::npos) << r.out;
  r = run("run --calibration " + path("nope.db"));
  EXPECT_EQ(r.rc, 2) << r.out;
}

TEST_F(Cli, TopoDescribeAndBadTopology) {
  CmdResult r = run("topo describe dgx-h100");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("bisection bandwidth"), std::string::npos) << r.out;
  std::ofstream(path("t.json")) << R"({"nodes": [{"name": "n", "gpus": 8}], "links": [{"from": "n", "to": "nowhere", "bandwidth": "0Gbps"}]})";
  r = run("topo describe " + path("t.json"));
  EXPECT_EQ(r.rc, 2) << r.out;
}

}  // namespace
