// File: sim/plan_export.h
// Writes the programs of chosen ranks of a bound Plan as JSON (calibrate/FORMAT.md section 4),
// for the verify executors (calibrate/cuda: trainsim_executor) that run the very same tasks on
// real hardware and line them up, task by task, with the simulated durations written here.
// What a file holds:
//   - the stream names by index (kStreamCompute..kStreamEp: "compute", "dp", "p2p",
//     "gather", "cp", "offload-out", "offload-in", "dp-replica", "ep", "tp");
//   - the whole ops table (indices as in Plan::ops), every OpDesc field;
//   - the group kinds with the member ranks of each instance that an exported rank belongs to,
//     and the peer tables' names;
//   - per exported rank: its instance of each group kind and its peer of each peer table, and
//     its tasks in issue order (op, kind, stream, deps as task indices, category, layer,
//     micro, group/channel, memory events, and Task::dur in microseconds).
// The writer needs no JSON library (sim/ depends on the standard library only); numbers are
// written so that they read back exactly (integers as integers, dur_us with 6 decimals = whole
// picoseconds, FLOPs with 17 significant digits).
// Thread-safety: pure function of its arguments.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sim/plan.h"
#include "sim/status.h"

namespace trainsim {

inline constexpr int kPlanExportVersion = 1;

struct PlanExportOptions {
  std::vector<uint32_t> ranks;     // ranks to write (duplicates ignored, written ascending)
  std::string scenario;            // a label for the file ("quickstart", a path)
  std::string costs;               // where Task::dur came from ("embedded default", a database)
  double predicted_step_us = -1;   // the run's predicted step time; < 0: not written
};

// A stream's name as the file writes it ("compute", "dp", ...; "?" for none).
const char* plan_stream_name(uint8_t stream);

// REQUIRES: plan finalized (and bound, for meaningful durations). Returns an error when a rank
// is out of range or none is given.
Result<std::string> export_plan_json(const Plan& plan, const PlanExportOptions& opts);

}  // namespace trainsim
