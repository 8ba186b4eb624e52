#include "models/gpu_speed.h"

#include <algorithm>

#include "models/moe.h"

namespace trainsim {

std::vector<double> draw_gpu_speeds(const GpuSpeedSpec& spec, int gpus, int* outliers) {
  std::vector<double> out(static_cast<size_t>(std::max(0, gpus)), 1.0);
  if (outliers) *outliers = 0;
  if (!spec.present) return out;
  SplitMix64 g(spec.seed, "gpu_speed");
  for (double& v : out) {
    const double u = g.uniform();
    const double z = std::clamp(g.normal(), -3.0, 3.0);
    const bool slow = u < spec.slow_share;
    v = slow ? spec.slow_speed : std::max(0.1, 1.0 + spec.cv * z);
    if (slow && outliers) ++*outliers;
  }
  return out;
}

}  // namespace trainsim
