#include "calibrate/fit.h"

#include <Eigen/Dense>
#include <cmath>
#include <string>

namespace trainsim {

Result<AlphaBetaFit> fit_ring_allreduce(const std::vector<std::pair<double, double>>& pts, int p) {
  if (pts.size() < 2) return Status::error("alpha-beta fit: needs at least 2 points, got " + std::to_string(pts.size()));
  if (p < 2) return Status::error("alpha-beta fit: needs a group of at least 2 ranks, got " + std::to_string(p));
  const double steps = 2.0 * (p - 1);
  const double factor = steps / p;
  Eigen::MatrixXd a(pts.size(), 2);
  Eigen::VectorXd y(pts.size());
  std::vector<double> t(pts.size());
  for (size_t i = 0; i < pts.size(); ++i) {
    const auto [bytes, busbw] = pts[i];
    if (!(bytes > 0) || !(busbw > 0))
      return Status::error("alpha-beta fit: point " + std::to_string(i) + " has a non-positive size or bandwidth");
    t[i] = factor * bytes / (busbw * 1e9);   // seconds
    const double w = 1.0 / t[i];
    a(i, 0) = steps * w;                     // unknown: alpha (s)
    a(i, 1) = factor * bytes * w;            // unknown: 1/B (s per byte)
    y(i) = 1.0;                              // t[i] * w
  }
  const Eigen::Vector2d x = a.colPivHouseholderQr().solve(y);
  if (!(x(0) >= 0) || !(x(1) > 0))
    return Status::error("alpha-beta fit: the points give alpha=" + std::to_string(x(0)) + " s, 1/B=" +
                         std::to_string(x(1)) + " s/B; no ring all-reduce explains them");
  AlphaBetaFit f;
  f.alpha = Time::from_seconds(x(0));
  f.bus_bw = Bandwidth::bytes_per_s(1.0 / x(1));
  double ss = 0;
  for (size_t i = 0; i < pts.size(); ++i) {
    const double fitted = steps * x(0) + factor * pts[i].first * x(1);
    ss += std::pow((fitted - t[i]) / t[i], 2);
  }
  f.rms_rel_residual = std::sqrt(ss / pts.size());
  return f;
}

}  // namespace trainsim
