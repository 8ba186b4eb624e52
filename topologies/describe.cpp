// File: topologies/describe.cpp
#include "topologies/describe.h"

#include <algorithm>
#include <cstdio>
#include <map>

namespace trainsim {

TopoDescription describe(const ClusterGraph& cg) {
  const auto& g = cg.graph();
  TopoDescription d;
  TopoSummary s = cg.summary();
  d.name = cg.name();
  d.gpus = s.gpus;
  d.nodes = s.nodes;
  d.gpus_per_node = cg.gpus_per_node();
  d.nics = s.nics;
  const size_t n = boost::num_vertices(g);
  std::map<int, int> kind_count;
  for (size_t v = 0; v < n; ++v) ++kind_count[static_cast<int>(g[v].kind)];
  for (VertexKind k : {VertexKind::kNvSwitch, VertexKind::kLeaf, VertexKind::kSpine, VertexKind::kCore}) {
    if (kind_count.count(static_cast<int>(k))) d.switches.push_back({to_string(k), kind_count[static_cast<int>(k)]});
  }
  // Links grouped by (lower kind, upper kind), ordered by level then kind.
  std::map<std::tuple<int, int, int, int>, TopoDescription::LinkTier> tiers;
  std::vector<double> up_cap(n, 0.0), down_cap(n, 0.0);
  for (auto [e, end] = boost::edges(g); e != end; ++e) {
    auto u = boost::source(*e, g), v = boost::target(*e, g);
    if (g[u].level > g[v].level || (g[u].level == g[v].level && g[u].kind > g[v].kind)) std::swap(u, v);
    auto key = std::make_tuple(g[u].level, g[v].level, static_cast<int>(g[u].kind), static_cast<int>(g[v].kind));
    auto& t = tiers[key];
    if (t.cables == 0) {
      t.name = std::string(to_string(g[u].kind)) + "-" + to_string(g[v].kind);
      t.min_bw = t.max_bw = g[*e].bw;
    }
    ++t.cables;
    t.min_bw = std::min(t.min_bw, g[*e].bw);
    t.max_bw = std::max(t.max_bw, g[*e].bw);
    t.total = Bandwidth::bytes_per_s(t.total.Bps() + g[*e].bw.Bps());
    if (g[u].level < g[v].level) {
      up_cap[u] += g[*e].bw.Bps();
      down_cap[v] += g[*e].bw.Bps();
    }
  }
  for (auto& [k, t] : tiers) d.links.push_back(t);
  for (VertexKind k : {VertexKind::kLeaf, VertexKind::kSpine, VertexKind::kCore}) {
    double down = 0, up = 0;
    for (size_t v = 0; v < n; ++v) {
      if (g[v].kind != k || up_cap[v] <= 0) continue;
      down += down_cap[v];
      up += up_cap[v];
    }
    if (up > 0) d.oversubscription.push_back({to_string(k), down / up});
  }
  // Node span below each vertex, bottom up (levels only increase along up links).
  const int nodes = std::max(1, d.nodes);
  const int half = nodes / 2;
  std::vector<int> lo(n, INT32_MAX), hi(n, -1);
  std::vector<size_t> order(n);
  for (size_t v = 0; v < n; ++v) order[v] = v;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return g[a].level < g[b].level; });
  for (size_t v : order) {
    if (g[v].node >= 0) lo[v] = hi[v] = g[v].node;
    for (auto [e, end] = boost::out_edges(v, g); e != end; ++e) {
      auto w = boost::target(*e, g);
      if (g[w].level < g[v].level) { lo[v] = std::min(lo[v], lo[w]); hi[v] = std::max(hi[v], hi[w]); }
    }
  }
  double nic_a = 0, nic_b = 0;
  std::map<int, std::pair<double, double>> cut;   // level -> uplink capacity of each half
  std::map<int, bool> mixed;
  for (size_t v = 0; v < n; ++v) {
    if (g[v].kind == VertexKind::kGpu || g[v].kind == VertexKind::kNvSwitch || hi[v] < 0) continue;
    const bool in_a = hi[v] < half, in_b = lo[v] >= half;
    if (g[v].kind == VertexKind::kNic) {
      (in_a ? nic_a : nic_b) += up_cap[v];
      continue;
    }
    if (!in_a && !in_b) mixed[g[v].level] = true;
    auto& c = cut[g[v].level];
    (in_a ? c.first : c.second) += up_cap[v];
  }
  double bis = std::min(nic_a, nic_b);
  if (nodes < 2) bis = 0;
  for (auto& [lvl, c] : cut) {
    if (mixed[lvl] || (c.first <= 0 && c.second <= 0)) continue;
    bis = std::min(bis, std::min(c.first, c.second));
  }
  d.bisection = Bandwidth::bytes_per_s(bis);
  double half_a = 0, half_b = 0;
  for (auto [e, end] = boost::edges(g); e != end; ++e) {
    auto u = boost::source(*e, g), v = boost::target(*e, g);
    if (g[u].kind != VertexKind::kGpu) std::swap(u, v);
    if (g[u].kind != VertexKind::kGpu || g[v].kind != VertexKind::kNvSwitch || g[u].node != 0) continue;
    (g[u].index % std::max(1, d.gpus_per_node) < d.gpus_per_node / 2 ? half_a : half_b) += g[*e].bw.Bps();
  }
  d.node_bisection = Bandwidth::bytes_per_s(std::min(half_a, half_b));
  return d;
}

std::string format_description(const TopoDescription& d) {
  std::string out;
  char buf[256];
  auto gbs = [](Bandwidth b) {
    char t[64];
    const double v = b.GBps_f();
    if (v >= 1e5) std::snprintf(t, sizeof t, "%.0f TB/s", v / 1e3);   // whole TB/s, no exponent
    else std::snprintf(t, sizeof t, "%.6g GB/s", v);
    return std::string(t);
  };
  out += "topology: " + (d.name.empty() ? std::string("(unnamed)") : d.name) + "\n";
  std::snprintf(buf, sizeof buf, "gpus: %d   nodes: %d x %d GPUs   nics: %d\n", d.gpus, d.nodes,
                d.gpus_per_node, d.nics);
  out += buf;
  out += "switches:";
  for (const auto& c : d.switches) out += "  " + c.kind + " " + std::to_string(c.count);
  out += "\nlinks (per direction):\n";
  for (const auto& t : d.links) {
    std::snprintf(buf, sizeof buf, "  %-14s %8d cables  %s", t.name.c_str(), t.cables,
                  (t.min_bw == t.max_bw ? gbs(t.min_bw) : gbs(t.min_bw) + " .. " + gbs(t.max_bw)).c_str());
    out += buf;
    out += "  total " + gbs(t.total) + "\n";
  }
  out += "oversubscription (down:up):";
  if (d.oversubscription.empty()) out += " none";
  for (const auto& r : d.oversubscription) {
    std::snprintf(buf, sizeof buf, "  %s %.3g:1", r.tier.c_str(), r.down_over_up);
    out += buf;
  }
  if (d.nodes < 2) {
    out += "\nbisection bandwidth: no cut between nodes (one node); between the node's halves " +
           gbs(d.node_bisection) + " per direction over NVLink\n";
  } else {
    out += "\nbisection bandwidth: " + gbs(d.bisection) + " per direction\n";
  }
  return out;
}

}  // namespace trainsim
