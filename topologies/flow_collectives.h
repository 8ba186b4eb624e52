// File: topologies/flow_collectives.h
// The flow-level network model on a ClusterGraph (sim/network_model.h): how NCCL runs a
// collective, as flows over the fabric's links.
//
// Ranks sit on GPUs through a node map: rank r runs on GPU node_map[r / gpn] * gpn + r % gpn
// (gpn = GPUs per node), so a placement moves whole nodes and never splits what shares a node.
// A collective instance is expanded when its last member arrives. Its members are grouped by
// node (nodes in the order of their first member, members ascending); p members, n nodes, q =
// the most members on one node. Intra-node work stays analytic: NVSwitch is non-blocking, so it
// only sets a floor (the NVLink-bound time) and tail terms. Across nodes (n > 1):
//   tree all-reduce (NCCL's double binary tree, sim/collectives.h double_binary_tree): the
//     chain inside each node stays analytic (floor = 2(p-1)/p * S / intra_bw); across the n
//     nodes, numbered in the order above, per channel c (rail) two binary trees (tree 0 =
//     ncclGetBtree, tree 1 = its mirror for even n, its shift for odd n, as ncclGetDtree
//     builds them), each carrying half of the buffer: for every edge (node i, its parent j) of
//     either tree, member c of i sends S/(2q) to member c of j (reduce up) and member c of j
//     sends S/(2q) back (broadcast down), all started together (the pipelined up and down
//     streams run concurrently); routes use channel c for tree 0 and c + q for tree 1 (NCCL's
//     channel and channel + nChannels). 4q(n-1) flows; tail = 2 ceil(log2 n) inter_alpha +
//     2(q-1) intra_alpha. Idle fabric: the busiest node's NIC carries min(n, 4) of those flows
//     each way, the analytic tree term. Approximation: each edge is one flow for the whole
//     operation (a slowed edge finishes late without slowing the rest of the pipeline).
//   ring all-reduce / all-gather / reduce-scatter / broadcast: q channels, one per rail as
//     NCCL builds rings: channel c
//     joins member c of every node (c mod its count) to member c of the next node; each
//     neighbour pair carries one flow of F * S / q bytes for the whole phase (F = 2(p-1)/p
//     all-reduce, (p-1)/p all-gather / reduce-scatter, 1 broadcast);
//     floor = F * S / intra_bw; tail = the algorithm's alpha terms (sim/collectives.h).
//   hierarchical all-reduce: intra reduce-scatter and all-gather analytic (tail), the inter-node
//     ring per rail carries 2(n-1)/n * S/q per member.
//   in-network all-reduce (FlowCosts::in_network_reduction, SHARP): intra reduce-scatter and
//     all-gather analytic (tail). Per channel c (rail), a reduction tree rooted at a switch:
//     r0 = member c of the first node; every other member's route to r0 climbs to the lowest
//     switch it shares with r0; r0's own chain climbs to the highest of those (the tree's root,
//     whose level gives the tiers: leaf 1, spine 2, core 3). A member whose ECMP route tops out
//     on a switch off r0's chain takes the first equal-cost path (ClusterGraph::paths) that
//     meets the chain, so the tree has one root; if none does, its route is kept (a second
//     top, more uplink traffic than SHARP would send). Every directed link of the tree carries
//     one flow of S/q bytes up (switch-terminated: GPU->NIC, NIC->leaf, leaf->spine, ...), and
//     its reverse one flow of S/q down, all started together: the aggregated stream a switch
//     sends to its parent and the result it multicasts to its children. tail = the intra phases
//     + 2 x tiers x inter_alpha. Approximations: each tree link is its own flow (a pipelined
//     SHARP stream moves at the rate of its slowest link; here a slowed link finishes late and
//     the collective ends with it, the others do not slow down with it), and up and down run at
//     once rather than the down stream trailing the up stream by the tree's latency (which is
//     the alpha term). Idle fabric, 1:1: every link carries one S/q flow, so the time is
//     S/q / inter_bw + tail = collective_time() with innet_tiers = the tree's tiers.
//   all-to-all (direct): for every ordered pair of nodes and every channel c, member c of one
//     sends q * S / p bytes to member c of the other; floor = (q-1)/p * S / intra_bw;
//     tail = (p-1) * inter_alpha.
//   deduplicated all-to-all (A2aDedup, MoE dispatch "dedup"): for every ordered pair of nodes and
//     every channel c, member c of one sends S * D/k / (n-1) bytes to member c of the other (D =
//     expected_remote_nodes); floor = (q-1)/q * S / intra_bw (the NVLink forwarding); tail =
//     (n-1) * inter_alpha + (q-1) * intra_alpha: dedup_alltoall_time() on an idle fabric.
//   p2p across nodes: one flow of the message; tail = inter_alpha. Same node: analytic.
//   send-recv (a ring shift, e.g. ring attention's KV): one flow of S per node boundary of the
//     ring (from a node's last member to the next node's first), floor = S over the p2p
//     NVLink rate for the hops inside nodes, tail = the p2p inter_alpha.
// The algorithm is the one sim/collectives.h's auto_algo picks for the group's shape (an
// all-reduce's can be forced by FlowCosts::allreduce_algo), so on an
// idle fabric whose NIC links run at inter_bw the completion time equals collective_time()
// (up to the byte/picosecond round-ups).
// Link capacities handed to the FlowNetwork are the graph's line rates x `efficiency` (the
// achievable fraction, protocol overheads): the same factor the analytic model puts on the NIC.
// Routes: ClusterGraph::route with rail-aware (PXN) routing and an ECMP hash of (source GPU,
// destination GPU, channel), cached: the flows of one channel always take one path, as one
// NCCL connection does. Hash collisions on equal-cost uplinks are modelled, not avoided.
// Thread-safety: none (route cache); one replay at a time.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "sim/collectives.h"
#include "sim/network_model.h"
#include "sim/status.h"
#include "topologies/cluster.h"

namespace trainsim {

enum class NodePlacement : uint8_t { kContiguous, kScattered };
const char* to_string(NodePlacement);

// Job node j -> fabric node. Contiguous: j. Scattered: the first job_nodes entries of a
// permutation of all fabric nodes drawn from `seed` (stream "cluster/placement"), so a job
// smaller than the fabric lands across pods. Error if the fabric has fewer nodes than the job.
Result<std::vector<int32_t>> place_nodes(int job_nodes, int fabric_nodes, NodePlacement how,
                                         uint64_t seed);

struct FlowCosts {
  std::array<LinkParams, 6> coll;   // per CollKind (the analytic model's figures)
  LinkParams p2p;
  double efficiency = 1;            // link capacity = line rate x efficiency, in (0, 1]
  bool in_network_reduction = false;   // all-reduce across nodes may use SHARP (a switch tree)
  // All-reduce algorithm across nodes: kAuto (the default) takes auto_algo's pick; another
  // value forces it (tests, what-ifs); kInNetwork still needs in_network_reduction.
  CollAlgo allreduce_algo = CollAlgo::kAuto;
};
static_assert(static_cast<size_t>(CollKind::kSendRecv) + 1 == 6, "FabricCosts::coll needs one entry per CollKind");

class FabricNetworkModel : public NetworkModel {
 public:
  // REQUIRES: graph built; node_map entries are distinct fabric nodes; gpus_per_node ==
  // graph->gpus_per_node() (the caller checks and reports a mismatch).
  FabricNetworkModel(std::shared_ptr<const ClusterGraph> graph, std::vector<int32_t> node_map,
                     FlowCosts costs);

  std::vector<Bandwidth> link_capacities() const override;
  void collective(const Plan& plan, uint32_t group, uint32_t inst, uint32_t op,
                  NetworkTraffic* out) override;
  void p2p(const Plan& plan, uint32_t src, uint32_t dst, uint32_t op, NetworkTraffic* out) override;

  int gpu_of_rank(uint32_t rank) const;
  // Tiers of the in-network reduction tree of instance `inst` of `group` (0 when in-network
  // reduction is off or the instance sits on one node); builds and caches the tree.
  int innet_tiers(const Plan& plan, uint32_t group, uint32_t inst);
  const ClusterGraph& graph() const { return *graph_; }
  // "node3/nic1 -> leaf0" for reports.
  std::string link_name(uint32_t link) const;

 private:
  const Path& path(int gpu_a, int gpu_b, uint32_t channel);
  void add_flow(int gpu_a, int gpu_b, uint32_t channel, double bytes, NetworkTraffic* out);
  // Groups the members of an instance by node into nodes_ (n = used_); returns q.
  int group_members(const Plan& plan, uint32_t group, uint32_t inst);
  struct InnetTree {
    int tiers = 0;
    std::vector<LinkId> up;   // the up links of every channel's tree (each once per channel)
  };
  const InnetTree& innet_tree(const Plan& plan, uint32_t group, uint32_t inst);

  std::shared_ptr<const ClusterGraph> graph_;
  std::vector<int32_t> node_map_;
  FlowCosts costs_;
  int gpn_ = 1;
  std::unordered_map<uint64_t, Path> routes_;   // lookup only, never iterated
  std::unordered_map<uint64_t, InnetTree> trees_;   // (group, inst) -> tree; lookup only
  // scratch: nodes of the instance being expanded
  std::vector<uint32_t> stamp_;                 // per fabric node: epoch it was seen in
  std::vector<uint32_t> slot_;                  // per fabric node: index in nodes_
  uint32_t epoch_ = 0;
  std::vector<std::vector<int>> nodes_;         // GPUs per node of the instance
  std::array<std::vector<int>, 2> dtree_;       // double binary tree parents (scratch)
  size_t used_ = 0;
};

}  // namespace trainsim
