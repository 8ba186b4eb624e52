// FlowNetwork tests in the three STYLE.md layers: closed forms (the math in comments), the
// incremental max-min solver against a from-scratch water-filling oracle on random instances,
// and determinism. Plus failures/degradation, the event driver and locality of re-solves.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>

#include "sim/event_queue.h"
#include "sim/flow.h"
#include "sim/flow_driver.h"

namespace trainsim {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

Time sec(double s) { return Time::from_seconds(s); }
Bandwidth Bps(double v) { return Bandwidth::bytes_per_s(v); }

// Uniform integer in [lo, hi] and double in [lo, hi) on mt19937_64 (STYLE.md 3: no
// std::*_distribution, whose output differs between standard libraries).
int64_t uni(std::mt19937_64& r, int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(r() % static_cast<uint64_t>(hi - lo + 1));
}
double unif(std::mt19937_64& r, double lo, double hi) {
  return lo + (hi - lo) * static_cast<double>(r() >> 11) * 0x1.0p-53;
}

// ---------------------------------------------------------------------------------------------
// Closed forms. C = 1e9 B/s and S = 1e9 B keep every figure an exact double.

TEST(FlowClosedForm, OneFlowAloneTakesSizeOverCapacity) {
  // t = S / C
  FlowNetwork net;
  const uint32_t l = net.add_link(Bandwidth::GBps(50));
  Result<FlowId> f = net.start(Time::zero(), {l}, Bytes::MiB(64));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(net.rate(f.value()).Bps(), 50e9);
  const Time want = transfer_time(Bytes::MiB(64), Bandwidth::GBps(50));
  EXPECT_EQ(net.next_completion(), want);
  EXPECT_TRUE(net.advance_to(want - Time::ps(1)).empty());
  std::vector<FlowId> done = net.advance_to(want);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0], f.value());
  EXPECT_EQ(net.active_flows(), 0u);
  EXPECT_EQ(net.next_completion(), Time::max());
}

TEST(FlowClosedForm, TwoEqualFlowsShareALinkAndTakeTwiceAsLong) {
  // Each gets C/2, so both finish at S / (C/2) = 2 S / C = 2 s (alone: 1 s).
  FlowNetwork net;
  const uint32_t l = net.add_link(Bps(1e9));
  FlowId a = net.start(Time::zero(), {l}, Bytes{1'000'000'000}).value();
  FlowId b = net.start(Time::zero(), {l}, Bytes{1'000'000'000}).value();
  EXPECT_EQ(net.rate(a).Bps(), 5e8);
  EXPECT_EQ(net.rate(b).Bps(), 5e8);
  EXPECT_EQ(net.next_completion(), sec(2.0));
  std::vector<FlowId> done = net.advance_to(sec(2.0));
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0], a);  // by id
  EXPECT_EQ(done[1], b);
  EXPECT_EQ(net.stats().solves, 1u) << "two starts at one instant are solved in one pass";
}

TEST(FlowClosedForm, FlowStartingHalfwayThroughAnother) {
  // A: S at t=0 alone at C. B: S at t = S/(2C) = 0.5 s.
  // At 0.5 s A has S/2 left; both run at C/2, so A finishes at 0.5 + (S/2)/(C/2) = 1.5 s.
  // B has sent (C/2)(1 s) = S/2 by then, and runs alone at C: 1.5 + (S/2)/C = 2.0 s.
  FlowNetwork net;
  const uint32_t l = net.add_link(Bps(1e9));
  FlowId a = net.start(Time::zero(), {l}, Bytes{1'000'000'000}).value();
  EXPECT_EQ(net.next_completion(), sec(1.0));
  EXPECT_TRUE(net.advance_to(sec(0.5)).empty());
  FlowId b = net.start(sec(0.5), {l}, Bytes{1'000'000'000}).value();
  EXPECT_EQ(net.projected_completion(a), sec(1.5));
  EXPECT_EQ(net.projected_completion(b), sec(2.5));  // if nothing changed
  EXPECT_DOUBLE_EQ(net.remaining_bytes(a, sec(0.5)), 5e8);
  std::vector<FlowCompletion> done;
  net.advance_to(sec(10.0), &done);  // one call crosses both completions
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].id, a);
  EXPECT_EQ(done[0].at, sec(1.5));
  EXPECT_EQ(done[1].id, b);
  EXPECT_EQ(done[1].at, sec(2.0));
}

TEST(FlowClosedForm, RateCapBelowFairShareFreesBandwidth) {
  // A is capped at 0.2 C, so B gets the rest: 0.8 C (not C/2).
  // A: 0.2 S at 0.2 C -> 1 s. B: 1.6 S; by 1 s it sent 0.8 S, then alone at C: 1 + 0.8 = 1.8 s.
  FlowNetwork net;
  const uint32_t l = net.add_link(Bps(1e9));
  FlowId a = net.start(Time::zero(), {l}, Bytes{200'000'000}, Bps(2e8)).value();
  FlowId b = net.start(Time::zero(), {l}, Bytes{1'600'000'000}).value();
  EXPECT_EQ(net.rate(a).Bps(), 2e8);
  EXPECT_EQ(net.rate(b).Bps(), 8e8);
  std::vector<FlowCompletion> done;
  net.advance_to(sec(5.0), &done);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].at, sec(1.0));
  EXPECT_EQ(done[1].at, sec(1.8));
}

TEST(FlowClosedForm, CapAboveFairShareIsInactive) {
  // Cap 0.9 C > C/2: both get C/2.
  FlowNetwork net;
  const uint32_t l = net.add_link(Bps(1e9));
  FlowId a = net.start(Time::zero(), {l}, Bytes{1000}, Bps(9e8)).value();
  FlowId b = net.start(Time::zero(), {l}, Bytes{1000}).value();
  EXPECT_EQ(net.rate(a).Bps(), 5e8);
  EXPECT_EQ(net.rate(b).Bps(), 5e8);
}

TEST(FlowClosedForm, ClassicMaxMinExample) {
  // Links L0 (cap 1) and L1 (cap 2). f0 on L0; f1 on L0,L1; f2 on L1.
  // L0 is the bottleneck: f0 = f1 = 1/2. Then f2 gets L1's rest: 2 - 1/2 = 3/2.
  FlowNetwork net;
  const uint32_t l0 = net.add_link(Bps(1e9));
  const uint32_t l1 = net.add_link(Bps(2e9));
  FlowId f0 = net.start(Time::zero(), {l0}, Bytes{1000}).value();
  FlowId f1 = net.start(Time::zero(), {l0, l1}, Bytes{1000}).value();
  FlowId f2 = net.start(Time::zero(), {l1}, Bytes{1000}).value();
  EXPECT_DOUBLE_EQ(net.rate(f0).Bps(), 5e8);
  EXPECT_DOUBLE_EQ(net.rate(f1).Bps(), 5e8);
  EXPECT_DOUBLE_EQ(net.rate(f2).Bps(), 1.5e9);
}

TEST(FlowClosedForm, EmptyPathWithCapAndZeroSize) {
  FlowNetwork net;
  const uint32_t l = net.add_link(Bps(1e9));
  FlowId local = net.start(Time::zero(), std::span<const uint32_t>{}, Bytes{1'000'000}, Bps(1e9)).value();
  FlowId empty = net.start(Time::zero(), {l}, Bytes{0}).value();
  std::vector<FlowCompletion> done;
  net.advance_to(Time::zero(), &done);
  ASSERT_EQ(done.size(), 1u);  // the empty flow, at once
  EXPECT_EQ(done[0].id, empty);
  EXPECT_EQ(net.projected_completion(local), sec(1e-3));
}

// ---------------------------------------------------------------------------------------------
// Oracle: a from-scratch water-filling over all flows, written independently of the solver
// (per round: every link's fair share and every cap, freeze at the lowest level).

struct OracleFlow {
  std::vector<uint32_t> path;
  double cap = kInf;
};

std::vector<double> oracle_rates(const std::vector<double>& link_cap,
                                 const std::vector<OracleFlow>& flows) {
  const size_t n = flows.size();
  std::vector<double> rate(n, 0), rc = link_cap;
  std::vector<bool> frozen(n, false);
  size_t left = n;
  std::vector<int> cnt(link_cap.size());
  while (left > 0) {
    std::fill(cnt.begin(), cnt.end(), 0);
    double cap_level = kInf;
    for (size_t i = 0; i < n; ++i) {
      if (frozen[i]) continue;
      for (uint32_t l : flows[i].path) ++cnt[l];
      cap_level = std::min(cap_level, flows[i].cap);
    }
    double link_level = kInf;
    for (size_t l = 0; l < rc.size(); ++l) {
      if (cnt[l] > 0) link_level = std::min(link_level, rc[l] / cnt[l]);
    }
    const double level = std::min(link_level, cap_level);
    std::vector<size_t> to_freeze;
    for (size_t i = 0; i < n; ++i) {
      if (frozen[i]) continue;
      bool hit = flows[i].cap == level;
      for (uint32_t l : flows[i].path) hit = hit || (rc[l] / cnt[l] == level);
      if (hit) to_freeze.push_back(i);
    }
    EXPECT_FALSE(to_freeze.empty());
    if (to_freeze.empty()) break;
    for (size_t i : to_freeze) {
      frozen[i] = true;
      rate[i] = level;
      --left;
      for (uint32_t l : flows[i].path) rc[l] = std::max(0.0, rc[l] - level);
    }
  }
  return rate;
}

TEST(FlowOracle, IncrementalRatesMatchFromScratchWaterFilling) {
  int instances = 0, checks = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed, ++instances) {
    std::mt19937_64 rng(seed);
    FlowNetwork net;
    const int nlinks = static_cast<int>(uni(rng, 3, 30));
    std::vector<double> cap(nlinks);
    for (int l = 0; l < nlinks; ++l) {
      cap[l] = unif(rng, 1e9, 100e9);
      net.add_link(Bps(cap[l]));
    }
    std::map<FlowId, OracleFlow> live;  // ordered by id: deterministic iteration
    Time now = Time::zero();
    for (int step = 0; step < 80; ++step) {
      const int op = static_cast<int>(uni(rng, 0, 99));
      if (op < 60 || live.empty()) {  // start
        OracleFlow of;
        const int len = static_cast<int>(uni(rng, 1, std::min(6, nlinks)));
        while (static_cast<int>(of.path.size()) < len) {
          const uint32_t l = static_cast<uint32_t>(uni(rng, 0, nlinks - 1));
          if (std::find(of.path.begin(), of.path.end(), l) == of.path.end()) of.path.push_back(l);
        }
        std::optional<Bandwidth> c;
        if (uni(rng, 0, 4) == 0) {
          of.cap = unif(rng, 0.2e9, 30e9);
          c = Bps(of.cap);
        }
        Result<FlowId> f = net.start(now, of.path, Bytes{uni(rng, 1000, 100'000'000)}, c);
        ASSERT_TRUE(f.ok()) << f.status().to_string();
        live.emplace(f.value(), of);
      } else if (op < 80) {  // cancel a random live flow
        auto it = live.begin();
        std::advance(it, uni(rng, 0, static_cast<int64_t>(live.size()) - 1));
        ASSERT_TRUE(net.cancel(now, it->first).ok());
        live.erase(it);
      } else if (op < 90) {  // degrade / restore a link
        const uint32_t l = static_cast<uint32_t>(uni(rng, 0, nlinks - 1));
        cap[l] = unif(rng, 0.5e9, 100e9);
        ASSERT_TRUE(net.set_capacity(now, l, Bps(cap[l])).ok());
      } else {  // let time pass: some flows finish
        const Time nc = net.next_completion();
        const Time t = (nc == Time::max() || uni(rng, 0, 1) == 0) ? now + Time::us(uni(rng, 1, 500))
                                                                   : nc;
        for (FlowId id : net.advance_to(t)) ASSERT_EQ(live.erase(id), 1u);
        now = t;
      }
      // Compare every active flow after every change.
      std::vector<OracleFlow> fl;
      std::vector<FlowId> ids;
      for (const auto& [id, of] : live) {
        ids.push_back(id);
        fl.push_back(of);
      }
      ASSERT_EQ(net.active_flows(), live.size());
      const std::vector<double> want = oracle_rates(cap, fl);
      for (size_t i = 0; i < ids.size(); ++i) {
        const double got = net.rate(ids[i]).Bps();
        ASSERT_NEAR(got, want[i], 1e-9 * want[i])
            << "seed " << seed << " step " << step << " flow " << ids[i].seq;
        ++checks;
      }
    }
  }
  EXPECT_EQ(instances, 200);
  EXPECT_GT(checks, 50'000);
}

// The same oracle on a small oversubscribed tree (hosts with up/down links, leaves with one
// tight uplink/downlink each): most host links are saturated and the core links come and go
// between spare and full, which is where a re-solve that grows only through saturated links
// has to notice a crossed link turning into a bottleneck and widen.
TEST(FlowOracle, PartialResolvesOnAnOversubscribedTreeMatchTheOracle) {
  int checks = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    std::mt19937_64 rng(seed * 7919);
    FlowNetwork net;
    constexpr int kLeaves = 4, kPer = 4, kHosts = kLeaves * kPer;
    std::vector<double> cap;
    auto link = [&](double c) {
      cap.push_back(c);
      return net.add_link(Bps(c));
    };
    std::vector<uint32_t> up, down, lup, ldn;
    for (int h = 0; h < kHosts; ++h) {
      up.push_back(link(10e9));
      down.push_back(link(10e9));
    }
    const double core = unif(rng, 8e9, 30e9);
    for (int l = 0; l < kLeaves; ++l) {
      lup.push_back(link(core));
      ldn.push_back(link(core));
    }
    std::map<FlowId, OracleFlow> live;
    Time now = Time::zero();
    for (int step = 0; step < 150; ++step) {
      const int op = static_cast<int>(uni(rng, 0, 99));
      if (op < 55 || live.empty()) {
        const int src = static_cast<int>(uni(rng, 0, kHosts - 1));
        int dst = static_cast<int>(uni(rng, 0, kHosts - 2));
        if (dst >= src) ++dst;
        OracleFlow of;
        of.path.push_back(up[src]);
        if (src / kPer != dst / kPer) {
          of.path.push_back(lup[src / kPer]);
          of.path.push_back(ldn[dst / kPer]);
        }
        of.path.push_back(down[dst]);
        std::optional<Bandwidth> c;
        if (uni(rng, 0, 9) == 0) {
          of.cap = unif(rng, 1e9, 8e9);
          c = Bps(of.cap);
        }
        Result<FlowId> f = net.start(now, of.path, Bytes{uni(rng, 1000, 50'000'000)}, c);
        ASSERT_TRUE(f.ok()) << f.status().to_string();
        live.emplace(f.value(), of);
      } else if (op < 70) {
        auto it = live.begin();
        std::advance(it, uni(rng, 0, static_cast<int64_t>(live.size()) - 1));
        ASSERT_TRUE(net.cancel(now, it->first).ok());
        live.erase(it);
      } else if (op < 78) {
        const uint32_t l = uni(rng, 0, 1) ? lup[uni(rng, 0, kLeaves - 1)]
                                          : ldn[uni(rng, 0, kLeaves - 1)];
        cap[l] = unif(rng, 5e9, 40e9);
        ASSERT_TRUE(net.set_capacity(now, l, Bps(cap[l])).ok());
      } else {
        const Time nc = net.next_completion();
        const Time t = (nc == Time::max() || uni(rng, 0, 2) == 0) ? now + Time::us(uni(rng, 1, 300))
                                                                   : nc;
        for (FlowId id : net.advance_to(t)) ASSERT_EQ(live.erase(id), 1u);
        now = t;
      }
      std::vector<OracleFlow> fl;
      std::vector<FlowId> ids;
      for (const auto& [id, of] : live) {
        ids.push_back(id);
        fl.push_back(of);
      }
      const std::vector<double> want = oracle_rates(cap, fl);
      for (size_t i = 0; i < ids.size(); ++i) {
        ASSERT_NEAR(net.rate(ids[i]).Bps(), want[i], 1e-9 * want[i])
            << "seed " << seed << " step " << step << " flow " << ids[i].seq;
        ++checks;
      }
    }
  }
  EXPECT_GT(checks, 20'000);
}

TEST(FlowLocality, SpareCapacityDoesNotCoupleFlows) {
  // 50 flows, each alone on its own 1 GB/s host link, all crossing one 1000 GB/s core: the
  // core has spare capacity, so a new flow on host link 7 re-solves only the flows of host
  // link 7 (and not the other 49 through the core). Rates: 0.5 GB/s for the two on link 7.
  FlowNetwork net;
  const uint32_t core = net.add_link(Bps(1000e9));
  std::vector<uint32_t> hosts;
  for (int i = 0; i < 50; ++i) hosts.push_back(net.add_link(Bps(1e9)));
  std::vector<FlowId> ids;
  for (int i = 0; i < 50; ++i) {
    ids.push_back(net.start(Time::zero(), {hosts[i], core}, Bytes{1'000'000'000}).value());
  }
  net.next_completion();
  const uint64_t resolved = net.stats().flows_resolved;
  const FlowId extra = net.start(Time::ns(1), {hosts[7]}, Bytes{1'000'000'000}).value();
  EXPECT_EQ(net.rate(extra).Bps(), 5e8);
  EXPECT_EQ(net.rate(ids[7]).Bps(), 5e8);
  EXPECT_EQ(net.rate(ids[8]).Bps(), 1e9);
  EXPECT_EQ(net.stats().flows_resolved - resolved, 2u);
}

// ---------------------------------------------------------------------------------------------
// Two all-reduces over one oversubscribed uplink, at the flow level.
//
// Two leaves, four hosts each; each host has an up and a down link of capacity C to its leaf;
// leaf A -> leaf B and B -> A each have capacity C (4:1 oversubscribed). All-reduce k
// (k = 0, 1) is a ring over a(2k), a(2k+1), b(2k), b(2k+1): p = 4 ring edges, each carrying
// the ring all-reduce's 2(p-1)/p * S bytes as one flow. Alone, every edge has its own host
// links and is the only user of the inter-leaf link it crosses: rate C, time 2(p-1)/p S / C.
// Together, the crossing edges of both rings share each inter-leaf link: C/2 each, so each
// all-reduce (which ends with its slowest edge) takes twice as long.
struct TwoLeaves {
  FlowNetwork net;
  std::vector<uint32_t> up, down;  // per host (0-3 on leaf A, 4-7 on leaf B)
  uint32_t a_to_b = 0, b_to_a = 0;
  explicit TwoLeaves(double c) {
    for (int h = 0; h < 8; ++h) {
      up.push_back(net.add_link(Bps(c)));
      down.push_back(net.add_link(Bps(c)));
    }
    a_to_b = net.add_link(Bps(c));
    b_to_a = net.add_link(Bps(c));
  }
  std::vector<uint32_t> route(int src, int dst) const {
    if ((src < 4) == (dst < 4)) return {up[src], down[dst]};
    return {up[src], src < 4 ? a_to_b : b_to_a, down[dst]};
  }
  std::vector<FlowSpec> ring_allreduce(int k, Bytes s) const {
    const int ring[4] = {2 * k, 2 * k + 1, 4 + 2 * k, 4 + 2 * k + 1};
    const int p = 4;
    std::vector<FlowSpec> out;
    for (int i = 0; i < p; ++i) {
      out.push_back(FlowSpec{route(ring[i], ring[(i + 1) % p]),
                             Bytes{2 * (p - 1) * s.count() / p}, std::nullopt});
    }
    return out;
  }
};

TEST(FlowContention, TwoAllReducesSharingAnOversubscribedUplinkTakeTwiceAsLong) {
  const double c = 1e9;
  const Bytes s{4'000'000'000};  // 2(p-1)/p S = 6e9 bytes per edge -> 6 s alone
  TwoLeaves tl(c);
  const Time alone0 = finish_time_of(tl.net, Time::zero(), tl.ring_allreduce(0, s)).value();
  const Time alone1 = finish_time_of(tl.net, Time::zero(), tl.ring_allreduce(1, s)).value();
  EXPECT_EQ(alone0, sec(6.0));
  EXPECT_EQ(alone1, sec(6.0));

  std::map<FlowId, int> owner;
  for (int k = 0; k < 2; ++k) {
    for (const FlowSpec& f : tl.ring_allreduce(k, s)) {
      owner[tl.net.start(Time::zero(), f.path, f.size).value()] = k;
    }
  }
  std::vector<FlowCompletion> done;
  tl.net.advance_to(sec(100.0), &done);
  Time end[2] = {Time::zero(), Time::zero()};
  for (const FlowCompletion& d : done) end[owner.at(d.id)] = max(end[owner.at(d.id)], d.at);
  EXPECT_EQ(end[0], sec(12.0));
  EXPECT_EQ(end[1], sec(12.0));
  // The two inter-leaf links were the hottest: each carried 2 x 6e9 bytes, busy 12 s.
  // (Stats at 100 s: nothing moved after 12 s.)
  const std::vector<uint32_t> hot = tl.net.hottest_links(2, sec(100.0));
  EXPECT_EQ(hot, (std::vector<uint32_t>{tl.a_to_b, tl.b_to_a}));
  EXPECT_NEAR(tl.net.link_stats(tl.a_to_b, sec(100.0)).bytes, 12e9, 1.0);
  EXPECT_EQ(tl.net.link_stats(tl.a_to_b, sec(100.0)).busy, sec(12.0));
  EXPECT_NEAR(tl.net.link_stats(tl.up[0], sec(100.0)).bytes, 6e9, 1.0);
}

// ---------------------------------------------------------------------------------------------
// Degraded and failed links.

TEST(FlowFailure, DegradedLinkSlowsItsFlowsByTheComputedAmount) {
  // S at C from 0; at 0.5 s the link drops to C/2: S/2 left at C/2 -> done at 0.5 + 1 = 1.5 s.
  FlowNetwork net;
  const uint32_t l = net.add_link(Bps(1e9));
  FlowId a = net.start(Time::zero(), {l}, Bytes{1'000'000'000}).value();
  net.advance_to(sec(0.5));
  ASSERT_TRUE(net.set_capacity(sec(0.5), l, Bps(5e8)).ok());
  EXPECT_EQ(net.rate(a).Bps(), 5e8);
  EXPECT_EQ(net.next_completion(), sec(1.5));
  // Degraded before the start: S / (C/2) = 2 s.
  FlowNetwork net2;
  const uint32_t l2 = net2.add_link(Bps(1e9));
  ASSERT_TRUE(net2.set_capacity(Time::zero(), l2, Bps(5e8)).ok());
  EXPECT_EQ(finish_time_of(net2, Time::zero(), std::vector<FlowSpec>{{{l2}, Bytes{1'000'000'000}, {}}})
                .value(),
            sec(2.0));
}

TEST(FlowFailure, StartingOnAFailedLinkIsAnErrorNotACrash) {
  FlowNetwork net;
  const uint32_t l0 = net.add_link(Bps(1e9));
  const uint32_t l1 = net.add_link(Bps(1e9));
  ASSERT_TRUE(net.set_capacity(Time::zero(), l1, Bps(0)).ok());  // no flows on it yet
  Result<FlowId> f = net.start(Time::zero(), {l0, l1}, Bytes{1000});
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().to_string().find("failed"), std::string::npos) << f.status().to_string();
  EXPECT_EQ(net.active_flows(), 0u);
  // Other input errors, all reported at once.
  Result<FlowId> g = net.start(Time::zero(), {l0, l0, 7}, Bytes{-1});
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().errors().size(), 3u) << g.status().to_string();
  EXPECT_FALSE(net.start(Time::zero(), std::span<const uint32_t>{}, Bytes{1}).ok());
  EXPECT_FALSE(net.start(Time::zero(), {l0}, Bytes{1}, Bps(0)).ok());
  EXPECT_FALSE(net.cancel(Time::zero(), FlowId{}).ok());
  EXPECT_FALSE(net.set_capacity(Time::zero(), 9, Bps(1)).ok());
}

TEST(FlowFailure, LinkFailingUnderAFlowStallsItAndSaysSo) {
  // S at C from 0; fails at 0.25 s (0.75 S left); restored at 1 s: done at 1 + 0.75 = 1.75 s.
  FlowNetwork net;
  const uint32_t l = net.add_link(Bps(1e9));
  FlowId a = net.start(Time::zero(), {l}, Bytes{1'000'000'000}).value();
  net.advance_to(sec(0.25));
  Status st = net.set_capacity(sec(0.25), l, Bps(0));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.to_string().find("stall"), std::string::npos) << st.to_string();
  EXPECT_EQ(net.rate(a).Bps(), 0.0);
  EXPECT_EQ(net.next_completion(), Time::max());
  EXPECT_TRUE(net.advance_to(sec(1.0)).empty());
  ASSERT_TRUE(net.set_capacity(sec(1.0), l, Bps(1e9)).ok());
  EXPECT_EQ(net.next_completion(), sec(1.75));
}

// ---------------------------------------------------------------------------------------------
// Determinism, locality, the event driver.

std::vector<std::pair<uint64_t, int64_t>> random_run(uint64_t seed) {
  std::mt19937_64 rng(seed);
  FlowNetwork net;
  for (int l = 0; l < 40; ++l) net.add_link(Bps(unif(rng, 1e9, 50e9)));
  std::vector<std::pair<uint64_t, int64_t>> out;
  Time now = Time::zero();
  std::vector<FlowCompletion> done;
  for (int i = 0; i < 1000; ++i) {
    now = now + Time::ns(uni(rng, 0, 20'000));
    done.clear();
    net.advance_to(now, &done);
    for (const FlowCompletion& c : done) out.push_back({c.id.seq, c.at.count_ps()});
    std::vector<uint32_t> path;
    while (path.size() < 3) {
      const uint32_t l = static_cast<uint32_t>(uni(rng, 0, 39));
      if (std::find(path.begin(), path.end(), l) == path.end()) path.push_back(l);
    }
    EXPECT_TRUE(net.start(now, path, Bytes{uni(rng, 1, 1'000'000)}).ok());
  }
  done.clear();
  net.advance_to(Time::ms(10'000), &done);
  for (const FlowCompletion& c : done) out.push_back({c.id.seq, c.at.count_ps()});
  EXPECT_EQ(out.size(), 1000u);
  return out;
}

TEST(FlowDeterminism, SameSequenceGivesIdenticalCompletionTimes) {
  EXPECT_EQ(random_run(7), random_run(7));
  EXPECT_NE(random_run(7), random_run(8));
}

TEST(FlowLocality, OnlyTheTouchedComponentIsResolved) {
  // 100 disjoint links with one flow each: one batch, one solve of 100 flows. A new flow on
  // link 5 re-solves that component only: 2 flows, 1 link.
  FlowNetwork net;
  for (int l = 0; l < 100; ++l) net.add_link(Bps(1e9));
  for (uint32_t l = 0; l < 100; ++l) ASSERT_TRUE(net.start(Time::zero(), {l}, Bytes{1'000'000}).ok());
  net.next_completion();
  EXPECT_EQ(net.stats().solves, 1u);
  EXPECT_EQ(net.stats().flows_resolved, 100u);
  ASSERT_TRUE(net.start(Time::ns(1), {5}, Bytes{1'000'000}).ok());
  net.next_completion();
  EXPECT_EQ(net.stats().solves, 2u);
  EXPECT_EQ(net.stats().flows_resolved, 102u);
  EXPECT_EQ(net.stats().links_resolved, 101u);
  EXPECT_EQ(net.stats().rates_changed, 100u + 2u);  // the new flow and the one it halves
}

TEST(FlowDriver, EventLoopWithTombstonesGivesTheClosedFormTimes) {
  // The halfway example driven through the EventQueue: start events at 0 and 0.5 s; the
  // network's completion event for A (first scheduled at 1 s) is superseded at 0.5 s (-> 1.5 s):
  // the 1 s event pops as a tombstone and is ignored.
  constexpr uint8_t kEvStart = 1, kEvFlow = 2;
  EventQueue q;
  FlowNetwork net;
  const uint32_t l = net.add_link(Bps(1e9));
  FlowEventDriver drv(net, q, /*phase=*/0, kEvFlow);
  q.push(Time::zero(), 0, kEvStart, 0, 0);
  q.push(sec(0.5), 0, kEvStart, 1, 0);
  std::vector<FlowCompletion> all, done;
  while (!q.empty()) {
    const Event e = q.pop();
    if (e.type == kEvStart) {
      ASSERT_TRUE(net.start(e.when, {l}, Bytes{1'000'000'000}).ok());
      drv.sync();
    } else if (e.type == kEvFlow) {
      done.clear();
      if (drv.on_event(e, &done)) all.insert(all.end(), done.begin(), done.end());
    }
  }
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].at, sec(1.5));
  EXPECT_EQ(all[1].at, sec(2.0));
  EXPECT_EQ(drv.stale_events(), 1u);
  EXPECT_EQ(drv.events_pushed(), 3u);  // 1 s (stale), 1.5 s, 2.0 s
}

TEST(FlowBatch, ACollectivesFlowsStartingTogetherAreOneSolve) {
  FlowNetwork net;
  const uint32_t core = net.add_link(Bps(100e9));
  std::vector<uint32_t> hosts;
  for (int i = 0; i < 1000; ++i) hosts.push_back(net.add_link(Bps(1e9)));
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(net.start(Time::zero(), {hosts[i], core}, Bytes{1'000'000}).ok());
  }
  // 1000 flows on a 100 GB/s core: 0.1 GB/s each (the core, not the 1 GB/s host links, binds).
  EXPECT_EQ(net.next_completion(), transfer_time(Bytes{1'000'000}, Bps(1e8)));
  EXPECT_EQ(net.stats().solves, 1u);
  std::vector<FlowCompletion> done;
  net.advance_to(net.next_completion(), &done);
  EXPECT_EQ(done.size(), 1000u);
  for (size_t i = 1; i < done.size(); ++i) EXPECT_LT(done[i - 1].id, done[i].id);
}

}  // namespace
}  // namespace trainsim
