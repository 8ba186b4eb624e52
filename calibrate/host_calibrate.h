// File: calibrate/host_calibrate.h
// `trainsim calibrate --host`: times the host executor's own kernels and collectives
// (calibrate/host_kernels.h, calibrate/host_executor.h) for the distinct ops of a plan, and
// writes them as measurement lines (calibrate/FORMAT.md section 2) of a host device, so that
// `trainsim calibrate import` loads them and `trainsim verify --calibration` prices the host
// run from measured host costs.
// Device record: name "host-cpu <cpu model> (trainsim host executor, threads)" (host_device_name();
// the same string on the same machine and build), host = the machine's hostname, gpus = the
// number of ranks the executor runs; driver/cuda/nccl/cudnn "".
// Each op: `warmup` unrecorded runs, then the median of `runs` runs (time_us) and the fastest
// (min_us), timed one op at a time on one thread (the other cores idle). Collectives and p2p
// sends are timed with the mechanism of the executor's back end (`backend`):
//   threads  over a thread group of the plan's group size, the slowest member's time per run
//            (time_host_collective); p2p sends as the executor's send (a copy into the peer's
//            mailbox, which is its delivery: time_host_send). Source "trainsim calibrate --host
//            (shared-memory threads, float buffers)".
//   mpi      between the processes of the MPI job, with the MPI back end's own exchange
//            (time_mpi_collective / time_mpi_send in calibrate/host_mpi.h: the executor's MPI
//            calls, communicators and buffers; the slowest process's time per run; a send from
//            its start to the message in the receiver's hands, as half a ping-pong). Source
//            "trainsim calibrate --host (MPI processes, <library>)", e.g. "Open MPI v4.1.4".
//            A point whose group is larger than the MPI job (possible only when the plan has more
//            ranks than the job has processes) is timed with threads instead, its source saying
//            so. Collective over the MPI job: every process calls measure_host_plan() with the
//            same plan and options; rank 0 times the kernels while the others sleep, then all
//            time the collectives. REQUIRES host_mpi_init().
// The ring shift (send-recv collective) is timed as a pair shift (group 2, as trainsim prices
// it). Group sizes and per_node follow the plan's worst group shape (what bind_costs looks up).
// Offload copies and collectives over one rank are not listed (no measurement class for them;
// they keep the embedded default).
// Thread-safety: measure_host_plan() starts its own threads; do not run two at once if the
// timings matter.
#pragma once
#include <string>
#include <vector>

#include "sim/plan.h"
#include "sim/status.h"

namespace trainsim {

struct HostCalibrateOptions {
  int warmup = 2;
  int runs = 7;
  int64_t max_bytes = int64_t{4} << 30;   // per kernel
  std::string backend = "threads";        // how collectives are timed: "threads" | "mpi" (see above)
};

std::string host_device_name();
std::string host_name();   // gethostname(), "" when unknown

// Measurement lines (JSON objects without the trailing newline), ops first then collectives,
// in plan op order. With backend "mpi", rank 0 returns the lines and the other processes an empty
// list. Errors: a kernel over max_bytes (names the op; with mpi every process
// returns an error); an unknown backend; mpi without host_mpi_init() (or built without MPI).
Result<std::vector<std::string>> measure_host_plan(const Plan& plan, int gpus_per_node, const HostCalibrateOptions& opts);

// The mechanism a collective measurement's source names: "MPI processes (Open MPI v4.1.4)" for
// "trainsim calibrate --host (MPI processes, Open MPI v4.1.4)", "shared-memory threads" for
// the thread timing, else the source itself (an imported GPU measurement: "nccl-tests ...").
std::string collective_mechanism(const std::string& source);

// What priced a set of collective points, from their sources: the one mechanism, or each with
// its count in order of first appearance ("MPI processes (Open MPI v4.1.4): 2 points,
// shared-memory threads: 1 point"); "none measured" for no points.
std::string describe_collective_mechanisms(const std::vector<std::string>& sources);

}  // namespace trainsim
