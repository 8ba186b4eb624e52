#include "calibrate/fit.h"

#include <algorithm>

#include <Eigen/Dense>
#include <cmath>
#include <string>

namespace trainsim {

Result<LinearFit2> fit_two(const std::vector<std::array<double, 3>>& rows) {
  if (rows.size() < 2) return Status::error("fit: needs at least 2 points, got " + std::to_string(rows.size()));
  Eigen::MatrixXd a(rows.size(), 2);
  Eigen::VectorXd y = Eigen::VectorXd::Ones(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto [u, v, t] = rows[i];
    if (!(t > 0) || !(u >= 0) || !(v >= 0)) return Status::error("fit: point " + std::to_string(i) + " is negative or has t <= 0");
    a(i, 0) = u / t;
    a(i, 1) = v / t;
  }
  const Eigen::Vector2d sol = a.colPivHouseholderQr().solve(y);
  if (!(sol(0) >= 0) || !(sol(1) > 0))
    return Status::error("fit: the points give a=" + std::to_string(sol(0)) + ", b=" + std::to_string(sol(1)) +
                         "; no t = a*u + b*v with a >= 0, b > 0 explains them");
  LinearFit2 f;
  f.a = sol(0);
  f.b = sol(1);
  double ss = 0;
  for (const auto& [u, v, t] : rows) ss += std::pow((f.a * u + f.b * v - t) / t, 2);
  f.rms_rel_residual = std::sqrt(ss / rows.size());
  return f;
}

Result<AffineFit> fit_affine(const std::vector<std::pair<double, double>>& pts) {
  if (pts.size() < 2) return Status::error("affine fit: needs at least 2 points, got " + std::to_string(pts.size()));
  Eigen::MatrixXd a(pts.size(), 2);
  Eigen::VectorXd y = Eigen::VectorXd::Ones(pts.size());
  for (size_t i = 0; i < pts.size(); ++i) {
    const auto [x, t] = pts[i];
    if (!(t > 0) || !(x >= 0)) return Status::error("affine fit: point " + std::to_string(i) + " has x < 0 or t <= 0");
    a(i, 0) = 1.0 / t;
    a(i, 1) = x / t;
  }
  const Eigen::Vector2d sol = a.colPivHouseholderQr().solve(y);
  if (!(sol(0) >= 0) || !(sol(1) > 0))
    return Status::error("affine fit: the points give intercept " + std::to_string(sol(0)) + " s and slope " +
                         std::to_string(sol(1)) + "; no t = a + b*x with a >= 0, b > 0 explains them");
  AffineFit f;
  f.a = sol(0);
  f.b = sol(1);
  double ss = 0;
  for (const auto& [x, t] : pts) ss += std::pow((f.a + f.b * x - t) / t, 2);
  f.rms_rel_residual = std::sqrt(ss / pts.size());
  return f;
}

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

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace trainsim
