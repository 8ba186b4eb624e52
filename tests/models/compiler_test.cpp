// Closed-form and oracle tests of the strategy compiler (models/compiler.h) together with cost
// binding and replay (STYLE.md 7, layers 1 and 2). Scenarios are built in code.
#include "models/compiler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>

#include "calibrate/cost_model.h"
#include "models/memory.h"
#include "scenarios/predict.h"
#include "sim/replay.h"
#include "topologies/placement.h"

namespace trainsim {
namespace {

// ---- builders ----------------------------------------------------------------------------

// A small GPT-style model: 8 layers, hidden 1024, 16 heads, GeLU (ffn 4h), LayerNorm, untied.
ModelSpec small_gpt(int layers = 8) {
  ModelSpec m;
  m.name = "gpt-small-test";
  m.layers = layers;
  m.hidden = 1024;
  m.heads = 16;
  m.kv_heads = 16;
  m.head_dim = 64;
  m.ffn_hidden = 4096;
  m.vocab = 32000;
  m.activation = Activation::kGelu;
  m.norm = NormKind::kLayerNorm;
  m.tied_embeddings = false;
  return m;
}

TrainingSpec training(int seq, int micro_batches, int dp, int micro_batch = 1) {
  TrainingSpec t;
  t.seq_len = seq;
  t.micro_batch = micro_batch;
  t.global_batch = static_cast<int64_t>(micro_batches) * dp * micro_batch;
  t.precision = DType::kBF16;
  return t;
}

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

CompiledPlan compile(const Scenario& s) {
  auto c = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  if (!c.ok()) return CompiledPlan{};
  return std::move(c.value());
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
    CompiledPlan c = compile(s);
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
  CompiledPlan c = compile(s);
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
  std::mt19937_64 rng(20240611);
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
    const Scenario s = scenario(small_gpt(8), training(1024, m, p.dp), p, gpu);
    const std::string what = "config " + std::to_string(i) + ": tp=" + std::to_string(p.tp) +
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
    const CompiledPlan c = compile(s);
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

    // DP (zero 0): each stage all-reduces its gradients once per step, in bf16:
    //   sum of the reduction bytes = 2 B x the stage's parameters (after the TP split).
    for (int st = 0; st < 2; ++st) {
      int64_t bytes = 0;
      for (const Task& t : plan.programs[st].tasks)
        if (t.kind == TaskKind::kCollective && t.group == kGroupDp) {
          EXPECT_EQ(plan.ops[t.op].coll, CollKind::kAllReduce);
          EXPECT_EQ(t.stream, kStreamDp);
          bytes += plan.ops[t.op].bytes.count();
        }
      EXPECT_EQ(bytes, 2 * c.stages[st].params_local)
          << (sp ? "sp" : "no sp") << " stage " << st << ": reduced " << bytes << " B for "
          << c.stages[st].params_local << " parameters (difference " << 2 * c.stages[st].params_local - bytes
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
  const CompiledPlan c = compile(s);
  ASSERT_EQ(c.stages.size(), 1u);
  int64_t bytes = 0;
  for (const Task& t : c.plan.programs[0].tasks)
    if (t.kind == TaskKind::kCollective && t.group == kGroupDp) bytes += c.plan.ops[t.op].bytes.count();
  EXPECT_EQ(bytes, 2 * c.stages[0].params_local)
      << "reduced " << bytes << " B for " << c.stages[0].params_local << " parameters; the embedding is "
      << embedding_params(model) << " parameters (" << 2 * embedding_params(model) << " B)";
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
    const CompiledPlan c = compile(s);
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
