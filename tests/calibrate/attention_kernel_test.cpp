// training.attention_kernel "cudnn": the embedded default prices attention at cuDNN fused SDPA's
// efficiency measured on an H100 (calibrate/data/defaults.json, from calibrate/data/h100), in
// closed form; the figure matches the committed measurements; other families refuse it; the plan
// is the same as with flash and only attention gets faster.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "calibrate/cost_model.h"
#include "scenarios/loader.h"
#include "scenarios/predict.h"

namespace trainsim {
namespace {

OpDesc big_attention(bool backward) {
  OpDesc o;
  o.cls = OpClass::kAttention;
  o.causal = true;
  o.backward = backward;
  o.flops = Flops{backward ? 2e15 : 1e15};   // the FLOP convention: backward = 2x forward
  return o;
}

TEST(AttentionKernel, CudnnTimesAreTheClosedFormOfItsEfficiency) {
  auto flash = default_efficiencies("hopper");
  ASSERT_TRUE(flash.ok()) << flash.status().to_string();
  DefaultEfficiencies cudnn = flash.value();
  ASSERT_TRUE(use_attention_kernel(AttentionKernel::kCudnn, &cudnn).ok());
  EXPECT_DOUBLE_EQ(cudnn.attention, 0.62);
  EXPECT_DOUBLE_EQ(cudnn.attention_backward_ratio, 0.86);
  DefaultEfficiencies same = flash.value();
  ASSERT_TRUE(use_attention_kernel(AttentionKernel::kFlash, &same).ok());
  EXPECT_EQ(same.attention, flash->attention) << "flash keeps the FlashAttention-2 figure";

  auto gpu = find_gpu("H100-SXM-80GB");
  ASSERT_TRUE(gpu.ok());
  ClusterSpec cl;
  cl.gpu = gpu.value();
  cl.gpus = 8;
  const DefaultCostModel fm(cl, flash.value()), cm(cl, cudnn);
  const double peak = cl.gpu.peak_bf16.per_s();
  // Seconds-long kernels: past the size curve's last point, so the plateau efficiency applies.
  const double fwd = 1e15 * 0.5 / (peak * 0.62);
  const double bwd = 2e15 * 0.5 * (2.5 / 2) / (peak * 0.62 * 0.86);
  EXPECT_NEAR(cm.compute(big_attention(false)).time.seconds(), fwd, 1e-9 * fwd);
  EXPECT_NEAR(cm.compute(big_attention(true)).time.seconds(), bwd, 1e-9 * bwd);
  const double ratio_f = fm.compute(big_attention(false)).time.seconds() / fwd;
  EXPECT_NEAR(ratio_f, 0.62 / flash->attention, 1e-9);
  EXPECT_NE(cm.describe(OpClass::kAttention, CostSource::kDefault).find("cuDNN fused attention (measured on H100, calibrate/data/h100) at 62%"),
            std::string::npos)
      << cm.describe(OpClass::kAttention, CostSource::kDefault);

  // Families without a measured figure refuse it, and say what to do.
  for (const char* fam : {"ampere", "blackwell"}) {
    auto e = default_efficiencies(fam);
    ASSERT_TRUE(e.ok());
    Status st = use_attention_kernel(AttentionKernel::kCudnn, &e.value());
    ASSERT_FALSE(st.ok()) << fam;
    EXPECT_NE(st.to_string().find("hopper GPUs only"), std::string::npos) << st.to_string();
    EXPECT_NE(st.to_string().find("/training/attention_kernel"), std::string::npos) << st.to_string();
  }
}

// The default's figures are the medians of the committed H100 measurements they cite (the shapes
// of 8K tokens and more, past the kernel's ramp).
TEST(AttentionKernel, CudnnFigureIsTheMedianOfTheCommittedMeasurements) {
  std::ifstream in(std::string(TRAINSIM_SOURCE_DIR) + "/calibrate/data/h100/sweep_attention_cudnn_calibrator.jsonl");
  ASSERT_TRUE(in.good());
  std::vector<double> fwd, bwd;
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || j.value("kind", "") != "op" || !j.contains("op")) continue;
    const auto& o = j["op"];
    if (o.value("class", "") != "attention" || j.value("source", "").find("cuDNN") == std::string::npos ||
        o["seq_q"].get<int64_t>() < 8192)
      continue;
    double fl = 4.0 * o["seq_q"].get<double>() * o["seq_kv"].get<double>() * o["head_dim"].get<double>() *
                o["heads"].get<double>() * o["batch"].get<double>() * (o["causal"].get<bool>() ? 0.5 : 1.0);
    if (o["backward"].get<bool>()) fl *= 2.5;
    (o["backward"].get<bool>() ? bwd : fwd).push_back(fl / (j["time_us"].get<double>() * 1e-6) / 989.4e12);
  }
  ASSERT_EQ(fwd.size(), 3u);
  ASSERT_EQ(bwd.size(), 3u);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  auto e = default_efficiencies("hopper");
  ASSERT_TRUE(e.ok());
  EXPECT_NEAR(e->attention_cudnn, median(fwd), 0.01);
  EXPECT_NEAR(e->attention_cudnn_backward_ratio, median(bwd) / median(fwd), 0.02);
}

TEST(AttentionKernel, CudnnScenarioHasFlashsPlanAndFasterAttentionOnly) {
  auto f = load_embedded_quickstart({});
  auto c = load_embedded_quickstart({"training.attention_kernel=cudnn"});
  ASSERT_TRUE(f.ok() && c.ok()) << c.status().to_string();
  PredictOptions po;
  po.fast = true;
  auto pf = predict(f.value(), po), pc = predict(c.value(), po);
  ASSERT_TRUE(pf.ok() && pc.ok());
  ASSERT_EQ(pf->plan->ops.size(), pc->plan->ops.size());
  for (size_t i = 0; i < pf->plan->ops.size(); ++i) EXPECT_TRUE(pf->plan->ops[i].same_as(pc->plan->ops[i])) << i;
  EXPECT_LT(pc->step_time, pf->step_time);
  EXPECT_EQ(pc->peak_memory.total(), pf->peak_memory.total());
  for (const auto& rf : pf->sources)
    for (const auto& rc : pc->sources)
      if (rf.what == rc.what) {
        if (rf.what == "attention") {
          EXPECT_LT(rc.time_on_critical_rank, rf.time_on_critical_rank);
        } else if (rf.what == "gemm" || rf.what == "norm") {
          EXPECT_EQ(rc.time_on_critical_rank, rf.time_on_critical_rank) << rf.what;
        }
      }
  // Context parallelism and packed documents run with it; an A100 refuses it at load time.
  EXPECT_TRUE(load_scenario_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/llama3_8b_128k_cp.json",
                                 {"training.attention_kernel=cudnn"})
                  .ok());
  auto a = load_embedded_quickstart({"training.attention_kernel=cudnn", "cluster.gpu=A100-SXM-80GB"});
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().to_string().find("/training/attention_kernel"), std::string::npos) << a.status().to_string();
  EXPECT_NE(a.status().to_string().find("ampere"), std::string::npos) << a.status().to_string();
}

}  // namespace
}  // namespace trainsim
