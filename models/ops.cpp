#include "models/ops.h"

#include <algorithm>

namespace trainsim {

LayerDims layer_dims(const ModelSpec& m, const TrainingSpec& tr, const ParallelSpec& p) {
  LayerDims d;
  d.b = tr.micro_batch;
  d.s = tr.seq_len;
  d.h = m.hidden;
  d.t = p.tp;
  d.sp = p.sequence_parallel && p.tp > 1;
  d.heads = m.heads;
  d.kv_heads = m.kv_heads > 0 ? m.kv_heads : m.heads;
  d.head_dim = m.head_dim > 0 ? m.head_dim : m.hidden / m.heads;
  d.q = d.heads * d.head_dim;
  d.kv = d.kv_heads * d.head_dim;
  d.f = m.ffn_hidden;
  d.vocab = m.vocab;
  d.swiglu = m.activation == Activation::kSwiglu;
  d.rmsnorm = m.norm == NormKind::kRMSNorm;
  d.gemm_dtype = tr.precision;
  return d;
}

OpDesc gemm_op(const std::string& name, int64_t m, int64_t n, int64_t k, DType dt, bool backward,
               int64_t batch) {
  OpDesc o;
  o.name = name;
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

OpDesc attention_op(const LayerDims& d, bool backward) {
  OpDesc o;
  o.name = backward ? "attn.core.bwd" : "attn.core.fwd";
  o.cls = OpClass::kAttention;
  o.dtype = DType::kBF16;   // flash attention runs in bf16 even when GEMMs run in fp8
  o.backward = backward;
  o.causal = true;
  o.attn_batch = d.b;
  o.heads = d.heads / d.t;
  o.kv_heads = d.kv_heads >= d.t ? d.kv_heads / d.t : 1;
  o.seq_q = d.s;
  o.seq_kv = d.s;
  o.head_dim = d.head_dim;
  // 4*b*s^2*(heads/t * head_dim) forward, twice that backward (convention in ops.h).
  const double fwd = 4.0 * d.b * static_cast<double>(d.s) * d.s * (d.q / d.t);
  o.flops = Flops{backward ? 2.0 * fwd : fwd};
  // Q, K, V, O (and dO, dQ, dK, dV backward) once each through HBM.
  const int64_t qo = 2 * d.b * d.s * (d.q / d.t);
  const int64_t kv = 2 * d.b * d.s * (d.kv / std::max<int64_t>(1, std::min(d.t, d.kv_heads)));
  o.bytes = Bytes(backward ? 2 * (2 * qo + 2 * kv) : 2 * qo + 2 * kv);
  return o;
}

OpDesc memory_op(const std::string& name, OpClass cls, int64_t bytes, bool backward) {
  OpDesc o;
  o.name = name;
  o.cls = cls;
  o.backward = backward;
  o.bytes = Bytes(bytes);
  return o;
}

OpDesc collective_op(const std::string& name, CollKind kind, int64_t bytes, uint8_t group) {
  OpDesc o;
  o.name = name;
  o.cls = OpClass::kCollective;
  o.coll = kind;
  o.bytes = Bytes(bytes);
  o.group = group;
  return o;
}

OpDesc p2p_op(const std::string& name, int64_t bytes, uint8_t peer_table) {
  OpDesc o;
  o.name = name;
  o.cls = OpClass::kP2p;
  o.bytes = Bytes(bytes);
  o.group = peer_table;
  return o;
}

}  // namespace trainsim
