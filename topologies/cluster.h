// File: topologies/cluster.h
// A cluster as a graph (Boost.Graph): GPUs on an NVSwitch per node (scale-up domain), NICs, and
// a scale-out fabric of 1-3 switch tiers (leaf, spine, core), built by the parameterised
// builders here or loaded from a topology file (topologies/topology_file.h). The graph answers
// structural queries (counts, hops, bottleneck) and routes flows (shortest paths, ECMP by flow
// hash, rail-aware PXN routing) for the flow-level network model.
//
// Vertex layout of the builders (descriptors are dense indices, in this order):
//   [0, G) GPU g (gpu_vertex(g) == g); one NVSwitch per node; the NICs node-major; the leaf
//   switches; the spine switches; the core switches. Loaded files keep GPUs first too.
// Links: each undirected cable is two directed links, ids 2c (a -> b as built) and 2c+1
// (b -> a), each with its own capacity. EdgeProps::bw is the capacity per direction.
//   GPU - NVSwitch: NVLink bandwidth per GPU.     GPU - NIC: the NIC's bandwidth (PCIe free).
//   tier 1 NIC - leaf, tier 2 leaf - spine, tier 3 spine - core: link_bandwidth[t-1]
//   (default: the NIC's bandwidth).
// Fat-tree builder (FabricOptions), with k = leaf_radix down ports per leaf, P NICs per node:
//   Pods: tiers == 3 splits the nodes into pods of pod_size GPUs (default k*k/P nodes, so that a
//   spine's down ports equal k); tiers == 2 is one pod.
//   Leaves: rail-optimized: NIC j of every node of a pod on the leaves of rail j of that pod
//   (ceil(pod_nodes / k) leaves per rail and pod); rail-agnostic: the pod's NICs fill leaves
//   node-major (all NICs of a node on one leaf when P divides k).
//   Uplinks: a tier-t switch with D down links of bandwidth b_down has
//   ceil(D * b_down / (oversubscription[t-1] * b_up)) up links of bandwidth b_up, so uplink
//   capacity = downlink capacity / ratio (rounded up to whole ports).
//   Spines: each leaf has one link to each of its pod's U1 spines (U1 = leaf up links; spine j of
//   every pod forms plane j). A fabric with a single leaf has no spines.
//   Cores (tiers == 3): plane j has C = ceil(pods * U2 / core_radix) cores; up link m of spine j
//   goes to core (j, m mod C), so a core may have parallel links to one spine.
//   FIXME: in 2 tiers, spines have unbounded radix (leaves per spine is not checked).
// NICs: nics_per_node (0 = one per GPU) must divide gpus_per_node; a NIC carries the traffic of
// gpus_per_node / nics_per_node GPUs with that many times the per-GPU bandwidth. Rail of a GPU =
// the index of its NIC in the node.
// Link modifications are applied at build: a failed link is removed (routes avoid it), a
// degraded one keeps its place with bw * factor. Addressed by (tier, switch, port): port p of
// switch s of tier t is its p-th down link in build order (tier 1 = leaves: NIC links; tier 2 =
// spines: leaf links; tier 3 = cores: spine links), or by the names of both endpoints.
// Names: builders name vertices "gpu12", "node1/nvswitch", "node1/nic4", "leaf3", "spine0",
// "core7"; loaded files keep the file's names.
// Invariants: every GPU can reach every other GPU (build fails otherwise); GPUs never forward
// traffic on routed paths (except the explicit PXN hop through a peer GPU of the same node).
// Cost: build is O(V + E); 24,576 GPUs build in well under a second. hops()/bottleneck()/paths
// on loaded files run a BFS (O(V + E)); on builder graphs paths/route search only upward from
// both ends (up*/down* routing), O(switches above the two GPUs).
// Thread-safety: immutable after build; const queries may run concurrently.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/graph/adjacency_list.hpp>

#include "sim/status.h"
#include "sim/units.h"
#include "topologies/hardware.h"
#include "topologies/link_modification.h"

namespace trainsim {

enum class VertexKind : uint8_t { kGpu, kNvSwitch, kNic, kLeaf, kSpine, kCore };
const char* to_string(VertexKind);

struct VertexProps {
  VertexKind kind = VertexKind::kGpu;
  int32_t index = 0;   // index among vertices of the same kind
  int32_t node = -1;   // node of a GPU, NVSwitch or NIC; -1 for fabric switches
  int32_t rail = -1;   // NIC index in its node, for a NIC and the GPUs it serves; else -1
  int8_t level = 0;    // GPU 0, NVSwitch/NIC 1, leaf 2, spine 3, core 4 (switch tier + 1)
};

struct EdgeProps {
  Bandwidth bw;        // per direction
  uint32_t cable = 0;  // directed link ids 2*cable, 2*cable+1
};

struct FabricOptions {
  int nics_per_node = 0;          // 0 = gpus_per_node (one NIC per GPU)
  int leaf_radix = 64;            // down ports per leaf switch
  bool rail_optimized = true;     // NIC j of every node on rail j's leaves
  int tiers = 2;                  // switch tiers: 2 (leaf-spine) or 3 (leaf-spine-core)
  std::vector<double> oversubscription;   // per tier, from the leaf up; missing = 1 (>= 1)
  int pod_size = 0;               // GPUs per pod (tiers == 3); 0 = leaf_radix^2 / P nodes
  int core_radix = 0;             // down ports per core switch; 0 = 2 * leaf_radix
  std::vector<Bandwidth> link_bandwidth;  // per tier (1..3); missing or 0 = the NIC bandwidth
  std::vector<LinkModification> modifications;
};

struct TopoSummary {
  int gpus = 0, nodes = 0, nics = 0, leaf_switches = 0, spine_switches = 0;
  int links = 0;   // cables (undirected)
  int core_switches = 0;
  friend bool operator==(const TopoSummary&, const TopoSummary&) = default;
};

using LinkId = uint32_t;   // directed link
struct Link {
  uint32_t from = 0, to = 0;   // vertices
  Bandwidth bw;                // capacity in this direction
};
using Path = std::vector<LinkId>;   // directed links from source to destination, in order

struct RouteOptions {
  // PXN (NCCL): traffic to a GPU on another node whose rail differs first crosses NVLink to the
  // GPU of the source node on the destination's rail, then leaves through that GPU's NIC.
  bool rail_aware = false;
  size_t max_paths = 64;   // bound on paths() enumeration
};

// The raw material of a ClusterGraph: what builders and the file loader produce.
struct TopologyParts {
  struct Cable { uint32_t a = 0, b = 0; Bandwidth bw; };
  std::string name;
  std::vector<VertexProps> vertices;   // GPUs first, gpu g at index g
  std::vector<std::string> names;      // empty: canonical builder names
  std::vector<std::string> where;      // optional: JSON path defining each vertex (errors)
  std::vector<Cable> cables;
  int gpus = 0, gpus_per_node = 1, nics_per_node = 0;
  bool layered = false;   // every cable joins adjacent levels: up*/down* routing is shortest
};

class ClusterGraph {
 public:
  using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS, VertexProps,
                                      EdgeProps>;
  using Vertex = Graph::vertex_descriptor;

  // Applies `mods`, checks that every GPU reaches every other GPU, builds the graph. Errors
  // carry `file` as their file.
  static Result<ClusterGraph> from_parts(TopologyParts parts,
                                         const std::vector<LinkModification>& mods,
                                         const std::string& file = "");

  const Graph& graph() const { return g_; }
  const std::string& name() const { return name_; }
  int num_gpus() const { return gpus_; }
  int gpus_per_node() const { return gpus_per_node_; }
  int nics_per_node() const { return nics_per_node_; }
  int num_nodes() const { return gpus_ / gpus_per_node_; }
  // REQUIRES: 0 <= gpu < num_gpus().
  Vertex gpu_vertex(int gpu) const;
  Vertex nvswitch_vertex(int node) const;   // REQUIRES: a builder graph
  Vertex nic_vertex(int node, int nic) const;   // REQUIRES: a builder graph
  std::string vertex_name(Vertex v) const;
  std::optional<Vertex> find_vertex(const std::string& name) const;   // O(V)
  // The same arithmetic as Placement::node_of: gpu / gpus_per_node.
  int node_of(int gpu) const { return gpu / gpus_per_node_; }
  int rail_of(int gpu) const { return g_[gpu_vertex(gpu)].rail; }
  // Links on a shortest path between two GPUs (0 for a == b). Only switches and NICs forward:
  // other GPUs are never transit vertices. -1 if unreachable.
  int hops(int gpu_a, int gpu_b) const;
  // The widest of the shortest paths between two GPUs: max over shortest paths of the minimum
  // per-direction link bandwidth. REQUIRES: a != b and reachable.
  Bandwidth bottleneck(int gpu_a, int gpu_b) const;
  TopoSummary summary() const { return summary_; }

  size_t num_links() const { return links_.size(); }   // directed: 2 x cables
  const Link& link(LinkId id) const { return links_[id]; }
  const std::vector<Link>& links() const { return links_; }

  // Shortest paths from gpu a to gpu b (at most opt.max_paths, in a deterministic order).
  // Equal-cost paths differ in the switches or in parallel cables. Empty when a == b.
  // On builder graphs: the shortest up*/down* paths (as a Clos routes), falling back to any
  // shortest path when failures leave none.
  std::vector<Path> paths(int gpu_a, int gpu_b, const RouteOptions& opt = {}) const;
  // One of the shortest paths, chosen hop by hop from the flow hash as switches do (ECMP):
  // deterministic; distinct hashes spread evenly over the equal-cost next hops.
  // Empty when a == b. REQUIRES: reachable (always true after a successful build).
  Path route(int gpu_a, int gpu_b, uint64_t flow_hash, const RouteOptions& opt = {}) const;

 private:
  // BFS over the graph with GPUs other than a and b removed; returns distance and width at b.
  void shortest(int gpu_a, int gpu_b, int* hops, double* width) const;
  // Distance-to-b labels of the shortest-path DAG from a (see cluster_routing.cpp).
  struct Dag;
  Dag dag(uint32_t a, uint32_t b) const;
  void enumerate(const Dag& d, uint32_t a, size_t max, std::vector<Path>* out) const;
  Path walk(const Dag& d, uint32_t a, uint64_t hash) const;
  int pxn_relay(int gpu_a, int gpu_b) const;   // -1: none

  Graph g_;
  std::string name_;
  std::vector<std::string> names_;   // empty for builder graphs
  std::vector<Link> links_;
  int gpus_ = 0;
  int gpus_per_node_ = 1;
  int nics_per_node_ = 0;
  bool layered_ = false;
  TopoSummary summary_;
};

// Checks the spec and options (every problem at once, with the path of the field).
Status validate_cluster(const ClusterSpec& spec, const FabricOptions& opt);
// Builds a fat-tree cluster (see the file comment). nvlink/NIC bandwidths of 0 in `spec`
// default to spec.gpu's figures. Errors: invalid spec/options, a modification matching no
// link, a modification that disconnects a GPU.
Result<ClusterGraph> build_cluster(const ClusterSpec& spec, const FabricOptions& opt = {});

}  // namespace trainsim
