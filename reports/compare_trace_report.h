// File: reports/compare_trace_report.h
// The report of `trainsim compare-trace` (scenarios/compare_trace.h), laid out as verify's
// (reports/verify_report.h): what was compared (scenario, plan, rank, trace, step window),
// where the costs came from, predicted vs measured step time with its signed error and the
// tolerance verdict, per class rows, exposed-communication and idle (bubble) shares on both
// sides, and what became of the trace's kernels.
// JSON (compare_trace_json), keys in this order: kind ("compare-trace"), scenario,
// scenario_file, scenario_hash, plan_hash, version, trace {file, hash, device, device_name,
// rank, step, window}, rank, ranks, costs {source, notes}, predicted_step_s, measured_step_s,
// step_error, tolerance, passed, classes [{what, source, tasks, kernels, predicted_s,
// measured_s, error}] (predicted_s / measured_s / error null where a side has nothing),
// shares {predicted {exposed_comm, bubble}, measured {exposed_comm, bubble}}, timeline
// {predicted {exposed_comm_s, idle_s}, measured {exposed_comm_s, idle_s}}, kernels {seen,
// in_step, mapped, unmapped {unclassified, comm_unknown_kind, outside_step, other_device}},
// notes. Errors and shares are fractions.
// Thread-safety: pure functions.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "scenarios/compare_trace.h"

namespace trainsim {

// passed = |step_error| <= tolerance.
std::string format_trace_comparison(const TraceComparison& c, double tolerance, const std::string& version);
nlohmann::ordered_json compare_trace_json(const TraceComparison& c, double tolerance, const std::string& version);

}  // namespace trainsim
