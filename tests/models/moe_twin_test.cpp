// The balanced-routing reference from the plan's own tasks (CompiledPlan::balanced_twins):
// the plan compiled with balanced routing is, task for task, the imbalanced plan with the twin
// ops swapped in, and predict's reference step from the twins equals the one compiled again.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "models/compiler.h"
#include "tests/models/moe_fixtures.h"
#include "scenarios/predict.h"
#include "models/moe.h"

namespace trainsim {
namespace {

using testing::moe_scenario;
using testing::small_moe;

// A random small MoE job: tp, pp, dp, ep, routing, recomputation, ZeRO, capacity, dispatch.
Scenario random_moe(SplitMix64& g, int i) {
  auto pick = [&](int n) { return static_cast<int>(g.next() % static_cast<uint64_t>(n)); };
  ModelSpec m = small_moe(pick(2) == 0 ? 8 : 16, 1 + pick(2));
  m.dense_layers = pick(2);
  m.shared_experts = pick(2);
  const int tp = 1 << pick(2), pp = 1 + pick(2), dp = 2 << pick(2);
  const int ep = std::min(dp, 1 << pick(3));   // 1, 2 or 4: divides dp and the experts
  Scenario s = moe_scenario(m, tp, pp, dp, ep, 2 + pick(4));
  s.parallel.sequence_parallel = tp > 1 && pick(2) == 0;
  s.parallel.recompute = pick(3) == 0 ? Recompute::kFull : pick(2) == 0 ? Recompute::kSelective : Recompute::kNone;
  s.parallel.zero = pick(4);
  s.training.moe.kind = pick(2) == 0 ? MoeRouting::kZipf : MoeRouting::kUniform;
  s.training.moe.skew = 0.5 + 0.25 * pick(5);
  s.training.moe.seed = static_cast<uint64_t>(i) + 1;
  if (pick(3) == 0) s.model.capacity_factor = 1.0 + 0.25 * pick(3);
  if (ep > 1 && pick(2) == 0) s.training.moe.dispatch = MoeDispatch::kDedup;
  s.options.nccl_ctas = pick(2) == 0 ? 0 : -1;
  if (i % 3 == 1) s.training.precision = DType::kFP8;   // the fp8 casts have twins too (no pick: same draws)
  if (pick(3) == 0) {   // context parallelism, and parallel folding of the experts over tp x cp x dp
    s.parallel.cp = 2;
    s.cluster.gpus *= 2;
    s.cluster.gpus_per_node = std::min(8, s.cluster.gpus);
  }
  if (pick(3) == 0) {
    s.parallel.ep_layout = EpLayout::kFolded;
    s.parallel.etp = pick(3) == 0 ? 1 : pick(2) == 0 ? tp : 2 * tp;   // 2 tp: across TP groups
    const int ranks = tp * s.parallel.cp * dp;
    int e = 1 << pick(4);
    while (e > 1 && (ranks % (e * s.parallel.etp) != 0 || s.model.experts % e != 0)) e /= 2;
    s.parallel.ep = e;
  }
  // The all-to-alls beside the other micro-batch's compute, where the overlap is taken.
  // (which takes neither full recomputation nor ZeRO-3: those stay with pp 2 and every 4th plan).
  if (i % 4 != 3 && s.parallel.ep > 1 && pp == 1) {
    s.parallel.ep_overlap = true;
    if (s.parallel.recompute == Recompute::kFull) s.parallel.recompute = Recompute::kSelective;
    s.parallel.zero = std::min(s.parallel.zero, 2);
  }
  return s;
}

// Task for task: the balanced compile equals the imbalanced plan with its twins swapped in.
TEST(MoeTwins, SwappedPlanIsTheBalancedCompile) {
  SplitMix64 g(7, "moe-twins/plans");
  int twinned = 0, overlapped = 0;
  for (int i = 0; i < 60; ++i) {
    const Scenario s = random_moe(g, i);
    auto a = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node, /*balanced_twins=*/true);
    TrainingSpec bt = s.training;
    bt.moe.kind = MoeRouting::kBalanced;
    auto b = compile_plan(s.model, bt, s.parallel, s.cluster.gpus_per_node);
    ASSERT_TRUE(a.ok()) << testing::describe(s) << ": " << a.status().to_string();
    ASSERT_TRUE(b.ok()) << testing::describe(s) << ": " << b.status().to_string();
    ASSERT_TRUE(a->twins_ok) << testing::describe(s);
    const Plan& pa = a->plan;
    const Plan& pb = b->plan;
    ASSERT_EQ(pa.programs.size(), pb.programs.size());
    std::vector<std::vector<uint32_t>> op(pa.programs.size());
    for (size_t p = 0; p < pa.programs.size(); ++p) {
      ASSERT_EQ(pa.programs[p].tasks.size(), pb.programs[p].tasks.size()) << testing::describe(s);
      for (const Task& t : pa.programs[p].tasks) op[p].push_back(t.op);
    }
    for (const OpTwin& t : a->balanced_twins) {
      ASSERT_LT(t.program, op.size());
      ASSERT_LT(t.task, op[t.program].size());
      EXPECT_NE(op[t.program][t.task], t.op) << "a twin that changes nothing is not listed";
      op[t.program][t.task] = t.op;
    }
    twinned += a->balanced_twins.empty() ? 0 : 1;
    overlapped += s.parallel.ep_overlap && !a->balanced_twins.empty() ? 1 : 0;
    for (size_t p = 0; p < pa.programs.size(); ++p)
      for (size_t k = 0; k < op[p].size(); ++k) {
        const Task& x = pa.programs[p].tasks[k];
        const Task& y = pb.programs[p].tasks[k];
        ASSERT_TRUE(pa.ops[op[p][k]].same_as(pb.ops[y.op]))
            << testing::describe(s) << ": program " << p << " task " << k << " " << pa.ops[op[p][k]].name << " vs "
            << pb.ops[y.op].name;
        ASSERT_EQ(x.kind, y.kind);
        ASSERT_EQ(x.stream, y.stream);
        ASSERT_EQ(x.category, y.category);
        ASSERT_EQ(x.dep[0], y.dep[0]);
        ASSERT_EQ(x.dep[1], y.dep[1]);
        ASSERT_EQ(x.group, y.group);
        // Memory is the imbalanced plan's; where the balanced one has some, so does it.
        ASSERT_EQ(x.mem_alloc != 0, y.mem_alloc != 0) << testing::describe(s) << " task " << k;
        ASSERT_EQ(x.mem_free != 0, y.mem_free != 0) << testing::describe(s) << " task " << k;
      }
  }
  EXPECT_GT(twinned, 30) << "most random plans route unevenly somewhere";
  EXPECT_GE(overlapped, 4) << "plans with ep_overlap (interleaved pairs) among them";
}

// predict's balanced reference from the twins equals the reference compiled again, to the
// picosecond, in both modes; and the prediction itself is unchanged by computing it.
TEST(MoeTwins, ReferenceStepEqualsTheRecompiledOne) {
  SplitMix64 g(11, "moe-twins/predict");
  for (int i = 0; i < 40; ++i) {
    const Scenario s = random_moe(g, i);
    for (bool fast : {false, true}) {
      PredictOptions tw, re;
      tw.fast = re.fast = fast;
      re.twin_references = false;
      auto a = predict(s, tw);
      auto b = predict(s, re);
      ASSERT_TRUE(a.ok()) << testing::describe(s) << ": " << a.status().to_string();
      ASSERT_TRUE(b.ok()) << testing::describe(s) << ": " << b.status().to_string();
      EXPECT_EQ(a->moe.balanced_step_time.count_ps(), b->moe.balanced_step_time.count_ps()) << testing::describe(s) << " fast " << fast;
      EXPECT_EQ(a->step_time.count_ps(), b->step_time.count_ps()) << testing::describe(s);
      EXPECT_EQ(a->fingerprint, b->fingerprint) << testing::describe(s);
      EXPECT_EQ(a->peak_memory.total(), b->peak_memory.total()) << testing::describe(s);
      EXPECT_LE(a->moe.balanced_step_time.count_ps(), a->step_time.count_ps() + a->step_time.count_ps() / 20)
          << testing::describe(s);
    }
  }
}

// Where the balanced plan differs in more than the routed work, no twins: dynamic placement
// (migration collectives), activation offload (sized by the routed activations).
TEST(MoeTwins, NoneWhereThePlansDifferInMore) {
  Scenario s = moe_scenario(small_moe(), 1, 1, 4, 4, 4);
  s.training.moe.kind = MoeRouting::kZipf;
  s.training.moe.skew = 1.2;
  {
    auto a = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node, true);
    ASSERT_TRUE(a.ok());
    EXPECT_TRUE(a->twins_ok);
    // 4 MoE layers x 4 micro-batches x (5 forward + 7 backward routed tasks), every one uneven.
    EXPECT_EQ(a->balanced_twins.size(), 4u * 4u * 12u);
  }
  Scenario dyn = s;
  dyn.training.moe.placement = MoePlacement::kDynamic;
  Scenario off = s;
  off.parallel.activation_offload = 0.5;
  Scenario bal = s;
  bal.training.moe.kind = MoeRouting::kBalanced;
  for (const Scenario* v : {&dyn, &off, &bal}) {
    auto a = compile_plan(v->model, v->training, v->parallel, v->cluster.gpus_per_node, true);
    ASSERT_TRUE(a.ok());
    EXPECT_FALSE(a->twins_ok);
    EXPECT_TRUE(a->balanced_twins.empty());
  }
  // Without being asked, none either.
  auto n = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
  ASSERT_TRUE(n.ok());
  EXPECT_FALSE(n->twins_ok);
  EXPECT_TRUE(n->balanced_twins.empty());
}

}  // namespace
}  // namespace trainsim
