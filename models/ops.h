// File: models/ops.h
// The op graph of a dense decoder transformer: the ops one micro-batch runs on one rank, with
// their shapes after the tensor-parallel split, FLOPs and HBM bytes. The compiler
// (models/compiler.h) lays them out on streams; cost models (calibrate/) price them.
//
// FLOP convention (OpDesc::flops): matmul FLOPs counted the Megatron/PaLM way, 2*m*n*k per
// GEMM, and for attention 4*b*s^2*(heads*head_dim) forward (QK^T and PV as dense s x s; the
// causal mask is not subtracted), backward 2x forward. Model FLOPs per step = the sum over
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
  bool sp = false;               // sequence parallel
  int64_t q = 1, kv = 1;         // heads*head_dim and kv_heads*head_dim (full, before TP)
  int64_t heads = 1, kv_heads = 1, head_dim = 1;
  int64_t f = 1;                 // ffn hidden (full)
  int64_t vocab = 1;
  bool swiglu = false;
  bool rmsnorm = false;
  DType gemm_dtype = DType::kBF16;
  int64_t tokens() const { return b * s; }
  int64_t norm_tokens() const { return sp ? (b * s + t - 1) / t : b * s; }
};
LayerDims layer_dims(const ModelSpec& m, const TrainingSpec& tr, const ParallelSpec& p);

OpDesc gemm_op(const std::string& name, int64_t m, int64_t n, int64_t k, DType dt, bool backward,
               int64_t batch = 1);
OpDesc attention_op(const LayerDims& d, bool backward);
OpDesc memory_op(const std::string& name, OpClass cls, int64_t bytes, bool backward);
OpDesc collective_op(const std::string& name, CollKind kind, int64_t bytes, uint8_t group);
OpDesc p2p_op(const std::string& name, int64_t bytes, uint8_t peer_table);

}  // namespace trainsim
