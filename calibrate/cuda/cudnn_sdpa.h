// File: calibrate/cuda/cudnn_sdpa.h
// Attention through cuDNN's fused flash-attention engines, with the operation graph built by
// hand through the cuDNN 9 backend (descriptor) API, the way cudnn_frontend's composite SDPA
// nodes lower it (this tree has no cudnn_frontend):
//  - forward (training): S = Q K^T (fp32) * scale, causal mask (GEN_INDEX row >= col,
//    BINARY_SELECT -inf), softmax as MAX, SUB, EXP, ADD-reduction, DIV, Stats = max + log(sum)
//    (fp32 [b,h,s_q,1], the log-sum-exp), P (io type) V -> O;
//  - backward: softmax_sum = rowsum(dO * O), P = exp(S * scale - Stats) (masked),
//    dV = P^T dO, dS = P (dO V^T - softmax_sum) * scale, dK = dS^T Q, dQ = dS K (fp32
//    accumulator, then converted); GQA (kv_heads < heads) through full-head dK/dV reduced
//    over the head group.
// The engine is the first config of heuristics mode A whose execution plan finalizes.
// Layout as kernels.h: [batch][heads][seq][head_dim], K/V with kv_heads heads.
// Stats/LSE are interchangeable with the own kernels' LSE (natural log, scaled scores).
// Thread-safety: one object per thread; calls are queued on the caller's stream.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <cuda_runtime.h>

#include "kernels.h"

namespace tscal {

class CudnnSdpa {
 public:
  // Builds the forward (backward = false) or backward graph for `a`, picks an engine and
  // allocates its workspace on the current device. Returns nullptr, with *why naming the
  // failing cuDNN call and cuDNN's message, when this build or this cuDNN/GPU cannot run it
  // (the caller then falls back to the own kernels).
  // REQUIRES: t is kBF16 or kFP16; heads % kv_heads == 0; not (causal and seq_q != seq_kv).
  static std::unique_ptr<CudnnSdpa> create(ElemType t, const AttnShape& a, bool backward, std::string* why);
  ~CudnnSdpa();
  CudnnSdpa(const CudnnSdpa&) = delete;
  CudnnSdpa& operator=(const CudnnSdpa&) = delete;

  int64_t engine() const;          // cuDNN global engine index of the chosen plan
  int64_t workspace_bytes() const;  // device workspace this object holds
  std::string source() const;      // for the measurement line's "source"

  // REQUIRES: created with backward == false. lse: b*h*s_q floats.
  void forward(const void* q, const void* k, const void* v, void* o, float* lse, cudaStream_t s);
  // REQUIRES: created with backward == true; o and lse from a forward of the same inputs.
  void backward(const void* q, const void* k, const void* v, const void* o, const void* d_o, const float* lse,
                void* dq, void* dk, void* dv, cudaStream_t s);

  struct Impl;

 private:
  explicit CudnnSdpa(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tscal
