// File: reports/json_report.h
// The machine-readable form of one prediction (`trainsim run --json`, summary.json of the
// golden scenarios). Every figure of the terminal summary is here.
//
// Conventions of the document:
//   - times: seconds as doubles in keys ending "_s"; integer picoseconds in keys ending "_ps"
//     (exact; use these for comparisons);
//   - bytes: integers in keys ending "_bytes";
//   - shares and utilisations: fractions in [0, 1] ("mfu", "hfu", "fraction",
//     "hidden_fraction"), never percentages;
//   - "fingerprint": the replay's event-sequence hash as 16 lowercase hex digits;
//   - key order is fixed (ordered_json), arrays keep the Prediction's order.
// cluster: gpu, gpus, gpus_per_node, hbm_capacity_bytes, gpu_spec {base (a custom GPU's catalog
// GPU; null for a catalog GPU), family, the peaks in TFLOP/s, the bandwidths (GB/s; nic_Gbps in
// Gbit/s), sms, tdp_w, power_limit_w}: the figures the costs used, so compare shows them.
// Top-level keys, in order: scenario, model, training, cluster, strategy, mode,
// simulated_ranks, gpus, step_time_s, step_time_ps, tokens_per_step, tokens_per_s,
// tokens_per_s_per_gpu, model_tflops_per_gpu, hardware_tflops_per_gpu, peak_tflops_per_gpu,
// mfu, hfu, critical_rank, breakdown, comm, memory {capacity_bytes, oom, verdict,
// peak, per_stage},
// sources, events, fingerprint; in flow mode only, then "network": {mode, topology,
// fabric_gpus, placement, link_efficiency, transfers, flows_started, rate_recomputations,
// flows_resolved, peak_active_flows, hottest_links: [{from, to, capacity_bytes_per_s, bytes,
// utilisation, busy_s, busy_ps}]} (utilisation = bytes / (line rate x step time)).
// nlohmann's dump() writes doubles in shortest round-trip form, so dump() of the same
// Prediction is byte-identical. Non-finite doubles (never expected) are written as null.
// Thread-safety: reentrant; reads the Prediction only.
#pragma once
#include <nlohmann/json.hpp>

#include "scenarios/predict.h"

namespace trainsim {

// A double as JSON: null when it is not finite (JSON has no NaN or infinity).
nlohmann::ordered_json json_number(double v);

nlohmann::ordered_json prediction_json(const Prediction& p);

// {"rank", "stage", "params_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes",
//  "workspace_bytes", "total_bytes", "capacity_bytes", "oom"}
nlohmann::ordered_json memory_report_json(const MemoryReport& m);

}  // namespace trainsim
