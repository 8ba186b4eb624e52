#include "models/gpu_speed.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "models/moe.h"

namespace trainsim {

int spare_gpus(const GpuSpeedSpec& spec, int gpus) {
  return spec.present ? static_cast<int>(std::llround(spec.spare_share * std::max(0, gpus))) : 0;
}

std::vector<double> draw_gpu_speeds(const GpuSpeedSpec& spec, int gpus, int* outliers) {
  if (outliers) *outliers = 0;
  const size_t n = static_cast<size_t>(std::max(0, gpus));
  if (!spec.present) return std::vector<double>(n, 1.0);
  // The candidates, in drawing order: the job's GPUs and the spares.
  const size_t m = n + static_cast<size_t>(spare_gpus(spec, gpus));
  std::vector<double> speed(m);
  std::vector<char> slow(m);
  SplitMix64 g(spec.seed, "gpu_speed");
  for (size_t i = 0; i < m; ++i) {
    const double u = g.uniform();
    const double z = std::clamp(g.normal(), -3.0, 3.0);
    slow[i] = u < spec.slow_share;
    speed[i] = slow[i] ? spec.slow_speed : std::max(0.1, 1.0 + spec.cv * z);
  }
  // Screening: the m - n slowest candidates stay out (of equal speeds, the later drawn); the
  // others keep their drawing order.
  std::vector<char> keep(m, 1);
  if (m > n) {
    std::vector<size_t> order(m);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return speed[a] > speed[b]; });
    for (size_t k = n; k < m; ++k) keep[order[k]] = 0;
  }
  std::vector<double> out;
  out.reserve(n);
  for (size_t i = 0; i < m; ++i) {
    if (!keep[i]) continue;
    out.push_back(speed[i]);
    if (slow[i] && outliers) ++*outliers;
  }
  return out;
}

}  // namespace trainsim
