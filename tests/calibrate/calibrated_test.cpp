// The calibrated cost model: each source tier (measured, interpolated, fitted, default) on a
// database built from synthetic measurement lines whose times follow known formulas.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "calibrate/calibrated_cost_model.h"
#include "calibrate/db.h"
#include "models/ops.h"
#include "scenarios/loader.h"
#include "scenarios/predict.h"
#include "topologies/hardware.h"

namespace trainsim {
namespace {

const char* kDev =
    R"("device": {"name": "NVIDIA H100 80GB HBM3", "driver": "550.54", "cuda": "12.4", "nccl": "2.21.5", "cudnn": "9.1", "host": "n1", "date": "2026-11-01T00:00:00Z", "gpus": 8})";

std::string gemm_line(int64_t m, int64_t n, int64_t k, double us) {
  char b[512];
  std::snprintf(b, sizeof b,
                R"({"kind": "op", %s, "op": {"class": "gemm", "dtype": "bf16", "m": %lld, "n": %lld, "k": %lld, "batch": 1}, "time_us": %.6f, "min_us": %.6f, "runs": 50, "source": "test"})",
                kDev, (long long)m, (long long)n, (long long)k, us, us);
  return b;
}
std::string ar_line(int64_t bytes, int p, double us) {
  char b[512];
  std::snprintf(b, sizeof b,
                R"({"kind": "collective", %s, "coll": {"kind": "all-reduce", "dtype": "bf16", "bytes": %lld, "group_size": %d, "per_node": %d, "nodes": 1}, "time_us": %.6f, "algbw_GBps": 1, "busbw_GBps": 1, "runs": 20, "source": "test"})",
                kDev, (long long)bytes, p, p, us);
  return b;
}

// GEMM time: 5 us + flops / 700 TFLOP/s. All-reduce: 2(p-1)*4us + 2(p-1)/p * S / 400 GB/s.
double gemm_us(int64_t m, int64_t n, int64_t k) { return 5 + 2.0 * m * n * k / 700e12 * 1e6; }
double ar_us(int64_t s, int p) { return (2.0 * (p - 1) * 4e-6 + 2.0 * (p - 1) / p * s / 400e9) * 1e6; }

class Calibrated : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("trainsim_cal_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "cal.db").string();
    std::vector<std::string> lines;
    for (int64_t s : {1024, 2048, 4096, 8192}) lines.push_back(gemm_line(s, s, s, gemm_us(s, s, s)));
    for (int p : {2, 4, 8})
      for (int64_t s = int64_t{1} << 20; s <= int64_t{1} << 30; s *= 4) lines.push_back(ar_line(s, p, ar_us(s, p)));
    auto db = CalibrationDb::open(path_, true);
    ASSERT_TRUE(db.ok()) << db.status().to_string();
    auto st = db.value()->import_lines(lines, "synthetic");
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    auto fits = refit(*db.value());
    ASSERT_TRUE(fits.ok()) << fits.status().to_string();
    EXPECT_GE(fits.value(), 2);
    cluster_.gpu = find_gpu("H100-SXM-80GB").value();
    cluster_.gpus = 8;
    cluster_.gpus_per_node = 8;
    cluster_.nic_bandwidth = cluster_.gpu.nic_bandwidth;
    cluster_.nvlink_bandwidth = cluster_.gpu.nvlink_bandwidth;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  std::string path_;
  ClusterSpec cluster_;
};

TEST_F(Calibrated, EachSourceTier) {
  auto m = CalibratedCostModel::make(path_, cluster_);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  // measured: an exact shape gives its time back
  OpCost c = m.value()->compute(gemm_op("g", 4096, 4096, 4096, DType::kBF16, false));
  EXPECT_EQ(c.source, CostSource::kMeasured);
  EXPECT_NEAR(c.time.us_f(), gemm_us(4096, 4096, 4096), 1e-3);
  // interpolated: a shape between measured sizes, within 5% of the true curve
  c = m.value()->compute(gemm_op("g", 3000, 3000, 3000, DType::kBF16, false));
  EXPECT_EQ(c.source, CostSource::kInterpolated);
  EXPECT_NEAR(c.time.us_f(), gemm_us(3000, 3000, 3000), 0.05 * gemm_us(3000, 3000, 3000));
  // fitted: beyond the largest measured GEMM the affine fit recovers the formula
  c = m.value()->compute(gemm_op("g", 16384, 16384, 16384, DType::kBF16, false));
  EXPECT_EQ(c.source, CostSource::kFitted);
  EXPECT_NEAR(c.time.us_f(), gemm_us(16384, 16384, 16384), 1e-3 * gemm_us(16384, 16384, 16384));
  // default: no attention was measured
  OpDesc attn;
  attn.cls = OpClass::kAttention;
  attn.flops = Flops{1e12};
  EXPECT_EQ(m.value()->compute(attn).source, CostSource::kDefault);
  // collectives: a measured group, between sizes -> interpolated; a group of 64 -> fitted
  OpDesc ar = collective_op("ar", CollKind::kAllReduce, int64_t{3} << 20, 0);
  c = m.value()->collective(ar, GroupShape{8, 8, 1});
  EXPECT_EQ(c.source, CostSource::kInterpolated);
  EXPECT_NEAR(c.time.us_f(), ar_us(int64_t{3} << 20, 8), 0.05 * ar_us(int64_t{3} << 20, 8));
  c = m.value()->collective(ar, GroupShape{64, 64, 1});
  EXPECT_EQ(c.source, CostSource::kFitted);
  EXPECT_NEAR(c.time.us_f(), ar_us(int64_t{3} << 20, 64), 1e-3 * ar_us(int64_t{3} << 20, 64));
  bool noted = false;
  for (const auto& n : m.value()->notes()) noted = noted || n.find("measured up to 8") != std::string::npos;
  EXPECT_TRUE(noted) << "the group-size extrapolation must leave a note";
}

// A database whose time is denormal (written before import refused times under 1 ns, or by
// hand) once priced a GEMM at NaN seconds and aborted the run; such a point is left out and the
// rest price as before, every time finite.
TEST_F(Calibrated, UnusableTimesAreLeftOut) {
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw, "UPDATE op_measurements SET time_us = 1e-300, min_us = 0 WHERE m = 1024", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
  }
  auto m = CalibratedCostModel::make(path_, cluster_);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  for (int64_t s : {512, 1500, 3000, 4096, 16384}) {
    const OpCost c = m.value()->compute(gemm_op("g", s, s, s, DType::kBF16, false));
    EXPECT_TRUE(std::isfinite(c.time.us_f())) << s;
    if (s >= 3000) EXPECT_NEAR(c.time.us_f(), gemm_us(s, s, s), 0.05 * gemm_us(s, s, s)) << s;
  }
}

// Host copies (activation offload) are priced from measured copies of the same direction only:
// 2 us + bytes / 50 GB/s device to host, 3 us + bytes / 40 GB/s host to device.
TEST_F(Calibrated, OffloadCopiesByDirection) {
  auto copy_us = [](bool d2h, int64_t b) { return d2h ? 2 + b / 50e9 * 1e6 : 3 + b / 40e9 * 1e6; };
  std::vector<std::string> lines;
  for (bool d2h : {true, false})
    for (int64_t b = int64_t{1} << 20; b <= int64_t{1} << 28; b *= 4) {
      char l[512];
      std::snprintf(l, sizeof l,
                    R"({"kind": "op", %s, "op": {"class": "offload", "name": "offload.sweep.%s", "bytes": %lld}, "time_us": %.6f, "min_us": %.6f, "runs": 50, "source": "test"})",
                    kDev, d2h ? "d2h" : "h2d", (long long)b, copy_us(d2h, b), copy_us(d2h, b));
      lines.push_back(l);
    }
  auto db = CalibrationDb::open(path_, false);
  ASSERT_TRUE(db.ok()) << db.status().to_string();
  auto st = db.value()->import_lines(lines, "synthetic copies");
  ASSERT_TRUE(st.ok()) << st.status().to_string();
  auto m = CalibratedCostModel::make(path_, cluster_);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  auto copy = [](bool d2h, int64_t b) {
    OpDesc o;
    o.cls = OpClass::kOffload;
    o.name = d2h ? "offload.activations.d2h" : "offload.activations.h2d";
    o.bytes = Bytes{b};
    return o;
  };
  for (bool d2h : {true, false}) {
    // between measured sizes: interpolated, within 5% of the formula
    const int64_t mid = int64_t{3} << 22;
    OpCost c = m.value()->compute(copy(d2h, mid));
    EXPECT_EQ(c.source, CostSource::kInterpolated) << d2h;
    EXPECT_NEAR(c.time.us_f(), copy_us(d2h, mid), 0.05 * copy_us(d2h, mid)) << d2h;
    // beyond the largest: the affine fit gives the formula back
    const int64_t big = int64_t{1} << 32;
    c = m.value()->compute(copy(d2h, big));
    EXPECT_EQ(c.source, CostSource::kFitted) << d2h;
    EXPECT_NEAR(c.time.us_f(), copy_us(d2h, big), 1e-3 * copy_us(d2h, big)) << d2h;
  }
  // A copy is not priced from the other direction's points, nor from memory-bound kernels.
  EXPECT_GT(m.value()->compute(copy(false, int64_t{1} << 28)).time.us_f(),
            1.2 * m.value()->compute(copy(true, int64_t{1} << 28)).time.us_f());
}

TEST_F(Calibrated, OffloadNameWithoutDirectionIsRejected) {
  const std::string line = std::string(R"({"kind": "op", )") + kDev +
                           R"(, "op": {"class": "offload", "name": "offload.x", "bytes": 1024}, "time_us": 1, "min_us": 1, "runs": 5, "source": "t"})";
  auto db = CalibrationDb::open(path_, false);
  ASSERT_TRUE(db.ok());
  auto st = db.value()->import_lines({line}, "bad");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().to_string().find("/op/name"), std::string::npos) << st.status().to_string();
  EXPECT_NE(st.status().to_string().find(".d2h"), std::string::npos) << st.status().to_string();
}

TEST_F(Calibrated, WrongGpuIsAClearError) {
  ClusterSpec a100 = cluster_;
  a100.gpu = find_gpu("A100-SXM-80GB").value();
  auto m = CalibratedCostModel::make(path_, a100);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().to_string().find("NVIDIA H100 80GB HBM3"), std::string::npos) << m.status().to_string();
}

TEST_F(Calibrated, PredictSaysWhereCostsCameFrom) {
  auto s = load_embedded_quickstart({});
  ASSERT_TRUE(s.ok());
  s.value().options.calibration = path_;
  auto p = predict(s.value(), {});
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  bool gemm_calibrated = false, attention_default = false;
  for (const auto& r : p->sources) {
    if (r.what == "gemm" && r.source != CostSource::kDefault) gemm_calibrated = true;
    if (r.what == "attention" && r.source == CostSource::kDefault) attention_default = true;
  }
  EXPECT_TRUE(gemm_calibrated);
  EXPECT_TRUE(attention_default);
  EXPECT_EQ(p->calibration, path_);
}

// The flow-level network takes its link figures from the database where it has points: the
// synthetic all-reduces in a node follow alpha 4 us per step and 400 GB/s, so the fit gives
// those back for all-reduce, and the kinds and spans without points keep the default's.
TEST_F(Calibrated, FlowLinksComeFromTheFits) {
  auto m = CalibratedCostModel::make(path_, cluster_);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  auto eff = default_efficiencies("hopper");
  ASSERT_TRUE(eff.ok());
  const DefaultCostModel dm(cluster_, eff.value());
  const LinkParams ar = m.value()->links(CollKind::kAllReduce), def = dm.links(CollKind::kAllReduce);
  EXPECT_NEAR(ar.intra_alpha.us_f(), 4.0, 1e-3);
  EXPECT_NEAR(ar.intra_bw.GBps_f(), 400.0, 1e-3);
  EXPECT_NE(def.intra_bw.GBps_f(), ar.intra_bw.GBps_f());   // the test would not see a default
  EXPECT_EQ(ar.inter_bw, def.inter_bw);                     // no points across nodes
  EXPECT_EQ(ar.inter_alpha, def.inter_alpha);
  const LinkParams ag = m.value()->links(CollKind::kAllGather), ag_def = dm.links(CollKind::kAllGather);
  EXPECT_EQ(ag.intra_bw, ag_def.intra_bw);                  // no all-gather points
  EXPECT_EQ(ag.intra_alpha, ag_def.intra_alpha);
  EXPECT_EQ(m.value()->p2p_links().intra_bw, dm.p2p_links().intra_bw);
  EXPECT_DOUBLE_EQ(m.value()->flow_efficiency(), eff.value().nic);
  bool noted = false;
  for (const auto& n : m.value()->notes()) noted |= n.find("flow links: all-reduce in a node") != std::string::npos;
  EXPECT_TRUE(noted);

  // TP 8 in one node: its all-reduces priced by flows at the fitted figures agree with the
  // analytic mode's prices from the same points (interpolated), and differ from flows at the
  // default's figures.
  auto s = load_embedded_quickstart({"parallel.tp=8", "parallel.dp=1", "parallel.zero=0", "model.layers=4",
                                     "training.global_batch=8"});
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  auto analytic = s.value();
  analytic.options.calibration = path_;
  auto flow = analytic;
  flow.options.network_mode = "flow";
  auto flow_default = s.value();
  flow_default.options.network_mode = "flow";
  auto pa = predict(analytic, {}), pf = predict(flow, {}), pd = predict(flow_default, {});
  ASSERT_TRUE(pa.ok()) << pa.status().to_string();
  ASSERT_TRUE(pf.ok()) << pf.status().to_string();
  ASSERT_TRUE(pd.ok()) << pd.status().to_string();
  const double a = pa->step_time.seconds(), f = pf->step_time.seconds(), d = pd->step_time.seconds();
  EXPECT_NEAR(f, a, 0.002 * a) << "flow " << f << " analytic " << a;
  // default flows price the TP all-reduces differently (by more than the tolerance above)
  EXPECT_GT(std::abs(d - f), 0.004 * a) << "default flows " << d << " calibrated flows " << f;
}

TEST_F(Calibrated, PreferredCollectiveSourceDisplacesOthersOfTheSamePoint) {
  // A host timed with threads and with MPI processes: the same all-reduce point both ways, and
  // a second size with threads only.
  const std::string dev =
      R"("device": {"name": "host-cpu test", "driver": "", "cuda": "", "nccl": "", "cudnn": "", "host": "h", "date": "2026-11-01T00:00:00Z", "gpus": 2})";
  auto line = [&](int64_t bytes, double us, const std::string& source) {
    return R"({"kind": "collective", )" + dev + R"(, "coll": {"kind": "all-reduce", "dtype": "bf16", "bytes": )" +
           std::to_string(bytes) + R"(, "group_size": 2, "per_node": 2, "nodes": 1}, "time_us": )" +
           std::to_string(us) + R"(, "algbw_GBps": 1, "busbw_GBps": 1, "runs": 7, "source": ")" + source + R"("})";
  };
  const std::string threads = "trainsim calibrate --host (shared-memory threads, float buffers)";
  const std::string mpi = "trainsim calibrate --host (MPI processes, Open MPI v4.1.4)";
  {
    auto db = CalibrationDb::open(path_, false);
    ASSERT_TRUE(db.ok()) << db.status().to_string();
    auto st = db.value()->import_lines({line(131072, 100, threads), line(131072, 300, mpi), line(3072, 20, threads)}, "host");
    ASSERT_TRUE(st.ok()) << st.status().to_string();
  }
  const OpDesc ar = collective_op("ar", CollKind::kAllReduce, 131072, 0);
  auto by_mpi = CalibratedCostModel::make_for_device(path_, cluster_, "host-cpu test", "MPI processes");
  ASSERT_TRUE(by_mpi.ok()) << by_mpi.status().to_string();
  EXPECT_NEAR(by_mpi.value()->collective(ar, GroupShape{2, 2, 1}).time.us_f(), 300, 1e-6);
  EXPECT_EQ(by_mpi.value()->collective_sources(), (std::vector<std::string>{mpi, threads}));
  auto by_threads = CalibratedCostModel::make_for_device(path_, cluster_, "host-cpu test", "shared-memory threads");
  ASSERT_TRUE(by_threads.ok()) << by_threads.status().to_string();
  EXPECT_NEAR(by_threads.value()->collective(ar, GroupShape{2, 2, 1}).time.us_f(), 100, 1e-6);
  EXPECT_EQ(by_threads.value()->collective_sources(), (std::vector<std::string>{threads, threads}));
  auto any = CalibratedCostModel::make_for_device(path_, cluster_, "host-cpu test");   // no preference: all kept
  ASSERT_TRUE(any.ok()) << any.status().to_string();
  EXPECT_EQ(any.value()->collective_sources().size(), 3u);
}

TEST(PickDevices, FamilyThenMemoryAndPooled) {
  std::vector<DeviceInfo> d(4);
  d[0].name = "NVIDIA A100-SXM4-80GB";
  d[1].name = "NVIDIA H100 PCIe";
  d[2].name = "NVIDIA H100 80GB HBM3";
  d[3].name = "NVIDIA H100 80GB HBM3";   // the same GPU type from another host or tool
  EXPECT_EQ(pick_devices(d, "H100-SXM-80GB"), (std::vector<int>{2, 3}));
  EXPECT_EQ(pick_devices(d, "A100-SXM-80GB"), (std::vector<int>{0}));
  EXPECT_TRUE(pick_devices(d, "B200-SXM-180GB").empty());
}

}  // namespace
}  // namespace trainsim
