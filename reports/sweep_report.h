// File: reports/sweep_report.h
// The text table and the JSON of `trainsim sweep` (scenarios/sweep.h): a row per point, best
// first (sweep_ranking), with step time, throughput, MFU, where the time went on the critical
// rank (compute, exposed communication, bubble), peak memory and a verdict; then the best point
// that fits and where the costs came from. Byte-for-byte stable for the same result.
// Thread-safety: reentrant.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reports/results_store.h"
#include "scenarios/sweep.h"

namespace trainsim {

// The landscape of a sweep over parallel.tp and parallel.pp (e.g. `trainsim search`): per
// (tp, pp) pair, the best of its points that fits (the first in sweep_ranking order), whatever
// the other keys. tp and pp ascend; `best` is a point index, or kNoPoint with `tried` telling a
// pair whose points all fail to fit (true) from one no point has (false). Empty (no tp) when the
// axes lack either key or no point is computed.
struct LayoutGrid {
  static constexpr size_t kNoPoint = static_cast<size_t>(-1);
  std::vector<int> tp, pp;
  std::vector<std::vector<size_t>> best;   // [tp][pp]
  std::vector<std::vector<bool>> tried;    // [tp][pp]
};
LayoutGrid layout_grid(const SweepResult& r);

// top > 0: only the first `top` rows of the table, then a line saying how many more there are
// (the summary lines still count every point).
std::string format_sweep(const SweepResult& r, size_t top = 0);

// Points this run does not have (SweepPoint::computed false: another shard's) are left out of
// the table, the JSON and the counts; a shard's table says which share it holds.
// {"scenario", "mode", "rank_by", "axes": [{"key", "values"}], "overrides", "notes", "key" (SweepResult::key),
//  "shard": {"index", "count", "points", "of"} (only when sharded), "best": index|null,
//  "points": [{"index", "rank", "values": {key: value} (tied keys each apart), "status": "ok"|"oom"|"invalid", "error",
//  "dp", "step_s", "tokens_per_s", "tokens_per_s_per_gpu", "mfu", "hfu", "compute_s", "exposed_comm_s",
//  "bubble_s", "peak_memory_gib", "peak_rank", "capacity_gib", "costs", "fingerprint"}]}
// in product order ("rank" = place in the table, 1 = best); figures are null for invalid points.
nlohmann::ordered_json sweep_json(const SweepResult& r);

// The points as CSV (RFC 4180: a header line, then a line per computed point in the table's
// order, best first; "\r\n" line ends; a field with a comma, quote or line break quoted, its
// quotes doubled): rank, index, a column per key of the axes (tied keys each apart), status
// (ok|oom|invalid), dp, step_s, tokens_per_s, tokens_per_s_per_gpu, mfu, hfu, compute_s,
// exposed_comm_s, bubble_s, peak_memory_gib, capacity_gib, peak_rank, speed_cost_s (only when a
// point has a gpu_speed section), train_days (only when a point names training.train_tokens),
// costs, fingerprint, error (its first line). Numbers are written in their shortest form that
// reads back to the same double (train_days "inf": the run never finishes, its failures
// section's interruptions outpacing its checkpoints); a figure a point does not have (a refused
// point's) is empty.
std::string sweep_csv(const SweepResult& r);

// `trainsim search --across` (scenarios/sweep.h AcrossSearch): a row per combination of the
// across values, in product order: its values, how many layouts its search tried and how many
// fit, the best layout that fits (by the searches' rank_by) with its step, tokens/s (per GPU and
// of the job), MFU and peak memory, the time to train and GPU-hours where the scenario names
// training.train_tokens, and where the scenario's own layout ranks in that row's search; then
// the best row (by rank_by, across rows: tokens/s per GPU compares efficiency, tokens/s or the
// time to train speed) and where the costs came from.
std::string format_search_across(const AcrossSearch& a);
// {"command": "search", "across": [{"key", "values"}], "notes", "rows": [{"values": {key: value}
// (tied keys each apart), "status": "ok"|"invalid", "error", "layouts", "fit", "best": point|null,
// "given": {"place", "fits", "step_s"}|null}], "best_row": index|null}; a point is
// sweep_point_record's object plus "gpus", "train_gpu_hours" (null without train_tokens).
nlohmann::ordered_json search_across_json(const AcrossSearch& a);

// The results store's row of point `index` of a sweep of `points` points under `key`
// (SweepResult::key; `scenario` is SweepResult::scenario).
SweepPointRecord sweep_point_row(const std::string& key, size_t index, size_t points, const std::string& scenario,
                                 const SweepPoint& p, const std::string& version, const std::string& machine);

// Records the computed points of `r` in `store` under r.key (one transaction; a point stored
// before under the key is replaced). `version` and `machine` say who computed them.
Status store_sweep(const SweepResult& r, ResultsStore& store, const std::string& version, const std::string& machine);

// Fills the points of `r` that are not computed from the stores' records under r.key (the first
// store that has a point gives it; r is laid out by run_sweep with SweepOptions::compute false).
// When a record was computed by a version other than `version`, r.notes says so. Error (the
// stores named): a point no store holds (the indices missing, and which shard I/N would compute
// them when every present point suggests a shard count), or a record that does not read back.
Status fill_sweep_from_stores(SweepResult* r, const std::vector<const ResultsStore*>& stores, const std::string& version);

}  // namespace trainsim
