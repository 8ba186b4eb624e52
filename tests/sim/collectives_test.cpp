// Closed-form tests of sim/collectives.h (STYLE.md 7, layer 1): each formula is written in a
// comment and evaluated independently in double seconds; the implementation rounds each
// bandwidth term up to a whole picosecond once, so we allow 1 ps per term.
#include "sim/collectives.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace trainsim {
namespace {

// H100-like: 370 GB/s NVLink bus bandwidth, 48 GB/s per NIC, 5 us / 10 us per step.
LinkParams h100_links() {
  return LinkParams{Bandwidth::GBps(370), Time::us(5), Bandwidth::GBps(48), Time::us(10)};
}

// Seconds -> ps, as a double (the unrounded formula).
double ps(double seconds) { return seconds * 1e12; }

void expect_near_ps(Time got, double want_ps, int terms) {
  EXPECT_GE(static_cast<double>(got.count_ps()), want_ps - 1e-3) << "got " << got.count_ps();
  EXPECT_LE(static_cast<double>(got.count_ps()), want_ps + terms + 1e-3) << "got " << got.count_ps();
}

constexpr double kGB = 1e9;

TEST(Collectives, SingleRankIsFree) {
  GroupShape g{1, 1, 1};
  for (CollKind k : {CollKind::kAllReduce, CollKind::kAllGather, CollKind::kReduceScatter,
                     CollKind::kAllToAll, CollKind::kBroadcast}) {
    EXPECT_EQ(collective_time(k, Bytes::MiB(64), g, h100_links()), Time::zero());
  }
}

TEST(Collectives, RingAllReduceIntraNode) {
  // p=8 on one node: 2(p-1)/p * S/B + 2(p-1)*alpha = 2*7/8 * S/370GB/s + 14 * 5us
  const Bytes s = Bytes::MiB(256);
  GroupShape g{8, 8, 1};
  double want = ps(2.0 * 7 / 8 * s.count() / (370 * kGB)) + 14 * 5e6;
  expect_near_ps(collective_time(CollKind::kAllReduce, s, g, h100_links(), CollAlgo::kRing), want, 1);
  // Exact: the bandwidth term is transfer_time over algbw = B * p/(2(p-1)).
  Time exact = transfer_time(s, Bandwidth::GBps(370) * (8.0 / 14.0)) + Time::us(5) * 14;
  EXPECT_EQ(collective_time(CollKind::kAllReduce, s, g, h100_links(), CollAlgo::kRing), exact);
}

TEST(Collectives, RingAllGatherAndReduceScatter) {
  // (p-1)/p * S/B + (p-1)*alpha; S = all-gather output / reduce-scatter input.
  const Bytes s = Bytes::MiB(100);
  GroupShape g{4, 4, 1};
  double want = ps(3.0 / 4 * s.count() / (370 * kGB)) + 3 * 5e6;
  expect_near_ps(collective_time(CollKind::kAllGather, s, g, h100_links()), want, 1);
  expect_near_ps(collective_time(CollKind::kReduceScatter, s, g, h100_links()), want, 1);
}

TEST(Collectives, RingAcrossNodesUsesAggregateNicBandwidth) {
  // p=16, 8 per node, 2 nodes: B = min(370, 8*48=384) = 370 GB/s; alpha = inter 10us.
  // all-reduce = 2*15/16 * S/370GB/s + 30 * 10us
  const Bytes s = Bytes::GiB(1);
  GroupShape g{16, 8, 2};
  double want = ps(2.0 * 15 / 16 * s.count() / (370 * kGB)) + 30 * 10e6;
  expect_near_ps(collective_time(CollKind::kAllReduce, s, g, h100_links(), CollAlgo::kRing), want, 1);
  // p=4, one member per node (a DP group with tp=8): B = min(370, 1*48) = 48 GB/s.
  // all-gather = 3/4 * S/48GB/s + 3 * 10us
  GroupShape g2{4, 1, 4};
  double want2 = ps(3.0 / 4 * s.count() / (48 * kGB)) + 3 * 10e6;
  expect_near_ps(collective_time(CollKind::kAllGather, s, g2, h100_links()), want2, 1);
}

TEST(Collectives, TreeAllReduce) {
  // p=64, 8 per node, 8 nodes: 2(p-1)/p * S/B + 2*ceil(log2 8)*inter_alpha + 2*(8-1)*intra_alpha
  //   = 2*63/64 * S/370GB/s + 6*10us + 14*5us
  const Bytes s = Bytes::MiB(8);
  GroupShape g{64, 8, 8};
  double want = ps(2.0 * 63 / 64 * s.count() / (370 * kGB)) + 6 * 10e6 + 14 * 5e6;
  expect_near_ps(collective_time(CollKind::kAllReduce, s, g, h100_links(), CollAlgo::kTree), want, 1);
  // ceil(log2 5) = 3
  GroupShape g5{40, 8, 5};
  double want5 = ps(2.0 * 39 / 40 * s.count() / (370 * kGB)) + 6 * 10e6 + 14 * 5e6;
  expect_near_ps(collective_time(CollKind::kAllReduce, s, g5, h100_links(), CollAlgo::kTree), want5, 1);
}

// NCCL's double binary tree (trees.cc's pictures): 12 nodes, tree 0 = 0-8, 8-4, 8-10, 4-2, 4-6,
// 2-1/3, 6-5/7, 10-9/11; 13 nodes, tree 1 = the shift: root 1, 1-9, 9-5, 9-0, 5-3/7, 0-11,
// 3-2/4, 7-6/8, 11-10/12. For n = 1..64 both are trees (one root, every node reaches it), a
// node with children in one tree has none in the other (but tree 0's root, one child), and the most edges meeting at one node
// (both trees) is dtree_max_degree(n), the closed form the tree all-reduce's NIC term uses.
TEST(Collectives, DoubleBinaryTreeStructure) {
  std::vector<int> t0, t1;
  double_binary_tree(12, &t0, &t1);
  EXPECT_EQ(t0, (std::vector<int>{-1, 2, 4, 2, 8, 6, 4, 6, 0, 10, 8, 10}));
  for (int r = 0; r < 12; ++r) EXPECT_EQ(t1[r], t0[11 - r] < 0 ? -1 : 11 - t0[11 - r]);   // mirror
  double_binary_tree(13, &t0, &t1);
  EXPECT_EQ(t1, (std::vector<int>{9, -1, 3, 5, 3, 9, 7, 5, 7, 1, 11, 0, 11}));
  for (int n = 1; n <= 64; ++n) {
    double_binary_tree(n, &t0, &t1);
    ASSERT_EQ(static_cast<int>(t0.size()), n);
    std::vector<int> deg(n, 0), kids0(n, 0), kids1(n, 0);
    for (const auto* t : {&t0, &t1}) {
      int roots = 0;
      for (int r = 0; r < n; ++r) {
        if ((*t)[r] < 0) { ++roots; continue; }
        ASSERT_LT((*t)[r], n);
        ++deg[r];
        ++deg[(*t)[r]];
        ++(t == &t0 ? kids0 : kids1)[(*t)[r]];
        int v = r, hops = 0;
        while ((*t)[v] >= 0 && hops <= n) v = (*t)[v], ++hops;
        EXPECT_LE(hops, n) << "cycle, n=" << n;
      }
      EXPECT_EQ(roots, 1) << "n=" << n;
    }
    int most = 0;
    for (int r = 0; r < n; ++r) {
      // Only tree 0's root (one child, degree 1) may have children in both (odd n).
      EXPECT_TRUE(kids0[r] == 0 || kids1[r] == 0 || (t0[r] < 0 && kids0[r] == 1))
          << "n=" << n << " node " << r;
      EXPECT_LE(std::max(kids0[r], kids1[r]), 2);
      most = std::max(most, deg[r]);
    }
    EXPECT_EQ(most, dtree_max_degree(n)) << "n=" << n;
  }
}

TEST(Collectives, TreeAllReduceNicBound) {
  // NIC-bound (q = 1, NVLink unused): max(.., D(n)/2 * S/inter_bw) + 2*ceil(log2 n)*inter_alpha,
  // D = 2, 3, 4 for n = 2, 3, >= 4: the double binary tree's busiest node.
  const Bytes s = Bytes::MiB(64);
  const double sz = static_cast<double>(s.count());
  for (int n : {2, 3, 4, 5, 16}) {
    const double d = n == 2 ? 2 : n == 3 ? 3 : 4;
    const int lg = n == 2 ? 1 : n <= 4 ? 2 : n == 5 ? 3 : 4;
    const double want = ps(d / 2 * sz / (48 * kGB)) + 2 * lg * 10e6;
    expect_near_ps(collective_time(CollKind::kAllReduce, s, GroupShape{n, 1, n}, h100_links(), CollAlgo::kTree),
                   want, 1);
  }
  // Two nodes: the tree sends S/q per NIC, half the ring's 2(p-1)/p * S/q (q = 4, p = 8).
  const LinkParams nic_bound{Bandwidth::GBps(1000), Time::zero(), Bandwidth::GBps(48), Time::zero()};
  GroupShape g{8, 4, 2};
  expect_near_ps(collective_time(CollKind::kAllReduce, s, g, nic_bound, CollAlgo::kTree),
                 ps(sz / 4 / (48 * kGB)), 1);
  expect_near_ps(collective_time(CollKind::kAllReduce, s, g, nic_bound, CollAlgo::kRing),
                 ps(2.0 * 7 / 8 * sz / (4 * 48 * kGB)), 1);
}

TEST(Collectives, HierarchicalAllReduce) {
  // q=8, n=4: intra RS (7/8 * S/370 + 7*5us) + inter ring AR on S/8 (2*3/4 * (S/8)/48 + 6*10us)
  //           + intra AG (7/8 * S/370 + 7*5us)
  const Bytes s = Bytes::MiB(512);
  GroupShape g{32, 8, 4};
  double sz = static_cast<double>(s.count());
  double want = 2 * (ps(7.0 / 8 * sz / (370 * kGB)) + 7 * 5e6) +
                ps(2.0 * 3 / 4 * (sz / 8) / (48 * kGB)) + 6 * 10e6;
  expect_near_ps(collective_time(CollKind::kAllReduce, s, g, h100_links(), CollAlgo::kHierarchical),
                 want, 3);
}

TEST(Collectives, TreeAndHierarchicalApplyToAllReduceOnly) {
  const Bytes s = Bytes::MiB(64);
  GroupShape g{32, 8, 4};
  Time ring_ag = collective_time(CollKind::kAllGather, s, g, h100_links(), CollAlgo::kRing);
  EXPECT_EQ(collective_time(CollKind::kAllGather, s, g, h100_links(), CollAlgo::kTree), ring_ag);
  EXPECT_EQ(collective_time(CollKind::kAllGather, s, g, h100_links(), CollAlgo::kHierarchical), ring_ag);
}

TEST(Collectives, AutoPicksFastestAllReduce) {
  LinkParams l = h100_links();
  for (GroupShape g : {GroupShape{8, 8, 1}, GroupShape{64, 8, 8}, GroupShape{512, 8, 64},
                       GroupShape{16, 1, 16}}) {
    for (Bytes s : {Bytes::KiB(64), Bytes::MiB(16), Bytes::GiB(2)}) {
      Time a = collective_time(CollKind::kAllReduce, s, g, l);
      Time best = min(min(collective_time(CollKind::kAllReduce, s, g, l, CollAlgo::kRing),
                          collective_time(CollKind::kAllReduce, s, g, l, CollAlgo::kTree)),
                      collective_time(CollKind::kAllReduce, s, g, l, CollAlgo::kHierarchical));
      EXPECT_EQ(a, best);
      EXPECT_EQ(collective_time(CollKind::kAllReduce, s, g, l, auto_algo(CollKind::kAllReduce, s, g, l)), a);
    }
  }
  // Small message on many nodes: tree's log latency wins over the ring's linear one.
  EXPECT_EQ(auto_algo(CollKind::kAllReduce, Bytes::KiB(64), GroupShape{512, 8, 64}, l), CollAlgo::kTree);
  // Non-all-reduce kinds: ring; all-to-all: direct.
  EXPECT_EQ(auto_algo(CollKind::kAllGather, Bytes::KiB(64), GroupShape{512, 8, 64}, l), CollAlgo::kRing);
  EXPECT_EQ(auto_algo(CollKind::kAllToAll, Bytes::KiB(64), GroupShape{512, 8, 64}, l), CollAlgo::kDirect);
}

TEST(Collectives, InNetworkAllReduceClosedForm) {
  // q=8, n=16, a 2-tier switch tree: intra RS (7/8 * S/370 + 7*5us)
  //   + the S/8 shard once up and down the tree ((S/8)/48, bus factor 1) + 2*2 tiers*10us
  //   + intra AG (7/8 * S/370 + 7*5us)
  LinkParams l = h100_links();
  l.innet_tiers = 2;
  const Bytes s = Bytes::MiB(512);
  const double sz = static_cast<double>(s.count());
  GroupShape g{128, 8, 16};
  double want = 2 * (ps(7.0 / 8 * sz / (370 * kGB)) + 7 * 5e6) + ps(sz / 8 / (48 * kGB)) + 2 * 2 * 10e6;
  expect_near_ps(collective_time(CollKind::kAllReduce, s, g, l, CollAlgo::kInNetwork), want, 3);
  // One member per node (a DP group): no intra phases, S/48 + 2*tiers*10us, against the
  // ring's 2(n-1)/n * S/48 + 2(n-1)*10us: about half the time on 64 nodes.
  l.innet_tiers = 3;
  GroupShape d{64, 1, 64};
  expect_near_ps(collective_time(CollKind::kAllReduce, s, d, l, CollAlgo::kInNetwork),
                 ps(sz / (48 * kGB)) + 2 * 3 * 10e6, 1);
  const double ratio = collective_time(CollKind::kAllReduce, s, d, l).seconds() /
                       collective_time(CollKind::kAllReduce, s, d, l, CollAlgo::kRing).seconds();
  EXPECT_NEAR(ratio, (sz / 48e9 + 60e-6) / (2.0 * 63 / 64 * sz / 48e9 + 126 * 10e-6), 1e-6);
  EXPECT_LT(ratio, 0.51);
}

TEST(Collectives, InNetworkOnlyWhenEnabledAcrossNodesAndForAllReduce) {
  const LinkParams off = h100_links();   // innet_tiers = 0: the default, no SHARP
  LinkParams on = off;
  on.innet_tiers = 2;
  const Bytes s = Bytes::MiB(256);
  for (GroupShape g : {GroupShape{8, 8, 1}, GroupShape{64, 8, 8}, GroupShape{512, 8, 64},
                       GroupShape{16, 1, 16}, GroupShape{2, 1, 2}}) {
    for (Bytes b : {Bytes::KiB(64), Bytes::MiB(16), Bytes::GiB(2)}) {
      // Disabled: never picked, and asking for it explicitly means ring; times unchanged.
      EXPECT_NE(auto_algo(CollKind::kAllReduce, b, g, off), CollAlgo::kInNetwork);
      EXPECT_EQ(collective_time(CollKind::kAllReduce, b, g, off, CollAlgo::kInNetwork),
                collective_time(CollKind::kAllReduce, b, g, off, CollAlgo::kRing));
      // Enabled: auto is the fastest of the four.
      Time best = min(min(collective_time(CollKind::kAllReduce, b, g, on, CollAlgo::kRing),
                          collective_time(CollKind::kAllReduce, b, g, on, CollAlgo::kTree)),
                      min(collective_time(CollKind::kAllReduce, b, g, on, CollAlgo::kHierarchical),
                          collective_time(CollKind::kAllReduce, b, g, on, CollAlgo::kInNetwork)));
      EXPECT_EQ(collective_time(CollKind::kAllReduce, b, g, on), best);
      // Reduce-scatter and all-gather stay ring.
      EXPECT_EQ(auto_algo(CollKind::kReduceScatter, b, g, on), CollAlgo::kRing);
      EXPECT_EQ(collective_time(CollKind::kAllGather, b, g, on, CollAlgo::kInNetwork),
                collective_time(CollKind::kAllGather, b, g, off, CollAlgo::kRing));
    }
  }
  // Large buffers across many nodes where the NICs limit the ring: in-network wins.
  EXPECT_EQ(auto_algo(CollKind::kAllReduce, s, GroupShape{128, 2, 64}, on), CollAlgo::kInNetwork);
  EXPECT_EQ(auto_algo(CollKind::kAllReduce, s, GroupShape{16, 1, 16}, on), CollAlgo::kInNetwork);
  // Whole nodes (q = 8) whose ring runs at min(370, 8 x 48) GB/s: the phases are summed (as for
  // hierarchical), 2 x 7/8 S/370 + S/(8 x 48) > 2 S/370, so the rail rings stay faster.
  EXPECT_NE(auto_algo(CollKind::kAllReduce, s, GroupShape{512, 8, 64}, on), CollAlgo::kInNetwork);
  // One node: NVLS is already in the fitted NVLink figure, nothing to add.
  EXPECT_NE(auto_algo(CollKind::kAllReduce, s, GroupShape{8, 8, 1}, on), CollAlgo::kInNetwork);
  // Two nodes, one member each: the ring's bus factor 2(n-1)/n is already 1, and its 2 steps
  // of latency beat a 2-tier tree's 4 hops: not faster, not picked.
  EXPECT_EQ(auto_algo(CollKind::kAllReduce, s, GroupShape{2, 1, 2}, on), CollAlgo::kRing);
  EXPECT_LT(collective_time(CollKind::kAllReduce, s, GroupShape{2, 1, 2}, on, CollAlgo::kRing),
            collective_time(CollKind::kAllReduce, s, GroupShape{2, 1, 2}, on, CollAlgo::kInNetwork));
}

TEST(Collectives, DirectAllToAll) {
  // p=16, q=8, 2 nodes: intra part 7/16 * S/370, inter part 8/16 * S/48;
  // time = max(intra, inter) + 15 * 10us
  const Bytes s = Bytes::MiB(128);
  GroupShape g{16, 8, 2};
  double sz = static_cast<double>(s.count());
  double want = std::max(ps(7.0 / 16 * sz / (370 * kGB)), ps(8.0 / 16 * sz / (48 * kGB))) + 15 * 10e6;
  expect_near_ps(collective_time(CollKind::kAllToAll, s, g, h100_links()), want, 1);
  // One node: 7/8 * S/370 + 7 * 5us
  GroupShape g1{8, 8, 1};
  double want1 = ps(7.0 / 8 * sz / (370 * kGB)) + 7 * 5e6;
  expect_near_ps(collective_time(CollKind::kAllToAll, s, g1, h100_links(), CollAlgo::kRing), want1, 1);
}

// Oracle for expected_item_nodes / expected_remote_nodes: E experts, E/n per node (expert e on
// node e / (E/n)), the item on node 0. Every M-subset of the nodes (M = n without a limit),
// then every k-subset of those nodes' experts, equally likely; average the distinct nodes
// touched (and those other than node 0).
void brute_force_nodes(int k, int E, int n, int M, double* all, double* remote) {
  const int per = E / n;
  double sum_all = 0, sum_remote = 0, count = 0;
  for (uint32_t nodes = 0; nodes < (1u << n); ++nodes) {
    if (__builtin_popcount(nodes) != M) continue;
    std::vector<int> experts;
    for (int e = 0; e < E; ++e)
      if (nodes >> (e / per) & 1) experts.push_back(e);
    const int m = static_cast<int>(experts.size());
    for (uint32_t pick = 0; pick < (1u << m); ++pick) {
      if (__builtin_popcount(pick) != k) continue;
      uint32_t hit = 0;
      for (int i = 0; i < m; ++i)
        if (pick >> i & 1) hit |= 1u << (experts[i] / per);
      sum_all += __builtin_popcount(hit);
      sum_remote += __builtin_popcount(hit & ~1u);
      count += 1;
    }
  }
  *all = sum_all / count;
  *remote = sum_remote / count;
}

TEST(Collectives, ExpectedDistinctNodesMatchesEnumeration) {
  int cases = 0;
  for (int n : {1, 2, 3, 4, 6})
    for (int per : {1, 2, 3})
      for (int k = 1; k <= 4; ++k)
        for (int M = 0; M <= n; ++M) {
          const int E = n * per;
          if (k > E || n * per > 18) continue;
          const int m_eff = M == 0 ? n : M;
          if (m_eff * per < k) continue;   // the limit would be raised: checked below
          double all, remote;
          brute_force_nodes(k, E, n, m_eff, &all, &remote);
          EXPECT_NEAR(expected_item_nodes(k, E, n, M), all, 1e-12) << "k=" << k << " E=" << E << " n=" << n << " M=" << M;
          EXPECT_NEAR(expected_remote_nodes(k, E, n, M), remote, 1e-12)
              << "k=" << k << " E=" << E << " n=" << n << " M=" << M;
          ++cases;
        }
  EXPECT_GT(cases, 100);
  // A limit whose nodes hold fewer than k experts is raised to the fewest that do:
  // k = 4 of 8 experts on 4 nodes (2 each), M = 1 -> 2 nodes.
  EXPECT_EQ(effective_node_limit(4, 8, 4, 1), 2);
  EXPECT_EQ(effective_node_limit(4, 8, 4, 0), 4);
  EXPECT_EQ(effective_node_limit(4, 8, 4, 9), 4);
  double all, remote;
  brute_force_nodes(4, 8, 4, 2, &all, &remote);
  EXPECT_NEAR(expected_item_nodes(4, 8, 4, 1), all, 1e-12);
}

TEST(Collectives, ExpectedDistinctNodesDeepSeekV3) {
  // 256 experts on 8 nodes (32 each), top-8. No limit: 8 (1 - C(224,8)/C(256,8)).
  double miss = 1, miss4 = 1;
  for (int i = 0; i < 8; ++i) miss *= (224.0 - i) / (256.0 - i);
  EXPECT_NEAR(expected_item_nodes(8, 256, 8, 0), 8 * (1 - miss), 1e-12);
  EXPECT_NEAR(expected_remote_nodes(8, 256, 8, 0), 7 * (1 - miss), 1e-12);
  // M = 4: h = 1 - C(96,8)/C(128,8); E[nodes] = 4h, E[remote] = 4h * 7/8.
  for (int i = 0; i < 8; ++i) miss4 *= (96.0 - i) / (128.0 - i);
  EXPECT_NEAR(expected_item_nodes(8, 256, 8, 4), 4 * (1 - miss4), 1e-12);
  EXPECT_NEAR(expected_remote_nodes(8, 256, 8, 4), 3.5 * (1 - miss4), 1e-12);
  EXPECT_LT(expected_item_nodes(8, 256, 8, 4), 4.0);
  EXPECT_GT(expected_item_nodes(8, 256, 8, 0), 5.0);   // about 5.3
}

TEST(Collectives, DedupAllToAll) {
  // p=64, q=8, n=8 (DeepSeek-V3's EP group), k=8 of E=256, M=4, S = 128 MiB of token copies:
  //   D = 3.5 (1 - C(96,8)/C(128,8)) remote nodes per token
  //   time = max(7/8 * S/370, D/8 * S/48) + 7 * 10us + 7 * 5us
  const Bytes s = Bytes::MiB(128);
  const double sz = static_cast<double>(s.count());
  GroupShape g{64, 8, 8};
  const A2aDedup d{8, 256, 4};
  double miss4 = 1;
  for (int i = 0; i < 8; ++i) miss4 *= (96.0 - i) / (128.0 - i);
  const double D = 3.5 * (1 - miss4);
  double want = std::max(ps(7.0 / 8 * sz / (370 * kGB)), ps(D / 8 * sz / (48 * kGB))) + 7 * 10e6 + 7 * 5e6;
  expect_near_ps(dedup_alltoall_time(s, g, h100_links(), d), want, 1);
  // Cheaper than direct here: NIC share D/8 ~ 0.36 against 56/64.
  EXPECT_LT(dedup_alltoall_time(s, g, h100_links(), d), collective_time(CollKind::kAllToAll, s, g, h100_links()));
  // k = 1: D = (n-1)/n, the direct NIC share (p-q)/p; only the alphas and NVLink share differ.
  const double want1 = std::max(ps(7.0 / 8 * sz / (370 * kGB)), ps(7.0 / 8 * sz / (48 * kGB))) + 7 * 10e6 + 7 * 5e6;
  expect_near_ps(dedup_alltoall_time(s, g, h100_links(), A2aDedup{1, 256, 0}), want1, 1);
  // One node: the direct all-to-all's time.
  GroupShape g1{8, 8, 1};
  EXPECT_EQ(dedup_alltoall_time(s, g1, h100_links(), d), collective_time(CollKind::kAllToAll, s, g1, h100_links()));
  EXPECT_EQ(dedup_alltoall_time(s, GroupShape{1, 1, 1}, h100_links(), d), Time::zero());
}

TEST(Collectives, Broadcast) {
  // pipelined ring: S/B + (p-1)*alpha
  const Bytes s = Bytes::MiB(10);
  GroupShape g{8, 8, 1};
  double want = ps(static_cast<double>(s.count()) / (370 * kGB)) + 7 * 5e6;
  expect_near_ps(collective_time(CollKind::kBroadcast, s, g, h100_links()), want, 1);
}

TEST(Collectives, P2p) {
  // S/B + alpha of the span
  const Bytes s = Bytes::MiB(32);
  double sz = static_cast<double>(s.count());
  expect_near_ps(p2p_time(s, true, h100_links()), ps(sz / (370 * kGB)) + 5e6, 1);
  expect_near_ps(p2p_time(s, false, h100_links()), ps(sz / (48 * kGB)) + 10e6, 1);
  EXPECT_EQ(p2p_time(Bytes(0), false, h100_links()), Time::us(10));
}

TEST(Collectives, ZeroBytesCostsLatencyOnly) {
  GroupShape g{8, 8, 1};
  EXPECT_EQ(collective_time(CollKind::kAllReduce, Bytes(0), g, h100_links(), CollAlgo::kRing),
            Time::us(5) * 14);
}

TEST(Collectives, MonotoneInSize) {
  GroupShape g{64, 8, 8};
  Time prev = Time::zero();
  for (int64_t mib = 1; mib <= 4096; mib *= 2) {
    Time t = collective_time(CollKind::kAllReduce, Bytes::MiB(mib), g, h100_links());
    EXPECT_GE(t, prev);
    prev = t;
  }
}

}  // namespace
}  // namespace trainsim
