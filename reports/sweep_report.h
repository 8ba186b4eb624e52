// File: reports/sweep_report.h
// The text table and the JSON of `trainsim sweep` (scenarios/sweep.h): a row per point, best
// first (sweep_ranking), with step time, throughput, MFU, where the time went on the critical
// rank (compute, exposed communication, bubble), peak memory and a verdict; then the best point
// that fits and where the costs came from. Byte-for-byte stable for the same result.
// Thread-safety: reentrant.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "scenarios/sweep.h"

namespace trainsim {

// top > 0: only the first `top` rows of the table, then a line saying how many more there are
// (the summary lines still count every point).
std::string format_sweep(const SweepResult& r, size_t top = 0);

// {"scenario", "mode", "rank_by", "axes": [{"key", "values"}], "overrides", "notes", "best": index|null,
//  "points": [{"index", "rank", "values": {key: value} (tied keys each apart), "status": "ok"|"oom"|"invalid", "error",
//  "dp", "step_s", "tokens_per_s", "tokens_per_s_per_gpu", "mfu", "hfu", "compute_s", "exposed_comm_s",
//  "bubble_s", "peak_memory_gib", "peak_rank", "capacity_gib", "costs", "fingerprint"}]}
// in product order ("rank" = place in the table, 1 = best); figures are null for invalid points.
nlohmann::ordered_json sweep_json(const SweepResult& r);

}  // namespace trainsim
