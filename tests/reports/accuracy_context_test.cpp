#include "reports/accuracy_context.h"

#include <cmath>

#include <gtest/gtest.h>

#include "scenarios/loader.h"

namespace trainsim {
namespace {

RunFeatures h100_fsdp_8b() {
  RunFeatures f;
  f.gpu = "H100-SXM-80GB";
  f.gpu_family = "hopper";
  f.fsdp = true;
  f.params = 8e9;
  f.gpus = 8;
  f.seq_len = 8192;
  return f;
}

ValidateRow compared(const std::string& id, const RunFeatures& f, double error) {
  ValidateRow r;
  r.id = id;
  r.metric = "tokens_per_s_per_gpu";
  r.measured = 1000;
  r.predicted = 1000 * (1 + error / 100);
  r.error_pct = error;
  r.ok = true;
  r.features = f;
  r.has_features = true;
  return r;
}

TEST(CompareFeatures, IdenticalRunsAreAtDistanceZero) {
  const Resemblance r = compare_features(h100_fsdp_8b(), h100_fsdp_8b());
  EXPECT_EQ(r.distance, 0.0);
  EXPECT_TRUE(r.differs.empty());
}

TEST(CompareFeatures, ClosedFormWeights) {
  RunFeatures a = h100_fsdp_8b();
  RunFeatures b;
  b.gpu = "A100-SXM-80GB";
  b.gpu_family = "ampere";
  b.fsdp = false;
  b.tp = b.pp = true;
  b.unfused = true;
  b.params = 8e9 * 16;    // 4 doublings
  b.gpus = 1024;          // 7 doublings
  b.seq_len = 2048;       // 2 halvings
  const Resemblance r = compare_features(a, b);
  // family 4 + FSDP 2 + unfused 2 + TP 1 + PP 1, then 0.5*4 + 0.25*7 + 0.5*2
  EXPECT_DOUBLE_EQ(r.distance, 4 + 2 + 2 + 1 + 1 + 2.0 + 1.75 + 1.0);
  const std::vector<std::string> want = {"GPU family ampere", "no FSDP", "unfused attention", "TP", "PP",
                                         "params 128B", "1024 GPUs", "seq 2K"};
  EXPECT_EQ(r.differs, want);
  // The distance is symmetric; the description is of the second argument.
  const Resemblance back = compare_features(b, a);
  EXPECT_DOUBLE_EQ(back.distance, r.distance);
  EXPECT_EQ(back.differs.front(), "GPU family hopper");
}

TEST(CompareFeatures, MoeCpFp8AndOverlapsEachCountOnce) {
  RunFeatures a = h100_fsdp_8b();
  RunFeatures b = a;
  b.moe = true;
  EXPECT_DOUBLE_EQ(compare_features(a, b).distance, 3);
  b = a;
  b.cp = true;
  EXPECT_DOUBLE_EQ(compare_features(a, b).distance, 2);
  b = a;
  b.fp8 = true;
  EXPECT_DOUBLE_EQ(compare_features(a, b).distance, 1);
  b = a;
  b.tp_overlap = true;
  EXPECT_DOUBLE_EQ(compare_features(a, b).distance, 2);
  EXPECT_EQ(compare_features(a, b).differs, std::vector<std::string>{"TP overlap"});
  b = a;
  b.ep_overlap = true;
  EXPECT_DOUBLE_EQ(compare_features(a, b).distance, 2);
  EXPECT_EQ(compare_features(b, a).differs, std::vector<std::string>{"no EP overlap"});
  // A PyTorch loop against fused kernels: 2; eager against compiled: 1 more.
  b = a;
  b.framework = Framework::kTorchEager;
  EXPECT_DOUBLE_EQ(compare_features(a, b).distance, 2);
  EXPECT_EQ(compare_features(a, b).differs, std::vector<std::string>{"PyTorch loop"});
  EXPECT_EQ(compare_features(b, a).differs, std::vector<std::string>{"fused kernels"});
  a.framework = Framework::kTorchCompile;
  EXPECT_DOUBLE_EQ(compare_features(a, b).distance, 1);
  EXPECT_EQ(compare_features(a, b).differs, std::vector<std::string>{"eager"});
  EXPECT_EQ(compare_features(b, a).differs, std::vector<std::string>{"torch.compile"});
  a = h100_fsdp_8b();
  // Sizes within 2x add to the distance but are not named.
  b = a;
  b.params = 6e9;
  const Resemblance r = compare_features(a, b);
  EXPECT_DOUBLE_EQ(r.distance, 0.5 * std::log2(8.0 / 6.0));
  EXPECT_TRUE(r.differs.empty());
}

TEST(DescribeRun, NamesTheTraits) {
  RunFeatures f = h100_fsdp_8b();
  EXPECT_EQ(describe_run(f), "H100-SXM-80GB, 8.0B, 8 GPUs, FSDP, 8K");
  f.framework = Framework::kTorchEager;
  EXPECT_EQ(describe_run(f), "H100-SXM-80GB, 8.0B, 8 GPUs, FSDP, eager, 8K");
  f.framework = Framework::kTorchCompile;
  EXPECT_EQ(describe_run(f), "H100-SXM-80GB, 8.0B, 8 GPUs, FSDP, torch.compile, 8K");
  f.framework = Framework::kFused;
  f.fsdp = false;
  f.tp = f.cp = f.fp8 = true;
  f.params = 175e9;
  f.seq_len = 1 << 20;
  EXPECT_EQ(describe_run(f), "H100-SXM-80GB, 175B, 8 GPUs, TP CP, fp8, 1M");
  f.tp_overlap = true;
  EXPECT_EQ(describe_run(f), "H100-SXM-80GB, 175B, 8 GPUs, TP CP, fp8, TP overlap, 1M");
  f.tp_overlap = false;
  f.tp = f.cp = false;
  EXPECT_EQ(describe_run(f).find(", DP,") != std::string::npos, true) << describe_run(f);
}

TEST(FeaturesOf, ReadsTheScenario) {
  auto sc = load_embedded_quickstart({"parallel.tp=2", "parallel.dp=4", "training.precision=fp8"});
  ASSERT_TRUE(sc.ok()) << sc.status().to_string();
  const RunFeatures f = features_of(sc.value());
  EXPECT_EQ(f.gpu, sc.value().cluster.gpu.name);
  EXPECT_EQ(f.gpu_family, "hopper");
  EXPECT_EQ(f.fsdp, sc.value().parallel.zero == 3);
  EXPECT_TRUE(f.tp);
  EXPECT_FALSE(f.pp);
  EXPECT_FALSE(f.cp);
  EXPECT_TRUE(f.fp8);
  EXPECT_FALSE(f.moe);
  EXPECT_FALSE(f.tp_overlap);
  EXPECT_FALSE(f.ep_overlap);
  EXPECT_EQ(f.gpus, 8);
  EXPECT_EQ(f.seq_len, sc.value().training.seq_len);
  EXPECT_GT(f.params, 7e9);
  EXPECT_LT(f.params, 9e9);
}

TEST(AccuracyContext, NearestFirstSkippedRowsLeftOut) {
  const RunFeatures me = h100_fsdp_8b();
  RunFeatures far = me;
  far.gpu_family = "ampere";        // distance 4
  RunFeatures mid = me;
  mid.tp = true;                    // distance 1
  RunFeatures tie = me;             // distance 0, two of them: ordered by id
  std::vector<ValidateRow> rows = {compared("z-far", far, -20), compared("m-mid", mid, 12),
                                   compared("b-same", tie, 30), compared("a-same", tie, -4)};
  ValidateRow skipped;
  skipped.id = "skipped";
  skipped.reason = "unsupported: something";
  rows.push_back(skipped);
  ValidateRow unread = compared("no-features", me, 1);
  unread.has_features = false;
  rows.push_back(unread);

  AccuracyContext ac = accuracy_context(me, rows, 3, "runs.jsonl");
  EXPECT_EQ(ac.rows, 6);
  EXPECT_EQ(ac.compared, 4);
  ASSERT_EQ(ac.nearest.size(), 3u);
  EXPECT_EQ(ac.nearest[0].row.id, "a-same");
  EXPECT_EQ(ac.nearest[1].row.id, "b-same");
  EXPECT_EQ(ac.nearest[2].row.id, "m-mid");
  EXPECT_DOUBLE_EQ(ac.min_error_pct, -4);
  EXPECT_DOUBLE_EQ(ac.max_error_pct, 30);
  EXPECT_DOUBLE_EQ(ac.median_abs_error_pct, 12);   // |-4|, 12, 30

  // k beyond the compared rows: all of them, the median of an even count the mean of the middle two.
  ac = accuracy_context(me, rows, 10, "runs.jsonl");
  ASSERT_EQ(ac.nearest.size(), 4u);
  EXPECT_EQ(ac.nearest[3].row.id, "z-far");
  EXPECT_DOUBLE_EQ(ac.median_abs_error_pct, (12 + 20) / 2.0);

  const std::string text = format_accuracy_context(ac);
  EXPECT_NE(text.find("the 4 published runs of runs.jsonl most like this scenario"), std::string::npos) << text;
  EXPECT_NE(text.find("(4 of 6 runs compared)"), std::string::npos) << text;
  EXPECT_NE(text.find("+30.0%"), std::string::npos) << text;
  EXPECT_NE(text.find("GPU family ampere"), std::string::npos) << text;
  EXPECT_NE(text.find("span -20.0% to +30.0% (median |error| 16.0%)"), std::string::npos) << text;

  const nlohmann::ordered_json j = accuracy_context_json(ac);
  EXPECT_EQ(j["runs"], "runs.jsonl");
  EXPECT_EQ(j["compared"], 4);
  ASSERT_EQ(j["nearest"].size(), 4u);
  EXPECT_EQ(j["nearest"][2]["id"], "m-mid");
  EXPECT_EQ(j["nearest"][2]["differs"], nlohmann::ordered_json::array({"TP"}));
  EXPECT_DOUBLE_EQ(j["nearest"][2]["distance"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["min_error_pct"].get<double>(), -20);
  EXPECT_DOUBLE_EQ(j["max_error_pct"].get<double>(), 30);
}

TEST(AccuracyContext, NoComparedRowSaysSo) {
  ValidateRow skipped;
  skipped.id = "skipped";
  skipped.reason = "invalid: x";
  const AccuracyContext ac = accuracy_context(h100_fsdp_8b(), {skipped}, 5, "f.jsonl");
  EXPECT_TRUE(ac.nearest.empty());
  EXPECT_NE(format_accuracy_context(ac).find("no run of the file was compared"), std::string::npos);
  const nlohmann::ordered_json j = accuracy_context_json(ac);
  EXPECT_TRUE(j["min_error_pct"].is_null());
  EXPECT_TRUE(j["median_abs_error_pct"].is_null());
}

}  // namespace
}  // namespace trainsim
