// File: topologies/flow_collectives.cpp
// See topologies/flow_collectives.h for the expansion of each collective into flows.
#include "topologies/flow_collectives.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace trainsim {
namespace {

// (num/den) * S / bw rounded up once, as sim/collectives.cpp does.
Time scaled(Bytes s, int64_t num, int64_t den, Bandwidth bw) {
  if (num == 0 || s.count() == 0) return Time::zero();
  return transfer_time(s, bw * (static_cast<double>(den) / static_cast<double>(num)));
}

int ceil_log2(int n) {
  int r = 0;
  while ((1 << r) < n) ++r;
  return r;
}

uint64_t mix64(uint64_t x) {   // splitmix64 finalizer
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t name_hash(const char* s) {   // FNV-1a: a stable stream name -> seed offset
  uint64_t h = 1469598103934665603ull;
  for (; *s; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 1099511628211ull;
  return h;
}

}  // namespace

const char* to_string(NodePlacement p) {
  return p == NodePlacement::kContiguous ? "contiguous" : "scattered";
}

Result<std::vector<int32_t>> place_nodes(int job_nodes, int fabric_nodes, NodePlacement how,
                                         uint64_t seed) {
  if (job_nodes > fabric_nodes)
    return Status::error("the job needs " + std::to_string(job_nodes) + " nodes but the topology has " +
                         std::to_string(fabric_nodes));
  std::vector<int32_t> all(fabric_nodes);
  for (int i = 0; i < fabric_nodes; ++i) all[i] = i;
  if (how == NodePlacement::kScattered) {
    // Fisher-Yates on mt19937_64 with a multiply-shift bound (no std::*_distribution: STYLE.md 3).
    std::mt19937_64 rng(mix64(seed ^ name_hash("cluster/placement")));
    for (int i = fabric_nodes - 1; i > 0; --i) {
      const uint64_t j = static_cast<uint64_t>(
          (static_cast<unsigned __int128>(rng()) * static_cast<uint64_t>(i + 1)) >> 64);
      std::swap(all[i], all[j]);
    }
  }
  all.resize(job_nodes);
  return all;
}

FabricNetworkModel::FabricNetworkModel(std::shared_ptr<const ClusterGraph> graph,
                                       std::vector<int32_t> node_map, FlowCosts costs)
    : graph_(std::move(graph)), node_map_(std::move(node_map)), costs_(costs) {
  gpn_ = graph_->gpus_per_node();
  stamp_.assign(graph_->num_nodes(), 0);
  slot_.assign(graph_->num_nodes(), 0);
}

std::vector<Bandwidth> FabricNetworkModel::link_capacities() const {
  std::vector<Bandwidth> caps;
  caps.reserve(graph_->num_links());
  for (const Link& l : graph_->links()) caps.push_back(l.bw * costs_.efficiency);
  return caps;
}

int FabricNetworkModel::gpu_of_rank(uint32_t rank) const {
  const uint32_t g = static_cast<uint32_t>(gpn_);
  return node_map_[rank / g] * gpn_ + static_cast<int>(rank % g);
}

std::string FabricNetworkModel::link_name(uint32_t link) const {
  const Link& l = graph_->link(link);
  return graph_->vertex_name(l.from) + " -> " + graph_->vertex_name(l.to);
}

const Path& FabricNetworkModel::path(int a, int b, uint32_t channel) {
  const uint64_t key = static_cast<uint64_t>(a) | (static_cast<uint64_t>(b) << 24) |
                       (static_cast<uint64_t>(channel & 0xffff) << 48);
  auto it = routes_.find(key);
  if (it != routes_.end()) return it->second;
  RouteOptions ro;
  ro.rail_aware = true;
  return routes_.emplace(key, graph_->route(a, b, mix64(key), ro)).first->second;
}

void FabricNetworkModel::add_flow(int a, int b, uint32_t channel, double bytes, NetworkTraffic* out) {
  const int64_t sz = static_cast<int64_t>(std::ceil(bytes));
  if (sz <= 0 || a == b) return;
  FlowSpec f;
  f.path = path(a, b, channel);
  f.size = Bytes(sz);
  out->flows.push_back(std::move(f));
}

int FabricNetworkModel::group_members(const Plan& plan, uint32_t group, uint32_t inst) {
  const GroupTable& gt = plan.groups[group];
  // Group the members by fabric node, nodes in order of their first member.
  if (++epoch_ == 0) {
    std::fill(stamp_.begin(), stamp_.end(), 0);
    epoch_ = 1;
  }
  used_ = 0;
  int q = 0;
  for (uint32_t k = gt.member_offsets[inst]; k < gt.member_offsets[inst + 1]; ++k) {
    const int gpu = gpu_of_rank(gt.members[k]);
    const int node = gpu / gpn_;
    if (stamp_[node] != epoch_) {
      stamp_[node] = epoch_;
      slot_[node] = static_cast<uint32_t>(used_);
      if (nodes_.size() <= used_) nodes_.emplace_back();
      nodes_[used_].clear();
      ++used_;
    }
    auto& v = nodes_[slot_[node]];
    v.push_back(gpu);
    q = std::max(q, static_cast<int>(v.size()));
  }
  return q;
}

const FabricNetworkModel::InnetTree& FabricNetworkModel::innet_tree(const Plan& plan, uint32_t group,
                                                                    uint32_t inst) {
  const uint64_t key = (static_cast<uint64_t>(group) << 32) | inst;
  auto it = trees_.find(key);
  if (it != trees_.end()) return it->second;
  InnetTree t;
  const int q = group_members(plan, group, inst);
  const int n = static_cast<int>(used_);
  const auto& G = graph_->graph();
  auto level = [&](uint32_t v) { return static_cast<int>(G[v].level); };
  auto head = [&](LinkId l) { return graph_->link(l).to; };
  // Index of the link that reaches the path's highest vertex (the first one at that level).
  auto top_of = [&](const Path& p) {
    size_t best = 0;
    int lv = -1;
    for (size_t k = 0; k < p.size(); ++k)
      if (level(head(p[k])) > lv) lv = level(head(p[k])), best = k;
    return best;
  };
  auto member = [&](int node, int c) { const auto& v = nodes_[node]; return v[c % v.size()]; };
  std::vector<Path> ps(n);
  std::vector<LinkId> chan;
  std::vector<int64_t> chain_at;   // per vertex level: r0's chain vertex, -1 none
  for (int c = 0; n > 1 && c < q; ++c) {
    const int r0 = member(0, c);
    size_t far = 1;
    int far_level = -1;
    for (int i = 1; i < n; ++i) {
      ps[i] = path(member(i, c), r0, static_cast<uint32_t>(c));   // a copy: routes_ may rehash
      const int lv = level(head(ps[i][top_of(ps[i])]));
      if (lv > far_level) far_level = lv, far = static_cast<size_t>(i);
    }
    // r0's chain up to the root: the reversed descending half of the highest-reaching route.
    chain_at.assign(16, -1);
    chan.clear();
    const Path& pf = ps[far];
    for (size_t k = pf.size(); k-- > top_of(pf) + 1;) {
      const LinkId up = pf[k] ^ 1u;   // 2c and 2c+1 are the two directions of cable c
      chan.push_back(up);
      const int lv = level(head(up));
      if (lv >= 0 && lv < 16) chain_at[lv] = head(up);
    }
    auto on_chain = [&](uint32_t v) {
      const int lv = level(v);
      return lv >= 0 && lv < 16 && chain_at[lv] == static_cast<int64_t>(v);
    };
    RouteOptions ro;
    ro.rail_aware = true;
    for (int i = 1; i < n; ++i) {
      const Path* p = &ps[i];
      std::vector<Path> alts;
      if (!on_chain(head((*p)[top_of(*p)]))) {
        alts = graph_->paths(member(i, c), r0, ro);
        for (const Path& a : alts)
          if (on_chain(head(a[top_of(a)]))) {
            p = &a;
            break;
          }
      }
      const size_t ti = top_of(*p);
      for (size_t k = 0; k <= ti; ++k) chan.push_back((*p)[k]);
      // No equal-cost path meets the chain at its top: the stray top forwards to the chain.
      for (size_t k = ti + 1; !on_chain(head((*p)[ti])) && k < p->size(); ++k) {
        chan.push_back((*p)[k]);
        if (on_chain(head((*p)[k]))) break;
      }
    }
    std::sort(chan.begin(), chan.end());
    chan.erase(std::unique(chan.begin(), chan.end()), chan.end());
    t.up.insert(t.up.end(), chan.begin(), chan.end());
    t.tiers = std::max(t.tiers, far_level - 1);   // leaf level 2 -> 1 tier
  }
  return trees_.emplace(key, std::move(t)).first->second;
}

int FabricNetworkModel::innet_tiers(const Plan& plan, uint32_t group, uint32_t inst) {
  if (!costs_.in_network_reduction) return 0;
  return innet_tree(plan, group, inst).tiers;
}

void FabricNetworkModel::collective(const Plan& plan, uint32_t group, uint32_t inst, uint32_t opi,
                                    NetworkTraffic* out) {
  out->analytic = true;
  out->flows.clear();
  out->floor = out->tail = Time::zero();
  const GroupTable& gt = plan.groups[group];
  const OpDesc& op = plan.ops[opi];
  const int q = group_members(plan, group, inst);
  const int n = static_cast<int>(used_);
  const int p = static_cast<int>(gt.size_of(inst));
  if (n <= 1 || op.bytes.count() == 0) return;   // one node (NVSwitch) or nothing to send: analytic
  out->analytic = false;
  const LinkParams& l = costs_.coll[static_cast<size_t>(op.coll)];
  const Bytes S = op.bytes;
  const double s = static_cast<double>(S.count());
  const GroupShape shape{p, q, n};
  auto member = [&](int node, int c) { const auto& v = nodes_[node]; return v[c % v.size()]; };

  if (op.coll == CollKind::kSendRecv) {
    out->floor = q > 1 ? scaled(S, 1, 1, costs_.p2p.intra_bw) : Time::zero();
    out->tail = costs_.p2p.inter_alpha;
    for (int i = 0; i < n; ++i)
      add_flow(nodes_[i].back(), nodes_[(i + 1) % n].front(), 0, s, out);
    return;
  }
  if (op.coll == CollKind::kAllToAll && op.dedup.fanout > 0) {
    // Deduplicated (sim/collectives.h): every member sends S * D/k over its NIC, spread evenly
    // over the n-1 other nodes, to the member with its local index there; the NVLink forwarding
    // ((q-1)/q of S) is the floor.
    out->floor = scaled(S, q - 1, q, l.intra_bw);
    out->tail = l.inter_alpha * (n - 1) + l.intra_alpha * (q - 1);
    const double per = s * expected_remote_nodes(op.dedup.fanout, op.dedup.slots, n, op.dedup.node_limit) /
                       op.dedup.fanout / (n - 1);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        if (i != j)
          for (int c = 0; c < q; ++c) add_flow(member(i, c), member(j, c), c, per, out);
    return;
  }
  if (op.coll == CollKind::kAllToAll) {
    out->floor = scaled(S, q - 1, p, l.intra_bw);
    out->tail = l.inter_alpha * (p - 1);
    const double per = s * q / p;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        if (i != j)
          for (int c = 0; c < q; ++c) add_flow(member(i, c), member(j, c), c, per, out);
    return;
  }
  const CollAlgo forced = op.coll == CollKind::kAllReduce ? costs_.allreduce_algo : CollAlgo::kAuto;
  if (op.coll == CollKind::kAllReduce && costs_.in_network_reduction &&
      (forced == CollAlgo::kAuto || forced == CollAlgo::kInNetwork)) {
    const InnetTree& tree = innet_tree(plan, group, inst);   // regroups nodes_ identically
    LinkParams li = l;
    li.innet_tiers = tree.tiers;
    if (forced == CollAlgo::kInNetwork || auto_algo(op.coll, S, shape, li) == CollAlgo::kInNetwork) {
      const Time intra = scaled(S, q - 1, q, l.intra_bw) + l.intra_alpha * (q - 1);
      out->tail = intra + intra + l.inter_alpha * (2 * tree.tiers);
      const int64_t per = static_cast<int64_t>(std::ceil(s / q));
      for (LinkId u : tree.up)
        for (LinkId d : {u, u ^ 1u}) {   // the aggregate up, the result down
          FlowSpec f;
          f.path = {d};
          f.size = Bytes(per);
          out->flows.push_back(std::move(f));
        }
      return;
    }
  }
  const CollAlgo algo = forced != CollAlgo::kAuto && forced != CollAlgo::kInNetwork
                            ? forced : auto_algo(op.coll, S, shape, l);
  if (op.coll == CollKind::kAllReduce && algo == CollAlgo::kTree) {
    // NCCL's double binary tree over the nodes (in nodes_ order), one pair per channel c:
    // every edge carries S/(2q) up (reduce) and S/(2q) down (broadcast), all at once.
    out->floor = scaled(S, 2 * (p - 1), p, l.intra_bw);
    out->tail = l.inter_alpha * (2 * ceil_log2(n)) + l.intra_alpha * (2 * (q - 1));
    double_binary_tree(n, &dtree_[0], &dtree_[1]);
    const double half = s / (2.0 * q);
    for (int c = 0; c < q; ++c)
      for (int t = 0; t < 2; ++t) {
        const uint32_t ch = static_cast<uint32_t>(c + t * q);   // NCCL: channel c and c + nChannels
        for (int i = 0; i < n; ++i) {
          const int up = dtree_[t][i];
          if (up < 0) continue;
          add_flow(member(i, c), member(up, c), ch, half, out);
          add_flow(member(up, c), member(i, c), ch, half, out);
        }
      }
    return;
  }
  int64_t num = 1, den = 1;   // ring phase factor F = num/den
  switch (op.coll) {
    case CollKind::kAllReduce: num = 2 * (p - 1); den = p; break;
    case CollKind::kAllGather:
    case CollKind::kReduceScatter: num = p - 1; den = p; break;
    default: break;   // broadcast: 1
  }
  double per_channel = s * static_cast<double>(num) / static_cast<double>(den) / q;
  if (op.coll == CollKind::kAllReduce && algo == CollAlgo::kHierarchical) {
    const Time intra = scaled(S, q - 1, q, l.intra_bw) + l.intra_alpha * (q - 1);
    out->tail = intra + intra + l.inter_alpha * (2 * (n - 1));
    per_channel = s * 2.0 * (n - 1) / n / q;
  } else {
    out->floor = scaled(S, num, den, l.intra_bw);
    out->tail = l.inter_alpha * (op.coll == CollKind::kAllReduce ? 2 * (p - 1) : (p - 1));
  }
  for (int c = 0; c < q; ++c)
    for (int i = 0; i < n; ++i) add_flow(member(i, c), member((i + 1) % n, c), c, per_channel, out);
}

void FabricNetworkModel::p2p(const Plan& plan, uint32_t src, uint32_t dst, uint32_t opi,
                             NetworkTraffic* out) {
  out->analytic = true;
  out->flows.clear();
  out->floor = out->tail = Time::zero();
  const int a = gpu_of_rank(src), b = gpu_of_rank(dst);
  const OpDesc& op = plan.ops[opi];
  if (a / gpn_ == b / gpn_ || op.bytes.count() == 0) return;
  out->analytic = false;
  out->tail = costs_.p2p.inter_alpha;
  add_flow(a, b, 0, static_cast<double>(op.bytes.count()), out);
}

}  // namespace trainsim
