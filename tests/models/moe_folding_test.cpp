// MoE parallel folding (models/spec.h EpLayout; Liu et al. 2025, Megatron-Core's expert
// RankGenerator): the stage's tp*cp*dp ranks, in rank order, are renumbered
// i = etp_idx + etp*(ep_idx + ep*edp_idx); an EP group is the ep ranks of equal etp_idx and
// edp_idx, an expert-DP group the edp ranks of equal etp_idx and ep_idx. Closed-form checks of
// the groups and what follows from them (node span, all-to-all time, expert-DP size, expert
// memory, pods and slices), the layouts that existed before folding unchanged, fast == full on
// random folded configs, and the errors for configurations that do not fold.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <random>
#include <string>
#include <vector>

#include "calibrate/cost_model.h"
#include "models/compiler.h"
#include "models/memory.h"
#include "models/moe.h"
#include "models/restrict.h"
#include "scenarios/predict.h"
#include "topologies/placement.h"

#include "tests/models/moe_fixtures.h"

namespace trainsim {
namespace {

using testing::small_moe;

Scenario folded(const ModelSpec& m, int tp, int pp, int dp, int ep, int etp, int micro_batches = 2,
                int seq = 1024) {
  Scenario s = testing::moe_scenario(m, tp, pp, dp, ep, micro_batches, seq);
  s.parallel.etp = etp;
  s.parallel.ep_layout = EpLayout::kFolded;
  return s;
}

std::vector<std::vector<uint32_t>> instances(const GroupTable& g) {
  std::vector<std::vector<uint32_t>> out;
  for (uint32_t i = 0; i < g.instances(); ++i)
    out.emplace_back(g.members.begin() + g.member_offsets[i], g.members.begin() + g.member_offsets[i + 1]);
  return out;
}

std::string compile_error(const Scenario& s) {
  auto c = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
  return c.ok() ? std::string() : c.status().to_string();
}

using testing::run;

using Groups = std::vector<std::vector<uint32_t>>;

// ---- closed-form groups ----------------------------------------------------------------------

// tp=4, dp=4 (16 GPUs, 2 nodes of 8), etp=1, ep=8: the point of folding. Positions = ranks, so
// EP groups are ranks 0-7 and 8-15 (4 TP ranks x 2 DP ranks, one node each), expert-DP groups
// {j, j+8} (edp = 16/8 = 2). ep=8 does not divide dp=4: "auto" folds too.
TEST(MoeFolding, EpSpansTpRanksInsideANode) {
  Scenario s = folded(small_moe(8, 2), 4, 1, 4, 8, 1);
  const CompiledPlan c = testing::compile_checked(s);
  EXPECT_EQ(instances(c.plan.groups[kGroupEp]), (Groups{{0, 1, 2, 3, 4, 5, 6, 7}, {8, 9, 10, 11, 12, 13, 14, 15}}));
  Groups edp;
  for (uint32_t j = 0; j < 8; ++j) edp.push_back({j, j + 8});
  EXPECT_EQ(instances(c.plan.groups[kGroupExpertDp]), edp);
  EXPECT_EQ(instances(c.plan.groups[kGroupExpertDpGather]), edp);
  EXPECT_EQ(worst_shape(c.plan.groups[kGroupEp], 8), (GroupShape{8, 8, 1}));
  // Pods: blocks {0-7}, {8-15} each join two TP groups (DP replicas); one EP block per pod.
  EXPECT_EQ(c.moe.pods, 2);
  EXPECT_EQ(c.moe.slices, 1);
  s.parallel.ep_layout = EpLayout::kAuto;
  EXPECT_EQ(instances(testing::compile_checked(s).plan.groups[kGroupEp]), instances(c.plan.groups[kGroupEp]));
}

// The same job with EP along DP (tp=4, etp=1, ep=4): an EP group is one TP rank of each of
// the 4 DP replicas, {t, t+4, t+8, t+12}: two nodes, two members on each. Folded ep=4: the
// 4 TP ranks of one replica, one node.
TEST(MoeFolding, NodeSpanAlongDpVersusFolded) {
  Scenario s = folded(small_moe(8, 2), 4, 1, 4, 4, 1);
  s.parallel.ep_layout = EpLayout::kDp;
  const CompiledPlan d = testing::compile_checked(s);
  EXPECT_EQ(instances(d.plan.groups[kGroupEp]),
            (Groups{{0, 4, 8, 12}, {1, 5, 9, 13}, {2, 6, 10, 14}, {3, 7, 11, 15}}));
  EXPECT_EQ(worst_shape(d.plan.groups[kGroupEp], 8), (GroupShape{4, 2, 2}));
  s.parallel.ep_layout = EpLayout::kFolded;
  const CompiledPlan f = testing::compile_checked(s);
  EXPECT_EQ(instances(f.plan.groups[kGroupEp]), (Groups{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}, {12, 13, 14, 15}}));
  EXPECT_EQ(worst_shape(f.plan.groups[kGroupEp], 8), (GroupShape{4, 4, 1}));
  // Expert-DP: both have edp = 16 / 4 = 4 members (along DP: the 4 TP ranks of one replica, which
  // hold the same whole experts; folded: {j, j+4, j+8, j+12}).
  EXPECT_EQ(d.plan.groups[kGroupExpertDp].size_of(0), 4u);
  EXPECT_EQ(f.plan.groups[kGroupExpertDp].size_of(0), 4u);
  // Folded pods: each replica's TP group is a whole EP block; 4 pods of one slice. Along DP:
  // one pod (dp/ep = 1) of tp = 4 slices.
  EXPECT_EQ(f.moe.pods, 4);
  EXPECT_EQ(f.moe.slices, 1);
  EXPECT_EQ(d.moe.pods, 1);
  EXPECT_EQ(d.moe.slices, 4);
}

// etp=2 inside tp=4, ep=4: positions i = a + 2*(j + 4*b); EP group (a, b) = {a + 2j + 8b},
// expert-DP (a, j) = {a + 2j, a + 2j + 8}. Two stages (pp=2): stage 1 is ranks 16-31.
TEST(MoeFolding, ExpertTensorParallelInsideTp) {
  Scenario s = folded(small_moe(8, 2), 4, 2, 4, 4, 2);
  const CompiledPlan c = testing::compile_checked(s);
  Groups ep, edp;
  for (uint32_t base : {0u, 16u})
    for (uint32_t b = 0; b < 2; ++b)
      for (uint32_t a = 0; a < 2; ++a) ep.push_back({base + a + 8 * b, base + a + 2 + 8 * b, base + a + 4 + 8 * b,
                                                     base + a + 6 + 8 * b});
  for (uint32_t base : {0u, 16u})
    for (uint32_t i = 0; i < 8; ++i) edp.push_back({base + i, base + i + 8});
  std::sort(ep.begin(), ep.end());
  EXPECT_EQ(instances(c.plan.groups[kGroupEp]), ep);
  EXPECT_EQ(instances(c.plan.groups[kGroupExpertDp]), edp);
  EXPECT_EQ(worst_shape(c.plan.groups[kGroupEp], 8), (GroupShape{4, 4, 1}));
  EXPECT_EQ(c.moe.pods, 2);
  EXPECT_EQ(c.moe.slices, 1);
}

// A chain: tp*cp = 4 ranks per replica, EP blocks of 6 (etp=1, ep=6, 12 experts), dp=3: blocks
// {0-5}, {6-11} both touch replica 1 (ranks 4-7), so the stage is one pod of 2 slices. Block 1
// spans ranks 6-7 (node 0) and 8-11 (node 1): worst shape 6 members, 4 per node, 2 nodes.
TEST(MoeFolding, BlocksStraddlingReplicasAndNodes) {
  Scenario s = folded(small_moe(12, 2), 4, 1, 3, 6, 1);
  const CompiledPlan c = testing::compile_checked(s);
  EXPECT_EQ(instances(c.plan.groups[kGroupEp]), (Groups{{0, 1, 2, 3, 4, 5}, {6, 7, 8, 9, 10, 11}}));
  EXPECT_EQ(shape_of(c.plan.groups[kGroupEp], 0, 8), (GroupShape{6, 6, 1}));
  EXPECT_EQ(worst_shape(c.plan.groups[kGroupEp], 8), (GroupShape{6, 4, 2}));
  EXPECT_EQ(c.moe.pods, 1);
  EXPECT_EQ(c.moe.slices, 2);
}

// Context parallelism folds into EP too (Megatron's expert order has no cp): tp=2, cp=2, dp=2,
// etp=1, ep=4: positions tp + 2*(cp + 2*dp) = ranks; EP groups are the 4 tp x cp ranks of one
// replica.
TEST(MoeFolding, CpFoldsIntoEp) {
  Scenario s = folded(small_moe(8, 2), 2, 1, 2, 4, 1, 2, 2048);
  s.parallel.cp = 2;
  s.cluster.gpus = 8;
  s.cluster.gpus_per_node = 8;
  const CompiledPlan c = testing::compile_checked(s);
  EXPECT_EQ(instances(c.plan.groups[kGroupEp]), (Groups{{0, 1, 2, 3}, {4, 5, 6, 7}}));
  EXPECT_EQ(instances(c.plan.groups[kGroupExpertDp]), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
}

// ---- all-to-all bytes and time ----------------------------------------------------------------

const OpDesc* find_op(const CompiledPlan& c, const std::string& name) {
  for (const Task& t : c.plan.programs[0].tasks)
    if (c.plan.ops[t.op].name == name) return &c.plan.ops[t.op];
  return nullptr;
}

// Balanced routing: each rank routes Tm = T/(tp/etp) tokens, the busiest rank gets Tm*k copies,
// so the dispatch carries 2 B x h x Tm x k per rank. tp=4, etp=1, T=1024: Tm=256, k=2, h=1024:
// 1 MiB. Its time is the direct all-to-all of sim/collectives.cpp on the EP group's worst shape:
//   one node (folded, {8, 8, 1}):   7/8 S / B_nvlink + 7 alpha_nvlink
//   two nodes (EP along DP at tp=4, etp=1, ep=4, {4, 2, 2}): max(1/4 S / B_nvlink, 2/4 S / B_nic)
//                                                           + 3 alpha_nic
TEST(MoeFolding, AllToAllInsideOneNodeVersusAcrossNodes) {
  const Scenario s = folded(small_moe(8, 2), 4, 1, 4, 8, 1);
  const CompiledPlan c = testing::compile_checked(s);
  const OpDesc* a2a = find_op(c, "ep.dispatch.alltoall");
  ASSERT_NE(a2a, nullptr);
  EXPECT_EQ(a2a->bytes.count(), 2 * 1024 * 256 * 2);
  auto cm = make_default_cost_model(s.cluster);
  ASSERT_TRUE(cm.ok()) << cm.status().to_string();
  const auto* dcm = dynamic_cast<const DefaultCostModel*>(cm.value().get());
  ASSERT_NE(dcm, nullptr);
  const LinkParams l = dcm->links(CollKind::kAllToAll);
  const double S = static_cast<double>(a2a->bytes.count());
  auto ps = [](double bytes, Bandwidth bw) { return transfer_time(Bytes{static_cast<int64_t>(bytes)}, bw).count_ps(); };
  const Time intra = cm.value()->collective(*a2a, worst_shape(c.plan.groups[kGroupEp], 8)).time;
  EXPECT_NEAR(static_cast<double>(intra.count_ps()), static_cast<double>(ps(7.0 / 8 * S, l.intra_bw) + 7 * l.intra_alpha.count_ps()),
              2.0);
  Scenario d = s;
  d.parallel.ep = 4;
  d.parallel.ep_layout = EpLayout::kDp;
  const CompiledPlan dc = testing::compile_checked(d);
  const OpDesc* da2a = find_op(dc, "ep.dispatch.alltoall");
  ASSERT_NE(da2a, nullptr);
  EXPECT_EQ(da2a->bytes.count(), a2a->bytes.count());   // same tokens per rank, same bytes
  const GroupShape two = worst_shape(dc.plan.groups[kGroupEp], 8);
  ASSERT_EQ(two, (GroupShape{4, 2, 2}));
  const Time inter = cm.value()->collective(*da2a, two).time;
  const double want = std::max(ps(1.0 / 4 * S, l.intra_bw), ps(2.0 / 4 * S, l.inter_bw)) + 3 * l.inter_alpha.count_ps();
  EXPECT_NEAR(static_cast<double>(inter.count_ps()), want, 2.0);
  EXPECT_GT(inter, intra);
}

// Megatron-Core's alltoall dispatcher: every rank routes its own T/tp tokens (T = 1024, tp = 4:
// 256, x top-2 = 512 copies, bf16 x h = 1024: 1 MiB all-to-all whatever etp), and an expert-TP
// group all-gathers the rows its members received (etp x 512) before the expert GEMMs and
// reduce-scatters their output after; its members are etp consecutive stage positions, across TP
// groups when etp > tp. Balanced routing: a group's rows are its even share.
TEST(MoeFolding, ExpertTpGathersItsMembersRows) {
  for (int etp : {1, 2, 4, 8}) {
    const CompiledPlan c = testing::compile_checked(folded(small_moe(8, 2), 4, 1, 4, 2, etp));
    const std::string what = "etp=" + std::to_string(etp);
    const OpDesc* a2a = find_op(c, "ep.dispatch.alltoall");
    ASSERT_NE(a2a, nullptr) << what;
    EXPECT_EQ(a2a->bytes.count(), 2 * 1024 * 256 * 2) << what;
    const OpDesc* ag = find_op(c, "ep.etp.allgather");
    const OpDesc* rs = find_op(c, "ep.etp.reducescatter");
    const OpDesc* bag = find_op(c, "ep.etp.bwd.allgather");
    const OpDesc* brs = find_op(c, "ep.etp.bwd.reducescatter");
    if (etp == 1) {
      EXPECT_TRUE(ag == nullptr && rs == nullptr && bag == nullptr && brs == nullptr) << what;
      continue;
    }
    ASSERT_TRUE(ag != nullptr && rs != nullptr && bag != nullptr && brs != nullptr) << what;
    for (const OpDesc* o : {ag, rs, bag, brs}) EXPECT_EQ(o->bytes.count(), 2 * 1024 * int64_t{etp} * 512) << what;
    EXPECT_EQ(ag->coll, CollKind::kAllGather);
    EXPECT_EQ(rs->coll, CollKind::kReduceScatter);
    // The expert GEMMs run on all the group's rows: etp x 512 over 4 local experts.
    const OpDesc* fc1 = find_op(c, "moe.expert.fc1.fwd");
    ASSERT_NE(fc1, nullptr);
    EXPECT_EQ(fc1->m, int64_t{etp} * 512 / 4) << what;
    // The expert-TP group: etp consecutive stage positions (tp innermost: ranks), the last
    // group of the plan.
    const GroupTable& g = c.plan.groups.back();
    EXPECT_EQ(g.name, "expert-tp");
    EXPECT_EQ(ag->group, c.plan.groups.size() - 1);
    Groups want;
    for (uint32_t b = 0; b < 16u / etp; ++b) {
      want.emplace_back();
      for (uint32_t i = 0; i < static_cast<uint32_t>(etp); ++i) want.back().push_back(b * etp + i);
    }
    EXPECT_EQ(instances(g), want) << what;
  }
}

// The same with tp not innermost: the expert-TP group is still etp consecutive positions of the
// stage (rank order), here two DP ranks of one TP coordinate.
TEST(MoeFolding, ExpertTpAcrossTpGroupsAnyOrder) {
  Scenario s = folded(small_moe(8, 2), 2, 1, 4, 2, 2);
  s.parallel.order = "dp-tp-cp-pp";
  const CompiledPlan c = testing::compile_checked(s);
  const GroupTable& g = c.plan.groups.back();
  ASSERT_EQ(g.name, "expert-tp");
  EXPECT_EQ(instances(g), (Groups{{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
  // rank = dp + 4 tp: a group holds two DP ranks at one tp coordinate, not a TP group.
  EXPECT_NE(instances(g), instances(c.plan.groups[kGroupTp]));
  auto p = predict(s, PredictOptions{});
  ASSERT_TRUE(p.ok()) << p.status().to_string();
}

// ---- expert-DP size and expert memory ----------------------------------------------------------

// Per rank: E/ep experts of expert_params/etp parameters each, per MoE layer; zero 1 shards
// their Adam states (12 B each) over edp = tp*cp*dp/(etp*ep), the dense states over dp.
TEST(MoeFolding, ExpertDpSizeAndExpertMemory) {
  const ModelSpec m = small_moe(8, 2);
  for (auto [tp, dp, ep, etp] : std::vector<std::array<int, 4>>{{4, 4, 8, 1}, {4, 4, 4, 2}, {4, 2, 2, 4}, {2, 8, 4, 2}}) {
    Scenario s = folded(m, tp, 1, dp, ep, etp);
    s.parallel.zero = 1;
    const CompiledPlan c = testing::compile_checked(s);
    const int edp = tp * dp / (etp * ep);
    const std::string what = "tp=" + std::to_string(tp) + " dp=" + std::to_string(dp) + " ep=" + std::to_string(ep) +
                             " etp=" + std::to_string(etp);
    EXPECT_EQ(expert_dp_size(s.parallel), edp) << what;
    EXPECT_EQ(c.plan.groups[kGroupExpertDp].size_of(0), static_cast<uint32_t>(edp)) << what;
    const int64_t expert_local = 4 * int64_t{8 / ep} * ((expert_params(m) + etp - 1) / etp);
    const int64_t dense = c.stages[0].params_local - expert_local;
    EXPECT_EQ(c.plan.programs[0].mem.params.count(), 2 * (dense + expert_local)) << what;
    EXPECT_EQ(c.plan.programs[0].mem.optimizer.count(), (12 * dense + dp - 1) / dp + (12 * expert_local + edp - 1) / edp)
        << what;
  }
}

// ---- the layouts that existed before folding ---------------------------------------------------

// etp = tp (cp = 1) and tp = 1 (etp = 1): the folded groups are EP along DP's, and so is the whole
// prediction, routing draws included. etp = 1 < tp with ep | dp keeps EP along DP under "auto".
TEST(MoeFolding, DegenerateCasesEqualEpAlongDp) {
  struct Case { int tp, pp, dp, ep, etp; };
  for (const Case& k : {Case{2, 1, 4, 2, 2}, Case{4, 2, 2, 2, 4}, Case{1, 2, 8, 4, 1}, Case{1, 1, 8, 8, 1}}) {
    Scenario a = folded(small_moe(8, 2), k.tp, k.pp, k.dp, k.ep, k.etp, 4);
    a.training.moe.kind = MoeRouting::kZipf;
    a.training.moe.skew = 1.2;
    a.training.moe.seed = 7;
    Scenario b = a;
    b.parallel.ep_layout = EpLayout::kDp;
    const std::string what = "tp=" + std::to_string(k.tp) + " dp=" + std::to_string(k.dp) + " ep=" +
                             std::to_string(k.ep) + " etp=" + std::to_string(k.etp);
    const CompiledPlan ca = testing::compile_checked(a), cb = testing::compile_checked(b);
    for (uint8_t g : {kGroupEp, kGroupExpertDp, kGroupExpertDpGather})
      EXPECT_EQ(instances(ca.plan.groups[g]), instances(cb.plan.groups[g])) << what;
    EXPECT_EQ(ca.moe.pods, cb.moe.pods) << what;
    EXPECT_EQ(ca.moe.slices, cb.moe.slices) << what;
    const Prediction pa = run(a), pb = run(b);
    EXPECT_EQ(pa.step_time, pb.step_time) << what;
    EXPECT_EQ(pa.fingerprint, pb.fingerprint) << what;
    EXPECT_EQ(pa.moe.imbalance_mean, pb.moe.imbalance_mean) << what;
  }
  Scenario c = folded(small_moe(8, 2), 2, 1, 4, 2, 1);
  c.parallel.ep_layout = EpLayout::kAuto;
  EXPECT_FALSE(ep_folded(c.parallel));
  Scenario d = c;
  d.parallel.ep_layout = EpLayout::kDp;
  EXPECT_EQ(instances(testing::compile_checked(c).plan.groups[kGroupEp]), instances(testing::compile_checked(d).plan.groups[kGroupEp]));
  EXPECT_EQ(instances(testing::compile_checked(c).plan.groups[kGroupEp]), (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}}));
}

// ---- oracle: fast == full on random folded configs ----------------------------------------------

// Every rank of a stage runs one program and collectives are priced on each group's worst shape,
// so fast mode (one rank per stage) gives exactly the full mode's step (balanced routing).
TEST(MoeFolding, FastModeEqualsFullModeOnRandomFoldedConfigs) {
  std::mt19937_64 rng(20250611);
  auto pick = [&](std::initializer_list<int> v) { return *(v.begin() + rng() % v.size()); };
  int tried = 0, across = 0;
  for (int i = 0; i < 400 && tried < 32; ++i) {
    const int tp = pick({1, 2, 4}), pp = pick({1, 2}), dp = pick({1, 2, 4}), cp = pick({1, 1, 2});
    const int etp = rng() % 2 ? pick({1, 2, 4}) : 2 * tp, ep = pick({2, 4, 8});   // etp > tp: across TP groups
    if ((tp * cp * dp) % (etp * ep) != 0) continue;
    ModelSpec m = small_moe(8, pick({1, 2}));
    m.shared_experts = pick({0, 1});
    m.dense_layers = pick({0, 1});
    Scenario s = folded(m, tp, pp, dp, ep, etp, pp * 2, 2048);
    s.parallel.cp = cp;
    s.cluster.gpus = tp * cp * pp * dp;
    s.cluster.gpus_per_node = std::min(8, s.cluster.gpus);
    s.parallel.zero = pick({0, 1, 2});
    s.parallel.sequence_parallel = tp > 1 && rng() % 2;
    s.parallel.recompute = static_cast<Recompute>(rng() % 3);
    const std::string what = "config " + std::to_string(i) + " tp=" + std::to_string(tp) + " cp=" + std::to_string(cp) +
                             " pp=" + std::to_string(pp) + " dp=" + std::to_string(dp) + " ep=" + std::to_string(ep) +
                             " etp=" + std::to_string(etp);
    ++tried;
    across += etp > tp ? 1 : 0;
    const Prediction a = run(s, false), b = run(s, true);
    EXPECT_EQ(a.step_time.count_ps(), b.step_time.count_ps()) << what;
    EXPECT_EQ(b.simulated_ranks, pp) << what;
  }
  EXPECT_GE(tried, 16);
  EXPECT_GE(across, 4) << "expert-TP groups across TP groups";
}

// ---- verify's restriction ------------------------------------------------------------------------

// Folded EP keeps whole EP blocks: tp=4, ep=8 needs lcm(8, 4)/4 = 2 TP groups (8 ranks) per stage.
TEST(MoeFolding, RestrictionKeepsWholeEpBlocks) {
  const Scenario s = folded(small_moe(8, 2), 4, 1, 4, 8, 1);
  const CompiledPlan c = testing::compile_checked(s);
  auto r = restrict_plan(c.plan, s.parallel, s.cluster.gpus_per_node, 12);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->dp_kept, 2);   // 12 devices hold 3 TP groups; 2 make a whole block
  EXPECT_EQ(instances(r->plan.groups[kGroupEp]), (Groups{{0, 1, 2, 3, 4, 5, 6, 7}}));
  auto small = restrict_plan(c.plan, s.parallel, s.cluster.gpus_per_node, 4);
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.status().to_string().find("folded EP block of ep*etp = 8 ranks needs 2 whole TP x CP groups"),
            std::string::npos)
      << small.status().to_string();
}

// An expert-TP group across TP groups stays whole too (etp = 4 of tp = 2, ep = 1: blocks of two
// TP groups).
TEST(MoeFolding, RestrictionKeepsWholeExpertTpGroups) {
  const Scenario s = folded(small_moe(8, 2), 2, 1, 4, 1, 4);
  const CompiledPlan c = testing::compile_checked(s);
  auto r = restrict_plan(c.plan, s.parallel, s.cluster.gpus_per_node, 6);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->dp_kept, 2);   // 6 devices hold 3 TP groups; 2 make a whole expert-TP group
  EXPECT_EQ(instances(r->plan.groups.back()), (Groups{{0, 1, 2, 3}}));
  auto small = restrict_plan(c.plan, s.parallel, s.cluster.gpus_per_node, 2);
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.status().to_string().find("ep*etp = 4 ranks needs 2 whole TP x CP groups"), std::string::npos)
      << small.status().to_string();
}

// ---- errors --------------------------------------------------------------------------------------

TEST(MoeFolding, BadFoldsAreErrors) {
  // etp*ep must divide tp*cp*dp (etp alone need not divide tp).
  Scenario a = folded(small_moe(8, 2), 4, 1, 4, 2, 3);
  a.model.expert_ffn_hidden = 2046;   // divisible by 3: the rank rule is what fails
  EXPECT_NE(compile_error(a).find("ep*etp=6 does not divide tp*cp*dp=16"), std::string::npos) << compile_error(a);
  // etp*ep must divide tp*cp*dp.
  Scenario b = folded(small_moe(8, 2), 2, 1, 2, 8, 1);
  EXPECT_NE(compile_error(b).find("ep*etp=8 does not divide tp*cp*dp=4"), std::string::npos) << compile_error(b);
  // auto: says why EP along DP did not apply either.
  b.parallel.ep_layout = EpLayout::kAuto;
  EXPECT_NE(compile_error(b).find("ep=8 does not divide dp=2"), std::string::npos) << compile_error(b);
  // etp > tp, and etp > 1 with tp not innermost, are layouts (ExpertTpAcrossTpGroupsAnyOrder).
  Scenario c = folded(small_moe(8, 2), 2, 1, 4, 2, 4);
  EXPECT_EQ(compile_error(c), "");
  // EP along DP asked for explicitly keeps its rules, and names folding.
  Scenario d = folded(small_moe(8, 2), 4, 1, 2, 4, 1);
  d.parallel.ep_layout = EpLayout::kDp;
  EXPECT_NE(compile_error(d).find("does not divide dp=2"), std::string::npos);
  d.parallel.ep = 2;
  d.parallel.etp = 2;
  EXPECT_NE(compile_error(d).find("must be 1 or tp=4"), std::string::npos);
}

}  // namespace
}  // namespace trainsim
