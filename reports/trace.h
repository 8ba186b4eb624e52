// File: reports/trace.h
// Chrome / Perfetto trace of the traced ranks of one prediction (open in ui.perfetto.dev or
// chrome://tracing). Built from Prediction::trace (one TraceRecord per task run) and
// Prediction::plan (op names, streams, categories).
//
// Layout ("Trace Event Format", JSON object form):
//   {"traceEvents": [...], "displayTimeUnit": "ns", "otherData": {scenario, fingerprint}}
//   - metadata first: per traced rank (ascending) a "process_name" "rank N (<program name>)"
//     (the compiler names programs "stage S", giving "rank N (stage S)") and a
//     "process_sort_index"; per stream the rank used a "thread_name" ("compute", "dp-comm",
//     "pp-send", "gather") and a "thread_sort_index";
//   - then one complete event ("ph":"X") per TraceRecord, in Prediction::trace order:
//     pid = rank, tid = stream, ts/dur in microseconds (doubles, from integer ps),
//     name = op name + " L<layer> mb<micro>" (the suffix only when layer != 0xffff),
//     cat = to_string(Category), args {class, flops, bytes, task}.
// REQUIRES: every TraceRecord names a rank and task that exist in the plan (a bug otherwise;
// SIM_CHECK aborts). With no plan, the trace must be empty.
// Deterministic: the same Prediction gives the same document.
// Thread-safety: reentrant; reads the Prediction only.
#pragma once
#include <nlohmann/json.hpp>

#include "scenarios/predict.h"

namespace trainsim {

nlohmann::ordered_json chrome_trace(const Prediction& p);

// Display name of a stream index (kStreamCompute -> "compute", ...); "stream" otherwise.
const char* stream_name(uint8_t stream);

}  // namespace trainsim
