// File: reports/plan_report.h
// `trainsim plan`: the plan a scenario compiles to, in words (ARCHITECTURE.md: the plan is the
// seam of the system, and a user can dump it and read it). `run --export-plan` writes a rank's
// whole task list as JSON for the verify executors; this is the overview a person reads first:
//   - the plan: ranks, programs (classes of identical ranks sharing one task list), distinct
//     ops, tasks, the ranks fast mode simulates;
//   - per program: its ranks, its tasks by kind, its FLOPs per step and its static memory;
//   - per group kind (tp, dp, pp-embedding, ...): instances, members per instance, and the
//     instance of the chosen rank with its members and the nodes they span; the p2p peers;
//   - for the chosen rank: its tasks per stream and per category with the sum of their bound
//     durations (busy time on that stream; streams overlap, so these do not add up to the step);
//   - the chosen rank's ops by total bound time: what each computes or moves (GEMM shape,
//     attention problem, bytes and group), how many times it runs, each run's time, its total,
//     and where that cost came from (measured, interpolated, fitted or default).
// Durations are the plan's bound costs (Task::dur), which do not depend on fast or full mode.
// JSON (plan_summary_json), keys in this order: kind ("plan"), scenario, file, ranks,
// programs_count, ops_count, tasks, representatives, programs [{name, ranks, rank_count, tasks,
// compute, collectives, sends, recvs, model_flops, hardware_flops, params_bytes, grads_bytes,
// optimizer_bytes, workspace_bytes}], groups [{name, instances, min_size, max_size, rank_instance,
// members, nodes}], peers [{name, peer}], rank, program, streams [{stream, tasks, busy_ps}],
// categories [{category, tasks, busy_ps}], ops [{op, name, class, what, tasks, each_ps
// (null when runs differ), total_ps, source}] (every op of the rank, by total time).
// Output is a pure function of the prediction and the options.
// Thread-safety: reentrant.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "scenarios/predict.h"
#include "sim/status.h"

namespace trainsim {

struct PlanReportOptions {
  uint32_t rank = 0;   // the rank whose program, groups and ops are shown
  int top_ops = 25;    // op rows in the text (the JSON has every op)
};

// Errors: a rank the plan does not have (naming --rank and the range).
Result<std::string> format_plan_summary(const Prediction& p, const PlanReportOptions& o);
Result<nlohmann::ordered_json> plan_summary_json(const Prediction& p, const PlanReportOptions& o);

// Ranks as ascending ranges: {0,1,2,3,8,9} -> "0-3,8-9"; after `max_ranges` ranges, ",...".
std::string rank_ranges(const std::vector<uint32_t>& ranks, size_t max_ranges = 6);

}  // namespace trainsim
