// File: topologies/link_modification.h
// A failed or degraded cable, as topology files and scenario what-ifs name it (applied by
// ClusterGraph::from_parts / build_cluster, see topologies/cluster.h). Plain data.
#pragma once
#include <string>

namespace trainsim {

// Either tier/switch_index/port (all >= 0) or endpoints a, b.
struct LinkModification {
  int tier = -1;          // 1 NIC-leaf, 2 leaf-spine, 3 spine-core
  int switch_index = -1;  // index of the upper switch among that tier's switches
  int port = -1;          // its down link number, in build order
  std::string a, b;       // or: endpoint names (every cable between them)
  double factor = 0;      // 0 = failed (removed); (0, 1] = degraded, bandwidth x factor
};

}  // namespace trainsim
