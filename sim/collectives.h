// File: sim/collectives.h
// Analytic alpha-beta costs of NCCL-style collectives on a group of GPUs: the "analytic"
// network fidelity of ARCHITECTURE.md. Knows nothing about GPUs or topologies: a caller
// describes a group by its shape (members, members per node, nodes) and the links by their
// achievable bandwidth and per-step latency, typically from calibration.
//
// Size conventions follow NCCL/nccl-tests:
//   all-reduce: the buffer; all-gather: the OUTPUT (p * per-rank shard);
//   reduce-scatter: the INPUT (p * per-rank shard); all-to-all: the whole per-rank send buffer;
//   broadcast: the buffer.
// Bus bandwidth B and latency alpha of a ring (the span the ring crosses):
//   nodes == 1: B = intra_bw,                          alpha = intra_alpha
//   nodes >  1: B = min(intra_bw, per_node * inter_bw), alpha = inter_alpha
//     (NCCL runs one ring per rail: each of the per_node members of a node drives its own NIC,
//      so the inter-node ring bus bandwidth is the node's aggregate NIC bandwidth.)
// Formulas (p = size; q = per_node; n = nodes):
//   ring all-reduce        2(p-1)/p * S/B + 2(p-1)*alpha
//   ring all-gather/RS     (p-1)/p * S/B + (p-1)*alpha
//   ring broadcast         S/B + (p-1)*alpha   (pipelined; nccl-tests busbw factor 1)
//   tree all-reduce        n == 1: 2(p-1)/p * S/intra_bw + 2(q-1)*intra_alpha
//                          n >  1: max(2(p-1)/p * S/intra_bw, D(n)/2 * (S/q)/inter_bw)
//                                  + 2*ceil(log2 n)*inter_alpha + 2(q-1)*intra_alpha
//     NCCL's double binary tree (src/graph/trees.cc, ncclGetBtree / ncclGetDtree): inside a
//     node a chain of the q members (NVLink, pipelined: the floor above); across the n nodes,
//     per channel (rail) c of the q, two binary trees over the nodes, each carrying half the
//     buffer: reduce up to the root and broadcast down, pipelined, so every tree edge carries
//     S/(2q) in each direction at once. Tree 0 (ncclGetBtree, root 0): the parent of node
//     r > 0 is (r ^ b) | (b << 1) where b is r's lowest set bit, or r ^ b when that is >= n;
//     odd r are leaves, so an interior node has up to 2 children + 1 parent (degree 3) and the
//     root 1 child. Tree 1 (ncclGetDtree): n even, the mirror (node r plays node n-1-r of tree
//     0); n odd, the shift (node r plays node r-1 mod n). Either way a node interior in one
//     tree is a leaf (degree 1) in the other (tree 0's root, degree 1, may be interior in
//     tree 1), so a node's NIC c carries deg0 + deg1 edges of
//     S/(2q) per direction; the busiest node carries D(n) = max(deg0 + deg1) = min(n, 4) of
//     them (n = 2: 2, n = 3: 3, n >= 4: 4, node 2 being interior in tree 0): 2(S/q) per NIC
//     from 4 nodes up, against the ring's 2(p-1)/p * S/q, but S/q at n = 2 and 1.5 S/q at n = 3
//     (the chain reduces inside the node first, so only the node's sum crosses the network).
//     double_binary_tree() builds the two trees; flow mode runs them as flows.
//   hierarchical all-reduce  intra RS (q-1)/q*S/intra_bw + (q-1)*intra_alpha
//                          + inter ring AR on S/q per GPU: 2(n-1)/n*(S/q)/inter_bw + 2(n-1)*inter_alpha
//                          + intra AG (q-1)/q*S/intra_bw + (q-1)*intra_alpha
//   in-network all-reduce  intra RS (q-1)/q*S/intra_bw + (q-1)*intra_alpha
//     (NVLS/SHARP)         + switch tree: S/q * 1/inter_bw + 2*innet_tiers*inter_alpha
//                          + intra AG (q-1)/q*S/intra_bw + (q-1)*intra_alpha
//     Each GPU sends its reduced S/q shard once up its rail's switch tree (InfiniBand SHARP
//     v2/v3 on Quantum-class switches, as NCCL's CollNet / NVLS+SHARP path uses it) and
//     receives the reduced shard once down, both directions at once: the inter-node bus
//     bandwidth factor is 1 instead of a ring's 2(n-1)/n (about twice the bus bandwidth), and
//     the latency is one switch hop up and one down per tier the tree climbs (innet_tiers: 1
//     within one leaf, 2 across leaves of a pod, 3 across pods) instead of 2(n-1) ring steps.
//     The intra-node phases use the all-reduce NVLink figures, which for Hopper are fitted to
//     nccl-tests curves measured WITH NVLS (calibrate/data/defaults.json), so NVLS inside the
//     node is already in intra_bw and is not counted again here.
//   direct all-to-all      max((q-1)/p*S/intra_bw, (p-q)/p*S/inter_bw) + (p-1)*alpha
//   send-recv (ring shift) p2p_time(S, nodes == 1): every member sends S to its successor at
//                          once; a node boundary is crossed by one member per node, on its own NIC
// A bandwidth term F*S/B is computed as transfer_time(S, B/F), i.e. over the algorithm
// bandwidth (nccl-tests "algbw"), so each term rounds up to a whole picosecond exactly once.
// Algorithm choice: kTree, kHierarchical and kInNetwork apply to all-reduce only; other kinds
// fall back to ring, and kDirect on any kind but all-to-all means ring. kInNetwork also needs
// l.innet_tiers > 0 and nodes > 1 (otherwise ring): SHARP accelerates all-reduce; reduce-scatter
// and all-gather stay ring here. All-to-all always uses the direct
// algorithm, whatever `algo` says (a ring all-to-all is not modelled).
// kAuto: all-reduce takes the fastest of ring, tree, hierarchical and (when l.innet_tiers > 0
// and nodes > 1) in-network, ties keeping the earlier one; all-to-all is direct;
// the rest ring. p == 1 costs zero.
// Groups whose nodes hold unequal member counts are approximated with per_node members on
// every node (the shape's maximum), which is what the busiest node sees.
// Deduplicated all-to-all (A2aDedup, sim/plan.h; DeepEP's internode dispatch/combine): S is the
// per-rank buffer of item copies (items x fanout k x item bytes, as the direct all-to-all's). An
// item crosses to each remote node holding one of its k slots once (to the member with the
// sender's local index there) and is forwarded over NVLink to the slot's member; combine
// mirrors it (partial sums reduced in the node before crossing back), same bytes. With
// D = expected_remote_nodes(k, E slots, n, M) distinct remote nodes per item:
//   NIC bytes per member    S * D / k
//   NVLink bytes per member S * (q-1)/q   (every copy whose slot is not on the GPU it lands on,
//                                          whether local or forwarded)
//   dedup all-to-all        max((q-1)/q * S/intra_bw, D/k * S/inter_bw)
//                           + (n-1)*inter_alpha + (q-1)*intra_alpha   (one message per remote
//                           node, then one per NVLink peer; nodes == 1: (q-1)*intra_alpha)
//   k = 1 gives D = (n-1)/n, the direct formula's NIC share (p-q)/p; n = 1 gives the direct time.
// Expected distinct nodes per item (k distinct slots of E, E/n per node, item on one node):
//   no limit (M = 0 or M >= n): E[nodes] = n(1 - C(E - E/n, k)/C(E, k)),
//                               E[remote] = (n-1)(1 - C(E - E/n, k)/C(E, k))
//   limit M < n: the M nodes are a uniform M-subset (symmetric router scores), the k slots a
//     uniform k-subset of their M*E/n slots: each chosen node is hit with
//     h = 1 - C((M-1)E/n, k)/C(M E/n, k), the item's own node is chosen with probability M/n:
//     E[nodes] = M h, E[remote] = M h (n-1)/n.   Exact under that model; M = n is the no-limit
//     case. A limit whose nodes cannot hold k slots (M*E/n < k) is raised to ceil(k n/E).
// Imbalanced routing scales S (busiest rank's copies), not D: D is the uniform expectation.
// Thread-safety: pure functions.
#pragma once
#include <cstdint>
#include <vector>

#include "sim/plan.h"
#include "sim/units.h"

namespace trainsim {

// Members of a group, the most members on any one node, and the number of distinct nodes.
// Invariant: 1 <= per_node <= size, 1 <= nodes <= size, per_node * nodes >= size.
struct GroupShape {
  int size = 1;
  int per_node = 1;
  int nodes = 1;
  friend bool operator==(const GroupShape&, const GroupShape&) = default;
};

struct LinkParams {
  Bandwidth intra_bw;   // achievable per-GPU NVLink bus bandwidth, per direction
  Time intra_alpha;     // latency of one algorithm step inside a node
  Bandwidth inter_bw;   // achievable NIC bandwidth per GPU, per direction
  Time inter_alpha;     // latency of one algorithm step across nodes
  // Switch tiers an in-network (SHARP) all-reduce tree of this group climbs; 0 = the fabric
  // has no in-network reduction (the default), so kInNetwork is never picked.
  int innet_tiers = 0;
};

enum class CollAlgo : uint8_t { kAuto, kRing, kTree, kHierarchical, kDirect, kInNetwork };
const char* to_string(CollAlgo);

// REQUIRES: a valid shape; size >= 0; bandwidths > 0 where the group uses them.
Time collective_time(CollKind kind, Bytes size, GroupShape g, const LinkParams& l,
                     CollAlgo algo = CollAlgo::kAuto);
// The algorithm kAuto picks for this collective (never kAuto).
CollAlgo auto_algo(CollKind kind, Bytes size, GroupShape g, const LinkParams& l);
// NCCL's double binary tree over n nodes (tree 0 = ncclGetBtree, tree 1 = its mirror for even
// n, its shift by one for odd n): parentT[r] = node r's parent in tree T, -1 at the root.
void double_binary_tree(int n, std::vector<int>* parent0, std::vector<int>* parent1);
// Most tree edges (both trees) meeting at one node of double_binary_tree(n): min(n, 4), 0 for
// n <= 1. The tree all-reduce's busiest NIC carries this many S/(2q) flows per direction.
int dtree_max_degree(int n);
// Expected distinct nodes (remote = other than the item's own) an item's k = fanout slots
// touch, formulas above. REQUIRES: nodes >= 1, 1 <= fanout <= slots, node_limit >= 0.
double expected_item_nodes(int fanout, int slots, int nodes, int node_limit);
double expected_remote_nodes(int fanout, int slots, int nodes, int node_limit);
// The node limit in effect: 0 or >= nodes -> nodes; raised so that its nodes hold fanout slots.
int effective_node_limit(int fanout, int slots, int nodes, int node_limit);
// The deduplicated all-to-all above. REQUIRES: d.fanout >= 1.
Time dedup_alltoall_time(Bytes size, GroupShape g, const LinkParams& l, const A2aDedup& d);
// One message: transfer_time(size, bw) + alpha of the span (intra if same_node).
Time p2p_time(Bytes size, bool same_node, const LinkParams& l);

}  // namespace trainsim
