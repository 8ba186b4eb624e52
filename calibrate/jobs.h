// File: calibrate/jobs.h
// What to measure (calibrate/FORMAT.md section 1): from the plans of scenarios, exactly the
// distinct GEMM shapes, attention shapes, memory-bound ops and collective points they run;
// or a standard sweep of a GPU type (the GEMM shapes of the catalog models, messages of
// 1 KiB..4 GiB). The CUDA program `trainsim_calibrator` reads the job list.
// Thread-safety: pure functions.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/plan.h"
#include "sim/status.h"

namespace trainsim {

struct JobList {
  int warmup = 10;
  int runs = 50;
  std::vector<nlohmann::ordered_json> ops;          // FORMAT.md op objects, deduplicated
  std::vector<nlohmann::ordered_json> collectives;  // FORMAT.md collective objects, deduplicated
  nlohmann::ordered_json to_json() const;
};

// The job object of one op of a plan (a compute op, collective or p2p), or null for ops
// nothing measures. `group_size` is the collective's group size (p2p: 2).
nlohmann::ordered_json job_for_op(const OpDesc& op, int group_size);

// Adds the distinct ops of a bound plan (collective group sizes from its group tables).
void add_plan_jobs(const Plan& plan, JobList* jobs);

// The standard grid: GEMMs of every catalog model's layer at tp 1/2/4/8 and 2K/4K/8K tokens
// (bf16, plus fp8 when `fp8`), flash attention at seq 2K..32K, memory-bound ops of 1 MiB..4 GiB,
// and every collective kind at 1 KiB..4 GiB (x4 steps) on 2, 4 and 8 GPUs.
JobList sweep_jobs(bool fp8);

}  // namespace trainsim
