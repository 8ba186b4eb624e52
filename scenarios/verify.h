// File: scenarios/verify.h
// Verification mode (`trainsim verify`, README "Verify"): restrict a scenario's plan to the
// local devices (models/restrict.h), execute the restricted plan for real (the host executor,
// calibrate/host_executor.h), simulate the very same restricted plan priced from a host
// calibration (calibrate/host_calibrate.h: from --calibration, or measured on the fly), and
// compare, per step, per op class and per op.
//
// Figures (both sides computed the same way, from per-task start/end times of every local rank):
//   step time        simulated: the replay's step; measured: the median of `steps` executed
//                    steps (after one warm-up step);
//   step_error       (predicted - measured) / measured, signed (positive: we over-predict);
//   per class        summed task spans (end - start) per local rank, averaged over the ranks;
//                    classes are the op classes (gemm, attention, elementwise, norm, ...) and
//                    each collective kind with its group ("all-reduce(tp)"), "send/recv" for p2p;
//                    a collective's span includes waiting for the slowest member on both sides;
//   top ops          the ten distinct ops with the largest |measured - predicted| summed span;
//   shares           per rank, along the compute stream: a gap before a task that waited for a
//                    communication task (dependency) is exposed communication up to that task's
//                    end, and communication tasks on the compute stream are exposed; every other
//                    gap (including waits for pipeline receives and the idle tail) is bubble;
//                    shares = time / step time, averaged over the local ranks.
// Every class row carries the source of its predicted cost (measured / interpolated / fitted /
// default, as calibrate/calibrated_cost_model.h assigns it).
// With backend "mpi" every process of the MPI job calls verify_scenario(); rank 0 measures the
// calibration's kernels and simulates while the others wait (sleeping), all processes time the
// calibration's collectives together (MPI, as the run moves data; calibrate/host_calibrate.h),
// then all execute their ranks; rank 0 returns the whole Verification, the others a partial one
// that callers do not report. With --calibration, a database holding collectives timed both ways
// prices from those of the run's back end; the report says which mechanism priced them and
// notes points timed otherwise.
// Thread-safety: verify_scenario() is reentrant but times real work: run one at a time.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "calibrate/host_calibrate.h"
#include "calibrate/host_executor.h"
#include "scenarios/scenario.h"
#include "sim/plan.h"
#include "sim/status.h"
#include "sim/units.h"

namespace trainsim {

struct VerifyOptions {
  int ranks = 2;                   // local devices (--ranks)
  std::string executor = "host";   // "host" | "cuda"
  std::string backend = "threads"; // host executor: "threads" | "mpi" (one process per rank under
                                   // mpirun; REQUIRES host_mpi_init(); see calibrate/host_mpi.h)
  std::string calibration;         // calibration database; "" = measure the host on the fly
  int steps = 3;                   // measured steps
  HostCalibrateOptions calib;      // for the on-the-fly measurement
  int64_t max_bytes = int64_t{4} << 30;   // host executor memory limit
  // --executor cuda: the trainsim_executor program (calibrate/cuda; the CLI finds it beside the
  // trainsim binary or on PATH), run with every rank of the restricted plan exported (calibrate/
  // FORMAT.md section 4) on GPUs 0..ranks-1, one each, NCCL between them. Its costs: `calibration` as a GPU calibration database
  // (the scenario's GPU, as `trainsim run --calibration`), or the embedded default when empty.
  std::string executor_bin;
  HostRun* run_out = nullptr;      // if set, receives the executed run (per-task records)
};

struct VerifyClassRow {
  std::string what;                // "gemm", "all-reduce(tp)", "send/recv", ...
  Time predicted, measured;        // per rank (mean over the local ranks)
  int tasks = 0;                   // per step, all local ranks
  std::string source;              // cost source(s) of the prediction: "measured", "measured+fitted"
  double error() const;            // (predicted - measured) / measured; 0 when measured is 0
};

struct VerifyOpRow {
  std::string op;                  // op name, e.g. "mlp.fc1.fwd"
  std::string what;                // its class row
  Time predicted, measured;        // summed over its tasks on all local ranks
  int tasks = 0;
  std::string source;
};

struct TimelineShares {
  double exposed_comm = 0;         // fraction of the step
  double bubble = 0;
};

struct Verification {
  std::string scenario, scenario_file;
  std::string scenario_hash, plan_hash;   // 16 hex digits
  std::vector<std::string> kept, dropped;
  int ranks = 0, full_ranks = 0;
  std::string executor, backend;          // "host"; "threads" or "mpi, N processes"
  std::string device;                     // host_device_name()
  std::string machine;                    // hostname, CPU, cores
  std::string calibration;                // the database path, or "measured on the fly"
  bool calibration_on_the_fly = false;
  int calibration_points = 0;             // lines measured on the fly (0 with --calibration)
  std::vector<std::string> calibration_notes;
  std::string collectives;                // what timed the collective costs: "MPI processes (Open MPI
                                          // v4.1.4)", "shared-memory threads", "embedded default", or
                                          // each mechanism with its count of points
                                          // (describe_collective_mechanisms())
  Time predicted, measured;
  std::vector<Time> measured_steps;
  double step_error = 0;
  std::vector<VerifyClassRow> classes;    // fixed order: op classes, then collective kinds
  std::vector<VerifyOpRow> top_ops;       // at most 10
  TimelineShares predicted_shares, measured_shares;
};

// Error: --executor not host (cuda: not available in this build), a restriction or execution
// error, a calibration database that is missing or lacks the host device.
Result<Verification> verify_scenario(const Scenario& s, const VerifyOptions& opts);

// FNV-1a 64 of a byte string, as 16 lowercase hex digits (scenario hashes).
std::string hash_hex(const std::string& bytes);

// A plan's hash (16 hex digits) of everything the executors and the simulator read: ops,
// tasks, groups, peers; the `plan_hash` of verify's and compare-trace's records.
std::string plan_fingerprint(const Plan& p);

}  // namespace trainsim
