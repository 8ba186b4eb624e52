#include "models/moe.h"

#include <algorithm>
#include <limits>
#include <cmath>
#include <numeric>

#include "sim/check.h"

namespace trainsim {
namespace {

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// A uniform in (0, 1), 53 bits: BTRD takes logs of it and divides by (0.5 - |u - 0.5|).
inline double open_uniform(SplitMix64& g) { return (static_cast<double>(g.next() >> 11) + 0.5) * 0x1.0p-53; }

// fc(k) = ln k! - (k + 1/2) ln(k + 1) + (k + 1) - ln(2 pi)/2, Stirling's series' remainder;
// tabulated below 10 (Boost.Random's values), its series above.
double stirling_fc(int64_t k) {
  static constexpr double kTable[10] = {0.08106146679532726, 0.04134069595540929, 0.02767792568499834,
                                        0.02079067210376509, 0.01664469118982119, 0.01387612882307075,
                                        0.01189670994589177, 0.01041126526197209, 0.009255462182712733,
                                        0.008330563433362871};
  if (k < 10) return kTable[k];
  const double i = 1.0 / static_cast<double>(k + 1), i2 = i * i;
  return (1.0 / 12 - (1.0 / 360 - (1.0 / 1260) * i2) * i2) * i;
}

// Binomial(n, p) for 0 < p <= 1/2, n >= 1: inversion when the mode m = floor((n+1)p) is below 11
// (expected m + 1 steps), else BTRD: Hormann, "The generation of binomial random variates",
// J. Stat. Comput. Simul. 46 (1993), algorithm BTRD, step for step as Boost.Random writes it.
int64_t binomial_half(SplitMix64& g, int64_t n, double p) {
  const double q = 1 - p;
  const int64_t m = static_cast<int64_t>(static_cast<double>(n + 1) * p);
  if (m < 11) {
    // P(0) = q^n, P(x) = P(x-1) * ((n+1)/x - 1) * p/q.
    const double s = p / q, a = static_cast<double>(n + 1) * s;
    double r = std::pow(q, static_cast<double>(n));
    double u = open_uniform(g);
    int64_t x = 0;
    while (u > r && x < n) {
      u -= r;
      ++x;
      const double r1 = (a / static_cast<double>(x) - s) * r;
      // Past the mode the terms fall geometrically; below 2^-52 what is left of u is rounding.
      if (r1 < 0x1p-52 && r1 < r) break;
      r = r1;
    }
    return x;
  }
  const double nd = static_cast<double>(n);
  const double npq = nd * p * q;
  const double spq = std::sqrt(npq);
  const double b = 1.15 + 2.53 * spq;
  const double a = -0.0873 + 0.0248 * b + 0.01 * p;
  const double c = nd * p + 0.5;
  const double v_r = 0.92 - 4.2 / b;
  const double u_rv_r = 0.86 * v_r;
  for (;;) {
    double v = open_uniform(g);
    double u;
    if (v <= u_rv_r) {   // the box: accepted at once (~80% of draws once npq is large)
      u = v / v_r - 0.43;
      return static_cast<int64_t>(std::floor((2 * a / (0.5 - std::fabs(u)) + b) * u + c));
    }
    if (v >= v_r) {
      u = open_uniform(g) - 0.5;
    } else {
      u = v / v_r - 0.93;
      u = (u < 0 ? -0.5 : 0.5) - u;
      v = open_uniform(g) * v_r;
    }
    const double us = 0.5 - std::fabs(u);
    const double kd = std::floor((2 * a / us + b) * u + c);
    if (kd < 0 || kd > nd) continue;
    const int64_t k = static_cast<int64_t>(kd);
    const double alpha = (2.83 + 5.1 / b) * spq;
    const double rr = p / q, nr = (nd + 1) * rr;
    v = v * alpha / (a / (us * us) + b);
    const int64_t km = k > m ? k - m : m - k;
    if (km <= 15) {   // the ratio of the pmf at k to that at the mode, by recursion
      double f = 1;
      if (m < k) {
        for (int64_t i = m + 1; i <= k; ++i) f *= nr / static_cast<double>(i) - rr;
      } else if (m > k) {
        for (int64_t i = k + 1; i <= m; ++i) v *= nr / static_cast<double>(i) - rr;
      }
      if (v <= f) return k;
      continue;
    }
    // Squeeze, then the log pmf ratio by Stirling's series.
    v = std::log(v);
    const double kmd = static_cast<double>(km);
    const double rho = (kmd / npq) * (((kmd / 3 + 0.625) * kmd + 1.0 / 6) / npq + 0.5);
    const double t = -kmd * kmd / (2 * npq);
    if (v < t - rho) return k;
    if (v > t + rho) continue;
    const int64_t nm = n - m + 1;
    const double h = (static_cast<double>(m) + 0.5) * std::log(static_cast<double>(m + 1) / (rr * static_cast<double>(nm))) +
                     stirling_fc(m) + stirling_fc(n - m);
    const int64_t nk = n - k + 1;
    if (v <= h + (nd + 1) * std::log(static_cast<double>(nm) / static_cast<double>(nk)) +
                 (kd + 0.5) * std::log(static_cast<double>(nk) * rr / (kd + 1)) - stirling_fc(k) - stirling_fc(n - k))
      return k;
  }
}

// A seeded permutation of 0..n-1 (Fisher-Yates on our own stream).
std::vector<int> permutation(SplitMix64& g, int n) {
  std::vector<int> p(n);
  std::iota(p.begin(), p.end(), 0);
  for (int i = n - 1; i > 0; --i) std::swap(p[i], p[static_cast<int>(g.next() % static_cast<uint64_t>(i + 1))]);
  return p;
}

// The stream name of a draw (moe_stream_name), "/experts" appended for step 2, written into a
// buffer: no allocation per draw.
class StreamName {
 public:
  StreamName(int layer, int micro, int pod, int slice, bool experts) {
    put("moe/layer");
    put(layer);
    put("/micro");
    put(micro);
    if (pod > 0) {
      put("/pod");
      put(pod);
    }
    if (slice > 0) {
      put("/slice");
      put(slice);
    }
    if (experts) put("/experts");
  }
  std::string_view view() const { return {buf_, len_}; }

 private:
  void put(const char* s) {
    while (*s != '\0') buf_[len_++] = *s++;
  }
  void put(int v) {   // as std::to_string
    char tmp[12];
    int n = 0;
    unsigned u = v < 0 ? 0u - static_cast<unsigned>(v) : static_cast<unsigned>(v);
    do {
      tmp[n++] = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u != 0);
    if (v < 0) buf_[len_++] = '-';
    while (n > 0) buf_[len_++] = tmp[--n];
  }
  char buf_[96];   // 9 + 11 + 6 + 11 + 4 + 11 + 6 + 11 + 8 < 96
  size_t len_ = 0;
};

// Per-expert weights in expert-id order: popularity weights (zipf, histogram) placed by the
// layer's permutation, or 1 each (uniform).
std::vector<double> expert_weights(const MoeRoutingSpec& r, int experts, int layer) {
  std::vector<double> w(experts, 1.0);
  if (r.kind == MoeRouting::kUniform) return w;
  if (r.kind == MoeRouting::kZipf) {
    for (int i = 0; i < experts; ++i) w[i] = 1.0 / std::pow(static_cast<double>(i + 1), r.skew);
  } else if (r.kind == MoeRouting::kHistogram) {
    SIM_CHECK(static_cast<int>(r.histogram.size()) == experts, "histogram has %zu entries for %d experts",
              r.histogram.size(), experts);
    w = r.histogram;
  }
  SplitMix64 place(r.seed, "moe/placement/layer" + std::to_string(layer));
  const std::vector<int> who = permutation(place, experts);   // popularity rank -> expert id
  std::vector<double> by_id(experts);
  for (int i = 0; i < experts; ++i) by_id[who[i]] = w[i];
  return by_id;
}

// A chain over `ids` in order of decreasing weight (ties: lower id): the order, and each
// one's conditional probability weight / (its weight and those after it), 1 for the last.
void chain(std::vector<int> ids, const std::vector<double>& weight, int* order, double* cond) {
  std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) { return weight[a] > weight[b]; });
  const int n = static_cast<int>(ids.size());
  double rest = 0;   // summed from the lightest up: no cancellation
  for (int i = n - 1; i >= 0; --i) {
    rest += weight[ids[i]];
    order[i] = ids[i];
    cond[i] = (i == n - 1 || rest <= 0) ? 1.0 : std::min(1.0, weight[ids[i]] / rest);
  }
}

MoeRouter::Tables layer_tables(const MoeRoutingSpec& r, int experts, int ep, int layer) {
  const std::vector<double> w = expert_weights(r, experts, layer);
  const int local = experts / ep;
  std::vector<double> rank_w(ep, 0);
  for (int e = 0; e < experts; ++e) rank_w[e / local] += w[e];
  MoeRouter::Tables t;
  t.rank_order.resize(ep);
  t.rank_cond.resize(ep);
  std::vector<int> ids(ep);
  std::iota(ids.begin(), ids.end(), 0);
  chain(ids, rank_w, t.rank_order.data(), t.rank_cond.data());
  t.expert_order.resize(experts);
  t.expert_cond.resize(experts);
  ids.resize(local);
  for (int k = 0; k < ep; ++k) {
    std::iota(ids.begin(), ids.end(), k * local);
    chain(ids, w, t.expert_order.data() + k * local, t.expert_cond.data() + k * local);
  }
  return t;
}

// Step 2: each rank's copies over its experts (heaviest first), rank by rank.
void split_over_experts(const MoeRouter::Tables& t, SplitMix64& g, const int64_t* rank_rows, int ep, int local,
                        int64_t* expert_rows) {
  for (int k = 0; k < ep; ++k) {
    int64_t left = rank_rows[k];
    for (int i = k * local; i < (k + 1) * local; ++i) {
      const int64_t x = left == 0 ? 0 : draw_binomial(g, left, t.expert_cond[i]);
      expert_rows[t.expert_order[i]] = x;
      left -= x;
    }
  }
}

// Balanced routing: N/E each, the remainder one each to the first experts.
int64_t balanced_rows(int64_t n, int experts, int e) { return n / experts + (e < n % experts ? 1 : 0); }

// Whether none of `count` ranks sharing `left` copies, the likeliest with probability q, can
// hold more than `most`, but with a chance below 2^-64: union bound of Chernoff's
// P(Bin(L, q) >= t) <= exp(-L KL(t/L || q)), t = most + 1 (models/moe.h).
bool rest_cannot_exceed(int64_t left, int64_t most, double q, int count) {
  if (left <= most) return true;   // for certain
  const double L = static_cast<double>(left), t = static_cast<double>(most) + 1;
  const double mean = L * q, d = t - mean;
  const double need = std::log(static_cast<double>(count)) + 64 * 0.6931471805599453;   // ln(count * 2^64)
  if (d <= 0) return false;
  // L KL <= (t - Lq)^2 / (L q (1-q)) (KL <= chi-square): skip the logs when that falls short.
  if (d * d < need * mean * (1 - q)) return false;
  const double f = t / L;
  const double lkl = L * (f * std::log(f / q) + (f < 1 ? (1 - f) * std::log1p((q - f) / (1 - q)) : 0.0));
  return lkl >= need;
}

}  // namespace

SplitMix64::SplitMix64(uint64_t seed, std::string_view name) : s_(mix64(seed ^ fnv1a(name))) {}

uint64_t SplitMix64::next() {
  s_ += 0x9e3779b97f4a7c15ULL;
  return mix64(s_);
}

double SplitMix64::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

double SplitMix64::normal() {
  if (have_spare_) {
    have_spare_ = false;
    return spare_;
  }
  double u1 = uniform();
  while (u1 <= 0) u1 = uniform();
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double th = 6.283185307179586 * u2;
  spare_ = r * std::sin(th);
  have_spare_ = true;
  return r * std::cos(th);
}

int64_t draw_binomial(SplitMix64& g, int64_t n, double p) {
  if (n <= 0 || p <= 0) return 0;
  if (p >= 1) return n;
  return p <= 0.5 ? binomial_half(g, n, p) : n - binomial_half(g, n, 1 - p);
}

std::string moe_stream_name(int layer, int micro, int pod, int slice) {
  return std::string(StreamName(layer, micro, pod, slice, false).view());
}

namespace {

// The plain draw of models/moe.h, every rank and expert: rank_rows and expert_rows (no capacity).
void draw_plain(const MoeRoutingSpec& r, int experts, int ep, int64_t n, int layer, int micro, int pod, int slice,
                std::vector<int64_t>* rank_rows, std::vector<int64_t>* expert_rows) {
  SIM_CHECK(experts >= 1 && ep >= 1 && experts % ep == 0 && n >= 0, "draw_expert_loads: experts=%d ep=%d n=%lld",
            experts, ep, (long long)n);
  const int local = experts / ep;
  rank_rows->assign(ep, 0);
  expert_rows->assign(experts, 0);
  if (r.kind == MoeRouting::kBalanced) {
    for (int e = 0; e < experts; ++e) {
      (*expert_rows)[e] = balanced_rows(n, experts, e);
      (*rank_rows)[e / local] += (*expert_rows)[e];
    }
    return;
  }
  const MoeRouter::Tables t = layer_tables(r, experts, ep, layer);
  SplitMix64 g(r.seed, moe_stream_name(layer, micro, pod, slice));
  int64_t left = n;
  for (int k = 0; k < ep && left > 0; ++k) {
    const int64_t x = draw_binomial(g, left, t.rank_cond[k]);
    (*rank_rows)[t.rank_order[k]] = x;
    left -= x;
  }
  SplitMix64 ge(r.seed, moe_stream_name(layer, micro, pod, slice) + "/experts");
  split_over_experts(t, ge, rank_rows->data(), ep, local, expert_rows->data());
}

}  // namespace

std::vector<int64_t> draw_expert_loads(const MoeRoutingSpec& r, int experts, int64_t n, int layer, int micro,
                                       int pod, int slice, int ep) {
  std::vector<int64_t> ranks, out;
  draw_plain(r, experts, ep, n, layer, micro, pod, slice, &ranks, &out);
  return out;
}

MoeRouter::MoeRouter(const MoeRoutingSpec& r, int experts, int top_k, int ep, int64_t tokens_per_rank,
                     double capacity_factor, MoeDetail detail)
    : r_(r), experts_(experts), ep_(ep), routed_(static_cast<int64_t>(ep) * tokens_per_rank * top_k),
      capacity_factor_(capacity_factor), detail_(capacity_factor > 0 ? MoeDetail::kExperts : detail) {
  SIM_CHECK(ep >= 1 && experts % ep == 0 && top_k >= 1 && top_k <= experts && tokens_per_rank >= 1,
            "MoeRouter: experts=%d top_k=%d ep=%d tokens=%lld", experts, top_k, ep, (long long)tokens_per_rank);
}

const MoeRouter::Tables& MoeRouter::tables_of(int layer) {
  SIM_CHECK(layer >= 0, "MoeRouter: layer %d", layer);
  if (layer >= static_cast<int>(tables_.size())) tables_.resize(layer + 1);
  Tables& t = tables_[layer];
  if (t.rank_order.empty()) t = layer_tables(r_, experts_, ep_, layer);
  return t;
}

void MoeRouter::draw(int layer, int micro, int pod, MoeDraw* out, int slice) {
  draw_micros(layer, micro, 1, pod, out, slice);
}

void MoeRouter::draw_micros(int layer, int micro0, int count, int pod, MoeDraw* outs, int slice) {
  const int64_t n = routed_;
  const int local = experts_ / ep_;
  const bool ranks = detail_ != MoeDetail::kBusiestRank, experts = detail_ == MoeDetail::kExperts;
  const Tables* t = r_.kind == MoeRouting::kBalanced ? nullptr : &tables_of(layer);
  for (int j = 0; j < count; ++j) {
    MoeDraw& d = outs[j];
    d.routed = n;
    d.dropped = 0;
    d.max_rank_rows = 0;
    if (ranks) d.rank_rows.assign(ep_, 0);
    else d.rank_rows.clear();
    if (experts) d.expert_rows.assign(experts_, 0);
    else d.expert_rows.clear();
  }
  if (t == nullptr) {   // balanced
    for (int j = 0; j < count; ++j) {
      MoeDraw& d = outs[j];
      for (int k = 0; k < ep_; ++k) {
        int64_t sum = 0;
        for (int e = k * local; e < (k + 1) * local; ++e) {
          const int64_t x = balanced_rows(n, experts_, e);
          if (experts) d.expert_rows[e] = x;
          sum += x;
        }
        if (ranks) d.rank_rows[k] = sum;
        d.max_rank_rows = std::max(d.max_rank_rows, sum);
      }
    }
  } else {
    // Up to kLanes draws at once, rank by rank: each draw's ranks form one chain (the copies
    // left feed the next binomial), and independent chains side by side keep the core busy.
    // Each lane has its own stream: the order across lanes changes nothing in any of them.
    constexpr int kLanes = 4;
    const int* order = t->rank_order.data();
    const double* cond = t->rank_cond.data();
    for (int base = 0; base < count; base += kLanes) {
      const int lanes = std::min(kLanes, count - base);
      SplitMix64 g[kLanes] = {SplitMix64(0, ""), SplitMix64(0, ""), SplitMix64(0, ""), SplitMix64(0, "")};
      int64_t left[kLanes], most[kLanes];
      for (int j = 0; j < lanes; ++j) {
        g[j] = SplitMix64(r_.seed, StreamName(layer, micro0 + base + j, pod, slice, false).view());
        left[j] = n;
        most[j] = 0;
      }
      unsigned live = (1u << lanes) - 1;   // lanes still drawing
      for (int k = 0; k < ep_ && live != 0; ++k) {
        for (int j = 0; j < lanes; ++j) {
          if (!(live & (1u << j))) continue;
          const int64_t x = draw_binomial(g[j], left[j], cond[k]);
          if (ranks) outs[base + j].rank_rows[order[k]] = x;
          left[j] -= x;
          most[j] = std::max(most[j], x);
          if (left[j] == 0 || (!ranks && k + 1 < ep_ && rest_cannot_exceed(left[j], most[j], cond[k + 1], ep_ - 1 - k)))
            live &= ~(1u << j);
        }
      }
      for (int j = 0; j < lanes; ++j) outs[base + j].max_rank_rows = most[j];
    }
    if (experts) {   // split_over_experts, kLanes draws side by side
      const int* eorder = t->expert_order.data();
      const double* econd = t->expert_cond.data();
      for (int base = 0; base < count; base += kLanes) {
        const int lanes = std::min(kLanes, count - base);
        SplitMix64 g[kLanes] = {SplitMix64(0, ""), SplitMix64(0, ""), SplitMix64(0, ""), SplitMix64(0, "")};
        for (int j = 0; j < lanes; ++j)
          g[j] = SplitMix64(r_.seed, StreamName(layer, micro0 + base + j, pod, slice, true).view());
        for (int k = 0; k < ep_; ++k) {
          int64_t left[kLanes];
          for (int j = 0; j < lanes; ++j) left[j] = outs[base + j].rank_rows[k];
          for (int i = k * local; i < (k + 1) * local; ++i) {
            for (int j = 0; j < lanes; ++j) {
              const int64_t x = left[j] == 0 ? 0 : draw_binomial(g[j], left[j], econd[i]);
              outs[base + j].expert_rows[eorder[i]] = x;
              left[j] -= x;
            }
          }
        }
      }
    }
  }
  for (int j = 0; j < count; ++j) {
    MoeDraw& d = outs[j];
    if (capacity_factor_ > 0) {   // experts drawn (the constructor sees to it)
      const int64_t cap = static_cast<int64_t>(std::ceil(capacity_factor_ * static_cast<double>(n) / experts_));
      d.max_rank_rows = 0;
      for (int k = 0; k < ep_; ++k) {
        int64_t sum = 0;
        for (int e = k * local; e < (k + 1) * local; ++e) {
          int64_t& x = d.expert_rows[e];
          if (x > cap) {
            d.dropped += x - cap;
            x = cap;
          }
          sum += x;
        }
        d.rank_rows[k] = sum;
        d.max_rank_rows = std::max(d.max_rank_rows, sum);
      }
    }
    d.imbalance = static_cast<double>(d.max_rank_rows) * ep_ / static_cast<double>(d.routed);
  }
}

MoeDraw draw_moe_layer(const MoeRoutingSpec& r, int experts, int top_k, int ep, int64_t tokens_per_rank,
                       double capacity_factor, int layer, int micro, int pod, int slice) {
  SIM_CHECK(ep >= 1 && experts % ep == 0 && top_k >= 1 && top_k <= experts && tokens_per_rank >= 1,
            "draw_moe_layer: experts=%d top_k=%d ep=%d tokens=%lld", experts, top_k, ep,
            (long long)tokens_per_rank);
  MoeDraw d;
  d.routed = static_cast<int64_t>(ep) * tokens_per_rank * top_k;
  draw_plain(r, experts, ep, d.routed, layer, micro, pod, slice, &d.rank_rows, &d.expert_rows);
  if (capacity_factor > 0) {
    const int64_t cap =
        static_cast<int64_t>(std::ceil(capacity_factor * static_cast<double>(d.routed) / experts));
    for (auto& x : d.expert_rows) {
      if (x > cap) {
        d.dropped += x - cap;
        x = cap;
      }
    }
  }
  const int local = experts / ep;
  for (int k = 0; k < ep; ++k) {
    int64_t rows = 0;
    for (int e = k * local; e < (k + 1) * local; ++e) rows += d.expert_rows[e];
    d.rank_rows[k] = rows;
    d.max_rank_rows = std::max(d.max_rank_rows, rows);
  }
  d.imbalance = static_cast<double>(d.max_rank_rows) * ep / static_cast<double>(d.routed);
  return d;
}

namespace {

// Maximum-weight assignment of n rows to n columns (Hungarian algorithm with potentials,
// O(n^3), on costs -w; ties go the same way on every run): returns the column of each row.
std::vector<int> max_weight_assignment(const std::vector<std::vector<int64_t>>& w) {
  const int n = static_cast<int>(w.size());
  const int64_t kInf = std::numeric_limits<int64_t>::max() / 4;
  std::vector<int64_t> u(n + 1, 0), v(n + 1, 0), minv(n + 1);
  std::vector<int> p(n + 1, 0), way(n + 1, 0);   // p[j]: row matched to column j (1-based)
  std::vector<char> used(n + 1);
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    std::fill(minv.begin(), minv.end(), kInf);
    std::fill(used.begin(), used.end(), 0);
    do {
      used[j0] = 1;
      const int i0 = p[j0];
      int64_t delta = kInf;
      int j1 = 0;
      for (int j = 1; j <= n; ++j) {
        if (used[j]) continue;
        const int64_t cur = -w[i0 - 1][j - 1] - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (int j = 0; j <= n; ++j) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<int> col(n, 0);
  for (int j = 1; j <= n; ++j) col[p[j] - 1] = j - 1;
  return col;
}

}  // namespace

void relabel_bins_for_fewest_moves(ExpertPlacement* p, int experts, int ep, int local) {
  // w[b][r]: experts with a copy in bin b whose home is rank r (an expert has at most one copy
  // per bin, so the experts kept home are exactly the sum over the matched pairs).
  std::vector<std::vector<int64_t>> w(ep, std::vector<int64_t>(ep, 0));
  for (int e = 0; e < experts; ++e)
    for (int b : p->ranks[e]) ++w[b][e / local];
  const std::vector<int> rank_of_bin = max_weight_assignment(w);
  for (int e = 0; e < experts; ++e)
    for (int& b : p->ranks[e]) b = rank_of_bin[b];
}

ExpertPlacement place_experts(const std::vector<int64_t>& observed, int ep, int replicas) {
  const int E = static_cast<int>(observed.size());
  SIM_CHECK(ep >= 1 && E % ep == 0 && replicas >= 0, "place_experts: experts=%d ep=%d replicas=%d", E, ep, replicas);
  const int local = E / ep;
  ExpertPlacement stat;
  stat.ranks.resize(E);
  for (int e = 0; e < E; ++e) stat.ranks[e] = {e / local};
  stat.incoming_moves.assign(ep, 0);
  stat.incoming_replicas.assign(ep, 0);
  if (ep == 1) return stat;
  // 1. copies per expert
  std::vector<int> copies(E, 1);
  for (int extra = ep * replicas; extra > 0; --extra) {
    int best = -1;
    for (int e = 0; e < E; ++e) {
      if (copies[e] >= ep) continue;
      // L_e / c_e > L_b / c_b, compared exactly in integers
      if (best < 0 || observed[e] * copies[best] > observed[best] * copies[e]) best = e;
    }
    if (best < 0) break;
    ++copies[best];
  }
  // 2. LPT over the copies
  struct Item { int e, c; };
  std::vector<Item> items;
  for (int e = 0; e < E; ++e)
    for (int c = 0; c < copies[e]; ++c) items.push_back({e, c});
  std::stable_sort(items.begin(), items.end(), [&](const Item& a, const Item& b) {
    const int64_t lhs = observed[a.e] * copies[b.e], rhs = observed[b.e] * copies[a.e];
    if (lhs != rhs) return lhs > rhs;
    return a.e < b.e;
  });
  std::vector<double> load(ep, 0);
  std::vector<int> free_slots(ep, local + replicas);
  ExpertPlacement dyn;
  dyn.is_static = false;
  dyn.ranks.resize(E);
  for (const Item& it : items) {
    const double share = static_cast<double>(observed[it.e]) / copies[it.e];
    int pick = -1;
    for (int r = 0; r < ep; ++r) {
      if (free_slots[r] == 0) continue;
      if (std::find(dyn.ranks[it.e].begin(), dyn.ranks[it.e].end(), r) != dyn.ranks[it.e].end()) continue;
      if (pick < 0 || load[r] < load[pick]) pick = r;
    }
    SIM_CHECK(pick >= 0, "place_experts: no slot for expert %d", it.e);
    dyn.ranks[it.e].push_back(pick);
    load[pick] += share;
    --free_slots[pick];
  }
  // 3. keep the static layout unless the busiest rank gets lighter
  if (max_rank_rows(dyn, observed, ep) >= max_rank_rows(stat, observed, ep)) return stat;
  // 4. which rank holds which LPT bin does not change any rank's load: give the bins to the
  //    ranks so that as many experts as possible keep a copy on their home rank (fewest moves)
  relabel_bins_for_fewest_moves(&dyn, E, ep, local);
  dyn.incoming_moves.assign(ep, 0);
  dyn.incoming_replicas.assign(ep, 0);
  for (int e = 0; e < E; ++e) {
    const int home = e / local;
    const auto& rs = dyn.ranks[e];
    const bool stays = std::find(rs.begin(), rs.end(), home) != rs.end();
    for (size_t i = 0; i < rs.size(); ++i) {
      if (rs[i] == home) continue;
      if (!stays && i == 0) {
        ++dyn.moved;
        ++dyn.incoming_moves[rs[i]];
      } else {
        ++dyn.replicated;
        ++dyn.incoming_replicas[rs[i]];
      }
    }
  }
  return dyn;
}

std::vector<int64_t> rank_rows(const ExpertPlacement& p, const std::vector<int64_t>& loads, int ep) {
  std::vector<int64_t> rows(ep, 0);
  for (size_t e = 0; e < loads.size() && e < p.ranks.size(); ++e) {
    const auto& rs = p.ranks[e];
    const int64_t c = static_cast<int64_t>(rs.size());
    for (int64_t i = 0; i < c; ++i) rows[rs[i]] += loads[e] / c + (i < loads[e] % c ? 1 : 0);
  }
  return rows;
}

int64_t max_rank_rows(const ExpertPlacement& p, const std::vector<int64_t>& loads, int ep) {
  const auto rows = rank_rows(p, loads, ep);
  return rows.empty() ? 0 : *std::max_element(rows.begin(), rows.end());
}

}  // namespace trainsim
