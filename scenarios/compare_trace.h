// File: scenarios/compare_trace.h
// `trainsim compare-trace SCENARIO REAL_TRACE.json` (README "Verify"): a PyTorch profiler trace
// of one rank of a real run of the same configuration, side by side with the simulated timeline
// of that rank (the full plan simulated as `trainsim run` does, with the scenario's
// costs.calibration or --calibration).
//
//   auto t = parse_torch_trace(text, "rank0.pt.trace.json");
//   auto m = measure_trace(*t.value(), "rank0.pt.trace.json", /*step=*/-1);   // the real side
//   auto c = compare_trace(scenario, "rank0.pt.trace.json", {});             // both sides
//
// Definitions (the same on both sides, so the columns compare like with like):
//   kernels     measured: the trace's GPU kernel events ("cat": "kernel") on its device (the one
//               with the most kernels; others are counted, not used); memcpy/memset events are
//               not kernels. Simulated: the rank's compute tasks (every op class but offload,
//               whose copies are not kernels either) and its communication tasks (collectives,
//               sends, receives).
//   step        measured: ProfilerStep#N (the last one with a duration that launched kernels,
//               or --step N): with a GPU annotation (gpu_user_annotation) its span on the GPU
//               and the kernels overlapping it, clipped to it; else the kernels whose launch
//               (cuda_runtime event; the kernel's own start when it has none) lies in the CPU
//               span, and the window from the first one's start to the last one's end. Without
//               ProfilerStep annotations: every kernel, first start to last end.
//               Simulated: [0, step time of the whole job] as `trainsim run` predicts it.
//   per class   summed kernel (task) time within the window, per class: gemm, attention,
//               elementwise, norm, embedding, loss, optimizer (kernel classes as
//               calibrate/torch_trace.h classifies them) and one row per collective kind
//               ("all-reduce", ..., "send/recv"; a trace cannot tell a TP from a DP group, so the
//               simulated rows sum the groups of a kind). A collective's time runs from this
//               rank's arrival to its end on both sides (an NCCL kernel spins while its peers
//               are late, and so does the simulated task); a simulated receive runs from when
//               its stream reaches it (the previous task on its stream and its dependencies
//               done) to the message's delivery, as an NCCL receive kernel does. Kernels of no
//               class form the "unclassified" row (measured only).
//   exposed     time inside the window when a communication (NCCL) kernel runs and no compute
//   comm        kernel runs, on any of the device's streams: |C \ K| = |C u K| - |K|, with C, K
//               the unions of the communication and compute intervals.
//   idle        time inside the window when no kernel runs: |W| - |C u K| (pipeline bubble,
//               waiting for the host, the simulated rank's tail after its last task).
//   shares      exposed / step, idle / step.
// Every class row carries the source of its predicted cost (measured / interpolated / fitted /
// default, calibrate/calibrated_cost_model.h and calibrate/cost_model.h).
// Thread-safety: pure functions (compare_trace reads two files).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "calibrate/torch_trace.h"
#include "scenarios/scenario.h"
#include "scenarios/verify.h"   // TimelineShares
#include "sim/status.h"
#include "sim/units.h"

namespace trainsim {

struct CompareTraceOptions {
  uint32_t rank = 0;          // simulated rank the trace is compared with (--rank)
  int64_t step = -1;          // ProfilerStep number (--step); -1 = the last complete one
  std::string calibration;    // calibration database (--calibration); "" = costs.calibration
};

// Kernels of the trace and what became of them.
struct TraceKernelStats {
  int kernels = 0;            // kernel events in the trace
  int other_device = 0;       // on a device other than the one compared
  int outside_step = 0;       // on the device, outside the chosen step
  int in_step = 0;            // inside the step: mapped + unclassified + comm_unknown_kind
  int mapped = 0;             // into a class row
  int unclassified = 0;       // neither the kernel name nor its launching op names a class
  int comm_unknown_kind = 0;  // NCCL kernels whose collective kind neither name nor args say
};

struct MeasuredClass {
  std::string what;
  Time time;
  int kernels = 0;
};

// The rows of a comparison, in order: op classes, collective kinds, "send/recv", "unclassified".
const std::vector<std::string>& trace_class_rows();

// A kernel (measured) or task (simulated) of the compared step, for the timelines of
// `compare-trace --html`: [start, end) from the window's start (clipped to it on the measured
// side), its row (an index into trace_class_rows()) and whether it is communication.
struct ClassSpan {
  Time start, end;
  uint8_t row = 0;
  bool comm = false;
};

// The measured side of the comparison.
struct TraceTimeline {
  int64_t device = 0;
  std::string device_name;    // deviceProperties name, "" when absent
  int64_t step_number = -1;   // -1: no ProfilerStep (whole kernel span)
  std::string window;         // how the window was found, e.g. "ProfilerStep#2 on the GPU"
  Time step;                  // window length
  std::vector<MeasuredClass> classes;   // row order of compare_trace; non-empty rows only
  Time busy_compute, busy_comm;         // |K|, |C| (unions)
  Time exposed_comm, idle;
  TraceKernelStats stats;
  std::vector<ClassSpan> spans;         // the step's kernels, in trace order
};

// Error (naming `label`): no GPU kernels, --step N not in the trace, a step without kernels.
Result<TraceTimeline> measure_trace(const TorchTrace& t, const std::string& label, int64_t step);

struct TraceClassRow {
  std::string what;           // "gemm", ..., "all-reduce", "send/recv", "unclassified"
  Time predicted, measured;
  int tasks = 0;              // simulated tasks of the rank
  int kernels = 0;            // measured kernels in the step
  std::string source;         // cost source(s) of the prediction; "-" when nothing is predicted
  bool predicted_present = false, measured_present = false;
  double error() const;       // (predicted - measured) / measured; 0 when measured is 0
};

struct TraceComparison {
  std::string scenario, scenario_file, scenario_hash, plan_hash;
  std::string trace_file, trace_hash;   // hash: FNV-1a of the file's bytes
  uint32_t rank = 0;
  int ranks = 0;                        // ranks of the full plan
  int64_t trace_rank = -1;              // distributedInfo.rank of the trace (-1: absent)
  std::string costs;                    // "embedded default" or the calibration database
  std::vector<std::string> calibration_notes;
  TraceTimeline measured_side;
  Time predicted, measured;
  double step_error = 0;                // (predicted - measured) / measured
  Time predicted_exposed, predicted_idle;
  TimelineShares predicted_shares, measured_shares;   // bubble = idle share
  std::vector<TraceClassRow> classes;
  std::vector<ClassSpan> predicted_spans;   // the simulated rank's kernels and comm tasks, in task order
  std::vector<std::string> notes;       // e.g. the trace's rank differs from --rank
};

// Error: unreadable trace file, not a Chrome trace, no kernels, step not found, rank out of
// range, scenario / calibration errors from predict().
Result<TraceComparison> compare_trace(const Scenario& s, const std::string& trace_path,
                                      const CompareTraceOptions& opts);

}  // namespace trainsim
