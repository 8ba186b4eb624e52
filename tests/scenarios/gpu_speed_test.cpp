// The "gpu_speed" what-if through predict(): each GPU's compute at its own drawn speed, the cost
// against the same plan with every GPU at the costs' rate, and the reports' lines.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "reports/json_report.h"
#include "reports/summary.h"
#include "scenarios/loader.h"
#include "scenarios/predict.h"

namespace trainsim {
namespace {

// Llama 3 8B on 16 GPUs, TP 2 x PP 2 x DP 4 (1F1B, ZeRO-1): two programs, DP replicas that sync
// only at their gradient reduction.
const char* kPipelineDoc = R"({
  "name": "gpu-speed-pp",
  "model": {"name": "llama3-8b"},
  "training": {"seq_len": 4096, "global_batch": 64, "micro_batch": 1, "precision": "bf16"},
  "cluster": {"gpu": "H100-SXM-80GB", "gpus": 16, "gpus_per_node": 8, "nic_bandwidth": "400Gbps"},
  "parallel": {"tp": 2, "pp": 2, "dp": 4, "zero": 1}
})";

Prediction run(const Result<Scenario>& sc, bool fast) {
  EXPECT_TRUE(sc.ok()) << sc.status().to_string();
  PredictOptions o;
  o.fast = fast;
  auto p = predict(sc.value(), o);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.value();
}

Result<Scenario> pipeline(const std::vector<std::string>& sets) {
  return load_scenario_text(kPipelineDoc, "gpu_speed_test.json", sets);
}

TEST(GpuSpeed, IdenticalGpusChangeNothing) {
  const Prediction base = run(pipeline({}), false);
  EXPECT_FALSE(base.gpu_speed.present);
  EXPECT_FALSE(prediction_json(base).contains("gpu_speed"));
  EXPECT_EQ(format_summary(base).find("speed cost"), std::string::npos);
  const Prediction same = run(pipeline({"gpu_speed.cv=0"}), false);
  ASSERT_TRUE(same.gpu_speed.present);
  EXPECT_EQ(same.step_time, base.step_time);
  EXPECT_EQ(same.fingerprint, base.fingerprint);
  EXPECT_EQ(same.gpu_speed.cost, Time::zero());
  EXPECT_EQ(same.gpu_speed.slowest, 1.0);
}

// One GPU whose every kernel runs at half speed (all outliers at 0.5) takes exactly twice its
// step: every task's duration doubles (exact in picoseconds) and nothing else runs.
TEST(GpuSpeed, HalfSpeedDoublesASingleGpuStep) {
  auto sc = load_scenario_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/h100_step.json",
                               {"gpu_speed.slow_share=1", "gpu_speed.slow_speed=0.5"});
  const Prediction p = run(sc, false);
  ASSERT_TRUE(p.gpu_speed.present);
  EXPECT_EQ(p.gpu_speed.outliers, 1);
  EXPECT_EQ(p.step_time.count_ps(), 2 * p.gpu_speed.uniform_step_time.count_ps());
  EXPECT_EQ(p.gpu_speed.cost, p.gpu_speed.uniform_step_time);
}

// A spread of speeds: the step is longer than with identical GPUs, by the cost the report
// gives; fast mode (each simulated rank at the slowest GPU of its program) gives at least the
// full mode's step; the same seed gives the same bytes, another seed other speeds.
TEST(GpuSpeed, TheSlowestGpusPaceTheStep) {
  const Prediction full = run(pipeline({"gpu_speed.cv=0.05"}), false);
  const Prediction fast = run(pipeline({"gpu_speed.cv=0.05"}), true);
  const GpuSpeedReport& g = full.gpu_speed;
  ASSERT_TRUE(g.present);
  EXPECT_EQ(g.uniform_step_time, run(pipeline({}), false).step_time);
  EXPECT_GT(full.step_time, g.uniform_step_time);
  EXPECT_EQ(g.cost, full.step_time - g.uniform_step_time);
  EXPECT_LT(g.slowest, 1.0);
  EXPECT_LE(g.slowest, g.mean);
  // No GPU runs slower than the slowest: the step is at most the uniform step / slowest.
  EXPECT_LE(full.step_time.seconds(), g.uniform_step_time.seconds() / g.slowest);
  EXPECT_GE(fast.step_time, full.step_time);
  EXPECT_EQ(fast.gpu_speed.slowest, g.slowest);
  EXPECT_EQ(fast.gpu_speed.uniform_step_time, g.uniform_step_time) << "fast == full for identical GPUs";

  const Prediction again = run(pipeline({"gpu_speed.cv=0.05"}), false);
  EXPECT_EQ(prediction_json(again).dump(), prediction_json(full).dump());
  const Prediction other = run(pipeline({"gpu_speed.cv=0.05", "gpu_speed.seed=2"}), false);
  EXPECT_NE(other.gpu_speed.slowest, g.slowest);

  const auto j = prediction_json(full);
  ASSERT_TRUE(j.contains("gpu_speed"));
  EXPECT_EQ(j["gpu_speed"]["cost_ps"].get<int64_t>(), g.cost.count_ps());
  EXPECT_EQ(j["gpu_speed"]["slowest_rank"].get<uint32_t>(), g.slowest_rank);
  const std::string text = format_summary(fast);
  EXPECT_NE(text.find("gpu speed     cv 5.0%, seed 1"), std::string::npos) << text;
  EXPECT_EQ(text.find("screened out"), std::string::npos);
  // Screening out the slowest spares: a faster slowest GPU, a shorter step.
  const Prediction screened = run(pipeline({"gpu_speed.cv=0.05", "gpu_speed.spare_share=0.25"}), false);
  EXPECT_EQ(screened.gpu_speed.spares, 4);
  EXPECT_GT(screened.gpu_speed.slowest, g.slowest);
  EXPECT_LT(screened.step_time, full.step_time);
  EXPECT_NE(format_summary(screened).find("the slowest 4 of 20 GPUs screened out"), std::string::npos)
      << format_summary(screened);
  EXPECT_EQ(prediction_json(screened)["gpu_speed"]["spares_screened_out"].get<int>(), 4);
  EXPECT_NE(text.find("speed cost"), std::string::npos);
  EXPECT_NE(text.find("an upper estimate"), std::string::npos);
}

// Fully sharded data parallelism gathers every layer's parameters from every rank: the slowest
// GPU paces the whole job, and fast mode (every simulated rank at the slowest) is the full step.
TEST(GpuSpeed, FsdpRunsAtTheSlowestGpu) {
  auto sc = load_embedded_quickstart({"gpu_speed.cv=0.05"});
  const Prediction full = run(sc, false), fast = run(sc, true);
  EXPECT_GT(full.gpu_speed.cost, Time::zero());
  EXPECT_NEAR(fast.step_time.seconds(), full.step_time.seconds(), 1e-3 * full.step_time.seconds());
}

}  // namespace
}  // namespace trainsim
