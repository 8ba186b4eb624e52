// Published runs (../shared/validation/published_runs.jsonl) as scenarios: every row converts
// without crashing; dense rows without context parallelism give valid scenarios; MoE and CP
// rows are reported unsupported; the defaults applied are listed.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "scenarios/published_run.h"

namespace trainsim {
namespace {

using json = nlohmann::json;

const std::string kRuns = std::string(TRAINSIM_SOURCE_DIR) + "/../shared/validation/published_runs.jsonl";

bool has_default(const RowScenario& r, const std::string& prefix) {
  return std::any_of(r.defaults.begin(), r.defaults.end(),
                     [&](const std::string& d) { return d.rfind(prefix, 0) == 0; });
}

std::vector<json> rows() {
  auto r = read_jsonl(kRuns);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.status().to_string());
  return r.ok() ? r.value() : std::vector<json>{};
}

TEST(PublishedRuns, EveryRowConverts) {
  auto all = rows();
  ASSERT_GE(all.size(), 50u);
  int simulated = 0;
  for (const auto& row : all) {
    if (row.contains("row_kind")) continue;
    const std::string id = row["id"].get<std::string>();
    auto r = scenario_from_row(row);
    ASSERT_TRUE(r.ok()) << id << ": " << r.status().to_string();
    const bool moe = row["model"]["arch"] == "moe";
    {
      EXPECT_EQ(r->unsupported, "") << id;
      const Scenario& s = r->scenario;
      EXPECT_EQ(s.name, id);
      EXPECT_EQ(s.cluster.gpus, s.parallel.tp * s.parallel.pp * s.parallel.dp * s.parallel.cp) << id;
      EXPECT_EQ(s.training.global_batch % (s.training.micro_batch * s.parallel.dp), 0) << id;
      EXPECT_EQ(s.model.heads % s.parallel.tp, 0) << id;
      EXPECT_GT(s.model.head_dim, 0) << id;
      EXPECT_EQ(s.model.is_moe(), moe) << id;
      EXPECT_GT(s.cluster.nic_bandwidth.Bps(), 0) << id;
      ++simulated;
    }
  }
  EXPECT_GE(simulated, 45);
}

TEST(PublishedRuns, MegatronDefaults) {
  for (const auto& row : rows()) {
    if (row["id"] != "mlm-sc21-t1-1.7B") continue;
    auto r = scenario_from_row(row);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->unsupported, "");
    const Scenario& s = r->scenario;
    EXPECT_EQ(s.model.name, "GPT 1.7B (Megatron SC'21)");
    EXPECT_EQ(s.model.heads, 24);  // the catalog's SC'21 1.7B model (same layers and hidden)
    EXPECT_EQ(s.model.kv_heads, 24);
    EXPECT_EQ(s.training.attention_kernel, AttentionKernel::kUnfused);  // pre-FlashAttention run
    EXPECT_TRUE(s.training.dropout);
    EXPECT_EQ(s.model.ffn_hidden, 4 * 2304);
    EXPECT_EQ(s.training.micro_batch, 1);
    EXPECT_EQ(s.parallel.recompute, Recompute::kFull);
    EXPECT_EQ(s.parallel.schedule, Schedule::k1F1B);
    EXPECT_TRUE(s.model.tied_embeddings);
    EXPECT_TRUE(has_default(r.value(), "heads=24 (null in row; catalog model"));
    EXPECT_TRUE(has_default(r.value(), "attention_kernel=unfused"));
    EXPECT_TRUE(has_default(r.value(), "micro_batch=1 (null in row)"));
    EXPECT_TRUE(has_default(r.value(), "recompute=full"));
    EXPECT_TRUE(has_default(r.value(), "precision=bf16"));
    EXPECT_TRUE(has_default(r.value(), "nic_gbps_per_gpu=200"));
    return;
  }
  FAIL() << "row mlm-sc21-t1-1.7B not found";
}

TEST(PublishedRuns, InterleavedAndUnevenRows) {
  int seen = 0;
  for (const auto& row : rows()) {
    const std::string id = row.value("id", "");
    if (id == "korthikanti-t5-175B-seqsel") {
      auto r = scenario_from_row(row);
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->unsupported, "");
      EXPECT_EQ(r->scenario.parallel.vp, 3);
      EXPECT_EQ(r->scenario.parallel.schedule, Schedule::kInterleaved);
      EXPECT_EQ(r->scenario.parallel.recompute, Recompute::kSelective);
      EXPECT_TRUE(r->scenario.parallel.sequence_parallel);
      EXPECT_TRUE(has_default(r.value(), "vocab=51200"));
      ++seen;
    }
    if (id == "bloom-176b-384gpu") {
      auto r = scenario_from_row(row);
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->unsupported, "");
      std::vector<int> want(12, 6);
      want.front() = want.back() = 5;  // 70 layers over 12 stages
      EXPECT_EQ(r->scenario.parallel.layers_per_stage, want);
      EXPECT_TRUE(has_default(r.value(), "layers_per_stage="));
      EXPECT_EQ(r->scenario.cluster.scale_out, ScaleOut::kOmniPath);
      ++seen;
    }
    if (id == "mpt-a100-70b-seq2048-64gpu") {
      auto r = scenario_from_row(row);
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->unsupported, "");
      EXPECT_DOUBLE_EQ(r->scenario.cluster.nic_bandwidth.Bps(), 25e9);  // 200 Gbit/s
      EXPECT_EQ(r->scenario.parallel.zero, 3);
      ++seen;
    }
    if (id == "torchtitan-t2-8B-8gpu-cp1-seq32768") {
      auto r = scenario_from_row(row);
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->unsupported, "") << r->unsupported;
      EXPECT_EQ(r->scenario.training.precision, DType::kFP8);
      EXPECT_EQ(r->scenario.model.norm, NormKind::kRMSNorm);
      EXPECT_FALSE(r->scenario.model.tied_embeddings);
      ++seen;
    }
  }
  EXPECT_EQ(seen, 4);
}

TEST(PublishedRuns, GlobalBatchIsRoundedAndSaid) {
  json row = {{"id", "synthetic"},
              {"model", {{"arch", "dense"}, {"layers", 24}, {"hidden", 2048}, {"heads", 16}}},
              {"training", {{"seq_len", 2048}, {"global_batch", 1000}, {"micro_batch", 1}}},
              {"cluster", {{"gpu", "A100-SXM-80GB"}, {"gpus", 24}}},
              {"parallel", {{"tp", 1}, {"pp", 1}}}};
  auto r = scenario_from_row(row);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->unsupported, "") << r->unsupported;
  EXPECT_EQ(r->scenario.training.global_batch, 1008);  // nearest multiple of 24
  EXPECT_TRUE(has_default(r.value(), "global_batch=1008 (rounded from 1000"));
  EXPECT_TRUE(has_default(r.value(), "dp=24 (null in row"));
  // Fewer sequences than one micro-batch per replica is a contradiction, not a rounding: the
  // batch is left as it is and the row is invalid (it was rounded up 24x here).
  row["training"]["micro_batch"] = 1000;
  auto c = scenario_from_row(row);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(c->unsupported.find("invalid"), std::string::npos) << c->unsupported;
  EXPECT_NE(c->unsupported.find("global_batch"), std::string::npos) << c->unsupported;
}

// A row with a two-chunk schedule and no vp gets vp = 2, said among the defaults; DualPipe's
// rows (no longer unsupported) become DualPipe scenarios.
TEST(PublishedRuns, TwoChunkSchedulesFillVp2) {
  for (const char* sch : {"dualpipe", "dualpipev", "zbv"}) {
    json row = {{"id", std::string("two-") + sch},
                {"model", {{"arch", "dense"}, {"layers", 24}, {"hidden", 2048}, {"heads", 16}}},
                {"training", {{"seq_len", 2048}, {"global_batch", 32}, {"micro_batch", 1}}},
                {"cluster", {{"gpu", "H100-SXM-80GB"}, {"gpus", 8}}},
                {"parallel", {{"tp", 1}, {"pp", 4}, {"schedule", sch}}}};
    auto r = scenario_from_row(row);
    ASSERT_TRUE(r.ok()) << sch;
    ASSERT_EQ(r->unsupported, "") << sch << ": " << r->unsupported;
    EXPECT_EQ(r->scenario.parallel.vp, 2) << sch;
    EXPECT_EQ(to_string(r->scenario.parallel.schedule), std::string(sch));
    EXPECT_TRUE(has_default(r.value(), std::string("vp=2 (null in row; schedule ") + sch)) << sch;
  }
}

TEST(PublishedRuns, UnsupportedAndInvalid) {
  json row = {{"id", "x"},
              {"model", {{"arch", "dense"}, {"layers", 24}, {"hidden", 2048}, {"heads", 16}}},
              {"training", {{"seq_len", 2048}, {"global_batch", 64}}},
              {"cluster", {{"gpu", "A100-SXM-80GB"}, {"gpus", 8}}},
              {"parallel", {{"tp", 1}, {"pp", 1}, {"ep", 2}}}};
  auto r = scenario_from_row(row);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->unsupported.find("ep=2 needs a MoE model"), std::string::npos) << r->unsupported;

  row["parallel"] = {{"tp", 3}};
  r = scenario_from_row(row);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->unsupported.rfind("invalid: ", 0), 0u);
  EXPECT_NE(r->unsupported.find("does not divide heads=16"), std::string::npos) << r->unsupported;

  row["cluster"]["gpu"] = "TPUv5";
  row["parallel"] = json::object();
  r = scenario_from_row(row);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->unsupported.find("unknown GPU"), std::string::npos) << r->unsupported;

  EXPECT_FALSE(scenario_from_row(json::array()).ok());
  EXPECT_FALSE(scenario_from_row(json{{"id", 3}}).ok());
  EXPECT_FALSE(scenario_from_row(json{{"id", "y"}, {"model", 1}}).ok());
}

// MLA rows: the latent dims from the row, else from a catalog MLA model of the same layers and
// hidden (DeepSeek-V3), listed in defaults; without either the row is unsupported.
TEST(PublishedRuns, MlaRows) {
  json row = {{"id", "mla"},
              {"model", {{"arch", "dense"}, {"layers", 4}, {"hidden", 2048}, {"heads", 16}, {"attention", "mla"},
                         {"kv_heads", nullptr}, {"ffn_hidden", 8192}}},
              {"training", {{"seq_len", 2048}, {"global_batch", 64}}},
              {"cluster", {{"gpu", "H100-SXM-80GB"}, {"gpus", 8}}},
              {"parallel", {{"tp", 2}, {"pp", 1}}}};
  auto r = scenario_from_row(row);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->unsupported.find("without kv_lora_rank"), std::string::npos) << r->unsupported;
  row["model"]["kv_lora_rank"] = 256;
  row["model"]["q_lora_rank"] = 512;
  r = scenario_from_row(row);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->unsupported, "") << r->unsupported;
  EXPECT_TRUE(r->scenario.model.mla);
  EXPECT_EQ(r->scenario.model.kv_lora_rank, 256);
  EXPECT_EQ(r->scenario.model.q_lora_rank, 512);
  EXPECT_EQ(r->scenario.model.kv_heads, 16);
  json ds = {{"id", "ds"},
             {"model", {{"arch", "dense"}, {"layers", 61}, {"hidden", 7168}, {"heads", 128}, {"attention", "mla"},
                        {"ffn_hidden", 18432}, {"vocab", 129280}, {"activation", "swiglu"}}},
             {"training", {{"seq_len", 4096}, {"global_batch", 64}}},
             {"cluster", {{"gpu", "H100-SXM-80GB"}, {"gpus", 64}}},
             {"parallel", {{"tp", 8}, {"pp", 8}}}};
  r = scenario_from_row(ds);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->unsupported, "") << r->unsupported;
  EXPECT_EQ(r->scenario.model.kv_lora_rank, 512);
  EXPECT_EQ(r->scenario.model.q_lora_rank, 1536);
  EXPECT_TRUE(has_default(r.value(), "kv_lora_rank=512 (null in row; catalog MLA model deepseek-v3"));
}

TEST(PublishedRuns, HeadsFallBackToHeadDim128WithoutACatalogMatch) {
  json row = rows().front();
  row["id"] = "made-up";
  row["model"]["layers"] = 7;   // no catalog model has 7 layers
  row["model"]["hidden"] = 2560;
  row["model"]["heads"] = nullptr;
  auto r = scenario_from_row(row);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->unsupported, "");
  EXPECT_EQ(r->scenario.model.heads, 20);  // 2560 / 128
  EXPECT_TRUE(has_default(r.value(), "heads=20 (null in row; hidden/128"));
}

TEST(PublishedRuns, JunkRowsNeverCrash) {
  auto all = rows();
  ASSERT_FALSE(all.empty());
  const json base = all.front();
  const std::vector<json> junk = {nullptr, json::array(), json::object(), "x", -1, 0, 1e300,
                                  18446744073709551615ull, true, 2.5};
  for (const auto& [sec, body] : base.items()) {
    if (!body.is_object()) continue;
    for (const auto& [key, v] : body.items()) {
      for (const auto& j : junk) {
        json row = base;
        row[sec][key] = j;
        auto r = scenario_from_row(row);
        (void)r;
      }
    }
  }
}

TEST(PublishedRuns, ReadErrors) {
  EXPECT_FALSE(read_jsonl("/nonexistent/runs.jsonl").ok());
  auto rr = read_run_rows(kRuns);
  ASSERT_TRUE(rr.ok());
  EXPECT_GE(rr->size(), 50u);
  EXPECT_FALSE(rr->front().id.empty());
}

}  // namespace
}  // namespace trainsim

namespace trainsim {
namespace {

// The Megatron-Core Mixtral row is now simulated: MoE fields and ep come through, the defaults
// that fill its nulls are listed.
TEST(PublishedRuns, MixtralRowIsSimulated) {
  bool found = false;
  for (const auto& row : rows()) {
    if (row["id"] != "mcore-mixtral-8x7b-64xh100") continue;
    found = true;
    auto r = scenario_from_row(row);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->unsupported, "") << r->unsupported;
    const Scenario& s = r->scenario;
    EXPECT_TRUE(s.model.is_moe());
    EXPECT_EQ(s.model.experts, 8);
    EXPECT_EQ(s.model.top_k, 2);
    EXPECT_EQ(s.parallel.ep, 8);
    EXPECT_EQ(s.parallel.dp, 16);
    bool listed = false;
    for (const auto& d : r->defaults) listed |= d.find("moe routing=balanced") != std::string::npos;
    EXPECT_TRUE(listed);
    // Megatron-Core on H100: Transformer Engine's cuDNN attention, and the default says why.
    EXPECT_EQ(s.training.attention_kernel, AttentionKernel::kCudnn);
    EXPECT_TRUE(has_default(r.value(), "attention_kernel=cudnn, dropout=false (not in the row schema; Megatron-Core on Hopper"));
    // The same row on an A100 has no cuDNN figure in the default: FlashAttention-2 prices it.
    json a100 = row;
    a100["cluster"]["gpu"] = "A100-SXM-80GB";
    auto ra = scenario_from_row(a100);
    ASSERT_TRUE(ra.ok()) << ra.status().to_string();
    EXPECT_EQ(ra->scenario.training.attention_kernel, AttentionKernel::kFlash);
  }
  EXPECT_TRUE(found);
}

TEST(ScenarioRows, LoadTheFileWithTheirOverrides) {
  const std::string dir = std::string(TRAINSIM_SOURCE_DIR) + "/scenarios";
  json row = {{"id", "x"}, {"scenario", "quickstart.json"},
              {"set", {"parallel.tp=2", "parallel.dp=4", "training.precision=fp8"}},
              {"measured", {{"tokens_per_s_per_gpu", 1000}}}};
  EXPECT_TRUE(is_scenario_row(row));
  auto r = scenario_from_row(row, dir);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->unsupported, "");
  EXPECT_EQ(r->scenario.name, "x");
  EXPECT_EQ(r->scenario.parallel.tp, 2);
  EXPECT_EQ(r->scenario.parallel.dp, 4);
  EXPECT_EQ(r->scenario.training.precision, DType::kFP8);
  EXPECT_EQ(r->scenario.model.layers, 32);   // the quickstart's Llama 3 8B
  ASSERT_EQ(r->defaults.size(), 1u);
  EXPECT_EQ(r->defaults[0].rfind("scenario " + dir + "/quickstart.json --set parallel.tp=2 --set parallel.dp=4", 0), 0u)
      << r->defaults[0];
  // Without "set" the file as it is.
  row.erase("set");
  r = scenario_from_row(row, dir);
  ASSERT_TRUE(r.ok() && r->unsupported.empty()) << (r.ok() ? r->unsupported : r.status().to_string());
  EXPECT_EQ(r->scenario.parallel.tp, 1);
}

TEST(ScenarioRows, BadRowsAreInvalidWithTheReason) {
  const std::string dir = std::string(TRAINSIM_SOURCE_DIR) + "/scenarios";
  json row = {{"id", "x"}, {"scenario", "quickstart.json"}, {"set", "parallel.tp=2"}};
  auto r = scenario_from_row(row, dir);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->unsupported.find("invalid: published row x /set"), std::string::npos) << r->unsupported;
  row["set"] = {"parallel.tp=64"};   // tp does not divide the heads: the loader's error
  r = scenario_from_row(row, dir);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->unsupported.rfind("invalid: ", 0), 0u) << r->unsupported;
  EXPECT_NE(r->unsupported.find("tp"), std::string::npos) << r->unsupported;
  row["set"] = json::array();
  row["scenario"] = "no-such-file.json";
  r = scenario_from_row(row, dir);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->unsupported.find(dir + "/no-such-file.json"), std::string::npos) << r->unsupported;
  row["scenario"] = 3;
  r = scenario_from_row(row, dir);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->unsupported.find("/scenario"), std::string::npos) << r->unsupported;
}

// The rows of scenarios/gpu_steps.jsonl carry the figures of the H100 runs they name: each row's
// measured tokens/s and memory are those of the raw line with its id in calibrate/data/h100/steps,
// and its overrides give the scenario that run trained (layers, hidden, heads, sequence, batch,
// attention kernel).
TEST(ScenarioRows, GpuStepRowsCarryTheirMeasurements) {
  const std::string src = TRAINSIM_SOURCE_DIR;
  std::map<std::string, json> raw;
  for (const char* f : {"torch_steps.jsonl", "torch_steps_checks.jsonl"}) {
    auto lines = read_jsonl(src + "/calibrate/data/h100/steps/" + f);
    ASSERT_TRUE(lines.ok()) << lines.status().to_string();
    for (const json& l : lines.value())
      if (l.contains("tokens_per_s")) raw["h100-torch-" + l["id"].get<std::string>()] = l;
  }
  auto rows_ = read_jsonl(src + "/scenarios/gpu_steps.jsonl");
  ASSERT_TRUE(rows_.ok()) << rows_.status().to_string();
  ASSERT_GE(rows_->size(), 14u);
  for (const json& row : rows_.value()) {
    std::string id = row["id"].get<std::string>();
    std::replace(id.begin() + 11, id.end(), '-', '_');   // the raw ids use '_' after "h100-torch-"
    ASSERT_TRUE(raw.count(id)) << id;
    const json& m = raw[id];
    EXPECT_EQ(row["measured"]["tokens_per_s_per_gpu"].get<double>(), m["tokens_per_s"].get<double>()) << id;
    EXPECT_EQ(row["measured"]["memory_gib"].get<double>(), m["max_mem_allocated_GiB"].get<double>()) << id;
    auto r = scenario_from_row(row, src + "/scenarios");
    ASSERT_TRUE(r.ok() && r->unsupported.empty()) << id << ": " << (r.ok() ? r->unsupported : r.status().to_string());
    const Scenario& s = r->scenario;
    EXPECT_EQ(s.model.layers, m["layers"].get<int>()) << id;
    EXPECT_EQ(s.model.hidden, m["hidden"].get<int64_t>()) << id;
    EXPECT_EQ(s.model.heads, m["heads"].get<int>()) << id;
    EXPECT_EQ(s.model.kv_heads, m["kv_heads"].get<int>()) << id;
    EXPECT_EQ(s.model.ffn_hidden, m["ffn"].get<int64_t>()) << id;
    EXPECT_EQ(s.model.vocab, m["vocab"].get<int64_t>()) << id;
    EXPECT_EQ(s.training.seq_len, m["seq"].get<int64_t>()) << id;
    EXPECT_EQ(s.training.micro_batch, m["micro_batch"].get<int64_t>()) << id;
    EXPECT_EQ(s.training.global_batch, m["micro_batch"].get<int64_t>()) << id;
    EXPECT_EQ(s.cluster.gpus, 1) << id;
    EXPECT_EQ(s.training.attention_kernel,
              m["sdpa"].get<std::string>() == "cudnn" ? AttentionKernel::kCudnn : AttentionKernel::kFlash)
        << id;
    EXPECT_EQ(s.training.framework,
              m["mode"].get<std::string>() == "eager" ? Framework::kTorchEager : Framework::kTorchCompile)
        << id;
  }
}

// The framework a row ran and how it reduced gradients, where the row schema has neither:
// torchtitan compiled its blocks and reduced in fp32; llm-foundry ran Composer's eager loop,
// whose FSDP mixed precision DEFAULT (the amp_bf16 rows) reduces in fp32 and PURE (the one row in
// pure bf16, so its notes say) in bf16; every other row runs fused kernels.
TEST(PublishedRuns, FrameworkDefaults) {
  int titan = 0, foundry = 0, pure = 0, other = 0;
  for (const auto& row : rows()) {
    if (row.contains("row_kind")) continue;
    const std::string id = row["id"].get<std::string>();
    auto r = scenario_from_row(row);
    ASSERT_TRUE(r.ok()) << id;
    const Scenario& s = r->scenario;
    const std::string src = row.value("group", "") + " " + row.value("source", "");
    if (src.find("torchtitan") != std::string::npos) {
      ++titan;
      EXPECT_EQ(s.training.framework, Framework::kTorchCompile) << id;
      EXPECT_TRUE(has_default(r.value(), "framework=torch_compile (not in the row schema")) << id;
      EXPECT_EQ(s.parallel.grad_reduce_dtype, GradReduce::kAuto) << id;
    } else if (src.find("llm-foundry") != std::string::npos) {
      ++foundry;
      EXPECT_EQ(s.training.framework, Framework::kTorchEager) << id;
      EXPECT_TRUE(has_default(r.value(), "framework=torch_eager (not in the row schema")) << id;
      const bool is_pure = row.value("notes", "").find("Pure BF16") != std::string::npos;
      pure += is_pure;
      EXPECT_EQ(s.parallel.grad_reduce_dtype, is_pure ? GradReduce::kBf16 : GradReduce::kAuto) << id;
      EXPECT_EQ(s.training.attention_kernel, AttentionKernel::kFlash1) << id;
      EXPECT_TRUE(has_default(r.value(), "attention_kernel=flash1, dropout=false (not in the row schema; llm-foundry")) << id;
      EXPECT_TRUE(has_default(r.value(), is_pure ? "grad_reduce_dtype=bf16 (not in the row schema; Composer's FSDP PURE"
                                                 : "grad_reduce_dtype=fp32 (not in the row schema; Composer's FSDP DEFAULT"))
          << id;
    } else {
      ++other;
      EXPECT_EQ(s.training.framework, Framework::kFused) << id;
    }
  }
  EXPECT_EQ(titan, 4);
  EXPECT_EQ(foundry, 15);
  EXPECT_EQ(pure, 1);   // mpt-a100-70b-seq2048-64gpu, "bf16 PURE" in llm-foundry's A100 80GB table
  EXPECT_GT(other, 30);
}

}  // namespace
}  // namespace trainsim
