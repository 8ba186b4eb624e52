// File: calibrate/cuda/timing.cpp
// Event timing (METHOD.md: warm-up, median of many runs, events around each region) and the
// CUPTI kernel-activity tracer.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "calibrator.h"
#include "check.h"
#include "kernels.h"

#ifdef TRAINSIM_HAVE_CUPTI
#include <cupti.h>
#define TS_CUPTI(call)                                                                       \
  do {                                                                                       \
    CUptiResult ts_r_ = (call);                                                              \
    if (ts_r_ != CUPTI_SUCCESS) {                                                            \
      const char* ts_m_ = nullptr;                                                           \
      cuptiGetResultString(ts_r_, &ts_m_);                                                   \
      std::fprintf(stderr, "error: %s:%d: %s: %s\n", __FILE__, __LINE__, #call, ts_m_ ? ts_m_ : "?"); \
      std::exit(1);                                                                          \
    }                                                                                        \
  } while (0)
#endif

namespace tscal {

void skip(const std::string& path, const std::string& why) {
  std::fprintf(stderr, "skip: %s: %s\n", path.c_str(), why.c_str());
}

int64_t usable_device_bytes() {
  size_t free_b = 0, total_b = 0;
  TS_CUDA(cudaMemGetInfo(&free_b, &total_b));
  return static_cast<int64_t>(free_b) - (int64_t{1} << 30);  // keep 1 GiB for libraries
}

namespace {
constexpr int kChunk = 64;  // timed runs queued behind one spin kernel
}

Timing time_on_stream(cudaStream_t s, const Options& opt, const std::function<void(int)>& fn) {
  for (int i = 0; i < opt.warmup; ++i) fn(i);
  TS_CUDA(cudaStreamSynchronize(s));
  std::vector<float> ms;
  std::vector<cudaEvent_t> ev(kChunk + 1);
  for (auto& e : ev) TS_CUDA(cudaEventCreate(&e));
  for (int done = 0; done < opt.runs;) {
    const int n = std::min(kChunk, opt.runs - done);
    spin(200'000, s);  // 0.2 ms: lets the host queue the chunk before the GPU reaches it
    TS_CUDA(cudaEventRecord(ev[0], s));
    for (int i = 0; i < n; ++i) {
      fn(opt.warmup + done + i);
      TS_CUDA(cudaEventRecord(ev[i + 1], s));
    }
    TS_CUDA(cudaStreamSynchronize(s));
    for (int i = 0; i < n; ++i) {
      float t = 0;
      TS_CUDA(cudaEventElapsedTime(&t, ev[i], ev[i + 1]));
      ms.push_back(t);
    }
    done += n;
  }
  for (auto& e : ev) TS_CUDA(cudaEventDestroy(e));
  Timing r;
  r.runs = static_cast<int>(ms.size());
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  r.median_us = 1000.0 * (n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]));
  r.min_us = 1000.0 * ms.front();
  if (opt.cupti && opt.kernel_runs > 0 && cupti_available()) {
    cupti_begin();
    for (int i = 0; i < opt.kernel_runs; ++i) fn(i);
    TS_CUDA(cudaStreamSynchronize(s));
    r.kernel_us = cupti_end_ns() / opt.kernel_runs / 1000.0;
  }
  return r;
}

#ifdef TRAINSIM_HAVE_CUPTI
namespace {
std::mutex g_mu;
double g_kernel_ns = 0;
constexpr size_t kBufBytes = 8 << 20;

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(aligned_alloc(8, kBufBytes));
  *size = kBufBytes;
  *max_records = 0;
}
void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  CUpti_Activity* rec = nullptr;
  double ns = 0;
  while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL && rec->kind != CUPTI_ACTIVITY_KIND_KERNEL) continue;
    // The record layout is the one of the CUPTI headers this was built with; the library
    // loaded at run time must be of the same CUDA major version (README.md).
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
    if (k->name && std::strstr(k->name, "trainsim_spin")) continue;
    ns += static_cast<double>(k->end - k->start);
  }
  std::free(buffer);
  std::lock_guard<std::mutex> lock(g_mu);
  g_kernel_ns += ns;
}
bool g_registered = false;
}  // namespace

bool cupti_available() { return true; }
void cupti_begin() {
  if (!g_registered) {
    TS_CUPTI(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed));
    g_registered = true;
  }
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_kernel_ns = 0;
  }
  TS_CUPTI(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL));
}
double cupti_end_ns() {
  TS_CUPTI(cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL));
  TS_CUPTI(cuptiActivityFlushAll(1));
  std::lock_guard<std::mutex> lock(g_mu);
  return g_kernel_ns;
}
#else
bool cupti_available() { return false; }
void cupti_begin() {}
double cupti_end_ns() { return 0; }
#endif

}  // namespace tscal
