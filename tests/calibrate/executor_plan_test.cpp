// The executor's reader of exported plans (calibrate/cuda/plan_file.h, header-only, no CUDA)
// against the exporter (sim/plan_export.h): an exported compiled plan parses back with the
// same tasks and deps; collectives over groups of size 1 are dropped, larger ones refused
// unless drop_comm; sends to a peer not run here are dropped; the committed sample plan of the
// executor's self-test parses; malformed files name the JSON path.
#include <set>

#include <gtest/gtest.h>

#include "calibrate/cost_model.h"
#include "calibrate/cuda/plan_file.h"
#include "models/catalog.h"
#include "models/compiler.h"
#include "sim/plan_export.h"

namespace trainsim {
namespace {

// A 2-layer model at tp 1 x pp 2 x dp `dp`, ZeRO-3, 2 micro-batches of 512 tokens.
CompiledPlan small_plan(int dp) {
  ModelSpec m;
  m.name = "exec-test";
  m.layers = 2;
  m.hidden = 512;
  m.heads = 8;
  m.kv_heads = 8;
  m.head_dim = 64;
  m.ffn_hidden = 2048;
  m.vocab = 1000;
  TrainingSpec t;
  t.seq_len = 512;
  t.micro_batch = 1;
  t.global_batch = 2 * dp;
  ParallelSpec p;
  p.pp = 2;
  p.dp = dp;
  p.zero = 3;
  auto c = compile_plan(m, t, p, 8);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  ClusterSpec cl;
  cl.gpu = find_gpu("H100-SXM-80GB").value();
  cl.gpus = 2 * dp;
  cl.gpus_per_node = 8;
  cl.nic_bandwidth = cl.gpu.nic_bandwidth;
  cl.nvlink_bandwidth = cl.gpu.nvlink_bandwidth;
  auto cm = make_default_cost_model(cl);
  EXPECT_TRUE(bind_costs(c.value().plan, *cm.value(), 8, nullptr).ok());
  return std::move(c).value();
}

tscal::PlanFile parsed(const Plan& plan, std::vector<uint32_t> ranks) {
  PlanExportOptions o;
  o.ranks = std::move(ranks);
  auto text = export_plan_json(plan, o);
  EXPECT_TRUE(text.ok());
  tscal::PlanFile pf;
  std::vector<std::string> errors;
  EXPECT_TRUE(tscal::parse_plan(text.value(), "x.json", &pf, &errors)) << (errors.empty() ? "" : errors[0]);
  return pf;
}

TEST(ExecutorPlan, ParsesTheExportBack) {
  CompiledPlan c = small_plan(2);
  tscal::PlanFile pf = parsed(c.plan, {0, 1});
  ASSERT_EQ(pf.ranks.size(), 2u);
  ASSERT_EQ(pf.ops.size(), c.plan.ops.size());
  for (const auto& r : pf.ranks) {
    const Program& prog = c.plan.programs[c.plan.program_of_rank[r.rank]];
    ASSERT_EQ(r.tasks.size(), prog.tasks.size());
    for (size_t i = 0; i < prog.tasks.size(); ++i) {
      EXPECT_EQ(r.tasks[i].op, static_cast<int>(prog.tasks[i].op));
      EXPECT_EQ(r.tasks[i].stream, prog.tasks[i].stream);
      std::vector<int> deps;
      for (uint32_t d : prog.tasks[i].dep) {
        if (d != kNoDep) deps.push_back(static_cast<int>(d));
      }
      EXPECT_EQ(r.tasks[i].deps, deps) << "rank " << r.rank << " task " << i;
    }
  }
  // Every compute op of the plan maps to a calibrator job (or is a 0-byte memory op).
  for (size_t o = 0; o < pf.ops.size(); ++o) {
    const auto& op = pf.ops[o];
    if (op.cls != "gemm" && op.cls != "attention") continue;
    tscal::OpJob j;
    std::string why;
    EXPECT_TRUE(tscal::job_for_plan_op(op, static_cast<int>(o), &j, &why)) << op.name << ": " << why;
  }
}

TEST(ExecutorPlan, DropsSizeOneGroupsAndRefusesLargerOnesUnlessDropComm) {
  {  // dp 1 has no collectives at all (the compiler lays out none over groups of 1)
    const int dp = 2;
    CompiledPlan c = small_plan(dp);
    tscal::PlanFile pf = parsed(c.plan, {0});
    const auto& r = pf.ranks[0];
    int coll = 0, sends = 0;
    for (const auto& t : r.tasks) {
      std::string why;
      const auto a = tscal::task_action(pf, r, t, {0}, false, false, &why);
      const auto b = tscal::task_action(pf, r, t, {0}, true, false, &why);
      if (t.kind == "compute") {
        EXPECT_EQ(a, tscal::TaskAction::kRun);
      } else if (t.kind == "collective") {
        ++coll;
        const int inst = r.group_instances[t.group];
        const size_t size = pf.groups[t.group].find(inst)->members.size();
        EXPECT_EQ(a, size > 1 ? tscal::TaskAction::kRefuse : tscal::TaskAction::kDrop) << why;
        EXPECT_EQ(b, tscal::TaskAction::kDrop);
      } else {
        ++sends;  // pp 2: the peer stage is not run here
        EXPECT_EQ(a, tscal::TaskAction::kDrop) << why;
        EXPECT_NE(why.find("not run here"), std::string::npos) << why;
      }
    }
    EXPECT_GT(coll, 0) << "dp " << dp;
    EXPECT_GT(sends, 0) << "dp " << dp;
  }
}

// All 4 ranks of pp 2 x dp 2 run here with NCCL: every collective and send/recv runs, over one
// communicator per group instance and one per direction of each stage pair; with half of the
// ranks here, the collectives whose members are split are refused (dropped with drop_comm).
TEST(ExecutorPlan, RunsCommunicationBetweenLocalRanks) {
  CompiledPlan c = small_plan(2);
  tscal::PlanFile pf = parsed(c.plan, {0, 1, 2, 3});
  const std::vector<int> all = {0, 1, 2, 3};
  std::vector<std::vector<tscal::TaskAction>> actions;
  int colls = 0, p2p = 0;
  std::set<std::pair<int, int>> pairs, instances;
  for (const auto& r : pf.ranks) {
    actions.emplace_back();
    for (const auto& t : r.tasks) {
      std::string why;
      const auto a = tscal::task_action(pf, r, t, all, false, true, &why);
      actions.back().push_back(a);
      if (t.kind == "compute") continue;
      EXPECT_EQ(a, tscal::TaskAction::kRun) << "rank " << r.rank << " " << t.kind << ": " << why;
      if (t.kind == "collective") {
        ++colls;
        instances.insert({t.group, r.group_instances[t.group]});
      } else {
        ++p2p;
        const int peer = r.peer_ranks[t.group];
        pairs.insert(t.kind == "send" ? std::make_pair(r.rank, peer) : std::make_pair(peer, r.rank));
      }
    }
  }
  ASSERT_GT(colls, 0);
  ASSERT_GT(p2p, 0);
  EXPECT_EQ(pairs.size(), 4u);  // 2 stage pairs (one per dp replica), both directions
  const auto specs = tscal::comm_specs(pf, all, actions);
  size_t groups = 0, directions = 0;
  for (const auto& cs : specs) {
    if (cs.group >= 0) {
      ++groups;
      EXPECT_EQ(cs.members, pf.groups[cs.group].find(cs.instance)->members);
      EXPECT_EQ(cs.members.size(), 2u);
    } else {
      ++directions;
      ASSERT_EQ(cs.members.size(), 2u);
      EXPECT_EQ(pairs.count({cs.members[0], cs.members[1]}), 1u) << cs.members[0] << "->" << cs.members[1];
    }
  }
  EXPECT_EQ(directions, pairs.size());
  EXPECT_EQ(groups, instances.size());  // one communicator per group instance used

  // Half of the ranks here: rank 0 and its pipeline peer. The dp collectives span the other half.
  const int peer = pf.ranks[0].peer_ranks[0] >= 0 ? pf.ranks[0].peer_ranks[0] : pf.ranks[0].peer_ranks[1];
  ASSERT_GE(peer, 0);
  const std::vector<int> half = {0, peer};
  int refused = 0, dropped = 0, run = 0;
  for (const auto& t : pf.ranks[0].tasks) {
    if (t.kind == "compute") continue;
    std::string why;
    const auto a = tscal::task_action(pf, pf.ranks[0], t, half, false, true, &why);
    const auto b = tscal::task_action(pf, pf.ranks[0], t, half, true, true, &why);
    if (t.kind == "collective") {
      refused += a == tscal::TaskAction::kRefuse;
      dropped += b == tscal::TaskAction::kDrop;
      EXPECT_NE(a, tscal::TaskAction::kRun);
    } else {
      run += a == tscal::TaskAction::kRun;
      EXPECT_EQ(a, tscal::TaskAction::kRun) << why;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_EQ(refused, dropped);
  EXPECT_GT(run, 0);
  // Without NCCL, communication between local ranks is refused too.
  for (const auto& t : pf.ranks[0].tasks)
    if (t.kind == "send") {
      std::string why;
      EXPECT_EQ(tscal::task_action(pf, pf.ranks[0], t, all, false, false, &why), tscal::TaskAction::kRefuse);
      EXPECT_NE(why.find("NCCL"), std::string::npos) << why;
    }
}

// A hand-written plan whose all-reduce runs over a group of one rank: a no-op, dropped.
TEST(ExecutorPlan, CollectiveOverOneRankIsDropped) {
  const std::string text = R"({"format": "trainsim plan export", "version": 1, "scenario": "", "costs": "",
    "num_ranks": 2,
    "ops": [{"name": "tp.ar", "class": "collective", "dtype": "bf16", "m": 0, "n": 0, "k": 0, "batch": 1,
             "attn_batch": 0, "heads": 0, "kv_heads": 0, "seq_q": 0, "seq_kv": 0, "head_dim": 0, "causal": false,
             "backward": false, "flops": 0, "bytes": 1024, "coll": "all-reduce", "group": 0}],
    "groups": [{"index": 0, "name": "tp", "instances": [{"instance": 1, "members": [1]}]}], "peers": [],
    "ranks": [{"rank": 1, "program": 0, "program_name": "p", "group_instances": [1], "peer_ranks": [],
               "tasks": [{"op": 0, "kind": "collective", "stream": 0, "deps": [], "category": "tp-comm",
                          "layer": 0, "micro": 0, "group": 0, "channel": 0, "dur_us": 1.5}]}]})";
  tscal::PlanFile pf;
  std::vector<std::string> errors;
  ASSERT_TRUE(tscal::parse_plan(text, "p.json", &pf, &errors)) << (errors.empty() ? "" : errors[0]);
  std::string why;
  EXPECT_EQ(tscal::task_action(pf, pf.ranks[0], pf.ranks[0].tasks[0], {1}, false, true, &why), tscal::TaskAction::kDrop);
  EXPECT_NE(why.find("size 1"), std::string::npos) << why;
}

TEST(ExecutorPlan, CommittedSamplePlanParses) {
  tscal::PlanFile pf;
  std::vector<std::string> errors;
  ASSERT_TRUE(tscal::load_plan(std::string(TRAINSIM_SOURCE_DIR) + "/calibrate/cuda/sample_plan.json", &pf, &errors))
      << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(pf.num_ranks, 1);
  ASSERT_EQ(pf.ranks.size(), 1u);
  EXPECT_GT(pf.ranks[0].tasks.size(), 50u);
}

TEST(ExecutorPlan, BadFieldsNameTheirPath) {
  const std::string text = R"({"format": "trainsim plan export", "version": 1, "scenario": "", "costs": "",
    "num_ranks": 1, "ops": [], "groups": [], "peers": [],
    "ranks": [{"rank": 0, "program": 0, "program_name": "p", "group_instances": [], "peer_ranks": [],
               "tasks": [{"op": 3, "kind": "compute", "stream": 10, "deps": [0], "category": "compute",
                          "layer": 0, "micro": 0, "group": 0, "channel": 0, "dur_us": 1.5}]}]})";
  tscal::PlanFile pf;
  std::vector<std::string> errors;
  EXPECT_FALSE(tscal::parse_plan(text, "p.json", &pf, &errors));
  auto has = [&](const std::string& s) {
    for (const auto& e : errors)
      if (e.find(s) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("p.json: /ranks/0/tasks/0/op"));
  EXPECT_TRUE(has("/ranks/0/tasks/0/stream"));
  EXPECT_TRUE(has("/ranks/0/tasks/0/deps"));
  EXPECT_FALSE(tscal::parse_plan(R"({"format": "x"})", "p.json", &pf, &errors));
  EXPECT_TRUE(has("--export-plan"));
}

}  // namespace
}  // namespace trainsim
