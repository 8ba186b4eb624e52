// File: calibrate/cuda/collectives.cpp
// Collectives with NCCL across the local GPUs: one process, ncclCommInitAll, one stream per
// GPU, every call inside ncclGroupStart/End. Sizes and bandwidths follow nccl-tests
// (doc/PERFORMANCE.md there): time t per run, algbw = bytes / t, and
//   all-reduce      busbw = algbw * 2(n-1)/n   (bytes = buffer size)
//   all-gather      busbw = algbw * (n-1)/n    (bytes = output size)
//   reduce-scatter  busbw = algbw * (n-1)/n    (bytes = input size)
//   all-to-all      busbw = algbw * (n-1)/n    (bytes = per-rank buffer)
//   broadcast       busbw = algbw              (root 0)
//   send-recv       busbw = algbw              (rank r sends to r+1 and receives from r-1, as
//                                                sendrecv_perf; for 2 GPUs both directions at once)
// A run's time is the largest over the GPUs of the time between events recorded on each GPU's
// stream before and after the group.
#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "calibrator.h"
#include "check.h"
#include "kernels.h"

#ifdef TRAINSIM_HAVE_NCCL
#include <nccl.h>
#endif

namespace tscal {

#ifdef TRAINSIM_HAVE_NCCL
namespace {

struct Comms {
  std::vector<ncclComm_t> comms;
  std::vector<cudaStream_t> streams;
};
std::map<int, std::unique_ptr<Comms>> g_comms;  // by group size; GPUs 0..n-1

Comms& comms_for(int n) {
  auto& c = g_comms[n];
  if (!c) {
    c = std::make_unique<Comms>();
    std::vector<int> devs(n);
    for (int i = 0; i < n; ++i) devs[i] = i;
    c->comms.resize(n);
    TS_NCCL(ncclCommInitAll(c->comms.data(), n, devs.data()));
    c->streams.resize(n);
    for (int i = 0; i < n; ++i) {
      TS_CUDA(cudaSetDevice(i));
      TS_CUDA(cudaStreamCreateWithFlags(&c->streams[i], cudaStreamNonBlocking));
    }
  }
  return *c;
}

}  // namespace

bool measure_collective(const CollJob& j, const Options& opt, int gpus, CollResult* r, std::string* source) {
  const int n = static_cast<int>(j.group_size);
  if (n > gpus) {
    skip(j.path, "group_size " + std::to_string(n) + " > " + std::to_string(gpus) + " local GPUs (across nodes needs the MPI path, not built)");
    return false;
  }
  ncclDataType_t dt = j.dtype == "fp16" ? ncclFloat16 : j.dtype == "fp32" ? ncclFloat32 : ncclBfloat16;
  const int64_t esize = j.dtype == "fp32" ? 4 : 2;
  // Element counts per nccl-tests; bytes rounded down to whole elements per rank.
  const int64_t total = std::max<int64_t>(j.bytes / (esize * n), 1) * n;  // elements, multiple of n
  const int64_t per_rank = total / n;
  int64_t send_elems = total, recv_elems = total;
  if (j.kind == "all-gather") send_elems = per_rank;
  if (j.kind == "reduce-scatter") recv_elems = per_rank;
  for (int i = 0; i < n; ++i) {
    TS_CUDA(cudaSetDevice(i));
    if ((send_elems + recv_elems) * esize > usable_device_bytes()) {
      skip(j.path, "too little device memory on GPU " + std::to_string(i));
      TS_CUDA(cudaSetDevice(0));
      return false;
    }
  }
  Comms& c = comms_for(n);
  std::vector<void*> send(n), recv(n);
  for (int i = 0; i < n; ++i) {
    TS_CUDA(cudaSetDevice(i));
    TS_CUDA(cudaMalloc(&send[i], static_cast<size_t>(send_elems * esize)));
    TS_CUDA(cudaMalloc(&recv[i], static_cast<size_t>(recv_elems * esize)));
    fill_random(send[i], send_elems, j.dtype == "fp32" ? ElemType::kFP32 : j.dtype == "fp16" ? ElemType::kFP16 : ElemType::kBF16,
                41 + i, 1.0f, c.streams[i]);
    TS_CUDA(cudaStreamSynchronize(c.streams[i]));
  }
  auto run_once = [&]() {
    TS_NCCL(ncclGroupStart());
    for (int i = 0; i < n; ++i) {
      ncclComm_t cm = c.comms[i];
      cudaStream_t s = c.streams[i];
      if (j.kind == "all-reduce") {
        TS_NCCL(ncclAllReduce(send[i], recv[i], static_cast<size_t>(total), dt, ncclSum, cm, s));
      } else if (j.kind == "all-gather") {
        TS_NCCL(ncclAllGather(send[i], recv[i], static_cast<size_t>(per_rank), dt, cm, s));
      } else if (j.kind == "reduce-scatter") {
        TS_NCCL(ncclReduceScatter(send[i], recv[i], static_cast<size_t>(per_rank), dt, ncclSum, cm, s));
      } else if (j.kind == "broadcast") {
        TS_NCCL(ncclBroadcast(send[i], recv[i], static_cast<size_t>(total), dt, 0, cm, s));
      } else if (j.kind == "all-to-all") {
        for (int p = 0; p < n; ++p) {
          TS_NCCL(ncclSend(static_cast<char*>(send[i]) + p * per_rank * esize, static_cast<size_t>(per_rank), dt, p, cm, s));
          TS_NCCL(ncclRecv(static_cast<char*>(recv[i]) + p * per_rank * esize, static_cast<size_t>(per_rank), dt, p, cm, s));
        }
      } else {  // send-recv
        TS_NCCL(ncclSend(send[i], static_cast<size_t>(total), dt, (i + 1) % n, cm, s));
        TS_NCCL(ncclRecv(recv[i], static_cast<size_t>(total), dt, (i - 1 + n) % n, cm, s));
      }
    }
    TS_NCCL(ncclGroupEnd());
  };
  auto sync_all = [&]() {
    for (int i = 0; i < n; ++i) {
      TS_CUDA(cudaSetDevice(i));
      TS_CUDA(cudaStreamSynchronize(c.streams[i]));
    }
  };
  for (int w = 0; w < opt.warmup; ++w) run_once();
  sync_all();
  const int runs = opt.runs;
  std::vector<std::vector<cudaEvent_t>> ev(n, std::vector<cudaEvent_t>(runs + 1));
  for (int i = 0; i < n; ++i) {
    TS_CUDA(cudaSetDevice(i));
    for (auto& e : ev[i]) TS_CUDA(cudaEventCreate(&e));
  }
  // Runs back to back, an event between consecutive runs on every GPU (as nccl-tests times a
  // loop of iterations); each GPU first spins 0.2 ms so the host queues ahead.
  for (int i = 0; i < n; ++i) {
    TS_CUDA(cudaSetDevice(i));
    spin(200'000, c.streams[i]);
    TS_CUDA(cudaEventRecord(ev[i][0], c.streams[i]));
  }
  for (int k = 0; k < runs; ++k) {
    run_once();
    for (int i = 0; i < n; ++i) {
      TS_CUDA(cudaSetDevice(i));
      TS_CUDA(cudaEventRecord(ev[i][k + 1], c.streams[i]));
    }
  }
  sync_all();
  std::vector<double> us(runs, 0.0);
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < runs; ++k) {
      float ms = 0;
      TS_CUDA(cudaEventElapsedTime(&ms, ev[i][k], ev[i][k + 1]));
      us[k] = std::max(us[k], 1000.0 * ms);
    }
    TS_CUDA(cudaSetDevice(i));
    for (auto& e : ev[i]) TS_CUDA(cudaEventDestroy(e));
    TS_CUDA(cudaFree(send[i]));
    TS_CUDA(cudaFree(recv[i]));
  }
  TS_CUDA(cudaSetDevice(0));
  std::sort(us.begin(), us.end());
  r->runs = runs;
  r->time_us = runs % 2 ? us[runs / 2] : 0.5 * (us[runs / 2 - 1] + us[runs / 2]);
  r->min_us = us.front();
  const double bytes = static_cast<double>(j.bytes);
  r->algbw_GBps = bytes / (r->time_us * 1e-6) / 1e9;
  double factor = 1.0;
  if (j.kind == "all-reduce") factor = 2.0 * (n - 1) / n;
  else if (j.kind == "all-gather" || j.kind == "reduce-scatter" || j.kind == "all-to-all") factor = double(n - 1) / n;
  r->busbw_GBps = r->algbw_GBps * factor;
  *source = "trainsim_calibrator nccl";
  return true;
}

void collectives_shutdown() {
  for (auto& [n, c] : g_comms) {
    for (size_t i = 0; i < c->comms.size(); ++i) {
      TS_CUDA(cudaSetDevice(static_cast<int>(i)));
      TS_CUDA(cudaStreamSynchronize(c->streams[i]));
      TS_NCCL(ncclCommDestroy(c->comms[i]));
      TS_CUDA(cudaStreamDestroy(c->streams[i]));
    }
  }
  g_comms.clear();
}

#else  // no NCCL at build time

bool measure_collective(const CollJob& j, const Options&, int, CollResult*, std::string*) {
  skip(j.path, "built without NCCL (TRAINSIM_HAVE_NCCL off)");
  return false;
}
void collectives_shutdown() {}

#endif

}  // namespace tscal
