// File: sim/flow_bench.h
// A benchmark of the flow-level network (sim/flow.h), callable from the bench program
// (STYLE.md 7: performance is measured by a program that prints a table, not by a test).
//
// Fabric: a 2-level tree of exactly 10,000 directed links: 100 leaves x 48 hosts, each host
// with an up and a down link of 50 GB/s (9,600 links), and 2 spines, each leaf with an up and a
// down link per spine (400 links) of 600 GB/s (2:1 oversubscribed). A cross-leaf flow takes
// host-up, leaf->spine, spine->leaf, host-down (spine chosen by a hash of the pair); a flow
// inside a leaf takes host-up, host-down.
// Each case drives the network through EventQueue + FlowEventDriver, exactly as the replay
// will, and reports: flows, events popped, wall seconds (steady_clock around the whole run,
// generation excluded), flows per second of wall, rate recomputations (solves), the mean and
// largest component re-solved, rates that changed, and the peak number of concurrent flows.
// Single-threaded. Deterministic: fixed seeds, so the counts are the same on every run.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "sim/units.h"

namespace trainsim {

struct FlowBenchCase {
  std::string name;
  int flows = 100'000;
  // kRandom: independent flows between random host pairs, Poisson arrivals.
  // kRings: ring collectives of ring_size hosts; all flows of a ring start together.
  enum class Kind { kRandom, kRings } kind = Kind::kRandom;
  bool same_leaf = false;          // kRings: ring members inside one leaf (contiguous placement)
  int ring_size = 8;
  double target_concurrency = 500; // sets the arrival rate: ~ this many flows in flight if
                                   // they ran at host speed
  uint64_t seed = 1;
};

struct FlowBenchRow {
  std::string name;
  uint64_t links = 0, flows = 0, events = 0;
  double wall_s = 0, flows_per_s = 0;
  uint64_t solves = 0, flows_resolved = 0, rates_changed = 0, max_component = 0, peak_active = 0;
  Time simulated;  // when the last flow finished
};

FlowBenchRow run_flow_bench_case(const FlowBenchCase& c);
// The standard cases (100,000 flows each over the 10,000-link tree).
std::vector<FlowBenchCase> flow_bench_cases();
// Runs the standard cases (or those whose name contains `only`, when not empty) and prints
// the table to `out`. Returns the rows.
std::vector<FlowBenchRow> flow_benchmark(std::FILE* out = stdout, const std::string& only = "");

}  // namespace trainsim
