// compare-trace (scenarios/compare_trace.h): a synthetic torch.profiler trace with known kernel
// times gives exactly those per-class totals, step time, exposed communication and idle time
// (closed form below); the simulated side obeys the same definitions; the committed sample trace
// runs end to end; bad input gives clear errors.
#include "scenarios/compare_trace.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "calibrate/torch_trace.h"
#include "reports/compare_trace_report.h"
#include "reports/html_report.h"
#include "scenarios/loader.h"
#include "scenarios/predict.h"

namespace trainsim {
namespace {

using Json = nlohmann::json;

constexpr double kBase = 1718000000000.0;   // us; offsets below are whole microseconds

// A trace builder: every kernel gets a launch (cuda_runtime) at `launch` and, optionally, a
// launching cpu op.
struct TraceBuilder {
  Json events = Json::array();
  int corr = 1000;
  int ext = 1;
  void step(int n, double ts, double dur, bool gpu = false) {
    events.push_back({{"ph", "X"}, {"cat", gpu ? "gpu_user_annotation" : "user_annotation"},
                      {"name", "ProfilerStep#" + std::to_string(n)}, {"pid", gpu ? 0 : 1}, {"tid", gpu ? 7 : 1},
                      {"ts", kBase + ts}, {"dur", dur}});
  }
  void kernel(const std::string& name, double launch, double ts, double dur, int stream = 7, int device = 0,
              const std::string& op = "", const Json& op_args = Json::object()) {
    const int c = ++corr, e = ++ext;
    if (!op.empty()) {
      Json a = op_args;
      a["External id"] = e;
      events.push_back({{"ph", "X"}, {"cat", "cpu_op"}, {"name", op}, {"pid", 1}, {"tid", 1},
                        {"ts", kBase + launch - 0.5}, {"dur", 1.0}, {"args", a}});
    }
    events.push_back({{"ph", "X"}, {"cat", "cuda_runtime"}, {"name", "cudaLaunchKernel"}, {"pid", 1}, {"tid", 1},
                      {"ts", kBase + launch}, {"dur", 0.25}, {"args", {{"External id", e}, {"correlation", c}}}});
    events.push_back({{"ph", "X"}, {"cat", "kernel"}, {"name", name}, {"pid", device}, {"tid", stream},
                      {"ts", kBase + ts}, {"dur", dur},
                      {"args", {{"External id", e}, {"device", device}, {"stream", stream}, {"correlation", c}}}});
  }
  std::string text(int rank = 0, int world = 2) const {
    Json root = {{"schemaVersion", 1},
                 {"deviceProperties", Json::array({{{"id", 0}, {"name", "NVIDIA H100 80GB HBM3"}}})},
                 {"distributedInfo", {{"backend", "nccl"}, {"rank", rank}, {"world_size", world}}},
                 {"traceEvents", events}};
    return root.dump();
  }
};

// Step 1 (CPU [0, 500)) launches one GEMM; step 2 (CPU [500, 1000]) launches the rest, on the GPU:
//   compute (stream 7)   embedding [590,600) gemm [600,700) attention [700,760) norm [780,800)
//                        elementwise [800,830) optimizer [950,1000) loss [1000,1010)
//                        unclassified [1010,1015)
//   NCCL (stream 20)     all-reduce [650,750) all-gather [820,900)
//   plus one kernel on device 1 (left out).
// Window (no GPU annotation): first start 590 to last end 1015: step = 425 us.
//   K = [590,760) u [780,830) u [950,1015)            = 170 + 50 + 65 = 285
//   C = [650,750) u [820,900)                          = 100 + 80      = 180
//   K u C = [590,760) u [780,900) u [950,1015)         = 170 + 120 + 65 = 355
//   exposed = |K u C| - |K| = 70 (the all-gather after 830); idle = 425 - 355 = 70
//   (760..780 and 900..950).
TraceBuilder synthetic(bool gpu_annotation) {
  TraceBuilder b;
  b.step(1, 0, 500);
  b.step(2, 500, 500);
  if (gpu_annotation) b.step(2, 580, 440, /*gpu=*/true);   // [580, 1020]: 10 + 5 us more idle
  b.kernel("sm90_xmma_gemm_bf16bf16_bf16f32", 50, 100, 100);   // step 1
  b.kernel("void at::native::indexSelectLargeIndex<c10::BFloat16>", 501, 590, 10, 7, 0, "aten::embedding");
  b.kernel("sm90_xmma_gemm_bf16bf16_bf16f32", 502, 600, 100);
  b.kernel("ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevComm*, unsigned long, ncclWork*)", 503, 650, 100, 20);
  b.kernel("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits>", 504, 700, 60);
  b.kernel("void at::native::rms_norm_kernel<c10::BFloat16>", 505, 780, 20);
  b.kernel("void at::native::vectorized_elementwise_kernel<4, silu>", 506, 800, 30);
  b.kernel("ncclDevKernel_Generic(ncclDevComm*, unsigned long, ncclWork*)", 507, 820, 80, 20, 0, "record_param_comms",
           {{"Collective name", "_allgather_base"}});
  b.kernel("void at::native::multi_tensor_apply_kernel<FusedAdam>", 508, 950, 50);
  b.kernel("void at::native::cunn_SoftMaxForward<4, float>", 509, 1000, 10, 7, 0, "aten::_log_softmax");
  b.kernel("void at::native::reduce_kernel<512, 1>", 510, 1010, 5);
  b.kernel("sm90_xmma_gemm_bf16bf16_bf16f32", 511, 600, 100, 7, /*device=*/1);
  return b;
}

Result<TraceTimeline> measure(const std::string& text, int64_t step = -1) {
  auto t = parse_torch_trace(text, "synthetic.json");
  if (!t.ok()) return t.status();
  return measure_trace(*t.value(), "synthetic.json", step);
}

std::map<std::string, std::pair<Time, int>> by_class(const TraceTimeline& tl) {
  std::map<std::string, std::pair<Time, int>> m;
  for (const auto& c : tl.classes) m[c.what] = {c.time, c.kernels};
  return m;
}

TEST(CompareTrace, SyntheticTraceGivesTheClosedFormFigures) {
  auto tl = measure(synthetic(false).text());
  ASSERT_TRUE(tl.ok()) << tl.status().to_string();
  EXPECT_EQ(tl->step_number, 2);
  EXPECT_EQ(tl->step, Time::us(425));
  EXPECT_EQ(tl->busy_compute, Time::us(285));
  EXPECT_EQ(tl->busy_comm, Time::us(180));
  EXPECT_EQ(tl->exposed_comm, Time::us(70));
  EXPECT_EQ(tl->idle, Time::us(70));
  const auto m = by_class(tl.value());
  const std::map<std::string, std::pair<Time, int>> want = {
      {"gemm", {Time::us(100), 1}},         {"attention", {Time::us(60), 1}},   {"elementwise", {Time::us(30), 1}},
      {"norm", {Time::us(20), 1}},          {"embedding", {Time::us(10), 1}},   {"loss", {Time::us(10), 1}},
      {"optimizer", {Time::us(50), 1}},     {"all-reduce", {Time::us(100), 1}}, {"all-gather", {Time::us(80), 1}},
      {"unclassified", {Time::us(5), 1}}};
  EXPECT_EQ(m, want);
  // Row order: op classes, collective kinds, unclassified last.
  EXPECT_EQ(tl->classes.front().what, "gemm");
  EXPECT_EQ(tl->classes.back().what, "unclassified");
  const TraceKernelStats& s = tl->stats;
  EXPECT_EQ(s.kernels, 12);
  EXPECT_EQ(s.other_device, 1);
  EXPECT_EQ(s.outside_step, 1);
  EXPECT_EQ(s.in_step, 10);
  EXPECT_EQ(s.mapped, 9);
  EXPECT_EQ(s.unclassified, 1);
  EXPECT_EQ(s.comm_unknown_kind, 0);
}

// Kernel names to classes; fp8 cast kernels count as elementwise, as the plan's fp8 casts do.
TEST(CompareTrace, KernelNamesClassify) {
  EXPECT_EQ(classify_kernel_name("nvjet_sm90_tst_256x128_64x4_1x2_h_bz_coopA_NNT"), KernelClass::kGemm);
  EXPECT_EQ(classify_kernel_name("void at::native::vectorized_elementwise_kernel<4, silu>"), KernelClass::kElementwise);
  EXPECT_EQ(classify_kernel_name("void transformer_engine::detail::cast_transpose_kernel<8, float, bf16, fp8e4m3>"),
            KernelClass::kElementwise);
  EXPECT_EQ(classify_kernel_name("void transformer_engine::quantize_kernel<bf16, fp8e4m3>"), KernelClass::kElementwise);
  EXPECT_EQ(classify_kernel_name("triton_red_fused_abs_amax_0"), KernelClass::kElementwise);
  EXPECT_EQ(classify_kernel_name("void some::other_kernel<int>"), KernelClass::kUnknown);
}

TEST(CompareTrace, GpuAnnotationSetsTheWindow) {
  auto tl = measure(synthetic(true).text());
  ASSERT_TRUE(tl.ok()) << tl.status().to_string();
  // [580, 1020]: 440 us; the busy time is unchanged, so idle grows by the 10 + 5 us margins.
  EXPECT_EQ(tl->step, Time::us(440));
  EXPECT_EQ(tl->exposed_comm, Time::us(70));
  EXPECT_EQ(tl->idle, Time::us(85));
  EXPECT_NE(tl->window.find("on the GPU"), std::string::npos) << tl->window;
}

TEST(CompareTrace, ChosenStepAndWholeSpan) {
  auto s1 = measure(synthetic(false).text(), 1);
  ASSERT_TRUE(s1.ok()) << s1.status().to_string();
  EXPECT_EQ(s1->step, Time::us(100));   // its one GEMM
  EXPECT_EQ(s1->idle, Time::zero());
  EXPECT_EQ(s1->stats.outside_step, 10);

  // Without ProfilerStep annotations: every kernel of the device, [100, 1015).
  TraceBuilder b = synthetic(false);
  Json ev = Json::array();
  for (const auto& e : b.events)
    if (e["cat"] != "user_annotation") ev.push_back(e);
  b.events = ev;
  auto all = measure(b.text());
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  EXPECT_EQ(all->step_number, -1);
  EXPECT_EQ(all->step, Time::us(915));
  EXPECT_EQ(all->idle, Time::us(70 + 390));   // also 200..590
  EXPECT_EQ(by_class(all.value())["gemm"], std::make_pair(Time::us(200), 2));
}

const char* kTraceTiny = R"({"name": "trace-tiny",
  "model": {"name": "t", "layers": 2, "hidden": 64, "heads": 2, "ffn_hidden": 128, "vocab": 512,
            "activation": "swiglu"},
  "training": {"seq_len": 64, "global_batch": 4, "micro_batch": 1},
  "cluster": {"gpu": "H100-SXM-80GB", "gpus": 2, "gpus_per_node": 2},
  "parallel": {"tp": 2}})";

class CompareTraceFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("trainsim_compare_trace_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  Scenario tiny() {
    auto s = load_scenario_text(kTraceTiny, "trace-tiny.json");
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return s.value();
  }
  std::filesystem::path dir_;
};

// The simulated side obeys the same definitions: compute rows are the summed task times of the
// rank's program, and busy compute + exposed comm + idle = step.
TEST_F(CompareTraceFiles, SimulatedSideFollowsTheSameDefinitions) {
  const std::string trace = write("t.json", synthetic(false).text(/*rank=*/1));
  CompareTraceOptions o;
  o.rank = 1;
  auto c = compare_trace(tiny(), trace, o);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->ranks, 2);
  EXPECT_EQ(c->measured, Time::us(425));
  // Rank 1 of 2, as the trace says: the one note is the kernel on device 1.
  ASSERT_EQ(c->notes.size(), 1u);
  EXPECT_NE(c->notes[0].find("other devices"), std::string::npos) << c->notes[0];

  PredictOptions po;
  po.references = false;
  auto p = predict(tiny(), po);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(c->predicted, p->step_time);
  const Plan& plan = *p->plan;
  std::map<std::string, Time> want;
  for (const Task& t : plan.programs[plan.program_of_rank[1]].tasks)
    if (t.kind == TaskKind::kCompute) want[to_string(plan.ops[t.op].cls)] += t.dur;
  Time busy_compute;
  for (const TraceClassRow& r : c->classes) {
    if (want.count(r.what)) {
      EXPECT_TRUE(r.predicted_present);
      EXPECT_EQ(r.predicted, want[r.what]) << r.what;
      EXPECT_NE(r.source, "-") << r.what;
      busy_compute += r.predicted;   // one compute stream: the union is the sum
    }
  }
  EXPECT_GT(busy_compute, Time::zero());
  EXPECT_EQ(busy_compute + c->predicted_exposed + c->predicted_idle, c->predicted);
  // The TP all-reduces are on the rank's compute stream: all of their time is exposed.
  Time allreduce;
  for (const TraceClassRow& r : c->classes)
    if (r.what == "all-reduce") allreduce = r.predicted;
  EXPECT_GT(allreduce, Time::zero());
  EXPECT_EQ(c->predicted_exposed, allreduce);
  // A measured row the plan lacks has no prediction; a predicted one the trace lacks no measurement.
  for (const TraceClassRow& r : c->classes) {
    if (r.what == "all-gather") {
      EXPECT_FALSE(r.predicted_present);
    }
    if (r.what == "unclassified") {
      EXPECT_EQ(r.source, "-");
    }
  }
  // The spans the page draws add up to the rows on both sides, a span per kernel (task).
  std::map<std::string, Time> pred_sum, meas_sum;
  for (const ClassSpan& x : c->predicted_spans) pred_sum[trace_class_rows()[x.row]] += x.end - x.start;
  for (const ClassSpan& x : c->measured_side.spans) meas_sum[trace_class_rows()[x.row]] += x.end - x.start;
  for (const TraceClassRow& r : c->classes) {
    EXPECT_EQ(pred_sum[r.what], r.predicted) << r.what;
    EXPECT_EQ(meas_sum[r.what], r.measured) << r.what;
  }
  EXPECT_EQ(c->measured_side.spans.size(), 10u);   // the step's kernels (in_step)
  for (const ClassSpan& x : c->measured_side.spans)
    EXPECT_EQ(x.comm, trace_class_rows()[x.row] == "all-reduce" || trace_class_rows()[x.row] == "all-gather");
  const std::string html = compare_trace_html(c.value(), 0.05, "test");
  for (const char* lane : {">simulated compute</text>", ">simulated comm</text>", ">measured compute</text>",
                           ">measured comm</text>"})
    EXPECT_NE(html.find(lane), std::string::npos) << lane;
  EXPECT_NE(html.find("<pre>" + html_escape(format_trace_comparison(c.value(), 0.05, "test")) + "</pre>"),
            std::string::npos);
  size_t bars = 0;   // two per class row: predicted, measured
  for (size_t at = html.find("class=\"part\""); at != std::string::npos; at = html.find("class=\"part\"", at + 1)) ++bars;
  size_t zero = 0;   // a side with no time draws no bar
  for (const TraceClassRow& r : c->classes) zero += (r.predicted == Time::zero()) + (r.measured == Time::zero());
  EXPECT_EQ(bars, 2 * c->classes.size() - zero);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(compare_trace_html(c.value(), 0.05, "test"), html);
  const auto j = compare_trace_json(c.value(), 0.05, "test");
  EXPECT_EQ(j["kind"], "compare-trace");
  EXPECT_EQ(j["kernels"]["mapped"], 9);
  EXPECT_EQ(j["kernels"]["unmapped"]["other_device"], 1);
  EXPECT_DOUBLE_EQ(j["shares"]["measured"]["exposed_comm"].get<double>(), 70.0 / 425.0);
  EXPECT_DOUBLE_EQ(j["shares"]["measured"]["bubble"].get<double>(), 70.0 / 425.0);
  const std::string text = format_trace_comparison(c.value(), 0.05, "test");
  EXPECT_NE(text.find("idle (bubble)"), std::string::npos) << text;
  EXPECT_NE(text.find("exposed communication"), std::string::npos) << text;
}

TEST_F(CompareTraceFiles, SampleTraceRunsEndToEnd) {
  auto s = load_scenario_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/quickstart.json", {});
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  auto c = compare_trace(s.value(), std::string(TRAINSIM_SOURCE_DIR) + "/tests/calibrate/data/torch_trace_llama_block.json",
                         {});
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->measured_side.step_number, 2);
  EXPECT_EQ(c->measured_side.device_name, "NVIDIA H100 80GB HBM3");
  EXPECT_GT(c->measured, Time::zero());
  EXPECT_GT(c->predicted, Time::zero());
  EXPECT_GT(c->measured_side.stats.mapped, 0);
  EXPECT_EQ(c->measured_side.stats.in_step,
            c->measured_side.stats.mapped + c->measured_side.stats.unclassified + c->measured_side.stats.comm_unknown_kind);
  bool gemm = false;
  for (const auto& r : c->classes) gemm |= r.what == "gemm" && r.predicted_present && r.measured_present;
  EXPECT_TRUE(gemm);
  EXPECT_FALSE(format_trace_comparison(c.value(), 0.05, "test").empty());
}

TEST_F(CompareTraceFiles, BadInputGivesClearErrors) {
  const Scenario s = tiny();
  auto err = [&](const std::string& path, CompareTraceOptions o = {}) {
    auto c = compare_trace(s, path, o);
    EXPECT_FALSE(c.ok());
    return c.ok() ? std::string() : c.status().to_string();
  };
  EXPECT_NE(err((dir_ / "missing.json").string()).find("cannot open the trace file"), std::string::npos);
  EXPECT_NE(err(write("x.json", "this is not json")).find("not JSON"), std::string::npos);
  // A committed trace still gzip-compressed (calibrate/data/h100/traces/*.json.gz): says so.
  const std::string gz = err(write("t.json.gz", std::string("\x1f\x8b\x08\x00rest", 8)));
  EXPECT_NE(gz.find("a gzip file"), std::string::npos) << gz;
  EXPECT_NE(gz.find("zcat"), std::string::npos) << gz;
  EXPECT_NE(err(write("o.json", R"({"schemaVersion": 1})")).find("/traceEvents"), std::string::npos);
  TraceBuilder cpu_only;
  cpu_only.step(1, 0, 10);
  EXPECT_NE(err(write("c.json", cpu_only.text())).find("no GPU kernels"), std::string::npos);
  const std::string good = write("g.json", synthetic(false).text());
  CompareTraceOptions far;
  far.rank = 7;
  const std::string r = err(good, far);
  EXPECT_NE(r.find("--rank"), std::string::npos) << r;
  EXPECT_NE(r.find("2 ranks"), std::string::npos) << r;
  CompareTraceOptions step;
  step.step = 9;
  const std::string st = err(good, step);
  EXPECT_NE(st.find("ProfilerStep#9"), std::string::npos) << st;
  EXPECT_NE(st.find("steps 1, 2"), std::string::npos) << st;
}

}  // namespace
}  // namespace trainsim
