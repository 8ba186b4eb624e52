// File: calibrate/cuda/check.h
// Checking macros for trainsim_calibrator: every CUDA, cuBLASLt, cuDNN, NCCL, CUPTI and MPI call
// goes through one of these. On failure they print the call, file:line and the library's error
// string, then exit(1). This is a program with its own main (not library code), so exiting is
// the intended handling (STYLE.md section 5).
// Thread-safety: the macros themselves are stateless.
#pragma once
#include <cstdio>
#include <cstdlib>

#include <cuda_runtime.h>
#ifdef TRAINSIM_HAVE_CUDNN
#include <cudnn.h>
#endif

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

// cuDNN 9 adds the last error's text (cudnnGetLastErrorString) to the status string.
#if defined(CUDNN_MAJOR) && CUDNN_MAJOR >= 9
#define TS_CUDNN_LAST_ERROR(buf) cudnnGetLastErrorString(buf, sizeof buf)
#else
#define TS_CUDNN_LAST_ERROR(buf) (void)0
#endif
#define TS_CUDNN(call)                                                                        \
  do {                                                                                        \
    cudnnStatus_t ts_s_ = (call);                                                             \
    if (ts_s_ != CUDNN_STATUS_SUCCESS) {                                                      \
      char ts_m_[1024] = {0};                                                                 \
      TS_CUDNN_LAST_ERROR(ts_m_);                                                             \
      std::fprintf(stderr, "error: %s:%d: %s: %s (%s)\n", __FILE__, __LINE__, #call,         \
                   cudnnGetErrorString(ts_s_), ts_m_);                                        \
      std::exit(1);                                                                           \
    }                                                                                         \
  } while (0)

// A bug, not an input error: abort with the condition and a message.
#define TS_CHECK(cond, msg)                                                                   \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "bug: %s:%d: %s: %s\n", __FILE__, __LINE__, #cond, msg);          \
      std::abort();                                                                           \
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

// MPI (the --mpi path; the caller includes <mpi.h>, which this header does not, so that the
// CUDA sources need no MPI include path). main sets MPI_COMM_WORLD's error handler to
// MPI_ERRORS_RETURN right after MPI_Init (communicators split from it inherit it), so a failing
// call returns here instead of in MPI's own abort. On failure: the world rank, file:line, the
// call and MPI_Error_string; then MPI_Abort(MPI_COMM_WORLD, 1), so that the other processes,
// waiting in a barrier or a collective, end too and mpirun exits 1 (exit(1) if it returns).
#define TS_MPI(call)                                                                          \
  do {                                                                                        \
    int ts_m_ = (call);                                                                       \
    if (ts_m_ != MPI_SUCCESS) {                                                               \
      char ts_s_[MPI_MAX_ERROR_STRING] = {0};                                                 \
      int ts_l_ = 0, ts_rank_ = -1;                                                           \
      MPI_Error_string(ts_m_, ts_s_, &ts_l_);                                                 \
      MPI_Comm_rank(MPI_COMM_WORLD, &ts_rank_);                                               \
      std::fprintf(stderr, "error: rank %d: %s:%d: %s: %s (%d)\n", ts_rank_, __FILE__,       \
                   __LINE__, #call, ts_s_, ts_m_);                                            \
      MPI_Abort(MPI_COMM_WORLD, 1);                                                           \
      std::exit(1);                                                                           \
    }                                                                                         \
  } while (0)
