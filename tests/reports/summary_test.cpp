#include "reports/summary.h"

#include <gtest/gtest.h>

#include "tests/reports/fixture.h"

namespace trainsim {
namespace {

using testing::gib_frac;
using testing::two_rank_prediction;

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

TEST(Summary, HasTheHeadlineFigures) {
  const std::string s = format_summary(two_rank_prediction());
  EXPECT_TRUE(has(s, "trainsim prediction: unit-test-2rank")) << s;
  EXPECT_TRUE(has(s, "H100-SXM-80GB")) << s;
  EXPECT_TRUE(has(s, "tp=1 pp=2 vp=1 dp=1 cp=1 ep=1, sp on")) << s;
  EXPECT_TRUE(has(s, "full (2 of 2 ranks simulated")) << s;
  EXPECT_TRUE(has(s, "fingerprint 00c0ffee12345678")) << s;
  EXPECT_TRUE(has(s, "1.000 ms")) << s;                        // step time
  EXPECT_TRUE(has(s, "32,768,000 tokens/s")) << s;             // 32768 tokens / 1 ms
  EXPECT_TRUE(has(s, "16,384,000 tokens/s per GPU")) << s;
  EXPECT_TRUE(has(s, "412.3 model, 450.5 hardware (peak 989.0")) << s;
  EXPECT_TRUE(has(s, "41.7% / 45.6%")) << s;                   // 412.26/989, 450.5/989
}

// Keys that only flow mode uses are named in an analytic prediction (it leaves them out); a flow
// prediction, or one without them, has no note. A custom GPU's figures are printed.
TEST(Summary, NotesFlowOnlyKeysAndCustomGpus) {
  Prediction p = two_rank_prediction();
  EXPECT_FALSE(has(format_summary(p), "flow mode only")) << format_summary(p);
  p.scenario.options.network.flow_only_given = {"network.topology", "network.modifications"};
  std::string s = format_summary(p);
  EXPECT_TRUE(has(s, "note          network.topology, network.modifications apply in flow mode only "
                     "(--set network.mode=flow); this analytic prediction does not use them\n")) << s;
  p.scenario.options.network.flow_only_given = {"network.placement"};
  EXPECT_TRUE(has(format_summary(p), "network.placement applies in flow mode only")) << format_summary(p);
  p.flow = true;
  EXPECT_FALSE(has(format_summary(p), "flow mode only"));
  // An NVLink figure twice the catalog's per-direction one is the both-directions figure.
  EXPECT_FALSE(has(format_summary(p), "NVIDIA quotes NVLink"));
  p.scenario.cluster.gpu.nvlink_bandwidth = Bandwidth::GBps(450);
  p.scenario.cluster.nvlink_bandwidth = Bandwidth::GBps(900);
  EXPECT_TRUE(has(format_summary(p), "nvlink_bandwidth 900 GB/s per direction is twice H100-SXM-80GB's 450 GB/s"))
      << format_summary(p);
  p.scenario.cluster.nvlink_bandwidth = Bandwidth::GBps(600);
  EXPECT_FALSE(has(format_summary(p), "NVIDIA quotes NVLink"));
  EXPECT_FALSE(has(s, "the scenario's GPU, based on")) << s;
  p.scenario.cluster.gpu.name = "next";
  p.scenario.cluster.gpu.base = "H100-SXM-80GB";
  p.scenario.cluster.gpu.family = "hopper";
  s = format_summary(p);
  EXPECT_TRUE(has(s, "x next (the scenario's GPU, based on H100-SXM-80GB; ")) << s;
  EXPECT_TRUE(has(s, "TFLOP/s bf16")) << s;
  EXPECT_TRUE(has(s, "HBM 80.00 GiB")) << s;
  EXPECT_TRUE(has(s, "hopper kernel efficiencies")) << s;
}

// An uneven layer split is printed, runs of equal stages compressed; an even one (no
// layers_per_stage) is not.
TEST(Summary, UnevenLayerSplitIsShown) {
  Prediction p = two_rank_prediction();
  EXPECT_FALSE(has(format_summary(p), "\nlayers ")) << format_summary(p);
  p.scenario.parallel.layers_per_stage = {3, 5};
  EXPECT_TRUE(has(format_summary(p), "\nlayers        8 over 2 stages: 3, 5\n")) << format_summary(p);
  p.scenario.model.layers = 126;
  p.scenario.parallel.pp = 16;
  p.scenario.parallel.layers_per_stage = {7, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 7};
  EXPECT_TRUE(has(format_summary(p), "layers        126 over 16 stages: 7, 8 x 14, 7\n")) << format_summary(p);
}

TEST(Summary, TimeToTrainWhenAsked) {
  Prediction p = two_rank_prediction();   // 32,768 tokens a step of 1 ms on 2 GPUs
  EXPECT_FALSE(has(format_summary(p), "time to train")) << "only when training.train_tokens is set";
  p.scenario.training.train_tokens = 1'000'000'000;
  std::string s = format_summary(p);
  EXPECT_TRUE(has(s, "time to train 1B tokens: 30,518 steps, 30.5 s (0.017 GPU-hours); steps only")) << s;
  // 259,200,000 steps of 1 ms: 3 days on 2 GPUs, 144 GPU-hours.
  p.scenario.training.train_tokens = 32'768 * int64_t{259'200'000};
  s = format_summary(p);
  EXPECT_TRUE(has(s, "time to train 8.493T tokens: 259,200,000 steps, 3.0 days (144 GPU-hours)")) << s;
  p.scenario.training.train_tokens = 32'768;
  s = format_summary(p);
  EXPECT_TRUE(has(s, "time to train 32,768 tokens: 1 step, 0.0 s")) << s;
  EXPECT_TRUE(has(s, "interruptions 0.0 expected in that time: one per 1,056 days of the job (1.97e-05 per GPU-hour x 2 "
                     "GPUs; default: Llama 3 405B's 419 in 54 days on 16,384 H100s)")) << s;
  // With the failures section: 1,000 s of steps, MTBF 1800 s, Young's interval 180 s.
  FailureSpec& f = testing::with_failures(p);
  s = format_summary(p);
  EXPECT_TRUE(has(s, "with failures 19.1 minutes, 87.1% goodput: a checkpoint every 3.0 minutes of training (Young's "
                     "sqrt(2 x write x MTBF), write 9.0 s), 0.6 interruptions expected, each losing 2.6 minutes on "
                     "average (restart 60.0 s + half an interval and write); one per 30.0 minutes of the job (1 per "
                     "GPU-hour x 2 GPUs; failures.per_gpu_hour)")) << s;
  f.restart_s = 2000;
  s = format_summary(p);
  EXPECT_TRUE(has(s, "with failures never finishes")) << s;
}

TEST(Summary, BreakdownSkipsZeroRowsAndSumsToTheStep) {
  const std::string s = format_summary(two_rank_prediction());
  EXPECT_TRUE(has(s, "step breakdown (critical rank 1)")) << s;
  EXPECT_TRUE(has(s, "compute")) << s;
  EXPECT_TRUE(has(s, "exposed DP comm")) << s;
  EXPECT_TRUE(has(s, "exposed PP comm")) << s;
  EXPECT_TRUE(has(s, "pipeline bubble")) << s;
  EXPECT_FALSE(has(s, "exposed TP comm")) << s;   // zero rows are skipped...
  EXPECT_FALSE(has(s, "exposed CP comm")) << s;
  EXPECT_FALSE(has(s, "recompute  ")) << s;
  EXPECT_TRUE(has(s, "100.0%")) << s;             // ...and the total is the whole step
  EXPECT_FALSE(has(s, "note: the buckets sum")) << s;
  EXPECT_TRUE(has(s, "70.0%")) << s;              // compute 700 of 1000 us
  EXPECT_TRUE(has(s, "20.0%")) << s;              // bubble 200 of 1000 us
  EXPECT_TRUE(has(s, "120.000 us, 70.000 us exposed, 41.7% hidden")) << s;
}

TEST(Summary, BreakdownMismatchIsReported) {
  Prediction p = two_rank_prediction();
  p.breakdown[static_cast<size_t>(Bucket::kBubble)] = Time::us(150);
  EXPECT_TRUE(has(format_summary(p), "note: the buckets sum to 950000000 ps, the step is "
                                     "1000000000 ps"));
}

TEST(Summary, MemoryOkVerdict) {
  const Prediction p = two_rank_prediction();
  EXPECT_EQ(memory_verdict(p.peak_memory), "memory: OK (62.1 of 80.0 GiB)");
  const std::string s = format_summary(p);
  EXPECT_TRUE(has(s, "memory: OK (62.1 of 80.0 GiB)\n")) << s;
  EXPECT_TRUE(has(s, "memory per GPU (peak on rank 0, stage 0)")) << s;
  EXPECT_TRUE(has(s, "30.60")) << s;   // activations GiB
}

TEST(Summary, MemoryOomVerdict) {
  Prediction p = two_rank_prediction();
  p.peak_memory.activations = gib_frac(61.9);   // 8 + 16 + 6 + 61.9 + 1.5 = 93.4 GiB
  EXPECT_TRUE(p.peak_memory.oom());
  EXPECT_EQ(memory_verdict(p.peak_memory), "memory: OOM \u2014 needs 93.4 GiB, GPU has 80.0 GiB");
  EXPECT_TRUE(has(format_summary(p), "memory: OOM \u2014 needs 93.4 GiB, GPU has 80.0 GiB\n"));
}

TEST(Summary, PerStageTableWhenPipelined) {
  Prediction p = two_rank_prediction();
  std::string s = format_summary(p);
  EXPECT_TRUE(has(s, "memory per stage")) << s;
  EXPECT_TRUE(has(s, "activations  workspace  total")) << s;
  p.scenario.parallel.pp = 1;
  s = format_summary(p);
  EXPECT_FALSE(has(s, "memory per stage")) << s;
}

TEST(Summary, PerStageTableStopsAt64) {
  Prediction p = two_rank_prediction();
  p.scenario.parallel.pp = 100;
  p.memory_per_stage.clear();
  for (int i = 0; i < 100; ++i) {
    MemoryReport m = p.peak_memory;
    m.stage = i;
    m.rank = static_cast<uint32_t>(i);
    p.memory_per_stage.push_back(m);
  }
  const std::string s = format_summary(p);
  EXPECT_TRUE(has(s, "... (36 more stages)")) << s;
  EXPECT_TRUE(has(s, "\n     63    63")) << s;
  EXPECT_FALSE(has(s, "\n     64    64")) << s;
}

TEST(Summary, CostSourcesTable) {
  const std::string s = format_summary(two_rank_prediction());
  EXPECT_TRUE(has(s, "cost sources")) << s;
  EXPECT_TRUE(has(s, "gemm")) << s;
  EXPECT_TRUE(has(s, "calibration table h100 (3 points)")) << s;
  EXPECT_TRUE(has(s, "all-reduce(dp)")) << s;
  EXPECT_TRUE(has(s, "alpha-beta, default bus bandwidth")) << s;
  EXPECT_TRUE(has(s, to_string(CostSource::kInterpolated))) << s;
}

// HSDP with MoE: the strategy line gives the routed experts' shard group and replicas (ep 2
// along dp 8, expert-DP 4 ranks; shard group 4 -> 2 dense replicas -> experts shard over 2).
TEST(Summary, HsdpMoeNamesTheExpertShardGroup) {
  Prediction p = two_rank_prediction();
  ModelSpec& m = p.scenario.model;
  m.arch = "moe";
  m.experts = 8;
  m.top_k = 2;
  m.expert_ffn_hidden = 4096;
  ParallelSpec& par = p.scenario.parallel;
  par.pp = 1;
  par.dp = 8;
  par.ep = 2;
  par.zero = 3;
  par.fsdp_shard_group = 4;
  std::string s = format_summary(p);
  EXPECT_TRUE(has(s, "zero 3 (shard group 4; routed experts: shard group 2 x 2 replicas)")) << s;
  par.fsdp_shard_group = 0;   // no HSDP: the line it always had
  s = format_summary(p);
  EXPECT_TRUE(has(s, "zero 3 (shard group 8)")) << s;
}

TEST(Summary, Deterministic) {
  const Prediction p = two_rank_prediction();
  EXPECT_EQ(format_summary(p), format_summary(p));
  EXPECT_EQ(format_summary(p), format_summary(two_rank_prediction()));
}

TEST(Summary, FastModeAndNoComm) {
  Prediction p = two_rank_prediction();
  p.fast = true;
  p.simulated_ranks = 1;
  p.comm_total = Time();
  p.comm_exposed = Time();
  const std::string s = format_summary(p);
  EXPECT_TRUE(has(s, "fast (1 of 2 ranks simulated")) << s;
  EXPECT_TRUE(has(s, "comm on the critical rank: none")) << s;
}

}  // namespace
}  // namespace trainsim
