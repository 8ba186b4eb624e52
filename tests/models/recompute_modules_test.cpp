// Selective recomputation's modules (parallel.recompute_modules, Megatron-Core's
// --recompute-modules): closed forms of what each module drops from a layer's saved activations
// and adds to its transient (dense GPT and Llama layers, MLA, MoE experts), the recomputed
// FLOPs and tasks the plan gets, the activation peak, and fast mode against full mode.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "models/compiler.h"
#include "models/memory.h"
#include "scenarios/predict.h"
#include "tests/models/model_fixtures.h"
#include "tests/models/moe_fixtures.h"

namespace trainsim {
namespace {

using testing::small_gpt;
using testing::small_mla;
using testing::small_moe;

constexpr uint32_t kAttn = kRecomputeCoreAttn;

// small_gpt as a Llama-style layer: SwiGLU, RMSNorm, GQA.
ModelSpec small_llama() {
  ModelSpec m = small_gpt(4);
  m.activation = Activation::kSwiglu;
  m.norm = NormKind::kRMSNorm;
  m.kv_heads = 4;
  m.ffn_hidden = 2816;
  return m;
}


LayerActivation sel(const ModelSpec& m, int s, int b, int t, bool sp, uint32_t mods, bool fp8 = false) {
  return layer_activation(m, s, b, t, sp, Recompute::kSelective, false, fp8, mods);
}

// Each module drops its tensors from the saved set and regenerates them in the backward:
//   layernorm: the QKV and FC1 inputs, in*sbh each (R: /t with SP; in = 2 B, 1 B with fp8 caching)
//   mlp:       gelu: GeLU input 2sbf + FC2 input in*sbf;  swiglu: gate, up 4sbf + FC2 input in*sbf  (/t)
//   core_attn: the fp32 log-sum-exp 4bas/t (transient: O 2sbq/t and it)
TEST(RecomputeModules, DenseLayerClosedForms) {
  for (const ModelSpec& m : {small_gpt(4), small_llama()}) {
    const bool swiglu = m.activation == Activation::kSwiglu;
    for (int t : {1, 2, 4})
      for (bool sp : {false, true})
        for (bool fp8 : {false, true}) {
          const int s = 1024, b = 2;
          const int64_t sb = int64_t{s} * b, h = m.hidden, f = m.ffn_hidden, q = int64_t{m.heads} * m.head_dim;
          const int64_t in = fp8 ? 1 : 2;
          const int64_t none = layer_activation(m, s, b, t, sp, Recompute::kNone, false, fp8).saved_bytes;
          const int64_t lse = 4 * b * (m.heads / t) * s;
          const int64_t norm_out = (sp ? 2 * in * sb * h / t : 2 * in * sb * h);
          const int64_t mlp = ((swiglu ? 4 : 2) * sb * f + in * sb * f) / t;
          const std::string what = m.name + " t=" + std::to_string(t) + (sp ? " sp" : "") + (fp8 ? " fp8" : "");

          const LayerActivation a = sel(m, s, b, t, sp, kAttn, fp8);
          EXPECT_EQ(a.saved_bytes, none - lse) << what;
          EXPECT_EQ(a.recompute_transient_bytes, 2 * sb * q / t + lse) << what;
          EXPECT_EQ(a.saved_bytes,
                    layer_activation(m, s, b, t, sp, Recompute::kSelective, false, fp8).saved_bytes)
              << what << ": core_attn is the default";

          const LayerActivation ln = sel(m, s, b, t, sp, kRecomputeLayernorm, fp8);
          EXPECT_EQ(ln.saved_bytes, none - norm_out) << what;
          EXPECT_EQ(ln.recompute_transient_bytes, norm_out) << what;

          const LayerActivation ml = sel(m, s, b, t, sp, kRecomputeMlp, fp8);
          EXPECT_EQ(ml.saved_bytes, none - mlp) << what;
          EXPECT_EQ(ml.recompute_transient_bytes, mlp) << what;

          const uint32_t all = kAttn | kRecomputeLayernorm | kRecomputeMlp;
          const LayerActivation every = sel(m, s, b, t, sp, all, fp8);
          EXPECT_EQ(every.saved_bytes, none - lse - norm_out - mlp) << what;
          EXPECT_EQ(every.recompute_transient_bytes, 2 * sb * q / t + lse + norm_out + mlp) << what;

          // Modules that do not apply to the layer change nothing.
          EXPECT_EQ(sel(m, s, b, t, sp, kAttn | kRecomputeMlaUpProj | kRecomputeMoeAct, fp8).saved_bytes,
                    a.saved_bytes)
              << what;
        }
  }
}

// MLA: mla_up_proj drops Q, K (2sbH*qk each) and V (2sbH*v), /t; layernorm also drops the q-norm
// and kv-norm outputs (in*sb*r_q + in*sb*r_kv, whole on every TP rank).
TEST(RecomputeModules, MlaClosedForms) {
  for (int q_lora : {384, 0})
    for (int t : {1, 2}) {
      const ModelSpec m = small_mla(q_lora);
      const int s = 1024, b = 1;
      const int64_t sb = int64_t{s} * b, H = m.heads, qk = 96, v = 64;
      const int64_t none = layer_activation(m, s, b, t, false, Recompute::kNone).saved_bytes;
      const int64_t qkv = (2 * sb * H * qk * 2 + 2 * sb * H * v) / t;
      const std::string what = "q_lora=" + std::to_string(q_lora) + " t=" + std::to_string(t);
      const LayerActivation up = sel(m, s, b, t, false, kRecomputeMlaUpProj);
      EXPECT_EQ(up.saved_bytes, none - qkv) << what;
      EXPECT_EQ(up.recompute_transient_bytes, qkv) << what;
      const int64_t norms = 2 * 2 * sb * m.hidden + 2 * sb * (q_lora + m.kv_lora_rank);
      const LayerActivation ln = sel(m, s, b, t, false, kRecomputeLayernorm);
      EXPECT_EQ(ln.saved_bytes, none - norms) << what;
      EXPECT_EQ(ln.recompute_transient_bytes, norms) << what;
    }
}

// MoE layer: moe_act drops the experts' FC2 input (in * rows * fe) and regenerates it in bf16;
// "mlp" is a dense MLP's and leaves a MoE layer alone; layernorm drops what it drops in a dense
// layer.
TEST(RecomputeModules, MoeLayerClosedForms) {
  const ModelSpec m = small_moe(8, 2);
  const int s = 1024, b = 1, t = 1;
  const int64_t tokens = 1024, rows = 2600, fe = m.expert_ffn_hidden;
  for (bool fp8 : {false, true}) {
    auto moe = [&](Recompute r, uint32_t mods) {
      return moe_layer_activation(m, s, b, t, false, r, false, tokens, rows, 1, fp8, mods);
    };
    const int64_t in = fp8 ? 1 : 2;
    const LayerActivation a = moe(Recompute::kSelective, kAttn);
    const LayerActivation act = moe(Recompute::kSelective, kAttn | kRecomputeMoeAct);
    EXPECT_EQ(act.saved_bytes, a.saved_bytes - in * rows * fe);
    EXPECT_EQ(act.recompute_transient_bytes, a.recompute_transient_bytes + 2 * rows * fe);
    const LayerActivation mlp = moe(Recompute::kSelective, kAttn | kRecomputeMlp);
    EXPECT_EQ(mlp.saved_bytes, a.saved_bytes);
    EXPECT_EQ(mlp.recompute_transient_bytes, a.recompute_transient_bytes);
    const LayerActivation ln = moe(Recompute::kSelective, kAttn | kRecomputeLayernorm);
    EXPECT_EQ(a.saved_bytes - ln.saved_bytes, 2 * in * int64_t{s} * b * m.hidden);
  }
}

Scenario dense_scenario(const ModelSpec& m, int tp, int pp, int dp, int micro_batches, uint32_t mods) {
  Scenario s = testing::moe_scenario(m, tp, pp, dp, 1, micro_batches);
  s.parallel.recompute = Recompute::kSelective;
  s.parallel.recompute_modules = mods;
  return s;
}

// The tasks of category recompute whose op is `name`, in a program.
int recomputed(const Plan& p, int program, const std::string& name) {
  int n = 0;
  for (const Task& t : p.programs[program].tasks)
    if (t.category == Category::kRecompute && p.ops[t.op].name == name) ++n;
  return n;
}

// "mlp" reruns FC1, the activation and FC2: per layer and micro-batch 2 * 2T h f recomputed
// FLOPs (GeLU; T = micro-batch tokens); layernorm reruns both norms (no FLOPs); with neither
// module nothing is recomputed but the attention core.
TEST(RecomputeModules, PlanRecomputesWhatTheModulesName) {
  const ModelSpec m = small_gpt(4);
  const int micro = 3;
  const Plan attn = testing::compile_plan_of(dense_scenario(m, 1, 1, 1, micro, kAttn));
  const Plan mlp = testing::compile_plan_of(dense_scenario(m, 1, 1, 1, micro, kRecomputeMlp));
  const Plan ln = testing::compile_plan_of(dense_scenario(m, 1, 1, 1, micro, kRecomputeLayernorm));
  ASSERT_EQ(mlp.programs.size(), 1u);
  ASSERT_EQ(ln.programs.size(), 1u);
  const double T = 1024, h = m.hidden, f = m.ffn_hidden;
  const double want = 4.0 * micro * 2 * (2 * T * h * f);
  EXPECT_NEAR(mlp.programs[0].hardware_flops.v - mlp.programs[0].model_flops.v, want, 1e-9 * want);
  EXPECT_EQ(mlp.programs[0].model_flops.v, attn.programs[0].model_flops.v);
  EXPECT_EQ(recomputed(mlp, 0, "mlp.fc1.fwd"), 4 * micro);
  EXPECT_EQ(recomputed(mlp, 0, "mlp.gelu.fwd"), 4 * micro);
  EXPECT_EQ(recomputed(mlp, 0, "mlp.fc2.fwd"), 4 * micro);
  EXPECT_EQ(recomputed(mlp, 0, "attn.core.fwd"), 0);
  EXPECT_EQ(recomputed(ln, 0, "attn.norm.fwd"), 4 * micro);
  EXPECT_EQ(recomputed(ln, 0, "mlp.norm.fwd"), 4 * micro);
  EXPECT_EQ(ln.programs[0].hardware_flops.v, ln.programs[0].model_flops.v);
  EXPECT_EQ(recomputed(attn, 0, "mlp.norm.fwd"), 0);
  EXPECT_GT(recomputed(attn, 0, "attn.core.fwd"), 0);
}

// MLA's up-projections and the experts' activation in a MoE model's plan.
TEST(RecomputeModules, PlanRecomputesMlaUpProjectionsAndExpertActivations) {
  ModelSpec m = small_mla();
  m.arch = "moe";
  m.experts = 4;
  m.top_k = 2;
  m.expert_ffn_hidden = 704;
  const int micro = 2;
  const Plan p =
      testing::compile_plan_of(dense_scenario(m, 1, 1, 1, micro, kRecomputeMlaUpProj | kRecomputeMoeAct));
  ASSERT_EQ(p.programs.size(), 1u);
  const int L = m.layers * micro;
  EXPECT_EQ(recomputed(p, 0, "attn.mla.q_up.fwd"), L);
  EXPECT_EQ(recomputed(p, 0, "attn.mla.kv_up.fwd"), L);
  EXPECT_EQ(recomputed(p, 0, "attn.rope.fwd"), L);
  EXPECT_EQ(recomputed(p, 0, "moe.expert.swiglu.fwd"), L);
  EXPECT_EQ(recomputed(p, 0, "attn.mla.q_down.fwd"), 0);
  EXPECT_EQ(recomputed(p, 0, "attn.core.fwd"), 0);
}

// Stage 0 of 1F1B with pp = 2 (no LM head) peaks when its first backward layer recomputes:
// min(p, m) micro-batches of its 2 layers kept, plus that layer's transient. A module's tensors
// leave the kept set and join the transient, so the peak falls by (in-flight x 2 - 1) x the
// bytes it drops.
TEST(RecomputeModules, ActivationPeakFallsByWhatTheModulesDrop) {
  const ModelSpec m = small_llama();   // 4 layers: 2 a stage
  for (int micro : {1, 2, 4}) {
    auto peak = [&](uint32_t mods) {
      auto pr = predict(dense_scenario(m, 1, 2, 1, micro, mods), PredictOptions{});
      EXPECT_TRUE(pr.ok()) << pr.status().to_string();
      return pr.ok() ? pr->memory_per_stage[0].activations.count() : 0;
    };
    const int64_t base = peak(kAttn);
    const int64_t with = peak(kAttn | kRecomputeLayernorm | kRecomputeMlp);
    const int64_t dropped = sel(m, 1024, 1, 1, false, kAttn).saved_bytes -
                            sel(m, 1024, 1, 1, false, kAttn | kRecomputeLayernorm | kRecomputeMlp).saved_bytes;
    ASSERT_GT(dropped, 0);
    EXPECT_EQ(base - with, (std::min(2, micro) * 2 - 1) * dropped) << "m=" << micro;
  }
}

// torchtitan's op-level policy ("op", kRecomputeOp) on a Llama block (tp 1, no dropout). Of the
// matmuls wq wk wv wo w1 w3 w2 the odd ones' outputs are kept, with the block input and the
// attention core's output and log-sum-exp; per token (q = heads x head dim, k = kv heads x head
// dim, bf16):
//   kept      = 2h (input) + 2q (wq) + 2k (wv) + 2q (O) + 2f (w1) + 2h (w2)  + the fp32 lse
//   transient = 2h (norm) + 2k (wk) + 2(q + k) (roped Q, K) + 2h (wo) + 2h (residual)
//               + 2h (MLP norm) + 2f (w3) + 2f (SwiGLU output)
TEST(RecomputeModules, OpPolicyClosedForm) {
  const ModelSpec m = small_llama();
  const int s = 1024, b = 2;
  const int64_t sb = int64_t{s} * b, h = m.hidden, f = m.ffn_hidden;
  const int64_t q = int64_t{m.heads} * m.head_dim, k = int64_t{m.kv_heads} * m.head_dim;
  const int64_t lse = 4 * b * m.heads * s;
  const LayerActivation op = sel(m, s, b, 1, false, kRecomputeOp);
  EXPECT_EQ(op.saved_bytes, sb * (2 * h + 2 * q + 2 * k + 2 * q + 2 * f + 2 * h) + lse);
  EXPECT_EQ(op.recompute_transient_bytes, sb * (2 * h + 2 * k + 2 * (q + k) + 3 * 2 * h + 2 * 2 * f));
  // Megatron's default (the attention core) keeps more: the norm outputs, K, the MLP's up half
  // and the FC2 input among them.
  EXPECT_LT(op.saved_bytes, sel(m, s, b, 1, false, kAttn).saved_bytes);
}

// The plan reruns what the policy does not keep, once per layer and micro-batch, and not the
// attention core: recomputed GEMM FLOPs 2T h (k + q + f) per layer and micro-batch (wk, wo, w3;
// T = micro-batch tokens), the norms, RoPE, residual and SwiGLU without FLOPs.
TEST(RecomputeModules, PlanRecomputesTheOpPolicy) {
  const ModelSpec m = small_llama();
  const int micro = 3;
  const Plan p = testing::compile_plan_of(dense_scenario(m, 1, 1, 1, micro, kRecomputeOp));
  ASSERT_EQ(p.programs.size(), 1u);
  const int L = m.layers * micro;
  for (const char* name : {"attn.norm.fwd", "attn.k.fwd", "attn.rope.fwd", "attn.proj.fwd", "attn.residual.fwd",
                           "mlp.norm.fwd", "mlp.fc1.up.fwd", "mlp.swiglu.fwd"})
    EXPECT_EQ(recomputed(p, 0, name), L) << name;
  EXPECT_EQ(recomputed(p, 0, "attn.core.fwd"), 0);
  EXPECT_EQ(recomputed(p, 0, "attn.qkv.fwd"), 0);
  EXPECT_EQ(recomputed(p, 0, "mlp.fc1.fwd"), 0);
  EXPECT_EQ(recomputed(p, 0, "mlp.fc2.fwd"), 0);
  const double T = 1024, h = m.hidden, f = m.ffn_hidden;
  const double q = m.heads * m.head_dim, k = m.kv_heads * m.head_dim;
  const double want = L * 2 * T * h * (k + q + f);
  EXPECT_NEAR(p.programs[0].hardware_flops.v - p.programs[0].model_flops.v, want, 1e-9 * want);
  for (int pp : {1, 2})
    testing::expect_fast_equals_full(dense_scenario(m, 1, pp, 2, 4, kRecomputeOp), "op pp=" + std::to_string(pp));
}

// Every rank of a stage runs the same program: fast mode equals full mode, dense and MoE+MLA.
TEST(RecomputeModules, FastModeEqualsFullMode) {
  std::mt19937_64 rng(20261123);
  ModelSpec mla_moe = small_mla();
  mla_moe.arch = "moe";
  mla_moe.experts = 8;
  mla_moe.top_k = 2;
  mla_moe.expert_ffn_hidden = 704;
  mla_moe.layers = 4;
  for (int i = 0; i < 16; ++i) {
    const bool moe = i % 2 == 1;
    const int tp = 1 << (rng() % 2), pp = 1 << (rng() % 2), dp = 2;
    uint32_t mods = static_cast<uint32_t>(rng() % 31) + 1;
    if (!moe) mods &= ~uint32_t{kRecomputeMlaUpProj | kRecomputeMoeAct};
    if (mods == 0) mods = kRecomputeMlp;
    Scenario s = dense_scenario(moe ? mla_moe : small_llama(), tp, pp, dp, pp * 2, mods);
    if (moe) s.parallel.ep = 2;
    s.parallel.sequence_parallel = tp > 1 && rng() % 2;
    s.parallel.zero = static_cast<int>(rng() % 2);
    const std::string what = std::string(moe ? "moe" : "dense") + " tp=" + std::to_string(tp) +
                             " pp=" + std::to_string(pp) + " mods=" + std::to_string(mods);
    testing::expect_fast_equals_full(s, what);
  }
}

}  // namespace
}  // namespace trainsim
