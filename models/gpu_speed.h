// File: models/gpu_speed.h
// GPUs of one SKU do not run at one speed: manufacturing variability and power management make
// identical parts differ (Sinha et al., "Not All GPUs Are Created Equal", SC'22, arXiv
// 2208.11035v3: 8% average performance variation, up to 22%, across the GPUs of five HPC
// clusters, outliers up to 1.5x slower than the median GPU). Synchronous training waits for the
// slowest member at every collective, so the spread costs more the more GPUs a job has. The
// scenario's "gpu_speed" section is a what-if: each GPU's compute runs at a speed drawn per GPU
// (1 = the rate the costs give).
//   - With probability slow_share the GPU is an outlier at slow_speed;
//   - else its speed is 1 + cv * z, z standard normal truncated to [-3, 3].
// Screening (spare_share > 0): round(spare_share x gpus) more GPUs are drawn and the slowest that
// many stay out of the job (a burn-in that sets aside the slowest parts, or spare nodes swapped
// in for stragglers); the job's GPUs are the rest, in drawing order.
// Randomness: one SplitMix64 stream (seed, "gpu_speed") (models/moe.h), drawn in rank order
// (a uniform, then a normal, per GPU), so a GPU's speed does not depend on the parallel layout.
// Thread-safety: pure functions.
#pragma once
#include <cstdint>
#include <vector>

namespace trainsim {

struct GpuSpeedSpec {
  bool present = false;     // the section is there (otherwise every GPU at speed 1)
  double cv = 0;            // standard deviation of the speed, as a fraction of 1 (0 to 0.3)
  double slow_share = 0;    // share of GPUs that are outliers (0 to 1)
  double slow_speed = 1;    // an outlier's speed (0.05 to 1)
  double spare_share = 0;   // spares screened, as a share of the job's GPUs (0 to 1)
  uint64_t seed = 1;
};

// The GPUs screened out: round(spare_share x gpus) (0 without the section).
int spare_gpus(const GpuSpeedSpec& spec, int gpus);
// One speed per GPU of the job, index = global rank; every value in [max(0.1, 1 - 3 cv),
// 1 + 3 cv] or slow_speed. *outliers (if given): how many of the job's GPUs are outliers.
std::vector<double> draw_gpu_speeds(const GpuSpeedSpec& spec, int gpus, int* outliers = nullptr);

}  // namespace trainsim
