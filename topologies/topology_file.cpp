// File: topologies/topology_file.cpp
#include "topologies/topology_file.h"

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sim/text.h"

namespace trainsim {

using json = nlohmann::json;

// The overrides-carrying forms behind the public entry points (defined below).
Result<ClusterGraph> build_builtin_ov(const std::string& name, const json& params,
                                      const std::string& label, const TopologyOverrides* ov);
Result<ClusterGraph> load_topology_json_ov(const json& doc, const std::string& label,
                                           const TopologyOverrides* ov);
Result<ClusterGraph> load_topology_file_ov(const std::string& path, const TopologyOverrides* ov);
Result<ClusterGraph> load_topology_ov(const std::string& name_or_path, const TopologyOverrides* ov);

namespace {

std::string show(const json& v) { return v.dump(); }

struct Reader {
  std::string file;
  Status st;
  void error(const std::string& path, const std::string& value, const std::string& msg) {
    st.add(Error{file, path, value, msg});
  }
  // Rejects keys outside `allowed`, with a did-you-mean.
  void keys(const json& obj, const std::string& path, const std::vector<std::string>& allowed) {
    for (const auto& [k, v] : obj.items()) {
      if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
      std::string m = closest_match(k, allowed);
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      error(path + "/" + k, "", m.empty() ? "unknown key; accepted: " + list
                                          : "unknown key; did you mean \"" + m + "\"?");
    }
  }
  bool integer(const json& obj, const std::string& path, const char* key, int lo, int hi, int* out) {
    if (!obj.contains(key)) return false;
    const json& v = obj[key];
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
      error(path + "/" + key, show(v),
            "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
      return false;
    }
    *out = v.get<int>();
    return true;
  }
  bool bandwidth(const json& v, const std::string& path, Bandwidth* out) {
    if (v.is_number()) {
      std::string n = show(v);
      error(path, n, "missing unit; write \"" + n + "Gbps\" (bits/s) or \"" + n + "GB/s\" (bytes/s)");
      return false;
    }
    if (!v.is_string()) {
      error(path, show(v), "expected a bandwidth string such as \"400Gbps\" or \"50GB/s\"");
      return false;
    }
    std::string why;
    if (!parse_link_bandwidth(v.get<std::string>(), out, &why)) {
      error(path, show(v), why);
      return false;
    }
    return true;
  }
};

const std::vector<std::string> kModKeys = {"tier", "switch", "port", "between", "failed", "factor"};

std::vector<LinkModification> read_mods(Reader& r, const json& doc) {
  std::vector<LinkModification> out;
  if (!doc.contains("modifications")) return out;
  const json& ms = doc["modifications"];
  if (!ms.is_array()) {
    r.error("/modifications", show(ms), "expected an array of modifications");
    return out;
  }
  for (size_t i = 0; i < ms.size(); ++i) {
    const std::string p = "/modifications/" + std::to_string(i);
    const json& m = ms[i];
    if (!m.is_object()) { r.error(p, show(m), "expected an object"); continue; }
    r.keys(m, p, kModKeys);
    LinkModification lm;
    if (m.contains("between")) {
      const json& b = m["between"];
      if (!b.is_array() || b.size() != 2 || !b[0].is_string() || !b[1].is_string()) {
        r.error(p + "/between", show(b), "expected two endpoint names, e.g. [\"leaf0\", \"spine3\"]");
        continue;
      }
      lm.a = b[0].get<std::string>();
      lm.b = b[1].get<std::string>();
    } else {
      bool ok = r.integer(m, p, "tier", 1, 3, &lm.tier);
      ok = r.integer(m, p, "switch", 0, INT32_MAX, &lm.switch_index) && ok;
      ok = r.integer(m, p, "port", 0, INT32_MAX, &lm.port) && ok;
      if (!ok) {
        if (!m.contains("tier") || !m.contains("switch") || !m.contains("port"))
          r.error(p, "", "give \"tier\", \"switch\" and \"port\", or \"between\": [a, b]");
        continue;
      }
    }
    const bool failed = m.contains("failed") && m["failed"] == true;
    if (m.contains("failed") && !m["failed"].is_boolean()) r.error(p + "/failed", show(m["failed"]), "expected true or false");
    if (m.contains("factor")) {
      const json& f = m["factor"];
      if (!f.is_number() || !(f.get<double>() >= 0.001) || f.get<double>() > 1) {
        r.error(p + "/factor", show(f),
                "expected a number in [0.001, 1]; use \"failed\": true to remove the link");
        continue;
      }
      lm.factor = f.get<double>();
    } else if (!failed) {
      r.error(p, "", "say what happened: \"failed\": true or \"factor\": 0.5 (degraded)");
      continue;
    }
    if (failed) lm.factor = 0;
    out.push_back(lm);
  }
  return out;
}

struct BuiltinDef {
  BuiltinTopology info;
  std::string gpu;
  int gpus = 8, gpus_per_node = 8;
  ScaleOut scale_out = ScaleOut::kInfiniBand;
  FabricOptions fabric;
};

FabricOptions fat(bool rail, int tiers = 2) {
  FabricOptions f;
  f.rail_optimized = rail;
  f.tiers = tiers;
  return f;
}

const std::vector<BuiltinDef>& defs() {
  static const std::vector<BuiltinDef> d = [] {
    std::vector<BuiltinDef> v;
    v.push_back({{"rail-fat-tree", "rail-optimized fat-tree (NIC i of every node on rail i), 2 or 3 tiers",
                  "generic; NVIDIA DGX SuperPOD reference architecture (rail-optimized leaves)"},
                 "H100-SXM-80GB", 1024, 8, ScaleOut::kInfiniBand, fat(true)});
    v.push_back({{"fat-tree", "rail-agnostic fat-tree (all NICs of a node on one leaf), 2 or 3 tiers",
                  "generic folded Clos (Al-Fares et al., SIGCOMM 2008)"},
                 "H100-SXM-80GB", 1024, 8, ScaleOut::kInfiniBand, fat(false)});
    for (auto [n, g] : {std::pair{"dgx-a100", "A100-SXM-80GB"}, {"dgx-h100", "H100-SXM-80GB"},
                        {"dgx-h200", "H200-SXM-141GB"}, {"dgx-b200", "B200-SXM-180GB"}}) {
      v.push_back({{n, std::string("NVSwitch node(s) of 8 ") + g +
                           " (catalog NVLink bandwidth), one NIC per GPU on a rail-optimized fabric",
                    "NVIDIA DGX/HGX datasheets, via topologies/data/gpus.json"},
                   g, 8, 8, ScaleOut::kInfiniBand, fat(true)});
    }
    v.push_back({{"nvl72", "NVL72-style scale-up domain: 72 GPUs on one NVLink switch fabric "
                           "(900 GB/s per GPU per direction), one 400 Gb/s NIC per GPU",
                  "NVIDIA GB200 NVL72 datasheet (72 Blackwell GPUs, NVLink 5: 1.8 TB/s per GPU "
                  "bidirectional); GPU figures from topologies/data/gpus.json"},
                 "B200-SXM-180GB", 72, 72, ScaleOut::kInfiniBand, fat(true)});
    {
      // Dubey et al. 2024, "The Llama 3 Herd of Models", section 3.3.1 (Network): 24K H100
      // GPUs, 400 Gb/s RoCE, a three-layer Clos; a rack holds 16 GPUs (two 8-GPU servers) under
      // one ToR; 192 racks form a pod of 3,072 GPUs with full bisection bandwidth; 8 pods are
      // joined by aggregation switches with 1:7 oversubscription.
      // Modelling choices (not in the paper): rail-agnostic ToRs with 16 down ports and 16 up
      // ports (1:1) to 16 cluster switches per pod; each cluster switch has 192 down links and
      // ceil(192 / 7) = 28 up links; aggregation switches have 64 down ports (4 per plane).
      FabricOptions f = fat(false, 3);
      f.leaf_radix = 16;
      f.pod_size = 3072;
      f.oversubscription = {1, 7};
      f.core_radix = 64;
      v.push_back({{"llama3-24k", "Meta's 24,576-GPU H100 RoCE cluster (Llama 3): 8 pods of 3,072 "
                                  "GPUs, 3-layer Clos, 1:7 at the aggregation layer",
                    "Dubey et al. 2024, The Llama 3 Herd of Models, section 3.3.1"},
                   "H100-SXM-80GB", 24576, 8, ScaleOut::kRoCE, f});
    }
    {
      // Jiang et al. 2024, "MegaScale: Scaling Large Language Model Training to More Than
      // 10,000 GPUs" (NSDI'24), section 3.4 / network topology: Tomahawk 4 switches (64 x 400
      // Gb/s), three layers in a CLOS-like topology, downlink:uplink 1:1 at every layer (32 down,
      // 32 up); at the ToR a 400G port is split into two 200G downlinks; the eight 200G NICs of a
      // server go to eight different ToRs (multi-rail); 64 servers share the same set of ToRs.
      // 12,288 GPUs is the paper's largest run. Modelling choices: 64 x 200G down and 32 x 400G
      // up per ToR; pods of 32 ToRs (a spine's 32 down ports) = 4 rail groups = 2,048 GPUs;
      // cores with 64 down ports.
      FabricOptions f = fat(true, 3);
      f.leaf_radix = 64;
      f.pod_size = 2048;
      f.oversubscription = {1, 1};
      f.link_bandwidth = {Bandwidth::Gbps(200), Bandwidth::Gbps(400), Bandwidth::Gbps(400)};
      f.core_radix = 64;
      v.push_back({{"megascale-12k", "ByteDance MegaScale: 12,288 GPUs, 200G multi-rail NICs, "
                                     "3-layer Tomahawk-4 Clos, 1:1 at every layer",
                    "Jiang et al. 2024, MegaScale (NSDI'24), network topology"},
                   "A100-SXM-80GB", 12288, 8, ScaleOut::kRoCE, f});
    }
    return v;
  }();
  return d;
}

const std::vector<std::string> kBuiltinKeys = {
    "builtin", "name", "description", "gpu", "gpus", "gpus_per_node", "nics_per_node", "tiers",
    "rail_optimized", "leaf_radix", "core_radix", "pod_size", "oversubscription",
    "link_bandwidth", "nic_bandwidth", "nvlink_bandwidth", "modifications"};

Result<ClusterGraph> builtin_from(const BuiltinDef& def, const json& p, const std::string& file,
                                  const TopologyOverrides* ov = nullptr) {
  Reader r{file, {}};
  if (!p.is_null() && !p.is_object()) return Status::error(Error{file, "", show(p), "expected an object"});
  ClusterSpec spec;
  spec.gpus = def.gpus;
  spec.gpus_per_node = def.gpus_per_node;
  spec.scale_out = def.scale_out;
  FabricOptions f = def.fabric;
  std::string gpu = def.gpu;
  std::string name = def.info.name;
  if (p.is_object()) {
    r.keys(p, "", kBuiltinKeys);
    if (p.contains("gpu")) {
      if (!p["gpu"].is_string()) r.error("/gpu", show(p["gpu"]), "expected a GPU name such as \"H100-SXM-80GB\"");
      else gpu = p["gpu"].get<std::string>();
    }
    if (p.contains("name") && p["name"].is_string()) name = p["name"].get<std::string>();
    r.integer(p, "", "gpus", 1, 1 << 24, &spec.gpus);
    r.integer(p, "", "gpus_per_node", 1, 4096, &spec.gpus_per_node);
    r.integer(p, "", "nics_per_node", 0, 4096, &f.nics_per_node);
    r.integer(p, "", "tiers", 2, 3, &f.tiers);
    r.integer(p, "", "leaf_radix", 1, 1 << 16, &f.leaf_radix);
    r.integer(p, "", "core_radix", 0, 1 << 16, &f.core_radix);
    r.integer(p, "", "pod_size", 0, 1 << 24, &f.pod_size);
    if (p.contains("rail_optimized")) {
      if (!p["rail_optimized"].is_boolean()) r.error("/rail_optimized", show(p["rail_optimized"]), "expected true or false");
      else f.rail_optimized = p["rail_optimized"].get<bool>();
    }
    if (p.contains("oversubscription")) {
      const json& o = p["oversubscription"];
      json arr = o.is_array() ? o : json::array({o});
      f.oversubscription.clear();
      for (size_t i = 0; i < arr.size(); ++i) {
        if (!arr[i].is_number() || !(arr[i].get<double>() >= 1)) {
          r.error("/oversubscription" + (o.is_array() ? "/" + std::to_string(i) : ""), show(arr[i]),
                  "expected a ratio >= 1 (down:up; 1 = non-blocking), or an array of one per tier");
        } else {
          f.oversubscription.push_back(arr[i].get<double>());
        }
      }
    }
    if (p.contains("link_bandwidth")) {
      const json& o = p["link_bandwidth"];
      json arr = o.is_array() ? o : json::array({o, o, o});
      f.link_bandwidth.clear();
      for (size_t i = 0; i < arr.size(); ++i) {
        Bandwidth b;
        if (r.bandwidth(arr[i], "/link_bandwidth" + (o.is_array() ? "/" + std::to_string(i) : ""), &b))
          f.link_bandwidth.push_back(b);
        else
          f.link_bandwidth.push_back(Bandwidth{});
      }
    }
    if (p.contains("nic_bandwidth")) r.bandwidth(p["nic_bandwidth"], "/nic_bandwidth", &spec.nic_bandwidth);
    if (p.contains("nvlink_bandwidth")) r.bandwidth(p["nvlink_bandwidth"], "/nvlink_bandwidth", &spec.nvlink_bandwidth);
    f.modifications = read_mods(r, p);
  }
  if (ov) {
    if (!ov->oversubscription.empty()) f.oversubscription = ov->oversubscription;
    f.modifications.insert(f.modifications.end(), ov->modifications.begin(), ov->modifications.end());
  }
  auto g = find_gpu(gpu);
  if (!g.ok()) {
    for (const Error& e : g.status().errors()) r.error("/gpu", "\"" + gpu + "\"", e.message);
  } else {
    spec.gpu = g.value();
  }
  if (!r.st.ok()) return r.st;
  Status v = validate_cluster(spec, f);
  if (!v.ok()) {
    for (const Error& e : v.errors()) {
      std::string path = e.path;
      for (const char* pre : {"/cluster/network", "/cluster"})
        if (path.rfind(pre, 0) == 0) { path = path.substr(std::string(pre).size()); break; }
      r.error(path, e.value, e.message);
    }
    return r.st;
  }
  auto built = build_cluster(spec, f);
  if (!built.ok()) {
    for (Error e : built.status().errors()) { e.file = file; r.st.add(e); }
    return r.st;
  }
  ClusterGraph cg = std::move(built).value();
  return cg;
}

struct FileBuilder {
  TopologyParts t;
  std::map<std::string, std::pair<uint32_t, std::string>> by_name;   // name -> vertex, path
};

}  // namespace

bool parse_link_bandwidth(const std::string& text, Bandwidth* out, std::string* why) {
  return parse_bandwidth(text, out, why);   // one parser for scenarios and topologies (sim/units.h)
}

const std::vector<BuiltinTopology>& builtin_topologies() {
  static const std::vector<BuiltinTopology> v = [] {
    std::vector<BuiltinTopology> out;
    for (const auto& d : defs()) out.push_back(d.info);
    return out;
  }();
  return v;
}

Result<ClusterGraph> build_builtin(const std::string& name, const json& params,
                                   const std::string& label) {
  return build_builtin_ov(name, params, label, nullptr);
}

Result<ClusterGraph> build_builtin_ov(const std::string& name, const json& params,
                                      const std::string& label, const TopologyOverrides* ov) {
  std::vector<std::string> names;
  for (const auto& d : defs()) {
    if (d.info.name == name) return builtin_from(d, params, label, ov);
    names.push_back(d.info.name);
  }
  std::string m = closest_match(name, names), list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  return Status::error(Error{label, "/builtin", "\"" + name + "\"",
                             "unknown builtin topology" +
                                 (m.empty() ? "" : "; did you mean \"" + m + "\"?") +
                                 " accepted: " + list});
}

Result<ClusterGraph> load_topology_json(const json& doc, const std::string& label) {
  return load_topology_json_ov(doc, label, nullptr);
}

Result<ClusterGraph> load_topology_json_ov(const json& doc, const std::string& label,
                                           const TopologyOverrides* ov) {
  if (!doc.is_object()) {
    return Status::error(Error{label, "", "", "a topology is a JSON object with \"builtin\" or "
                                              "\"nodes\", \"switches\" and \"links\""});
  }
  if (doc.contains("builtin")) {
    if (!doc["builtin"].is_string()) {
      return Status::error(Error{label, "/builtin", show(doc["builtin"]), "expected a builtin name"});
    }
    return build_builtin_ov(doc["builtin"].get<std::string>(), doc, label, ov);
  }
  if (ov && !ov->oversubscription.empty())
    return Status::error(Error{ov->label, ov->path + "/oversubscription", "",
                               "applies to builtin topologies only; " + label +
                                   " is an explicit graph: change its links' bandwidths instead"});
  Reader r{label, {}};
  r.keys(doc, "", {"name", "description", "nodes", "switches", "links", "modifications", "builtin"});
  FileBuilder fb;
  TopologyParts& t = fb.t;
  if (doc.contains("name") && doc["name"].is_string()) t.name = doc["name"].get<std::string>();
  std::vector<uint32_t> gpu_ids;
  struct NodeDef { std::string name, path; int gpus = 0, nics = 0; bool nvs = false; Bandwidth nvl, nicbw; };
  std::vector<NodeDef> nodes;
  auto expand = [&](const json& o, const std::string& p, std::vector<std::string>* out) {
    if (!o.contains("name") || !o["name"].is_string() || o["name"].get<std::string>().empty()) {
      r.error(p + "/name", o.contains("name") ? show(o["name"]) : "", "expected a non-empty name");
      return false;
    }
    std::string n = o["name"].get<std::string>();
    int count = 1;
    if (o.contains("count") && !r.integer(o, p, "count", 1, 1 << 22, &count)) return false;
    if (!o.contains("count")) out->push_back(n);
    else for (int i = 0; i < count; ++i) out->push_back(n + std::to_string(i));
    return true;
  };
  if (!doc.contains("nodes") || !doc["nodes"].is_array() || doc["nodes"].empty()) {
    r.error("/nodes", doc.contains("nodes") ? show(doc["nodes"]) : "",
            "expected a non-empty array of nodes, e.g. [{\"name\": \"n\", \"count\": 2, \"gpus\": 8, ...}]");
  } else {
    const json& ns = doc["nodes"];
    for (size_t i = 0; i < ns.size(); ++i) {
      const std::string p = "/nodes/" + std::to_string(i);
      const json& o = ns[i];
      if (!o.is_object()) { r.error(p, show(o), "expected an object"); continue; }
      r.keys(o, p, {"name", "count", "gpus", "nvlink_bandwidth", "nics", "nic_bandwidth"});
      NodeDef nd;
      nd.path = p;
      std::vector<std::string> names;
      bool ok = expand(o, p, &names);
      if (!o.contains("gpus")) { r.error(p + "/gpus", "", "missing; the number of GPUs of the node"); ok = false; }
      else ok = r.integer(o, p, "gpus", 1, 4096, &nd.gpus) && ok;
      if (o.contains("nics")) ok = r.integer(o, p, "nics", 0, 4096, &nd.nics) && ok;
      if (o.contains("nvlink_bandwidth")) {
        nd.nvs = true;
        ok = r.bandwidth(o["nvlink_bandwidth"], p + "/nvlink_bandwidth", &nd.nvl) && ok;
      }
      if (nd.nics > 0) {
        if (!o.contains("nic_bandwidth")) { r.error(p + "/nic_bandwidth", "", "missing; required when nics > 0, e.g. \"400Gbps\""); ok = false; }
        else ok = r.bandwidth(o["nic_bandwidth"], p + "/nic_bandwidth", &nd.nicbw) && ok;
        if (nd.gpus > 0 && nd.gpus % nd.nics != 0) {
          r.error(p + "/nics", std::to_string(nd.nics), "must divide gpus=" + std::to_string(nd.gpus));
          ok = false;
        }
      }
      if (!nodes.empty() && nd.gpus != nodes.front().gpus) {
        r.error(p + "/gpus", std::to_string(nd.gpus),
                "every node must have the same number of GPUs (" + nodes.front().path + " has " +
                    std::to_string(nodes.front().gpus) + ")");
        ok = false;
      }
      if (!ok) continue;
      for (auto& n : names) { NodeDef c = nd; c.name = n; nodes.push_back(c); }
    }
  }
  // Vertices: GPUs first, then NVSwitches and NICs, then switches.
  auto add = [&](VertexProps vp, const std::string& name, const std::string& path) {
    uint32_t id = static_cast<uint32_t>(t.vertices.size());
    auto [it, fresh] = fb.by_name.emplace(name, std::make_pair(id, path));
    if (!fresh) {
      r.error(path, "\"" + name + "\"", "duplicate name; first defined at " + it->second.second);
    }
    t.vertices.push_back(vp);
    t.names.push_back(name);
    t.where.push_back(path);
    return id;
  };
  const int gpn = nodes.empty() ? 1 : nodes.front().gpus;
  const int nics = nodes.empty() ? 0 : nodes.front().nics;
  bool same_nics = true;
  for (const auto& n : nodes) same_nics = same_nics && n.nics == nics;
  for (size_t n = 0; n < nodes.size(); ++n) {
    const auto& nd = nodes[n];
    for (int i = 0; i < nd.gpus; ++i) {
      int rail = nd.nics > 0 ? i / (nd.gpus / nd.nics) : -1;
      add(VertexProps{VertexKind::kGpu, static_cast<int32_t>(n * gpn + i), static_cast<int32_t>(n), rail, 0},
          nd.name + "/gpu" + std::to_string(i), nd.path);
    }
  }
  t.gpus = static_cast<int>(t.vertices.size());
  t.gpus_per_node = gpn;
  t.nics_per_node = same_nics ? nics : 0;
  int nvs_count = 0, nic_count = 0;
  for (size_t n = 0; n < nodes.size(); ++n) {
    const auto& nd = nodes[n];
    if (nd.nvs) {
      uint32_t s = add(VertexProps{VertexKind::kNvSwitch, nvs_count++, static_cast<int32_t>(n), -1, 1},
                       nd.name + "/nvswitch", nd.path);
      for (int i = 0; i < nd.gpus; ++i) t.cables.push_back({static_cast<uint32_t>(n * gpn + i), s, nd.nvl});
    }
    for (int j = 0; j < nd.nics; ++j) {
      uint32_t c = add(VertexProps{VertexKind::kNic, nic_count++, static_cast<int32_t>(n), j, 1},
                       nd.name + "/nic" + std::to_string(j), nd.path);
      const int per = nd.gpus / nd.nics;
      for (int i = j * per; i < (j + 1) * per; ++i) t.cables.push_back({static_cast<uint32_t>(n * gpn + i), c, nd.nicbw});
    }
  }
  if (doc.contains("switches")) {
    const json& ss = doc["switches"];
    if (!ss.is_array()) r.error("/switches", show(ss), "expected an array of switches");
    int counts[3] = {0, 0, 0};
    for (size_t i = 0; ss.is_array() && i < ss.size(); ++i) {
      const std::string p = "/switches/" + std::to_string(i);
      const json& o = ss[i];
      if (!o.is_object()) { r.error(p, show(o), "expected an object"); continue; }
      r.keys(o, p, {"name", "count", "tier"});
      int tier = 1;
      if (o.contains("tier") && !r.integer(o, p, "tier", 1, 3, &tier)) continue;
      std::vector<std::string> names;
      if (!expand(o, p, &names)) continue;
      const VertexKind k = tier == 1 ? VertexKind::kLeaf : tier == 2 ? VertexKind::kSpine : VertexKind::kCore;
      for (auto& n : names) add(VertexProps{k, counts[tier - 1]++, -1, -1, static_cast<int8_t>(tier + 1)}, n, p + "/name");
    }
  }
  std::vector<std::string> all_names;
  all_names.reserve(fb.by_name.size());
  for (const auto& [n, v] : fb.by_name) all_names.push_back(n);
  if (!doc.contains("links") || !doc["links"].is_array()) {
    r.error("/links", doc.contains("links") ? show(doc["links"]) : "",
            "expected an array of links, e.g. [{\"from\": \"n0/nic0\", \"to\": \"leaf0\", \"bandwidth\": \"400Gbps\"}]");
  } else {
    const json& ls = doc["links"];
    for (size_t i = 0; i < ls.size(); ++i) {
      const std::string p = "/links/" + std::to_string(i);
      const json& o = ls[i];
      if (!o.is_object()) { r.error(p, show(o), "expected an object"); continue; }
      r.keys(o, p, {"from", "to", "bandwidth", "count"});
      uint32_t ends[2] = {0, 0};
      bool ok = true;
      for (int s = 0; s < 2; ++s) {
        const char* key = s ? "to" : "from";
        if (!o.contains(key) || !o[key].is_string()) {
          r.error(p + "/" + key, o.contains(key) ? show(o[key]) : "", "expected the name of a GPU, NIC or switch");
          ok = false;
          continue;
        }
        std::string n = o[key].get<std::string>();
        auto it = fb.by_name.find(n);
        if (it == fb.by_name.end()) {
          std::string m = closest_match(n, all_names);
          r.error(p + "/" + key, "\"" + n + "\"",
                  "dangling link: no GPU, NIC or switch of that name is defined" +
                      (m.empty() ? std::string("") : "; did you mean \"" + m + "\"?"));
          ok = false;
        } else {
          ends[s] = it->second.first;
        }
      }
      Bandwidth bw;
      if (!o.contains("bandwidth")) { r.error(p + "/bandwidth", "", "missing; e.g. \"400Gbps\" or \"50GB/s\""); ok = false; }
      else ok = r.bandwidth(o["bandwidth"], p + "/bandwidth", &bw) && ok;
      int count = 1;
      if (o.contains("count")) ok = r.integer(o, p, "count", 1, 1 << 16, &count) && ok;
      if (ok && ends[0] == ends[1]) { r.error(p, show(o["to"]), "a link joins two different vertices"); ok = false; }
      if (!ok) continue;
      uint32_t a = ends[0], b = ends[1];
      if (t.vertices[a].level > t.vertices[b].level) std::swap(a, b);
      for (int c = 0; c < count; ++c) t.cables.push_back({a, b, bw});
    }
  }
  std::vector<LinkModification> mods = read_mods(r, doc);
  if (ov) mods.insert(mods.end(), ov->modifications.begin(), ov->modifications.end());
  if (t.gpus == 0) return r.st;
  auto built = ClusterGraph::from_parts(std::move(t), r.st.ok() ? mods : std::vector<LinkModification>{}, label);
  if (!built.ok()) r.st.merge(built.status());
  if (!r.st.ok()) return r.st;
  return built;
}

Result<ClusterGraph> load_topology_file(const std::string& path) {
  return load_topology_file_ov(path, nullptr);
}

Result<ClusterGraph> load_topology_file_ov(const std::string& path, const TopologyOverrides* ov) {
  std::ifstream in(path);
  if (!in) return Status::error(Error{path, "", "", "cannot open the topology file"});
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  if (json_too_deep(text))
    return Status::error(Error{path, "", "", "invalid JSON: " + json_too_deep_message("a topology file")});
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::error(Error{path, "", "", "invalid JSON"});
  return load_topology_json_ov(doc, path, ov);
}

Result<ClusterGraph> load_topology(const std::string& name_or_path) {
  return load_topology_ov(name_or_path, nullptr);
}

Result<ClusterGraph> load_topology(const std::string& name_or_path, const TopologyOverrides& o) {
  return load_topology_ov(name_or_path, &o);
}

Result<ClusterGraph> load_topology_ov(const std::string& name_or_path, const TopologyOverrides* ov) {
  for (const auto& d : defs())
    if (d.info.name == name_or_path) return build_builtin_ov(d.info.name, json::object(), d.info.name, ov);
  if (name_or_path.find('/') == std::string::npos && name_or_path.find(".json") == std::string::npos) {
    std::ifstream probe(name_or_path);
    if (!probe) return build_builtin_ov(name_or_path, json::object(), "", ov);
  }
  return load_topology_file_ov(name_or_path, ov);
}

Status parse_link_modifications(const json& mods, const std::string& file, const std::string& path,
                                std::vector<LinkModification>* out) {
  Reader r{file, {}};
  json doc = json::object();
  doc["modifications"] = mods;
  *out = read_mods(r, doc);
  Status st;
  for (Error e : r.st.errors()) {
    if (e.path.rfind("/modifications", 0) == 0) e.path = path + e.path.substr(std::string("/modifications").size());
    st.add(e);
  }
  return st;
}

}  // namespace trainsim
