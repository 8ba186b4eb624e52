// parallel.ep_overlap (models/compiler.h): the dispatch/combine all-to-alls of one micro-batch on
// the EP stream beside the compute of another. Oracle: the overlapped plan holds the same tasks
// as the plain one (same ops, categories, layers, micro-batches, memory), only on the EP stream
// and in the interleaved order; pairs alternate as DeepSeek-V3's report lays them out; fast mode
// equals full mode; without pipelining the overlap hides most of the exposed EP time.
#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "models/compiler.h"
#include "tests/models/moe_fixtures.h"

namespace trainsim {
namespace {

using testing::moe_scenario;
using testing::run;
using testing::small_moe;

bool is_token_a2a(const Plan& plan, const Task& t) {
  if (t.kind != TaskKind::kCollective) return false;
  const std::string& n = plan.ops[t.op].name;
  return n.rfind("ep.dispatch", 0) == 0 || n.rfind("ep.combine", 0) == 0;
}

// What a task is, apart from its place and stream.
// (The op by its name and fields: two plans intern their ops in different orders.)
using TaskKey = std::tuple<std::string, uint64_t, uint8_t, uint8_t, uint16_t, uint16_t, int64_t, int64_t, uint8_t>;
std::vector<TaskKey> keys(const Plan& plan, const Program& p) {
  std::vector<TaskKey> k;
  for (const Task& t : p.tasks)
    k.emplace_back(plan.ops[t.op].name, plan.ops[t.op].hash(), static_cast<uint8_t>(t.kind),
                   static_cast<uint8_t>(t.category), t.layer, t.micro, t.mem_alloc, t.mem_free, t.group);
  std::sort(k.begin(), k.end());
  return k;
}

// A random small MoE job the overlap takes: pp 1 (1F1B) or interleaved, any tp / sp / etp / cp
// / folding / dense and shared layers / routing, zero 0-2, recompute none or selective.
Scenario random_overlap(std::mt19937_64& rng) {
  auto pick = [&](std::initializer_list<int> v) { return *(v.begin() + rng() % v.size()); };
  ModelSpec m = small_moe(8, pick({1, 2}));
  m.shared_experts = pick({0, 1});
  m.dense_layers = pick({0, 1});
  const int tp = pick({1, 2}), pp = pick({1, 2}), dp = pick({2, 4});
  const int ep = pick({2, 4});
  Scenario s = moe_scenario(m, tp, pp, dp, std::min(ep, dp), pick({2, 3, 5}) * pp, 512);
  if (pp > 1) {
    s.parallel.vp = 2;
    s.parallel.schedule = Schedule::kInterleaved;
  }
  s.parallel.zero = pick({0, 1, 2});
  s.parallel.sequence_parallel = tp > 1 && rng() % 2;
  s.parallel.etp = rng() % 2 ? 1 : tp;
  s.parallel.recompute = rng() % 2 ? Recompute::kNone : Recompute::kSelective;
  s.training.moe.kind = static_cast<MoeRouting>(rng() % 3);
  s.training.moe.skew = 1.1;
  s.training.moe.seed = rng();
  if (rng() % 4 == 0) s.training.moe.dispatch = MoeDispatch::kDedup;
  if (rng() % 4 == 0) {   // folded over tp x dp, expert TP possibly across TP groups
    s.parallel.ep_layout = EpLayout::kFolded;
    s.parallel.etp = pick({1, 2});
    s.parallel.ep = std::max(2, std::min(8 / s.parallel.etp, tp * dp / s.parallel.etp));
    while ((tp * dp) % (s.parallel.ep * s.parallel.etp) != 0) s.parallel.ep /= 2;
  }
  s.parallel.ep_overlap = true;
  return s;
}

// The same tasks, the all-to-alls on the EP stream with their consumers waiting for them, every
// dependency earlier (compile_plan finalizes), and fast == full.
TEST(MoeOverlap, SameTasksOnTheEpStreamAndFastEqualsFull) {
  std::mt19937_64 rng(2611);
  int pairs_seen = 0;
  for (int i = 0; i < 24; ++i) {
    Scenario s = random_overlap(rng);
    if (s.parallel.ep < 2) continue;
    Scenario plain = s;
    plain.parallel.ep_overlap = false;
    auto a = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
    auto b = compile_plan(plain.model, plain.training, plain.parallel, plain.cluster.gpus_per_node);
    ASSERT_TRUE(a.ok()) << testing::describe(s) << ": " << a.status().to_string();
    ASSERT_TRUE(b.ok()) << testing::describe(s) << ": " << b.status().to_string();
    ASSERT_EQ(a->plan.programs.size(), b->plan.programs.size());
    for (size_t pi = 0; pi < a->plan.programs.size(); ++pi) {
      const Program& pa = a->plan.programs[pi];
      {
        const std::vector<TaskKey> ka = keys(a->plan, pa), kb = keys(b->plan, b->plan.programs[pi]);
        std::vector<TaskKey> only_a, only_b;
        std::set_difference(ka.begin(), ka.end(), kb.begin(), kb.end(), std::back_inserter(only_a));
        std::set_difference(kb.begin(), kb.end(), ka.begin(), ka.end(), std::back_inserter(only_b));
        std::string diff;
        for (const TaskKey& k : only_a) diff += " +" + std::get<0>(k) + "@" + std::to_string(std::get<4>(k)) + "/" + std::to_string(std::get<5>(k));
        for (const TaskKey& k : only_b) diff += " -" + std::get<0>(k) + "@" + std::to_string(std::get<4>(k)) + "/" + std::to_string(std::get<5>(k));
        EXPECT_TRUE(only_a.empty() && only_b.empty()) << testing::describe(s) << " program " << pi << ":" << diff.substr(0, 2000);
      }
      std::vector<int> waited(pa.tasks.size(), 0);
      for (const Task& t : pa.tasks)
        for (uint32_t d : t.dep)
          if (d != kNoDep) ++waited[d];
      for (size_t k = 0; k < pa.tasks.size(); ++k) {
        const Task& t = pa.tasks[k];
        if (!is_token_a2a(a->plan, t)) continue;
        EXPECT_EQ(t.stream, kStreamEp) << testing::describe(s);
        EXPECT_NE(t.dep[0], kNoDep) << testing::describe(s);   // after the compute that produced its input
        EXPECT_GE(waited[k], 1) << testing::describe(s) << " " << a->plan.ops[t.op].name;   // its output is waited for
      }
      // Pairs: a forward's and a backward's all-to-alls alternate on the EP stream somewhere.
      for (size_t k = 1; k < pa.stream_tasks[kStreamEp].size(); ++k) {
        const Task& x = pa.tasks[pa.stream_tasks[kStreamEp][k - 1]];
        const Task& y = pa.tasks[pa.stream_tasks[kStreamEp][k]];
        if (x.micro != y.micro) {
          ++pairs_seen;
          break;
        }
      }
    }
    const Prediction full = run(s, false), fast = run(s, true);
    EXPECT_EQ(full.step_time.count_ps(), fast.step_time.count_ps()) << testing::describe(s);
    EXPECT_GT(full.step_time.count_ps(), 0) << testing::describe(s);
  }
  EXPECT_GE(pairs_seen, 10);
}

// pp = 1, 4 MoE layers, 3 micro-batches: F0, (F1 B0), (F2 B1), B2. In a pair the EP stream runs,
// per layer pair, the backward's combine, the forward's dispatch, the backward's dispatch, the
// forward's combine (backward layers from the top, forward from the bottom); the forward's
// dispatch runs beside the backward's expert GEMMs, the backward's dispatch beside the forward's.
TEST(MoeOverlap, PairsAlternateAsDeepSeekV3LaysThemOut) {
  Scenario s = moe_scenario(small_moe(8, 2), 1, 1, 4, 4, 3, 512);
  s.parallel.ep_overlap = true;
  auto c = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  const Plan& plan = c->plan;
  const Program& p = plan.programs[0];
  std::vector<std::string> seq;
  for (uint32_t i : p.stream_tasks[kStreamEp]) {
    const Task& t = p.tasks[i];
    if (t.micro != 1 && t.micro != 0) continue;
    const std::string& n = plan.ops[t.op].name;
    const bool bwd = n.find(".bwd") != std::string::npos;
    if (bwd && t.micro != 0) continue;   // pair 1: forward of micro 1, backward of micro 0
    if (!bwd && t.micro != 1) continue;
    seq.push_back(n + "@" + std::to_string(t.layer));
  }
  const std::vector<std::string> want = {
      "ep.combine.bwd.alltoall@3",  "ep.dispatch.alltoall@0", "ep.dispatch.bwd.alltoall@3", "ep.combine.alltoall@0",
      "ep.combine.bwd.alltoall@2",  "ep.dispatch.alltoall@1", "ep.dispatch.bwd.alltoall@2", "ep.combine.alltoall@1",
      "ep.combine.bwd.alltoall@1",  "ep.dispatch.alltoall@2", "ep.dispatch.bwd.alltoall@1", "ep.combine.alltoall@2",
      "ep.combine.bwd.alltoall@0",  "ep.dispatch.alltoall@3", "ep.dispatch.bwd.alltoall@0", "ep.combine.alltoall@3"};
  EXPECT_EQ(seq, want);
  // The compute task right after the forward's dispatch of layer 0 (micro 1) is the backward's
  // (micro 0) first expert GEMM of layer 3; the one after the backward's dispatch of layer 3 is
  // the forward's first expert GEMM of layer 0.
  auto next_compute = [&](const std::string& name, int layer, int micro) -> std::string {
    for (size_t i = 0; i < p.tasks.size(); ++i) {
      const Task& t = p.tasks[i];
      if (plan.ops[t.op].name != name || t.layer != layer || t.micro != micro) continue;
      for (size_t j = i + 1; j < p.tasks.size(); ++j)
        if (p.tasks[j].stream == kStreamCompute)
          return plan.ops[p.tasks[j].op].name + "@" + std::to_string(p.tasks[j].layer) + "/" +
                 std::to_string(p.tasks[j].micro);
    }
    return "none";
  };
  EXPECT_EQ(next_compute("ep.dispatch.alltoall", 0, 1), "moe.expert.fc2.dgrad@3/0");
  EXPECT_EQ(next_compute("ep.dispatch.bwd.alltoall", 3, 0), "moe.expert.fc1.fwd@0/1");
  // One more forward before the first backward than plain 1F1B: F0 alone, then the pairs.
  int first_bwd = -1;
  for (size_t i = 0; i < p.tasks.size() && first_bwd < 0; ++i)
    if (plan.ops[p.tasks[i].op].backward) first_bwd = static_cast<int>(i);
  ASSERT_GE(first_bwd, 0);
  for (int i = 0; i < first_bwd; ++i) EXPECT_EQ(p.tasks[i].micro, 0) << plan.ops[p.tasks[i].op].name;
}

// Without pipelining, with the all-to-alls across nodes (2 GPUs per node), the overlap hides
// most of the exposed EP time and the step gets shorter; only the unpaired first forward and
// last backward keep theirs exposed.
TEST(MoeOverlap, HidesAllToAllsWithoutPipelining) {
  Scenario s = moe_scenario(small_moe(8, 2), 1, 1, 8, 8, 6, 2048);
  s.cluster.gpus_per_node = 2;
  const Prediction plain = run(s);
  s.parallel.ep_overlap = true;
  const Prediction ov = run(s);
  const auto ep = static_cast<size_t>(Bucket::kEpExposed);
  ASSERT_GT(plain.breakdown[ep].count_ps(), 0);
  EXPECT_LT(ov.breakdown[ep].count_ps(), plain.breakdown[ep].count_ps() / 2)
      << ov.breakdown[ep].seconds() << " vs " << plain.breakdown[ep].seconds();
  EXPECT_LT(ov.step_time.count_ps(), plain.step_time.count_ps());
  // At least the first forward's and the last backward's all-to-alls stay exposed (1 of 6).
  EXPECT_GT(ov.breakdown[ep].count_ps(), plain.breakdown[ep].count_ps() / 6 / 2);
}

// delay_wgrad: in a paired backward the experts' weight gradients follow the layer's backward
// dispatch all-to-all; in the unpaired last backward they precede it as before. Same tasks as
// without (pp 1, 3 micro-batches: the backward of micro 0 is paired, of micro 2 is not), and
// fast mode equals full mode.
TEST(MoeOverlap, DelayWgradMovesExpertWeightGradientsBehindTheDispatch) {
  Scenario s = moe_scenario(small_moe(8, 2), 1, 1, 4, 4, 3, 512);
  s.parallel.ep_overlap = true;
  Scenario d = s;
  d.parallel.delay_wgrad = true;
  auto a = compile_plan(d.model, d.training, d.parallel, d.cluster.gpus_per_node);
  auto b = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  const Program& p = a->plan.programs[0];
  EXPECT_EQ(keys(a->plan, p), keys(b->plan, b->plan.programs[0]));
  auto index = [&](const std::string& name, int layer, int micro) {
    for (size_t i = 0; i < p.tasks.size(); ++i)
      if (a->plan.ops[p.tasks[i].op].name == name && p.tasks[i].layer == layer && p.tasks[i].micro == micro)
        return static_cast<int>(i);
    return -1;
  };
  for (int layer = 0; layer < 4; ++layer) {
    for (const char* w : {"moe.expert.fc1.wgrad", "moe.expert.fc2.wgrad"}) {
      const int paired = index(w, layer, 0), last = index(w, layer, 2);
      ASSERT_GE(paired, 0);
      ASSERT_GE(last, 0);
      EXPECT_GT(paired, index("ep.dispatch.bwd.alltoall", layer, 0)) << w << " layer " << layer;
      EXPECT_LT(last, index("ep.dispatch.bwd.alltoall", layer, 2)) << w << " layer " << layer;
    }
  }
  EXPECT_EQ(run(d, false).step_time.count_ps(), run(d, true).step_time.count_ps());
}

}  // namespace
}  // namespace trainsim
