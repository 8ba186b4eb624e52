// File: sim/network_model.h
// The "flow" network fidelity as the replay sees it (ARCHITECTURE.md "Network"): an interface
// that turns a collective instance or a p2p message into flows over the link ids of a
// FlowNetwork, plus the parts it prices analytically. The replay (sim/replay.h) starts the
// flows when the collective's last member arrives (or when a send starts) and completes it at
//   done = max(last flow end, start + floor) + tail
// so overlapping collectives slow each other down through the max-min shared links. The engine
// knows nothing about GPUs or fabrics: topologies/flow_collectives.h implements this on a
// ClusterGraph (NCCL-like rings per rail, pairwise all-to-all, p2p).
// Thread-safety: an implementation may cache (routes); one replay at a time per instance.
#pragma once
#include <cstdint>
#include <vector>

#include "sim/flow.h"
#include "sim/plan.h"
#include "sim/units.h"

namespace trainsim {

struct NetworkTraffic {
  bool analytic = true;         // no flows: the task keeps its bound duration (Task::dur)
  std::vector<FlowSpec> flows;  // started together; empty with analytic == false means floor+tail only
  Time floor;                   // the bandwidth part cannot end before start + floor (e.g. NVLink-bound)
  Time tail;                    // added after the last flow ends: per-step latencies (alpha),
                                // intra-node phases of hierarchical algorithms
};

class NetworkModel {
 public:
  virtual ~NetworkModel() = default;
  // Capacity of each directed link, indexed by link id (the FlowNetwork is built from this).
  virtual std::vector<Bandwidth> link_capacities() const = 0;
  // The traffic of collective op `op` (a Plan::ops index) run by instance `inst` of group
  // `group`. REQUIRES: plan.finalize() ok; the op is a collective of that group.
  virtual void collective(const Plan& plan, uint32_t group, uint32_t inst, uint32_t op,
                          NetworkTraffic* out) = 0;
  // The traffic of p2p op `op` sent from rank `src` to rank `dst`.
  virtual void p2p(const Plan& plan, uint32_t src, uint32_t dst, uint32_t op,
                   NetworkTraffic* out) = 0;
};

}  // namespace trainsim
