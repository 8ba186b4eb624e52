#include "reports/validate_report.h"

#include <gtest/gtest.h>

namespace trainsim {
namespace {

using nlohmann::ordered_json;

std::vector<ValidateRow> rows() {
  std::vector<ValidateRow> r(5);
  r[0] = {"run-a", "tflops_per_gpu", 100, 110, 10, {"micro_batch=1 (not published)"}, true, "", "", "", 0, 0, {}, false};
  r[1] = {"run-b", "mfu", 0.5, 0.45, -10 * 1.0000000000000002, {}, true, "", "", "", 0, 0, {}, false};
  r[2] = {"run-c", "tokens_per_s_per_gpu", 3000, 3060, 2, {"schedule=1f1b", "zero=0"}, true, "", "", "", 0, 0, {}, false};
  r[3] = {"run-d", "iteration_time_s", 2, 2.6, 30, {}, true, "", "", "", 0, 0, {}, false};
  r[4] = {"run-e", "mfu", 0, 0, 0, {}, false, "MoE not supported yet (issue 4)", "", "", 0, 0, {}, false};
  return r;
}

TEST(ErrorPct, Signed) {
  EXPECT_DOUBLE_EQ(error_pct(100, 110), 10.0);
  EXPECT_DOUBLE_EQ(error_pct(100, 90), -10.0);
}

TEST(Summarize, KnownRows) {
  // |errors| of the ok rows: 10, 10, 2, 30 -> sorted 2, 10, 10, 30
  const ValidateSummary s = summarize(rows());
  EXPECT_EQ(s.compared, 4);
  EXPECT_DOUBLE_EQ(s.median_abs_error_pct, 10.0);    // mean of the middle two: (10 + 10) / 2
  EXPECT_DOUBLE_EQ(s.mean_abs_error_pct, (2 + 10 + 10.000000000000002 + 30) / 4.0);
  EXPECT_DOUBLE_EQ(s.max_abs_error_pct, 30.0);
}

TEST(Summarize, EvenCountMedianIsMeanOfMiddleTwo) {
  std::vector<ValidateRow> r(4);
  const double errs[] = {-8, 1, 4, 20};   // |.| sorted: 1, 4, 8, 20 -> median 6
  for (int i = 0; i < 4; ++i) {
    r[i].id = "r" + std::to_string(i);
    r[i].error_pct = errs[i];
    r[i].ok = true;
  }
  EXPECT_DOUBLE_EQ(summarize(r).median_abs_error_pct, 6.0);
  r.pop_back();                           // odd: 1, 4, 8 -> 4
  EXPECT_DOUBLE_EQ(summarize(r).median_abs_error_pct, 4.0);
  EXPECT_EQ(summarize({}).compared, 0);
  EXPECT_EQ(summarize({}).median_abs_error_pct, 0.0);
}

TEST(FormatValidate, TableDefaultsSkippedAndSummary) {
  const auto r = rows();
  const std::string s = format_validate(r, summarize(r));
  EXPECT_NE(s.find("id"), std::string::npos);
  EXPECT_NE(s.find("run-a"), std::string::npos) << s;
  EXPECT_NE(s.find("+10.0%"), std::string::npos) << s;
  EXPECT_NE(s.find("-10.0%"), std::string::npos) << s;
  EXPECT_NE(s.find("3,060"), std::string::npos) << s;
  EXPECT_NE(s.find("    defaults: micro_batch=1 (not published)\n"), std::string::npos) << s;
  EXPECT_NE(s.find("    defaults: schedule=1f1b; zero=0\n"), std::string::npos) << s;
  EXPECT_NE(s.find("skipped (1):\n  run-e mfu: MoE not supported yet (issue 4)\n"),
            std::string::npos) << s;
  EXPECT_NE(s.find("compared 4 of 5: median |error| 10.0%, mean 13.0%, max 30.0%\n"),
            std::string::npos) << s;
  EXPECT_EQ(s, format_validate(r, summarize(r)));
  // Where the costs come from, just above the summary line; nothing when not given.
  const std::string c = format_validate(r, summarize(r), "costs: the embedded default");
  EXPECT_NE(c.find("\ncosts: the embedded default\n\ncompared 4 of 5"), std::string::npos) << c;
  EXPECT_EQ(s.find("costs:"), std::string::npos) << s;
}

// A row that publishes its memory gets a line comparing it with the predicted peak, outside the
// summary (whose figures do not move) and the JSON; rows without one get none.
TEST(FormatValidate, PublishedMemoryLine) {
  auto r = rows();
  r[2].measured_memory_gib = 80;
  r[2].predicted_memory_gib = 60;
  const std::string s = format_validate(r, summarize(r));
  EXPECT_NE(s.find("    defaults: schedule=1f1b; zero=0\n    memory: measured 80.0 GiB, predicted peak 60.00 GiB (-25.0%;"),
            std::string::npos) << s;
  EXPECT_EQ(s.find("memory:", s.find("memory:") + 1), std::string::npos) << "one row, one memory line: " << s;
  EXPECT_NE(s.find("compared 4 of 5: median |error| 10.0%, mean 13.0%, max 30.0%\n"), std::string::npos) << s;
  EXPECT_EQ(validate_json(r, summarize(r)).dump(), validate_json(rows(), summarize(rows())).dump());
  EXPECT_EQ(format_validate(rows(), summarize(rows())).find("memory:"), std::string::npos);
}

// Per source group: the same statistics over each group's rows, groups in order of first
// appearance; printed before the summary line (which stays last) only where the rows name more
// than one group, and not in the JSON (whose fields the issue fixes).
TEST(FormatValidate, ByGroup) {
  auto r = rows();
  r[0].group = r[1].group = "A";   // |errors| 10, 10
  r[2].group = r[4].group = "B";   // 2 (run-e skipped)
  r[3].group = "C";                // 30
  const auto g = summarize_groups(r);
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[0].first, "A");
  EXPECT_EQ(g[0].second.compared, 2);
  EXPECT_DOUBLE_EQ(g[0].second.median_abs_error_pct, (10 + 10.000000000000002) / 2);
  EXPECT_EQ(g[1].first, "B");
  EXPECT_EQ(g[1].second.compared, 1);
  EXPECT_DOUBLE_EQ(g[1].second.max_abs_error_pct, 2.0);
  EXPECT_EQ(g[2].second.compared, 1);
  EXPECT_DOUBLE_EQ(g[2].second.mean_abs_error_pct, 30.0);
  const std::string s = format_validate(r, summarize(r));
  const size_t at = s.find("by source group:\n");
  ASSERT_NE(at, std::string::npos) << s;
  EXPECT_LT(at, s.find("compared 4 of 5"));
  EXPECT_EQ(s.substr(s.rfind('\n', s.size() - 2) + 1), "compared 4 of 5: median |error| 10.0%, mean 13.0%, max 30.0%\n");
  EXPECT_NE(s.find("B ", at), std::string::npos) << s;
  EXPECT_NE(s.find("30.0%", at), std::string::npos) << s;
  // One group (or none named): no per-group table.
  EXPECT_EQ(format_validate(rows(), summarize(rows())).find("by source group"), std::string::npos);
  const auto j = validate_json(r, summarize(r));
  EXPECT_FALSE(j.contains("groups"));
  EXPECT_FALSE(j["rows"][0].contains("group"));
}

TEST(ValidateJson, ExactShape) {
  const auto r = rows();
  const ordered_json j = validate_json(r, summarize(r));
  ASSERT_EQ(j.size(), 2u);
  ASSERT_EQ(j["rows"].size(), 5u);
  std::vector<std::string> keys;
  for (auto it = j["rows"][0].begin(); it != j["rows"][0].end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"id", "metric", "measured", "predicted", "error_pct",
                                            "defaults", "status", "reason"}));
  EXPECT_EQ(j["rows"][0]["status"], "ok");
  EXPECT_EQ(j["rows"][4]["status"], "skipped");
  EXPECT_EQ(j["rows"][4]["reason"], "MoE not supported yet (issue 4)");
  EXPECT_EQ(j["rows"][2]["defaults"], (ordered_json{"schedule=1f1b", "zero=0"}));
  keys.clear();
  for (auto it = j["summary"].begin(); it != j["summary"].end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"compared", "median_abs_error_pct",
                                            "mean_abs_error_pct", "max_abs_error_pct"}));
  EXPECT_EQ(j["summary"]["compared"], 4);
  EXPECT_EQ(ordered_json::parse(j.dump()), j);
}

}  // namespace
}  // namespace trainsim

namespace trainsim {
namespace {

TEST(ValidateCsv, ARowPerRowWithItsNumbersExact) {
  std::vector<ValidateRow> r = rows();
  r[2].defaults = {"a, with a comma", "b \"quoted\""};
  const std::string csv = validate_csv(r);
  const std::string want_head = "id,group,metric,status,measured,predicted,error_pct,reason,defaults\r\n";
  ASSERT_EQ(csv.substr(0, want_head.size()), want_head);
  // run-b's error is -10.000000000000002: the shortest text that reads back to that double.
  EXPECT_NE(csv.find("\r\nrun-b,,mfu,ok,0.5,0.45,-10.000000000000002,,\r\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\r\nrun-c,,tokens_per_s_per_gpu,ok,3000,3060,2,,\"a, with a comma; b \"\"quoted\"\"\"\r\n"),
            std::string::npos)
      << csv;
  // A skipped row: no prediction, no error, its reason.
  EXPECT_NE(csv.find("\r\nrun-e,,mfu,skipped,,,,MoE not supported yet (issue 4),\r\n"), std::string::npos) << csv;
  size_t lines = 0;
  for (size_t at = csv.find("\r\n"); at != std::string::npos; at = csv.find("\r\n", at + 2)) ++lines;
  EXPECT_EQ(lines, 1 + r.size());
}

}  // namespace
}  // namespace trainsim

namespace trainsim {
namespace {

ValidateRow vrow(const std::string& id, double error, bool ok = true) {
  ValidateRow r;
  r.id = id;
  r.metric = "iteration_time_s";
  r.measured = 100;
  r.predicted = 100 + error;
  r.error_pct = error;
  r.ok = ok;
  if (!ok) r.reason = "unsupported";
  return r;
}

// Each row's move is its error now minus its error then, listed largest first; rows on one side
// only are named; the baseline's summary is its own.
TEST(ValidateBaseline, RowsMovedLargestFirst) {
  const std::vector<ValidateRow> then = {vrow("a", 10), vrow("b", -5), vrow("c", 2), vrow("d", 7), vrow("e", 1, false)};
  const std::vector<ValidateRow> now = {vrow("a", 10.01), vrow("b", -2), vrow("c", 6), vrow("e", 3), vrow("f", 4)};
  const nlohmann::json old = nlohmann::json::parse(validate_json(then, summarize(then)).dump());
  Result<ValidateBaseline> b = validation_baseline(old, "old.json", now);
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ(b->then.compared, 4);
  EXPECT_DOUBLE_EQ(b->then.max_abs_error_pct, 10);
  ASSERT_EQ(b->rows.size(), 6u);   // now's five in order, then d
  EXPECT_EQ(b->rows[5].id, "d");
  EXPECT_TRUE(b->rows[5].then);
  EXPECT_FALSE(b->rows[5].now);
  const std::string text = format_baseline(b.value(), summarize(now));
  // c moved +4 (larger), b +3 (smaller); a's 0.01 is under the 0.05 threshold.
  const size_t c = text.find("  c  "), bb = text.find("  b  ");
  ASSERT_NE(c, std::string::npos) << text;
  ASSERT_NE(bb, std::string::npos) << text;
  EXPECT_LT(c, bb) << text;
  EXPECT_NE(text.find("+2.0%  +6.0%  +4.0  larger"), std::string::npos) << text;
  EXPECT_NE(text.find("-5.0%  -2.0%  +3.0  smaller"), std::string::npos) << text;
  EXPECT_EQ(text.find("  a  "), std::string::npos) << text;
  EXPECT_NE(text.find("2 row(s) whose error moved"), std::string::npos) << text;
  EXPECT_NE(text.find("compared now, not in the baseline: e, f"), std::string::npos) << text;
  EXPECT_NE(text.find("compared in the baseline, not now: d"), std::string::npos) << text;
  EXPECT_NE(text.find("compared 4 -> 5; median |error| 6.0% -> 4.0%"), std::string::npos) << text;
  // Against itself nothing moved.
  const nlohmann::json self = nlohmann::json::parse(validate_json(now, summarize(now)).dump());
  Result<ValidateBaseline> same = validation_baseline(self, "now.json", now);
  ASSERT_TRUE(same.ok());
  EXPECT_NE(format_baseline(same.value(), summarize(now)).find("no row's error moved"), std::string::npos);
}

TEST(ValidateBaseline, NotAValidateReportIsAnError) {
  const std::vector<ValidateRow> now = {vrow("a", 1)};
  EXPECT_FALSE(validation_baseline(nlohmann::json::parse("[1]"), "x.json", now).ok());
  EXPECT_FALSE(validation_baseline(nlohmann::json::parse("{\"rows\": {}, \"summary\": {}}"), "x.json", now).ok());
  Result<ValidateBaseline> r = validation_baseline(
      nlohmann::json::parse("{\"rows\": [{\"id\": 3}], \"summary\": {\"compared\": 1, \"median_abs_error_pct\": \"x\"}}"),
      "x.json", now);
  ASSERT_FALSE(r.ok());
  const std::string t = r.status().to_string();
  for (const char* want : {"x.json: /summary/median_abs_error_pct = \"x\"", "x.json: /summary/mean_abs_error_pct",
                           "x.json: /rows/0 = {\"id\":3}"})
    EXPECT_NE(t.find(want), std::string::npos) << want << "\n" << t;
}

}  // namespace
}  // namespace trainsim
