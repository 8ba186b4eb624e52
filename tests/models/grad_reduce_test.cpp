// parallel.grad_reduce_dtype: the format data-parallel gradients are accumulated and reduced
// in. Closed forms: every gradient reduction (ZeRO 0-2 buckets, ZeRO-3 reduce-scatters, HSDP
// replica all-reduces, expert gradients) moves 4 bytes per element in fp32 and 2 in bf16/fp16,
// while parameter gathers keep their bf16 bytes; "auto" resolves to fp16 for fp16 training and
// fp32 otherwise; the gradient buffer holds G bytes per parameter. Plus the step: fp32 makes
// the exposed DP communication of a bandwidth-bound data-parallel job longer.
#include <gtest/gtest.h>

#include <string>

#include "models/compiler.h"
#include "models/memory.h"
#include "models/spec_parse.h"
#include "scenarios/predict.h"
#include "sim/replay.h"
#include "tests/models/model_fixtures.h"
#include "tests/models/moe_fixtures.h"

namespace trainsim {
namespace {

using testing::small_gpt;

struct DpBytes {
  int64_t reduced = 0;    // gradient reductions (reduce-scatter, all-reduce) in the DP category
  int64_t gathered = 0;   // parameter all-gathers
  int reductions = 0;
};

DpBytes dp_bytes(const Plan& p, size_t program) {
  DpBytes b;
  for (const Task& t : p.programs[program].tasks) {
    if (t.category != Category::kDpComm || t.kind != TaskKind::kCollective) continue;
    const OpDesc& o = p.ops[t.op];
    if (o.coll == CollKind::kAllGather) {
      b.gathered += o.bytes.count();
    } else {
      b.reduced += o.bytes.count();
      ++b.reductions;
    }
  }
  return b;
}

Scenario dp_scenario(int zero, int dp, int shard, GradReduce g, DType precision = DType::kBF16) {
  Scenario s = testing::moe_scenario(small_gpt(4), 1, 1, dp, 1, 2);
  s.parallel.zero = zero;
  s.parallel.fsdp_shard_group = shard;
  s.parallel.grad_reduce_dtype = g;
  s.training.precision = precision;
  return s;
}

TEST(GradReduce, AutoResolvesByPrecision) {
  EXPECT_EQ(resolved_grad_reduce(GradReduce::kAuto, DType::kBF16), DType::kFP32);
  EXPECT_EQ(resolved_grad_reduce(GradReduce::kAuto, DType::kFP8), DType::kFP32);
  EXPECT_EQ(resolved_grad_reduce(GradReduce::kAuto, DType::kFP16), DType::kFP16);
  EXPECT_EQ(resolved_grad_reduce(GradReduce::kBf16, DType::kFP8), DType::kBF16);
  EXPECT_EQ(resolved_grad_reduce(GradReduce::kFp32, DType::kFP16), DType::kFP32);
  GradReduce g{};
  EXPECT_TRUE(parse_grad_reduce("fp32", &g));
  EXPECT_EQ(g, GradReduce::kFp32);
  EXPECT_FALSE(parse_grad_reduce("int8", &g));
}

// ZeRO 0 with one bucket per step's worth of gradients: the all-reduces move exactly the
// rank's parameters in the reduce format (2P bf16, 4P fp32); ZeRO 1/2 reduce-scatter the same;
// ZeRO 3 per unit and micro-batch, and HSDP all-reduces 1/shard of that over the replicas.
TEST(GradReduce, ReductionsMoveFourBytesPerElementInFp32) {
  for (int zero : {0, 1, 2, 3})
    for (int shard : {0, 2}) {
      if (shard > 0 && zero == 0) continue;
      const std::string what = "zero " + std::to_string(zero) + " shard " + std::to_string(shard);
      const Plan bf = testing::compile_plan_of(dp_scenario(zero, 4, shard, GradReduce::kBf16));
      const Plan fp = testing::compile_plan_of(dp_scenario(zero, 4, shard, GradReduce::kFp32));
      const Plan f16 = testing::compile_plan_of(dp_scenario(zero, 4, shard, GradReduce::kAuto, DType::kFP16));
      ASSERT_EQ(bf.programs.size(), 1u) << what;
      const DpBytes b = dp_bytes(bf, 0), f = dp_bytes(fp, 0), h = dp_bytes(f16, 0);
      ASSERT_GT(b.reduced, 0) << what;
      EXPECT_EQ(f.reduced, 2 * b.reduced) << what;
      EXPECT_EQ(f.gathered, b.gathered) << what << ": parameter gathers stay bf16";
      EXPECT_EQ(h.reduced, b.reduced) << what << ": auto under fp16 reduces in fp16";
      if (zero == 0) {
        // Every gradient once, whole: 2 bytes per parameter in bf16.
        EXPECT_EQ(b.reduced, 2 * total_params(small_gpt(4))) << what;
      }
      if (zero == 3 && shard == 0) {
        // One reduce-scatter per unit (4 layers, embedding, head) and micro-batch (2).
        EXPECT_EQ(f.reductions, 2 * (4 + 2)) << what;
        EXPECT_EQ(b.reductions, f.reductions) << what;
      }
    }
}

// Expert gradients too: a MoE layer's routed experts reduced over expert-DP.
TEST(GradReduce, ExpertGradientsFollowTheFormat) {
  auto make = [](GradReduce g) {
    Scenario s = testing::moe_scenario(testing::small_moe(4), 1, 1, 4, 2, 2);
    s.parallel.zero = 1;
    s.parallel.grad_reduce_dtype = g;
    return testing::compile_plan_of(s);
  };
  const Plan bf = make(GradReduce::kBf16), fp = make(GradReduce::kFp32);
  int64_t eb = 0, ef = 0;
  for (const Task& t : bf.programs[0].tasks)
    if (bf.ops[t.op].name.rfind("ep.expert.grad", 0) == 0) eb += bf.ops[t.op].bytes.count();
  for (const Task& t : fp.programs[0].tasks)
    if (fp.ops[t.op].name.rfind("ep.expert.grad", 0) == 0) ef += fp.ops[t.op].bytes.count();
  ASSERT_GT(eb, 0);
  EXPECT_EQ(ef, 2 * eb);
  EXPECT_EQ(dp_bytes(fp, 0).reduced, 2 * dp_bytes(bf, 0).reduced);
}

// The gradient buffer: G bytes per parameter (zero 0: G P; zero 2: G P / N + a bucket).
TEST(GradReduce, GradientBufferHoldsTheFormatsBytes) {
  const int64_t P = 1000003, L = 1000, bucket = 1 << 20;
  EXPECT_EQ(static_memory(P, L, 0, 4, 1, bucket, true, 4).grads.count(), 4 * P);
  EXPECT_EQ(static_memory(P, L, 0, 4, 1, bucket, true, 2).grads.count(), 2 * P);
  EXPECT_EQ(static_memory(P, L, 2, 4, 1, bucket, true, 2).grads.count(), (2 * P + 3) / 4 + bucket);
  EXPECT_EQ(static_memory(P, L, 3, 4, 1, bucket, false, 2).grads.count(), (2 * P + 3) / 4 + 2 * P);
  const Plan bf = testing::compile_plan_of(dp_scenario(0, 4, 0, GradReduce::kBf16));
  const Plan fp = testing::compile_plan_of(dp_scenario(0, 4, 0, GradReduce::kFp32));
  EXPECT_EQ(fp.programs[0].mem.grads.count(), 2 * bf.programs[0].mem.grads.count());
  EXPECT_EQ(fp.programs[0].mem.params.count(), bf.programs[0].mem.params.count());
}

// A data-parallel job whose gradient all-reduce is not hidden (no overlap with the backward):
// fp32 doubles that exposed communication, and the step grows by the difference.
TEST(GradReduce, Fp32LengthensExposedDpCommunication) {
  auto run = [](GradReduce g) {
    Scenario s = dp_scenario(0, 16, 0, g);
    s.parallel.dp_overlap = false;
    s.cluster.gpus_per_node = 8;   // two nodes: the all-reduce crosses the NICs
    return testing::run(s);
  };
  const Prediction bf = run(GradReduce::kBf16), fp = run(GradReduce::kFp32);
  const Time ebf = bf.breakdown[static_cast<size_t>(Bucket::kDpExposed)];
  const Time efp = fp.breakdown[static_cast<size_t>(Bucket::kDpExposed)];
  ASSERT_GT(ebf, Time::zero());
  EXPECT_GT(efp.seconds(), 1.8 * ebf.seconds());
  EXPECT_LT(efp.seconds(), 2.2 * ebf.seconds());
  EXPECT_EQ((fp.step_time - bf.step_time).count_ps(), (efp - ebf).count_ps());
}

}  // namespace
}  // namespace trainsim
