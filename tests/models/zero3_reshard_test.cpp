// ZeRO-3 without resharding (parallel.zero3_reshard false; FSDP2's reshard_after_forward=False
// with gradient sync on the last micro-batch, as torchtitan runs FSDP under PP): each unit's
// parameters are gathered once a step, at their first use, and its gradients reduce-scattered
// once, after the last micro-batch's backward. Closed-form counts of the collectives, the static
// memory of the plan, and fast mode against full mode.
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

Scenario fsdp_scenario(int layers, int pp, int dp, int micro_batches, bool reshard, Recompute rc = Recompute::kNone) {
  Scenario s = testing::moe_scenario(small_gpt(layers), 1, pp, dp, 1, micro_batches);
  s.parallel.zero = 3;
  s.parallel.zero3_reshard = reshard;
  s.parallel.recompute = rc;
  return s;
}

int count(const Plan& p, int program, const std::string& name) {
  int n = 0;
  for (const Task& t : p.programs[program].tasks) n += p.ops[t.op].name == name;
  return n;
}

// pp 1, m micro-batches, L layers (untied embedding and head: two more units). Resharding: a
// gather per unit in each forward and each backward (2 m (L + 2)), a reduce-scatter per unit per
// micro-batch (m (L + 2)). Without: one of each per unit and step, whatever m and the
// recomputation.
TEST(Zero3Reshard, OneGatherAndOneReduceScatterPerUnitAndStep) {
  const int L = 4;
  for (int m : {1, 3, 5})
    for (Recompute rc : {Recompute::kNone, Recompute::kFull}) {
      const Plan on = testing::compile_plan_of(fsdp_scenario(L, 1, 4, m, true, rc));
      const Plan off = testing::compile_plan_of(fsdp_scenario(L, 1, 4, m, false, rc));
      ASSERT_EQ(off.programs.size(), 1u);
      const std::string what = "m=" + std::to_string(m) + " recompute=" + to_string(rc);
      EXPECT_EQ(count(on, 0, "zero3.param.allgather"), 2 * m * (L + 2)) << what;
      EXPECT_EQ(count(on, 0, "zero3.grad.reducescatter"), m * (L + 2)) << what;
      EXPECT_EQ(count(off, 0, "zero3.param.allgather"), L + 2) << what;
      EXPECT_EQ(count(off, 0, "zero3.grad.reducescatter"), L + 2) << what;
      EXPECT_EQ(on.programs[0].model_flops.v, off.programs[0].model_flops.v) << what;
    }
}

// The plan's static memory is static_memory() without resharding: the rank's parameters
// gathered whole (2P/N + 2P) and fp32 gradients accumulated whole (4P/N + 4P).
TEST(Zero3Reshard, StaticMemoryKeepsEverythingGathered) {
  const Scenario s = fsdp_scenario(4, 1, 4, 2, false);
  const Plan p = testing::compile_plan_of(s);
  ASSERT_EQ(p.programs.size(), 1u);
  const int64_t P = total_params(s.model), N = 4;
  EXPECT_EQ(p.programs[0].mem.params.count(), (2 * P + N - 1) / N + 2 * P);
  EXPECT_EQ(p.programs[0].mem.grads.count(), (4 * P + N - 1) / N + 4 * P);
  const Plan r = testing::compile_plan_of(fsdp_scenario(4, 1, 4, 2, true));
  EXPECT_LT(r.programs[0].mem.params.count(), p.programs[0].mem.params.count());
}

// Every rank of a stage runs the same program: fast mode equals full mode.
TEST(Zero3Reshard, FastModeEqualsFullMode) {
  std::mt19937_64 rng(20261123);
  for (int i = 0; i < 10; ++i) {
    const int pp = 1 << (rng() % 3), dp = 2 << (rng() % 2);
    const Recompute rc = static_cast<Recompute>(rng() % 3);
    Scenario s = fsdp_scenario(8, pp, dp, pp * 2, false, rc);
    if (pp > 1 && rng() % 2) {
      s.parallel.vp = 2;
      s.parallel.schedule = Schedule::kInterleaved;
    }
    const std::string what = "pp=" + std::to_string(pp) + " dp=" + std::to_string(dp) + " vp=" +
                             std::to_string(s.parallel.vp) + " recompute=" + to_string(rc);
    testing::expect_fast_equals_full(s, what);
  }
}

}  // namespace
}  // namespace trainsim
