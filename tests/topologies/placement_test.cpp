#include "topologies/placement.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

namespace trainsim {
namespace {

ParallelSpec par(int tp, int cp, int dp, int pp, std::string order = "tp-cp-dp-pp") {
  ParallelSpec p;
  p.tp = tp;
  p.cp = cp;
  p.dp = dp;
  p.pp = pp;
  p.order = std::move(order);
  return p;
}

std::vector<uint32_t> members(const GroupTable& t, uint32_t inst) {
  return {t.members.begin() + t.member_offsets[inst], t.members.begin() + t.member_offsets[inst + 1]};
}

TEST(Placement, MegatronOrderTpInnermost) {
  Placement pl = Placement::make(par(8, 1, 4, 2), 8).value();
  EXPECT_EQ(pl.num_ranks(), 64);
  EXPECT_EQ(pl.order_string(), "tp-cp-dp-pp");
  EXPECT_EQ(pl.stride(Axis::kTp), 1);
  EXPECT_EQ(pl.stride(Axis::kDp), 8);
  EXPECT_EQ(pl.stride(Axis::kPp), 32);
  // rank 45 = tp 5 + 8*dp 1 + 32*pp 1
  EXPECT_EQ(pl.coords(45), (std::array<int, 4>{5, 0, 1, 1}));
  EXPECT_EQ(pl.node_of(45), 5);

  GroupTable tp = make_group_table(pl, {Axis::kTp}, "tp");
  ASSERT_EQ(tp.instances(), 8u);
  for (uint32_t i = 0; i < tp.instances(); ++i) {
    auto m = members(tp, i);
    ASSERT_EQ(m.size(), 8u);
    for (size_t k = 0; k < 8; ++k) EXPECT_EQ(m[k], i * 8 + k);   // contiguous, one node
    EXPECT_EQ(shape_of(tp, i, 8), (GroupShape{8, 8, 1}));
  }
  GroupTable dp = make_group_table(pl, {Axis::kDp}, "dp");
  ASSERT_EQ(dp.instances(), 16u);
  EXPECT_EQ(members(dp, 0), (std::vector<uint32_t>{0, 8, 16, 24}));
  EXPECT_EQ(members(dp, 1), (std::vector<uint32_t>{1, 9, 17, 25}));
  EXPECT_EQ(worst_shape(dp, 8), (GroupShape{4, 1, 4}));   // spans 4 nodes
  EXPECT_EQ(dp.instance_of_rank[32], 8u);                  // first instance of stage 1
  EXPECT_EQ(dp.instance_of_rank[33], 9u);
}

TEST(Placement, PipelinePeers) {
  Placement pl = Placement::make(par(2, 1, 4, 4), 8).value();
  PeerTable next = make_pp_peer_table(pl, +1, "pp_next");
  PeerTable prev = make_pp_peer_table(pl, -1, "pp_prev");
  EXPECT_EQ(next.name, "pp_next");
  ASSERT_EQ(next.peer_of_rank.size(), 32u);
  for (uint32_t r = 0; r < 32; ++r) {
    auto c = pl.coords(r);
    if (c[3] == 3) {
      EXPECT_EQ(next.peer_of_rank[r], -1);
    } else {
      auto d = c;
      d[3] += 1;
      EXPECT_EQ(next.peer_of_rank[r], static_cast<int32_t>(pl.rank_of(d)));
      EXPECT_EQ(prev.peer_of_rank[next.peer_of_rank[r]], static_cast<int32_t>(r));
    }
    if (c[3] == 0) {
      EXPECT_EQ(prev.peer_of_rank[r], -1);
    }
  }
  EXPECT_EQ(next.peer_of_rank[3], 11);   // stride of pp = tp*dp = 8
  PeerTable wrap = make_pp_peer_table(pl, +1, "wrap", /*wrap=*/true);
  EXPECT_EQ(wrap.peer_of_rank[24 + 3], 3);   // last stage -> first stage
}

TEST(Placement, CustomOrderDpInnermost) {
  // "dp-tp-cp-pp": dp varies fastest, so DP groups are contiguous and TP groups strided.
  Placement pl = Placement::make(par(2, 1, 4, 2, "dp-tp-cp-pp"), 8).value();
  EXPECT_EQ(pl.stride(Axis::kDp), 1);
  EXPECT_EQ(pl.stride(Axis::kTp), 4);
  EXPECT_EQ(pl.stride(Axis::kCp), 8);
  EXPECT_EQ(pl.stride(Axis::kPp), 8);
  GroupTable dp = make_group_table(pl, {Axis::kDp}, "dp");
  EXPECT_EQ(members(dp, 0), (std::vector<uint32_t>{0, 1, 2, 3}));
  GroupTable tp = make_group_table(pl, {Axis::kTp}, "tp");
  EXPECT_EQ(members(tp, 0), (std::vector<uint32_t>{0, 4}));
  EXPECT_EQ(members(tp, 1), (std::vector<uint32_t>{1, 5}));
  EXPECT_EQ(pl.coords(13), (std::array<int, 4>{1, 0, 1, 1}));
}

TEST(Placement, BadOrderIsAnError) {
  for (const char* bad : {"tp-dp-pp", "tp-cp-dp-pp-ep", "tp-tp-dp-pp", "tp-cp-dp-xx", "", "tp,cp,dp,pp"}) {
    auto r = Placement::make(par(1, 1, 1, 1, bad), 8);
    ASSERT_FALSE(r.ok()) << bad;
    const Error& e = r.status().errors().at(0);
    EXPECT_EQ(e.path, "/parallel/order");
    EXPECT_EQ(e.value, bad);
    EXPECT_NE(e.message.find("tp-cp-dp-pp"), std::string::npos);
  }
  auto r = Placement::make(par(0, 1, 1, 1, "bad"), 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().errors().size(), 3u) << r.status().to_string();
}

TEST(Placement, GroupTablesTp2Pp4Dp4) {
  Placement pl = Placement::make(par(2, 1, 4, 4), 8).value();
  EXPECT_EQ(pl.num_ranks(), 32);
  GroupTable tp = make_group_table(pl, {Axis::kTp}, "tp");
  GroupTable dp = make_group_table(pl, {Axis::kDp}, "dp");
  GroupTable pp = make_group_table(pl, {Axis::kPp}, "pp");
  GroupTable tpdp = make_group_table(pl, {Axis::kTp, Axis::kDp}, "tp_dp");
  GroupTable all = make_group_table(pl, {Axis::kTp, Axis::kCp, Axis::kDp, Axis::kPp}, "world");
  GroupTable none = make_group_table(pl, {}, "self");
  EXPECT_EQ(tp.instances(), 16u);
  EXPECT_EQ(dp.instances(), 8u);
  EXPECT_EQ(pp.instances(), 8u);
  EXPECT_EQ(tpdp.instances(), 4u);
  EXPECT_EQ(all.instances(), 1u);
  EXPECT_EQ(none.instances(), 32u);
  for (uint32_t i = 0; i < tp.instances(); ++i) EXPECT_EQ(tp.size_of(i), 2u);
  for (uint32_t i = 0; i < dp.instances(); ++i) EXPECT_EQ(dp.size_of(i), 4u);
  for (uint32_t i = 0; i < pp.instances(); ++i) EXPECT_EQ(pp.size_of(i), 4u);
  EXPECT_EQ(all.size_of(0), 32u);
  EXPECT_EQ(members(dp, 0), (std::vector<uint32_t>{0, 2, 4, 6}));
  EXPECT_EQ(members(pp, 0), (std::vector<uint32_t>{0, 8, 16, 24}));
  // Shapes with 8 GPUs per node: DP group 0 = ranks 0,2,4,6 on node 0; PP spans 4 nodes.
  EXPECT_EQ(worst_shape(tp, 8), (GroupShape{2, 2, 1}));
  EXPECT_EQ(worst_shape(dp, 8), (GroupShape{4, 4, 1}));
  EXPECT_EQ(worst_shape(pp, 8), (GroupShape{4, 1, 4}));
  EXPECT_EQ(worst_shape(tpdp, 8), (GroupShape{8, 8, 1}));
  EXPECT_EQ(worst_shape(all, 8), (GroupShape{32, 8, 4}));
  // 4 GPUs per node: a DP group (0,2,4,6) spans 2 nodes with 2 each.
  EXPECT_EQ(worst_shape(dp, 4), (GroupShape{4, 2, 2}));
}

TEST(Placement, WorstShapePrefersMostNodes) {
  // tp=3 on 4-GPU nodes: instances {0,1,2} (1 node), {3,4,5} (2 nodes: 3 | 4,5), ...
  Placement pl = Placement::make(par(3, 1, 4, 1), 4).value();
  GroupTable tp = make_group_table(pl, {Axis::kTp}, "tp");
  EXPECT_EQ(shape_of(tp, 0, 4), (GroupShape{3, 3, 1}));
  EXPECT_EQ(shape_of(tp, 1, 4), (GroupShape{3, 2, 2}));
  EXPECT_EQ(shape_of(tp, 2, 4), (GroupShape{3, 2, 2}));   // 6,7 | 8
  EXPECT_EQ(worst_shape(tp, 4), (GroupShape{3, 2, 2}));
}

TEST(Placement, RestrictedEmbeddingGroup) {
  Placement pl = Placement::make(par(2, 1, 2, 4), 8).value();
  GroupTable emb = make_restricted_group_table(pl, {Axis::kPp}, Axis::kPp, {0, 3}, "embedding");
  EXPECT_EQ(emb.instances(), 4u);
  EXPECT_EQ(members(emb, 0), (std::vector<uint32_t>{0, 12}));
  EXPECT_EQ(members(emb, 3), (std::vector<uint32_t>{3, 15}));
  EXPECT_EQ(emb.instance_of_rank[4], kNoDep);   // pp stage 1
  EXPECT_EQ(emb.instance_of_rank[12], 0u);
}

// Oracle (STYLE.md 7, layer 2): the O(ranks) builders against brute force on random layouts.
TEST(Placement, OracleRandomLayouts) {
  std::mt19937_64 rng(12345);
  const char* orders[] = {"tp-cp-dp-pp", "dp-tp-cp-pp", "pp-dp-cp-tp", "cp-pp-tp-dp"};
  const std::initializer_list<Axis> axis_sets[] = {
      {Axis::kTp}, {Axis::kDp}, {Axis::kPp}, {Axis::kCp}, {Axis::kDp, Axis::kCp},
      {Axis::kTp, Axis::kPp}, {Axis::kTp, Axis::kCp, Axis::kDp}, {}};
  for (int trial = 0; trial < 40; ++trial) {
    auto pick = [&](int hi) { return 1 + static_cast<int>(rng() % static_cast<uint64_t>(hi)); };
    ParallelSpec p = par(pick(4), pick(3), pick(5), pick(4), orders[rng() % 4]);
    const int gpn = pick(8);
    Placement pl = Placement::make(p, gpn).value();
    ASSERT_EQ(pl.num_ranks(), p.tp * p.cp * p.dp * p.pp);
    std::set<std::array<int, 4>> seen;
    for (uint32_t r = 0; r < static_cast<uint32_t>(pl.num_ranks()); ++r) {
      auto c = pl.coords(r);
      ASSERT_EQ(pl.rank_of(c), r);
      seen.insert(c);
      ASSERT_EQ(pl.node_of(r), static_cast<int>(r) / gpn);
    }
    ASSERT_EQ(seen.size(), static_cast<size_t>(pl.num_ranks()));   // a bijection
    for (const auto& axes : axis_sets) {
      GroupTable t = make_group_table(pl, axes, "g");
      bool in[4] = {};
      for (Axis a : axes) in[static_cast<int>(a)] = true;
      // Brute force: r and s share an instance iff their coordinates agree off `axes`.
      for (uint32_t r = 0; r < static_cast<uint32_t>(pl.num_ranks()); ++r) {
        for (uint32_t s = 0; s < static_cast<uint32_t>(pl.num_ranks()); ++s) {
          bool same = true;
          for (int a = 0; a < 4; ++a) {
            if (!in[a] && pl.coords(r)[a] != pl.coords(s)[a]) same = false;
          }
          ASSERT_EQ(same, t.instance_of_rank[r] == t.instance_of_rank[s]);
        }
      }
      // CSR consistency, ascending members, instances ordered by smallest member.
      uint32_t prev_first = 0;
      for (uint32_t i = 0; i < t.instances(); ++i) {
        auto m = members(t, i);
        ASSERT_FALSE(m.empty());
        ASSERT_TRUE(std::is_sorted(m.begin(), m.end()));
        for (uint32_t r : m) ASSERT_EQ(t.instance_of_rank[r], i);
        if (i > 0) {
          ASSERT_GT(m[0], prev_first);
        }
        prev_first = m[0];
        // shape_of against a map of node counts.
        std::map<int, int> per;
        for (uint32_t r : m) per[pl.node_of(r)]++;
        int mx = 0;
        for (auto& [n, k] : per) mx = std::max(mx, k);
        ASSERT_EQ(shape_of(t, i, gpn), (GroupShape{static_cast<int>(m.size()), mx, static_cast<int>(per.size())}));
      }
      ASSERT_EQ(t.members.size(), static_cast<size_t>(pl.num_ranks()));
    }
  }
}

TEST(Placement, KeyedTablesOracle) {
  // make_keyed_group_table against brute force: random keys (some ranks not members).
  std::mt19937_64 rng(777);
  for (int trial = 0; trial < 30; ++trial) {
    auto pick = [&](int hi) { return 1 + static_cast<int>(rng() % static_cast<uint64_t>(hi)); };
    Placement pl = Placement::make(par(pick(4), pick(3), pick(5), pick(4)), pick(8)).value();
    const uint32_t n = static_cast<uint32_t>(pl.num_ranks());
    const uint32_t num_keys = static_cast<uint32_t>(pick(6));
    std::vector<uint32_t> key(n);
    for (uint32_t& k : key) k = rng() % 4 == 0 ? kNoDep : static_cast<uint32_t>(rng() % num_keys);
    GroupTable t = make_keyed_group_table(pl, "k", num_keys, [&](uint32_t r, const std::array<int, 4>& c) {
      EXPECT_EQ(c, pl.coords(r));
      return key[r];
    });
    std::map<uint32_t, std::vector<uint32_t>> by;   // key -> members ascending
    for (uint32_t r = 0; r < n; ++r)
      if (key[r] != kNoDep) by[key[r]].push_back(r);
    std::vector<std::vector<uint32_t>> want;
    for (auto& [k, v] : by) want.push_back(v);
    std::sort(want.begin(), want.end());   // by lowest member
    ASSERT_EQ(t.instances(), want.size());
    for (uint32_t i = 0; i < t.instances(); ++i) ASSERT_EQ(members(t, i), want[i]);
    for (uint32_t r = 0; r < n; ++r) {
      if (key[r] == kNoDep) ASSERT_EQ(t.instance_of_rank[r], kNoDep);
      else ASSERT_EQ(members(t, t.instance_of_rank[r]), by[key[r]]);
    }
  }
}

TEST(Placement, LargeLayoutIsLinear) {
  // 16384 ranks: tp8 cp1 dp256 pp8.
  Placement pl = Placement::make(par(8, 1, 256, 8), 8).value();
  GroupTable dp = make_group_table(pl, {Axis::kDp}, "dp");
  EXPECT_EQ(dp.instances(), 64u);
  EXPECT_EQ(worst_shape(dp, 8), (GroupShape{256, 1, 256}));
  GroupTable tp = make_group_table(pl, {Axis::kTp}, "tp");
  EXPECT_EQ(worst_shape(tp, 8), (GroupShape{8, 8, 1}));
}

}  // namespace
}  // namespace trainsim
