// File: reports/verify_report.h
// The report of `trainsim verify` (scenarios/verify.h): what the restriction kept and dropped,
// where the costs came from, predicted vs measured step time with its signed error and the
// tolerance verdict, per class rows, the ten ops with the largest error, and the
// exposed-communication and bubble shares on both sides.
// JSON (verify_json), keys in this order: scenario, scenario_file, scenario_hash, plan_hash,
// version, machine, device, executor, backend, ranks, full_ranks, kept, dropped, calibration
// {source, on_the_fly, points, notes}, predicted_step_s, measured_step_s, measured_steps_s,
// step_error, tolerance, passed, classes [{what, source, tasks, predicted_s, measured_s, error}],
// top_ops [{op, what, source, tasks, predicted_s, measured_s, error}], shares {predicted
// {exposed_comm, bubble}, measured {exposed_comm, bubble}}. Errors and shares are fractions.
// Thread-safety: pure functions.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "scenarios/verify.h"

namespace trainsim {

// passed = |step_error| <= tolerance.
std::string format_verification(const Verification& v, double tolerance, const std::string& version);
nlohmann::ordered_json verify_json(const Verification& v, double tolerance, const std::string& version);

// Shared with compare-trace's report (reports/compare_trace_report.h): the side-by-side shares
// table (rows "exposed communication" and `bubble_label`) and its JSON
// {predicted {exposed_comm, bubble}, measured {exposed_comm, bubble}}.
std::string format_shares_table(const TimelineShares& predicted, const TimelineShares& measured,
                                const std::string& bubble_label);
nlohmann::ordered_json shares_json(const TimelineShares& predicted, const TimelineShares& measured);

}  // namespace trainsim
