// Scenario loader: JSON text -> overrides -> schema walk (types, ranges, unknown keys) ->
// semantic checks across sections -> Scenario. Every problem becomes one Error; the walk goes
// on after an error, and a check whose inputs were already reported bad is skipped (so one
// mistake is reported once, not again by every check that depends on it).
#include "scenarios/loader.h"


#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "calibrate/cost_model.h"
#include "models/catalog.h"
#include "models/compiler.h"
#include "models/spec_parse.h"
#include "sim/embedded.h"
#include "sim/text.h"
#include "topologies/topology_file.h"

namespace trainsim {
namespace {

using json = nlohmann::json;

// Upper bounds keep every product the models compute (hidden^2 * layers * ...) far from int64
// overflow, and reject typos such as an extra zero run of digits.
constexpr int64_t kMaxLayers = 10'000;
constexpr int64_t kMaxHidden = 1 << 20;
constexpr int64_t kMaxHeads = 1 << 16;
constexpr int64_t kMaxFfn = 1 << 22;
constexpr int64_t kMaxVocab = 1 << 24;
constexpr int64_t kMaxSeq = 1 << 24;
constexpr int64_t kMaxGlobalBatch = int64_t{1} << 40;
constexpr int64_t kMaxMicroBatch = 1 << 20;
constexpr int64_t kMaxGpus = 1 << 24;
constexpr int64_t kMaxGpusPerNode = 1024;
constexpr int64_t kMaxLayerPasses = 2'000'000;   // micro-batches x layers per step (~7 GiB of tasks)

const std::vector<std::string> kTopKeys = {"name",    "description", "model",   "training", "cluster",
                                           "parallel", "network",    "costs",   "seed",     "moe",
                                           "documents", "failures", "gpu_speed"};
const std::vector<std::string> kModelKeys = {
    "name",       "arch",  "layers",     "hidden",          "heads",
    "kv_heads",   "head_dim", "ffn_hidden", "vocab",        "activation",
    "norm",       "tied_embeddings", "attention", "experts", "top_k",
    "expert_ffn_hidden", "shared_experts", "dense_layers", "capacity_factor", "router",
    "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
    "mtp_depth"};
const std::vector<std::string> kTrainingKeys = {"seq_len",   "global_batch",     "micro_batch",
                                                "precision", "attention_kernel", "dropout",
                                                "fp8_recipe", "fp8_cache_inputs", "framework",
                                                "train_tokens"};
const std::vector<std::string> kClusterKeys = {"gpu",          "gpus",          "gpus_per_node",
                                               "scale_out",    "nic_bandwidth", "nvlink_bandwidth",
                                               "nic_gbps_per_gpu", "pcie_bandwidth"};
const std::vector<std::string> kParallelKeys = {
    "tp",   "pp",   "vp",       "dp",        "cp",    "ep", "cp_ulysses", "cp_load_balance",
    "sequence_parallel", "schedule", "zero", "fsdp_shard_group", "recompute", "recompute_layers",
    "recompute_modules", "layers_per_stage", "tp_overlap", "order", "dp_bucket", "dp_overlap", "zero3_prefetch", "zero3_gather", "zero3_reshard", "grad_reduce_dtype",
    "activation_offload", "etp", "ep_layout", "ep_overlap", "delay_wgrad", "hsdp_defer_all_reduce"};
const std::vector<std::string> kMoeKeys = {"routing", "skew", "histogram", "seed", "placement", "rebalance_every",
                                           "replicas", "dispatch", "node_limit"};
const std::vector<std::string> kDocumentKeys = {"lengths", "mean_tokens", "sigma", "seed"};
const std::vector<std::string> kFailureKeys = {"per_gpu_hour", "checkpoint_write", "restart", "checkpoint_interval"};
const std::vector<std::string> kGpuSpeedKeys = {"cv", "slow_share", "slow_speed", "spare_share", "seed"};
const std::vector<std::string> kNetworkKeys = {"mode", "topology", "oversubscription", "placement",
                                               "modifications", "hottest_links",
                                               "in_network_reduction"};
const std::vector<std::string> kCostsKeys = {"calibration", "prefer_source", "nccl_ctas"};

const std::vector<std::string>* section_keys(const std::string& s) {
  if (s == "model") return &kModelKeys;
  if (s == "training") return &kTrainingKeys;
  if (s == "cluster") return &kClusterKeys;
  if (s == "parallel") return &kParallelKeys;
  if (s == "network") return &kNetworkKeys;
  if (s == "costs") return &kCostsKeys;
  if (s == "moe") return &kMoeKeys;
  if (s == "documents") return &kDocumentKeys;
  if (s == "failures") return &kFailureKeys;
  if (s == "gpu_speed") return &kGpuSpeedKeys;
  return nullptr;
}

// ---- small text helpers ---------------------------------------------------------------------

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The value as the user wrote it, shortened; never throws (invalid UTF-8 is replaced).
std::string show(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

std::string kind(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_float()) {   // 2^64 or -1e308 parse as floats though they have no fraction
    const double d = v.get<double>();
    if (std::isfinite(d) && std::fabs(d) >= 9.2e18) return "a number outside the integer range";
    return std::isfinite(d) && d == std::floor(d) ? "a number with a decimal point" : "a number with a fraction";
  }
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "an unexpected value";
}

std::string ptr_escape(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

// The closest candidate when it is close enough to be a plausible typo, else "".
std::string closest(const std::string& key, const std::vector<std::string>& candidates) {
  return closest_match(key, candidates);
}

std::string join_quoted(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += (i + 1 == v.size()) ? " or " : ", ";
    s += "\"" + v[i] + "\"";
  }
  return s;
}

std::string join_ints(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += (i + 1 == v.size()) ? " or " : ", ";
    s += std::to_string(v[i]);
  }
  return s;
}

std::vector<int64_t> divisors(int64_t n) {
  std::vector<int64_t> d;
  for (int64_t i = 1; i <= n && d.size() < 64; ++i)
    if (n % i == 0) d.push_back(i);
  return d;
}

// Saturating product: scenario numbers are bounded, but four of them multiplied need not be.
int64_t sat_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::numeric_limits<int64_t>::max();
  return r;
}

std::string range_text(int64_t lo, int64_t hi) {
  if (lo == 1) return "a positive integer (1 to " + std::to_string(hi) + ")";
  return "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
}

// ---- the error collector --------------------------------------------------------------------

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  void set_overridden(std::set<std::string> paths) { overridden_ = std::move(paths); }
  // Whether `path` (or a parent of it) was set by --set.
  bool overridden(const std::string& path) const {
    for (const auto& o : overridden_)
      if (path == o || (path.size() > o.size() && path.compare(0, o.size(), o) == 0 && path[o.size()] == '/'))
        return true;
    return false;
  }

  // Records an error and marks `path` bad, so checks that depend on it are skipped.
  void error(const std::string& path, std::string value, std::string message) {
    bad_.insert(path);
    add(path, std::move(value), std::move(message));
  }
  // Records an error that does not make any value unusable (an unknown key).
  void note(const std::string& path, std::string value, std::string message) {
    add(path, std::move(value), std::move(message));
  }
  void mark_bad(const std::string& path) { bad_.insert(path); }
  // True when none of the paths (nor a parent of one) was reported bad.
  bool good(std::initializer_list<std::string> paths) const {
    for (const auto& p : paths) {
      for (const auto& b : bad_) {
        if (p == b || (p.size() > b.size() && p.compare(0, b.size(), b) == 0 && p[b.size()] == '/'))
          return false;
      }
    }
    return true;
  }
  const Status& status() const { return status_; }
  const std::string& file() const { return file_; }

  void unknown_key(const std::string& base, const std::string& key,
                   const std::vector<std::string>& accepted) {
    std::string msg = "unknown key";
    std::string c = closest(key, accepted);
    if (!c.empty()) msg += "; did you mean \"" + c + "\"?";
    else msg += "; accepted keys: " + join_quoted(accepted);
    note(base + "/" + ptr_escape(key), "", msg);
  }

  static const json* field(const json* sec, const char* key) {
    if (!sec || !sec->is_object()) return nullptr;
    auto it = sec->find(key);
    return it == sec->end() ? nullptr : &*it;
  }
  static bool has(const json* sec, const char* key) { return field(sec, key) != nullptr; }

  // Each read_* returns false when it reported an error. An absent optional key returns true
  // and leaves *out untouched. `required` (a hint such as "tokens per sequence, e.g. 2048")
  // makes the key mandatory.
  template <typename T>
  bool read_int(const json* sec, const std::string& base, const char* key, int64_t lo, int64_t hi,
                const char* required, T* out) {
    const json* v = field(sec, key);
    const std::string path = base + "/" + key;
    if (!v) return missing(path, required);
    if (v->is_null()) return null_value(path, required);
    if (!v->is_number_integer()) {
      std::string msg = "expected " + range_text(lo, hi) + ", got " + kind(*v);
      if (v->is_number_float()) {
        double d = v->get<double>();
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15)
          msg += "; write " + std::to_string(static_cast<int64_t>(d)) + " (no decimal point)";
      }
      error(path, show(*v), msg);
      return false;
    }
    int64_t x;
    if (v->is_number_unsigned()) {
      uint64_t u = v->get<uint64_t>();
      if (u > static_cast<uint64_t>(hi)) {
        error(path, show(*v), "too large; expected " + range_text(lo, hi));
        return false;
      }
      x = static_cast<int64_t>(u);
    } else {
      x = v->get<int64_t>();
    }
    if (x < lo || x > hi) {
      error(path, show(*v), std::string(x < lo ? "too small" : "too large") + "; expected " +
                                range_text(lo, hi));
      return false;
    }
    *out = static_cast<T>(x);
    return true;
  }

  bool read_bool(const json* sec, const std::string& base, const char* key, bool* out) {
    const json* v = field(sec, key);
    const std::string path = base + "/" + key;
    if (!v) return true;
    if (v->is_null()) return null_value(path, nullptr);
    if (!v->is_boolean()) {
      error(path, show(*v), "expected true or false, got " + kind(*v));
      return false;
    }
    *out = v->get<bool>();
    return true;
  }

  // A number in [lo, hi] (integers accepted), e.g. a fraction.
  bool read_real(const json* sec, const std::string& base, const char* key, double lo, double hi,
                 const char* example, double* out) {
    const json* v = field(sec, key);
    const std::string path = base + "/" + key;
    if (!v) return true;
    if (v->is_null()) return null_value(path, nullptr);
    const std::string range = "a number from " + fmt_real(lo) + " to " + fmt_real(hi) + ", e.g. " + example;
    if (!v->is_number()) {
      error(path, show(*v), "expected " + range + ", got " + kind(*v));
      return false;
    }
    const double x = v->get<double>();
    if (!std::isfinite(x) || x < lo || x > hi) {
      error(path, show(*v), std::string(x < lo ? "too small" : "too large") + "; expected " + range);
      return false;
    }
    *out = x;
    return true;
  }
  static std::string fmt_real(double x) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", x);
    return b;
  }

  // A string; *present tells whether it was there and well-typed.
  bool read_string(const json* sec, const std::string& base, const char* key, const char* required,
                   std::string* out, bool* present = nullptr) {
    if (present) *present = false;
    const json* v = field(sec, key);
    const std::string path = base + "/" + key;
    if (!v) return missing(path, required);
    if (v->is_null()) return null_value(path, required);
    if (!v->is_string()) {
      error(path, show(*v), "expected a string, got " + kind(*v));
      return false;
    }
    *out = v->get<std::string>();
    if (present) *present = true;
    return true;
  }

  template <typename E>
  bool read_enum(const json* sec, const std::string& base, const char* key,
                 bool (*parse)(std::string_view, E*), const char* choices, E* out,
                 bool* present = nullptr) {
    std::string s;
    bool here = false;
    if (!read_string(sec, base, key, nullptr, &s, &here)) return false;
    if (present) *present = here;
    if (!here) return true;
    if (!parse(s, out)) {
      if (present) *present = false;
      error(base + "/" + key, "\"" + s + "\"", std::string("unknown value; accepted: ") + choices);
      return false;
    }
    return true;
  }

 private:
  void add(const std::string& path, std::string value, std::string message) {
    status_.add(Error{overridden(path) ? "--set" : file_, path, std::move(value), std::move(message)});
  }
  bool missing(const std::string& path, const char* required) {
    if (!required) return true;
    error(path, "", std::string("missing; required: ") + required);
    return false;
  }
  bool null_value(const std::string& path, const char* required) {
    if (required)
      error(path, "null", std::string("null is not allowed; required: ") + required);
    else
      error(path, "null", "null is not allowed; remove the key to use the default");
    return false;
  }

  std::string file_;
  Status status_;
  std::set<std::string> bad_;
  std::set<std::string> overridden_;
};

// ---- overrides ------------------------------------------------------------------------------

// "model": "llama3-70b" is short for "model": {"name": "llama3-70b"} (a catalog model as it
// is): the document is rewritten to the long form before anything reads or overrides it.
void expand_model_shorthand(json* doc) {
  if (!doc->is_object()) return;
  auto it = doc->find("model");
  if (it != doc->end() && it->is_string()) *it = json{{"name", it->get<std::string>()}};
}

// Applies "a.b=value" overrides to doc; returns the JSON pointers they set.
std::set<std::string> apply_overrides(json* doc, const std::vector<std::string>& overrides,
                                      Status* st) {
  std::set<std::string> paths;
  expand_model_shorthand(doc);
  for (const auto& ov : overrides) {
    size_t eq = ov.find('=');
    if (eq == std::string::npos || eq == 0) {
      st->add(Error{"--set", "", "\"" + ov + "\"",
                    "expected KEY=VALUE with KEY like \"parallel.tp\", e.g. parallel.tp=4"});
      continue;
    }
    std::string key = trim(std::string_view(ov).substr(0, eq));
    std::string text = std::string(ov.substr(eq + 1));
    std::vector<std::string> parts;
    {
      std::string cur;
      for (char c : key) {
        if (c == '.') {
          parts.push_back(cur);
          cur.clear();
        } else {
          cur += c;
        }
      }
      parts.push_back(cur);
    }
    std::string pointer;
    for (const auto& p : parts) {
      pointer += '/';
      pointer += ptr_escape(p);
    }
    // Validate the path against the schema.
    bool ok = true;
    if (parts.size() > 2) {
      st->add(Error{"--set", pointer, "", "too deep; override keys are SECTION.KEY, e.g. parallel.tp"});
      ok = false;
    } else if (std::find(kTopKeys.begin(), kTopKeys.end(), parts[0]) == kTopKeys.end()) {
      // A section's key without its section (tp=4): name the SECTION.KEY it is.
      std::string in_section;
      if (parts.size() == 1)
        for (const std::string& sec : kTopKeys)
          if (const auto* keys = section_keys(sec);
              in_section.empty() && keys && std::find(keys->begin(), keys->end(), parts[0]) != keys->end())
            in_section = sec + "." + parts[0];
      std::string c = closest(parts[0], kTopKeys);
      st->add(Error{"--set", "/" + ptr_escape(parts[0]), "",
                    "unknown key" + (!in_section.empty() ? "; did you mean \"" + in_section + "\"? (override keys are SECTION.KEY)"
                                     : c.empty()          ? "; accepted: " + join_quoted(kTopKeys)
                                                          : "; did you mean \"" + c + "\"?")});
      ok = false;
    } else if (parts.size() == 2) {
      const auto* keys = section_keys(parts[0]);
      if (!keys) {
        st->add(Error{"--set", pointer, "", "\"" + parts[0] + "\" has no sub-keys; write " +
                                                parts[0] + "=VALUE"});
        ok = false;
      } else if (std::find(keys->begin(), keys->end(), parts[1]) == keys->end()) {
        std::string c = closest(parts[1], *keys);
        st->add(Error{"--set", pointer, "",
                      "unknown key" + (c.empty() ? "; accepted keys of \"" + parts[0] +
                                                       "\": " + join_quoted(*keys)
                                                 : "; did you mean \"" + c + "\"?")});
        ok = false;
      }
    }
    if (!ok) continue;
    if (json_too_deep(text)) {
      st->add(Error{"--set", pointer, text.substr(0, 40) + (text.size() > 40 ? "..." : ""),
                    json_too_deep_message("a scenario value")});
      continue;
    }
    json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) value = text;  // not JSON: a plain string such as 400Gbps
    if (!doc->is_object()) continue;  // reported by the caller
    if (value.is_null()) {   // KEY=null: the key leaves the scenario, its default applies
      if (parts.size() == 1) {
        doc->erase(parts[0]);
      } else if (auto it = doc->find(parts[0]); it != doc->end() && it->is_object()) {
        it->erase(parts[1]);
      }
      paths.insert(pointer);
      continue;
    }
    if (parts.size() == 1) {
      (*doc)[parts[0]] = value;
      expand_model_shorthand(doc);   // model=llama3-8b
    } else {
      json& sec = (*doc)[parts[0]];
      if (sec.is_null()) sec = json::object();
      if (!sec.is_object()) {
        st->add(Error{"--set", pointer, "",
                      "cannot set a key inside /" + parts[0] + ": it is not an object"});
        continue;
      }
      sec[parts[1]] = value;
    }
    paths.insert(pointer);
  }
  return paths;
}

// ---- sections -------------------------------------------------------------------------------

const json* get_section(Reader& r, const json& doc, const char* name, bool required) {
  auto it = doc.find(name);
  const std::string path = std::string("/") + name;
  if (it == doc.end()) {
    if (required)
      r.error(path, "", "missing section; required (see scenarios/README.md for its keys)");
    return nullptr;
  }
  const auto* keys = section_keys(name);
  if (!it->is_object()) {
    r.error(path, show(*it), std::string(name == std::string("model") ? "expected a catalog model's name "
                                                                        "(\"llama3-70b\") or an object"
                                                                      : "expected an object") +
                                 " with keys " + join_quoted(*keys) + ", got " + kind(*it));
    return nullptr;
  }
  for (const auto& [k, v] : it->items())
    if (std::find(keys->begin(), keys->end(), k) == keys->end()) r.unknown_key(path, k, *keys);
  return &*it;
}

// "unknown GPU; did you mean ...? Accepted: ..." for a name the catalog lacks.
std::string unknown_gpu_message(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& [n, spec] : gpu_catalog()) names.push_back(n);
  const std::string sug = closest(name, names);
  return (sug.empty() ? std::string("unknown GPU; accepted: ") : "unknown GPU; did you mean \"" + sug + "\"? Accepted: ") +
         join_quoted(names);
}

// A custom GPU (cluster.gpu as an object): a catalog GPU ("base") with some of its figures
// changed, under a name of its own. The keys are the catalog's (topologies/data/gpus.json), so
// an entry of it can be copied in; every figure left out is the base's, except that
// peak_fp16_tflops follows a given peak_bf16_tflops, and so does peak_fp8_tflops (2x, where the
// base has fp8), as on every catalog GPU. Kernel efficiencies are the base's family's.
const std::vector<std::string> kCustomGpuKeys = {
    "name", "base", "peak_bf16_tflops", "peak_fp16_tflops", "peak_fp8_tflops", "peak_fp32_tflops", "hbm_gib",
    "hbm_bandwidth_GBps", "nvlink_GBps_per_direction", "nic_Gbps", "pcie_GBps_per_direction", "gpus_per_node",
    "sms", "tdp_w", "power_limit_w", "source"};

bool read_custom_gpu(Reader& r, const json& g, GpuSpec* out) {
  const std::string b = "/cluster/gpu";
  const size_t errors_before = r.status().errors().size();
  for (const auto& [k, v] : g.items())
    if (std::find(kCustomGpuKeys.begin(), kCustomGpuKeys.end(), k) == kCustomGpuKeys.end())
      r.unknown_key(b, k, kCustomGpuKeys);
  std::string name, base;
  bool name_here = false, base_here = false;
  r.read_string(&g, b, "name", "the custom GPU's name, e.g. \"H100-next\"", &name, &name_here);
  if (name_here) {
    if (name.empty() || name.size() > 64)
      r.error(b + "/name", show(g.at("name")), "expected 1 to 64 characters");
    else if (find_gpu(name).ok())
      r.error(b + "/name", show(g.at("name")),
              "a catalog GPU's name; a custom GPU needs a name of its own (write \"gpu\": \"" + name +
                  "\" for the catalog's)");
  }
  GpuSpec spec;
  bool based = false;
  if (r.read_string(&g, b, "base", "the catalog GPU it starts from, e.g. \"H100-SXM-80GB\"", &base, &base_here) &&
      base_here) {
    Result<GpuSpec> bg = find_gpu(base);
    if (bg.ok()) {
      spec = bg.value();
      based = true;
    } else {
      r.error(b + "/base", show(g.at("base")), unknown_gpu_message(base));
    }
  }
  constexpr double kMaxTflops = 1e6, kMaxGBps = 1e7;
  const GpuSpec from = spec;
  // Each figure present and valid is set (read_real leaves its output alone when the key is absent).
  auto figure = [&](const char* key, double lo, double hi, const char* example, auto set) {
    double v = 0;
    if (Reader::has(&g, key) && r.read_real(&g, b, key, lo, hi, example, &v)) set(v);
  };
  figure("peak_bf16_tflops", 1e-3, kMaxTflops, "2250", [&](double v) {
    spec.peak_bf16 = spec.peak_fp16 = FlopRate::TFLOPs(v);
    if (from.peak_fp8.per_s() > 0) spec.peak_fp8 = FlopRate::TFLOPs(2 * v);
  });
  figure("peak_fp16_tflops", 1e-3, kMaxTflops, "2250", [&](double v) { spec.peak_fp16 = FlopRate::TFLOPs(v); });
  figure("peak_fp8_tflops", 0, kMaxTflops, "4500 (0: no fp8 tensor cores)",
         [&](double v) { spec.peak_fp8 = FlopRate::TFLOPs(v); });
  figure("peak_fp32_tflops", 1e-3, kMaxTflops, "80", [&](double v) { spec.peak_fp32 = FlopRate::TFLOPs(v); });
  figure("hbm_gib", 1.0 / 1024, 1e6, "192",
         [&](double v) { spec.hbm_capacity = Bytes(static_cast<int64_t>(std::llround(v * 1073741824.0))); });
  figure("hbm_bandwidth_GBps", 1e-3, kMaxGBps, "8000", [&](double v) { spec.hbm_bandwidth = Bandwidth::GBps(v); });
  figure("nvlink_GBps_per_direction", 1e-3, kMaxGBps, "900",
         [&](double v) { spec.nvlink_bandwidth = Bandwidth::GBps(v); });
  figure("nic_Gbps", 1e-3, kMaxGBps, "800", [&](double v) { spec.nic_bandwidth = Bandwidth::Gbps(v); });
  figure("pcie_GBps_per_direction", 1e-3, kMaxGBps, "64", [&](double v) { spec.pcie_bandwidth = Bandwidth::GBps(v); });
  r.read_int(&g, b, "gpus_per_node", 1, kMaxGpusPerNode, nullptr, &spec.gpus_per_node);
  r.read_int(&g, b, "sms", 1, 100000, nullptr, &spec.sms);
  const bool limit_here = Reader::has(&g, "power_limit_w");
  figure("tdp_w", 1, 1e5, "1000", [&](double v) {
    spec.tdp_w = v;
    if (!limit_here) spec.power_limit_w = v;   // a part that runs at its maximum power
  });
  figure("power_limit_w", 1, 1e5, "700", [&](double v) { spec.power_limit_w = v; });
  if (based && r.good({b + "/tdp_w", b + "/power_limit_w"}) && spec.power_limit_w > spec.tdp_w)
    r.error(b + (limit_here ? "/power_limit_w" : "/tdp_w"),
            Reader::fmt_real(limit_here ? spec.power_limit_w : spec.tdp_w),
            "power_limit_w (" + Reader::fmt_real(spec.power_limit_w) + ") must not exceed tdp_w (" +
                Reader::fmt_real(spec.tdp_w) + "): the limit a part runs at is at most its maximum power");
  std::string source;
  bool source_here = false;
  r.read_string(&g, b, "source", nullptr, &source, &source_here);
  if (r.status().errors().size() != errors_before || !based || !name_here) return false;
  spec.name = name;
  spec.base = from.name;
  spec.family = from.family;
  spec.source = source_here && !source.empty() ? source : "the scenario's own GPU, based on " + from.name;
  *out = spec;
  return true;
}

// Model: catalog entry (by "name") with per-field overrides, or a model described inline.
std::optional<ModelSpec> read_model(Reader& r, const json* sec) {
  if (!sec) return std::nullopt;
  const std::string base = "/model";
  ModelSpec m;
  bool from_catalog = false;
  std::string name;
  bool named = false;
  if (!r.read_string(sec, base, "name", nullptr, &name, &named)) return std::nullopt;
  static const char* kInline[] = {"layers", "hidden", "heads", "vocab"};
  if (named) {
    Result<ModelSpec> found = find_model(name);
    if (found.ok()) {
      m = found.value();
      from_catalog = true;
    } else {
      bool all_inline = true;
      for (const char* k : kInline) all_inline = all_inline && Reader::has(sec, k);
      if (!all_inline) {
        r.error(base + "/name", show(sec->at("name")),
                found.status().errors().front().message +
                    "; or describe the model inline with layers, hidden, heads and vocab "
                    "(see scenarios/README.md)");
        r.mark_bad(base);
        return std::nullopt;
      }
      m.name = name;
    }
  } else {
    m.name = "custom";
  }

  const char* req = from_catalog ? nullptr : "(an inline model needs layers, hidden, heads, vocab)";
  bool ok = true;
  ok &= r.read_int(sec, base, "layers", 1, kMaxLayers, req, &m.layers);
  ok &= r.read_int(sec, base, "hidden", 1, kMaxHidden, req, &m.hidden);
  ok &= r.read_int(sec, base, "heads", 1, kMaxHeads, req, &m.heads);
  ok &= r.read_int(sec, base, "vocab", 1, kMaxVocab, req, &m.vocab);
  ok &= r.read_int(sec, base, "kv_heads", 1, kMaxHeads, nullptr, &m.kv_heads);
  ok &= r.read_int(sec, base, "head_dim", 1, kMaxHeads, nullptr, &m.head_dim);
  ok &= r.read_int(sec, base, "ffn_hidden", 1, kMaxFfn, nullptr, &m.ffn_hidden);
  bool act_given = false, norm_given = false;
  ok &= r.read_enum(sec, base, "activation", parse_activation, activation_choices(), &m.activation,
                    &act_given);
  ok &= r.read_enum(sec, base, "norm", parse_norm, norm_choices(), &m.norm, &norm_given);
  ok &= r.read_bool(sec, base, "tied_embeddings", &m.tied_embeddings);
  // Multi-token-prediction modules on the last stage (spec.h); catalog default (DeepSeek-V3: 1) or 0.
  ok &= r.read_int(sec, base, "mtp_depth", 0, 4, nullptr, &m.mtp_depth);

  std::string arch;
  bool arch_given = false;
  ok &= r.read_string(sec, base, "arch", nullptr, &arch, &arch_given);
  if (arch_given) {
    if (arch == "dense" || arch == "moe") {
      m.arch = arch;
    } else {
      r.error(base + "/arch", show(sec->at("arch")), "unknown architecture; accepted: \"dense\" or \"moe\"");
      ok = false;
    }
  }
  // MoE fields. null means "not applicable" (the published-run schema's way) = absent.
  static const char* kMoeFields[] = {"experts", "top_k", "expert_ffn_hidden", "shared_experts", "dense_layers",
                                     "capacity_factor", "router"};
  auto given = [&](const char* k) {
    const json* v = Reader::field(sec, k);
    return v && !v->is_null();
  };
  if (ok && m.arch != "moe") {
    for (const char* k : kMoeFields)
      if (given(k)) {
        r.error(base + "/" + k, show(sec->at(k)),
                "a MoE field on a dense model; set \"arch\": \"moe\" or remove the key");
        ok = false;
      }
  } else if (ok) {
    const char* need = from_catalog && m.experts > 0 ? nullptr : "(a MoE model needs experts and top_k)";
    if (given("experts") || need) ok &= r.read_int(sec, base, "experts", 1, 1 << 16, need, &m.experts);
    if (given("top_k") || need) ok &= r.read_int(sec, base, "top_k", 1, 1 << 16, need, &m.top_k);
    if (given("expert_ffn_hidden")) ok &= r.read_int(sec, base, "expert_ffn_hidden", 1, kMaxFfn, nullptr, &m.expert_ffn_hidden);
    if (given("shared_experts")) ok &= r.read_int(sec, base, "shared_experts", 0, 1 << 16, nullptr, &m.shared_experts);
    if (given("dense_layers")) ok &= r.read_int(sec, base, "dense_layers", 0, kMaxLayers, nullptr, &m.dense_layers);
    if (given("capacity_factor")) {
      const json* v = Reader::field(sec, "capacity_factor");
      if (!v->is_number() || !std::isfinite(v->get<double>()) || v->get<double>() < 0 || v->get<double>() > 1e6) {
        r.error(base + "/capacity_factor", show(*v),
                "expected a number >= 0 (tokens per expert are capped at capacity_factor * the mean; 0 = "
                "dropless), e.g. 1.25; got " + kind(*v));
        ok = false;
      } else {
        m.capacity_factor = v->get<double>();
      }
    }
    if (given("router")) {
      std::string rt;
      ok &= r.read_string(sec, base, "router", nullptr, &rt);
      if (rt != "softmax" && rt != "sigmoid") {
        r.error(base + "/router", show(sec->at("router")), "unknown value; accepted: \"softmax\" or \"sigmoid\"");
        ok = false;
      } else {
        m.router = rt;
      }
    }
    if (ok && m.top_k > m.experts) {
      r.error(base + "/top_k", std::to_string(m.top_k),
              "top_k=" + std::to_string(m.top_k) + " exceeds experts=" + std::to_string(m.experts) +
                  "; use 1 to " + std::to_string(m.experts));
      ok = false;
    }
  }
  // Attention kind: "mha" / "gqa" (informative, checked below) or "mla" with its latent fields.
  static const char* kMlaFields[] = {"q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
                                     "v_head_dim"};
  std::string attention;
  if (const json* att = Reader::field(sec, "attention"); att && !att->is_null()) {
    attention = att->is_string() ? att->get<std::string>() : "";
    if (attention != "mha" && attention != "gqa" && attention != "mla") {
      r.error(base + "/attention", show(*att), "unknown value; accepted: \"mha\", \"gqa\" or \"mla\"");
      ok = false;
    }
  }
  if (ok) {
    if (!attention.empty()) m.mla = attention == "mla";
    if (!m.mla) {
      for (const char* k : kMlaFields)
        if (given(k)) {
          r.error(base + "/" + k, show(sec->at(k)),
                  "an MLA field on a model without multi-head latent attention; set \"attention\": \"mla\" or "
                  "remove the key");
          ok = false;
        }
      m.q_lora_rank = m.kv_lora_rank = m.qk_nope_head_dim = m.qk_rope_head_dim = m.v_head_dim = 0;
    } else {
      // Defaults (README): q_lora_rank 0 (no Q compression), qk_nope_head_dim 128,
      // qk_rope_head_dim 64, v_head_dim = qk_nope_head_dim; kv_lora_rank has none.
      const bool have = from_catalog && m.kv_lora_rank > 0;
      const char* need = have ? nullptr : "(attention \"mla\" needs kv_lora_rank, e.g. 512 as in DeepSeek-V3)";
      if (!have) {
        m.q_lora_rank = 0;
        m.qk_nope_head_dim = 128;
        m.qk_rope_head_dim = 64;
        m.v_head_dim = 0;
      }
      if (given("kv_lora_rank") || need) ok &= r.read_int(sec, base, "kv_lora_rank", 1, kMaxHidden, need, &m.kv_lora_rank);
      if (given("q_lora_rank")) ok &= r.read_int(sec, base, "q_lora_rank", 0, kMaxHidden, nullptr, &m.q_lora_rank);
      if (given("qk_nope_head_dim"))
        ok &= r.read_int(sec, base, "qk_nope_head_dim", 1, kMaxHeads, nullptr, &m.qk_nope_head_dim);
      if (given("qk_rope_head_dim"))
        ok &= r.read_int(sec, base, "qk_rope_head_dim", 1, kMaxHeads, nullptr, &m.qk_rope_head_dim);
      if (given("v_head_dim")) ok &= r.read_int(sec, base, "v_head_dim", 1, kMaxHeads, nullptr, &m.v_head_dim);
      if (m.v_head_dim == 0) m.v_head_dim = m.qk_nope_head_dim;
      for (const char* k : {"kv_heads", "head_dim"})
        if (given(k)) {
          r.error(base + "/" + k, show(sec->at(k)),
                  std::string("not used with attention \"mla\" (every head has its own K and V from the latent; the "
                              "head dims are qk_nope_head_dim + qk_rope_head_dim and v_head_dim); remove the key"));
          ok = false;
        }
      m.kv_heads = m.heads;
      m.head_dim = m.mla_qk_dim();
    }
  }
  if (!ok) {
    r.mark_bad(base);
    return std::nullopt;
  }

  // Derived fields of an inline model (a catalog entry keeps its own unless overridden).
  if (!Reader::has(sec, "kv_heads") && !from_catalog) m.kv_heads = m.heads;
  if (!norm_given && !from_catalog)
    m.norm = m.activation == Activation::kSwiglu ? NormKind::kRMSNorm : NormKind::kLayerNorm;
  // The shape checks below are independent: each runs, so a model's mistakes come at once.
  bool bad = false;
  if (!Reader::has(sec, "ffn_hidden") && !from_catalog) {
    if (m.activation == Activation::kSwiglu) {
      r.error(base + "/ffn_hidden", "",
              "missing; required for swiglu models (no standard ratio; Llama 3 8B uses 14336)");
      bad = true;
    } else {
      m.ffn_hidden = 4 * m.hidden;
    }
  }
  if (m.arch == "moe") {
    if (m.expert_ffn_hidden == 0) m.expert_ffn_hidden = m.ffn_hidden;
    if (m.dense_layers >= m.layers) {
      r.error(base + "/dense_layers", std::to_string(m.dense_layers),
              "dense_layers=" + std::to_string(m.dense_layers) + " leaves no MoE layer of layers=" +
                  std::to_string(m.layers) + "; use 0 to " + std::to_string(m.layers - 1));
      bad = true;
    }
  }
  // head_dim: given, else the catalog's (unless hidden or heads were overridden), else hidden/heads.
  const bool shape_overridden = Reader::has(sec, "hidden") || Reader::has(sec, "heads");
  if (!Reader::has(sec, "head_dim") && !m.mla && (!from_catalog || shape_overridden || m.head_dim <= 0)) {
    if (m.hidden % m.heads != 0) {
      r.error(base + "/heads", std::to_string(m.heads),
              "heads=" + std::to_string(m.heads) + " does not divide hidden=" +
                  std::to_string(m.hidden) + "; use a divisor of hidden or give head_dim");
      bad = true;
    } else {
      m.head_dim = m.hidden / m.heads;
    }
  }
  if (m.kv_heads > m.heads || m.heads % m.kv_heads != 0) {
    std::vector<int64_t> d = divisors(m.heads);
    r.error(base + "/kv_heads", std::to_string(m.kv_heads),
            "kv_heads=" + std::to_string(m.kv_heads) + " must divide heads=" +
                std::to_string(m.heads) + "; use " + join_ints(d));
    bad = true;
  }
  if (bad) {
    r.mark_bad(base);
    return std::nullopt;
  }
  if (attention == "mha" && m.kv_heads != m.heads) {
    r.error(base + "/attention", "\"mha\"",
            "mha means kv_heads == heads, but kv_heads=" + std::to_string(m.kv_heads) +
                " and heads=" + std::to_string(m.heads) + "; use \"gqa\" or fix kv_heads");
  }
  return m;
}

bool read_bandwidth_field(Reader& r, const json* sec, const std::string& base, const char* key,
                          Bandwidth* out, bool* present) {
  *present = false;
  const json* v = Reader::field(sec, key);
  const std::string path = base + "/" + key;
  if (!v) return true;
  if (v->is_number()) {
    std::string n = show(*v);
    r.error(path, n, "missing unit; write \"" + n + "Gbps\" (bits/s) or \"" + n +
                         "GB/s\" (bytes/s)");
    return false;
  }
  if (!v->is_string()) {
    r.error(path, show(*v), "expected a bandwidth string such as \"400Gbps\" or \"50GB/s\", got " +
                                kind(*v));
    return false;
  }
  std::string why;
  if (!parse_bandwidth(v->get<std::string>(), out, &why)) {
    r.error(path, show(*v), why);
    return false;
  }
  *present = true;
  return true;
}


// ---- the whole document -----------------------------------------------------------------------

std::string stem_of(const std::string& label) {
  std::string s = label;
  size_t slash = s.find_last_of('/');
  if (slash != std::string::npos) s = s.substr(slash + 1);
  if (s.size() > 5 && s.compare(s.size() - 5, 5, ".json") == 0) s.resize(s.size() - 5);
  return s.empty() ? "scenario" : s;
}

// Balanced split of `layers` into n chunks; the chunks that get one layer fewer sit at the two
// ends of the pipeline (they also hold the embedding and the LM head), alternating first/last.
std::vector<int> balanced_split(int layers, int n) {
  int base = layers / n, rem = layers % n;
  std::vector<int> out(n, base + 1);
  int fewer = n - rem;
  int lo = 0, hi = n - 1;
  for (int k = 0; k < fewer; ++k) {
    if (k % 2 == 0) out[lo++] = base;
    else out[hi--] = base;
  }
  return out;
}

Result<Scenario> load_document(json doc, const std::string& label,
                               const std::vector<std::string>& overrides) {
  Reader r(label);
  Status override_errors;
  r.set_overridden(apply_overrides(&doc, overrides, &override_errors));
  auto finish = [&](Reader& rd) -> Status {
    Status st = override_errors;
    st.merge(rd.status());
    return st;
  };
  if (!doc.is_object()) {
    r.error("/", show(doc),
            "a scenario is a JSON object with sections \"model\", \"training\", \"cluster\" and "
            "(optional) \"parallel\"; got " + kind(doc));
    return finish(r);
  }
  for (const auto& [k, v] : doc.items())
    if (std::find(kTopKeys.begin(), kTopKeys.end(), k) == kTopKeys.end())
      r.unknown_key("", k, kTopKeys);

  Scenario s;
  s.file = label;
  s.name = stem_of(label);
  r.read_string(&doc, "", "name", nullptr, &s.name);
  std::string description;
  r.read_string(&doc, "", "description", nullptr, &description);
  {
    const json* v = Reader::field(&doc, "seed");
    if (v) {
      if (v->is_number_unsigned()) s.options.seed = v->get<uint64_t>();
      else if (v->is_number_integer() && v->get<int64_t>() >= 0) s.options.seed = v->get<uint64_t>();
      else r.error("/seed", show(*v), "expected a non-negative integer (0 to 2^64-1), got " + kind(*v));
    }
  }

  const json* msec = get_section(r, doc, "model", true);
  const json* tsec = get_section(r, doc, "training", true);
  const json* csec = get_section(r, doc, "cluster", true);
  // No parallel section: every default, i.e. plain data parallelism over all the GPUs.
  const json* psec = get_section(r, doc, "parallel", false);
  const json* nsec = get_section(r, doc, "network", false);
  const json* ksec = get_section(r, doc, "costs", false);

  // model
  std::optional<ModelSpec> model = read_model(r, msec);
  if (model) s.model = *model;
  else r.mark_bad("/model");

  // training
  TrainingSpec& t = s.training;
  if (tsec) {
    r.read_int(tsec, "/training", "seq_len", 1, kMaxSeq, "tokens per sequence, e.g. 2048", &t.seq_len);
    r.read_int(tsec, "/training", "global_batch", 1, kMaxGlobalBatch,
               "sequences per optimizer step, e.g. 1024", &t.global_batch);
    r.read_int(tsec, "/training", "micro_batch", 1, kMaxMicroBatch, nullptr, &t.micro_batch);
    bool here = false;
    DType d = DType::kBF16;
    if (r.read_enum(tsec, "/training", "precision", parse_dtype, "\"bf16\", \"fp16\" or \"fp8\"", &d,
                    &here) && here) {
      if (d == DType::kFP32) r.error("/training/precision", "\"fp32\"",
                                     "fp32 training is not modelled; accepted: \"bf16\", \"fp16\" or \"fp8\"");
      else t.precision = d;
    }
    r.read_enum(tsec, "/training", "attention_kernel", parse_attention_kernel,
                attention_kernel_choices(), &t.attention_kernel);
    r.read_bool(tsec, "/training", "dropout", &t.dropout);
    r.read_enum(tsec, "/training", "fp8_recipe", parse_fp8_recipe, fp8_recipe_choices(), &t.fp8_recipe);
    r.read_bool(tsec, "/training", "fp8_cache_inputs", &t.fp8_cache_inputs);
    r.read_enum(tsec, "/training", "framework", parse_framework, framework_choices(), &t.framework);
    if (const json* v = Reader::field(tsec, "train_tokens")) {
      // A number of tokens, or a string with a K/M/B/T suffix ("15T"): sim/units.h parse_count.
      std::string why;
      int64_t n = 0;
      bool ok = false;
      if (v->is_number() && !v->is_boolean()) {
        const double d = v->get<double>();
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", d);
        ok = std::isfinite(d) && parse_count(buf, &n, &why);
        if (!std::isfinite(d)) why = "must be a finite number of tokens";
      } else if (v->is_string()) {
        ok = parse_count(v->get<std::string>(), &n, &why);
      } else {
        why = "expected a number of tokens such as 1e12 or a string such as \"15T\" or \"300B\", got " + kind(*v);
      }
      if (ok) t.train_tokens = n;
      else r.error("/training/train_tokens", show(*v), why);
    }
  } else {
    r.mark_bad("/training");
  }

  // cluster
  ClusterSpec& c = s.cluster;
  bool gpu_known = false;
  if (csec) {
    std::string gpu;
    bool here = false;
    if (const json* g = Reader::field(csec, "gpu"); g && g->is_object()) {
      gpu_known = read_custom_gpu(r, *g, &c.gpu);
      if (!gpu_known) r.mark_bad("/cluster/gpu");
    } else if (g && !g->is_string() && !g->is_null()) {
      r.error("/cluster/gpu", show(*g),
              "expected a GPU name such as \"H100-SXM-80GB\", or a custom GPU: an object with \"name\", \"base\" "
              "(a catalog GPU) and the figures that differ from it; got " + kind(*g));
    } else if (r.read_string(csec, "/cluster", "gpu",
                             "a GPU name such as \"H100-SXM-80GB\", or a custom GPU: an object with \"name\" and \"base\"",
                             &gpu, &here) &&
               here) {
      Result<GpuSpec> g = find_gpu(gpu);
      if (g.ok()) {
        c.gpu = g.value();
        gpu_known = true;
      } else {
        r.error("/cluster/gpu", show(csec->at("gpu")), unknown_gpu_message(gpu));
      }
    } else {
      r.mark_bad("/cluster/gpu");
    }
    r.read_int(csec, "/cluster", "gpus", 1, kMaxGpus, "the number of GPUs, e.g. 64", &c.gpus);
    if (Reader::has(csec, "gpus_per_node")) {
      r.read_int(csec, "/cluster", "gpus_per_node", 1, kMaxGpusPerNode, nullptr, &c.gpus_per_node);
    } else if (gpu_known) {
      c.gpus_per_node = c.gpu.gpus_per_node;
    } else {
      r.mark_bad("/cluster/gpus_per_node");
    }
    {
      std::string so;
      bool so_here = false;
      if (r.read_string(csec, "/cluster", "scale_out", nullptr, &so, &so_here) && so_here) {
        std::string l = lower(so);
        if (l == "infiniband") c.scale_out = ScaleOut::kInfiniBand;
        else if (l == "roce") c.scale_out = ScaleOut::kRoCE;
        else if (l == "omnipath") c.scale_out = ScaleOut::kOmniPath;
        else r.error("/cluster/scale_out", show(csec->at("scale_out")),
                     "unknown value; accepted: \"infiniband\", \"roce\" or \"omnipath\"");
      }
    }
    bool nic_here = false, nvl_here = false, pcie_here = false;
    read_bandwidth_field(r, csec, "/cluster", "pcie_bandwidth", &c.pcie_bandwidth, &pcie_here);
    read_bandwidth_field(r, csec, "/cluster", "nic_bandwidth", &c.nic_bandwidth, &nic_here);
    read_bandwidth_field(r, csec, "/cluster", "nvlink_bandwidth", &c.nvlink_bandwidth, &nvl_here);
    if (const json* g = Reader::field(csec, "nic_gbps_per_gpu")) {
      if (Reader::has(csec, "nic_bandwidth")) {
        r.error("/cluster/nic_gbps_per_gpu", show(*g),
                "give either nic_bandwidth or nic_gbps_per_gpu, not both");
      } else if (!g->is_number() || !std::isfinite(g->get<double>()) || g->get<double>() < 1 ||
                 g->get<double>() > 1e6) {
        r.error("/cluster/nic_gbps_per_gpu", show(*g),
                "expected a number of Gbit/s per GPU from 1 to 1000000, e.g. 400; got " + kind(*g));
      } else {
        c.nic_bandwidth = Bandwidth::Gbps(g->get<double>());
        nic_here = true;
      }
    }
    if (gpu_known) {
      if (!nic_here) c.nic_bandwidth = c.gpu.nic_bandwidth;
      if (!nvl_here) c.nvlink_bandwidth = c.gpu.nvlink_bandwidth;
      if (!pcie_here) c.pcie_bandwidth = c.gpu.pcie_bandwidth;
    }
  } else {
    r.mark_bad("/cluster");
  }

  // parallel
  ParallelSpec& p = s.parallel;
  bool dp_given = false;
  bool schedule_given = false;
  if (psec) {
    const std::string b = "/parallel";
    r.read_int(psec, b, "tp", 1, kMaxGpus, nullptr, &p.tp);
    r.read_int(psec, b, "pp", 1, kMaxGpus, nullptr, &p.pp);
    r.read_int(psec, b, "vp", 1, kMaxLayers, nullptr, &p.vp);
    dp_given = Reader::has(psec, "dp");
    r.read_int(psec, b, "dp", 1, kMaxGpus, nullptr, &p.dp);
    r.read_int(psec, b, "cp", 1, kMaxGpus, nullptr, &p.cp);
    r.read_int(psec, b, "cp_ulysses", 1, kMaxGpus, nullptr, &p.cp_ulysses);
    r.read_bool(psec, b, "cp_load_balance", &p.cp_load_balance);
    r.read_int(psec, b, "ep", 1, kMaxGpus, nullptr, &p.ep);
    r.read_int(psec, b, "etp", 1, kMaxGpus, nullptr, &p.etp);
    r.read_enum(psec, b, "ep_layout", parse_ep_layout, ep_layout_choices(), &p.ep_layout);
    r.read_bool(psec, b, "ep_overlap", &p.ep_overlap);
    r.read_bool(psec, b, "delay_wgrad", &p.delay_wgrad);
    r.read_bool(psec, b, "hsdp_defer_all_reduce", &p.hsdp_defer_all_reduce);
    r.read_bool(psec, b, "sequence_parallel", &p.sequence_parallel);
    r.read_bool(psec, b, "tp_overlap", &p.tp_overlap);
    r.read_enum(psec, b, "schedule", parse_schedule, schedule_choices(), &p.schedule,
                &schedule_given);
    if (!schedule_given && !Reader::has(psec, "schedule") && p.vp > 1)
      p.schedule = Schedule::kInterleaved;
    if (two_chunk_schedule(p.schedule) && !Reader::has(psec, "vp")) p.vp = 2;   // its two chunks
    r.read_int(psec, b, "zero", 0, 3, nullptr, &p.zero);
    r.read_int(psec, b, "fsdp_shard_group", 0, kMaxGpus, nullptr, &p.fsdp_shard_group);
    r.read_enum(psec, b, "recompute", parse_recompute, recompute_choices(), &p.recompute);
    r.read_int(psec, b, "recompute_layers", 0, kMaxLayers, nullptr, &p.recompute_layers);
    if (const json* v = Reader::field(psec, "recompute_modules")) {
      const std::string accepted = std::string("accepted: ") + recompute_module_choices();
      if (!v->is_array() || v->empty()) {
        r.error(b + "/recompute_modules", show(*v),
                "expected a non-empty array of module names, e.g. [\"core_attn\", \"layernorm\"]; " + accepted);
      } else {
        uint32_t mods = 0;
        bool ok = true;
        for (size_t i = 0; i < v->size(); ++i) {
          RecomputeModule m{};
          const json& e = (*v)[i];
          if (!e.is_string() || !parse_recompute_module(e.get<std::string>(), &m)) {
            r.error(b + "/recompute_modules/" + std::to_string(i), show(e), "unknown module; " + accepted);
            ok = false;
          } else {
            mods |= m;
          }
        }
        if (ok) p.recompute_modules = mods;
        else r.mark_bad(b + "/recompute_modules");
      }
    }
    r.read_bool(psec, b, "dp_overlap", &p.dp_overlap);
    r.read_int(psec, b, "zero3_prefetch", 0, kMaxLayers, nullptr, &p.zero3_prefetch);
    r.read_bool(psec, b, "zero3_reshard", &p.zero3_reshard);
    r.read_enum(psec, b, "zero3_gather", parse_zero_gather, zero_gather_choices(), &p.zero3_gather);
    r.read_enum(psec, b, "grad_reduce_dtype", parse_grad_reduce, grad_reduce_choices(), &p.grad_reduce_dtype);
    r.read_real(psec, b, "activation_offload", 0.0, 1.0, "0.5 (half of each layer's saved activations)",
                &p.activation_offload);
    if (const json* v = Reader::field(psec, "layers_per_stage")) {
      if (!v->is_array() || v->empty()) {
        r.error(b + "/layers_per_stage", show(*v),
                "expected a non-empty array of pp*vp positive integers summing to layers, e.g. "
                "[7, 8, 8, 7]; got " + kind(*v));
      } else if (v->size() > static_cast<size_t>(kMaxLayers)) {
        r.error(b + "/layers_per_stage", show(*v), "too many entries (more than layers can be)");
      } else {
        std::vector<int> lps;
        bool ok = true;
        for (size_t i = 0; i < v->size(); ++i) {
          int x = 0;
          json holder = json::object();
          holder[std::to_string(i)] = (*v)[i];
          ok &= r.read_int(&holder, b + "/layers_per_stage", std::to_string(i).c_str(), 1,
                           kMaxLayers, nullptr, &x);
          lps.push_back(x);
        }
        if (ok) p.layers_per_stage = std::move(lps);
        else r.mark_bad(b + "/layers_per_stage");
      }
    }
    {
      std::string order;
      bool here = false;
      if (r.read_string(psec, b, "order", nullptr, &order, &here) && here) {
        std::vector<std::string> parts;
        std::string cur;
        for (char ch : order) {
          if (ch == '-') {
            parts.push_back(cur);
            cur.clear();
          } else {
            cur += ch;
          }
        }
        parts.push_back(cur);
        std::vector<std::string> sorted = parts;
        std::sort(sorted.begin(), sorted.end());
        if (sorted != std::vector<std::string>{"cp", "dp", "pp", "tp"})
          r.error(b + "/order", show(psec->at("order")),
                  "expected a permutation of tp, cp, dp and pp joined by '-', innermost first, "
                  "e.g. \"tp-cp-dp-pp\" (the default)");
        else
          p.order = order;
      }
    }
    {
      const json* v = Reader::field(psec, "dp_bucket");
      if (v) {
        if (v->is_number()) {
          r.error(b + "/dp_bucket", show(*v),
                  "missing unit; write \"" + show(*v) + "MiB\" (2^20 bytes) or \"" + show(*v) +
                      "MB\" (10^6 bytes)");
        } else if (!v->is_string()) {
          r.error(b + "/dp_bucket", show(*v), "expected a size such as \"40MiB\", got " + kind(*v));
        } else {
          Bytes size;
          std::string why;
          if (!parse_size(v->get<std::string>(), &size, &why)) {
            r.error(b + "/dp_bucket", show(*v), why);
          } else {
            int64_t mib = (size.count() + (int64_t{1} << 19)) >> 20;  // nearest MiB
            if (mib < 1)
              r.error(b + "/dp_bucket", show(*v), "too small; the bucket must be at least \"1MiB\"");
            else
              p.dp_bucket_mb = mib;
          }
        }
      }
    }
  } else if (doc.contains("parallel")) {   // present but not an object (reported)
    r.mark_bad("/parallel");
  }

  // network and costs
  if (nsec) {
    std::string mode;
    bool here = false;
    if (r.read_string(nsec, "/network", "mode", nullptr, &mode, &here) && here) {
      if (mode == "analytic" || mode == "flow") s.options.network_mode = mode;
      else r.error("/network/mode", show(nsec->at("mode")),
                   "unknown value; accepted: \"analytic\" (alpha-beta) or \"flow\" (flow-level "
                   "contention on the topology)");
    }
    NetworkOptions& no = s.options.network;
    std::string topo;
    if (r.read_string(nsec, "/network", "topology", nullptr, &topo, &here) && here) {
      if (topo.empty())
        r.error("/network/topology", "\"\"",
                "empty; give a builtin name (see `trainsim topo list`) or a topology file, or remove "
                "the key for a fat-tree sized from the cluster section");
      else no.topology = topo;
    }
    if (const json* o = Reader::field(nsec, "oversubscription")) {
      const json arr = o->is_array() ? *o : json::array({*o});
      if (o->is_array() && (o->empty() || o->size() > 3))
        r.error("/network/oversubscription", show(*o),
                "expected 1 to 3 ratios (one per switch tier from the leaf up), e.g. [1, 4]");
      for (size_t i = 0; i < arr.size(); ++i) {
        const std::string path = "/network/oversubscription" + (o->is_array() ? "/" + std::to_string(i) : "");
        if (!arr[i].is_number() || !std::isfinite(arr[i].get<double>()) || arr[i].get<double>() < 1 ||
            arr[i].get<double>() > 1024)
          r.error(path, show(arr[i]),
                  "expected a down:up ratio in [1, 1024] (1 = non-blocking, 4 = 4:1), a number or an "
                  "array of one per tier; got " + kind(arr[i]));
        else no.oversubscription.push_back(arr[i].get<double>());
      }
    }
    std::string placement;
    if (r.read_string(nsec, "/network", "placement", nullptr, &placement, &here) && here) {
      if (placement == "contiguous" || placement == "scattered") no.placement = placement;
      else r.error("/network/placement", show(nsec->at("placement")),
                   "unknown value; accepted: \"contiguous\" (job nodes in fabric order) or "
                   "\"scattered\" (a seeded random spread over the fabric's nodes)");
    }
    if (const json* m = Reader::field(nsec, "modifications")) {
      Status ms = parse_link_modifications(*m, r.file(), "/network/modifications", &no.modifications);
      for (const Error& e : ms.errors()) r.error(e.path, e.value, e.message);
    }
    r.read_int(nsec, "/network", "hottest_links", 1, 1000, nullptr, &no.hottest_links);
    for (const char* k : {"topology", "oversubscription", "modifications", "placement", "hottest_links"})
      if (Reader::has(nsec, k)) no.flow_only_given.push_back(std::string("network.") + k);
    r.read_bool(nsec, "/network", "in_network_reduction", &no.in_network_reduction);
  }
  if (ksec) {
    std::string cal;
    bool here = false;
    if (r.read_string(ksec, "/costs", "calibration", nullptr, &cal, &here) && here) {
      if (cal.empty())
        r.error("/costs/calibration", "\"\"",
                "empty path; give a calibration database (e.g. \"calib/h100.db\") or remove the key "
                "to use the embedded defaults");
      else s.options.calibration = cal;
    }
    std::string pref;
    here = false;
    if (r.read_string(ksec, "/costs", "prefer_source", nullptr, &pref, &here) && here) {
      if (pref.empty())
        r.error("/costs/prefer_source", "\"\"",
                "empty text; give part of a measuring source (e.g. \"flash\" or \"cuDNN\") or remove the key "
                "to let the fastest measurement of an op count");
      else s.options.prefer_source = pref;
    }
    r.read_int(ksec, "/costs", "nccl_ctas", 0, 1024, nullptr, &s.options.nccl_ctas);
  }

  // documents: variable-length documents packed into windows (models/packing.h)
  const json* dsec = get_section(r, doc, "documents", false);
  t.documents.seed = s.options.seed;
  if (dsec) {
    const std::string b = "/documents";
    std::string lengths;
    bool here = false;
    if (r.read_string(dsec, b, "lengths", "\"fixed\" or \"lognormal\"", &lengths, &here) && here) {
      if (lengths == "none") t.documents.kind = DocumentLengths::kNone;
      else if (lengths == "fixed") t.documents.kind = DocumentLengths::kFixed;
      else if (lengths == "lognormal") t.documents.kind = DocumentLengths::kLognormal;
      else r.error(b + "/lengths", show(dsec->at("lengths")),
                   "unknown value; accepted: \"none\", \"fixed\" or \"lognormal\"");
    }
    if (t.documents.kind != DocumentLengths::kNone) {
      if (!Reader::has(dsec, "mean_tokens"))
        r.error(b + "/mean_tokens", "", "missing; the mean document length in tokens, e.g. 2048");
      r.read_real(dsec, b, "mean_tokens", 1, 1e12, "2048", &t.documents.mean_tokens);
      if (t.documents.kind == DocumentLengths::kLognormal && !Reader::has(dsec, "sigma"))
        r.error(b + "/sigma", "", "missing; required for lengths \"lognormal\": the standard deviation of log(length), e.g. 1.0");
      r.read_real(dsec, b, "sigma", 0, 10, "1.0", &t.documents.sigma);
      if (!fused_attention(t.attention_kernel))
        r.error(b + "/lengths", "\"" + lengths + "\"",
                "document masking runs as varlen fused attention; set training.attention_kernel to \"flash\" or "
                "\"cudnn\"");
    }
    if (const json* v = Reader::field(dsec, "seed")) {
      if (v->is_number_unsigned() || (v->is_number_integer() && v->get<int64_t>() >= 0)) t.documents.seed = v->get<uint64_t>();
      else r.error(b + "/seed", show(*v), "expected a non-negative integer (0 to 2^64-1), got " + kind(*v));
    }
  }

  // failures: interruptions over the whole run (scenarios/predict.h time_to_train)
  if (const json* fsec = get_section(r, doc, "failures", false)) {
    const std::string b = "/failures";
    FailureSpec& f = t.failures;
    f.present = true;
    if (Reader::has(fsec, "per_gpu_hour")) {
      f.rate_default = false;
      r.read_real(fsec, b, "per_gpu_hour", 0, 1, "2e-5", &f.per_gpu_hour);
    }
    // A duration string ("30s", "5min"; sim/units.h parse_duration) at failures/KEY.
    auto duration = [&](const char* key, const char* what, double* out) {
      const json* v = Reader::field(fsec, key);
      const std::string path = b + "/" + key;
      if (!v) {
        r.error(path, "", std::string("missing; ") + what);
        return;
      }
      std::string why;
      if (!v->is_string()) {
        r.error(path, show(*v), std::string("expected a duration such as \"30s\" or \"5min\" (") + what + "), got " + kind(*v));
      } else if (!parse_duration(v->get<std::string>(), out, &why)) {
        r.error(path, show(*v), why);
      }
    };
    duration("checkpoint_write", "the time one checkpoint blocks training, e.g. \"30s\"", &f.checkpoint_write_s);
    duration("restart", "the time from an interruption to training again (detect, reschedule, load the checkpoint), e.g. \"10min\"",
             &f.restart_s);
    if (const json* v = Reader::field(fsec, "checkpoint_interval"); v && !(v->is_string() && *v == "auto")) {
      duration("checkpoint_interval", "training time between checkpoints, or \"auto\" (Young's optimum)", &f.interval_s);
      if (r.good({b + "/checkpoint_interval"}) && f.interval_s <= 0)
        r.error(b + "/checkpoint_interval", show(*v), "must be longer than 0; or \"auto\" (Young's optimum)");
    }
    if (t.train_tokens == 0 && r.good({"/training/train_tokens"}))
      r.error(b, "", "failures change the time to train; set training.train_tokens (e.g. \"15T\") too");
  }

  // gpu_speed: each GPU's compute speed drawn around the costs' rate (models/gpu_speed.h)
  GpuSpeedSpec& gs = s.options.gpu_speed;
  gs.seed = s.options.seed;
  if (const json* gsec = get_section(r, doc, "gpu_speed", false)) {
    const std::string b = "/gpu_speed";
    gs.present = true;
    if (!Reader::has(gsec, "cv") && !Reader::has(gsec, "slow_share"))
      r.error(b, show(*gsec), "give cv (the spread of the GPUs' speeds, e.g. 0.03) or slow_share with slow_speed (outliers), or both");
    r.read_real(gsec, b, "cv", 0, 0.3, "0.03", &gs.cv);
    r.read_real(gsec, b, "slow_share", 0, 1, "0.001", &gs.slow_share);
    r.read_real(gsec, b, "slow_speed", 0.05, 1, "0.67", &gs.slow_speed);
    r.read_real(gsec, b, "spare_share", 0, 1, "0.02", &gs.spare_share);
    if (Reader::has(gsec, "slow_share") != Reader::has(gsec, "slow_speed"))
      r.error(b, "", "slow_share and slow_speed come together: the share of GPUs that are outliers and their speed "
                     "(e.g. 0.001 and 0.67)");
    if (const json* v = Reader::field(gsec, "seed")) {
      if (v->is_number_unsigned() || (v->is_number_integer() && v->get<int64_t>() >= 0)) gs.seed = v->get<uint64_t>();
      else r.error(b + "/seed", show(*v), "expected a non-negative integer (0 to 2^64-1), got " + kind(*v));
    }
  }

  // moe: routing distribution (models/moe.h)
  const json* msec_moe = get_section(r, doc, "moe", false);
  t.moe.seed = s.options.seed;
  if (msec_moe) {
    const std::string b = "/moe";
    std::string routing;
    bool here = false;
    if (r.read_string(msec_moe, b, "routing", nullptr, &routing, &here) && here) {
      if (routing == "balanced") t.moe.kind = MoeRouting::kBalanced;
      else if (routing == "uniform") t.moe.kind = MoeRouting::kUniform;
      else if (routing == "zipf") t.moe.kind = MoeRouting::kZipf;
      else if (routing == "histogram") t.moe.kind = MoeRouting::kHistogram;
      else r.error(b + "/routing", show(msec_moe->at("routing")),
                   "unknown value; accepted: \"balanced\", \"uniform\", \"zipf\" or \"histogram\"");
    }
    if (const json* v = Reader::field(msec_moe, "seed")) {
      if (v->is_number_unsigned() || (v->is_number_integer() && v->get<int64_t>() >= 0)) t.moe.seed = v->get<uint64_t>();
      else r.error(b + "/seed", show(*v), "expected a non-negative integer (0 to 2^64-1), got " + kind(*v));
    }
    // Dynamic expert placement what-if (models/moe.h, compiler.h).
    std::string placement;
    bool placement_here = false;
    if (r.read_string(msec_moe, b, "placement", nullptr, &placement, &placement_here) && placement_here) {
      if (placement == "static") t.moe.placement = MoePlacement::kStatic;
      else if (placement == "dynamic") t.moe.placement = MoePlacement::kDynamic;
      else r.error(b + "/placement", show(msec_moe->at("placement")),
                   "unknown value; accepted: \"static\" (experts stay in contiguous blocks) or \"dynamic\" "
                   "(hot experts moved or replicated every rebalance_every steps)");
    }
    if (t.moe.placement == MoePlacement::kDynamic) {
      r.read_int(msec_moe, b, "rebalance_every", 1, 1'000'000'000, nullptr, &t.moe.rebalance_every);
      r.read_int(msec_moe, b, "replicas", 0, 1 << 16, nullptr, &t.moe.replicas);
    }   // like skew, ignored with static placement (so --set moe.placement=static switches it off)
    // EP dispatch/combine (sim/collectives.h dedup_alltoall_time): "direct" (default) or "dedup"
    // (DeepEP); node_limit M (0 = none, default): experts of a token on at most M nodes of its
    // EP group (DeepSeek-V3: 4), dedup only; checked against ep below.
    std::string dispatch;
    bool dispatch_here = false;
    if (r.read_string(msec_moe, b, "dispatch", nullptr, &dispatch, &dispatch_here) && dispatch_here) {
      if (dispatch == "direct") t.moe.dispatch = MoeDispatch::kDirect;
      else if (dispatch == "dedup") t.moe.dispatch = MoeDispatch::kDedup;
      else r.error(b + "/dispatch", show(msec_moe->at("dispatch")),
                   "unknown value; accepted: \"direct\" (one all-to-all, every token copy to its expert's GPU) or "
                   "\"dedup\" (DeepEP: once per remote node, then NVLink forwarding)");
    }
    r.read_int(msec_moe, b, "node_limit", 0, 1 << 20, nullptr, &t.moe.node_limit);
    const json* sk = Reader::field(msec_moe, "skew");
    if (t.moe.kind == MoeRouting::kZipf) {
      if (!sk) r.error(b + "/skew", "", "missing; required for routing \"zipf\": the exponent s > 0, e.g. 1.0");
      else if (!sk->is_number() || !std::isfinite(sk->get<double>()) || sk->get<double>() <= 0 || sk->get<double>() > 100)
        r.error(b + "/skew", show(*sk), "expected a number s with 0 < s <= 100 (the zipf exponent), got " + kind(*sk));
      else t.moe.skew = sk->get<double>();
    }   // a skew with another routing is ignored (so --set moe.routing=... can switch it off)
    const json* hv = Reader::field(msec_moe, "histogram");
    if (t.moe.kind == MoeRouting::kHistogram) {
      if (!hv || !hv->is_string() || hv->get<std::string>().empty()) {
        r.error(b + "/histogram", hv ? show(*hv) : "",
                "required for routing \"histogram\": the path of a JSON file (relative to the scenario) holding "
                "an array of per-expert token counts or fractions");
      } else {
        std::string path = hv->get<std::string>();
        std::string full = path;
        if (!path.empty() && path[0] != '/') {
          size_t slash = label.find_last_of('/');
          if (slash != std::string::npos) full = label.substr(0, slash + 1) + path;
        }
        std::ifstream in(full, std::ios::binary);
        if (!in) {
          r.error(b + "/histogram", show(*hv), "cannot open " + full + " (paths are relative to the scenario file)");
        } else {
          std::stringstream ss;
          ss << in.rdbuf();
          const std::string body = ss.str();
          json h = json_too_deep(body) ? json(json::value_t::discarded) : json::parse(body, nullptr, false);
          bool good = h.is_array() && !h.empty();
          double sum = 0;
          if (good)
            for (const auto& x : h) {
              if (!x.is_number() || !std::isfinite(x.get<double>()) || x.get<double>() < 0) good = false;
              else sum += x.get<double>();
            }
          if (!good || sum <= 0) {
            r.error(b + "/histogram", show(*hv),
                    full + ": expected a JSON array of non-negative per-expert token counts or fractions, not all zero");
          } else {
            for (const auto& x : h) t.moe.histogram.push_back(x.get<double>());
            t.moe.histogram_file = path;
          }
        }
      }
    }   // likewise a histogram path with another routing is ignored (not opened)
  }

  // ---- semantic checks across sections ----
  const std::string P = "/parallel";
  auto I = [](int64_t v) { return std::to_string(v); };

  // Degrees and model shape.
  if (r.good({"/model", P + "/tp"})) {
    const ModelSpec& m = s.model;
    int64_t g = std::gcd<int64_t>(m.heads, m.kv_heads);
    if (m.heads % p.tp != 0 || m.kv_heads % p.tp != 0) {
      std::string what = m.heads % p.tp != 0 ? "heads=" + I(m.heads) : "kv_heads=" + I(m.kv_heads);
      r.error(P + "/tp", I(p.tp),
              "tp=" + I(p.tp) + " does not divide " + what + " (" + m.name + "); use " +
                  join_ints(divisors(g)));
    }
  }
  if (r.good({"/model", P + "/pp", P + "/vp"})) {
    // (DualPipe: two copies of a pp-stage model, so pp entries.)
    int64_t chunks = p.schedule == Schedule::kDualPipe ? p.pp : sat_mul(p.pp, p.vp);
    if (chunks > s.model.layers) {
      r.error(P + "/pp", I(p.pp),
              (p.schedule == Schedule::kDualPipe
                   ? "pp = " + I(p.pp) + " stages (DualPipe holds two copies of a pp-stage model; vp does not count)"
                   : "pp*vp = " + I(p.pp) + "*" + I(p.vp) + " = " + I(chunks)) +
                  " exceeds layers=" + I(s.model.layers) +
                  "; every (virtual) pipeline stage needs at least one layer");
    } else if (r.good({P + "/layers_per_stage"}) && !p.layers_per_stage.empty()) {
      int64_t sum = 0;
      for (int x : p.layers_per_stage) sum += x;
      std::string lv = show(psec->at("layers_per_stage"));
      if (static_cast<int64_t>(p.layers_per_stage.size()) != chunks)
        r.note(P + "/layers_per_stage", lv,
                "has " + I(p.layers_per_stage.size()) + " entries; expected " +
                    (p.schedule == Schedule::kDualPipe ? "pp" : "pp*vp") + " = " + I(chunks));
      else if (sum != s.model.layers)
        r.note(P + "/layers_per_stage", lv,
                "sums to " + I(sum) + "; expected layers=" + I(s.model.layers));
    } else if (p.layers_per_stage.empty() && s.model.layers % chunks != 0) {
      p.layers_per_stage = balanced_split(s.model.layers, static_cast<int>(chunks));
    }
  }

  // Data parallel degree and GPU count.
  if (r.good({"/cluster/gpus", P + "/tp", P + "/pp", P + "/cp", P + "/dp"})) {
    int64_t mp = sat_mul(sat_mul(p.tp, p.pp), p.cp);
    if (!dp_given) {
      if (c.gpus % mp != 0) {
        // A degree that --set changed on the file's GPU count is the mistake: name it, and the
        // values of it that divide the GPUs with the other two as they are.
        const char* changed = nullptr;
        if (!r.overridden("/cluster/gpus"))
          for (const char* k : {"cp", "pp", "tp"})
            if (!changed && r.overridden(P + "/" + k)) changed = k;
        if (changed) {
          const std::string k = changed;
          const int64_t own = k == "tp" ? p.tp : k == "pp" ? p.pp : p.cp;
          const int64_t others = mp / own;
          r.error(P + "/" + k, I(own),
                  "tp*pp*cp = " + I(p.tp) + "*" + I(p.pp) + "*" + I(p.cp) + " = " + I(mp) + " does not divide gpus=" +
                      I(c.gpus) + ", so dp cannot be derived" +
                      (c.gpus % others == 0 ? "; with the other two as they are use " + k + " in " +
                                                  join_ints(divisors(c.gpus / others))
                                            : ""));
        } else {
          r.note("/cluster/gpus", I(c.gpus),
                  "gpus=" + I(c.gpus) + " is not a multiple of tp*pp*cp = " + I(p.tp) + "*" + I(p.pp) +
                      "*" + I(p.cp) + " = " + I(mp) + ", so dp cannot be derived; use a multiple of " +
                      I(mp));
        }
        r.mark_bad(P + "/dp");
      } else {
        p.dp = static_cast<int>(c.gpus / mp);
      }
    } else {
      int64_t prod = sat_mul(mp, p.dp);
      if (prod != c.gpus) {
        std::string fix = c.gpus % mp == 0 ? "set parallel.dp to " + I(c.gpus / mp) +
                                                 " (or omit dp to derive it)"
                                           : "gpus must be a multiple of tp*pp*cp = " + I(mp);
        r.note("/cluster/gpus", I(c.gpus),
                "gpus=" + I(c.gpus) + " but tp*pp*dp*cp = " + I(p.tp) + "*" + I(p.pp) + "*" +
                    I(p.dp) + "*" + I(p.cp) + " = " +
                    (prod == std::numeric_limits<int64_t>::max() ? std::string("(overflow)") : I(prod)) +
                    "; " + fix);
      }
    }
  } else {
    r.mark_bad(P + "/dp");
  }
  if (r.good({"/cluster/gpus", "/cluster/gpus_per_node"})) {
    if (c.gpus < c.gpus_per_node) {
      c.gpus_per_node = c.gpus;  // a job on part of one node
    } else if (c.gpus % c.gpus_per_node != 0) {
      r.note("/cluster/gpus", I(c.gpus),
              "gpus=" + I(c.gpus) + " is not a multiple of gpus_per_node=" + I(c.gpus_per_node) +
                  "; use whole nodes (" + I(c.gpus - c.gpus % c.gpus_per_node) + " or " +
                  I(c.gpus - c.gpus % c.gpus_per_node + c.gpus_per_node) +
                  ") or fewer GPUs than one node");
    }
  }

  // Batch.
  int64_t micro_batches = 0;
  if (r.good({"/training/global_batch", "/training/micro_batch", P + "/dp"})) {
    int64_t per_step = sat_mul(t.micro_batch, p.dp);
    if (t.global_batch % per_step != 0) {
      int64_t lo = t.global_batch / per_step * per_step;
      std::string alt = lo > 0 ? I(lo) + " or " + I(lo + per_step) : I(per_step);
      if (r.overridden("/training/micro_batch") && !r.overridden("/training/global_batch") &&
          t.global_batch % p.dp == 0) {   // the micro-batch --set changed is the mistake
        std::vector<int64_t> ok;
        for (int64_t d : divisors(t.global_batch / p.dp))
          if (d <= kMaxMicroBatch) ok.push_back(d);
        r.error("/training/micro_batch", I(t.micro_batch),
                "micro_batch*dp = " + I(t.micro_batch) + "*" + I(p.dp) + " = " + I(per_step) +
                    " does not divide global_batch=" + I(t.global_batch) + "; use micro_batch in " + join_ints(ok));
      } else {
        r.note("/training/global_batch", I(t.global_batch),
                "global_batch=" + I(t.global_batch) + " is not a multiple of micro_batch*dp = " +
                    I(t.micro_batch) + "*" + I(p.dp) + " = " + I(per_step) + "; use " + alt);
      }
      r.mark_bad("/training/micro_batches");
    } else {
      micro_batches = t.global_batch / per_step;
      // The plan lays out every layer of every micro-batch (about 60 tasks each, a program per
      // pipeline stage): bound the work and memory of building it.
      const int64_t passes = sat_mul(micro_batches, s.model.layers);
      if (r.good({"/model/layers"}) && passes > kMaxLayerPasses) {
        r.note("/training/global_batch", I(t.global_batch),
               "global_batch/(micro_batch*dp) = " + I(micro_batches) + " micro-batches of " + I(s.model.layers) +
                   " layers = " + I(passes) + " layer passes per step; at most " + I(kMaxLayerPasses) +
                   " (the plan holds about 60 tasks for each); use a larger micro_batch or a smaller global_batch");
        r.mark_bad("/training/micro_batches");
        micro_batches = 0;
      }
    }
  } else {
    r.mark_bad("/training/micro_batches");
  }

  // Pipeline schedule.
  if (r.good({P + "/vp", P + "/schedule", P + "/pp"})) {
    if (two_chunk_schedule(p.schedule)) {
      const std::string name = std::string("schedule \"") + to_string(p.schedule) + "\"";
      const bool dual = p.schedule == Schedule::kDualPipe;
      if (p.vp != 2)
        r.note(P + "/vp", I(p.vp), name + " runs two chunks per pipeline rank: vp must be 2 (or left out)");
      else if (p.pp < 2 || (dual && p.pp % 2 != 0))
        r.note(P + "/pp", I(p.pp), name + (dual ? " needs an even pp >= 2 (its two directions meet in the middle)"
                                                : " needs pp >= 2") + "; with pp=1 use \"1f1b\"");
      else if (dual && r.good({"/training/micro_batches"}) && micro_batches % 2 != 0)
        r.note("/training/global_batch", I(t.global_batch),
               name + " feeds half the micro-batches from each end: it needs an even number per replica "
                      "(global_batch/(micro_batch*dp) = " + I(micro_batches) + ")");
      else if (p.schedule != Schedule::kZBV && r.good({"/training/micro_batches"}) && micro_batches < 2 * p.pp)
        r.note("/training/global_batch", I(t.global_batch),
               name + " needs at least 2*pp = " + I(2 * p.pp) +
                   " micro-batches per replica (global_batch/(micro_batch*dp) = " + I(micro_batches) +
                   "); use a global_batch of at least " + I(sat_mul(sat_mul(t.micro_batch, p.dp), 2 * p.pp)));
    } else if (p.vp > 1 && p.schedule != Schedule::kInterleaved) {
      r.note(P + "/vp", I(p.vp),
              "vp=" + I(p.vp) + " needs schedule \"interleaved\" (schedule is \"" +
                  to_string(p.schedule) + "\"); set schedule to \"interleaved\" or vp to 1");
    } else if (p.schedule == Schedule::kInterleaved && p.vp < 2) {
      r.note(P + "/schedule", "\"interleaved\"",
              "the interleaved schedule needs vp >= 2 virtual stages per pipeline rank; set vp, or "
              "use \"1f1b\"");
    } else if (p.vp > 1 && p.pp < 2) {
      r.note(P + "/vp", I(p.vp), "vp=" + I(p.vp) + " needs pp >= 2; with pp=1 use vp=1");
    } else if (p.vp > 1 && r.good({"/training/micro_batches"}) && micro_batches % p.pp != 0) {
      r.note("/training/global_batch", I(t.global_batch),
              "the interleaved schedule needs the number of micro-batches (global_batch/"
              "(micro_batch*dp) = " + I(micro_batches) + ") to be a multiple of pp=" + I(p.pp) +
                  "; use a global_batch that is a multiple of " +
                  I(sat_mul(sat_mul(t.micro_batch, p.dp), p.pp)));
    }
  }

  // Precision on this GPU.
  if (gpu_known && r.good({"/training/precision"}) && t.precision == DType::kFP8 &&
      c.gpu.peak_fp8.per_s() <= 0) {
    r.note("/training/precision", "\"fp8\"",
            "fp8 needs a GPU with fp8 tensor cores; " + c.gpu.name +
                " has none; use \"bf16\" or \"fp16\", or an H100/H200");
  }

  // The fp8 scaling recipe only means something to an fp8 run.
  if (tsec && Reader::has(tsec, "fp8_recipe") && r.good({"/training/precision", "/training/fp8_recipe"}) &&
      t.precision != DType::kFP8)
    r.note("/training/fp8_recipe", "\"" + std::string(to_string(t.fp8_recipe)) + "\"",
           "fp8_recipe says how fp8 GEMM operands are scaled; it needs precision \"fp8\" (precision is \"" +
               std::string(to_string(t.precision)) + "\"); remove it or set precision \"fp8\"");

  if (t.fp8_cache_inputs && r.good({"/training/precision", "/training/fp8_cache_inputs"}) &&
      t.precision != DType::kFP8)
    r.note("/training/fp8_cache_inputs", "true",
           "fp8_cache_inputs keeps the linear layers' inputs as their fp8 casts; it needs precision \"fp8\" "
           "(precision is \"" + std::string(to_string(t.precision)) + "\"); use false or set precision \"fp8\"");

  // Block recomputation.
  if (r.good({P + "/recompute", P + "/recompute_layers"}) && p.recompute_layers > 0) {
    if (p.recompute != Recompute::kFull)
      r.note(P + "/recompute_layers", I(p.recompute_layers),
             "recompute_layers picks the layers of each model chunk that a full recomputation covers; it needs "
             "recompute \"full\" (recompute is \"" + std::string(to_string(p.recompute)) + "\"); use 0 or set recompute \"full\"");
    else if (r.good({"/model/layers"}) && p.recompute_layers > s.model.layers)
      r.note(P + "/recompute_layers", I(p.recompute_layers),
             "more than the model's " + I(s.model.layers) + " layers; use 0 (every layer) or 1 to " + I(s.model.layers));
  }
  // ZeRO-3 resharding.
  if (!p.zero3_reshard && r.good({P + "/zero", P + "/zero3_reshard"}) && p.zero < 3)
    r.note(P + "/zero3_reshard", "false",
           "zero3_reshard says whether ZeRO-3 frees the parameters it gathered after each use; it needs zero 3 (zero "
           "is " + I(p.zero) + "); remove it or set zero 3");
  // TP communication overlap.
  if (p.tp_overlap && r.good({P + "/tp", P + "/sequence_parallel", P + "/tp_overlap"})) {
    if (p.tp < 2)
      r.note(P + "/tp_overlap", "true",
             "tp_overlap overlaps tensor-parallel collectives with their GEMMs; it needs tp >= 2 (tp is " + I(p.tp) +
                 "); use false or raise tp");
    else if (!p.sequence_parallel)
      r.note(P + "/tp_overlap", "true",
             "tp_overlap splits sequence parallelism's all-gathers and reduce-scatters into ring steps beside their "
             "GEMMs (as Transformer Engine and torchtitan's AsyncTP need); it needs sequence_parallel true; use false "
             "or set sequence_parallel true");
  }
  // Selective recomputation's modules.
  if (psec && Reader::has(psec, "recompute_modules") && r.good({P + "/recompute", P + "/recompute_modules"})) {
    const std::string shown = "[" + recompute_modules_string(p.recompute_modules) + "]";
    if (p.recompute != Recompute::kSelective)
      r.note(P + "/recompute_modules", shown,
             "recompute_modules picks what a selective recomputation covers; it needs recompute \"selective\" "
             "(recompute is \"" + std::string(to_string(p.recompute)) + "\"); remove it or set recompute \"selective\"");
    else if ((p.recompute_modules & kRecomputeMlaUpProj) && r.good({"/model/attention"}) && !s.model.mla)
      r.note(P + "/recompute_modules", shown,
             "\"mla_up_proj\" recomputes multi-head latent attention's up-projections; the model has no MLA "
             "(attention \"mla\"); remove it");
    else if ((p.recompute_modules & kRecomputeMoeAct) && !s.model.is_moe())
      r.note(P + "/recompute_modules", shown,
             "\"moe_act\" recomputes the routed experts' activation; the model has no experts; remove it");
    else if (p.recompute_modules & kRecomputeOp) {
      // torchtitan's op-level policy, as modelled (models/spec.h kRecomputeOp): what it keeps
      // and reruns is laid out for a dense SwiGLU block on one TP rank, in bf16 or fp16.
      std::string why;
      if (p.recompute_modules != kRecomputeOp)
        why = "\"op\" is a policy of its own (torchtitan's selective_ac_option \"op\"), not combined with other "
              "modules; use [\"op\"] alone or the other modules without it";
      else if (s.model.activation != Activation::kSwiglu || s.model.mla || s.model.is_moe())
        why = "\"op\" is modelled for dense SwiGLU blocks without MLA (Llama-style, as torchtitan runs it); the "
              "model is not; use the other modules";
      else if (p.tp != 1 || p.cp != 1)
        why = "\"op\" is modelled with tp 1 and cp 1 (tp=" + I(p.tp) + ", cp=" + I(p.cp) +
              "): the collectives it would rerun are not; use the other modules";
      else if (t.precision == DType::kFP8)
        why = "\"op\" is not modelled with fp8 (whether the fp8 matmuls are kept depends on the torchtitan "
              "version); use bf16 or the other modules";
      else if (t.dropout)
        why = "\"op\" is modelled without dropout; set training.dropout false or use the other modules";
      if (!why.empty()) r.note(P + "/recompute_modules", shown, why);
    }
  }
  // Context parallelism.
  if (r.good({P + "/cp", P + "/cp_ulysses"}) && p.cp % p.cp_ulysses != 0) {
    r.note(P + "/cp_ulysses", I(p.cp_ulysses),
           "cp_ulysses=" + I(p.cp_ulysses) + " must divide cp=" + I(p.cp) + "; use " + join_ints(divisors(p.cp)));
  } else if (r.good({P + "/cp", P + "/cp_ulysses", P + "/cp_load_balance", "/training/seq_len"}) && p.cp > 1) {
    const bool zigzag = p.cp_load_balance && p.cp / p.cp_ulysses > 1;
    const int64_t chunks = zigzag ? 2 * static_cast<int64_t>(p.cp) : p.cp;
    if (t.seq_len % chunks != 0) {
      const std::string why =
          "seq_len=" + I(t.seq_len) + " is not divisible by " +
          (zigzag ? "2*cp = " + I(chunks) + " (zig-zag chunks of ring attention)" : "cp = " + I(chunks));
      if (r.overridden(P + "/cp") && !r.overridden("/training/seq_len"))   // the cp --set changed
        r.error(P + "/cp", I(p.cp), why + "; use a cp whose " + (zigzag ? "2*cp" : "cp") + " divides " + I(t.seq_len));
      else
        r.note("/training/seq_len", I(t.seq_len), why + "; use a multiple of " + I(chunks));
    }
  }
  if (r.good({"/training/attention_kernel", "/cluster/gpu"}) && t.attention_kernel == AttentionKernel::kCudnn) {
    auto eff = default_efficiencies(gpu_family(c.gpu));
    if (eff.ok()) {
      Status st = use_attention_kernel(AttentionKernel::kCudnn, &eff.value());
      if (!st.ok()) r.note("/training/attention_kernel", "\"cudnn\"", st.errors().front().message);
    }
  }
  if (r.good({P + "/cp", "/training/attention_kernel"}) && p.cp > 1 &&
      !fused_attention(t.attention_kernel))
    r.note(P + "/cp", I(p.cp),
           "context parallelism runs the attention core as fused (flash or cuDNN) blocks; set "
           "training.attention_kernel to \"flash\" or \"cudnn\", or cp to 1");
  if (r.good({P + "/cp_ulysses", P + "/tp", "/model/heads"}) && p.cp_ulysses > 1 &&
      s.model.heads % (static_cast<int64_t>(p.tp) * p.cp_ulysses) != 0)
    r.note(P + "/cp_ulysses", I(p.cp_ulysses),
           "the Ulysses all-to-all splits heads over tp*cp_ulysses = " + I(p.tp) + "*" + I(p.cp_ulysses) +
               "; heads=" + I(s.model.heads) + " is not divisible by it; use a cp_ulysses that divides heads/tp = " +
               I(s.model.heads / p.tp) + " (" + join_ints(divisors(static_cast<int>(s.model.heads / p.tp))) + ")");

  // ZeRO shard group.
  if (r.good({P + "/fsdp_shard_group", P + "/dp"}) && p.fsdp_shard_group > 0 &&
      p.dp % p.fsdp_shard_group != 0) {
    r.note(P + "/fsdp_shard_group", I(p.fsdp_shard_group),
            "fsdp_shard_group=" + I(p.fsdp_shard_group) + " must divide dp=" + I(p.dp) + "; use " +
                join_ints(divisors(p.dp)) + ", or 0 for all of dp");
  } else if (r.good({P + "/fsdp_shard_group", P + "/zero"}) && p.zero == 0 && p.fsdp_shard_group > 0 &&
             p.fsdp_shard_group < p.dp) {
    r.note(P + "/fsdp_shard_group", I(p.fsdp_shard_group),
           "fsdp_shard_group=" + I(p.fsdp_shard_group) + " < dp=" + I(p.dp) +
               " shards ZeRO state, but zero is 0 (nothing is sharded); accepted: 0 or " + I(p.dp) +
               " with zero 0, or zero 1, 2 or 3 for a shard group (HSDP)");
  }

  if (p.hsdp_defer_all_reduce && r.good({P + "/hsdp_defer_all_reduce", P + "/zero", P + "/fsdp_shard_group", P + "/dp"}) &&
      !(p.zero >= 3 && p.fsdp_shard_group > 0 && p.fsdp_shard_group < p.dp))
    r.note(P + "/hsdp_defer_all_reduce", "true",
           "defers HSDP's replica all-reduce, so it needs zero 3 with fsdp_shard_group < dp (here zero=" + I(p.zero) +
               ", fsdp_shard_group=" + I(p.fsdp_shard_group) + ", dp=" + I(p.dp) + "); use false or set those");

  if (p.delay_wgrad && r.good({P + "/delay_wgrad", P + "/ep_overlap"}) && !p.ep_overlap)
    r.note(P + "/delay_wgrad", "true",
           "delay_wgrad moves the experts' weight gradients behind the backward dispatch all-to-all of an "
           "overlapped pair, so it needs ep_overlap true (Megatron-Core's --delay-wgrad-compute with "
           "--overlap-moe-expert-parallel-comm); use false, or set ep_overlap");

  // EP all-to-all overlap (models/compiler.h): what Megatron-Core's combined 1F1B runs with.
  if (p.ep_overlap && r.good({"/model", P + "/ep", P + "/ep_overlap", P + "/pp", P + "/vp", P + "/schedule",
                              P + "/recompute", P + "/zero", P + "/activation_offload"})) {
    const std::string e = P + "/ep_overlap";
    if (!s.model.is_moe() || p.ep <= 1)
      r.note(e, "true", "ep_overlap hides the expert-parallel all-to-alls, so it needs a MoE model with ep > 1 (ep=" +
                            I(p.ep) + "); use false");
    if (p.schedule == Schedule::kGpipe)
      r.note(e, "true", "ep_overlap pairs a forward with the backward of another micro-batch, which 1F1B's steady "
                        "state runs together; with schedule \"gpipe\" use false, or schedule \"1f1b\" / \"interleaved\" / \"dualpipev\"");
    else if (p.schedule == Schedule::kZBV)
      r.note(e, "true", "schedule \"zbv\" runs no forward beside a backward to hide the all-to-alls behind; use "
                        "\"dualpipev\" (its pairs), \"interleaved\", or ep_overlap false");
    else if (p.pp > 1 && p.vp == 1)
      r.note(e, "true", "with pp=" + I(p.pp) + " Megatron-Core runs the overlapped (combined) 1F1B only with virtual "
                        "stages; set vp > 1 (interleaved), pp=1, or ep_overlap false");
    if (p.recompute == Recompute::kFull)
      r.note(e, "true", "not with recompute \"full\" (Megatron-Core's EP overlap takes \"selective\" or \"none\"); "
                        "use one of those or ep_overlap false");
    if (p.zero >= 3)
      r.note(e, "true", "not with zero 3: per-layer parameter gathers shared by two interleaved micro-batches are not "
                        "modelled; use zero 0-2 or ep_overlap false");
    if (p.activation_offload > 0)
      r.note(e, "true", "not with activation_offload > 0 (not modelled together); use activation_offload 0 or "
                        "ep_overlap false");
  }

  // Mixture of experts.
  if (r.good({"/model", P + "/ep", P + "/etp", P + "/dp", P + "/tp", P + "/cp", P + "/ep_layout"})) {
    const ModelSpec& m = s.model;
    if (!m.is_moe()) {
      if (p.ep != 1) r.note(P + "/ep", I(p.ep), "ep=" + I(p.ep) + " needs a MoE model (arch \"moe\"); use ep=1");
      if (p.etp != 1) r.note(P + "/etp", I(p.etp), "etp=" + I(p.etp) + " needs a MoE model (arch \"moe\"); use etp=1");
    } else {
      if (m.experts % p.ep != 0)
        r.error(P + "/ep", I(p.ep), "ep=" + I(p.ep) + " does not divide experts=" + I(m.experts) + "; use " +
                                         join_ints(divisors(m.experts)));
      // EP along DP (ep_layout "dp", or "auto" where it applies) or folded (models/spec.h EpLayout).
      const int64_t ranks = int64_t{p.tp} * p.cp * p.dp;   // one stage's tp x cp x dp ranks
      const std::string fold_hint = "; or ep_layout \"folded\" (parallel folding over tp*cp*dp = " + I(ranks) + " ranks)";
      bool etp_bad = false;
      if (!r.good({P + "/ep"})) {
        // ep itself is wrong: its layout checks would repeat the mistake
      } else if (!ep_folded(p)) {
        if (p.dp % p.ep != 0)
          r.note(P + "/ep", I(p.ep), "ep=" + I(p.ep) + " does not divide dp=" + I(p.dp) +
                                          " (expert-parallel groups are carved from data parallelism); use " +
                                          join_ints(divisors(std::gcd<int64_t>(p.dp, m.experts))) + fold_hint);
        if (p.etp != 1 && p.etp != p.tp) {
          etp_bad = true;
          r.note(P + "/etp", I(p.etp), "etp=" + I(p.etp) + " must be 1 (whole experts) or tp=" + I(p.tp) +
                                            " (experts split like the MLP) with ep_layout \"dp\"; ep_layout \"folded\" "
                                            "takes any etp with etp*ep dividing tp*cp*dp=" + I(ranks));
        }
      } else {
        // Folded: stage position i = etp_idx + etp*(ep_idx + ep*edp_idx) over the tp*cp*dp ranks.
        const std::string auto_why = p.ep_layout == EpLayout::kAuto && p.dp % p.ep != 0
                                         ? " (ep does not divide dp=" + I(p.dp) + ", so EP is folded)"
                                         : "";
        if (ranks % p.etp != 0) {
          etp_bad = true;
          r.note(P + "/etp", I(p.etp), "etp=" + I(p.etp) + " does not divide tp*cp*dp=" + I(ranks) +
                                            " (folded EP splits a stage's ranks into expert-DP x EP x ETP); use " +
                                            join_ints(divisors(std::gcd<int64_t>(ranks, m.expert_ffn_hidden))));
        } else if (ranks % (int64_t{p.etp} * p.ep) != 0) {
          const std::vector<int64_t> ok = divisors(std::gcd<int64_t>(ranks / p.etp, m.experts));
          r.note(P + "/ep", I(p.ep), "ep*etp=" + I(int64_t{p.ep} * p.etp) + " does not divide tp*cp*dp=" + I(ranks) +
                                          auto_why + " (folded EP splits a stage's ranks into expert-DP x EP x ETP); "
                                          "with etp=" + I(p.etp) + " use ep in " + join_ints(ok));
        }
      }
      if (!etp_bad && m.expert_ffn_hidden % p.etp != 0)
        r.note(P + "/etp", I(p.etp), "etp=" + I(p.etp) + " does not divide expert_ffn_hidden=" + I(m.expert_ffn_hidden));
      // HSDP with MoE (models/compiler.h): the routed experts shard over the expert-DP ranks
      // inside one dense replica; every expert-DP group must split evenly over the replicas.
      if (r.good({P + "/fsdp_shard_group", P + "/order", P + "/pp"}) && p.fsdp_shard_group > 0 &&
          p.fsdp_shard_group < p.dp && p.dp % p.fsdp_shard_group == 0 && check_expert_layout(p).ok()) {
        auto es = expert_shard_group(p);
        if (!es.ok()) {
          std::vector<int64_t> accepted = {0};   // 0: all of dp
          for (int64_t g : divisors(p.dp)) {
            ParallelSpec q = p;
            q.fsdp_shard_group = static_cast<int>(g);
            if (expert_shard_group(q).ok()) accepted.push_back(g);
          }
          const std::string why = es.status().errors().empty() ? "" : es.status().errors()[0].message;
          r.note(P + "/fsdp_shard_group", I(p.fsdp_shard_group),
                 "fsdp_shard_group=" + I(p.fsdp_shard_group) + " < dp=" + I(p.dp) + ": " + why + "; accepted: " + join_ints(accepted) +
                     (ep_folded(p) ? " (0: all of dp)"
                                   : " (0: all of dp; with EP along DP the divisors of dp that ep=" + I(p.ep) + " divides)"));
        }
      }
      if (t.moe.node_limit > 0 && r.good({"/moe/node_limit", "/moe/dispatch", P + "/ep"})) {
        if (t.moe.dispatch != MoeDispatch::kDedup)
          r.error("/moe/node_limit", I(t.moe.node_limit),
                  "node-limited routing needs moe.dispatch \"dedup\" (with \"direct\" every token copy crosses "
                  "on its own, so the limit moves no fewer bytes); set dispatch \"dedup\" or node_limit 0 (no limit)");
        else if (t.moe.node_limit > p.ep)
          r.error("/moe/node_limit", I(t.moe.node_limit),
                  "too large: more nodes than the EP group has ranks (ep=" + I(p.ep) +
                      "); accepted: 0 (no limit) or 1 to the EP group's nodes (a limit at or above them is no limit)");
      }
      if (t.moe.kind == MoeRouting::kHistogram && !t.moe.histogram.empty() &&
          static_cast<int64_t>(t.moe.histogram.size()) != m.experts)
        r.note("/moe/histogram", "\"" + t.moe.histogram_file + "\"",
               "has " + I(t.moe.histogram.size()) + " entries; the model has experts=" + I(m.experts) +
                   " (one entry per expert)");
    }
  }

  Status st = finish(r);
  if (!st.ok()) return st;
  return s;
}

Result<json> parse_text(std::string_view text, const std::string& label) {
  // Track keys per object to report duplicates (nlohmann would silently keep the last one).
  struct Frame {
    bool is_object;
    std::set<std::string> keys;
    std::string cur;
  };
  if (json_too_deep(text)) return Status::error(Error{label, "", "", "invalid JSON: " + json_too_deep_message("a scenario")});
  std::vector<Frame> frames;
  std::vector<std::string> dups;
  json::parser_callback_t cb = [&](int, json::parse_event_t ev, json& parsed) {
    switch (ev) {
      case json::parse_event_t::object_start:
        frames.push_back({true, {}, ""});
        break;
      case json::parse_event_t::array_start:
        frames.push_back({false, {}, "*"});
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!frames.empty()) frames.pop_back();
        break;
      case json::parse_event_t::key:
        if (!frames.empty() && parsed.is_string()) {
          std::string k = parsed.get<std::string>();
          if (!frames.back().keys.insert(k).second) {
            std::string path;
            for (size_t i = 0; i + 1 < frames.size(); ++i) path += "/" + ptr_escape(frames[i].cur);
            dups.push_back(path + "/" + ptr_escape(k));
          }
          frames.back().cur = k;
        }
        break;
      default:
        break;
    }
    return true;
  };
  try {
    json doc = json::parse(text, cb, /*allow_exceptions=*/true, /*ignore_comments=*/false);
    if (!dups.empty()) {
      Status st;
      for (const auto& d : dups)
        st.add(Error{label, d, "", "duplicate key; each key may appear once per object"});
      return st;
    }
    return doc;
  } catch (const json::parse_error& e) {
    size_t byte = e.byte == 0 ? 0 : std::min<size_t>(e.byte - 1, text.size());
    int line = 1, col = 1;
    for (size_t i = 0; i < byte; ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string reason = e.what();
    size_t at = reason.find("column ");
    if (at != std::string::npos) {
      size_t colon = reason.find(": ", at);
      if (colon != std::string::npos) reason = reason.substr(colon + 2);
    }
    return Status::error(Error{label, "", "",
                              "invalid JSON at line " + std::to_string(line) + ", column " +
                                  std::to_string(col) + ": " + reason});
  } catch (const std::exception& e) {
    return Status::error(Error{label, "", "", std::string("invalid JSON: ") + e.what()});
  }
}

}  // namespace



Result<Scenario> load_scenario_json(const nlohmann::json& doc, const std::string& file_label,
                                    const std::vector<std::string>& overrides) {
  try {
    return load_document(doc, file_label, overrides);
  } catch (const std::exception& e) {
    // A safety net: the walk checks types before every access, so this is a bug, but a user
    // should still get a message rather than a crash.
    return Status::error(Error{file_label, "", "",
                               std::string("internal error while reading the scenario: ") + e.what()});
  }
}

Result<Scenario> load_scenario_text(std::string_view text, const std::string& file_label,
                                    const std::vector<std::string>& overrides) {
  Result<json> doc = parse_text(text, file_label);
  if (!doc.ok()) return doc.status();
  return load_scenario_json(doc.value(), file_label, overrides);
}

Result<Scenario> load_scenario_file(const std::string& path,
                                    const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::error(Error{path, "", "", "cannot open the scenario file (does it exist?)"});
  }
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::error(Error{path, "", "", "cannot read the scenario file"});
  return load_scenario_text(ss.str(), path, overrides);
}

Result<json> read_json_document(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error(Error{path, "", "", "cannot open the " + what + " (does it exist?)"});
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::error(Error{path, "", "", "cannot read the " + what});
  return parse_text(ss.str(), path);
}

Result<json> read_scenario_document(const std::string& path) {
  if (path.empty()) return parse_text(embedded::scenario_quickstart(), "<embedded>");
  return read_json_document(path, "scenario file");
}

Result<json> apply_scenario_overrides(json doc, const std::vector<std::string>& overrides) {
  Status st;
  apply_overrides(&doc, overrides, &st);
  if (!st.ok()) return st;
  return doc;
}

Status check_overrides(const std::vector<std::string>& overrides) {
  json doc = json::object();
  Status st;
  apply_overrides(&doc, overrides, &st);
  return st;
}

Result<Scenario> load_embedded_quickstart(const std::vector<std::string>& overrides) {
  Result<Scenario> s = load_scenario_text(embedded::scenario_quickstart(), "<embedded>", overrides);
  return s;
}

}  // namespace trainsim
