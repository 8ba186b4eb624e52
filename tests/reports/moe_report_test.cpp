// MoE figures in the terminal summary and the JSON report: present for MoE predictions with
// the values of Prediction::moe, absent from dense ones (whose reports must not change).
#include <gtest/gtest.h>

#include "reports/json_report.h"
#include "reports/summary.h"
#include "tests/reports/fixture.h"

#include "scenarios/loader.h"

namespace trainsim {
namespace {

using testing::two_rank_prediction;

Prediction moe_prediction() {
  Prediction p = two_rank_prediction();
  p.scenario.model.arch = "moe";
  p.scenario.model.experts = 8;
  p.scenario.model.top_k = 2;
  p.scenario.model.expert_ffn_hidden = p.scenario.model.ffn_hidden;
  p.moe.present = true;
  p.moe.routing = "zipf(s=1.2)";
  p.moe.seed = 9;
  p.moe.draws = 64;
  p.moe.imbalance_mean = 1.25;
  p.moe.imbalance_max = 1.5;
  p.moe.dropped_fraction = 0.03;
  p.moe.balanced_step_time = Time::ms(900);
  p.moe.imbalance_cost = Time::ms(100);
  return p;
}

TEST(MoeReport, SummaryShowsImbalanceAndCost) {
  const std::string s = format_summary(moe_prediction());
  EXPECT_NE(s.find("zipf(s=1.2), seed 9, 64 draws"), std::string::npos) << s;
  EXPECT_NE(s.find("1.250 mean, 1.500 max; 3.00% of token copies dropped"), std::string::npos) << s;
  EXPECT_NE(s.find("8 experts, top-2"), std::string::npos) << s;
  const std::string d = format_summary(two_rank_prediction());
  EXPECT_EQ(d.find("moe routing"), std::string::npos);
  EXPECT_EQ(d.find("routing cost"), std::string::npos);
}

// The strategy line and JSON name the expert layout: folded with its etp and edp; EP along DP
// only its expert TP, where experts are TP-split (etp = tp); neither without.
TEST(MoeReport, StrategyNamesTheExpertLayout) {
  Prediction p = moe_prediction();
  ParallelSpec& par = p.scenario.parallel;
  par.tp = 4;
  par.dp = 4;
  par.ep = 4;
  par.etp = 4;
  par.ep_layout = EpLayout::kDp;
  EXPECT_NE(format_summary(p).find("ep=4 (etp=4),"), std::string::npos) << format_summary(p);
  auto j = prediction_json(p);
  EXPECT_EQ(j["strategy"]["etp"], 4);
  EXPECT_FALSE(j["strategy"].contains("ep_layout"));
  par.etp = 8;
  par.ep = 2;
  par.ep_layout = EpLayout::kFolded;
  EXPECT_NE(format_summary(p).find("ep=2 (folded: etp=8 edp=1),"), std::string::npos) << format_summary(p);
  j = prediction_json(p);
  EXPECT_EQ(j["strategy"]["ep_layout"], "folded");
  EXPECT_EQ(j["strategy"]["etp"], 8);
  EXPECT_EQ(j["strategy"]["edp"], 1);
  par.etp = 1;
  par.ep = 4;
  par.ep_layout = EpLayout::kDp;
  EXPECT_NE(format_summary(p).find("ep=4,"), std::string::npos) << format_summary(p);
  EXPECT_FALSE(prediction_json(p)["strategy"].contains("etp"));
}

// The summary says where the critical rank's EP group is: one node (all-to-alls on NVLink) or
// several (over the NICs), from the plan's group table.
TEST(MoeReport, SummaryNamesTheNodesOfTheEpGroup) {
  auto line = [](const std::vector<std::string>& ov) {
    auto sc = load_scenario_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/mixtral_8x7b_64.json", ov);
    EXPECT_TRUE(sc.ok()) << sc.status().to_string();
    PredictOptions o;
    o.fast = true;
    auto p = predict(sc.value(), o);
    EXPECT_TRUE(p.ok());
    const std::string s = format_summary(p.value());
    const size_t at = s.find("ep group");
    return at == std::string::npos ? std::string() : s.substr(at, s.find('\n', at) - at);
  };
  EXPECT_NE(line({}).find("ep group      8 ranks on 1 node (rank "), std::string::npos) << line({});
  EXPECT_NE(line({}).find("stay on NVLink"), std::string::npos);
  // tp 4, ep 4 along DP: one TP rank of 4 DP replicas, on 2 nodes.
  const std::string two = line({"parallel.tp=4", "parallel.dp=4", "parallel.etp=1", "parallel.ep=4"});
  EXPECT_NE(two.find("4 ranks on 2 nodes"), std::string::npos) << two;
  EXPECT_NE(two.find("cross the NICs"), std::string::npos) << two;
  EXPECT_EQ(line({"parallel.ep=1"}), "") << "no EP, no line";
}

TEST(MoeReport, JsonHasMoeSectionOnlyForMoe) {
  const auto j = prediction_json(moe_prediction());
  ASSERT_TRUE(j.contains("moe"));
  EXPECT_EQ(j["moe"]["routing"], "zipf(s=1.2)");
  EXPECT_DOUBLE_EQ(j["moe"]["imbalance_mean"].get<double>(), 1.25);
  EXPECT_DOUBLE_EQ(j["moe"]["imbalance_max"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(j["moe"]["dropped_fraction"].get<double>(), 0.03);
  EXPECT_EQ(j["moe"]["imbalance_cost_ps"].get<int64_t>(), Time::ms(100).count_ps());
  EXPECT_FALSE(prediction_json(two_rank_prediction()).contains("moe"));
}

}  // namespace
}  // namespace trainsim
