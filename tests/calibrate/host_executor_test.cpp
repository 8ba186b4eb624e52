// The host executor (calibrate/host_executor.h): every task of every rank runs once per step,
// and the recorded event order honours every dependency and stream order of the plan (checked
// on plans with TP collectives, pipeline sends/receives and DP reduction on a side stream).
#include "calibrate/host_executor.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "calibrate/host_calibrate.h"
#include "calibrate/host_mpi.h"
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
  int ops = 0;
  std::vector<std::string> sources;   // of the collective lines: threads name their mechanism
  for (const auto& l : lines.value()) {
    const auto j = nlohmann::json::parse(l);
    ops += j["kind"] == "op";
    if (j["kind"] == "collective") sources.push_back(j["source"]);
    EXPECT_NE(l.find(host_device_name()), std::string::npos);
  }
  EXPECT_GT(ops, 5);
  ASSERT_GE(sources.size(), 1u);   // the TP all-reduce of 2 ranks
  for (const auto& src : sources) EXPECT_EQ(src, "trainsim calibrate --host (shared-memory threads, float buffers)");
  EXPECT_EQ(describe_collective_mechanisms(sources), "shared-memory threads");
}

TEST(HostCalibrate, MechanismOfASource) {
  EXPECT_EQ(collective_mechanism("trainsim calibrate --host (MPI processes, Open MPI v4.1.4)"),
            "MPI processes (Open MPI v4.1.4)");
  EXPECT_EQ(collective_mechanism("trainsim calibrate --host (shared-memory threads, float buffers)"),
            "shared-memory threads");
  EXPECT_EQ(collective_mechanism(
                "trainsim calibrate --host (shared-memory threads, float buffers; a group of 4 is larger than this MPI "
                "job of 2 processes)"),
            "shared-memory threads");
  EXPECT_EQ(collective_mechanism("nccl-tests all_reduce_perf"), "nccl-tests all_reduce_perf");
  EXPECT_EQ(describe_collective_mechanisms({}), "none measured");
  EXPECT_EQ(describe_collective_mechanisms({"trainsim calibrate --host (MPI processes, Open MPI v4.1.4)",
                                            "trainsim calibrate --host (shared-memory threads, float buffers)",
                                            "trainsim calibrate --host (MPI processes, Open MPI v4.1.4)"}),
            "MPI processes (Open MPI v4.1.4): 2 points, shared-memory threads: 1 point");
}

TEST(HostCalibrate, BackendErrors) {
  Plan plan = tiny_plan(R"({"tp": 2})", 2);
  HostCalibrateOptions o;
  o.backend = "nccl";
  auto bad = measure_host_plan(plan, 8, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().to_string().find("threads, mpi"), std::string::npos) << bad.status().to_string();
  o.backend = "mpi";   // MPI is not initialized in this process (or not built)
  auto no_mpi = measure_host_plan(plan, 8, o);
  ASSERT_FALSE(no_mpi.ok());
  const std::string m = no_mpi.status().to_string();
  EXPECT_TRUE(m.find("mpirun") != std::string::npos || m.find("built without MPI") != std::string::npos) << m;
  EXPECT_FALSE(time_mpi_collective(CollKind::kAllReduce, 16, 2, 0, 1).ok());
  EXPECT_FALSE(time_mpi_send(16, 0, 1).ok());
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif

TEST(HostCalibrate, MpiGroupLargerThanTheJobIsTimedWithThreads) {
  // This process alone as an MPI job (singleton MPI_Init, no launcher): the plan's group of 2
  // does not fit a job of 1, so its points are timed with threads and their source says why.
  if (!host_mpi_built()) GTEST_SKIP() << "built without MPI";
  if (kAsan) GTEST_SKIP() << "LeakSanitizer reports the MPI library's own allocations";
  ASSERT_TRUE(host_mpi_init().ok());
  ASSERT_EQ(host_mpi_size(), 1);
  EXPECT_FALSE(time_mpi_collective(CollKind::kAllReduce, 16, 2, 0, 1).ok());   // the caller's choice
  Plan plan = tiny_plan(R"({"tp": 2})", 2);
  HostCalibrateOptions o;
  o.warmup = 0;
  o.runs = 1;
  o.backend = "mpi";
  auto lines = measure_host_plan(plan, 8, o);
  host_mpi_finalize();
  ASSERT_TRUE(lines.ok()) << lines.status().to_string();
  int colls = 0;
  for (const auto& l : lines.value()) {
    const auto j = nlohmann::json::parse(l);
    if (j["kind"] != "collective") continue;
    ++colls;
    EXPECT_EQ(j["source"], "trainsim calibrate --host (shared-memory threads, float buffers; a group of 2 is "
                           "larger than this MPI job of 1 process)");
    EXPECT_GT(j["time_us"].get<double>(), 0);
  }
  EXPECT_GE(colls, 1);
}

}  // namespace
}  // namespace trainsim
