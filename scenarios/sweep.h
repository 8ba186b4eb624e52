// File: scenarios/sweep.h
// `trainsim sweep`: one scenario predicted over the cartesian product of a few keys' values, to
// compare parallel strategies (or GPU counts, batch sizes, fabrics) side by side.
//
//   auto axes = parse_sweep_axes({"parallel.tp=1,2,4,8", "parallel.zero=1,3"});
//   auto res = run_sweep("scenarios/llama3_70b_fsdp.json", axes.value(), {});
//   for (const SweepPoint& p : res->points) ...   // in the order of the product, last axis fastest
//
// Every point is the scenario loaded with the base overrides, then the point's "KEY=VALUE" of
// each axis (the same path as `trainsim run --set`), and predicted; a point the loader or the
// simulator refuses keeps its error instead of figures, so one bad combination does not stop
// the sweep. When an axis changes tp, pp, cp or cluster.gpus and nothing sets parallel.dp, dp is
// derived (gpus / (tp*pp*cp)) in every point rather than kept from the file; likewise a file's
// layers_per_stage is dropped when pp, vp or the schedule vary and nothing sets it (the loader
// then splits the layers evenly). Both are listed in SweepResult::notes.
// "KEY=auto" (the only value of a one-key axis) takes the candidates a rule gives from the
// scenario with the --set overrides (not the other axes): parallel.tp powers of two up to
// gpus_per_node dividing the GPUs, heads and kv_heads; parallel.pp divisors of the GPUs up to the
// layers (and 128); parallel.cp powers of two dividing the GPUs and half the sequence;
// parallel.ep divisors of the experts dividing the GPUs; training.micro_batch divisors of the
// global batch up to 16; parallel.zero 0-3; every recompute mode, schedule and attention kernel; both values of
// sequence_parallel, dp_overlap and ep_overlap. The notes list each expansion; SweepResult::axes
// holds the expanded values.
// A joint auto axis, "K1+K2+...=auto" over keys among parallel.tp, pp, vp, cp, ep, zero, recompute,
// sequence_parallel and training.micro_batch (a strategy search: `trainsim search`), takes the
// combinations of each key's candidates that fit together: tp*pp*cp divides the GPUs, dp*micro_batch
// the global batch (micro_batch 1-16), vp > 1 (up to 16) only with pp >= 2, layers divisible by
// pp*vp and micro-batches by pp; sequence_parallel only with tp > 1, zero > 0 only with dp > 1; and
// each combination must load.
// Varying vp ties parallel.schedule to it ("interleaved" where vp > 1, else the file's gpipe or
// 1f1b). The note says how many combinations there are and how many more the loader refused.
// Sharding (SweepOptions::shard / shards): a run predicts every shards-th point; the points go
// to a results store (reports/results_store.h) under SweepResult::key, and a run with
// compute = false lays the same points out for fill_sweep_point to fill from the store, so the
// merged table and JSON are those of the whole sweep run at once (a test checks it byte for byte).
// Thread-safety: reentrant.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scenarios/predict.h"
#include "sim/status.h"

namespace trainsim {

struct SweepAxis {
  std::string key;                  // as written: "parallel.tp", or tied keys "cluster.gpus+training.global_batch"
  std::vector<std::string> values;  // as written: "1", "[8,8]", "interleaved", "64+512" (tied)
  // The keys the axis sets (one, or the tied ones) and, per value, each key's value.
  std::vector<std::string> keys;
  std::vector<std::vector<std::string>> parts;
  // With the value "auto": take the combinations that fit together even for one key (a search of
  // one key); tied keys always do.
  bool joint = false;
  // The point's overrides for value v: "KEY=VALUE" per key.
  std::vector<std::string> overrides(size_t v) const;
};

// "KEY=V1,V2,..." per axis; commas inside [] {} or "" do not split. Tied keys move together
// (weak scaling, say): "K1+K2=A1+B1,A2+B2" sets K1=A1 and K2=B1 in one point, K1=A2 and K2=B2 in
// the next ('+' splits outside brackets and quotes, and only when the axis ties keys). Errors
// (the file "--vary"): no '=', an empty value, a value without one part per tied key, a key given
// twice, a key the scenario format does not have.
Result<std::vector<SweepAxis>> parse_sweep_axes(const std::vector<std::string>& texts);

// What the table is ranked by: step time (shortest first), tokens/s per GPU or tokens/s of the
// whole job (most first). They agree while the GPUs and tokens per step are fixed; when an axis
// changes those (weak scaling, say), per-GPU throughput ranks efficiency and total throughput
// speed.
// kTrain: the time to train training.train_tokens (with the failures section's interruptions
// where it is there), shortest first; points without it after those with it.
enum class SweepRank : uint8_t { kStep, kTokensPerGpu, kTokens, kTrain };
// "step", "tokens-per-gpu", "tokens", "train"; false for anything else.
bool parse_sweep_rank(const std::string& s, SweepRank* out);
const char* to_string(SweepRank r);

struct SweepPoint;

struct SweepOptions {
  bool fast = true;                    // PredictOptions::fast
  SweepRank rank_by = SweepRank::kStep;
  std::vector<std::string> overrides;  // --set, applied to every point before its axis values
  std::string calibration;             // costs.calibration of every point ("" = as the file says)
  // Shards (`--shard I/N`, or the processes of an MPI job): this run predicts the points that
  // sweep_shard_of gives shard `shard`; the rest stay SweepPoint::computed = false.
  // 0 <= shard < shards.
  int shard = 0, shards = 1;
  // false: predict nothing (every point computed = false), only lay the points out and derive
  // the key (to fill them from a results store: fill_sweep_point).
  bool compute = true;
  // Optional, called with SweepResult::key before a point of this shard is predicted: true when
  // it filled the point (from a store, say: `--resume`), which is then not predicted again.
  std::function<bool(const std::string& key, size_t index, SweepPoint* p)> reuse;
  // Optional, called after each point this run predicted (not reused), in product order, with
  // SweepResult::key and the sweep's point count: to record points as they come. An error stops
  // the sweep with it.
  std::function<Status(const std::string& key, size_t index, size_t points, const SweepPoint& p)> on_point;
  // A point fits when its peak memory is at most this share of its GPU's (and the prediction is
  // not OOM): 0.9 leaves a tenth for the allocator's fragmentation and what the memory model does
  // not count. Ranking and verdicts only: the points' figures do not depend on it.
  double memory_limit = 1.0;
  // Threads predicting points at once (each point on one thread; the results are those of one
  // thread, byte for byte). on_point still sees the points in product order.
  int jobs = 1;
};

// At most this many points per sweep (product of the axes' value counts).
constexpr size_t kMaxSweepPoints = 16384;

struct SweepPoint {
  std::vector<std::string> values;  // one per axis (tied keys: "64+512")
  std::vector<std::string> set;     // the axes' "KEY=VALUE" overrides, one per key
  bool computed = false;            // this run has the point (false: another shard's)
  bool ok = false;                  // predicted (false: `error` says why not)
  std::string error;                // the loader's or simulator's message
  int dp = 0;
  double step_s = 0, tokens_per_s = 0, tokens_per_s_per_gpu = 0, mfu = 0, hfu = 0;
  double compute_s = 0;             // compute + recompute + optimizer on the critical rank
  double exposed_comm_s = 0;        // exposed TP/DP/PP/CP/EP comm and offload
  double bubble_s = 0;
  double peak_memory_gib = 0, capacity_gib = 0;
  uint32_t peak_rank = 0;
  bool oom = false;
  std::string costs;                // "embedded default" or the calibration database
  uint64_t fingerprint = 0;
  // The time to train training.train_tokens at this point's step (scenarios/predict.h
  // time_to_train), in seconds; 0: the scenario names no train_tokens.
  double train_s = 0;
  // What the gpu_speed section's spread of GPU speeds costs the step (scenarios/predict.h
  // GpuSpeedReport::cost), in seconds; speed = false: the scenario has no gpu_speed section.
  bool speed = false;
  double speed_cost_s = 0;
};

struct SweepResult {
  std::string scenario;             // file, or "quickstart (embedded)"
  std::string command = "sweep";
  double memory_limit = 1.0;        // SweepOptions::memory_limit    // what the reports call it: "sweep", or "search" (the CLI sets it)
  std::vector<SweepAxis> axes;
  std::vector<std::string> overrides;
  bool fast = true;
  SweepRank rank_by = SweepRank::kStep;
  std::vector<std::string> notes;   // what the sweep changed in the file besides the axes
  std::vector<SweepPoint> points;   // product order, last axis fastest
  int shard = 0, shards = 1;        // SweepOptions' (shards 1: every point)
  // 16 hex digits (FNV-1a 64) of what decides the points' figures: the scenario document as the
  // points load it, the axes' keys and values (after auto), the --set overrides, the mode and
  // the calibration path (not its content). Every shard of one sweep has the same key; a
  // results store keeps points under it.
  std::string key;
  // The point whose every key has the scenario's own value (the file with the --set overrides:
  // the strategy as given), or SIZE_MAX when no point does.
  size_t given = static_cast<size_t>(-1);
};

// path "" = the embedded quickstart. Errors: the file cannot be read or is not JSON, a base
// override is malformed, or the product exceeds kMaxSweepPoints; per-point problems are in the
// points.
Result<SweepResult> run_sweep(const std::string& path, const std::vector<SweepAxis>& axes,
                              const SweepOptions& opts);

// SweepResult::scenario of a sweep of `path` ("" = the embedded quickstart).
std::string sweep_scenario_name(const std::string& path);

// The shard of each of `points` points among `shards`: the points are dealt round robin in a
// fixed pseudo-random order (by a hash of the index), so every shard gets points/shards of
// them, give or take one, and no axis of the product lines up with a shard (dealt in product
// order, 2 shards of a sweep whose last axis is micro-batch 1,2 would get one micro-batch
// each, and the costlier one all of it).
std::vector<int> sweep_shard_of(size_t points, int shards);

// `trainsim search --across KEY=V1,V2,...`: capacity planning. One search (run_sweep over the
// `search` axes, a joint auto axis) per combination of the across axes' values (their product,
// last axis fastest, at most kMaxAcrossRows), each with that combination's "KEY=VALUE" after the
// --set overrides, so each search's candidates follow its own GPU count, GPU type or batch.
// When an across axis sets cluster.gpus and nothing sets parallel.dp, each row derives dp
// (parallel.dp=null) rather than keeping the file's; `notes` says so.
// Errors: an across key that a search axis also sets, an across axis of "auto", too many rows.
// A row whose search fails (a GPU name the catalog lacks, say) keeps its error; the others go on.
constexpr size_t kMaxAcrossRows = 64;
struct AcrossSearch {
  std::vector<SweepAxis> across;
  std::vector<std::string> notes;
  struct Row {
    std::vector<std::string> values;   // one per across axis (tied keys: "64+512")
    std::vector<std::string> set;      // the row's "KEY=VALUE", one per key
    bool ok = false;                   // its search ran (false: `error`)
    std::string error;
    SweepResult result;
  };
  std::vector<Row> rows;
};
Result<AcrossSearch> run_search_across(const std::string& path, const std::vector<SweepAxis>& search,
                                       const std::vector<SweepAxis>& across, const SweepOptions& opts);

// Whether predicted point p fits: not OOM, and its peak at most `limit` of its GPU's memory.
inline bool sweep_fits(const SweepPoint& p, double limit) {
  return p.ok && !p.oom && p.peak_memory_gib <= limit * p.capacity_gib;
}

// Whether predicted point x ranks before y by `by` (the order sweep_ranking gives points of the
// same class: both fit, or both do not).
bool sweep_better(SweepRank by, const SweepPoint& x, const SweepPoint& y);

// Point indices, best first: predicted points that fit in memory (sweep_fits with the result's
// memory_limit) by rank_by, then those that do not fit by rank_by, then the refused ones in product order (ties keep product order). Points
// this run does not have (computed = false) are left out.
std::vector<size_t> sweep_ranking(const SweepResult& r);

// A computed point's figures as JSON, for a results store or another process: everything
// format_sweep and sweep_json read ("set", "ok", "error", "dp", the figures, "oom", "costs",
// "fingerprint"). Doubles are JSON numbers, which read back to the same bits; a non-finite one
// is the string "nan", "inf" or "-inf".
nlohmann::json sweep_point_record(const SweepPoint& p);
// Fills `p` (laid out by run_sweep: values and set) from a record and marks it computed. Error
// (file `source`, JSON path, value): a field missing or of the wrong type, or a record whose
// "set" is not the point's (a record of another point).
Status fill_sweep_point(const nlohmann::json& record, const std::string& source, SweepPoint* p);

}  // namespace trainsim
