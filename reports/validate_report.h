// File: reports/validate_report.h
// The report of `trainsim validate`: predicted vs measured for published runs
// (../shared/validation/published_runs.jsonl), one row per (run, metric), with the defaults
// each replay had to assume for fields the source did not publish.
//
// error_pct = (predicted - measured) / measured * 100, signed (positive = we over-predict);
// the summary uses its absolute value over the rows with ok == true.
// Text and JSON are deterministic: rows keep the caller's order, numbers use fixed formats.
// Thread-safety: pure functions.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "reports/run_features.h"
#include "sim/status.h"

namespace trainsim {

struct ValidateRow {
  std::string id, metric;                  // run id, metric name ("tflops_per_gpu", "mfu", ...)
  double measured = 0, predicted = 0, error_pct = 0;
  std::vector<std::string> defaults;       // assumptions for unpublished fields, one per item
  bool ok = false;                         // false: skipped (not compared), see reason
  std::string reason;                      // why it was skipped ("" when ok)
  std::string group;                       // the row's source group ("" if it gives none)
  std::string explain;                     // ValidateOptions::explain: format_summary of the prediction
  // The row's published memory (measured.memory_gib, 0 = none) beside the predicted peak of
  // the busiest rank. Shown in the text only, outside the summary and the JSON: a framework's
  // figure is usually its allocator's peak reservation, which the prediction (allocated bytes)
  // does not model.
  double measured_memory_gib = 0, predicted_memory_gib = 0;
  // The traits of the scenario the row became (has_features: the row was read into one), for
  // `trainsim run --accuracy` (reports/accuracy_context.h).
  RunFeatures features;
  bool has_features = false;
};

struct ValidateSummary {
  int compared = 0;                        // rows with ok == true (and a finite error)
  double median_abs_error_pct = 0, mean_abs_error_pct = 0, max_abs_error_pct = 0;
};

// Compact, fixed formatting of a measured/predicted value whatever its scale:
// 1234567 -> "1,234,567"; 137 -> "137"; 44.52 -> "44.52"; 0.4123 -> "0.4123"; non-finite "n/a".
std::string measure_text(double v);

// (predicted - measured) / measured * 100. REQUIRES: measured != 0.
double error_pct(double measured, double predicted);

// Statistics of |error_pct| over the ok rows with a finite error; all zero when none. The median of an even
// count is the mean of the middle two.
ValidateSummary summarize(const std::vector<ValidateRow>& rows);

// summarize() per source group (ValidateRow::group), the groups in order of first appearance.
std::vector<std::pair<std::string, ValidateSummary>> summarize_groups(const std::vector<ValidateRow>& rows);

// A table (id, metric, measured, predicted, error %) of the ok rows, each followed by its
// defaults on one indented line (and, where the row publishes its memory, a line comparing it
// with the predicted peak); then the skipped rows with their reasons; then, where the
// rows name more than one source group, a table of the summary's figures per group (text only:
// the JSON keeps the issue's fields); last the summary line "compared N of M: median |error|
// x%, mean y%, max z%".
// `costs`: where the rows' costs come from, printed above the summary line ("" = nothing).
std::string format_validate(const std::vector<ValidateRow>& rows, const ValidateSummary& s,
                            const std::string& costs = "");

// Exactly: {"rows": [{"id", "metric", "measured", "predicted", "error_pct", "defaults": [...],
// "status": "ok"|"skipped", "reason"}], "summary": {"compared", "median_abs_error_pct",
// "mean_abs_error_pct", "max_abs_error_pct"}}. Non-finite numbers are written as null.
nlohmann::ordered_json validate_json(const std::vector<ValidateRow>& rows,
                                     const ValidateSummary& s);

// The rows as CSV (RFC 4180, "\r\n" line ends, the rows in the caller's order): id, group,
// metric, status (ok|skipped), measured, predicted, error_pct (shortest exact numbers; empty for
// a skipped row's prediction and error), reason, defaults (joined with "; ").
std::string validate_csv(const std::vector<ValidateRow>& rows);

// `trainsim validate RUNS --baseline OLD.json`: how each row's error moved since an earlier
// `validate --json` (a regression check of the accuracy across versions or calibrations). Rows
// are matched by (id, metric); a row counts on a side when its status there is "ok" with a
// finite error.
struct BaselineRow {
  std::string id, metric;
  bool then = false, now = false;     // compared in the baseline / in this run
  double then_error = 0, now_error = 0;
};
struct ValidateBaseline {
  std::string file;
  ValidateSummary then;               // the baseline's own summary, as it recorded it
  std::vector<BaselineRow> rows;      // this run's rows in order, then the baseline's others
};
// Errors (the file named): not a `validate --json` document (rows and summary, with the
// fields compare reads), each bad entry with its JSON path.
Result<ValidateBaseline> validation_baseline(const nlohmann::json& old_doc, const std::string& file,
                                             const std::vector<ValidateRow>& rows);
// The summary then and now, the rows whose signed error moved by at least `min_move` points
// (largest move first, ties in row order), and the rows compared on one side only. Text only:
// the validate JSON keeps the exact shape.
std::string format_baseline(const ValidateBaseline& b, const ValidateSummary& now, double min_move = 0.05);

}  // namespace trainsim
