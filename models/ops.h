// File: models/ops.h
// The op graph of a dense decoder transformer: the ops one micro-batch runs on one rank, with
// their shapes after the tensor-parallel split, FLOPs and HBM bytes. The compiler
// (models/compiler.h) lays them out on streams; cost models (calibrate/) price them.
//
// FLOP convention (OpDesc::flops): matmul FLOPs counted the Megatron/PaLM way, 2*m*n*k per
// GEMM, and for attention 2*b*s^2*heads*(qk_dim + v_dim) forward (QK^T with the query/key head
// dim and PV with the value head dim, as dense s x s; the causal mask is not subtracted), i.e.
// 4*b*s^2*(heads*head_dim) when both are head_dim (MHA/GQA); backward 2x forward. MLA's
// attention op carries one head_dim for the cost models: the equivalent (qk_dim + v_dim)/2
// (rounded up), so that their 4*b*s^2*heads*head_dim is its FLOPs (160 for DeepSeek-V3). Model FLOPs per step = the sum over
// GEMM and attention ops of forward+backward (Narayanan et al. SC'21 eq. 3 without the
// recompute term); hardware FLOPs add the recomputed forwards. Cost models see `causal` and
// `backward` and price the work a flash kernel really does.
// Bytes (OpDesc::bytes) for memory-bound ops: HBM traffic, reads + writes, 2 B per bf16
// element unless stated (documented per op in ops.cpp).
// Thread-safety: pure functions.
#pragma once
#include <string>

#include "models/spec.h"
#include "sim/plan.h"

namespace trainsim {

// Dimensions of one rank's share of a layer for one micro-batch.
struct LayerDims {
  int64_t b = 1, s = 1, h = 1;   // micro-batch, sequence, hidden
  int64_t t = 1;                 // tensor-parallel degree
  int64_t cp = 1;                // context-parallel degree (s above is already seq/cp)
  int64_t cp_ulysses = 1;        // its all-to-all part; cp/cp_ulysses ranks form the KV ring
  bool cp_zigzag = true;
  bool sp = false;               // sequence parallel
  int64_t q = 1, kv = 1;         // heads*head_dim and kv_heads*head_dim (full, before TP)
  int64_t heads = 1, kv_heads = 1, head_dim = 1;
  // Attention head dims: query/key and value. = head_dim for MHA/GQA; MLA: qk_nope + qk_rope
  // and v_head_dim (models/spec.h), with the latent ranks below (0 for MHA/GQA).
  int64_t qk_dim = 1, v_dim = 1;
  bool mla = false;
  int64_t q_lora = 0, kv_lora = 0, rope = 0, nope = 0;
  int64_t f = 1;                 // ffn hidden (full)
  int64_t vocab = 1;
  bool swiglu = false;
  bool rmsnorm = false;
  DType gemm_dtype = DType::kBF16;
  int64_t tokens() const { return b * s; }
  int64_t norm_tokens() const { return sp ? (b * s + t - 1) / t : b * s; }
};
LayerDims layer_dims(const ModelSpec& m, const TrainingSpec& tr, const ParallelSpec& p);

OpDesc gemm_op(std::string name, int64_t m, int64_t n, int64_t k, DType dt, bool backward,
               int64_t batch = 1);
OpDesc attention_op(const LayerDims& d, bool backward);
// One block of attention for the heads a rank holds after TP and the Ulysses all-to-all
// (heads / (t * cp_ulysses); kv heads likewise, at least 1): seq_q queries against seq_kv keys,
// with or without the causal mask. FLOPs by the convention above (4*b*seq_q*seq_kv*dims, mask
// not subtracted). attention_op(d, bwd) == attention_block_op(d, bwd, d.s, d.s, true) when
// cp == 1.
OpDesc attention_block_op(const LayerDims& d, bool backward, int64_t seq_q, int64_t seq_kv, bool causal);
// Heads (and kv heads) one rank computes attention for: after TP and the Ulysses all-to-all.
int64_t attention_heads_local(const LayerDims& d);
int64_t attention_kv_heads_local(const LayerDims& d);

// Context parallelism, ring attention: the causal (query, key) pairs rank `rank` of `cp`
// computes at ring step `step` for one head of one sequence of `seq` tokens. At step j a rank
// holds its own queries and the keys/values of rank (rank - j) mod cp. Zig-zag chunking cuts
// the sequence into 2*cp equal chunks and gives rank r chunks r and 2cp-1-r (Megatron-Core /
// Transformer Engine, Llama 3's CP): every step then costs the same on every rank (2c^2 pairs
// for c = seq/(2cp), plus c at step 0 for the diagonal). Contiguous chunking gives rank r
// chunk r: rank cp-1 does the most work. REQUIRES: seq divisible by 2*cp (zigzag) or cp.
int64_t cp_causal_pairs(int64_t seq, int cp, int rank, int step, bool zigzag);
OpDesc memory_op(std::string name, OpClass cls, int64_t bytes, bool backward);
OpDesc collective_op(std::string name, CollKind kind, int64_t bytes, uint8_t group);
OpDesc p2p_op(std::string name, int64_t bytes, uint8_t peer_table);

}  // namespace trainsim
