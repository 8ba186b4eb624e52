// File: calibrate/compare.h
// How a calibration database's measurements of one GPU differ from the embedded default cost
// model (`trainsim calibrate compare DB --gpu NAME`): every measured op and collective point is
// priced by the default model for that catalog GPU, and the points are grouped (GEMM by dtype
// and FLOP decade, attention by direction and mask, memory-bound ops by class, collectives by
// kind, group size and span), each group with its measured/default time ratio (median, min,
// max) and the median achieved rate, per measuring source.
// Thread-safety: free functions, no shared state.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include "sim/status.h"

namespace trainsim {

struct CompareGroup {
  std::string group;     // "gemm bf16 1e11..1e12 FLOP", "attention backward causal", "all-reduce 8 GPUs in a node"
  std::string source;    // the measuring source of these points
  int points = 0;
  double median_ratio = 0, min_ratio = 0, max_ratio = 0;   // measured time / default time
  double median_rate = 0;                                  // achieved, in `rate_unit`
  std::string rate_unit; // "TFLOP/s", "GB/s" (HBM traffic), "GB/s bus"
};

struct CompareReport {
  std::string db_path, gpu, device;   // catalog GPU and the measured device's name
  std::vector<CompareGroup> groups;   // ordered: gemm, attention, memory-bound, collectives
  int op_points = 0, coll_points = 0;
};

// Errors: the database cannot be opened, the GPU is not in the catalog, or the database has
// no device of that GPU (the error lists the devices it has).
Result<CompareReport> compare_with_default(const std::string& db_path, const std::string& gpu_name);
std::string format_compare(const CompareReport& r);
nlohmann::json compare_json(const CompareReport& r);

}  // namespace trainsim
