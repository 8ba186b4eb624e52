// File: calibrate/cuda/check.h
// Checking macros for trainsim_calibrator: every CUDA, cuBLASLt, cuDNN, NCCL and CUPTI call
// goes through one of these. On failure they print the call, file:line and the library's error
// string, then exit(1). This is a program with its own main (not library code), so exiting is
// the intended handling (STYLE.md section 5).
// Thread-safety: the macros themselves are stateless.
#pragma once
#include <cstdio>
#include <cstdlib>

#include <cuda_runtime.h>

#define TS_CUDA(call)                                                                         \
  do {                                                                                        \
    cudaError_t ts_e_ = (call);                                                               \
    if (ts_e_ != cudaSuccess) {                                                               \
      std::fprintf(stderr, "error: %s:%d: %s: %s (%s)\n", __FILE__, __LINE__, #call,         \
                   cudaGetErrorName(ts_e_), cudaGetErrorString(ts_e_));                       \
      std::exit(1);                                                                           \
    }                                                                                         \
  } while (0)

// After a kernel launch: launch-configuration errors surface here.
#define TS_LAUNCHED() TS_CUDA(cudaGetLastError())

#define TS_CUBLAS(call)                                                                       \
  do {                                                                                        \
    cublasStatus_t ts_s_ = (call);                                                            \
    if (ts_s_ != CUBLAS_STATUS_SUCCESS) {                                                     \
      std::fprintf(stderr, "error: %s:%d: %s: %s (%d)\n", __FILE__, __LINE__, #call,         \
                   cublasLtGetStatusString(ts_s_), static_cast<int>(ts_s_));                  \
      std::exit(1);                                                                           \
    }                                                                                         \
  } while (0)

#define TS_CUDNN(call)                                                                        \
  do {                                                                                        \
    cudnnStatus_t ts_s_ = (call);                                                             \
    if (ts_s_ != CUDNN_STATUS_SUCCESS) {                                                      \
      std::fprintf(stderr, "error: %s:%d: %s: %s\n", __FILE__, __LINE__, #call,              \
                   cudnnGetErrorString(ts_s_));                                               \
      std::exit(1);                                                                           \
    }                                                                                         \
  } while (0)

#define TS_NCCL(call)                                                                         \
  do {                                                                                        \
    ncclResult_t ts_r_ = (call);                                                              \
    if (ts_r_ != ncclSuccess) {                                                               \
      std::fprintf(stderr, "error: %s:%d: %s: %s (%s)\n", __FILE__, __LINE__, #call,         \
                   ncclGetErrorString(ts_r_), ncclGetLastError(nullptr));                     \
      std::exit(1);                                                                           \
    }                                                                                         \
  } while (0)
