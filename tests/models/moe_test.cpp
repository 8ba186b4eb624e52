// Mixture-of-experts: routing draws (models/moe.h), the expert-parallel plan (models/compiler.h)
// and its replay. Closed-form checks first, then oracles (fast == full, MoE(1 expert) == dense).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <string>

#include "calibrate/cost_model.h"
#include "models/compiler.h"
#include "models/memory.h"
#include "models/moe.h"
#include "scenarios/predict.h"
#include "sim/replay.h"

#include "tests/models/moe_fixtures.h"

namespace trainsim {
namespace {

using testing::small_moe;
Scenario make(const ModelSpec& m, int tp, int pp, int dp, int ep, int micro_batches, int seq = 1024) {
  return testing::moe_scenario(m, tp, pp, dp, ep, micro_batches, seq);
}

using testing::run;

// ---- routing draws -------------------------------------------------------------------------

TEST(MoeRouting, BalancedIsExactMean) {
  MoeRoutingSpec r;   // balanced
  MoeDraw d = draw_moe_layer(r, 8, 2, 4, 1000, 0, 3, 5);
  EXPECT_EQ(d.routed, 4 * 1000 * 2);
  for (int64_t x : d.expert_rows) EXPECT_EQ(x, 1000);   // 8000 / 8
  EXPECT_EQ(d.max_rank_rows, 2000);                     // 2 experts per rank
  EXPECT_DOUBLE_EQ(d.imbalance, 1.0);
  EXPECT_EQ(d.dropped, 0);
}

// Histogram weights [1,1,1,5] over 4 experts, one expert per EP rank: the hot rank gets 5/8 of
// the copies, the mean is 1/4, so max/mean = (5/8)/(1/4) = 2.5 (a multinomial draw of 32768
// copies: sd of the hot count = sqrt(N*5/8*3/8) ~ 88 copies = 0.4%; we allow 2%).
TEST(MoeRouting, ImbalanceOnKnownHistogram) {
  MoeRoutingSpec r;
  r.kind = MoeRouting::kHistogram;
  r.histogram = {1, 1, 1, 5};
  for (int layer = 0; layer < 4; ++layer) {
    MoeDraw d = draw_moe_layer(r, 4, 2, 4, 4096, 0, layer, 0);
    EXPECT_EQ(d.routed, 32768);
    EXPECT_NEAR(d.imbalance, 2.5, 0.05) << "layer " << layer;
    int64_t sum = 0;
    for (int64_t x : d.expert_rows) sum += x;
    EXPECT_EQ(sum, d.routed);
  }
  // Capacity factor 1: every expert capped at N/4 = 8192 copies. The hot expert loses ~5/8-1/4
  // = 3/8 of all copies, the others are under capacity, so the busiest rank holds exactly N/4.
  MoeDraw c = draw_moe_layer(r, 4, 2, 4, 4096, 1.0, 0, 0);
  EXPECT_EQ(c.max_rank_rows, 8192);
  EXPECT_DOUBLE_EQ(c.imbalance, 1.0);
  EXPECT_NEAR(static_cast<double>(c.dropped) / c.routed, 3.0 / 8.0, 0.01);
}

TEST(MoeRouting, ZipfSkewRaisesImbalanceAndSeedsAreDeterministic) {
  MoeRoutingSpec u;
  u.kind = MoeRouting::kUniform;
  u.seed = 7;
  MoeRoutingSpec z = u;
  z.kind = MoeRouting::kZipf;
  z.skew = 1.2;
  const auto a = draw_expert_loads(u, 64, 100000, 2, 1);
  const auto b = draw_expert_loads(u, 64, 100000, 2, 1);
  EXPECT_EQ(a, b);                                   // same seed, same stream name
  EXPECT_NE(a, draw_expert_loads(u, 64, 100000, 2, 2));  // another micro-batch
  MoeRoutingSpec u2 = u;
  u2.seed = 8;
  EXPECT_NE(a, draw_expert_loads(u2, 64, 100000, 2, 1));  // another seed
  const MoeDraw du = draw_moe_layer(u, 64, 8, 8, 4096, 0, 0, 0);
  const MoeDraw dz = draw_moe_layer(z, 64, 8, 8, 4096, 0, 0, 0);
  EXPECT_LT(du.imbalance, 1.05);   // 8 ranks x 32768 copies: multinomial noise ~0.5%
  EXPECT_GT(dz.imbalance, 1.3);    // the hottest zipf(1.2) expert alone holds ~20% of copies
}

// Oracle: MoeRouter (the compiler's fast path: cached tables, no allocation per draw, several
// draws side by side, and at kBusiestRank a chain that stops once the ranks left cannot be the
// busiest) against draw_moe_layer, the plain implementation, on random specs. Token counts
// span both binomial samplers (inversion for small means, BTRD above) and capacity factors
// that drop copies. kRanks and kExperts must match exactly; kBusiestRank's figures too (it
// differs only in an event of probability < 2^-64 per draw, which these seeds do not hit).
TEST(MoeRouting, RouterEqualsDrawMoeLayerOnRandomInputs) {
  std::mt19937_64 rng(20240611);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int checked = 0, skewed = 0;
  for (int trial = 0; trial < 300; ++trial) {
    MoeRoutingSpec r;
    r.kind = static_cast<MoeRouting>(pick(0, 3));
    r.seed = rng();
    const int ep = 1 << pick(0, 3);
    const int experts = ep * pick(1, 8);
    const int top_k = pick(1, std::min(experts, 4));
    if (r.kind == MoeRouting::kZipf) r.skew = std::uniform_real_distribution<double>(0.05, 3.0)(rng);
    if (r.kind == MoeRouting::kHistogram) {
      r.histogram.resize(experts);
      for (double& w : r.histogram) w = pick(0, 3) == 0 ? 0.0 : std::uniform_real_distribution<double>(0.1, 10)(rng);
    }
    const int64_t tokens = pick(0, 1) ? pick(1, 200) : pick(1000, 50000);
    const double cf = pick(0, 2) == 0 ? std::uniform_real_distribution<double>(0.5, 2.0)(rng) : 0.0;
    const int layer = pick(0, 60), pod = pick(0, 2) == 0 ? 0 : pick(1, 12), slice = pick(0, 3) == 0 ? pick(1, 3) : 0;
    const int micro0 = pick(-1, 5), count = pick(1, 9);
    for (MoeDetail detail : {MoeDetail::kBusiestRank, MoeDetail::kRanks, MoeDetail::kExperts}) {
      MoeRouter router(r, experts, top_k, ep, tokens, cf, detail);
      const bool experts_drawn = detail == MoeDetail::kExperts || cf > 0;
      const bool ranks_drawn = detail != MoeDetail::kBusiestRank || cf > 0;
      std::vector<MoeDraw> many(count);
      router.draw_micros(layer, micro0, count, pod, many.data(), slice);
      for (int j = 0; j < count; ++j) {
        const MoeDraw want = draw_moe_layer(r, experts, top_k, ep, tokens, cf, layer, micro0 + j, pod, slice);
        MoeDraw one;
        router.draw(layer, micro0 + j, pod, &one, slice);
        for (const MoeDraw* got : {&one, &many[j]}) {
          if (experts_drawn) ASSERT_EQ(got->expert_rows, want.expert_rows) << "trial " << trial << " micro " << micro0 + j;
          else EXPECT_TRUE(got->expert_rows.empty());
          if (ranks_drawn) ASSERT_EQ(got->rank_rows, want.rank_rows) << "trial " << trial << " micro " << micro0 + j;
          else EXPECT_TRUE(got->rank_rows.empty());
          EXPECT_EQ(got->routed, want.routed);
          EXPECT_EQ(got->dropped, want.dropped);
          ASSERT_EQ(got->max_rank_rows, want.max_rank_rows) << "trial " << trial << " micro " << micro0 + j;
          EXPECT_EQ(got->imbalance, want.imbalance);   // same arithmetic: bit-identical
        }
        ++checked;
        skewed += want.imbalance > 1.05 ? 1 : 0;
      }
    }
  }
  EXPECT_GT(checked, 3000);
  EXPECT_GT(skewed, 300);   // the busiest-rank shortcut was exercised on skewed draws too
}

// The rank totals (step 1) do not depend on whether experts are split (step 2, its own stream),
// and the split sums to each rank's total.
TEST(MoeRouting, ExpertSplitKeepsRankTotals) {
  MoeRoutingSpec r;
  r.kind = MoeRouting::kZipf;
  r.skew = 1.1;
  r.seed = 99;
  MoeRouter ranks(r, 64, 8, 8, 4096, 0, MoeDetail::kRanks), experts(r, 64, 8, 8, 4096, 0, MoeDetail::kExperts);
  for (int micro = 0; micro < 20; ++micro) {
    MoeDraw a, b;
    ranks.draw(5, micro, 0, &a);
    experts.draw(5, micro, 0, &b);
    ASSERT_EQ(a.rank_rows, b.rank_rows);
    for (int k = 0; k < 8; ++k) {
      int64_t sum = 0;
      for (int e = 8 * k; e < 8 * k + 8; ++e) sum += b.expert_rows[e];
      EXPECT_EQ(sum, b.rank_rows[k]);
    }
  }
}

// Chi-square statistic of `counts` (value -> times drawn, `draws` in all) against Binomial(n, p),
// over the values with expected count >= 5 and one bin each for the two tails.
// pmf(k) = C(n, k) p^k (1-p)^(n-k), through lgamma.
struct ChiSquare {
  double stat = 0;
  int dof = 0;
  // Critical value at significance ~1e-6 (Wilson-Hilferty, z = 4.75).
  double critical() const {
    const double d = dof, h = 2.0 / (9 * d);
    return d * std::pow(1 - h + 4.75 * std::sqrt(h), 3);
  }
};
ChiSquare chi_square(const std::map<int64_t, int64_t>& counts, int64_t draws, int64_t n, double p) {
  auto pmf = [&](int64_t k) {
    return std::exp(std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0) + k * std::log(p) +
                    (n - k) * std::log1p(-p));
  };
  const double mean = n * p, sd = std::sqrt(n * p * (1 - p));
  int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(mean - 8 * sd)), hi = std::min<int64_t>(n, static_cast<int64_t>(mean + 8 * sd) + 1);
  while (lo < hi && pmf(lo) * draws < 5) ++lo;
  while (hi > lo && pmf(hi) * draws < 5) --hi;
  ChiSquare c;
  // Expected probabilities of k < lo and k > hi (beyond 20 sd the pmf is below 1e-80).
  double tail_lo = 0, tail_hi = 0;
  const int64_t far = static_cast<int64_t>(20 * sd) + 20;
  for (int64_t k = std::max<int64_t>(0, lo - far); k < lo; ++k) tail_lo += pmf(k);
  for (int64_t k = hi + 1; k <= std::min(n, hi + far); ++k) tail_hi += pmf(k);
  int64_t obs_lo = 0, obs_hi = 0;
  for (const auto& [k, v] : counts) {
    if (k < lo) obs_lo += v;
    if (k > hi) obs_hi += v;
  }
  auto add = [&](double expect_p, int64_t obs) {
    const double e = expect_p * draws;
    c.stat += (obs - e) * (obs - e) / e;
    ++c.dof;
  };
  for (int64_t k = lo; k <= hi; ++k) {
    auto it = counts.find(k);
    add(pmf(k), it == counts.end() ? 0 : it->second);
  }
  if (tail_lo * draws >= 1) add(tail_lo, obs_lo);
  if (tail_hi * draws >= 1) add(tail_hi, obs_hi);
  c.dof -= 1;
  return c;
}

// draw_binomial is exact: chi-square against the binomial pmf passes for both samplers
// (inversion below a mode of 11, BTRD above, p > 1/2 by symmetry), and the same test rejects
// the same draws against a pmf whose mean is off by under one standard deviation, so it can fail.
TEST(MoeRouting, BinomialMatchesPmf) {
  struct Case { int64_t n; double p, wrong_p; };
  const Case cases[] = {
      {20, 0.3, 0.33},                 // inversion (mode 6)
      {5000, 0.0015, 0.0017},          // inversion, large n
      {60, 0.25, 0.27},                // BTRD, mode 15, |k - m| <= 15 recursion
      {300, 0.6, 0.61},                // BTRD through 1 - p
      {40000, 0.03, 0.0304},           // BTRD, squeeze and Stirling tests
      {2097152, 1.0 / 64, 1.0 / 64 * 1.003},   // DeepSeek-V3's first rank: mean 32768, sd 180
  };
  SplitMix64 g(12345, "test/binomial");
  constexpr int64_t kDraws = 200000;
  for (const Case& c : cases) {
    std::map<int64_t, int64_t> counts;
    double sum = 0;
    for (int64_t i = 0; i < kDraws; ++i) {
      const int64_t k = draw_binomial(g, c.n, c.p);
      ASSERT_GE(k, 0);
      ASSERT_LE(k, c.n);
      ++counts[k];
      sum += k;
    }
    const ChiSquare ok = chi_square(counts, kDraws, c.n, c.p);
    EXPECT_LT(ok.stat, ok.critical()) << "n " << c.n << " p " << c.p << " dof " << ok.dof;
    EXPECT_GT(ok.dof, 5);
    const ChiSquare bad = chi_square(counts, kDraws, c.n, c.wrong_p);
    EXPECT_GT(bad.stat, bad.critical()) << "n " << c.n << " wrong p " << c.wrong_p;
    // The mean within 5 standard errors: sqrt(n p (1-p) / draws).
    EXPECT_NEAR(sum / kDraws, c.n * c.p, 5 * std::sqrt(c.n * c.p * (1 - c.p) / kDraws)) << "n " << c.n;
  }
  EXPECT_EQ(draw_binomial(g, 0, 0.5), 0);
  EXPECT_EQ(draw_binomial(g, 10, 0.0), 0);
  EXPECT_EQ(draw_binomial(g, 10, 1.0), 10);
}

// The rank-first draw is a multinomial over experts: E[X_e] = N p_e, Var[X_e] = N p_e (1 - p_e),
// Cov[X_e, X_f] = -N p_e p_f, for experts on the same rank and on different ranks. 20,000 draws
// of N = 400 copies over 8 experts on 4 ranks (histogram weights, so ranks are unequal); each
// moment within 5 of its standard errors (the variance's: Var * sqrt(2 / draws), the
// covariance's: sqrt((Var_e Var_f + Cov^2) / draws), normal-theory).
TEST(MoeRouting, RankFirstDrawIsMultinomial) {
  MoeRoutingSpec r;
  r.kind = MoeRouting::kHistogram;
  r.histogram = {8, 1, 3, 2, 5, 5, 0.5, 7};
  r.seed = 4;
  const int E = 8, ep = 4, layer = 2;
  const int64_t N = 400;
  constexpr int kDraws = 20000;
  std::vector<double> mean(E, 0), m2(E, 0);
  double cross_same = 0, cross_diff = 0;   // sums of X_0 X_1 (same rank) and X_0 X_2 (ranks 0, 1)
  for (int i = 0; i < kDraws; ++i) {
    const auto x = draw_expert_loads(r, E, N, layer, i, 0, 0, ep);
    int64_t total = 0;
    for (int e = 0; e < E; ++e) {
      mean[e] += x[e];
      m2[e] += static_cast<double>(x[e]) * x[e];
      total += x[e];
    }
    ASSERT_EQ(total, N);
    cross_same += static_cast<double>(x[0]) * x[1];
    cross_diff += static_cast<double>(x[0]) * x[2];
  }
  // Expert ids are permuted per layer (models/moe.h): each expert's weight is the histogram entry
  // nearest its mean (the entries' means are >= 6 copies apart, their standard errors ~0.05).
  std::vector<double> w = r.histogram;
  double wsum = 0;
  for (double v : w) wsum += v;
  std::vector<double> p(E);
  std::vector<bool> used(E, false);
  for (int e = 0; e < E; ++e) {   // match each expert's mean to the nearest unused weight
    int best = -1;
    for (int i = 0; i < E; ++i)
      if (!used[i] && (best < 0 || std::fabs(w[i] / wsum * N - mean[e] / kDraws) < std::fabs(w[best] / wsum * N - mean[e] / kDraws)))
        best = i;
    used[best] = true;
    p[e] = w[best] / wsum;
  }
  for (int e = 0; e < E; ++e) {
    const double m = mean[e] / kDraws, var = m2[e] / kDraws - m * m;
    const double want_var = N * p[e] * (1 - p[e]);
    EXPECT_NEAR(m, N * p[e], 5 * std::sqrt(want_var / kDraws)) << "expert " << e;
    EXPECT_NEAR(var, want_var, 5 * want_var * std::sqrt(2.0 / kDraws) + 1e-9) << "expert " << e;
  }
  auto cov_check = [&](double cross, int e, int f, const char* what) {
    const double cov = cross / kDraws - (mean[e] / kDraws) * (mean[f] / kDraws);
    const double want = -N * p[e] * p[f];
    const double ve = N * p[e] * (1 - p[e]), vf = N * p[f] * (1 - p[f]);
    EXPECT_NEAR(cov, want, 5 * std::sqrt((ve * vf + want * want) / kDraws)) << what;
  };
  cov_check(cross_same, 0, 1, "experts 0 and 1 (rank 0)");
  cov_check(cross_diff, 0, 2, "experts 0 and 2 (ranks 0 and 1)");
}

// ---- the plan --------------------------------------------------------------------------------

// Closed form: with balanced routing each rank sends and receives top_k * T * h bf16 elements
// per all-to-all: S = 2 B * top_k * (b*s) * h. Four all-to-alls per MoE layer and micro-batch
// (dispatch, combine, and their gradients), on the EP group of `ep` ranks.
TEST(MoeCompiler, AllToAllVolumesClosedForm) {
  const Scenario s = make(small_moe(8, 2), 1, 1, 8, 4, 2, 2048);
  auto c = compile_plan(s.model, s.training, s.parallel, 8);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  const Plan& plan = c.value().plan;
  ASSERT_GT(plan.groups.size(), kGroupExpertDp);
  EXPECT_EQ(plan.groups[kGroupEp].name, "ep");
  EXPECT_EQ(plan.groups[kGroupEp].instances(), 2u);     // 8 DP ranks / ep 4
  EXPECT_EQ(plan.groups[kGroupEp].size_of(0), 4u);
  EXPECT_EQ(plan.groups[kGroupExpertDp].size_of(0), 2u);  // dp / ep
  // EP group 0 = the first 4 consecutive ranks of the DP group; expert-DP = equal offsets.
  for (uint32_t k = 0; k < 4; ++k) EXPECT_EQ(plan.groups[kGroupEp].members[k], k);
  EXPECT_EQ(plan.groups[kGroupExpertDp].members[0], 0u);
  EXPECT_EQ(plan.groups[kGroupExpertDp].members[1], 4u);
  int a2a = 0;
  for (const Task& t : plan.programs[0].tasks) {
    const OpDesc& op = plan.ops[t.op];
    if (op.cls != OpClass::kCollective || op.coll != CollKind::kAllToAll) continue;
    ++a2a;
    EXPECT_EQ(op.bytes.count(), 2LL * 2 * 2048 * 1024) << op.name;
    EXPECT_EQ(t.group, kGroupEp);
    EXPECT_EQ(t.category, Category::kEpComm);
    EXPECT_EQ(t.stream, kStreamCompute);
  }
  EXPECT_EQ(a2a, 4 * 4 * 2);   // 4 per layer and micro-batch, 4 layers, 2 micro-batches
  // Expert grads reduced over the expert-DP group, dense ones over DP.
  bool expert_red = false;
  for (const Task& t : plan.programs[0].tasks)
    if (t.kind == TaskKind::kCollective && t.group == kGroupExpertDp) expert_red = true;
  EXPECT_TRUE(expert_red);
}

// With a skewed draw the all-to-all carries the busiest rank's rows: S = 2 B * h * max_rank_rows,
// and the grouped GEMM has batch = local experts and m = ceil(max_rank_rows / local experts).
TEST(MoeCompiler, BusiestRankSetsAllToAllAndGroupedGemm) {
  Scenario s = make(small_moe(8, 2), 1, 1, 8, 4, 1, 2048);
  s.training.moe.kind = MoeRouting::kZipf;
  s.training.moe.skew = 1.0;
  s.training.moe.seed = 3;
  auto c = compile_plan(s.model, s.training, s.parallel, 8);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  const Plan& plan = c.value().plan;
  for (int layer = 0; layer < 4; ++layer) {
    MoeDraw d = draw_moe_layer(s.training.moe, 8, 2, 4, 2048, 0, layer, 0);
    bool seen_a2a = false, seen_gemm = false;
    for (const Task& t : plan.programs[0].tasks) {
      if (t.layer != layer) continue;
      const OpDesc& op = plan.ops[t.op];
      if (op.name == "ep.dispatch.alltoall") {
        EXPECT_EQ(op.bytes.count(), 2LL * 1024 * std::max<int64_t>(d.max_rank_rows, 2 * 2048));
        seen_a2a = true;
      }
      if (op.name == "moe.expert.fc1.fwd") {
        EXPECT_EQ(op.batch, 2);   // 8 experts / ep 4
        EXPECT_EQ(op.m, (d.max_rank_rows + 1) / 2);
        seen_gemm = true;
      }
    }
    EXPECT_TRUE(seen_a2a && seen_gemm) << "layer " << layer;
    EXPECT_GT(d.imbalance, 1.0);
  }
  EXPECT_GT(c.value().moe.imbalance_mean, 1.0);
}

// EP=1, one expert, top-1, expert ffn = the dense ffn: the expert GEMMs have exactly the dense
// MLP's FLOPs, and model FLOPs differ by exactly the router GEMMs (fwd, dgrad, wgrad:
// 3 * 2*T*h*experts per layer and micro-batch). The step (dp=1, pp=1: one serial compute
// stream) differs by exactly the router/top-k/permute/unpermute task times plus the optimizer
// difference (the router's h parameters per layer).
TEST(MoeCompiler, OneExpertTopOneEqualsDenseMlp) {
  ModelSpec moe = small_moe(1, 1);
  ModelSpec dense = moe;
  dense.arch = "dense";
  dense.experts = dense.top_k = dense.expert_ffn_hidden = 0;
  const Scenario sm = make(moe, 1, 1, 1, 1, 2, 1024);
  const Scenario sd = make(dense, 1, 1, 1, 1, 2, 1024);
  const Prediction pm = run(sm), pd = run(sd);
  auto flops_of = [](const Plan& plan, const std::string& prefix) {
    double f = 0;
    for (const Task& t : plan.programs[0].tasks) {
      const OpDesc& op = plan.ops[t.op];
      if (op.name.rfind(prefix, 0) == 0) f += op.flops.v;
    }
    return f;
  };
  EXPECT_GT(flops_of(*pd.plan, "mlp.fc"), 0);
  EXPECT_DOUBLE_EQ(flops_of(*pm.plan, "moe.expert.fc"), flops_of(*pd.plan, "mlp.fc"));
  const double T = 1024, h = 1024;
  const double router = 4 /*layers*/ * 2 /*micro*/ * 3 * 2 * T * h * 1;
  EXPECT_DOUBLE_EQ(pm.plan->programs[0].model_flops.v - pd.plan->programs[0].model_flops.v, router);
  int64_t extra = 0, opt_m = 0, opt_d = 0;
  for (const Task& t : pm.plan->programs[0].tasks) {
    const std::string& n = pm.plan->ops[t.op].name;
    for (const char* p : {"moe.router", "moe.topk", "moe.permute", "moe.unpermute"})
      if (n.rfind(p, 0) == 0) extra += t.dur.count_ps();
    if (n == "optimizer.adam") opt_m = t.dur.count_ps();
    EXPECT_NE(pm.plan->ops[t.op].coll == CollKind::kAllToAll && pm.plan->ops[t.op].cls == OpClass::kCollective, true);
  }
  for (const Task& t : pd.plan->programs[0].tasks)
    if (pd.plan->ops[t.op].name == "optimizer.adam") opt_d = t.dur.count_ps();
  EXPECT_GT(extra, 0);
  EXPECT_EQ(pm.step_time.count_ps() - pd.step_time.count_ps(), extra + (opt_m - opt_d));
}

TEST(MoeCompiler, SameSeedSameFingerprintOtherSeedOtherDraws) {
  Scenario s = make(small_moe(8, 2), 1, 2, 4, 4, 4, 1024);
  s.training.moe.kind = MoeRouting::kUniform;
  s.training.moe.seed = 11;
  const Prediction a = run(s), b = run(s);
  EXPECT_EQ(a.fingerprint, b.fingerprint);
  EXPECT_EQ(a.step_time.count_ps(), b.step_time.count_ps());
  Scenario s2 = s;
  s2.training.moe.seed = 12;
  const Prediction c = run(s2);
  EXPECT_NE(a.moe.imbalance_mean, c.moe.imbalance_mean);
  EXPECT_NE(a.fingerprint, c.fingerprint);
}

TEST(MoeCompiler, ImbalanceCostIsStepMinusBalancedStep) {
  Scenario s = make(small_moe(8, 2), 1, 1, 8, 8, 2, 2048);
  s.training.moe.kind = MoeRouting::kZipf;
  s.training.moe.skew = 1.5;
  const Prediction p = run(s);
  ASSERT_TRUE(p.moe.present);
  Scenario b = s;
  b.training.moe.kind = MoeRouting::kBalanced;
  const Prediction pb = run(b);
  EXPECT_EQ(p.moe.balanced_step_time.count_ps(), pb.step_time.count_ps());
  EXPECT_EQ(p.moe.imbalance_cost.count_ps(), p.step_time.count_ps() - pb.step_time.count_ps());
  EXPECT_GT(p.moe.imbalance_cost.count_ps(), 0);
  EXPECT_GT(p.moe.imbalance_max, p.moe.imbalance_mean - 1e-12);
  EXPECT_EQ(pb.moe.imbalance_cost.count_ps(), 0);
  EXPECT_DOUBLE_EQ(pb.moe.imbalance_mean, 1.0);
}

// MoE with context parallelism: each CP rank routes its seq/cp tokens (all-to-all bytes and
// expert rows shrink by cp), expert gradients reduce over dp/ep x cp ranks, and fast mode
// still equals full mode.
TEST(MoeCompiler, ContextParallelSplitsTokensAndJoinsExpertGradients) {
  Scenario a = make(small_moe(8, 2), 1, 1, 4, 2, 2, 2048);
  Scenario b = a;
  b.parallel.cp = 2;
  b.cluster.gpus = a.cluster.gpus * 2;
  b.cluster.gpus_per_node = 8;
  auto ca = compile_plan(a.model, a.training, a.parallel, a.cluster.gpus_per_node);
  auto cb = compile_plan(b.model, b.training, b.parallel, b.cluster.gpus_per_node);
  ASSERT_TRUE(ca.ok() && cb.ok()) << cb.status().to_string();
  auto a2a_bytes = [](const Plan& plan) {
    int64_t sum = 0;
    for (const Task& t : plan.programs[0].tasks)
      if (t.category == Category::kEpComm) sum += plan.ops[t.op].bytes.count();
    return sum;
  };
  EXPECT_EQ(a2a_bytes(ca->plan) / 2, a2a_bytes(cb->plan));   // balanced routing: exactly half
  EXPECT_EQ(ca->plan.groups[kGroupExpertDp].size_of(0) * 2, cb->plan.groups[kGroupExpertDp].size_of(0));
  EXPECT_EQ(ca->plan.groups[kGroupEp].size_of(0), cb->plan.groups[kGroupEp].size_of(0));
  b.training.moe.kind = MoeRouting::kZipf;
  b.training.moe.skew = 1.0;
  EXPECT_EQ(run(b).step_time.count_ps(), run(b, true).step_time.count_ps());
}

// Pods (dp/ep groups of ep pipelines) draw their own routing; the program follows the pod whose
// busiest-rank rows sum highest. Balanced routing or a single pod: pod 0, spread 1.
TEST(MoeCompiler, StragglerPodHasTheMostBusiestRankRows) {
  Scenario s = make(small_moe(8, 2), 1, 1, 8, 2, 3, 1024);   // 4 pods of 2 pipelines
  s.training.moe.kind = MoeRouting::kZipf;
  s.training.moe.skew = 0.8;
  auto c = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->moe.pods, 4);
  std::vector<int64_t> total(4, 0);
  for (int g = 0; g < 4; ++g)
    for (int l = 0; l < s.model.layers; ++l)
      for (int mi = 0; mi < 3; ++mi) total[g] += draw_moe_layer(s.training.moe, 8, 2, 2, 1024, 0, l, mi, g).max_rank_rows;
  const int pod = c->moe.straggler_pod;
  for (int g = 0; g < 4; ++g) EXPECT_GE(total[pod], total[g]) << g;
  EXPECT_NE(total[0], total[1]);   // pods really draw differently
  EXPECT_GT(c->moe.pod_spread, 1.0);
  EXPECT_DOUBLE_EQ(c->moe.pod_spread, 4.0 * total[pod] / (total[0] + total[1] + total[2] + total[3]));
  s.training.moe.kind = MoeRouting::kBalanced;
  auto b = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->moe.straggler_pod, 0);
  EXPECT_DOUBLE_EQ(b->moe.pod_spread, 1.0);
}

// Token slices (models/moe.h): with etp = 1 < tp each TP rank routes its own 1/tp of the tokens
// into its own EP group, so a pod draws one stream per slice and the busiest slice sets each
// layer's rows; with experts TP-split (etp = tp) the TP ranks route the same tokens: one slice.
TEST(MoeCompiler, TokenSlicesRouteTheirOwnTokens) {
  Scenario s = make(small_moe(8, 2), 2, 1, 4, 2, 3, 1024);   // tp 2, dp 4, ep 2: 2 pods
  s.parallel.etp = 1;
  s.parallel.sequence_parallel = true;
  s.training.moe.kind = MoeRouting::kZipf;
  s.training.moe.skew = 0.8;
  auto c = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->moe.slices, 2);
  ASSERT_EQ(c->moe.pods, 2);
  const int64_t tm = 1024 / 2;
  std::vector<int64_t> total(2, 0);
  std::vector<std::vector<MoeDraw>> best(2);
  bool slices_differ = false;
  for (int g = 0; g < 2; ++g)
    for (int l = 0; l < s.model.layers; ++l)
      for (int mi = 0; mi < 3; ++mi) {
        const MoeDraw a = draw_moe_layer(s.training.moe, 8, 2, 2, tm, 0, l, mi, g, 0);
        const MoeDraw b = draw_moe_layer(s.training.moe, 8, 2, 2, tm, 0, l, mi, g, 1);
        slices_differ |= a.expert_rows != b.expert_rows;
        const MoeDraw& w = b.max_rank_rows > a.max_rank_rows ? b : a;
        total[g] += w.max_rank_rows;
        best[g].push_back(w);
      }
  EXPECT_TRUE(slices_differ);   // the slices really draw their own tokens
  const int pod = total[1] > total[0] ? 1 : 0;
  EXPECT_EQ(c->moe.straggler_pod, pod);
  double mean = 0;
  for (const MoeDraw& w : best[pod]) mean += w.imbalance;
  EXPECT_DOUBLE_EQ(c->moe.imbalance_mean, mean / static_cast<double>(best[pod].size()));
  // Experts split over TP: the TP ranks route the same (gathered) tokens, one slice.
  s.parallel.etp = 2;
  auto e = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_EQ(e->moe.slices, 1);
}

TEST(MoeCompiler, BadConfigsAreErrors) {
  auto err = [](const Scenario& s) {
    auto c = compile_plan(s.model, s.training, s.parallel, 8);
    return c.ok() ? std::string() : c.status().to_string();
  };
  EXPECT_NE(err(make(small_moe(6, 2), 1, 1, 8, 4, 1)).find("does not divide experts=6"), std::string::npos);
  EXPECT_NE(err(make(small_moe(8, 2), 1, 1, 6, 4, 1)).find("does not divide dp=6"), std::string::npos);
  EXPECT_NE(err(make(small_moe(4, 8), 1, 1, 4, 4, 1)).find("top_k=8"), std::string::npos);
  Scenario dense = make(small_moe(8, 2), 1, 1, 4, 4, 1);
  dense.model.arch = "dense";
  EXPECT_NE(err(dense).find("needs a MoE model"), std::string::npos);
  // HSDP (tests/models/moe_hsdp_test.cpp): ep = 8 of dp = 8 leaves expert-DP groups of one
  // rank, which two dense replicas (shard group 4) cannot split.
  Scenario hsdp = make(small_moe(8, 2), 1, 1, 8, 8, 1);
  hsdp.parallel.zero = 3;
  hsdp.parallel.fsdp_shard_group = 4;
  EXPECT_NE(err(hsdp).find("same number of ranks in each of the dp/fsdp_shard_group=2 replicas"), std::string::npos)
      << err(hsdp);
}

// Memory: routed experts are divided over EP; their optimizer states over the expert-DP group.
TEST(MoeMemory, ExpertsShardedOverEpAndExpertDp) {
  ModelSpec m = small_moe(8, 2);
  Scenario s1 = make(m, 1, 1, 8, 1, 1), s8 = make(m, 1, 1, 8, 8, 1);
  s1.parallel.zero = s8.parallel.zero = 1;
  auto c1 = compile_plan(s1.model, s1.training, s1.parallel, 8);
  auto c8 = compile_plan(s8.model, s8.training, s8.parallel, 8);
  ASSERT_TRUE(c1.ok() && c8.ok());
  const int64_t e = 4 * int64_t{8} * expert_params(m);   // all routed experts of 4 layers
  EXPECT_EQ(c1.value().stages[0].params_local - c8.value().stages[0].params_local, e - e / 8);
  const MemoryStatic& a = c1.value().plan.programs[0].mem;
  const MemoryStatic& b = c8.value().plan.programs[0].mem;
  EXPECT_EQ(a.params.count() - b.params.count(), 2 * (e - e / 8));
  // zero 1: ep=1 shards all Adam states over 8; ep=8 shards expert states over 8/8 = 1.
  const int64_t dense = c8.value().stages[0].params_local - e / 8;
  EXPECT_EQ(b.optimizer.count(), (12 * dense + 7) / 8 + 12 * (e / 8));
}

// ZeRO-3 with MoE (Megatron-Core FSDP, torchtitan): a layer's dense part is sharded over the dp
// shard group, its routed experts over the expert-DP group (here dp/ep = 8/4 = 2 ranks). Per
// micro-batch each unit is gathered before its forward and before its backward (a full
// recompute runs inside the backward on the backward's gather, as with dense ZeRO-3), and its
// gradients are reduce-scattered after its backward. Per rank and step, with m micro-batches,
// Le = experts/ep local experts, Pe = expert_params and Pd(l) = the layer's dense params / tp:
//   expert-DP all-gather bytes    = m * 2 uses * sum over MoE layers 2 B * Le * Pe
//   expert-DP reduce-scatter bytes = m * sum over MoE layers 2 B * Le * Pe
//   dp all-gather bytes           = m * 2 * (2 B * (sum Pd(l) + embedding) + head unit)
//   dp reduce-scatter bytes       = m * (2 B * (sum Pd(l) + embedding) + head unit)
// and no ZeRO-1/2 gradient buckets (every reduction belongs to a unit: layer != 0xffff for the
// experts). The expert GEMMs wait for the experts' gather: on the gather stream per layer, or
// per tensor on the compute stream (zero3_gather "tensor": the same bytes at tp = etp = 1; the
// dense tensors on the "dp-gather-tensor" group, counted here with the dp gathers).
TEST(MoeCompiler, ZeroThreeGathersExpertsOverExpertDpClosedForm) {
  for (ZeroGather zg : {ZeroGather::kLayer, ZeroGather::kTensor})
  for (Recompute rc : {Recompute::kNone, Recompute::kFull}) {
    ModelSpec m = small_moe(8, 2);
    m.dense_layers = 1;   // layer 0 dense: no expert collectives
    m.shared_experts = 1;
    const int micro = 2;
    Scenario s = make(m, 1, 1, 8, 4, micro);
    s.parallel.zero = 3;
    s.parallel.recompute = rc;
    s.parallel.zero3_gather = zg;
    s.parallel.grad_reduce_dtype = GradReduce::kBf16;   // gradients reduced in the gathers' bf16
    auto c = compile_plan(s.model, s.training, s.parallel, 8);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    const Plan& plan = c.value().plan;
    const bool tensor = zg == ZeroGather::kTensor;
    EXPECT_EQ(plan.groups.back().name, tensor ? "dp-gather-tensor" : "expert-dp-gather");
    EXPECT_EQ(plan.groups[kGroupExpertDpGather].size_of(0), 2u);
    EXPECT_EQ(plan.groups[kGroupDpGather].size_of(0), 8u);
    const int64_t Le = 8 / 4, pe = expert_params(m);
    const int64_t expert = 2 * Le * pe * (m.layers - m.dense_layers);   // bf16, all MoE layers
    int64_t dense = 2 * embedding_params(m);
    for (int l = 0; l < m.layers; ++l) dense += 2 * layer_params_local(m, l, 1);
    const int64_t head = 2 * embedding_params(m) + 2 * m.hidden;   // untied LM head + RMSNorm
    std::map<std::pair<uint8_t, CollKind>, int64_t> bytes;
    const std::vector<Task>& tasks = plan.programs[0].tasks;
    for (size_t i = 0; i < tasks.size(); ++i) {
      const Task& t = tasks[i];
      const OpDesc& op = plan.ops[t.op];
      if (t.kind != TaskKind::kCollective) {
      } else if (t.group == kGroupExpertDp || t.group == kGroupExpertDpGather || t.group == kGroupDp ||
                 t.group == kGroupDpGather || plan.groups[t.group].name == "dp-gather-tensor") {
        const uint8_t g = t.group > kGroupExpertDpGather ? kGroupDpGather : t.group;
        bytes[{g, op.coll}] += op.bytes.count();
        EXPECT_EQ(t.category, Category::kDpComm) << op.name;
        if (t.group == kGroupExpertDp || t.group == kGroupExpertDpGather) {
          EXPECT_TRUE(t.layer >= m.dense_layers && t.layer < m.layers) << op.name << " layer " << t.layer;
        }
        if (t.group == kGroupExpertDp || (t.group == kGroupExpertDpGather && !tensor)) {
          EXPECT_EQ(op.bytes.count(), 2 * Le * pe) << op.name;
        }
        if (g == kGroupExpertDpGather || g == kGroupDpGather) {
          EXPECT_EQ(t.stream, tensor && t.layer != 0xffff ? kStreamCompute : kStreamGather) << op.name;
        }
      }
      if (op.name == "moe.expert.fc1.fwd" || op.name == "moe.expert.fc2.dgrad") {
        ASSERT_NE(t.dep[0], kNoDep) << op.name;
        const Task& g = tasks[t.dep[0]];
        EXPECT_EQ(g.group, kGroupExpertDpGather) << op.name;
        EXPECT_EQ(g.layer, t.layer) << op.name;
      }
    }
    const std::string what = std::string(rc == Recompute::kFull ? "full recompute" : "no recompute") + ", " +
                             to_string(zg);
    EXPECT_EQ((bytes[{kGroupExpertDpGather, CollKind::kAllGather}]), micro * 2 * expert) << what;
    EXPECT_EQ((bytes[{kGroupExpertDp, CollKind::kReduceScatter}]), micro * expert) << what;
    EXPECT_EQ((bytes[{kGroupDpGather, CollKind::kAllGather}]), micro * 2 * (dense + head)) << what;
    EXPECT_EQ((bytes[{kGroupDp, CollKind::kReduceScatter}]), micro * (dense + head)) << what;
    EXPECT_EQ(bytes.size(), 4u) << what;   // no all-reduce buckets
  }
  // The per-tensor lists add up to the layer's dense part and to one expert.
  ModelSpec m = small_moe(8, 2);
  m.shared_experts = 2;
  for (Activation a : {Activation::kSwiglu, Activation::kGelu}) {
    m.activation = a;
    int64_t dense = 0, expert = 0;
    for (int64_t t : moe_layer_dense_tensors(m)) dense += t;
    for (int64_t t : expert_param_tensors(m)) expert += t;
    EXPECT_EQ(dense, layer_dense_params(m, 0)) << to_string(a);
    EXPECT_EQ(expert, expert_params(m)) << to_string(a);
  }
}

// A group's collectives come from one stream of a program (the replay pairs its members' posts
// in order; two streams may post in different orders on ranks that drift apart). ZeRO-3 per
// tensor used to mix compute-stream and gather-stream gathers on "dp-gather" and failed with
// pp > 1 ("program order differs between members").
TEST(MoeCompiler, EachGroupPostsFromOneStream) {
  for (bool moe : {false, true})
    for (ZeroGather zg : {ZeroGather::kLayer, ZeroGather::kTensor}) {
      ModelSpec m = small_moe(8, 2);
      if (!moe) m.arch = "dense";
      Scenario s = make(m, 2, 2, 4, moe ? 2 : 1, 4);
      s.parallel.zero = 3;
      s.parallel.zero3_gather = zg;
      s.parallel.sequence_parallel = true;
      s.parallel.recompute = Recompute::kFull;
      if (!moe) s.parallel.etp = 1;
      auto c = compile_plan(s.model, s.training, s.parallel, 8);
      ASSERT_TRUE(c.ok()) << c.status().to_string();
      const Plan& plan = c.value().plan;
      for (const Program& prog : plan.programs) {
        std::map<uint8_t, uint8_t> stream_of;
        for (const Task& t : prog.tasks) {
          if (t.kind != TaskKind::kCollective) continue;
          auto [it, fresh] = stream_of.emplace(t.group, t.stream);
          EXPECT_EQ(it->second, t.stream) << prog.name << " group " << plan.groups[t.group].name << " op "
                                          << plan.ops[t.op].name << (moe ? " moe " : " dense ") << to_string(zg);
        }
      }
      const Prediction a = run(s, false), b = run(s, true);
      EXPECT_EQ(a.step_time.count_ps(), b.step_time.count_ps()) << to_string(zg);
    }
}

// Memory with ZeRO-3: expert params, grads and Adam states over the expert-DP group (edp), the
// dense ones over the dp shard; the gathered working set is (prefetch + 1) of the largest layer
// as gathered (dense part + this rank's experts). With ep = dp the expert-DP group is one rank:
// experts stay whole and are not gathered.
TEST(MoeMemory, ZeroThreeShardsExpertsOverExpertDp) {
  const ModelSpec m = small_moe(8, 2);
  for (int ep : {2, 4, 8}) {
    Scenario s = make(m, 1, 1, 8, ep, 1);
    s.parallel.zero = 3;
    s.parallel.zero3_prefetch = 2;
    auto c = compile_plan(s.model, s.training, s.parallel, 8);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    const int64_t edp = 8 / ep;
    const int64_t pe = int64_t{8 / ep} * expert_params(m);   // one MoE layer's local experts
    const int64_t Pe = 4 * pe, Pd = c.value().stages[0].params_local - Pe;
    const int64_t largest = layer_params_local(m, 0, 1) + (edp > 1 ? pe : 0);
    const int64_t bucket = int64_t{s.parallel.dp_bucket_mb} << 20;
    const MemoryStatic& mem = c.value().plan.programs[0].mem;
    const std::string what = "ep=" + std::to_string(ep);
    EXPECT_EQ(mem.params.count(), (2 * Pd + 7) / 8 + (2 * Pe + edp - 1) / edp + 2 * largest * 3) << what;
    EXPECT_EQ(mem.grads.count(), (4 * Pd + 7) / 8 + std::min(bucket, 4 * Pd) + (4 * Pe + edp - 1) / edp +
                                     std::min(bucket, 4 * Pe))
        << what;
    EXPECT_EQ(mem.optimizer.count(), (12 * Pd + 7) / 8 + (12 * Pe + edp - 1) / edp) << what;
    // The expert share of the params: expert params / (ep * etp) / edp, as the optimizer steps it.
    EXPECT_EQ((2 * Pe + edp - 1) / edp, 2 * (4 * int64_t{8} * expert_params(m) / ep) / edp) << what;
  }
}

// ---- oracle: fast == full for MoE plans -----------------------------------------------------

// Random MoE configs with zero 0-2 and any routing; then with ZeRO-3 (experts gathered and
// reduce-scattered over expert-DP every micro-batch, per layer or per tensor) and balanced
// routing, where every replica is identical.
TEST(MoeCompiler, FastModeEqualsFullModeOnRandomMoeConfigs) {
  for (bool zero3 : {false, true}) {
    std::mt19937_64 rng(zero3 ? 4343 : 4242);
    auto pick = [&](std::initializer_list<int> v) { return *(v.begin() + rng() % v.size()); };
    int tried = 0;
    for (int i = 0; i < 16; ++i) {
      const int tp = pick({1, 2}), pp = pick({1, 2}), dp = pick({2, 4, 8});
      const int ep = pick({1, 2, 4, 8});
      if (dp % ep != 0) continue;
      ModelSpec m = small_moe(8, pick({1, 2}));
      m.shared_experts = pick({0, 1});
      m.dense_layers = pick({0, 1});
      m.capacity_factor = rng() % 2 ? 0.0 : 1.25;
      Scenario s = make(m, tp, pp, dp, ep, pp * 2, 512);
      s.parallel.zero = pick({0, 1, 2});
      s.parallel.etp = rng() % 2 ? 1 : tp;
      s.parallel.sequence_parallel = tp > 1 && rng() % 2;
      s.parallel.recompute = static_cast<Recompute>(rng() % 3);
      s.training.moe.kind = static_cast<MoeRouting>(rng() % 3);
      s.training.moe.skew = 1.1;
      s.training.moe.seed = rng();
      if (zero3) {
        s.parallel.zero = 3;
        s.training.moe.kind = MoeRouting::kBalanced;
        s.parallel.zero3_prefetch = pick({0, 1, 2});
        if (rng() % 2) s.parallel.zero3_gather = ZeroGather::kTensor;
        s.parallel.dp_overlap = rng() % 4 != 0;
      }
      const std::string what = "config " + std::to_string(i) + " zero=" + std::to_string(s.parallel.zero) +
                               " tp=" + std::to_string(tp) + " pp=" + std::to_string(pp) + " dp=" + std::to_string(dp) +
                               " ep=" + std::to_string(ep) + " etp=" + std::to_string(s.parallel.etp) + " gather=" +
                               to_string(s.parallel.zero3_gather);
      const Prediction a = run(s, false), b = run(s, true);
      EXPECT_EQ(a.step_time.count_ps(), b.step_time.count_ps()) << what;
      EXPECT_EQ(b.simulated_ranks, pp) << what;
      ++tried;
    }
    EXPECT_GE(tried, 8) << (zero3 ? "zero 3" : "zero 0-2");
  }
}

}  // namespace
}  // namespace trainsim
