#include "models/moe.h"

#include <algorithm>
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

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// Binomial(n, p): exact below 1024 trials, else normal approximation rounded and clamped.
int64_t binomial(SplitMix64& g, int64_t n, double p) {
  if (n <= 0 || p <= 0) return 0;
  if (p >= 1) return n;
  if (n < 1024) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; ++i) k += g.uniform() < p ? 1 : 0;
    return k;
  }
  const double mu = static_cast<double>(n) * p;
  const double sd = std::sqrt(mu * (1 - p));
  const double x = std::llround(mu + sd * g.normal());
  return std::clamp<int64_t>(static_cast<int64_t>(x), 0, n);
}

// A seeded permutation of 0..n-1 (Fisher-Yates on our own stream).
std::vector<int> permutation(SplitMix64& g, int n) {
  std::vector<int> p(n);
  std::iota(p.begin(), p.end(), 0);
  for (int i = n - 1; i > 0; --i) std::swap(p[i], p[static_cast<int>(g.next() % static_cast<uint64_t>(i + 1))]);
  return p;
}

}  // namespace

SplitMix64::SplitMix64(uint64_t seed, const std::string& name) : s_(mix64(seed ^ fnv1a(name))) {}

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

std::string moe_stream_name(int layer, int micro, int pod, int slice) {
  return "moe/layer" + std::to_string(layer) + "/micro" + std::to_string(micro) +
         (pod > 0 ? "/pod" + std::to_string(pod) : std::string()) +
         (slice > 0 ? "/slice" + std::to_string(slice) : std::string());
}

std::vector<int64_t> draw_expert_loads(const MoeRoutingSpec& r, int experts, int64_t n, int layer, int micro,
                                       int pod, int slice) {
  SIM_CHECK(experts >= 1 && n >= 0, "draw_expert_loads: experts=%d n=%lld", experts, (long long)n);
  std::vector<int64_t> out(experts, 0);
  if (r.kind == MoeRouting::kBalanced) {
    for (int e = 0; e < experts; ++e) out[e] = n / experts + (e < n % experts ? 1 : 0);
    return out;
  }
  // Probabilities in "popularity order"; which expert id is i-th hottest is permuted per layer.
  std::vector<double> w(experts, 1.0);
  if (r.kind == MoeRouting::kZipf) {
    for (int i = 0; i < experts; ++i) w[i] = 1.0 / std::pow(static_cast<double>(i + 1), r.skew);
  } else if (r.kind == MoeRouting::kHistogram) {
    SIM_CHECK(static_cast<int>(r.histogram.size()) == experts, "histogram has %zu entries for %d experts",
              r.histogram.size(), experts);
    w = r.histogram;
  }
  std::vector<int> who(experts);
  std::iota(who.begin(), who.end(), 0);
  if (r.kind != MoeRouting::kUniform) {
    SplitMix64 place(r.seed, "moe/placement/layer" + std::to_string(layer));
    who = permutation(place, experts);
  }
  SplitMix64 g(r.seed, moe_stream_name(layer, micro, pod, slice));
  double rest = 0;
  for (double x : w) rest += x;
  int64_t left = n;
  for (int i = 0; i < experts; ++i) {
    int64_t k;
    if (i == experts - 1 || rest <= 0) {
      k = left;
    } else {
      k = binomial(g, left, std::min(1.0, w[i] / rest));
    }
    out[who[i]] = k;
    left -= k;
    rest -= w[i];
    if (left == 0) break;
  }
  return out;
}

namespace {

// binomial() with std::llround's rounding done inline (a libm call otherwise): for |x| < 2^52
// the truncation and the remainder x - trunc(x) are exact, and halves round away from zero as
// llround does; the result is then the integer llround returns, as binomial() computes it.
inline int64_t binomial_inline(SplitMix64& g, int64_t n, double p) {
  if (n <= 0 || p <= 0) return 0;
  if (p >= 1) return n;
  if (n < 1024) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; ++i) k += g.uniform() < p ? 1 : 0;
    return k;
  }
  const double mu = static_cast<double>(n) * p;
  const double sd = std::sqrt(mu * (1 - p));
  const double v = mu + sd * g.normal();
  int64_t x;
  if (std::fabs(v) < 0x1p52) {
    x = static_cast<int64_t>(v);   // toward zero
    const double frac = v - static_cast<double>(x);
    // Branch-free: which way a draw rounds is a coin toss that a branch would mispredict.
    x += static_cast<int64_t>(frac >= 0.5) - static_cast<int64_t>(frac <= -0.5);
  } else {
    x = static_cast<int64_t>(static_cast<double>(std::llround(v)));
  }
  return std::clamp<int64_t>(x, 0, n);
}

}  // namespace

MoeRouter::MoeRouter(const MoeRoutingSpec& r, int experts, int top_k, int ep, int64_t tokens_per_rank,
                     double capacity_factor)
    : r_(r), experts_(experts), ep_(ep), routed_(static_cast<int64_t>(ep) * tokens_per_rank * top_k),
      capacity_factor_(capacity_factor) {
  SIM_CHECK(ep >= 1 && experts % ep == 0 && top_k >= 1 && top_k <= experts && tokens_per_rank >= 1,
            "MoeRouter: experts=%d top_k=%d ep=%d tokens=%lld", experts, top_k, ep, (long long)tokens_per_rank);
  if (r.kind == MoeRouting::kBalanced) return;
  // As draw_expert_loads: weights in popularity order, their running remainder, the
  // probability of each sequential binomial.
  std::vector<double> w(experts, 1.0);
  if (r.kind == MoeRouting::kZipf) {
    for (int i = 0; i < experts; ++i) w[i] = 1.0 / std::pow(static_cast<double>(i + 1), r.skew);
  } else if (r.kind == MoeRouting::kHistogram) {
    SIM_CHECK(static_cast<int>(r.histogram.size()) == experts, "histogram has %zu entries for %d experts",
              r.histogram.size(), experts);
    w = r.histogram;
  }
  double rest = 0;
  for (double x : w) rest += x;
  cond_.resize(experts);
  for (int i = 0; i < experts; ++i) {
    // binomial(left, 1) is `left`, what draw_expert_loads takes for the last expert.
    cond_[i] = (i == experts - 1 || rest <= 0) ? 1.0 : std::min(1.0, w[i] / rest);
    rest -= w[i];
  }
}

const std::vector<int>& MoeRouter::order_of(int layer) {
  if (layer >= static_cast<int>(order_.size())) order_.resize(layer + 1);
  std::vector<int>& who = order_[layer];
  if (who.empty()) {
    if (r_.kind == MoeRouting::kUniform) {
      who.resize(experts_);
      std::iota(who.begin(), who.end(), 0);
    } else {
      SplitMix64 place(r_.seed, "moe/placement/layer" + std::to_string(layer));
      who = permutation(place, experts_);
    }
  }
  return who;
}

void MoeRouter::draw(int layer, int micro, int pod, MoeDraw* out, int slice) {
  draw_micros(layer, micro, 1, pod, out, slice);
}

void MoeRouter::draw_micros(int layer, int micro0, int count, int pod, MoeDraw* outs, int slice) {
  const int64_t n = routed_;
  for (int j = 0; j < count; ++j) {
    outs[j].routed = n;
    outs[j].dropped = 0;
    outs[j].max_rank_rows = 0;
    outs[j].expert_rows.assign(experts_, 0);
  }
  if (r_.kind == MoeRouting::kBalanced) {
    for (int j = 0; j < count; ++j)
      for (int e = 0; e < experts_; ++e) outs[j].expert_rows[e] = n / experts_ + (e < n % experts_ ? 1 : 0);
  } else {
    SIM_CHECK(layer >= 0, "MoeRouter: layer %d", layer);
    const int* who = order_of(layer).data();
    const double* cond = cond_.data();
    // Up to kLanes draws at once, expert by expert: each draw's experts form one chain (the
    // copies left feed the next binomial, through a square root), and independent chains side
    // by side keep the core busy. Each lane has its own stream: the order across lanes changes
    // nothing in any of them.
    constexpr int kLanes = 4;
    for (int base = 0; base < count; base += kLanes) {
      const int lanes = std::min(kLanes, count - base);
      std::vector<SplitMix64> g;
      g.reserve(lanes);
      int64_t left[kLanes];
      int64_t* rows[kLanes];
      for (int j = 0; j < lanes; ++j) {
        const int micro = micro0 + base + j;
        g.emplace_back(r_.seed, moe_stream_name(layer, micro, pod, slice));
        left[j] = n;
        rows[j] = outs[base + j].expert_rows.data();
      }
      // draw_expert_loads stops a draw once nothing is left; live: lanes still drawing.
      unsigned live = (1u << lanes) - 1;
      for (int i = 0; i < experts_ && live != 0; ++i) {
        for (int j = 0; j < lanes; ++j) {
          if (!(live & (1u << j))) continue;
          const int64_t k = binomial_inline(g[j], left[j], cond[i]);
          rows[j][who[i]] = k;
          left[j] -= k;
          if (left[j] == 0) live &= ~(1u << j);
        }
      }
    }
  }
  for (int j = 0; j < count; ++j) {
    MoeDraw& d = outs[j];
    int64_t* rows = d.expert_rows.data();
    if (capacity_factor_ > 0) {
      const int64_t cap = static_cast<int64_t>(std::ceil(capacity_factor_ * static_cast<double>(n) / experts_));
      for (int e = 0; e < experts_; ++e) {
        if (rows[e] > cap) {
          d.dropped += rows[e] - cap;
          rows[e] = cap;
        }
      }
    }
    const int local = experts_ / ep_;
    for (int k = 0; k < ep_; ++k) {
      int64_t sum = 0;
      for (int e = k * local; e < (k + 1) * local; ++e) sum += rows[e];
      d.max_rank_rows = std::max(d.max_rank_rows, sum);
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
  d.expert_rows = draw_expert_loads(r, experts, d.routed, layer, micro, pod, slice);
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
    d.max_rank_rows = std::max(d.max_rank_rows, rows);
  }
  d.imbalance = static_cast<double>(d.max_rank_rows) * ep / static_cast<double>(d.routed);
  return d;
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
