// Closed-form and oracle tests of the strategy compiler (models/compiler.h) together with cost
// binding and replay (STYLE.md 7, layers 1 and 2). Scenarios are built in code.
#include "models/compiler.h"
#include "tests/models/model_fixtures.h"
#include "tests/models/moe_fixtures.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>

#include "calibrate/cost_model.h"
#include "models/catalog.h"
#include "models/memory.h"
#include "models/ops.h"
#include "scenarios/predict.h"
#include "sim/replay.h"
#include "topologies/placement.h"

namespace trainsim {
namespace {

// ---- builders ----------------------------------------------------------------------------

using testing::small_gpt;
using testing::training;
using testing::compile_checked;

// Bytes per reduced gradient element: grad_reduce_dtype "auto" under bf16 training is fp32.
constexpr int64_t kGradBytes = 4;

ParallelSpec parallel(int tp, int pp, int dp) {
  ParallelSpec p;
  p.tp = tp;
  p.pp = pp;
  p.dp = dp;
  return p;
}

ClusterSpec cluster(const std::string& gpu, int gpus, int per_node = 8) {
  ClusterSpec c;
  auto g = find_gpu(gpu);
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  if (g.ok()) c.gpu = g.value();
  c.gpus = gpus;
  c.gpus_per_node = std::min(per_node, gpus);
  c.nic_bandwidth = c.gpu.nic_bandwidth;
  c.nvlink_bandwidth = c.gpu.nvlink_bandwidth;
  return c;
}

Scenario scenario(const ModelSpec& m, const TrainingSpec& t, const ParallelSpec& p, const std::string& gpu) {
  Scenario s;
  s.name = "compiler-test";
  s.file = "<test>";
  s.model = m;
  s.training = t;
  s.parallel = p;
  s.cluster = cluster(gpu, p.tp * p.pp * p.dp * p.cp);
  return s;
}

ReplayResult run(const Plan& plan, bool fast = false) {
  ReplayOptions o;
  o.fast = fast;
  auto r = replay(plan, o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  if (!r.ok()) return ReplayResult{};
  return std::move(r.value());
}

// Every layer compute op (GEMM, attention, norm, elementwise) costs `unit`; the embedding, the
// LM head with its final norm and loss, and the optimizer cost nothing, so that every pipeline
// stage with the same number of layers does the same work; comm is free.
class UniformCostModel : public CostModel {
 public:
  explicit UniformCostModel(Time unit) : unit_(unit) {}
  OpCost compute(const OpDesc& op) const override {
    if (op.cls == OpClass::kEmbedding || op.cls == OpClass::kLoss || op.cls == OpClass::kOptimizer)
      return {Time::zero(), CostSource::kDefault};
    if (op.name.rfind("head.", 0) == 0 || op.name.rfind("final.", 0) == 0) return {Time::zero(), CostSource::kDefault};
    return {unit_, CostSource::kDefault};
  }
  OpCost collective(const OpDesc&, const GroupShape&) const override { return {Time::zero(), CostSource::kDefault}; }
  OpCost p2p(const OpDesc&, bool) const override { return {Time::zero(), CostSource::kDefault}; }
  std::string describe(OpClass, CostSource) const override { return "uniform (test)"; }

 private:
  Time unit_;
};

Time total_compute(const Program& prog) {
  Time t = Time::zero();
  for (const Task& k : prog.tasks)
    if (k.kind == TaskKind::kCompute) t += k.dur;
  return t;
}

// ---- closed form: one GPU ------------------------------------------------------------------

// tp = pp = dp = 1: one stream of work with nothing to wait for, so
//   step = sum over the program's tasks of Task::dur.
TEST(CompilerReplay, SingleGpuStepIsSumOfTaskDurations) {
  for (Recompute rc : {Recompute::kNone, Recompute::kSelective, Recompute::kFull}) {
    ParallelSpec p = parallel(1, 1, 1);
    p.recompute = rc;
    const Scenario s = scenario(small_gpt(), training(1024, 4, 1), p, "H100-SXM-80GB");
    CompiledPlan c = compile_checked(s);
    ASSERT_EQ(c.plan.programs.size(), 1u);
    auto cm = make_default_cost_model(s.cluster);
    ASSERT_TRUE(cm.ok()) << cm.status().to_string();
    ASSERT_TRUE(bind_costs(c.plan, *cm.value(), s.cluster.gpus_per_node, nullptr).ok());
    Time sum = Time::zero();
    for (const Task& t : c.plan.programs[0].tasks) sum += t.dur;
    const ReplayResult r = run(c.plan);
    EXPECT_GT(sum, Time::zero());
    EXPECT_EQ(r.step_time.count_ps(), sum.count_ps()) << "recompute " << to_string(rc);
    // And the buckets of the rank add up to the step.
    ASSERT_EQ(r.ranks.size(), 1u);
    Time buckets = Time::zero();
    for (Time b : r.ranks[0].bucket) buckets += b;
    EXPECT_EQ(buckets.count_ps(), r.step_time.count_ps());
    EXPECT_EQ(r.ranks[0].bucket[static_cast<size_t>(Bucket::kBubble)].count_ps(), 0);
  }
}

// ---- closed form: pipeline bubbles ----------------------------------------------------------

struct PipeRun {
  Time step;
  Time per_micro;      // f + b of one micro-batch on one stage (all its chunks)
  Time bubble_rank0;   // rank 0's bubble bucket
};

PipeRun pipe_run(int p, int m, Schedule sched, int vp) {
  ParallelSpec par = parallel(1, p, 1);
  par.schedule = sched;
  par.vp = vp;
  const Scenario s = scenario(small_gpt(8), training(1024, m, 1), par, "A100-SXM-80GB");
  CompiledPlan c = compile_checked(s);
  UniformCostModel cm(Time::us(10));
  EXPECT_TRUE(bind_costs(c.plan, cm, s.cluster.gpus_per_node, nullptr).ok());
  PipeRun out;
  // Stages are uniform: same work per micro-batch everywhere.
  const Time w0 = total_compute(c.plan.programs[0]);
  for (const Program& prog : c.plan.programs) EXPECT_EQ(total_compute(prog).count_ps(), w0.count_ps()) << prog.name;
  EXPECT_EQ(w0.count_ps() % m, 0);
  out.per_micro = Time::ps(w0.count_ps() / m);
  const ReplayResult r = run(c.plan);
  out.step = r.step_time;
  for (const RankStats& rs : r.ranks)
    if (rs.rank == 0) out.bubble_rank0 = rs.bucket[static_cast<size_t>(Bucket::kBubble)];
  return out;
}

// 1F1B and GPipe with uniform stages and free communication (Narayanan et al. SC'21, sec. 2.2):
//   step = (m + p - 1) * (f + b),  bubble fraction = (p - 1) / (m + p - 1).
TEST(CompilerReplay, OneFOneBAndGpipeBubbleIsClosedForm) {
  for (int p : {2, 4})
    for (int m : {4, 8})
      for (Schedule sched : {Schedule::k1F1B, Schedule::kGpipe}) {
        const PipeRun r = pipe_run(p, m, sched, 1);
        const int64_t fb = r.per_micro.count_ps();
        EXPECT_EQ(r.step.count_ps(), (m + p - 1) * fb) << to_string(sched) << " p=" << p << " m=" << m;
        // Stage 0 idles (p - 1)(f + b) of it: the bubble.
        EXPECT_EQ(r.bubble_rank0.count_ps(), (p - 1) * fb) << to_string(sched) << " p=" << p << " m=" << m;
      }
}

// Interleaved 1F1B with vp chunks per stage: the bubble shrinks by vp,
//   step = (m + (p - 1) / vp) * (f + b),  bubble fraction = (p - 1) / (vp * m + p - 1).
TEST(CompilerReplay, InterleavedBubbleShrinksByVp) {
  const int vp = 2;
  for (int p : {2, 4})
    for (int m : {4, 8}) {
      const PipeRun r = pipe_run(p, m, Schedule::kInterleaved, vp);
      const double fb = static_cast<double>(r.per_micro.count_ps());
      const double expect = (m + static_cast<double>(p - 1) / vp) * fb;
      const double step = static_cast<double>(r.step.count_ps());
      EXPECT_NEAR(step / expect, 1.0, 0.01) << "p=" << p << " m=" << m << ": step " << step * 1e-9 << " ms, expected "
                                           << expect * 1e-9 << " ms";
      const double bubble = (step - m * fb) / step;
      EXPECT_NEAR(bubble, static_cast<double>(p - 1) / (vp * m + p - 1), 0.01) << "p=" << p << " m=" << m;
      // And it beats plain 1F1B on the same job.
      const PipeRun plain = pipe_run(p, m, Schedule::k1F1B, 1);
      EXPECT_LT(r.step.count_ps(), plain.step.count_ps()) << "p=" << p << " m=" << m;
    }
}

// ---- oracle: fast mode vs full mode ---------------------------------------------------------

// Dense jobs have identical TP/DP replicas, so fast mode (one rank per stage) must give exactly
// the full-mode step time. Random small configurations with a fixed seed.
TEST(CompilerReplay, FastModeEqualsFullModeOnRandomDenseConfigs) {
  std::mt19937_64 rng(20240611), fw_rng(20261124);
  auto pick = [&](std::initializer_list<int> v) { return *(v.begin() + rng() % v.size()); };
  int checked = 0;
  for (int i = 0; i < 32; ++i) {
    ParallelSpec p = parallel(pick({1, 2, 4}), pick({1, 2, 4}), pick({1, 2, 4}));
    p.zero = static_cast<int>(rng() % 4);
    p.recompute = static_cast<Recompute>(rng() % 3);
    p.schedule = rng() % 2 ? Schedule::k1F1B : Schedule::kGpipe;
    p.sequence_parallel = p.tp > 1 && rng() % 2;
    const int m = p.pp * static_cast<int>(1 + rng() % 2);
    const std::string gpu = rng() % 2 ? "A100-SXM-80GB" : "H100-SXM-80GB";
    ModelSpec model = small_gpt(8);
    model.mtp_depth = i % 3 == 2 ? 1 : 0;   // a third with one multi-token-prediction module
    Scenario s = scenario(model, training(1024, m, p.dp), p, gpu);
    s.training.framework = static_cast<Framework>(fw_rng() % 3);   // its own draws: the configs stay as they were
    const std::string what = "config " + std::to_string(i) + ": framework=" + to_string(s.training.framework) +
                             " mtp=" + std::to_string(model.mtp_depth) +
                             " tp=" + std::to_string(p.tp) +
                             " pp=" + std::to_string(p.pp) + " dp=" + std::to_string(p.dp) +
                             " zero=" + std::to_string(p.zero) + " recompute=" + to_string(p.recompute) +
                             " schedule=" + to_string(p.schedule) + " sp=" + (p.sequence_parallel ? "on" : "off") +
                             " m=" + std::to_string(m) + " " + gpu;
    PredictOptions full, fast;
    fast.fast = true;
    auto a = predict(s, full);
    auto b = predict(s, fast);
    ASSERT_TRUE(a.ok()) << what << ": " << a.status().to_string();
    ASSERT_TRUE(b.ok()) << what << ": " << b.status().to_string();
    EXPECT_EQ(a.value().step_time.count_ps(), b.value().step_time.count_ps()) << what;
    EXPECT_EQ(b.value().simulated_ranks, p.pp) << what;
    EXPECT_EQ(a.value().simulated_ranks, p.tp * p.pp * p.dp) << what;
    ++checked;
  }
  EXPECT_GE(checked, 30);
}

// Context-parallel jobs: every CP rank of a stage runs the same program, so fast mode must
// equal full mode too (ring shifts and Ulysses all-to-alls rendezvous like any collective).
TEST(CompilerReplay, FastModeEqualsFullModeOnRandomContextParallelConfigs) {
  std::mt19937_64 rng(20261122), fw_rng(20261124);
  auto pick = [&](std::initializer_list<int> v) { return *(v.begin() + rng() % v.size()); };
  for (int i = 0; i < 16; ++i) {
    ParallelSpec p = parallel(pick({1, 2}), pick({1, 2}), pick({1, 2}));
    p.cp = pick({2, 4});
    p.cp_ulysses = pick({1, 2});
    p.cp_load_balance = rng() % 2;
    p.zero = static_cast<int>(rng() % 4);
    p.recompute = static_cast<Recompute>(rng() % 3);
    p.sequence_parallel = p.tp > 1 && rng() % 2;
    const int m = p.pp * static_cast<int>(1 + rng() % 2);
    Scenario s = scenario(small_gpt(4), training(2048, m, p.dp), p, "H100-SXM-80GB");
    s.training.framework = static_cast<Framework>(fw_rng() % 3);   // PyTorch's ring too (its own draws)
    const std::string what = "config " + std::to_string(i) + ": tp=" + std::to_string(p.tp) + " pp=" +
                             std::to_string(p.pp) + " dp=" + std::to_string(p.dp) + " cp=" + std::to_string(p.cp) +
                             " ulysses=" + std::to_string(p.cp_ulysses) + " zero=" + std::to_string(p.zero) +
                             " framework=" + to_string(s.training.framework);
    PredictOptions full, fast;
    fast.fast = true;
    auto a = predict(s, full);
    auto b = predict(s, fast);
    ASSERT_TRUE(a.ok()) << what << ": " << a.status().to_string();
    ASSERT_TRUE(b.ok()) << what << ": " << b.status().to_string();
    EXPECT_EQ(a.value().step_time.count_ps(), b.value().step_time.count_ps()) << what;
    EXPECT_EQ(a.value().simulated_ranks, p.tp * p.pp * p.dp * p.cp) << what;
  }
}

// A ring's collectives run one at a time in the same order on every member (the replay checks
// it). The backward's last dK, dV return (compute stream) waits for the ring's last dK, dV hop
// (CP stream): without that dependency a rank whose hop was still waiting for its peer posted
// the return beside it, and the replay stopped ("program order differs between members") on
// short sequences with tp > 1, where ranks drift apart (tp 2, dp 4, cp 2, seq 512: it did).
TEST(ContextParallel, RingBackwardReturnFollowsTheLastHop) {
  for (int tp : {1, 2})
    for (int cp : {2, 4}) {
      ParallelSpec p = parallel(tp, 1, 4);
      p.cp = cp;
      p.zero = 1;
      p.sequence_parallel = tp > 1;
      ModelSpec m = small_gpt(4);
      m.kv_heads = 4;
      const Scenario s = scenario(m, training(512, 2, p.dp), p, "H100-SXM-80GB");
      const CompiledPlan c = compile_checked(s);
      ASSERT_FALSE(c.plan.programs.empty());
      const auto& tasks = c.plan.programs[0].tasks;
      int returns = 0;
      uint32_t last_hop = kNoDep;
      for (uint32_t i = 0; i < tasks.size(); ++i) {
        const std::string& n = c.plan.ops[tasks[i].op].name;
        if (n == "cp.ring.dkv.sendrecv") last_hop = i;
        if (n == "cp.ring.dkv.return") {
          ++returns;
          EXPECT_EQ(tasks[i].dep[0], last_hop) << "tp " << tp << " cp " << cp << " task " << i;
        }
      }
      EXPECT_EQ(returns, 4 * 2) << "tp " << tp << " cp " << cp;   // per layer and micro-batch
      PredictOptions full, fast;
      fast.fast = true;
      auto a = predict(s, full);
      auto b = predict(s, fast);
      ASSERT_TRUE(a.ok() && b.ok());
      EXPECT_EQ(a->step_time, b->step_time) << "tp " << tp << " cp " << cp;
    }
}

// ---- context parallelism -------------------------------------------------------------------

// Zig-zag chunks: at every ring step every rank computes the same number of causal pairs, and
// all ranks and steps together cover the causal triangle s(s+1)/2 exactly; contiguous chunks
// cover the same triangle but the last rank does cp-1 full blocks more than the first.
TEST(ContextParallel, ZigZagGivesCausalRanksEqualWork) {
  const int64_t s = 4096;
  for (int cp : {2, 4, 8}) {
    for (bool zigzag : {true, false}) {
      int64_t total = 0;
      std::vector<int64_t> per_rank(cp, 0);
      for (int step = 0; step < cp; ++step) {
        int64_t first = -1;
        bool equal = true;
        for (int r = 0; r < cp; ++r) {
          const int64_t w = cp_causal_pairs(s, cp, r, step, zigzag);
          if (first < 0) first = w;
          equal &= w == first;
          per_rank[r] += w;
          total += w;
        }
        // Contiguous chunks are equal only at step 0 (every rank's own diagonal).
        EXPECT_EQ(equal, zigzag || step == 0) << "cp=" << cp << " step=" << step << " zigzag=" << zigzag;
      }
      EXPECT_EQ(total, s * (s + 1) / 2) << "cp=" << cp;
      const int64_t c = zigzag ? s / (2 * cp) : s / cp;
      if (zigzag) {
        for (int r = 0; r < cp; ++r) EXPECT_EQ(per_rank[r], total / cp) << "cp=" << cp;
        EXPECT_EQ(cp_causal_pairs(s, cp, 1, 0, true), 2 * c * c + c);   // own chunks: diagonal + one full
        EXPECT_EQ(cp_causal_pairs(s, cp, 0, 1, true), 2 * c * c);       // any other step: half a block
      } else {
        EXPECT_EQ(per_rank[0], c * (c + 1) / 2);
        EXPECT_EQ(per_rank[cp - 1], (cp - 1) * c * c + c * (c + 1) / 2);
      }
    }
  }
}

// With cp == 1 the block op is the plain attention op.
TEST(ContextParallel, BlockOpWithoutCpIsPlainAttention) {
  LayerDims d = layer_dims(small_gpt(), training(2048, 1, 1), parallel(2, 1, 1));
  for (bool bwd : {false, true}) {
    OpDesc a = attention_op(d, bwd), b = attention_block_op(d, bwd, d.s, d.s, true);
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.flops.v, b.flops.v);
    EXPECT_EQ(a.bytes.count(), b.bytes.count());
    EXPECT_EQ(a.heads, b.heads);
    EXPECT_EQ(a.kv_heads, b.kv_heads);
    EXPECT_EQ(a.seq_q, b.seq_q);
    EXPECT_EQ(a.causal, b.causal);
  }
}

// Per rank, a cp-way job does 1/cp of the work of the same job without CP: model and hardware
// FLOPs (GEMMs on seq/cp tokens; attention blocks summing to 1/cp of the s x s scores).
TEST(ContextParallel, ModelFlopsSplitEvenly) {
  const ModelSpec m = small_gpt(4);
  for (auto [cp, u] : std::vector<std::pair<int, int>>{{2, 1}, {4, 1}, {4, 2}, {4, 4}, {8, 2}}) {
    for (Recompute rc : {Recompute::kNone, Recompute::kFull}) {
      ParallelSpec p1 = parallel(1, 1, 1);
      p1.recompute = rc;
      ParallelSpec pc = p1;
      pc.cp = cp;
      pc.cp_ulysses = u;
      CompiledPlan a = compile_checked(scenario(m, training(4096, 2, 1), p1, "H100-SXM-80GB"));
      CompiledPlan b = compile_checked(scenario(m, training(4096, 2, 1), pc, "H100-SXM-80GB"));
      ASSERT_EQ(b.plan.num_ranks, cp);
      EXPECT_DOUBLE_EQ(b.plan.programs[0].model_flops.v * cp, a.plan.programs[0].model_flops.v) << cp << "/" << u;
      EXPECT_DOUBLE_EQ(b.plan.programs[0].hardware_flops.v * cp, a.plan.programs[0].hardware_flops.v)
          << cp << "/" << u;
    }
  }
}

struct CpCounts {
  int blocks_fwd = 0, blocks_bwd = 0, ring_side = 0, ring_compute = 0, a2a = 0;
  int64_t ring_bytes = 0, a2a_bytes = 0;
  int64_t block_seq = 0, block_heads = 0;
};
CpCounts count_cp(const Plan& plan, int layer, int micro) {
  CpCounts c;
  for (const Task& t : plan.programs[0].tasks) {
    if (t.layer != layer || t.micro != micro) continue;
    const OpDesc& op = plan.ops[t.op];
    if (op.cls == OpClass::kAttention && t.category == Category::kCompute) {
      (op.backward ? c.blocks_bwd : c.blocks_fwd)++;
      c.block_seq = op.seq_q;
      c.block_heads = op.heads;
    }
    if (t.category != Category::kCpComm) continue;
    if (op.coll == CollKind::kSendRecv) {
      (t.stream == kStreamCp ? c.ring_side : c.ring_compute)++;
      EXPECT_EQ(t.group, kGroupCpRing);
      c.ring_bytes += op.bytes.count();
    } else {
      EXPECT_EQ(op.coll, CollKind::kAllToAll);
      EXPECT_EQ(t.group, kGroupCpA2a);
      EXPECT_EQ(t.stream, kStreamCompute);
      ++c.a2a;
      c.a2a_bytes += op.bytes.count();
    }
  }
  return c;
}

// Ring attention, cp = 4 (small_gpt: 16 heads of 64, MHA; seq 4096, b = 1): per layer and
// micro-batch 4 blocks forward and 4 backward of 1024 tokens; K, V of one block = 2 tensors x
// 1024 tokens x 1024 dims x 2 B = 4 MiB. Forward passes them 3 times on the CP stream;
// backward passes K, V 3 times and the partial dK, dV 3 times there, and returns the last
// dK, dV (4 MiB) on the compute stream.
TEST(ContextParallel, RingAttentionStepsAndBytes) {
  ParallelSpec p = parallel(1, 1, 1);
  p.cp = 4;
  CompiledPlan c = compile_checked(scenario(small_gpt(4), training(4096, 1, 1), p, "H100-SXM-80GB"));
  const int64_t kv = 2 * 1024 * 1024 * 2;
  CpCounts n = count_cp(c.plan, 1, 0);
  EXPECT_EQ(n.blocks_fwd, 4);
  EXPECT_EQ(n.blocks_bwd, 4);
  EXPECT_EQ(n.block_seq, 1024);
  EXPECT_EQ(n.block_heads, 16);
  EXPECT_EQ(n.ring_side, 3 + 3 + 3);
  EXPECT_EQ(n.ring_compute, 1);
  EXPECT_EQ(n.ring_bytes, 10 * kv);
  EXPECT_EQ(n.a2a, 0);
  EXPECT_EQ(c.plan.groups[kGroupCpRing].size_of(0), 4u);
}

// PyTorch's ring attention (training.framework torch_*, models/compiler.cpp torch_cp): GQA's
// K, V repeated to the query heads (small_gpt with 4 kv heads of 16: 4x the bytes), all-gathered
// once per pass (R blocks, on the CP stream) instead of 3 hops, and dK, dV passed in fp32.
TEST(ContextParallel, PyTorchRingGathersRepeatedKvAndPassesFp32Gradients) {
  ParallelSpec p = parallel(1, 1, 1);
  p.cp = 4;
  ModelSpec m = small_gpt(4);
  m.kv_heads = 4;
  TrainingSpec t = training(4096, 1, 1);
  t.framework = Framework::kTorchCompile;
  CompiledPlan c = compile_checked(scenario(m, t, p, "H100-SXM-80GB"));
  const int64_t kv = 2 * 1024 * 1024 * 2;   // one block's K, V with all 16 heads (the repeated ones)
  int gathers = 0, sends = 0;
  int64_t gather_bytes = 0, send_bytes = 0;
  for (const Task& k : c.plan.programs[0].tasks) {
    if (k.layer != 1 || k.micro != 0 || k.category != Category::kCpComm) continue;
    const OpDesc& op = c.plan.ops[k.op];
    EXPECT_EQ(k.group, kGroupCpRing);
    if (op.coll == CollKind::kAllGather) {
      ++gathers;
      gather_bytes += op.bytes.count();
      EXPECT_EQ(k.stream, kStreamCp);
    } else {
      ASSERT_EQ(op.coll, CollKind::kSendRecv);
      ++sends;
      send_bytes += op.bytes.count();
    }
  }
  EXPECT_EQ(gathers, 2);                  // forward and backward
  EXPECT_EQ(gather_bytes, 2 * 4 * kv);    // each gathers the 4 blocks
  EXPECT_EQ(sends, 3 + 1);                // the dK, dV hops and their return
  EXPECT_EQ(send_bytes, 4 * 2 * kv);      // fp32
  // The fused framework keeps the ring of hops with the 4 kv heads' bytes.
  t.framework = Framework::kFused;
  CompiledPlan f = compile_checked(scenario(m, t, p, "H100-SXM-80GB"));
  CpCounts n = count_cp(f.plan, 1, 0);
  EXPECT_EQ(n.ring_side, 3 + 3 + 3);
  EXPECT_EQ(n.ring_bytes, 10 * kv / 4);
}

// The merges of the ring's partial results (compiler.cpp cp_merge_op), per layer and micro-batch
// of the same plan: 3 forward merges of 10 B per output element (1024 tokens x 1024 dims) and one
// of 12 B (the step-0 output in, the accumulator out); 3 backward merges of 10 B per dQ element
// and per dK, dV element (2 x 1024 x 1024) and one of 6 B per dQ element. Hybrid cp with one
// ring rank (all Ulysses) and cp 1 have none.
TEST(ContextParallel, RingMergesClosedForm) {
  auto merges = [](const Plan& plan, const std::string& name) {
    int n = 0;
    int64_t bytes = 0;
    for (const Task& t : plan.programs[0].tasks) {
      if (t.layer != 1 || t.micro != 0 || plan.ops[t.op].name != name) continue;
      ++n;
      bytes += plan.ops[t.op].bytes.count();
    }
    return std::make_pair(n, bytes);
  };
  ParallelSpec p = parallel(1, 1, 1);
  p.cp = 4;
  CompiledPlan c = compile_checked(scenario(small_gpt(4), training(4096, 1, 1), p, "H100-SXM-80GB"));
  const int64_t N = 1024 * 1024;
  EXPECT_EQ(merges(c.plan, "attn.cp.merge.fwd"), std::make_pair(3, 3 * 10 * N));
  EXPECT_EQ(merges(c.plan, "attn.cp.merge.out.fwd"), std::make_pair(1, 12 * N));
  EXPECT_EQ(merges(c.plan, "attn.cp.merge.bwd"), std::make_pair(3, 3 * 10 * (N + 2 * N)));
  EXPECT_EQ(merges(c.plan, "attn.cp.merge.out.bwd"), std::make_pair(1, 6 * N));
  p.cp_ulysses = 4;
  CompiledPlan u = compile_checked(scenario(small_gpt(4), training(4096, 1, 1), p, "H100-SXM-80GB"));
  EXPECT_EQ(merges(u.plan, "attn.cp.merge.fwd").first, 0);
  EXPECT_EQ(merges(u.plan, "attn.cp.merge.out.bwd").first, 0);
}

// Ulysses, cp = cp_ulysses = 4: one block of the whole sequence for 16/4 heads; all-to-alls of
// Q, K, V (3 x 1024 tokens x 1024 dims x 2 B) and of the output (1024 x 1024 x 2 B), forward and
// backward. Hybrid cp = 4 = 2 Ulysses x 2 ring: blocks of 2048 tokens for 8 heads, one shift.
TEST(ContextParallel, UlyssesAndHybridStructure) {
  ParallelSpec p = parallel(1, 1, 1);
  p.cp = 4;
  p.cp_ulysses = 4;
  CompiledPlan c = compile_checked(scenario(small_gpt(4), training(4096, 1, 1), p, "H100-SXM-80GB"));
  CpCounts n = count_cp(c.plan, 1, 0);
  EXPECT_EQ(n.blocks_fwd, 1);
  EXPECT_EQ(n.block_seq, 4096);
  EXPECT_EQ(n.block_heads, 4);
  EXPECT_EQ(n.ring_side + n.ring_compute, 0);
  EXPECT_EQ(n.a2a, 4);
  EXPECT_EQ(n.a2a_bytes, 2 * (3 * 1024 * 1024 * 2 + 1024 * 1024 * 2));
  EXPECT_EQ(c.plan.groups[kGroupCpA2a].size_of(0), 4u);

  p.cp_ulysses = 2;
  CompiledPlan h = compile_checked(scenario(small_gpt(4), training(4096, 1, 1), p, "H100-SXM-80GB"));
  n = count_cp(h.plan, 1, 0);
  EXPECT_EQ(n.blocks_fwd, 2);
  EXPECT_EQ(n.block_seq, 2048);
  EXPECT_EQ(n.block_heads, 8);
  EXPECT_EQ(n.ring_side, 1 + 1 + 1);
  EXPECT_EQ(n.a2a, 4);
  // Ulysses groups are consecutive ranks {0,1}, {2,3}; rings join equal offsets {0,2}, {1,3}.
  EXPECT_EQ(h.plan.groups[kGroupCpA2a].instance_of_rank[1], h.plan.groups[kGroupCpA2a].instance_of_rank[0]);
  EXPECT_EQ(h.plan.groups[kGroupCpRing].instance_of_rank[2], h.plan.groups[kGroupCpRing].instance_of_rank[0]);
  EXPECT_NE(h.plan.groups[kGroupCpRing].instance_of_rank[1], h.plan.groups[kGroupCpRing].instance_of_rank[0]);
}

// Long sequences: a KV block's transfer is far shorter than a block of attention, so ring
// attention hides nearly all of its passing (Llama-3-8B, 128K tokens, cp = 8 on one node).
TEST(ContextParallel, RingPassingHiddenUnderBlockAttention) {
  auto cat = find_model("llama3-8b");
  ASSERT_TRUE(cat.ok()) << cat.status().to_string();
  ModelSpec m = cat.value();
  m.layers = 4;   // the same layers, fewer of them
  ParallelSpec p = parallel(1, 1, 1);
  p.cp = 8;
  auto r = predict(scenario(m, training(131072, 1, 1), p, "H100-SXM-80GB"), PredictOptions{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  Time cp_total = Time::zero();
  for (const Task& t : r->plan->programs[0].tasks)
    if (t.category == Category::kCpComm) cp_total += t.dur;
  EXPECT_GT(cp_total, Time::zero());
  const Time exposed = r->breakdown[static_cast<size_t>(Bucket::kCpExposed)];
  EXPECT_LT(exposed.seconds(), 0.25 * cp_total.seconds()) << "exposed " << exposed.seconds() << " s of "
                                                          << cp_total.seconds() << " s";
  EXPECT_GT(exposed, Time::zero());   // the final dK, dV return blocks the compute stream
}

// ---- activation offload --------------------------------------------------------------------

// One GPU, one micro-batch, every layer op and every copy costs one unit (UniformCostModel):
// each layer's copy to host ends long before the next layer's forward does, and each copy back
// runs under the backward of the layer above, except the top layer's, issued when the backward
// starts: exactly one unit of exposed offload, and the step grows by exactly that unit. HBM
// holds at most two layers' offloaded activations (the one in backward and the one fetched).
TEST(ActivationOffload, OverlapAndMemoryClosedForm) {
  const int L = 8;
  const Time unit = Time::from_seconds(1e-6);
  ParallelSpec p0 = parallel(1, 1, 1);
  ParallelSpec p1 = p0;
  p1.activation_offload = 1.0;
  const Scenario s0 = scenario(small_gpt(L), training(1024, 1, 1), p0, "H100-SXM-80GB");
  const Scenario s1 = scenario(small_gpt(L), training(1024, 1, 1), p1, "H100-SXM-80GB");
  CompiledPlan a = compile_checked(s0), b = compile_checked(s1);
  UniformCostModel cm(unit);
  ASSERT_TRUE(bind_costs(a.plan, cm, 8, nullptr).ok());
  ASSERT_TRUE(bind_costs(b.plan, cm, 8, nullptr).ok());
  int d2h = 0, h2d = 0;
  int64_t moved = 0;
  for (const Task& t : b.plan.programs[0].tasks) {
    if (t.category != Category::kOffload) continue;
    (t.stream == kStreamOffloadOut ? d2h : h2d)++;
    moved += b.plan.ops[t.op].bytes.count();
    EXPECT_EQ(b.plan.ops[t.op].cls, OpClass::kOffload);
  }
  EXPECT_EQ(d2h, L);
  EXPECT_EQ(h2d, L);
  const LayerActivation act = layer_activation(small_gpt(L), 1024, 1, 1, false, Recompute::kNone);
  EXPECT_EQ(moved, 2 * L * act.saved_bytes);
  const ReplayResult ra = run(a.plan), rb = run(b.plan);
  EXPECT_EQ((rb.step_time - ra.step_time).count_ps(), unit.count_ps());
  EXPECT_EQ(rb.ranks[0].bucket[static_cast<size_t>(Bucket::kOffloadExposed)].count_ps(), unit.count_ps());
  EXPECT_GE(ra.ranks[0].peak_dynamic_mem, L * act.saved_bytes);
  EXPECT_LE(rb.ranks[0].peak_dynamic_mem, ra.ranks[0].peak_dynamic_mem - (L - 2) * act.saved_bytes);
}

// Half offloaded: half of every layer's saved bytes travel, and the default cost model prices a
// copy at the GPU's PCIe rate (64 GB/s per direction on H100) times the embedded efficiency.
TEST(ActivationOffload, PricedOverPcie) {
  ParallelSpec p = parallel(1, 1, 1);
  p.activation_offload = 0.5;
  const Scenario s = scenario(small_gpt(4), training(1024, 1, 1), p, "H100-SXM-80GB");
  CompiledPlan c = compile_checked(s);
  auto cm = make_default_cost_model(s.cluster);
  ASSERT_TRUE(cm.ok());
  const auto* dm = dynamic_cast<const DefaultCostModel*>(cm.value().get());
  ASSERT_NE(dm, nullptr);
  const LayerActivation act = layer_activation(small_gpt(4), 1024, 1, 1, false, Recompute::kNone);
  for (const OpDesc& op : c.plan.ops) {
    if (op.cls != OpClass::kOffload) continue;
    EXPECT_EQ(op.bytes.count(), act.saved_bytes / 2);
    const Time want = transfer_time(op.bytes, Bandwidth::GBps(64) * dm->efficiencies().pcie) +
                      dm->efficiencies().memory_overhead;
    EXPECT_EQ(dm->compute(op).time.count_ps(), want.count_ps());
  }
}

// ---- plan structure ------------------------------------------------------------------------

struct TpCounts {
  int ar = 0, ag = 0, rs = 0, side_ag = 0;
};

// TP collectives of (layer, micro-batch) in program order, split at the layer's first backward
// compute op into forward and backward.
void count_tp(const Plan& plan, const Program& prog, int layer, int micro, TpCounts* fwd, TpCounts* bwd) {
  bool in_bwd = false;
  for (const Task& t : prog.tasks) {
    if (t.layer != layer || t.micro != micro) continue;
    const OpDesc& op = plan.ops[t.op];
    if (t.kind == TaskKind::kCompute && op.backward) in_bwd = true;
    if (t.kind != TaskKind::kCollective || t.category != Category::kTpComm) continue;
    TpCounts* c = in_bwd ? bwd : fwd;
    if (t.group == kGroupTpSide) {
      EXPECT_EQ(op.coll, CollKind::kAllGather) << op.name;
      EXPECT_EQ(t.stream, kStreamGather) << op.name;
      ++c->side_ag;
      continue;
    }
    EXPECT_EQ(t.group, kGroupTp) << op.name;
    EXPECT_EQ(t.stream, kStreamCompute) << op.name;
    if (op.coll == CollKind::kAllReduce) ++c->ar;
    else if (op.coll == CollKind::kAllGather) ++c->ag;
    else if (op.coll == CollKind::kReduceScatter) ++c->rs;
    else ADD_FAILURE() << "unexpected TP collective " << op.name;
  }
}

TEST(CompilerPlan, Tp2Pp2Dp2Structure) {
  for (bool sp : {false, true}) {
    ParallelSpec p = parallel(2, 2, 2);
    p.sequence_parallel = sp;
    const int m = 4;
    const Scenario s = scenario(small_gpt(8), training(1024, m, 2), p, "H100-SXM-80GB");
    const CompiledPlan c = compile_checked(s);
    const Plan& plan = c.plan;
    ASSERT_EQ(plan.num_ranks, 8);
    ASSERT_EQ(plan.programs.size(), 2u);
    ASSERT_EQ(c.stages.size(), 2u);
    EXPECT_EQ(c.micro_batches, m);

    // Every rank runs its pipeline stage's program.
    auto pl = Placement::make(p, s.cluster.gpus_per_node);
    ASSERT_TRUE(pl.ok()) << pl.status().to_string();
    for (uint32_t r = 0; r < 8; ++r)
      EXPECT_EQ(plan.program_of_rank[r], static_cast<uint32_t>(pl.value().coord(r, Axis::kPp))) << "rank " << r;
    // Fast mode's representatives: one per stage, on that stage.
    ASSERT_EQ(plan.representatives.size(), 2u);
    for (int st = 0; st < 2; ++st) EXPECT_EQ(plan.program_of_rank[plan.representatives[st]], static_cast<uint32_t>(st));

    // TP collectives per layer, per micro-batch:
    //   no SP: forward 2 all-reduce (after attention out-proj and FC2), backward 2 all-reduce;
    //   SP:    forward 2 all-gather + 2 reduce-scatter; backward 2 AG + 2 RS on the compute
    //          stream and 2 side re-gathers (FC1 and QKV inputs for the weight gradients).
    for (int st = 0; st < 2; ++st) {
      const Program& prog = plan.programs[st];
      ASSERT_EQ(c.stages[st].layers.size(), 4u);
      for (int layer : c.stages[st].layers)
        for (int micro = 0; micro < m; ++micro) {
          TpCounts f, b;
          count_tp(plan, prog, layer, micro, &f, &b);
          const std::string what = std::string(sp ? "sp" : "no sp") + " stage " + std::to_string(st) + " layer " +
                                   std::to_string(layer) + " micro " + std::to_string(micro);
          if (!sp) {
            EXPECT_EQ(f.ar, 2) << what;
            EXPECT_EQ(f.ag + f.rs + f.side_ag, 0) << what;
            EXPECT_EQ(b.ar, 2) << what;
            EXPECT_EQ(b.ag + b.rs + b.side_ag, 0) << what;
          } else {
            EXPECT_EQ(f.ar, 0) << what;
            EXPECT_EQ(f.ag, 2) << what;
            EXPECT_EQ(f.rs, 2) << what;
            EXPECT_EQ(f.side_ag, 0) << what;
            EXPECT_EQ(b.ar, 0) << what;
            EXPECT_EQ(b.ag, 2) << what;
            EXPECT_EQ(b.rs, 2) << what;
            EXPECT_EQ(b.side_ag, 2) << what;
          }
        }
    }

    // DP (zero 0): each stage all-reduces its gradients once per step, in fp32 (grad_reduce_dtype
    // "auto" under bf16 training): sum of the reduction bytes = 4 B x the stage's parameters
    // (after the TP split).
    for (int st = 0; st < 2; ++st) {
      int64_t bytes = 0;
      for (const Task& t : plan.programs[st].tasks)
        if (t.kind == TaskKind::kCollective && t.group == kGroupDp) {
          EXPECT_EQ(plan.ops[t.op].coll, CollKind::kAllReduce);
          EXPECT_EQ(t.stream, kStreamDp);
          bytes += plan.ops[t.op].bytes.count();
        }
      EXPECT_EQ(bytes, kGradBytes * c.stages[st].params_local)
          << (sp ? "sp" : "no sp") << " stage " << st << ": reduced " << bytes << " B for "
          << c.stages[st].params_local << " parameters (difference " << kGradBytes * c.stages[st].params_local - bytes
          << " B)";
    }
  }
}

// A tied embedding on a single stage is one weight: its gradient (embedding backward + LM-head
// weight gradient, accumulated) is reduced once, so the DP bytes are still 2 B x parameters.
TEST(CompilerPlan, TiedEmbeddingSingleStageReducedOnce) {
  ModelSpec model = small_gpt(8);
  model.tied_embeddings = true;
  const Scenario s = scenario(model, training(1024, 4, 2), parallel(1, 1, 2), "H100-SXM-80GB");
  const CompiledPlan c = compile_checked(s);
  ASSERT_EQ(c.stages.size(), 1u);
  int64_t bytes = 0;
  for (const Task& t : c.plan.programs[0].tasks)
    if (t.kind == TaskKind::kCollective && t.group == kGroupDp) bytes += c.plan.ops[t.op].bytes.count();
  EXPECT_EQ(bytes, kGradBytes * c.stages[0].params_local)
      << "reduced " << bytes << " B for " << c.stages[0].params_local << " parameters; the embedding is "
      << embedding_params(model) << " parameters (" << 2 * embedding_params(model) << " B)";
}

// ZeRO-1/2: the updated parameter shards are gathered back once a step, either at the start of
// the next forward (dp_overlap, Megatron's --overlap-param-gather) or after the optimizer; both
// gather every parameter the stage holds (2 B each: the embedding on the first stage, the final
// norm and the LM head on the last, a head tied to the embedding only once when pp = 1).
TEST(CompilerPlan, Zero12ParamGatherCoversEveryStageParameter) {
  for (bool tied : {false, true})
    for (int pp : {1, 2, 4})
      for (bool overlap : {false, true})
      for (int mtp : {0, 1}) {   // MTP: its module's parameters (and embedding copy) on the last stage
        ModelSpec model = small_gpt(8);
        model.tied_embeddings = tied;
        model.mtp_depth = mtp;
        ParallelSpec par = parallel(1, pp, 2);
        par.zero = 1;
        par.dp_overlap = overlap;
        const Scenario s = scenario(model, training(1024, 4, 2), par, "H100-SXM-80GB");
        const CompiledPlan c = compile_checked(s);
        ASSERT_EQ(static_cast<int>(c.stages.size()), pp);
        for (int st = 0; st < pp; ++st) {
          int64_t bytes = 0;
          for (const Task& t : c.plan.programs[st].tasks)
            if (c.plan.ops[t.op].name == "zero.param.allgather") bytes += c.plan.ops[t.op].bytes.count();
          EXPECT_EQ(bytes, 2 * c.stages[st].params_local)
              << "tied " << tied << " pp " << pp << " overlap " << overlap << " mtp " << mtp << " stage " << st;
        }
      }
}

// Bytes of the collectives named `name`, over the groups of size `group_size` (any if 0).
int64_t coll_bytes(const CompiledPlan& c, const std::string& name, uint32_t group_size = 0) {
  int64_t b = 0;
  for (const Task& t : c.plan.programs[0].tasks)
    if (t.kind == TaskKind::kCollective && c.plan.ops[t.op].name == name &&
        (group_size == 0 || c.plan.groups[t.group].size_of(0) == group_size))
      b += c.plan.ops[t.op].bytes.count();
  return b;
}

// A ZeRO shard group of one rank (fsdp_shard_group 1): each rank keeps every parameter and
// optimizer state, so its gradients are all-reduced whole over the dp replicas (4 ranks): ZeRO-1
// per bucket, 2 B x params in all; ZeRO-3 per layer and micro-batch, the bytes plain FSDP
// reduce-scatters. It used to reduce over the shard group of one rank only: nothing moved.
TEST(CompilerPlan, ShardGroupOfOneAllReducesOverTheReplicas) {
  for (int zero : {1, 3}) {
    ParallelSpec par = parallel(1, 1, 4);
    par.zero = zero;
    const Scenario all = scenario(small_gpt(4), training(1024, 2, 4), par, "H100-SXM-80GB");
    par.fsdp_shard_group = 1;
    const Scenario one = scenario(small_gpt(4), training(1024, 2, 4), par, "H100-SXM-80GB");
    const CompiledPlan ca = compile_checked(all), c1 = compile_checked(one);
    ASSERT_FALSE(c1.plan.programs.empty());
    if (zero == 1) {
      EXPECT_EQ(coll_bytes(c1, "dp.grad.replica.allreduce", 4), kGradBytes * c1.stages[0].params_local);
      EXPECT_EQ(coll_bytes(c1, "dp.grad.reducescatter"), 0);
      EXPECT_EQ(coll_bytes(ca, "dp.grad.reducescatter", 4), kGradBytes * ca.stages[0].params_local);
    } else {
      const int64_t fsdp = coll_bytes(ca, "zero3.grad.reducescatter", 4);
      EXPECT_GT(fsdp, 0);
      EXPECT_EQ(coll_bytes(c1, "hsdp.grad.allreduce", 4), fsdp);
      EXPECT_EQ(coll_bytes(c1, "zero3.grad.reducescatter"), 0);
      EXPECT_EQ(coll_bytes(c1, "zero3.param.allgather"), 0);   // nothing to gather: all local
    }
  }
}

// HSDP with ZeRO-3 (PyTorch FSDP2): each layer's replica all-reduce runs on the replica
// stream after its reduce-scatter, so the next layer's reduce-scatter (DP stream) does not wait
// for it; the optimizer waits for the last one. With the replica all-reduces on the DP stream
// (as before) the step can only be longer: the test rebuilds that plan by moving them back.
TEST(CompilerPlan, HsdpReplicaAllReduceHasAStreamOfItsOwn) {
  ParallelSpec par = parallel(1, 1, 8);
  par.zero = 3;
  par.fsdp_shard_group = 4;   // 2 replicas of 4 shards
  Scenario s = scenario(small_gpt(4), training(1024, 2, 8), par, "H100-SXM-80GB");
  s.cluster.gpus_per_node = 4;   // the replicas across nodes: a slow all-reduce
  CompiledPlan c = compile_checked(s);
  const std::vector<Task>& tasks = c.plan.programs[0].tasks;
  int ars = 0;
  uint32_t last_ar = kNoDep, opt = kNoDep;
  for (uint32_t i = 0; i < tasks.size(); ++i) {
    const Task& t = tasks[i];
    if (t.category == Category::kOptimizer) opt = i;
    if (t.kind != TaskKind::kCollective || c.plan.ops[t.op].name != "hsdp.grad.allreduce") continue;
    ++ars;
    last_ar = i;
    EXPECT_EQ(t.stream, kStreamDpReplica);
    ASSERT_NE(t.dep[0], kNoDep);
    EXPECT_EQ(c.plan.ops[tasks[t.dep[0]].op].name, "zero3.grad.reducescatter");
    EXPECT_EQ(tasks[t.dep[0]].stream, kStreamDp);
  }
  EXPECT_EQ(ars, 2 * (4 + 2));   // per unit (4 layers, the embedding, the head) and micro-batch
  ASSERT_NE(opt, kNoDep);
  EXPECT_TRUE(tasks[opt].dep[0] == last_ar || tasks[opt].dep[1] == last_ar);
  auto own = predict(s, PredictOptions{});
  ASSERT_TRUE(own.ok()) << own.status().to_string();
  // The same plan with the all-reduces on the DP stream.
  auto model = make_default_cost_model(s.cluster, InNetworkReduction{});
  ASSERT_TRUE(model.ok());
  for (Task& t : c.plan.programs[0].tasks)
    if (t.stream == kStreamDpReplica) t.stream = kStreamDp;
  ASSERT_TRUE(c.plan.finalize().ok());
  ASSERT_TRUE(bind_costs(c.plan, *model.value(), s.cluster.gpus_per_node, nullptr).ok());
  ReplayOptions ro;
  ro.fast = true;
  ro.comm_sm_share = comm_sm_share(24, s.cluster.gpu);
  auto shared = replay(c.plan, ro);
  ASSERT_TRUE(shared.ok());
  EXPECT_LT(own->step_time, shared->step_time);
}

// hsdp_defer_all_reduce (FSDP2 set_requires_all_reduce(False) but in the last micro-batch):
// the replica all-reduces of the last micro-batch only, each of the full size, the reduce-scatters
// still every micro-batch; the step is no longer (less traffic on the same links), fast == full.
// With a shard group of one rank (the all-reduce of whole gradients) the same.
TEST(CompilerPlan, HsdpDeferredAllReduceOnlyInTheLastMicroBatch) {
  for (int shard : {4, 1}) {
    ParallelSpec par = parallel(1, 1, 8);
    par.zero = 3;
    par.fsdp_shard_group = shard;
    Scenario s = scenario(small_gpt(4), training(1024, 3, 8), par, "H100-SXM-80GB");   // 3 micro-batches
    s.cluster.gpus_per_node = 4;
    const CompiledPlan every = compile_checked(s);
    s.parallel.hsdp_defer_all_reduce = true;
    const CompiledPlan last = compile_checked(s);
    auto count = [](const CompiledPlan& c, const std::string& name, int micro) {
      int n = 0;
      for (const Task& t : c.plan.programs[0].tasks)
        n += t.kind == TaskKind::kCollective && c.plan.ops[t.op].name == name && (micro < 0 || t.micro == micro);
      return n;
    };
    const std::string what = "shard " + std::to_string(shard);
    EXPECT_EQ(count(every, "hsdp.grad.allreduce", -1), 3 * (4 + 2)) << what;
    EXPECT_EQ(count(last, "hsdp.grad.allreduce", -1), 4 + 2) << what;   // 4 layers, embedding, head
    EXPECT_EQ(count(last, "hsdp.grad.allreduce", 2), 4 + 2) << what;    // all in the last micro-batch
    EXPECT_EQ(count(last, "zero3.grad.reducescatter", -1), count(every, "zero3.grad.reducescatter", -1)) << what;
    EXPECT_EQ(3 * coll_bytes(last, "hsdp.grad.allreduce"), coll_bytes(every, "hsdp.grad.allreduce")) << what;
    s.parallel.hsdp_defer_all_reduce = false;
    auto a = predict(s, PredictOptions{});
    s.parallel.hsdp_defer_all_reduce = true;
    auto b = predict(s, PredictOptions{});
    PredictOptions fast;
    fast.fast = true;
    auto c = predict(s, fast);
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    EXPECT_LE(b->step_time, a->step_time) << what;
    EXPECT_LT(b->comm_total, a->comm_total) << what;
    EXPECT_EQ(b->step_time, c->step_time) << what;
  }
}

// ZeRO 0 shards nothing: a shard group given through the API (the loader rejects it) is read
// as all of dp, the plan of fsdp_shard_group 0 (it used to all-reduce inside the shard only).
TEST(CompilerPlan, ZeroZeroReadsAShardGroupAsAllOfDp) {
  ParallelSpec par = parallel(1, 1, 4);
  const CompiledPlan a = compile_checked(scenario(small_gpt(4), training(1024, 2, 4), par, "H100-SXM-80GB"));
  par.fsdp_shard_group = 2;
  const CompiledPlan b = compile_checked(scenario(small_gpt(4), training(1024, 2, 4), par, "H100-SXM-80GB"));
  ASSERT_EQ(a.plan.programs[0].tasks.size(), b.plan.programs[0].tasks.size());
  EXPECT_EQ(coll_bytes(b, "dp.grad.allreduce", 4), kGradBytes * b.stages[0].params_local);
  EXPECT_EQ(coll_bytes(b, "dp.grad.allreduce", 4), coll_bytes(a, "dp.grad.allreduce", 4));
}

// Extreme but valid input: a step whose single program would take over 10^6 s (a 16M-token
// sequence on one GPU) is an error naming the program, not a crash (times past ~9.2e6 s used to
// abort in Time::from_seconds, or overflow the replay's picoseconds).
TEST(CompilerReplay, StepBeyondTheTimeRangeIsAnError) {
  ParallelSpec par = parallel(1, 1, 1);
  ModelSpec big = small_gpt(32);   // attention 4 s^2 h per layer: ~9e18 FLOPs forward at 16M tokens
  big.hidden = 8192;
  big.heads = big.kv_heads = 64;
  big.head_dim = 128;
  big.ffn_hidden = 4 * 8192;
  const Scenario s = scenario(big, training(1 << 24, 1, 1), par, "H100-SXM-80GB");
  auto p = predict(s, PredictOptions{});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().to_string().find("beyond the simulator's range"), std::string::npos) << p.status().to_string();
  // A long but representable step still runs (1M tokens: hours, not months).
  const Scenario ok = scenario(small_gpt(8), training(1 << 20, 1, 1), par, "H100-SXM-80GB");
  auto q = predict(ok, PredictOptions{});
  ASSERT_TRUE(q.ok()) << q.status().to_string();
  EXPECT_GT(q->step_time, Time::ms(1000));
}

// ZeRO-3's gathered working set is the layer in use and zero3_prefetch ahead, at most every
// layer of the stage: a prefetch of 10,000 on 4 layers holds what 3 does (it used to count
// 10,001 layers: a quickstart at 4,121 GiB).
TEST(CompilerMemory, Zero3PrefetchBeyondTheStageGathersItAll) {
  auto params_mem = [](int prefetch) {
    ParallelSpec par = parallel(1, 1, 2);
    par.zero = 3;
    par.zero3_prefetch = prefetch;
    const CompiledPlan c = compile_checked(scenario(small_gpt(4), training(1024, 2, 2), par, "H100-SXM-80GB"));
    return c.plan.programs.empty() ? int64_t{-1} : c.plan.programs[0].mem.params.count();
  };
  const int64_t p1 = params_mem(1), p3 = params_mem(3), pbig = params_mem(10000);
  EXPECT_GT(p3, p1);
  EXPECT_EQ(pbig, p3);
  EXPECT_EQ(params_mem(4), p3);
}

// ---- tied embeddings under PP: the embedding-gradient all-reduce -----------------------------

// The tasks of a program named "pp.embedding.grad.allreduce".
std::vector<uint32_t> embedding_grad_tasks(const Plan& plan, int program) {
  std::vector<uint32_t> out;
  const auto& tasks = plan.programs[program].tasks;
  for (uint32_t i = 0; i < tasks.size(); ++i)
    if (plan.ops[tasks[i].op].name == "pp.embedding.grad.allreduce") out.push_back(i);
  return out;
}

// Tied embeddings with pp > 1 (compiler.h): stage 0 (the embedding) and stage pp-1 (the LM
// head's copy) all-reduce the weight's bf16 gradient once per step over a 2-rank group, the
// ranks of the two end stages with equal tp/cp/dp coordinates:
//   S = 2 B x ceil(vocab x h / tp)        (ZeRO-3: ceil(S / (dp x cp)), the shard kept)
// one task per step on each end stage, none on the middle stages, none with pp = 1 or an
// untied head; on the compute stream (blocking), PP comm, no memory of its own, after the
// stage's last gradient reduction (dep), and the optimizer is the next compute task.
TEST(CompilerPlan, TiedEmbeddingGradAllReduceBetweenEndStages) {
  const ModelSpec untied = small_gpt(8);
  ModelSpec tied = untied;
  tied.tied_embeddings = true;
  const int64_t V = 32000, h = 1024;
  for (bool is_tied : {true, false})
    for (int pp : {1, 2, 4})
      for (int vp : {1, 2})
        for (int tp : {1, 2})
          for (int zero : {0, 1, 3})
            for (bool overlap : {true, false}) {
              if (vp > 1 && pp == 1) continue;
              ParallelSpec p = parallel(tp, pp, 2);
              p.vp = vp;
              if (vp > 1) p.schedule = Schedule::kInterleaved;
              p.zero = zero;
              p.dp_overlap = overlap;
              const std::string what = std::string(is_tied ? "tied" : "untied") + " pp=" + std::to_string(pp) +
                                       " vp=" + std::to_string(vp) + " tp=" + std::to_string(tp) +
                                       " zero=" + std::to_string(zero) + " overlap=" + std::to_string(overlap);
              const Scenario s = scenario(is_tied ? tied : untied, training(1024, 2 * pp, 2), p, "H100-SXM-80GB");
              const CompiledPlan c = compile_checked(s);
              const Plan& plan = c.plan;
              ASSERT_EQ(plan.programs.size(), static_cast<size_t>(pp)) << what;
              const bool expect = is_tied && pp > 1;
              ASSERT_EQ(plan.groups.size(), expect ? 8u : 7u) << what;
              for (int st = 0; st < pp; ++st) {
                const auto ids = embedding_grad_tasks(plan, st);
                const bool end = st == 0 || st == pp - 1;
                ASSERT_EQ(ids.size(), expect && end ? 1u : 0u) << what << " stage " << st;
                if (ids.empty()) continue;
                const auto& tasks = plan.programs[st].tasks;
                const Task& t = tasks[ids[0]];
                const OpDesc& op = plan.ops[t.op];
                const int64_t S = 2 * ((V * h + tp - 1) / tp);   // the bf16 weight; reduced in fp32
                EXPECT_EQ(op.bytes.count(), (kGradBytes / 2) * (zero == 3 ? (S + 1) / 2 : S)) << what;
                EXPECT_EQ(op.coll, CollKind::kAllReduce) << what;
                EXPECT_EQ(t.kind, TaskKind::kCollective) << what;
                EXPECT_EQ(t.group, embedding_grad_group(false, false)) << what;
                EXPECT_EQ(t.category, Category::kPpComm) << what;
                EXPECT_EQ(t.stream, kStreamCompute) << what;
                EXPECT_EQ(t.mem_alloc, 0);
                EXPECT_EQ(t.mem_free, 0);
                // After the stage's last gradient reduction (dp = 2: there is one), on the DP
                // stream with dp_overlap (or ZeRO-3's per-micro-batch reduce-scatters), else on
                // the compute stream; no reduction after it.
                ASSERT_NE(t.dep[0], kNoDep) << what;
                EXPECT_EQ(tasks[t.dep[0]].kind, TaskKind::kCollective) << what;
                EXPECT_EQ(tasks[t.dep[0]].category, Category::kDpComm) << what;
                EXPECT_EQ(tasks[t.dep[0]].stream, overlap || zero == 3 ? kStreamDp : kStreamCompute) << what;
                for (uint32_t i = t.dep[0] + 1; i < ids[0]; ++i)
                  EXPECT_NE(tasks[i].category, Category::kDpComm) << what << ": reduction " << i << " after the dep";
                // The optimizer waits for it and is the next compute-stream task.
                uint32_t next = ids[0] + 1;
                while (next < tasks.size() && tasks[next].stream != kStreamCompute) ++next;
                ASSERT_LT(next, tasks.size()) << what;
                EXPECT_EQ(tasks[next].category, Category::kOptimizer) << what;
                EXPECT_EQ(tasks[next].dep[0], ids[0]) << what;
              }
              if (!expect) continue;
              // The group: tp x dp instances of 2 ranks, stage 0's and stage pp-1's with the same
              // tp/cp/dp coordinates; the middle stages' ranks are not members.
              const GroupTable& g = plan.groups[embedding_grad_group(false, false)];
              EXPECT_EQ(g.name, "pp-embedding");
              ASSERT_EQ(g.instances(), static_cast<uint32_t>(tp * 2)) << what;
              auto pl = Placement::make(p, s.cluster.gpus_per_node);
              ASSERT_TRUE(pl.ok());
              for (uint32_t r = 0; r < static_cast<uint32_t>(plan.num_ranks); ++r) {
                const int stage = pl->coord(r, Axis::kPp);
                if (stage != 0 && stage != pp - 1) {
                  EXPECT_EQ(g.instance_of_rank[r], kNoDep) << what << " rank " << r;
                  continue;
                }
                const uint32_t i = g.instance_of_rank[r];
                ASSERT_NE(i, kNoDep) << what << " rank " << r;
                ASSERT_EQ(g.size_of(i), 2u) << what;
                auto other = pl->coords(r);
                other[static_cast<int>(Axis::kPp)] = stage == 0 ? pp - 1 : 0;
                const uint32_t a = g.members[g.member_offsets[i]], b = g.members[g.member_offsets[i] + 1];
                EXPECT_EQ(std::min(r, pl->rank_of(other)), a) << what;
                EXPECT_EQ(std::max(r, pl->rank_of(other)), b) << what;
              }
              // Parameters (and so static memory: weights, gradients, optimizer states): the last
              // stage holds the head's copy as a parameter of its own, vocab/tp x h like an untied
              // head, and stage 0 the embedding: both as in the untied model.
              const CompiledPlan cu = compile_checked(scenario(untied, training(1024, 2 * pp, 2), p, "H100-SXM-80GB"));
              EXPECT_EQ(c.stages[pp - 1].params_local, cu.stages[pp - 1].params_local) << what;
              EXPECT_EQ(c.stages[0].params_local, cu.stages[0].params_local) << what;
            }
}

// Its time is the analytic 2-rank all-reduce over the span the pair crosses. tp 8 x pp 2 on
// 8-GPU nodes: stage 0 on node 0, stage 1 on node 1, so each pair (rank i, rank 8 + i) spans
// two nodes with one member each (p = 2, q = 1, n = 2); ring, tree and hierarchical all give
//   2(p-1)/p x S / B_nic + 2(p-1) x alpha_nic = S / B_nic + 2 alpha_nic,
// B_nic = nic_bandwidth x eff.nic. With pp = 2 and 8 GPUs per node but tp 4 x dp 2 the pair
// crosses nodes too; on one node (tp 2 x pp 2 x dp 2 = 8 GPUs, 8 per node) it is the NVLink
// all-reduce: S / B_nvl_ar + 2 alpha_nvl. In the replay the pair meets, then takes exactly that.
TEST(CompilerReplay, TiedEmbeddingGradAllReduceIsTwoRankAllReduce) {
  ModelSpec m = small_gpt(8);
  m.tied_embeddings = true;
  struct Case {
    int tp, pp, dp;
    bool cross_node;
  };
  for (const Case& k : {Case{8, 2, 1, true}, Case{4, 2, 2, true}, Case{2, 2, 2, false}}) {
    const Scenario s = scenario(m, training(1024, 4, k.dp), parallel(k.tp, k.pp, k.dp), "H100-SXM-80GB");
    ASSERT_EQ(s.cluster.gpus_per_node, 8);
    CompiledPlan c = compile_checked(s);
    auto cm = make_default_cost_model(s.cluster);
    ASSERT_TRUE(cm.ok()) << cm.status().to_string();
    ASSERT_TRUE(bind_costs(c.plan, *cm.value(), s.cluster.gpus_per_node, nullptr).ok());
    auto eff = default_efficiencies(gpu_family(s.cluster.gpu));
    ASSERT_TRUE(eff.ok());
    // The main gradient in fp32 (grad_reduce_dtype "auto" under bf16 training).
    const Bytes S{kGradBytes * ((int64_t{32000} * 1024 + k.tp - 1) / k.tp)};
    const Time expect = k.cross_node ? transfer_time(S, s.cluster.nic_bandwidth * eff->nic) + eff->nic_alpha + eff->nic_alpha
                                     : transfer_time(S, s.cluster.nvlink_bandwidth * eff->nvlink_allreduce) +
                                           eff->nvlink_alpha + eff->nvlink_alpha;
    const std::string what = "tp=" + std::to_string(k.tp) + " dp=" + std::to_string(k.dp);
    for (int st = 0; st < k.pp; ++st) {
      const auto ids = embedding_grad_tasks(c.plan, st);
      ASSERT_EQ(ids.size(), 1u) << what;
      EXPECT_EQ(c.plan.programs[st].tasks[ids[0]].dur.count_ps(), expect.count_ps()) << what << " stage " << st;
    }
    // The replay: the two ranks of a pair rendezvous, and from the later arrival the all-reduce
    // takes exactly that duration; both end together (the earlier rank waits, exposed).
    const uint32_t r0 = c.plan.representatives[0], r1 = c.plan.representatives[k.pp - 1];
    ReplayOptions o;
    o.trace_ranks = {r0, r1};
    auto rr = replay(c.plan, o);
    ASSERT_TRUE(rr.ok()) << rr.status().to_string();
    const ReplayResult& with = rr.value();
    std::vector<TraceRecord> rec;
    for (const TraceRecord& t : with.trace) {
      const Program& prog = c.plan.programs[c.plan.program_of_rank[t.rank]];
      if (c.plan.ops[prog.tasks[t.task].op].name == "pp.embedding.grad.allreduce") rec.push_back(t);
    }
    ASSERT_EQ(rec.size(), 2u) << what;
    EXPECT_EQ(rec[0].end, rec[1].end) << what;
    EXPECT_EQ((rec[0].end - std::max(rec[0].start, rec[1].start)).count_ps(), expect.count_ps()) << what;
    // It is on the step's critical path: without it (a zero-time no-op) the step is shorter.
    Plan without = c.plan;
    for (Program& prog : without.programs)
      for (Task& t : prog.tasks)
        if (without.ops[t.op].name == "pp.embedding.grad.allreduce") {
          t.kind = TaskKind::kCompute;
          t.dur = Time::zero();
        }
    EXPECT_GT(with.step_time, run(without).step_time) << what;
    // fast mode simulates the representatives, which hold one pair: the same step
    EXPECT_EQ(run(c.plan, true).step_time.count_ps(), with.step_time.count_ps()) << what;
  }
}

// ZeRO-3 gathers: FSDP-style ("layer") is one all-gather per layer and micro-batch pass on the
// gather stream; DeepSpeed-style ("tensor") one per parameter tensor on the compute stream, and
// the bytes a layer gathers are the same either way: 2 B x its parameters.
TEST(CompilerPlan, Zero3GatherPerLayerOrPerTensor) {
  const ModelSpec model = small_gpt(4);
  ParallelSpec p = parallel(1, 1, 4);
  p.zero = 3;
  for (ZeroGather g : {ZeroGather::kLayer, ZeroGather::kTensor}) {
    p.zero3_gather = g;
    const Scenario s = scenario(model, training(512, 1, 4), p, "A100-SXM-80GB");
    const CompiledPlan c = compile_checked(s);
    int64_t layer0_gathers = 0, layer0_bytes = 0;
    bool on_compute = false;
    for (const Task& t : c.plan.programs[0].tasks) {
      if (t.kind != TaskKind::kCollective || t.layer != 0 || c.plan.ops[t.op].coll != CollKind::kAllGather) continue;
      ++layer0_gathers;
      layer0_bytes += c.plan.ops[t.op].bytes.count();
      on_compute = on_compute || t.stream == kStreamCompute;
    }
    const int64_t per_pass = g == ZeroGather::kLayer ? 1 : static_cast<int64_t>(layer_param_tensors(model).size());
    EXPECT_EQ(layer0_gathers, 2 * per_pass) << to_string(g) << ": forward and backward each gather layer 0";
    EXPECT_EQ(layer0_bytes, 2 * 2 * layer_params(model)) << to_string(g);
    EXPECT_EQ(on_compute, g == ZeroGather::kTensor) << to_string(g);
  }
  int64_t sum = 0;
  for (int64_t t : layer_param_tensors(model)) sum += t;
  EXPECT_EQ(sum, layer_params(model));
}

// ---- memory --------------------------------------------------------------------------------

// 1F1B keeps min(p, m) micro-batches in flight on stage 0 (p - 1 warm-up forwards, then one
// more forward before the first backward frees one): its activation peak is
//   min(p, m) * (layers_on_stage * layer_activation + embedding_activation).
TEST(CompilerMemory, OneFOneBStage0HoldsMinPMMicroBatches) {
  for (int p : {2, 4})
    for (int m : {2, 4, 8}) {
      ParallelSpec par = parallel(1, p, 1);
      const Scenario s = scenario(small_gpt(8), training(1024, m, 1), par, "H100-SXM-80GB");
      auto pr = predict(s, PredictOptions{});
      ASSERT_TRUE(pr.ok()) << pr.status().to_string();
      const Prediction& P = pr.value();
      ASSERT_EQ(P.memory_per_stage.size(), static_cast<size_t>(p));
      const int layers_on_stage = 8 / p;
      const LayerActivation la = layer_activation(s.model, 1024, 1, 1, false, Recompute::kNone);
      const int64_t emb = embedding_activation_bytes(s.model, 1024, 1, 1, false);
      const int64_t inflight = std::min(p, m);
      const int64_t expect = inflight * (layers_on_stage * la.saved_bytes + emb);
      EXPECT_EQ(P.memory_per_stage[0].activations.count(), expect)
          << "p=" << p << " m=" << m << ": layers part " << inflight * layers_on_stage * la.saved_bytes
          << ", embedding part " << inflight * emb;
    }
}

}  // namespace
}  // namespace trainsim

namespace trainsim {
namespace {

TEST(CompilerReplay, CollectivesSlowTheComputeTheyOverlap) {
  // FSDP over 8 H100s: the layer gathers and gradient reduce-scatters run beside compute.
  ParallelSpec p = parallel(1, 1, 8);
  p.zero = 3;
  Scenario s = scenario(small_gpt(4), training(2048, 2, 8), p, "H100-SXM-80GB");
  s.options.nccl_ctas = 0;
  auto off = predict(s, {});
  s.options.nccl_ctas = -1;   // the embedded default
  auto on = predict(s, {});
  PredictOptions fast;
  fast.fast = true;
  auto on_fast = predict(s, fast);
  s.options.nccl_ctas = 66;   // half the SMs
  auto half = predict(s, {});
  ASSERT_TRUE(off.ok() && on.ok() && on_fast.ok() && half.ok());
  EXPECT_EQ(off->contention, Time::zero());
  EXPECT_EQ(off->nccl_ctas, 0);
  EXPECT_EQ(on->nccl_ctas, 24);
  EXPECT_EQ(on->gpu_sms, 132);
  EXPECT_NE(on->nccl_ctas_source.find("defaults.json"), std::string::npos);
  EXPECT_GT(on->contention, Time::zero());
  EXPECT_GT(on->step_time, off->step_time);
  EXPECT_GT(half->step_time, on->step_time);
  EXPECT_GT(half->contention, on->contention);
  EXPECT_EQ(on_fast->step_time, on->step_time);
  EXPECT_EQ(on_fast->contention, on->contention);
}

}  // namespace
}  // namespace trainsim
