#include "sim/units.h"

#include <cmath>
#include <cstdio>

namespace trainsim {

Time Time::from_seconds(double s) {
  SIM_CHECK(s >= 0 && s < 9.2e6, "Time::from_seconds out of range: %g s", s);
  return Time{static_cast<int64_t>(std::ceil(s * 1e12))};
}

Time transfer_time(Bytes size, Bandwidth bw) {
  SIM_CHECK(bw.Bps() > 0, "transfer_time: bandwidth must be > 0, got %g B/s", bw.Bps());
  SIM_CHECK(size.count() >= 0, "transfer_time: negative size %lld", (long long)size.count());
  return Time::from_seconds(static_cast<double>(size.count()) / bw.Bps());
}

Time compute_time(Flops work, FlopRate rate) {
  SIM_CHECK(rate.per_s() > 0, "compute_time: rate must be > 0, got %g", rate.per_s());
  SIM_CHECK(work.v >= 0, "compute_time: negative work %g", work.v);
  return Time::from_seconds(work.v / rate.per_s());
}

std::string format_time(Time t) {
  char buf[64];
  double s = t.seconds();
  if (s >= 1.0) std::snprintf(buf, sizeof buf, "%.3f s", s);
  else if (s >= 1e-3) std::snprintf(buf, sizeof buf, "%.3f ms", s * 1e3);
  else std::snprintf(buf, sizeof buf, "%.3f us", s * 1e6);
  return buf;
}

std::string format_bytes(Bytes b) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f GiB", b.gib());
  return buf;
}

}  // namespace trainsim
