#include "calibrate/host_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <Eigen/Dense>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#include <pmmintrin.h>
#endif

namespace trainsim {

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapMat = Eigen::Map<RowMat>;

constexpr int64_t kNormRow = 256;
constexpr int64_t kEmbedRow = 256;
constexpr int64_t kLossRow = 1024;
constexpr int64_t kAttnBlock = 64;

// Deterministic small values in [-0.5, 0.5) * scale.
void fill(std::vector<float>& v, uint64_t seed, float scale = 1.0f) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& f : v) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    f = (static_cast<float>((x >> 40) & 0xffffff) / 16777216.0f - 0.5f) * scale;
  }
}

int64_t elems(const OpDesc& op) { return std::max<int64_t>(1, op.bytes.count() / 2); }

class GemmKernel : public HostKernel {
 public:
  explicit GemmKernel(const OpDesc& op) : m_(op.m), n_(op.n), k_(op.k), batch_(op.batch) {
    a_.resize(m_ * k_);
    b_.resize(k_ * n_);
    c_.resize(m_ * n_);
    fill(a_, 1, 0.1f);
    fill(b_, 2, 0.1f);
  }
  void run() override {
    MapMat A(a_.data(), m_, k_), B(b_.data(), k_, n_), C(c_.data(), m_, n_);
    for (int64_t i = 0; i < batch_; ++i) C.noalias() = A * B;
  }
  int64_t footprint() const override { return 4 * static_cast<int64_t>(a_.size() + b_.size() + c_.size()); }

 private:
  int64_t m_, n_, k_, batch_;
  std::vector<float> a_, b_, c_;
};

class HostAttentionKernel : public HostKernel {
 public:
  explicit HostAttentionKernel(const OpDesc& op)
      : b_(std::max<int64_t>(1, op.attn_batch)), h_(std::max<int64_t>(1, op.heads)),
        kvh_(std::max<int64_t>(1, op.kv_heads > 0 ? op.kv_heads : op.heads)), sq_(op.seq_q), skv_(op.seq_kv),
        d_(op.head_dim), causal_(op.causal), backward_(op.backward) {
    q_.resize(b_ * h_ * sq_ * d_);
    o_.resize(q_.size());
    k_.resize(b_ * kvh_ * skv_ * d_);
    v_.resize(k_.size());
    fill(q_, 3);
    fill(k_, 4);
    fill(v_, 5);
    fill(o_, 6);
    s_.resize(kAttnBlock * skv_);
    if (backward_) {
      do_.resize(q_.size());
      dq_.resize(q_.size());
      dk_.resize(k_.size());
      dv_.resize(k_.size());
      dp_.resize(s_.size());
      fill(do_, 7);
    }
  }
  int64_t footprint() const override {
    return 4 * static_cast<int64_t>(q_.size() + o_.size() + k_.size() + v_.size() + s_.size() + do_.size() +
                                    dq_.size() + dk_.size() + dv_.size() + dp_.size());
  }
  void run() override {
    const float scale = 1.0f / std::sqrt(static_cast<float>(d_));
    const int64_t group = std::max<int64_t>(1, h_ / kvh_);
    const int64_t off = skv_ - sq_;   // bottom-right aligned causal mask
    if (backward_) {
      std::fill(dk_.begin(), dk_.end(), 0.0f);
      std::fill(dv_.begin(), dv_.end(), 0.0f);
    }
    for (int64_t b = 0; b < b_; ++b)
      for (int64_t h = 0; h < h_; ++h) {
        const int64_t kv = std::min(kvh_ - 1, h / group);
        float* q = q_.data() + ((b * h_ + h) * sq_) * d_;
        float* o = o_.data() + ((b * h_ + h) * sq_) * d_;
        float* kp = k_.data() + ((b * kvh_ + kv) * skv_) * d_;
        float* vp = v_.data() + ((b * kvh_ + kv) * skv_) * d_;
        MapMat K(kp, skv_, d_), V(vp, skv_, d_);
        for (int64_t r0 = 0; r0 < sq_; r0 += kAttnBlock) {
          const int64_t rows = std::min(kAttnBlock, sq_ - r0);
          const int64_t keys = causal_ ? std::clamp<int64_t>(r0 + rows + off, 1, skv_) : skv_;
          MapMat Q(q + r0 * d_, rows, d_), O(o + r0 * d_, rows, d_);
          MapMat S(s_.data(), rows, keys);
          S.noalias() = (Q * K.topRows(keys).transpose()) * scale;
          for (int64_t i = 0; i < rows; ++i) {   // mask, softmax
            const int64_t lim = causal_ ? std::min(keys, r0 + i + off + 1) : keys;
            float mx = -1e30f;
            for (int64_t j = 0; j < lim; ++j) mx = std::max(mx, S(i, j));
            float sum = 0;
            for (int64_t j = 0; j < lim; ++j) sum += (S(i, j) = std::exp(S(i, j) - mx));
            const float inv = sum > 0 ? 1.0f / sum : 0.0f;
            for (int64_t j = 0; j < lim; ++j) S(i, j) *= inv;
            for (int64_t j = lim; j < keys; ++j) S(i, j) = 0;
          }
          if (!backward_) {
            O.noalias() = S * V.topRows(keys);
            continue;
          }
          MapMat dO(do_.data() + ((b * h_ + h) * sq_ + r0) * d_, rows, d_);
          MapMat dQ(dq_.data() + ((b * h_ + h) * sq_ + r0) * d_, rows, d_);
          MapMat dK(dk_.data() + ((b * kvh_ + kv) * skv_) * d_, skv_, d_);
          MapMat dV(dv_.data() + ((b * kvh_ + kv) * skv_) * d_, skv_, d_);
          MapMat dP(dp_.data(), rows, keys);
          dV.topRows(keys).noalias() += S.transpose() * dO;
          dP.noalias() = dO * V.topRows(keys).transpose();
          for (int64_t i = 0; i < rows; ++i) {
            const float di = dO.row(i).dot(O.row(i));
            for (int64_t j = 0; j < keys; ++j) dP(i, j) = S(i, j) * (dP(i, j) - di) * scale;
          }
          dQ.noalias() = dP * K.topRows(keys);
          dK.topRows(keys).noalias() += dP.transpose() * Q;
        }
      }
  }

 private:
  int64_t b_, h_, kvh_, sq_, skv_, d_;
  bool causal_, backward_;
  std::vector<float> q_, k_, v_, o_, s_, do_, dq_, dk_, dv_, dp_;
};

class NormKernel : public HostKernel {
 public:
  NormKernel(const OpDesc& op) : backward_(op.backward) {
    const int64_t n = std::max<int64_t>(kNormRow, elems(op) / (backward_ ? 3 : 2));
    rows_ = std::max<int64_t>(1, n / kNormRow);
    x_.resize(rows_ * kNormRow);
    y_.resize(x_.size());
    g_.assign(kNormRow, 1.0f);
    fill(x_, 8);
    if (backward_) {
      dy_.resize(x_.size());
      fill(dy_, 9);
    }
  }
  int64_t footprint() const override { return 4 * static_cast<int64_t>(x_.size() + y_.size() + dy_.size() + g_.size()); }
  void run() override {
    for (int64_t r = 0; r < rows_; ++r) {
      const float* x = x_.data() + r * kNormRow;
      float* y = y_.data() + r * kNormRow;
      float ss = 0;
      for (int64_t j = 0; j < kNormRow; ++j) ss += x[j] * x[j];
      const float inv = 1.0f / std::sqrt(ss / kNormRow + 1e-6f);
      if (!backward_) {
        for (int64_t j = 0; j < kNormRow; ++j) y[j] = x[j] * inv * g_[j];
        continue;
      }
      const float* dy = dy_.data() + r * kNormRow;
      float dot = 0;
      for (int64_t j = 0; j < kNormRow; ++j) dot += dy[j] * g_[j] * x[j];
      const float c = dot * inv * inv * inv / kNormRow;
      for (int64_t j = 0; j < kNormRow; ++j) y[j] = dy[j] * g_[j] * inv - x[j] * c;
    }
  }

 private:
  bool backward_;
  int64_t rows_ = 1;
  std::vector<float> x_, y_, dy_, g_;
};

class ElementwiseKernel : public HostKernel {
 public:
  ElementwiseKernel(const OpDesc& op) : backward_(op.backward) {
    const int64_t n = std::max<int64_t>(1, elems(op) / 3);
    a_.resize(n);
    b_.resize(n);
    out_.resize(n);
    fill(a_, 10);
    fill(b_, 11, 4.0f);
  }
  int64_t footprint() const override { return 12 * static_cast<int64_t>(a_.size()); }
  void run() override {
    const size_t n = a_.size();
    if (!backward_) {
      for (size_t i = 0; i < n; ++i) out_[i] = a_[i] * b_[i] / (1.0f + std::exp(-b_[i]));
    } else {
      for (size_t i = 0; i < n; ++i) {
        const float s = 1.0f / (1.0f + std::exp(-b_[i]));
        out_[i] = a_[i] * s * (1.0f + b_[i] * (1.0f - s));
      }
    }
  }

 private:
  bool backward_;
  std::vector<float> a_, b_, out_;
};

class EmbeddingKernel : public HostKernel {
 public:
  EmbeddingKernel(const OpDesc& op) : backward_(op.backward) {
    rows_ = std::max<int64_t>(1, elems(op) / 2 / kEmbedRow);
    table_rows_ = std::max<int64_t>(rows_, 1024);
    table_.resize(table_rows_ * kEmbedRow);
    act_.resize(rows_ * kEmbedRow);
    idx_.resize(rows_);
    fill(table_, 12);
    fill(act_, 13);
    uint64_t x = 17;
    for (auto& i : idx_) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      i = static_cast<int64_t>((x >> 33) % static_cast<uint64_t>(table_rows_));
    }
  }
  int64_t footprint() const override { return 4 * static_cast<int64_t>(table_.size() + act_.size()) + 8 * rows_; }
  void run() override {
    for (int64_t r = 0; r < rows_; ++r) {
      float* t = table_.data() + idx_[r] * kEmbedRow;
      float* a = act_.data() + r * kEmbedRow;
      if (!backward_) std::memcpy(a, t, kEmbedRow * sizeof(float));
      else
        for (int64_t j = 0; j < kEmbedRow; ++j) t[j] += 1e-3f * a[j];
    }
  }

 private:
  bool backward_;
  int64_t rows_ = 1, table_rows_ = 1;
  std::vector<float> table_, act_;
  std::vector<int64_t> idx_;
};

class LossKernel : public HostKernel {
 public:
  LossKernel(const OpDesc& op) : backward_(op.backward) {
    rows_ = std::max<int64_t>(1, elems(op) / 2 / kLossRow);
    logits_.resize(rows_ * kLossRow);
    out_.resize(logits_.size());
    fill(logits_, 14, 8.0f);
  }
  int64_t footprint() const override { return 8 * static_cast<int64_t>(logits_.size()); }
  void run() override {
    float total = 0;
    for (int64_t r = 0; r < rows_; ++r) {
      const float* l = logits_.data() + r * kLossRow;
      float* g = out_.data() + r * kLossRow;
      const int64_t target = (r * 7919) % kLossRow;
      float mx = -1e30f;
      for (int64_t j = 0; j < kLossRow; ++j) mx = std::max(mx, l[j]);
      float sum = 0;
      for (int64_t j = 0; j < kLossRow; ++j) sum += std::exp(l[j] - mx);
      const float lse = mx + std::log(sum);
      if (!backward_) {
        total += lse - l[target];
        g[0] = total;
      } else {
        for (int64_t j = 0; j < kLossRow; ++j) g[j] = std::exp(l[j] - lse) - (j == target ? 1.0f : 0.0f);
      }
    }
  }

 private:
  bool backward_;
  int64_t rows_ = 1;
  std::vector<float> logits_, out_;
};

class AdamKernel : public HostKernel {
 public:
  AdamKernel(const OpDesc& op) {
    const int64_t n = std::max<int64_t>(1, op.bytes.count() / 34);
    p_.resize(n);
    g_.resize(n);
    m_.assign(n, 0.0f);
    v_.assign(n, 0.0f);
    fill(p_, 15);
    fill(g_, 16, 0.01f);
  }
  int64_t footprint() const override { return 16 * static_cast<int64_t>(p_.size()); }
  void run() override {
    ++step_;
    const float b1 = 0.9f, b2 = 0.999f, lr = 1e-4f, eps = 1e-8f;
    const float c1 = 1.0f / (1.0f - std::pow(b1, static_cast<float>(step_)));
    const float c2 = 1.0f / (1.0f - std::pow(b2, static_cast<float>(step_)));
    const size_t n = p_.size();
    for (size_t i = 0; i < n; ++i) {
      m_[i] = b1 * m_[i] + (1 - b1) * g_[i];
      v_[i] = b2 * v_[i] + (1 - b2) * g_[i] * g_[i];
      p_[i] -= lr * (m_[i] * c1) / (std::sqrt(v_[i] * c2) + eps);
    }
  }

 private:
  int64_t step_ = 0;
  std::vector<float> p_, g_, m_, v_;
};

class CopyKernel : public HostKernel {
 public:
  CopyKernel(const OpDesc& op) : src_(std::max<int64_t>(1, elems(op) / 2)), dst_(src_.size()) { fill(src_, 18); }
  int64_t footprint() const override { return 8 * static_cast<int64_t>(src_.size()); }
  void run() override { std::memcpy(dst_.data(), src_.data(), src_.size() * sizeof(float)); }

 private:
  std::vector<float> src_, dst_;
};

}  // namespace

void set_flush_denormals() {
#if defined(__x86_64__) || defined(__i386__)
  _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
  _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
#endif
}

int64_t comm_elements(const OpDesc& op) { return std::max<int64_t>(1, op.bytes.count() / 2); }

int64_t host_kernel_footprint(const OpDesc& op) {
  const int64_t e = elems(op);
  switch (op.cls) {
    case OpClass::kGemm: return 4 * (op.m * op.k + op.k * op.n + op.m * op.n);
    case OpClass::kAttention: {
      const int64_t b = std::max<int64_t>(1, op.attn_batch), h = std::max<int64_t>(1, op.heads),
                    kvh = std::max<int64_t>(1, op.kv_heads > 0 ? op.kv_heads : op.heads);
      const int64_t q = b * h * op.seq_q * op.head_dim, k = b * kvh * op.seq_kv * op.head_dim;
      const int64_t s = kAttnBlock * op.seq_kv;
      return 4 * (op.backward ? 3 * q + 4 * k + 2 * s + q : 2 * q + 2 * k + s);
    }
    case OpClass::kNorm: return 4 * e + 4 * kNormRow * 3;
    case OpClass::kElementwise: return 4 * e;
    case OpClass::kEmbedding: return 4 * e + 4 * 1024 * kEmbedRow;
    case OpClass::kLoss: return 4 * e + 4 * 2 * kLossRow;
    case OpClass::kOptimizer: return 16 * std::max<int64_t>(1, op.bytes.count() / 34);
    case OpClass::kOffload: return 4 * e;
    case OpClass::kCollective:
    case OpClass::kP2p: return 0;
  }
  return 0;
}

Result<std::unique_ptr<HostKernel>> make_host_kernel(const OpDesc& op, int64_t max_bytes) {
  const int64_t need = host_kernel_footprint(op);
  if (need > max_bytes)
    return Status::error(Error{"", "", op.name,
                               "the host kernel of this op needs " + std::to_string(need >> 20) +
                                   " MiB, over the host executor's limit of " + std::to_string(max_bytes >> 20) +
                                   " MiB; the host executor is meant for small scenarios (e.g. scenarios/verify_small.json)"});
  switch (op.cls) {
    case OpClass::kGemm: return std::unique_ptr<HostKernel>(new GemmKernel(op));
    case OpClass::kAttention: return std::unique_ptr<HostKernel>(new HostAttentionKernel(op));
    case OpClass::kNorm: return std::unique_ptr<HostKernel>(new NormKernel(op));
    case OpClass::kElementwise: return std::unique_ptr<HostKernel>(new ElementwiseKernel(op));
    case OpClass::kEmbedding: return std::unique_ptr<HostKernel>(new EmbeddingKernel(op));
    case OpClass::kLoss: return std::unique_ptr<HostKernel>(new LossKernel(op));
    case OpClass::kOptimizer: return std::unique_ptr<HostKernel>(new AdamKernel(op));
    case OpClass::kOffload: return std::unique_ptr<HostKernel>(new CopyKernel(op));
    case OpClass::kCollective:
    case OpClass::kP2p: break;
  }
  return Status::error(Error{"", "", op.name, "a communication op has no compute kernel (bug in the caller)"});
}

}  // namespace trainsim
