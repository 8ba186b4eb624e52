// File: sim/collectives.cpp
// See sim/collectives.h for the formulas; each function below is one line of that table.
#include "sim/collectives.h"

#include <algorithm>
#include <vector>

namespace trainsim {
namespace {

// (num/den) * S / bw, rounded up once: transfer_time over the algorithm bandwidth bw*den/num.
Time scaled_transfer(Bytes s, int64_t num, int64_t den, Bandwidth bw) {
  if (num == 0 || s.count() == 0) return Time::zero();
  return transfer_time(s, bw * (static_cast<double>(den) / static_cast<double>(num)));
}

int ceil_log2(int n) {
  int r = 0;
  while ((1 << r) < n) ++r;
  return r;
}

struct RingSpan {
  Bandwidth bw;
  Time alpha;
};

RingSpan ring_span(const GroupShape& g, const LinkParams& l) {
  if (g.nodes <= 1) return {l.intra_bw, l.intra_alpha};
  Bandwidth nic = l.inter_bw * static_cast<double>(g.per_node);
  return {std::min(l.intra_bw, nic), l.inter_alpha};
}

Time ring(CollKind kind, Bytes s, const GroupShape& g, const LinkParams& l) {
  const int64_t p = g.size;
  RingSpan r = ring_span(g, l);
  switch (kind) {
    case CollKind::kAllReduce:
      return scaled_transfer(s, 2 * (p - 1), p, r.bw) + r.alpha * (2 * (p - 1));
    case CollKind::kAllGather:
    case CollKind::kReduceScatter:
      return scaled_transfer(s, p - 1, p, r.bw) + r.alpha * (p - 1);
    case CollKind::kBroadcast:
      return scaled_transfer(s, 1, 1, r.bw) + r.alpha * (p - 1);
    case CollKind::kAllToAll:
    case CollKind::kSendRecv:
      break;  // handled by collective_time()
  }
  SIM_CHECK(false, "ring(): unexpected collective kind %d", static_cast<int>(kind));
  return Time::zero();
}

Time tree_allreduce(Bytes s, const GroupShape& g, const LinkParams& l) {
  const int64_t p = g.size;
  const int64_t q = g.per_node;
  const Time alphas = l.inter_alpha * (2 * ceil_log2(g.nodes)) + l.intra_alpha * (2 * (q - 1));
  const Time nvlink = scaled_transfer(s, 2 * (p - 1), p, l.intra_bw);
  if (g.nodes <= 1) return nvlink + alphas;
  // Busiest NIC: dtree_max_degree(n) tree edges, each S/(2q) per direction (module header).
  return max(nvlink, scaled_transfer(s, dtree_max_degree(g.nodes), 2 * q, l.inter_bw)) + alphas;
}

Time hierarchical_allreduce(Bytes s, const GroupShape& g, const LinkParams& l) {
  const int64_t q = g.per_node;
  const int64_t n = g.nodes;
  Time intra_phase = scaled_transfer(s, q - 1, q, l.intra_bw) + l.intra_alpha * (q - 1);
  // Each GPU reduces its S/q shard across nodes over its own NIC: 2(n-1)/n * (S/q) / inter_bw.
  Time inter_phase = scaled_transfer(s, 2 * (n - 1), n * q, l.inter_bw) + l.inter_alpha * (2 * (n - 1));
  return intra_phase + inter_phase + intra_phase;
}

// Reduce-scatter in the node, the S/q shard up the switch tree and back down (one bus crossing
// each way, concurrently), all-gather in the node.
Time innet_allreduce(Bytes s, const GroupShape& g, const LinkParams& l) {
  const int64_t q = g.per_node;
  Time intra_phase = scaled_transfer(s, q - 1, q, l.intra_bw) + l.intra_alpha * (q - 1);
  Time inter_phase = scaled_transfer(s, 1, q, l.inter_bw) + l.inter_alpha * (2 * l.innet_tiers);
  return intra_phase + inter_phase + intra_phase;
}

bool innet_applies(const GroupShape& g, const LinkParams& l) { return l.innet_tiers > 0 && g.nodes > 1; }

Time direct_alltoall(Bytes s, const GroupShape& g, const LinkParams& l) {
  const int64_t p = g.size;
  const int64_t q = g.per_node;
  Time intra = scaled_transfer(s, q - 1, p, l.intra_bw);
  Time inter = g.nodes > 1 ? scaled_transfer(s, p - q, p, l.inter_bw) : Time::zero();
  Time alpha = g.nodes > 1 ? l.inter_alpha : l.intra_alpha;
  return max(intra, inter) + alpha * (p - 1);
}

void check_shape(const GroupShape& g, Bytes s) {
  SIM_CHECK(g.size >= 1 && g.per_node >= 1 && g.nodes >= 1 && g.per_node <= g.size &&
                g.nodes <= g.size &&
                static_cast<int64_t>(g.per_node) * g.nodes >= g.size,
            "bad GroupShape: size=%d per_node=%d nodes=%d", g.size, g.per_node, g.nodes);
  SIM_CHECK(s.count() >= 0, "negative collective size %lld", (long long)s.count());
}

}  // namespace

const char* to_string(CollAlgo a) {
  switch (a) {
    case CollAlgo::kAuto: return "auto";
    case CollAlgo::kRing: return "ring";
    case CollAlgo::kTree: return "tree";
    case CollAlgo::kHierarchical: return "hierarchical";
    case CollAlgo::kDirect: return "direct";
    case CollAlgo::kInNetwork: return "in-network";
  }
  return "?";
}

CollAlgo auto_algo(CollKind kind, Bytes size, GroupShape g, const LinkParams& l) {
  check_shape(g, size);
  if (kind == CollKind::kAllToAll) return CollAlgo::kDirect;
  if (kind != CollKind::kAllReduce || g.size == 1) return CollAlgo::kRing;
  // Ties keep the earlier (simpler) algorithm: ring, tree, hierarchical, in-network.
  CollAlgo best = CollAlgo::kRing;
  Time best_t = ring(kind, size, g, l);
  Time t = tree_allreduce(size, g, l);
  if (t < best_t) best = CollAlgo::kTree, best_t = t;
  t = hierarchical_allreduce(size, g, l);
  if (t < best_t) best = CollAlgo::kHierarchical, best_t = t;
  if (innet_applies(g, l)) {
    t = innet_allreduce(size, g, l);
    if (t < best_t) best = CollAlgo::kInNetwork, best_t = t;
  }
  return best;
}

Time collective_time(CollKind kind, Bytes size, GroupShape g, const LinkParams& l, CollAlgo algo) {
  check_shape(g, size);
  if (g.size == 1) return Time::zero();
  if (kind == CollKind::kAllToAll) return direct_alltoall(size, g, l);
  if (kind == CollKind::kSendRecv) return p2p_time(size, g.nodes == 1, l);
  if (algo == CollAlgo::kAuto) algo = auto_algo(kind, size, g, l);
  if (kind == CollKind::kAllReduce) {
    if (algo == CollAlgo::kTree) return tree_allreduce(size, g, l);
    if (algo == CollAlgo::kHierarchical) return hierarchical_allreduce(size, g, l);
    if (algo == CollAlgo::kInNetwork && innet_applies(g, l)) return innet_allreduce(size, g, l);
  }
  return ring(kind, size, g, l);
}

namespace {
// C(a - b, k) / C(a, k) = prod_{i<k} (a - b - i)/(a - i): the chance that k distinct picks out of
// a miss b given ones. 0 when fewer than k are left.
double miss_all(double a, double b, int k) {
  double r = 1;
  for (int i = 0; i < k; ++i) {
    const double num = a - b - i;
    if (num <= 0) return 0;
    r *= num / (a - i);
  }
  return r;
}
}  // namespace

int effective_node_limit(int fanout, int slots, int nodes, int node_limit) {
  int m = node_limit <= 0 || node_limit >= nodes ? nodes : node_limit;
  // M * slots/nodes >= fanout, in integers: M * slots >= fanout * nodes.
  while (m < nodes && int64_t{m} * slots < int64_t{fanout} * nodes) ++m;
  return m;
}

double expected_item_nodes(int fanout, int slots, int nodes, int node_limit) {
  SIM_CHECK(nodes >= 1 && fanout >= 1 && fanout <= slots && node_limit >= 0,
            "expected_item_nodes: fanout=%d slots=%d nodes=%d node_limit=%d", fanout, slots, nodes, node_limit);
  const int m = effective_node_limit(fanout, slots, nodes, node_limit);
  const double per = static_cast<double>(slots) / nodes;
  return m * (1.0 - miss_all(m * per, per, fanout));
}

double expected_remote_nodes(int fanout, int slots, int nodes, int node_limit) {
  return expected_item_nodes(fanout, slots, nodes, node_limit) * (nodes - 1) / nodes;
}

Time dedup_alltoall_time(Bytes s, GroupShape g, const LinkParams& l, const A2aDedup& d) {
  check_shape(g, s);
  SIM_CHECK(d.fanout >= 1, "dedup_alltoall_time: fanout %d", d.fanout);
  if (g.size == 1) return Time::zero();
  const int64_t q = g.per_node;
  const Time intra = scaled_transfer(s, q - 1, q, l.intra_bw);
  if (g.nodes <= 1) return intra + l.intra_alpha * (q - 1);
  const double share = expected_remote_nodes(d.fanout, d.slots, g.nodes, d.node_limit) / d.fanout;
  const Time inter = share > 0 && s.count() > 0 ? transfer_time(s, l.inter_bw * (1.0 / share)) : Time::zero();
  return max(intra, inter) + l.inter_alpha * (g.nodes - 1) + l.intra_alpha * (q - 1);
}

int btree_parent(int n, int r) {
  if (r <= 0 || r >= n) return -1;
  const int bit = r & -r;   // lowest set bit
  const int up = (r ^ bit) | (bit << 1);
  return up < n ? up : (r ^ bit);
}

void double_binary_tree(int n, std::vector<int>* parent0, std::vector<int>* parent1) {
  parent0->assign(static_cast<size_t>(std::max(n, 0)), -1);
  parent1->assign(static_cast<size_t>(std::max(n, 0)), -1);
  for (int r = 0; r < n; ++r) {
    (*parent0)[r] = btree_parent(n, r);
    if (n % 2 == 1) {   // shift by one
      const int u = btree_parent(n, (r - 1 + n) % n);
      (*parent1)[r] = u < 0 ? -1 : (u + 1) % n;
    } else {            // mirror
      const int u = btree_parent(n, n - 1 - r);
      (*parent1)[r] = u < 0 ? -1 : n - 1 - u;
    }
  }
}

int dtree_max_degree(int n) { return n <= 1 ? 0 : std::min(n, 4); }

Time p2p_time(Bytes size, bool same_node, const LinkParams& l) {
  SIM_CHECK(size.count() >= 0, "negative p2p size %lld", (long long)size.count());
  Bandwidth bw = same_node ? l.intra_bw : l.inter_bw;
  Time alpha = same_node ? l.intra_alpha : l.inter_alpha;
  return (size.count() == 0 ? Time::zero() : transfer_time(size, bw)) + alpha;
}

}  // namespace trainsim
