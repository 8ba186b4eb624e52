// Multi-token prediction (ModelSpec::mtp_depth; models/compiler.h): closed-form FLOPs and
// parameters of one module on the last stage, the embedding group it needs with pp > 1 and an
// untied head, and what the catalog says of DeepSeek-V3 (STYLE.md 7, layer 1). The fast == full
// oracles with MTP are in compiler_test.cpp (dense) and mla_test.cpp (MLA, MLA + MoE).
#include <gtest/gtest.h>

#include <string>

#include "models/catalog.h"
#include "models/compiler.h"
#include "tests/models/model_fixtures.h"
#include "models/memory.h"

namespace trainsim {
namespace {

using testing::small_gpt;
using testing::training;

CompiledPlan compile(const ModelSpec& m, const TrainingSpec& t, const ParallelSpec& p) {
  auto c = compile_plan(m, t, p, 8);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return c.ok() ? std::move(c.value()) : CompiledPlan{};
}

// Model FLOPs (kCompute GEMMs and attention) of one program's tasks that `pick` selects.
template <class F>
double flops_of(const CompiledPlan& c, int program, F pick) {
  double f = 0;
  for (const Task& t : c.plan.programs[program].tasks) {
    if (t.kind != TaskKind::kCompute || t.category != Category::kCompute) continue;
    const OpDesc& op = c.plan.ops[t.op];
    if ((op.cls == OpClass::kGemm || op.cls == OpClass::kAttention) && pick(t, op)) f += op.flops.v;
  }
  return f;
}

// One module adds to the last stage's model FLOPs, per micro-batch, with T tokens, h hidden:
//   one layer forward + backward   (the main program's FLOPs of the last layer, per micro-batch)
//   projection 2h -> h/t           2*T*2h*h/t forward, 2 x that backward
//   one LM head forward + backward (the main program's head.* FLOPs)
// and nothing to the other stages. Parameters on the last stage (elements, this rank):
//   layer_params_local(L) + ceil(2h*h/t) + 2 norms (LayerNorm: 2h each)
//   + ceil(vocab*h/t) for the embedding copy when pp > 1 and the head is untied.
TEST(Mtp, OneModuleAddsALayerAProjectionAndAHeadOnTheLastStage) {
  for (int pp : {1, 2})
    for (int tp : {1, 2})
      for (bool tied : {false, true}) {
        ModelSpec m0 = small_gpt(4);
        m0.tied_embeddings = tied;
        ModelSpec m1 = m0;
        m1.mtp_depth = 1;
        ParallelSpec p;
        p.tp = tp;
        p.pp = pp;
        p.dp = 1;
        const int micro = 2 * pp;
        const TrainingSpec tr = training(1024, micro, 1);
        const CompiledPlan a = compile(m0, tr, p), b = compile(m1, tr, p);
        ASSERT_EQ(static_cast<int>(a.plan.programs.size()), pp);
        ASSERT_EQ(static_cast<int>(b.plan.programs.size()), pp);
        const std::string what = "pp=" + std::to_string(pp) + " tp=" + std::to_string(tp) + " tied=" + std::to_string(tied);
        const int last = pp - 1, L = m0.layers - 1;
        const double T = 1024, h = 1024;
        const double layer = flops_of(a, last, [&](const Task& t, const OpDesc&) { return t.layer == L; });
        const double head = flops_of(a, last, [](const Task&, const OpDesc& op) { return op.name.rfind("head.", 0) == 0; });
        ASSERT_GT(layer, 0) << what;
        ASSERT_GT(head, 0) << what;
        const double proj = 3.0 * 2 * T * 2 * h * h / tp * micro;
        EXPECT_DOUBLE_EQ(b.plan.programs[last].model_flops.v - a.plan.programs[last].model_flops.v, layer + proj + head)
            << what;
        EXPECT_DOUBLE_EQ(flops_of(b, last, [](const Task&, const OpDesc& op) { return op.name.rfind("mtp.proj.", 0) == 0; }),
                         proj)
            << what;
        for (int s = 0; s < last; ++s)
          EXPECT_DOUBLE_EQ(b.plan.programs[s].model_flops.v, a.plan.programs[s].model_flops.v) << what << " stage " << s;
        const int64_t copy = pp > 1 && !tied ? (int64_t{32000} * 1024 + tp - 1) / tp : 0;
        const int64_t added = layer_params_local(m0, L, tp) + (2 * 1024 * 1024 + tp - 1) / tp + 2 * 2 * 1024 + copy;
        EXPECT_EQ(b.stages[last].params_local - a.stages[last].params_local, added) << what;
        // zero 0: 2 B of bf16 weights, 4 B of fp32 gradient, 12 B of Adam state per parameter.
        EXPECT_EQ(b.plan.programs[last].mem.params.count() - a.plan.programs[last].mem.params.count(), 2 * added) << what;
        EXPECT_EQ(b.plan.programs[last].mem.grads.count() - a.plan.programs[last].mem.grads.count(), 4 * added) << what;
        EXPECT_EQ(b.plan.programs[last].mem.optimizer.count() - a.plan.programs[last].mem.optimizer.count(), 12 * added)
            << what;
        for (int s = 0; s < last; ++s) EXPECT_EQ(b.stages[s].params_local, a.stages[s].params_local) << what;
      }
}

// Depth 2 chains two modules: twice what one adds (the embedding copy once).
TEST(Mtp, DepthTwoIsTwoModules) {
  ModelSpec m0 = small_gpt(4), m1 = m0, m2 = m0;
  m1.mtp_depth = 1;
  m2.mtp_depth = 2;
  ParallelSpec p;
  p.pp = 2;
  const TrainingSpec tr = training(1024, 4, 1);
  const CompiledPlan a = compile(m0, tr, p), b = compile(m1, tr, p), c = compile(m2, tr, p);
  EXPECT_DOUBLE_EQ(c.plan.programs[1].model_flops.v - a.plan.programs[1].model_flops.v,
                   2 * (b.plan.programs[1].model_flops.v - a.plan.programs[1].model_flops.v));
  const int64_t copy = int64_t{32000} * 1024;
  EXPECT_EQ(c.stages[1].params_local - a.stages[1].params_local, 2 * (b.stages[1].params_local - a.stages[1].params_local) - copy);
  EXPECT_EQ(mtp_params(m2), 2 * mtp_params(m1));
  EXPECT_EQ(mtp_params(m0), 0);
  EXPECT_EQ(mtp_params(m1), layer_params(m0) + 2 * 1024 * 1024 + 2 * 2 * 1024);
}

// The "pp.embedding.grad.allreduce" tasks of a program.
int embedding_allreduces(const CompiledPlan& c, int program) {
  int n = 0;
  for (const Task& t : c.plan.programs[program].tasks)
    if (c.plan.ops[t.op].name == "pp.embedding.grad.allreduce") ++n;
  return n;
}

// pp > 1 with an untied head: MTP's lookup needs the embedding on the last stage, whose copy's
// gradient is all-reduced with stage 0's over "pp-embedding" (2 B x vocab*h/tp), as for a tied
// head; without MTP (untied) or with pp = 1 there is no such group nor task.
TEST(Mtp, EmbeddingGroupWithPpAndUntiedHead) {
  for (int depth : {0, 1})
    for (int pp : {1, 2}) {
      ModelSpec m = small_gpt(4);
      m.mtp_depth = depth;
      ParallelSpec p;
      p.pp = pp;
      p.dp = 2;
      const CompiledPlan c = compile(m, training(1024, 4, 2), p);
      bool group = false;
      for (const GroupTable& g : c.plan.groups) group |= g.name == "pp-embedding";
      const bool want = depth > 0 && pp > 1;
      EXPECT_EQ(group, want) << "depth " << depth << " pp " << pp;
      EXPECT_EQ(has_embedding_group(m, pp), want);
      for (int s = 0; s < pp; ++s) EXPECT_EQ(embedding_allreduces(c, s), want ? 1 : 0) << "depth " << depth << " pp " << pp;
      if (want) {
        EXPECT_EQ(c.plan.groups[embedding_grad_group(false, false)].name, "pp-embedding");
        for (const OpDesc& op : c.plan.ops) {
          if (op.name == "pp.embedding.grad.allreduce") {
            EXPECT_EQ(op.bytes.count(), 4 * int64_t{32000} * 1024);   // the main gradient in fp32 (bf16 training)
          }
        }
      }
    }
}

// The catalog: DeepSeek-V3 has one module (technical report section 2.2), 11.6B parameters of
// its own beside the 671B (its "14B" adds the checkpoint's embedding and head copies, 0.93B
// each); the other models none.
TEST(Mtp, CatalogDeepSeekV3HasOneModule) {
  for (const CatalogModel& c : model_catalog()) {
    if (c.spec.name == "deepseek-v3") {
      EXPECT_EQ(c.spec.mtp_depth, 1);
      EXPECT_NEAR(static_cast<double>(mtp_params(c.spec)) * 1e-9, 11.61, 0.01);
      EXPECT_NEAR(static_cast<double>(total_params(c.spec) + mtp_params(c.spec) + 2 * embedding_params(c.spec)) * 1e-9,
                  684.5, 0.1);
    } else {
      EXPECT_EQ(c.spec.mtp_depth, 0) << c.spec.name;
    }
  }
}

}  // namespace
}  // namespace trainsim
