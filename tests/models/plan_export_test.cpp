// The plan export (sim/plan_export.h, calibrate/FORMAT.md section 4) of a small compiled and
// bound plan reads back to the same programs: task count, streams, deps, ops and durations of
// every exported rank, the group instances they belong to, and one GEMM's fields in closed
// form. It lives under tests/models because it compiles a plan (test_sim links only ts_sim).
#include "sim/plan_export.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "calibrate/cost_model.h"
#include "models/catalog.h"
#include "models/compiler.h"

namespace trainsim {
namespace {

ModelSpec tiny_gpt() {
  ModelSpec m;
  m.name = "gpt-tiny-export";
  m.layers = 4;
  m.hidden = 1024;
  m.heads = 16;
  m.kv_heads = 16;
  m.head_dim = 64;
  m.ffn_hidden = 4096;
  m.vocab = 32000;
  m.activation = Activation::kGelu;
  m.norm = NormKind::kLayerNorm;
  return m;
}

struct Fixture {
  CompiledPlan c;
  ClusterSpec cluster;
};

// tp 2 x pp 2 x dp 2 = 8 ranks, 4 micro-batches of 1 x 512 tokens, bound with the default costs.
Fixture compiled(Framework framework = Framework::kFused) {
  Fixture f;
  TrainingSpec t;
  t.seq_len = 512;
  t.micro_batch = 1;
  t.global_batch = 8;
  t.precision = DType::kBF16;
  t.framework = framework;
  ParallelSpec p;
  p.tp = 2;
  p.pp = 2;
  p.dp = 2;
  auto g = find_gpu("H100-SXM-80GB");
  EXPECT_TRUE(g.ok());
  f.cluster.gpu = g.value();
  f.cluster.gpus = 8;
  f.cluster.gpus_per_node = 8;
  f.cluster.nic_bandwidth = f.cluster.gpu.nic_bandwidth;
  f.cluster.nvlink_bandwidth = f.cluster.gpu.nvlink_bandwidth;
  auto c = compile_plan(tiny_gpt(), t, p, 8);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  f.c = std::move(c).value();
  auto cm = make_default_cost_model(f.cluster);
  EXPECT_TRUE(cm.ok());
  EXPECT_TRUE(bind_costs(f.c.plan, *cm.value(), 8, nullptr).ok());
  return f;
}

TEST(PlanExport, RoundTripsTheProgramsOfTheExportedRanks) {
  Fixture f = compiled();
  const Plan& plan = f.c.plan;
  PlanExportOptions o;
  o.ranks = {5, 0, 5};  // unsorted, duplicated: written once each, ascending
  o.scenario = "test";
  o.costs = "embedded default";
  o.predicted_step_us = 1234.5;
  auto text = export_plan_json(plan, o);
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  const nlohmann::json j = nlohmann::json::parse(text.value());
  EXPECT_EQ(j["version"], kPlanExportVersion);
  EXPECT_EQ(j["num_ranks"], 8);
  EXPECT_DOUBLE_EQ(j["predicted_step_us"].get<double>(), 1234.5);
  ASSERT_EQ(j["ops"].size(), plan.ops.size());
  ASSERT_EQ(j["ranks"].size(), 2u);
  EXPECT_EQ(j["ranks"][0]["rank"], 0);
  EXPECT_EQ(j["ranks"][1]["rank"], 5);
  for (const auto& jr : j["ranks"]) {
    const uint32_t r = jr["rank"];
    const Program& prog = plan.programs[plan.program_of_rank[r]];
    ASSERT_EQ(jr["tasks"].size(), prog.tasks.size()) << "rank " << r;
    for (size_t i = 0; i < prog.tasks.size(); ++i) {
      const Task& t = prog.tasks[i];
      const auto& jt = jr["tasks"][i];
      ASSERT_EQ(jt["op"], t.op);
      ASSERT_EQ(jt["stream"], t.stream);
      std::vector<uint32_t> deps;
      for (uint32_t d : t.dep)
        if (d != kNoDep) deps.push_back(d);
      ASSERT_EQ(jt["deps"].get<std::vector<uint32_t>>(), deps) << "rank " << r << " task " << i;
      // dur_us has 6 decimals: whole picoseconds, read back exactly after rounding.
      ASSERT_EQ(static_cast<int64_t>(std::llround(jt["dur_us"].get<double>() * 1e6)), t.dur.count_ps());
      ASSERT_EQ(jt["category"], to_string(t.category));
    }
    // Group instances and their members as in the plan.
    for (size_t g = 0; g < plan.groups.size(); ++g) {
      const GroupTable& gt = plan.groups[g];
      const uint32_t inst = gt.instance_of_rank[r];
      const int64_t ji = jr["group_instances"][g];
      if (inst == kNoDep) {
        EXPECT_EQ(ji, -1);
        continue;
      }
      ASSERT_EQ(ji, inst);
      bool found = false;
      for (const auto& ins : j["groups"][g]["instances"]) {
        if (ins["instance"] != inst) continue;
        found = true;
        std::vector<uint32_t> members(gt.members.begin() + gt.member_offsets[inst],
                                      gt.members.begin() + gt.member_offsets[inst + 1]);
        EXPECT_EQ(ins["members"].get<std::vector<uint32_t>>(), members);
      }
      EXPECT_TRUE(found) << "group " << gt.name << " instance " << inst;
    }
    for (size_t p = 0; p < plan.peers.size(); ++p) EXPECT_EQ(jr["peer_ranks"][p], plan.peers[p].peer_of_rank[r]);
  }
  // Some streams besides compute are used (DP reduction, PP sends), and dependencies exist.
  std::set<int> streams;
  int with_deps = 0;
  for (const auto& jt : j["ranks"][0]["tasks"]) {
    streams.insert(jt["stream"].get<int>());
    with_deps += !jt["deps"].empty();
  }
  EXPECT_GE(streams.size(), 3u);
  EXPECT_GT(with_deps, 0);
}

TEST(PlanExport, GemmFieldsInClosedForm) {
  Fixture f = compiled();
  PlanExportOptions o;
  o.ranks = {0};
  auto text = export_plan_json(f.c.plan, o);
  ASSERT_TRUE(text.ok());
  const nlohmann::json j = nlohmann::json::parse(text.value());
  // mlp.fc1.fwd at tp 2, GeLU, 1 x 512 tokens: (T x h) * (h x f/tp) with T = 512, h = 1024,
  // f/tp = 4096/2 = 2048; FLOPs = 2 T f/tp h = 2 * 512 * 2048 * 1024 = 2147483648;
  // bytes = 2 (T h + h f/tp) + 2 T f/tp = 2 (524288 + 2097152) + 2 * 1048576 = 7340032.
  int seen = 0;
  for (const auto& op : j["ops"]) {
    if (op["name"] != "mlp.fc1.fwd") continue;
    ++seen;
    EXPECT_EQ(op["class"], "gemm");
    EXPECT_EQ(op["dtype"], "bf16");
    EXPECT_EQ(op["m"], 512);
    EXPECT_EQ(op["n"], 2048);
    EXPECT_EQ(op["k"], 1024);
    EXPECT_EQ(op["batch"], 1);
    EXPECT_EQ(op["backward"], false);
    EXPECT_DOUBLE_EQ(op["flops"].get<double>(), 2147483648.0);
    EXPECT_EQ(op["bytes"], 7340032);
  }
  EXPECT_EQ(seen, 1);
}

// A PyTorch loop's gradient allocations (Task::mem_grads) are marked in the export; the fused
// plan, which has none, writes no such key, so its exports stay as they were.
TEST(PlanExport, GradientAllocationsAreMarked) {
  for (Framework fw : {Framework::kFused, Framework::kTorchCompile}) {
    Fixture f = compiled(fw);
    PlanExportOptions o;
    o.ranks = {0};
    auto text = export_plan_json(f.c.plan, o);
    ASSERT_TRUE(text.ok());
    const nlohmann::json j = nlohmann::json::parse(text.value());
    const Program& prog = f.c.plan.programs[f.c.plan.program_of_rank[0]];
    ASSERT_EQ(j["ranks"][0]["tasks"].size(), prog.tasks.size());
    int marked = 0;
    for (size_t i = 0; i < prog.tasks.size(); ++i) {
      const auto& jt = j["ranks"][0]["tasks"][i];
      ASSERT_EQ(jt.contains("mem_grads"), prog.tasks[i].mem_grads != 0) << "task " << i;
      if (jt.contains("mem_grads")) {
        EXPECT_EQ(jt["mem_grads"], true);
        EXPECT_GT(jt["mem_alloc"].get<int64_t>(), 0) << "task " << i;
        ++marked;
      }
    }
    if (fw == Framework::kFused) EXPECT_EQ(marked, 0);
    // zero 0, whole parameters: each of the rank's 2 layers (pp 2) allocates its gradients at
    // its first backward, the embedding stage's embedding too.
    else EXPECT_GE(marked, 2);
  }
}

TEST(PlanExport, BadRanksAreErrors) {
  Fixture f = compiled();
  PlanExportOptions o;
  EXPECT_FALSE(export_plan_json(f.c.plan, o).ok());
  o.ranks = {0, 8};
  auto r = export_plan_json(f.c.plan, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().to_string().find("ranks 0..7"), std::string::npos) << r.status().to_string();
}

}  // namespace
}  // namespace trainsim
