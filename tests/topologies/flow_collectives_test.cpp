// Collectives as flows on a fabric (topologies/flow_collectives.h) replayed by sim/replay in
// flow mode: idle fabric = analytic time, contention on a shared oversubscribed uplink, a
// failed link that reroutes onto a degraded one, placement maps.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <set>

#include "sim/collectives.h"
#include "sim/replay.h"
#include "topologies/cluster.h"
#include "topologies/flow_collectives.h"
#include "topologies/placement.h"

namespace trainsim {
namespace {

constexpr double kEff = 0.9;   // achievable fraction of the NIC line rate

ClusterSpec spec(int gpus, int gpn) {
  ClusterSpec c;
  c.gpu = find_gpu("H100-SXM-80GB").value();
  c.gpus = gpus;
  c.gpus_per_node = gpn;
  c.nic_bandwidth = Bandwidth::Gbps(400);
  c.nvlink_bandwidth = Bandwidth::GBps(450);
  return c;
}

LinkParams links(Time alpha) {
  LinkParams l;
  l.intra_bw = Bandwidth::GBps(450) * 0.8;
  l.intra_alpha = alpha;
  l.inter_bw = Bandwidth::Gbps(400) * kEff;
  l.inter_alpha = alpha;
  return l;
}

FlowCosts costs(Time alpha) {
  FlowCosts c;
  for (auto& x : c.coll) x = links(alpha);
  c.p2p = links(alpha);
  c.efficiency = kEff;
  return c;
}

// A plan of `ranks` ranks; each instance of one group runs one collective (kind, size) when
// `active` says so; other ranks run nothing. Task::dur holds the analytic time.
Plan coll_plan(int ranks, const std::vector<std::vector<uint32_t>>& instances,
               const std::vector<bool>& active, CollKind kind, Bytes size, int gpn,
               const LinkParams& l, CollAlgo algo = CollAlgo::kAuto) {
  Plan p;
  p.num_ranks = ranks;
  GroupTable g;
  g.name = "dp";
  g.instance_of_rank.assign(ranks, kNoDep);
  g.member_offsets = {0};
  for (uint32_t i = 0; i < instances.size(); ++i) {
    for (uint32_t r : instances[i]) {
      g.members.push_back(r);
      g.instance_of_rank[r] = i;
    }
    g.member_offsets.push_back(static_cast<uint32_t>(g.members.size()));
  }
  p.groups.push_back(g);
  OpDesc d;
  d.name = "coll";
  d.cls = OpClass::kCollective;
  d.coll = kind;
  d.bytes = size;
  d.group = 0;
  const uint32_t op = p.intern_op(d);
  p.programs.resize(2);
  p.programs[1].name = "idle";
  Task t;
  t.kind = TaskKind::kCollective;
  t.category = Category::kDpComm;
  t.op = op;
  t.group = 0;
  t.dur = collective_time(kind, size, worst_shape(g, gpn), l, algo);
  p.programs[0].name = "coll";
  p.programs[0].tasks = {t};
  p.program_of_rank.assign(ranks, 1);
  for (uint32_t i = 0; i < instances.size(); ++i)
    if (active[i])
      for (uint32_t r : instances[i]) p.program_of_rank[r] = 0;
  EXPECT_TRUE(p.finalize().ok());
  return p;
}

Time run_flow(const Plan& p, std::shared_ptr<const ClusterGraph> g, const FlowCosts& c,
              ReplayResult* out = nullptr) {
  const int job_nodes = p.num_ranks / g->gpus_per_node();
  FabricNetworkModel m(g, place_nodes(job_nodes, g->num_nodes(), NodePlacement::kContiguous, 1).value(), c);
  ReplayOptions ro;
  ro.network = &m;
  auto r = replay(p, ro);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  if (!r.ok()) return Time::zero();
  if (out) *out = r.value();
  return r->step_time;
}

double rel(Time a, Time b) { return std::abs(a.seconds() - b.seconds()) / b.seconds(); }

std::shared_ptr<const ClusterGraph> fabric(int gpus, int gpn, int radix, double over,
                                           std::vector<LinkModification> mods = {}) {
  FabricOptions f;
  f.leaf_radix = radix;
  f.oversubscription = {over};
  f.modifications = std::move(mods);
  auto g = build_cluster(spec(gpus, gpn), f);
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return std::make_shared<const ClusterGraph>(std::move(g).value());
}

// Idle fabric: 4 nodes x 8 GPUs on one leaf per rail. Every collective kind, on the whole job
// (q = 8 per node: 8 rail channels) and on a DP-like group (one member per node: q = 1), takes
// the analytic time of sim/collectives.h within 1%: e.g. ring all-reduce over p ranks on n
// nodes = 2(p-1)/p * S / min(intra_bw, q * inter_bw) + 2(p-1) * alpha.
TEST(FlowCollectives, IdleFabricMatchesAnalyticWithinOnePercent) {
  auto g = fabric(32, 8, 64, 1);
  const LinkParams l = links(Time::us(5));
  std::vector<uint32_t> all, strided;
  for (uint32_t r = 0; r < 32; ++r) all.push_back(r);
  for (uint32_t r = 3; r < 32; r += 8) strided.push_back(r);
  double worst = 0;
  for (CollKind k : {CollKind::kAllReduce, CollKind::kAllGather, CollKind::kReduceScatter,
                     CollKind::kAllToAll, CollKind::kBroadcast}) {
    for (const auto& members : {all, strided}) {
      for (Bytes s : {Bytes::MiB(1), Bytes::MiB(256)}) {
        Plan p = coll_plan(32, {members}, {true}, k, s, 8, l);
        const Time analytic = p.programs[0].tasks[0].dur;
        ReplayResult rr;
        const Time flow = run_flow(p, g, costs(Time::us(5)), &rr);
        EXPECT_LT(rel(flow, analytic), 0.01)
            << to_string(k) << " p=" << members.size() << " S=" << s.count() << ": flow "
            << flow.seconds() << " s vs analytic " << analytic.seconds() << " s";
        worst = std::max(worst, rel(flow, analytic));
        EXPECT_TRUE(rr.flow);
        EXPECT_GT(rr.flows.stats.flows_started, 0u);
      }
    }
  }
  std::printf("largest idle-fabric relative error: %.2e\n", worst);
}

// Deduplicated all-to-all (MoE dispatch "dedup") on the idle fabric: per-pair flows of
// S * D/k / (n-1) take dedup_alltoall_time() within 1% (4 nodes x 8, k = 8 of 32 experts).
TEST(FlowCollectives, DedupAllToAllOnIdleFabricMatchesAnalyticWithinOnePercent) {
  auto g = fabric(32, 8, 64, 1);
  const LinkParams l = links(Time::us(5));
  std::vector<uint32_t> all;
  for (uint32_t r = 0; r < 32; ++r) all.push_back(r);
  for (int limit : {0, 2})
    for (Bytes s : {Bytes::MiB(1), Bytes::MiB(256)}) {
      Plan p = coll_plan(32, {all}, {true}, CollKind::kAllToAll, s, 8, l);
      const A2aDedup d{8, 32, limit};
      p.ops[p.programs[0].tasks[0].op].dedup = d;
      const Time analytic = dedup_alltoall_time(s, GroupShape{32, 8, 4}, l, d);
      p.programs[0].tasks[0].dur = analytic;
      const Time flow = run_flow(p, g, costs(Time::us(5)));
      EXPECT_LT(rel(flow, analytic), 0.01) << "limit " << limit << " S=" << s.count() << ": flow " << flow.seconds()
                                           << " s vs analytic " << analytic.seconds() << " s";
      EXPECT_LT(analytic, collective_time(CollKind::kAllToAll, s, GroupShape{32, 8, 4}, l));
    }
}

// Double binary tree all-reduce (forced) on an idle fabric, one leaf per rail: n = 2, 3, 4, 8,
// 16 nodes x 8 GPUs, on the whole job (q = 8: one tree pair per rail) and one member per node
// (q = 1). The flows are built from double_binary_tree(); the analytic term uses the closed
// form min(n, 4) x S/(2q) over the busiest NIC, so the two agree only if the built trees load
// the busiest NIC as derived: flow time = analytic within 1%, 4q(n-1) flows. 256 MiB makes the
// NIC term dominate for q = 1 and (n >= 3) for q = 8; 1 MiB checks the alphas.
TEST(FlowCollectives, DoubleBinaryTreeAllReduceOnIdleFabricMatchesAnalyticWithinOnePercent) {
  const Time alpha = Time::us(5);
  const LinkParams l = links(alpha);
  FlowCosts fc = costs(alpha);
  fc.allreduce_algo = CollAlgo::kTree;
  double worst = 0;
  for (int n : {2, 3, 4, 8, 16}) {
    auto g = fabric(8 * n, 8, 64, 1);
    std::vector<uint32_t> all, strided;
    for (uint32_t r = 0; r < static_cast<uint32_t>(8 * n); ++r) all.push_back(r);
    for (uint32_t r = 5; r < static_cast<uint32_t>(8 * n); r += 8) strided.push_back(r);
    for (const auto& members : {all, strided}) {
      const int q = static_cast<int>(members.size()) / n;
      for (Bytes s : {Bytes::MiB(1), Bytes::MiB(256)}) {
        Plan p = coll_plan(8 * n, {members}, {true}, CollKind::kAllReduce, s, 8, l, CollAlgo::kTree);
        const Time analytic = p.programs[0].tasks[0].dur;
        ReplayResult rr;
        const Time flow = run_flow(p, g, fc, &rr);
        EXPECT_LT(rel(flow, analytic), 0.01) << "n=" << n << " q=" << q << " S=" << s.count()
                                             << ": flow " << flow.seconds() << " s vs analytic "
                                             << analytic.seconds() << " s";
        worst = std::max(worst, rel(flow, analytic));
        EXPECT_EQ(rr.flows.stats.flows_started, static_cast<uint64_t>(4 * q * (n - 1))) << "n=" << n;
        // Bandwidth-bound (256 MiB, q = 1): the busiest NIC's min(n, 4) edges set the time.
        if (q == 1 && s == Bytes::MiB(256)) {
          const double nic = static_cast<double>(s.count()) / 2 * std::min(n, 4) / l.inter_bw.Bps();
          EXPECT_GT(flow.seconds(), nic);
        }
      }
    }
  }
  std::printf("double binary tree all-reduce, largest idle-fabric relative error: %.2e\n", worst);
}

// Two 2-node rings {0,2} and {1,3} (one GPU per node) whose nodes 0 and 1 share leaf 0. At 2:1
// leaf 0 has one uplink, of the NIC's rate: alone a ring runs at the NIC rate; together both
// cross that uplink (and the one down into leaf 0) and get half of it each. Zero alpha, so the
// time is all bandwidth: together = 2 x alone (within 1%).
TEST(FlowCollectives, TwoAllReducesSharingAnOversubscribedUplinkTakeTwiceAsLong) {
  auto g = fabric(4, 1, 2, 2.0);
  ASSERT_EQ(g->summary().spine_switches, 1);
  const LinkParams l = links(Time::zero());
  const FlowCosts c = costs(Time::zero());
  const std::vector<std::vector<uint32_t>> inst = {{0, 2}, {1, 3}};
  const Bytes s = Bytes::MiB(512);
  const Time alone = run_flow(coll_plan(4, inst, {true, false}, CollKind::kAllReduce, s, 1, l), g, c);
  const Time other = run_flow(coll_plan(4, inst, {false, true}, CollKind::kAllReduce, s, 1, l), g, c);
  ReplayResult rr;
  const Time both = run_flow(coll_plan(4, inst, {true, true}, CollKind::kAllReduce, s, 1, l), g, c, &rr);
  const Time analytic = collective_time(CollKind::kAllReduce, s, GroupShape{2, 1, 2}, l);
  EXPECT_LT(rel(alone, analytic), 0.01);
  EXPECT_EQ(alone, other);
  EXPECT_LT(rel(both, alone * 2), 0.01) << both.seconds() << " vs 2 x " << alone.seconds();
  // The shared uplink is the hottest link, at ~100% of its (achievable) capacity.
  ASSERT_FALSE(rr.flows.hottest.empty());
  EXPECT_GT(rr.flows.hottest[0].utilisation, 0.99);
  // In the replay's own analytic mode both would take the analytic time: contention is flow-only.
  auto an = replay(coll_plan(4, inst, {true, true}, CollKind::kAllReduce, s, 1, l), {});
  ASSERT_TRUE(an.ok());
  EXPECT_EQ(an->step_time, analytic);
}

// At 1:1 leaf 0 has two uplinks (spine0, spine1). Fail leaf0-spine1 and degrade leaf0-spine0
// to half: the ring {0,2} must reroute through spine0 both ways and runs at half the NIC rate:
//   t = S / (0.5 * 400 Gb/s * eff) + 2(p-1) * alpha   with p = 2 (one flow of S per direction).
TEST(FlowCollectives, FailedLinkReroutesAndSlowsByTheComputedAmount) {
  LinkModification fail;
  fail.a = "leaf0";
  fail.b = "spine1";
  fail.factor = 0;
  LinkModification half;
  half.a = "leaf0";
  half.b = "spine0";
  half.factor = 0.5;
  auto healthy = fabric(4, 1, 2, 1.0);
  auto broken = fabric(4, 1, 2, 1.0, {fail, half});
  ASSERT_EQ(healthy->summary().spine_switches, 2);
  const Time alpha = Time::us(5);
  const LinkParams l = links(alpha);
  const Bytes s = Bytes::MiB(256);
  Plan p = coll_plan(4, {{0, 2}, {1, 3}}, {true, false}, CollKind::kAllReduce, s, 1, l);
  const Time t_ok = run_flow(p, healthy, costs(alpha));
  const Time t_bad = run_flow(p, broken, costs(alpha));
  const Time expect_ok = transfer_time(s, Bandwidth::Gbps(400) * kEff) + alpha * 2;
  const Time expect_bad = transfer_time(s, Bandwidth::Gbps(400) * (0.5 * kEff)) + alpha * 2;
  EXPECT_LT(rel(t_ok, expect_ok), 0.001);
  EXPECT_LT(rel(t_bad, expect_bad), 0.001) << t_bad.seconds() << " vs " << expect_bad.seconds();
  // The routes avoid the failed cable: no link touches spine1 from/to leaf0.
  const Path path = broken->route(0, 2, 7, {});
  auto spine1 = broken->find_vertex("spine1");
  auto leaf0 = broken->find_vertex("leaf0");
  ASSERT_TRUE(spine1 && leaf0);
  for (LinkId id : path) {
    const Link& k = broken->link(id);
    EXPECT_FALSE((k.from == *leaf0 && k.to == *spine1) || (k.from == *spine1 && k.to == *leaf0));
  }
}

// A PP-style p2p send across nodes is one flow: S / (NIC * eff) + alpha, like p2p_time.
TEST(FlowCollectives, CrossNodeSendIsOneFlowAtTheP2pTime) {
  auto g = fabric(16, 8, 64, 1);
  Plan p;
  p.num_ranks = 16;
  PeerTable next{"pp_next", std::vector<int32_t>(16, -1)};
  for (int r = 0; r < 8; ++r) next.peer_of_rank[r] = r + 8;
  p.peers.push_back(next);
  OpDesc d;
  d.name = "send";
  d.cls = OpClass::kP2p;
  d.bytes = Bytes::MiB(64);
  const uint32_t op = p.intern_op(d);
  const LinkParams l = links(Time::us(5));
  p.programs.resize(2);
  Task s;
  s.kind = TaskKind::kSend;
  s.stream = kStreamP2p;
  s.category = Category::kPpComm;
  s.op = op;
  s.dur = p2p_time(d.bytes, false, l);
  Task rcv = s;
  rcv.kind = TaskKind::kRecv;
  rcv.dur = Time::zero();
  p.programs[0].tasks = {s};
  p.programs[1].tasks = {rcv};
  p.program_of_rank.assign(16, 0);
  for (int r = 8; r < 16; ++r) p.program_of_rank[r] = 1;
  ASSERT_TRUE(p.finalize().ok());
  ReplayResult rr;
  const Time t = run_flow(p, g, costs(Time::us(5)), &rr);
  EXPECT_LT(rel(t, s.dur), 0.001);
  EXPECT_EQ(rr.flows.stats.flows_started, 8u);   // one per sending rank, each on its own rail
}

// In-network (SHARP) all-reduce on an idle 1:1 fabric: per rail, every link of the switch tree
// carries the S/q shard once up and once down, so the flow time is
//   2 x [(q-1)/q S / intra_bw + (q-1) alpha] + S/q / inter_bw + 2 x tiers x alpha
// = collective_time() with innet_tiers = the tree's tiers (leaf 1, spine 2, core 3), within 1%.
// Shapes where the analytic model picks in-network: one member per node (DP-like) on one leaf,
// across leaves, across pods; two members per node (NIC-bound rail rings) across leaves.
TEST(FlowCollectives, InNetworkAllReduceOnIdleFabricMatchesAnalyticWithinOnePercent) {
  struct Case {
    int gpus, gpn, radix, tiers, pod_gpus;
    std::vector<uint32_t> members;
    int want_tiers;
    size_t want_flows;   // 2 x tree links (up and down)
  };
  std::vector<uint32_t> strided, eight, sixteen;
  for (uint32_t r = 3; r < 32; r += 8) strided.push_back(r);
  for (uint32_t r = 0; r < 8; ++r) eight.push_back(r);
  for (uint32_t r = 0; r < 16; ++r) sixteen.push_back(r);
  const std::vector<Case> cases = {
      // 4 nodes on one leaf per rail: 4 x (GPU->NIC, NIC->leaf).
      {32, 8, 64, 2, 0, strided, 1, 2 * 8},
      // 8 nodes on 4 leaves: + one uplink per leaf to a single root spine.
      {8, 1, 2, 2, 0, eight, 2, 2 * (16 + 4)},
      // 16 nodes, pods of 4 nodes (2 leaves each): + leaf->spine per leaf, spine->core per pod.
      {16, 1, 2, 3, 4, sixteen, 3, 2 * (32 + 8 + 4)},
      // 8 nodes x 2 GPUs, 2 rails of 2 leaves each: two trees, one per rail.
      {16, 2, 4, 2, 0, sixteen, 2, 2 * 2 * (16 + 2)},
  };
  const Time alpha = Time::us(5);
  double worst = 0;
  for (const Case& c : cases) {
    FabricOptions f;
    f.leaf_radix = c.radix;
    f.tiers = c.tiers;
    f.pod_size = c.pod_gpus;
    auto built = build_cluster(spec(c.gpus, c.gpn), f);
    ASSERT_TRUE(built.ok()) << built.status().to_string();
    auto g = std::make_shared<const ClusterGraph>(std::move(built).value());
    FlowCosts fc = costs(alpha);
    fc.in_network_reduction = true;
    LinkParams l = links(alpha);
    l.innet_tiers = c.want_tiers;
    for (Bytes s : {Bytes::MiB(1), Bytes::MiB(256)}) {
      Plan p = coll_plan(c.gpus, {c.members}, {true}, CollKind::kAllReduce, s, c.gpn, l);
      const GroupShape shape = worst_shape(p.groups[0], c.gpn);
      ASSERT_EQ(auto_algo(CollKind::kAllReduce, s, shape, l), CollAlgo::kInNetwork)
          << "p=" << shape.size << " q=" << shape.per_node << " n=" << shape.nodes;
      FabricNetworkModel m(g, place_nodes(c.gpus / c.gpn, g->num_nodes(), NodePlacement::kContiguous, 1).value(), fc);
      EXPECT_EQ(m.innet_tiers(p, 0, 0), c.want_tiers) << c.gpus << " GPUs";
      const Time analytic = p.programs[0].tasks[0].dur;
      ReplayResult rr;
      const Time flow = run_flow(p, g, fc, &rr);
      EXPECT_LT(rel(flow, analytic), 0.01) << c.gpus << " GPUs S=" << s.count() << ": flow "
                                           << flow.seconds() << " s vs analytic " << analytic.seconds();
      worst = std::max(worst, rel(flow, analytic));
      EXPECT_EQ(rr.flows.stats.flows_started, c.want_flows) << c.gpus << " GPUs";
      // Off (the default), ring forced: the same plan runs the ring algorithm's flows, more
      // slowly. (Auto may pick the double binary tree here, whose cross-leaf edges can meet on
      // an ECMP-hashed uplink of these small leaves: not an idle-fabric comparison.)
      FlowCosts ring_costs = costs(alpha);
      ring_costs.allreduce_algo = CollAlgo::kRing;
      const Time ring = run_flow(p, g, ring_costs);
      EXPECT_LT(rel(ring, collective_time(CollKind::kAllReduce, s, shape, links(alpha), CollAlgo::kRing)), 0.01)
          << c.gpus << " GPUs S=" << s.count();
      if (s == Bytes::MiB(256)) {
        EXPECT_GT(ring.seconds(), flow.seconds() * 1.2);
      }
    }
  }
  std::printf("in-network all-reduce, largest idle-fabric relative error: %.2e\n", worst);
}

TEST(FlowCollectives, PlacementMaps) {
  auto c = place_nodes(4, 16, NodePlacement::kContiguous, 1).value();
  EXPECT_EQ(c, (std::vector<int32_t>{0, 1, 2, 3}));
  auto s1 = place_nodes(4, 16, NodePlacement::kScattered, 1).value();
  auto s2 = place_nodes(4, 16, NodePlacement::kScattered, 1).value();
  auto s3 = place_nodes(16, 16, NodePlacement::kScattered, 2).value();
  EXPECT_EQ(s1, s2);   // same seed, same map
  EXPECT_EQ(std::set<int32_t>(s3.begin(), s3.end()).size(), 16u);   // a permutation
  EXPECT_NE(s1, c);
  EXPECT_FALSE(place_nodes(17, 16, NodePlacement::kContiguous, 1).ok());
}

}  // namespace
}  // namespace trainsim
