// Job lists for trainsim_calibrator (calibrate/jobs.h) from plans with every op kind the
// compiler emits: each job names a class or collective kind the calibrator accepts
// (calibrate/cuda/job_file.h, whose reader parses the written list), send-recv is measured
// between 2 GPUs, and host copies are offload jobs whose names carry their direction.
#include "calibrate/jobs.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "calibrate/cuda/job_file.h"
#include "models/compiler.h"
#include "scenarios/loader.h"

namespace trainsim {
namespace {

TEST(CalibrateJobs, EveryJobIsOneTheCalibratorAccepts) {
  const std::string text = R"({
    "name": "jobs",
    "model": {"name": "llama3-8b"},
    "training": {"seq_len": 16384, "global_batch": 4, "micro_batch": 1},
    "cluster": {"gpu": "H100-SXM-80GB", "gpus": 16, "gpus_per_node": 8},
    "parallel": {"tp": 2, "sequence_parallel": true, "cp": 4, "cp_ulysses": 2, "dp": 2, "zero": 1,
                 "activation_offload": 0.5}
  })";
  auto s = load_scenario_text(text, "jobs.json", {});
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  auto c = compile_plan(s->model, s->training, s->parallel, s->cluster.gpus_per_node);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  bool has_offload = false, has_shift = false;
  for (const OpDesc& op : c->plan.ops) {
    has_offload |= op.cls == OpClass::kOffload;
    has_shift |= op.cls == OpClass::kCollective && op.coll == CollKind::kSendRecv;
  }
  ASSERT_TRUE(has_offload && has_shift);   // the plan has what this test is about
  JobList jobs;
  add_plan_jobs(c->plan, &jobs);
  const std::set<std::string> classes = {"gemm", "attention", "norm", "elementwise", "embedding", "loss", "optimizer",
                                         "offload"};
  const std::set<std::string> kinds = {"all-reduce", "all-gather", "reduce-scatter", "all-to-all", "broadcast", "send-recv"};
  ASSERT_FALSE(jobs.ops.empty());
  int d2h = 0, h2d = 0;
  for (const auto& j : jobs.ops) {
    ASSERT_TRUE(j.contains("class")) << j.dump();
    EXPECT_TRUE(classes.count(j["class"].get<std::string>())) << j.dump();
    if (j["class"] == "offload") {
      const std::string n = j["name"].get<std::string>();
      d2h += n.ends_with(".d2h");
      h2d += n.ends_with(".h2d");
      EXPECT_GT(j["bytes"].get<int64_t>(), 0) << j.dump();
    }
  }
  EXPECT_GT(d2h, 0);
  EXPECT_GT(h2d, 0);
  // The calibrator's own reader takes the whole list.
  tscal::JobFile parsed;
  std::vector<std::string> errors;
  EXPECT_TRUE(tscal::parse_jobs(jobs.to_json().dump(), "jobs.json", &parsed, &errors))
      << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(parsed.ops.size(), jobs.ops.size());
  int shifts = 0;
  for (const auto& j : jobs.collectives) {
    const std::string k = j["kind"].get<std::string>();
    EXPECT_TRUE(kinds.count(k)) << j.dump();
    if (k == "send-recv") {
      EXPECT_EQ(j["group_size"].get<int>(), 2) << j.dump();
      ++shifts;
    }
  }
  EXPECT_GT(shifts, 0);
}

}  // namespace
}  // namespace trainsim
