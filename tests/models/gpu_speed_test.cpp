// models/gpu_speed.h: per-GPU speeds drawn for the "gpu_speed" what-if.
#include "models/gpu_speed.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace trainsim {
namespace {

TEST(GpuSpeed, DrawsAreSeededTruncatedAndSpreadAsAsked) {
  GpuSpeedSpec spec;
  EXPECT_EQ(draw_gpu_speeds(spec, 5), std::vector<double>(5, 1.0)) << "no section: every GPU at 1";
  spec.present = true;
  spec.cv = 0.03;
  const int n = 200'000;
  int outliers = -1;
  const std::vector<double> v = draw_gpu_speeds(spec, n, &outliers);
  ASSERT_EQ(v.size(), static_cast<size_t>(n));
  EXPECT_EQ(outliers, 0);
  double sum = 0, sq = 0;
  for (double x : v) {
    sum += x;
    sq += x * x;
    EXPECT_GE(x, 1 - 3 * 0.03 - 1e-12);
    EXPECT_LE(x, 1 + 3 * 0.03 + 1e-12);
  }
  const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
  EXPECT_NEAR(mean, 1.0, 5e-4);   // the standard error is 6.7e-5
  EXPECT_NEAR(sd, 0.03 * 0.9866, 0.03 * 0.02);   // a normal truncated at 3 sd keeps 98.7% of its sd
  EXPECT_EQ(draw_gpu_speeds(spec, n), v) << "the same seed, the same speeds";
  // A GPU's speed does not depend on how many GPUs the job has.
  const std::vector<double> head = draw_gpu_speeds(spec, 100);
  EXPECT_TRUE(std::equal(head.begin(), head.end(), v.begin()));
  spec.seed = 2;
  EXPECT_NE(draw_gpu_speeds(spec, 100), head);

  // Outliers: about slow_share of the GPUs, at slow_speed; cv 0 puts the others at 1.
  spec.cv = 0;
  spec.slow_share = 0.01;
  spec.slow_speed = 0.67;
  const std::vector<double> w = draw_gpu_speeds(spec, n, &outliers);
  const auto slow = std::count(w.begin(), w.end(), 0.67);
  EXPECT_EQ(slow, outliers);
  EXPECT_NEAR(outliers, 2000, 250);   // binomial sd 44.5
  EXPECT_EQ(std::count(w.begin(), w.end(), 1.0), n - slow);
}

// Screening (spare_share): the job's GPUs are the candidates (the first gpus + spares draws, as
// a job of that many GPUs without spares would get them) less the `spares` slowest, in order.
TEST(GpuSpeed, SparesScreenOutTheSlowestCandidates) {
  GpuSpeedSpec spec;
  spec.present = true;
  spec.cv = 0.02;
  spec.slow_share = 0.01;
  spec.slow_speed = 0.6;
  const int n = 10'000;
  EXPECT_EQ(spare_gpus(spec, n), 0);
  const std::vector<double> plain = draw_gpu_speeds(spec, n);
  spec.spare_share = 0.02;
  const int spares = spare_gpus(spec, n);
  EXPECT_EQ(spares, 200);
  int outliers = -1, drawn_outliers = -1;
  const std::vector<double> kept = draw_gpu_speeds(spec, n, &outliers);
  ASSERT_EQ(kept.size(), static_cast<size_t>(n));
  GpuSpeedSpec all = spec;
  all.spare_share = 0;
  const std::vector<double> candidates = draw_gpu_speeds(all, n + spares, &drawn_outliers);
  EXPECT_TRUE(std::equal(plain.begin(), plain.end(), candidates.begin())) << "spares are drawn after the job's GPUs";
  // The oracle: drop the `spares` slowest candidates (of equal speeds the later ones).
  std::vector<size_t> idx(candidates.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return candidates[a] > candidates[b]; });
  std::vector<bool> out(candidates.size(), false);
  for (size_t k = n; k < idx.size(); ++k) out[idx[k]] = true;
  std::vector<double> want;
  for (size_t i = 0; i < candidates.size(); ++i)
    if (!out[i]) want.push_back(candidates[i]);
  EXPECT_EQ(kept, want);
  // About 100 outliers among 10,200 candidates: all of them are among the 200 screened out.
  EXPECT_GT(drawn_outliers, 50);
  EXPECT_LT(drawn_outliers, 200);
  EXPECT_EQ(outliers, 0);
  EXPECT_GT(*std::min_element(kept.begin(), kept.end()), *std::min_element(plain.begin(), plain.end()));
}

}  // namespace
}  // namespace trainsim
