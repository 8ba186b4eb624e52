// Block recomputation (parallel.recompute_layers with recompute "full"): only the first N
// layers of each model chunk are recomputed, the others keep their activations (Megatron's
// --recompute-method block --recompute-num-layers N). Closed forms for the recomputed FLOPs and
// the activation peak, its limits (N >= a chunk's layers is plain full recomputation), and fast
// mode against full mode.
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

// small_gpt(layers) on tp x pp x dp H100s (moe_scenario with no experts), vp chunks a stage.
Scenario block_scenario(int layers, int tp, int pp, int vp, int dp, int micro_batches, Recompute rc, int n) {
  Scenario s = testing::moe_scenario(small_gpt(layers), tp, pp, dp, 1, micro_batches);
  s.parallel.vp = vp;
  if (vp > 1) s.parallel.schedule = Schedule::kInterleaved;
  s.parallel.recompute = rc;
  s.parallel.recompute_layers = n;
  return s;
}

// Recomputed forward FLOPs of each program = (hardware - model) FLOPs. With pp 2 x vp 2 over
// 16 layers every chunk has 4 layers and every stage 2 chunks, so a stage recomputes
// 2 * min(N, 4) layers, each the same forward: (hw - model)(N) = 2 min(N,4) / 8 of (hw - model)
// under plain full recomputation (every layer, N = 0).
TEST(BlockRecompute, RecomputedFlopsCountTheFirstLayersOfEachChunk) {
  const Plan all = testing::compile_plan_of(block_scenario(16, 1, 2, 2, 1, 4, Recompute::kFull, 0));
  ASSERT_EQ(all.programs.size(), 2u);
  for (int n : {1, 2, 3, 4, 5, 16}) {
    const Plan b = testing::compile_plan_of(block_scenario(16, 1, 2, 2, 1, 4, Recompute::kFull, n));
    ASSERT_EQ(b.programs.size(), 2u);
    for (size_t st = 0; st < 2; ++st) {
      const double full = all.programs[st].hardware_flops.v - all.programs[st].model_flops.v;
      const double got = b.programs[st].hardware_flops.v - b.programs[st].model_flops.v;
      ASSERT_GT(full, 0);
      EXPECT_NEAR(got, full * 2 * std::min(n, 4) / 8.0, 1e-9 * full) << "N=" << n << " stage " << st;
      EXPECT_EQ(b.programs[st].model_flops.v, all.programs[st].model_flops.v) << "model FLOPs never change";
    }
  }
}

// N at least a chunk's layers is plain full recomputation: the same plan and step.
TEST(BlockRecompute, EveryLayerOfTheChunkIsPlainFullRecompute) {
  auto a = predict(block_scenario(16, 1, 2, 2, 1, 4, Recompute::kFull, 0), PredictOptions{});
  auto b = predict(block_scenario(16, 1, 2, 2, 1, 4, Recompute::kFull, 4), PredictOptions{});
  auto c = predict(block_scenario(16, 1, 2, 2, 1, 4, Recompute::kFull, 3), PredictOptions{});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->fingerprint, b->fingerprint);
  EXPECT_EQ(a->step_time.count_ps(), b->step_time.count_ps());
  EXPECT_NE(a->fingerprint, c->fingerprint);
  EXPECT_LT(c->step_time.count_ps(), a->step_time.count_ps()) << "one layer of each chunk not recomputed";
  EXPECT_GT(c->peak_memory.activations.count(), a->peak_memory.activations.count());
}

// Stage 0 of 1F1B (pp >= 2: it holds no LM head) holds min(p, m) micro-batches at its peak, as
// with no recomputation: each with N layers' full-recompute inputs, the other layers' complete
// activations, and the embedding's.
TEST(BlockRecompute, ActivationPeakIsTheMixOfBothSets) {
  for (int p : {2, 4})
    for (int m : {2, 4, 8})
      for (int n : {1, 2, 3}) {
        const int per_stage = 8 / p;
        if (n >= per_stage) continue;
        const Scenario s = block_scenario(8, 1, p, 1, 1, m, Recompute::kFull, n);
        auto pr = predict(s, PredictOptions{});
        ASSERT_TRUE(pr.ok()) << pr.status().to_string();
        const LayerActivation full = layer_activation(s.model, 1024, 1, 1, false, Recompute::kFull);
        const LayerActivation none = layer_activation(s.model, 1024, 1, 1, false, Recompute::kNone);
        const int64_t emb = embedding_activation_bytes(s.model, 1024, 1, 1, false);
        const int64_t inflight = std::min(p, m);
        const int64_t expect = inflight * (n * full.saved_bytes + (per_stage - n) * none.saved_bytes + emb);
        EXPECT_EQ(pr->memory_per_stage[0].activations.count(), expect) << "p=" << p << " m=" << m << " N=" << n;
      }
}

// Every rank of a stage runs the same program: fast mode equals full mode.
TEST(BlockRecompute, FastModeEqualsFullMode) {
  std::mt19937_64 rng(20261123);
  for (int i = 0; i < 12; ++i) {
    const int tp = 1 << (rng() % 2), pp = 1 << (rng() % 3), dp = 1 << (rng() % 2);
    const int vp = pp > 1 && rng() % 2 ? 2 : 1;
    const int n = 1 + static_cast<int>(rng() % 4);
    Scenario s = block_scenario(16, tp, pp, vp, dp, pp * 2, Recompute::kFull, n);
    s.parallel.zero = static_cast<int>(rng() % 4);
    const std::string what = "tp=" + std::to_string(tp) + " pp=" + std::to_string(pp) + " vp=" + std::to_string(vp) +
                             " dp=" + std::to_string(dp) + " N=" + std::to_string(n);
    testing::expect_fast_equals_full(s, what);
  }
}

}  // namespace
}  // namespace trainsim
