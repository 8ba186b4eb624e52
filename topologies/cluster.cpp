// File: topologies/cluster.cpp
#include "topologies/cluster.h"

#include <algorithm>
#include <cmath>
#include <limits>
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

int ceil_div(int64_t a, int64_t b) { return static_cast<int>((a + b - 1) / b); }

}  // namespace

const char* to_string(VertexKind k) {
  switch (k) {
    case VertexKind::kGpu: return "gpu";
    case VertexKind::kNvSwitch: return "nvswitch";
    case VertexKind::kNic: return "nic";
    case VertexKind::kLeaf: return "leaf";
    case VertexKind::kSpine: return "spine";
  }
  return "?";
}

ClusterGraph::Vertex ClusterGraph::gpu_vertex(int gpu) const {
  SIM_CHECK(gpu >= 0 && gpu < gpus_, "gpu_vertex(%d): cluster has %d GPUs", gpu, gpus_);
  return static_cast<Vertex>(gpu);
}

ClusterGraph::Vertex ClusterGraph::nvswitch_vertex(int node) const {
  SIM_CHECK(node >= 0 && node < num_nodes(), "nvswitch_vertex(%d): %d nodes", node, num_nodes());
  return static_cast<Vertex>(gpus_ + node);
}

ClusterGraph::Vertex ClusterGraph::nic_vertex(int node, int nic) const {
  SIM_CHECK(node >= 0 && node < num_nodes() && nic >= 0 && nic < nics_per_node_,
            "nic_vertex(%d, %d): %d nodes, %d NICs per node", node, nic, num_nodes(),
            nics_per_node_);
  return static_cast<Vertex>(gpus_ + num_nodes() + node * nics_per_node_ + nic);
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
  auto err = [&](const char* path, std::string value, std::string msg) {
    st.add(Error{"", path, std::move(value), std::move(msg)});
  };
  if (spec.gpus_per_node < 1) {
    err("/cluster/gpus_per_node", std::to_string(spec.gpus_per_node), "must be >= 1");
  }
  if (spec.gpus < 1) {
    err("/cluster/gpus", std::to_string(spec.gpus), "must be >= 1");
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
    err("/cluster/network/nics_per_node", std::to_string(opt.nics_per_node),
        "must divide gpus_per_node=" + std::to_string(spec.gpus_per_node) + " (0 = one per GPU)");
  }
  if (opt.leaf_radix < 1) {
    err("/cluster/network/leaf_radix", std::to_string(opt.leaf_radix), "must be >= 1");
  }
  if (!(opt.oversubscription >= 1.0) || !std::isfinite(opt.oversubscription)) {
    err("/cluster/network/oversubscription", std::to_string(opt.oversubscription),
        "must be >= 1 (1 = non-blocking)");
  }
  return st;
}

Result<ClusterGraph> build_cluster(const ClusterSpec& spec, const FabricOptions& opt) {
  Status st = validate_cluster(spec, opt);
  if (!st.ok()) return st;

  const int G = spec.gpus;
  const int gpn = spec.gpus_per_node;
  const int nodes = G / gpn;
  const int nics_per_node = opt.nics_per_node == 0 ? gpn : opt.nics_per_node;
  const int gpus_per_nic = gpn / nics_per_node;
  const int nics = nodes * nics_per_node;
  const Bandwidth nvl =
      spec.nvlink_bandwidth.Bps() > 0 ? spec.nvlink_bandwidth : spec.gpu.nvlink_bandwidth;
  const Bandwidth nic_bw =
      (spec.nic_bandwidth.Bps() > 0 ? spec.nic_bandwidth : spec.gpu.nic_bandwidth) *
      static_cast<double>(gpus_per_nic);

  int leaves;
  int leaves_per_rail = 0;
  if (opt.rail_optimized) {
    leaves_per_rail = ceil_div(nodes, opt.leaf_radix);
    leaves = nics_per_node * leaves_per_rail;
  } else {
    leaves = ceil_div(nics, opt.leaf_radix);
  }
  const int up_ports = static_cast<int>(std::ceil(opt.leaf_radix / opt.oversubscription - 1e-9));
  const int spines = leaves > 1 ? std::max(1, up_ports) : 0;

  const size_t first_switch = static_cast<size_t>(G);
  const size_t first_nic = first_switch + nodes;
  const size_t first_leaf = first_nic + nics;
  const size_t first_spine = first_leaf + leaves;
  const size_t nv = first_spine + spines;

  ClusterGraph cg;
  cg.gpus_ = G;
  cg.gpus_per_node_ = gpn;
  cg.nics_per_node_ = nics_per_node;
  Graph& g = cg.g_;
  g = Graph(nv);

  for (int i = 0; i < G; ++i) g[i] = VertexProps{VertexKind::kGpu, i, i / gpn};
  for (int n = 0; n < nodes; ++n) {
    g[first_switch + n] = VertexProps{VertexKind::kNvSwitch, n, n};
  }
  for (int k = 0; k < nics; ++k) {
    g[first_nic + k] = VertexProps{VertexKind::kNic, k, k / nics_per_node};
  }
  for (int l = 0; l < leaves; ++l) g[first_leaf + l] = VertexProps{VertexKind::kLeaf, l, -1};
  for (int s = 0; s < spines; ++s) g[first_spine + s] = VertexProps{VertexKind::kSpine, s, -1};

  for (int i = 0; i < G; ++i) {
    const int node = i / gpn;
    const int local = i % gpn;
    boost::add_edge(i, first_switch + node, EdgeProps{nvl}, g);
    boost::add_edge(i, first_nic + node * nics_per_node + local / gpus_per_nic, EdgeProps{nic_bw}, g);
  }
  for (int k = 0; k < nics; ++k) {
    const int node = k / nics_per_node;
    const int rail = k % nics_per_node;
    const int leaf = opt.rail_optimized ? rail * leaves_per_rail + node / opt.leaf_radix
                                        : k / opt.leaf_radix;
    boost::add_edge(first_nic + k, first_leaf + leaf, EdgeProps{nic_bw}, g);
  }
  for (int l = 0; l < leaves; ++l) {
    for (int s = 0; s < spines; ++s) {
      boost::add_edge(first_leaf + l, first_spine + s, EdgeProps{nic_bw}, g);
    }
  }
  cg.summary_ = TopoSummary{G, nodes, nics, leaves, spines, static_cast<int>(boost::num_edges(g))};
  return cg;
}

}  // namespace trainsim
