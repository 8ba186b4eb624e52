// File: scenarios/scenario.h
// A scenario: everything one prediction needs. Loaded from JSON (scenarios/loader.h), the
// sections follow the published-run schema (../shared/validation/README.md): model, training,
// cluster, parallel; plus the simulator's own options (network, costs, seed).
// Thread-safety: plain data.
#pragma once
#include <cstdint>
#include <string>

#include "models/spec.h"
#include "topologies/hardware.h"

namespace trainsim {

struct SimOptions {
  std::string network_mode = "analytic";  // only "analytic" until the flow model (issue 3)
  std::string calibration;                // path of a calibration database ("" = embedded default)
  uint64_t seed = 1;
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
