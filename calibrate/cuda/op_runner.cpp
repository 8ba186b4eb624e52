// File: calibrate/cuda/op_runner.cpp
// The runners of op_runner.h: GEMMs through cuBLASLt (TN layout, fp32 accumulate, the first of
// the heuristic's candidates that runs), attention through cuDNN fused SDPA (own kernels where
// cuDNN cannot take the graph), memory-bound ops through the own kernels of kernels.cu.
#include "op_runner.h"

#include "gemm_layout.h"

#include <cublasLt.h>

#include <algorithm>

#include "check.h"
#include "cudnn_sdpa.h"
#include "kernels.h"

namespace tscal {

namespace {

constexpr const char* kOwnAttentionSource = "trainsim_calibrator own kernel (scalar fused attention, not cuDNN)";
constexpr int64_t kGemmWorkspace = int64_t{64} << 20;
constexpr int64_t kRowBytes = 4096 * 2;  // memory-bound ops: rows of 4096 bf16 (kernels.cu)
constexpr int64_t kMaxPinnedBytes = int64_t{16} << 30;  // host copies: pinned host buffer limit

struct GemmTypes {
  cudaDataType_t in_t = CUDA_R_16BF, out_t = CUDA_R_16BF;
  ElemType fill_t = ElemType::kBF16;
  int64_t in_size = 2, out_size = 2;
  bool fp8 = false;
};

GemmTypes gemm_types(const std::string& dtype) {
  GemmTypes g;
  if (dtype == "fp16") { g.in_t = g.out_t = CUDA_R_16F; g.fill_t = ElemType::kFP16; }
  else if (dtype == "fp32") { g.in_t = g.out_t = CUDA_R_32F; g.fill_t = ElemType::kFP32; g.in_size = g.out_size = 4; }
  else if (dtype == "fp8") { g.in_t = CUDA_R_8F_E4M3; g.out_t = CUDA_R_16BF; g.fill_t = ElemType::kFP8E4M3; g.in_size = 1; g.fp8 = true; }
  return g;
}

// Memory-bound ops: buffers per set, each of buf_bytes, `count` elements or rows.
struct MemShape {
  int nbuf = 2;
  int64_t buf_bytes = 0, count = 0;
};

MemShape mem_shape(const OpJob& j) {
  MemShape m;
  if (j.cls == "elementwise") {        // reads a, b; writes z: 3 equal tensors
    m.nbuf = 3;
    m.count = std::max<int64_t>(8, (j.bytes / 3 / 2) / 8 * 8);  // bf16 elements per tensor
    m.buf_bytes = m.count * 2;
  } else if (j.cls == "optimizer") {   // Adam: reads p, g, m, v; writes p, m, v: 28 B/element
    m.nbuf = 4;
    m.count = std::max<int64_t>(4, (j.bytes / 28) / 4 * 4);
    m.buf_bytes = m.count * 4;
  } else {                             // norm, embedding, loss: read x, write y
    m.nbuf = 2;
    m.count = std::max<int64_t>(1, (j.bytes / 2 + kRowBytes / 2) / kRowBytes);  // rows
    m.buf_bytes = m.count * kRowBytes;
  }
  return m;
}

int64_t attention_bytes(const OpJob& j) {
  const int64_t q_elems = j.batch * j.heads * j.seq_q * j.head_dim;
  const int64_t kv_elems = j.batch * j.kv_heads * j.seq_kv * j.head_dim;
  const int64_t rows = j.batch * j.heads * j.seq_q;
  // q, o (+ do, dq) and k, v (+ dk, dv), 2 bytes each; lse (+ delta) fp32.
  return (j.backward ? 2 : 1) * (2 * q_elems + 2 * kv_elems) * 2 + (j.backward ? 2 : 1) * rows * 4;
}

// ---- GEMM ----------------------------------------------------------------------------------

class GemmRunner : public OpRunner {
 public:
  ~GemmRunner() override {
    if (pref_) cublasLtMatmulPreferenceDestroy(pref_);
    for (auto l : {la_, lb_, lc_})
      if (l) cublasLtMatrixLayoutDestroy(l);
    if (op_) cublasLtMatmulDescDestroy(op_);
    if (lt_) cublasLtDestroy(lt_);
  }

  // Returns false with *why when no algorithm runs (the object is then discarded).
  bool init(const OpJob& j, int sets, Arena* arena, cudaStream_t s, std::string* why) {
    arena_ = arena;
    sets_ = sets;
    const GemmTypes g = gemm_types(j.dtype);
    const int64_t m = j.m, n = j.n, k = j.k, batch = j.batch;
    const int64_t a_elems = m * k * batch, b_elems = k * n * batch, c_elems = m * n * batch;
    for (int i = 0; i < sets; ++i) {
      A_.push_back(alloc(a_elems * g.in_size));
      B_.push_back(alloc(b_elems * g.in_size));
      C_.push_back(alloc(c_elems * g.out_size));
      fill_random(A_.back(), a_elems, g.fill_t, 11 + i, 1.0f, s);
      fill_random(B_.back(), b_elems, g.fill_t, 1011 + i, 1.0f, s);
    }
    // Each fp8 scale in its own allocation (256-byte aligned), and for fp8 a C input apart from
    // the output D (beta = 0, so C is never read): the in-place C == D form with both scales in
    // one 8-byte buffer was refused at launch on an H100 (cuBLAS 13.1).
    fp8_ = g.fp8;
    workspace_ = alloc(kGemmWorkspace);
    void* scale_a = alloc(16);
    void* scale_b = alloc(16);
    c_in_ = fp8_ ? alloc(c_elems * g.out_size) : nullptr;
    fill_value_f32(static_cast<float*>(scale_a), 1, 1.0f, s);
    fill_value_f32(static_cast<float*>(scale_b), 1, 1.0f, s);

    TS_CUBLAS(cublasLtCreate(&lt_));
    const cublasComputeType_t compute = CUBLAS_COMPUTE_32F;  // fp32 accumulate (no TF32 for fp32 inputs)
    TS_CUBLAS(cublasLtMatmulDescCreate(&op_, compute, CUDA_R_32F));
    // The first statement of the product whose leading dimensions are aligned (gemm_layout.h).
    const GemmForm fm = choose_gemm_form(m, n, k, g.in_size, g.out_size, fp8_);
    const bool aligned = fm.aligned;
    swap_ = fm.swap;
    const cublasOperation_t ta = fm.tn ? CUBLAS_OP_T : CUBLAS_OP_N, tb = fm.tn ? CUBLAS_OP_N : CUBLAS_OP_T;
    TS_CUBLAS(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    TS_CUBLAS(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (fp8_) {
      const void* sa = scale_a;
      const void* sb = scale_b;
      TS_CUBLAS(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sa, sizeof sa));
      TS_CUBLAS(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sb, sizeof sb));
    }
    // cuBLAS's (M, N): C's rows and columns as stated; its A is our B when swapped.
    const int64_t M = fm.swap ? n : m, N = fm.swap ? m : n;
    const int64_t a_rows = fm.tn ? k : M, a_cols = fm.tn ? M : k;   // op(A) is M x k
    const int64_t b_rows = fm.tn ? k : N, b_cols = fm.tn ? N : k;   // op(B) is k x N
    TS_CUBLAS(cublasLtMatrixLayoutCreate(&la_, g.in_t, a_rows, a_cols, fm.lda));
    TS_CUBLAS(cublasLtMatrixLayoutCreate(&lb_, g.in_t, b_rows, b_cols, fm.ldb));
    TS_CUBLAS(cublasLtMatrixLayoutCreate(&lc_, g.out_t, M, N, fm.ldc));
    layout_ = fm.name;
    if (!aligned) layout_ += ", no layout with aligned leading dimensions";
    if (batch > 1) {
      const int32_t bc = static_cast<int32_t>(batch);
      const int64_t sa = fm.swap ? k * n : m * k, sb = fm.swap ? m * k : k * n, sc = m * n;
      for (auto [l, stride] : {std::pair{la_, sa}, std::pair{lb_, sb}, std::pair{lc_, sc}}) {
        TS_CUBLAS(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc));
        TS_CUBLAS(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride));
      }
    }
    TS_CUBLAS(cublasLtMatmulPreferenceCreate(&pref_));
    const size_t ws = static_cast<size_t>(kGemmWorkspace);
    TS_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref_, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    // Up to 8 candidate algorithms, best first: the first that runs once without error is used
    // (a heuristic's first pick can still refuse at launch, seen for fp8 on an H100 with cuBLAS
    // 13.1: "the requested functionality is not supported").
    constexpr int kCandidates = 8;
    cublasLtMatmulHeuristicResult_t heur[kCandidates]{};
    int found = 0;
    cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(lt_, op_, la_, lb_, lc_, lc_, pref_, kCandidates, heur, &found);
    if (hs == CUBLAS_STATUS_NOT_SUPPORTED || (hs == CUBLAS_STATUS_SUCCESS && found == 0)) {
      *why = std::string("cuBLASLt has no algorithm for this shape/dtype (") + cublasLtGetStatusString(hs) +
             "; fp8 needs m, n, k multiples of 16)";
      return false;
    }
    TS_CUBLAS(hs);
    int pick = -1;
    cublasStatus_t last = CUBLAS_STATUS_SUCCESS;
    const float alpha = 1.0f, beta = 0.0f;
    for (int c = 0; c < found && pick < 0; ++c) {
      last = cublasLtMatmul(lt_, op_, &alpha, swap_ ? B_[0] : A_[0], la_, swap_ ? A_[0] : B_[0], lb_, &beta,
                            fp8_ ? c_in_ : C_[0], lc_, C_[0], lc_,
                            &heur[c].algo, workspace_, ws, s);
      if (last == CUBLAS_STATUS_SUCCESS) pick = c;
    }
    TS_CUDA(cudaStreamSynchronize(s));
    if (pick < 0) {
      *why = "none of cuBLASLt's " + std::to_string(found) + " candidate algorithms ran (last: " +
             cublasLtGetStatusString(last) + ")";
      return false;
    }
    algo_ = heur[pick].algo;
    // The first layout keeps the source the committed H100 lines have.
    std::string detail;
    if (layout_ != "TN") detail = "layout " + layout_;
    if (pick > 0) detail += (detail.empty() ? "" : ", ") + std::string("heuristic candidate ") + std::to_string(pick + 1);
    source_ = "trainsim_calibrator cublasLt" + (detail.empty() ? std::string() : " (" + detail + ")");
    return true;
  }

  void run(cudaStream_t s, int i) override {
    const int x = i % sets_;
    const float alpha = 1.0f, beta = 0.0f;
    TS_CUBLAS(cublasLtMatmul(lt_, op_, &alpha, swap_ ? B_[x] : A_[x], la_, swap_ ? A_[x] : B_[x], lb_, &beta,
                             fp8_ ? c_in_ : C_[x], lc_, C_[x], lc_,
                             &algo_, workspace_, static_cast<size_t>(kGemmWorkspace), s));
  }

 private:
  cublasLtHandle_t lt_ = nullptr;
  cublasLtMatmulDesc_t op_ = nullptr;
  cublasLtMatrixLayout_t la_ = nullptr, lb_ = nullptr, lc_ = nullptr;
  cublasLtMatmulPreference_t pref_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  std::vector<void*> A_, B_, C_;
  void* workspace_ = nullptr;
  void* c_in_ = nullptr;
  bool fp8_ = false;
  bool swap_ = false;        // cuBLAS's A is our B (the C^T forms)
  std::string layout_;
};

// ---- attention -----------------------------------------------------------------------------

class AttentionRunner : public OpRunner {
 public:
  bool init(const OpJob& j, Arena* arena, cudaStream_t s, std::string* why, std::string* note) {
    arena_ = arena;
    sets_ = 1;
    et_ = j.dtype == "fp16" ? ElemType::kFP16 : ElemType::kBF16;
    a_ = AttnShape{static_cast<int>(j.batch), static_cast<int>(j.heads), static_cast<int>(j.kv_heads),
                   static_cast<int>(j.seq_q), static_cast<int>(j.seq_kv), static_cast<int>(j.head_dim), j.causal};
    backward_ = j.backward;
    // cuDNN's fused SDPA when it takes the graph; else the own kernels (the caller says so).
    std::string cwhy;
    fwd_ = CudnnSdpa::create(et_, a_, false, &cwhy);
    if (fwd_ && backward_) {
      bwd_ = CudnnSdpa::create(et_, a_, true, &cwhy);
      if (!bwd_) fwd_.reset();
    }
    if (!fwd_) {
      if (j.head_dim > 256) {
        *why = "cuDNN SDPA unavailable (" + cwhy + ") and head_dim > 256 is beyond the own kernels";
        return false;
      }
      *note = "cuDNN SDPA not used (" + cwhy + "); running the own kernels";
    }
    const int64_t q_elems = j.batch * j.heads * j.seq_q * j.head_dim;
    const int64_t kv_elems = j.batch * j.kv_heads * j.seq_kv * j.head_dim;
    const int64_t rows = j.batch * j.heads * j.seq_q;
    q_ = alloc(q_elems * 2);
    k_ = alloc(kv_elems * 2);
    v_ = alloc(kv_elems * 2);
    o_ = alloc(q_elems * 2);
    lse_ = static_cast<float*>(alloc(rows * 4));
    fill_random(q_, q_elems, et_, 21, 1.0f, s);
    fill_random(k_, kv_elems, et_, 22, 1.0f, s);
    fill_random(v_, kv_elems, et_, 23, 1.0f, s);
    if (backward_) {
      d_o_ = alloc(q_elems * 2);
      dq_ = alloc(q_elems * 2);
      dk_ = alloc(kv_elems * 2);
      dv_ = alloc(kv_elems * 2);
      delta_ = static_cast<float*>(alloc(rows * 4));
      fill_random(d_o_, q_elems, et_, 24, 1.0f, s);
      forward(s);  // O and LSE for the backward
      TS_CUDA(cudaStreamSynchronize(s));
    }
    source_ = fwd_ ? (backward_ ? bwd_->source() : fwd_->source()) : kOwnAttentionSource;
    return true;
  }

  void run(cudaStream_t s, int) override {
    if (!backward_) return forward(s);
    if (bwd_) bwd_->backward(q_, k_, v_, o_, d_o_, lse_, dq_, dk_, dv_, s);
    else attention_bwd(et_, a_, q_, k_, v_, o_, d_o_, lse_, delta_, dq_, dk_, dv_, s);
  }

 private:
  void forward(cudaStream_t s) {
    if (fwd_) fwd_->forward(q_, k_, v_, o_, lse_, s);
    else attention_fwd(et_, a_, q_, k_, v_, o_, lse_, s);
  }
  ElemType et_ = ElemType::kBF16;
  AttnShape a_{};
  bool backward_ = false;
  std::unique_ptr<CudnnSdpa> fwd_, bwd_;
  void *q_ = nullptr, *k_ = nullptr, *v_ = nullptr, *o_ = nullptr, *d_o_ = nullptr, *dq_ = nullptr, *dk_ = nullptr,
       *dv_ = nullptr;
  float *lse_ = nullptr, *delta_ = nullptr;
};

// ---- memory-bound --------------------------------------------------------------------------

class MemoryBoundRunner : public OpRunner {
 public:
  void init(const OpJob& j, int sets, Arena* arena, cudaStream_t s) {
    arena_ = arena;
    sets_ = sets;
    cls_ = j.cls;
    shape_ = mem_shape(j);
    for (int i = 0; i < sets * shape_.nbuf; ++i) {
      bufs_.push_back(alloc(shape_.buf_bytes));
      if (cls_ == "optimizer") fill_random(bufs_.back(), shape_.count, ElemType::kFP32, 31 + i, 1.0f, s);
      else fill_random(bufs_.back(), shape_.buf_bytes / 2, ElemType::kBF16, 31 + i, 1.0f, s);
    }
    if (cls_ == "optimizer")  // v must be >= 0
      for (int x = 0; x < sets; ++x)
        fill_value_f32(static_cast<float*>(bufs_[x * shape_.nbuf + 3]), shape_.count, 1e-4f, s);
    weight_ = alloc(kRowBytes);
    fill_random(weight_, kRowBytes / 2, ElemType::kBF16, 7, 1.0f, s);
    const char* what = cls_ == "norm" ? "rmsnorm" : cls_ == "embedding" ? "row gather"
                       : cls_ == "loss" ? "cross-entropy fwd+bwd" : cls_ == "elementwise" ? "swiglu" : "adam fp32";
    source_ = std::string("trainsim_calibrator own kernel (") + what + ")";
  }

  void run(cudaStream_t s, int i) override {
    const int x = i % sets_;
    const int nb = shape_.nbuf;
    void* b0 = bufs_[x * nb];
    void* b1 = bufs_[x * nb + 1];
    const int64_t count = shape_.count;
    if (cls_ == "norm") rmsnorm_bf16(b0, weight_, b1, count, s);
    else if (cls_ == "embedding") embedding_bf16(b0, b1, count, s);
    else if (cls_ == "loss") xent_bf16(b0, b1, count, s);
    else if (cls_ == "elementwise") swiglu_bf16(b0, b1, bufs_[x * nb + 2], count, s);
    else adam_f32(static_cast<float*>(b0), static_cast<const float*>(b1), static_cast<float*>(bufs_[x * nb + 2]),
                  static_cast<float*>(bufs_[x * nb + 3]), count, 1 + i, s);
  }

 private:
  std::string cls_;
  MemShape shape_;
  std::vector<void*> bufs_;
  void* weight_ = nullptr;
};

// ---- host copies (activation offload) ----------------------------------------------------

// One cudaMemcpyAsync of `bytes` between a device buffer and a pinned (page-locked) host buffer,
// in the job's direction: what the executor and a MEMO-style offload run on their copy streams.
class OffloadRunner : public OpRunner {
 public:
  ~OffloadRunner() override {
    if (host_) cudaFreeHost(host_);
  }
  void init(const OpJob& j, Arena* arena, cudaStream_t s) {
    arena_ = arena;
    bytes_ = j.bytes;
    to_host_ = offload_to_host(j);
    dev_ = alloc(bytes_);
    TS_CUDA(cudaHostAlloc(&host_, static_cast<size_t>(bytes_), cudaHostAllocDefault));
    fill_random(dev_, bytes_ / 2, ElemType::kBF16, 41, 1.0f, s);
    TS_CUDA(cudaMemcpyAsync(host_, dev_, static_cast<size_t>(bytes_), cudaMemcpyDeviceToHost, s));
    source_ = std::string("cudaMemcpyAsync ") + (to_host_ ? "device to pinned host" : "pinned host to device");
  }
  void run(cudaStream_t s, int) override {
    if (to_host_) TS_CUDA(cudaMemcpyAsync(host_, dev_, static_cast<size_t>(bytes_), cudaMemcpyDeviceToHost, s));
    else TS_CUDA(cudaMemcpyAsync(dev_, host_, static_cast<size_t>(bytes_), cudaMemcpyHostToDevice, s));
  }

 private:
  int64_t bytes_ = 0;
  bool to_host_ = true;
  void* dev_ = nullptr;
  void* host_ = nullptr;
};

}  // namespace

void* OpRunner::alloc(int64_t bytes) {
  bytes = std::max<int64_t>(bytes, 16);
  if (arena_) {
    const int64_t at = (arena_->used + 255) / 256 * 256;
    TS_CHECK(at + bytes <= arena_->size, "arena too small for the runner (runner_bytes undercounts)");
    arena_->used = at + bytes;
    return arena_->base + at;
  }
  owned_.push_back(std::make_unique<DeviceBuffer>(bytes));
  return owned_.back()->p;
}

int64_t runner_set_bytes(const OpJob& j) {
  if (j.cls == "gemm") {
    const GemmTypes g = gemm_types(j.dtype);
    return (j.m * j.k * j.batch + j.k * j.n * j.batch) * g.in_size + j.m * j.n * j.batch * g.out_size;
  }
  if (j.cls == "attention") return attention_bytes(j);
  if (j.cls == "offload") return j.bytes;
  const MemShape m = mem_shape(j);
  return m.nbuf * m.buf_bytes;
}

int64_t runner_fixed_bytes(const OpJob& j) {
  if (j.cls == "gemm") {
    const GemmTypes g = gemm_types(j.dtype);
    return kGemmWorkspace + 2 * 256 + (g.fp8 ? j.m * j.n * j.batch * g.out_size : 0);
  }
  if (j.cls == "attention" || j.cls == "offload") return 0;
  return kRowBytes;
}

std::unique_ptr<OpRunner> make_runner(const OpJob& j, int device, int sets, Arena* arena, cudaStream_t s,
                                      std::string* why, std::string* note) {
  note->clear();
  sets = std::max(1, sets);
  if (j.cls == "gemm") {
    if (j.dtype == "fp8") {
      cudaDeviceProp prop{};
      TS_CUDA(cudaGetDeviceProperties(&prop, device));
      const int cc = prop.major * 10 + prop.minor;
      if (cc < 89) {
        *why = "fp8 GEMM needs compute capability 8.9 or newer; this GPU is " + std::to_string(cc);
        return nullptr;
      }
    }
    auto r = std::make_unique<GemmRunner>();
    if (!r->init(j, sets, arena, s, why)) return nullptr;
    return r;
  }
  if (j.cls == "attention") {
    if (j.dtype == "fp8") {
      *why = "fp8 attention is not run (cuDNN SDPA and own kernels here are bf16/fp16)";
      return nullptr;
    }
    const int64_t max_int = 0x7fffffff;
    if (j.heads > 65535 || j.batch > 65535 || j.seq_q > max_int / 2 || j.seq_kv > max_int / 2) {
      *why = "shape beyond the kernels' grid limits";
      return nullptr;
    }
    auto r = std::make_unique<AttentionRunner>();
    if (!r->init(j, arena, s, why, note)) return nullptr;
    return r;
  }
  if (j.cls == "offload") {
    if (j.bytes > kMaxPinnedBytes) {
      *why = "host copy of " + std::to_string(j.bytes >> 20) + " MiB; at most " + std::to_string(kMaxPinnedBytes >> 20) +
             " MiB of pinned host memory is used";
      return nullptr;
    }
    auto r = std::make_unique<OffloadRunner>();
    r->init(j, arena, s);
    return r;
  }
  if (!is_memory_bound_class(j.cls)) {
    *why = "no runner for class \"" + j.cls + "\"";
    return nullptr;
  }
  auto r = std::make_unique<MemoryBoundRunner>();
  r->init(j, sets, arena, s);
  return r;
}

}  // namespace tscal
