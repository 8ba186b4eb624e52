// File: calibrate/host_executor.h
// The host executor (verify mode without a GPU): runs a plan's per-rank programs with real CPU
// kernels (calibrate/host_kernels.h) and real data exchange between ranks.
//
// Two back ends run the same per-rank code (calibrate/host_exec_internal.h) and differ only in
// how data moves between ranks:
//   threads  (the default; always builds) every rank is in this process;
//   mpi      (calibrate/host_mpi.h; builds where MPI is found) one process per rank under
//            mpirun, collectives and sends through MPI; rank 0 gathers every rank's records, so
//            it returns the same HostRun as the thread back end (the other processes return
//            their own rank's records only).
// In both, there is one thread per (rank, stream) that has tasks, so a rank's streams run concurrently as the plan
// says. A thread runs its stream's tasks in list order; before a task it waits until the task's
// dependencies (on any stream of the rank) have ended. Collectives rendezvous in shared memory
// per group instance (all-reduce as a reduce-scatter of chunks, each member summing its chunk
// over every member and averaging, then an all-gather of the chunks; all-gather, reduce-scatter,
// all-to-all, broadcast and the send-recv ring shift copy between the members' buffers), with a
// blocking barrier before and after. Sends copy the buffer into the peer's mailbox (per peer
// table and channel, FIFO) and end; receives wait for the message and copy it out. Buffers
// hold the plan's element counts in float (comm_elements()).
// Times: steady_clock, relative to the moment every thread of the step is released; a task's
// start is taken once its dependencies have ended (a collective's span includes waiting for the
// slowest member, as in the simulator's timeline). Every start and end also takes a number from
// one global counter, so the records give the order of events across all threads (mpi: the
// processes' events merged in time order of their common steady_clock, see host_mpi.h).
// One warm-up step (not recorded) precedes `steps` measured steps; the step with the median
// step time is the one reported, with every step's time kept.
// Thread-safety: execute_host() is reentrant; it starts and joins its own threads.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sim/plan.h"
#include "sim/status.h"
#include "sim/units.h"

namespace trainsim {

struct HostTaskRecord {
  Time start, end;            // from the step's start
  uint64_t start_seq = 0;     // global event order (start and end events share one counter)
  uint64_t end_seq = 0;
};

struct HostExecOptions {
  int steps = 3;              // measured steps (>= 1); one warm-up step runs before them
  int64_t max_bytes = int64_t{4} << 30;   // host memory limit for all ranks' buffers
  std::string backend = "threads";        // "threads" | "mpi" (REQUIRES for mpi: host_mpi_init())
};

struct HostRun {
  std::vector<std::vector<HostTaskRecord>> tasks;   // [rank][task index of its program], median step
  Time step_time;                                   // of the median step: the last task's end
  std::vector<Time> step_times;                     // every measured step, in order
  int threads = 0;                                  // (rank, stream) threads per step
  int64_t buffer_bytes = 0;                         // host memory of kernels and buffers
  std::string backend = "threads";                  // "threads" (ranks as threads of this process),
                                                    // "mpi" (ranks as MPI processes)
  std::string device;                               // the device that ran it when not this host (a GPU)
};

// REQUIRES: plan finalized. Costs (Task::dur) are not used.
// Errors: steps < 1, a kernel over max_bytes (names the op), a p2p task without a peer; for
// mpi, the errors of execute_host_mpi() (calibrate/host_mpi.h).
Result<HostRun> execute_host(const Plan& plan, const HostExecOptions& opts);

// Timing helpers for `trainsim calibrate --host --backend threads`, with the executor's own code
// paths (the MPI back end's are time_mpi_collective / time_mpi_send in calibrate/host_mpi.h):
// median seconds of `runs` runs (after `warmup` runs) of a collective over a thread group of
// `group_size` members (the slowest member's time per run), and of one send of `elements`
// floats into a mailbox. kind: CollKind; send-recv as CollKind::kSendRecv over group_size.
double time_host_collective(CollKind kind, int64_t elements, int group_size, int warmup, int runs);
double time_host_send(int64_t elements, int warmup, int runs);

}  // namespace trainsim
