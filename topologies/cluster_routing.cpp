// File: topologies/cluster_routing.cpp
// Shortest-path routing over a ClusterGraph. Both paths() and route() work on a DAG given by a
// label H(v) = remaining hops from v to the destination b: a link v -> w is on a shortest path
// iff H(w) == H(v) - 1.
//   Builder graphs (layered: every cable joins adjacent levels) label only the switches above
//   a and b: walk up from both ends one level at a time until the up-sets meet at level L (the
//   lowest common ancestors: the NVSwitch, a leaf, a spine or a core). A vertex at level l above
//   b gets H = l, one above a gets H = 2L - l when it leads up to a meeting vertex. These are the
//   shortest up*/down* paths of a Clos, O(switches above a and b), never a whole-graph search.
//   If failures leave no up*/down* path, or on loaded files: a BFS from b over the graph (Boost)
//   with other GPUs removed (they do not forward).
#include <algorithm>
#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/filtered_graph.hpp>
#include <boost/graph/two_bit_color_map.hpp>
#include <unordered_map>

#include "topologies/cluster.h"

namespace trainsim {
namespace {

using Graph = ClusterGraph::Graph;
using Vertex = ClusterGraph::Vertex;

struct KeepEndpoints {
  const Graph* g = nullptr;
  Vertex a = 0, b = 0;
  bool operator()(Vertex v) const { return (*g)[v].kind != VertexKind::kGpu || v == a || v == b; }
};

struct DistVisitor : boost::default_bfs_visitor {
  std::vector<int>* dist;
  template <typename E, typename G>
  void tree_edge(E e, const G& g) const {
    (*dist)[boost::target(e, g)] = (*dist)[boost::source(e, g)] + 1;
  }
};

uint64_t mix(uint64_t x) {   // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

struct ClusterGraph::Dag {
  bool dense = false;
  std::vector<int> dist;                     // dense: H per vertex, -1 = not on the DAG
  std::unordered_map<uint32_t, int> sparse;  // layered: H of the labelled vertices
  int h(uint32_t v) const {
    if (dense) return dist[v];
    auto it = sparse.find(v);
    return it == sparse.end() ? -1 : it->second;
  }
};

ClusterGraph::Dag ClusterGraph::dag(uint32_t a, uint32_t b) const {
  Dag d;
  if (layered_) {
    // Up-sets level by level. In a layered graph every up edge climbs one level, so both
    // frontiers are always at the same level.
    std::vector<uint32_t> fa{a}, fb{b};
    std::vector<std::vector<uint32_t>> levels_a{fa};
    std::unordered_map<uint32_t, int> above_b{{b, 0}};
    std::vector<uint32_t> meet;
    auto up = [&](const std::vector<uint32_t>& f) {
      std::vector<uint32_t> next;
      for (uint32_t v : f) {
        for (auto [e, end] = boost::out_edges(v, g_); e != end; ++e) {
          uint32_t w = static_cast<uint32_t>(boost::target(*e, g_));
          if (g_[w].level > g_[v].level) next.push_back(w);
        }
      }
      std::sort(next.begin(), next.end());
      next.erase(std::unique(next.begin(), next.end()), next.end());
      return next;
    };
    int L = 0;
    while (!fa.empty() && !fb.empty()) {
      fa = up(fa);
      fb = up(fb);
      ++L;
      levels_a.push_back(fa);
      for (uint32_t v : fb) above_b.emplace(v, L);
      std::set_intersection(fa.begin(), fa.end(), fb.begin(), fb.end(), std::back_inserter(meet));
      if (!meet.empty()) break;
    }
    if (!meet.empty()) {
      d.sparse = std::move(above_b);
      for (uint32_t v : meet) d.sparse[v] = L;   // already L
      // Above a, top down: H(v) = H(w) + 1 for an up-neighbour w already labelled.
      for (int l = L - 1; l >= 0; --l) {
        for (uint32_t v : levels_a[l]) {
          for (auto [e, end] = boost::out_edges(v, g_); e != end; ++e) {
            uint32_t w = static_cast<uint32_t>(boost::target(*e, g_));
            if (g_[w].level <= g_[v].level) continue;
            auto it = d.sparse.find(w);
            if (it != d.sparse.end() && it->second == 2 * L - l - 1) {
              d.sparse[v] = 2 * L - l;
              break;
            }
          }
        }
      }
      return d;
    }
  }
  d.dense = true;
  const size_t n = boost::num_vertices(g_);
  d.dist.assign(n, -1);
  d.dist[b] = 0;
  boost::filtered_graph<Graph, boost::keep_all, KeepEndpoints> fg(g_, boost::keep_all{},
                                                                  KeepEndpoints{&g_, a, b});
  DistVisitor vis;
  vis.dist = &d.dist;
  auto index = boost::get(boost::vertex_index, g_);
  boost::two_bit_color_map<decltype(index)> color(n, index);
  boost::breadth_first_search(fg, b, boost::visitor(vis).color_map(color));
  return d;
}

void ClusterGraph::enumerate(const Dag& d, uint32_t a, size_t max, std::vector<Path>* out) const {
  const int total = d.h(a);
  if (total <= 0) return;
  Path cur;
  // Iterative DFS over (vertex, next out-edge) frames keeps deep paths off the call stack.
  struct Frame { uint32_t v; Graph::out_edge_iterator it, end; };
  std::vector<Frame> stack;
  auto push = [&](uint32_t v) {
    auto [b, e] = boost::out_edges(v, g_);
    stack.push_back(Frame{v, b, e});
  };
  push(a);
  while (!stack.empty() && out->size() < max) {
    Frame& f = stack.back();
    if (f.it == f.end) {
      stack.pop_back();
      if (!cur.empty()) cur.pop_back();
      continue;
    }
    auto e = *f.it++;
    uint32_t w = static_cast<uint32_t>(boost::target(e, g_));
    int hw = d.h(w);
    if (hw < 0 || hw != d.h(f.v) - 1) continue;
    uint32_t c = g_[e].cable;
    cur.push_back(links_[2 * c].from == f.v ? 2 * c : 2 * c + 1);
    if (hw == 0) {
      out->push_back(cur);
      cur.pop_back();
    } else {
      push(w);
    }
  }
}

Path ClusterGraph::walk(const Dag& d, uint32_t a, uint64_t hash) const {
  Path p;
  uint32_t v = a;
  int hv = d.h(a);
  SIM_CHECK(hv >= 0, "route: no path from vertex %u", a);
  std::vector<std::pair<LinkId, uint32_t>> cand;
  while (hv > 0) {
    cand.clear();
    for (auto [e, end] = boost::out_edges(v, g_); e != end; ++e) {
      uint32_t w = static_cast<uint32_t>(boost::target(*e, g_));
      if (d.h(w) != hv - 1) continue;
      uint32_t c = g_[*e].cable;
      cand.emplace_back(links_[2 * c].from == v ? 2 * c : 2 * c + 1, w);
    }
    SIM_CHECK(!cand.empty(), "route: broken DAG at vertex %u", v);
    // Each switch hashes with its own seed (its vertex id), as ECMP does.
    const auto& pick = cand[mix(hash ^ mix(v)) % cand.size()];
    p.push_back(pick.first);
    v = pick.second;
    --hv;
  }
  return p;
}

int ClusterGraph::pxn_relay(int gpu_a, int gpu_b) const {
  if (nics_per_node_ <= 0 || node_of(gpu_a) == node_of(gpu_b)) return -1;
  const int ra = rail_of(gpu_a), rb = rail_of(gpu_b);
  if (ra < 0 || rb < 0 || ra == rb) return -1;
  const int relay = node_of(gpu_a) * gpus_per_node_ + rb * (gpus_per_node_ / nics_per_node_);
  if (relay >= gpus_ || rail_of(relay) != rb || node_of(relay) != node_of(gpu_a)) return -1;
  return relay;
}

std::vector<Path> ClusterGraph::paths(int gpu_a, int gpu_b, const RouteOptions& opt) const {
  std::vector<Path> out;
  const uint32_t a = static_cast<uint32_t>(gpu_vertex(gpu_a));
  const uint32_t b = static_cast<uint32_t>(gpu_vertex(gpu_b));
  if (a == b || opt.max_paths == 0) return out;
  const int relay = opt.rail_aware ? pxn_relay(gpu_a, gpu_b) : -1;
  if (relay < 0) {
    enumerate(dag(a, b), a, opt.max_paths, &out);
    return out;
  }
  std::vector<Path> first, second;
  enumerate(dag(a, relay), a, opt.max_paths, &first);
  enumerate(dag(relay, b), relay, opt.max_paths, &second);
  for (const Path& f : first) {
    for (const Path& s : second) {
      if (out.size() >= opt.max_paths) return out;
      Path p = f;
      p.insert(p.end(), s.begin(), s.end());
      out.push_back(std::move(p));
    }
  }
  return out;
}

Path ClusterGraph::route(int gpu_a, int gpu_b, uint64_t flow_hash, const RouteOptions& opt) const {
  const uint32_t a = static_cast<uint32_t>(gpu_vertex(gpu_a));
  const uint32_t b = static_cast<uint32_t>(gpu_vertex(gpu_b));
  if (a == b) return {};
  const int relay = opt.rail_aware ? pxn_relay(gpu_a, gpu_b) : -1;
  if (relay < 0) return walk(dag(a, b), a, flow_hash);
  Path p = walk(dag(a, relay), a, flow_hash);
  Path q = walk(dag(relay, b), relay, flow_hash);
  p.insert(p.end(), q.begin(), q.end());
  return p;
}

}  // namespace trainsim
