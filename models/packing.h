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
