// File: scenarios/scenario.h
// A scenario: everything one prediction needs. Loaded from JSON (scenarios/loader.h), the
// sections follow the published-run schema (../shared/validation/README.md): model, training,
// cluster, parallel; plus the simulator's own options (network, costs, seed).
// Thread-safety: plain data.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/gpu_speed.h"
#include "models/spec.h"
#include "topologies/hardware.h"
#include "topologies/link_modification.h"

namespace trainsim {

// The "network" section (scenarios/README.md). Fields other than network_mode are used in
// flow mode only.
struct NetworkOptions {
  std::string topology;                   // builtin name or topology file; "" = a rail-optimized
                                          // fat-tree sized from the cluster section
  std::vector<double> oversubscription;   // per switch tier from the leaf up; empty = the topology's
  std::vector<LinkModification> modifications;   // failed / degraded links (what-ifs)
  std::string placement = "contiguous";   // "contiguous" | "scattered" (job nodes on the fabric)
  int hottest_links = 10;                 // rows of the hottest-links report
  bool in_network_reduction = false;      // InfiniBand SHARP on the scale-out switches: a
                                          // cross-node all-reduce may reduce in the switch tree
  // The keys above that only flow mode uses and the scenario gave ("network.topology", ...), in
  // the order of the README's table: an analytic prediction says it left them out.
  std::vector<std::string> flow_only_given;
};

struct SimOptions {
  std::string network_mode = "analytic";  // "analytic" (alpha-beta) or "flow" (issue 3)
  NetworkOptions network;
  std::string calibration;                // path of a calibration database ("" = embedded default)
  std::string prefer_source;              // of several measurements of one op, the one whose
                                          // source contains this text ("" = the fastest)
  int nccl_ctas = -1;                     // SMs a running collective holds (-1: the embedded
                                          // default; 0: compute is not slowed by collectives)
  uint64_t seed = 1;
  GpuSpeedSpec gpu_speed;                 // per-GPU compute speed (the "gpu_speed" section; what-if)
};

struct Scenario {
  std::string name;
  std::string file;                       // where it was loaded from ("<embedded>" or a path)
  ModelSpec model;
  TrainingSpec training;
  ClusterSpec cluster;
  ParallelSpec parallel;
  SimOptions options;
};

}  // namespace trainsim
