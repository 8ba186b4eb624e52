#include "topologies/hardware.h"

#include <gtest/gtest.h>

namespace trainsim {
namespace {

TEST(Hardware, CatalogHasAllGpus) {
  const auto& cat = gpu_catalog();
  for (const char* n : {"A100-SXM-40GB", "A100-SXM-80GB", "A800-SXM-80GB", "H100-SXM-80GB",
                        "H100-SXM-96GB-500W", "H800-SXM-80GB", "H200-SXM-141GB",
                        "B200-SXM-180GB"}) {
    ASSERT_TRUE(cat.count(n)) << n;
    const GpuSpec& g = cat.at(n);
    EXPECT_GT(g.peak_bf16.tflops(), 0) << n;
    EXPECT_GT(g.hbm_bandwidth.Bps(), 0) << n;
    EXPECT_GT(g.nvlink_bandwidth.Bps(), 0) << n;
    EXPECT_FALSE(g.source.empty()) << n;
    EXPECT_EQ(g.gpus_per_node, 8);
  }
  EXPECT_EQ(cat.size(), 8u);
}

TEST(Hardware, H100Figures) {
  GpuSpec g = find_gpu("H100-SXM-80GB").value();
  EXPECT_DOUBLE_EQ(g.peak(DType::kBF16).tflops(), 989);
  EXPECT_DOUBLE_EQ(g.peak(DType::kFP16).tflops(), 989);
  EXPECT_DOUBLE_EQ(g.peak(DType::kFP8).tflops(), 1979);
  EXPECT_DOUBLE_EQ(g.peak(DType::kFP32).tflops(), 67);
  EXPECT_EQ(g.hbm_capacity, Bytes::GiB(80));
  EXPECT_DOUBLE_EQ(g.hbm_bandwidth.GBps_f(), 3350);
  EXPECT_DOUBLE_EQ(g.nvlink_bandwidth.GBps_f(), 450);
  EXPECT_DOUBLE_EQ(g.nic_bandwidth.GBps_f(), 50);  // 400 Gb/s
}

TEST(Hardware, A100HasNoFp8AndReducedNvlinkVariants) {
  EXPECT_EQ(find_gpu("A100-SXM-80GB").value().peak(DType::kFP8).per_s(), 0);
  EXPECT_DOUBLE_EQ(find_gpu("A800-SXM-80GB").value().nvlink_bandwidth.GBps_f(), 200);
  EXPECT_DOUBLE_EQ(find_gpu("H800-SXM-80GB").value().nvlink_bandwidth.GBps_f(), 200);
  EXPECT_DOUBLE_EQ(find_gpu("A100-SXM-40GB").value().nic_bandwidth.GBps_f(), 25);
  EXPECT_EQ(find_gpu("H200-SXM-141GB").value().hbm_capacity, Bytes::GiB(141));
}

TEST(Hardware, PowerCappedH100) {
  GpuSpec g = find_gpu("H100-SXM-96GB-500W").value();
  EXPECT_DOUBLE_EQ(g.tdp_w, 700);
  EXPECT_DOUBLE_EQ(g.power_limit_w, 500);
  EXPECT_EQ(g.hbm_capacity, Bytes::GiB(96));
  EXPECT_DOUBLE_EQ(g.peak(DType::kBF16).tflops(), 989);   // nominal; derating is the cost model's
  GpuSpec h = find_gpu("H100-SXM-80GB").value();
  EXPECT_DOUBLE_EQ(h.power_limit_w, h.tdp_w);
}

TEST(Hardware, CaseInsensitiveAndAlias) {
  EXPECT_EQ(find_gpu("h100-sxm-80gb").value().name, "H100-SXM-80GB");
  EXPECT_EQ(find_gpu("B200").value().name, "B200-SXM-180GB");
  EXPECT_EQ(find_gpu("b200").value().name, "B200-SXM-180GB");
  EXPECT_DOUBLE_EQ(find_gpu("B200").value().nvlink_bandwidth.GBps_f(), 900);
}

TEST(Hardware, UnknownGpuListsAcceptedNames) {
  auto r = find_gpu("H100");
  ASSERT_FALSE(r.ok());
  std::string msg = r.status().to_string();
  EXPECT_NE(msg.find("H100-SXM-80GB"), std::string::npos) << msg;
  EXPECT_NE(msg.find("B200"), std::string::npos) << msg;
  EXPECT_NE(msg.find("H100"), std::string::npos) << msg;
}

TEST(Hardware, ScaleOutNames) {
  EXPECT_STREQ(to_string(ScaleOut::kInfiniBand), "infiniband");
  EXPECT_STREQ(to_string(ScaleOut::kRoCE), "roce");
}

}  // namespace
}  // namespace trainsim
