// File: reports/validate_run.h
// `trainsim validate`: replays every row of a published-runs file (schema in
// ../shared/validation/README.md) and compares the prediction with the most direct measured
// figure the row has, in this order: iteration_time_s, tokens_per_s_per_gpu, tflops_per_gpu
// (model or hardware FLOPs as the row's tflops_definition says; null = model), mfu_pct, hfu_pct.
// Rows without a "model" section (calibration anchors) are not runs and are ignored, except
// scenario rows (scenarios/published_run.h: a scenario file and --set values, read relative to
// the directory of `path`), which scenarios/crosschecks.jsonl uses.
// Thread-safety: reentrant.
#pragma once
#include <string>
#include <vector>

#include "reports/validate_report.h"
#include "sim/status.h"

namespace trainsim {

struct ValidateOptions {
  bool fast = true;   // collapse identical DP/TP replicas (same step time as the full mode)
  // A calibration database (trainsim calibrate import): rows whose GPU it has measurements of
  // are priced from it (their defaults list says so); the other rows keep the embedded default.
  std::string calibration;
  std::string prefer_source;   // with calibration: costs.prefer_source of every priced row
  // Row ids whose whole prediction report (what `trainsim run` prints for the scenario the row
  // becomes) is kept in ValidateRow::explain. An id that names no row is an error.
  std::vector<std::string> explain;
};

Result<std::vector<ValidateRow>> run_validation(const std::string& path, const ValidateOptions& opts);

}  // namespace trainsim
