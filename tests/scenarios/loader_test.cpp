// Scenario loader: every shipped scenario loads; bad scenarios fail with an error that names the
// path, the bad value and what is accepted; all errors of a file come at once; overrides apply;
// no input crashes the loader.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "models/compiler.h"
#include "models/spec_parse.h"
#include "scenarios/loader.h"
#include "scenarios/predict.h"
#include "calibrate/cost_model.h"
#include "topologies/hardware.h"

namespace trainsim {
namespace {

using json = nlohmann::json;

// A small valid scenario; tests mutate one thing at a time.
json base_doc() {
  return json::parse(R"({
    "name": "t",
    "model": {"name": "llama3-8b"},
    "training": {"seq_len": 4096, "global_batch": 64, "micro_batch": 1, "precision": "bf16"},
    "cluster": {"gpu": "H100-SXM-80GB", "gpus": 8, "gpus_per_node": 8, "nic_bandwidth": "400Gbps"},
    "parallel": {"tp": 1, "pp": 1, "dp": 8}
  })");
}

Result<Scenario> load(const json& doc, const std::vector<std::string>& ov = {}) {
  return load_scenario_text(doc.dump(), "test.json", ov);
}

std::string all_errors(const Result<Scenario>& r) { return r.ok() ? "" : r.status().to_string(); }

// Asserts there is an error at `path` whose value contains `value` and whose message contains
// every one of `words`.
void expect_error(const Result<Scenario>& r, const std::string& path, const std::string& value,
                  std::initializer_list<std::string> words, const std::string& file = "test.json") {
  ASSERT_FALSE(r.ok()) << "expected an error at " << path;
  for (const auto& e : r.status().errors()) {
    if (e.path != path) continue;
    EXPECT_EQ(e.file, file) << e.to_string();
    EXPECT_NE(e.value.find(value), std::string::npos) << "value: " << e.to_string();
    for (const auto& w : words)
      EXPECT_NE(e.message.find(w), std::string::npos) << "missing \"" << w << "\" in: " << e.to_string();
    return;
  }
  ADD_FAILURE() << "no error at " << path << "; got:\n" << r.status().to_string();
}

TEST(Loader, BaseDocumentLoads) {
  auto r = load(base_doc());
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->model.layers, 32);
  EXPECT_EQ(r->model.head_dim, 128);
  EXPECT_EQ(r->parallel.dp, 8);
  EXPECT_EQ(r->cluster.gpu.name, "H100-SXM-80GB");
  EXPECT_DOUBLE_EQ(r->cluster.nic_bandwidth.Bps(), 50e9);  // 400 Gbit/s = 50 GB/s
  EXPECT_EQ(r->file, "test.json");
}

TEST(Loader, EveryShippedScenarioLoads) {
  int n = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios")) {
    if (entry.path().extension() != ".json") continue;
    ++n;
    auto r = load_scenario_file(entry.path().string());
    EXPECT_TRUE(r.ok()) << entry.path() << ":\n" << all_errors(r);
    if (r.ok()) {
      const auto& p = r->parallel;
      EXPECT_EQ(r->cluster.gpus, p.tp * p.pp * p.dp * p.cp) << entry.path();
    }
  }
  EXPECT_GE(n, 5);
}

TEST(Loader, ShippedScenarioContents) {
  auto q = load_embedded_quickstart();
  ASSERT_TRUE(q.ok()) << all_errors(q);
  EXPECT_EQ(q->file, "<embedded>");
  EXPECT_EQ(q->model.name, "llama3-8b");
  EXPECT_EQ(q->parallel.zero, 3);
  EXPECT_EQ(q->parallel.recompute, Recompute::kSelective);
  EXPECT_EQ(q->parallel.dp_bucket_mb, 40);

  auto big = load_scenario_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/llama3_405b_16k.json");
  ASSERT_TRUE(big.ok()) << all_errors(big);
  ASSERT_EQ(big->parallel.layers_per_stage.size(), 16u);
  EXPECT_EQ(big->parallel.layers_per_stage.front(), 7);
  EXPECT_EQ(big->parallel.layers_per_stage.back(), 7);
  EXPECT_EQ(big->cluster.scale_out, ScaleOut::kRoCE);
  EXPECT_TRUE(big->parallel.sequence_parallel);
  EXPECT_EQ(big->cluster.nodes(), 2048);
}

TEST(Loader, DefaultsAreFilled) {
  json d = base_doc();
  d["parallel"] = json::object();          // everything default, dp derived
  d["cluster"].erase("nic_bandwidth");
  d["cluster"].erase("gpus_per_node");
  d["training"].erase("micro_batch");
  d["training"].erase("precision");
  auto r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->parallel.dp, 8);
  EXPECT_EQ(r->parallel.tp, 1);
  EXPECT_EQ(r->parallel.schedule, Schedule::k1F1B);
  EXPECT_EQ(r->parallel.recompute, Recompute::kNone);
  EXPECT_EQ(r->parallel.order, "tp-cp-dp-pp");
  EXPECT_EQ(r->training.micro_batch, 1);
  EXPECT_EQ(r->training.precision, DType::kBF16);
  EXPECT_EQ(r->cluster.gpus_per_node, 8);
  EXPECT_DOUBLE_EQ(r->cluster.nic_bandwidth.Bps(), r->cluster.gpu.nic_bandwidth.Bps());
  EXPECT_DOUBLE_EQ(r->cluster.nvlink_bandwidth.Bps(), r->cluster.gpu.nvlink_bandwidth.Bps());
  EXPECT_EQ(r->options.network_mode, "analytic");
  EXPECT_EQ(r->options.seed, 1u);
}

TEST(Loader, InlineModelAndCatalogOverride) {
  json d = base_doc();
  d["model"] = {{"name", "tiny"}, {"layers", 4}, {"hidden", 512}, {"heads", 8}, {"vocab", 1000}};
  auto r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->model.name, "tiny");
  EXPECT_EQ(r->model.kv_heads, 8);
  EXPECT_EQ(r->model.ffn_hidden, 2048);
  EXPECT_EQ(r->model.head_dim, 64);
  EXPECT_EQ(r->model.norm, NormKind::kLayerNorm);

  d["model"] = {{"name", "llama3-70b"}, {"layers", 40}};
  r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->model.layers, 40);
  EXPECT_EQ(r->model.hidden, 8192);
  EXPECT_EQ(r->model.kv_heads, 8);
}

TEST(Loader, UnevenLayersGetBalancedSplit) {
  json d = base_doc();
  d["model"] = {{"name", "llama3-405b"}};
  d["cluster"]["gpus"] = 128;
  d["parallel"] = {{"tp", 8}, {"pp", 16}};
  d["training"]["global_batch"] = 16;
  auto r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  std::vector<int> want(16, 8);
  want.front() = want.back() = 7;
  EXPECT_EQ(r->parallel.layers_per_stage, want);
  EXPECT_EQ(r->parallel.dp, 1);
}

TEST(Loader, SmallJobGetsNodeOfItsSize) {
  json d = base_doc();
  d["cluster"]["gpus"] = 4;
  d["parallel"] = {{"tp", 4}};
  auto r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->cluster.gpus_per_node, 4);
  EXPECT_EQ(r->cluster.nodes(), 1);
}

// ---- bad scenarios -------------------------------------------------------------------------

TEST(LoaderErrors, UnknownKeySuggests) {
  json d = base_doc();
  d["parallel"]["tpp"] = 2;
  expect_error(load(d), "/parallel/tpp", "", {"unknown key", "did you mean \"tp\""});
}

TEST(LoaderErrors, UnknownTopLevelKeySuggests) {
  json d = base_doc();
  d["paralel"] = d["parallel"];
  d.erase("parallel");
  auto r = load(d);
  expect_error(r, "/paralel", "", {"did you mean \"parallel\""});
}

// Without a parallel section a scenario is plain data parallelism over all its GPUs (every key's
// default, dp derived); a parallel section that is not an object is still an error.
TEST(Loader, NoParallelSectionIsDataParallel) {
  json d = base_doc();
  d.erase("parallel");
  auto r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->parallel.tp, 1);
  EXPECT_EQ(r->parallel.pp, 1);
  EXPECT_EQ(r->parallel.dp, 8);
  EXPECT_EQ(r->parallel.zero, 0);
  d["cluster"]["gpus"] = 16;
  d["cluster"]["gpus_per_node"] = 8;
  auto w = load(d);
  ASSERT_TRUE(w.ok()) << all_errors(w);
  EXPECT_EQ(w->parallel.dp, 16);
  d["parallel"] = 3;
  expect_error(load(d), "/parallel", "3", {"expected an object", "got a number"});
}

TEST(LoaderErrors, UnknownKeyWithoutCloseMatchListsKeys) {
  json d = base_doc();
  d["training"]["wibble"] = 1;
  expect_error(load(d), "/training/wibble", "", {"accepted keys", "\"seq_len\"", "\"precision\""});
}

TEST(LoaderErrors, BandwidthMissingUnit) {
  json d = base_doc();
  d["cluster"]["nic_bandwidth"] = "400";
  expect_error(load(d), "/cluster/nic_bandwidth", "\"400\"",
               {"missing unit", "\"400Gbps\" (bits/s)", "\"400GB/s\" (bytes/s)"});
}

TEST(LoaderErrors, BandwidthBareNumber) {
  json d = base_doc();
  d["cluster"]["nvlink_bandwidth"] = 450;
  expect_error(load(d), "/cluster/nvlink_bandwidth", "450", {"missing unit", "450Gbps", "450GB/s"});
}

TEST(LoaderErrors, BandwidthUnknownUnit) {
  json d = base_doc();
  d["cluster"]["nic_bandwidth"] = "400 gigabits";
  expect_error(load(d), "/cluster/nic_bandwidth", "400 gigabits", {"unknown unit", "Gbps", "GB/s"});
}

TEST(LoaderErrors, TpMustDivideHeads) {
  json d = base_doc();
  d["parallel"] = {{"tp", 3}};
  d["cluster"]["gpus"] = 3;
  expect_error(load(d), "/parallel/tp", "3", {"does not divide heads=32", "1, 2, 4 or 8"});
}

TEST(LoaderErrors, TpMustDivideKvHeads) {
  json d = base_doc();
  d["parallel"] = {{"tp", 16}};
  d["cluster"]["gpus"] = 16;
  expect_error(load(d), "/parallel/tp", "16", {"kv_heads=8", "1, 2, 4 or 8"});
}

TEST(LoaderErrors, PipelineDeeperThanLayers) {
  json d = base_doc();
  d["parallel"] = {{"pp", 64}};
  d["cluster"]["gpus"] = 64;
  expect_error(load(d), "/parallel/pp", "64", {"exceeds layers=32", "at least one layer"});
}

TEST(LoaderErrors, GpuCountMismatch) {
  json d = base_doc();
  d["cluster"]["gpus"] = 16;
  expect_error(load(d), "/cluster/gpus", "16",
               {"tp*pp*dp*cp = 1*1*8*1 = 8", "set parallel.dp to 16"});
}

TEST(LoaderErrors, GpusNotMultipleOfModelParallel) {
  json d = base_doc();
  d["cluster"]["gpus"] = 12;
  d["cluster"]["gpus_per_node"] = 4;
  d["parallel"] = {{"tp", 8}};
  expect_error(load(d), "/cluster/gpus", "12", {"not a multiple of tp*pp*cp", "= 8"});
}

TEST(LoaderErrors, GpusNotWholeNodes) {
  json d = base_doc();
  d["cluster"]["gpus"] = 12;
  d["parallel"] = {{"tp", 4}};
  d["training"]["global_batch"] = 3;
  expect_error(load(d), "/cluster/gpus", "12", {"gpus_per_node=8", "8 or 16"});
}

TEST(LoaderErrors, GlobalBatchNotDivisible) {
  json d = base_doc();
  d["training"]["global_batch"] = 60;
  expect_error(load(d), "/training/global_batch", "60",
               {"micro_batch*dp = 1*8 = 8", "use 56 or 64"});
}

TEST(LoaderErrors, UnknownGpuListsAccepted) {
  json d = base_doc();
  d["cluster"]["gpu"] = "H100-SXM-80G";
  expect_error(load(d), "/cluster/gpu", "H100-SXM-80G",
               {"unknown GPU", "did you mean \"H100-SXM-80GB\"", "A100-SXM-80GB"});
}

TEST(LoaderErrors, UnknownModelListsKnown) {
  json d = base_doc();
  d["model"] = {{"name", "llama3-7b"}};
  expect_error(load(d), "/model/name", "llama3-7b",
               {"unknown model", "llama3-70b", "megatron-gpt-1t", "inline"});
}

TEST(LoaderErrors, WrongType) {
  json d = base_doc();
  d["parallel"]["tp"] = "four";
  expect_error(load(d), "/parallel/tp", "\"four\"", {"expected a positive integer", "got a string"});
}

TEST(LoaderErrors, NegativeNumber) {
  json d = base_doc();
  d["training"]["micro_batch"] = -2;
  expect_error(load(d), "/training/micro_batch", "-2", {"too small", "positive integer"});
}

TEST(LoaderErrors, FractionalInteger) {
  json d = base_doc();
  d["parallel"]["dp"] = 8.0;
  expect_error(load(d), "/parallel/dp", "8.0", {"write 8 (no decimal point)"});
}

TEST(LoaderErrors, HugeNumbers) {
  json d = base_doc();
  d["cluster"]["gpus"] = 4294967296ull;
  expect_error(load(d), "/cluster/gpus", "4294967296", {"too large"});
  auto r = load_scenario_text(
      R"({"model":{"name":"llama3-8b"},"training":{"seq_len":99999999999999999999999999,"global_batch":1e300},
          "cluster":{"gpu":"H100-SXM-80GB","gpus":8},"parallel":{}})",
      "test.json");
  expect_error(r, "/training/seq_len", "", {"expected a positive integer"});
  expect_error(r, "/training/global_batch", "", {"expected a positive integer"});
}

// The kind of a wrong value, as the error names it: 2^64 has no fraction, 8.0 a decimal point.
TEST(LoaderErrors, NumbersOfTheWrongKindAreNamedRightly) {
  json d = base_doc();
  d["cluster"]["scale_out"] = 18446744073709551616.0;
  expect_error(load(d), "/cluster/scale_out", "", {"expected a string", "a number outside the integer range"});
  d["cluster"]["scale_out"] = 8.0;
  expect_error(load(d), "/cluster/scale_out", "", {"a number with a decimal point"});
  d["cluster"]["scale_out"] = 8.5;
  expect_error(load(d), "/cluster/scale_out", "", {"a number with a fraction"});
}

TEST(LoaderErrors, NullIsRejected) {
  json d = base_doc();
  d["parallel"]["pp"] = nullptr;
  expect_error(load(d), "/parallel/pp", "null", {"null is not allowed", "remove the key"});
}

TEST(LoaderErrors, SectionOfWrongType) {
  json d = base_doc();
  d["parallel"] = json::array({1, 2});
  expect_error(load(d), "/parallel", "[1,2]", {"expected an object", "\"tp\"", "got an array"});
}

TEST(LoaderErrors, RootNotAnObject) {
  expect_error(load_scenario_text("[1, 2, 3]", "test.json"), "/", "[1,2,3]", {"JSON object"});
  expect_error(load_scenario_text("42", "test.json"), "/", "42", {"JSON object"});
}

// A document nested tens of thousands of levels deep once crashed the loader (the JSON
// library copies a document recursively, a stack frame per level); it is refused before parsing,
// in a file and in a --set value, while the shallow nesting scenarios use still loads.
TEST(LoaderErrors, DeepNestingIsRefusedNotACrash) {
  json d = base_doc();
  std::string deep;
  for (int i = 0; i < 60000; ++i) deep += "{\"a\":";
  deep += "\"x\"" + std::string(60000, '}');
  std::string text = d.dump();
  text.insert(text.size() - 1, ",\"description\":" + deep);
  expect_error(load_scenario_text(text, "test.json"), "", "", {"nested deeper than 64 levels"});
  expect_error(load(d, {"training.seq_len=" + std::string(100000, '[') + std::string(100000, ']')}),
               "/training/seq_len", "", {"nested deeper than 64 levels"}, "--set");
  // 64 levels are fine as far as nesting goes (the field is then the wrong type, an ordinary error).
  std::string ok = "\"x\"";
  for (int i = 0; i < 62; ++i) ok = "[" + ok + "]";
  auto r = load(d, {"training.seq_len=" + ok});
  expect_error(r, "/training/seq_len", "", {"expected a positive integer"}, "--set");
}

// DualPipe counts pp stages only; its message says so instead of an arithmetic with vp.
TEST(LoaderErrors, DualPipeStagesExceedLayers) {
  json d = base_doc();
  d["model"] = json::parse(R"({"name": "tiny", "layers": 2, "hidden": 1024, "heads": 8, "kv_heads": 8,
                               "ffn_hidden": 4096, "vocab": 32000})");
  d["parallel"] = json::parse(R"({"tp": 1, "pp": 4, "dp": 2, "vp": 2, "schedule": "dualpipe"})");
  auto r = load(d);
  expect_error(r, "/parallel/pp", "4", {"pp = 4 stages", "exceeds layers=2"});
  EXPECT_EQ(all_errors(r).find("4*2"), std::string::npos) << all_errors(r);
}

TEST(LoaderErrors, MissingRequired) {
  json d = base_doc();
  d["training"].erase("seq_len");
  d.erase("cluster");
  auto r = load(d);
  expect_error(r, "/training/seq_len", "", {"missing", "tokens per sequence"});
  expect_error(r, "/cluster", "", {"missing section"});
}

// One mistake, one error: a check whose inputs are already wrong is skipped, and a value --set
// changed is blamed (as --set) rather than the file's value it clashes with, with the values of
// it that would fit.
TEST(LoaderErrors, OneMistakeIsOneErrorAndBlamesTheSet) {
  json d = base_doc();
  d["parallel"].erase("dp");
  auto only = [](const Result<Scenario>& r) {
    EXPECT_FALSE(r.ok());
    return r.ok() ? size_t{0} : r.status().errors().size();
  };
  auto r = load(d, {"parallel.tp=3"});   // 3 divides neither heads nor the 8 GPUs
  EXPECT_EQ(only(r), 1u) << all_errors(r);
  expect_error(r, "/parallel/tp", "3", {"does not divide heads=32"}, "--set");
  r = load(d, {"parallel.pp=64"});   // more stages than layers, and 64 does not divide 8 GPUs
  EXPECT_EQ(only(r), 1u) << all_errors(r);
  expect_error(r, "/parallel/pp", "64", {"exceeds layers=32"}, "--set");
  d["cluster"]["gpus"] = 16;
  d["cluster"]["gpus_per_node"] = 8;
  d["training"]["seq_len"] = 6144;
  r = load(d, {"parallel.pp=4", "parallel.cp=3"});   // 12 does not divide 16 GPUs
  EXPECT_EQ(only(r), 1u) << all_errors(r);
  expect_error(r, "/parallel/cp", "3", {"tp*pp*cp = 1*4*3 = 12 does not divide gpus=16", "use cp in 1, 2 or 4"},
               "--set");
  r = load(d, {"parallel.cp=4", "training.seq_len=6148"});   // both set: the file is not to blame, nor cp
  expect_error(r, "/training/seq_len", "6148", {"not divisible by 2*cp = 8"}, "--set");
  d["cluster"]["gpus"] = 8;
  d["training"]["seq_len"] = 4096;
  r = load(d, {"training.micro_batch=3"});   // 3 x dp 8 does not divide 64
  EXPECT_EQ(only(r), 1u) << all_errors(r);
  expect_error(r, "/training/micro_batch", "3", {"micro_batch*dp = 3*8 = 24 does not divide global_batch=64",
                                                  "use micro_batch in 1, 2, 4 or 8"}, "--set");
  d["training"]["micro_batch"] = 3;   // in the file: the batch is what the message suggests changing
  expect_error(load(d), "/training/global_batch", "64", {"not a multiple of micro_batch*dp = 3*8 = 24", "use 48 or 72"});
  // MoE: an ep that does not divide the experts is not also reported by the layout checks.
  json m = base_doc();
  m["model"] = {{"name", "mixtral-8x7b"}};
  m["parallel"] = {{"tp", 1}, {"ep", 3}, {"dp", 8}};
  r = load(m);
  EXPECT_EQ(only(r), 1u) << all_errors(r);
  expect_error(r, "/parallel/ep", "3", {"does not divide experts=8"});
  // A section's key without its section.
  expect_error(load(base_doc(), {"tp=4"}), "/tp", "", {"did you mean \"parallel.tp\"?"}, "--set");
}

// An inline model's shape mistakes come at once: a missing ffn_hidden does not hide a kv_heads
// or heads that does not divide.
TEST(LoaderErrors, InlineModelShapeMistakesComeAtOnce) {
  json d = base_doc();
  d["model"] = {{"name", "mine"}, {"layers", 40}, {"hidden", 6650}, {"heads", 52}, {"kv_heads", 8},
                {"vocab", 32000}, {"activation", "swiglu"}};
  auto r = load(d);
  expect_error(r, "/model/ffn_hidden", "", {"missing; required for swiglu"});
  expect_error(r, "/model/kv_heads", "8", {"must divide heads=52", "use 1, 2, 4, 13, 26 or 52"});
  expect_error(r, "/model/heads", "52", {"does not divide hidden=6650"});
}

TEST(LoaderErrors, BadOverridePath) {
  auto r = load(base_doc(), {"parallel.tpp=4"});
  expect_error(r, "/parallel/tpp", "", {"unknown key", "did you mean \"tp\""}, "--set");
  r = load(base_doc(), {"paralel.tp=4"});
  expect_error(r, "/paralel", "", {"did you mean \"parallel\""}, "--set");
  r = load(base_doc(), {"parallel.tp"});
  expect_error(r, "", "parallel.tp", {"KEY=VALUE"}, "--set");
  r = load(base_doc(), {"parallel.tp.x=1"});
  expect_error(r, "/parallel/tp/x", "", {"too deep"}, "--set");
}

TEST(LoaderErrors, BadOverrideValueIsBlamedOnSet) {
  auto r = load(base_doc(), {"parallel.tp=3", "parallel.dp=1"});
  ASSERT_FALSE(r.ok());
  expect_error(r, "/parallel/tp", "3", {"does not divide heads=32"}, "--set");
}

TEST(LoaderErrors, Fp8NeedsFp8Gpu) {
  json d = base_doc();
  d["cluster"]["gpu"] = "A100-SXM-80GB";
  d["cluster"].erase("nic_bandwidth");
  d["training"]["precision"] = "fp8";
  expect_error(load(d), "/training/precision", "fp8", {"A100-SXM-80GB has none", "\"bf16\""});
}

TEST(LoaderErrors, Fp32PrecisionRejected) {
  json d = base_doc();
  d["training"]["precision"] = "fp32";
  expect_error(load(d), "/training/precision", "fp32", {"\"bf16\", \"fp16\" or \"fp8\""});
}

TEST(LoaderErrors, LayersPerStageWrongSum) {
  json d = base_doc();
  d["cluster"]["gpus"] = 16;
  d["parallel"] = {{"pp", 2}, {"dp", 8}, {"layers_per_stage", {16, 15}}};
  expect_error(load(d), "/parallel/layers_per_stage", "[16,15]", {"sums to 31", "layers=32"});
}

TEST(LoaderErrors, LayersPerStageWrongLength) {
  json d = base_doc();
  d["cluster"]["gpus"] = 16;
  d["parallel"] = {{"pp", 2}, {"dp", 8}, {"layers_per_stage", {10, 11, 11}}};
  expect_error(load(d), "/parallel/layers_per_stage", "[10,11,11]", {"3 entries", "pp*vp = 2"});
}

TEST(LoaderErrors, LayersPerStageBadEntry) {
  json d = base_doc();
  d["cluster"]["gpus"] = 16;
  d["parallel"] = {{"pp", 2}, {"dp", 8}, {"layers_per_stage", {32, 0}}};
  expect_error(load(d), "/parallel/layers_per_stage/1", "0", {"positive integer"});
}

TEST(LoaderErrors, UnknownSchedule) {
  json d = base_doc();
  d["parallel"]["schedule"] = "zero-bubble";
  expect_error(load(d), "/parallel/schedule", "zero-bubble",
               {"\"gpipe\", \"1f1b\", \"interleaved\", \"dualpipev\", \"zbv\" or \"dualpipe\""});
}

TEST(LoaderErrors, UnknownEnumValues) {
  json d = base_doc();
  d["parallel"]["recompute"] = "some";
  d["cluster"]["scale_out"] = "ethernet";
  d["model"]["activation"] = "relu";
  auto r = load(d);
  expect_error(r, "/parallel/recompute", "some", {"\"none\", \"selective\" or \"full\""});
  expect_error(r, "/cluster/scale_out", "ethernet", {"\"infiniband\", \"roce\" or \"omnipath\""});
  expect_error(r, "/model/activation", "relu", {"\"gelu\" or \"swiglu\""});
}

TEST(LoaderErrors, RecomputeLayersNeedsFullRecomputeAndAtMostTheLayers) {
  json d = base_doc();
  d["parallel"]["recompute"] = "selective";
  d["parallel"]["recompute_layers"] = 4;
  expect_error(load(d), "/parallel/recompute_layers", "4", {"needs recompute \"full\"", "\"selective\""});
  d["parallel"]["recompute"] = "full";
  d["parallel"]["recompute_layers"] = 1000;
  expect_error(load(d), "/parallel/recompute_layers", "1000", {"layers", "use 0 (every layer) or 1 to"});
  d["parallel"]["recompute_layers"] = -1;
  expect_error(load(d), "/parallel/recompute_layers", "-1", {});
  d["parallel"]["recompute_layers"] = 2;
  auto ok = load(d);
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->parallel.recompute_layers, 2);
}

TEST(LoaderErrors, Zero3ReshardNeedsZero3) {
  json d = base_doc();
  d["parallel"]["zero"] = 1;
  d["parallel"]["zero3_reshard"] = false;
  expect_error(load(d), "/parallel/zero3_reshard", "false", {"needs zero 3", "zero is 1"});
  d["parallel"]["zero"] = 3;
  auto ok = load(d);
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_FALSE(ok->parallel.zero3_reshard);
  d["parallel"].erase("zero3_reshard");
  auto def = load(d);
  ASSERT_TRUE(def.ok()) << def.status().to_string();
  EXPECT_TRUE(def->parallel.zero3_reshard);
}

TEST(LoaderErrors, GradReduceDtypeNamesTheFormats) {
  json d = base_doc();
  d["parallel"]["grad_reduce_dtype"] = "int8";
  expect_error(load(d), "/parallel/grad_reduce_dtype", "int8", {"\"auto\"", "\"bf16\"", "\"fp32\""});
  d["parallel"]["grad_reduce_dtype"] = 4;
  expect_error(load(d), "/parallel/grad_reduce_dtype", "4", {});
  d["parallel"]["grad_reduce_dtype"] = "bf16";
  auto ok = load(d);
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->parallel.grad_reduce_dtype, GradReduce::kBf16);
  d["parallel"].erase("grad_reduce_dtype");
  auto def = load(d);
  ASSERT_TRUE(def.ok()) << def.status().to_string();
  EXPECT_EQ(def->parallel.grad_reduce_dtype, GradReduce::kAuto);
}

TEST(LoaderErrors, TpOverlapNeedsTpAndSequenceParallelism) {
  json d = base_doc();   // tp 1
  d["parallel"]["tp_overlap"] = true;
  expect_error(load(d), "/parallel/tp_overlap", "true", {"needs tp >= 2", "tp is 1"});
  d["parallel"]["tp"] = 2;
  d["parallel"]["dp"] = 4;
  d["parallel"]["sequence_parallel"] = false;
  expect_error(load(d), "/parallel/tp_overlap", "true", {"needs sequence_parallel true"});
  d["parallel"]["sequence_parallel"] = true;
  auto ok = load(d);
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_TRUE(ok->parallel.tp_overlap);
  d["parallel"]["tp_overlap"] = 1;
  expect_error(load(d), "/parallel/tp_overlap", "1", {});
}

TEST(LoaderErrors, RecomputeModulesNeedSelectiveKnownNamesAndTheirModel) {
  json d = base_doc();   // a dense GQA model
  d["parallel"]["recompute"] = "full";
  d["parallel"]["recompute_modules"] = {"layernorm"};
  expect_error(load(d), "/parallel/recompute_modules", "[layernorm]", {"needs recompute \"selective\"", "\"full\""});
  d["parallel"]["recompute"] = "selective";
  d["parallel"]["recompute_modules"] = {"core_attn", "moe"};
  expect_error(load(d), "/parallel/recompute_modules/1", "moe",
               {"unknown module", "\"core_attn\", \"layernorm\", \"mla_up_proj\", \"mlp\", \"moe_act\" or \"op\""});
  d["parallel"]["recompute_modules"] = json::array();
  expect_error(load(d), "/parallel/recompute_modules", "[]", {"non-empty array"});
  d["parallel"]["recompute_modules"] = "layernorm";
  expect_error(load(d), "/parallel/recompute_modules", "layernorm", {"non-empty array"});
  d["parallel"]["recompute_modules"] = {"mla_up_proj"};
  expect_error(load(d), "/parallel/recompute_modules", "[mla_up_proj]", {"no MLA"});
  d["parallel"]["recompute_modules"] = {"moe_act"};
  expect_error(load(d), "/parallel/recompute_modules", "[moe_act]", {"no experts"});
  // "op" (torchtitan's op-level policy): alone, on a dense SwiGLU model, tp 1 and cp 1, not
  // fp8, no dropout.
  d["parallel"]["recompute_modules"] = {"op", "core_attn"};
  expect_error(load(d), "/parallel/recompute_modules", "[core_attn, op]", {"not combined", "[\"op\"] alone"});
  d["parallel"]["recompute_modules"] = {"op"};
  expect_error(load(d, {"parallel.tp=2", "parallel.dp=4"}), "/parallel/recompute_modules", "[op]",
               {"tp 1 and cp 1", "tp=2"});
  expect_error(load(d, {"training.precision=fp8"}), "/parallel/recompute_modules", "[op]", {"fp8"});
  expect_error(load(d, {"training.dropout=true"}), "/parallel/recompute_modules", "[op]", {"dropout"});
  expect_error(load(d, {"model.name=gpt3-175b"}), "/parallel/recompute_modules", "[op]", {"SwiGLU"});
  auto op = load(d);
  ASSERT_TRUE(op.ok()) << op.status().to_string();
  EXPECT_EQ(op->parallel.recompute_modules, uint32_t{kRecomputeOp});
  d["parallel"]["recompute_modules"] = {"MLP", "layernorm", "core_attn"};
  auto ok = load(d);
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->parallel.recompute_modules, kRecomputeMlp | kRecomputeLayernorm | kRecomputeCoreAttn);
  d["parallel"].erase("recompute_modules");
  auto def = load(d);
  ASSERT_TRUE(def.ok()) << def.status().to_string();
  EXPECT_EQ(def->parallel.recompute_modules, uint32_t{kRecomputeCoreAttn}) << "the attention core unless told";
}

TEST(LoaderErrors, Fp8RecipeNeedsFp8AndAKnownName) {
  json d = base_doc();
  d["training"]["fp8_recipe"] = "delayed";
  expect_error(load(d), "/training/fp8_recipe", "delayed", {"needs precision \"fp8\"", "\"bf16\""});
  d["cluster"]["gpu"] = "H100-SXM-80GB";
  d["training"]["precision"] = "fp8";
  d["training"]["fp8_recipe"] = "mxfp8";
  expect_error(load(d), "/training/fp8_recipe", "mxfp8", {"\"current\", \"delayed\" or \"blockwise\""});
  d["training"]["fp8_recipe"] = "delayed";
  auto ok = load(d);
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->training.fp8_recipe, Fp8Recipe::kDelayed);
  d["training"]["fp8_cache_inputs"] = true;
  auto cached = load(d);
  ASSERT_TRUE(cached.ok()) << cached.status().to_string();
  EXPECT_TRUE(cached->training.fp8_cache_inputs);
  d["training"]["precision"] = "bf16";
  d["training"].erase("fp8_recipe");
  expect_error(load(d), "/training/fp8_cache_inputs", "true", {"needs precision \"fp8\""});
  d["training"]["precision"] = "fp8";
  d["training"].erase("fp8_cache_inputs");
  auto def = load(d);
  ASSERT_TRUE(def.ok()) << def.status().to_string();
  EXPECT_EQ(def->training.fp8_recipe, Fp8Recipe::kCurrent) << "current scaling unless told";
}

TEST(LoaderErrors, BadJsonGivesLineAndColumn) {
  auto r = load_scenario_text("{\n  \"name\": \"x\",\n  \"model\" {}\n}\n", "broken.json");
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.status().errors().size(), 1u);
  const auto& e = r.status().errors()[0];
  EXPECT_EQ(e.file, "broken.json");
  EXPECT_NE(e.message.find("invalid JSON at line 3, column"), std::string::npos) << e.to_string();
}

TEST(LoaderErrors, DuplicateKey) {
  auto r = load_scenario_text(R"({"parallel": {"tp": 1, "tp": 2}})", "dup.json");
  expect_error(r, "/parallel/tp", "", {"duplicate key"}, "dup.json");
}

TEST(LoaderErrors, VpNeedsInterleaved) {
  json d = base_doc();
  d["cluster"]["gpus"] = 16;
  d["parallel"] = {{"pp", 2}, {"vp", 2}, {"dp", 8}, {"schedule", "1f1b"}};
  expect_error(load(d), "/parallel/vp", "2", {"needs schedule \"interleaved\""});
}

TEST(LoaderErrors, InterleavedNeedsVp) {
  json d = base_doc();
  d["parallel"]["schedule"] = "interleaved";
  expect_error(load(d), "/parallel/schedule", "interleaved", {"vp >= 2", "\"1f1b\""});
}

TEST(LoaderErrors, InterleavedNeedsMicroBatchesMultipleOfPp) {
  json d = base_doc();
  d["cluster"]["gpus"] = 32;
  d["parallel"] = {{"pp", 4}, {"vp", 2}, {"dp", 8}};  // schedule defaults to interleaved
  d["training"]["global_batch"] = 48;                 // 6 micro-batches, not a multiple of 4
  expect_error(load(d), "/training/global_batch", "48", {"micro-batches", "= 6", "pp=4", "multiple of 32"});
  d["training"]["global_batch"] = 64;
  auto ok = load(d);
  ASSERT_TRUE(ok.ok()) << all_errors(ok);
  EXPECT_EQ(ok->parallel.schedule, Schedule::kInterleaved);
}

// "model": "NAME" is short for "model": {"name": "NAME"}: the same scenario, overrides of the
// model's keys apply to it, --set model=NAME names one, and a value of another type is an error
// that names both forms.
TEST(Loader, ModelNameShorthand) {
  json d = base_doc();
  d["model"] = "llama3-70b";
  d["parallel"] = {{"tp", 8}, {"pp", 1}, {"dp", 1}};
  json l = d;
  l["model"] = {{"name", "llama3-70b"}};
  auto s = load(d), ls = load(l);
  ASSERT_TRUE(s.ok()) << all_errors(s);
  ASSERT_TRUE(ls.ok()) << all_errors(ls);
  EXPECT_EQ(s->model.name, "llama3-70b");
  EXPECT_EQ(s->model.layers, 80);
  EXPECT_EQ(s->model.hidden, ls->model.hidden);
  EXPECT_EQ(s->model.ffn_hidden, ls->model.ffn_hidden);
  EXPECT_EQ(s->model.kv_heads, ls->model.kv_heads);
  EXPECT_EQ(s->model.vocab, ls->model.vocab);
  // An override inside the model of a shorthand document.
  auto o = load(d, {"model.layers=40"});
  ASSERT_TRUE(o.ok()) << all_errors(o);
  EXPECT_EQ(o->model.layers, 40);
  EXPECT_EQ(o->model.hidden, 8192);
  // The model named by --set, replacing a long-form model.
  auto n = load(base_doc(), {"model=llama3-70b", "parallel.tp=8", "parallel.dp=1"});
  ASSERT_TRUE(n.ok()) << all_errors(n);
  EXPECT_EQ(n->model.layers, 80);
  EXPECT_EQ(n->model.name, "llama3-70b");
  // An unknown name is the catalog's error, at the name; another type names both forms.
  d["model"] = "llama3-7b";
  expect_error(load(d), "/model/name", "llama3-7b", {"unknown model", "did you mean \"llama3-8b\""});
  d["model"] = 42;
  expect_error(load(d), "/model", "42", {"catalog model's name", "or an object with keys", "got a number"});
}

// A custom GPU: a catalog GPU ("base") with some figures changed under a name of its own. Left
// out, a figure is the base's; a given bf16 peak carries fp16 (equal) and fp8 (2x, where the base
// has fp8) with it; the kernel efficiencies are the base's family's.
TEST(Loader, CustomGpuStartsFromItsBase) {
  json d = base_doc();
  d["cluster"]["gpu"] = {{"name", "next-gen"}, {"base", "h100-sxm-80gb"}, {"peak_bf16_tflops", 1500},
                         {"hbm_gib", 192}, {"sms", 160}};
  auto r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  const GpuSpec& g = r->cluster.gpu;
  const GpuSpec h100 = find_gpu("H100-SXM-80GB").value();
  EXPECT_EQ(g.name, "next-gen");
  EXPECT_EQ(g.base, "H100-SXM-80GB");
  EXPECT_EQ(g.family, "hopper");
  EXPECT_EQ(gpu_family(g), "hopper");
  EXPECT_DOUBLE_EQ(g.peak_bf16.tflops(), 1500);
  EXPECT_DOUBLE_EQ(g.peak_fp16.tflops(), 1500);
  EXPECT_DOUBLE_EQ(g.peak_fp8.tflops(), 3000);
  EXPECT_DOUBLE_EQ(g.peak_fp32.tflops(), h100.peak_fp32.tflops());
  EXPECT_EQ(g.hbm_capacity.count(), int64_t{192} << 30);
  EXPECT_DOUBLE_EQ(g.hbm_bandwidth.Bps(), h100.hbm_bandwidth.Bps());
  EXPECT_DOUBLE_EQ(r->cluster.nvlink_bandwidth.Bps(), h100.nvlink_bandwidth.Bps());
  EXPECT_DOUBLE_EQ(r->cluster.nic_bandwidth.Bps(), h100.nic_bandwidth.Bps());
  EXPECT_EQ(g.sms, 160);
  EXPECT_EQ(r->cluster.gpus_per_node, h100.gpus_per_node);
  // A base without fp8 keeps none; an explicit fp8 figure wins; a tdp alone is also the limit.
  d["cluster"]["gpu"] = {{"name", "a100-plus"}, {"base", "A100-SXM-80GB"}, {"peak_bf16_tflops", 400}, {"tdp_w", 500}};
  auto a = load(d);
  ASSERT_TRUE(a.ok()) << all_errors(a);
  EXPECT_EQ(a->cluster.gpu.family, "ampere");
  EXPECT_DOUBLE_EQ(a->cluster.gpu.peak_fp8.tflops(), 0);
  EXPECT_DOUBLE_EQ(a->cluster.gpu.power_limit_w, 500);
  d["cluster"]["gpu"]["peak_fp8_tflops"] = 800;
  auto f = load(d);
  ASSERT_TRUE(f.ok()) << all_errors(f);
  EXPECT_DOUBLE_EQ(f->cluster.gpu.peak_fp8.tflops(), 800);
}

TEST(LoaderErrors, CustomGpuErrorsNameTheKey) {
  json d = base_doc();
  d["cluster"]["gpu"] = {{"peak_bf16_tflops", -3}, {"hbm_gb", 100}};
  auto r = load(d);
  expect_error(r, "/cluster/gpu/name", "", {"missing"});
  expect_error(r, "/cluster/gpu/base", "", {"missing", "catalog GPU"});
  expect_error(r, "/cluster/gpu/peak_bf16_tflops", "-3", {"too small"});
  expect_error(r, "/cluster/gpu/hbm_gb", "", {"unknown key", "did you mean \"hbm_gib\""});
  d["cluster"]["gpu"] = {{"name", "H200-SXM-141GB"}, {"base", "H100-SMX-80GB"}, {"sms", "many"},
                         {"tdp_w", 600}, {"power_limit_w", 700}};
  r = load(d);
  expect_error(r, "/cluster/gpu/name", "H200-SXM-141GB", {"a catalog GPU's name", "a name of its own"});
  expect_error(r, "/cluster/gpu/base", "H100-SMX-80GB", {"unknown GPU", "did you mean \"H100-SXM-80GB\""});
  expect_error(r, "/cluster/gpu/sms", "many", {"expected", "got a string"});
  d["cluster"]["gpu"] = {{"name", "capped"}, {"base", "H100-SXM-80GB"}, {"tdp_w", 600}, {"power_limit_w", 700}};
  expect_error(load(d), "/cluster/gpu/power_limit_w", "700", {"must not exceed tdp_w (600)"});
  d["cluster"]["gpu"] = 7;
  expect_error(load(d), "/cluster/gpu", "7", {"custom GPU", "\"base\""});
}

// Oracle: a custom GPU given every figure of catalog GPU X, on another base of X's family, is X
// under another name: the same step, events, fingerprint and memory.
TEST(Loader, CustomGpuWithACatalogGpusFiguresPredictsLikeIt) {
  std::ifstream in(std::string(TRAINSIM_SOURCE_DIR) + "/topologies/data/gpus.json");
  const json cat = json::parse(in);
  int compared = 0;
  for (const json& x : cat["gpus"]) {
    const std::string name = x["name"];
    const GpuSpec gx = find_gpu(name).value();
    std::string base;
    for (const auto& [n, spec] : gpu_catalog())
      if (n != name && spec.family == gx.family && base.empty()) base = n;
    if (base.empty()) continue;   // the only GPU of its family
    json custom = x;
    custom.erase("aliases");
    custom.erase("source");
    custom["name"] = "copy-of-" + name;
    custom["base"] = base;
    json d = base_doc();
    d["cluster"].erase("nic_bandwidth");
    d["cluster"]["gpu"] = name;
    const bool fp8 = gx.peak_fp8.per_s() > 0;
    d["training"]["precision"] = fp8 ? "fp8" : "bf16";
    auto rx = load(d);
    d["cluster"]["gpu"] = custom;
    auto rc = load(d);
    ASSERT_TRUE(rx.ok()) << all_errors(rx);
    ASSERT_TRUE(rc.ok()) << name << ": " << all_errors(rc);
    PredictOptions o;
    o.fast = true;
    auto px = predict(rx.value(), o), pc = predict(rc.value(), o);
    ASSERT_TRUE(px.ok() && pc.ok()) << name;
    EXPECT_EQ(px->step_time, pc->step_time) << name << " as a copy on " << base;
    EXPECT_EQ(px->events, pc->events) << name;
    EXPECT_EQ(px->fingerprint, pc->fingerprint) << name;
    EXPECT_EQ(px->peak_memory.total(), pc->peak_memory.total()) << name;
    EXPECT_EQ(px->peak_memory.capacity, pc->peak_memory.capacity) << name;
    EXPECT_DOUBLE_EQ(px->mfu, pc->mfu) << name;
    ++compared;
  }
  EXPECT_GE(compared, 6);
}

// A catalog model keeps its own head_dim (Qwen3-235B: 128, not hidden/heads = 64) unless its
// hidden or heads are overridden.
TEST(Loader, CatalogHeadDimKept) {
  json d = base_doc();
  d["model"] = {{"name", "qwen3-235b-a22b"}};
  d["parallel"] = {{"tp", 1}, {"ep", 8}, {"dp", 8}};
  auto r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->model.head_dim, 128);
  d["model"]["heads"] = 32;
  d["model"]["kv_heads"] = 4;
  auto o = load(d);
  ASSERT_TRUE(o.ok()) << all_errors(o);
  EXPECT_EQ(o->model.head_dim, 4096 / 32);
}

TEST(Loader, ContextParallelLoads) {
  json d = base_doc();
  d["parallel"] = {{"cp", 4}, {"cp_ulysses", 2}};
  auto r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->parallel.cp, 4);
  EXPECT_EQ(r->parallel.cp_ulysses, 2);
  EXPECT_EQ(r->parallel.dp, 2);   // 8 GPUs / cp 4
  EXPECT_TRUE(r->parallel.cp_load_balance);
}

TEST(Loader, ActivationOffloadAndPcie) {
  json d = base_doc();
  d["parallel"]["activation_offload"] = 0.25;
  d["cluster"]["pcie_bandwidth"] = "32GB/s";
  auto r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_DOUBLE_EQ(r->parallel.activation_offload, 0.25);
  EXPECT_DOUBLE_EQ(r->cluster.pcie_bandwidth.Bps(), 32e9);
  d["cluster"].erase("pcie_bandwidth");
  EXPECT_DOUBLE_EQ(load(d)->cluster.pcie_bandwidth.Bps(), 64e9);   // the H100's Gen5 x16 default
}

TEST(LoaderErrors, ActivationOffloadIsAFraction) {
  json d = base_doc();
  d["parallel"]["activation_offload"] = 1.5;
  expect_error(load(d), "/parallel/activation_offload", "1.5", {"too large", "from 0 to 1"});
  d["parallel"]["activation_offload"] = "half";
  expect_error(load(d), "/parallel/activation_offload", "half", {"expected a number from 0 to 1"});
}

TEST(Loader, NcclCtasOverridesTheDefault) {
  json d = base_doc();
  EXPECT_EQ(load(d)->options.nccl_ctas, -1);   // the embedded default
  d["costs"] = {{"nccl_ctas", 0}};
  EXPECT_EQ(load(d)->options.nccl_ctas, 0);
}

TEST(LoaderErrors, NcclCtasIsACount) {
  json d = base_doc();
  d["costs"] = {{"nccl_ctas", -2}};
  expect_error(load(d), "/costs/nccl_ctas", "-2", {"from 0 to 1024"});
  d["costs"] = {{"nccl_ctas", 2000}};
  expect_error(load(d), "/costs/nccl_ctas", "2000", {"too large"});
}

TEST(LoaderErrors, CpUlyssesMustDivideCp) {
  json d = base_doc();
  d["parallel"] = {{"cp", 4}, {"cp_ulysses", 3}, {"dp", 2}};
  expect_error(load(d), "/parallel/cp_ulysses", "3", {"must divide cp=4", "1, 2 or 4"});
}

TEST(LoaderErrors, CpMustDivideSequenceInZigZagChunks) {
  json d = base_doc();
  d["training"]["seq_len"] = 4100;   // divisible by 4, not by 2*4 zig-zag chunks
  d["parallel"] = {{"cp", 4}, {"dp", 2}};
  expect_error(load(d), "/training/seq_len", "4100", {"2*cp = 8", "zig-zag", "multiple of 8"});
  d["parallel"]["cp_load_balance"] = false;   // contiguous chunks: cp is enough
  EXPECT_TRUE(load(d).ok()) << all_errors(load(d));
  d["training"]["seq_len"] = 4098;
  expect_error(load(d), "/training/seq_len", "4098", {"cp = 4", "multiple of 4"});
}

TEST(LoaderErrors, CpNeedsFlashAttention) {
  json d = base_doc();
  d["training"]["attention_kernel"] = "unfused";
  d["parallel"] = {{"cp", 2}, {"dp", 4}};
  expect_error(load(d), "/parallel/cp", "2", {"flash", "cp to 1"});
}

TEST(LoaderErrors, UlyssesNeedsHeadsDivisible) {
  json d = base_doc();   // llama3-8b: 32 heads
  d["cluster"]["gpus"] = 64;
  d["parallel"] = {{"tp", 2}, {"cp", 32}, {"cp_ulysses", 32}, {"dp", 1}};
  expect_error(load(d), "/parallel/cp_ulysses", "32", {"tp*cp_ulysses = 2*32", "heads=32", "16"});
}

json moe_doc() {
  json d = base_doc();
  d["model"] = {{"name", "mixtral-8x7b"}};
  d["parallel"] = {{"tp", 1}, {"pp", 1}, {"dp", 8}, {"ep", 4}};
  return d;
}

// parallel.ep_overlap: off by default; on where Megatron-Core's combined 1F1B runs (MoE, ep > 1,
// 1F1B without pipelining or interleaved, recompute none/selective, zero 0-2, no offload);
// every other case is an error at /parallel/ep_overlap that says what is accepted, all at once.
TEST(LoaderErrors, EpOverlapNeedsWhatCombined1F1BRuns) {
  EXPECT_FALSE(load(moe_doc())->parallel.ep_overlap);
  json d = moe_doc();
  d["parallel"]["ep_overlap"] = true;
  auto ok = load(d);
  ASSERT_TRUE(ok.ok()) << all_errors(ok);
  EXPECT_TRUE(ok->parallel.ep_overlap);
  json il = d;   // interleaved: accepted
  il["parallel"]["pp"] = 2;
  il["parallel"]["vp"] = 2;
  il["parallel"]["dp"] = 4;
  EXPECT_TRUE(load(il).ok()) << all_errors(load(il));

  json dense = base_doc();
  dense["parallel"]["ep_overlap"] = true;
  expect_error(load(dense), "/parallel/ep_overlap", "true", {"MoE model with ep > 1", "use false"});
  json ep1 = d;
  ep1["parallel"]["ep"] = 1;
  expect_error(load(ep1), "/parallel/ep_overlap", "true", {"ep > 1 (ep=1)"});
  json gp = d;
  gp["parallel"]["schedule"] = "gpipe";
  expect_error(load(gp), "/parallel/ep_overlap", "true", {"\"gpipe\"", "\"1f1b\""});
  json pp = d;
  pp["parallel"]["pp"] = 2;
  pp["parallel"]["dp"] = 4;
  expect_error(load(pp), "/parallel/ep_overlap", "true", {"pp=2", "virtual", "vp > 1"});
  // Several at once: full recompute, ZeRO-3 and offload each get their own error.
  json many = d;
  many["parallel"]["recompute"] = "full";
  many["parallel"]["zero"] = 3;
  many["parallel"]["activation_offload"] = 0.5;
  auto r = load(many);
  ASSERT_FALSE(r.ok());
  int n = 0;
  for (const auto& e : r.status().errors()) n += e.path == "/parallel/ep_overlap";
  EXPECT_EQ(n, 3) << all_errors(r);
  const std::string all = all_errors(r);
  EXPECT_NE(all.find("recompute \"full\""), std::string::npos) << all;
  EXPECT_NE(all.find("zero 0-2"), std::string::npos) << all;
  EXPECT_NE(all.find("activation_offload 0"), std::string::npos) << all;
  json notbool = d;
  notbool["parallel"]["ep_overlap"] = "yes";
  EXPECT_FALSE(load(notbool).ok());
  // delay_wgrad: only with ep_overlap; ZB-V has no pairs to overlap.
  json dw = d;
  dw["parallel"]["delay_wgrad"] = true;
  ASSERT_TRUE(load(dw).ok()) << all_errors(load(dw));
  EXPECT_TRUE(load(dw)->parallel.delay_wgrad);
  dw["parallel"]["ep_overlap"] = false;
  expect_error(load(dw), "/parallel/delay_wgrad", "true", {"needs ep_overlap true", "use false"});
  json zb = il;
  zb["parallel"]["schedule"] = "zbv";
  expect_error(load(zb), "/parallel/ep_overlap", "true", {"\"zbv\"", "\"dualpipev\""});
  json dpv = il;   // DualPipeV: its pairs take the overlap
  dpv["parallel"]["schedule"] = "dualpipev";
  dpv["training"]["global_batch"] = 32;
  EXPECT_TRUE(load(dpv).ok()) << all_errors(load(dpv));
}

// parallel.hsdp_defer_all_reduce: only with HSDP under ZeRO-3 (zero 3, fsdp_shard_group < dp).
TEST(LoaderErrors, HsdpDeferAllReduceNeedsHsdp) {
  json d = base_doc();
  d["parallel"] = {{"dp", 8}, {"zero", 3}, {"fsdp_shard_group", 4}, {"hsdp_defer_all_reduce", true}};
  auto ok = load(d);
  ASSERT_TRUE(ok.ok()) << all_errors(ok);
  EXPECT_TRUE(ok->parallel.hsdp_defer_all_reduce);
  EXPECT_FALSE(load(base_doc())->parallel.hsdp_defer_all_reduce);
  d["parallel"]["fsdp_shard_group"] = 0;
  expect_error(load(d), "/parallel/hsdp_defer_all_reduce", "true", {"zero 3 with fsdp_shard_group < dp", "fsdp_shard_group=0"});
  d["parallel"]["fsdp_shard_group"] = 4;
  d["parallel"]["zero"] = 1;
  expect_error(load(d), "/parallel/hsdp_defer_all_reduce", "true", {"zero=1", "use false"});
}

// mtp_depth (multi-token prediction): 0 to 4, default 0 (the catalog's for catalog models:
// DeepSeek-V3 1), overridable; other values are errors at /model/mtp_depth.
TEST(Loader, MtpDepth) {
  json d = base_doc();
  EXPECT_EQ(load(d)->model.mtp_depth, 0);
  d["model"]["mtp_depth"] = 2;
  auto r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->model.mtp_depth, 2);
  json ds = moe_doc();
  ds["model"] = {{"name", "deepseek-v3"}};
  auto v3 = load(ds);
  ASSERT_TRUE(v3.ok()) << all_errors(v3);
  EXPECT_EQ(v3->model.mtp_depth, 1);
  ds["model"]["mtp_depth"] = 0;
  EXPECT_EQ(load(ds)->model.mtp_depth, 0);
  d["model"]["mtp_depth"] = -1;
  expect_error(load(d), "/model/mtp_depth", "-1", {"too small", "0 to 4"});
  d["model"]["mtp_depth"] = 5;
  expect_error(load(d), "/model/mtp_depth", "5", {"too large", "0 to 4"});
  d["model"]["mtp_depth"] = "x";
  expect_error(load(d), "/model/mtp_depth", "x", {"0 to 4", "string"});
}

TEST(LoaderMoe, CatalogMoeLoadsWithDefaults) {
  auto r = load(moe_doc());
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_TRUE(r->model.is_moe());
  EXPECT_EQ(r->model.experts, 8);
  EXPECT_EQ(r->model.top_k, 2);
  EXPECT_EQ(r->model.expert_ffn_hidden, 14336);
  EXPECT_EQ(r->parallel.ep, 4);
  EXPECT_EQ(r->training.moe.kind, MoeRouting::kBalanced);
  EXPECT_DOUBLE_EQ(r->model.capacity_factor, 0.0);
}

TEST(LoaderMoe, DispatchAndNodeLimit) {
  json d = moe_doc();   // ep = 4
  d["moe"] = {{"dispatch", "dedup"}, {"node_limit", 2}};
  auto ok = load(d);
  ASSERT_TRUE(ok.ok()) << all_errors(ok);
  EXPECT_EQ(ok->training.moe.dispatch, MoeDispatch::kDedup);
  EXPECT_EQ(ok->training.moe.node_limit, 2);
  EXPECT_EQ(load(moe_doc())->training.moe.dispatch, MoeDispatch::kDirect);   // the default
  EXPECT_EQ(load(moe_doc())->training.moe.node_limit, 0);
  d["moe"] = {{"dispatch", "hierarchical"}};
  expect_error(load(d), "/moe/dispatch", "hierarchical", {"unknown value", "\"direct\"", "\"dedup\""});
  d["moe"] = {{"dispatch", "dedup"}, {"node_limit", -1}};
  expect_error(load(d), "/moe/node_limit", "-1", {"too small", "0"});
  d["moe"] = {{"dispatch", "dedup"}, {"node_limit", 1.5}};
  expect_error(load(d), "/moe/node_limit", "1.5", {"expected", "integer"});
  d["moe"] = {{"dispatch", "dedup"}, {"node_limit", "4"}};
  expect_error(load(d), "/moe/node_limit", "4", {"expected", "integer"});
  d["moe"] = {{"dispatch", "dedup"}, {"node_limit", 5}};   // more than ep = 4 ranks
  expect_error(load(d), "/moe/node_limit", "5", {"too large", "ep=4", "accepted: 0 (no limit) or 1"});
  d["moe"] = {{"node_limit", 2}};   // direct dispatch
  expect_error(load(d), "/moe/node_limit", "2", {"needs moe.dispatch \"dedup\"", "node_limit 0"});
  d["moe"] = {{"dispatch", "direct"}, {"node_limit", 0}};
  EXPECT_TRUE(load(d).ok());
}

TEST(LoaderMoe, EpMustDivideExpertsAndDp) {
  json d = moe_doc();
  d["parallel"]["ep"] = 3;
  d["parallel"]["dp"] = 8;
  auto r = load(d);
  expect_error(r, "/parallel/ep", "3", {"does not divide experts=8", "use 1, 2, 4 or 8"});
  // EP along DP asked for: ep must divide dp (the error names folding as the way out).
  d = moe_doc();
  d["parallel"] = {{"dp", 2}, {"tp", 4}, {"ep", 4}, {"ep_layout", "dp"}};
  expect_error(load(d), "/parallel/ep", "4",
               {"does not divide dp=2", "carved from data parallelism", "ep_layout \"folded\""});
}

// Parallel folding (models/spec.h EpLayout): "auto" folds where EP along DP does not apply.
TEST(LoaderMoe, FoldedEp) {
  json d = moe_doc();
  d["parallel"] = {{"dp", 2}, {"tp", 4}, {"ep", 4}};
  auto r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->parallel.ep_layout, EpLayout::kAuto);
  EXPECT_TRUE(ep_folded(r->parallel));
  EXPECT_EQ(expert_dp_size(r->parallel), 2);
  d["parallel"] = {{"dp", 2}, {"tp", 4}, {"ep", 8}, {"etp", 1}};
  ASSERT_TRUE(load(d).ok()) << all_errors(load(d));
  d["parallel"] = {{"dp", 2}, {"tp", 4}, {"ep", 2}, {"etp", 2}};   // 1 < etp < tp: folded
  r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_TRUE(ep_folded(r->parallel));
  d["parallel"] = {{"dp", 4}, {"tp", 2}, {"ep", 2}, {"etp", 1}};   // ep | dp: EP along DP
  r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_FALSE(ep_folded(r->parallel));
  d["parallel"]["ep_layout"] = "folded";
  r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->parallel.ep_layout, EpLayout::kFolded);
  EXPECT_TRUE(ep_folded(r->parallel));
}

TEST(LoaderMoe, BadFoldsAreErrors) {
  json d = moe_doc();
  // etp must divide a stage's tp*cp*dp ranks (it may span TP groups: their rows are gathered).
  d["parallel"] = {{"dp", 2}, {"tp", 4}, {"ep", 2}, {"etp", 3}};
  expect_error(load(d), "/parallel/etp", "3", {"does not divide tp*cp*dp=8", "folded", "use 1, 2, 4 or 8"});
  // etp*ep must divide tp*cp*dp; "auto" also says why EP along DP did not apply.
  d["parallel"] = {{"dp", 2}, {"tp", 2}, {"ep", 8}, {"etp", 1}};
  expect_error(load(d), "/parallel/ep", "8",
               {"ep*etp=8 does not divide tp*cp*dp=4", "ep does not divide dp=2", "use ep in 1, 2 or 4"});
  // An expert-TP group across TP groups (etp > tp, or tp not innermost) is accepted.
  d["parallel"] = {{"dp", 4}, {"tp", 2}, {"ep", 2}, {"etp", 2}, {"ep_layout", "folded"}, {"order", "dp-tp-cp-pp"}};
  EXPECT_TRUE(load(d).ok()) << all_errors(load(d));
  d["parallel"] = {{"dp", 4}, {"tp", 2}, {"ep", 2}, {"etp", 4}, {"ep_layout", "folded"}};
  EXPECT_TRUE(load(d).ok()) << all_errors(load(d));
  // An unknown layout lists the accepted ones.
  d["parallel"] = {{"dp", 8}, {"ep", 4}, {"ep_layout", "fold"}};
  expect_error(load(d), "/parallel/ep_layout", "fold", {"\"auto\"", "\"dp\"", "\"folded\""});
  // EP along DP asked for with 1 < etp < tp.
  d["parallel"] = {{"dp", 2}, {"tp", 4}, {"ep", 2}, {"etp", 2}, {"ep_layout", "dp"}};
  expect_error(load(d), "/parallel/etp", "2", {"must be 1 (whole experts) or tp=4", "\"folded\""});
}

TEST(LoaderMoe, TopKAboveExperts) {
  json d = moe_doc();
  d["model"]["top_k"] = 9;
  expect_error(load(d), "/model/top_k", "9", {"exceeds experts=8", "use 1 to 8"});
}

// ZeRO-3 (FSDP) with MoE: dense parts shard over dp, routed experts over expert-DP. With a
// shard group smaller than dp (HSDP) the experts shard over the expert-DP ranks inside one
// dense replica (models/compiler.h): every expert-DP group must split evenly over the replicas.
TEST(LoaderMoe, ZeroThreeAndHsdp) {
  json d = moe_doc();   // dp = 8, ep = 4
  d["parallel"]["zero"] = 3;
  auto ok = load(d);
  ASSERT_TRUE(ok.ok()) << all_errors(ok);
  EXPECT_EQ(ok->parallel.zero, 3);
  d["parallel"]["fsdp_shard_group"] = 8;   // all of dp: plain FSDP
  auto all = load(d);
  EXPECT_TRUE(all.ok()) << all_errors(all);
  // Shard group 4: two replicas; edp = dp/ep = 2 splits into expert shard groups of one rank.
  d["parallel"]["fsdp_shard_group"] = 4;
  auto hsdp = load(d);
  ASSERT_TRUE(hsdp.ok()) << all_errors(hsdp);
  EXPECT_EQ(hsdp->parallel.fsdp_shard_group, 4);
  auto es = expert_shard_group(hsdp->parallel);
  ASSERT_TRUE(es.ok()) << es.status().to_string();
  EXPECT_EQ(es.value(), 1);
  d["parallel"]["ep"] = 2;   // edp = 4 over 2 replicas: expert shard groups of 2
  hsdp = load(d);
  ASSERT_TRUE(hsdp.ok()) << all_errors(hsdp);
  EXPECT_EQ(expert_shard_group(hsdp->parallel).value(), 2);
  // Shard group 2 with ep = 4: an EP group (4 consecutive DP ranks) spans two replicas, and
  // edp = 2 cannot split over the 4 replicas: an error naming the path, the value and what works.
  d["parallel"]["ep"] = 4;
  d["parallel"]["fsdp_shard_group"] = 2;
  expect_error(load(d), "/parallel/fsdp_shard_group", "2",
               {"fsdp_shard_group=2 < dp=8", "HSDP with MoE", "edp=2", "dp/fsdp_shard_group=4 replicas",
                "accepted: 0, 4 or 8", "ep=4"});
}

TEST(LoaderMoe, EpOnDenseModel) {
  json d = base_doc();
  d["parallel"]["ep"] = 8;
  expect_error(load(d), "/parallel/ep", "8", {"needs a MoE model"});
  d = base_doc();
  d["model"]["experts"] = 8;
  expect_error(load(d), "/model/experts", "8", {"a MoE field on a dense model", "\"moe\""});
  d = base_doc();
  d["model"]["arch"] = "sparse";
  expect_error(load(d), "/model/arch", "sparse", {"\"dense\" or \"moe\""});
}

TEST(LoaderMoe, RoutingSection) {
  json d = moe_doc();
  d["moe"] = {{"routing", "zipf"}};
  expect_error(load(d), "/moe/skew", "", {"missing", "zipf"});
  d["moe"] = {{"routing", "zipf"}, {"skew", 1.2}, {"seed", 5}};
  auto ok = load(d);
  ASSERT_TRUE(ok.ok()) << all_errors(ok);
  EXPECT_EQ(ok->training.moe.kind, MoeRouting::kZipf);
  EXPECT_DOUBLE_EQ(ok->training.moe.skew, 1.2);
  EXPECT_EQ(ok->training.moe.seed, 5u);
  d["moe"] = {{"routing", "histogram"}, {"histogram", "no_such_hist.json"}};
  expect_error(load(d), "/moe/histogram", "no_such_hist.json", {"cannot open", "relative to the scenario"});
  d["moe"] = {{"routing", "histogram"}};
  expect_error(load(d), "/moe/histogram", "", {"required for routing \"histogram\""});
  d["moe"] = {{"routing", "hot"}};
  expect_error(load(d), "/moe/routing", "hot", {"\"balanced\", \"uniform\", \"zipf\" or \"histogram\""});
  d["moe"] = {{"routin", "zipf"}};
  expect_error(load(d), "/moe/routin", "", {"did you mean \"routing\""});
}

TEST(LoaderMoe, HistogramFileRelativeToScenario) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "trainsim_moe_hist_test";
  fs::create_directories(dir);
  {
    std::ofstream(dir / "hist.json") << "[10, 20, 30, 40, 50, 60, 70, 80]";
    std::ofstream(dir / "short.json") << "[1, 2, 3]";
  }
  json d = moe_doc();
  d["moe"] = {{"routing", "histogram"}, {"histogram", "hist.json"}};
  auto r = load_scenario_text(d.dump(), (dir / "s.json").string());
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->training.moe.histogram.size(), 8u);
  d["moe"]["histogram"] = "short.json";
  auto bad = load_scenario_text(d.dump(), (dir / "s.json").string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().to_string().find("has 3 entries; the model has experts=8"), std::string::npos)
      << bad.status().to_string();
  fs::remove_all(dir);
}

TEST(LoaderErrors, UnknownNetworkModeListsBoth) {
  json d = base_doc();
  d["network"] = {{"mode", "flows"}};
  expect_error(load(d), "/network/mode", "flows", {"unknown value", "\"analytic\"", "\"flow\""});
}

TEST(LoaderErrors, FsdpShardGroupMustDivideDp) {
  json d = base_doc();
  d["parallel"]["zero"] = 3;
  d["parallel"]["fsdp_shard_group"] = 3;
  expect_error(load(d), "/parallel/fsdp_shard_group", "3", {"must divide dp=8", "1, 2, 4 or 8"});
  {  // a shard group without ZeRO: nothing is sharded
    json z = d;
    z["parallel"]["fsdp_shard_group"] = 2;
    z["parallel"]["zero"] = 0;
    expect_error(load(z), "/parallel/fsdp_shard_group", "2", {"zero is 0", "accepted: 0 or 8 with zero 0"});
  }
}

TEST(LoaderErrors, ZeroStageRange) {
  json d = base_doc();
  d["parallel"]["zero"] = 4;
  expect_error(load(d), "/parallel/zero", "4", {"from 0 to 3"});
}

TEST(LoaderErrors, DpBucketNeedsUnit) {
  json d = base_doc();
  d["parallel"]["dp_bucket"] = 40;
  expect_error(load(d), "/parallel/dp_bucket", "40", {"missing unit", "\"40MiB\""});
  d["parallel"]["dp_bucket"] = "40 megs";
  expect_error(load(d), "/parallel/dp_bucket", "40 megs", {"unknown unit", "MiB"});
}

TEST(LoaderErrors, BadOrder) {
  json d = base_doc();
  d["parallel"]["order"] = "tp-dp-pp";
  expect_error(load(d), "/parallel/order", "tp-dp-pp", {"permutation", "tp-cp-dp-pp"});
}

TEST(LoaderErrors, NicGivenTwice) {
  json d = base_doc();
  d["cluster"]["nic_gbps_per_gpu"] = 400;
  expect_error(load(d), "/cluster/nic_gbps_per_gpu", "400", {"not both"});
}

// The plan lays out every layer of every micro-batch: more than 2,000,000 layer passes per step
// (137 billion micro-batches used to wrap around and print an 11 ms step; 10,000 layers x
// 8,192 micro-batches ran out of memory) is an error on global_batch.
TEST(LoaderErrors, TooManyLayerPassesPerStep) {
  json d = base_doc();
  d["training"]["global_batch"] = int64_t{1} << 40;
  expect_error(load(d), "/training/global_batch", "1099511627776", {"layer passes per step", "at most 2000000"});
}

// Bandwidths below a gigabit are out of range: 1e-300 Gbit/s used to overflow the replay's
// picoseconds and abort (found by mutating scenario files at random).
TEST(LoaderErrors, BandwidthBelowAGigabit) {
  json d = base_doc();
  d["cluster"].erase("nic_bandwidth");
  d["cluster"]["nic_gbps_per_gpu"] = 1e-300;
  expect_error(load(d), "/cluster/nic_gbps_per_gpu", "1e-300", {"from 1 to 1000000"});
  json e = base_doc();
  e["cluster"]["nvlink_bandwidth"] = "100Mbps";
  expect_error(load(e), "/cluster/nvlink_bandwidth", "\"100Mbps\"", {"below 1Gbps"});
}

TEST(LoaderErrors, InlineModelProblems) {
  json d = base_doc();
  d["model"] = {{"name", "x"}, {"layers", 4}, {"hidden", 512}, {"heads", 8}, {"vocab", 100},
                {"activation", "swiglu"}};
  expect_error(load(d), "/model/ffn_hidden", "", {"required for swiglu"});
  d["model"] = {{"layers", 4}, {"hidden", 512}, {"heads", 8}, {"kv_heads", 3}, {"vocab", 100}};
  expect_error(load(d), "/model/kv_heads", "3", {"must divide heads=8", "1, 2, 4 or 8"});
  d["model"] = {{"layers", 4}, {"hidden", 500}, {"heads", 8}, {"vocab", 100}};
  expect_error(load(d), "/model/heads", "8", {"does not divide hidden=500", "head_dim"});
  d["model"] = {{"hidden", 512}, {"heads", 8}};
  auto r = load(d);
  expect_error(r, "/model/layers", "", {"missing"});
  expect_error(r, "/model/vocab", "", {"missing"});
}

TEST(LoaderErrors, MissingFile) {
  auto r = load_scenario_file("/nonexistent/dir/x.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().errors()[0].file, "/nonexistent/dir/x.json");
  EXPECT_NE(r.status().errors()[0].message.find("cannot open"), std::string::npos);
}

TEST(LoaderErrors, ThreeProblemsReportedTogether) {
  json d = base_doc();
  d["cluster"]["nic_bandwidth"] = "400";      // 1: missing unit
  d["parallel"]["schedule"] = "zb";           // 2: unknown schedule
  d["training"]["global_batch"] = 60;         // 3: not a multiple of micro_batch*dp
  auto r = load(d);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().errors().size(), 3u) << r.status().to_string();
  expect_error(r, "/cluster/nic_bandwidth", "400", {"missing unit"});
  expect_error(r, "/parallel/schedule", "zb", {"unknown value"});
  expect_error(r, "/training/global_batch", "60", {"not a multiple"});
}

TEST(LoaderErrors, OneMistakeIsReportedOnce) {
  // An unknown model must not also produce "tp does not divide heads" and friends.
  json d = base_doc();
  d["model"] = {{"name", "nope"}};
  d["parallel"]["tp"] = 3;
  auto r = load(d);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().errors().size(), 2u) << r.status().to_string();  // model + gpus mismatch
}

TEST(LoaderErrors, ErrorTextFormat) {
  json d = base_doc();
  d["parallel"]["tpp"] = 2;
  auto r = load(d);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().errors()[0].to_string(), "error: test.json: /parallel/tpp: unknown key; did you mean \"tp\"?");
}

// ---- overrides -------------------------------------------------------------------------------

TEST(Overrides, Apply) {
  auto r = load(base_doc(), {"parallel.tp=2", "parallel.dp=4", "cluster.nic_bandwidth=200Gbps",
                             "training.precision=\"fp8\"", "parallel.sequence_parallel=true",
                             "parallel.recompute=full", "seed=7", "name=renamed",
                             "parallel.dp_bucket=25MB"});
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->parallel.tp, 2);
  EXPECT_EQ(r->parallel.dp, 4);
  EXPECT_DOUBLE_EQ(r->cluster.nic_bandwidth.Bps(), 25e9);
  EXPECT_EQ(r->training.precision, DType::kFP8);
  EXPECT_TRUE(r->parallel.sequence_parallel);
  EXPECT_EQ(r->parallel.recompute, Recompute::kFull);
  EXPECT_EQ(r->options.seed, 7u);
  EXPECT_EQ(r->name, "renamed");
  EXPECT_EQ(r->parallel.dp_bucket_mb, 24);  // 25e6 bytes = 23.8 MiB, rounded to the nearest MiB
}

// KEY=null removes the key: an optional one takes its default, a required one is missing (blamed
// on --set); a key the file lacks stays absent.
TEST(Overrides, NullRemovesTheKey) {
  json d = base_doc();
  d["parallel"]["pp"] = 2;
  d["parallel"]["dp"] = 4;
  d["parallel"]["layers_per_stage"] = json::array({10, 22});
  auto with = load(d);
  ASSERT_TRUE(with.ok()) << all_errors(with);
  EXPECT_EQ(with->parallel.layers_per_stage, (std::vector<int>{10, 22}));
  auto without = load(d, {"parallel.layers_per_stage=null", "parallel.zero3_gather=null", "seed=null"});
  ASSERT_TRUE(without.ok()) << all_errors(without);
  EXPECT_TRUE(without->parallel.layers_per_stage.empty()) << "an even split";
  expect_error(load(d, {"training.seq_len=null"}), "/training/seq_len", "", {"missing; required"}, "--set");
}

TEST(Overrides, CreateSectionsAndSwapModel) {
  auto r = load(base_doc(), {"model.name=llama3-70b", "parallel.tp=8", "parallel.dp=1",
                             "network.mode=analytic", "costs.calibration=calib/h100.db",
                             "parallel.layers_per_stage=[80]"});
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->model.name, "llama3-70b");
  EXPECT_EQ(r->options.calibration, "calib/h100.db");
  EXPECT_EQ(r->parallel.layers_per_stage, std::vector<int>{80});
}

TEST(Loader, AttentionKernelAndDropout) {
  auto r = load(base_doc());
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->training.attention_kernel, AttentionKernel::kFlash);
  EXPECT_FALSE(r->training.dropout);
  r = load(base_doc(), {"training.attention_kernel=unfused", "training.dropout=true"});
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->training.attention_kernel, AttentionKernel::kUnfused);
  EXPECT_TRUE(r->training.dropout);
  r = load(base_doc(), {"training.attention_kernel=fast"});
  expect_error(r, "/training/attention_kernel", "fast", {"\"flash\", \"cudnn\", \"flash1\" or \"unfused\""}, "--set");
  r = load(base_doc(), {"training.attention_kernel=flash1"});
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->training.attention_kernel, AttentionKernel::kFlash1);
}

TEST(Loader, Framework) {
  auto r = load(base_doc());
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->training.framework, Framework::kFused);
  r = load(base_doc(), {"training.framework=torch_eager"});
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->training.framework, Framework::kTorchEager);
  r = load(base_doc(), {"training.framework=TORCH_COMPILE"});
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->training.framework, Framework::kTorchCompile);
  r = load(base_doc(), {"training.framework=jax"});
  expect_error(r, "/training/framework", "jax", {"\"fused\"", "\"torch_compile\"", "\"torch_eager\""}, "--set");
}

TEST(Overrides, EmbeddedQuickstart) {
  auto r = load_embedded_quickstart({"parallel.zero=2"});
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->parallel.zero, 2);
}

// ---- robustness ------------------------------------------------------------------------------

// Replaces every value (and every section) of a valid document with junk, one at a time, and
// with several at once: the loader must return, never crash.
TEST(Robustness, JunkEverywhereNeverCrashes) {
  const json base = base_doc();
  const std::vector<json> junk = {nullptr, json::array(), json::object(), "x", "", -1, 0,
                                  1e300, -1e300, 18446744073709551615ull, true, 3.5,
                                  json::array({1, "a", nullptr}), json{{"a", 1}},
                                  "\xff\xfe", "400", "-5Gbps", "1e999Gbps", "0GB/s"};
  int loaded = 0, failed = 0;
  for (const auto& [sec, body] : base.items()) {
    for (const auto& j : junk) {
      json d = base;
      d[sec] = j;
      auto r = load_scenario_json(d, "test.json");
      (r.ok() ? loaded : failed)++;
    }
    if (!body.is_object()) continue;
    for (const auto& [key, v] : body.items()) {
      for (const auto& j : junk) {
        json d = base;
        d[sec][key] = j;
        auto r = load_scenario_json(d, "test.json");
        if (!r.ok()) {
          EXPECT_FALSE(r.status().errors().empty());
        }
        (r.ok() ? loaded : failed)++;
      }
    }
  }
  std::mt19937_64 rng(42);
  std::vector<std::string> paths = {"parallel.tp", "parallel.pp", "parallel.vp", "parallel.dp",
                                    "cluster.gpus", "training.global_batch", "model.layers",
                                    "model.heads", "model.hidden", "parallel.layers_per_stage",
                                    "cluster.gpus_per_node", "training.micro_batch"};
  std::vector<std::string> values = {"0", "1", "2", "3", "7", "8", "64", "-1", "1e9",
                                     "4294967297", "null", "[1,2]", "{}", "\"a\"", "true"};
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::string> ov;
    int n = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < n; ++k)
      ov.push_back(paths[rng() % paths.size()] + "=" + values[rng() % values.size()]);
    auto r = load_scenario_json(base, "test.json", ov);
    (r.ok() ? loaded : failed)++;
  }
  EXPECT_GT(failed, 0);
  EXPECT_GT(loaded, 0);
}

TEST(Robustness, TruncatedTextNeverCrashes) {
  const std::string text = base_doc().dump(2);
  for (size_t n = 0; n < text.size(); n += 3) {
    auto r = load_scenario_text(text.substr(0, n), "cut.json");
    EXPECT_FALSE(r.ok());
  }
}

// ---- unit parsers ------------------------------------------------------------------------------

TEST(Units, Bandwidth) {
  Bandwidth b;
  std::string why;
  ASSERT_TRUE(parse_bandwidth("400Gbps", &b, &why));
  EXPECT_DOUBLE_EQ(b.Bps(), 50e9);
  ASSERT_TRUE(parse_bandwidth("50 GB/s", &b, &why));
  EXPECT_DOUBLE_EQ(b.Bps(), 50e9);
  ASSERT_TRUE(parse_bandwidth("1.6Tbps", &b, &why));
  EXPECT_DOUBLE_EQ(b.Bps(), 200e9);
  ASSERT_TRUE(parse_bandwidth("25GiB/s", &b, &why));
  EXPECT_DOUBLE_EQ(b.Bps(), 25.0 * (1 << 30));
  EXPECT_FALSE(parse_bandwidth("400", &b, &why));
  EXPECT_NE(why.find("missing unit"), std::string::npos);
  EXPECT_FALSE(parse_bandwidth("400gbps", &b, &why));
  EXPECT_NE(why.find("b = bits, B = bytes"), std::string::npos);
  EXPECT_FALSE(parse_bandwidth("0Gbps", &b, &why));
  EXPECT_FALSE(parse_bandwidth("-1Gbps", &b, &why));
  EXPECT_FALSE(parse_bandwidth("Gbps", &b, &why));
  EXPECT_FALSE(parse_bandwidth("", &b, &why));
  EXPECT_FALSE(parse_bandwidth("nanGbps", &b, &why));
  // Below a gigabit: out of range (times of days overflowed the replay's picoseconds)
  ASSERT_TRUE(parse_bandwidth("1Gbps", &b, &why));
  EXPECT_FALSE(parse_bandwidth("999Mbps", &b, &why));
  EXPECT_NE(why.find("below 1Gbps"), std::string::npos) << why;
  EXPECT_FALSE(parse_bandwidth("1e-300Gbps", &b, &why));
}

TEST(Units, Size) {
  Bytes s;
  std::string why;
  ASSERT_TRUE(parse_size("40MiB", &s, &why));
  EXPECT_EQ(s, Bytes::MiB(40));
  ASSERT_TRUE(parse_size("1.5 GiB", &s, &why));
  EXPECT_EQ(s.count(), 3 * (int64_t{1} << 29));
  ASSERT_TRUE(parse_size("25MB", &s, &why));
  EXPECT_EQ(s.count(), 25'000'000);
  EXPECT_FALSE(parse_size("40", &s, &why));
  EXPECT_NE(why.find("\"40MiB\""), std::string::npos);
  EXPECT_FALSE(parse_size("1e30GiB", &s, &why));
}

TEST(Units, Count) {
  int64_t n = 0;
  std::string why;
  ASSERT_TRUE(parse_count("300B", &n, &why)) << why;
  EXPECT_EQ(n, 300'000'000'000);
  ASSERT_TRUE(parse_count("15T", &n, &why)) << why;
  EXPECT_EQ(n, 15'000'000'000'000);
  ASSERT_TRUE(parse_count("2.5M", &n, &why)) << why;
  EXPECT_EQ(n, 2'500'000);
  ASSERT_TRUE(parse_count("500k", &n, &why)) << why;
  EXPECT_EQ(n, 500'000);
  ASSERT_TRUE(parse_count(" 1e12 ", &n, &why)) << why;
  EXPECT_EQ(n, 1'000'000'000'000);
  ASSERT_TRUE(parse_count("4096", &n, &why)) << why;
  EXPECT_EQ(n, 4096);
  ASSERT_TRUE(parse_count("1e18", &n, &why)) << why;
  EXPECT_EQ(n, 1'000'000'000'000'000'000);
  EXPECT_FALSE(parse_count("15X", &n, &why));
  EXPECT_NE(why.find("unknown unit \"X\""), std::string::npos) << why;
  EXPECT_FALSE(parse_count("15GB", &n, &why));
  EXPECT_FALSE(parse_count("-5T", &n, &why));
  EXPECT_NE(why.find("at least 1"), std::string::npos) << why;
  EXPECT_FALSE(parse_count("0", &n, &why));
  EXPECT_FALSE(parse_count("0.4", &n, &why));   // rounds to 0
  EXPECT_FALSE(parse_count("T", &n, &why));
  EXPECT_FALSE(parse_count("", &n, &why));
  EXPECT_FALSE(parse_count("2e6T", &n, &why));
  EXPECT_NE(why.find("too large"), std::string::npos) << why;
  EXPECT_EQ(n, 1'000'000'000'000'000'000) << "a refused count leaves the output alone";
}

TEST(Loader, TrainTokensTakeANumberOrASuffixedString) {
  auto r = load(base_doc());
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->training.train_tokens, 0) << "not asked unless set";
  json d = base_doc();
  d["training"]["train_tokens"] = "15T";
  r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->training.train_tokens, 15'000'000'000'000);
  d["training"]["train_tokens"] = 3e11;
  r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->training.train_tokens, 300'000'000'000);
  d["training"]["train_tokens"] = 1000000;
  r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->training.train_tokens, 1'000'000);
  r = load(base_doc(), {"training.train_tokens=300B"});
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->training.train_tokens, 300'000'000'000);

  d["training"]["train_tokens"] = "15 trillion";
  expect_error(load(d), "/training/train_tokens", "\"15 trillion\"", {"unknown unit", "accepted suffixes", "\"15T\""});
  d["training"]["train_tokens"] = -1;
  expect_error(load(d), "/training/train_tokens", "-1", {"at least 1"});
  d["training"]["train_tokens"] = 0;
  expect_error(load(d), "/training/train_tokens", "0", {"at least 1"});
  d["training"]["train_tokens"] = true;
  expect_error(load(d), "/training/train_tokens", "true", {"a number of tokens", "got a boolean"});
  d["training"]["train_tokens"] = json::array({1});
  expect_error(load(d), "/training/train_tokens", "[1]", {"got an array"});
  d["training"]["train_tokens"] = 1e30;
  expect_error(load(d), "/training/train_tokens", "1e+30", {"too large"});
  // With other errors: every one is reported.
  d["training"]["seq_len"] = 0;
  const std::string all = all_errors(load(d));
  EXPECT_NE(all.find("/training/train_tokens"), std::string::npos) << all;
  EXPECT_NE(all.find("/training/seq_len"), std::string::npos) << all;
}

TEST(Units, Duration) {
  double s = 0;
  std::string why;
  ASSERT_TRUE(parse_duration("30s", &s, &why)) << why;
  EXPECT_EQ(s, 30.0);
  ASSERT_TRUE(parse_duration("5min", &s, &why)) << why;
  EXPECT_EQ(s, 300.0);
  ASSERT_TRUE(parse_duration("1.5h", &s, &why)) << why;
  EXPECT_EQ(s, 5400.0);
  ASSERT_TRUE(parse_duration("250ms", &s, &why)) << why;
  EXPECT_EQ(s, 0.25);
  ASSERT_TRUE(parse_duration("0s", &s, &why)) << why;
  EXPECT_FALSE(parse_duration("30", &s, &why));
  EXPECT_NE(why.find("missing unit"), std::string::npos) << why;
  EXPECT_FALSE(parse_duration("-5s", &s, &why));
  EXPECT_FALSE(parse_duration("5 parsecs", &s, &why));
  EXPECT_NE(why.find("unknown unit"), std::string::npos) << why;
  EXPECT_FALSE(parse_duration("1e9h", &s, &why));
  EXPECT_NE(why.find("too long"), std::string::npos) << why;
}

TEST(Loader, FailuresSectionNeedsItsTimesAndTheTokens) {
  json d = base_doc();
  d["training"]["train_tokens"] = "1T";
  d["failures"] = {{"checkpoint_write", "30s"}, {"restart", "10min"}};
  auto r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  const FailureSpec& f = r->training.failures;
  EXPECT_TRUE(f.present);
  EXPECT_TRUE(f.rate_default);
  EXPECT_DOUBLE_EQ(f.per_gpu_hour, 419.0 / (54.0 * 24 * 16384));
  EXPECT_EQ(f.checkpoint_write_s, 30.0);
  EXPECT_EQ(f.restart_s, 600.0);
  EXPECT_EQ(f.interval_s, 0.0) << "auto";
  d["failures"]["checkpoint_interval"] = "auto";
  d["failures"]["per_gpu_hour"] = 1e-5;
  r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_FALSE(r->training.failures.rate_default);
  EXPECT_EQ(r->training.failures.per_gpu_hour, 1e-5);
  EXPECT_EQ(r->training.failures.interval_s, 0.0);
  r = load(d, {"failures.checkpoint_interval=20min"});
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->training.failures.interval_s, 1200.0);
  // Without the section: not present, the default rate.
  json plain = base_doc();
  r = load(plain);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->training.failures.present);

  json e = d;
  e["failures"].erase("restart");
  expect_error(load(e), "/failures/restart", "", {"missing", "e.g. \"10min\""});
  e = d;
  e["failures"]["checkpoint_write"] = 30;
  expect_error(load(e), "/failures/checkpoint_write", "30", {"expected a duration", "got a number"});
  e = d;
  e["failures"]["checkpoint_write"] = "30 fortnights";
  expect_error(load(e), "/failures/checkpoint_write", "30 fortnights", {"unknown unit", "\"5min\""});
  e = d;
  e["failures"]["checkpoint_interval"] = "0s";
  expect_error(load(e), "/failures/checkpoint_interval", "0s", {"longer than 0", "\"auto\""});
  e = d;
  e["failures"]["per_gpu_hour"] = 2;
  expect_error(load(e), "/failures/per_gpu_hour", "2", {"from 0 to 1"});
  e = d;
  e["failures"]["mtbf"] = "3h";
  expect_error(load(e), "/failures/mtbf", "", {"unknown key"});
  e = d;
  e["training"].erase("train_tokens");
  expect_error(load(e), "/failures", "", {"set training.train_tokens"});
}

TEST(Loader, GpuSpeedSectionReadsItsSpreadAndOutliers) {
  json d = base_doc();
  d["seed"] = 7;
  auto r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_FALSE(r->options.gpu_speed.present);
  d["gpu_speed"] = {{"cv", 0.03}};
  r = load(d);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  const GpuSpeedSpec& g = r->options.gpu_speed;
  EXPECT_TRUE(g.present);
  EXPECT_EQ(g.cv, 0.03);
  EXPECT_EQ(g.slow_share, 0.0);
  EXPECT_EQ(g.seed, 7u) << "the scenario's seed unless the section names one";
  r = load(d, {"gpu_speed.slow_share=0.001", "gpu_speed.slow_speed=0.67", "gpu_speed.seed=9"});
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->options.gpu_speed.slow_share, 0.001);
  EXPECT_EQ(r->options.gpu_speed.slow_speed, 0.67);
  EXPECT_EQ(r->options.gpu_speed.seed, 9u);
  r = load(base_doc(), {"gpu_speed.cv=0.02"});   // --set makes the section
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->options.gpu_speed.cv, 0.02);

  json e = d;
  e["gpu_speed"]["cv"] = 0.5;
  expect_error(load(e), "/gpu_speed/cv", "0.5", {"too large", "from 0 to 0.3"});
  e = d;
  e["gpu_speed"]["cv"] = "3%";
  expect_error(load(e), "/gpu_speed/cv", "3%", {"got a string"});
  e = d;
  e["gpu_speed"]["slow_share"] = 0.01;
  expect_error(load(e), "/gpu_speed", "", {"slow_share and slow_speed come together"});
  e["gpu_speed"]["slow_speed"] = 0;
  expect_error(load(e), "/gpu_speed/slow_speed", "0", {"too small", "from 0.05 to 1"});
  e = d;
  e["gpu_speed"] = json::object();
  expect_error(load(e), "/gpu_speed", "{}", {"give cv"});
  r = load(d, {"gpu_speed.spare_share=0.02"});
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r->options.gpu_speed.spare_share, 0.02);
  e = d;
  e["gpu_speed"]["spare_share"] = 1.5;
  expect_error(load(e), "/gpu_speed/spare_share", "1.5", {"too large", "from 0 to 1"});
  e = d;
  e["gpu_speed"]["sigma"] = 0.1;
  expect_error(load(e), "/gpu_speed/sigma", "", {"unknown key"});
  e = d;
  e["gpu_speed"]["seed"] = -1;
  expect_error(load(e), "/gpu_speed/seed", "-1", {"non-negative integer"});
  e = d;
  e["gpu_speed"] = 0.03;
  expect_error(load(e), "/gpu_speed", "0.03", {"expected an object"});
}

TEST(SpecNames, RoundTrip) {
  for (DType d : {DType::kBF16, DType::kFP16, DType::kFP8, DType::kFP32}) {
    DType back;
    ASSERT_TRUE(parse_dtype(to_string(d), &back));
    EXPECT_EQ(back, d);
  }
  for (Schedule s : {Schedule::kGpipe, Schedule::k1F1B, Schedule::kInterleaved}) {
    Schedule back;
    ASSERT_TRUE(parse_schedule(to_string(s), &back));
    EXPECT_EQ(back, s);
  }
  for (Recompute s : {Recompute::kNone, Recompute::kSelective, Recompute::kFull}) {
    Recompute back;
    ASSERT_TRUE(parse_recompute(to_string(s), &back));
    EXPECT_EQ(back, s);
  }
  Activation a;
  EXPECT_TRUE(parse_activation("SwiGLU", &a));
  EXPECT_EQ(a, Activation::kSwiglu);
  NormKind n;
  EXPECT_TRUE(parse_norm("RMSNorm", &n));
  EXPECT_EQ(n, NormKind::kRMSNorm);
  EXPECT_FALSE(parse_dtype("int8", nullptr));
  EXPECT_EQ(bytes_of(DType::kBF16), 2);
  EXPECT_EQ(bytes_of(DType::kFP8), 1);
  EXPECT_EQ(bytes_of(DType::kFP32), 4);
}

}  // namespace
}  // namespace trainsim
