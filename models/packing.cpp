#include "models/packing.h"

#include <algorithm>
#include <cmath>

#include "models/moe.h"

namespace trainsim {

std::vector<Window> pack_windows(const DocumentSpec& d, int64_t seq, int64_t windows, int replica) {
  SplitMix64 rng(d.seed, "docs/replica" + std::to_string(replica));
  const double mu = std::log(std::max(1.0, d.mean_tokens)) - 0.5 * d.sigma * d.sigma;
  auto next_doc = [&]() -> int64_t {
    if (d.kind == DocumentLengths::kFixed) return std::max<int64_t>(1, std::llround(d.mean_tokens));
    const double x = std::exp(mu + d.sigma * rng.normal());
    return std::max<int64_t>(1, static_cast<int64_t>(std::llround(std::min(x, 1e15))));
  };
  std::vector<Window> out(static_cast<size_t>(windows));
  int64_t carry = 0;   // tokens of the current document not placed yet
  for (auto& w : out) {
    int64_t room = seq;
    while (room > 0) {
      if (carry == 0) carry = next_doc();
      const int64_t take = std::min(carry, room);
      w.push_back(take);
      carry -= take;
      room -= take;
    }
  }
  return out;
}

int64_t masked_causal_pairs(const Window& w) {
  int64_t p = 0;
  for (int64_t x : w) p += x * (x + 1) / 2;
  return p;
}

namespace {

// Pairs (q, k) with q in [q0, q1), k in [k0, k1) and k <= q.
int64_t causal_pairs_between(int64_t q0, int64_t q1, int64_t k0, int64_t k1) {
  if (q0 >= q1 || k0 >= k1) return 0;
  // For each q: max(0, min(q, k1 - 1) - k0 + 1) keys.
  int64_t total = 0;
  // q in [q0, min(q1, k1)): keys k0..q -> (q - k0 + 1) when q >= k0.
  const int64_t a = std::max(q0, k0), b = std::min(q1, k1);
  if (a < b) {
    // sum_{q=a}^{b-1} (q - k0 + 1)
    const int64_t first = a - k0 + 1, last = b - 1 - k0 + 1, n = b - a;
    total += (first + last) * n / 2;
  }
  // q in [max(q0, k1), q1): all k1 - k0 keys.
  const int64_t c = std::max(q0, k1);
  if (c < q1) total += (q1 - c) * (k1 - k0);
  return total;
}

}  // namespace

int64_t cp_masked_pairs(const Window& w, int cp, int rank, int step, bool zigzag) {
  int64_t seq = 0;
  for (int64_t x : w) seq += x;
  const int kv_rank = ((rank - step) % cp + cp) % cp;
  const int n = zigzag ? 2 * cp : cp;
  const int64_t c = seq / n;
  auto chunks = [&](int r) { return zigzag ? std::vector<int>{r, 2 * cp - 1 - r} : std::vector<int>{r}; };
  int64_t pairs = 0;
  int64_t start = 0;
  for (int64_t len : w) {   // per document [start, start + len)
    const int64_t end = start + len;
    for (int qc : chunks(rank)) {
      const int64_t q0 = std::max(start, qc * c), q1 = std::min(end, (qc + 1) * c);
      if (q0 >= q1) continue;
      for (int kc : chunks(kv_rank)) {
        const int64_t k0 = std::max(start, kc * c), k1 = std::min(end, (kc + 1) * c);
        pairs += causal_pairs_between(q0, q1, k0, k1);
      }
    }
    start = end;
  }
  return pairs;
}

}  // namespace trainsim
