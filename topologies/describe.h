// File: topologies/describe.h
// A structural description of a ClusterGraph for `trainsim topo describe`: counts per tier, link
// capacity per tier, oversubscription and bisection bandwidth.
//
// Bisection bandwidth (documented estimate, exact for the builders' symmetric fat-trees): split
// the nodes into halves H (nodes [0, N/2)) and H' (the rest). Traffic from H to H' must leave
// through the uplinks of every tier whose switches each serve nodes of one half only: for such
// a tier, the cut is min(uplink capacity of H's switches, of H''s switches). The bisection is
// the smallest of these cuts and of the halves' NIC capacity. A tier whose switches serve both
// halves (a single leaf, the cores) does not constrain it. For a 2-tier fabric this is
// min(NIC, leaf uplinks of a half); for a 3-tier fabric with an even number of pods it is
// min(NIC, leaf uplinks, spine uplinks of half the pods) = the top-tier cut.
// Oversubscription of a switch tier = its down capacity / its up capacity (switches that have
// up links only).
// Thread-safety: pure functions.
#pragma once
#include <string>
#include <vector>

#include "topologies/cluster.h"

namespace trainsim {

struct TopoDescription {
  struct Count { std::string kind; int count = 0; };
  struct LinkTier {
    std::string name;      // "gpu-nvswitch", "gpu-nic", "nic-leaf", "leaf-spine", "spine-core"
    int cables = 0;
    Bandwidth min_bw, max_bw;   // per direction
    Bandwidth total;            // sum over cables, per direction
  };
  struct Ratio { std::string tier; double down_over_up = 0; };
  std::string name;
  int gpus = 0, nodes = 0, gpus_per_node = 0, nics = 0;
  std::vector<Count> switches;          // nvswitch, leaf, spine, core (present kinds only)
  std::vector<LinkTier> links;          // by level, bottom up
  std::vector<Ratio> oversubscription;  // per switch tier with uplinks
  Bandwidth bisection;                  // per direction, between the halves of the nodes
  // Node 0's GPU-NVSwitch capacity of its first gpus_per_node/2 GPUs against the rest (the
  // min): the cut between the halves of one node. Printed instead of `bisection` when the
  // fabric has one node (no cut between nodes exists).
  Bandwidth node_bisection;
};

TopoDescription describe(const ClusterGraph& g);
// Deterministic multi-line text (the CLI prints it).
std::string format_description(const TopoDescription& d);

}  // namespace trainsim
