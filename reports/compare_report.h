// File: reports/compare_report.h
// `trainsim compare A [B]`: two predictions side by side, and where the step time and memory
// moved between them. Each side is a scenario (predicted now) or a prediction document that
// `trainsim run --json` wrote earlier (a what-if against a stored baseline, or a regression
// check across trainsim versions or calibration databases).
//
// Both sides go through the same form: a scenario is predicted and turned into
// prediction_json() (reports/json_report.h), a stored document is read as it is, and the
// figures compared are read from that JSON. So a scenario compared against its own stored
// prediction differs in nothing.
//
// The report (format_comparison), each block A | B | B - A:
//   - what each side is (label, scenario name, mode, GPUs) and every setting of the model,
//     training, cluster and strategy sections that differs, as "strategy.tp 8 -> 4";
//   - the costs of each side (embedded default or the calibration database);
//   - step time, tokens/s (total, per GPU), TFLOP/s per GPU (model, hardware), MFU, HFU, all
//     communication and its exposed part on the critical rank, the hidden share;
//   - where the step changed: the critical rank's breakdown buckets, each side's, and their
//     changes, largest first, which sum to the step time's change exactly (integer ps; each
//     side's buckets sum to its step time), with each change's share of the step's;
//   - peak memory per GPU by part, with each side's verdict;
//   - the cost sources (time on each side's critical rank per kind of op, and whether it was
//     measured, fitted or the default), so every figure says where its cost came from;
//   - a verdict line: faster / slower / the same step, and whether the replays' fingerprints
//     match.
// JSON (comparison_json), keys in this order: kind ("compare"), a {label, scenario, file,
// mode, gpus, fingerprint, calibration}, b {same}, differs [{key, a, b}], step_change_ps,
// step_change (fraction of A's step; null when A's step is zero), judged_by (judge(): the
// figure the verdict and --fail-above use), judged_change (its change; null when not finite), figures [{key, a, b,
// change}], breakdown [{key, a_ps, b_ps, change_ps}] (bucket order), memory [{key, a_bytes,
// b_bytes, change_bytes}], oom {a, b}, sources [{what, a_source, a_ps, b_source, b_ps}]
// (a_* / b_* null where a side has no such ops), same_fingerprint.
// Output is a pure function of the two documents: the same inputs give the same bytes.
// Thread-safety: reentrant.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scenarios/predict.h"
#include "sim/replay.h"
#include "sim/status.h"
#include "sim/units.h"

namespace trainsim {

// The figures of one prediction that compare reads, taken from its prediction_json() document.
struct ComparedRun {
  std::string label;      // how the report names the side: the file and any --set
  bool stored = false;    // read from a stored prediction document, not predicted now
  std::string scenario;   // the scenario's name
  std::string file;       // the scenario's file as the document records it
  std::string mode;       // "full" or "fast"
  int64_t gpus = 0;
  int64_t tokens_per_step = 0;
  Time step;
  double tokens_per_s = 0, tokens_per_s_per_gpu = 0, model_tflops = 0, hardware_tflops = 0, mfu = 0, hfu = 0;
  std::array<Time, static_cast<size_t>(Bucket::kCount)> breakdown{};
  Time comm_total, comm_exposed;
  double comm_hidden = 0;
  // Peak memory per GPU: params, grads, optimizer, activations, workspace, total (bytes).
  static constexpr size_t kMemoryTotal = 5;
  std::array<int64_t, 6> memory{};
  int64_t capacity = 0;
  bool oom = false;
  std::string verdict;   // memory_verdict()
  struct Source {
    std::string what, source;
    Time time;
  };
  std::vector<Source> sources;
  std::string calibration;   // "" = the embedded default
  std::string fingerprint;
  // The model, training, cluster and strategy settings, flattened: {"strategy.tp", "8"}, in the
  // document's key order.
  std::vector<std::pair<std::string, std::string>> settings;
};

// Whether a parsed JSON document is a prediction (`trainsim run --json`) rather than a scenario.
bool is_prediction_document(const nlohmann::json& doc);
// The figures of a prediction document. Errors name `file`, the JSON path, the value and what
// `trainsim run --json` writes there; every missing or malformed key at once.
Result<ComparedRun> compared_run_from_json(const nlohmann::json& doc, const std::string& file,
                                           const std::string& label);
// The figures of a prediction made now (through prediction_json(), as a stored one is read).
ComparedRun compared_run_of(const Prediction& p, const std::string& label);

// What `trainsim compare` predicts or reads for one side: a scenario file ("" = the embedded
// quickstart) with `overrides`, predicted with `opts` (and `calibration` when not ""), or a
// prediction document (then overrides and calibration are errors: a stored prediction cannot
// be predicted again).
struct CompareSideOptions {
  PredictOptions predict;
  std::string calibration;
};
Result<ComparedRun> load_compared_run(const std::string& path, const std::vector<std::string>& overrides,
                                      const CompareSideOptions& opts);

struct RunComparison {
  ComparedRun a, b;
  struct Differ {
    std::string key, a, b;   // "-" where a side lacks the key
  };
  std::vector<Differ> differs;
};
RunComparison compare_runs(ComparedRun a, ComparedRun b);

// B's step relative to A's: (b - a) / a; 0 when both are zero, +inf when only A's is.
double step_change(const RunComparison& c);

// What the verdict and --fail-above judge: the step time where both sides run the same GPUs
// and tokens per step; tokens/s where only the tokens per step differ (a step of another size
// is not slower for being longer); tokens/s per GPU where the GPU counts differ.
struct CompareJudgement {
  const char* key;     // "step_time", "tokens_per_s" or "tokens_per_s_per_gpu"
  const char* label;   // "step", "tokens/s", "tokens/s per GPU"
  double a = 0, b = 0; // the judged figure on each side (the step in seconds)
  double change = 0;   // B relative to A: (b - a) / a (+inf when only A's is 0)
  bool better = false; // B is better than A (a shorter step, more tokens/s)
  std::string why;     // "" for the step; else why the step time alone does not compare
};
CompareJudgement judge(const RunComparison& c);

std::string format_comparison(const RunComparison& c);
nlohmann::ordered_json comparison_json(const RunComparison& c);

}  // namespace trainsim
