// File: calibrate/cuda/cudnn_sdpa.cpp
// cuDNN fused SDPA through the backend descriptor API (see cudnn_sdpa.h for the graphs).
// Graph construction failures (an operation cuDNN rejects, no engine for the pattern) are
// reported to the caller as text so that it can fall back; failures while executing a plan that
// finalized are bugs or device errors and exit like every other checked call (check.h).
#include "cudnn_sdpa.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "check.h"

#ifdef TRAINSIM_HAVE_CUDNN
#include <cudnn.h>
#endif

namespace tscal {

#if defined(TRAINSIM_HAVE_CUDNN) && CUDNN_MAJOR >= 9

namespace {

// A rejected call while building: carries "call at file:line: status (cuDNN's last message)".
struct BuildError {
  std::string msg;
};

std::string describe(const char* call, const char* file, int line, cudnnStatus_t st) {
  char last[1024] = {0};
  cudnnGetLastErrorString(last, sizeof last);
  std::string m = std::string(call) + " at " + file + ":" + std::to_string(line) + ": " + cudnnGetErrorString(st);
  if (last[0]) m += std::string(" (") + last + ")";
  return m;
}

#define TS_CUDNN_TRY(call)                                                                   \
  do {                                                                                       \
    cudnnStatus_t ts_s_ = (call);                                                            \
    if (ts_s_ != CUDNN_STATUS_SUCCESS) throw BuildError{describe(#call, __FILE__, __LINE__, ts_s_)}; \
  } while (0)
#define TS_SET(d, name, type, n, v) TS_CUDNN_TRY(cudnnBackendSetAttribute(d, name, type, n, v))

// Owns one backend descriptor.
class Desc {
 public:
  explicit Desc(cudnnBackendDescriptorType_t t) { TS_CUDNN_TRY(cudnnBackendCreateDescriptor(t, &d_)); }
  ~Desc() {
    if (d_) cudnnBackendDestroyDescriptor(d_);
  }
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;
  cudnnBackendDescriptor_t get() const { return d_; }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

using Dims = std::array<int64_t, 4>;

// Tensor UIDs of the non-virtual tensors (the variant pack); virtual ones count up from kFirstVirtual.
enum Uid : int64_t {
  kQ = 1, kK, kV, kO, kStats, kScale, kNegInf, kDO, kDQ, kDK, kDV, kOne, kSoftmaxSum, kDQAccum,
  kFirstVirtual = 100,
};

// Collects descriptors (kept alive until the operation graph is finalized) and operations.
class GraphBuilder {
 public:
  GraphBuilder(std::vector<std::unique_ptr<Desc>>* keep, std::string* stage) : keep_(keep), stage_(stage) {}

  cudnnBackendDescriptor_t tensor(int64_t uid, cudnnDataType_t dt, const Dims& dim, const Dims& stride, bool is_virtual,
                                  bool by_value = false) {
    cudnnBackendDescriptor_t t = make(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    const int64_t align = 16;
    TS_SET(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt);
    TS_SET(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dim.data());
    TS_SET(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, stride.data());
    TS_SET(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    TS_SET(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
    const bool virt = is_virtual;
    TS_SET(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &virt);
    if (by_value) {
      const bool bv = true;
      TS_SET(t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &bv);
    }
    TS_CUDNN_TRY(cudnnBackendFinalize(t));
    return t;
  }
  cudnnBackendDescriptor_t virt(cudnnDataType_t dt, const Dims& dim, const Dims& stride) {
    return tensor(next_uid_++, dt, dim, stride, true);
  }
  cudnnBackendDescriptor_t scalar(int64_t uid) {
    return tensor(uid, CUDNN_DATA_FLOAT, {1, 1, 1, 1}, {1, 1, 1, 1}, false, true);
  }

  // y = mode(x[, b[, t]]); compute (math precision) `prec`; `axis` for GEN_INDEX.
  void pointwise(const char* what, cudnnPointwiseMode_t mode, cudnnDataType_t prec, cudnnBackendDescriptor_t x,
                 cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t t, cudnnBackendDescriptor_t y, int64_t axis = -1) {
    *stage_ = what;
    cudnnBackendDescriptor_t pw = make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    TS_SET(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    TS_SET(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec);
    if (axis >= 0) TS_SET(pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis);
    TS_CUDNN_TRY(cudnnBackendFinalize(pw));
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    TS_SET(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw);
    TS_SET(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
    if (b) TS_SET(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b);
    if (t) TS_SET(op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &t);
    TS_SET(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
    TS_CUDNN_TRY(cudnnBackendFinalize(op));
    ops_.push_back(op);
  }
  void matmul(const char* what, cudnnBackendDescriptor_t a, cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t c) {
    *stage_ = what;
    cudnnBackendDescriptor_t mm = make(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    TS_SET(mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp);
    TS_CUDNN_TRY(cudnnBackendFinalize(mm));
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
    TS_SET(op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &a);
    TS_SET(op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b);
    TS_SET(op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c);
    TS_SET(op, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mm);
    TS_CUDNN_TRY(cudnnBackendFinalize(op));
    ops_.push_back(op);
  }
  void reduction(const char* what, cudnnReduceTensorOp_t mode, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
    *stage_ = what;
    cudnnBackendDescriptor_t rd = make(CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
    const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    TS_SET(rd, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode);
    TS_SET(rd, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp);
    TS_CUDNN_TRY(cudnnBackendFinalize(rd));
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
    TS_SET(op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
    TS_SET(op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
    TS_SET(op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &rd);
    TS_CUDNN_TRY(cudnnBackendFinalize(op));
    ops_.push_back(op);
  }
  void reshape(const char* what, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
    *stage_ = what;
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR);
    TS_SET(op, CUDNN_ATTR_OPERATION_RESHAPE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
    TS_SET(op, CUDNN_ATTR_OPERATION_RESHAPE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
    TS_CUDNN_TRY(cudnnBackendFinalize(op));
    ops_.push_back(op);
  }

  cudnnBackendDescriptor_t make(cudnnBackendDescriptorType_t type) {
    keep_->push_back(std::make_unique<Desc>(type));
    return keep_->back()->get();
  }
  const std::vector<cudnnBackendDescriptor_t>& ops() const { return ops_; }

 private:
  std::vector<std::unique_ptr<Desc>>* keep_;
  std::string* stage_;
  int64_t next_uid_ = kFirstVirtual;
  std::vector<cudnnBackendDescriptor_t> ops_;
};

int64_t round_up(int64_t x, int64_t a) { return (x + a - 1) / a * a; }

}  // namespace

struct CudnnSdpa::Impl {
  cudnnHandle_t handle = nullptr;
  // Every descriptor the plan was built from (tensors, operations, graph, engine configs), kept
  // for the plan's lifetime: nothing in the backend API promises that a finalized plan holds
  // its own copies.
  std::vector<std::unique_ptr<Desc>> keep;
  std::unique_ptr<Desc> plan;
  AttnShape a{};
  bool backward = false;
  int64_t engine = -1;
  int64_t plan_ws = 0, ws_bytes = 0, softmax_sum_off = 0, dq_accum_off = 0;
  void* ws = nullptr;
  float scale = 1.0f, neg_inf = 0.0f, one = 1.0f;
  bool zero_dq_accum = false;  // cuDNN < 9.6 expects the caller to zero the dQ accumulator

  ~Impl() {
    plan.reset();
    keep.clear();
    if (ws) cudaFree(ws);
    if (handle) cudnnDestroy(handle);
  }

  // Builds the graph, runs heuristics and finalizes the first plan that cuDNN accepts.
  void build(cudnnDataType_t io, std::string* stage) {
    TS_CUDNN_TRY(cudnnCreate(&handle));
    const int64_t b = a.batch, h = a.heads, hk = a.kv_heads, sq = a.seq_q, skv = a.seq_kv, d = a.head_dim;
    const Dims q_dim{b, h, sq, d}, q_str{h * sq * d, sq * d, d, 1};
    // K as K^T [b, hk, d, s_kv] over the same memory (the backend's matmul takes B as k x n).
    const Dims kt_dim{b, hk, d, skv}, kt_str{hk * skv * d, skv * d, 1, d};
    const Dims kv_dim{b, hk, skv, d}, kv_str{hk * skv * d, skv * d, d, 1};
    const Dims s_dim{b, h, sq, skv}, s_str{h * sq * skv, sq * skv, skv, 1};
    const Dims st_dim{b, h, skv, sq}, st_str{h * sq * skv, sq * skv, 1, skv};  // S^T over S's memory
    const Dims row_dim{b, h, sq, 1}, row_str{h * sq, sq, 1, 1};
    const cudnnDataType_t f32 = CUDNN_DATA_FLOAT;

    GraphBuilder g(&keep, stage);
    *stage = "tensors";
    auto Q = g.tensor(kQ, io, q_dim, q_str, false);
    auto Stats = g.tensor(kStats, f32, row_dim, row_str, false);
    auto Scale = g.scalar(kScale);
    auto NegInf = g.scalar(kNegInf);

    // S = (Q K^T) * scale, then the causal mask (top-left aligned; seq_q == seq_kv here).
    auto scores = [&](cudnnBackendDescriptor_t KT) {
      auto S = g.virt(f32, s_dim, s_str);
      g.matmul("matmul Q K^T", Q, KT, S);
      auto S1 = g.virt(f32, s_dim, s_str);
      g.pointwise("mul attn scale", CUDNN_POINTWISE_MUL, f32, S, Scale, nullptr, S1);
      return S1;
    };
    auto causal_mask = [&](cudnnBackendDescriptor_t S) {
      if (!a.causal) return S;
      auto row = g.virt(CUDNN_DATA_INT32, s_dim, s_str);
      g.pointwise("gen_index row", CUDNN_POINTWISE_GEN_INDEX, f32, S, nullptr, nullptr, row, 2);
      auto col = g.virt(CUDNN_DATA_INT32, s_dim, s_str);
      g.pointwise("gen_index col", CUDNN_POINTWISE_GEN_INDEX, f32, S, nullptr, nullptr, col, 3);
      auto keep = g.virt(CUDNN_DATA_BOOLEAN, s_dim, s_str);
      g.pointwise("cmp_ge row col", CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, row, col, nullptr, keep);
      auto masked = g.virt(f32, s_dim, s_str);
      // y = keep ? S : -inf
      g.pointwise("binary_select causal", CUDNN_POINTWISE_BINARY_SELECT, f32, S, NegInf, keep, masked);
      return masked;
    };

    if (!backward) {
      auto KT = g.tensor(kK, io, kt_dim, kt_str, false);
      auto V = g.tensor(kV, io, kv_dim, kv_str, false);
      auto O = g.tensor(kO, io, q_dim, q_str, false);
      auto S = causal_mask(scores(KT));
      auto mx = g.virt(f32, row_dim, row_str);
      g.reduction("reduction max", CUDNN_REDUCE_TENSOR_MAX, S, mx);
      auto sub = g.virt(f32, s_dim, s_str);
      g.pointwise("sub max", CUDNN_POINTWISE_SUB, f32, S, mx, nullptr, sub);
      auto e = g.virt(f32, s_dim, s_str);
      g.pointwise("exp", CUDNN_POINTWISE_EXP, f32, sub, nullptr, nullptr, e);
      auto sum = g.virt(f32, row_dim, row_str);
      g.reduction("reduction add", CUDNN_REDUCE_TENSOR_ADD, e, sum);
      auto lg = g.virt(f32, row_dim, row_str);
      g.pointwise("log sum", CUDNN_POINTWISE_LOG, f32, sum, nullptr, nullptr, lg);
      g.pointwise("stats = max + log sum", CUDNN_POINTWISE_ADD, f32, mx, lg, nullptr, Stats);
      auto P = g.virt(io, s_dim, s_str);  // the backend takes the second matmul's A in the io type
      g.pointwise("div sum", CUDNN_POINTWISE_DIV, f32, e, sum, nullptr, P);
      g.matmul("matmul P V", P, V, O);
    } else {
      auto KT = g.tensor(kK, io, kt_dim, kt_str, false);
      auto VT = g.tensor(kV, io, kt_dim, kt_str, false);  // V^T [b, hk, d, s_kv]
      auto O = g.tensor(kO, io, q_dim, q_str, false);
      auto dO = g.tensor(kDO, io, q_dim, q_str, false);
      auto dQ = g.tensor(kDQ, io, q_dim, q_str, false);
      auto dK = g.tensor(kDK, io, kv_dim, kv_str, false);
      auto dV = g.tensor(kDV, io, kv_dim, kv_str, false);
      auto One = g.scalar(kOne);
      auto SoftmaxSum = g.tensor(kSoftmaxSum, f32, row_dim, row_str, false);  // workspace
      auto DQAccum = g.tensor(kDQAccum, f32, q_dim, q_str, false);            // workspace

      // softmax_sum = rowsum(dO * O) (* 1: the dropout-scale slot of cudnn_frontend's graph)
      auto dOO = g.virt(f32, q_dim, q_str);
      g.pointwise("mul dO O", CUDNN_POINTWISE_MUL, f32, dO, O, nullptr, dOO);
      auto rs = g.virt(f32, row_dim, row_str);
      g.reduction("reduction rowsum dO O", CUDNN_REDUCE_TENSOR_ADD, dOO, rs);
      g.pointwise("mul softmax_sum one", CUDNN_POINTWISE_MUL, f32, rs, One, nullptr, SoftmaxSum);

      // P = exp(S * scale - Stats), masked
      auto S = scores(KT);
      auto sub = g.virt(f32, s_dim, s_str);
      g.pointwise("sub stats", CUDNN_POINTWISE_SUB, f32, S, Stats, nullptr, sub);
      auto masked = causal_mask(sub);
      auto P = g.virt(f32, s_dim, s_str);
      g.pointwise("exp", CUDNN_POINTWISE_EXP, f32, masked, nullptr, nullptr, P);

      // dV = P^T dO (per query head, then summed over the group for GQA)
      const bool gqa = h != hk;
      const Dims full_dim{b, h, skv, d}, full_str{h * skv * d, skv * d, d, 1};
      auto PT = g.virt(io, st_dim, st_str);
      g.reshape("reshape P^T", P, PT);
      if (!gqa) {
        g.matmul("matmul P^T dO", PT, dO, dV);
      } else {
        auto dVfull = g.virt(io, full_dim, full_str);
        g.matmul("matmul P^T dO (full heads)", PT, dO, dVfull);
        g.reduction("reduction dV over head group", CUDNN_REDUCE_TENSOR_ADD, dVfull, dV);
      }

      // dS = P * (dO V^T - softmax_sum) * scale
      auto dP = g.virt(f32, s_dim, s_str);
      g.matmul("matmul dO V^T", dO, VT, dP);
      auto t1 = g.virt(f32, s_dim, s_str);
      g.pointwise("sub softmax_sum", CUDNN_POINTWISE_SUB, f32, dP, SoftmaxSum, nullptr, t1);
      auto t2 = g.virt(f32, s_dim, s_str);
      g.pointwise("mul P", CUDNN_POINTWISE_MUL, f32, t1, P, nullptr, t2);
      auto dS = g.virt(f32, s_dim, s_str);
      g.pointwise("mul dS attn scale", CUDNN_POINTWISE_MUL, f32, t2, Scale, nullptr, dS);

      // dK = dS^T Q
      auto dST = g.virt(io, st_dim, st_str);
      g.reshape("reshape dS^T", dS, dST);
      if (!gqa) {
        g.matmul("matmul dS^T Q", dST, Q, dK);
      } else {
        auto dKfull = g.virt(io, full_dim, full_str);
        g.matmul("matmul dS^T Q (full heads)", dST, Q, dKfull);
        g.reduction("reduction dK over head group", CUDNN_REDUCE_TENSOR_ADD, dKfull, dK);
      }

      // dQ = dS K through an fp32 accumulator in the workspace
      auto K = g.virt(f32, kv_dim, kv_str);
      g.reshape("reshape K^T -> K", KT, K);
      g.matmul("matmul dS K", dS, K, DQAccum);
      g.pointwise("identity dQ", CUDNN_POINTWISE_IDENTITY, f32, DQAccum, nullptr, nullptr, dQ);
    }

    *stage = "operation graph";
    const auto& ops = g.ops();
    cudnnBackendDescriptor_t gd = g.make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    TS_SET(gd, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
    TS_SET(gd, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, static_cast<int64_t>(ops.size()), ops.data());
    TS_CUDNN_TRY(cudnnBackendFinalize(gd));

    *stage = "heuristics (mode A)";
    cudnnBackendDescriptor_t heur = g.make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
    TS_SET(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &gd);
    TS_SET(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    TS_CUDNN_TRY(cudnnBackendFinalize(heur));
    int64_t n = 0;
    TS_CUDNN_TRY(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &n, nullptr));
    if (n <= 0) throw BuildError{"heuristics mode A returned no engine config for this graph"};
    std::vector<cudnnBackendDescriptor_t> raw;
    for (int64_t i = 0; i < n; ++i) raw.push_back(g.make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
    int64_t got = 0;
    TS_CUDNN_TRY(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, n, &got,
                                          raw.data()));

    *stage = "execution plan";
    std::string reasons;
    for (int64_t i = 0; i < got && !plan; ++i) {
      auto p = std::make_unique<Desc>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      TS_SET(p->get(), CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
      TS_SET(p->get(), CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &raw[i]);
      const cudnnStatus_t st = cudnnBackendFinalize(p->get());
      if (st != CUDNN_STATUS_SUCCESS) {  // this config cannot run here: try the next one
        reasons += (reasons.empty() ? "" : "; ") + std::string("config ") + std::to_string(i) + ": " +
                   describe("cudnnBackendFinalize(plan)", __FILE__, __LINE__, st);
        continue;
      }
      plan = std::move(p);
      Desc eng(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
      cudnnBackendDescriptor_t ed = eng.get();
      int64_t cnt = 0;
      TS_CUDNN_TRY(cudnnBackendGetAttribute(raw[i], CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cnt, &ed));
      TS_CUDNN_TRY(cudnnBackendGetAttribute(ed, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &cnt, &engine));
      TS_CUDNN_TRY(cudnnBackendGetAttribute(plan->get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &cnt,
                                            &plan_ws));
    }
    if (!plan) throw BuildError{"no engine config of " + std::to_string(got) + " finalized: " + reasons};

    // Workspace: the plan's, then (backward) softmax_sum and the fp32 dQ accumulator.
    ws_bytes = round_up(std::max<int64_t>(plan_ws, 0), 256);
    if (backward) {
      softmax_sum_off = ws_bytes;
      ws_bytes += round_up(b * h * sq * 4, 256);
      dq_accum_off = ws_bytes;
      ws_bytes += round_up(b * h * sq * d * 4, 256);
    }
    TS_CUDA(cudaMalloc(&ws, static_cast<size_t>(std::max<int64_t>(ws_bytes, 256))));   // never a null workspace
    scale = 1.0f / std::sqrt(static_cast<float>(a.head_dim));
    // cudnn_frontend uses the lowest float before cuDNN 9.10, -inf from then on.
    neg_inf = cudnnGetVersion() < 91000 ? std::numeric_limits<float>::lowest() : -std::numeric_limits<float>::infinity();
    zero_dq_accum = cudnnGetVersion() < 90600;
  }

  void execute(std::vector<int64_t> uids, std::vector<void*> ptrs, cudaStream_t s) {
    // The -inf scalar is a graph tensor only with the causal mask: a variant pack naming a UID
    // the graph lacks was refused (CUDNN_STATUS_BAD_PARAM_NULL_POINTER, isCompatibleVariantPack,
    // cuDNN 9.14 on an H100).
    if (!a.causal)
      for (size_t i = 0; i < uids.size(); ++i)
        if (uids[i] == kNegInf) {
          uids.erase(uids.begin() + static_cast<std::ptrdiff_t>(i));
          ptrs.erase(ptrs.begin() + static_cast<std::ptrdiff_t>(i));
          break;
        }
    TS_CUDNN(cudnnSetStream(handle, s));
    cudnnBackendDescriptor_t vp = nullptr;
    TS_CUDNN(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp));
    TS_CUDNN(cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
                                      static_cast<int64_t>(uids.size()), uids.data()));
    TS_CUDNN(cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
                                      static_cast<int64_t>(ptrs.size()), ptrs.data()));
    TS_CUDNN(cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws));
    TS_CUDNN(cudnnBackendFinalize(vp));
    TS_CUDNN(cudnnBackendExecute(handle, plan->get(), vp));
    TS_CUDNN(cudnnBackendDestroyDescriptor(vp));
  }
};

std::unique_ptr<CudnnSdpa> CudnnSdpa::create(ElemType t, const AttnShape& a, bool backward, std::string* why) {
  if (t != ElemType::kBF16 && t != ElemType::kFP16) { *why = "cuDNN SDPA is built for bf16/fp16 only"; return nullptr; }
  if (a.causal && a.seq_q != a.seq_kv) {
    *why = "causal with seq_q != seq_kv (bottom-right mask) is not built for cuDNN";
    return nullptr;
  }
  // cudnn_frontend adds a padding mask (seq_len tensors) to the backward graph in this case:
  // without it cuDNN <= 9.15 computes wrong gradients. Not built here.
  if (backward && a.seq_kv % 128 != 0 && cudnnGetVersion() <= 91500) {
    *why = "cuDNN " + std::to_string(cudnnGetVersion()) +
           " <= 9.15 backward with seq_kv % 128 != 0 needs cudnn_frontend's padding-mask workaround (not built)";
    return nullptr;
  }
  auto impl = std::make_unique<Impl>();
  impl->a = a;
  impl->backward = backward;
  std::string stage;
  try {
    impl->build(t == ElemType::kFP16 ? CUDNN_DATA_HALF : CUDNN_DATA_BFLOAT16, &stage);
  } catch (const BuildError& e) {
    *why = std::string(backward ? "backward" : "forward") + " graph, " + stage + ": " + e.msg;
    return nullptr;
  }
  return std::unique_ptr<CudnnSdpa>(new CudnnSdpa(std::move(impl)));
}

void CudnnSdpa::forward(const void* q, const void* k, const void* v, void* o, float* lse, cudaStream_t s) {
  Impl& m = *impl_;
  TS_CHECK(!m.backward, "CudnnSdpa::forward on a backward plan");
  m.execute({kQ, kK, kV, kO, kStats, kScale, kNegInf},
            {const_cast<void*>(q), const_cast<void*>(k), const_cast<void*>(v), o, lse, &m.scale, &m.neg_inf}, s);
}

void CudnnSdpa::backward(const void* q, const void* k, const void* v, const void* o, const void* d_o, const float* lse,
                         void* dq, void* dk, void* dv, cudaStream_t s) {
  Impl& m = *impl_;
  TS_CHECK(m.backward, "CudnnSdpa::backward on a forward plan");
  char* ws = static_cast<char*>(m.ws);
  if (m.zero_dq_accum) {
    const int64_t bytes = int64_t{m.a.batch} * m.a.heads * m.a.seq_q * m.a.head_dim * 4;
    TS_CUDA(cudaMemsetAsync(ws + m.dq_accum_off, 0, static_cast<size_t>(bytes), s));
  }
  m.execute({kQ, kK, kV, kO, kStats, kScale, kNegInf, kDO, kDQ, kDK, kDV, kOne, kSoftmaxSum, kDQAccum},
            {const_cast<void*>(q), const_cast<void*>(k), const_cast<void*>(v), const_cast<void*>(o),
             const_cast<float*>(lse), &m.scale, &m.neg_inf, const_cast<void*>(d_o), dq, dk, dv, &m.one,
             ws + m.softmax_sum_off, ws + m.dq_accum_off},
            s);
}

int64_t CudnnSdpa::engine() const { return impl_->engine; }
int64_t CudnnSdpa::workspace_bytes() const { return impl_->ws_bytes; }

#else  // no cuDNN 9

struct CudnnSdpa::Impl {
  int64_t engine = -1, ws_bytes = 0;
};

std::unique_ptr<CudnnSdpa> CudnnSdpa::create(ElemType, const AttnShape&, bool, std::string* why) {
#ifdef TRAINSIM_HAVE_CUDNN
  *why = "cuDNN SDPA through the backend API needs cuDNN 9 (built with an older cuDNN)";
#else
  *why = "built without cuDNN";
#endif
  return nullptr;
}
void CudnnSdpa::forward(const void*, const void*, const void*, void*, float*, cudaStream_t) { std::abort(); }
void CudnnSdpa::backward(const void*, const void*, const void*, const void*, const void*, const float*, void*, void*, void*,
                         cudaStream_t) {
  std::abort();
}
int64_t CudnnSdpa::engine() const { return -1; }
int64_t CudnnSdpa::workspace_bytes() const { return 0; }

#endif

CudnnSdpa::CudnnSdpa(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudnnSdpa::~CudnnSdpa() = default;

std::string CudnnSdpa::source() const {
  return "trainsim_calibrator cuDNN fused SDPA (backend API, engine " + std::to_string(engine()) + ")";
}

}  // namespace tscal
