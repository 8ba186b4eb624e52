// The restriction rules of verify mode (models/restrict.h): a restricted plan keeps one TP
// group, stages 0-1, dp' replicas, and runs exactly the full plan's compute tasks on every kept
// rank; only DP-family groups shrink and only sends/receives to dropped stages go.
#include "models/restrict.h"

#include <gtest/gtest.h>

#include <string>

#include "calibrate/cost_model.h"
#include "models/compiler.h"
#include "scenarios/loader.h"
#include "sim/replay.h"
#include "topologies/placement.h"
#include "tests/models/moe_fixtures.h"

namespace trainsim {
namespace {

Scenario scenario(const std::string& parallel, int gpus) {
  const std::string text = R"({"name": "restrict-test",
    "model": {"name": "t", "layers": 8, "hidden": 256, "heads": 4, "kv_heads": 2, "ffn_hidden": 768,
              "vocab": 4096, "activation": "swiglu"},
    "training": {"seq_len": 256, "global_batch": 32, "micro_batch": 1},
    "cluster": {"gpu": "H100-SXM-80GB", "gpus": )" + std::to_string(gpus) + R"(, "gpus_per_node": 8},
    "parallel": )" + parallel + "}";
  auto s = load_scenario_text(text, "restrict-test.json");
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return s.value();
}

// The compute tasks of a program, in order, as (op, stream, category, layer, micro).
std::vector<std::tuple<uint32_t, int, int, int, int>> compute_tasks(const Program& p) {
  std::vector<std::tuple<uint32_t, int, int, int, int>> out;
  for (const Task& t : p.tasks)
    if (t.kind == TaskKind::kCompute)
      out.emplace_back(t.op, t.stream, static_cast<int>(t.category), t.layer, t.micro);
  return out;
}

TEST(Restrict, KeepsOneTpGroupTwoStagesAndReducedDp) {
  // tp=2 pp=4 dp=4 (32 ranks) on 8 devices: tp 2 x stages {0,1} x dp' = 8/(2*2) = 2.
  Scenario s = scenario(R"({"tp": 2, "pp": 4, "dp": 4})", 32);
  Plan full = testing::compile_plan_of(s);
  auto r = restrict_plan(full, s.parallel, s.cluster.gpus_per_node, 8);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const RestrictedPlan& rp = r.value();
  EXPECT_EQ(rp.plan.num_ranks, 8);
  EXPECT_EQ(rp.stages, (std::vector<int>{0, 1}));
  EXPECT_EQ(rp.dp_kept, 2);
  auto pl = Placement::make(s.parallel, s.cluster.gpus_per_node).value();
  for (int nr = 0; nr < rp.plan.num_ranks; ++nr) {
    const uint32_t fr = rp.full_rank[nr];
    EXPECT_LT(pl.coord(fr, Axis::kPp), 2);
    EXPECT_LT(pl.coord(fr, Axis::kDp), 2);
    // The kept rank runs its counterpart's compute tasks, identically.
    const Program& mine = rp.plan.programs[rp.plan.program_of_rank[nr]];
    const Program& theirs = full.programs[full.program_of_rank[fr]];
    EXPECT_EQ(compute_tasks(mine), compute_tasks(theirs)) << "rank " << nr << " <- " << fr;
    EXPECT_EQ(mine.name, theirs.name);
  }
  // Same ops (shapes, FLOPs, bytes).
  ASSERT_EQ(rp.plan.ops.size(), full.ops.size());
  for (size_t i = 0; i < full.ops.size(); ++i) EXPECT_TRUE(rp.plan.ops[i].same_as(full.ops[i]));
  // The TP group stays whole (2), the DP group shrinks to 2 of 4 and the report says so.
  EXPECT_EQ(rp.plan.groups[kGroupTp].size_of(0), 2u);
  EXPECT_EQ(rp.plan.groups[kGroupDp].size_of(0), 2u);
  bool said = false;
  for (const auto& line : rp.dropped)
    if (line.find("'dp'") != std::string::npos && line.find("2 of 4") != std::string::npos) said = true;
  EXPECT_TRUE(said);
  // Stage 0 keeps its sends to stage 1; stage 1 loses those to and from stage 2.
  EXPECT_GT(rp.removed_sends, 0);
  EXPECT_GT(rp.removed_recvs, 0);
  const Program& s0 = rp.plan.programs[0];
  int sends0 = 0;
  for (const Task& t : s0.tasks) sends0 += t.kind == TaskKind::kSend;
  int full_sends0 = 0;
  for (const Task& t : full.programs[0].tasks) full_sends0 += t.kind == TaskKind::kSend;
  EXPECT_EQ(sends0, full_sends0);
  // Every dependency still points backwards and the restricted plan replays without deadlock.
  Plan bound = rp.plan;
  auto cm = make_default_cost_model(s.cluster);
  ASSERT_TRUE(cm.ok());
  ASSERT_TRUE(bind_costs(bound, *cm.value(), s.cluster.gpus_per_node, nullptr).ok());
  auto rr = replay(bound, ReplayOptions{});
  ASSERT_TRUE(rr.ok()) << rr.status().to_string();
  EXPECT_GT(rr->step_time, Time::zero());
}

TEST(Restrict, FewDevicesKeepOneStageAndOneReplica) {
  Scenario s = scenario(R"({"tp": 2, "pp": 4, "dp": 4})", 32);
  Plan full = testing::compile_plan_of(s);
  auto r = restrict_plan(full, s.parallel, s.cluster.gpus_per_node, 3);   // 3 < 2*tp: one stage
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->plan.num_ranks, 2);
  EXPECT_EQ(r->stages, std::vector<int>{0});
  EXPECT_EQ(r->dp_kept, 1);
  // Stage 0 alone: all its sends (to stage 1) are gone, and it had no receives from a
  // predecessor except gradients from stage 1, gone too.
  for (const Task& t : r->plan.programs[0].tasks) {
    EXPECT_NE(t.kind, TaskKind::kSend);
    EXPECT_NE(t.kind, TaskKind::kRecv);
  }
  EXPECT_EQ(compute_tasks(r->plan.programs[0]), compute_tasks(full.programs[0]));
}

TEST(Restrict, WholeScenarioIsUnchanged) {
  Scenario s = scenario(R"({"tp": 2, "pp": 2, "dp": 2})", 8);
  Plan full = testing::compile_plan_of(s);
  auto r = restrict_plan(full, s.parallel, s.cluster.gpus_per_node, 8);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->plan.num_ranks, 8);
  EXPECT_EQ(r->removed_sends + r->removed_recvs, 0);
  for (size_t p = 0; p < full.programs.size(); ++p) {
    ASSERT_EQ(r->plan.programs[p].tasks.size(), full.programs[p].tasks.size());
    for (size_t i = 0; i < full.programs[p].tasks.size(); ++i) {
      EXPECT_EQ(r->plan.programs[p].tasks[i].op, full.programs[p].tasks[i].op);
      EXPECT_EQ(r->plan.programs[p].tasks[i].dep[0], full.programs[p].tasks[i].dep[0]);
      EXPECT_EQ(r->plan.programs[p].tasks[i].dep[1], full.programs[p].tasks[i].dep[1]);
    }
  }
  EXPECT_TRUE(r->dropped.empty());
}

TEST(Restrict, TooFewDevicesForATpGroupIsAnError) {
  Scenario s = scenario(R"({"tp": 2, "pp": 1, "dp": 4})", 8);
  Plan full = testing::compile_plan_of(s);
  auto r = restrict_plan(full, s.parallel, s.cluster.gpus_per_node, 1);
  ASSERT_FALSE(r.ok());
  const std::string msg = r.status().to_string();
  EXPECT_NE(msg.find("--ranks"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tp*cp"), std::string::npos) << msg;
  EXPECT_NE(msg.find("= 2"), std::string::npos) << msg;
}

}  // namespace
}  // namespace trainsim
