// File: models/packing.h
// Variable-length documents packed into training windows, and the attention work they cause.
//
// A data loader concatenates documents and cuts the stream into windows of seq_len tokens (a
// document that does not fit is split; its rest opens the next window). With document masking
// (varlen flash attention, Llama 3 / torchtitan style) a token attends only to earlier tokens of
// its own document, so a window's attention work is sum_i d_i (d_i + 1) / 2 (query, key) pairs
// over its document segments d_i, not s (s + 1) / 2. Windows differ, so:
//   - DP replicas get unequal attention work per step; the slowest replica sets the step
//     (gradients are reduced together). The compiler lays a stage's program out with the
//     replica that has the most attention work (the straggler).
//   - CP ranks of ring attention get unequal work per ring step even with zig-zag chunks
//     (document boundaries ignore the chunking); the slowest rank sets each step's pace.
//     Ulysses splits heads, not tokens, so its ranks stay balanced.
// (ByteScale and FCP report both effects on long-context training.)
//
// Document lengths: "fixed" (every document `mean_tokens` long) or "lognormal" (exp of a normal
// with sigma `sigma`, its mean at `mean_tokens`), rounded to >= 1 token. Randomness: one
// SplitMix64 stream per (seed, "docs/replica<r>") (models/moe.h), never std:: distributions.
// Thread-safety: pure functions.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/spec.h"

namespace trainsim {

// One window: the lengths of the document segments it holds, in order (sum = seq_len).
using Window = std::vector<int64_t>;

// What the packing did (windows == 0 when training.documents is off).
struct DocumentStats {
  int64_t windows = 0;          // windows drawn (all DP replicas, one step)
  int64_t segments = 0;         // document segments in them
  int straggler = 0;            // the DP replica the program is laid out with (most attention work)
  double dp_imbalance = 1;      // its attention work / the mean replica's
  double cp_imbalance = 1;      // ring attention: busiest CP rank's pairs / mean, averaged over
                                // the straggler's micro-batches and ring steps (1 without a ring)
  double attention_fraction = 1;  // masked pairs / unmasked causal pairs, over all windows
};

// A step's windows for every DP replica, reduced to what the compiler lays out: for the
// straggling replica, per micro-batch, the attention work relative to its unmasked form:
// factors[micro] = {work / causal window} without a KV ring (ring <= 1), else one factor per
// ring step: the busiest ring rank's masked pairs / the block op's pairs (a causal block of
// seq/ring tokens at step 0 or with zig-zag chunks, a full block otherwise). With
// d.balanced, every window at the mean work and the ring ranks even (the reference the
// packing cost is measured against).
struct DocumentLayout {
  std::vector<std::vector<double>> factors;
  DocumentStats stats;
};
DocumentLayout layout_documents(const DocumentSpec& d, int64_t seq, int micro_batch, int micro_batches, int dp,
                                int ring, bool zigzag);

// The first `windows` windows of DP replica `replica`'s stream. REQUIRES: seq >= 1,
// d.mean_tokens >= 1, d.sigma >= 0.
std::vector<Window> pack_windows(const DocumentSpec& d, int64_t seq, int64_t windows, int replica);

// (query, key) pairs of causal attention restricted to documents: sum_i d_i (d_i + 1) / 2.
int64_t masked_causal_pairs(const Window& w);

// Ring attention over `cp` ranks (models/ops.h cp_causal_pairs) with document masking: the
// pairs rank `rank` computes at ring step `step` for one window (cp_causal_pairs is the one-
// document case). REQUIRES: seq = sum(w) divisible by 2*cp (zigzag) or cp.
int64_t cp_masked_pairs(const Window& w, int cp, int rank, int step, bool zigzag);

}  // namespace trainsim
