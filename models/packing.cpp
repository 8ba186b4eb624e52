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

DocumentLayout layout_documents(const DocumentSpec& d, int64_t seq, int micro_batch, int micro_batches, int dp,
                                int ring, bool zigzag) {
  DocumentLayout out;
  DocumentStats& ds = out.stats;
  const int64_t b = micro_batch, wpr = static_cast<int64_t>(micro_batches) * b;
  std::vector<std::vector<Window>> win(dp);
  std::vector<double> work(dp, 0);
  double all_pairs = 0;
  for (int r = 0; r < dp; ++r) {
    win[r] = pack_windows(d, seq, wpr, r);
    for (const Window& w : win[r]) {
      work[r] += static_cast<double>(masked_causal_pairs(w));
      ds.segments += static_cast<int64_t>(w.size());
    }
    all_pairs += work[r];
    if (work[r] > work[ds.straggler]) ds.straggler = r;
  }
  ds.windows = wpr * dp;
  const double full = static_cast<double>(seq) * (seq + 1) / 2;
  const double mean_window = all_pairs / static_cast<double>(ds.windows);
  ds.attention_fraction = mean_window / full;
  ds.dp_imbalance = d.balanced || all_pairs <= 0 ? 1 : work[ds.straggler] / (all_pairs / dp);
  const std::vector<Window>& mine = win[ds.straggler];
  out.factors.assign(micro_batches, {});
  double cp_ratio_sum = 0;
  int cp_ratio_n = 0;
  const double sb = static_cast<double>(seq / std::max(1, ring));
  for (int i = 0; i < micro_batches; ++i) {
    double window_pairs = 0;   // this micro-batch's b windows
    for (int64_t k = 0; k < b; ++k) window_pairs += static_cast<double>(masked_causal_pairs(mine[i * b + k]));
    // Balanced: the windows at the mean work.
    const double scale = d.balanced && window_pairs > 0 ? mean_window * static_cast<double>(b) / window_pairs : 1;
    if (ring <= 1) {
      out.factors[i] = {window_pairs * scale / (full * static_cast<double>(b))};
      continue;
    }
    for (int j = 0; j < ring; ++j) {
      double worst = 0, sum = 0;
      for (int r = 0; r < ring; ++r) {
        double pairs = 0;
        for (int64_t k = 0; k < b; ++k) pairs += static_cast<double>(cp_masked_pairs(mine[i * b + k], ring, r, j, zigzag));
        worst = std::max(worst, pairs);
        sum += pairs;
      }
      if (sum > 0) {
        cp_ratio_sum += worst / (sum / ring);
        ++cp_ratio_n;
      }
      if (d.balanced) worst = sum / ring * scale;   // and the ring ranks even at this step
      const bool causal_op = j == 0 || zigzag;       // as the compiler's block op is priced
      const double ref = (causal_op ? sb * (sb + 1) / 2 : sb * sb) * static_cast<double>(b);
      out.factors[i].push_back(worst / ref);
    }
  }
  if (cp_ratio_n > 0 && !d.balanced) ds.cp_imbalance = cp_ratio_sum / cp_ratio_n;
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
