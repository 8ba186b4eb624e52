// Multi-head latent attention (DeepSeek-V2/V3; models/spec.h, memory.h, compiler.cpp): parameter
// count, per-layer FLOPs at tp = 1 and 2 in closed form, activation memory, the loader's errors
// for bad MLA configurations, and fast == full mode on MLA plans.
#include <map>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "models/catalog.h"
#include "models/compiler.h"
#include "models/memory.h"
#include "models/ops.h"
#include "scenarios/loader.h"
#include "scenarios/predict.h"
#include "sim/replay.h"
#include "tests/models/model_fixtures.h"

namespace trainsim {
namespace {

using json = nlohmann::json;

using testing::small_mla;
using testing::training;

TEST(Mla, ParameterCountClosedForm) {
  // h*r_q + r_q + r_q*H*qk + h*(r_kv+rope) + r_kv + r_kv*H*(nope+v) + H*v*h
  const ModelSpec m = small_mla();
  const int64_t h = 1024, H = 16, rq = 384, rkv = 128, qk = 96, nope = 64, rope = 32, v = 64;
  const int64_t attn = h * rq + rq + rq * H * qk + h * (rkv + rope) + rkv + rkv * H * (nope + v) + H * v * h;
  EXPECT_EQ(attention_params(m), attn);
  EXPECT_EQ(layer_params(m), attn + 3 * h * 2816 + 2 * h);
  EXPECT_EQ(mla_replicated_params(m), h * rq + rq + h * (rkv + rope) + rkv);
  // TP 2: the down-projections and their norms whole, the rest halved.
  EXPECT_EQ(layer_params_local(m, 0, 2), mla_replicated_params(m) + (layer_params(m) - mla_replicated_params(m)) / 2);
  // No Q compression: one h -> H*qk projection.
  const ModelSpec m0 = small_mla(0);
  EXPECT_EQ(attention_params(m0), h * H * qk + h * (rkv + rope) + rkv + rkv * H * (nope + v) + H * v * h);
  int64_t tensors = 0;
  for (int64_t x : layer_param_tensors(m)) tensors += x;
  EXPECT_EQ(tensors, layer_params(m));
  // DeepSeek-V3's attention block: 187,107,328 parameters per layer.
  auto ds = find_model("deepseek-v3");
  ASSERT_TRUE(ds.ok());
  ASSERT_TRUE(ds->mla);
  EXPECT_EQ(attention_params(ds.value()), 187107328);
}

// Sum of the FLOPs of layer 0's attention-block ops (names "attn.*"), forward or backward, in
// micro-batch 0 of the first stage.
double attn_flops(const CompiledPlan& c, bool backward) {
  double f = 0;
  for (const Task& t : c.plan.programs[0].tasks) {
    if (t.layer != 0 || t.micro != 0 || t.kind != TaskKind::kCompute || t.category != Category::kCompute) continue;
    const OpDesc& op = c.plan.ops[t.op];
    if (op.backward != backward || op.name.rfind("attn.", 0) != 0) continue;
    f += op.flops.v;
  }
  return f;
}

// Per rank, T = b*s tokens, Hl = H/t:
//   2T(h r_q + r_q Hl qk + h (r_kv + rope) + r_kv Hl (nope + v) + Hl v h) + 2 b s^2 Hl (qk + v)
// forward; backward twice that.
TEST(Mla, LayerFlopsClosedFormTp1AndTp2) {
  for (int q_lora : {384, 0}) {
    for (int tp : {1, 2}) {
      const ModelSpec m = small_mla(q_lora);
      ParallelSpec p;
      p.tp = tp;
      const int s = 512;
      auto c = compile_plan(m, training(s, 1, 1), p, 8);
      ASSERT_TRUE(c.ok()) << c.status().to_string();
      const double T = s, h = 1024, Hl = 16.0 / tp, rkv = 128, qk = 96, nope = 64, rope = 32, v = 64;
      const double q = q_lora > 0 ? h * q_lora + q_lora * Hl * qk : h * Hl * qk;
      const double gemm = 2 * T * (q + h * (rkv + rope) + rkv * Hl * (nope + v) + Hl * v * h);
      const double core = 2.0 * s * s * Hl * (qk + v);
      EXPECT_DOUBLE_EQ(attn_flops(c.value(), false), gemm + core) << "tp=" << tp << " q_lora=" << q_lora;
      EXPECT_DOUBLE_EQ(attn_flops(c.value(), true), 2 * (gemm + core)) << "tp=" << tp << " q_lora=" << q_lora;
    }
  }
}

// The attention op's FLOPs keep the MHA convention when qk = v (4 b s^2 heads head_dim), and
// its equivalent head dim prices MLA's FLOPs by that formula.
TEST(Mla, AttentionOpConvention) {
  const ModelSpec m = small_mla();
  ParallelSpec p;
  const LayerDims d = layer_dims(m, training(1024, 1, 1), p);
  const OpDesc o = attention_op(d, false);
  EXPECT_EQ(o.head_dim, 80);   // (96 + 64) / 2
  EXPECT_DOUBLE_EQ(o.flops.v, 4.0 * 1024 * 1024 * 16 * o.head_dim);
  EXPECT_DOUBLE_EQ(o.flops.v, 2.0 * 1024 * 1024 * 16 * (96 + 64));
}

// Activation bytes of one MLA layer, tp = 1, no SP, no dropout, no recompute (memory.h):
//   2sbh * 4 (norm inputs, down-projection / FC inputs)
//   + 2sb(2 r_q + r_kv + rope + r_kv) latents + 2sbH(2 qk + 2 v) Q, K, V, O + 4bHs lse
//   + SwiGLU 3 * 2sbf.
TEST(Mla, ActivationClosedForm) {
  const ModelSpec m = small_mla();
  const int64_t s = 256, b = 1, h = 1024, H = 16, f = 2816, sb = s * b;
  const int64_t expect = 4 * 2 * sb * h + 2 * sb * (2 * 384 + 128 + 32 + 128) + 2 * sb * H * (2 * 96 + 2 * 64) +
                         4 * b * H * s + 3 * 2 * sb * f;
  EXPECT_EQ(layer_activation(m, s, 1, 1, false, Recompute::kNone).saved_bytes, expect);
  // tp = 2: latents stay whole, head tensors and the lse halve.
  const int64_t expect2 = 4 * 2 * sb * h + 2 * sb * (2 * 384 + 128 + 32 + 128) +
                          (2 * sb * H * (2 * 96 + 2 * 64) + 3 * 2 * sb * f) / 2 + 4 * b * H * s / 2;
  EXPECT_EQ(layer_activation(m, s, 1, 2, false, Recompute::kNone).saved_bytes, expect2);
}

// MLA and MoE compose: DeepSeek-V3 has ~671B parameters and ~37B active (catalog_test checks
// the same; here the split between attention and the rest).
TEST(Mla, DeepSeekV3Sizes) {
  auto ds = find_model("deepseek-v3");
  ASSERT_TRUE(ds.ok());
  EXPECT_NEAR(total_params(ds.value()) * 1e-9, 671, 3);
  EXPECT_NEAR(active_params(ds.value()) * 1e-9, 37, 1);
}

// ---- the TP all-reduce of the replicated weights' gradients ------------------------------------

// small_mla() as a MoE model: 4 experts, top-2 (both layers MoE).
ModelSpec small_mla_moe() {
  ModelSpec m = small_mla();
  m.arch = "moe";
  m.experts = 4;
  m.top_k = 2;
  m.expert_ffn_hidden = 704;
  return m;
}

// The tasks of a program named "tp.mla.grad.allreduce".
std::vector<uint32_t> mla_grad_tasks(const CompiledPlan& c, int program) {
  std::vector<uint32_t> out;
  const auto& tasks = c.plan.programs[program].tasks;
  for (uint32_t i = 0; i < tasks.size(); ++i)
    if (c.plan.ops[tasks[i].op].name == "tp.mla.grad.allreduce") out.push_back(i);
  return out;
}

// With tp > 1 and sequence parallelism each stage all-reduces, once per step over TP, the bf16
// gradients of its layers' replicated weights (compiler.h):
//   S = 2 B x layers x (h r_q + r_q + h (r_kv + rope) + r_kv)     (r_q terms only when q_lora > 0)
// (ZeRO-3: ceil(S / shard), the gradient shard the rank keeps). None with tp = 1, and none
// without SP (the latents' input gradients are all-reduced per micro-batch instead, so the
// weight gradients are complete; the plan has no MLA gradient group then).
TEST(Mla, ReplicatedGradAllReduceClosedForm) {
  const int64_t h = 1024, rkv = 128, rope = 32;
  for (int q_lora : {384, 0})
    for (int tp : {1, 2})
      for (bool sp : {true, false})
      for (int pp : {1, 2})
        for (int zero : {0, 1, 3})
          for (bool overlap : {true, false}) {
            if (sp && tp == 1) continue;
            const std::string what = "q_lora=" + std::to_string(q_lora) + " tp=" + std::to_string(tp) +
                                     " sp=" + std::to_string(sp) + " pp=" + std::to_string(pp) +
                                     " zero=" + std::to_string(zero) + " overlap=" + std::to_string(overlap);
            ParallelSpec p;
            p.tp = tp;
            p.pp = pp;
            p.dp = 2;
            p.zero = zero;
            p.dp_overlap = overlap;
            p.sequence_parallel = sp;
            auto c = compile_plan(small_mla(q_lora), training(512, 2, 2), p, 8);
            ASSERT_TRUE(c.ok()) << c.status().to_string();
            const Plan& plan = c->plan;
            const bool reduced = tp > 1 && sp;
            ASSERT_EQ(plan.groups.size(), reduced ? 8u : 7u) << what;
            if (reduced) {
              const GroupTable& g = plan.groups[kGroupMlaGradDense];
              EXPECT_EQ(g.name, "tp-mla-grad");
              EXPECT_EQ(g.members, plan.groups[kGroupTp].members) << what;
              EXPECT_EQ(g.instance_of_rank, plan.groups[kGroupTp].instance_of_rank) << what;
            }
            const int64_t repl = h * (rkv + rope) + rkv + (q_lora > 0 ? h * q_lora + q_lora : 0);
            EXPECT_EQ(mla_replicated_params(small_mla(q_lora)), repl);
            for (int st = 0; st < pp; ++st) {
              const auto ids = mla_grad_tasks(c.value(), st);
              ASSERT_EQ(ids.size(), reduced ? 1u : 0u) << what << " stage " << st;
              if (ids.empty()) continue;
              const auto& tasks = plan.programs[st].tasks;
              const Task& t = tasks[ids[0]];
              const OpDesc& op = plan.ops[t.op];
              const int64_t layers = 2 / pp;
              const int64_t bytes = 2 * layers * repl;   // bf16; reduced as fp32 main gradients (x 2)
              EXPECT_EQ(op.bytes.count(), 2 * (zero == 3 ? (bytes + 1) / 2 : bytes)) << what;
              EXPECT_EQ(op.coll, CollKind::kAllReduce);
              EXPECT_EQ(t.kind, TaskKind::kCollective);
              EXPECT_EQ(t.group, kGroupMlaGradDense);
              EXPECT_EQ(t.stream, overlap ? kStreamDp : kStreamCompute) << what;
              EXPECT_EQ(t.category, Category::kTpComm);
              // In place on the gradient buffer: no memory of its own.
              EXPECT_EQ(t.mem_alloc, 0);
              EXPECT_EQ(t.mem_free, 0);
              // After the stage's last backward task, and the optimizer waits for it.
              ASSERT_NE(t.dep[0], kNoDep);
              EXPECT_EQ(tasks[t.dep[0]].stream, kStreamCompute);
              for (uint32_t i = t.dep[0] + 1; i < ids[0]; ++i)
                EXPECT_NE(tasks[i].stream, kStreamCompute) << what << ": compute task " << i << " after the dep";
              bool opt = false;
              for (const Task& o : tasks)
                if (o.category == Category::kOptimizer) {
                  opt = true;
                  EXPECT_EQ(o.dep[0], ids[0]) << what;
                }
              EXPECT_TRUE(opt);
            }
          }
  // MoE plans keep groups 7-9 (EP, expert-DP, its gather); the MLA group comes after them.
  ParallelSpec p;
  p.tp = 2;
  p.dp = 2;
  p.ep = 2;
  p.sequence_parallel = true;
  auto c = compile_plan(small_mla_moe(), training(512, 2, 2), p, 8);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  ASSERT_EQ(c->plan.groups.size(), 11u);
  EXPECT_EQ(c->plan.groups[kGroupEp].name, "ep");
  EXPECT_EQ(c->plan.groups[kGroupExpertDpGather].name, "expert-dp-gather");
  EXPECT_EQ(c->plan.groups[kGroupMlaGradMoe].name, "tp-mla-grad");
  const auto ids = mla_grad_tasks(c.value(), 0);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(c->plan.programs[0].tasks[ids[0]].group, kGroupMlaGradMoe);
  EXPECT_EQ(c->plan.ops[c->plan.programs[0].tasks[ids[0]].op].bytes.count(),
            2 * 2 * 2 * mla_replicated_params(small_mla_moe()));   // 2 layers, fp32 main gradients
  // DeepSeek-V3: 2 B x (7168 x 1536 + 1536 + 7168 x (512 + 64) + 512) = 30,281,728 B per layer.
  auto ds = find_model("deepseek-v3");
  ASSERT_TRUE(ds.ok());
  EXPECT_EQ(2 * mla_replicated_params(ds.value()), 30281728);
}

// MLA with tp 2 and sequence parallelism, per layer and micro-batch (Megatron-Core's layout,
// compiler.h): the down-projections and latent norms on T/2 tokens, the latents all-gathered
// (q_lora, kv_lora and the rope key, 2 B per element of T tokens), no h-wide gather before
// them; backward: the same widths reduce-scattered and re-gathered on the side stream, no
// h-wide reduce-scatter for the attention block. With q_lora = 0 the query projection keeps
// the h-wide gather and reduce-scatter, and its h side gather.
TEST(Mla, SequenceParallelGathersLatentsNotH) {
  const int64_t seq = 512, T = seq, h = 1024, rkv = 128, rope = 32, rq = 384;
  for (int q_lora : {384, 0}) {
    ParallelSpec p;
    p.tp = 2;
    p.dp = 1;
    p.sequence_parallel = true;
    auto c = compile_plan(small_mla(q_lora), training(seq, 1, 1), p, 8);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    const Plan& plan = c->plan;
    std::map<std::string, int64_t> bytes;    // collective name -> bytes (one op per name here)
    std::map<std::string, int> count;        // collective name -> tasks in layer 0, micro 0
    std::map<std::string, int64_t> gemm_m;   // MLA GEMM name -> m
    for (const Task& t : plan.programs[0].tasks) {
      if (t.layer != 0 || t.micro != 0) continue;
      const OpDesc& op = plan.ops[t.op];
      if (t.kind == TaskKind::kCollective) {
        bytes[op.name] = op.bytes.count();
        ++count[op.name];
      } else if (op.cls == OpClass::kGemm && op.name.rfind("attn.mla.", 0) == 0) {
        gemm_m[op.name] = op.m;
      }
    }
    const std::string what = "q_lora=" + std::to_string(q_lora);
    EXPECT_EQ(bytes["tp.mla.kv.allgather"], 2 * T * rkv) << what;
    EXPECT_EQ(bytes["tp.mla.kpe.allgather"], 2 * T * rope) << what;
    EXPECT_EQ(bytes["tp.mla.kv.reducescatter"], 2 * T * rkv) << what;
    EXPECT_EQ(bytes["tp.mla.kpe.reducescatter"], 2 * T * rope) << what;
    EXPECT_EQ(bytes["tp.mla.kv.side.allgather"], 2 * T * rkv) << what;
    EXPECT_EQ(count["tp.mla.kv.allgather"], 1) << what;
    EXPECT_EQ(gemm_m["attn.mla.kv_down.fwd"], T / 2) << what;
    EXPECT_EQ(gemm_m["attn.mla.kv_down.dgrad"], T / 2) << what;
    EXPECT_EQ(gemm_m["attn.mla.kv_up.fwd"], T) << what;
    // the MLP block keeps its h-wide SP gather and reduce-scatter
    EXPECT_EQ(bytes["tp.mlp.allgather"], 2 * T * h) << what;
    if (q_lora > 0) {
      EXPECT_EQ(bytes["tp.mla.q.allgather"], 2 * T * rq);
      EXPECT_EQ(bytes["tp.mla.q.reducescatter"], 2 * T * rq);
      EXPECT_EQ(bytes["tp.mla.q.side.allgather"], 2 * T * rq);
      EXPECT_EQ(gemm_m["attn.mla.q_down.fwd"], T / 2);
      EXPECT_EQ(gemm_m["attn.mla.q_up.fwd"], T);
      EXPECT_EQ(count.count("tp.attn.allgather"), 0u);
      EXPECT_EQ(count.count("tp.attn.bwd.reducescatter"), 0u);
      EXPECT_EQ(count.count("tp.attn.qkvin.allgather"), 0u);
    } else {
      EXPECT_EQ(count.count("tp.mla.q.allgather"), 0u);
      EXPECT_EQ(bytes["tp.attn.allgather"], 2 * T * h);
      EXPECT_EQ(bytes["tp.attn.bwd.reducescatter"], 2 * T * h);
      EXPECT_EQ(bytes["tp.attn.qkvin.allgather"], 2 * T * h);
      EXPECT_EQ(gemm_m["attn.mla.q.fwd"], T);
    }
    // the attention output projection's reduce-scatter (fwd) and all-gather (bwd) stay h-wide
    EXPECT_EQ(bytes["tp.attn.reducescatter"], 2 * T * h) << what;
    EXPECT_EQ(bytes["tp.attn.bwd.allgather"], 2 * T * h) << what;
  }
  // Without SP the latents are not gathered (WithoutSequenceParallelAllReducesLatents).
  ParallelSpec p;
  p.tp = 2;
  p.dp = 1;
  auto c = compile_plan(small_mla(), training(seq, 1, 1), p, 8);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  for (const Task& t : c->plan.programs[0].tasks)
    EXPECT_EQ(c->plan.ops[t.op].name.find("tp.mla.q.allgather"), std::string::npos);
}

// MLA with tp 2 without sequence parallelism, per layer and micro-batch (compiler.h): every
// rank holds all T tokens; the down-projections run on T tokens (forward and backward), nothing
// is gathered, and the up-projections' backward all-reduces the latents' input gradients over
// TP on the compute stream, 2 B per element of T tokens:
//   kv: 2 T r_kv, rope key: 2 T rope, q: 2 T r_q (q_lora > 0)
// then no h-wide all-reduce of the attention block's input gradient (with q_lora = 0 the
// uncompressed query projection keeps it: 2 T h), and no per-step weight-gradient all-reduce.
// Per layer and micro-batch the TP bytes are then, q_lora > 0:
//   2 T h (attention out) + 2 T h (MLP out) + 2 T h (MLP input gradient) + 2 T (r_kv + rope + r_q)
// and with q_lora = 0: 4 x 2 T h + 2 T (r_kv + rope).
TEST(Mla, WithoutSequenceParallelAllReducesLatents) {
  const int64_t seq = 512, T = seq, h = 1024, rkv = 128, rope = 32, rq = 384;
  for (int q_lora : {384, 0}) {
    ParallelSpec p;
    p.tp = 2;
    p.dp = 2;
    auto c = compile_plan(small_mla(q_lora), training(seq, 2, 2), p, 8);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    const Plan& plan = c->plan;
    const std::string what = "q_lora=" + std::to_string(q_lora);
    EXPECT_EQ(plan.groups.size(), 7u) << what;   // no MLA gradient group
    std::map<std::string, int64_t> bytes;    // collective name -> bytes
    std::map<std::string, int> count;        // collective name -> tasks in layer 0, micro 1
    std::map<std::string, int64_t> gemm_m, gemm_k;
    int64_t tp_bytes = 0;
    for (const Task& t : plan.programs[0].tasks) {
      const OpDesc& op = plan.ops[t.op];
      EXPECT_NE(op.name, "tp.mla.grad.allreduce") << what;
      if (t.layer != 0 || t.micro != 1) continue;
      if (t.kind == TaskKind::kCollective) {
        bytes[op.name] = op.bytes.count();
        ++count[op.name];
        EXPECT_EQ(op.coll, CollKind::kAllReduce) << what << " " << op.name;
        EXPECT_EQ(t.group, kGroupTp) << what << " " << op.name;
        EXPECT_EQ(t.stream, kStreamCompute) << what << " " << op.name;
        EXPECT_EQ(t.category, Category::kTpComm) << what << " " << op.name;
        tp_bytes += op.bytes.count();
      } else if (op.cls == OpClass::kGemm && op.name.rfind("attn.mla.", 0) == 0) {
        gemm_m[op.name] = op.m;
        gemm_k[op.name] = op.k;
      }
    }
    EXPECT_EQ(bytes["tp.mla.kv.allreduce"], 2 * T * rkv) << what;
    EXPECT_EQ(bytes["tp.mla.kpe.allreduce"], 2 * T * rope) << what;
    EXPECT_EQ(count["tp.mla.kv.allreduce"], 1) << what;
    EXPECT_EQ(count["tp.mla.kpe.allreduce"], 1) << what;
    for (const char* n : {"tp.mla.kv.allgather", "tp.mla.kpe.allgather", "tp.mla.q.allgather", "tp.mla.kv.reducescatter",
                          "tp.mla.kv.side.allgather", "tp.attn.allgather"})
      EXPECT_EQ(count.count(n), 0u) << what << " " << n;
    // the down-projections on all T tokens, forward and backward (wgrad: k = T)
    EXPECT_EQ(gemm_m["attn.mla.kv_down.fwd"], T) << what;
    EXPECT_EQ(gemm_m["attn.mla.kv_down.dgrad"], T) << what;
    EXPECT_EQ(gemm_k["attn.mla.kv_down.wgrad"], T) << what;
    EXPECT_EQ(bytes["tp.attn.allreduce"], 2 * T * h) << what;
    EXPECT_EQ(bytes["tp.mlp.allreduce"], 2 * T * h) << what;
    EXPECT_EQ(bytes["tp.mlp.bwd.allreduce"], 2 * T * h) << what;
    if (q_lora > 0) {
      EXPECT_EQ(bytes["tp.mla.q.allreduce"], 2 * T * rq);
      EXPECT_EQ(count["tp.mla.q.allreduce"], 1);
      EXPECT_EQ(gemm_m["attn.mla.q_down.fwd"], T);
      EXPECT_EQ(gemm_m["attn.mla.q_down.dgrad"], T);
      EXPECT_EQ(count.count("tp.attn.bwd.allreduce"), 0u);
      EXPECT_EQ(tp_bytes, 3 * (2 * T * h) + 2 * T * (rkv + rope + rq));
    } else {
      EXPECT_EQ(count.count("tp.mla.q.allreduce"), 0u);
      EXPECT_EQ(bytes["tp.attn.bwd.allreduce"], 2 * T * h);
      EXPECT_EQ(tp_bytes, 4 * (2 * T * h) + 2 * T * (rkv + rope));
    }
    // The latents' all-reduces follow the up-projections' weight-gradient GEMMs (stream order),
    // and the kv one comes before the kv down-projection's backward.
    const auto& tasks = plan.programs[0].tasks;
    int kv_up_w = -1, kv_ar = -1, kv_down_d = -1;
    for (int i = 0; i < static_cast<int>(tasks.size()); ++i) {
      if (tasks[i].layer != 0 || tasks[i].micro != 1) continue;
      const std::string& n = plan.ops[tasks[i].op].name;
      if (n == "attn.mla.kv_up.wgrad") kv_up_w = i;
      if (n == "tp.mla.kv.allreduce") kv_ar = i;
      if (n == "attn.mla.kv_down.dgrad") kv_down_d = i;
    }
    EXPECT_LT(kv_up_w, kv_ar) << what;
    EXPECT_LT(kv_ar, kv_down_d) << what;
  }
}

json mla_doc();   // below: a tp 2, pp 2, dp 2 scenario

// The collective holds no memory (it reduces the gradient buffer in place): replaying the plan
// with it turned into a zero-time no-op gives every rank the same peak memory. A run is
// reproducible: same fingerprint twice.
TEST(Mla, ReplicatedGradAllReduceMemoryAndDeterminism) {
  auto r = load_scenario_text(mla_doc().dump(), "test.json", {});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  Scenario s = r.value();   // tp 2, pp 2, dp 2
  s.parallel.sequence_parallel = true;   // the all-reduce exists with SP only
  auto a = predict(s, PredictOptions{});
  auto b = predict(s, PredictOptions{});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->fingerprint, b->fingerprint);
  EXPECT_EQ(a->step_time.count_ps(), b->step_time.count_ps());

  Plan without = *a->plan;   // costs bound
  int turned = 0;
  for (Program& prog : without.programs)
    for (Task& t : prog.tasks)
      if (without.ops[t.op].name == "tp.mla.grad.allreduce") {
        EXPECT_EQ(t.mem_alloc, 0);
        EXPECT_EQ(t.mem_free, 0);
        t.kind = TaskKind::kCompute;
        t.dur = Time::zero();
        ++turned;
      }
  EXPECT_EQ(turned, 2);   // one per stage
  auto with_r = replay(*a->plan, ReplayOptions{});
  auto without_r = replay(without, ReplayOptions{});
  ASSERT_TRUE(with_r.ok() && without_r.ok());
  ASSERT_EQ(with_r->ranks.size(), without_r->ranks.size());
  for (size_t i = 0; i < with_r->ranks.size(); ++i)
    EXPECT_EQ(with_r->ranks[i].peak_dynamic_mem, without_r->ranks[i].peak_dynamic_mem) << "rank " << i;
  EXPECT_GT(with_r->step_time, without_r->step_time);   // it costs time, not memory
}

// ---- loader ----------------------------------------------------------------------------------

json mla_doc() {
  return json::parse(R"({
    "name": "t",
    "model": {"name": "mla-small", "layers": 2, "hidden": 1024, "heads": 16, "vocab": 32000,
              "ffn_hidden": 2816, "activation": "swiglu", "attention": "mla",
              "q_lora_rank": 384, "kv_lora_rank": 128, "qk_nope_head_dim": 64, "qk_rope_head_dim": 32,
              "v_head_dim": 64},
    "training": {"seq_len": 1024, "global_batch": 8, "micro_batch": 1},
    "cluster": {"gpu": "H100-SXM-80GB", "gpus": 8, "gpus_per_node": 8},
    "parallel": {"tp": 2, "pp": 2, "dp": 2}
  })");
}

void expect_error(const Result<Scenario>& r, const std::string& path, std::initializer_list<std::string> words) {
  ASSERT_FALSE(r.ok()) << "expected an error at " << path;
  for (const auto& e : r.status().errors()) {
    if (e.path != path) continue;
    EXPECT_EQ(e.file, "test.json");
    for (const auto& w : words)
      EXPECT_NE(e.message.find(w), std::string::npos) << "missing \"" << w << "\" in: " << e.to_string();
    return;
  }
  ADD_FAILURE() << "no error at " << path << "; got:\n" << r.status().to_string();
}

TEST(MlaLoader, LoadsWithDefaults) {
  auto r = load_scenario_text(mla_doc().dump(), "test.json", {});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->model.mla);
  EXPECT_EQ(r->model.kv_heads, 16);
  EXPECT_EQ(r->model.head_dim, 96);
  json d = mla_doc();
  for (const char* k : {"q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"}) d["model"].erase(k);
  auto r2 = load_scenario_text(d.dump(), "test.json", {});
  ASSERT_TRUE(r2.ok()) << r2.status().to_string();
  EXPECT_EQ(r2->model.q_lora_rank, 0);
  EXPECT_EQ(r2->model.qk_nope_head_dim, 128);
  EXPECT_EQ(r2->model.qk_rope_head_dim, 64);
  EXPECT_EQ(r2->model.v_head_dim, 128);
  // The catalog's DeepSeek-V3 loads as MLA.
  auto r3 = load_scenario_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/deepseek_v3_ep.json", {});
  ASSERT_TRUE(r3.ok()) << r3.status().to_string();
  EXPECT_TRUE(r3->model.mla);
  EXPECT_EQ(r3->model.kv_lora_rank, 512);
  EXPECT_EQ(r3->model.q_lora_rank, 1536);
}

TEST(MlaLoader, KvLoraRankMissingOrZero) {
  json d = mla_doc();
  d["model"].erase("kv_lora_rank");
  expect_error(load_scenario_text(d.dump(), "test.json", {}), "/model/kv_lora_rank", {"missing", "kv_lora_rank"});
  d["model"]["kv_lora_rank"] = 0;
  expect_error(load_scenario_text(d.dump(), "test.json", {}), "/model/kv_lora_rank", {"too small"});
}

TEST(MlaLoader, FieldsWithoutMlaAndKvHeadsWithMla) {
  json d = mla_doc();
  d["model"]["attention"] = "gqa";
  expect_error(load_scenario_text(d.dump(), "test.json", {}), "/model/kv_lora_rank", {"attention\": \"mla\""});
  d = mla_doc();
  d["model"]["kv_heads"] = 4;
  expect_error(load_scenario_text(d.dump(), "test.json", {}), "/model/kv_heads", {"mla"});
  d = mla_doc();
  d["model"]["attention"] = "mqa";
  expect_error(load_scenario_text(d.dump(), "test.json", {}), "/model/attention", {"\"mla\""});
}

TEST(MlaLoader, TpMustDivideHeads) {
  json d = mla_doc();
  d["parallel"] = {{"tp", 3}, {"pp", 1}, {"dp", 1}};
  d["cluster"]["gpus"] = 3;
  expect_error(load_scenario_text(d.dump(), "test.json", {}), "/parallel/tp", {"does not divide heads=16"});
  // The compiler refuses it too (library callers that skip the loader).
  ParallelSpec p;
  p.tp = 3;
  auto c = compile_plan(small_mla(), training(512, 1, 1), p, 8);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().to_string().find("does not divide heads=16"), std::string::npos) << c.status().to_string();
  ModelSpec bad = small_mla();
  bad.kv_lora_rank = 0;
  auto c2 = compile_plan(bad, training(512, 1, 1), ParallelSpec{}, 8);
  ASSERT_FALSE(c2.ok());
  EXPECT_NE(c2.status().to_string().find("kv_lora_rank"), std::string::npos) << c2.status().to_string();
}

// ---- fast == full ------------------------------------------------------------------------------

// MLA with context parallelism: per rank 1/cp of the cp = 1 work (model and hardware FLOPs),
// for ring, Ulysses and hybrid; ring KV blocks carry the decompressed K (qk) and V (v) per head.
TEST(Mla, ContextParallelSplitsWorkEvenly) {
  for (auto [cp, u] : std::vector<std::pair<int, int>>{{2, 1}, {4, 2}, {4, 4}}) {
    ParallelSpec p1;
    ParallelSpec pc;
    pc.cp = cp;
    pc.cp_ulysses = u;
    auto a = compile_plan(small_mla(), training(4096, 2, 1), p1, 8);
    auto b = compile_plan(small_mla(), training(4096, 2, 1), pc, 8);
    ASSERT_TRUE(a.ok() && b.ok()) << b.status().to_string();
    EXPECT_DOUBLE_EQ(b->plan.programs[0].model_flops.v * cp, a->plan.programs[0].model_flops.v) << cp << "/" << u;
    EXPECT_DOUBLE_EQ(b->plan.programs[0].hardware_flops.v * cp, a->plan.programs[0].hardware_flops.v) << cp << "/" << u;
    if (u == 1) {   // ring only: a KV hop = 2 B x (4096/cp tokens) x 16 heads x (96 + 64)
      bool seen = false;
      for (const OpDesc& op : b->plan.ops)
        if (op.cls == OpClass::kCollective && op.coll == CollKind::kSendRecv && op.name == "cp.ring.kv.sendrecv") {
          EXPECT_EQ(op.bytes.count(), 2 * (4096 / cp) * 16 * (96 + 64));
          seen = true;
        }
      EXPECT_TRUE(seen);
    }
  }
}

TEST(Mla, FastModeEqualsFullMode) {
  std::mt19937_64 rng(20260301);
  auto pick = [&](std::initializer_list<int> v) { return *(v.begin() + rng() % v.size()); };
  for (int i = 0; i < 16; ++i) {
    auto r = load_scenario_text(mla_doc().dump(), "test.json", {});
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    Scenario s = r.value();
    s.parallel.tp = i % 4 == 0 ? 1 : 2;   // mostly tp 2: the MLA gradient all-reduce
    s.parallel.dp_overlap = rng() % 2;
    s.parallel.pp = pick({1, 2});
    s.parallel.dp = pick({1, 2});
    s.parallel.zero = static_cast<int>(rng() % 4);
    s.parallel.recompute = static_cast<Recompute>(rng() % 3);
    s.parallel.sequence_parallel = s.parallel.tp > 1 && rng() % 2;
    s.parallel.cp = pick({1, 2});
    s.training.seq_len = 2048;
    s.model.q_lora_rank = pick({0, 384});
    s.training.global_batch = int64_t{s.parallel.dp} * s.parallel.pp * 2;
    if (i % 3 == 2) {   // MLA + MoE (DeepSeek-style): the MLA group after the MoE groups
      const ModelSpec moe = small_mla_moe();
      s.model.arch = moe.arch;
      s.model.experts = moe.experts;
      s.model.top_k = moe.top_k;
      s.model.expert_ffn_hidden = moe.expert_ffn_hidden;
      s.parallel.ep = s.parallel.dp;
    }
    s.model.mtp_depth = i % 2;   // one multi-token-prediction module (an MLA or MLA + MoE block) on half
    s.cluster.gpus = s.parallel.tp * s.parallel.pp * s.parallel.dp * s.parallel.cp;
    s.cluster.gpus_per_node = std::min(8, s.cluster.gpus);
    PredictOptions full, fast;
    fast.fast = true;
    auto a = predict(s, full);
    auto b = predict(s, fast);
    ASSERT_TRUE(a.ok()) << a.status().to_string();
    ASSERT_TRUE(b.ok()) << b.status().to_string();
    EXPECT_EQ(a->step_time.count_ps(), b->step_time.count_ps())
        << "config " << i << " tp=" << s.parallel.tp << " pp=" << s.parallel.pp << " dp=" << s.parallel.dp
        << " zero=" << s.parallel.zero << " cp=" << s.parallel.cp << " moe=" << s.model.is_moe()
        << " mtp=" << s.model.mtp_depth;
    EXPECT_GT(a->step_time.count_ps(), 0);
  }
}

}  // namespace
}  // namespace trainsim
