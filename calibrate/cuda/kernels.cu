// File: calibrate/cuda/kernels.cu
// The calibrator's own kernels; see kernels.h for what each moves and computes.
#include "kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cmath>

#include "check.h"

namespace tscal {
namespace {

constexpr unsigned kFull = 0xffffffffu;

__device__ __forceinline__ uint64_t mix64(uint64_t x) {  // splitmix64 finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
__device__ __forceinline__ float unit_rand(uint64_t seed, int64_t i) {  // [-1, 1)
  return static_cast<float>(mix64(seed ^ (static_cast<uint64_t>(i) * 0xD1B54A32D192ED03ull)) >> 40) *
             (2.0f / 16777216.0f) - 1.0f;
}

__global__ void fill_kernel(void* p, int64_t n, int t, uint64_t seed, float scale) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    float r = unit_rand(seed, i) * scale;
    switch (t) {
      case 0: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16(r); break;
      case 1: static_cast<__half*>(p)[i] = __float2half(r); break;
      case 2: static_cast<__nv_fp8_e4m3*>(p)[i] = __nv_fp8_e4m3(r); break;
      default: static_cast<float*>(p)[i] = r; break;
    }
  }
}
__global__ void fill_f32_kernel(float* p, int64_t n, float v) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) p[i] = v;
}
__global__ void trainsim_spin_kernel(int64_t ns) {
  uint64_t t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); } while (static_cast<int64_t>(t - t0) < ns);
}

int grid_for(int64_t work, int threads) {
  int dev = 0, sms = 0;
  TS_CUDA(cudaGetDevice(&dev));
  TS_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  int64_t g = (work + threads - 1) / threads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(g, int64_t{sms} * 16)));
}

// ---- memory-bound ops ----
// bf16x8 in a uint4.
__device__ __forceinline__ void unpack8(const uint4& u, float f[8]) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) { float2 t = __bfloat1622float2(h[i]); f[2 * i] = t.x; f[2 * i + 1] = t.y; }
}
__device__ __forceinline__ uint4 pack8(const float f[8]) {
  uint4 u;
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
  return u;
}

constexpr int kRowElems = 4096;                 // hidden size of the row-wise kernels
constexpr int kRowThreads = 256;                // 2 x uint4 (16 bf16) per thread
constexpr int kVecPerThread = kRowElems / 8 / kRowThreads;

__device__ __forceinline__ float block_sum(float v, float* red) {
  for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = v;
  __syncthreads();
  float t = 0;
  for (int i = 0; i < kRowThreads / 32; ++i) t += red[i];
  __syncthreads();
  return t;
}
__device__ __forceinline__ float block_max(float v, float* red) {
  for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = v;
  __syncthreads();
  float t = -INFINITY;
  for (int i = 0; i < kRowThreads / 32; ++i) t = fmaxf(t, red[i]);
  __syncthreads();
  return t;
}

__global__ void __launch_bounds__(kRowThreads) rmsnorm_kernel(const uint4* x, const uint4* w, uint4* y, int64_t rows) {
  __shared__ float red[kRowThreads / 32];
  float wf[kVecPerThread][8];
#pragma unroll
  for (int c = 0; c < kVecPerThread; ++c) unpack8(w[threadIdx.x + c * kRowThreads], wf[c]);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const uint4* xr = x + r * (kRowElems / 8);
    float f[kVecPerThread][8];
    float ss = 0;
#pragma unroll
    for (int c = 0; c < kVecPerThread; ++c) {
      unpack8(xr[threadIdx.x + c * kRowThreads], f[c]);
#pragma unroll
      for (int e = 0; e < 8; ++e) ss += f[c][e] * f[c][e];
    }
    float inv = rsqrtf(block_sum(ss, red) / kRowElems + 1e-6f);
#pragma unroll
    for (int c = 0; c < kVecPerThread; ++c) {
#pragma unroll
      for (int e = 0; e < 8; ++e) f[c][e] *= inv * wf[c][e];
      y[r * (kRowElems / 8) + threadIdx.x + c * kRowThreads] = pack8(f[c]);
    }
  }
}

__global__ void __launch_bounds__(kRowThreads) xent_kernel(const uint4* x, uint4* g, int64_t rows) {
  __shared__ float red[kRowThreads / 32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const uint4* xr = x + r * (kRowElems / 8);
    const int target = static_cast<int>((r * 2654435761ll) % kRowElems);
    float f[kVecPerThread][8];
    float mx = -INFINITY;
#pragma unroll
    for (int c = 0; c < kVecPerThread; ++c) {
      unpack8(xr[threadIdx.x + c * kRowThreads], f[c]);
#pragma unroll
      for (int e = 0; e < 8; ++e) mx = fmaxf(mx, f[c][e]);
    }
    mx = block_max(mx, red);
    float se = 0;
#pragma unroll
    for (int c = 0; c < kVecPerThread; ++c)
#pragma unroll
      for (int e = 0; e < 8; ++e) { f[c][e] = __expf(f[c][e] - mx); se += f[c][e]; }
    float inv = 1.0f / block_sum(se, red);
#pragma unroll
    for (int c = 0; c < kVecPerThread; ++c) {
      const int base = (threadIdx.x + c * kRowThreads) * 8;
#pragma unroll
      for (int e = 0; e < 8; ++e) f[c][e] = f[c][e] * inv - (base + e == target ? 1.0f : 0.0f);
      g[r * (kRowElems / 8) + threadIdx.x + c * kRowThreads] = pack8(f[c]);
    }
  }
}

__global__ void embedding_kernel(const uint4* table, uint4* out, int64_t rows, int64_t stride) {
  constexpr int kVec = kRowElems / 8;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < rows * kVec; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / kVec, c = i % kVec;
    const int64_t src = (r * stride) % rows;  // a permutation of the rows (stride coprime to rows)
    out[i] = table[src * kVec + c];
  }
}

__global__ void swiglu_kernel(const uint4* a, const uint4* b, uint4* z, int64_t nvec) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < nvec; i += int64_t{gridDim.x} * blockDim.x) {
    float fa[8], fb[8];
    unpack8(a[i], fa);
    unpack8(b[i], fb);
#pragma unroll
    for (int e = 0; e < 8; ++e) fa[e] = fa[e] / (1.0f + __expf(-fa[e])) * fb[e];
    z[i] = pack8(fa);
  }
}

__global__ void adam_kernel(float4* p, const float4* g, float4* m, float4* v, int64_t n4, float b1c, float b2c) {
  const float lr = 1e-4f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n4; i += int64_t{gridDim.x} * blockDim.x) {
    float4 P = p[i], G = g[i], M = m[i], V = v[i];
    float* pp = &P.x; const float* gg = &G.x; float* mm = &M.x; float* vv = &V.x;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      mm[e] = b1 * mm[e] + (1 - b1) * gg[e];
      vv[e] = b2 * vv[e] + (1 - b2) * gg[e] * gg[e];
      pp[e] -= lr * ((mm[e] / b1c) / (sqrtf(vv[e] / b2c) + eps) + wd * pp[e]);
    }
    p[i] = P; m[i] = M; v[i] = V;
  }
}

// ---- attention (own scalar kernels) ----
template <typename T> __device__ __forceinline__ float tf(T x);
template <> __device__ __forceinline__ float tf<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
template <> __device__ __forceinline__ float tf<__half>(__half x) { return __half2float(x); }
template <typename T> __device__ __forceinline__ T ft(float x);
template <> __device__ __forceinline__ __nv_bfloat16 ft<__nv_bfloat16>(float x) { return __float2bfloat16(x); }
template <> __device__ __forceinline__ __half ft<__half>(float x) { return __float2half(x); }

constexpr int kWarps = 4;     // rows (queries or keys) per block, one per warp
constexpr int kTile = 32;     // keys (or queries) per shared-memory tile, one per lane
constexpr int kMaxD = 256;
constexpr int kMaxDP = kMaxD + 2;
constexpr int kNC = kMaxD / 32;  // per-lane accumulator slots (dims lane + 32c)

// Row stride in elements for a [kTile][D] tile: even, with an odd number of 4-byte words, so
// lane l reading row l at the same column hits 32 different banks.
__host__ __device__ inline int padded_row(int d) {
  int dp = (d + 1) & ~1;
  if ((dp / 2) % 2 == 0) dp += 2;
  return dp;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
  return v;
}

// Loads rows [r0, r0 + kTile) of a [rows][d] matrix into a padded tile; rows past the end are 0.
template <typename T>
__device__ void load_tile(T* tile, const T* src, int r0, int rows, int d, int dp) {
  for (int idx = threadIdx.x; idx < kTile * d; idx += blockDim.x) {
    const int r = idx / d, c = idx % d;
    tile[r * dp + c] = (r0 + r < rows) ? src[int64_t(r0 + r) * d + c] : ft<T>(0.f);
  }
}

// Last key index + 1 that any of the queries [q0, q1) may see.
__device__ __forceinline__ int key_end(bool causal, int q1, int seq_kv, int off) {
  if (!causal) return seq_kv;
  return max(0, min(seq_kv, q1 - 1 + off + 1));
}

template <typename T>
__global__ void __launch_bounds__(kWarps * 32) attn_fwd_kernel(const T* Q, const T* K, const T* V, T* O, float* LSE,
                                                               AttnShape a, float scale) {
  __shared__ T ks[kTile * kMaxDP];
  __shared__ T vs[kTile * kMaxDP];
  __shared__ float qs[kWarps][kMaxD];
  const int D = a.head_dim, DP = padded_row(D);
  const int b = blockIdx.z, h = blockIdx.y, hk = h / (a.heads / a.kv_heads);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row0 = blockIdx.x * kWarps, row = row0 + warp;
  const bool active = row < a.seq_q;
  const int off = a.seq_kv - a.seq_q;
  const int64_t qo_base = ((int64_t(b) * a.heads + h) * a.seq_q + row) * D;
  const T* kb = K + (int64_t(b) * a.kv_heads + hk) * a.seq_kv * D;
  const T* vb = V + (int64_t(b) * a.kv_heads + hk) * a.seq_kv * D;
  if (active)
    for (int c = lane; c < D; c += 32) qs[warp][c] = tf(Q[qo_base + c]) * scale;
  const int kend = key_end(a.causal, min(row0 + kWarps, a.seq_q), a.seq_kv, off);
  const int last_key = a.causal ? row + off : a.seq_kv - 1;
  float m = -INFINITY, l = 0.f, acc[kNC];
#pragma unroll
  for (int c = 0; c < kNC; ++c) acc[c] = 0.f;
  for (int t0 = 0; t0 < kend; t0 += kTile) {
    __syncthreads();
    load_tile(ks, kb, t0, a.seq_kv, D, DP);
    load_tile(vs, vb, t0, a.seq_kv, D, DP);
    __syncthreads();
    if (!active) continue;
    const int j = t0 + lane;
    float s = -INFINITY;
    if (j < a.seq_kv && j <= last_key) {
      float dot = 0.f;
      const T* kr = ks + lane * DP;
      for (int i = 0; i < D; ++i) dot += qs[warp][i] * tf(kr[i]);
      s = dot;
    }
    const float mnew = fmaxf(m, warp_max(s));
    const float p = (s == -INFINITY) ? 0.f : __expf(s - mnew);
    const float alpha = (m == -INFINITY) ? 0.f : __expf(m - mnew);
    l = l * alpha + warp_sum(p);
#pragma unroll
    for (int c = 0; c < kNC; ++c) acc[c] *= alpha;
    for (int jj = 0; jj < kTile; ++jj) {
      const float pj = __shfl_sync(kFull, p, jj);
      if (pj == 0.f) continue;  // warp-uniform
      const T* vr = vs + jj * DP;
#pragma unroll
      for (int c = 0; c < kNC; ++c)
        if (lane + 32 * c < D) acc[c] += pj * tf(vr[lane + 32 * c]);
    }
    m = mnew;
  }
  if (!active) return;
  const float inv = l > 0.f ? 1.0f / l : 0.f;
#pragma unroll
  for (int c = 0; c < kNC; ++c)
    if (lane + 32 * c < D) O[qo_base + lane + 32 * c] = ft<T>(acc[c] * inv);
  if (lane == 0) LSE[(int64_t(b) * a.heads + h) * a.seq_q + row] = l > 0.f ? m + logf(l) : -INFINITY;
}

// delta_i = sum_d dO[i,d] * O[i,d]; one warp per row.
template <typename T>
__global__ void attn_bwd_delta_kernel(const T* O, const T* dO, float* delta, int64_t rows, int D) {
  const int64_t row = blockIdx.x * int64_t{kWarps} + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  float s = 0.f;
  for (int c = lane; c < D; c += 32) s += tf(O[row * D + c]) * tf(dO[row * D + c]);
  s = warp_sum(s);
  if (lane == 0) delta[row] = s;
}

// dQ_i = scale * sum_j dS_ij K_j, dS_ij = P_ij (dP_ij - delta_i), dP_ij = dO_i . V_j. Warp per query.
template <typename T>
__global__ void __launch_bounds__(kWarps * 32) attn_bwd_dq_kernel(const T* Q, const T* K, const T* V, const T* dO,
                                                                  const float* LSE, const float* delta, T* dQ,
                                                                  AttnShape a, float scale) {
  __shared__ T ks[kTile * kMaxDP];
  __shared__ T vs[kTile * kMaxDP];
  __shared__ float qs[kWarps][kMaxD];
  __shared__ float dos[kWarps][kMaxD];
  const int D = a.head_dim, DP = padded_row(D);
  const int b = blockIdx.z, h = blockIdx.y, hk = h / (a.heads / a.kv_heads);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row0 = blockIdx.x * kWarps, row = row0 + warp;
  const bool active = row < a.seq_q;
  const int off = a.seq_kv - a.seq_q;
  const int64_t rix = (int64_t(b) * a.heads + h) * a.seq_q + row;
  const T* kb = K + (int64_t(b) * a.kv_heads + hk) * a.seq_kv * D;
  const T* vb = V + (int64_t(b) * a.kv_heads + hk) * a.seq_kv * D;
  float lse = 0.f, di = 0.f;
  if (active) {
    for (int c = lane; c < D; c += 32) { qs[warp][c] = tf(Q[rix * D + c]); dos[warp][c] = tf(dO[rix * D + c]); }
    lse = LSE[rix];
    di = delta[rix];
  }
  const int kend = key_end(a.causal, min(row0 + kWarps, a.seq_q), a.seq_kv, off);
  const int last_key = a.causal ? row + off : a.seq_kv - 1;
  float acc[kNC];
#pragma unroll
  for (int c = 0; c < kNC; ++c) acc[c] = 0.f;
  for (int t0 = 0; t0 < kend; t0 += kTile) {
    __syncthreads();
    load_tile(ks, kb, t0, a.seq_kv, D, DP);
    load_tile(vs, vb, t0, a.seq_kv, D, DP);
    __syncthreads();
    if (!active) continue;
    const int j = t0 + lane;
    float ds = 0.f;
    if (j < a.seq_kv && j <= last_key && lse != -INFINITY) {
      float s = 0.f, dp = 0.f;
      const T* kr = ks + lane * DP;
      const T* vr = vs + lane * DP;
      for (int i = 0; i < D; ++i) { s += qs[warp][i] * tf(kr[i]); dp += dos[warp][i] * tf(vr[i]); }
      const float p = __expf(s * scale - lse);
      ds = p * (dp - di);
    }
    for (int jj = 0; jj < kTile; ++jj) {
      const float dsj = __shfl_sync(kFull, ds, jj);
      const T* kr = ks + jj * DP;
#pragma unroll
      for (int c = 0; c < kNC; ++c)
        if (lane + 32 * c < D) acc[c] += dsj * tf(kr[lane + 32 * c]);
    }
  }
  if (!active) return;
#pragma unroll
  for (int c = 0; c < kNC; ++c)
    if (lane + 32 * c < D) dQ[rix * D + lane + 32 * c] = ft<T>(acc[c] * scale);
}

// dV_j = sum over the group's heads and queries of P_ij dO_i; dK_j = scale * sum dS_ij Q_i.
// Warp per key; the loop over the query heads sharing this KV head (GQA) keeps one writer per dK/dV row.
template <typename T>
__global__ void __launch_bounds__(kWarps * 32) attn_bwd_dkdv_kernel(const T* Q, const T* K, const T* V, const T* dO,
                                                                    const float* LSE, const float* delta, T* dK, T* dV,
                                                                    AttnShape a, float scale) {
  __shared__ T qt[kTile * kMaxDP];
  __shared__ T dot[kTile * kMaxDP];
  __shared__ float kf[kWarps][kMaxD];
  __shared__ float vf[kWarps][kMaxD];
  __shared__ float lse_s[kTile], delta_s[kTile];
  const int D = a.head_dim, DP = padded_row(D);
  const int b = blockIdx.z, hk = blockIdx.y, group = a.heads / a.kv_heads;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int key0 = blockIdx.x * kWarps, key = key0 + warp;
  const bool active = key < a.seq_kv;
  const int off = a.seq_kv - a.seq_q;
  const int64_t kix = (int64_t(b) * a.kv_heads + hk) * a.seq_kv + key;
  if (active)
    for (int c = lane; c < D; c += 32) { kf[warp][c] = tf(K[kix * D + c]); vf[warp][c] = tf(V[kix * D + c]); }
  // Queries before q_begin cannot see any key of this block (causal).
  const int q_begin = a.causal ? max(0, key0 - off) : 0;
  float adk[kNC], adv[kNC];
#pragma unroll
  for (int c = 0; c < kNC; ++c) adk[c] = adv[c] = 0.f;
  for (int g = 0; g < group; ++g) {
    const int h = hk * group + g;
    const int64_t qrow0 = (int64_t(b) * a.heads + h) * a.seq_q;
    for (int t0 = q_begin; t0 < a.seq_q; t0 += kTile) {
      __syncthreads();
      load_tile(qt, Q + qrow0 * D, t0, a.seq_q, D, DP);
      load_tile(dot, dO + qrow0 * D, t0, a.seq_q, D, DP);
      if (threadIdx.x < kTile) {
        const int i = t0 + threadIdx.x;
        lse_s[threadIdx.x] = i < a.seq_q ? LSE[qrow0 + i] : -INFINITY;
        delta_s[threadIdx.x] = i < a.seq_q ? delta[qrow0 + i] : 0.f;
      }
      __syncthreads();
      if (!active) continue;
      const int i = t0 + lane;
      float p = 0.f, ds = 0.f;
      if (i < a.seq_q && (!a.causal || key <= i + off) && lse_s[lane] != -INFINITY) {
        float s = 0.f, dp = 0.f;
        const T* qr = qt + lane * DP;
        const T* dr = dot + lane * DP;
        for (int d = 0; d < D; ++d) { s += tf(qr[d]) * kf[warp][d]; dp += tf(dr[d]) * vf[warp][d]; }
        p = __expf(s * scale - lse_s[lane]);
        ds = p * (dp - delta_s[lane]);
      }
      for (int ii = 0; ii < kTile; ++ii) {
        const float pi = __shfl_sync(kFull, p, ii);
        const float dsi = __shfl_sync(kFull, ds, ii);
        if (pi == 0.f && dsi == 0.f) continue;  // warp-uniform
        const T* qr = qt + ii * DP;
        const T* dr = dot + ii * DP;
#pragma unroll
        for (int c = 0; c < kNC; ++c)
          if (lane + 32 * c < D) { adv[c] += pi * tf(dr[lane + 32 * c]); adk[c] += dsi * tf(qr[lane + 32 * c]); }
      }
    }
  }
  if (!active) return;
#pragma unroll
  for (int c = 0; c < kNC; ++c)
    if (lane + 32 * c < D) {
      dK[kix * D + lane + 32 * c] = ft<T>(adk[c] * scale);
      dV[kix * D + lane + 32 * c] = ft<T>(adv[c]);
    }
}

template <typename T>
void attention_fwd_t(const AttnShape& a, const void* q, const void* k, const void* v, void* o, float* lse, cudaStream_t s) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(a.head_dim));
  dim3 grid((a.seq_q + kWarps - 1) / kWarps, a.heads, a.batch);
  attn_fwd_kernel<T><<<grid, kWarps * 32, 0, s>>>(static_cast<const T*>(q), static_cast<const T*>(k),
                                                   static_cast<const T*>(v), static_cast<T*>(o), lse, a, scale);
  TS_LAUNCHED();
}

template <typename T>
void attention_bwd_t(const AttnShape& a, const void* q, const void* k, const void* v, const void* o, const void* d_o,
                     const float* lse, float* delta, void* dq, void* dk, void* dv, cudaStream_t s) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(a.head_dim));
  const int64_t rows = int64_t(a.batch) * a.heads * a.seq_q;
  attn_bwd_delta_kernel<T><<<static_cast<unsigned>((rows + kWarps - 1) / kWarps), kWarps * 32, 0, s>>>(
      static_cast<const T*>(o), static_cast<const T*>(d_o), delta, rows, a.head_dim);
  TS_LAUNCHED();
  dim3 gq((a.seq_q + kWarps - 1) / kWarps, a.heads, a.batch);
  attn_bwd_dq_kernel<T><<<gq, kWarps * 32, 0, s>>>(static_cast<const T*>(q), static_cast<const T*>(k),
                                                    static_cast<const T*>(v), static_cast<const T*>(d_o), lse, delta,
                                                    static_cast<T*>(dq), a, scale);
  TS_LAUNCHED();
  dim3 gk((a.seq_kv + kWarps - 1) / kWarps, a.kv_heads, a.batch);
  attn_bwd_dkdv_kernel<T><<<gk, kWarps * 32, 0, s>>>(static_cast<const T*>(q), static_cast<const T*>(k),
                                                      static_cast<const T*>(v), static_cast<const T*>(d_o), lse, delta,
                                                      static_cast<T*>(dk), static_cast<T*>(dv), a, scale);
  TS_LAUNCHED();
}

}  // namespace

void fill_random(void* p, int64_t n, ElemType t, uint64_t seed, float scale, cudaStream_t s) {
  fill_kernel<<<grid_for(n, 256), 256, 0, s>>>(p, n, static_cast<int>(t), seed, scale);
  TS_LAUNCHED();
}
void fill_value_f32(float* p, int64_t n, float v, cudaStream_t s) {
  fill_f32_kernel<<<grid_for(n, 256), 256, 0, s>>>(p, n, v);
  TS_LAUNCHED();
}
void spin(int64_t ns, cudaStream_t s) {
  trainsim_spin_kernel<<<1, 1, 0, s>>>(ns);
  TS_LAUNCHED();
}
void rmsnorm_bf16(const void* x, const void* w, void* y, int64_t rows, cudaStream_t s) {
  rmsnorm_kernel<<<grid_for(rows * kRowThreads, kRowThreads), kRowThreads, 0, s>>>(
      static_cast<const uint4*>(x), static_cast<const uint4*>(w), static_cast<uint4*>(y), rows);
  TS_LAUNCHED();
}
void swiglu_bf16(const void* a, const void* b, void* z, int64_t n, cudaStream_t s) {
  const int64_t nvec = n / 8;
  swiglu_kernel<<<grid_for(nvec, 256), 256, 0, s>>>(static_cast<const uint4*>(a), static_cast<const uint4*>(b),
                                                     static_cast<uint4*>(z), nvec);
  TS_LAUNCHED();
}
void embedding_bf16(const void* table, void* out, int64_t rows, cudaStream_t s) {
  int64_t stride = 1000003;  // a prime; step to the next prime-ish odd number until coprime
  auto gcd = [](int64_t x, int64_t y) { while (y) { int64_t t = x % y; x = y; y = t; } return x; };
  while (gcd(stride, rows) != 1) stride += 2;
  embedding_kernel<<<grid_for(rows * (kRowElems / 8), 256), 256, 0, s>>>(static_cast<const uint4*>(table),
                                                                         static_cast<uint4*>(out), rows, stride);
  TS_LAUNCHED();
}
void xent_bf16(const void* logits, void* grad, int64_t rows, cudaStream_t s) {
  xent_kernel<<<grid_for(rows * kRowThreads, kRowThreads), kRowThreads, 0, s>>>(static_cast<const uint4*>(logits),
                                                                                 static_cast<uint4*>(grad), rows);
  TS_LAUNCHED();
}
void adam_f32(float* p, const float* g, float* m, float* v, int64_t n, int step, cudaStream_t s) {
  const float b1c = 1.0f - std::pow(0.9f, static_cast<float>(step));
  const float b2c = 1.0f - std::pow(0.95f, static_cast<float>(step));
  const int64_t n4 = n / 4;
  adam_kernel<<<grid_for(n4, 256), 256, 0, s>>>(reinterpret_cast<float4*>(p), reinterpret_cast<const float4*>(g),
                                                 reinterpret_cast<float4*>(m), reinterpret_cast<float4*>(v), n4, b1c, b2c);
  TS_LAUNCHED();
}
void attention_fwd(ElemType t, const AttnShape& a, const void* q, const void* k, const void* v, void* o, float* lse,
                   cudaStream_t s) {
  if (t == ElemType::kFP16) attention_fwd_t<__half>(a, q, k, v, o, lse, s);
  else attention_fwd_t<__nv_bfloat16>(a, q, k, v, o, lse, s);
}
void attention_bwd(ElemType t, const AttnShape& a, const void* q, const void* k, const void* v, const void* o,
                   const void* d_o, const float* lse, float* delta, void* dq, void* dk, void* dv, cudaStream_t s) {
  if (t == ElemType::kFP16) attention_bwd_t<__half>(a, q, k, v, o, d_o, lse, delta, dq, dk, dv, s);
  else attention_bwd_t<__nv_bfloat16>(a, q, k, v, o, d_o, lse, delta, dq, dk, dv, s);
}

}  // namespace tscal
