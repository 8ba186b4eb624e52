#include "reports/compare_report.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "reports/json_report.h"
#include "scenarios/loader.h"

namespace trainsim {
namespace {

Prediction quickstart(const std::vector<std::string>& overrides) {
  Result<Scenario> sc = load_embedded_quickstart(overrides);
  EXPECT_TRUE(sc.ok()) << sc.status().to_string();
  Result<Prediction> p = predict(sc.value(), PredictOptions{});
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return std::move(p).value();
}

std::string temp_file(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

const std::vector<std::string> kTp2 = {"parallel.tp=2", "parallel.sequence_parallel=true", "parallel.dp=4"};

TEST(Compare, ARunAgainstItselfChangesNothing) {
  const Prediction p = quickstart({});
  const RunComparison c = compare_runs(compared_run_of(p, "x"), compared_run_of(p, "y"));
  EXPECT_TRUE(c.differs.empty());
  EXPECT_EQ(step_change(c), 0.0);
  const nlohmann::ordered_json j = comparison_json(c);
  EXPECT_EQ(j["step_change_ps"], 0);
  for (const auto& b : j["breakdown"]) EXPECT_EQ(b["change_ps"], 0) << b.dump();
  for (const auto& m : j["memory"]) EXPECT_EQ(m["change_bytes"], 0) << m.dump();
  EXPECT_TRUE(j["same_fingerprint"]);
  const std::string text = format_comparison(c);
  EXPECT_NE(text.find("settings: the same model, training, cluster and strategy"), std::string::npos) << text;
  EXPECT_NE(text.find("nowhere: every bucket is the same"), std::string::npos) << text;
  EXPECT_NE(text.find("verdict: the same step time"), std::string::npos) << text;
  EXPECT_NE(text.find("the same replay (fingerprint " + j["a"]["fingerprint"].get<std::string>() + ")"),
            std::string::npos)
      << text;
}

// The figures are each prediction's own, and the breakdown's changes add up to the step's change
// exactly, in picoseconds.
TEST(Compare, BreakdownChangesSumToTheStepChange) {
  const Prediction pa = quickstart({});
  const Prediction pb = quickstart(kTp2);
  const RunComparison c = compare_runs(compared_run_of(pa, "A"), compared_run_of(pb, "B"));
  ASSERT_NE(pa.step_time, pb.step_time);
  EXPECT_EQ(c.a.step, pa.step_time);
  EXPECT_EQ(c.b.step, pb.step_time);
  EXPECT_EQ(c.b.mfu, pb.mfu);
  EXPECT_EQ(c.b.tokens_per_s_per_gpu, pb.tokens_per_s_per_gpu);
  EXPECT_EQ(c.b.memory[5], pb.peak_memory.total().count());
  EXPECT_EQ(c.b.oom, pb.peak_memory.oom());
  const nlohmann::ordered_json j = comparison_json(c);
  EXPECT_EQ(j["step_change_ps"].get<int64_t>(), (pb.step_time - pa.step_time).count_ps());
  EXPECT_DOUBLE_EQ(j["step_change"].get<double>(),
                   static_cast<double>((pb.step_time - pa.step_time).count_ps()) / pa.step_time.count_ps());
  int64_t sum = 0;
  for (size_t i = 0; i < j["breakdown"].size(); ++i) {
    const auto& b = j["breakdown"][i];
    EXPECT_EQ(b["a_ps"].get<int64_t>(), pa.breakdown[i].count_ps());
    EXPECT_EQ(b["b_ps"].get<int64_t>(), pb.breakdown[i].count_ps());
    sum += b["change_ps"].get<int64_t>();
  }
  EXPECT_EQ(sum, j["step_change_ps"].get<int64_t>());
  // Exactly the three settings given differ, in the document's key order.
  ASSERT_EQ(c.differs.size(), 3u);
  EXPECT_EQ(c.differs[0].key, "strategy.dp");
  EXPECT_EQ(c.differs[0].a + " -> " + c.differs[0].b, "8 -> 4");
  EXPECT_EQ(c.differs[1].key, "strategy.sequence_parallel");
  EXPECT_EQ(c.differs[2].key, "strategy.tp");
  // The TP collectives exist on B only: A's side of their rows is null.
  bool tp_row = false;
  for (const auto& s : j["sources"])
    if (s["what"] == "all-gather(tp)") {
      tp_row = true;
      EXPECT_TRUE(s["a_source"].is_null());
      EXPECT_EQ(s["b_source"], "default");
    }
  EXPECT_TRUE(tp_row) << j["sources"].dump();
  const std::string text = format_comparison(c);
  EXPECT_NE(text.find("B is slower than A"), std::string::npos) << text;
  EXPECT_NE(text.find("mostly exposed TP comm +"), std::string::npos) << text;
  EXPECT_NE(text.find("strategy.tp  1 -> 2"), std::string::npos) << text;
  // The changes listed largest first.
  EXPECT_LT(text.find("  exposed TP comm "), text.find("  compute "));
  // Swapping the sides negates every change.
  const nlohmann::ordered_json r = comparison_json(compare_runs(compared_run_of(pb, "B"), compared_run_of(pa, "A")));
  EXPECT_EQ(r["step_change_ps"].get<int64_t>(), -j["step_change_ps"].get<int64_t>());
  for (size_t i = 0; i < r["memory"].size(); ++i)
    EXPECT_EQ(r["memory"][i]["change_bytes"].get<int64_t>(), -j["memory"][i]["change_bytes"].get<int64_t>());
}

// A prediction stored by `run --json` reads back as the very figures of the prediction.
// The verdict judges the step where both sides run the same GPUs and tokens per step; a larger
// batch is judged by tokens/s, another GPU count by tokens/s per GPU (a longer step that trains
// more tokens is not a regression).
TEST(Compare, StepsOfDifferentSizesAreJudgedByThroughput) {
  const Prediction pa = quickstart({});
  const RunComparison same = compare_runs(compared_run_of(pa, "A"), compared_run_of(quickstart(kTp2), "B"));
  CompareJudgement j = judge(same);
  EXPECT_STREQ(j.key, "step_time");
  EXPECT_EQ(j.change, step_change(same));
  EXPECT_EQ(j.better, same.b.step < same.a.step);
  EXPECT_TRUE(j.why.empty());

  const Prediction pb = quickstart({"training.global_batch=128"});   // twice the tokens, same GPUs
  const RunComparison batch = compare_runs(compared_run_of(pa, "A"), compared_run_of(pb, "B"));
  ASSERT_GT(pb.step_time, pa.step_time);
  j = judge(batch);
  EXPECT_STREQ(j.key, "tokens_per_s");
  EXPECT_EQ(j.a, pa.tokens_per_s);
  EXPECT_EQ(j.b, pb.tokens_per_s);
  EXPECT_DOUBLE_EQ(j.change, (pb.tokens_per_s - pa.tokens_per_s) / pa.tokens_per_s);
  EXPECT_EQ(j.better, pb.tokens_per_s > pa.tokens_per_s);
  EXPECT_NE(j.why.find("tokens per step (524,288 vs 1,048,576)"), std::string::npos) << j.why;
  const std::string text = format_comparison(batch);
  EXPECT_NE(text.find(std::string("verdict: B trains ") + (j.better ? "faster" : "slower") + " than A: tokens/s "),
            std::string::npos) << text;
  const nlohmann::ordered_json jj = comparison_json(batch);
  EXPECT_EQ(jj["judged_by"], "tokens_per_s");
  EXPECT_DOUBLE_EQ(jj["judged_change"].get<double>(), j.change);

  const Prediction pg = quickstart({"cluster.gpus=16", "parallel.dp=16"});   // twice the GPUs
  const RunComparison gpus = compare_runs(compared_run_of(pa, "A"), compared_run_of(pg, "B"));
  j = judge(gpus);
  EXPECT_STREQ(j.key, "tokens_per_s_per_gpu");
  EXPECT_DOUBLE_EQ(j.change, (pg.tokens_per_s_per_gpu - pa.tokens_per_s_per_gpu) / pa.tokens_per_s_per_gpu);
  EXPECT_NE(j.why.find("GPUs (8 vs 16)"), std::string::npos) << j.why;
  // Swapping the sides swaps better and worse.
  EXPECT_NE(judge(compare_runs(compared_run_of(pg, "A"), compared_run_of(pa, "B"))).better, j.better);
}

TEST(Compare, StoredPredictionReadsBackExactly) {
  const Prediction p = quickstart(kTp2);
  const std::string path = temp_file("compare_stored.json", prediction_json(p).dump(2) + "\n");
  Result<ComparedRun> stored = load_compared_run(path, {}, {});
  ASSERT_TRUE(stored.ok()) << stored.status().to_string();
  EXPECT_TRUE(stored.value().stored);
  const ComparedRun fresh = compared_run_of(p, "fresh");
  EXPECT_EQ(stored.value().step, fresh.step);
  EXPECT_EQ(stored.value().breakdown, fresh.breakdown);
  EXPECT_EQ(stored.value().memory, fresh.memory);
  EXPECT_EQ(stored.value().mfu, fresh.mfu);
  EXPECT_EQ(stored.value().settings, fresh.settings);
  ASSERT_EQ(stored.value().sources.size(), fresh.sources.size());
  for (size_t i = 0; i < fresh.sources.size(); ++i) EXPECT_EQ(stored.value().sources[i].time, fresh.sources[i].time);
  EXPECT_EQ(stored.value().file, "<embedded>");
  const RunComparison c = compare_runs(stored.value(), fresh);
  EXPECT_TRUE(c.differs.empty());
  EXPECT_NE(format_comparison(c).find("the same replay"), std::string::npos);
  // A stored prediction cannot take overrides or a calibration database.
  Result<ComparedRun> bad = load_compared_run(path, {"parallel.tp=4"}, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().errors()[0].file, "--set");
  EXPECT_NE(bad.status().to_string().find(path + " is a stored prediction"), std::string::npos);
  CompareSideOptions with_db;
  with_db.calibration = "costs.db";
  EXPECT_FALSE(load_compared_run(path, {}, with_db).ok());
  // A scenario side is predicted with its overrides.
  Result<ComparedRun> scen = load_compared_run("", kTp2, {});
  ASSERT_TRUE(scen.ok()) << scen.status().to_string();
  EXPECT_EQ(scen.value().step, p.step_time);
  EXPECT_EQ(scen.value().label, "quickstart (embedded) --set parallel.tp=2 --set parallel.sequence_parallel=true --set parallel.dp=4");
}

TEST(Compare, BrokenPredictionDocumentNamesEveryBadKey) {
  nlohmann::json doc = nlohmann::json::parse(prediction_json(quickstart({})).dump());
  doc["breakdown"]["bubble"]["ps"] = "none";
  doc["mfu"] = "high";
  doc["memory"].erase("peak");
  doc["sources"][1]["time_on_critical_rank_ps"] = -5;
  doc["strategy"] = 3;
  const std::string path = temp_file("compare_broken.json", doc.dump());
  ASSERT_TRUE(is_prediction_document(doc));
  Result<ComparedRun> r = load_compared_run(path, {}, {});
  ASSERT_FALSE(r.ok());
  const std::string text = r.status().to_string();
  for (const char* want :
       {"/breakdown/bubble/ps = \"none\": expected a whole number of picoseconds", "/mfu = \"high\": expected a number",
        "/memory/peak/params_bytes: missing", "/memory/peak/total_bytes: missing",
        "/sources/1/time_on_critical_rank_ps = -5", "/strategy = 3: expected an object of settings"})
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  for (const Error& e : r.status().errors()) EXPECT_EQ(e.file, path);
  EXPECT_NE(text.find("as `trainsim run --json` writes it"), std::string::npos) << text;
  // A document that is not a prediction is read as a scenario, with the loader's errors.
  const std::string not_one = temp_file("compare_not_one.json", "{\"modle\": {}}");
  Result<ComparedRun> s = load_compared_run(not_one, {}, {});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().errors()[0].file, not_one);
  EXPECT_FALSE(load_compared_run(::testing::TempDir() + "no_such_file.json", {}, {}).ok());
}

}  // namespace
}  // namespace trainsim

#include "reports/html_report.h"

namespace trainsim {
namespace {

// The sum of the data-v values of the bars inside <svg id="ID">.
double svg_sum(const std::string& page, const std::string& id) {
  const size_t from = page.find("<svg id=\"" + id + "\"");
  const size_t to = page.find("</svg>", from);
  double sum = 0;
  for (size_t at = page.find("data-v=\"", from); at != std::string::npos && at < to; at = page.find("data-v=\"", at + 1))
    sum += std::stod(page.substr(at + 8));
  return sum;
}

// Another command's report is named as what it is, not read as a scenario with unknown keys.
TEST(Compare, AnotherCommandsReportIsNamed) {
  const std::string sweep = temp_file("cmp_sweep.json", R"({"scenario": "x", "axes": [], "points": []})");
  const std::string val = temp_file("cmp_validate.json", R"({"rows": [], "summary": {}})");
  for (const auto& [path, what] : {std::pair{sweep, "a sweep or search report"}, std::pair{val, "a validate report"}}) {
    auto r = load_compared_run(path, {}, CompareSideOptions{});
    ASSERT_FALSE(r.ok());
    ASSERT_EQ(r.status().errors().size(), 1u) << r.status().to_string();
    EXPECT_EQ(r.status().errors()[0].file, path);
    EXPECT_NE(r.status().errors()[0].message.find(std::string("is ") + what), std::string::npos) << r.status().to_string();
  }
}

TEST(Compare, HtmlPageDrawsEachSidesBreakdownAndMemory) {
  const Prediction pa = quickstart({});
  const Prediction pb = quickstart(kTp2);
  const RunComparison c = compare_runs(compared_run_of(pa, "A <a>"), compared_run_of(pb, "B"));
  const std::string page = compare_html(c, "test");
  EXPECT_EQ(page, compare_html(c, "test"));
  // Each side's bar is its buckets, which sum to its step.
  EXPECT_DOUBLE_EQ(svg_sum(page, "compare-breakdown"),
                   static_cast<double>(pa.step_time.count_ps()) + static_cast<double>(pb.step_time.count_ps()));
  EXPECT_DOUBLE_EQ(svg_sum(page, "compare-memory"),
                   static_cast<double>(pa.peak_memory.total().count()) + static_cast<double>(pb.peak_memory.total().count()));
  size_t caps = 0;
  for (size_t at = page.find("class=\"capacity\""); at != std::string::npos; at = page.find("class=\"capacity\"", at + 1))
    ++caps;
  EXPECT_EQ(caps, 2u);
  EXPECT_NE(page.find("A: A &lt;a&gt;"), std::string::npos) << "labels are escaped";
  EXPECT_NE(page.find("B is slower than A"), std::string::npos) << "the report follows";
  EXPECT_EQ(page.find("<script"), std::string::npos);
}

}  // namespace
}  // namespace trainsim
