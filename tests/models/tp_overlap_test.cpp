// TP communication overlap (parallel.tp_overlap): sequence parallelism's all-gathers and
// reduce-scatters of the dense layers split into tp ring steps beside tp chunks of their GEMMs.
// Closed forms for the steps and bytes, model FLOPs unchanged, exposed TP time that falls, MoE
// and MLA parts that keep their blocking collectives, and fast mode against full mode.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <random>
#include <string>

#include "models/compiler.h"
#include "scenarios/predict.h"
#include "tests/models/model_fixtures.h"
#include "tests/models/moe_fixtures.h"

namespace trainsim {
namespace {

using testing::small_gpt;

Scenario tp_scenario(const ModelSpec& m, int tp, int pp, int dp, int micro_batches, bool overlap,
                     Recompute rc = Recompute::kNone, int seq = 1024) {
  Scenario s = testing::moe_scenario(m, tp, pp, dp, 1, micro_batches, seq);
  s.parallel.sequence_parallel = true;
  s.parallel.tp_overlap = overlap;
  s.parallel.recompute = rc;
  return s;
}

// Tasks of program 0 by op name, and the bytes of those that are collectives.
std::map<std::string, int> count_ops(const Plan& p) {
  std::map<std::string, int> n;
  for (const Task& t : p.programs[0].tasks) ++n[p.ops[t.op].name];
  return n;
}

// Per layer and micro-batch, no recomputation: forward the QKV and FC1 all-gathers and the
// out-projection and FC2 reduce-scatters, backward the same four, each as tp-1 ring steps of
// one chunk (2 (T/tp) h bytes): the bytes of a ring all-gather / reduce-scatter of 2Th. The
// GEMMs run in tp chunks: model FLOPs as without overlap; no blocking TP collective is left in
// the layers.
TEST(TpOverlap, RingStepsAndBytesClosedForm) {
  const ModelSpec m = small_gpt(4);
  for (int tp : {2, 4, 8}) {
    const int micro = 2;
    const Plan on = testing::compile_plan_of(tp_scenario(m, tp, 1, 1, micro, true));
    const Plan off = testing::compile_plan_of(tp_scenario(m, tp, 1, 1, micro, false));
    ASSERT_FALSE(on.programs.empty());
    const auto n = count_ops(on);
    const auto n_off = count_ops(off);
    const int lm = m.layers * micro;
    for (const char* step : {"tp.attn.ring.allgather", "tp.mlp.ring.allgather", "tp.attn.ring.reducescatter",
                             "tp.mlp.ring.reducescatter", "tp.attn.bwd.ring.allgather", "tp.mlp.bwd.ring.allgather",
                             "tp.attn.bwd.ring.reducescatter", "tp.mlp.bwd.ring.reducescatter"}) {
      EXPECT_EQ(n.count(step) ? n.at(step) : 0, lm * (tp - 1)) << step << " tp=" << tp;
    }
    for (const char* gone : {"tp.attn.allgather", "tp.mlp.allgather", "tp.attn.reducescatter",
                             "tp.mlp.reducescatter", "tp.attn.bwd.allgather", "tp.mlp.bwd.reducescatter"})
      EXPECT_EQ(n.count(gone), 0u) << gone;
    EXPECT_EQ(n_off.at("tp.mlp.reducescatter"), lm) << "the blocking form without overlap";
    EXPECT_EQ(n.at("mlp.fc1.fwd"), lm * tp) << "FC1 in tp chunks";
    EXPECT_EQ(n.at("tp.reducescatter.sum.fwd"), 2 * lm);
    EXPECT_EQ(n.at("tp.reducescatter.sum.bwd"), 2 * lm);
    const int64_t T = 1024, h = m.hidden;
    for (const Task& t : on.programs[0].tasks) {
      const OpDesc& o = on.ops[t.op];
      if (o.name.find(".ring.") != std::string::npos) {
        EXPECT_EQ(o.coll, CollKind::kSendRecv);
        EXPECT_EQ(t.stream, kStreamTp);
        EXPECT_EQ(o.bytes.count(), 2 * (T / tp) * h) << o.name;
      }
    }
    EXPECT_EQ(on.programs[0].model_flops.v, off.programs[0].model_flops.v) << "tp=" << tp;
  }
}

// With TP collectives that matter (GPT-3's layer at tp 8, 4K tokens: GEMM chunks of 512 rows)
// the overlap hides most of the exposed TP time; the step is shorter and the compute longer
// (smaller GEMMs, the reduce-scatters' sums).
TEST(TpOverlap, HidesTheTpCollectives) {
  ModelSpec m = small_gpt(4);   // GPT-3 175B's layer shape
  m.hidden = 12288;
  m.heads = 96;
  m.kv_heads = 96;
  m.head_dim = 128;
  m.ffn_hidden = 4 * 12288;
  const Prediction off = testing::run(tp_scenario(m, 8, 1, 1, 4, false, Recompute::kNone, 4096));
  const Prediction on = testing::run(tp_scenario(m, 8, 1, 1, 4, true, Recompute::kNone, 4096));
  const auto tp = static_cast<size_t>(Bucket::kTpExposed), comp = static_cast<size_t>(Bucket::kCompute);
  ASSERT_GT(off.breakdown[tp].count_ps(), 0);
  EXPECT_LT(on.breakdown[tp].count_ps(), off.breakdown[tp].count_ps() / 4);
  std::printf("tp 8, GPT-3 layers, 4K tokens: exposed TP %.3f -> %.3f ms, compute %.3f -> %.3f ms, step %.3f -> %.3f ms\n",
              off.breakdown[tp].ms_f(), on.breakdown[tp].ms_f(), off.breakdown[comp].ms_f(), on.breakdown[comp].ms_f(),
              off.step_time.ms_f(), on.step_time.ms_f());
  EXPECT_LT(on.step_time.count_ps(), off.step_time.count_ps());
  EXPECT_GT(on.breakdown[comp].count_ps(), off.breakdown[comp].count_ps());
}

// MoE layers keep their blocking MLP collectives (the attention part overlaps); MLA keeps the
// blocking gather before its projections and the reduce-scatter after them, and overlaps the
// out-projection's.
TEST(TpOverlap, MoeAndMlaPartsStayBlocking) {
  ModelSpec moe = testing::small_moe(8, 2);
  Scenario s = tp_scenario(moe, 2, 1, 2, 2, true);
  s.parallel.ep = 2;
  const Plan p = testing::compile_plan_of(s);
  ASSERT_FALSE(p.programs.empty());
  auto n = count_ops(p);
  EXPECT_EQ(n.at("tp.mlp.reducescatter"), moe.layers * 2);
  EXPECT_EQ(n.at("tp.attn.ring.allgather"), moe.layers * 2);
  EXPECT_EQ(n.count("tp.mlp.ring.allgather"), 0u);

  const ModelSpec mla = testing::small_mla();   // 2 layers
  const Plan q = testing::compile_plan_of(tp_scenario(mla, 2, 1, 1, 1, true));
  ASSERT_FALSE(q.programs.empty());
  n = count_ops(q);
  EXPECT_EQ(n.count("tp.attn.ring.allgather"), 0u);
  EXPECT_EQ(n.at("tp.attn.ring.reducescatter"), 2);
  EXPECT_EQ(n.at("tp.mlp.ring.allgather"), 2);
}

// Every rank of a stage runs the same program: fast mode equals full mode.
TEST(TpOverlap, FastModeEqualsFullMode) {
  std::mt19937_64 rng(20261123);
  for (int i = 0; i < 12; ++i) {
    const int tp = 2 << (rng() % 3), pp = 1 << (rng() % 2), dp = 1 << (rng() % 2);
    const Recompute rc = static_cast<Recompute>(rng() % 3);
    Scenario s = tp_scenario(small_gpt(4), tp, pp, dp, pp * 2, true, rc);
    s.parallel.zero = static_cast<int>(rng() % 4);
    if (rng() % 2) s.training.precision = DType::kFP8;
    const std::string what = "tp=" + std::to_string(tp) + " pp=" + std::to_string(pp) + " dp=" + std::to_string(dp) +
                             " recompute=" + to_string(rc);
    testing::expect_fast_equals_full(s, what);
  }
}

}  // namespace
}  // namespace trainsim
