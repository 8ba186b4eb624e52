#include "sim/units.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/text.h"

namespace trainsim {

Time Time::from_seconds(double s) {
  SIM_CHECK(s >= 0, "Time::from_seconds: negative or NaN: %g s", s);
  // Beyond the range (a cost of over ~104 days from extreme but valid input) it saturates at
  // kSaturated; bind_costs refuses plans whose step could reach it (an error, not a crash).
  if (!(s < kSaturatedSeconds)) return Time{static_cast<int64_t>(kSaturatedSeconds * 1e12)};
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

namespace {

bool parse_number_prefix(std::string_view text, double* num, std::string* number_text,
                         std::string* unit) {
  std::string t = trim(text);
  size_t i = 0;
  while (i < t.size() && (std::isdigit(static_cast<unsigned char>(t[i])) || t[i] == '.')) ++i;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E') && i + 1 < t.size() &&
      (std::isdigit(static_cast<unsigned char>(t[i + 1])) || t[i + 1] == '-' || t[i + 1] == '+')) {
    size_t j = i + 1;
    if (t[j] == '-' || t[j] == '+') ++j;
    if (j < t.size() && std::isdigit(static_cast<unsigned char>(t[j]))) {
      while (j < t.size() && std::isdigit(static_cast<unsigned char>(t[j]))) ++j;
      i = j;
    }
  }
  *number_text = t.substr(0, i);
  if (number_text->empty() || number_text->find_first_of("0123456789") == std::string::npos)
    return false;
  char* end = nullptr;
  *num = std::strtod(number_text->c_str(), &end);
  if (end != number_text->c_str() + number_text->size() || !std::isfinite(*num)) return false;
  *unit = trim(std::string_view(t).substr(i));
  return true;
}

using UnitTable = std::vector<std::pair<std::string, double>>;

// The shared front of the unit parsers: NUMBER UNIT with UNIT in `units` (multiplier to the base
// unit). `missing` is the "write ..." advice for a bare number (%s = the number as written);
// nullptr: a bare number is fine, its unit "" looked up in `units` like any other.
bool parse_quantity(std::string_view text, const UnitTable& units, const std::string& hint,
                    const char* negative, const char* missing, const char* unknown_suffix, double* value,
                    std::string* why) {
  const std::string t = trim(text);
  if (!t.empty() && t[0] == '-') {
    *why = std::string(negative) + "; " + hint;
    return false;
  }
  double num = 0;
  std::string ntext, unit;
  if (!parse_number_prefix(t, &num, &ntext, &unit)) {
    *why = "expected NUMBER UNIT; " + hint;
    return false;
  }
  if (unit.empty() && missing) {
    char buf[256];
    std::snprintf(buf, sizeof buf, missing, ntext.c_str(), ntext.c_str());
    *why = std::string("missing unit; ") + buf;
    return false;
  }
  for (const auto& [u, m] : units)
    if (unit == u) {
      *value = num * m;
      return true;
    }
  *why = "unknown unit \"" + unit + "\"; " + hint + unknown_suffix;
  return false;
}

}  // namespace

bool parse_bandwidth(std::string_view text, Bandwidth* out, std::string* why) {
  // Bytes per second per unit (bit units divided by 8).
  static const UnitTable kUnits = {
      {"bps", 1 / 8.0},   {"Kbps", 1e3 / 8},   {"kbps", 1e3 / 8},   {"Mbps", 1e6 / 8},  {"Gbps", 1e9 / 8},
      {"Tbps", 1e12 / 8}, {"b/s", 1 / 8.0},    {"Kb/s", 1e3 / 8},   {"kb/s", 1e3 / 8},  {"Mb/s", 1e6 / 8},
      {"Gb/s", 1e9 / 8},  {"Tb/s", 1e12 / 8},  {"Gbit/s", 1e9 / 8}, {"Mbit/s", 1e6 / 8}, {"Tbit/s", 1e12 / 8},
      {"B/s", 1},         {"KB/s", 1e3},       {"kB/s", 1e3},       {"MB/s", 1e6},      {"GB/s", 1e9},
      {"TB/s", 1e12},     {"Bps", 1},          {"KBps", 1e3},       {"MBps", 1e6},      {"GBps", 1e9},
      {"TBps", 1e12},     {"KiB/s", 1024.0},   {"MiB/s", 1048576.0}, {"GiB/s", 1073741824.0},
      {"TiB/s", 1099511627776.0}};
  const std::string hint = "write e.g. \"400Gbps\" (bits/s) or \"50GB/s\" (bytes/s)";
  double bps = 0;
  if (!parse_quantity(text, kUnits, hint, "must be positive", "write \"%sGbps\" (bits/s) or \"%sGB/s\" (bytes/s)",
                      " (b = bits, B = bytes)", &bps, why))
    return false;
  if (!(bps > 0) || !std::isfinite(bps) || bps > 1e18) {
    *why = "must be a positive, finite bandwidth; " + hint;
    return false;
  }
  // Below a gigabit a link is not a training cluster's, and the times it gives leave the
  // simulator's range (a step of over 106 days overflows its picoseconds).
  if (bps < 1e9 / 8) {
    *why = "below 1Gbps (125MB/s), the least this simulator accepts for a link; " + hint;
    return false;
  }
  *out = Bandwidth::bytes_per_s(bps);
  return true;
}

bool parse_size(std::string_view text, Bytes* out, std::string* why) {
  static const UnitTable kUnits = {
      {"B", 1},          {"KB", 1e3},           {"kB", 1e3},           {"MB", 1e6},
      {"GB", 1e9},       {"TB", 1e12},          {"KiB", 1024.0},       {"MiB", 1048576.0},
      {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
  const std::string hint = "write e.g. \"40MiB\" (2^20 bytes) or \"40MB\" (10^6 bytes)";
  double bytes = 0;
  if (!parse_quantity(text, kUnits, hint, "must not be negative",
                      "write \"%sMiB\" (2^20 bytes) or \"%sMB\" (10^6 bytes)", "", &bytes, why))
    return false;
  if (!std::isfinite(bytes) || bytes > 4.0e18) {
    *why = "too large; " + hint;
    return false;
  }
  *out = Bytes(static_cast<int64_t>(std::llround(bytes)));
  return true;
}

bool parse_count(std::string_view text, int64_t* out, std::string* why) {
  static const UnitTable kSuffixes = {{"", 1}, {"K", 1e3}, {"k", 1e3}, {"M", 1e6}, {"B", 1e9}, {"T", 1e12}};
  const std::string hint = "write e.g. \"300B\" (3 x 10^11), \"15T\" (1.5 x 10^13), \"2.5M\" or a number such as 1e12";
  double n = 0;
  if (!parse_quantity(text, kSuffixes, hint, "must be at least 1", nullptr,
                      "; accepted suffixes: K (10^3), M (10^6), B (10^9), T (10^12)", &n, why))
    return false;
  const double v = std::round(n);
  if (!(v >= 1)) {
    *why = "must be at least 1; " + hint;
    return false;
  }
  if (!(v <= 1e18)) {
    *why = "too large (at most 10^18); " + hint;
    return false;
  }
  *out = static_cast<int64_t>(v);
  return true;
}

bool parse_duration(std::string_view text, double* seconds, std::string* why) {
  static const UnitTable kUnits = {{"ms", 1e-3}, {"s", 1}, {"min", 60}, {"h", 3600}};
  const std::string hint = "write e.g. \"30s\", \"5min\" or \"2h\" (ms, s, min, h)";
  double v = 0;
  if (!parse_quantity(text, kUnits, hint, "must not be negative", "write \"%ss\" (seconds) or \"%smin\"", "", &v,
                      why))
    return false;
  if (!(v <= 1e7)) {
    *why = "too long (at most 10^7 s, 115 days); " + hint;
    return false;
  }
  *seconds = v;
  return true;
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
