// The host executor (calibrate/host_executor.h): every task of every rank runs once per step,
// and the recorded event order honours every dependency and stream order of the plan (checked
// on plans with TP collectives, pipeline sends/receives and DP reduction on a side stream).
#include "calibrate/host_executor.h"

#include <gtest/gtest.h>

#include <string>

#include "calibrate/host_calibrate.h"
#include "host_order_check.h"
#include "models/compiler.h"
#include "scenarios/loader.h"

namespace trainsim {
namespace {

Plan tiny_plan(const std::string& parallel, int gpus) {
  const std::string text = R"({"name": "host-exec-test",
    "model": {"name": "t", "layers": 4, "hidden": 64, "heads": 2, "ffn_hidden": 128, "vocab": 256,
              "activation": "swiglu"},
    "training": {"seq_len": 64, "global_batch": 8, "micro_batch": 1},
    "cluster": {"gpu": "H100-SXM-80GB", "gpus": )" + std::to_string(gpus) + R"(, "gpus_per_node": 8},
    "parallel": )" + parallel + "}";
  auto s = load_scenario_text(text, "host-exec-test.json");
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  auto cp = compile_plan(s->model, s->training, s->parallel, s->cluster.gpus_per_node);
  EXPECT_TRUE(cp.ok()) << cp.status().to_string();
  return std::move(cp.value().plan);
}

TEST(HostExecutor, TensorParallelOrderHonoursDependencies) {
  Plan plan = tiny_plan(R"({"tp": 2, "pp": 1, "dp": 1})", 2);
  auto run = execute_host(plan, HostExecOptions{1});
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  expect_order_honoured(plan, run.value());   // one stream: stream order only
  EXPECT_GT(run->step_time, Time::zero());
  EXPECT_EQ(run->step_times.size(), 1u);
}

TEST(HostExecutor, PipelineAndDataParallelStreams) {
  // pp=2 x dp=2: sends/receives between stages, DP all-reduce on its own stream.
  Plan plan = tiny_plan(R"({"pp": 2, "dp": 2})", 4);
  int streams = 0;
  for (const auto& st : plan.programs[0].stream_tasks) streams += !st.empty();
  ASSERT_GE(streams, 3);   // compute, dp, p2p
  auto run = execute_host(plan, HostExecOptions{2});
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  EXPECT_GT(expect_order_honoured(plan, run.value()), 10);
  EXPECT_EQ(run->step_times.size(), 2u);
  EXPECT_GE(run->threads, 4 * 3);
}

TEST(HostExecutor, OversizedPlanIsAClearError) {
  Plan plan = tiny_plan(R"({"tp": 2})", 2);
  HostExecOptions o;
  o.max_bytes = 1024;
  auto run = execute_host(plan, o);
  ASSERT_FALSE(run.ok());
  EXPECT_NE(run.status().to_string().find("verify_small"), std::string::npos) << run.status().to_string();
}

TEST(HostCalibrate, LinesForEveryDistinctOpAndCollective) {
  Plan plan = tiny_plan(R"({"tp": 2})", 2);
  HostCalibrateOptions o;
  o.warmup = 0;
  o.runs = 1;
  auto lines = measure_host_plan(plan, 8, o);
  ASSERT_TRUE(lines.ok()) << lines.status().to_string();
  int ops = 0, colls = 0;
  for (const auto& l : lines.value()) {
    ops += l.find("\"kind\":\"op\"") != std::string::npos;
    colls += l.find("\"kind\":\"collective\"") != std::string::npos;
    EXPECT_NE(l.find(host_device_name()), std::string::npos);
  }
  EXPECT_GT(ops, 5);
  EXPECT_GE(colls, 1);   // the TP all-reduce of 2 ranks
}

}  // namespace
}  // namespace trainsim
