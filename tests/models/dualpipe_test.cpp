// parallel.schedule "dualpipev" and "zbv" (models/spec.h Schedule::kDualPipeV, kZBV;
// compiler.cpp schedule_for): two chunks per pipeline rank in a V; DualPipeV pairs forwards with
// backwards of the other chunk and splits some backwards into B and a later W, ZB-V splits all. Oracles: the plan holds the same compute tasks as
// the interleaved plan of the same layer split (only the ranks and order differ); every rank
// runs every (chunk, micro-batch) once, forward before backward; the number of deferred
// backwards per rank is the schedule's count of W steps, 2pp-r-1; fast equals full; the bubble
// is far below 1F1B's.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "models/compiler.h"
#include "scenarios/loader.h"
#include "tests/models/model_fixtures.h"
#include "tests/models/moe_fixtures.h"

namespace trainsim {
namespace {

using testing::moe_scenario;
using testing::run;
using testing::small_gpt;
using testing::small_moe;

// A dense job: `layers` layers, tp 1, pp, dp 1, m micro-batches, a V schedule.
Scenario dense_v(int layers, int pp, int m, int dp = 1, Schedule sched = Schedule::kDualPipeV) {
  Scenario s = moe_scenario(small_gpt(layers), 1, pp, dp, 1, m, 1024);
  s.parallel.schedule = sched;
  s.parallel.vp = 2;
  return s;
}

const std::string& name_of(const Plan& p, const Task& t) { return p.ops[t.op].name; }

// A program's embedding and head forwards, and per (layer, micro-batch) its fc1 forward, input
// gradient and weight gradient.
struct RankRun {
  std::map<std::pair<int, int>, std::vector<int>> fwd, dgrad, wgrad;
  int emb = 0, head = 0, mirror = 0;
};
RankRun rank_run(const Plan& plan, const Program& p) {
  RankRun out;
  for (size_t i = 0; i < p.tasks.size(); ++i) {
    const Task& t = p.tasks[i];
    const std::string& n = name_of(plan, t);
    if (n == "mlp.fc1.fwd") out.fwd[{t.layer, t.micro}].push_back(static_cast<int>(i));
    if (n == "mlp.fc1.dgrad") out.dgrad[{t.layer, t.micro}].push_back(static_cast<int>(i));
    if (n == "mlp.fc1.wgrad") out.wgrad[{t.layer, t.micro}].push_back(static_cast<int>(i));
    out.emb += n == "embedding.fwd";
    out.head += n == "head.fwd";
    out.mirror += n == "pp.mirror.grad.allreduce";
  }
  return out;
}
// Each of `layers` runs micro-batches 0..m-1 once: forward, then input gradient, then weight
// gradient; nothing else runs.
void expect_once_in_order(const RankRun& run, const std::set<int>& layers, int m, const std::string& what) {
  EXPECT_EQ(run.fwd.size(), layers.size() * m) << what;
  for (int l : layers)
    for (int mi = 0; mi < m; ++mi) {
      const std::pair<int, int> k{l, mi};
      auto one = [&](const std::map<std::pair<int, int>, std::vector<int>>& x) {
        auto it = x.find(k);
        return it != x.end() && it->second.size() == 1 ? it->second[0] : -1;
      };
      const int f = one(run.fwd), d = one(run.dgrad), w = one(run.wgrad);
      ASSERT_TRUE(f >= 0 && d >= 0 && w >= 0) << what << " layer " << l << " micro " << mi;
      EXPECT_LT(f, d) << what;
      EXPECT_LT(d, w) << what;
    }
}

// Every rank holds virtual stages r and 2pp-1-r: their layers, and the embedding and the LM head
// on rank 0 only; each of its layers runs each micro-batch's forward, input gradient and weight
// gradient once, in that order.
// (ZB-V also with fewer micro-batches than its 2pp-1, whose missing steps are dropped.)
TEST(DualPipeV, RanksHoldAVAndRunEveryChunkOnce) {
  for (Schedule sched : {Schedule::kDualPipeV, Schedule::kZBV})
  for (int pp : {2, 3, 4}) {
    for (int extra : {0, 1, 3, -3}) {
      if (extra < 0 && sched == Schedule::kDualPipeV) continue;
      const int m = 2 * pp + extra, L = 4 * pp;
      Scenario s = dense_v(L, pp, m, 1, sched);
      auto c = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
      ASSERT_TRUE(c.ok()) << c.status().to_string();
      for (int r = 0; r < pp; ++r) {
        const Program& p = c->plan.programs[r];
        std::set<int> want;
        for (int l = 2 * r; l < 2 * r + 2; ++l) want.insert(l);                          // virtual stage r
        for (int l = 2 * (2 * pp - 1 - r); l < 2 * (2 * pp - 1 - r) + 2; ++l) want.insert(l);   // 2pp-1-r
        std::set<int> got(c->stages[r].layers.begin(), c->stages[r].layers.end());
        EXPECT_EQ(got, want) << to_string(sched) << " pp " << pp << " rank " << r;
        const RankRun run = rank_run(c->plan, p);
        EXPECT_EQ(run.emb, r == 0 ? m : 0) << "pp " << pp << " rank " << r;
        EXPECT_EQ(run.head, r == 0 ? m : 0) << "pp " << pp << " rank " << r;
        expect_once_in_order(run, want, m, std::string(to_string(sched)) + " pp " + std::to_string(pp));
      }
    }
  }
}

// Every program frees the memory it allocates; the step is positive, fast mode equals full mode,
// and two full runs give the same fingerprint.
void expect_balanced_and_fast_equals_full(const Plan& plan, const Scenario& s, const std::string& what) {
  for (const Program& p : plan.programs) {
    int64_t alloc = 0, freed = 0;
    for (const Task& t : p.tasks) alloc += t.mem_alloc, freed += t.mem_free;
    EXPECT_EQ(alloc, freed) << what << " " << p.name;
  }
  const Prediction full = run(s, false), fast = run(s, true);
  EXPECT_GT(full.step_time.count_ps(), 0) << what;
  EXPECT_EQ(full.step_time.count_ps(), fast.step_time.count_ps()) << what;
  EXPECT_EQ(full.fingerprint, run(s, false).fingerprint) << what;   // deterministic
}

// A backward is deferred when its chunk's top layer's weight gradients come after the input
// gradient of its bottom layer (the W step runs after the whole B). DualPipeV: each rank defers
// as many as it has W steps: P-r-1 in phase 3, r+1 in phase 6, P-r-1 in phase 7; ZB-V: all 2m.
TEST(DualPipeV, DefersAsManyBackwardsAsItHasWSteps) {
  const int pp = 4, m = 10;
  for (Schedule sched : {Schedule::kDualPipeV, Schedule::kZBV}) {
  Scenario s = dense_v(2 * 2 * pp, pp, m, 1, sched);
  auto c = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  for (int r = 0; r < pp; ++r) {
    const Program& p = c->plan.programs[r];
    std::map<std::pair<int, int>, int> top_w, bottom_norm;   // (layer, micro) -> index
    for (size_t i = 0; i < p.tasks.size(); ++i) {
      const Task& t = p.tasks[i];
      const std::string& n = name_of(c->plan, t);
      if (n == "mlp.fc2.wgrad") top_w[{t.layer, t.micro}] = static_cast<int>(i);
      if (n == "attn.norm.bwd") bottom_norm[{t.layer, t.micro}] = static_cast<int>(i);
    }
    int deferred = 0;
    for (int v : {r, 2 * pp - 1 - r}) {   // each chunk: layers 2v (bottom) and 2v+1 (top)
      for (int mi = 0; mi < m; ++mi) deferred += top_w.at({2 * v + 1, mi}) > bottom_norm.at({2 * v, mi});
    }
    EXPECT_EQ(deferred, sched == Schedule::kZBV ? 2 * m : 2 * pp - r - 1) << to_string(sched) << " rank " << r;
    if (sched == Schedule::kZBV) {
      // Every layer's B holds its weight gradients' output-gradient operands (bf16, T = 1024
      // tokens) until its W: qkv T x 3h, proj T x h, fc1 T x 4h, fc2 T x h.
      const int64_t hold = 2 * 1024 * (3 * 1024 + 1024 + 4096 + 1024);
      for (const Task& t : p.tasks) {
        if (name_of(c->plan, t) == "attn.norm.bwd") {
          EXPECT_EQ(t.mem_alloc, hold) << "rank " << r;
        }
      }
    }
  }
  }
}

// What a compute task is, apart from its rank and place: op, category, layer, micro-batch.
using ProgramKey = std::tuple<std::string, uint64_t, uint8_t, uint16_t, uint16_t>;
std::multiset<ProgramKey> compute_keys(const Plan& plan) {
  std::multiset<ProgramKey> k;
  for (const Program& p : plan.programs)
    for (const Task& t : p.tasks)
      if (t.kind == TaskKind::kCompute && t.category != Category::kOptimizer)   // per rank's parameters
        k.emplace(plan.ops[t.op].name, plan.ops[t.op].hash(), static_cast<uint8_t>(t.category), t.layer, t.micro);
  return k;
}

// Random dense and MoE jobs (tp, SP, zero 0-3, recompute, tied embeddings, EP with ep_overlap):
// the same compute tasks over all ranks as the interleaved plan with the same layer split, the
// memory each program allocates all freed again, and fast mode equal to full mode.
TEST(DualPipeV, SameComputeAsInterleavedAndFastEqualsFull) {
  std::mt19937_64 rng(4111);
  auto pick = [&](std::initializer_list<int> v) { return *(v.begin() + rng() % v.size()); };
  int moe_seen = 0, overlap_seen = 0;
  for (int i = 0; i < 30; ++i) {
    const int pp = pick({2, 3, 4}), tp = pick({1, 2}), dp = pick({1, 2, 4});
    const bool moe = rng() % 2 == 0 && dp >= 2;
    ModelSpec model = moe ? small_moe(8, 2) : small_gpt(2 * pp * pick({1, 2}));
    if (moe) model.layers = 2 * pp;
    model.tied_embeddings = rng() % 3 == 0;
    Scenario s = moe_scenario(model, tp, pp, dp, moe ? std::min(dp, 4) : 1, pp * pick({2, 3}), 512);
    s.parallel.schedule = rng() % 3 == 0 ? Schedule::kZBV : Schedule::kDualPipeV;
    s.parallel.vp = 2;
    s.parallel.sequence_parallel = tp > 1 && rng() % 2;
    s.parallel.zero = pick({0, 1, 2, 3});
    s.parallel.recompute = static_cast<Recompute>(rng() % 3);
    if (moe && s.parallel.schedule == Schedule::kDualPipeV && rng() % 3 != 0) {   // what ep_overlap takes
      s.parallel.zero = std::min(s.parallel.zero, 2);
      if (s.parallel.recompute == Recompute::kFull) s.parallel.recompute = Recompute::kSelective;
      s.parallel.ep_overlap = true;
      ++overlap_seen;
    }
    moe_seen += moe;
    const std::string what = std::string(to_string(s.parallel.schedule)) + " pp " + std::to_string(pp) + " tp " + std::to_string(tp) + " dp " + std::to_string(dp) +
                             " moe " + std::to_string(moe) + " zero " + std::to_string(s.parallel.zero) + " overlap " +
                             std::to_string(s.parallel.ep_overlap);
    Scenario il = s;
    il.parallel.schedule = Schedule::kInterleaved;
    il.parallel.ep_overlap = false;
    auto a = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
    auto b = compile_plan(il.model, il.training, il.parallel, il.cluster.gpus_per_node);
    ASSERT_TRUE(a.ok()) << what << ": " << a.status().to_string();
    ASSERT_TRUE(b.ok()) << what << ": " << b.status().to_string();
    if (!moe) {   // routing draws per rank's layer set: MoE layers move ranks, and their rows with them
      const std::multiset<ProgramKey> ka = compute_keys(a->plan), kb = compute_keys(b->plan);
      std::string diff;
      for (const ProgramKey& k : ka)
        if (kb.count(k) != ka.count(k)) diff += " " + std::get<0>(k) + "@" + std::to_string(std::get<3>(k));
      EXPECT_TRUE(ka == kb) << what << ":" << diff.substr(0, 600);
    }
    expect_balanced_and_fast_equals_full(a->plan, s, what);
  }
  EXPECT_GE(moe_seen, 4);
  EXPECT_GE(overlap_seen, 2);
}

// Pipeline bubble, dense, pp 4, 8 micro-batches: DualPipeV leaves well under half of 1F1B's idle
// time (DeepSeek-V3 report, table 2: 1F1B (PP-1)(F+B) against (PP/2-1)(F&B+B-3W) on twice the
// stages); the interleaved schedule with the same two chunks sits in between.
TEST(DualPipeV, BubbleFarBelowOneFOneB) {
  const int pp = 4, m = 8;
  Scenario v = dense_v(16, pp, m);
  Scenario f = v;
  f.parallel.schedule = Schedule::k1F1B;
  f.parallel.vp = 1;
  Scenario il = v;
  il.parallel.schedule = Schedule::kInterleaved;
  const auto bubble = static_cast<size_t>(Bucket::kBubble);
  const Prediction pv = run(v), pf = run(f), pi = run(il);
  const double bv = static_cast<double>(pv.breakdown[bubble].count_ps());
  const double bf = static_cast<double>(pf.breakdown[bubble].count_ps());
  const double bi = static_cast<double>(pi.breakdown[bubble].count_ps());
  ASSERT_GT(bf, 0);
  EXPECT_LT(bv, 0.5 * bf) << "dualpipev " << bv << " 1f1b " << bf;
  EXPECT_LT(bv, bi) << "dualpipev " << bv << " interleaved " << bi;
  EXPECT_LT(pv.step_time.count_ps(), pf.step_time.count_ps());
  // ZB-V: every W fills a bubble; below DualPipeV's (which splits off only some).
  Scenario z = v;
  z.parallel.schedule = Schedule::kZBV;
  const Prediction pz = run(z);
  const double bz = static_cast<double>(pz.breakdown[bubble].count_ps());
  EXPECT_LT(bz, bv) << "zbv " << bz << " dualpipev " << bv;
  EXPECT_LT(pz.step_time.count_ps(), pv.step_time.count_ps());
}

// DualPipe (bidirectional): rank r holds stages r and pp-1-r of a pp-stage split (the same two
// as rank pp-1-r), each running half the micro-batches; ranks 0 and pp-1 hold an embedding and a
// head each; every layer runs each of its m/2 micro-batches once per rank, forward before input
// gradient before weight gradient.
TEST(DualPipe, MirroredStagesRunHalfTheMicroBatchesEach) {
  for (int pp : {2, 4, 6}) {
    const int m = 2 * pp + 2 * (pp % 4), L = 2 * pp;
    Scenario s = dense_v(L, pp, m, 1, Schedule::kDualPipe);
    auto c = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    for (int r = 0; r < pp; ++r) {
      const Program& p = c->plan.programs[r];
      const std::set<int> want = {2 * r, 2 * r + 1, 2 * (pp - 1 - r), 2 * (pp - 1 - r) + 1};
      EXPECT_EQ(std::set<int>(c->stages[r].layers.begin(), c->stages[r].layers.end()), want) << pp << " " << r;
      for (const Task& t : p.tasks) {
        if (name_of(c->plan, t) != "pp.mirror.grad.allreduce") continue;
        const GroupTable& g = c->plan.groups[t.group];
        EXPECT_EQ(g.name, "pp-mirror");
        const uint32_t inst = g.instance_of_rank[c->plan.representatives[r]];
        ASSERT_EQ(g.size_of(inst), 2u);
        std::set<uint32_t> stages;
        for (uint32_t k = 0; k < 2; ++k) stages.insert(c->plan.program_of_rank[g.members[g.member_offsets[inst] + k]]);
        EXPECT_EQ(stages, (std::set<uint32_t>{static_cast<uint32_t>(r), static_cast<uint32_t>(pp - 1 - r)}));
      }
      const RankRun run = rank_run(c->plan, p);
      const bool end = r == 0 || r == pp - 1;
      EXPECT_EQ(run.emb, end ? m / 2 : 0) << pp << " " << r;
      EXPECT_EQ(run.head, end ? m / 2 : 0) << pp << " " << r;
      EXPECT_EQ(run.mirror, 1);
      expect_once_in_order(run, want, m / 2, "dualpipe pp " + std::to_string(pp));
    }
  }
}

// Over all ranks DualPipe runs each layer's compute as often as 1F1B on the same pp-stage split
// (twice with half the micro-batches); fast equals full; every program frees what it allocates.
TEST(DualPipe, SameComputeAsOneFOneBAndFastEqualsFull) {
  std::mt19937_64 rng(977);
  auto pick = [&](std::initializer_list<int> v) { return *(v.begin() + rng() % v.size()); };
  for (int i = 0; i < 16; ++i) {
    const int pp = pick({2, 4}), tp = pick({1, 2}), dp = pick({1, 2, 4});
    const bool moe = rng() % 2 == 0 && dp >= 2;
    ModelSpec model = moe ? small_moe(8, 2) : small_gpt(pp * pick({1, 2, 3}));
    if (moe) model.layers = pp * pick({1, 2});
    model.tied_embeddings = rng() % 3 == 0;
    Scenario s = moe_scenario(model, tp, pp, dp, moe ? std::min(dp, 4) : 1, 2 * pp + 2 * pick({0, 1, 2}), 512);
    s.parallel.schedule = Schedule::kDualPipe;
    s.parallel.vp = 2;
    s.parallel.sequence_parallel = tp > 1 && rng() % 2;
    s.parallel.zero = pick({0, 1, 2, 3});
    s.parallel.recompute = static_cast<Recompute>(rng() % 3);
    if (moe && rng() % 2) {
      s.parallel.zero = std::min(s.parallel.zero, 2);
      if (s.parallel.recompute == Recompute::kFull) s.parallel.recompute = Recompute::kSelective;
      s.parallel.ep_overlap = true;
    }
    const std::string what = "pp " + std::to_string(pp) + " tp " + std::to_string(tp) + " dp " + std::to_string(dp) +
                             " moe " + std::to_string(moe) + " zero " + std::to_string(s.parallel.zero);
    auto a = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
    ASSERT_TRUE(a.ok()) << what << ": " << a.status().to_string();
    if (!moe) {
      Scenario f = s;
      f.parallel.schedule = Schedule::k1F1B;
      f.parallel.vp = 1;
      auto b = compile_plan(f.model, f.training, f.parallel, f.cluster.gpus_per_node);
      ASSERT_TRUE(b.ok()) << what << ": " << b.status().to_string();
      std::map<std::tuple<std::string, uint64_t, uint8_t, uint16_t>, int> ka, kb;
      for (const auto& [plan, k] : {std::pair<const Plan*, decltype(&ka)>{&a->plan, &ka}, {&b->plan, &kb}})
        for (const Program& p : plan->programs)
          for (const Task& t : p.tasks)
            if (t.kind == TaskKind::kCompute && t.category != Category::kOptimizer)
              ++(*k)[{plan->ops[t.op].name, plan->ops[t.op].hash(), static_cast<uint8_t>(t.category), t.layer}];
      EXPECT_TRUE(ka == kb) << what;
    }
    expect_balanced_and_fast_equals_full(a->plan, s, what);
  }
}

// DualPipe on pp ranks runs DualPipeV's phases on pp/2 rank pairs: a smaller bubble than
// DualPipeV on the same pp ranks (dense, tp 1, pp 4, 8 micro-batches), at twice the parameters on a middle rank.
TEST(DualPipe, BubbleBelowDualPipeV) {
  Scenario v = dense_v(16, 4, 8);
  Scenario d = v;
  d.parallel.schedule = Schedule::kDualPipe;
  const auto bubble = static_cast<size_t>(Bucket::kBubble);
  const Prediction pv = run(v), pd = run(d);
  EXPECT_LT(pd.breakdown[bubble].count_ps(), pv.breakdown[bubble].count_ps());
  // A middle rank: DualPipeV's holds virtual stages 1 and 6 (2 + 2 layers), DualPipe's stages 1
  // and 2 (4 + 4 layers).
  ASSERT_EQ(pd.memory_per_stage.size(), 4u);
  EXPECT_NEAR(pd.memory_per_stage[1].params.gib(), 2 * pv.memory_per_stage[1].params.gib(), 1e-6);
}

// The replay pairs a rank's receives on a channel with the messages sent to it there in FIFO
// order (and the CUDA executor runs one communicator per direction and channel): on every channel
// of every rank, the micro-batches its receives expect come in the order its one sender sends
// them, and there is exactly one sender per (rank, channel).
TEST(DualPipe, MessagesOnEveryChannelArriveInTheOrderTheyAreReceived) {
  for (Schedule sched : {Schedule::kDualPipeV, Schedule::kZBV, Schedule::kDualPipe, Schedule::kInterleaved}) {
    for (int pp : {2, 4}) {
      Scenario s = dense_v(4 * pp, pp, 2 * pp + (sched == Schedule::kInterleaved ? 0 : 2), 1, sched);
      auto c = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
      ASSERT_TRUE(c.ok()) << c.status().to_string();
      const Plan& plan = c->plan;
      std::map<std::pair<int, int>, std::vector<int>> sent, received;   // (receiver, channel) -> micros
      std::map<std::pair<int, int>, std::set<int>> senders;
      for (int r = 0; r < plan.num_ranks; ++r)
        for (const Task& t : plan.programs[plan.program_of_rank[r]].tasks) {
          if (t.kind != TaskKind::kSend && t.kind != TaskKind::kRecv) continue;
          const int peer = plan.peers[t.group].peer_of_rank[r];
          ASSERT_GE(peer, 0) << to_string(sched) << " rank " << r;
          if (t.kind == TaskKind::kSend) {
            sent[{peer, t.channel}].push_back(t.micro);
            senders[{peer, t.channel}].insert(r);
          } else {
            received[{r, t.channel}].push_back(t.micro);
          }
        }
      EXPECT_EQ(sent, received) << to_string(sched) << " pp " << pp;
      for (const auto& [k, v] : senders) EXPECT_EQ(v.size(), 1u) << to_string(sched) << " rank " << k.first;
    }
  }
}

// The loader's checks: vp other than 2, pp 1, fewer than 2pp micro-batches; vp left out is 2.
// ZB-V: any number of micro-batches. DualPipe: an even pp, an even number of micro-batches,
// pp entries in layers_per_stage.
TEST(DualPipeV, LoaderChecks) {
  // Llama 3 8B on pp GPUs (dp 1), global batch gb, `sched`, `extra` appended to "parallel".
  auto make = [](const std::string& sched, int gb, int pp, const std::string& extra = "") {
    const std::string j = R"({"model": {"name": "llama3-8b"}, "training": {"seq_len": 2048, "global_batch": )" +
                          std::to_string(gb) + R"(, "micro_batch": 1}, "cluster": {"gpu": "H100-SXM-80GB", "gpus": )" +
                          std::to_string(pp) + R"(, "gpus_per_node": 8}, "parallel": {"tp": 1, "pp": )" +
                          std::to_string(pp) + R"(, "dp": 1, "schedule": ")" + sched + "\"" + extra + "}}";
    return load_scenario_text(j, sched + ".json");
  };
  auto err = [](const Result<Scenario>& r) { return r.ok() ? std::string("ok") : r.status().to_string(); };
  auto ok = make("dualpipev", 8, 4);
  ASSERT_TRUE(ok.ok()) << err(ok);
  EXPECT_EQ(ok->parallel.vp, 2);
  EXPECT_EQ(ok->parallel.schedule, Schedule::kDualPipeV);
  EXPECT_NE(err(make("dualpipev", 8, 4, R"(, "vp": 3)")).find("/parallel/vp"), std::string::npos);
  EXPECT_NE(err(make("dualpipev", 8, 1)).find("/parallel/pp"), std::string::npos);
  EXPECT_NE(err(make("dualpipev", 6, 4)).find("at least 2*pp = 8"), std::string::npos);
  auto z = make("zbv", 3, 4);
  ASSERT_TRUE(z.ok()) << err(z);
  EXPECT_EQ(z->parallel.vp, 2);
  EXPECT_EQ(z->parallel.schedule, Schedule::kZBV);
  auto d = make("dualpipe", 8, 4);
  ASSERT_TRUE(d.ok()) << err(d);
  EXPECT_EQ(d->parallel.vp, 2);
  EXPECT_NE(err(make("dualpipe", 9, 3)).find("/parallel/pp"), std::string::npos);
  EXPECT_NE(err(make("dualpipe", 6, 4)).find("at least 2*pp"), std::string::npos);
  EXPECT_NE(err(make("dualpipe", 9, 2)).find("even number"), std::string::npos);
  EXPECT_TRUE(make("dualpipe", 8, 4, R"(, "layers_per_stage": [8, 8, 8, 8])").ok());
  EXPECT_NE(err(make("dualpipe", 8, 4, R"(, "layers_per_stage": [4, 4, 4, 4, 4, 4, 4, 4])")).find("expected pp = 4"),
            std::string::npos);
}

}  // namespace
}  // namespace trainsim
