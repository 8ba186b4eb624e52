// Published rows -> scenarios. The row is rewritten into a scenario document (the loader's
// format) with every null replaced by its documented default, then validated by the loader, so
// a row and a scenario file go through exactly the same checks.
#include "scenarios/published_run.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "calibrate/cost_model.h"
#include "models/catalog.h"
#include "models/spec_parse.h"
#include "scenarios/loader.h"
#include "sim/text.h"
#include "topologies/hardware.h"

namespace trainsim {
namespace {

using json = nlohmann::json;

bool is_null(const json& sec, const char* key) {
  auto it = sec.find(key);
  return it == sec.end() || it->is_null();
}

// The row's value as a small positive integer, or `fallback` when it is not one.
int64_t int_or(const json& sec, const char* key, int64_t fallback) {
  auto it = sec.find(key);
  if (it == sec.end() || !it->is_number_integer()) return fallback;
  if (it->is_number_unsigned()) {
    uint64_t u = it->get<uint64_t>();
    return u > (uint64_t{1} << 40) ? fallback : static_cast<int64_t>(u);
  }
  return it->get<int64_t>();
}

std::string str_or(const json& sec, const char* key, const std::string& fallback) {
  auto it = sec.find(key);
  return it != sec.end() && it->is_string() ? it->get<std::string>() : fallback;
}

// Attention heads for a row that does not give them: the head count whose head dimension is
// closest to 128 (the Megatron-LM SC'21 family uses 128 for most sizes), among the divisors of
// hidden that tp divides; ties go to more heads. 0 when there is none.
int64_t default_heads(int64_t hidden, int64_t tp) {
  int64_t best = 0;
  int64_t best_err = -1;
  for (int64_t h = 1; h <= hidden && h <= (1 << 16); ++h) {
    if (hidden % h != 0 || tp <= 0 || h % tp != 0) continue;
    int64_t err = std::llabs(hidden / h - 128);
    if (best_err < 0 || err <= best_err) {
      best = h;
      best_err = err;
    }
  }
  return best;
}

std::string lps_text(const std::vector<int>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

}  // namespace

Result<std::vector<nlohmann::json>> read_jsonl(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error(Error{path, "", "", "cannot open the file (does it exist?)"});
  std::vector<json> rows;
  Status st;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (json_too_deep(line)) {
      st.add(Error{path, "", "", "line " + std::to_string(n) + ": " + json_too_deep_message("a run")});
      continue;
    }
    json v = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (v.is_discarded())
      st.add(Error{path, "", "", "line " + std::to_string(n) + ": not valid JSON"});
    else
      rows.push_back(std::move(v));
  }
  if (!st.ok()) return st;
  return rows;
}

Result<std::vector<RunRow>> read_run_rows(const std::string& path) {
  Result<std::vector<json>> rows = read_jsonl(path);
  if (!rows.ok()) return rows.status();
  std::vector<RunRow> out;
  for (auto& r : rows.value()) {
    if (r.is_object() && r.contains("id") && r["id"].is_string())
      out.push_back(RunRow{r["id"].get<std::string>(), std::move(r)});
  }
  return out;
}

bool is_scenario_row(const nlohmann::json& row) { return row.is_object() && row.contains("scenario"); }

Result<RowScenario> scenario_from_row(const nlohmann::json& row, const std::string& rows_dir) {
  if (!row.is_object() || !row.contains("id") || !row["id"].is_string())
    return Status::error(Error{"", "/id", "", "a published row is an object with a string \"id\""});
  const std::string id = row["id"].get<std::string>();
  const std::string label = "published row " + id;
  if (is_scenario_row(row)) {
    RowScenario out;
    const json& f = row["scenario"];
    if (!f.is_string() || f.get<std::string>().empty()) {
      out.unsupported = "invalid: " + label + " /scenario: " + f.dump() + ": a scenario file name (string)";
      return out;
    }
    std::vector<std::string> sets;
    if (row.contains("set")) {
      const json& sv = row["set"];
      bool ok = sv.is_array();
      if (ok)
        for (const auto& v : sv) ok = ok && v.is_string();
      if (!ok) {
        out.unsupported = "invalid: " + label + " /set: " + sv.dump() +
                          ": an array of \"section.key=value\" strings, as `trainsim run --set` takes";
        return out;
      }
      for (const auto& v : sv) sets.push_back(v.get<std::string>());
    }
    const std::string name = f.get<std::string>();
    const std::string path = rows_dir.empty() || name.front() == '/' ? name : rows_dir + "/" + name;
    auto sc = load_scenario_file(path, sets);
    if (!sc.ok()) {
      out.unsupported = "invalid: " + sc.status().to_string();
      while (!out.unsupported.empty() && out.unsupported.back() == '\n') out.unsupported.pop_back();
      return out;
    }
    out.scenario = std::move(sc).value();
    out.scenario.name = id;
    std::string d = "scenario " + path;
    for (const auto& v : sets) d += " --set " + v;
    out.defaults.push_back(d + " (a scenario row: nothing assumed beyond the file and its overrides)");
    return out;
  }
  for (const char* s : {"model", "training", "cluster", "parallel"}) {
    if (!row.contains(s) || !row[s].is_object())
      return Status::error(Error{label, std::string("/") + s, "", "missing section (must be an object)"});
  }
  const json& M = row["model"];
  const json& T = row["training"];
  const json& C = row["cluster"];
  const json& P = row["parallel"];

  RowScenario out;
  out.scenario.name = id;
  out.scenario.file = label;
  auto& d = out.defaults;

  // Features we do not simulate yet.
  static const char* kMla[] = {"q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"};
  const bool mla = str_or(M, "attention", "") == "mla";
  const CatalogModel* mla_same = nullptr;   // a catalog MLA model of the row's layers and hidden
  if (mla) {
    for (const auto& cm : model_catalog())
      if (cm.spec.mla && cm.spec.layers == int_or(M, "layers", 0) && cm.spec.hidden == int_or(M, "hidden", 0))
        mla_same = &cm;
    if (is_null(M, "kv_lora_rank") && mla_same == nullptr) {
      out.unsupported = "unsupported: multi-head latent attention without kv_lora_rank in the row (and no catalog "
                        "MLA model of the same layers and hidden to take the latent dims from)";
      return out;
    }
  }

  json doc = json::object();
  doc["name"] = id;

  // model
  json m = json::object();
  for (const char* k : {"layers", "hidden", "heads", "kv_heads", "ffn_hidden", "vocab"})
    if (!is_null(M, k)) m[k] = M[k];
  const int64_t hidden = int_or(M, "hidden", 0);
  const int64_t tp_row = int_or(P, "tp", 1);
  const int64_t layers_row = int_or(M, "layers", 0);
  const CatalogModel* same = nullptr;  // a catalog model of the same shape (its paper's table)
  for (const auto& cm : model_catalog())
    if (cm.spec.layers == layers_row && cm.spec.hidden == hidden && hidden > 0 && tp_row > 0 &&
        cm.spec.heads % tp_row == 0 && (same == nullptr || cm.spec.name < same->spec.name))
      same = &cm;
  if (is_null(M, "heads") && same != nullptr) {
    m["heads"] = same->spec.heads;
    d.push_back("heads=" + std::to_string(same->spec.heads) + " (null in row; catalog model " +
                same->spec.name + " has the same layers and hidden: " + same->source + ")");
  } else if (is_null(M, "heads") && hidden > 0) {
    int64_t h = default_heads(hidden, tp_row);
    if (h > 0) {
      m["heads"] = h;
      d.push_back("heads=" + std::to_string(h) + " (null in row; " +
                  (hidden / h == 128 ? std::string("hidden/128: head dim 128")
                                     : "head dim " + std::to_string(hidden / h) +
                                           ", the closest to 128 that tp divides") +
                  ")");
    }
  }
  if (is_null(M, "kv_heads") && m.contains("heads") && !mla) {
    m["kv_heads"] = m["heads"];
    d.push_back("kv_heads=" + m["heads"].dump() + " (null in row; = heads, multi-head attention)");
  }
  if (is_null(M, "ffn_hidden") && hidden > 0) {
    m["ffn_hidden"] = 4 * hidden;
    d.push_back("ffn_hidden=" + std::to_string(4 * hidden) + " (null in row; 4*hidden)");
  }
  if (is_null(M, "vocab")) {
    m["vocab"] = 51200;
    d.push_back("vocab=51200 (null in row; Megatron-LM's padded GPT-2 vocabulary)");
  }
  const std::string act = str_or(M, "activation", "gelu");
  if (is_null(M, "activation")) {
    m["activation"] = "gelu";
    d.push_back("activation=gelu (null in row)");
  } else {
    m["activation"] = M["activation"];
  }
  const bool swiglu = act == "swiglu";
  m["norm"] = swiglu ? "rmsnorm" : "layernorm";
  m["tied_embeddings"] = !swiglu;
  d.push_back(std::string("norm=") + (swiglu ? "rmsnorm" : "layernorm") +
              " (not in the row schema; follows activation)");
  d.push_back(std::string("tied_embeddings=") + (swiglu ? "false" : "true") +
              " (not in the row schema; gelu models tie, swiglu models do not)");
  if (!is_null(M, "arch")) m["arch"] = M["arch"];
  if (str_or(M, "arch", "dense") == "moe") {
    for (const char* k : {"experts", "top_k", "expert_ffn_hidden", "shared_experts", "dense_layers"})
      if (!is_null(M, k)) m[k] = M[k];
    if (is_null(M, "expert_ffn_hidden"))
      d.push_back("expert_ffn_hidden=ffn_hidden (null in row)");
    if (is_null(M, "shared_experts")) d.push_back("shared_experts=0 (null in row)");
    if (is_null(M, "dense_layers")) d.push_back("dense_layers=0 (null in row)");
    d.push_back("capacity_factor=0, dropless (not in the row schema)");
    d.push_back("moe routing=balanced (not in the row schema; every expert gets the mean load)");
  }
  if (mla) {
    // MLA: the row's latent dims, else the catalog model of the same shape's; kv_heads and
    // head_dim do not apply (every head's K and V come from the shared latent).
    m["attention"] = "mla";
    m.erase("kv_heads");
    for (const char* k : kMla) {
      if (!is_null(M, k)) {
        m[k] = M[k];
      } else if (mla_same != nullptr) {
        const ModelSpec& cs = mla_same->spec;
        const int v = std::string(k) == "q_lora_rank" ? cs.q_lora_rank
                      : std::string(k) == "kv_lora_rank" ? cs.kv_lora_rank
                      : std::string(k) == "qk_nope_head_dim" ? cs.qk_nope_head_dim
                      : std::string(k) == "qk_rope_head_dim" ? cs.qk_rope_head_dim
                                                             : cs.v_head_dim;
        m[k] = v;
        d.push_back(std::string(k) + "=" + std::to_string(v) + " (null in row; catalog MLA model " + cs.name +
                    " has the same layers and hidden)");
      }
    }
  }
  doc["model"] = m;

  // training
  json t = json::object();
  for (const char* k : {"seq_len", "global_batch", "micro_batch", "precision"})
    if (!is_null(T, k)) t[k] = T[k];
  if (is_null(T, "micro_batch")) {
    t["micro_batch"] = 1;
    d.push_back("micro_batch=1 (null in row)");
  }
  if (is_null(T, "precision")) {
    t["precision"] = "bf16";
    d.push_back("precision=bf16 (null in row; fp16 costs the same)");
  }
  if (!is_null(T, "precision") && T["precision"].is_string() && T["precision"].get<std::string>() == "fp8") {
    t["fp8_recipe"] = "current";
    d.push_back("fp8_recipe=current (not in the row schema; each tensor scaled by its own amax: torchao's Float8 "
                "default, Transformer Engine's Float8CurrentScaling); LM head in bf16");
  }
  bool pre_flash_row = false;
  bool foundry_row = false;   // llm-foundry (Composer FSDP) rows
  const Result<GpuSpec> gpu = find_gpu(str_or(C, "gpu", ""));   // the row's GPU, if the catalog has it
  // The attention kernel is not in the row schema. FlashAttention (Dao et al.) appeared in
  // May 2022; the runs measured before it with Megatron-LM / Megatron-DeepSpeed ran the unfused
  // softmax attention (batched QK^T, fused scale-mask-softmax, dropout, batched PV) with
  // GPT-3-style dropout 0.1. Every other row runs flash attention without dropout.
  {
    const std::string src = str_or(row, "group", "") + " " + str_or(row, "source", "");
    bool pre_flash = false;
    for (const char* k : {"SC'21", "Korthikanti", "BLOOM", "Megatron-Turing"})
      if (src.find(k) != std::string::npos) pre_flash = true;
    pre_flash_row = pre_flash;
    // Megatron-Core runs attention through Transformer Engine, whose backend selection prefers
    // cuDNN's fused attention over FlashAttention on Hopper ("Disabling FlashAttention to give
    // FusedAttention preference on Hopper+ for performance reasons").
    const bool te_cudnn = !pre_flash && gpu.ok() && gpu_family(gpu.value()) == "hopper" &&
                          (src.find("Megatron-Core") != std::string::npos || src.find("megatron/core") != std::string::npos);
    // llm-foundry of 2023 (v0.2, its H100 benchmark image) pinned flash-attn 1.0.3 for
    // attn_impl "flash" and MPT's own Triton kernel for "triton" (its benchmark default): neither
    // is FlashAttention-2, which its benchmark section measured 1.7-3.0x (v1) and 1.3-2.5x
    // (Triton) faster; both are priced as v1.
    foundry_row = src.find("llm-foundry") != std::string::npos;
    const bool fa1 = !pre_flash && foundry_row;
    t["attention_kernel"] = pre_flash ? "unfused" : te_cudnn ? "cudnn" : fa1 ? "flash1" : "flash";
    t["dropout"] = pre_flash;
    d.push_back(pre_flash ? "attention_kernel=unfused, dropout=true (not in the row schema; a pre-FlashAttention "
                            "Megatron-LM/DeepSpeed run: softmax attention with dropout 0.1)"
                : te_cudnn ? "attention_kernel=cudnn, dropout=false (not in the row schema; Megatron-Core on Hopper: "
                             "Transformer Engine prefers cuDNN's fused attention there)"
                : fa1 ? "attention_kernel=flash1, dropout=false (not in the row schema; llm-foundry of 2023 ran "
                        "flash-attn 1.0.3 or MPT's Triton kernel, both about half FlashAttention-2's rate)"
                      : "attention_kernel=flash, dropout=false (not in the row schema)");
    // The framework is not in the row schema either: torchtitan's benchmarks ran PyTorch loops
    // with torch.compile ("FSDP + CP + torch.compile + Float8"), llm-foundry's of 2023 ran
    // Composer's eager loop (its benchmark configs set no compilation); the rest ran Megatron /
    // DeepSpeed / NeMo with fused kernels.
    const bool titan = src.find("torchtitan") != std::string::npos;
    if (titan || foundry_row) {
      t["framework"] = titan ? "torch_compile" : "torch_eager";
      d.push_back(titan ? "framework=torch_compile (not in the row schema; torchtitan compiles its blocks: "
                          "PyTorch's cross-entropy and ring attention, fp32 gradient casts)"
                        : "framework=torch_eager (not in the row schema; llm-foundry's 2023 Composer loop, no "
                          "torch.compile: eager elementwise ops, PyTorch's cross-entropy)");
    }
  }

  // cluster
  json c = json::object();
  for (const char* k : {"gpu", "gpus", "gpus_per_node", "scale_out", "nic_gbps_per_gpu"})
    if (!is_null(C, k)) c[k] = C[k];
  if (is_null(C, "gpus_per_node") && gpu.ok()) {
    c["gpus_per_node"] = gpu->gpus_per_node;
    d.push_back("gpus_per_node=" + std::to_string(gpu->gpus_per_node) +
                " (null in row; GPU catalog)");
  }
  if (is_null(C, "scale_out")) {
    c["scale_out"] = "infiniband";
    d.push_back("scale_out=infiniband (null in row)");
  }
  if (is_null(C, "nic_gbps_per_gpu") && gpu.ok()) {
    double gbps = gpu->nic_bandwidth.Bps() * 8 / 1e9;
    std::ostringstream os;
    os << gbps;
    d.push_back("nic_gbps_per_gpu=" + os.str() + " (null in row; GPU catalog)");
  }

  // parallel
  json p = json::object();
  for (const char* k : {"tp", "pp", "vp", "dp", "cp", "ep", "sequence_parallel", "schedule", "zero",
                        "fsdp_shard_group", "recompute"})
    if (!is_null(P, k)) p[k] = P[k];
  auto fill = [&](const char* k, json v, const std::string& why) {
    if (!is_null(P, k)) return;
    p[k] = v;
    d.push_back(std::string(k) + "=" + (v.is_string() ? v.get<std::string>() : v.dump()) +
                " (null in row" + (why.empty() ? "" : "; " + why) + ")");
  };
  fill("tp", 1, "");
  fill("pp", 1, "");
  {   // the two-chunk schedules run vp = 2 (DualPipe's two model copies, DualPipeV's and ZB-V's V)
    const std::string sch = str_or(P, "schedule", "");
    Schedule parsed{};
    const bool two = parse_schedule(sch, &parsed) && two_chunk_schedule(parsed);
    fill("vp", two ? 2 : 1, two ? "schedule " + sch + " runs two chunks per rank" : "");
  }
  fill("cp", 1, "");
  fill("ep", 1, "");
  const int64_t vp = int_or(p, "vp", 1);
  fill("schedule", vp > 1 ? "interleaved" : "1f1b", vp > 1 ? "vp > 1" : "");
  fill("sequence_parallel", false, "");
  fill("zero", 0, "");
  fill("fsdp_shard_group", 0, "0 = all of dp");
  fill("recompute", "full",
       "Megatron-LM SC'21 and MT-NLG trained with full activation recomputation");
  // ZeRO-3 of the pre-FlashAttention Megatron/DeepSpeed era is DeepSpeed's, which gathers each
  // parameter tensor with its own all-gather (DeepSpeed issues #1069, #5047); FSDP-era rows
  // gather a layer at a time.
  if (int_or(p, "zero", 0) == 3) {
    p["zero3_gather"] = pre_flash_row ? "tensor" : "layer";
    d.push_back(std::string("zero3_gather=") + (pre_flash_row ? "tensor" : "layer") +
                " (not in the row schema; " +
                (pre_flash_row ? "DeepSpeed ZeRO-3: one all-gather per parameter tensor" : "FSDP: one per layer") + ")");
  }
  // Composer's FSDP mixed precision (2023 on): DEFAULT, what llm-foundry's benchmark tables ran
  // under amp_bf16, gathers bf16 parameters and reduces gradients in fp32 (reduce_dtype float32);
  // PURE, what its tables ran in pure bf16 (precision "bf16", no autocast; the row's notes say
  // "Pure BF16"), reduces in bf16.
  const bool foundry_pure = foundry_row && str_or(row, "notes", "").find("Pure BF16") != std::string::npos;
  if (foundry_pure && str_or(t, "precision", "bf16") != "fp16") p["grad_reduce_dtype"] = "bf16";
  const int64_t tp = int_or(p, "tp", 1), pp = int_or(p, "pp", 1), cp = int_or(p, "cp", 1);
  const int64_t gpus = int_or(C, "gpus", 0);
  int64_t dp = int_or(P, "dp", 0);
  if (is_null(P, "dp") && gpus > 0 && tp > 0 && pp > 0 && cp > 0 && gpus % (tp * pp * cp) == 0) {
    dp = gpus / (tp * pp * cp);
    p["dp"] = dp;
    d.push_back("dp=" + std::to_string(dp) + " (null in row; gpus/(tp*pp*cp))");
  }

  // The batch must split into whole micro-batches per replica (and, interleaved, into a multiple
  // of pp of them): round global_batch to the nearest such multiple and say so. A batch smaller
  // than one micro-batch per replica is left as it is: the row contradicts itself, and the
  // scenario's error says how.
  const int64_t gb = int_or(t, "global_batch", 0), mb = int_or(t, "micro_batch", 0);
  if (gb > 0 && mb > 0 && dp > 0 && pp > 0 && mb <= (1 << 20) && dp <= (1 << 24) && mb * dp <= gb) {
    int64_t unit = mb * dp * (vp > 1 ? pp : 1);
    if (gb % unit != 0) {
      int64_t rounded = std::max<int64_t>(unit, (gb + unit / 2) / unit * unit);
      t["global_batch"] = rounded;
      d.push_back("global_batch=" + std::to_string(rounded) + " (rounded from " +
                  std::to_string(gb) + " to a multiple of " +
                  (vp > 1 ? "micro_batch*dp*pp=" : "micro_batch*dp=") + std::to_string(unit) + ")");
    }
  }

  doc["training"] = t;
  doc["cluster"] = c;
  doc["parallel"] = p;

  Result<Scenario> s = load_scenario_json(doc, label);
  if (!s.ok()) {
    std::string why;
    for (const auto& e : s.status().errors()) {
      if (!why.empty()) why += "; ";
      why += e.path.empty() ? e.message : e.path + (e.value.empty() ? "" : " = " + e.value) + ": " + e.message;
    }
    out.unsupported = "invalid: " + why;
    return out;
  }
  out.scenario = std::move(s).value();
  out.document = std::move(doc);
  {   // Not in the row schema: the format the frameworks reduce gradients in by default.
    const ParallelSpec& ps = out.scenario.parallel;
    if (reduces_dp_gradients(out.scenario.model, ps)) {
      const DType g = resolved_grad_reduce(ps.grad_reduce_dtype, out.scenario.training.precision);
      d.push_back(std::string("grad_reduce_dtype=") + to_string(g) + " (not in the row schema; " +
                  (g == DType::kFP16   ? "fp16 training reduces in fp16"
                   : foundry_pure      ? "Composer's FSDP PURE mixed precision (the row's pure bf16) reduces in bf16"
                   : foundry_row       ? "Composer's FSDP DEFAULT mixed precision (amp_bf16) reduces in fp32"
                                       : "Megatron-LM and torchtitan reduce bf16 and fp8 training's gradients in fp32") +
                  ")");
    }
  }
  out.scenario.name = id;
  out.scenario.file = label;
  if (M.contains("name") && M["name"].is_string()) out.scenario.model.name = M["name"].get<std::string>();
  const auto& lps = out.scenario.parallel.layers_per_stage;
  if (!lps.empty()) {
    d.push_back("layers_per_stage=" + lps_text(lps) + " (layers=" +
                std::to_string(out.scenario.model.layers) + " not divisible by pp*vp=" +
                std::to_string(lps.size()) + "; the end stages take fewer)");
  }
  return out;
}

}  // namespace trainsim
