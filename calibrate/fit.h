// File: calibrate/fit.h
// Least-squares fits of cost curves to measurements (Eigen). Used by the embedded default to
// turn published nccl-tests curves into alpha-beta parameters, and by calibration (issue 5).
// Thread-safety: pure functions.
#pragma once
#include <array>
#include <utility>
#include <vector>

#include "sim/status.h"
#include "sim/units.h"

namespace trainsim {

struct AlphaBetaFit {
  Time alpha;            // latency per algorithm step
  Bandwidth bus_bw;      // asymptotic bus bandwidth (nccl-tests "busbw")
  double rms_rel_residual = 0;  // root mean square of (fitted - measured) / measured time
};

struct AffineFit {
  double a = 0;                 // intercept (seconds)
  double b = 0;                 // slope (seconds per unit of x)
  double rms_rel_residual = 0;
};

// Least squares of t = a*u + b*v over (u, v, t) rows, each weighted by 1/t. The general form of
// the fits below: a collective over several group sizes is u = algorithm steps, v = bytes moved
// per rank, a = alpha, b = 1/bandwidth. Error: fewer than 2 rows, t <= 0, or a < 0 or b <= 0.
struct LinearFit2 {
  double a = 0, b = 0, rms_rel_residual = 0;
};
Result<LinearFit2> fit_two(const std::vector<std::array<double, 3>>& u_v_t);

// Least squares of t = a + b*x over (x, t) points, each row weighted by 1/t (relative error).
// Error: fewer than 2 points, a non-positive t, x < 0, or a fit with a < 0 or b <= 0.
Result<AffineFit> fit_affine(const std::vector<std::pair<double, double>>& x_t);

// Fits a ring all-reduce over p ranks, T(S) = 2(p-1)*alpha + 2(p-1)/p * S / B, to nccl-tests
// points (S in bytes, busbw in GB/s; nccl-tests defines busbw = 2(p-1)/p * S / T). Rows are
// weighted by 1/T, so every point counts by its relative error. Error: fewer than 2 points, a
// non-positive value, or a fit with alpha < 0 or B <= 0 (data that no ring explains).
Result<AlphaBetaFit> fit_ring_allreduce(const std::vector<std::pair<double, double>>& size_busbw, int p);

// The median of v (the mean of the middle two for an even count); REQUIRES: v not empty.
double median(std::vector<double> v);

}  // namespace trainsim
