// File: calibrate/cuda/kernels.h
// The calibrator's own CUDA kernels (kernels.cu), launched on a caller's stream:
//  - random fills (never time on zeros: METHOD.md) and a spin kernel that lets the host queue
//    timed runs ahead of the GPU;
//  - memory-bound ops sized by HBM bytes (norm, elementwise, embedding, loss, Adam);
//  - attention forward/backward: OWN scalar (fp32 CUDA-core, not tensor-core) fused kernels,
//    flash-attention style (online softmax, no S matrix in memory), causal and GQA. They are
//    NOT cuDNN; their times are far above cuDNN's fused SDPA and are labelled as own kernels.
// Every launcher checks the launch (TS_LAUNCHED). Thread-safety: as the CUDA stream used.
#pragma once
#include <cstdint>

#include <cuda_runtime.h>

namespace tscal {

enum class ElemType { kBF16, kFP16, kFP8E4M3, kFP32 };

// Fills n elements with uniform values in [-scale, scale] from a hash of (seed, index).
void fill_random(void* p, int64_t n, ElemType t, uint64_t seed, float scale, cudaStream_t s);
void fill_value_f32(float* p, int64_t n, float v, cudaStream_t s);
// Busy-waits `ns` nanoseconds on the GPU (one thread); its kernel name contains "trainsim_spin".
void spin(int64_t ns, cudaStream_t s);

// Memory-bound ops. Each moves (about) the stated bytes through HBM.
// Norm: RMSNorm over rows of 4096 bf16; reads x (rows*8 KiB), writes y (same).
void rmsnorm_bf16(const void* x, const void* w, void* y, int64_t rows, cudaStream_t s);
// Elementwise: z = silu(a) * b over n bf16 (n a multiple of 8): reads 2n, writes n elements.
void swiglu_bf16(const void* a, const void* b, void* z, int64_t n, cudaStream_t s);
// Embedding: out row r = table row perm(r), rows of 4096 bf16: reads rows*8 KiB, writes same.
void embedding_bf16(const void* table, void* out, int64_t rows, cudaStream_t s);
// Loss: cross-entropy forward+backward per row of 4096 bf16 logits: reads logits, writes grads.
void xent_bf16(const void* logits, void* grad, int64_t rows, cudaStream_t s);
// Adam on n fp32 (n a multiple of 4): reads p, g, m, v; writes p, m, v (28 bytes/element).
void adam_f32(float* p, const float* g, float* m, float* v, int64_t n, int step, cudaStream_t s);

// Attention, layout [batch][heads][seq][head_dim], K/V with kv_heads heads (GQA when fewer).
// REQUIRES: head_dim <= 256, heads % kv_heads == 0, t is kBF16 or kFP16.
struct AttnShape {
  int batch, heads, kv_heads, seq_q, seq_kv, head_dim;
  bool causal;  // bottom-right aligned when seq_q != seq_kv: query i sees keys j <= i + seq_kv - seq_q
};
void attention_fwd(ElemType t, const AttnShape& a, const void* q, const void* k, const void* v, void* o,
                   float* lse, cudaStream_t s);
// dq, dk, dv from do; `delta` is scratch of batch*heads*seq_q floats.
void attention_bwd(ElemType t, const AttnShape& a, const void* q, const void* k, const void* v, const void* o,
                   const void* d_o, const float* lse, float* delta, void* dq, void* dk, void* dv, cudaStream_t s);

}  // namespace tscal
