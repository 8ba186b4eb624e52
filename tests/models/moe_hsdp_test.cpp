// HSDP (a ZeRO shard group smaller than dp) with MoE (models/compiler.h): the dense part
// sharded over the shard group and all-reduced over its replicas, the routed experts sharded
// over the expert shard group (the expert-DP ranks inside one dense replica) and all-reduced
// over the expert replicas. Closed forms first, then the fast == full oracle.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "models/compiler.h"
#include "models/memory.h"
#include "scenarios/predict.h"

#include "tests/models/moe_fixtures.h"

namespace trainsim {
namespace {

using testing::run;
using testing::small_moe;

// small_moe(8, 2) on dp = 8 ranks (tp = pp = 1), ep = 2, fsdp_shard_group = 4: two dense
// replicas (dp 0-3 and 4-7). Expert-DP groups: the dp/ep = 4 ranks of equal dp % 2; inside one
// replica 2 of them, so eshard = edp / replicas = 4 / 2 = 2 and the expert replicas are 2.
Scenario hsdp_case(int zero, int micro = 2) {
  Scenario s = testing::moe_scenario(small_moe(8, 2), 1, 1, 8, 2, micro);
  s.parallel.zero = zero;
  s.parallel.fsdp_shard_group = 4;
  s.parallel.grad_reduce_dtype = GradReduce::kBf16;   // the closed forms below count 2 B per gradient element
  return s;
}

std::vector<uint32_t> members(const GroupTable& g, uint32_t inst) {
  return {g.members.begin() + g.member_offsets[inst], g.members.begin() + g.member_offsets[inst + 1]};
}

TEST(MoeHsdp, GroupsAreExpertDpSplitByReplica) {
  auto c = compile_plan(hsdp_case(3).model, hsdp_case(3).training, hsdp_case(3).parallel, 8);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  const Plan& plan = c.value().plan;
  EXPECT_EQ(plan.groups[kGroupDp].name, "dp-shard");
  EXPECT_EQ(plan.groups[kGroupExpertDp].name, "expert-dp-shard");
  EXPECT_EQ(plan.groups[kGroupExpertDpGather].name, "expert-dp-shard-gather");
  ASSERT_EQ(plan.groups.size(), 11u);   // appended after every other group (compiler.h)
  EXPECT_EQ(expert_replica_group(false, false, false), 10);
  const GroupTable& rep = plan.groups[10];
  EXPECT_EQ(rep.name, "expert-dp-replica");
  // Expert shard groups: dp % 2 equal, same replica: {0,2}, {1,3}, {4,6}, {5,7}.
  const GroupTable& es = plan.groups[kGroupExpertDp];
  ASSERT_EQ(es.instances(), 4u);
  EXPECT_EQ(members(es, 0), (std::vector<uint32_t>{0, 2}));
  EXPECT_EQ(members(es, 1), (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(members(es, 2), (std::vector<uint32_t>{4, 6}));
  EXPECT_EQ(members(es, 3), (std::vector<uint32_t>{5, 7}));
  // Expert replicas: the same place in the other replica's shard group.
  ASSERT_EQ(rep.instances(), 4u);
  EXPECT_EQ(members(rep, 0), (std::vector<uint32_t>{0, 4}));
  EXPECT_EQ(members(rep, 1), (std::vector<uint32_t>{1, 5}));
  EXPECT_EQ(members(rep, 2), (std::vector<uint32_t>{2, 6}));
  EXPECT_EQ(members(rep, 3), (std::vector<uint32_t>{3, 7}));
  // The dense groups as for a dense model: shard {0..3}, replicas {0,4}.
  EXPECT_EQ(members(plan.groups[kGroupDp], 0), (std::vector<uint32_t>{0, 1, 2, 3}));
  EXPECT_EQ(members(plan.groups[kGroupDpRep], 0), (std::vector<uint32_t>{0, 4}));
  auto es_size = expert_shard_group(hsdp_case(3).parallel);
  ASSERT_TRUE(es_size.ok());
  EXPECT_EQ(es_size.value(), 2);
}

// ZeRO-3, per MoE layer and micro-batch (m = 2, 4 MoE layers, Le = 8/2 = 4 local experts,
// Pe = expert_params): the experts' gradient, E = 2 B * Le * Pe, is reduce-scattered over the
// expert shard group (2 ranks), then the rank's shard E / 2 all-reduced over the 2 expert
// replicas, on the replica stream (FSDP2's all-reduce stream), after the reduce-scatter (it waits for it):
//   expert reduce-scatter bytes = m * 4 * E        expert replica all-reduce = m * 4 * E / 2
//   expert all-gather bytes     = m * 2 uses * 4 * E (over the expert shard group)
TEST(MoeHsdp, ZeroThreeExpertBytesClosedForm) {
  const Scenario s = hsdp_case(3);
  auto c = compile_plan(s.model, s.training, s.parallel, 8);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  const Plan& plan = c.value().plan;
  const int64_t E = 2 * int64_t{4} * expert_params(s.model), m = 2, layers = 4;
  const std::vector<Task>& tasks = plan.programs[0].tasks;
  std::map<std::pair<uint8_t, CollKind>, int64_t> bytes;
  int rs_seen = 0, ar_seen = 0;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const Task& t = tasks[i];
    if (t.kind != TaskKind::kCollective) continue;
    const OpDesc& op = plan.ops[t.op];
    bytes[{t.group, op.coll}] += op.bytes.count();
    if (t.group == kGroupExpertDp) {
      EXPECT_EQ(op.coll, CollKind::kReduceScatter) << op.name;
      EXPECT_EQ(op.bytes.count(), E);
      ++rs_seen;
    }
    if (t.group == 10) {
      EXPECT_EQ(op.name, "hsdp.expert.grad.allreduce");
      EXPECT_EQ(op.coll, CollKind::kAllReduce);
      EXPECT_EQ(op.bytes.count(), E / 2);
      EXPECT_EQ(t.stream, kStreamDpReplica);   // FSDP2's all-reduce stream (ZeRO-3)
      EXPECT_EQ(t.category, Category::kDpComm);
      ASSERT_NE(t.dep[0], kNoDep);
      const Task& d = tasks[t.dep[0]];
      EXPECT_EQ(d.group, kGroupExpertDp);   // the layer's expert reduce-scatter
      EXPECT_EQ(d.layer, t.layer);
      EXPECT_EQ(d.micro, t.micro);
      ++ar_seen;
    }
  }
  EXPECT_EQ(rs_seen, m * layers);
  EXPECT_EQ(ar_seen, m * layers);
  EXPECT_EQ((bytes[{kGroupExpertDp, CollKind::kReduceScatter}]), m * layers * E);
  EXPECT_EQ((bytes[{uint8_t{10}, CollKind::kAllReduce}]), m * layers * E / 2);
  EXPECT_EQ((bytes[{kGroupExpertDpGather, CollKind::kAllGather}]), m * 2 * layers * E);
  // The dense part as for a dense model: reduce-scatter over 4, then 1/4 all-reduced over 2.
  EXPECT_EQ((bytes[{kGroupDpRep, CollKind::kAllReduce}]), (bytes[{kGroupDp, CollKind::kReduceScatter}]) / 4);
  EXPECT_GT((bytes[{kGroupDpRep, CollKind::kAllReduce}]), 0);
}

// ZeRO-1/2 (buckets of the last micro-batch's backward): each expert bucket B is
// reduce-scattered over the expert shard group and B / 2 all-reduced over the expert replicas
// right after it; all buckets add up to the experts' gradient, 4 layers * E. After the optimizer
// the updated experts are gathered over the expert shard group (2 * Le * Pe * 4 layers).
TEST(MoeHsdp, ZeroOneTwoExpertBucketsClosedForm) {
  for (int zero : {1, 2})
    for (bool overlap : {true, false}) {
      Scenario s = hsdp_case(zero);
      s.parallel.dp_overlap = overlap;
      auto c = compile_plan(s.model, s.training, s.parallel, 8);
      ASSERT_TRUE(c.ok()) << c.status().to_string();
      const Plan& plan = c.value().plan;
      const int64_t E = 2 * int64_t{4} * expert_params(s.model), layers = 4;
      const std::vector<Task>& tasks = plan.programs[0].tasks;
      int64_t rs = 0, ar = 0, gather = 0;
      int buckets = 0;
      const std::string what = "zero " + std::to_string(zero) + (overlap ? " overlap" : " no overlap");
      for (size_t i = 0; i < tasks.size(); ++i) {
        const Task& t = tasks[i];
        if (t.kind != TaskKind::kCollective) continue;
        const OpDesc& op = plan.ops[t.op];
        if (op.name == "ep.expert.grad.reducescatter") {
          EXPECT_EQ(t.group, kGroupExpertDp) << what;
          rs += op.bytes.count();
          ++buckets;
        } else if (op.name == "ep.expert.grad.replica.allreduce") {
          EXPECT_EQ(t.group, 10) << what;
          EXPECT_EQ(t.stream, overlap ? kStreamDp : kStreamCompute) << what;
          ASSERT_NE(t.dep[0], kNoDep);
          const OpDesc& prev = plan.ops[tasks[t.dep[0]].op];
          EXPECT_EQ(prev.name, "ep.expert.grad.reducescatter") << what;
          EXPECT_EQ(op.bytes.count(), prev.bytes.count() / 2) << what;
          ar += op.bytes.count();
        } else if (op.name == "zero.expert.param.allgather") {
          EXPECT_TRUE(t.group == kGroupExpertDp || t.group == kGroupExpertDpGather) << what;
          gather += op.bytes.count();
        }
        EXPECT_NE(op.name, "ep.expert.grad.allreduce") << what;
      }
      EXPECT_GE(buckets, 1) << what;
      EXPECT_EQ(rs, layers * E) << what;
      EXPECT_EQ(ar, layers * E / 2) << what;
      EXPECT_EQ(gather, layers * E) << what;
    }
}

// Memory per GPU with ZeRO-3 and HSDP: dense params, grads and Adam states over the dp shard
// group (4), the experts' over the expert shard group (eshard = 2 with ep = 2; 1 with ep = 4,
// where each replica holds whole experts and gathers none):
//   params    = ceil(2 Pd / 4) + ceil(2 Pe / eshard) + 2 B * largest layer * (prefetch + 1)
//   grads     = ceil(4 Pd / 4) + min(bucket, 4 Pd) + ceil(4 Pe / eshard) + min(bucket, 4 Pe)
//   optimizer = ceil(12 Pd / 4) + ceil(12 Pe / eshard)
// (largest = the layer's dense part + its local experts when eshard > 1.)
TEST(MoeHsdp, ExpertMemoryDividesByExpertShardGroup) {
  const ModelSpec m = small_moe(8, 2);
  for (int ep : {2, 4}) {
    Scenario s = testing::moe_scenario(m, 1, 1, 8, ep, 1);
    s.parallel.zero = 3;
    s.parallel.fsdp_shard_group = 4;
    s.parallel.zero3_prefetch = 1;
    auto c = compile_plan(s.model, s.training, s.parallel, 8);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    const int64_t eshard = 8 / ep / 2;   // edp / dense replicas
    const int64_t pe = int64_t{8 / ep} * expert_params(m);   // one MoE layer's local experts
    const int64_t Pe = 4 * pe, Pd = c.value().stages[0].params_local - Pe;
    const int64_t largest = layer_params_local(m, 0, 1) + (eshard > 1 ? pe : 0);
    const int64_t bucket = int64_t{s.parallel.dp_bucket_mb} << 20;
    const MemoryStatic& mem = c.value().plan.programs[0].mem;
    const std::string what = "ep=" + std::to_string(ep);
    EXPECT_EQ(mem.params.count(), (2 * Pd + 3) / 4 + (2 * Pe + eshard - 1) / eshard + 2 * largest * 2) << what;
    EXPECT_EQ(mem.grads.count(),
              (4 * Pd + 3) / 4 + std::min(bucket, 4 * Pd) + (4 * Pe + eshard - 1) / eshard + std::min(bucket, 4 * Pe))
        << what;
    EXPECT_EQ(mem.optimizer.count(), (12 * Pd + 3) / 4 + (12 * Pe + eshard - 1) / eshard) << what;
  }
  // ZeRO-1: only the Adam states shard: the experts' over eshard = 2, not over edp = 4.
  Scenario s = hsdp_case(1, 1);
  auto c = compile_plan(s.model, s.training, s.parallel, 8);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  const int64_t Pe = 4 * int64_t{4} * expert_params(m), Pd = c.value().stages[0].params_local - Pe;
  EXPECT_EQ(c.value().plan.programs[0].mem.optimizer.count(), (12 * Pd + 3) / 4 + (12 * Pe + 1) / 2);
}

// A shard group that cuts the expert-DP groups unevenly is an error: dp = 8, ep = 8 has
// expert-DP groups of one rank (edp = 1), which two replicas cannot split.
TEST(MoeHsdp, NonDividingShardGroupIsAnError) {
  Scenario s = testing::moe_scenario(small_moe(8, 2), 1, 1, 8, 8, 1);
  s.parallel.zero = 3;
  s.parallel.fsdp_shard_group = 4;
  auto c = compile_plan(s.model, s.training, s.parallel, 8);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().to_string().find("same number of ranks in each of the dp/fsdp_shard_group=2 replicas"), std::string::npos) << c.status().to_string();
  auto e = expert_shard_group(s.parallel);
  EXPECT_FALSE(e.ok());
  s.parallel.fsdp_shard_group = 8;   // all of dp: no HSDP, experts over expert-DP
  e = expert_shard_group(s.parallel);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e.value(), 1);
}

// Oracle: fast mode (identical replicas collapsed) equals full mode on HSDP MoE plans: ZeRO 1-3
// (ZeRO-3 per layer and per tensor), tp 1-2 with etp 1 or tp, pp 1-2, EP along DP and folded,
// expert shard groups of 1 and 2 ranks, with and without dp_overlap. ZeRO-3 with balanced
// routing (every replica identical), ZeRO-1/2 with multinomial routing (the straggler's layout).
TEST(MoeHsdp, FastModeEqualsFullMode) {
  struct Config {
    int tp, pp, dp, ep, etp, shard, zero;
    bool folded, tensor, overlap;
    int eshard;   // expected expert shard group
    int cp = 1;
  };
  const Config configs[] = {
      {1, 1, 8, 2, 1, 4, 3, false, false, true, 2},  {1, 2, 8, 4, 1, 4, 3, false, true, true, 1},
      {2, 1, 8, 2, 2, 4, 2, false, false, false, 2}, {2, 2, 8, 2, 1, 2, 1, false, false, true, 2},
      {2, 1, 4, 2, 1, 2, 3, true, false, true, 2},   {2, 2, 4, 4, 1, 2, 2, true, false, true, 1},
      {2, 2, 8, 2, 2, 4, 3, false, false, false, 2},
      // cp = 2: a replica is shard x 2 cp ranks; edp = dp/ep * 2 over dp/shard replicas.
      {1, 1, 8, 2, 1, 4, 3, false, false, true, 4, 2},  {1, 2, 4, 2, 1, 2, 1, false, false, true, 2, 2},
  };
  for (const Config& k : configs) {
    Scenario s = testing::moe_scenario(small_moe(8, 2), k.tp, k.pp, k.dp, k.ep, k.pp * 2, 512);
    s.parallel.zero = k.zero;
    s.parallel.cp = k.cp;
    s.cluster.gpus *= k.cp;
    s.cluster.gpus_per_node = std::min(8, s.cluster.gpus);
    s.parallel.fsdp_shard_group = k.shard;
    s.parallel.etp = k.etp;
    if (k.folded) s.parallel.ep_layout = EpLayout::kFolded;
    if (k.tensor) s.parallel.zero3_gather = ZeroGather::kTensor;
    s.parallel.dp_overlap = k.overlap;
    s.training.moe.kind = k.zero == 3 ? MoeRouting::kBalanced : MoeRouting::kUniform;
    const std::string what = "zero=" + std::to_string(k.zero) + " tp=" + std::to_string(k.tp) +
                             " pp=" + std::to_string(k.pp) + " dp=" + std::to_string(k.dp) + " ep=" +
                             std::to_string(k.ep) + " etp=" + std::to_string(k.etp) + " shard=" +
                             std::to_string(k.shard) + " cp=" + std::to_string(k.cp) + (k.folded ? " folded" : "");
    auto es = expert_shard_group(s.parallel);
    ASSERT_TRUE(es.ok()) << what << ": " << es.status().to_string();
    EXPECT_EQ(es.value(), k.eshard) << what;
    const Prediction a = run(s, false), b = run(s, true);
    EXPECT_GT(a.step_time.count_ps(), 0) << what;
    EXPECT_EQ(a.step_time.count_ps(), b.step_time.count_ps()) << what;
    EXPECT_EQ(b.simulated_ranks, k.pp) << what;
  }
}

}  // namespace
}  // namespace trainsim
