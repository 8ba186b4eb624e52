// File: calibrate/cuda/nccl_ops.h
// One collective's buffers and NCCL calls, shared by the calibrator (collectives.cpp) and the
// verify executor (executor.cpp): element counts per the nccl-tests convention of `bytes`
// (all-reduce / broadcast / send-recv: the buffer; all-gather: the output; reduce-scatter: the
// input; all-to-all: the per-rank buffer) and rank i's part of one run over a communicator of
// n ranks. The caller wraps the parts it enqueues in ncclGroupStart/End where one thread drives
// several ranks; the all-to-all and the send-recv ring shift are grouped here.
// Only compiled where NCCL was found (TRAINSIM_HAVE_NCCL).
#pragma once
#ifdef TRAINSIM_HAVE_NCCL
#include <algorithm>
#include <cstdint>
#include <string>

#include <nccl.h>

#include "check.h"
#include "kernels.h"
#include "plan_file.h"

namespace tscal {

struct CollShape : CollCounts {
  ncclDataType_t dt = ncclBfloat16;
  ElemType et = ElemType::kBF16;
};

// coll_counts (plan_file.h) with the NCCL and fill types: fp16, fp32, else bf16 (fp8 moves as
// 2-byte elements).
inline CollShape coll_shape(const std::string& kind, const std::string& dtype, int64_t bytes, int n) {
  CollShape s;
  static_cast<CollCounts&>(s) = coll_counts(kind, dtype, bytes, n);
  s.dt = dtype == "fp16" ? ncclFloat16 : dtype == "fp32" ? ncclFloat32 : ncclBfloat16;
  s.et = dtype == "fp32" ? ElemType::kFP32 : dtype == "fp16" ? ElemType::kFP16 : ElemType::kBF16;
  return s;
}

// Enqueues rank i's part of one run on (cm, st).
inline void enqueue_coll(const std::string& kind, const CollShape& s, int i, int n, void* send, void* recv,
                         ncclComm_t cm, cudaStream_t st) {
  if (kind == "all-reduce") {
    TS_NCCL(ncclAllReduce(send, recv, static_cast<size_t>(s.total), s.dt, ncclSum, cm, st));
  } else if (kind == "all-gather") {
    TS_NCCL(ncclAllGather(send, recv, static_cast<size_t>(s.per_rank), s.dt, cm, st));
  } else if (kind == "reduce-scatter") {
    TS_NCCL(ncclReduceScatter(send, recv, static_cast<size_t>(s.per_rank), s.dt, ncclSum, cm, st));
  } else if (kind == "broadcast") {
    TS_NCCL(ncclBroadcast(send, recv, static_cast<size_t>(s.total), s.dt, 0, cm, st));
  } else if (kind == "all-to-all") {
    TS_NCCL(ncclGroupStart());
    for (int p = 0; p < n; ++p) {
      TS_NCCL(ncclSend(static_cast<char*>(send) + p * s.per_rank * s.esize, static_cast<size_t>(s.per_rank), s.dt, p, cm, st));
      TS_NCCL(ncclRecv(static_cast<char*>(recv) + p * s.per_rank * s.esize, static_cast<size_t>(s.per_rank), s.dt, p, cm, st));
    }
    TS_NCCL(ncclGroupEnd());
  } else {  // send-recv: the ring shift, to i+1 and from i-1
    TS_NCCL(ncclGroupStart());
    TS_NCCL(ncclSend(send, static_cast<size_t>(s.total), s.dt, (i + 1) % n, cm, st));
    TS_NCCL(ncclRecv(recv, static_cast<size_t>(s.total), s.dt, (i - 1 + n) % n, cm, st));
    TS_NCCL(ncclGroupEnd());
  }
}

}  // namespace tscal
#endif
