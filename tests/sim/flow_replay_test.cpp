// The replay in flow mode against a hand-written NetworkModel (no topologies/): collectives
// finish when their flows do (+ floor / tail), overlapping ones share a link, the time
// accounting still adds up, and the run is deterministic.
#include <gtest/gtest.h>

#include "sim/network_model.h"
#include "sim/replay.h"

namespace trainsim {
namespace {

// One shared link of 1 GB/s. Every collective sends op.bytes over it, then a 1 us tail.
class OneLink : public NetworkModel {
 public:
  std::vector<Bandwidth> link_capacities() const override { return {Bandwidth::GBps(1)}; }
  void collective(const Plan& plan, uint32_t, uint32_t, uint32_t op, NetworkTraffic* out) override {
    out->analytic = false;
    out->flows.clear();
    out->flows.push_back(FlowSpec{{0}, plan.ops[op].bytes, std::nullopt});
    out->floor = Time::zero();
    out->tail = Time::us(1);
  }
  void p2p(const Plan&, uint32_t, uint32_t, uint32_t, NetworkTraffic* out) override {
    out->analytic = true;
    out->flows.clear();
  }
};

// Ranks {0,1} and {2,3} each run compute c_r, then one all-reduce of 1 MB (analytic dur 7 us,
// ignored in flow mode), then 1 us compute.
Plan plan(Time c0, Time c2) {
  Plan p;
  p.num_ranks = 4;
  GroupTable g;
  g.name = "dp";
  g.instance_of_rank = {0, 0, 1, 1};
  g.member_offsets = {0, 2, 4};
  g.members = {0, 1, 2, 3};
  p.groups.push_back(g);
  OpDesc k;
  k.name = "k";
  const uint32_t kop = p.intern_op(k);
  OpDesc ar;
  ar.name = "ar";
  ar.cls = OpClass::kCollective;
  ar.bytes = Bytes(1'000'000);
  const uint32_t aop = p.intern_op(ar);
  p.programs.resize(2);
  for (int i = 0; i < 2; ++i) {
    Task c;
    c.op = kop;
    c.dur = i == 0 ? c0 : c2;
    Task coll;
    coll.kind = TaskKind::kCollective;
    coll.category = Category::kDpComm;
    coll.op = aop;
    coll.dur = Time::us(7);
    Task tail;
    tail.op = kop;
    tail.dur = Time::us(1);
    p.programs[i].tasks = {c, coll, tail};
  }
  p.program_of_rank = {0, 0, 1, 1};
  EXPECT_TRUE(p.finalize().ok());
  return p;
}

TEST(FlowReplay, OverlappingCollectivesShareTheLink) {
  OneLink net;
  ReplayOptions ro;
  ro.network = &net;
  // Apart: the second starts after the first ends: each 1 MB / 1 GB/s = 1 ms + 1 us.
  //   step = 2000 + 1 (tail) + 1 (compute) us for the late pair.
  auto apart = replay(plan(Time::zero(), Time::us(1500)), ro);
  ASSERT_TRUE(apart.ok()) << apart.status().to_string();
  EXPECT_EQ(apart->step_time, Time::us(1500 + 1000 + 1 + 1));
  // Together from t=0: both share 1 GB/s and end at 2 ms: step = 2000 + 1 + 1 us.
  auto both = replay(plan(Time::zero(), Time::zero()), ro);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->step_time, Time::us(2000 + 1 + 1));
  EXPECT_EQ(both->flows.stats.flows_started, 2u);
  ASSERT_EQ(both->flows.hottest.size(), 1u);
  EXPECT_NEAR(both->flows.hottest[0].utilisation, 2000.0 / 2002.0, 1e-6);
  for (const RankStats& s : both->ranks) {
    Time sum;
    for (Time b : s.bucket) sum += b;
    EXPECT_EQ(sum, both->step_time);
    EXPECT_EQ(s.bucket[static_cast<size_t>(Bucket::kDpExposed)], Time::us(2001));
  }
  auto again = replay(plan(Time::zero(), Time::zero()), ro);
  EXPECT_EQ(again->fingerprint, both->fingerprint);
  // Analytic mode ignores the network: 7 us per collective.
  auto an = replay(plan(Time::zero(), Time::zero()), {});
  EXPECT_EQ(an->step_time, Time::us(7 + 1));
  EXPECT_FALSE(an->flow);
  // Flow mode refuses fast mode.
  ro.fast = true;
  auto fast = replay(plan(Time::zero(), Time::zero()), ro);
  ASSERT_FALSE(fast.ok());
  EXPECT_NE(fast.status().to_string().find("flow mode simulates every rank"), std::string::npos);
}

}  // namespace
}  // namespace trainsim
