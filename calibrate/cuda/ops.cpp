// File: calibrate/cuda/ops.cpp
// Op measurements: each op is made ready by op_runner.h (GEMMs through cuBLASLt, attention
// through cuDNN's fused SDPA with own kernels where cuDNN cannot take the graph, memory-bound
// ops through our own kernels) and timed by time_on_stream. Inputs are random, never zeros;
// when one input set fits in twice the L2 cache, the runs rotate among several sets so that
// they do not measure the cache (METHOD.md).
#include <algorithm>
#include <memory>
#include <vector>

#include "calibrator.h"
#include "check.h"
#include "op_runner.h"

namespace tscal {
namespace {

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

// Builds the runner of j with `sets` input sets on a fresh stream and times it.
bool time_runner(const OpJob& j, const Options& opt, int device, int sets, Timing* t, std::string* source) {
  cudaStream_t s = make_stream();
  std::string why, note;
  std::unique_ptr<OpRunner> r = make_runner(j, device, sets, nullptr, s, &why, &note);
  if (!note.empty()) std::fprintf(stderr, "note: %s: %s\n", j.path.c_str(), note.c_str());
  bool ok = r != nullptr;
  if (!ok) {
    skip(j.path, why);
  } else {
    *t = time_on_stream(s, opt, [&](int i) { r->run(s, i); });
    *source = r->source();
  }
  TS_CUDA(cudaStreamSynchronize(s));
  r.reset();
  TS_CUDA(cudaStreamDestroy(s));
  return ok;
}

}  // namespace

bool measure_gemm(const OpJob& j, const Options& opt, int device, Timing* t, std::string* source) {
  const int64_t set_bytes = runner_set_bytes(j);
  const int64_t budget = usable_device_bytes() - runner_fixed_bytes(j);  // the workspace (and fp8 C input)
  if (set_bytes > budget) { skip(j.path, "needs " + std::to_string(set_bytes >> 20) + " MiB; too little device memory"); return false; }
  return time_runner(j, opt, device, rotation_sets(set_bytes, device, budget), t, source);
}

bool measure_attention(const OpJob& j, const Options& opt, int device, Timing* t, std::string* source) {
  const int64_t need = runner_set_bytes(j);
  if (need > usable_device_bytes()) { skip(j.path, "needs " + std::to_string(need >> 20) + " MiB; too little device memory"); return false; }
  return time_runner(j, opt, device, 1, t, source);
}

bool measure_memory_bound(const OpJob& j, const Options& opt, int device, Timing* t, std::string* source) {
  const int64_t budget = usable_device_bytes();
  const int64_t set_bytes = runner_set_bytes(j);
  if (set_bytes > budget) { skip(j.path, "needs " + std::to_string(set_bytes >> 20) + " MiB; too little device memory"); return false; }
  return time_runner(j, opt, device, rotation_sets(set_bytes, device, budget), t, source);
}

bool measure_offload(const OpJob& j, const Options& opt, int device, Timing* t, std::string* source) {
  // One input set: a host copy does not touch the L2 cache's working set the way kernels do.
  if (j.bytes > usable_device_bytes()) { skip(j.path, "needs " + std::to_string(j.bytes >> 20) + " MiB; too little device memory"); return false; }
  const bool ok = time_runner(j, opt, device, 1, t, source);
  t->kernel_us = -1;   // a copy engine transfer: CUPTI's kernel records do not see it
  return ok;
}

}  // namespace tscal
