// File: reports/accuracy_context.h
// How sure is a prediction? `trainsim run SCENARIO --accuracy RUNS.jsonl` replays every
// published run of RUNS.jsonl as `trainsim validate` does (same code, same costs), ranks the
// compared rows by how much they resemble the scenario (reports/run_features.h), and reports
// the nearest k with their errors and the range those errors span. The scenario's own
// prediction is not changed: the rows say how far trainsim has been on runs of this kind, not
// how to correct it.
//
//   auto rows = run_validation("../shared/validation/published_runs.jsonl", vo);
//   AccuracyContext ac = accuracy_context(features_of(scenario), rows.value(), 5, path);
//   std::fputs(format_accuracy_context(ac).c_str(), stdout);
//
// Determinism: rows are ordered by distance, then by id, then by their order in the file.
// Thread-safety: pure functions.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reports/run_features.h"
#include "reports/validate_report.h"

namespace trainsim {

struct NearRun {
  ValidateRow row;            // ok == true, has_features == true
  Resemblance resemblance;    // against the scenario
};

struct AccuracyContext {
  std::string runs;           // the file the rows came from
  RunFeatures scenario;       // the traits of the scenario
  int rows = 0;               // runs in the file (rows with a model section)
  int compared = 0;           // of them, compared (ValidateRow::ok)
  std::vector<NearRun> nearest;   // at most k, nearest first
  // Over `nearest` (0 when empty): the signed error range and the median |error|.
  double min_error_pct = 0, max_error_pct = 0, median_abs_error_pct = 0;
};

// REQUIRES: k >= 1. Rows that were not compared are left out (they count in `rows` only).
AccuracyContext accuracy_context(const RunFeatures& scenario, const std::vector<ValidateRow>& rows,
                                 int k, const std::string& runs);

// A few lines for the end of `trainsim run`'s report: a header naming the file, one line per
// near run (id, its traits, the traits that differ, metric, measured, predicted, error), and the
// error range with a reminder that the prediction above is not corrected.
std::string format_accuracy_context(const AccuracyContext& ac);

// {"runs", "scenario" (describe_run), "rows", "compared", "nearest": [{"id", "group", "run", "differs": [...], "distance",
// "metric", "measured", "predicted", "error_pct"}], "min_error_pct", "max_error_pct",
// "median_abs_error_pct"}; the errors are null when `nearest` is empty.
nlohmann::ordered_json accuracy_context_json(const AccuracyContext& ac);

}  // namespace trainsim
