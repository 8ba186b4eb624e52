// File: calibrate/cuda/attention_check.cpp
// --check-attention: an oracle test (STYLE.md section 7, layer 2) of cuDNN's fused SDPA against
// the own attention kernels, which compute in fp32 and serve as the reference. Outputs are
// poisoned (all bits set: NaN in bf16 and fp32) before each run so that an output the graph
// never writes shows up as NaN instead of passing on stale values.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "calibrator.h"
#include "check.h"
#include "cudnn_sdpa.h"
#include "kernels.h"

namespace tscal {
namespace {

constexpr double kTolerance = 2e-2;

float bf16_to_float(uint16_t h) {
  const uint32_t u = uint32_t{h} << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

std::vector<float> download(const void* p, int64_t n, bool bf16) {
  std::vector<float> out(static_cast<size_t>(n));
  if (bf16) {
    std::vector<uint16_t> h(static_cast<size_t>(n));
    TS_CUDA(cudaMemcpy(h.data(), p, static_cast<size_t>(n) * 2, cudaMemcpyDeviceToHost));
    for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_float(h[i]);
  } else {
    TS_CUDA(cudaMemcpy(out.data(), p, static_cast<size_t>(n) * 4, cudaMemcpyDeviceToHost));
  }
  return out;
}

// ||out - ref|| / ||ref||; NaN when out holds a NaN (or ref is all zeros).
double rel_err(const std::vector<float>& out, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double{out[i]} - double{ref[i]};
    num += d * d;
    den += double{ref[i]} * ref[i];
  }
  if (!(den > 0)) return std::nan("");
  return std::sqrt(num / den);
}

}  // namespace

int check_attention(int device) {
  TS_CUDA(cudaSetDevice(device));
  cudaDeviceProp prop{};
  TS_CUDA(cudaGetDeviceProperties(&prop, device));
  std::printf("check-attention: %s (cc %d.%d); cuDNN fused SDPA vs own fp32-compute kernels, bf16, tolerance %.0e\n",
              prop.name, prop.major, prop.minor, kTolerance);
  std::printf("%-44s %-8s %10s %10s %10s %10s %10s  %s\n", "case", "engines", "O", "stats", "dQ", "dK", "dV", "");
  cudaStream_t s;
  TS_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  int failed = 0, cases = 0;
  for (int hkv : {2, 4})
    for (int seq : {256, 1024})
      for (int d : {64, 128})
        for (bool causal : {false, true}) {
          ++cases;
          const AttnShape a{1, 4, hkv, seq, seq, d, causal};
          char name[96];
          std::snprintf(name, sizeof name, "b=1 h=4 h_kv=%d s=%d d=%d %s", hkv, seq, d, causal ? "causal" : "full");
          const ElemType et = ElemType::kBF16;
          std::string why;
          auto fwd = CudnnSdpa::create(et, a, false, &why);
          std::unique_ptr<CudnnSdpa> bwd;
          if (fwd) bwd = CudnnSdpa::create(et, a, true, &why);
          if (!fwd || !bwd) {
            std::printf("%-44s FAIL: cuDNN SDPA unavailable: %s\n", name, why.c_str());
            ++failed;
            continue;
          }
          const int64_t qn = int64_t{a.batch} * a.heads * a.seq_q * a.head_dim;
          const int64_t kvn = int64_t{a.batch} * a.kv_heads * a.seq_kv * a.head_dim;
          const int64_t rows = int64_t{a.batch} * a.heads * a.seq_q;
          DeviceBuffer q(qn * 2), k(kvn * 2), v(kvn * 2), d_o(qn * 2);
          DeviceBuffer o_ref(qn * 2), lse_ref(rows * 4), delta(rows * 4), dq_ref(qn * 2), dk_ref(kvn * 2), dv_ref(kvn * 2);
          DeviceBuffer o(qn * 2), lse(rows * 4), dq(qn * 2), dk(kvn * 2), dv(kvn * 2);
          const uint64_t seed = 1000 + 17 * cases;
          fill_random(q.p, qn, et, seed, 1.0f, s);
          fill_random(k.p, kvn, et, seed + 1, 1.0f, s);
          fill_random(v.p, kvn, et, seed + 2, 1.0f, s);
          fill_random(d_o.p, qn, et, seed + 3, 1.0f, s);
          attention_fwd(et, a, q.p, k.p, v.p, o_ref.p, static_cast<float*>(lse_ref.p), s);
          attention_bwd(et, a, q.p, k.p, v.p, o_ref.p, d_o.p, static_cast<const float*>(lse_ref.p),
                        static_cast<float*>(delta.p), dq_ref.p, dk_ref.p, dv_ref.p, s);
          for (const DeviceBuffer* b : {&o, &lse}) TS_CUDA(cudaMemsetAsync(b->p, 0xff, static_cast<size_t>(b == &o ? qn * 2 : rows * 4), s));
          fwd->forward(q.p, k.p, v.p, o.p, static_cast<float*>(lse.p), s);
          TS_CUDA(cudaMemsetAsync(dq.p, 0xff, static_cast<size_t>(qn * 2), s));
          TS_CUDA(cudaMemsetAsync(dk.p, 0xff, static_cast<size_t>(kvn * 2), s));
          TS_CUDA(cudaMemsetAsync(dv.p, 0xff, static_cast<size_t>(kvn * 2), s));
          bwd->backward(q.p, k.p, v.p, o.p, d_o.p, static_cast<const float*>(lse.p), dq.p, dk.p, dv.p, s);
          TS_CUDA(cudaStreamSynchronize(s));
          const double e[5] = {rel_err(download(o.p, qn, true), download(o_ref.p, qn, true)),
                               rel_err(download(lse.p, rows, false), download(lse_ref.p, rows, false)),
                               rel_err(download(dq.p, qn, true), download(dq_ref.p, qn, true)),
                               rel_err(download(dk.p, kvn, true), download(dk_ref.p, kvn, true)),
                               rel_err(download(dv.p, kvn, true), download(dv_ref.p, kvn, true))};
          bool ok = true;
          for (double x : e) ok = ok && x <= kTolerance;  // false for NaN too
          char engines[32];
          std::snprintf(engines, sizeof engines, "%lld/%lld", static_cast<long long>(fwd->engine()),
                        static_cast<long long>(bwd->engine()));
          std::printf("%-44s %-8s %10.2e %10.2e %10.2e %10.2e %10.2e  %s\n", name, engines, e[0], e[1], e[2], e[3], e[4],
                      ok ? "ok" : "FAIL");
          if (!ok) ++failed;
        }
  TS_CUDA(cudaStreamDestroy(s));
  std::printf("check-attention: %d of %d cases failed\n", failed, cases);
  return failed ? 1 : 0;
}

}  // namespace tscal
