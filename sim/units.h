// File: sim/units.h
// Units in types (STYLE.md 2). Simulated time is an integer count of picoseconds: exact and
// totally ordered. Byte counts are integers. Rates (bandwidth, FLOP/s) are doubles, and they
// become Time in exactly two functions, transfer_time() and compute_time(), which round up to
// whole picoseconds. Arithmetic that could overflow int64 is checked (SIM_CHECK aborts).
// Thread-safety: value types, no shared state.
#pragma once
#include <compare>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "sim/check.h"

namespace trainsim {

class Time {
 public:
  constexpr Time() = default;
  static constexpr Time ps(int64_t v) { return Time{v}; }
  static constexpr Time ns(int64_t v) { return Time{v * 1'000}; }
  static constexpr Time us(int64_t v) { return Time{v * 1'000'000}; }
  static constexpr Time ms(int64_t v) { return Time{v * 1'000'000'000}; }
  static constexpr Time zero() { return Time{0}; }
  static constexpr Time max() { return Time{std::numeric_limits<int64_t>::max()}; }
  // Rounds up to the next whole picosecond. REQUIRES: 0 <= s; at kSaturatedSeconds and beyond
  // (the int64 range is ~9.2e6 s) it returns kSaturatedSeconds.
  static constexpr double kSaturatedSeconds = 9.0e6;
  static Time from_seconds(double s);

  constexpr int64_t count_ps() const { return ps_; }
  constexpr double seconds() const { return static_cast<double>(ps_) * 1e-12; }
  constexpr double ms_f() const { return static_cast<double>(ps_) * 1e-9; }
  constexpr double us_f() const { return static_cast<double>(ps_) * 1e-6; }

  // Inlined (the replay adds times on every event); the overflow report is out of line.
  friend __attribute__((always_inline)) inline Time operator+(Time a, Time b) {
    int64_t r;
    if (__builtin_add_overflow(a.ps_, b.ps_, &r)) [[unlikely]] overflow("+", a.ps_, b.ps_);
    return Time{r};
  }
  friend Time operator-(Time a, Time b) { return Time{a.ps_ - b.ps_}; }
  Time& operator+=(Time o) { return *this = *this + o; }
  Time& operator-=(Time o) { return *this = *this - o; }
  friend Time operator*(Time a, int64_t k) {
    int64_t r;
    SIM_CHECK(!__builtin_mul_overflow(a.ps_, k, &r), "Time overflow: %lld ps * %lld",
              (long long)a.ps_, (long long)k);
    return Time{r};
  }
  friend constexpr auto operator<=>(Time, Time) = default;
  friend constexpr bool operator==(Time, Time) = default;

 private:
  explicit constexpr Time(int64_t ps) : ps_(ps) {}
  [[noreturn]] __attribute__((noinline, cold)) static void overflow(const char* op, int64_t a, int64_t b) {
    SIM_CHECK(false, "Time overflow: %lld %s %lld ps", (long long)a, op, (long long)b);
    std::abort();
  }
  int64_t ps_ = 0;
};

inline Time max(Time a, Time b) { return a < b ? b : a; }
inline Time min(Time a, Time b) { return a < b ? a : b; }

class Bytes {
 public:
  constexpr Bytes() = default;
  explicit constexpr Bytes(int64_t b) : b_(b) {}
  static constexpr Bytes KiB(int64_t v) { return Bytes{v << 10}; }
  static constexpr Bytes MiB(int64_t v) { return Bytes{v << 20}; }
  static constexpr Bytes GiB(int64_t v) { return Bytes{v << 30}; }
  constexpr int64_t count() const { return b_; }
  constexpr double gib() const { return static_cast<double>(b_) / (1024.0 * 1024.0 * 1024.0); }
  friend constexpr Bytes operator+(Bytes a, Bytes b) { return Bytes{a.b_ + b.b_}; }
  friend constexpr Bytes operator-(Bytes a, Bytes b) { return Bytes{a.b_ - b.b_}; }
  Bytes& operator+=(Bytes o) { b_ += o.b_; return *this; }
  Bytes& operator-=(Bytes o) { b_ -= o.b_; return *this; }
  friend constexpr auto operator<=>(Bytes, Bytes) = default;
  friend constexpr bool operator==(Bytes, Bytes) = default;

 private:
  int64_t b_ = 0;
};

// Bytes per second.
class Bandwidth {
 public:
  constexpr Bandwidth() = default;
  static constexpr Bandwidth bytes_per_s(double v) { return Bandwidth{v}; }
  static constexpr Bandwidth GBps(double v) { return Bandwidth{v * 1e9}; }   // 10^9 B/s
  static constexpr Bandwidth Gbps(double v) { return Bandwidth{v * 1e9 / 8}; }  // 10^9 bit/s
  constexpr double Bps() const { return v_; }
  constexpr double GBps_f() const { return v_ * 1e-9; }
  friend constexpr Bandwidth operator*(Bandwidth a, double k) { return Bandwidth{a.v_ * k}; }
  friend constexpr auto operator<=>(Bandwidth, Bandwidth) = default;

 private:
  explicit constexpr Bandwidth(double v) : v_(v) {}
  double v_ = 0;
};

// A count of floating-point operations (double: 10^21 is a normal step of a large job).
struct Flops {
  double v = 0;
  friend constexpr Flops operator+(Flops a, Flops b) { return Flops{a.v + b.v}; }
  Flops& operator+=(Flops o) { v += o.v; return *this; }
};

// FLOP per second.
class FlopRate {
 public:
  constexpr FlopRate() = default;
  static constexpr FlopRate per_s(double v) { return FlopRate{v}; }
  static constexpr FlopRate TFLOPs(double v) { return FlopRate{v * 1e12}; }
  constexpr double per_s() const { return v_; }
  constexpr double tflops() const { return v_ * 1e-12; }
  friend constexpr FlopRate operator*(FlopRate a, double k) { return FlopRate{a.v_ * k}; }

 private:
  explicit constexpr FlopRate(double v) : v_(v) {}
  double v_ = 0;
};

// The one place where bytes, bandwidth and time meet; rounds up to whole ps.
// REQUIRES: bw > 0.
Time transfer_time(Bytes size, Bandwidth bw);
// The one place where FLOPs, FLOP/s and time meet; rounds up to whole ps. REQUIRES: rate > 0.
Time compute_time(Flops work, FlopRate rate);

// "400Gbps" (bits/s: bps Kbps Mbps Gbps Tbps, b/s forms, Gbit/s) or "50GB/s" (bytes/s: B/s KB/s
// MB/s GB/s TB/s, Bps forms, KiB/s MiB/s GiB/s TiB/s). A bare number, an unknown unit or a value
// <= 0 is refused with `why` saying how to write it. Case matters (b = bits, B = bytes).
bool parse_bandwidth(std::string_view text, Bandwidth* out, std::string* why);
// "40MiB" (2^20) or "40MB" (10^6); B KB kB MB GB TB KiB MiB GiB TiB.
bool parse_size(std::string_view text, Bytes* out, std::string* why);
// A count such as a number of training tokens: "300B" (10^9), "15T" (10^12), "2.5M", "500K"
// (or "k"), or a bare number ("1e12", "4096"); rounded to a whole count, 1 to 10^18. Anything
// else is refused with `why` saying how to write it.
bool parse_count(std::string_view text, int64_t* out, std::string* why);
// A wall-clock duration in seconds: "500ms", "30s", "5min", "2h"; 0 to 10^7 s. A bare number
// is refused (which unit?) with `why` saying how to write it.
bool parse_duration(std::string_view text, double* seconds, std::string* why);

// "1.23 s", "45.6 ms", "7.8 us" with 3 significant digits.
std::string format_time(Time t);
// "12.3 GiB"
std::string format_bytes(Bytes b);

}  // namespace trainsim
