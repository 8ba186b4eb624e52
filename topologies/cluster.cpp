// File: topologies/cluster.cpp
// The fat-tree builder, graph assembly (modifications, connectivity check) and BFS queries.
// Routing lives in cluster_routing.cpp.
#include "topologies/cluster.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/filtered_graph.hpp>
#include <boost/graph/two_bit_color_map.hpp>

namespace trainsim {
namespace {

using Graph = ClusterGraph::Graph;
using Vertex = ClusterGraph::Vertex;

// GPUs are endpoints, never transit: keep only the two GPUs of the query.
struct KeepVertex {
  const Graph* g = nullptr;
  Vertex a = 0, b = 0;
  bool operator()(Vertex v) const {
    return (*g)[v].kind != VertexKind::kGpu || v == a || v == b;
  }
};

// Records BFS distance and the widest-shortest-path width of every reached vertex. BFS pops all
// vertices at distance d before any at d+1, so width[u] is final when u's edges are examined.
struct WidestVisitor : boost::default_bfs_visitor {
  std::vector<int>* dist;
  std::vector<double>* width;
  template <typename E, typename G>
  void examine_edge(E e, const G& g) const {
    auto u = boost::source(e, g);
    auto v = boost::target(e, g);
    auto& d = *dist;
    auto& w = *width;
    if (d[v] < 0) d[v] = d[u] + 1;
    if (d[v] == d[u] + 1) w[v] = std::max(w[v], std::min(w[u], g[e].bw.Bps()));
  }
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::string canonical_name(const VertexProps& p) {
  switch (p.kind) {
    case VertexKind::kGpu: return "gpu" + std::to_string(p.index);
    case VertexKind::kNvSwitch: return "node" + std::to_string(p.node) + "/nvswitch";
    case VertexKind::kNic:
      return "node" + std::to_string(p.node) + "/nic" + std::to_string(p.rail);
    default: return std::string(to_string(p.kind)) + std::to_string(p.index);
  }
}

std::string part_name(const TopologyParts& t, uint32_t v) {
  return t.names.empty() ? canonical_name(t.vertices[v]) : t.names[v];
}

struct UnionFind {
  std::vector<uint32_t> parent;
  explicit UnionFind(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0u); }
  uint32_t find(uint32_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void unite(uint32_t a, uint32_t b) {
    a = find(a), b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  }
};

// Applies the modifications to parts.cables (all errors at once).
Status apply_modifications(TopologyParts& t, const std::vector<LinkModification>& mods,
                           const std::string& file) {
  Status st;
  std::vector<double> factor(t.cables.size(), 1.0);
  for (size_t i = 0; i < mods.size(); ++i) {
    const LinkModification& m = mods[i];
    const std::string path = "/modifications/" + std::to_string(i);
    auto err = [&](const std::string& sub, std::string value, std::string msg) {
      st.add(Error{file, path + sub, std::move(value), std::move(msg)});
    };
    if (!(m.factor >= 0 && m.factor <= 1)) {
      err("/factor", std::to_string(m.factor), "must be in [0, 1] (0 = failed link)");
      continue;
    }
    std::vector<size_t> hit;
    const bool by_name = !m.a.empty() || !m.b.empty();
    if (by_name) {
      std::optional<uint32_t> va, vb;
      for (uint32_t v = 0; v < t.vertices.size(); ++v) {
        std::string n = part_name(t, v);
        if (n == m.a) va = v;
        if (n == m.b) vb = v;
      }
      if (!va) err("/between/0", "\"" + m.a + "\"", "no vertex of that name");
      if (!vb) err("/between/1", "\"" + m.b + "\"", "no vertex of that name");
      if (!va || !vb) continue;
      for (size_t c = 0; c < t.cables.size(); ++c) {
        const auto& cb = t.cables[c];
        if ((cb.a == *va && cb.b == *vb) || (cb.a == *vb && cb.b == *va)) hit.push_back(c);
      }
      if (hit.empty()) err("/between", "[\"" + m.a + "\", \"" + m.b + "\"]", "no link joins them");
    } else {
      if (m.tier < 1 || m.tier > 3) {
        err("/tier", std::to_string(m.tier), "accepted: 1 (NIC-leaf), 2 (leaf-spine), 3 (spine-core)");
        continue;
      }
      const VertexKind kind = m.tier == 1 ? VertexKind::kLeaf
                              : m.tier == 2 ? VertexKind::kSpine : VertexKind::kCore;
      std::optional<uint32_t> sw;
      int count = 0;
      for (uint32_t v = 0; v < t.vertices.size(); ++v) {
        if (t.vertices[v].kind != kind) continue;
        if (t.vertices[v].index == m.switch_index) sw = v;
        ++count;
      }
      if (!sw) {
        err("/switch", std::to_string(m.switch_index),
            count == 0 ? "this fabric has no tier-" + std::to_string(m.tier) +
                             " switches (its tiers: fewer than " + std::to_string(m.tier) + "); pick a lower tier"
                       : "tier " + std::to_string(m.tier) + " has " + std::to_string(count) +
                             " switches; accepted: 0.." + std::to_string(count - 1));
        continue;
      }
      int port = 0;
      for (size_t c = 0; c < t.cables.size(); ++c) {
        const auto& cb = t.cables[c];
        uint32_t lower = cb.a == *sw ? cb.b : cb.b == *sw ? cb.a : UINT32_MAX;
        if (lower == UINT32_MAX || t.vertices[lower].level >= t.vertices[*sw].level) continue;
        if (port++ == m.port) hit.push_back(c);
      }
      if (hit.empty()) {
        err("/port", std::to_string(m.port),
            port == 0 ? std::string("the switch has no down links")
                      : "switch has " + std::to_string(port) + " down links; accepted: 0.." + std::to_string(port - 1));
      }
    }
    for (size_t c : hit) factor[c] *= m.factor;
  }
  if (!st.ok()) return st;
  std::vector<TopologyParts::Cable> kept;
  kept.reserve(t.cables.size());
  for (size_t c = 0; c < t.cables.size(); ++c) {
    if (factor[c] <= 0) continue;
    TopologyParts::Cable cb = t.cables[c];
    cb.bw = cb.bw * factor[c];
    kept.push_back(cb);
  }
  t.cables = std::move(kept);
  return st;
}

// Every GPU must reach every other GPU through non-GPU vertices. The GPUs adjacent to the
// non-GPU component touching the most GPUs are fine; any other GPU is reported if it shares no
// component with (and has no direct link to) the first GPU of that component.
Status check_connected(const TopologyParts& t, const std::string& file,
                       const std::vector<std::string>& where) {
  Status st;
  if (t.gpus < 2) return st;
  const auto is_gpu = [&](uint32_t v) { return t.vertices[v].kind == VertexKind::kGpu; };
  UnionFind uf(t.vertices.size());
  for (const auto& c : t.cables) {
    if (!is_gpu(c.a) && !is_gpu(c.b)) uf.unite(c.a, c.b);
  }
  std::vector<std::vector<uint32_t>> comps(t.gpus);   // per GPU: adjacent comps; GPU ids | 1<<31
  for (const auto& c : t.cables) {
    for (int side = 0; side < 2; ++side) {
      uint32_t g = side ? c.b : c.a, o = side ? c.a : c.b;
      if (!is_gpu(g)) continue;
      comps[g].push_back(is_gpu(o) ? (o | 0x80000000u) : uf.find(o));
    }
  }
  std::vector<int> touch(t.vertices.size(), 0);
  for (auto& cs : comps) {
    std::sort(cs.begin(), cs.end());
    cs.erase(std::unique(cs.begin(), cs.end()), cs.end());
    for (uint32_t c : cs)
      if (!(c & 0x80000000u)) ++touch[c];
  }
  uint32_t best = 0;
  for (uint32_t c = 0; c < touch.size(); ++c)
    if (touch[c] > touch[best]) best = c;
  int ref = 0;
  for (int g = 0; g < t.gpus; ++g) {
    if (std::binary_search(comps[g].begin(), comps[g].end(), best)) { ref = g; break; }
  }
  const auto& rc = comps[ref];
  int reported = 0, more = 0;
  for (int g = 0; g < t.gpus; ++g) {
    if (g == ref) continue;
    bool ok = false;
    for (uint32_t c : comps[g]) {
      if (c == (static_cast<uint32_t>(ref) | 0x80000000u) || std::binary_search(rc.begin(), rc.end(), c)) ok = true;
    }
    if (ok) continue;
    if (reported >= 20) { ++more; continue; }
    ++reported;
    st.add(Error{file, where.empty() ? "" : where[g], part_name(t, g),
                 "disconnected GPU: no path to \"" + part_name(t, ref) +
                     "\" (GPUs do not forward traffic; link it to a NIC or switch that reaches "
                     "the others)"});
  }
  if (more > 0) {
    st.add(Error{file, "", "", "and " + std::to_string(more) + " more disconnected GPUs"});
  }
  return st;
}

}  // namespace

const char* to_string(VertexKind k) {
  switch (k) {
    case VertexKind::kGpu: return "gpu";
    case VertexKind::kNvSwitch: return "nvswitch";
    case VertexKind::kNic: return "nic";
    case VertexKind::kLeaf: return "leaf";
    case VertexKind::kSpine: return "spine";
    case VertexKind::kCore: return "core";
  }
  return "?";
}

Result<ClusterGraph> ClusterGraph::from_parts(TopologyParts t,
                                              const std::vector<LinkModification>& mods,
                                              const std::string& file) {
  Status st = apply_modifications(t, mods, file);
  if (!st.ok()) return st;
  st = check_connected(t, file, t.where);
  if (!st.ok()) return st;
  ClusterGraph cg;
  cg.name_ = t.name;
  cg.names_ = std::move(t.names);
  cg.gpus_ = t.gpus;
  cg.gpus_per_node_ = std::max(1, t.gpus_per_node);
  cg.nics_per_node_ = t.nics_per_node;
  cg.layered_ = t.layered;
  Graph& g = cg.g_;
  g = Graph(t.vertices.size());
  TopoSummary s;
  for (size_t v = 0; v < t.vertices.size(); ++v) {
    g[v] = t.vertices[v];
    switch (t.vertices[v].kind) {
      case VertexKind::kGpu: ++s.gpus; break;
      case VertexKind::kNic: ++s.nics; break;
      case VertexKind::kLeaf: ++s.leaf_switches; break;
      case VertexKind::kSpine: ++s.spine_switches; break;
      case VertexKind::kCore: ++s.core_switches; break;
      case VertexKind::kNvSwitch: break;
    }
  }
  s.nodes = cg.num_nodes();
  cg.links_.reserve(2 * t.cables.size());
  for (uint32_t c = 0; c < t.cables.size(); ++c) {
    const auto& cb = t.cables[c];
    boost::add_edge(cb.a, cb.b, EdgeProps{cb.bw, c}, g);
    cg.links_.push_back(Link{cb.a, cb.b, cb.bw});
    cg.links_.push_back(Link{cb.b, cb.a, cb.bw});
  }
  s.links = static_cast<int>(t.cables.size());
  cg.summary_ = s;
  return cg;
}

ClusterGraph::Vertex ClusterGraph::gpu_vertex(int gpu) const {
  SIM_CHECK(gpu >= 0 && gpu < gpus_, "gpu_vertex(%d): cluster has %d GPUs", gpu, gpus_);
  return static_cast<Vertex>(gpu);
}

ClusterGraph::Vertex ClusterGraph::nvswitch_vertex(int node) const {
  SIM_CHECK(node >= 0 && node < num_nodes() && names_.empty(),
            "nvswitch_vertex(%d): %d nodes (builder graphs only)", node, num_nodes());
  return static_cast<Vertex>(gpus_ + node);
}

ClusterGraph::Vertex ClusterGraph::nic_vertex(int node, int nic) const {
  SIM_CHECK(node >= 0 && node < num_nodes() && nic >= 0 && nic < nics_per_node_ && names_.empty(),
            "nic_vertex(%d, %d): %d nodes, %d NICs per node", node, nic, num_nodes(),
            nics_per_node_);
  return static_cast<Vertex>(gpus_ + num_nodes() + node * nics_per_node_ + nic);
}

std::string ClusterGraph::vertex_name(Vertex v) const {
  return names_.empty() ? canonical_name(g_[v]) : names_[v];
}

std::optional<ClusterGraph::Vertex> ClusterGraph::find_vertex(const std::string& name) const {
  for (Vertex v = 0; v < boost::num_vertices(g_); ++v)
    if (vertex_name(v) == name) return v;
  return std::nullopt;
}

void ClusterGraph::shortest(int gpu_a, int gpu_b, int* hops, double* width) const {
  Vertex a = gpu_vertex(gpu_a), b = gpu_vertex(gpu_b);
  if (a == b) {
    *hops = 0;
    *width = std::numeric_limits<double>::infinity();
    return;
  }
  boost::filtered_graph<Graph, boost::keep_all, KeepVertex> fg(g_, boost::keep_all{},
                                                               KeepVertex{&g_, a, b});
  const size_t n = boost::num_vertices(g_);
  std::vector<int> dist(n, -1);
  std::vector<double> w(n, 0.0);
  dist[a] = 0;
  w[a] = std::numeric_limits<double>::infinity();
  WidestVisitor vis;
  vis.dist = &dist;
  vis.width = &w;
  auto index = boost::get(boost::vertex_index, g_);
  boost::two_bit_color_map<decltype(index)> color(n, index);
  boost::breadth_first_search(fg, a, boost::visitor(vis).color_map(color));
  *hops = dist[b];
  *width = w[b];
}

int ClusterGraph::hops(int gpu_a, int gpu_b) const {
  int h;
  double w;
  shortest(gpu_a, gpu_b, &h, &w);
  return h;
}

Bandwidth ClusterGraph::bottleneck(int gpu_a, int gpu_b) const {
  SIM_CHECK(gpu_a != gpu_b, "bottleneck(%d, %d): same GPU", gpu_a, gpu_b);
  int h;
  double w;
  shortest(gpu_a, gpu_b, &h, &w);
  SIM_CHECK(h > 0, "bottleneck(%d, %d): unreachable", gpu_a, gpu_b);
  return Bandwidth::bytes_per_s(w);
}

Status validate_cluster(const ClusterSpec& spec, const FabricOptions& opt) {
  Status st;
  auto err = [&](std::string path, std::string value, std::string msg) {
    st.add(Error{"", std::move(path), std::move(value), std::move(msg)});
  };
  const std::string N = "/cluster/network/";
  if (spec.gpus_per_node < 1) {
    err("/cluster/gpus_per_node", std::to_string(spec.gpus_per_node), "must be >= 1");
  }
  // A fabric graph grows with the GPUs (a million-GPU fat-tree: ~25 s and 2.4 GB to build, and
  // superlinear beyond), so built fabrics stop at 262,144 GPUs; the analytic network, which
  // builds none, takes any count the scenario allows.
  constexpr int kMaxFabricGpus = 1 << 18;
  if (spec.gpus < 1) {
    err("/cluster/gpus", std::to_string(spec.gpus), "must be >= 1");
  } else if (spec.gpus > kMaxFabricGpus) {
    err("/cluster/gpus", std::to_string(spec.gpus),
        "a built fabric (flow mode, topo) holds at most " + std::to_string(kMaxFabricGpus) +
            " GPUs; larger jobs run with network.mode \"analytic\"");
  } else if (spec.gpus_per_node >= 1 && spec.gpus % spec.gpus_per_node != 0) {
    err("/cluster/gpus", std::to_string(spec.gpus),
        "must be a multiple of gpus_per_node=" + std::to_string(spec.gpus_per_node));
  }
  Bandwidth nvl = spec.nvlink_bandwidth.Bps() > 0 ? spec.nvlink_bandwidth : spec.gpu.nvlink_bandwidth;
  Bandwidth nic = spec.nic_bandwidth.Bps() > 0 ? spec.nic_bandwidth : spec.gpu.nic_bandwidth;
  if (!(nvl.Bps() > 0)) err("/cluster/nvlink_bandwidth", "", "must be > 0 (no GPU default)");
  if (!(nic.Bps() > 0)) err("/cluster/nic_bandwidth", "", "must be > 0 (no GPU default)");
  int nics = opt.nics_per_node == 0 ? spec.gpus_per_node : opt.nics_per_node;
  if (nics < 1 || (spec.gpus_per_node >= 1 && spec.gpus_per_node % nics != 0)) {
    err(N + "nics_per_node", std::to_string(opt.nics_per_node),
        "must divide gpus_per_node=" + std::to_string(spec.gpus_per_node) + " (0 = one per GPU)");
  }
  if (opt.leaf_radix < 1) err(N + "leaf_radix", std::to_string(opt.leaf_radix), "must be >= 1");
  if (opt.tiers != 2 && opt.tiers != 3) {
    err(N + "tiers", std::to_string(opt.tiers), "accepted: 2 (leaf-spine) or 3 (leaf-spine-core)");
  }
  if (opt.oversubscription.size() > 3) {
    err(N + "oversubscription", std::to_string(opt.oversubscription.size()) + " values",
        "at most one ratio per tier (3)");
  }
  for (size_t i = 0; i < opt.oversubscription.size(); ++i) {
    double o = opt.oversubscription[i];
    if (!(o >= 1.0) || !std::isfinite(o)) {
      err(N + "oversubscription/" + std::to_string(i), std::to_string(o),
          "must be >= 1 (1 = non-blocking; 2 = uplinks carry half the downlink capacity)");
    }
  }
  if (opt.link_bandwidth.size() > 3) {
    err(N + "link_bandwidth", std::to_string(opt.link_bandwidth.size()) + " values",
        "at most one bandwidth per tier (3)");
  }
  for (size_t i = 0; i < opt.link_bandwidth.size(); ++i) {
    if (!(opt.link_bandwidth[i].Bps() >= 0) || !std::isfinite(opt.link_bandwidth[i].Bps())) {
      err(N + "link_bandwidth/" + std::to_string(i), std::to_string(opt.link_bandwidth[i].Bps()),
          "must be > 0 (0 = the NIC bandwidth)");
    }
  }
  if (opt.pod_size < 0) err(N + "pod_size", std::to_string(opt.pod_size), "must be >= 0 (0 = default)");
  if (opt.pod_size > 0 && spec.gpus_per_node >= 1 && opt.pod_size % spec.gpus_per_node != 0) {
    err(N + "pod_size", std::to_string(opt.pod_size),
        "must be a multiple of gpus_per_node=" + std::to_string(spec.gpus_per_node));
  }
  if (opt.core_radix < 0) err(N + "core_radix", std::to_string(opt.core_radix), "must be >= 0 (0 = 2 x leaf_radix)");
  return st;
}

Result<ClusterGraph> build_cluster(const ClusterSpec& spec, const FabricOptions& opt) {
  Status st = validate_cluster(spec, opt);
  if (!st.ok()) return st;

  const int G = spec.gpus;
  const int gpn = spec.gpus_per_node;
  const int nodes = G / gpn;
  const int P = opt.nics_per_node == 0 ? gpn : opt.nics_per_node;
  const int gpus_per_nic = gpn / P;
  const int k = opt.leaf_radix;
  const Bandwidth nvl =
      spec.nvlink_bandwidth.Bps() > 0 ? spec.nvlink_bandwidth : spec.gpu.nvlink_bandwidth;
  const Bandwidth nic_bw =
      (spec.nic_bandwidth.Bps() > 0 ? spec.nic_bandwidth : spec.gpu.nic_bandwidth) *
      static_cast<double>(gpus_per_nic);
  auto tier_bw = [&](int t) {
    return static_cast<size_t>(t) <= opt.link_bandwidth.size() &&
                   opt.link_bandwidth[t - 1].Bps() > 0
               ? opt.link_bandwidth[t - 1]
               : nic_bw;
  };
  auto ratio = [&](int t) {
    return static_cast<size_t>(t) <= opt.oversubscription.size() ? opt.oversubscription[t - 1] : 1.0;
  };
  // Up links of a tier-t switch with `down` down links: uplink capacity = downlink / ratio.
  auto up_links = [&](int t, int64_t down) {
    double need = down * tier_bw(t).Bps() / (ratio(t) * tier_bw(t + 1).Bps());
    return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(need - 1e-9)));
  };

  const int64_t pod_nodes =
      opt.tiers == 3 ? (opt.pod_size > 0 ? opt.pod_size / gpn
                                         : std::max<int64_t>(1, int64_t{k} * k / P))
                     : nodes;
  const int64_t pods = ceil_div(nodes, pod_nodes);
  std::vector<int64_t> leaf_base(pods + 1, 0), leaves_per_rail(pods, 0);
  for (int64_t p = 0; p < pods; ++p) {
    const int64_t pn = std::min<int64_t>(pod_nodes, nodes - p * pod_nodes);
    leaves_per_rail[p] = ceil_div(pn, k);
    const int64_t lp = opt.rail_optimized ? P * leaves_per_rail[p] : ceil_div(pn * P, k);
    leaf_base[p + 1] = leaf_base[p] + lp;
  }
  const int64_t leaves = leaf_base[pods];
  const int64_t full_pod_leaves = leaf_base[1];
  // Spines per pod: a leaf's up links carry what its attached NICs send (down / ratio), so a leaf
  // that is not full (fewer nodes than its radix) gets fewer up links; the fullest leaf (in the
  // first pod) sets the count. A full leaf has k NICs attached.
  const int64_t first_pod_nodes = std::min<int64_t>(pod_nodes, nodes);
  const int64_t leaf_down = std::min<int64_t>(k, opt.rail_optimized ? first_pod_nodes : first_pod_nodes * P);
  const int64_t U1 = leaves > 1 ? up_links(1, leaf_down) : 0;
  const int64_t U2 = (opt.tiers == 3 && U1 > 0) ? up_links(2, full_pod_leaves) : 0;
  const int64_t core_radix = opt.core_radix > 0 ? opt.core_radix : 2 * int64_t{k};
  const int64_t C = U2 > 0 ? ceil_div(pods * U2, core_radix) : 0;   // cores per plane
  const int64_t spines = U1 * pods;
  const int64_t cores = U1 * C;

  TopologyParts t;
  t.gpus = G;
  t.gpus_per_node = gpn;
  t.nics_per_node = P;
  t.layered = true;
  const int64_t first_nvs = G, first_nic = first_nvs + nodes, first_leaf = first_nic + int64_t{nodes} * P;
  const int64_t first_spine = first_leaf + leaves, first_core = first_spine + spines;
  const int64_t nv = first_core + cores;
  if (nv > (int64_t{1} << 30)) {
    return Status::error(Error{"", "/cluster/gpus", std::to_string(G), "fabric too large to build"});
  }
  t.vertices.resize(nv);
  for (int i = 0; i < G; ++i) {
    t.vertices[i] = VertexProps{VertexKind::kGpu, i, i / gpn, (i % gpn) / gpus_per_nic, 0};
  }
  for (int n = 0; n < nodes; ++n) {
    t.vertices[first_nvs + n] = VertexProps{VertexKind::kNvSwitch, n, n, -1, 1};
  }
  for (int64_t j = 0; j < int64_t{nodes} * P; ++j) {
    t.vertices[first_nic + j] = VertexProps{VertexKind::kNic, static_cast<int32_t>(j),
                                            static_cast<int32_t>(j / P), static_cast<int32_t>(j % P), 1};
  }
  for (int64_t l = 0; l < leaves; ++l)
    t.vertices[first_leaf + l] = VertexProps{VertexKind::kLeaf, static_cast<int32_t>(l), -1, -1, 2};
  for (int64_t s = 0; s < spines; ++s)
    t.vertices[first_spine + s] = VertexProps{VertexKind::kSpine, static_cast<int32_t>(s), -1, -1, 3};
  for (int64_t c = 0; c < cores; ++c)
    t.vertices[first_core + c] = VertexProps{VertexKind::kCore, static_cast<int32_t>(c), -1, -1, 4};

  using Cable = TopologyParts::Cable;
  auto& cables = t.cables;
  cables.reserve(2 * G + int64_t{nodes} * P + leaves * U1 + spines * U2);
  auto u32 = [](int64_t v) { return static_cast<uint32_t>(v); };
  for (int i = 0; i < G; ++i) {
    const int node = i / gpn;
    cables.push_back(Cable{u32(i), u32(first_nvs + node), nvl});
    cables.push_back(Cable{u32(i), u32(first_nic + int64_t{node} * P + (i % gpn) / gpus_per_nic), nic_bw});
  }
  for (int64_t j = 0; j < int64_t{nodes} * P; ++j) {
    const int64_t node = j / P, rail = j % P;
    const int64_t p = node / pod_nodes, local = node % pod_nodes;
    const int64_t leaf = leaf_base[p] + (opt.rail_optimized ? rail * leaves_per_rail[p] + local / k
                                                            : (local * P + rail) / k);
    cables.push_back(Cable{u32(first_nic + j), u32(first_leaf + leaf), tier_bw(1)});
  }
  for (int64_t p = 0; p < pods; ++p) {
    for (int64_t l = leaf_base[p]; l < leaf_base[p + 1]; ++l) {
      for (int64_t s = 0; s < U1; ++s) {
        cables.push_back(Cable{u32(first_leaf + l), u32(first_spine + p * U1 + s), tier_bw(2)});
      }
    }
  }
  for (int64_t p = 0; p < pods; ++p) {
    for (int64_t j = 0; j < U1; ++j) {
      for (int64_t m = 0; m < U2; ++m) {
        cables.push_back(Cable{u32(first_spine + p * U1 + j), u32(first_core + j * C + m % C), tier_bw(3)});
      }
    }
  }
  t.name = std::string(opt.rail_optimized ? "rail-optimized" : "rail-agnostic") + " " +
           std::to_string(opt.tiers) + "-tier fat-tree, " + std::to_string(G) + " x " +
           spec.gpu.name;
  return ClusterGraph::from_parts(std::move(t), opt.modifications);
}

}  // namespace trainsim
