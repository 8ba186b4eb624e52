// fp8 runs (training.precision "fp8"): the cast kernels before the fp8 GEMMs (closed form of
// their bytes under every recipe, where they go and where they do not), the LM head and the
// MoE router in bf16, fast mode against full mode, and the linear-layer inputs kept as fp8
// casts (training.fp8_cache_inputs).
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "models/catalog.h"
#include "models/compiler.h"
#include "models/memory.h"
#include "scenarios/predict.h"
#include "tests/models/model_fixtures.h"
#include "tests/models/moe_fixtures.h"

namespace trainsim {
namespace {

using testing::small_gpt;

// small_gpt(layers) on tp x 1 x dp H100s, `micro_batches` sequences of 1024 tokens.
Scenario fp8_scenario(int layers, int tp, int dp, int micro_batches, Recompute rc, Fp8Recipe recipe,
                      DType precision = DType::kFP8) {
  Scenario s = testing::moe_scenario(small_gpt(layers), tp, 1, dp, 1, micro_batches);
  s.training.precision = precision;
  s.training.fp8_recipe = recipe;
  s.parallel.recompute = rc;
  return s;
}

bool is_cast(const OpDesc& o) { return o.name.find(".fp8cast.") != std::string::npos; }

struct CastSum {
  int64_t bytes[3] = {0, 0, 0};   // by category: compute forward, compute backward, recompute
  int tasks = 0;
};
CastSum casts(const Plan& p, size_t program) {
  CastSum c;
  for (const Task& t : p.programs[program].tasks) {
    const OpDesc& o = p.ops[t.op];
    if (t.kind != TaskKind::kCompute || !is_cast(o)) continue;
    EXPECT_EQ(o.cls, OpClass::kElementwise) << o.name;
    ++c.tasks;
    const int k = t.category == Category::kRecompute ? 2 : o.backward ? 1 : 0;
    c.bytes[k] += o.bytes.count();
  }
  return c;
}

// GPT layer, hidden h, T tokens a micro-batch, m micro-batches, tp 1: forward GEMMs qkv
// (T x 3h x h), proj (T x h x h), fc1 (T x 4h x h), fc2 (T x h x 4h) cast their inputs
// (7Th elements) each micro-batch and their weights (12h^2) in the first; the data-gradient
// GEMMs cast their output gradients (3h + h + 4h + h = 9Th). 6 B an element under current
// scaling, 4 B delayed or blockwise. Full recomputation casts the inputs again (weights are kept).
TEST(Fp8Cast, BytesMatchTheClosedForm) {
  const int64_t h = 1024, T = 1024, L = 3;
  for (Fp8Recipe r : {Fp8Recipe::kCurrent, Fp8Recipe::kDelayed, Fp8Recipe::kBlockwise})
    for (Recompute rc : {Recompute::kNone, Recompute::kFull})
      for (int m : {1, 3}) {
        const int64_t per = r == Fp8Recipe::kCurrent ? 6 : 4;
        const Plan p = testing::compile_plan_of(fp8_scenario(static_cast<int>(L), 1, 1, m, rc, r));
        ASSERT_EQ(p.programs.size(), 1u);
        const CastSum c = casts(p, 0);
        EXPECT_EQ(c.bytes[0], per * L * (m * 7 * T * h + 12 * h * h)) << "forward, m=" << m;
        EXPECT_EQ(c.bytes[1], per * L * m * 9 * T * h) << "backward, m=" << m;
        EXPECT_EQ(c.bytes[2], rc == Recompute::kFull ? per * L * m * 7 * T * h : 0) << "recompute, m=" << m;
        // One cast a forward GEMM, one a data-gradient GEMM; none for weight gradients.
        EXPECT_EQ(c.tasks, static_cast<int>(L * m * (4 + 4 + (rc == Recompute::kFull ? 4 : 0))));
      }
}

// A bf16 run casts nothing; an fp8 run keeps the LM head's GEMMs in bf16 and every layer GEMM
// in fp8, and its casts cost step time (current scaling more than delayed).
TEST(Fp8Cast, OnlyFp8LayerGemmsAreCast) {
  const Plan bf = testing::compile_plan_of(fp8_scenario(2, 1, 1, 2, Recompute::kNone, Fp8Recipe::kCurrent, DType::kBF16));
  EXPECT_EQ(casts(bf, 0).tasks, 0);
  const Plan f8 = testing::compile_plan_of(fp8_scenario(2, 1, 1, 2, Recompute::kNone, Fp8Recipe::kCurrent));
  int head = 0, fp8_gemms = 0;
  for (const Task& t : f8.programs[0].tasks) {
    const OpDesc& o = f8.ops[t.op];
    if (t.kind != TaskKind::kCompute || o.cls != OpClass::kGemm) continue;
    if (o.name.rfind("head.", 0) == 0) {
      ++head;
      EXPECT_EQ(o.dtype, DType::kBF16) << o.name;
    } else {
      ++fp8_gemms;
      EXPECT_EQ(o.dtype, DType::kFP8) << o.name;
    }
  }
  EXPECT_EQ(head, 2 * 3) << "head forward, dgrad and wgrad, two micro-batches";
  EXPECT_EQ(fp8_gemms, 2 * 2 * 4 * 3);

  const Prediction cur = testing::run(fp8_scenario(2, 1, 1, 2, Recompute::kNone, Fp8Recipe::kCurrent));
  const Prediction del = testing::run(fp8_scenario(2, 1, 1, 2, Recompute::kNone, Fp8Recipe::kDelayed));
  EXPECT_GT(cur.step_time.count_ps(), del.step_time.count_ps());
}

// Tensor parallelism shards every cast with its GEMM: the column-parallel GEMMs' weights and
// output gradients, the row-parallel GEMMs' inputs and weights (without SP, the inputs of
// column-parallel GEMMs are whole on every rank).
TEST(Fp8Cast, TensorParallelShardsTheCasts) {
  const int64_t h = 1024, T = 1024, L = 2, m = 2, t = 4;
  const Plan p = testing::compile_plan_of(fp8_scenario(static_cast<int>(L), static_cast<int>(t), 1, static_cast<int>(m),
                                      Recompute::kNone, Fp8Recipe::kDelayed));
  const CastSum c = casts(p, 0);
  // Forward inputs: qkv and fc1 read the whole T x h; proj T x h/t; fc2 T x 4h/t.
  EXPECT_EQ(c.bytes[0], 4 * L * (m * (2 * T * h + T * h / t + 4 * T * h / t) + 12 * h * h / t));
  // Output gradients: qkv T x 3h/t, proj T x h, fc1 T x 4h/t, fc2 T x h.
  EXPECT_EQ(c.bytes[1], 4 * L * m * (3 * T * h / t + T * h + 4 * T * h / t + T * h));
}

// MoE: the expert GEMMs are cast like the dense ones, the router is not; the balanced twins
// (imbalance cost) carry the casts too: the balanced reference equals the balanced run.
TEST(Fp8Cast, MoeRouterStaysBf16AndTwinsCoverTheCasts) {
  Scenario s = testing::moe_scenario(testing::small_moe(8, 2), 1, 1, 8, 8, 2, 2048);
  s.training.precision = DType::kFP8;
  s.training.moe.kind = MoeRouting::kZipf;
  s.training.moe.skew = 1.5;
  const Plan p = testing::compile_plan_of(s);
  int expert_casts = 0;
  for (const Task& t : p.programs[0].tasks) {
    const OpDesc& o = p.ops[t.op];
    if (o.name.rfind("moe.router.", 0) == 0) {
      EXPECT_EQ(o.dtype, DType::kBF16) << o.name;
      EXPECT_FALSE(is_cast(o)) << o.name;
    }
    if (is_cast(o) && o.name.rfind("moe.expert.", 0) == 0) ++expert_casts;
  }
  EXPECT_EQ(expert_casts, 4 * 2 * 4) << "fc1/fc2 forward and data gradient, 2 micro-batches, 4 layers";
  const Prediction a = testing::run(s);
  Scenario b = s;
  b.training.moe.kind = MoeRouting::kBalanced;
  const Prediction pb = testing::run(b);
  EXPECT_EQ(a.moe.balanced_step_time.count_ps(), pb.step_time.count_ps());
  EXPECT_GT(a.moe.imbalance_cost.count_ps(), 0);
}

// Fast mode (identical replicas collapsed) gives the full mode's step on fp8 plans.
TEST(Fp8Cast, FastModeEqualsFullMode) {
  std::mt19937 rng(8);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  for (int i = 0; i < 10; ++i) {
    const int tp = 1 << pick(3), dp = 1 << pick(3), m = 1 + pick(4);
    const Recompute rc = pick(3) == 0 ? Recompute::kFull : pick(2) == 0 ? Recompute::kSelective : Recompute::kNone;
    Scenario s = fp8_scenario(4, tp, dp, m, rc, pick(2) == 0 ? Fp8Recipe::kCurrent : Fp8Recipe::kDelayed);
    s.parallel.zero = pick(4);
    s.parallel.sequence_parallel = tp > 1 && pick(2) == 0;
    const Prediction full = testing::run(s, false), fast = testing::run(s, true);
    EXPECT_EQ(full.step_time.count_ps(), fast.step_time.count_ps()) << "config " << i;
    EXPECT_EQ(full.peak_memory.total(), fast.peak_memory.total()) << "config " << i;
  }
}

// fp8_cache_inputs: each linear layer's kept input takes 1 B an element instead of 2. Dense
// layer, tp 1: the QKV and FC1 inputs (sbh each) and the FC2 input (sbf); MLA adds its two
// up-projection inputs (q and kv latents after their norms); full recomputation keeps only the
// layer input (unchanged) and recomputes the rest.
TEST(Fp8CacheInputs, LayerActivationClosedForm) {
  const int s = 2048, b = 2;
  const int64_t sb = int64_t{s} * b;
  for (const char* name : {"gpt3-175b", "llama3-8b", "deepseek-v3"}) {
    auto m = find_model(name);
    ASSERT_TRUE(m.ok()) << name;
    const ModelSpec& M = m.value();
    int64_t want = sb * (2 * M.hidden + M.ffn_hidden);
    if (M.mla) want += sb * (M.q_lora_rank + M.kv_lora_rank);
    for (Recompute rc : {Recompute::kNone, Recompute::kSelective, Recompute::kFull}) {
      const LayerActivation bf = layer_activation(M, s, b, 1, false, rc, false, false);
      const LayerActivation f8 = layer_activation(M, s, b, 1, false, rc, false, true);
      if (rc == Recompute::kFull) {
        EXPECT_EQ(f8.saved_bytes, bf.saved_bytes) << name << ": the layer input stays bf16";
        EXPECT_EQ(bf.recompute_transient_bytes - f8.recompute_transient_bytes, want) << name;
      } else {
        EXPECT_EQ(bf.saved_bytes - f8.saved_bytes, want) << name << " " << to_string(rc);
      }
    }
  }
}

// MoE layer: the dense part as above with the shared experts' width for f, and per rank the
// dispatch buffer (rows x h) and the expert FC2 input (rows x fe).
TEST(Fp8CacheInputs, MoeLayerActivationClosedForm) {
  auto m = find_model("deepseek-v3");
  ASSERT_TRUE(m.ok());
  const ModelSpec& M = m.value();
  const int s = 4096, b = 1;
  const int64_t sb = s, tokens = s, rows = 3 * tokens;
  const int64_t fs = int64_t{M.shared_experts} * M.expert_ffn_hidden;
  const LayerActivation bf = moe_layer_activation(M, s, b, 1, false, Recompute::kNone, false, tokens, rows, 1, false);
  const LayerActivation f8 = moe_layer_activation(M, s, b, 1, false, Recompute::kNone, false, tokens, rows, 1, true);
  EXPECT_EQ(bf.saved_bytes - f8.saved_bytes, sb * (2 * M.hidden + fs + M.q_lora_rank + M.kv_lora_rank) +
                                                 rows * M.hidden + rows * M.expert_ffn_hidden);
}

// In a plan: one micro-batch in flight (pp 1), no recomputation: the activation peak falls by
// layers x the dense difference; the step does not change. A bf16 run may not ask for it.
TEST(Fp8CacheInputs, PeakFallsByTheLayersDifference) {
  Scenario s = fp8_scenario(4, 1, 1, 2, Recompute::kNone, Fp8Recipe::kCurrent);
  const Prediction bf = testing::run(s);
  s.training.fp8_cache_inputs = true;
  const Prediction f8 = testing::run(s);
  const int64_t sb = s.training.seq_len, h = s.model.hidden, f = s.model.ffn_hidden;
  EXPECT_EQ(bf.peak_memory.activations.count() - f8.peak_memory.activations.count(), 4 * sb * (2 * h + f));
  EXPECT_EQ(bf.step_time.count_ps(), f8.step_time.count_ps());
}

}  // namespace
}  // namespace trainsim
