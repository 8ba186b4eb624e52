// Shared builders of the MoE test suites (tests/models/moe_test.cpp, moe_placement_test.cpp,
// moe_folding_test.cpp).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "models/compiler.h"
#include "scenarios/predict.h"
#include "scenarios/scenario.h"
#include "topologies/hardware.h"

namespace trainsim::testing {

// A small Mixtral-like MoE: 4 layers, hidden 1024, 16 heads (4 kv), swiglu, `experts` of ffn
// 2048, top-k.
inline ModelSpec small_moe(int experts = 8, int top_k = 2) {
  ModelSpec m;
  m.name = "moe-small-test";
  m.arch = "moe";
  m.layers = 4;
  m.hidden = 1024;
  m.heads = 16;
  m.kv_heads = 4;
  m.head_dim = 64;
  m.ffn_hidden = 2048;
  m.vocab = 32000;
  m.activation = Activation::kSwiglu;
  m.norm = NormKind::kRMSNorm;
  m.experts = experts;
  m.top_k = top_k;
  m.expert_ffn_hidden = 2048;
  return m;
}

// tp x pp x dp H100s (8 per node), `micro_batches` micro-batches of one sequence per replica.
inline Scenario moe_scenario(const ModelSpec& m, int tp, int pp, int dp, int ep, int micro_batches, int seq = 1024) {
  Scenario s;
  s.name = "moe-test";
  s.file = "<test>";
  s.model = m;
  s.training.seq_len = seq;
  s.training.micro_batch = 1;
  s.training.global_batch = static_cast<int64_t>(micro_batches) * dp;
  s.parallel.tp = tp;
  s.parallel.pp = pp;
  s.parallel.dp = dp;
  s.parallel.ep = ep;
  auto g = find_gpu("H100-SXM-80GB");
  EXPECT_TRUE(g.ok());
  if (g.ok()) s.cluster.gpu = g.value();
  s.cluster.gpus = tp * pp * dp;
  s.cluster.gpus_per_node = std::min(8, s.cluster.gpus);
  s.cluster.nic_bandwidth = s.cluster.gpu.nic_bandwidth;
  s.cluster.nvlink_bandwidth = s.cluster.gpu.nvlink_bandwidth;
  return s;
}

// The scenario's compiled plan; a failure is a test failure (and an empty plan).
inline CompiledPlan compile_checked(const Scenario& s) {
  auto c = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return c.ok() ? std::move(c.value()) : CompiledPlan{};
}

// A scenario's parallel layout and MoE settings in one line, for test failure messages.
inline std::string describe(const Scenario& s) {
  const ParallelSpec& p = s.parallel;
  return "tp " + std::to_string(p.tp) + " pp " + std::to_string(p.pp) + " vp " + std::to_string(p.vp) +
         " dp " + std::to_string(p.dp) + " cp " + std::to_string(p.cp) + " ep " + std::to_string(p.ep) +
         " etp " + std::to_string(p.etp) + " folded " + std::to_string(p.ep_layout == EpLayout::kFolded) +
         " zero " + std::to_string(p.zero) + " overlap " + std::to_string(p.ep_overlap) + " mb " +
         std::to_string(s.training.global_batch / p.dp) + " experts " + std::to_string(s.model.experts) +
         " top " + std::to_string(s.model.top_k) + " cf " + std::to_string(s.model.capacity_factor) +
         " ctas " + std::to_string(s.options.nccl_ctas) + " " + to_string(s.training.precision);
}

// Its plan alone.
inline Plan compile_plan_of(const Scenario& s) { return compile_checked(s).plan; }

// The scenario's prediction (fast: one rank per distinct program); a failure is a test failure.
inline Prediction run(const Scenario& s, bool fast = false) {
  PredictOptions o;
  o.fast = fast;
  auto p = predict(s, o);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.ok() ? std::move(p.value()) : Prediction{};
}

// Full mode and fast mode (one rank per distinct program) of `s` give the same step time and
// peak memory (every rank of a stage runs the same program); `what` names the case.
inline void expect_fast_equals_full(const Scenario& s, const std::string& what) {
  PredictOptions fast;
  fast.fast = true;
  auto a = predict(s, PredictOptions{});
  auto b = predict(s, fast);
  ASSERT_TRUE(a.ok()) << what << ": " << a.status().to_string();
  ASSERT_TRUE(b.ok()) << what << ": " << b.status().to_string();
  EXPECT_EQ(a->step_time.count_ps(), b->step_time.count_ps()) << what;
  EXPECT_EQ(a->peak_memory.total().count(), b->peak_memory.total().count()) << what;
}

}  // namespace trainsim::testing
