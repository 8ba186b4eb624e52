#include "reports/json_report.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/reports/fixture.h"

namespace trainsim {
namespace {

using nlohmann::ordered_json;
using testing::two_rank_prediction;

TEST(PredictionJson, HasEveryKey) {
  const ordered_json j = prediction_json(two_rank_prediction());
  for (const char* k : {"scenario", "model", "training", "cluster", "strategy", "mode",
                        "simulated_ranks", "gpus", "step_time_s", "step_time_ps",
                        "tokens_per_step", "tokens_per_s", "tokens_per_s_per_gpu",
                        "model_tflops_per_gpu", "hardware_tflops_per_gpu",
                        "peak_tflops_per_gpu", "mfu", "hfu", "critical_rank", "breakdown",
                        "comm", "memory", "sources", "events", "fingerprint"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  for (const char* k : {"compute", "recompute", "optimizer", "tp_exposed", "dp_exposed",
                        "pp_exposed", "cp_exposed", "ep_exposed", "bubble", "total"}) {
    ASSERT_TRUE(j["breakdown"].contains(k)) << k;
    EXPECT_TRUE(j["breakdown"][k].contains("s"));
    EXPECT_TRUE(j["breakdown"][k].contains("ps"));
    EXPECT_TRUE(j["breakdown"][k].contains("fraction"));
  }
  for (const char* k : {"capacity_bytes", "oom", "verdict", "peak", "per_stage"}) {
    EXPECT_TRUE(j["memory"].contains(k)) << k;
  }
  for (const char* k : {"rank", "stage", "params_bytes", "grads_bytes", "optimizer_bytes",
                        "activations_bytes", "workspace_bytes", "total_bytes", "capacity_bytes",
                        "oom"}) {
    EXPECT_TRUE(j["memory"]["peak"].contains(k)) << k;
  }
}

TEST(PredictionJson, Values) {
  const Prediction p = two_rank_prediction();
  const ordered_json j = prediction_json(p);
  EXPECT_EQ(j["mode"], "full");
  EXPECT_EQ(j["simulated_ranks"], 2);
  EXPECT_EQ(j["step_time_ps"].get<int64_t>(), 1'000'000'000);
  EXPECT_DOUBLE_EQ(j["step_time_s"].get<double>(), 1e-3);
  EXPECT_DOUBLE_EQ(j["mfu"].get<double>(), 412.26 / 989.0);     // a fraction, not a percentage
  EXPECT_EQ(j["fingerprint"], "00c0ffee12345678");
  EXPECT_EQ(j["events"].get<uint64_t>(), 1234u);
  EXPECT_EQ(j["breakdown"]["compute"]["ps"].get<int64_t>(), 700'000'000);
  EXPECT_DOUBLE_EQ(j["breakdown"]["compute"]["fraction"].get<double>(), 0.7);
  EXPECT_EQ(j["breakdown"]["total"]["ps"].get<int64_t>(), j["step_time_ps"].get<int64_t>());
  EXPECT_EQ(j["memory"]["peak"]["total_bytes"].get<int64_t>(), p.peak_memory.total().count());
  EXPECT_EQ(j["memory"]["oom"], false);
  EXPECT_EQ(j["memory"]["verdict"], "memory: OK (62.1 of 80.0 GiB)");
  ASSERT_EQ(j["memory"]["per_stage"].size(), 2u);
  EXPECT_EQ(j["memory"]["per_stage"][1]["stage"], 1);
  ASSERT_EQ(j["sources"].size(), 2u);
  EXPECT_EQ(j["sources"][0]["what"], "gemm");
  EXPECT_EQ(j["sources"][0]["source"], to_string(CostSource::kInterpolated));
  EXPECT_EQ(j["sources"][1]["time_on_critical_rank_ps"].get<int64_t>(), 50'000'000);
  EXPECT_EQ(j["strategy"]["pp"], 2);
  EXPECT_EQ(j["strategy"]["sequence_parallel"], true);
  EXPECT_EQ(j["model"]["params"].get<int64_t>() > 0, true);
}

// training.train_tokens: whole steps of the step's tokens (the last one full), their time and
// GPU-hours; absent when not asked, so other reports keep their bytes.
TEST(PredictionJson, TimeToTrainIsWholeStepsOfTheStep) {
  Prediction p = two_rank_prediction();   // 32,768 tokens a step of 1 ms on 2 GPUs
  EXPECT_FALSE(prediction_json(p).contains("time_to_train"));
  EXPECT_FALSE(prediction_json(p)["training"].contains("train_tokens"));
  EXPECT_FALSE(time_to_train(p).present);
  p.scenario.training.train_tokens = 1'000'000'000;   // 30,517.58 steps: 30,518 run
  const ordered_json j = prediction_json(p);
  ASSERT_TRUE(j.contains("time_to_train"));
  EXPECT_EQ(j["training"]["train_tokens"].get<int64_t>(), 1'000'000'000);
  const ordered_json& t = j["time_to_train"];
  EXPECT_EQ(t["tokens"].get<int64_t>(), 1'000'000'000);
  EXPECT_EQ(t["steps"].get<int64_t>(), 30'518);
  EXPECT_DOUBLE_EQ(t["seconds"].get<double>(), 30.518);
  EXPECT_DOUBLE_EQ(t["days"].get<double>(), 30.518 / 86400);
  EXPECT_DOUBLE_EQ(t["gpu_hours"].get<double>(), 30.518 * 2 / 3600);
  p.scenario.training.train_tokens = 32'768 * int64_t{1000};   // exactly 1,000 steps
  EXPECT_EQ(time_to_train(p).steps, 1000);
  EXPECT_DOUBLE_EQ(time_to_train(p).seconds, 1.0);
}

// Interruptions (the "failures" section), closed form on 1,000 s of steps on 2 GPUs at one
// interruption per GPU-hour: the job's MTBF M = 1800 s.
TEST(PredictionJson, TimeToTrainWithFailuresIsYoungsFirstOrder) {
  Prediction p = two_rank_prediction();   // 32,768 tokens a step of 1 ms on 2 GPUs
  p.scenario.training.train_tokens = 32'768 * int64_t{1'000'000};   // 1,000,000 steps: 1,000 s
  // No section: the default rate (Llama 3 405B's) over the steps-only time.
  TimeToTrain t = time_to_train(p);
  EXPECT_FALSE(t.with_failures);
  EXPECT_DOUBLE_EQ(t.interruptions, 1000.0 * 2 * 419.0 / (54.0 * 24 * 16384) / 3600);
  EXPECT_DOUBLE_EQ(t.train_s(), 1000.0);
  FailureSpec& f = testing::with_failures(p);
  t = time_to_train(p);
  ASSERT_TRUE(t.with_failures);
  EXPECT_DOUBLE_EQ(t.mtbf_s, 1800.0);
  EXPECT_DOUBLE_EQ(t.interval_s, 180.0);   // Young: sqrt(2 x 9 x 1800)
  // (180 + 9) / 180 for the checkpoints, 1 - (60 + 189 / 2) / 1800 of the time left after losses.
  const double wall = 1000.0 * (189.0 / 180.0) / (1.0 - (60.0 + 94.5) / 1800.0);
  EXPECT_DOUBLE_EQ(t.lost_s, 60.0 + 94.5);
  EXPECT_NEAR(t.wall_s, wall, 1e-9);
  EXPECT_NEAR(t.goodput, 1000.0 / wall, 1e-12);
  EXPECT_NEAR(t.interruptions, wall / 1800.0, 1e-12);
  EXPECT_DOUBLE_EQ(t.train_s(), t.wall_s);
  ordered_json j = prediction_json(p)["time_to_train"]["failures"];
  EXPECT_NEAR(j["wall_s"].get<double>(), wall, 1e-9);
  EXPECT_EQ(j["checkpoint_interval_auto"], true);
  EXPECT_EQ(j["stalls"], false);
  // Young's interval is the best one: a shorter or longer interval gives a longer run.
  for (double tau : {120.0, 240.0}) {
    f.interval_s = tau;
    const TimeToTrain u = time_to_train(p);
    EXPECT_FALSE(u.interval_auto);
    EXPECT_NEAR(u.wall_s, 1000.0 * ((tau + 9) / tau) / (1.0 - (60.0 + (tau + 9) / 2) / 1800.0), 1e-9);
    EXPECT_GT(u.wall_s, t.wall_s) << tau;
  }
  // A restart longer than the MTBF: the run never ends.
  f.interval_s = 0;
  f.restart_s = 2000;
  t = time_to_train(p);
  EXPECT_TRUE(t.stalls);
  EXPECT_TRUE(std::isinf(t.train_s()));
  j = prediction_json(p)["time_to_train"]["failures"];
  EXPECT_TRUE(j["wall_s"].is_null());
  EXPECT_EQ(j["stalls"], true);
  // No interruptions: no checkpoint is needed (auto), the steps' time.
  f.restart_s = 60;
  f.per_gpu_hour = 0;
  t = time_to_train(p);
  EXPECT_FALSE(t.stalls);
  EXPECT_TRUE(std::isinf(t.interval_s));
  EXPECT_DOUBLE_EQ(t.wall_s, 1000.0);
  EXPECT_DOUBLE_EQ(t.interruptions, 0.0);
}

TEST(PredictionJson, RoundTripsAndIsDeterministic) {
  const Prediction p = two_rank_prediction();
  const ordered_json j = prediction_json(p);
  const std::string a = j.dump(2);
  EXPECT_EQ(a, prediction_json(p).dump(2));
  EXPECT_EQ(a, prediction_json(two_rank_prediction()).dump(2));
  const ordered_json back = ordered_json::parse(a);
  EXPECT_EQ(back, j);
  EXPECT_EQ(back.dump(2), a);
}

TEST(PredictionJson, OomFlag) {
  Prediction p = two_rank_prediction();
  p.peak_memory.activations = Bytes::GiB(100);
  const ordered_json j = prediction_json(p);
  EXPECT_EQ(j["memory"]["oom"], true);
  EXPECT_EQ(j["memory"]["peak"]["oom"], true);
}

}  // namespace
}  // namespace trainsim
