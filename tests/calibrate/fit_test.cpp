#include <gtest/gtest.h>

#include <cmath>

#include "calibrate/fit.h"

namespace trainsim {
namespace {

// Points generated from a perfect ring: T = 2(p-1)*alpha + 2(p-1)/p * S/B with alpha = 5 us,
// B = 400 GB/s, p = 8; busbw = 2(p-1)/p * S / T. The fit must give alpha and B back.
TEST(Fit, PerfectAlphaBetaDataGivesAlphaAndBetaBack) {
  const double alpha = 5e-6, bw = 400e9;
  const int p = 8;
  std::vector<std::pair<double, double>> pts;
  for (double s : {1e6, 16e6, 64e6, 256e6, 1e9, 8e9}) {
    const double t = 2.0 * (p - 1) * alpha + 2.0 * (p - 1) / p * s / bw;
    pts.push_back({s, 2.0 * (p - 1) / p * s / t / 1e9});
  }
  auto f = fit_ring_allreduce(pts, p);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_NEAR(f->alpha.seconds(), alpha, 1e-12);
  EXPECT_NEAR(f->bus_bw.Bps(), bw, bw * 1e-9);
  EXPECT_LT(f->rms_rel_residual, 1e-9);
}

// t = 3 us + x / 2e12 (a GEMM at 2 PFLOP/s with 3 us overhead): recovered exactly.
TEST(Fit, AffineRecoversInterceptAndSlope) {
  std::vector<std::pair<double, double>> pts;
  for (double x : {1e9, 1e10, 1e11, 1e12}) pts.push_back({x, 3e-6 + x / 2e12});
  auto f = fit_affine(pts);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_NEAR(f->a, 3e-6, 1e-15);
  EXPECT_NEAR(f->b, 1.0 / 2e12, 1e-24);
  EXPECT_LT(f->rms_rel_residual, 1e-9);
  EXPECT_FALSE(fit_affine({{1, 1}}).ok());
  EXPECT_FALSE(fit_affine({{1, 2}, {2, 1}}).ok());   // time falling with size
}

TEST(Fit, RejectsTooFewOrBadPoints) {
  EXPECT_FALSE(fit_ring_allreduce({{1e6, 10}}, 8).ok());
  EXPECT_FALSE(fit_ring_allreduce({{1e6, 10}, {-1, 5}}, 8).ok());
  EXPECT_FALSE(fit_ring_allreduce({{1e6, 10}, {1e9, 100}}, 1).ok());
  // Bandwidth falling with size: no ring explains it (negative alpha or B).
  EXPECT_FALSE(fit_ring_allreduce({{1e6, 100}, {1e9, 10}}, 8).ok());
}

}  // namespace
}  // namespace trainsim
