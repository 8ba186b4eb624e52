// File: calibrate/fit.h
// Least-squares fits of cost curves to measurements (Eigen). Used by the embedded default to
// turn published nccl-tests curves into alpha-beta parameters, and by calibration (issue 5).
// Thread-safety: pure functions.
#pragma once
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

// Fits a ring all-reduce over p ranks, T(S) = 2(p-1)*alpha + 2(p-1)/p * S / B, to nccl-tests
// points (S in bytes, busbw in GB/s; nccl-tests defines busbw = 2(p-1)/p * S / T). Rows are
// weighted by 1/T, so every point counts by its relative error. Error: fewer than 2 points, a
// non-positive value, or a fit with alpha < 0 or B <= 0 (data that no ring explains).
Result<AlphaBetaFit> fit_ring_allreduce(const std::vector<std::pair<double, double>>& size_busbw, int p);

}  // namespace trainsim
