// File: reports/summary.h
// The terminal summary of one prediction (what `trainsim run` prints): scenario, strategy,
// step time, throughput, MFU/HFU, the critical rank's time breakdown (sums to the step time),
// memory per GPU with an OK/OOM verdict, a per-stage memory table when pp > 1, the table of
// cost sources, and in flow mode the network: topology, flow statistics, hottest links.
//
// Output is a pure function of the Prediction: fixed snprintf formats, stable row order, no
// timestamps or wall-clock values, so the same Prediction gives the same bytes. Lines end in
// '\n'; the text is UTF-8 (the OOM verdict contains an em dash).
// Example (abridged):
//   step time        1.234 s
//   MFU / HFU        41.7% / 45.5%
//   memory: OK (62.1 of 80.0 GiB)
// Thread-safety: reentrant; reads the Prediction only.
#pragma once
#include <string>

#include "scenarios/predict.h"
#include "sim/replay.h"

namespace trainsim {

std::string format_summary(const Prediction& p);

// The verdict line alone, without a newline:
//   "memory: OK (62.1 of 80.0 GiB)" or "memory: OOM — needs 93.4 GiB, GPU has 80.0 GiB".
std::string memory_verdict(const MemoryReport& m);

// Names of the breakdown buckets, shared by the summary and the JSON report.
// label: for people ("exposed TP comm", "pipeline bubble"); key: for machines ("tp_exposed").
const char* breakdown_label(Bucket b);
const char* breakdown_key(Bucket b);

}  // namespace trainsim
