// File: topologies/hardware.cpp
// Parses the embedded GPU catalog (topologies/data/gpus.json). The catalog is our own data, so a
// malformed entry is a bug (SIM_CHECK), not an input error; user-facing lookups return Result.
#include "topologies/hardware.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sim/embedded.h"

namespace trainsim {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct Catalog {
  std::map<std::string, GpuSpec> by_name;        // canonical name -> spec
  std::map<std::string, std::string> lookup;     // lower-case name or alias -> canonical name
  std::map<std::string, std::vector<std::string>> aliases;  // canonical -> aliases
};

double number(const nlohmann::json& g, const char* key, const std::string& name) {
  SIM_CHECK(g.contains(key) && g[key].is_number(), "gpus.json: %s: missing or non-numeric \"%s\"",
            name.c_str(), key);
  double v = g[key].get<double>();
  SIM_CHECK(v >= 0, "gpus.json: %s: negative \"%s\"", name.c_str(), key);
  return v;
}

Catalog parse_catalog() {
  static const std::set<std::string> kKeys = {
      "name", "aliases", "peak_bf16_tflops", "peak_fp16_tflops", "peak_fp8_tflops",
      "peak_fp32_tflops", "hbm_gib", "hbm_bandwidth_GBps", "nvlink_GBps_per_direction",
      "nic_Gbps", "pcie_GBps_per_direction", "gpus_per_node", "sms", "tdp_w", "power_limit_w", "source"};
  nlohmann::json doc = nlohmann::json::parse(embedded::topologies_gpus(), nullptr,
                                             /*allow_exceptions=*/false);
  SIM_CHECK(!doc.is_discarded(), "embedded topologies/data/gpus.json is not valid JSON");
  SIM_CHECK(doc.contains("gpus") && doc["gpus"].is_array(), "gpus.json: no \"gpus\" array");
  Catalog cat;
  for (const auto& g : doc["gpus"]) {
    SIM_CHECK(g.is_object() && g.contains("name") && g["name"].is_string(),
              "gpus.json: entry without a name");
    GpuSpec s;
    s.name = g["name"].get<std::string>();
    for (const auto& [k, v] : g.items()) {
      SIM_CHECK(kKeys.count(k), "gpus.json: %s: unknown key \"%s\"", s.name.c_str(), k.c_str());
    }
    s.peak_bf16 = FlopRate::TFLOPs(number(g, "peak_bf16_tflops", s.name));
    s.peak_fp16 = FlopRate::TFLOPs(number(g, "peak_fp16_tflops", s.name));
    s.peak_fp8 = FlopRate::TFLOPs(number(g, "peak_fp8_tflops", s.name));
    s.peak_fp32 = FlopRate::TFLOPs(number(g, "peak_fp32_tflops", s.name));
    s.hbm_capacity = Bytes::GiB(static_cast<int64_t>(number(g, "hbm_gib", s.name)));
    s.hbm_bandwidth = Bandwidth::GBps(number(g, "hbm_bandwidth_GBps", s.name));
    s.nvlink_bandwidth = Bandwidth::GBps(number(g, "nvlink_GBps_per_direction", s.name));
    s.nic_bandwidth = Bandwidth::Gbps(number(g, "nic_Gbps", s.name));
    s.pcie_bandwidth = Bandwidth::GBps(number(g, "pcie_GBps_per_direction", s.name));
    s.gpus_per_node = static_cast<int>(number(g, "gpus_per_node", s.name));
    s.sms = static_cast<int>(number(g, "sms", s.name));
    SIM_CHECK(s.sms > 0, "gpus.json: %s: sms must be > 0", s.name.c_str());
    if (g.contains("tdp_w")) s.tdp_w = number(g, "tdp_w", s.name);
    if (g.contains("power_limit_w")) s.power_limit_w = number(g, "power_limit_w", s.name);
    SIM_CHECK(s.gpus_per_node > 0, "gpus.json: %s: gpus_per_node must be > 0", s.name.c_str());
    s.tdp_w = number(g, "tdp_w", s.name);
    s.power_limit_w = number(g, "power_limit_w", s.name);
    SIM_CHECK(s.power_limit_w > 0 && s.power_limit_w <= s.tdp_w,
              "gpus.json: %s: need 0 < power_limit_w <= tdp_w", s.name.c_str());
    SIM_CHECK(g.contains("source") && g["source"].is_string(), "gpus.json: %s: no source",
              s.name.c_str());
    s.source = g["source"].get<std::string>();
    s.family = gpu_family_of_name(s.name);

    std::string canonical = s.name;
    SIM_CHECK(cat.lookup.emplace(lower(canonical), canonical).second,
              "gpus.json: duplicate name %s", canonical.c_str());
    if (g.contains("aliases")) {
      for (const auto& a : g["aliases"]) {
        std::string alias = a.get<std::string>();
        SIM_CHECK(cat.lookup.emplace(lower(alias), canonical).second,
                  "gpus.json: duplicate alias %s", alias.c_str());
        cat.aliases[canonical].push_back(alias);
      }
    }
    cat.by_name.emplace(canonical, std::move(s));
  }
  return cat;
}

const Catalog& catalog() {
  static const Catalog cat = parse_catalog();
  return cat;
}

}  // namespace

std::string gpu_family_of_name(const std::string& n) {
  if (n.rfind("A100", 0) == 0 || n.rfind("A800", 0) == 0) return "ampere";
  if (n.rfind("H100", 0) == 0 || n.rfind("H800", 0) == 0 || n.rfind("H200", 0) == 0) return "hopper";
  if (n.rfind("B200", 0) == 0 || n.rfind("B100", 0) == 0) return "blackwell";
  return "hopper";
}

FlopRate GpuSpec::peak(DType d) const {
  switch (d) {
    case DType::kBF16: return peak_bf16;
    case DType::kFP16: return peak_fp16;
    case DType::kFP8: return peak_fp8;
    case DType::kFP32: return peak_fp32;
  }
  SIM_CHECK(false, "GpuSpec::peak: bad DType %d", static_cast<int>(d));
  return {};
}

const std::map<std::string, GpuSpec>& gpu_catalog() { return catalog().by_name; }

Result<GpuSpec> find_gpu(const std::string& name) {
  const Catalog& cat = catalog();
  auto it = cat.lookup.find(lower(name));
  if (it != cat.lookup.end()) return cat.by_name.at(it->second);
  std::string accepted;
  for (const auto& [canonical, spec] : cat.by_name) {
    if (!accepted.empty()) accepted += ", ";
    accepted += canonical;
    auto al = cat.aliases.find(canonical);
    if (al != cat.aliases.end()) {
      for (const auto& a : al->second) accepted += " (or " + a + ")";
    }
  }
  return Status::error(Error{"", "", name,
                             "unknown GPU; accepted names (case-insensitive): " + accepted});
}

const char* to_string(ScaleOut s) {
  switch (s) {
    case ScaleOut::kInfiniBand: return "infiniband";
    case ScaleOut::kRoCE: return "roce";
    case ScaleOut::kOmniPath: return "omnipath";
  }
  return "?";
}

}  // namespace trainsim
