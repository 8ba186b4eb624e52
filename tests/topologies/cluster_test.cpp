#include "topologies/cluster.h"

#include <gtest/gtest.h>

namespace trainsim {
namespace {

ClusterSpec h100_cluster(int gpus) {
  ClusterSpec c;
  c.gpu = find_gpu("H100-SXM-80GB").value();
  c.gpus = gpus;
  c.gpus_per_node = 8;
  return c;
}

TEST(Cluster, CountsSmallRailOptimized) {
  // 4 nodes x 8 GPUs, leaf radix 2: each rail has ceil(4/2) = 2 leaves -> 16 leaves;
  // each leaf has ceil(2/1) = 2 up ports -> 2 spines.
  FabricOptions opt;
  opt.leaf_radix = 2;
  ClusterGraph g = build_cluster(h100_cluster(32), opt).value();
  TopoSummary s = g.summary();
  EXPECT_EQ(s.gpus, 32);
  EXPECT_EQ(s.nodes, 4);
  EXPECT_EQ(s.nics, 32);
  EXPECT_EQ(s.leaf_switches, 16);
  EXPECT_EQ(s.spine_switches, 2);
  // GPU-NVSwitch 32 + GPU-NIC 32 + NIC-leaf 32 + leaf-spine 16*2
  EXPECT_EQ(s.links, 32 + 32 + 32 + 32);
  EXPECT_EQ(boost::num_vertices(g.graph()), 32u + 4 + 32 + 16 + 2);
  EXPECT_EQ(g.graph()[g.gpu_vertex(9)].kind, VertexKind::kGpu);
  EXPECT_EQ(g.graph()[g.gpu_vertex(9)].node, 1);
  EXPECT_EQ(g.graph()[g.nvswitch_vertex(3)].kind, VertexKind::kNvSwitch);
  EXPECT_EQ(g.graph()[g.nic_vertex(2, 5)].kind, VertexKind::kNic);
  EXPECT_EQ(g.graph()[g.nic_vertex(2, 5)].node, 2);
}

TEST(Cluster, SingleLeafHasNoSpines) {
  FabricOptions opt;
  opt.rail_optimized = false;   // 16 NICs on one 64-port leaf
  ClusterGraph g = build_cluster(h100_cluster(16), opt).value();
  EXPECT_EQ(g.summary().leaf_switches, 1);
  EXPECT_EQ(g.summary().spine_switches, 0);
  EXPECT_EQ(g.summary().links, 16 * 3);
  EXPECT_EQ(g.hops(0, 8), 4);   // gpu-nic-leaf-nic-gpu
}

TEST(Cluster, OversubscriptionReducesSpines) {
  FabricOptions opt;
  opt.leaf_radix = 4;
  opt.oversubscription = {2.0};
  ClusterGraph g = build_cluster(h100_cluster(64), opt).value();   // 8 nodes, 8 rails x 2 leaves
  EXPECT_EQ(g.summary().leaf_switches, 16);
  EXPECT_EQ(g.summary().spine_switches, 2);
}

TEST(Cluster, HopsAndNodes) {
  FabricOptions opt;
  opt.leaf_radix = 2;
  ClusterGraph g = build_cluster(h100_cluster(32), opt).value();
  EXPECT_EQ(g.node_of(7), 0);
  EXPECT_EQ(g.node_of(8), 1);
  EXPECT_EQ(g.hops(3, 3), 0);
  EXPECT_EQ(g.hops(0, 7), 2);    // gpu-nvswitch-gpu
  EXPECT_EQ(g.hops(0, 8), 4);    // same rail, same leaf (nodes 0,1): gpu-nic-leaf-nic-gpu
  EXPECT_EQ(g.hops(0, 16), 6);   // same rail, other leaf: via a spine
  EXPECT_EQ(g.hops(0, 9), 6);    // other rail: via a spine (GPUs never forward)
  EXPECT_EQ(g.hops(0, 9), g.hops(9, 0));
}

TEST(Cluster, Bottleneck) {
  ClusterSpec c = h100_cluster(32);
  FabricOptions opt;
  opt.leaf_radix = 2;
  ClusterGraph g = build_cluster(c, opt).value();
  EXPECT_DOUBLE_EQ(g.bottleneck(0, 7).GBps_f(), 450);   // NVLink
  EXPECT_DOUBLE_EQ(g.bottleneck(0, 8).GBps_f(), 50);    // 400 Gb/s NIC
  EXPECT_DOUBLE_EQ(g.bottleneck(0, 25).GBps_f(), 50);

  // Overrides and shared NICs: 2 NICs per node, each carrying 4 GPUs' share (4 x 25 GB/s).
  c.nic_bandwidth = Bandwidth::Gbps(200);
  c.nvlink_bandwidth = Bandwidth::GBps(200);
  opt.nics_per_node = 2;
  ClusterGraph g2 = build_cluster(c, opt).value();
  EXPECT_EQ(g2.summary().nics, 8);
  EXPECT_DOUBLE_EQ(g2.bottleneck(0, 1).GBps_f(), 200);
  EXPECT_DOUBLE_EQ(g2.bottleneck(0, 8).GBps_f(), 100);
}

TEST(Cluster, ValidationReportsAllErrors) {
  ClusterSpec c = h100_cluster(12);   // not a multiple of 8
  FabricOptions opt;
  opt.nics_per_node = 3;
  opt.oversubscription = {0.5};
  auto r = build_cluster(c, opt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().errors().size(), 3u) << r.status().to_string();
}

TEST(Cluster, LargeClusterBuilds) {
  ClusterGraph g = build_cluster(h100_cluster(16384)).value();
  TopoSummary s = g.summary();
  EXPECT_EQ(s.nodes, 2048);
  EXPECT_EQ(s.nics, 16384);
  EXPECT_EQ(s.leaf_switches, 8 * 32);
  EXPECT_EQ(s.spine_switches, 64);
  EXPECT_EQ(s.links, 3 * 16384 + 256 * 64);
  EXPECT_EQ(g.hops(0, 16383), 6);
  EXPECT_EQ(g.node_of(16383), 2047);
}

}  // namespace
}  // namespace trainsim
