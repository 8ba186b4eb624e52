// Dynamic expert placement (FlexMoE-style what-if; models/moe.h place_experts, compiler.h):
// the greedy LPT placement in closed form on a known skewed histogram, no change on balanced
// routing, the migration collective in the plan, the report's gain, and the loader's errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <algorithm>
#include <numeric>
#include <random>
#include <string>

#include "models/compiler.h"
#include "models/memory.h"
#include "models/moe.h"
#include "scenarios/loader.h"
#include "scenarios/predict.h"

#include "tests/models/moe_fixtures.h"

namespace trainsim {
namespace {

// 8 experts on 4 EP ranks (2 home slots each) + 1 replica slot per rank; expert 0 hot.
//   copies: the 4 extra copies go to expert 0 (100/1 -> 50 -> 33.3 -> 25, then it has ep = 4
//   copies) and then to expert 1 (ties at 10: the lower id), shares 25 x4, 10 x6, 5 x2;
//   LPT: 25 on ranks 0-3; 10s on ranks 0, 1, 2, 3, 0, 1 -> 45 45 35 35; 5s on ranks 2, 3.
//   Busiest rank 45 (static: experts 0 and 1 on rank 0, 110).
//   Bins {e0 e2 e6} {e0 e3 e7} {e0 e4 e1} {e0 e5 e1}; homes e0 e1 -> 0, e2 e3 -> 1, e4 e5 -> 2,
//   e6 e7 -> 3. The bins go to ranks keeping the most experts home: a bin with e0 and e1 on
//   rank 0 (2), the other e1 bin on rank 2 (e4 or e5), the first two on ranks 1 and 3: 5 experts
//   keep a home copy, 3 move (in bin order 0-3 it was 2 kept, 5 moved).
TEST(MoePlacement, LptClosedFormOnSkewedHistogram) {
  const std::vector<int64_t> loads = {100, 10, 10, 10, 10, 10, 10, 10};
  const ExpertPlacement p = place_experts(loads, 4, 1);
  ASSERT_FALSE(p.is_static);
  std::vector<int64_t> rows = rank_rows(p, loads, 4);
  std::sort(rows.begin(), rows.end());
  EXPECT_EQ(rows, (std::vector<int64_t>{40, 40, 45, 45}));
  EXPECT_EQ(max_rank_rows(p, loads, 4), 45);
  ExpertPlacement stat = place_experts(std::vector<int64_t>(8, 10), 4, 1);
  ASSERT_TRUE(stat.is_static);
  EXPECT_EQ(max_rank_rows(stat, loads, 4), 110);
  std::vector<int> r0 = p.ranks[0];
  std::sort(r0.begin(), r0.end());
  EXPECT_EQ(r0, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(p.ranks[1], (std::vector<int>{0, 2}));   // its bins 2 and 3: home rank 0, and rank 2
  EXPECT_EQ(p.replicated, 4);
  EXPECT_EQ(p.moved, 3);
  // Token remainders of a replicated expert go one each to its first copies (the bin of e0's
  // first copy, bin 0, holds 46).
  std::vector<int64_t> rr = rank_rows(p, {101, 10, 10, 10, 10, 10, 10, 10}, 4);
  EXPECT_EQ(rr[p.ranks[0][0]], 46);
  std::sort(rr.begin(), rr.end());
  EXPECT_EQ(rr, (std::vector<int64_t>{40, 40, 45, 46}));
  // Without replica slots every rank holds exactly 2 experts: LPT puts 100 on rank 0 and the
  // last 10 lands in its free slot (110, no better than static), so the static layout is kept.
  const ExpertPlacement q = place_experts(loads, 4, 0);
  EXPECT_TRUE(q.is_static);
  EXPECT_EQ(max_rank_rows(q, loads, 4), 110);
  // A load that moving alone can improve: {60, 50, 10, 0, ...} with 2 slots per rank (static
  // rank 0 = 110); LPT: 60 -> r0, 50 -> r1, 10 -> r2, zeros fill r3, r2, r3, r0, r1: busiest 60.
  const std::vector<int64_t> two = {60, 50, 10, 0, 0, 0, 0, 0};
  const ExpertPlacement q2 = place_experts(two, 4, 0);
  ASSERT_FALSE(q2.is_static);
  EXPECT_EQ(max_rank_rows(q2, two, 4), 60);
  EXPECT_EQ(q2.replicated, 0);
  EXPECT_GT(q2.moved, 0);
}

// Oracle: on random loads the placement's moves are the fewest of every way to give its bins to
// the ranks (all 24 permutations of 4 ranks), its rank loads those of the bins, and no expert
// has two copies on one rank.
TEST(MoePlacement, BinsGoToRanksWithTheFewestMoves) {
  std::mt19937_64 rng(42);
  int dynamic = 0;
  for (int iter = 0; iter < 400; ++iter) {
    const int ep = 4, E = 4 * (1 + static_cast<int>(rng() % 3)), local = E / ep;
    const int replicas = static_cast<int>(rng() % 3);
    std::vector<int64_t> loads(E);
    for (auto& x : loads) x = static_cast<int64_t>(rng() % (rng() % 4 == 0 ? 1000 : 50));
    const ExpertPlacement p = place_experts(loads, ep, replicas);
    if (p.is_static) continue;
    ++dynamic;
    auto moved_under = [&](const std::vector<int>& perm) {
      int moved = 0;
      for (int e = 0; e < E; ++e) {
        bool home = false;
        for (int r : p.ranks[e]) home |= perm[r] == e / local;
        moved += !home;
      }
      return moved;
    };
    std::vector<int> perm = {0, 1, 2, 3};
    int best = E + 1;
    do best = std::min(best, moved_under(perm));
    while (std::next_permutation(perm.begin(), perm.end()));
    EXPECT_EQ(p.moved, best) << iter;
    for (int e = 0; e < E; ++e) {
      std::vector<int> rs = p.ranks[e];
      std::sort(rs.begin(), rs.end());
      EXPECT_TRUE(std::adjacent_find(rs.begin(), rs.end()) == rs.end()) << iter << " expert " << e;
    }
  }
  EXPECT_GT(dynamic, 100);
}

TEST(MoePlacement, BalancedLoadsKeepStaticLayout) {
  for (int replicas : {0, 1, 3}) {
    const ExpertPlacement p = place_experts(std::vector<int64_t>(16, 1000), 4, replicas);
    EXPECT_TRUE(p.is_static) << replicas;
    EXPECT_EQ(p.moved + p.replicated, 0);
    EXPECT_EQ(max_rank_rows(p, std::vector<int64_t>(16, 1000), 4), 4000);
  }
}

Scenario make(MoeRouting routing, MoePlacement placement) {
  Scenario s = testing::moe_scenario(testing::small_moe(), 1, 1, 8, 4, 4, 1024);
  s.name = "moe-placement";
  s.training.moe.kind = routing;
  s.training.moe.histogram = {8, 1, 1, 1, 1, 1, 1, 1};
  s.training.moe.placement = placement;
  return s;
}

int count_ops(const CompiledPlan& c, const std::string& name) {
  int n = 0;
  for (const Task& t : c.plan.programs[0].tasks) n += c.plan.ops[t.op].name == name;
  return n;
}

TEST(MoePlacement, BalancedRoutingChangesNothing) {
  const Scenario st = make(MoeRouting::kBalanced, MoePlacement::kStatic);
  const Scenario dy = make(MoeRouting::kBalanced, MoePlacement::kDynamic);
  auto a = compile_plan(st.model, st.training, st.parallel, 8);
  auto b = compile_plan(dy.model, dy.training, dy.parallel, 8);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(count_ops(b.value(), "ep.placement.migration.alltoall"), 0);
  EXPECT_DOUBLE_EQ(b->moe.imbalance_mean, a->moe.imbalance_mean);
  EXPECT_EQ(b->moe.migration_bytes, 0);
  auto pa = predict(st, PredictOptions{});
  auto pb = predict(dy, PredictOptions{});
  ASSERT_TRUE(pa.ok() && pb.ok());
  // Replica slots are reserved (memory), but the step is the same.
  EXPECT_EQ(pa->step_time.count_ps(), pb->step_time.count_ps());
  EXPECT_EQ(pb->moe.placement_gain.count_ps(), 0);
}

// A skewed histogram (expert 0 gets 8/15 of the copies): every draw's busiest rank under the
// placement chosen from the layer's observed draw (micro-batch -1) equals place_experts +
// max_rank_rows on that draw, the plan carries one migration collective per MoE layer (last
// micro-batch only), and dynamic placement beats static net of it.
TEST(MoePlacement, SkewedHistogramDynamicBeatsStatic) {
  const Scenario dy = make(MoeRouting::kHistogram, MoePlacement::kDynamic);
  auto b = compile_plan(dy.model, dy.training, dy.parallel, 8);
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  const int64_t tm = 1024;
  const int pod = b->moe.straggler_pod;   // the program follows the straggling pod's draws
  double mean = 0, mean_static = 0;
  for (int l = 0; l < 4; ++l) {
    const MoeDraw seen = draw_moe_layer(dy.training.moe, 8, 2, 4, tm, 0, l, -1, pod);
    const ExpertPlacement p = place_experts(seen.expert_rows, 4, 1);
    for (int mi = 0; mi < 4; ++mi) {
      const MoeDraw d = draw_moe_layer(dy.training.moe, 8, 2, 4, tm, 0, l, mi, pod);
      mean += static_cast<double>(max_rank_rows(p, d.expert_rows, 4)) * 4 / d.routed;
      mean_static += d.imbalance;
    }
  }
  EXPECT_DOUBLE_EQ(b->moe.imbalance_mean, mean / 16);
  EXPECT_DOUBLE_EQ(b->moe.imbalance_static_mean, mean_static / 16);
  EXPECT_LT(b->moe.imbalance_mean, 0.6 * b->moe.imbalance_static_mean);
  EXPECT_EQ(count_ops(b.value(), "ep.placement.migration.alltoall"), 4);
  EXPECT_GT(b->moe.migration_bytes, 0);
  PredictOptions o;
  auto pd = predict(dy, o);
  ASSERT_TRUE(pd.ok()) << pd.status().to_string();
  EXPECT_TRUE(pd->moe.dynamic);
  EXPECT_GT(pd->moe.placement_gain.count_ps(), 0);
  EXPECT_EQ(pd->moe.static_step_time.count_ps() - pd->step_time.count_ps(), pd->moe.placement_gain.count_ps());
  EXPECT_GT(pd->moe.migration_time.count_ps(), 0);
  // Rebalancing every step costs more than every 1000 steps.
  Scenario often = dy;
  often.training.moe.rebalance_every = 1;
  auto c = compile_plan(often.model, often.training, often.parallel, 8);
  ASSERT_TRUE(c.ok());
  EXPECT_GT(c->moe.migration_bytes, b->moe.migration_bytes);
  // Fast mode equals full mode.
  o.fast = true;
  auto pf = predict(dy, o);
  ASSERT_TRUE(pf.ok());
  EXPECT_EQ(pf->step_time.count_ps(), pd->step_time.count_ps());
}

TEST(MoePlacement, LoaderFieldsAndErrors) {
  nlohmann::json d = nlohmann::json::parse(R"({
    "name": "t", "model": {"name": "mixtral-8x7b"},
    "training": {"seq_len": 4096, "global_batch": 64, "micro_batch": 1},
    "cluster": {"gpu": "H100-SXM-80GB", "gpus": 64, "gpus_per_node": 8},
    "parallel": {"tp": 1, "pp": 1, "dp": 64, "ep": 8},
    "moe": {"routing": "zipf", "skew": 1.0, "placement": "dynamic", "rebalance_every": 50, "replicas": 2}
  })");
  auto r = load_scenario_text(d.dump(), "test.json", {});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->training.moe.placement, MoePlacement::kDynamic);
  EXPECT_EQ(r->training.moe.rebalance_every, 50);
  EXPECT_EQ(r->training.moe.replicas, 2);
  d["moe"].erase("rebalance_every");
  d["moe"].erase("replicas");
  auto r2 = load_scenario_text(d.dump(), "test.json", {});
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->training.moe.rebalance_every, 100);
  EXPECT_EQ(r2->training.moe.replicas, 1);
  d["moe"]["placement"] = "flexible";
  auto r3 = load_scenario_text(d.dump(), "test.json", {});
  ASSERT_FALSE(r3.ok());
  EXPECT_NE(r3.status().to_string().find("/moe/placement"), std::string::npos);
  EXPECT_NE(r3.status().to_string().find("\"dynamic\""), std::string::npos);
  d["moe"]["placement"] = "dynamic";
  d["moe"]["rebalance_every"] = 0;
  auto r4 = load_scenario_text(d.dump(), "test.json", {});
  ASSERT_FALSE(r4.ok());
  EXPECT_NE(r4.status().to_string().find("/moe/rebalance_every"), std::string::npos) << r4.status().to_string();
}

}  // namespace
}  // namespace trainsim
