// Builders, describe(), routing and the topology file loader (topologies/*).

#include <map>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "topologies/cluster.h"
#include "topologies/describe.h"
#include "topologies/topology_file.h"

namespace trainsim {
namespace {

using json = nlohmann::json;

ClusterSpec spec(const char* gpu, int gpus, int gpn = 8) {
  ClusterSpec c;
  c.gpu = find_gpu(gpu).value();
  c.gpus = gpus;
  c.gpus_per_node = gpn;
  return c;
}

// 2-tier rail-optimized, N nodes x 8 GPUs, k down ports per leaf, ratio o:
//   leaves = 8 * ceil(N / k), spines = ceil(min(N, k) / o) (a leaf's up links carry what its
//   attached NICs send: fewer nodes than k leave ports unused), cables = 3 * 8N + leaves * spines.
TEST(Fabric, TwoTierRailCountsClosedForm) {
  for (int N : {4, 16, 64}) {
    for (int k : {4, 8}) {
      for (double o : {1.0, 2.0}) {
        FabricOptions f;
        f.leaf_radix = k;
        f.oversubscription = {o};
        TopoSummary s = build_cluster(spec("H100-SXM-80GB", 8 * N), f).value().summary();
        const int leaves = 8 * ((N + k - 1) / k);
        const int spines = static_cast<int>(std::ceil(std::min(N, k) / o));
        EXPECT_EQ(s.leaf_switches, leaves) << N << " " << k;
        EXPECT_EQ(s.spine_switches, spines);
        EXPECT_EQ(s.core_switches, 0);
        EXPECT_EQ(s.links, 3 * 8 * N + leaves * spines);
      }
    }
  }
}

// 3-tier rail-optimized, k = 8 down ports, pods of k*k/8 = 8 nodes (64 GPUs), 32 nodes = 4 pods:
//   leaves/pod = 8 rails * ceil(8/8) = 8, spines/pod = 8, spine up = ceil(8 / o2),
//   cores = 8 planes * ceil(4 pods * up / 16).
// One DGX H100 node (k = 64 by default): each rail's leaf has one NIC, so one up link each to
// one spine (a leaf sized for 64 NICs had 64 up links: 64 spines, 512 cables for 8 NICs). No
// cut between nodes exists; the description gives the NVLink cut between the node's halves:
// 4 GPUs x 450 GB/s.
TEST(Fabric, OneNodeIsNotSizedForAFullLeaf) {
  ClusterGraph g = build_cluster(spec("H100-SXM-80GB", 8), FabricOptions{}).value();
  TopoSummary s = g.summary();
  EXPECT_EQ(s.leaf_switches, 8);
  EXPECT_EQ(s.spine_switches, 1);
  EXPECT_EQ(s.links, 3 * 8 + 8 * 1);
  TopoDescription d = describe(g);
  ASSERT_EQ(d.oversubscription.size(), 1u);
  EXPECT_DOUBLE_EQ(d.oversubscription[0].down_over_up, 1.0);
  EXPECT_DOUBLE_EQ(d.node_bisection.GBps_f(), 4 * 450.0);
  const std::string text = format_description(d);
  EXPECT_NE(text.find("no cut between nodes (one node); between the node's halves 1800 GB/s"), std::string::npos) << text;
  // Two nodes: a cut between nodes, printed as before.
  EXPECT_NE(format_description(describe(build_cluster(spec("H100-SXM-80GB", 16), FabricOptions{}).value()))
                .find("bisection bandwidth: 400 GB/s per direction"), std::string::npos);
}

TEST(Fabric, ThreeTierCountsClosedForm) {
  FabricOptions f;
  f.leaf_radix = 8;
  f.tiers = 3;
  f.oversubscription = {1, 2};
  ClusterGraph g = build_cluster(spec("H100-SXM-80GB", 256), f).value();
  TopoSummary s = g.summary();
  EXPECT_EQ(s.leaf_switches, 4 * 8);
  EXPECT_EQ(s.spine_switches, 4 * 8);
  EXPECT_EQ(s.core_switches, 8 * 1);   // ceil(4 * 4 / 16) = 1 per plane
  EXPECT_EQ(s.links, 3 * 256 + 32 * 8 + 32 * 4);
  EXPECT_EQ(g.hops(0, 8), 4);      // same rail, same leaf
  EXPECT_EQ(g.hops(0, 64), 8);     // other pod: via a core
  EXPECT_EQ(g.hops(0, 9), 6);      // other rail, same pod: via a spine
  TopoDescription d = describe(g);
  ASSERT_EQ(d.oversubscription.size(), 2u);
  EXPECT_DOUBLE_EQ(d.oversubscription[0].down_over_up, 1.0);
  EXPECT_DOUBLE_EQ(d.oversubscription[1].down_over_up, 2.0);
}

TEST(Fabric, RailAgnosticPutsANodeOnOneLeaf) {
  FabricOptions f;
  f.rail_optimized = false;
  f.leaf_radix = 16;
  ClusterGraph g = build_cluster(spec("H100-SXM-80GB", 64), f).value();
  EXPECT_EQ(g.summary().leaf_switches, 4);
  EXPECT_EQ(g.hops(0, 7), 2);
  EXPECT_EQ(g.hops(0, 9), 4);    // nodes 0 and 1 share leaf 0
  EXPECT_EQ(g.hops(0, 16), 6);
}

TEST(Fabric, OversubscriptionAndLinkBandwidth) {
  // Leaf with 8 x 400G down, ratio 2, 800G up links: ceil(8*400 / (2*800)) = 2 up links.
  FabricOptions f;
  f.leaf_radix = 8;
  f.oversubscription = {2};
  f.link_bandwidth = {Bandwidth::Gbps(400), Bandwidth::Gbps(800)};
  ClusterGraph g = build_cluster(spec("H100-SXM-80GB", 128), f).value();
  EXPECT_EQ(g.summary().spine_switches, 2);
  TopoDescription d = describe(g);
  EXPECT_DOUBLE_EQ(d.oversubscription[0].down_over_up, 2.0);
  EXPECT_NE(format_description(d).find("leaf-spine"), std::string::npos);
}

// Bisection, 16 nodes x 8 H100 (50 GB/s NICs), k = 8: half = 64 NICs = 3200 GB/s.
// 1:1: leaf uplinks of a half = 8 leaves * 8 * 50 = 3200 -> 3200 GB/s. 2:1 -> 1600 GB/s.
TEST(Fabric, Bisection) {
  FabricOptions f;
  f.leaf_radix = 8;
  EXPECT_DOUBLE_EQ(describe(build_cluster(spec("H100-SXM-80GB", 128), f).value()).bisection.GBps_f(), 3200);
  f.oversubscription = {2};
  EXPECT_DOUBLE_EQ(describe(build_cluster(spec("H100-SXM-80GB", 128), f).value()).bisection.GBps_f(), 1600);
  // 3 tiers, 4 pods, spine ratio 2: top cut = 2 pods * 8 spines * 4 up * 50 = 3200 of 6400.
  FabricOptions t;
  t.leaf_radix = 8;
  t.tiers = 3;
  t.oversubscription = {1, 2};
  EXPECT_DOUBLE_EQ(describe(build_cluster(spec("H100-SXM-80GB", 256), t).value()).bisection.GBps_f(), 3200);
}

TEST(Fabric, EcmpSpreadsEvenlyOverSpines) {
  FabricOptions f;
  f.leaf_radix = 4;   // 4 spines
  ClusterGraph g = build_cluster(spec("H100-SXM-80GB", 64), f).value();
  const int a = 0, b = 32;   // rail 0, nodes 0 and 4: different leaves
  EXPECT_EQ(g.paths(a, b).size(), 4u);
  std::map<uint32_t, int> per_spine;
  const int flows = 8000;
  for (uint64_t h = 0; h < flows; ++h) {
    Path p = g.route(a, b, h);
    ASSERT_EQ(p.size(), 6u);
    EXPECT_EQ(g.link(p.front()).from, 0u);
    EXPECT_EQ(g.link(p.back()).to, 32u);
    for (size_t i = 1; i < p.size(); ++i) EXPECT_EQ(g.link(p[i - 1]).to, g.link(p[i]).from);
    ++per_spine[g.link(p[2]).to];
  }
  ASSERT_EQ(per_spine.size(), 4u);
  for (auto [s, n] : per_spine) EXPECT_NEAR(n, flows / 4, flows / 4 * 0.1) << s;
  EXPECT_EQ(g.route(a, b, 7), g.route(a, b, 7));   // deterministic
}

TEST(Fabric, FailedLinkReroutesDegradedKeepsPath) {
  FabricOptions f;
  f.leaf_radix = 4;
  f.rail_optimized = false;   // leaves 0..15, 2 spines with ratio 2
  f.oversubscription = {2};
  ClusterGraph base = build_cluster(spec("H100-SXM-80GB", 64), f).value();
  const int a = 0, b = 8;   // node 0 on leaf0, node 1 on leaf2
  EXPECT_EQ(base.hops(a, b), 6);
  EXPECT_EQ(base.paths(a, b).size(), 2u);
  // Fail leaf0-spine1: one path left, same length, never through the failed link.
  f.modifications = {LinkModification{-1, -1, -1, "leaf0", "spine1", 0}};
  ClusterGraph one = build_cluster(spec("H100-SXM-80GB", 64), f).value();
  EXPECT_EQ(one.summary().links, base.summary().links - 1);
  auto ps = one.paths(a, b);
  ASSERT_EQ(ps.size(), 1u);
  for (LinkId l : ps[0]) EXPECT_NE(one.vertex_name(one.link(l).to), "spine1");
  // Also fail leaf2-spine0 (by tier/switch/port: spine 0's down link 2 is leaf2's): no
  // up-down path is left; the route goes leaf0-spine0-leaf1-spine1-leaf2: 2 hops longer.
  f.modifications.push_back(LinkModification{2, 0, 2, "", "", 0});
  ClusterGraph two = build_cluster(spec("H100-SXM-80GB", 64), f).value();
  EXPECT_EQ(two.hops(a, b), 8);
  EXPECT_EQ(two.route(a, b, 1).size(), 8u);
  // Degraded: the path stays, its capacity drops.
  f.modifications = {LinkModification{-1, -1, -1, "leaf0", "spine1", 0.25}};
  ClusterGraph deg = build_cluster(spec("H100-SXM-80GB", 64), f).value();
  EXPECT_EQ(deg.paths(a, b).size(), 2u);
  bool saw = false;
  for (const Link& l : deg.links())
    if (deg.vertex_name(l.from) == "leaf0" && deg.vertex_name(l.to) == "spine1") {
      EXPECT_DOUBLE_EQ(l.bw.GBps_f(), 12.5);
      saw = true;
    }
  EXPECT_TRUE(saw);
  // Bad modifications: all reported.
  f.modifications = {LinkModification{2, 99, 0, "", "", 0}, LinkModification{-1, -1, -1, "leaf0", "nope", 0}};
  auto bad = build_cluster(spec("H100-SXM-80GB", 64), f);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().errors().size(), 2u) << bad.status().to_string();
  // A tier the fabric does not have says so (not "accepted: 0..-1").
  f.modifications = {LinkModification{3, 0, 0, "", "", 1}};
  auto no_tier = build_cluster(spec("H100-SXM-80GB", 64), f);
  ASSERT_FALSE(no_tier.ok());
  const std::string msg = no_tier.status().to_string();
  EXPECT_NE(msg.find("no tier-3 switches"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("0..-1"), std::string::npos) << msg;
}

TEST(Fabric, RailAwarePxnCrossesNvlinkFirst) {
  FabricOptions f;
  f.leaf_radix = 4;
  ClusterGraph g = build_cluster(spec("H100-SXM-80GB", 64), f).value();
  // GPU 0 (rail 0) to GPU 11 (node 1, rail 3): without PXN via spines (6 hops); with PXN:
  // gpu0 -> nvswitch -> gpu3, then gpu3 -> nic -> leaf(rail 3) -> nic -> gpu11.
  EXPECT_EQ(g.route(0, 11, 5).size(), 6u);
  RouteOptions pxn;
  pxn.rail_aware = true;
  Path p = g.route(0, 11, 5, pxn);
  ASSERT_EQ(p.size(), 6u);
  EXPECT_EQ(g.vertex_name(g.link(p[0]).to), "node0/nvswitch");
  EXPECT_EQ(g.vertex_name(g.link(p[1]).to), "gpu3");
  EXPECT_EQ(g.vertex_name(g.link(p[2]).to), "node0/nic3");
  EXPECT_EQ(g.link(p.back()).to, 11u);
  EXPECT_EQ(g.paths(0, 11, pxn).size(), 1u);
}

TEST(Fabric, ScaleUpBuiltins) {
  ClusterGraph h = load_topology("dgx-h100").value();
  EXPECT_EQ(h.num_gpus(), 8);
  EXPECT_DOUBLE_EQ(h.bottleneck(0, 7).GBps_f(), 450);
  ClusterGraph b = load_topology("dgx-b200").value();
  EXPECT_DOUBLE_EQ(b.bottleneck(0, 7).GBps_f(), 900);
  ClusterGraph a = load_topology("dgx-a100").value();
  EXPECT_DOUBLE_EQ(a.bottleneck(0, 7).GBps_f(), 300);
  ClusterGraph n = build_builtin("nvl72", json{{"gpus", 144}}).value();
  EXPECT_EQ(n.gpus_per_node(), 72);
  EXPECT_EQ(n.hops(0, 71), 2);
  EXPECT_DOUBLE_EQ(n.bottleneck(0, 71).GBps_f(), 900);
  EXPECT_EQ(n.hops(0, 72), 4);
}

// The large builtins: their structure in closed form (build time and memory are measured by
// trainsim_bench, not asserted here).
TEST(Fabric, Llama3AndMegaScaleBuiltins) {
  ClusterGraph g = load_topology("llama3-24k").value();
  TopoSummary sum = g.summary();
  EXPECT_EQ(sum.gpus, 24576);
  EXPECT_EQ(sum.leaf_switches, 1536);        // 8 pods x 192 racks
  EXPECT_EQ(sum.spine_switches, 8 * 16);     // 16 cluster switches per pod
  EXPECT_EQ(sum.core_switches, 16 * 4);      // 16 planes x ceil(8 * 28 / 64)
  EXPECT_EQ(g.hops(0, 8), 4);                // same rack
  EXPECT_EQ(g.hops(0, 16), 6);               // same pod
  EXPECT_EQ(g.hops(0, 3072), 8);             // other pod
  TopoDescription d = describe(g);
  ASSERT_EQ(d.oversubscription.size(), 2u);
  EXPECT_NEAR(d.oversubscription[1].down_over_up, 192.0 / 28, 1e-9);
  // Bisection: 4 pods' aggregation uplinks = 4 * 16 * 28 * 50 GB/s.
  EXPECT_DOUBLE_EQ(d.bisection.GBps_f(), 4 * 16 * 28 * 50.0);
  EXPECT_EQ(g.route(0, 20000, 3).size(), 8u);
  ClusterGraph m = load_topology("megascale-12k").value();
  EXPECT_EQ(m.summary().gpus, 12288);
  EXPECT_EQ(m.summary().spine_switches, 6 * 32);
  EXPECT_EQ(m.summary().core_switches, 32 * 3);
  EXPECT_DOUBLE_EQ(describe(m).oversubscription[0].down_over_up, 1.0);
}

TEST(TopologyFile, ExampleFilesLoad) {
  ClusterGraph g = load_topology_file(std::string(TRAINSIM_SOURCE_DIR) +
                                      "/topologies/data/example_two_nodes.json").value();
  EXPECT_EQ(g.num_gpus(), 16);
  EXPECT_EQ(g.gpus_per_node(), 8);
  EXPECT_EQ(g.hops(0, 8), 4);
  EXPECT_EQ(g.hops(0, 12), 6);
  EXPECT_DOUBLE_EQ(g.bottleneck(0, 12).GBps_f(), 50);
  EXPECT_EQ(g.paths(0, 12).size(), 4u);   // 2 parallel cables up x 2 down
  EXPECT_EQ(describe(g).bisection.GBps_f(), 400);   // NIC-bound: 8 x 50
  ClusterGraph big = load_topology_file(std::string(TRAINSIM_SOURCE_DIR) +
                                        "/topologies/data/example_rail_fat_tree_16k.json").value();
  EXPECT_EQ(big.num_gpus(), 16384);
  EXPECT_EQ(big.summary().core_switches > 0, true);
  EXPECT_EQ(format_description(describe(big)), format_description(describe(big)));
}

json two_node_doc() {
  return json::parse(R"({
    "nodes": [{"name": "n", "count": 2, "gpus": 2, "nvlink_bandwidth": "450GB/s",
               "nics": 2, "nic_bandwidth": "400Gbps"}],
    "switches": [{"name": "leaf0"}],
    "links": [{"from": "n0/nic0", "to": "leaf0", "bandwidth": "400Gbps"},
              {"from": "n0/nic1", "to": "leaf0", "bandwidth": "400Gbps"},
              {"from": "n1/nic0", "to": "leaf0", "bandwidth": "400Gbps"},
              {"from": "n1/nic1", "to": "leaf0", "bandwidth": "50GB/s"}]})");
}

bool has(const Status& st, const std::string& path, const std::string& text) {
  for (const Error& e : st.errors())
    if (e.path == path && (e.message + " " + e.value).find(text) != std::string::npos) return true;
  return false;
}

TEST(TopologyFile, ValidFile) {
  ClusterGraph g = load_topology_json(two_node_doc(), "t.json").value();
  EXPECT_EQ(g.hops(0, 3), 4);
  EXPECT_EQ(g.vertex_name(g.gpu_vertex(3)), "n1/gpu1");
}

TEST(TopologyFile, AllErrorsAtOnce) {
  json d = two_node_doc();
  d["links"][0]["to"] = "leaf9";                 // dangling
  d["links"][1]["bandwidth"] = "0Gbps";          // zero
  d["links"][2]["bandwidth"] = 400;              // missing unit
  d["links"][3]["bandwdith"] = "1Gbps";          // unknown key
  d["switches"].push_back({{"name", "leaf0"}});  // duplicate
  d["nodes"].push_back({{"name", "lonely"}, {"gpus", 2}, {"nvlink_bandwidth", "450GB/s"}});  // disconnected
  auto r = load_topology_json(d, "bad.json");
  ASSERT_FALSE(r.ok());
  const Status& st = r.status();
  EXPECT_TRUE(has(st, "/links/0/to", "dangling")) << st.to_string();
  EXPECT_TRUE(has(st, "/links/0/to", "did you mean \"leaf0\"")) << st.to_string();
  EXPECT_TRUE(has(st, "/links/1/bandwidth", "must be a positive")) << st.to_string();
  EXPECT_TRUE(has(st, "/links/2/bandwidth", "missing unit")) << st.to_string();
  EXPECT_TRUE(has(st, "/links/3/bandwdith", "did you mean \"bandwidth\"")) << st.to_string();
  EXPECT_TRUE(has(st, "/switches/1/name", "duplicate name")) << st.to_string();
  EXPECT_TRUE(has(st, "/nodes/1", "disconnected GPU")) << st.to_string();
  for (const Error& e : st.errors()) EXPECT_EQ(e.file, "bad.json");
  EXPECT_NE(st.to_string().find("bad.json"), std::string::npos);
}

TEST(TopologyFile, NegativeBandwidthAndBuiltinErrors) {
  json d = two_node_doc();
  d["links"][0]["bandwidth"] = "-5GB/s";
  auto r = load_topology_json(d, "neg.json");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has(r.status(), "/links/0/bandwidth", "must be positive")) << r.status().to_string();
  auto b = load_topology_json(json{{"builtin", "rail-fat-tree"}, {"gpus", 12}, {"tiers", 4},
                                   {"oversubscriptoin", 2}, {"link_bandwidth", 400}},
                              "b.json");
  ASSERT_FALSE(b.ok());
  EXPECT_TRUE(has(b.status(), "/oversubscriptoin", "did you mean \"oversubscription\"")) << b.status().to_string();
  EXPECT_TRUE(has(b.status(), "/tiers", "[2, 3]")) << b.status().to_string();
  EXPECT_TRUE(has(b.status(), "/link_bandwidth", "missing unit")) << b.status().to_string();
  auto u = load_topology_json(json{{"builtin", "llama3-42k"}}, "u.json");
  ASSERT_FALSE(u.ok());
  EXPECT_TRUE(has(u.status(), "/builtin", "llama3-24k")) << u.status().to_string();
  // A fabric of 16M GPUs took minutes and tens of GB to build; built fabrics stop at 262,144.
  auto big = load_topology_json(json{{"builtin", "dgx-h200"}, {"gpus", 16777216}}, "big.json");
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().to_string().find("at most 262144 GPUs"), std::string::npos) << big.status().to_string();
}

TEST(TopologyFile, ParseBandwidth) {
  Bandwidth b;
  std::string why;
  ASSERT_TRUE(parse_link_bandwidth("400Gbps", &b, &why));
  EXPECT_DOUBLE_EQ(b.GBps_f(), 50);
  ASSERT_TRUE(parse_link_bandwidth("50 GB/s", &b, &why));
  EXPECT_DOUBLE_EQ(b.GBps_f(), 50);
  EXPECT_FALSE(parse_link_bandwidth("400", &b, &why));
  EXPECT_NE(why.find("missing unit"), std::string::npos);
  EXPECT_FALSE(parse_link_bandwidth("4 furlongs", &b, &why));
}

}  // namespace
}  // namespace trainsim
