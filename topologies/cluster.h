// File: topologies/cluster.h
// A cluster as a graph (Boost.Graph): GPUs on an NVSwitch per node, one NIC per GPU (or per
// group of GPUs), and a two-tier fat-tree of leaf and spine switches. This is the structure the
// flow-level network model will route over (a later issue); today it answers structural
// queries (counts, hop distances, bottleneck bandwidth) and is the reference the fast
// per-rank arithmetic (node = gpu / gpus_per_node, see topologies/placement.h) agrees with.
//
// Vertex layout (vertex descriptors are dense indices, in this order):
//   [0, G)                      GPU g          (so gpu_vertex(g) == g)
//   then one NVSwitch per node   (node n)
//   then the NICs, node-major   (NIC j of node n)
//   then the leaf switches, then the spine switches.
// Edges are undirected full-duplex links; EdgeProps::bw is the bandwidth per direction.
//   GPU - NVSwitch: nvlink bandwidth per GPU.
//   GPU - NIC:      the NIC's bandwidth (PCIe is not modelled as a bottleneck).
//   NIC - leaf:     the NIC's bandwidth.
//   leaf - spine:   one link per (leaf, spine) pair at the NIC port speed.
// Fabric: leaves have `leaf_radix` down ports. Rail-optimized: NIC j of every node goes to the
// leaves of rail j (rail j has ceil(nodes / leaf_radix) leaves); otherwise NICs fill leaves in
// node-major order. Each leaf has ceil(leaf_radix / oversubscription) up ports, one to each
// spine, so there are that many spines; a fabric with a single leaf has no spines.
// FIXME: spines have unbounded radix (a real >2-tier Clos is a later issue).
// NICs: nics_per_node (0 = one per GPU) must divide gpus_per_node; GPUs share NICs evenly and
// each NIC gets gpus_per_node / nics_per_node times the per-GPU NIC bandwidth, so the node's
// aggregate scale-out bandwidth is independent of the NIC count.
// Cost: build is O(GPUs + leaves * spines); 16,384 GPUs build in well under a second. Path
// queries run one BFS (O(V + E)); they are for tests and setup, not the replay hot loop.
// Thread-safety: immutable after build; const queries may run concurrently.
#pragma once
#include <cstdint>
#include <vector>

#include <boost/graph/adjacency_list.hpp>

#include "sim/status.h"
#include "sim/units.h"
#include "topologies/hardware.h"

namespace trainsim {

enum class VertexKind : uint8_t { kGpu, kNvSwitch, kNic, kLeaf, kSpine };
const char* to_string(VertexKind);

struct VertexProps {
  VertexKind kind = VertexKind::kGpu;
  int32_t index = 0;   // index among vertices of the same kind
  int32_t node = -1;   // node of a GPU, NVSwitch or NIC; -1 for fabric switches
};

struct EdgeProps {
  Bandwidth bw;        // per direction
};

struct FabricOptions {
  int nics_per_node = 0;         // 0 = gpus_per_node (one NIC per GPU)
  int leaf_radix = 64;           // down ports per leaf switch
  bool rail_optimized = true;    // NIC j of every node on rail j's leaves
  double oversubscription = 1.0; // leaf down/up port ratio, >= 1
};

struct TopoSummary {
  int gpus = 0, nodes = 0, nics = 0, leaf_switches = 0, spine_switches = 0;
  int links = 0;
  friend bool operator==(const TopoSummary&, const TopoSummary&) = default;
};

class ClusterGraph {
 public:
  using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS, VertexProps,
                                      EdgeProps>;
  using Vertex = Graph::vertex_descriptor;

  const Graph& graph() const { return g_; }
  int num_gpus() const { return gpus_; }
  int gpus_per_node() const { return gpus_per_node_; }
  int num_nodes() const { return gpus_ / gpus_per_node_; }
  // REQUIRES: 0 <= gpu < num_gpus().
  Vertex gpu_vertex(int gpu) const;
  Vertex nvswitch_vertex(int node) const;
  Vertex nic_vertex(int node, int nic) const;
  // The same arithmetic as Placement::node_of: gpu / gpus_per_node.
  int node_of(int gpu) const { return gpu / gpus_per_node_; }
  // Links on a shortest path between two GPUs (0 for a == b). Only switches and NICs forward:
  // other GPUs are never transit vertices. -1 if unreachable.
  int hops(int gpu_a, int gpu_b) const;
  // The widest of the shortest paths between two GPUs: max over shortest paths of the minimum
  // per-direction link bandwidth. REQUIRES: a != b and reachable.
  Bandwidth bottleneck(int gpu_a, int gpu_b) const;
  TopoSummary summary() const { return summary_; }

 private:
  friend Result<ClusterGraph> build_cluster(const ClusterSpec&, const FabricOptions&);
  // BFS over the graph with GPUs other than a and b removed; returns distance and width at b.
  void shortest(int gpu_a, int gpu_b, int* hops, double* width) const;

  Graph g_;
  int gpus_ = 0;
  int gpus_per_node_ = 1;
  int nics_per_node_ = 1;
  TopoSummary summary_;
};

// Checks the spec and options (every problem at once, with the path of the field).
Status validate_cluster(const ClusterSpec& spec, const FabricOptions& opt);
// Builds the graph. nvlink/NIC bandwidths of 0 in `spec` default to spec.gpu's figures.
Result<ClusterGraph> build_cluster(const ClusterSpec& spec, const FabricOptions& opt = {});

}  // namespace trainsim
