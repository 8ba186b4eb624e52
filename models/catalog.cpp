// Parses the embedded model catalog (models/data/models.json). A malformed catalog is a bug in
// the shipped data, not a user error, so it aborts with the entry and field named.
#include "models/catalog.h"


#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "models/spec_parse.h"
#include "sim/check.h"
#include "sim/embedded.h"
#include "sim/text.h"

namespace trainsim {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}


int get_int(const nlohmann::json& e, const char* key, const std::string& who) {
  SIM_CHECK(e.contains(key) && e[key].is_number_integer(),
            "models.json: entry %s: \"%s\" must be an integer", who.c_str(), key);
  return e[key].get<int>();
}

std::string get_str(const nlohmann::json& e, const char* key, const std::string& who) {
  SIM_CHECK(e.contains(key) && e[key].is_string(), "models.json: entry %s: \"%s\" must be a string",
            who.c_str(), key);
  return e[key].get<std::string>();
}

std::vector<CatalogModel> parse_catalog() {
  nlohmann::json doc = nlohmann::json::parse(embedded::models_catalog(), nullptr, false);
  SIM_CHECK(doc.is_object() && doc.contains("models") && doc["models"].is_array(),
            "models.json: not a JSON object with a \"models\" array");
  std::vector<CatalogModel> out;
  for (const auto& e : doc["models"]) {
    SIM_CHECK(e.is_object(), "models.json: an entry is not an object");
    CatalogModel m;
    std::string who = get_str(e, "name", "?");
    m.spec.name = who;
    m.spec.arch = get_str(e, "arch", who);
    m.spec.layers = get_int(e, "layers", who);
    m.spec.hidden = get_int(e, "hidden", who);
    m.spec.heads = get_int(e, "heads", who);
    m.spec.kv_heads = get_int(e, "kv_heads", who);
    m.spec.head_dim = get_int(e, "head_dim", who);
    m.spec.ffn_hidden = get_int(e, "ffn_hidden", who);
    m.spec.vocab = get_int(e, "vocab", who);
    SIM_CHECK(parse_activation(get_str(e, "activation", who), &m.spec.activation),
              "models.json: entry %s: bad activation", who.c_str());
    SIM_CHECK(parse_norm(get_str(e, "norm", who), &m.spec.norm), "models.json: entry %s: bad norm",
              who.c_str());
    SIM_CHECK(e.contains("tied_embeddings") && e["tied_embeddings"].is_boolean(),
              "models.json: entry %s: tied_embeddings must be a bool", who.c_str());
    m.spec.tied_embeddings = e["tied_embeddings"].get<bool>();
    if (m.spec.arch == "moe") {   // MoE fields (models/spec.h); absent = 0 / ffn_hidden
      m.spec.experts = get_int(e, "experts", who);
      m.spec.top_k = get_int(e, "top_k", who);
      m.spec.expert_ffn_hidden = e.contains("expert_ffn_hidden") ? get_int(e, "expert_ffn_hidden", who) : m.spec.ffn_hidden;
      m.spec.shared_experts = e.contains("shared_experts") ? get_int(e, "shared_experts", who) : 0;
      m.spec.dense_layers = e.contains("dense_layers") ? get_int(e, "dense_layers", who) : 0;
      if (e.contains("router")) m.spec.router = get_str(e, "router", who);
      SIM_CHECK(m.spec.experts > 0 && m.spec.top_k > 0 && m.spec.top_k <= m.spec.experts &&
                    m.spec.expert_ffn_hidden > 0 && m.spec.dense_layers < m.spec.layers,
                "models.json: entry %s: inconsistent MoE fields", who.c_str());
    } else {
      SIM_CHECK(m.spec.arch == "dense", "models.json: entry %s: arch must be dense or moe", who.c_str());
    }
    if (e.contains("attention") && get_str(e, "attention", who) == "mla") {   // MLA fields (models/spec.h)
      m.spec.mla = true;
      m.spec.q_lora_rank = e.contains("q_lora_rank") ? get_int(e, "q_lora_rank", who) : 0;
      m.spec.kv_lora_rank = get_int(e, "kv_lora_rank", who);
      m.spec.qk_nope_head_dim = get_int(e, "qk_nope_head_dim", who);
      m.spec.qk_rope_head_dim = get_int(e, "qk_rope_head_dim", who);
      m.spec.v_head_dim = get_int(e, "v_head_dim", who);
      SIM_CHECK(m.spec.kv_lora_rank > 0 && m.spec.qk_nope_head_dim > 0 && m.spec.qk_rope_head_dim > 0 &&
                    m.spec.v_head_dim > 0 && m.spec.q_lora_rank >= 0 && m.spec.kv_heads == m.spec.heads &&
                    m.spec.head_dim == m.spec.mla_qk_dim(),
                "models.json: entry %s: inconsistent MLA fields (kv_heads must equal heads and head_dim "
                "qk_nope_head_dim + qk_rope_head_dim)", who.c_str());
    } else {
      SIM_CHECK(!e.contains("attention") || get_str(e, "attention", who) == "mha" || get_str(e, "attention", who) == "gqa",
                "models.json: entry %s: attention must be mha, gqa or mla", who.c_str());
    }
    if (e.contains("mtp_depth")) {   // absent = 0 (spec.h)
      m.spec.mtp_depth = get_int(e, "mtp_depth", who);
      SIM_CHECK(m.spec.mtp_depth >= 0 && m.spec.mtp_depth <= 4, "models.json: entry %s: mtp_depth must be 0 to 4",
                who.c_str());
    }
    m.seq_len = get_int(e, "seq_len", who);
    m.source = get_str(e, "source", who);
    if (e.contains("aliases")) {
      SIM_CHECK(e["aliases"].is_array(), "models.json: entry %s: aliases must be an array", who.c_str());
      for (const auto& a : e["aliases"]) {
        SIM_CHECK(a.is_string(), "models.json: entry %s: alias is not a string", who.c_str());
        m.aliases.push_back(a.get<std::string>());
      }
    }
    const ModelSpec& s = m.spec;
    SIM_CHECK(s.layers > 0 && s.hidden > 0 && s.heads > 0 && s.kv_heads > 0 && s.head_dim > 0 &&
                  s.ffn_hidden > 0 && s.vocab > 0 && s.heads % s.kv_heads == 0,
              "models.json: entry %s: inconsistent dimensions", who.c_str());
    for (const auto& prior : out)
      SIM_CHECK(lower(prior.spec.name) != lower(who), "models.json: duplicate entry %s", who.c_str());
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace

const std::vector<CatalogModel>& model_catalog() {
  static const std::vector<CatalogModel> catalog = parse_catalog();
  return catalog;
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& m : model_catalog()) names.push_back(m.spec.name);
  return names;
}

Result<ModelSpec> find_model(const std::string& name) {
  const std::string key = lower(name);
  for (const auto& m : model_catalog()) {
    if (lower(m.spec.name) == key) return m.spec;
    for (const auto& a : m.aliases)
      if (lower(a) == key) return m.spec;
  }
  // Suggest the closest name (aliases count, the canonical name is shown), else the first name
  // that starts with what was typed ("llama3" -> "llama3-8b").
  std::vector<std::string> spellings, canonical;
  for (const auto& m : model_catalog()) {
    for (const auto& sp : m.aliases) {
      spellings.push_back(sp);
      canonical.push_back(m.spec.name);
    }
    spellings.push_back(m.spec.name);
    canonical.push_back(m.spec.name);
  }
  std::string best = closest_match(key, spellings);
  for (size_t i = 0; i < spellings.size() && !best.empty(); ++i)
    if (spellings[i] == best) {
      best = canonical[i];
      break;
    }
  std::string msg = "unknown model";
  if (!best.empty()) msg += "; did you mean \"" + best + "\"? Known models: ";
  else msg += "; known models: ";
  const auto names = model_names();
  for (size_t i = 0; i < names.size(); ++i) msg += (i ? ", " : "") + names[i];
  return Status::error(Error{"", "", "\"" + name + "\"", msg});
}

}  // namespace trainsim
