// File: calibrate/host_mpi.h
// The MPI back end of the host executor (`mpirun -np N trainsim verify SCENARIO --backend mpi`):
// one process per rank of the restricted plan (world rank = plan rank). Each process runs its
// own rank's program with the same per-stream threads, kernels and buffers as the thread back
// end (calibrate/host_exec_internal.h); data moves through MPI:
//   - per group table one MPI_Comm_split of the world (colour = the rank's instance, key = its
//     rank, so a member's index in the instance is its rank in the communicator);
//   - all-reduce, all-gather(v), reduce-scatter, all-to-all(v), broadcast as MPI-3 nonblocking
//     collectives on float buffers with the thread back end's chunking; the ring shift
//     (send-recv over a group) as an Isend/Irecv pair;
//   - sends as MPI_Isend of a copy (the send task ends once the copy is handed over, as the
//     mailbox does), receives as MPI_Improbe + MPI_Imrecv, tag = the plan's channel, on a
//     duplicate of the world communicator.
// Threading: MPI_Init_thread with MPI_THREAD_FUNNELED; only the main thread calls MPI. Stream
// threads hand their communication to it and sleep on a semaphore; the main thread starts each
// request and polls them all (MPI_Test*; it spins for 200 us after the last progress, then polls
// every ~20 us, sleeping in between; TRAINSIM_MPI_SPIN_US overrides the 200: a TP partner usually
// arrives within it, and on 2 cores a longer spin took cores from the kernels, a shorter one
// added wake-up latency to every collective). Why not MPI_THREAD_MULTIPLE with blocking calls from every
// stream thread: Open MPI 4.1 (Debian) provides it, but (1) its blocking calls busy-poll, so
// every waiting stream thread would take a core from the kernels being timed (CI has 2 cores
// for 2 processes), (2) blocking collectives of different groups issued by different threads
// must not depend on each other's order, which nonblocking requests from one thread avoid, and
// (3) funnelled use works with any MPI library and transport (vader, UCX), THREAD_MULTIPLE only
// with some. Open MPI has no asynchronous progress thread ("OMPI progress: no"), so a request
// progresses only while the main thread polls, which it does whenever anything is in flight.
// Times: processes on one machine share CLOCK_MONOTONIC (steady_clock), so every process's
// stamps are on one clock. Per step: MPI_Barrier, each process stamps its release; the step's
// origin is the earliest release (MPI_Allreduce) and every record is rebased on it; the step
// time is the latest end over all ranks. The median step is chosen identically everywhere and
// its records are gathered to rank 0 (MPI_Gatherv), which numbers all ranks' events in one
// order: by time, then rank, then the process's own order (consistent with every dependency,
// since a task's start is stamped after its dependencies' ends on the same clock).
// While rank 0 measures the calibration's kernels and simulates, the other processes wait in
// host_mpi_wait_all(), which sleeps (1 ms polls of an MPI_Ibarrier) so it takes no core; every
// process takes part in timing the calibration's collectives (time_mpi_collective below).
// Calibration timing (`trainsim calibrate --host --backend mpi`, and verify's on-the-fly
// calibration with --backend mpi): time_mpi_collective() and time_mpi_send() run the very
// exchange the executor runs (same MPI calls, communicators from MPI_Comm_split, float buffers,
// chunking, and the main thread serving a stream thread's requests), between the processes of
// the job, timed like nccl-tests: one MPI_Barrier, then each process times `warmup + runs` runs
// back to back on its stream thread; a run's time is the maximum over the processes, and the
// median run is returned.
// Without MPI at build time (TRAINSIM_HAVE_MPI unset) there is one process: the rank and size
// queries answer 0 and 1, and host_mpi_init() / execute_host_mpi() return the error "built
// without MPI" (what `--backend mpi` then prints).
// Thread-safety: call everything from the main thread; execute_host_mpi() is collective (every
// process calls it with the same plan and options).
#pragma once
#include <string>
#include <vector>

#include "calibrate/host_executor.h"
#include "sim/plan.h"
#include "sim/status.h"

namespace trainsim {

// True when this build has the MPI back end.
bool host_mpi_built();

// The size of the MPI job this process was started in by a launcher (mpirun / mpiexec: Open MPI's
// OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX / Slurm variables), or 0 when not started by one.
int host_mpi_launched_size();

// MPI_Init_thread (MPI_THREAD_FUNNELED). Idempotent. Error: built without MPI, or the library
// does not provide at least MPI_THREAD_FUNNELED.
Status host_mpi_init();
bool host_mpi_initialized();   // host_mpi_init() succeeded and host_mpi_finalize() not yet called
int host_mpi_rank();           // 0 when not initialized
int host_mpi_size();           // 1 when not initialized

// A barrier that sleeps while it waits (1 ms polls). No-op when not initialized.
void host_mpi_wait_all();

// True when `ok` is true on every process: an MPI_Iallreduce that sleeps while it waits, as
// host_mpi_wait_all(). Returns `ok` when not initialized.
bool host_mpi_all(bool ok);

// Gathers every process's `mine` to rank 0: there, the texts in rank order; elsewhere an empty
// vector. Sleeps while it waits, as host_mpi_wait_all(). Collective. Not initialized: {mine}.
// Error: a text over INT_MAX bytes, or the total over INT_MAX (MPI counts are int).
Result<std::vector<std::string>> host_mpi_gather_text(const std::string& mine);

// The MPI library, from the first line of MPI_Get_library_version up to its first comma, with
// runs of white space as one space: "Open MPI v4.1.4"; "" when built without MPI.
std::string host_mpi_library();

// Median seconds of a collective of `kind` over groups of `group_size` processes, with the MPI
// back end's exchange (see the header comment): the world is split into groups of consecutive
// ranks (colour rank / group_size; the last world_size % group_size processes sit the runs out
// but take part in the barrier and the reduction of the times). Buffers of `elements` floats.
// Collective: every process calls it with the same arguments.
// Errors: MPI not initialized (or built without it); group_size < 2 or over the world size
// (the caller chooses what to do instead); runs < 1, warmup < 0; elements < 1 or over INT_MAX.
Result<double> time_mpi_collective(CollKind kind, int64_t elements, int group_size, int warmup, int runs);

// Median seconds of a send of `elements` floats from one process to another with the MPI back
// end's exchange (MPI_Isend of a copy; the receiver's MPI_Improbe + MPI_Imrecv), from the
// send's start to the message in the receiving thread's hands: the time the simulator gives a
// send task (its message arrives when it ends). Timed as a ping-pong between the pairs of
// ranks (0,1), (2,3), ...: a run is one round trip (send, receive the reply, copy it out), its
// time the maximum over the processes, halved. Collective, as time_mpi_collective().
// Errors: as time_mpi_collective() (a world of fewer than 2 processes).
Result<double> time_mpi_send(int64_t elements, int warmup, int runs);

// Waits for every process (host_mpi_wait_all) and calls MPI_Finalize. No-op when not initialized.
void host_mpi_finalize();

// MPI_Abort(MPI_COMM_WORLD, code): ends every process of the job (after an error on one).
// No-op when not initialized.
void host_mpi_abort(int code);

// The MPI back end of execute_host() (called by it for backend "mpi").
// Errors: built without MPI; host_mpi_init() not called; world size != plan.num_ranks (says
// which -np to use); the thread back end's errors (memory, peers), on the process that has them.
Result<HostRun> execute_host_mpi(const Plan& plan, const HostExecOptions& opts);

}  // namespace trainsim
