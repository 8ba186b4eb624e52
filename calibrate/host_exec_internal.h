// File: calibrate/host_exec_internal.h
// Private to the host executor's back ends (host_executor.cpp: ranks as threads; host_mpi.cpp:
// ranks as MPI processes). Both run a rank's program the same way: one thread per (rank,
// stream) that has tasks, each running its stream's tasks in list order after their
// dependencies ended, with the same kernels and buffers; they differ only in how data moves
// between ranks, which is the Exchange below.
// Thread-safety: an Exchange's collective/send/recv_wait are called concurrently from the
// stream threads of a step; serve() runs on the thread that called run_step().
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "calibrate/host_executor.h"
#include "calibrate/host_kernels.h"
#include "sim/plan.h"
#include "sim/status.h"

namespace trainsim::host_detail {

using Clock = std::chrono::steady_clock;

struct CommBuf {
  std::vector<float> buf, out;
};

// One rank's program, kernels and buffers, and its tasks' completion flags during a step.
struct RankState {
  const Program* prog = nullptr;
  std::map<uint32_t, std::unique_ptr<HostKernel>> kernels;   // op -> kernel
  std::map<uint32_t, CommBuf> comm;                          // op -> buffers
  std::mutex mu;
  std::condition_variable cv;
  std::vector<uint8_t> done;
};

// How a back end moves data between ranks.
class Exchange {
 public:
  virtual ~Exchange() = default;
  // Rank `rank` runs collective task `t` (kind `kind`) on its buffers (elems floats each).
  // Returns when the rank's part is complete.
  virtual void collective(int rank, const Task& t, CollKind kind, float* buf, float* out, int64_t elems) = 0;
  // Hands a copy of `elems` floats to `peer` on `channel`; returns without waiting for the receiver.
  virtual void send(int rank, int peer, int channel, const float* buf, int64_t elems) = 0;
  // Waits until the next message from `peer` on `channel` is there and returns it.
  virtual std::vector<float> recv_wait(int rank, int peer, int channel) = 0;
  // Runs on run_step()'s thread while the stream threads run; returns once `running` is 0
  // and the back end has nothing left in flight. thread_exited() is called by each stream
  // thread after it decremented `running`.
  virtual void serve(const std::atomic<int>& running) {}
  virtual void thread_exited() {}
};

// Bytes of host buffers that every rank's kernels and comm buffers need (all ranks of the plan).
int64_t host_plan_bytes(const Plan& plan);

// The memory check both back ends make before allocating (names the need and the limit).
Status check_host_bytes(int64_t need, int64_t max_bytes);

// Allocates rank r's kernels and buffers; checks its sends/receives have peers.
Result<std::unique_ptr<RankState>> make_rank_state(const Plan& plan, int r, int64_t max_bytes);

// Runs one step of the ranks in `local` (ranks[r] set for each of them): starts the stream
// threads, stamps *t0 just before releasing them, runs ex.serve() on this thread, joins.
// rec[r] is sized and filled for each local rank; seq numbers events of this process in order.
// Returns the number of stream threads.
int run_step(const Plan& plan, const std::vector<int>& local, std::vector<std::unique_ptr<RankState>>& ranks,
             Exchange& ex, std::vector<std::vector<HostTaskRecord>>& rec, Clock::time_point* t0);

// The index of the median step (lower median for an even count; ties: the earlier step).
size_t median_step(const std::vector<Time>& step_times);

}  // namespace trainsim::host_detail
