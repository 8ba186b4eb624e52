// Verify mode end to end on a tiny model (scenarios/verify.h): the restricted plan runs on the
// host executor and its simulation is priced from host measurements; every report field is
// filled; bad input (executor, calibration) gives clear errors.
#include "scenarios/verify.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "calibrate/db.h"
#include "reports/verify_report.h"
#include "scenarios/loader.h"

namespace trainsim {
namespace {

const char* kVerifyTiny = R"({"name": "verify-tiny",
  "model": {"name": "t", "layers": 2, "hidden": 64, "heads": 2, "ffn_hidden": 128, "vocab": 512,
            "activation": "swiglu"},
  "training": {"seq_len": 64, "global_batch": 4, "micro_batch": 1},
  "cluster": {"gpu": "H100-SXM-80GB", "gpus": 4, "gpus_per_node": 4},
  "parallel": {"tp": 2, "dp": 2}})";

Scenario tiny() {
  auto s = load_scenario_text(kVerifyTiny, "verify-tiny.json");
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return s.value();
}

VerifyOptions quick() {
  VerifyOptions o;
  o.ranks = 2;
  o.steps = 1;
  o.calib.warmup = 0;
  o.calib.runs = 1;
  return o;
}

TEST(Verify, SmallHostVerificationFillsEveryFigure) {
  auto v = verify_scenario(tiny(), quick());
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  EXPECT_EQ(v->ranks, 2);
  EXPECT_EQ(v->full_ranks, 4);
  EXPECT_TRUE(v->calibration_on_the_fly);
  EXPECT_GT(v->calibration_points, 5);
  EXPECT_GT(v->predicted, Time::zero());
  EXPECT_GT(v->measured, Time::zero());
  EXPECT_EQ(v->measured_steps.size(), 1u);
  EXPECT_DOUBLE_EQ(v->step_error, (v->predicted.seconds() - v->measured.seconds()) / v->measured.seconds());
  EXPECT_EQ(v->scenario_hash.size(), 16u);
  EXPECT_EQ(v->plan_hash.size(), 16u);
  // dp=2 restricted to one TP group: the DP reduction runs over 1 of 2 ranks, and says so.
  bool dp_said = false;
  for (const auto& d : v->dropped) dp_said |= d.find("1 of 2") != std::string::npos;
  EXPECT_TRUE(dp_said);
  bool gemm = false, attention = false, tp_ar = false;
  for (const auto& c : v->classes) {
    gemm |= c.what == "gemm";
    attention |= c.what == "attention";
    tp_ar |= c.what == "all-reduce(tp)";
    EXPECT_GT(c.tasks, 0);
    EXPECT_FALSE(c.source.empty());
  }
  EXPECT_TRUE(gemm && attention && tp_ar);
  ASSERT_FALSE(v->top_ops.empty());
  EXPECT_LE(v->top_ops.size(), 10u);
  for (size_t i = 1; i < v->top_ops.size(); ++i) {
    auto e = [](const VerifyOpRow& r) { return std::llabs(r.measured.count_ps() - r.predicted.count_ps()); };
    EXPECT_GE(e(v->top_ops[i - 1]), e(v->top_ops[i]));
  }
  for (const TimelineShares& s : {v->predicted_shares, v->measured_shares}) {
    EXPECT_GE(s.exposed_comm, 0);
    EXPECT_GE(s.bubble, 0);
    EXPECT_LE(s.exposed_comm + s.bubble, 1.0 + 1e-9);
  }
  // The TP all-reduces block the compute stream: exposed on both sides.
  EXPECT_GT(v->predicted_shares.exposed_comm, 0);
  EXPECT_GT(v->measured_shares.exposed_comm, 0);
  const auto j = verify_json(v.value(), 0.25, "test");
  for (const char* k : {"scenario_hash", "plan_hash", "version", "machine", "calibration", "predicted_step_s",
                        "measured_step_s", "step_error", "passed", "classes", "top_ops", "shares", "kept", "dropped"})
    EXPECT_TRUE(j.contains(k)) << k;
  const std::string text = format_verification(v.value(), 0.25, "test");
  EXPECT_NE(text.find("step error"), std::string::npos);
  EXPECT_NE(text.find("measured on the fly"), std::string::npos);
}

TEST(Verify, CudaExecutorNotBuiltIsAClearError) {
  VerifyOptions o = quick();
  o.executor = "cuda";
  auto v = verify_scenario(tiny(), o);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().to_string().find("--executor host"), std::string::npos) << v.status().to_string();
}

TEST(Verify, MissingCalibrationIsAClearError) {
  VerifyOptions o = quick();
  o.calibration = "/nonexistent/host.db";
  auto v = verify_scenario(tiny(), o);
  ASSERT_FALSE(v.ok());
  const std::string m = v.status().to_string();
  EXPECT_NE(m.find("/nonexistent/host.db"), std::string::npos) << m;
  EXPECT_NE(m.find("calibrate --host"), std::string::npos) << m;
}

TEST(Verify, CalibrationOfAnotherDeviceIsAClearError) {
  const std::string db = (std::filesystem::temp_directory_path() / ("trainsim_verify_gpu_" + std::to_string(getpid()) + ".db")).string();
  std::filesystem::remove(db);
  {
    auto d = CalibrationDb::open(db, true);
    ASSERT_TRUE(d.ok());
    const std::string line =
        R"({"kind": "op", "device": {"name": "NVIDIA H100 80GB HBM3", "gpus": 8}, "op": {"class": "gemm", "dtype": "bf16", "m": 64, "n": 64, "k": 64, "batch": 1}, "time_us": 5, "runs": 1, "source": "test"})";
    ASSERT_TRUE(d.value()->import_lines({line}, "test").ok());
  }
  VerifyOptions o = quick();
  o.calibration = db;
  auto v = verify_scenario(tiny(), o);
  ASSERT_FALSE(v.ok());
  const std::string m = v.status().to_string();
  EXPECT_NE(m.find("NVIDIA H100 80GB HBM3"), std::string::npos) << m;   // lists what it has
  EXPECT_NE(m.find("host-cpu"), std::string::npos) << m;                // names what it wanted
  std::filesystem::remove(db);
}

// --executor cuda with 2 ranks: verify exports both ranks of the restricted plan and asks the
// executor for `--ranks 0,1`, then reads every rank's tasks. A stand-in executor (python)
// replays the exported plan as a list schedule of the simulated durations (each task starts when
// its stream and its deps are done; the group's collectives start together), so the measured
// side is known; the real one runs on GPUs with NCCL (calibrate/cuda/executor.cpp).
TEST(Verify, CudaExecutorRunsEveryRankOfTheRestrictedPlan) {
  if (std::system("python3 -c 'import json' > /dev/null 2>&1") != 0) GTEST_SKIP() << "no python3";
  const std::string fake = (std::filesystem::temp_directory_path() / ("trainsim_fake_exec_" + std::to_string(getpid()) + ".py")).string();
  {
    std::ofstream f(fake);
    f << R"PY(#!/usr/bin/env python3
import json, sys
a = sys.argv[1:]
arg = lambda k: a[a.index(k) + 1]
plan = json.load(open(arg("--plan")))
ranks = [int(x) for x in arg("--ranks").split(",")]
assert ranks == [r["rank"] for r in plan["ranks"]], (ranks, "exported", [r["rank"] for r in plan["ranks"]])
progs = {r["rank"]: r for r in plan["ranks"]}
end = {r: [None] * len(progs[r]["tasks"]) for r in ranks}
nxt = {r: 0 for r in ranks}
free = {r: {} for r in ranks}
out = []
def ready(r):
    i = nxt[r]
    t = progs[r]["tasks"][i]
    if any(end[r][d] is None for d in t["deps"]): return None
    return max([free[r].get(t["stream"], 0.0)] + [end[r][d] for d in t["deps"]])
while any(nxt[r] < len(progs[r]["tasks"]) for r in ranks):
    moved = False
    for r in ranks:
        if nxt[r] >= len(progs[r]["tasks"]): continue
        t = progs[r]["tasks"][nxt[r]]
        st = ready(r)
        if st is None: continue
        if t["kind"] == "collective":  # all ranks at this point start it together
            peers = [q for q in ranks if nxt[q] < len(progs[q]["tasks"]) and progs[q]["tasks"][nxt[q]]["op"] == t["op"]
                     and progs[q]["tasks"][nxt[q]]["kind"] == "collective" and ready(q) is not None]
            if len(peers) < len(ranks): continue
            st = max(ready(q) for q in peers)
            for q in peers:
                tq = progs[q]["tasks"][nxt[q]]
                end[q][nxt[q]] = st + tq["dur_us"]
                free[q][tq["stream"]] = end[q][nxt[q]]
                out.append({"rank": q, "index": nxt[q], "op": tq["op"], "stream": tq["stream"], "start_us": st,
                            "end_us": end[q][nxt[q]], "sim_us": tq["dur_us"]})
                nxt[q] += 1
        else:
            end[r][nxt[r]] = st + t["dur_us"]
            free[r][t["stream"]] = end[r][nxt[r]]
            out.append({"rank": r, "index": nxt[r], "op": t["op"], "stream": t["stream"], "start_us": st,
                        "end_us": end[r][nxt[r]], "sim_us": t["dur_us"]})
            nxt[r] += 1
        moved = True
    assert moved, "stuck"
step = max(max(e) for e in end.values())
json.dump({"device": {"name": "fake GPU"}, "rank": ranks[0], "ranks": ranks, "step_us": step, "step_times_us": [step],
           "tasks": out}, open(arg("--out"), "w"))
)PY";
  }
  VerifyOptions o = quick();
  o.executor = "cuda";
  std::filesystem::permissions(fake, std::filesystem::perms::owner_all, std::filesystem::perm_options::add);
  o.executor_bin = fake;
  HostRun run;
  o.run_out = &run;
  auto v = verify_scenario(tiny(), o);
  std::filesystem::remove(fake);
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  EXPECT_EQ(v->ranks, 2);
  EXPECT_NE(v->backend.find("2 GPUs"), std::string::npos) << v->backend;
  ASSERT_EQ(run.tasks.size(), 2u);
  for (const auto& rank : run.tasks) {
    ASSERT_FALSE(rank.empty());
    for (const auto& t : rank) EXPECT_GE(t.end, t.start);
    EXPECT_GT(rank.back().end, Time::zero());
  }
  bool tp_ar = false;
  for (const auto& c : v->classes)
    if (c.what == "all-reduce(tp)") {
      tp_ar = true;
      EXPECT_GT(c.measured, Time::zero());
      // the stand-in ran the simulated durations: the class agrees with the prediction
      EXPECT_NEAR(c.measured.seconds(), c.predicted.seconds(), 0.02 * c.predicted.seconds());
    }
  EXPECT_TRUE(tp_ar);
  // a list schedule of the simulated durations gives the simulated step, within rounding
  EXPECT_LT(std::abs(v->step_error), 0.02) << v->step_error;
}

}  // namespace
}  // namespace trainsim
