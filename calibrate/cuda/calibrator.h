// File: calibrate/cuda/calibrator.h
// Pieces of trainsim_calibrator shared between its source files: the timing harness (CUDA
// events around each timed run, median and min), the optional CUPTI kernel-time tracer, and
// the measuring functions per job kind. See README.md beside this for what each one measures.
// Thread-safety: single-threaded program; CUPTI's buffer callbacks take a mutex.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "check.h"
#include "job_file.h"

namespace tscal {

// Device memory of at least 16 bytes, freed on destruction.
struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(int64_t bytes) { TS_CUDA(cudaMalloc(&p, static_cast<size_t>(std::max<int64_t>(bytes, 16)))); }
  ~DeviceBuffer() { if (p) cudaFree(p); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

struct Timing {
  double median_us = 0, min_us = 0;
  int runs = 0;
  double kernel_us = -1;  // CUPTI: mean summed kernel time per run; < 0 when not measured
};

struct Options {
  int warmup = 10, runs = 50;
  bool cupti = true;       // measure kernel_us when built with CUPTI
  int kernel_runs = 20;    // runs traced by CUPTI (separately from the event-timed runs)
};

// Calls fn(i) `warmup` times, then `runs` times with a CUDA event recorded before and after
// each call on `s` (the host queues the runs behind a short spin kernel so that launch gaps
// do not land inside the timed regions), and returns the median and min of the per-run times.
// With CUPTI, a further opt.kernel_runs calls are traced for kernel_us.
Timing time_on_stream(cudaStream_t s, const Options& opt, const std::function<void(int)>& fn);

// CUPTI concurrent-kernel activity records (TRAINSIM_HAVE_CUPTI); no-ops otherwise.
bool cupti_available();
void cupti_begin();
// Stops tracing and returns the summed duration (ns) of the kernels seen, except our spin kernel.
double cupti_end_ns();

// Measuring functions. Each returns false (after a "skip:" warning on stderr) when the job
// cannot be measured here (unsupported dtype on this GPU, too little memory, ...).
bool measure_gemm(const OpJob& j, const Options& opt, int device, Timing* t, std::string* source);
bool measure_attention(const OpJob& j, const Options& opt, int device, Timing* t, std::string* source);
bool measure_memory_bound(const OpJob& j, const Options& opt, int device, Timing* t, std::string* source);
bool measure_offload(const OpJob& j, const Options& opt, int device, Timing* t, std::string* source);

struct CollResult {
  double time_us = 0, min_us = 0, algbw_GBps = 0, busbw_GBps = 0;
  int runs = 0;
};
// Collectives over the first group_size of `gpus` local GPUs (NCCL, one process).
bool measure_collective(const CollJob& j, const Options& opt, int gpus, CollResult* r, std::string* source);
void collectives_shutdown();

// --check-attention: cuDNN SDPA forward and backward against the own fp32-compute kernels on
// small random bf16 shapes; prints ||out - ref|| / ||ref|| of O, dQ, dK, dV per case. Returns
// the exit code: 0 all within tolerance, 1 a case over it, NaN, or one cuDNN could not build.
int check_attention(int device);

// Bytes free on the current device minus a safety margin.
int64_t usable_device_bytes();
void skip(const std::string& path, const std::string& why);

}  // namespace tscal
