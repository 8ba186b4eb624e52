// File: topologies/topology_file.h
// Named built-in topologies and the topology file format (JSON) for anything else.
//
// A file is either a builtin with parameters
//   {"builtin": "rail-fat-tree", "gpus": 16384, "gpus_per_node": 8, "tiers": 3,
//    "oversubscription": [1, 2], "modifications": [{"tier": 2, "switch": 0, "port": 3, "failed": true}]}
// or an explicit graph:
//   {"name": "two nodes",
//    "nodes":    [{"name": "n", "count": 2, "gpus": 8, "nvlink_bandwidth": "450GB/s",
//                  "nics": 8, "nic_bandwidth": "400Gbps"}],          // n0/gpu0.., n0/nvswitch, n0/nic0..
//    "switches": [{"name": "leaf", "count": 8, "tier": 1}],           // leaf0 .. leaf7
//    "links":    [{"from": "n0/nic0", "to": "leaf0", "bandwidth": "400Gbps"}, ...],
//    "modifications": [{"between": ["n0/nic0", "leaf0"], "factor": 0.5}]}
// Node keys: name (required), count (default 1: the name is used as is; else name0..), gpus
// (required, the same for every node), nvlink_bandwidth (optional: an NVSwitch joining the
// node's GPUs), nics (default 0), nic_bandwidth (GPU-NIC link; required when nics > 0; nics must
// divide gpus, GPU i uses NIC i / (gpus / nics)). Switch keys: name, count, tier (1 leaf, 2
// spine, 3 core; default 1). Link keys: from, to, bandwidth (per direction, with a unit:
// "400Gbps" bits/s or "50GB/s" bytes/s), count (parallel cables, default 1).
// Modification keys: tier + switch + port, or between: [a, b]; failed: true or factor in (0, 1].
// Builtin parameter keys: name, description, gpu, gpus, gpus_per_node, nics_per_node, tiers,
// rail_optimized, leaf_radix, core_radix, pod_size (GPUs), oversubscription (number or array
// per tier), link_bandwidth (string or array per tier), nic_bandwidth, nvlink_bandwidth
// (per GPU), modifications.
// Errors name the file, the JSON path, the bad value and what is accepted, all at once:
// unknown keys (with did-you-mean), duplicate names, dangling link endpoints, missing units,
// zero or negative bandwidths, disconnected GPUs.
// Thread-safety: pure functions (the GPU catalog is immutable).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "topologies/cluster.h"

namespace trainsim {

struct BuiltinTopology {
  std::string name;
  std::string summary;   // one line
  std::string source;    // where the figures come from
};
const std::vector<BuiltinTopology>& builtin_topologies();

// A builtin with parameters overriding its defaults (keys as in a file, without "builtin").
Result<ClusterGraph> build_builtin(const std::string& name, const nlohmann::json& params,
                                   const std::string& label = "");
Result<ClusterGraph> load_topology_json(const nlohmann::json& doc, const std::string& label);
Result<ClusterGraph> load_topology_file(const std::string& path);
// A builtin name (with its defaults) or a file path.
Result<ClusterGraph> load_topology(const std::string& name_or_path);

// What-ifs applied on top of a topology (scenario "network" fields): an oversubscription per
// tier replacing a builtin's (empty = keep), and link modifications added to the topology's
// own. An explicit-graph file has no tiers to re-ratio: oversubscription is then an error.
struct TopologyOverrides {
  std::vector<double> oversubscription;
  std::vector<LinkModification> modifications;
  std::string label;   // names the source of the overrides in errors (e.g. the scenario file)
  std::string path;    // JSON path prefix of the overrides in that source (e.g. "/network")
};
Result<ClusterGraph> load_topology(const std::string& name_or_path, const TopologyOverrides& o);

// Parses a "modifications" array (format above). Errors name `file` and `path` + "/i/...".
Status parse_link_modifications(const nlohmann::json& mods, const std::string& file,
                                const std::string& path, std::vector<LinkModification>* out);

// NUMBER UNIT: bps Kbps Mbps Gbps Tbps (also b/s forms) or B/s KB/s MB/s GB/s TB/s (also GBps).
// False with *why set (how to write it) on failure.
bool parse_link_bandwidth(const std::string& text, Bandwidth* out, std::string* why);

}  // namespace trainsim
