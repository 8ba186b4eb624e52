#include "models/ops.h"

#include <utility>

#include <algorithm>
#include <vector>

#include "models/packing.h"

namespace trainsim {

LayerDims layer_dims(const ModelSpec& m, const TrainingSpec& tr, const ParallelSpec& p) {
  LayerDims d;
  d.b = tr.micro_batch;
  d.cp = std::max(1, p.cp);
  d.cp_ulysses = std::max(1, p.cp_ulysses);
  d.cp_zigzag = p.cp_load_balance;
  d.s = tr.seq_len / d.cp;
  d.h = m.hidden;
  d.t = p.tp;
  d.sp = p.sequence_parallel && p.tp > 1;
  d.heads = m.heads;
  d.kv_heads = m.kv_heads > 0 ? m.kv_heads : m.heads;
  d.head_dim = m.head_dim > 0 ? m.head_dim : m.hidden / m.heads;
  d.q = d.heads * d.head_dim;
  d.kv = d.kv_heads * d.head_dim;
  d.qk_dim = d.v_dim = d.head_dim;
  if (m.mla) {
    d.mla = true;
    d.kv_heads = d.heads;
    d.q_lora = m.q_lora_rank;
    d.kv_lora = m.kv_lora_rank;
    d.rope = m.qk_rope_head_dim;
    d.nope = m.qk_nope_head_dim;
    d.qk_dim = d.nope + d.rope;
    d.v_dim = m.v_head_dim;
    d.head_dim = (d.qk_dim + d.v_dim + 1) / 2;   // the cost models' equivalent (ops.h)
    d.q = d.heads * d.v_dim;                      // out-projection input width
    d.kv = d.kv_heads * d.qk_dim;
  }
  d.f = m.ffn_hidden;
  d.vocab = m.vocab;
  d.swiglu = m.activation == Activation::kSwiglu;
  d.rmsnorm = m.norm == NormKind::kRMSNorm;
  d.gemm_dtype = tr.precision;
  return d;
}

OpDesc gemm_op(std::string name, int64_t m, int64_t n, int64_t k, DType dt, bool backward,
               int64_t batch) {
  OpDesc o;
  o.name = std::move(name);
  o.cls = OpClass::kGemm;
  o.dtype = dt;
  o.m = m;
  o.n = n;
  o.k = k;
  o.batch = batch;
  o.backward = backward;
  o.flops = Flops{2.0 * static_cast<double>(batch) * static_cast<double>(m) * static_cast<double>(n) *
                  static_cast<double>(k)};
  // Each operand read once and the output written once (bf16/fp16; fp8 inputs are 1 B).
  const int64_t in_b = dt == DType::kFP8 ? 1 : 2;
  o.bytes = Bytes(batch * (in_b * (m * k + k * n) + 2 * m * n));
  return o;
}

int64_t attention_heads_local(const LayerDims& d) { return std::max<int64_t>(1, d.heads / (d.t * d.cp_ulysses)); }
int64_t attention_kv_heads_local(const LayerDims& d) {
  return std::max<int64_t>(1, d.kv_heads / (d.t * d.cp_ulysses));
}

OpDesc attention_op(const LayerDims& d, bool backward) { return attention_block_op(d, backward, d.s, d.s, true); }

OpDesc attention_block_op(const LayerDims& d, bool backward, int64_t seq_q, int64_t seq_kv, bool causal) {
  OpDesc o;
  o.name = d.cp > 1 ? (backward ? "attn.cp.block.bwd" : "attn.cp.block.fwd")
                    : (backward ? "attn.core.bwd" : "attn.core.fwd");
  o.cls = OpClass::kAttention;
  o.dtype = DType::kBF16;   // flash attention runs in bf16 even when GEMMs run in fp8
  o.backward = backward;
  o.causal = causal;
  o.attn_batch = d.b;
  o.heads = attention_heads_local(d);
  o.kv_heads = attention_kv_heads_local(d);
  o.seq_q = seq_q;
  o.seq_kv = seq_kv;
  o.head_dim = d.head_dim;
  if (d.mla) {
    // 2*b*sq*skv*heads*(qk + v) forward (ops.h). Q, K of qk and V, O of v per head once each
    // through HBM (and dO, dQ, dK, dV backward).
    const double fwd = 2.0 * d.b * static_cast<double>(seq_q) * seq_kv * (o.heads * (d.qk_dim + d.v_dim));
    o.flops = Flops{backward ? 2.0 * fwd : fwd};
    const int64_t qo = 2 * d.b * seq_q * o.heads * (d.qk_dim + d.v_dim);
    const int64_t kv = 2 * d.b * seq_kv * o.kv_heads * (d.qk_dim + d.v_dim);
    o.bytes = Bytes(backward ? 2 * (qo + kv) : qo + kv);
    return o;
  }
  // 4*b*sq*skv*(heads * head_dim) forward, twice that backward (convention in ops.h).
  const double fwd = 4.0 * d.b * static_cast<double>(seq_q) * seq_kv * (o.heads * d.head_dim);
  o.flops = Flops{backward ? 2.0 * fwd : fwd};
  // Q, K, V, O (and dO, dQ, dK, dV backward) once each through HBM.
  const int64_t qo = 2 * d.b * seq_q * (o.heads * d.head_dim);
  const int64_t kv = 2 * d.b * seq_kv * (o.kv_heads * d.head_dim);
  o.bytes = Bytes(backward ? 2 * (2 * qo + 2 * kv) : 2 * qo + 2 * kv);
  return o;
}

int64_t cp_causal_pairs(int64_t seq, int cp, int rank, int step, bool zigzag) {
  return cp_masked_pairs(Window{seq}, cp, rank, step, zigzag);   // one document
}

OpDesc memory_op(std::string name, OpClass cls, int64_t bytes, bool backward) {
  OpDesc o;
  o.name = std::move(name);
  o.cls = cls;
  o.backward = backward;
  o.bytes = Bytes(bytes);
  return o;
}

OpDesc collective_op(std::string name, CollKind kind, int64_t bytes, uint8_t group) {
  OpDesc o;
  o.name = std::move(name);
  o.cls = OpClass::kCollective;
  o.coll = kind;
  o.bytes = Bytes(bytes);
  o.group = group;
  return o;
}

OpDesc p2p_op(std::string name, int64_t bytes, uint8_t peer_table) {
  OpDesc o;
  o.name = std::move(name);
  o.cls = OpClass::kP2p;
  o.bytes = Bytes(bytes);
  o.group = peer_table;
  return o;
}

}  // namespace trainsim
