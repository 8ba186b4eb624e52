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
// (min_us), timed one op at a time on one thread (the other cores idle). Collectives: over a
// thread group of the plan's group size, the slowest member's time per run; the ring shift
// (send-recv collective) is timed as a pair shift (group 2, as trainsim prices it); p2p sends as
// the executor's send (a copy into the peer's mailbox). Group sizes and per_node follow the
// plan's worst group shape (what bind_costs looks up). Offload copies and collectives over one
// rank are not listed (no measurement class for them; they keep the embedded default).
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
};

std::string host_device_name();
std::string host_name();   // gethostname(), "" when unknown

// Measurement lines (JSON objects without the trailing newline), ops first then collectives,
// in plan op order. Error: a kernel over max_bytes (names the op).
Result<std::vector<std::string>> measure_host_plan(const Plan& plan, int gpus_per_node, const HostCalibrateOptions& opts);

}  // namespace trainsim
