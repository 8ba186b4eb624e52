// File: calibrate/cuda/ops.cpp
// Op measurements: GEMMs through cuBLASLt (the heuristic's first algorithm), attention through
// cuDNN's fused SDPA (cudnn_sdpa.h; own kernels where cuDNN cannot take the graph), memory-bound
// ops through our own kernels (kernels.cu). Inputs are random, never zeros; when
// one input set fits in twice the L2 cache, the runs rotate among several sets so that they
// do not measure the cache (METHOD.md).
#include <cublasLt.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "calibrator.h"
#include "check.h"
#include "cudnn_sdpa.h"
#include "kernels.h"

namespace tscal {
namespace {

constexpr const char* kOwnAttentionSource = "trainsim_calibrator own kernel (scalar fused attention, not cuDNN)";

// How many input sets to rotate among: enough that together they cover 4x the L2 cache.
int rotation_sets(int64_t bytes_per_set, int device, int64_t budget) {
  int l2 = 0;
  TS_CUDA(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
  if (bytes_per_set >= 2 * int64_t{l2}) return 1;
  int64_t sets = (4 * int64_t{l2} + bytes_per_set - 1) / bytes_per_set;
  sets = std::min<int64_t>(sets, 64);
  sets = std::min<int64_t>(sets, std::max<int64_t>(1, budget / std::max<int64_t>(bytes_per_set, 1)));
  return static_cast<int>(std::max<int64_t>(1, sets));
}

cudaStream_t make_stream() {
  cudaStream_t s;
  TS_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}

}  // namespace

bool measure_gemm(const OpJob& j, const Options& opt, int device, Timing* t, std::string* source) {
  cudaDeviceProp prop{};
  TS_CUDA(cudaGetDeviceProperties(&prop, device));
  const int cc = prop.major * 10 + prop.minor;
  cudaDataType_t in_t, out_t;
  ElemType fill_t;
  int64_t in_size, out_size;
  if (j.dtype == "bf16") { in_t = out_t = CUDA_R_16BF; fill_t = ElemType::kBF16; in_size = out_size = 2; }
  else if (j.dtype == "fp16") { in_t = out_t = CUDA_R_16F; fill_t = ElemType::kFP16; in_size = out_size = 2; }
  else if (j.dtype == "fp32") { in_t = out_t = CUDA_R_32F; fill_t = ElemType::kFP32; in_size = out_size = 4; }
  else {  // fp8 e4m3 inputs, bf16 output
    if (cc < 89) { skip(j.path, "fp8 GEMM needs compute capability 8.9 or newer; this GPU is " + std::to_string(cc)); return false; }
    in_t = CUDA_R_8F_E4M3; out_t = CUDA_R_16BF; fill_t = ElemType::kFP8E4M3; in_size = 1; out_size = 2;
  }
  const int64_t m = j.m, n = j.n, k = j.k, batch = j.batch;
  const int64_t a_elems = m * k * batch, b_elems = k * n * batch, c_elems = m * n * batch;
  const int64_t set_bytes = (a_elems + b_elems) * in_size + c_elems * out_size;
  const int64_t workspace_bytes = int64_t{64} << 20;
  const int64_t budget = usable_device_bytes() - workspace_bytes;
  if (set_bytes > budget) { skip(j.path, "needs " + std::to_string(set_bytes >> 20) + " MiB; too little device memory"); return false; }
  const int sets = rotation_sets(set_bytes, device, budget);

  cudaStream_t s = make_stream();
  std::vector<std::unique_ptr<DeviceBuffer>> A, B, C;
  for (int i = 0; i < sets; ++i) {
    A.push_back(std::make_unique<DeviceBuffer>(a_elems * in_size));
    B.push_back(std::make_unique<DeviceBuffer>(b_elems * in_size));
    C.push_back(std::make_unique<DeviceBuffer>(c_elems * out_size));
    fill_random(A.back()->p, a_elems, fill_t, 11 + i, 1.0f, s);
    fill_random(B.back()->p, b_elems, fill_t, 1011 + i, 1.0f, s);
  }
  // Each fp8 scale in its own allocation (256-byte aligned), and for fp8 a C input apart from
  // the output D (beta = 0, so C is never read): the in-place C == D form with both scales in
  // one 8-byte buffer was refused at launch on an H100 (cuBLAS 13.1).
  const bool fp8 = in_t == CUDA_R_8F_E4M3;
  DeviceBuffer workspace(workspace_bytes), scale_a(16), scale_b(16), c_in(fp8 ? c_elems * out_size : 16);
  fill_value_f32(static_cast<float*>(scale_a.p), 1, 1.0f, s);
  fill_value_f32(static_cast<float*>(scale_b.p), 1, 1.0f, s);

  cublasLtHandle_t lt;
  TS_CUBLAS(cublasLtCreate(&lt));
  cublasLtMatmulDesc_t op;
  const cublasComputeType_t compute = CUBLAS_COMPUTE_32F;  // fp32 accumulate (no TF32 for fp32 inputs)
  TS_CUBLAS(cublasLtMatmulDescCreate(&op, compute, CUDA_R_32F));
  // Row-major (m x k)(k x n) = column-major C(m x n) = op(A) B with A stored k x m and
  // transposed: the "TN" layout that fp8 requires and nn.Linear uses.
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  TS_CUBLAS(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  TS_CUBLAS(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  if (fp8) {
    const void* sa = scale_a.p;
    const void* sb = scale_b.p;
    TS_CUBLAS(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sa, sizeof sa));
    TS_CUBLAS(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sb, sizeof sb));
  }
  cublasLtMatrixLayout_t la, lb, lc;
  TS_CUBLAS(cublasLtMatrixLayoutCreate(&la, in_t, k, m, k));
  TS_CUBLAS(cublasLtMatrixLayoutCreate(&lb, in_t, k, n, k));
  TS_CUBLAS(cublasLtMatrixLayoutCreate(&lc, out_t, m, n, m));
  if (batch > 1) {
    const int32_t bc = static_cast<int32_t>(batch);
    const int64_t sa = m * k, sb = k * n, sc = m * n;
    for (auto [l, stride] : {std::pair{la, sa}, std::pair{lb, sb}, std::pair{lc, sc}}) {
      TS_CUBLAS(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc));
      TS_CUBLAS(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride));
    }
  }
  cublasLtMatmulPreference_t pref;
  TS_CUBLAS(cublasLtMatmulPreferenceCreate(&pref));
  const size_t ws = static_cast<size_t>(workspace_bytes);
  TS_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  // Up to 8 candidate algorithms, best first: the first that runs once without error is timed
  // (a heuristic's first pick can still refuse at launch, seen for fp8 on an H100 with cuBLAS
  // 13.1: "the requested functionality is not supported").
  constexpr int kCandidates = 8;
  cublasLtMatmulHeuristicResult_t heur[kCandidates]{};
  int found = 0;
  cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, kCandidates, heur, &found);
  bool ok = true;
  const float alpha = 1.0f, beta = 0.0f;
  if (hs == CUBLAS_STATUS_NOT_SUPPORTED || (hs == CUBLAS_STATUS_SUCCESS && found == 0)) {
    skip(j.path, std::string("cuBLASLt has no algorithm for this shape/dtype (") + cublasLtGetStatusString(hs) +
                     "; fp8 needs m, n, k multiples of 16)");
    ok = false;
  } else {
    TS_CUBLAS(hs);
    int pick = -1;
    cublasStatus_t last = CUBLAS_STATUS_SUCCESS;
    for (int c = 0; c < found && pick < 0; ++c) {
      last = cublasLtMatmul(lt, op, &alpha, A[0]->p, la, B[0]->p, lb, &beta, fp8 ? c_in.p : C[0]->p, lc, C[0]->p, lc,
                            &heur[c].algo, workspace.p, ws, s);
      if (last == CUBLAS_STATUS_SUCCESS) pick = c;
    }
    TS_CUDA(cudaStreamSynchronize(s));
    if (pick < 0) {
      skip(j.path, "none of cuBLASLt's " + std::to_string(found) + " candidate algorithms ran (last: " +
                       cublasLtGetStatusString(last) + ")");
      ok = false;
    } else {
      *t = time_on_stream(s, opt, [&](int i) {
        const int x = i % sets;
        TS_CUBLAS(cublasLtMatmul(lt, op, &alpha, A[x]->p, la, B[x]->p, lb, &beta, fp8 ? c_in.p : C[x]->p, lc, C[x]->p, lc,
                                 &heur[pick].algo, workspace.p, ws, s));
      });
      *source = pick == 0 ? "trainsim_calibrator cublasLt"
                          : "trainsim_calibrator cublasLt (heuristic candidate " + std::to_string(pick + 1) + ")";
    }
  }
  TS_CUBLAS(cublasLtMatmulPreferenceDestroy(pref));
  TS_CUBLAS(cublasLtMatrixLayoutDestroy(la));
  TS_CUBLAS(cublasLtMatrixLayoutDestroy(lb));
  TS_CUBLAS(cublasLtMatrixLayoutDestroy(lc));
  TS_CUBLAS(cublasLtMatmulDescDestroy(op));
  TS_CUBLAS(cublasLtDestroy(lt));
  TS_CUDA(cudaStreamSynchronize(s));
  A.clear(); B.clear(); C.clear();
  TS_CUDA(cudaStreamDestroy(s));
  return ok;
}

bool measure_attention(const OpJob& j, const Options& opt, int device, Timing* t, std::string* source) {
  if (j.dtype == "fp8") { skip(j.path, "fp8 attention is not measured (cuDNN SDPA and own kernels here are bf16/fp16)"); return false; }
  const int64_t max_int = 0x7fffffff;
  if (j.heads > 65535 || j.batch > 65535 || j.seq_q > max_int / 2 || j.seq_kv > max_int / 2) {
    skip(j.path, "shape beyond the kernels' grid limits"); return false;
  }
  const ElemType et = j.dtype == "fp16" ? ElemType::kFP16 : ElemType::kBF16;
  AttnShape a{static_cast<int>(j.batch), static_cast<int>(j.heads), static_cast<int>(j.kv_heads), static_cast<int>(j.seq_q),
              static_cast<int>(j.seq_kv), static_cast<int>(j.head_dim), j.causal};
  const int64_t q_elems = j.batch * j.heads * j.seq_q * j.head_dim;
  const int64_t kv_elems = j.batch * j.kv_heads * j.seq_kv * j.head_dim;
  const int64_t rows = j.batch * j.heads * j.seq_q;
  // q, o (+ do, dq) and k, v (+ dk, dv), 2 bytes each; lse (+ delta) fp32.
  const int64_t need = (j.backward ? 2 : 1) * (2 * q_elems + 2 * kv_elems) * 2 + (j.backward ? 2 : 1) * rows * 4;
  if (need > usable_device_bytes()) { skip(j.path, "needs " + std::to_string(need >> 20) + " MiB; too little device memory"); return false; }

  // cuDNN's fused SDPA when it takes the graph; else the own kernels, said on stderr.
  std::string why;
  std::unique_ptr<CudnnSdpa> fwd = CudnnSdpa::create(et, a, false, &why), bwd;
  if (fwd && j.backward) {
    bwd = CudnnSdpa::create(et, a, true, &why);
    if (!bwd) fwd.reset();
  }
  if (!fwd) {
    if (j.head_dim > 256) { skip(j.path, "cuDNN SDPA unavailable (" + why + ") and head_dim > 256 is beyond the own kernels"); return false; }
    std::fprintf(stderr, "note: %s: cuDNN SDPA not used (%s); measuring with the own kernels\n", j.path.c_str(), why.c_str());
  }
  cudaStream_t s = make_stream();
  DeviceBuffer q(q_elems * 2), k(kv_elems * 2), v(kv_elems * 2), o(q_elems * 2), lse(rows * 4);
  fill_random(q.p, q_elems, et, 21, 1.0f, s);
  fill_random(k.p, kv_elems, et, 22, 1.0f, s);
  fill_random(v.p, kv_elems, et, 23, 1.0f, s);
  float* lse_p = static_cast<float*>(lse.p);
  if (!j.backward) {
    *t = time_on_stream(s, opt, [&](int) {
      if (fwd) fwd->forward(q.p, k.p, v.p, o.p, lse_p, s);
      else attention_fwd(et, a, q.p, k.p, v.p, o.p, lse_p, s);
    });
  } else {
    DeviceBuffer d_o(q_elems * 2), dq(q_elems * 2), dk(kv_elems * 2), dv(kv_elems * 2), delta(rows * 4);
    fill_random(d_o.p, q_elems, et, 24, 1.0f, s);
    // O and LSE for the backward
    if (fwd) fwd->forward(q.p, k.p, v.p, o.p, lse_p, s);
    else attention_fwd(et, a, q.p, k.p, v.p, o.p, lse_p, s);
    *t = time_on_stream(s, opt, [&](int) {
      if (bwd) bwd->backward(q.p, k.p, v.p, o.p, d_o.p, lse_p, dq.p, dk.p, dv.p, s);
      else attention_bwd(et, a, q.p, k.p, v.p, o.p, d_o.p, lse_p, static_cast<float*>(delta.p), dq.p, dk.p, dv.p, s);
    });
    TS_CUDA(cudaStreamSynchronize(s));
  }
  TS_CUDA(cudaStreamSynchronize(s));
  TS_CUDA(cudaStreamDestroy(s));
  *source = fwd ? (j.backward ? bwd->source() : fwd->source()) : kOwnAttentionSource;
  return true;
}

bool measure_memory_bound(const OpJob& j, const Options& opt, int device, Timing* t, std::string* source) {
  constexpr int64_t kRowBytes = 4096 * 2;  // rows of 4096 bf16 (kernels.cu)
  // Buffers per set, and the size of each, from the job's bytes (reads + writes).
  int nbuf = 2;
  int64_t buf_bytes = 0, count = 0;
  if (j.cls == "elementwise") {        // reads a, b; writes z: 3 equal tensors
    nbuf = 3;
    count = std::max<int64_t>(8, (j.bytes / 3 / 2) / 8 * 8);  // bf16 elements per tensor
    buf_bytes = count * 2;
  } else if (j.cls == "optimizer") {   // Adam: reads p, g, m, v; writes p, m, v: 28 B/element
    nbuf = 4;
    count = std::max<int64_t>(4, (j.bytes / 28) / 4 * 4);
    buf_bytes = count * 4;
  } else {                             // norm, embedding, loss: read x, write y
    nbuf = 2;
    count = std::max<int64_t>(1, (j.bytes / 2 + kRowBytes / 2) / kRowBytes);  // rows
    buf_bytes = count * kRowBytes;
  }
  const int64_t budget = usable_device_bytes();
  const int64_t set_bytes = nbuf * buf_bytes;
  if (set_bytes > budget) { skip(j.path, "needs " + std::to_string(set_bytes >> 20) + " MiB; too little device memory"); return false; }
  const int sets = rotation_sets(set_bytes, device, budget);
  cudaStream_t s = make_stream();
  std::vector<std::unique_ptr<DeviceBuffer>> bufs;
  for (int i = 0; i < sets * nbuf; ++i) {
    bufs.push_back(std::make_unique<DeviceBuffer>(buf_bytes));
    if (j.cls == "optimizer") {
      fill_random(bufs.back()->p, count, ElemType::kFP32, 31 + i, 1.0f, s);
    } else {
      fill_random(bufs.back()->p, buf_bytes / 2, ElemType::kBF16, 31 + i, 1.0f, s);
    }
  }
  if (j.cls == "optimizer")  // v must be >= 0
    for (int x = 0; x < sets; ++x) fill_value_f32(static_cast<float*>(bufs[x * nbuf + 3]->p), count, 1e-4f, s);
  DeviceBuffer weight(kRowBytes);
  fill_random(weight.p, kRowBytes / 2, ElemType::kBF16, 7, 1.0f, s);
  *t = time_on_stream(s, opt, [&](int i) {
    const int x = i % sets;
    void* b0 = bufs[x * nbuf]->p;
    void* b1 = bufs[x * nbuf + 1]->p;
    if (j.cls == "norm") rmsnorm_bf16(b0, weight.p, b1, count, s);
    else if (j.cls == "embedding") embedding_bf16(b0, b1, count, s);
    else if (j.cls == "loss") xent_bf16(b0, b1, count, s);
    else if (j.cls == "elementwise") swiglu_bf16(b0, b1, bufs[x * nbuf + 2]->p, count, s);
    else adam_f32(static_cast<float*>(b0), static_cast<const float*>(b1), static_cast<float*>(bufs[x * nbuf + 2]->p),
                  static_cast<float*>(bufs[x * nbuf + 3]->p), count, 1 + i, s);
  });
  TS_CUDA(cudaStreamSynchronize(s));
  bufs.clear();
  TS_CUDA(cudaStreamDestroy(s));
  const char* what = j.cls == "norm" ? "rmsnorm" : j.cls == "embedding" ? "row gather" : j.cls == "loss" ? "cross-entropy fwd+bwd"
                     : j.cls == "elementwise" ? "swiglu" : "adam fp32";
  *source = std::string("trainsim_calibrator own kernel (") + what + ")";
  return true;
}

}  // namespace tscal
