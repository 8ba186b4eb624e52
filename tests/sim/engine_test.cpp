// Engine tests: the event queue against a sorted-vector oracle, and replays of tiny plans
// whose step times are known in closed form.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <tuple>

#include "sim/event_queue.h"
#include "sim/replay.h"

namespace trainsim {
namespace {

// An EventQueue beside its oracle: (time, phase, seq, payload) tuples kept sorted, the front
// popped; pop_checked() pops both and records any difference as a test failure.
struct QueueOracle {
  EventQueue q;
  std::vector<std::tuple<int64_t, int, uint64_t, uint32_t>> sorted;
  uint64_t seq = 0;
  void push(int64_t t, int phase, uint32_t payload) {
    q.push(Time::ps(t), static_cast<uint8_t>(phase), 0, payload, 0);
    auto item = std::make_tuple(t, phase, seq++, payload);
    sorted.insert(std::upper_bound(sorted.begin(), sorted.end(), item), item);
  }
  int64_t pop_checked() {   // the popped time
    Event e = q.pop();
    auto [t, phase, s, payload] = sorted.front();
    sorted.erase(sorted.begin());
    EXPECT_EQ(e.when.count_ps(), t);
    EXPECT_EQ(e.phase(), phase);
    EXPECT_EQ(e.a, payload) << "FIFO order among equal keys broken";
    return t;
  }
};

TEST(EventQueue, MatchesSortedOracleOnRandomOperations) {
  for (int seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    QueueOracle o;
    for (int step = 0; step < 3000; ++step) {
      if (o.sorted.empty() || rng() % 3 != 0) {
        const int64_t t = static_cast<int64_t>(rng() % 50);  // many ties on purpose
        const int phase = static_cast<int>(rng() % 3);
        o.push(t, phase, static_cast<uint32_t>(rng()));
      } else {
        o.pop_checked();
        ASSERT_FALSE(::testing::Test::HasFailure()) << "seed " << seed << " step " << step;
      }
    }
  }
}

// A replay's pattern: a dozen events pending, each pop followed by a push a little later, so
// the sorted array takes new keys at both ends (the front one into the slot the pop freed) and
// in the middle, with ties of time and phase; the pop order must stay that of the oracle.
TEST(EventQueue, MatchesSortedOracleWhenSmallWithPopsAndPushes) {
  for (int seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    QueueOracle o;
    auto push = [&](int64_t t) {
      const int phase = static_cast<int>(rng() % 2);
      o.push(t, phase, static_cast<uint32_t>(rng()));
    };
    for (int i = 0; i < 12; ++i) push(static_cast<int64_t>(rng() % 20));
    for (int step = 0; step < 5000; ++step) {
      const int64_t t = o.pop_checked();
      ASSERT_FALSE(::testing::Test::HasFailure()) << "seed " << seed << " step " << step;
      // One push per pop mostly, sometimes none or two: the size wanders around a dozen.
      const size_t n = o.sorted.size();
      const int pushes = n < 6 ? 2 : n > 20 ? 0 : static_cast<int>(rng() % 3);
      for (int k = 0; k < pushes; ++k) push(t + static_cast<int64_t>(rng() % 40));
      if (o.sorted.empty()) push(t);
    }
  }
}

// The queue is a sorted array while small and a heap while large (sim/event_queue.h): sizes
// that swing between empty and a few hundred cross both thresholds many times, with batches
// of equal keys open across the switches; the pop order must stay that of the oracle.
TEST(EventQueue, MatchesSortedOracleAcrossSortedAndHeapModes) {
  for (int seed = 1; seed <= 10; ++seed) {
    std::mt19937_64 rng(seed);
    QueueOracle o;
    int64_t now = 0;
    for (int wave = 0; wave < 40; ++wave) {
      const size_t target = rng() % 3 == 0 ? rng() % 300 : rng() % 40;
      while (o.sorted.size() < target) {   // grow: events at or after the last popped time
        const int64_t t = now + static_cast<int64_t>(rng() % 20);
        const int phase = static_cast<int>(rng() % 2);
        const int copies = rng() % 4 == 0 ? 1 + static_cast<int>(rng() % 5) : 1;   // back-to-back equal keys
        for (int k = 0; k < copies; ++k) o.push(t, phase, static_cast<uint32_t>(rng()));
      }
      const size_t floor = rng() % 2 == 0 ? 0 : rng() % 10;
      while (o.sorted.size() > floor) {   // drain, pushing now and then
        now = o.pop_checked();
        ASSERT_FALSE(::testing::Test::HasFailure()) << "seed " << seed << " wave " << wave;
        if (rng() % 5 == 0) {
          const int64_t t2 = now + static_cast<int64_t>(rng() % 3);
          o.push(t2, 0, static_cast<uint32_t>(rng()));
        }
      }
      ASSERT_EQ(o.q.empty(), o.sorted.empty());
    }
  }
}

TEST(EventQueue, LongRunsOfEqualKeysStayFifoAcrossBatches) {
  // Interleave two times so batches of equal keys are created, closed and reopened; the pop
  // order must still be (time, sequence).
  EventQueue q;
  std::vector<std::pair<int64_t, uint32_t>> expect;
  uint32_t id = 0;
  for (int round = 0; round < 50; ++round) {
    for (int k = 0; k < 7; ++k) { q.push(Time::ps(10), 0, 0, id, 0); expect.push_back({10, id++}); }
    for (int k = 0; k < 3; ++k) { q.push(Time::ps(5), 0, 0, id, 0); expect.push_back({5, id++}); }
  }
  std::stable_sort(expect.begin(), expect.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  for (const auto& [t, payload] : expect) {
    ASSERT_FALSE(q.empty());
    Event e = q.pop();
    ASSERT_EQ(e.when.count_ps(), t);
    ASSERT_EQ(e.a, payload);
  }
  EXPECT_TRUE(q.empty());
}

// Helpers to build tiny plans.
Plan one_program_plan(int ranks) {
  Plan p;
  p.num_ranks = ranks;
  p.programs.resize(1);
  p.programs[0].name = "p";
  p.program_of_rank.assign(ranks, 0);
  return p;
}

uint32_t add_op(Plan& p, const std::string& name, OpClass cls) {
  OpDesc d;
  d.name = name;
  d.cls = cls;
  return p.intern_op(d);
}

Task compute(Plan& p, Time dur, uint32_t dep = kNoDep) {
  Task t;
  t.op = add_op(p, "k", OpClass::kGemm);
  t.dur = dur;
  t.dep[0] = dep;
  return t;
}

GroupTable all_ranks_group(int n) {
  GroupTable g;
  g.name = "all";
  g.instance_of_rank.assign(n, 0);
  g.member_offsets = {0, static_cast<uint32_t>(n)};
  for (int r = 0; r < n; ++r) g.members.push_back(r);
  return g;
}

// Every rank its own instance: a collective on it has one member (as fast mode's collapsed TP).
GroupTable singleton_groups(int n) {
  GroupTable g;
  g.name = "self";
  for (int r = 0; r < n; ++r) {
    g.instance_of_rank.push_back(static_cast<uint32_t>(r));
    g.member_offsets.push_back(static_cast<uint32_t>(r));
    g.members.push_back(static_cast<uint32_t>(r));
  }
  g.member_offsets.push_back(static_cast<uint32_t>(n));
  return g;
}

Time bucket_sum(const RankStats& s) {
  Time t;
  for (Time b : s.bucket) t += b;
  return t;
}

TEST(Replay, SingleRankStepIsSumOfTaskTimes) {
  // step = 3 + 5 + 7 us, all compute
  Plan p = one_program_plan(1);
  p.programs[0].tasks = {compute(p, Time::us(3)), compute(p, Time::us(5)), compute(p, Time::us(7))};
  ASSERT_TRUE(p.finalize().ok());
  auto r = replay(p, {});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->step_time, Time::us(15));
  EXPECT_EQ(r->ranks[0].bucket[static_cast<size_t>(Bucket::kCompute)], Time::us(15));
  EXPECT_EQ(r->events, 1u);   // back to back on one stream: one chain, one completion event
  ReplayOptions o;
  o.chain_compute = false;   // an event per task: the same step
  auto r1 = replay(p, o);
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1->step_time, Time::us(15));
  EXPECT_EQ(r1->events, 3u);
}

TEST(Replay, ChainsEndWhereAnotherStreamWaitsOrMemoryMoves) {
  // a(2) b(3) c(4) d(5) on the compute stream; a reduction (6 us, stream 1) waits for b, so the
  // first chain is a-b and the reduction starts at 5 us (not 14). c allocates nothing and b
  // frees nothing, so c-d is the second chain; d allocates: with d.mem_alloc the chain is c alone.
  Plan p = one_program_plan(1);
  p.groups.push_back(all_ranks_group(1));
  Task red;
  red.kind = TaskKind::kCollective;
  red.op = add_op(p, "ar", OpClass::kCollective);
  red.dur = Time::us(6);
  red.stream = 1;
  red.category = Category::kDpComm;
  red.group = 0;
  red.dep[0] = 1;
  Task a = compute(p, Time::us(2)), b = compute(p, Time::us(3)), c = compute(p, Time::us(4)),
       d = compute(p, Time::us(5));
  a.mem_alloc = 7;
  d.mem_free = 7;
  p.programs[0].tasks = {a, b, red, c, d};
  ASSERT_TRUE(p.finalize().ok());
  ReplayOptions o;
  o.trace_ranks = {0};
  auto r = replay(p, o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->step_time, Time::us(14));   // compute 2+3+4+5; the reduction ends at 11
  EXPECT_EQ(r->events, 3u);                // chains a-b and c-d, and the reduction
  EXPECT_EQ(r->ranks[0].peak_dynamic_mem, 7);
  // The trace keeps a record per task, at the times an event per task gives.
  std::vector<std::pair<int64_t, int64_t>> got;
  for (const TraceRecord& t : r->trace)
    if (t.task != 2) got.emplace_back(t.start.count_ps() / 1000000, t.end.count_ps() / 1000000);
  std::sort(got.begin(), got.end());
  const std::vector<std::pair<int64_t, int64_t>> want = {{0, 2}, {2, 5}, {5, 9}, {9, 14}};
  EXPECT_EQ(got, want);
  for (const TraceRecord& t : r->trace) {
    if (t.task == 2) {
      EXPECT_EQ(t.start, Time::us(5));
    }
  }

  p.programs[0].tasks[4].mem_alloc = 1;   // d allocates: c and d are chains of their own
  ASSERT_TRUE(p.finalize().ok());
  auto r2 = replay(p, {});
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->step_time, Time::us(14));
  EXPECT_EQ(r2->events, 4u);
  EXPECT_EQ(r2->ranks[0].peak_dynamic_mem, 8);
}

// Oracle: random programs of compute tasks on three streams with cross-stream dependencies,
// memory and collectives (two ranks; some on the compute stream over a group of one rank, which
// chains take in), replayed with compute chains and with an event per task, must give the same
// step, buckets, peak memory and per-task trace; while collectives slow the compute, the same
// step, buckets and trace (the chain times its tasks one by one).
TEST(Replay, ChainedReplayMatchesAnEventPerTaskOnRandomPlans) {
  std::mt19937_64 rng(7);
  int chained_fewer = 0, mixed = 0;
  for (int iter = 0; iter < 300; ++iter) {
    Plan p = one_program_plan(2);
    p.groups.push_back(all_ranks_group(2));
    p.groups.push_back(singleton_groups(2));
    const int n = 5 + static_cast<int>(rng() % 40);
    std::vector<Task>& v = p.programs[0].tasks;
    for (int i = 0; i < n; ++i) {
      Task t = compute(p, Time::ns(1 + static_cast<int64_t>(rng() % 5000)));
      const int kind = static_cast<int>(rng() % 10);
      t.stream = kind < 6 ? kStreamCompute : static_cast<uint8_t>(1 + rng() % 2);
      if (kind == 9) {   // a collective over both ranks (group 0 runs one at a time: same stream)
        t.kind = TaskKind::kCollective;
        t.stream = 1;
        t.group = 0;
        t.category = Category::kDpComm;
        t.op = add_op(p, "coll", OpClass::kCollective);
      }
      if (kind == 5 && rng() % 2 == 0) {   // a collective of one rank on the compute stream
        t.kind = TaskKind::kCollective;
        t.group = 1;
        t.category = rng() % 2 ? Category::kTpComm : Category::kEpComm;
        t.op = add_op(p, "self", OpClass::kCollective);
        ++mixed;
      }
      if (kind == 0 && t.stream == kStreamCompute) t.category = Category::kRecompute;
      if (i > 0 && rng() % 3 == 0) t.dep[0] = static_cast<uint32_t>(rng() % i);
      if (i > 1 && rng() % 5 == 0) t.dep[1] = static_cast<uint32_t>(rng() % i);
      if (rng() % 4 == 0) t.mem_alloc = static_cast<int64_t>(rng() % 100);
      if (rng() % 4 == 0) t.mem_free = static_cast<int64_t>(rng() % 100);
      v.push_back(t);
    }
    ASSERT_TRUE(p.finalize().ok());
    // Rank speeds (ReplayOptions::rank_speed) each below and above 1, alone and with contention.
    const std::vector<double> speeds = {0.5 + static_cast<double>(rng() % 1000) / 1000.0,
                                        0.5 + static_cast<double>(rng() % 1000) / 1000.0};
    for (int variant = 0; variant < 4; ++variant) {
      const double share = variant % 2 ? 0.3 : 0.0;
      ReplayOptions a, b;
      a.comm_sm_share = b.comm_sm_share = share;
      if (variant >= 2) a.rank_speed = b.rank_speed = speeds;
      a.trace_ranks = b.trace_ranks = {0, 1};
      b.chain_compute = false;
      auto ra = replay(p, a), rb = replay(p, b);
      ASSERT_TRUE(ra.ok() && rb.ok()) << iter;
      EXPECT_EQ(ra->step_time.count_ps(), rb->step_time.count_ps()) << iter << " variant " << variant;
      EXPECT_LE(ra->events, rb->events);
      if (variant == 0 && ra->events < rb->events) ++chained_fewer;
      for (size_t k = 0; k < 2; ++k) {
        EXPECT_EQ(ra->ranks[k].peak_dynamic_mem, rb->ranks[k].peak_dynamic_mem) << iter;
        for (size_t j = 0; j < ra->ranks[k].bucket.size(); ++j)
          EXPECT_EQ(ra->ranks[k].bucket[j].count_ps(), rb->ranks[k].bucket[j].count_ps()) << iter << " " << j;
      }
      // Per-task trace records: the same set.
      auto key = [](const TraceRecord& t) { return std::make_tuple(t.rank, t.task, t.start.count_ps(), t.end.count_ps()); };
      std::vector<std::tuple<uint32_t, uint32_t, int64_t, int64_t>> ta, tb;
      for (const auto& t : ra->trace) ta.push_back(key(t));
      for (const auto& t : rb->trace) tb.push_back(key(t));
      std::sort(ta.begin(), ta.end());
      std::sort(tb.begin(), tb.end());
      ASSERT_EQ(ta.size(), tb.size()) << iter;
      EXPECT_EQ(ta, tb) << iter << " variant " << variant;
    }
  }
  EXPECT_GT(chained_fewer, 100);   // the chains did merge tasks in most plans
  EXPECT_GT(mixed, 300);           // and took in collectives of one rank
}

TEST(Replay, CollectiveWaitsForSlowestMember) {
  // Two programs: rank 0 computes 5 us, rank 1 computes 3 us; then a 2 us all-reduce.
  // step = max(5, 3) + 2 = 7 us; rank 1 waits 2 us (idle), both have 2 us exposed comm.
  Plan p;
  p.num_ranks = 2;
  p.programs.resize(2);
  p.program_of_rank = {0, 1};
  p.groups.push_back(all_ranks_group(2));
  OpDesc ar;
  ar.name = "ar";
  ar.cls = OpClass::kCollective;
  uint32_t ar_op = p.intern_op(ar);
  for (int r = 0; r < 2; ++r) {
    Task c = compute(p, Time::us(r == 0 ? 5 : 3));
    Task coll;
    coll.kind = TaskKind::kCollective;
    coll.category = Category::kTpComm;
    coll.op = ar_op;
    coll.group = 0;
    coll.dur = Time::us(2);
    p.programs[r].tasks = {c, coll};
  }
  ASSERT_TRUE(p.finalize().ok());
  auto r = replay(p, {});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->step_time, Time::us(7));
  const auto& s1 = r->ranks[1];
  EXPECT_EQ(s1.bucket[static_cast<size_t>(Bucket::kTpExposed)], Time::us(2));
  EXPECT_EQ(s1.bucket[static_cast<size_t>(Bucket::kBubble)], Time::us(2));
  for (const auto& s : r->ranks) EXPECT_EQ(bucket_sum(s), r->step_time);
}

// A rank at speed s takes each compute task's duration / s (rounded to the ps per task); comm
// tasks and host copies keep theirs. Two ranks of one program, 4 us of compute then a 2 us
// all-reduce: at speeds 1 and 0.5 the slow rank computes 8 us, the fast one waits 4 us, step 10 us.
TEST(Replay, RankSpeedDividesComputeAndTheSlowestSetsThePace) {
  Plan p = one_program_plan(1);
  p.programs[0].tasks = {compute(p, Time::us(3)), compute(p, Time::us(5)), compute(p, Time::us(7))};
  Task copy = compute(p, Time::us(2));
  copy.category = Category::kOffload;
  copy.stream = kStreamOffloadOut;
  p.programs[0].tasks.push_back(copy);
  ASSERT_TRUE(p.finalize().ok());
  ReplayOptions o;
  o.rank_speed = {0.8};
  auto r = replay(p, o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->step_time, Time::ns(18750));   // 3.75 + 6.25 + 8.75 us; the copy ends at 2 us
  EXPECT_EQ(r->ranks[0].bucket[static_cast<size_t>(Bucket::kCompute)], Time::ns(18750));
  EXPECT_EQ(r->ranks[0].contention, Time::zero());
  o.rank_speed = {1.0 / 3.0};   // each task rounds on its own: 9 + 15 + 21 us, to the ps
  EXPECT_EQ(replay(p, o)->step_time, Time::us(45));
  o.rank_speed = {0.8, 1.0};   // one speed per rank of the plan, or an error
  EXPECT_FALSE(replay(p, o).ok());
  o.rank_speed = {0.0};
  EXPECT_FALSE(replay(p, o).ok());

  Plan q = one_program_plan(2);
  q.groups.push_back(all_ranks_group(2));
  Task coll;
  coll.kind = TaskKind::kCollective;
  coll.category = Category::kDpComm;
  coll.op = add_op(q, "ar", OpClass::kCollective);
  coll.group = 0;
  coll.dur = Time::us(2);
  q.programs[0].tasks = {compute(q, Time::us(4)), coll};
  ASSERT_TRUE(q.finalize().ok());
  ReplayOptions o2;
  o2.rank_speed = {1.0, 0.5};
  auto r2 = replay(q, o2);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->step_time, Time::us(10));
  EXPECT_EQ(r2->critical_rank, 0u);   // both end at 10 us: the lowest rank
  EXPECT_EQ(r2->ranks[0].bucket[static_cast<size_t>(Bucket::kBubble)], Time::us(4));   // waits for rank 1
  EXPECT_EQ(r2->ranks[1].bucket[static_cast<size_t>(Bucket::kCompute)], Time::us(8));
  for (const auto& st : r2->ranks) EXPECT_EQ(bucket_sum(st), r2->step_time);
  o2.rank_speed.clear();
  EXPECT_EQ(replay(q, o2)->step_time, Time::us(6));
}

// One rank: compute c1 (2 us) and c2 (8 us) on stream 0, a 4 us DP reduction on stream 1 after
// c1, then the optimizer (1 us) after the reduction. Tasks: c1, c2, reduction, optimizer.
// A 4 us DP reduction on the DP stream, over group 0.
Task dp_reduction(Plan& p) {
  Task red;
  red.kind = TaskKind::kCollective;
  red.stream = kStreamDp;
  red.category = Category::kDpComm;
  red.op = add_op(p, "rs", OpClass::kCollective);
  red.dur = Time::us(4);
  return red;
}

Plan side_reduction_plan() {
  Plan p = one_program_plan(1);
  p.groups.push_back(all_ranks_group(1));
  Task c1 = compute(p, Time::us(2));
  Task c2 = compute(p, Time::us(8));
  Task red = dp_reduction(p);
  red.dep[0] = 0;
  Task opt = compute(p, Time::us(1));
  opt.category = Category::kOptimizer;
  opt.dep[0] = 2;
  p.programs[0].tasks = {c1, c2, red, opt};
  return p;
}

TEST(Replay, CommOnSideStreamOverlapsCompute) {
  // step = max(2+8, 2+4) + 1 = 11 us: the reduction is fully hidden.
  Plan p = side_reduction_plan();
  ASSERT_TRUE(p.finalize().ok());
  auto r = replay(p, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->step_time, Time::us(11));
  EXPECT_EQ(r->ranks[0].bucket[static_cast<size_t>(Bucket::kDpExposed)], Time::zero());
  EXPECT_EQ(r->ranks[0].comm_total[static_cast<size_t>(Category::kDpComm)], Time::us(4));

  // Make the reduction 12 us: exposed = 2 + 12 - 10 = 4 us.
  p.programs[0].tasks[2].dur = Time::us(12);
  auto r2 = replay(p, {});
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->step_time, Time::us(15));
  EXPECT_EQ(r2->ranks[0].bucket[static_cast<size_t>(Bucket::kDpExposed)], Time::us(4));
  EXPECT_EQ(bucket_sum(r2->ranks[0]), r2->step_time);
}

TEST(Replay, CollectivesSlowComputeTheyOverlap) {
  // comm_sm_share 0.25: c1 (2 us), then c2 (8 us) while a 4 us reduction runs on stream 1 from
  // 2 us: c2 does 4 x 0.75 = 3 us of its work by 6 us and the other 5 us at full rate, ending
  // at 11 us (1 us late); the optimizer follows: step 12 us.
  Plan p = side_reduction_plan();
  ASSERT_TRUE(p.finalize().ok());
  ReplayOptions o;
  o.comm_sm_share = 0.25;
  auto r = replay(p, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->step_time, Time::us(12));
  EXPECT_EQ(r->ranks[0].contention, Time::us(1));
  EXPECT_EQ(r->ranks[0].bucket[static_cast<size_t>(Bucket::kCompute)], Time::us(11));
  EXPECT_EQ(bucket_sum(r->ranks[0]), r->step_time);
  EXPECT_EQ(r->events, 4u);   // the superseded completion of c2 is not an event of the run
  // Share 0: the step of CommOnSideStreamOverlapsCompute, 11 us.
  o.comm_sm_share = 0;
  EXPECT_EQ(replay(p, o)->step_time, Time::us(11));

  // A second reduction on another stream at the same time: 2 x 0.25 held, c2 at half rate
  // for 4 us (2 us of work), then 6 us: ends at 12, step 13 us.
  p.groups.push_back(all_ranks_group(1));   // a group of its own: one collective in flight per group
  Task red2 = p.programs[0].tasks[2];
  red2.group = 1;
  red2.stream = kStreamGather;
  red2.op = add_op(p, "ag", OpClass::kCollective);
  Task opt = p.programs[0].tasks[3];
  opt.dep[0] = 3;
  p.programs[0].tasks.insert(p.programs[0].tasks.begin() + 3, red2);
  p.programs[0].tasks[4] = opt;
  ASSERT_TRUE(p.finalize().ok());
  o.comm_sm_share = 0.25;
  auto r2 = replay(p, o);
  ASSERT_TRUE(r2.ok());
  EXPECT_NEAR(r2->step_time.count_ps(), Time::us(13).count_ps(), 2);   // re-timings round to 1 ps
  // Past the floor: 2 x 0.6 would stop compute; it keeps kMinComputeRate (0.1): 4 us give
  // 0.4 us of work, the other 7.6 us follow: c2 ends at 13.6 us, step 14.6 us.
  o.comm_sm_share = 0.6;
  auto r3 = replay(p, o);
  ASSERT_TRUE(r3.ok());
  EXPECT_NEAR(r3->step_time.count_ps(), Time::ns(14600).count_ps(), 3);
  // Both groups on copy engines (GroupTable::copy_engine): nothing is slowed, the 11 us step
  // of CommOnSideStreamOverlapsCompute; one of them: the one-reduction figure, 12 us.
  p.groups[0].copy_engine = p.groups[1].copy_engine = true;
  o.comm_sm_share = 0.25;
  auto r4 = replay(p, o);
  ASSERT_TRUE(r4.ok());
  EXPECT_EQ(r4->step_time, Time::us(11));
  EXPECT_EQ(r4->ranks[0].contention, Time::zero());
  p.groups[1].copy_engine = false;
  auto r5 = replay(p, o);
  ASSERT_TRUE(r5.ok());
  EXPECT_EQ(r5->step_time, Time::us(12));
}

// Speed and collectives together: at speed 0.5 and comm_sm_share 0.25 (side_reduction_plan),
// c1 takes 4 us; the 4 us reduction runs 4-8 us while c2 runs at 0.75 x 0.5: 1.5 us of its 8 by
// 8 us, the other 6.5 at 0.5 (13 us): c2 ends at 21 us, the optimizer (2 us) at 23. What the
// collectives added (contention) is c2's 17 us less its 16 at the rank's speed: 1 us.
TEST(Replay, RankSpeedAndCollectivesSlowComputeTogether) {
  Plan p = side_reduction_plan();
  ASSERT_TRUE(p.finalize().ok());
  ReplayOptions o;
  o.comm_sm_share = 0.25;
  o.rank_speed = {0.5};
  auto r = replay(p, o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->step_time, Time::us(23));
  EXPECT_EQ(r->ranks[0].contention, Time::us(1));
  EXPECT_EQ(bucket_sum(r->ranks[0]), r->step_time);
  o.comm_sm_share = 0;   // speed alone: 4 + 16 + 2 us, nothing added by collectives
  auto r2 = replay(p, o);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->step_time, Time::us(22));
  EXPECT_EQ(r2->ranks[0].contention, Time::zero());
}

// Completion events carry their stream next to a version (re-timed tasks). Every stream index,
// the last (kStreamEp) included, must come back as itself: a compute task on stream s beside
// the compute stream's, with collectives slowing compute (versioned events), ends on time.
TEST(Replay, EveryStreamsCompletionComesBackUnderContention) {
  for (uint8_t s = 1; s < kMaxStreams; ++s) {
    Plan p = one_program_plan(1);
    Task a = compute(p, Time::us(3));
    Task b = compute(p, Time::us(5));
    b.stream = s;
    p.programs[0].tasks = {a, b};
    ASSERT_TRUE(p.finalize().ok());
    ReplayOptions o;
    o.comm_sm_share = 0.25;   // no collective runs: nothing is slowed, but events are versioned
    auto r = replay(p, o);
    ASSERT_TRUE(r.ok()) << "stream " << int(s) << ": " << r.status().to_string();
    EXPECT_EQ(r->step_time, Time::us(5)) << "stream " << int(s);
  }
}

TEST(Replay, HostCopiesAreNotSlowedByCollectives) {
  // An offload copy (copy engines, not SMs) beside a collective keeps its time.
  Plan p = one_program_plan(1);
  p.groups.push_back(all_ranks_group(1));
  Task copy = compute(p, Time::us(6));
  copy.stream = kStreamOffloadOut;
  copy.category = Category::kOffload;
  p.programs[0].tasks = {copy, dp_reduction(p)};
  ASSERT_TRUE(p.finalize().ok());
  ReplayOptions o;
  o.comm_sm_share = 0.5;
  auto r = replay(p, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->step_time, Time::us(6));
  EXPECT_EQ(r->ranks[0].contention, Time::zero());
}

TEST(Replay, HostCopiesBothWaysShareThePcieLink) {
  // pcie_duplex 0.5: a 6 us copy to host from 0 and a 6 us copy from host from 3 us (after a
  // 3 us kernel). The first moves 3 us of its bytes alone, the other 3 at half rate: ends at
  // 9 us; the second moves 3 us of bytes at half rate by then and the rest alone: ends at 12.
  Plan p = one_program_plan(1);
  Task k = compute(p, Time::us(3));
  Task out = compute(p, Time::us(6));
  out.stream = kStreamOffloadOut;
  out.category = Category::kOffload;
  Task in = out;
  in.stream = kStreamOffloadIn;
  in.dep[0] = 0;
  p.programs[0].tasks = {k, out, in};
  ASSERT_TRUE(p.finalize().ok());
  ReplayOptions o;
  o.trace_ranks = {0};
  o.pcie_duplex = 0.5;
  auto r = replay(p, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->step_time, Time::us(12));
  for (const TraceRecord& t : r->trace) {
    if (t.task == 1) {
      EXPECT_EQ(t.end, Time::us(9));
    }
    if (t.task == 2) {
      EXPECT_EQ(t.end, Time::us(12));
    }
  }
  EXPECT_EQ(r->events, 3u);
  o.pcie_duplex = 1;   // independent directions: 6 and 9 us
  EXPECT_EQ(replay(p, o)->step_time, Time::us(9));
  // Compute slowdown and copies together: collectives do not slow copies.
  o.pcie_duplex = 0.5;
  o.comm_sm_share = 0.5;
  EXPECT_EQ(replay(p, o)->step_time, Time::us(12));
}

TEST(Replay, SendRecvPipelineOfTwoStages) {
  // Stage 0: f (3 us) -> send (1 us). Stage 1: recv -> f (3 us).
  // step = 3 + 1 + 3 = 7 us; stage 1 idles 3 us (bubble) and 1 us exposed pp comm.
  Plan p;
  p.num_ranks = 2;
  p.programs.resize(2);
  p.program_of_rank = {0, 1};
  PeerTable next{"next", {1, -1}};
  p.peers.push_back(next);
  uint32_t sop = add_op(p, "send", OpClass::kP2p);
  Task f0 = compute(p, Time::us(3));
  Task send;
  send.kind = TaskKind::kSend;
  send.stream = kStreamP2p;
  send.category = Category::kPpComm;
  send.op = sop;
  send.dur = Time::us(1);
  send.dep[0] = 0;
  p.programs[0].tasks = {f0, send};
  Task recv;
  recv.kind = TaskKind::kRecv;
  recv.category = Category::kPpComm;
  recv.op = sop;
  p.programs[1].tasks = {recv, compute(p, Time::us(3))};
  ASSERT_TRUE(p.finalize().ok());
  auto r = replay(p, {});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->step_time, Time::us(7));
  const auto& s1 = r->ranks[1];
  EXPECT_EQ(s1.bucket[static_cast<size_t>(Bucket::kPpExposed)], Time::us(1));
  EXPECT_EQ(s1.bucket[static_cast<size_t>(Bucket::kBubble)], Time::us(3));
  for (const auto& s : r->ranks) EXPECT_EQ(bucket_sum(s), r->step_time);
}

TEST(Replay, DeadlockIsAnErrorNotAHang) {
  // Rank 1 waits for a message nobody sends.
  Plan p;
  p.num_ranks = 2;
  p.programs.resize(2);
  p.program_of_rank = {0, 1};
  p.peers.push_back(PeerTable{"next", {1, -1}});
  uint32_t sop = add_op(p, "send", OpClass::kP2p);
  Task recv;
  recv.kind = TaskKind::kRecv;
  recv.op = sop;
  p.programs[0].tasks = {compute(p, Time::us(1))};
  p.programs[1].tasks = {recv};
  ASSERT_TRUE(p.finalize().ok());
  auto r = replay(p, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().to_string().find("deadlock: rank 1"), std::string::npos);
}

TEST(Replay, MemoryPeakTracksAllocAndFree) {
  // alloc 10 at t0 start, alloc 5 at t1 start, free 10 at t2 end: peak 15.
  Plan p = one_program_plan(1);
  Task a = compute(p, Time::us(1));
  a.mem_alloc = 10;
  Task b = compute(p, Time::us(1));
  b.mem_alloc = 5;
  Task c = compute(p, Time::us(1));
  c.mem_free = 10;
  p.programs[0].tasks = {a, b, c};
  ASSERT_TRUE(p.finalize().ok());
  auto r = replay(p, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ranks[0].peak_dynamic_mem, 15);
}

TEST(Plan, FinalizeRejectsForwardDependency) {
  Plan p = one_program_plan(1);
  Task a = compute(p, Time::us(1), /*dep=*/1);
  p.programs[0].tasks = {a, compute(p, Time::us(1))};
  EXPECT_FALSE(p.finalize().ok());
}

// finalize checks every task with one combined test and names the first broken invariant
// (task_error): each kind of bad task gives its own message, a good plan none.
TEST(Plan, FinalizeNamesEachBrokenInvariant) {
  struct Case {
    const char* what;
    void (*spoil)(Task&);
  };
  const Case cases[] = {
      {"uses stream 10", [](Task& t) { t.stream = kMaxStreams; }},
      {"depends on a later task 1", [](Task& t) { t.dep[1] = 1; }},
      {"depends on a later task 2", [](Task& t) { t.dep[0] = 2; }},
      {"names no op", [](Task& t) { t.op = 1000; }},
      {"names group 3", [](Task& t) {
         t.kind = TaskKind::kCollective;
         t.group = 3;
       }},
      {"names peer table 0", [](Task& t) { t.kind = TaskKind::kSend; }},
      {"uses stream 10", [](Task& t) {   // the first check that fails is reported
         t.stream = 10;
         t.op = 1000;
       }},
  };
  for (const Case& c : cases) {
    Plan p = one_program_plan(1);
    p.programs[0].tasks = {compute(p, Time::us(1)), compute(p, Time::us(1)), compute(p, Time::us(1))};
    c.spoil(p.programs[0].tasks[1]);
    const Status st = p.finalize();
    ASSERT_FALSE(st.ok()) << c.what;
    EXPECT_NE(st.to_string().find(c.what), std::string::npos) << st.to_string();
  }
  Plan p = one_program_plan(2);
  p.peers.push_back(PeerTable{"pp", {1, 0}});
  Task recv = compute(p, Time::us(1));
  recv.kind = TaskKind::kRecv;
  recv.channel = kMaxChannels;
  p.programs[0].tasks = {recv};
  EXPECT_NE(p.finalize().to_string().find("uses channel 4"), std::string::npos);
  recv.channel = 1;
  p.programs[0].tasks = {compute(p, Time::us(1)), recv, recv};
  ASSERT_TRUE(p.finalize().ok());
  EXPECT_EQ(p.programs[0].recvs_on_channel[1], 2u);
  EXPECT_EQ(p.programs[0].recvs_on_channel[0], 0u);
}

TEST(Units, TransferTimeRoundsUpToWholePicoseconds) {
  // 1 byte at 3 B/s = 0.333.. s -> 333333333334 ps
  EXPECT_EQ(transfer_time(Bytes(1), Bandwidth::bytes_per_s(3)).count_ps(), 333333333334);
  EXPECT_EQ(transfer_time(Bytes(1000), Bandwidth::GBps(1)), Time::us(1));
  EXPECT_EQ(compute_time(Flops{1e12}, FlopRate::TFLOPs(1)), Time::ms(1000));
}

}  // namespace
}  // namespace trainsim
