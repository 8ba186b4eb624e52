// The scenario "network" section (flow mode, topology, what-ifs) end to end: loader errors,
// predict() in flow mode, the reports' network parts, determinism.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "reports/json_report.h"
#include "reports/summary.h"
#include "scenarios/loader.h"
#include "scenarios/predict.h"

namespace trainsim {
namespace {

using json = nlohmann::json;

// 4 nodes of 8 H100: TP 8 in the node, PP 2 and DP 2 across nodes, so DP reductions and PP
// sends cross the fabric.
json small_doc() {
  return json::parse(R"({
    "name": "flow-small",
    "model": {"name": "megatron-gpt-22b"},
    "training": {"seq_len": 2048, "global_batch": 8, "micro_batch": 1, "precision": "bf16"},
    "cluster": {"gpu": "H100-SXM-80GB", "gpus": 32, "gpus_per_node": 8, "nic_bandwidth": "400Gbps"},
    "parallel": {"tp": 8, "pp": 2, "dp": 2, "sequence_parallel": true},
    "network": {"mode": "flow"},
    "seed": 1
  })");
}

Result<Scenario> load_doc(const json& d, const std::vector<std::string>& ov = {}) {
  return load_scenario_text(d.dump(), "small.json", ov);
}

bool has_error(const Result<Scenario>& r, const std::string& path, const std::string& word) {
  if (r.ok()) return false;
  for (const auto& e : r.status().errors())
    if (e.path == path && e.message.find(word) != std::string::npos) return true;
  return false;
}

TEST(NetworkSection, ParsesFlowModeAndWhatIfs) {
  json d = small_doc();
  d["network"] = json::parse(R"({"mode": "flow", "topology": "rail-fat-tree",
      "oversubscription": [2, 4], "placement": "scattered", "hottest_links": 3,
      "modifications": [{"between": ["leaf0", "spine0"], "failed": true},
                        {"tier": 2, "switch": 1, "port": 0, "factor": 0.5}]})");
  auto r = load_doc(d);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const NetworkOptions& n = r->options.network;
  EXPECT_EQ(r->options.network_mode, "flow");
  EXPECT_EQ(n.topology, "rail-fat-tree");
  EXPECT_EQ(n.oversubscription, (std::vector<double>{2, 4}));
  EXPECT_EQ(n.placement, "scattered");
  EXPECT_EQ(n.hottest_links, 3);
  ASSERT_EQ(n.modifications.size(), 2u);
  EXPECT_EQ(n.modifications[0].a, "leaf0");
  EXPECT_EQ(n.modifications[0].factor, 0);
  EXPECT_EQ(n.modifications[1].tier, 2);
  EXPECT_EQ(n.modifications[1].factor, 0.5);
}

TEST(NetworkSection, BadValuesNamePathValueAndAcceptedValuesAllAtOnce) {
  json d = small_doc();
  d["network"] = json::parse(R"({"mode": "flow", "placement": "random", "oversubscription": 0.5,
      "topology": "", "hottest_links": 0, "modifications": [{"between": ["a"]}], "topolgy": 1})");
  auto r = load_doc(d);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, "/network/placement", "\"contiguous\"")) << r.status().to_string();
  EXPECT_TRUE(has_error(r, "/network/oversubscription", "[1, 1024]"));
  EXPECT_TRUE(has_error(r, "/network/topology", "empty"));
  EXPECT_TRUE(has_error(r, "/network/hottest_links", "too small"));
  EXPECT_TRUE(has_error(r, "/network/modifications/0/between", "two endpoint names"));
  EXPECT_TRUE(has_error(r, "/network/topolgy", "did you mean \"topology\""));
  for (const auto& e : r.status().errors()) EXPECT_EQ(e.file, "small.json");
}

TEST(NetworkSection, TopologyProblemsAreReportedByPredict) {
  // Too small a fabric, an unknown builtin, oversubscription on an explicit graph is covered by
  // the topology tests; a modification that matches no link is reported with the scenario file.
  auto small = load_doc(small_doc(), {"network.topology=dgx-h100"});
  ASSERT_TRUE(small.ok());
  auto p = predict(small.value(), {});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().to_string().find("the job needs 32"), std::string::npos) << p.status().to_string();

  auto unknown = load_doc(small_doc(), {"network.topology=rail-fat-tre"});
  ASSERT_TRUE(unknown.ok());
  auto q = predict(unknown.value(), {});
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().to_string().find("did you mean \"rail-fat-tree\""), std::string::npos)
      << q.status().to_string();

  auto fast = load_doc(small_doc());
  PredictOptions po;
  po.fast = true;
  EXPECT_FALSE(predict(fast.value(), po).ok());
}

TEST(NetworkSection, FlowModeEndToEndIsDeterministicAndReportsHottestLinks) {
  auto s = load_doc(small_doc());
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  auto a = predict(s.value(), {});
  auto b = predict(s.value(), {});
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok());
  const std::string ja = prediction_json(a.value()).dump(2);
  EXPECT_EQ(ja, prediction_json(b.value()).dump(2));
  EXPECT_EQ(format_summary(a.value()), format_summary(b.value()));
  ASSERT_TRUE(a->flow);
  EXPECT_GT(a->network.flows_started, 0u);
  EXPECT_GT(a->network.rate_recomputations, 0u);
  ASSERT_FALSE(a->network.hottest.empty());
  EXPECT_LE(a->network.hottest.size(), 10u);
  for (size_t i = 1; i < a->network.hottest.size(); ++i)
    EXPECT_GE(a->network.hottest[i - 1].utilisation, a->network.hottest[i].utilisation);
  EXPECT_GT(a->network.hottest[0].utilisation, 0);
  EXPECT_LE(a->network.hottest[0].utilisation, 1.0);
  json j = json::parse(ja);
  ASSERT_TRUE(j.contains("network"));
  EXPECT_EQ(j["network"]["mode"], "flow");
  EXPECT_FALSE(j["network"]["hottest_links"].empty());
  EXPECT_NE(format_summary(a.value()).find("hottest links"), std::string::npos);

  // The same scenario in analytic mode: no network report, and (DP and PP on an idle
  // non-blocking fabric) flow mode is never faster than analytic.
  auto an = predict(load_doc(small_doc(), {"network.mode=analytic"}).value(), {});
  ASSERT_TRUE(an.ok());
  EXPECT_FALSE(json::parse(prediction_json(an.value()).dump()).contains("network"));
  EXPECT_EQ(format_summary(an.value()).find("hottest links"), std::string::npos);
  EXPECT_GE(a->step_time, an->step_time);
}

TEST(NetworkSection, OversubscriptionAndFailuresChangeTheFabric) {
  // The job's 4 nodes on the 1,024-GPU rail-fat-tree builtin: contiguous at 1:1 they share one
  // leaf per rail; scattered at 4:1 their traffic crosses fewer, shared spine uplinks. The
  // what-ifs reach the run (a different document), on the same builtin.
  auto base = predict(load_doc(small_doc(), {"network.topology=rail-fat-tree", "network.oversubscription=1"}).value(), {});
  auto over = predict(load_doc(small_doc(), {"network.topology=rail-fat-tree", "network.oversubscription=4",
                                         "network.placement=scattered"}).value(), {});
  ASSERT_TRUE(base.ok()) << base.status().to_string();
  ASSERT_TRUE(over.ok()) << over.status().to_string();
  EXPECT_EQ(base->network.topology, over->network.topology);
  EXPECT_EQ(over->network.placement, "scattered");
  EXPECT_NE(prediction_json(base.value()).dump(), prediction_json(over.value()).dump());

  auto bad = load_doc(small_doc(), {"network.modifications=[{\"between\": [\"leaf0\", \"nowhere\"], \"failed\": true}]"});
  ASSERT_TRUE(bad.ok()) << bad.status().to_string();
  auto pb = predict(bad.value(), {});
  ASSERT_FALSE(pb.ok());
  EXPECT_EQ(pb.status().errors()[0].file, "small.json") << pb.status().to_string();
}

// network.in_network_reduction: a bool (an error names the path otherwise); off by default and
// off == absent byte for byte; on, the DP gradient all-reduce (4 nodes, one member per node:
// the ring's 2(n-1)/n = 1.5 bus factor against SHARP's 1) gets faster in both modes, and the
// cost sources say so.
TEST(NetworkSection, InNetworkReductionIsABoolAndSpeedsUpCrossNodeAllReduce) {
  json d = small_doc();
  d["parallel"] = json::parse(R"({"tp": 8, "pp": 1, "dp": 4, "sequence_parallel": true})");
  d["network"] = json::parse(R"({"mode": "analytic", "in_network_reduction": "yes"})");
  auto bad = load_doc(d);
  EXPECT_TRUE(has_error(bad, "/network/in_network_reduction", "true or false")) << bad.status().to_string();
  d["network"] = json::parse(R"({"mode": "analytic"})");
  auto absent = load_doc(d);
  ASSERT_TRUE(absent.ok()) << absent.status().to_string();
  EXPECT_FALSE(absent->options.network.in_network_reduction);
  auto off = load_doc(d, {"network.in_network_reduction=false"});
  auto on = load_doc(d, {"network.in_network_reduction=true"});
  ASSERT_TRUE(off.ok() && on.ok());
  EXPECT_TRUE(on->options.network.in_network_reduction);
  for (const char* mode : {"analytic", "flow"}) {
    Scenario a = absent.value(), f = off.value(), o = on.value();
    a.options.network_mode = f.options.network_mode = o.options.network_mode = mode;
    auto pa = predict(a, {}), pf = predict(f, {}), po = predict(o, {});
    ASSERT_TRUE(pa.ok() && pf.ok() && po.ok()) << mode;
    EXPECT_EQ(prediction_json(pa.value()).dump(), prediction_json(pf.value()).dump()) << mode;
    EXPECT_EQ(format_summary(pa.value()), format_summary(pf.value())) << mode;
    EXPECT_LT(po->step_time, pf->step_time) << mode;
    EXPECT_LT(po->comm_total, pf->comm_total) << mode;
    EXPECT_EQ(format_summary(pf.value()).find("in-network"), std::string::npos) << mode;
    EXPECT_NE(format_summary(po.value()).find("in-network"), std::string::npos) << mode;
  }
}

}  // namespace
}  // namespace trainsim
