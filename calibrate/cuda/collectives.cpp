// File: calibrate/cuda/collectives.cpp
// Collectives with NCCL across the local GPUs: one process, ncclCommInitAll, one stream per
// GPU, every call inside ncclGroupStart/End; or across nodes, one process per GPU (MPI, below).
// Sizes and bandwidths follow nccl-tests (doc/PERFORMANCE.md there): time t per run, algbw = bytes / t, and
//   all-reduce      busbw = algbw * 2(n-1)/n   (bytes = buffer size)
//   all-gather      busbw = algbw * (n-1)/n    (bytes = output size)
//   reduce-scatter  busbw = algbw * (n-1)/n    (bytes = input size)
//   all-to-all      busbw = algbw * (n-1)/n    (bytes = per-rank buffer)
//   broadcast       busbw = algbw              (root 0)
//   send-recv       busbw = algbw              (rank r sends to r+1 and receives from r-1, as
//                                                sendrecv_perf; for 2 GPUs both directions at once)
// A run's time is the largest over the GPUs of the time between events recorded on each GPU's
// stream before and after the group.
// With MPI (--mpi, mpi_world.h) the same runs and formulas, one process per GPU: world ranks
// 0..n-1 form the group (MPI_Comm_split), world rank 0 gets the ncclUniqueId and broadcasts it,
// each rank ncclCommInitRank's its GPU; the per-run times are reduced to rank 0 with MPI_MAX.
#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "calibrator.h"
#include "check.h"
#include "kernels.h"
#ifdef TRAINSIM_HAVE_MPI
#include "mpi_world.h"
#endif

#ifdef TRAINSIM_HAVE_NCCL
#include <nccl.h>

#include "nccl_ops.h"
#endif

namespace tscal {

#ifdef TRAINSIM_HAVE_NCCL
namespace {

CollShape coll_shape(const CollJob& j, int n) { return tscal::coll_shape(j.kind, j.dtype, j.bytes, n); }

void enqueue_rank(const CollJob& j, const CollShape& s, int i, int n, void* send, void* recv, ncclComm_t cm,
                  cudaStream_t st) {
  enqueue_coll(j.kind, s, i, n, send, recv, cm, st);
}

// The GPUs this process drives for one job: device, stream and buffers per GPU.
struct LocalRanks {
  std::vector<int> devices;
  std::vector<cudaStream_t> streams;
  std::vector<void*> send, recv;
};

void sync_all(const LocalRanks& g) {
  for (size_t i = 0; i < g.devices.size(); ++i) {
    TS_CUDA(cudaSetDevice(g.devices[i]));
    TS_CUDA(cudaStreamSynchronize(g.streams[i]));
  }
}

// Warm-up, then opt.runs runs back to back, an event between consecutive runs on every local
// GPU's stream (as nccl-tests times a loop of iterations); each GPU first spins 0.2 ms so the
// host queues ahead. `before_timed` runs on the host after the warm-up has finished (under MPI:
// a barrier of the group, so that the processes start queueing together). Returns per run the
// largest time over the local GPUs (us).
std::vector<double> time_runs(const LocalRanks& g, const Options& opt, const std::function<void()>& run_once,
                              const std::function<void()>& before_timed) {
  const size_t n = g.devices.size();
  for (int w = 0; w < opt.warmup; ++w) run_once();
  sync_all(g);
  const int runs = opt.runs;
  std::vector<std::vector<cudaEvent_t>> ev(n, std::vector<cudaEvent_t>(static_cast<size_t>(runs) + 1));
  for (size_t i = 0; i < n; ++i) {
    TS_CUDA(cudaSetDevice(g.devices[i]));
    for (auto& e : ev[i]) TS_CUDA(cudaEventCreate(&e));
  }
  before_timed();
  for (size_t i = 0; i < n; ++i) {
    TS_CUDA(cudaSetDevice(g.devices[i]));
    spin(200'000, g.streams[i]);
    TS_CUDA(cudaEventRecord(ev[i][0], g.streams[i]));
  }
  for (int k = 0; k < runs; ++k) {
    run_once();
    for (size_t i = 0; i < n; ++i) {
      TS_CUDA(cudaSetDevice(g.devices[i]));
      TS_CUDA(cudaEventRecord(ev[i][k + 1], g.streams[i]));
    }
  }
  sync_all(g);
  std::vector<double> us(static_cast<size_t>(runs), 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (int k = 0; k < runs; ++k) {
      float ms = 0;
      TS_CUDA(cudaEventElapsedTime(&ms, ev[i][k], ev[i][k + 1]));
      us[k] = std::max(us[k], 1000.0 * ms);
    }
    TS_CUDA(cudaSetDevice(g.devices[i]));
    for (auto& e : ev[i]) TS_CUDA(cudaEventDestroy(e));
  }
  return us;
}

void alloc_buffers(const CollShape& s, const std::vector<int>& seeds, LocalRanks* g) {
  const size_t n = g->devices.size();
  g->send.resize(n);
  g->recv.resize(n);
  for (size_t i = 0; i < n; ++i) {
    TS_CUDA(cudaSetDevice(g->devices[i]));
    TS_CUDA(cudaMalloc(&g->send[i], static_cast<size_t>(s.send_elems * s.esize)));
    TS_CUDA(cudaMalloc(&g->recv[i], static_cast<size_t>(s.recv_elems * s.esize)));
    fill_random(g->send[i], s.send_elems, s.et, static_cast<uint64_t>(seeds[i]), 1.0f, g->streams[i]);
    TS_CUDA(cudaStreamSynchronize(g->streams[i]));
  }
}

void free_buffers(LocalRanks* g) {
  for (size_t i = 0; i < g->devices.size(); ++i) {
    TS_CUDA(cudaSetDevice(g->devices[i]));
    TS_CUDA(cudaFree(g->send[i]));
    TS_CUDA(cudaFree(g->recv[i]));
  }
}

// Median and min of the per-run times (us) of a group of n ranks, and the nccl-tests bandwidths
// of the file comment.
void finish(const CollJob& j, int n, std::vector<double> us, CollResult* r) {
  const size_t runs = us.size();
  std::sort(us.begin(), us.end());
  r->runs = static_cast<int>(runs);
  r->time_us = runs % 2 ? us[runs / 2] : 0.5 * (us[runs / 2 - 1] + us[runs / 2]);
  r->min_us = us.front();
  const double bytes = static_cast<double>(j.bytes);
  r->algbw_GBps = bytes / (r->time_us * 1e-6) / 1e9;
  double factor = 1.0;
  if (j.kind == "all-reduce") factor = 2.0 * (n - 1) / n;
  else if (j.kind == "all-gather" || j.kind == "reduce-scatter" || j.kind == "all-to-all") factor = double(n - 1) / n;
  r->busbw_GBps = r->algbw_GBps * factor;
}

// Single process: communicators over local GPUs 0..n-1 (ncclCommInitAll), cached by n.
struct Comms {
  std::vector<ncclComm_t> comms;
  std::vector<cudaStream_t> streams;
};
std::map<int, std::unique_ptr<Comms>> g_comms;

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
    skip(j.path, "group_size " + std::to_string(n) + " > " + std::to_string(gpus) +
                     " local GPUs (across nodes: run with --mpi under mpirun, one process per GPU)");
    return false;
  }
  const CollShape s = coll_shape(j, n);
  for (int i = 0; i < n; ++i) {
    TS_CUDA(cudaSetDevice(i));
    if ((s.send_elems + s.recv_elems) * s.esize > usable_device_bytes()) {
      skip(j.path, "too little device memory on GPU " + std::to_string(i));
      TS_CUDA(cudaSetDevice(0));
      return false;
    }
  }
  Comms& c = comms_for(n);
  LocalRanks g;
  std::vector<int> seeds(n);
  for (int i = 0; i < n; ++i) seeds[i] = 41 + i;
  g.devices.resize(n);
  for (int i = 0; i < n; ++i) g.devices[i] = i;
  g.streams = c.streams;
  alloc_buffers(s, seeds, &g);
  auto run_once = [&]() {
    TS_NCCL(ncclGroupStart());
    for (int i = 0; i < n; ++i) enqueue_rank(j, s, i, n, g.send[i], g.recv[i], c.comms[i], c.streams[i]);
    TS_NCCL(ncclGroupEnd());
  };
  std::vector<double> us = time_runs(g, opt, run_once, [] {});
  free_buffers(&g);
  TS_CUDA(cudaSetDevice(0));
  finish(j, n, std::move(us), r);
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

#ifdef TRAINSIM_HAVE_MPI
namespace {

// One group of world ranks 0..n-1: its MPI communicator (MPI_COMM_NULL on ranks >= n) and, on
// its members, the NCCL communicator and a stream on this process's GPU. Cached by n.
struct MpiGroup {
  MPI_Comm mpi = MPI_COMM_NULL;
  ncclComm_t nccl = nullptr;
  cudaStream_t stream = nullptr;
  int device = 0;
};
std::map<int, MpiGroup> g_mpi_groups;

MpiGroup& mpi_group_for(int n, const MpiWorld& w, int gpu) {
  auto it = g_mpi_groups.find(n);
  if (it != g_mpi_groups.end()) return it->second;
  MpiGroup& grp = g_mpi_groups[n];
  // Collective over the world: every rank takes part, the ranks outside get MPI_COMM_NULL.
  // Key = world rank, so group rank == world rank and group rank 0 is world rank 0.
  TS_MPI(MPI_Comm_split(MPI_COMM_WORLD, w.rank < n ? 0 : MPI_UNDEFINED, w.rank, &grp.mpi));
  if (grp.mpi == MPI_COMM_NULL) return grp;
  ncclUniqueId id{};
  if (w.rank == 0) TS_NCCL(ncclGetUniqueId(&id));
  TS_MPI(MPI_Bcast(&id, static_cast<int>(sizeof id), MPI_BYTE, 0, grp.mpi));
  grp.device = gpu;
  TS_CUDA(cudaSetDevice(gpu));
  TS_NCCL(ncclCommInitRank(&grp.nccl, n, id, w.rank));
  TS_CUDA(cudaStreamCreateWithFlags(&grp.stream, cudaStreamNonBlocking));
  return grp;
}

}  // namespace

bool measure_collective_mpi(const CollJob& j, const Options& opt, const MpiWorld& w, int gpu, CollResult* r,
                            std::string* source) {
  const int n = static_cast<int>(j.group_size);
  TS_CHECK(n <= w.size, "the caller skips group sizes above the world size");
  MpiGroup& grp = mpi_group_for(n, w, gpu);
  bool measured = false;
  if (grp.mpi != MPI_COMM_NULL) {
    const CollShape s = coll_shape(j, n);
    TS_CUDA(cudaSetDevice(gpu));
    // Every member must agree to go on, or they would wait for each other in NCCL.
    const int short_here = (s.send_elems + s.recv_elems) * s.esize > usable_device_bytes() ? 1 : 0;
    if (short_here)
      skip(j.path, "too little device memory on rank " + std::to_string(w.rank) + " (" + w.hosts[w.rank] +
                       ", GPU " + std::to_string(gpu) + ")");
    int short_any = 0;
    TS_MPI(MPI_Allreduce(&short_here, &short_any, 1, MPI_INT, MPI_MAX, grp.mpi));
    if (!short_any) {
      LocalRanks g;
      g.devices = {gpu};
      g.streams = {grp.stream};
      alloc_buffers(s, {41 + w.rank}, &g);
      auto run_once = [&]() {
        TS_NCCL(ncclGroupStart());
        enqueue_rank(j, s, w.rank, n, g.send[0], g.recv[0], grp.nccl, grp.stream);
        TS_NCCL(ncclGroupEnd());
      };
      std::vector<double> us = time_runs(g, opt, run_once, [&] { TS_MPI(MPI_Barrier(grp.mpi)); });
      free_buffers(&g);
      // A run's time is the largest over the group's GPUs, as in the single-process path.
      std::vector<double> us_max(us.size(), 0.0);
      TS_MPI(MPI_Reduce(us.data(), us_max.data(), static_cast<int>(us.size()), MPI_DOUBLE, MPI_MAX, 0, grp.mpi));
      if (w.rank == 0) {
        finish(j, n, std::move(us_max), r);
        *source = "trainsim_calibrator nccl (mpi, " + std::to_string(n) + " processes)";
        measured = true;
      }
    } else if (w.rank == 0 && !short_here) {
      skip(j.path, "too little device memory on another rank of the group (its own line says which)");
    }
  }
  // Keep all ranks in step: the ranks outside the group wait here for the group to finish.
  quiet_barrier();
  return measured;
}

void collectives_mpi_shutdown() {
  for (auto& [n, grp] : g_mpi_groups) {
    if (grp.mpi == MPI_COMM_NULL) continue;
    TS_CUDA(cudaSetDevice(grp.device));
    TS_CUDA(cudaStreamSynchronize(grp.stream));
    TS_NCCL(ncclCommDestroy(grp.nccl));
    TS_CUDA(cudaStreamDestroy(grp.stream));
    TS_MPI(MPI_Comm_free(&grp.mpi));
  }
  g_mpi_groups.clear();
}
#endif  // TRAINSIM_HAVE_MPI

#else  // no NCCL at build time

bool measure_collective(const CollJob& j, const Options&, int, CollResult*, std::string*) {
  skip(j.path, "built without NCCL (TRAINSIM_HAVE_NCCL off)");
  return false;
}
void collectives_shutdown() {}
#ifdef TRAINSIM_HAVE_MPI
bool measure_collective_mpi(const CollJob& j, const Options&, const MpiWorld& w, int, CollResult*, std::string*) {
  if (w.rank == 0) skip(j.path, "built without NCCL (TRAINSIM_HAVE_NCCL off)");
  return false;
}
void collectives_mpi_shutdown() {}
#endif

#endif

}  // namespace tscal
