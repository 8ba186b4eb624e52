#include "sim/replay.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "sim/event_queue.h"
#include "sim/flow_driver.h"
#include "sim/network_model.h"

namespace trainsim {

const char* to_string(Bucket b) {
  switch (b) {
    case Bucket::kCompute: return "compute";
    case Bucket::kRecompute: return "recompute";
    case Bucket::kOptimizer: return "optimizer";
    case Bucket::kTpExposed: return "exposed tp comm";
    case Bucket::kDpExposed: return "exposed dp comm";
    case Bucket::kPpExposed: return "exposed pp comm";
    case Bucket::kCpExposed: return "exposed cp comm";
    case Bucket::kEpExposed: return "exposed ep comm";
    case Bucket::kOffloadExposed: return "exposed offload";
    case Bucket::kBubble: return "pipeline bubble / idle";
    case Bucket::kCount: break;
  }
  return "?";
}

namespace {

constexpr uint8_t kEvTaskDone = 0;
constexpr uint8_t kEvCollDone = 1;
constexpr uint8_t kEvFlow = 2;     // flow mode: the network's next completion (versioned)
constexpr int kChannels = kMaxChannels;
constexpr uint8_t kNoCat = 0xff;
constexpr uint8_t kNone8 = 0xff;   // try_advance: no stream of the rank moved on
using StreamMask = uint16_t;       // a bit per stream
constexpr uint32_t kAllStreams = (1u << kMaxStreams) - 1;
static_assert(kMaxStreams <= 16, "RankState keeps a bit per stream in a StreamMask");
// A task-completion event's b: the stream in the low kStreamBits, the version above (push_done).
constexpr uint32_t kStreamBits = 4;
static_assert(kMaxStreams <= (1 << kStreamBits), "a completion event's stream field");

size_t bi(Bucket b) { return static_cast<size_t>(b); }

Bucket bucket_of(Category c) {
  switch (c) {
    case Category::kCompute: return Bucket::kCompute;
    case Category::kRecompute: return Bucket::kRecompute;
    case Category::kOptimizer: return Bucket::kOptimizer;
    case Category::kTpComm: return Bucket::kTpExposed;
    case Category::kDpComm: return Bucket::kDpExposed;
    case Category::kPpComm: return Bucket::kPpExposed;
    case Category::kCpComm: return Bucket::kCpExposed;
    case Category::kEpComm: return Bucket::kEpExposed;
    case Category::kOffload: return Bucket::kOffloadExposed;
    case Category::kCount: break;
  }
  return Bucket::kBubble;
}

// std::llround of a non-negative double, inline: the truncation plus one where the fraction is
// at least a half (the fraction of a double is exact; from 2^52 up every double is an integer).
inline int64_t round_ps(double x) {
  const int64_t i = static_cast<int64_t>(x);
  return i + (x - static_cast<double>(i) >= 0.5 ? 1 : 0);
}

// One stream of a rank: what an event on it reads and writes, in one cache line.
struct StreamState {
  const uint32_t* st = nullptr;   // prog->stream_tasks[s]: data and size
  uint32_t pc = 0;
  uint32_t done = 0;
  uint32_t cur = 0;               // the task at pc (valid while the stream is live)
  uint32_t len = 0;
  uint32_t ver = 0;
  Time last_end;
  Time start;
  Time end;
  Time pend;                      // when the stream's live completion event fires (<= end)
};

struct RankState {
  const Program* prog = nullptr;
  const Task* tasks = nullptr;   // prog->tasks.data(): one load less on the hot path
  uint32_t rank = 0;
  StreamState ss[kMaxStreams];
  StreamMask busy = 0;              // bit per stream
  StreamMask live = 0;              // bit per stream with tasks left (pc < its task count)
  uint8_t blocked_cat = kNoCat;  // why stream 0 last waited on a dependency
  bool traced = false;
  int64_t mem_cur = 0;
  int64_t grad_cur = 0;             // of mem_cur: gradient memory (Task::mem_grads)
  // A stream whose next task found a dependency unfinished (its bit in `waiting`) waits for
  // that dependency's stream (wait_stream) to pass its position (wait_pos); waiters_on[d]: the
  // streams waiting on stream d. Its next task and the counters change no other way, so
  // try_advance leaves it alone until stream d moves on.
  // wake_at[d]: the least ss[d].done that lets one of its waiters go (the least wait_pos + 1).
  StreamMask waiting = 0;
  StreamMask waiters_on[kMaxStreams] = {};
  uint8_t wait_stream[kMaxStreams] = {};
  uint32_t wait_pos[kMaxStreams] = {};
  uint32_t wake_at[kMaxStreams] = {};
  // Compute sharing the GPU with collectives (ReplayOptions::comm_sm_share > 0): collectives in
  // progress, the streams whose running task they slow, and when each such task ends at the
  // present rate (every slowed task of a rank runs at rate_of(colls)). ss[s].ver counts the
  // replacements of stream s's completion event: an event carries it, and an older one is dropped.
  uint8_t colls = 0;
  StreamMask slowed = 0;
  double speed = 1;         // ReplayOptions::rank_speed of this rank
  StreamMask copying = 0;   // offload streams with a host copy running (pcie_duplex < 1)
  // Compute chains (see Replayer::chain): the running task of the compute stream stands for
  // `chain` consecutive tasks of the stream taking `chain_dur` at full rate; 1 and its own dur
  // otherwise. xdep: bit per task of the program, set where a task of another stream depends on it.
  uint32_t chain = 1;
  Time chain_dur;
  const uint64_t* xdep = nullptr;
  // Collectives inside the chain (Replayer::chain): their summed duration (the collectives'
  // SM share slows compute only). While compute runs below its rate (rated_), where the chain
  // stands: its task mix_pos ends at mix_end at the present rate mix_rate (the tasks before it
  // have ended), each later one taking its own duration at that rate, rounded to the ps as a
  // task of its own would be.
  Time chain_comm;
  Time mix_end;
  uint32_t mix_pos = 0;
  double mix_rate = 1;
  Time mix_rest;                // the durations of the chain's tasks after mix_pos
};

struct Message {
  Time sent, arrived;
};

struct Mailbox {               // FIFO of messages for one (rank, channel), fixed capacity
  uint32_t base = 0, cap = 0, head = 0, tail = 0;
};

// Rendezvous state of one group instance with simulated members.
struct Pending {
  Time maxt;                   // latest arrival so far
  uint32_t arrivals = 0, needed = 0, op = 0;
  uint8_t stream = 0;
};

// Per group: state for the instances that have simulated members. Full mode indexes it by
// instance (every rank is simulated and local index == rank); fast mode only keeps the few
// instances its representatives belong to (a "slot" each), so nothing is sized by the
// number of instances, which can be the number of ranks (dp-replica, cp-ring with cp = 1).
struct GroupState {
  std::vector<Pending> pend;   // by slot
  std::vector<Time> actual;    // flow mode (full mode only): the instance's duration (done - start)
  // The simulated members of each slot, local indices ascending (CSR). Full mode points
  // into the plan's own table.
  const uint32_t* member_offsets = nullptr;
  const uint32_t* members = nullptr;
  std::vector<uint32_t> own_offsets, own_members;    // fast mode: what the pointers point to
  std::vector<std::pair<uint32_t, uint32_t>> slot_of_inst;   // fast mode: (instance, slot), sorted
  bool any_alone = false;   // some slot has one simulated member (analytic network only: chains)
};

class Replayer {
 public:
  Replayer(const Plan& plan, const ReplayOptions& opts)
      : plan_(plan), opts_(opts), flow_(opts.network != nullptr), fast_(opts.fast),
        share_(opts.comm_sm_share), contend_(opts.comm_sm_share > 0),
        rated_(contend_ || !opts.rank_speed.empty()), duplex_(opts.pcie_duplex),
        shared_pcie_(opts.pcie_duplex < 1), versioned_(contend_ || shared_pcie_),
        chains_(opts.chain_compute) {}

  Result<ReplayResult> run();

 private:
  // Starts what rank li can start at `now`; `moved`: the stream whose task just ended (its
  // waiters may go on), or kNone8.
  void try_advance(uint32_t li, Time now, uint8_t moved);
  // try_advance(li, now, s) after stream s's task ended, in the case most events are: s is
  // the only stream of the rank that could start anything (the others are busy, done or
  // waiting on streams other than s), and its next task starts at once without waiting (no
  // dependency, not a receive). Returns false, having changed nothing, in every other case.
  bool start_next(uint32_t li, uint8_t s, Time now);
  // The state slot of local rank li in group g (kNoDep: not a member); of instance `inst`.
  uint32_t slot(uint32_t li, uint8_t g) const {
    return fast_ ? slot_[li * ng_ + g] : plan_.groups[g].instance_of_rank[li];
  }
  uint32_t slot_of_inst(uint32_t g, uint32_t inst) const {
    if (!fast_) return inst;
    const auto& v = gs_[g].slot_of_inst;
    if (v.size() == 1 && v[0].first == inst) return v[0].second;   // most groups: one slot
    auto it = std::lower_bound(v.begin(), v.end(), std::make_pair(inst, 0u));
    SIM_CHECK(it != v.end() && it->first == inst, "group %u instance %u has no simulated member", g, inst);
    return it->second;
  }
  void setup_groups(const std::vector<uint32_t>& sim);
  void begin(uint32_t li, uint8_t s, const Task& t, Time now);
  __attribute__((always_inline)) inline void begin_inline(uint32_t li, uint8_t s, const Task& t, Time now);
  // The paths of try_advance that most events do not take, out of line (the hot loop keeps
  // its registers). unwait: stream s's dependency has finished (it stops waiting) or not.
  // deps_done: whether t's dependencies have finished; if not, stream s waits on the first
  // unfinished one. receive: takes the message t (the task at stream s's head) waits for,
  // if it has arrived, and completes t.
  __attribute__((noinline)) bool unwait(RankState& rs, uint8_t s);
  __attribute__((noinline)) bool deps_done(RankState& rs, uint8_t s, const Task& t);
  __attribute__((noinline)) bool receive(uint32_t li, uint8_t s, uint32_t ti, Time now);
  // Stream s of rank li moves past its current task.
  // Task t allocates its memory (and frees `freed` at once: a receive); the peak, and the part of
  // it that is gradients (Task::mem_grads), move with it.
  static void allocate(RankState& rs, RankStats& st, const Task& t, int64_t freed = 0) {
    rs.mem_cur += t.mem_alloc - freed;
    if (t.mem_grads) rs.grad_cur += t.mem_alloc;
    if (rs.mem_cur > st.peak_dynamic_mem) {
      st.peak_dynamic_mem = rs.mem_cur;
      st.peak_grad_mem = rs.grad_cur;
    }
  }
  void advance(RankState& rs, uint8_t s, uint32_t n = 1) {
    rs.ss[s].done += n;
    if ((rs.ss[s].pc += n) == rs.ss[s].len) rs.live &= static_cast<StreamMask>(~(1u << s));
    else rs.ss[s].cur = rs.ss[s].st[rs.ss[s].pc];
  }
  // A compute task t starting now on the compute stream, and the tasks after it on the stream
  // that would each start the moment the one before ends, run as one chain: one completion
  // event instead of one per task. A task u joins the chain behind its predecessor p when
  //  - u is a compute task of p's category (so the time accounting is the same);
  //  - no task of another stream depends on p (it would wake when p ends, not when the chain
  //    does), and p frees no memory, u allocates none (the rank's memory changes only at the
  //    chain's ends, as it would have);
  //  - every dependency of u on another stream has finished already (it would not wait).
  //  - or u is a collective of a group whose instance has no other simulated member (fast
  //    mode's collapsed TP and EP groups): it starts the moment it is posted and takes its
  //    duration (analytic network only), like a kernel that collectives do not slow.
  // Back-to-back kernels on one stream end where their summed durations say, so the step is
  // the same; while collectives share the GPU the chain times its tasks one by one, each slowed
  // and rounded to the picosecond as a task of its own (its collectives not slowed; chain_end,
  // chain_rerate), so the step is exactly that of an event per task. Traced ranks get a record
  // per task, timed as the chain timed it (the same records as an event per task).
  // Sets rs.chain / rs.chain_dur / rs.chain_comm; returns the chain's duration at full rate.
  Time chain(uint32_t li, RankState& rs, const Task& t) {
    rs.chain = 1;
    rs.chain_dur = t.dur;
    rs.chain_comm = Time::zero();
    if (!chains_) return t.dur;
    const uint32_t pc = rs.ss[kStreamCompute].pc, len = rs.ss[kStreamCompute].len;
    const uint32_t* st = rs.ss[kStreamCompute].st;
    uint32_t prev = st[pc];
    Time d = t.dur, comm = Time::zero();
    uint32_t k = pc + 1;
    for (; k < len; ++k) {
      const Task& p = rs.tasks[prev];
      if (p.mem_free != 0 || ((rs.xdep[prev >> 6] >> (prev & 63)) & 1u)) break;
      const uint32_t ui = st[k];
      const Task& u = rs.tasks[ui];
      if (u.mem_alloc != 0) break;
      const bool coll = u.kind == TaskKind::kCollective;
      if (coll ? !local_collective(li, u) : u.kind != TaskKind::kCompute || u.category != t.category) break;
      if ((u.dep[0] != kNoDep || u.dep[1] != kNoDep) && !deps_met(rs, u)) break;
      if (coll) comm = comm + u.dur;
      d = d + u.dur;
      prev = ui;
    }
    rs.chain = k - pc;
    rs.chain_dur = d;
    rs.chain_comm = comm;
    return d;
  }
  // A collective that rank li alone runs among the simulated ranks (analytic network), where
  // its running slows no compute beside it (none runs off the compute stream).
  bool local_collective(uint32_t li, const Task& u) const {
    if (!gs_[u.group].any_alone || (contend_ && rs_[li].prog->compute_off_stream)) return false;
    const uint32_t sl = slot(li, u.group);
    return sl != kNoDep && gs_[u.group].pend[sl].needed == 1;
  }
  // Task u's duration at rate r, as the replay times a task of its own: compute slowed (to
  // the ps), collectives not.
  static Time wall(const Task& u, double r) {
    if (u.kind == TaskKind::kCollective || r == 1.0) return u.dur;
    return Time::ps(round_ps(static_cast<double>(u.dur.count_ps()) / r));
  }
  // The end of the compute stream's chain from its position (mix_pos ends at mix_end), the
  // tasks after it at mix_rate.
  __attribute__((noinline)) Time chain_end(const RankState& rs) const {
    if (rs.mix_rate == 1.0) return rs.mix_end + rs.mix_rest;   // every task at its duration
    const uint32_t* st = rs.ss[kStreamCompute].st + rs.ss[kStreamCompute].pc;
    Time e = rs.mix_end;
    for (uint32_t j = rs.mix_pos + 1; j < rs.chain; ++j) e = e + wall(rs.tasks[st[j]], rs.mix_rate);
    return e;
  }
  // The chain's rate changes from mix_rate to r1 at `now`: the tasks that ended by then are
  // passed (each next one started at the old rate), the running one is re-timed as rerate
  // re-times a task (a collective keeps its end), the later ones take r1.
  void chain_rerate(RankState& rs, double r1, Time now) {
    const uint32_t* st = rs.ss[kStreamCompute].st + rs.ss[kStreamCompute].pc;
    while (rs.mix_pos + 1 < rs.chain && rs.mix_end <= now) {
      if (rs.traced) mix_ends_[&rs - rs_.data()].push_back(rs.mix_end);
      const Task& u = rs.tasks[st[++rs.mix_pos]];
      rs.mix_rest = rs.mix_rest - u.dur;
      rs.mix_end = rs.mix_end + wall(u, rs.mix_rate);
    }
    if (rs.tasks[st[rs.mix_pos]].kind != TaskKind::kCollective) {
      const double left = static_cast<double>((rs.mix_end - now).count_ps()) * rs.mix_rate;   // full-rate ps
      rs.mix_end = now + Time::ps(round_ps(std::max(0.0, left) / r1));
    }
    rs.mix_rate = r1;
  }
  // Whether the dependencies of u (a task of the compute stream) on other streams have
  // finished; those on the compute stream come before u in it and finish first.
  bool deps_met(const RankState& rs, const Task& u) const {
    for (uint32_t d : u.dep) {
      if (d == kNoDep) continue;
      const Task& dt = rs.tasks[d];
      if (dt.stream != kStreamCompute && rs.ss[dt.stream].done <= rs.prog->pos_in_stream[d]) return false;
    }
    return true;
  }
  void complete(uint32_t li, uint8_t s, Time now);
  void arrive(uint32_t li, uint8_t s, const Task& t, Time now);
  // The end of the task stream s of rank li runs: the event carries the stream's re-timing count.
  void push_done(uint32_t li, uint8_t s, Time when) {
    if (versioned_) {
      RankState& rs = rs_[li];
      rs.ss[s].end = rs.ss[s].pend = when;
      q_.push(when, 0, kEvTaskDone, li, s | (rs.ss[s].ver << kStreamBits));
    } else {
      q_.push(when, 0, kEvTaskDone, li, s);
    }
  }
  // A task that occupies stream s for its duration starts: compute tasks are slowed while
  // collectives run (contend_) and at the rank's speed, everything else takes Task::dur.
  __attribute__((always_inline)) void start_timed(uint32_t li, uint8_t s, const Task& t, Time now) {
    if (t.category == Category::kOffload) {   // host copies (copy engines): never slowed by collectives
      if (shared_pcie_) copy_start(li, s, t, now);
      else push_done(li, s, now + t.dur);
      return;
    }
    const Time dur = s == kStreamCompute && t.kind == TaskKind::kCompute ? chain(li, rs_[li], t) : t.dur;
    if (rated_ && t.kind == TaskKind::kCompute) {
      RankState& rs = rs_[li];
      rs.slowed |= static_cast<StreamMask>(1u << s);
      const double rate = rate_of(rs, rs.colls);
      if (s == kStreamCompute) {   // a chain: its tasks timed one by one (chain_end)
        rs.mix_pos = 0;
        rs.mix_rest = dur - t.dur;
        if (rs.traced) mix_ends_[li].clear();
        if (rate == 1.0) {
          rs.mix_rate = 1.0;
          rs.mix_end = now + t.dur;
          push_done(li, s, now + dur);
        } else {
          start_slowed_chain(li, rs, t, now);
        }
        return;
      }
      push_done(li, s, rate == 1.0 ? now + dur : slowed_end(rs, dur, now));
    } else {
      push_done(li, s, now + dur);
    }
  }
  // The rate of rank rs's compute while `colls` of its collectives run.
  double rate_of(const RankState& rs, uint8_t colls) const {
    return std::max(kMinComputeRate, 1.0 - share_ * colls) * rs.speed;
  }
  // A chain starting while collectives run (the state start_timed set, then its first end).
  __attribute__((noinline)) void start_slowed_chain(uint32_t li, RankState& rs, const Task& t, Time now) {
    rs.mix_rate = rate_of(rs, rs.colls);
    rs.mix_end = now + wall(t, rs.mix_rate);
    push_done(li, kStreamCompute, chain_end(rs));
  }
  __attribute__((noinline)) Time slowed_end(const RankState& rs, Time dur, Time now) const {
    return now + Time::ps(round_ps(static_cast<double>(dur.count_ps()) / rate_of(rs, rs.colls)));
  }
  // What collectives added to the slowed task (chain) of stream s that ends at `now`: its span
  // less its duration at the rank's own speed (a chain's collectives at their duration).
  static Time contention(const RankState& rs, uint8_t s, const Task& t, Time now) {
    const Time span = now - rs.ss[s].start;
    const Time nominal = s == kStreamCompute ? rs.chain_dur : t.dur;
    if (rs.speed == 1.0) return span - nominal;
    const Time comm = s == kStreamCompute ? rs.chain_comm : Time::zero();
    const Time own = comm + Time::ps(round_ps(static_cast<double>((nominal - comm).count_ps()) / rs.speed));
    return span > own ? span - own : Time::zero();   // the chain's tasks round one by one
  }
  // Traced ranks: a record per task of the chain that just ended on the compute stream.
  __attribute__((noinline)) void trace_chain(const RankState& rs, Time now);
  // Whether collective t holds SMs while it runs: not on a copy-engine group (GroupTable).
  bool holds_sms(const Task& t) const { return !plan_.groups[t.group].copy_engine; }
  // The rank's collective count changes by `delta`: its slowed tasks continue at the new rate.
  void colls_change(uint32_t li, int delta, Time now) {
    RankState& rs = rs_[li];
    if (rs.slowed) retime(li, delta, now);
    else rs.colls = static_cast<uint8_t>(rs.colls + delta);
  }
  __attribute__((noinline)) void retime(uint32_t li, int delta, Time now);
  // Host copies (shared_pcie_): a copy starts or ends on offload stream s (the compiler puts
  // them on kStreamOffloadOut / kStreamOffloadIn only); a copy running on the other one changes
  // rate (pcie_duplex while both run, else 1).
  static uint8_t other_copy_stream(uint8_t s) { return s == kStreamOffloadOut ? kStreamOffloadIn : kStreamOffloadOut; }
  __attribute__((noinline)) void copy_start(uint32_t li, uint8_t s, const Task& t, Time now);
  __attribute__((noinline)) void copy_end(uint32_t li, uint8_t s, Time now);
  // Stream s's running task continues from `now` at rate r1 instead of r0. Its completion event
  // is replaced only when it would come too late; one that comes early (the task slowed since)
  // is put back at the new end when it fires (run()).
  void rerate(uint32_t li, uint8_t s, double r0, double r1, Time now) {
    RankState& rs = rs_[li];
    if (s == kStreamCompute) {   // a chain (Replayer::chain_rerate)
      (void)r0;
      chain_rerate(rs, r1, now);
      rs.ss[s].end = chain_end(rs);
    } else {
      const double left = static_cast<double>((rs.ss[s].end - now).count_ps()) * r0;   // full-rate ps
      rs.ss[s].end = now + Time::ps(round_ps(std::max(0.0, left) / r1));
    }
    if (rs.ss[s].end < rs.ss[s].pend) {
      ++rs.ss[s].ver;
      push_done(li, s, rs.ss[s].end);
    }
  }
  // Flow mode. A transfer is a collective instance (kind 0: a = group, b = instance) or a send
  // (kind 1: a = local rank, b = stream) whose flows are in the network.
  struct Xfer {
    uint32_t left = 0;   // flows not finished
    Time start, floor, tail;
    uint8_t kind = 0;
    uint32_t a = 0, b = 0;
  };
  // Starts the traffic at `now`; returns false when it is analytic (caller uses Task::dur).
  bool start_traffic(uint8_t kind, uint32_t a, uint32_t b, Time now);
  void finish_xfer(uint32_t x, Time last_flow_end);
  void schedule_done(uint8_t kind, uint32_t a, uint32_t b, Time start, Time done);
  Time comm_dur(const RankState& rs, uint8_t s, const Task& t, Time now) const;
  // Order-sensitive 64-bit mix of the event sequence (a multiply-xorshift step per word).
  // run() keeps the state in a local, which stays in a register across the handlers' calls.
  static uint64_t fp_mix(uint64_t fp, uint64_t v) {
    fp = (fp ^ v) * 0x9E3779B97F4A7C15ull;
    return fp ^ (fp >> 29);
  }

  const Plan& plan_;
  const ReplayOptions& opts_;
  const bool flow_;                // opts_.network is set: comm goes through the flow model
  const bool fast_;                // opts_.fast
  const double share_;             // opts_.comm_sm_share
  const bool contend_;             // share_ > 0
  const bool rated_;               // compute may run below its rate: contend_ or rank speeds
  const double duplex_;            // opts_.pcie_duplex
  const bool shared_pcie_;         // duplex_ < 1
  const bool versioned_;           // completion events carry the stream's re-timing count
  const bool chains_;              // opts_.chain_compute
  std::vector<int32_t> local_of_rank_;
  std::vector<RankState> rs_;
  // Traced ranks (by local index): the ends of the running chain's tasks before mix_pos, as
  // re-timings passed them (trace_chain).
  std::vector<std::vector<Time>> mix_ends_;
  std::vector<RankStats> stats_;
  std::vector<GroupState> gs_;
  std::vector<uint32_t> slot_;     // fast mode: [local rank * groups + group] -> slot
  size_t ng_ = 0;                  // plan_.groups.size()
  std::vector<Mailbox> mbox_;
  std::vector<Message> msgs_;
  EventQueue q_;
  std::vector<TraceRecord> trace_;
  // flow mode
  std::unique_ptr<FlowNetwork> net_;
  std::unique_ptr<FlowEventDriver> drv_;
  NetworkTraffic traffic_;
  std::vector<Xfer> xfers_;
  std::vector<uint32_t> free_xfers_;
  std::vector<uint32_t> xfer_of_slot_;
  std::vector<FlowCompletion> done_;
  Status net_err_;
  uint64_t as_flows_ = 0;
};

bool Replayer::start_traffic(uint8_t kind, uint32_t a, uint32_t b, Time now) {
  if (kind == 0) {
    const GroupState& g = gs_[a];   // flow mode runs in full mode: slot == instance
    opts_.network->collective(plan_, a, b, g.pend[b].op, &traffic_);
  } else {
    const RankState& rs = rs_[a];
    const Task& t = rs.tasks[rs.ss[b].cur];
    const int32_t peer = plan_.peers[t.group].peer_of_rank[rs.rank];
    SIM_CHECK(peer >= 0, "rank %u sends on '%s' but has no peer", rs.rank,
              plan_.peers[t.group].name.c_str());
    opts_.network->p2p(plan_, rs.rank, static_cast<uint32_t>(peer), t.op, &traffic_);
  }
  if (traffic_.analytic) return false;
  uint32_t x;
  if (!free_xfers_.empty()) {
    x = free_xfers_.back();
    free_xfers_.pop_back();
  } else {
    x = static_cast<uint32_t>(xfers_.size());
    xfers_.emplace_back();
  }
  Xfer& xf = xfers_[x];
  xf = Xfer{0, now, traffic_.floor, traffic_.tail, kind, a, b};
  ++as_flows_;
  for (const FlowSpec& f : traffic_.flows) {
    Result<FlowId> id = net_->start(now, f.path, f.size, f.cap);
    if (!id.ok()) {   // e.g. a link of capacity 0 on its path: report it, do not hang
      if (net_err_.ok()) net_err_ = id.status();
      continue;
    }
    if (xfer_of_slot_.size() <= id.value().slot) xfer_of_slot_.resize(id.value().slot + 1);
    xfer_of_slot_[id.value().slot] = x;
    ++xfers_[x].left;
  }
  if (xfers_[x].left == 0) finish_xfer(x, now);
  else drv_->sync();
  return true;
}

void Replayer::schedule_done(uint8_t kind, uint32_t a, uint32_t b, Time start, Time done) {
  if (kind == 0) {
    gs_[a].actual[b] = done - start;
    q_.push(done, 0, kEvCollDone, a, b);
  } else {
    push_done(a, static_cast<uint8_t>(b), done);
  }
}

void Replayer::finish_xfer(uint32_t x, Time last_flow_end) {
  const Xfer xf = xfers_[x];
  free_xfers_.push_back(x);
  const Time done = max(last_flow_end, xf.start + xf.floor) + xf.tail;
  schedule_done(xf.kind, xf.a, xf.b, xf.start, done);
}

// The duration a finished comm task counts for: its bound cost in analytic mode; in flow mode
// what the network made of it.
Time Replayer::comm_dur(const RankState& rs, uint8_t s, const Task& t, Time now) const {
  if (!flow_) return t.dur;
  if (t.kind == TaskKind::kCollective) {
    return gs_[t.group].actual[slot(static_cast<uint32_t>(&rs - rs_.data()), t.group)];
  }
  if (t.kind == TaskKind::kSend) return now - rs.ss[s].start;
  return t.dur;
}

void Replayer::begin(uint32_t li, uint8_t s, const Task& t, Time now) { begin_inline(li, s, t, now); }

inline void Replayer::begin_inline(uint32_t li, uint8_t s, const Task& t, Time now) {
  RankState& rs = rs_[li];
  RankStats& st = stats_[li];
  if (s == kStreamCompute) {
    Time gap = now - rs.ss[0].last_end;
    if (gap > Time::zero()) {
      Bucket b = rs.blocked_cat == kNoCat ? Bucket::kBubble
                                          : bucket_of(static_cast<Category>(rs.blocked_cat));
      st.bucket[bi(b)] += gap;
    }
    rs.blocked_cat = kNoCat;
  }
  rs.ss[s].start = now;
  rs.busy |= static_cast<StreamMask>(1u << s);
  allocate(rs, st, t);
}

void Replayer::retime(uint32_t li, int delta, Time now) {
  RankState& rs = rs_[li];
  const double r0 = rate_of(rs, rs.colls);
  rs.colls = static_cast<uint8_t>(rs.colls + delta);
  const double r1 = rate_of(rs, rs.colls);
  for (uint32_t b = rs.slowed; b != 0; b &= b - 1) rerate(li, static_cast<uint8_t>(__builtin_ctz(b)), r0, r1, now);
}

void Replayer::copy_start(uint32_t li, uint8_t s, const Task& t, Time now) {
  RankState& rs = rs_[li];
  const uint8_t o = other_copy_stream(s);
  const bool both = (rs.copying >> o) & 1u;
  rs.copying |= static_cast<StreamMask>(1u << s);
  if (both) rerate(li, o, 1.0, duplex_, now);
  push_done(li, s, both ? now + Time::ps(round_ps(static_cast<double>(t.dur.count_ps()) / duplex_)) : now + t.dur);
}

void Replayer::copy_end(uint32_t li, uint8_t s, Time now) {
  RankState& rs = rs_[li];
  rs.copying &= static_cast<StreamMask>(~(1u << s));
  const uint8_t o = other_copy_stream(s);
  if ((rs.copying >> o) & 1u) rerate(li, o, duplex_, 1.0, now);
}

void Replayer::arrive(uint32_t li, uint8_t s, const Task& t, Time now) {
  if (contend_ && holds_sms(t)) colls_change(li, +1, now);
  const GroupTable& gt = plan_.groups[t.group];
  Pending& p = gs_[t.group].pend[slot(li, t.group)];
  const uint32_t inst = gt.instance_of_rank[rs_[li].rank];
  if (p.arrivals == 0) {
    p.op = t.op;
    p.stream = s;
    p.maxt = now;
  } else {
    SIM_CHECK(p.op == t.op && p.stream == s,
              "group '%s' instance %u: rank %u posts op '%s' on stream %d while op '%s' on stream %d "
              "is pending (program order differs between members)",
              gt.name.c_str(), inst, rs_[li].rank, plan_.ops[t.op].name.c_str(), s,
              plan_.ops[p.op].name.c_str(), p.stream);
    p.maxt = max(p.maxt, now);
  }
  if (++p.arrivals == p.needed) {
    if (!flow_) {
      q_.push(p.maxt + t.dur, 0, kEvCollDone, t.group, inst);
    } else if (!start_traffic(0, t.group, inst, p.maxt)) {   // flow mode: full, slot == inst
      schedule_done(0, t.group, inst, p.maxt, p.maxt + t.dur);
    }
  }
}

bool Replayer::unwait(RankState& rs, uint8_t s) {
  const uint8_t ws = rs.wait_stream[s];
  if (rs.ss[ws].done <= rs.wait_pos[s]) return false;
  rs.waiting &= static_cast<StreamMask>(~(1u << s));
  rs.waiters_on[ws] &= static_cast<StreamMask>(~(1u << s));
  rs.wake_at[ws] = 0xffffffffu;
  for (uint32_t w = rs.waiters_on[ws]; w != 0; w &= w - 1)
    rs.wake_at[ws] = std::min(rs.wake_at[ws], rs.wait_pos[__builtin_ctz(w)] + 1);
  return true;
}

bool Replayer::deps_done(RankState& rs, uint8_t s, const Task& t) {
  const Program& prog = *rs.prog;
  for (uint32_t d : t.dep) {
    if (d == kNoDep) continue;
    const Task& dt = rs.tasks[d];
    if (rs.ss[dt.stream].done <= prog.pos_in_stream[d]) {
      const uint32_t pos = prog.pos_in_stream[d];
      rs.wake_at[dt.stream] = rs.waiters_on[dt.stream] ? std::min(rs.wake_at[dt.stream], pos + 1) : pos + 1;
      rs.waiting |= static_cast<StreamMask>(1u << s);
      rs.waiters_on[dt.stream] |= static_cast<StreamMask>(1u << s);
      rs.wait_stream[s] = dt.stream;
      rs.wait_pos[s] = pos;
      if (s == kStreamCompute && is_comm(dt.category)) rs.blocked_cat = static_cast<uint8_t>(dt.category);
      return false;
    }
  }
  return true;
}

bool Replayer::receive(uint32_t li, uint8_t s, uint32_t ti, Time now) {
  RankState& rs = rs_[li];
  const Task& t = rs.tasks[ti];
  Mailbox& mb = mbox_[li * kChannels + t.channel];
  if (mb.head == mb.tail) return false;
  const Message m = msgs_[mb.base + (mb.head % mb.cap)];
  ++mb.head;
  if (s == kStreamCompute) {
    RankStats& sts = stats_[li];
    Time gap = now - rs.ss[0].last_end;
    if (gap > Time::zero()) {
      Time from = max(m.sent, rs.ss[0].last_end);
      Time exposed = m.arrived > from ? m.arrived - from : Time::zero();
      if (exposed > gap) exposed = gap;
      sts.bucket[bi(Bucket::kPpExposed)] += exposed;
      sts.bucket[bi(Bucket::kBubble)] += gap - exposed;
    }
    rs.blocked_cat = kNoCat;
  }
  allocate(rs, stats_[li], t, t.mem_free);
  if (rs.traced) trace_.push_back(TraceRecord{rs.rank, ti, now, now});
  advance(rs, s);
  rs.ss[s].last_end = now;
  return true;
}

inline bool Replayer::start_next(uint32_t li, uint8_t s, Time now) {
  RankState& rs = rs_[li];
  // try_advance's candidate set, when no waiter of s is due (recheck = 0), is this; one pass
  // over it visits stream s alone, starts the task and ends (nothing sets progress).
  const uint32_t cand = rs.live & ~rs.busy & ~rs.waiting & kAllStreams;
  if (cand != (1u << s) || (rs.waiters_on[s] && rs.ss[s].done >= rs.wake_at[s])) return false;
  const Task& t = rs.tasks[rs.ss[s].cur];
  if (t.dep[0] != kNoDep || t.dep[1] != kNoDep || t.kind == TaskKind::kRecv || (t.kind == TaskKind::kSend && flow_))
    return false;
  begin_inline(li, s, t, now);
  if (t.kind == TaskKind::kCollective) arrive(li, s, t, now);
  else start_timed(li, s, t, now);
  return true;
}

void Replayer::try_advance(uint32_t li, Time now, uint8_t moved) {
  RankState& rs = rs_[li];
  const Task* const tasks = rs.tasks;
  // Waiting streams to look at again: those waiting on a stream that moved on (the others
  // are still waiting, as their dependency's stream has not moved).
  uint32_t recheck = moved != kNone8 && rs.waiters_on[moved] && rs.ss[moved].done >= rs.wake_at[moved]
                         ? rs.waiters_on[moved] : 0u;
  bool progress = true;
  while (progress) {
    progress = false;
    // Streams that are busy or done cannot start anything, and working on stream s changes
    // neither bit of another stream: visit the others in ascending order.
    for (uint32_t cand = rs.live & ~rs.busy & ~(rs.waiting & ~recheck) & kAllStreams; cand != 0; cand &= cand - 1) {
      const uint8_t s = static_cast<uint8_t>(__builtin_ctz(cand));
      if ((rs.waiting & (1u << s)) && !unwait(rs, s)) continue;   // still waiting
      // Runs the receives that find their message, then starts one task (the stream is then
      // busy), or stops where the stream must wait.
      while (!(rs.busy & (1u << s)) && (rs.live & (1u << s))) {
        const uint32_t ti = rs.ss[s].cur;
        const Task& t = tasks[ti];
        if ((t.dep[0] != kNoDep || t.dep[1] != kNoDep) && !deps_done(rs, s, t)) break;
        if (t.kind == TaskKind::kRecv) {
          if (!receive(li, s, ti, now)) break;   // message not here yet: woken by its delivery
          progress = true;
          // Its waiters look again: those above s in this pass, the others in the next.
          if (rs.waiters_on[s] && rs.ss[s].done >= rs.wake_at[s]) {
            recheck |= rs.waiters_on[s];
            cand |= rs.waiters_on[s] & rs.live & ~rs.busy & ~((2u << s) - 1);
          }
          continue;
        }
        begin(li, s, t, now);
        if (t.kind == TaskKind::kCollective) {
          arrive(li, s, t, now);
        } else if (t.kind == TaskKind::kSend && flow_ && start_traffic(1, li, s, now)) {
          // flow mode: the send ends when its flow does (kEvTaskDone from finish_xfer)
        } else {  // compute or send: occupies the stream for its duration
          start_timed(li, s, t, now);
        }
      }
    }
  }
}

void Replayer::complete(uint32_t li, uint8_t s, Time now) {
  RankState& rs = rs_[li];
  const uint32_t ti = rs.ss[s].cur;
  const Task& t = rs.tasks[ti];
  RankStats& st = stats_[li];
  const Time dur = comm_dur(rs, s, t, now);
  if (is_comm(t.category)) st.comm_total[static_cast<size_t>(t.category)] += dur;
  if (s == kStreamCompute) {
    if (t.kind == TaskKind::kCollective) {
      // Waiting for the slowest member is sync skew (idle); the transfer itself is exposed comm.
      Time span = now - rs.ss[s].start;
      Time comm = dur < span ? dur : span;
      st.bucket[bi(bucket_of(t.category))] += comm;
      st.bucket[bi(Bucket::kBubble)] += span - comm;
    } else if (rs.chain_comm > Time::zero()) {
      // A chain with collectives: each collective's duration is its own exposed comm, the rest
      // of the span (slowdown included) the compute's.
      const uint32_t* cs = rs.ss[s].st + rs.ss[s].pc;
      for (uint32_t j = 1; j < rs.chain; ++j) {
        const Task& u = rs.tasks[cs[j]];
        if (u.kind != TaskKind::kCollective) continue;
        st.comm_total[static_cast<size_t>(u.category)] += u.dur;
        st.bucket[bi(bucket_of(u.category))] += u.dur;
      }
      st.bucket[bi(bucket_of(t.category))] += (now - rs.ss[s].start) - rs.chain_comm;
    } else {
      st.bucket[bi(bucket_of(t.category))] += now - rs.ss[s].start;
    }
  }
  if (t.kind == TaskKind::kSend) {
    const int32_t peer = plan_.peers[t.group].peer_of_rank[rs.rank];
    SIM_CHECK(peer >= 0, "rank %u sends on '%s' but has no peer", rs.rank,
              plan_.peers[t.group].name.c_str());
    const int32_t pl = local_of_rank_[peer];
    SIM_CHECK(pl >= 0, "rank %u sends to rank %d, which is not simulated", rs.rank, peer);
    Mailbox& mb = mbox_[pl * kChannels + t.channel];
    SIM_CHECK(mb.tail - mb.head < mb.cap, "mailbox of rank %d channel %d overflows (cap %u)", peer,
              t.channel, mb.cap);
    msgs_[mb.base + (mb.tail % mb.cap)] = Message{rs.ss[s].start, now};
    ++mb.tail;
  }
  rs.busy &= static_cast<StreamMask>(~(1u << s));
  if (shared_pcie_ && t.category == Category::kOffload) copy_end(li, s, now);
  // A chain (compute stream only) ends with its last task: that one frees its memory.
  const uint32_t n = s == kStreamCompute ? rs.chain : 1;
  const Task& last = n == 1 ? t : rs.tasks[rs.ss[s].st[rs.ss[s].pc + n - 1]];
  if (rated_) {
    if (rs.slowed & (1u << s)) st.contention += contention(rs, s, t, now);
    rs.slowed &= static_cast<StreamMask>(~(1u << s));
    if (contend_ && t.kind == TaskKind::kCollective && holds_sms(t)) colls_change(li, -1, now);
  }
  if (rs.traced) {
    if (n == 1) trace_.push_back(TraceRecord{rs.rank, ti, rs.ss[s].start, now});
    else trace_chain(rs, now);
  }
  if (s == kStreamCompute) {
    rs.chain = 1;
    rs.chain_comm = Time::zero();
  }
  advance(rs, s, n);
  rs.ss[s].last_end = now;
  rs.mem_cur -= last.mem_free;
  if (t.kind == TaskKind::kSend) {
    const int32_t pl = local_of_rank_[plan_.peers[t.group].peer_of_rank[rs.rank]];
    try_advance(static_cast<uint32_t>(pl), now, kNone8);
  }
  if (!start_next(li, s, now)) try_advance(li, now, s);
}

void Replayer::trace_chain(const RankState& rs, Time now) {
  // Each task's end as the chain timed it: without the collectives' slowdown its duration
  // after the one before; with it, the ends passed at re-timings (mix_ends), then from the
  // running task's end at the present rate (Replayer::chain_end).
  const uint32_t pc = rs.ss[kStreamCompute].pc;
  const uint32_t* st = rs.ss[kStreamCompute].st;
  Time from = rs.ss[kStreamCompute].start, end = from;
  for (uint32_t j = 0; j < rs.chain; ++j) {
    const Task& u = rs.tasks[st[pc + j]];
    if (!rated_) end = end + u.dur;
    else if (j < rs.mix_pos) end = mix_ends_[&rs - rs_.data()][j];
    else if (j == rs.mix_pos) end = rs.mix_end;
    else end = end + wall(u, rs.mix_rate);
    if (j + 1 == rs.chain) end = now;
    trace_.push_back(TraceRecord{rs.rank, st[pc + j], from, end});
    from = end;
  }
}

void Replayer::setup_groups(const std::vector<uint32_t>& sim) {
  const size_t ng = plan_.groups.size();
  ng_ = ng;
  gs_.resize(ng);
  if (!opts_.fast) {   // every rank, local index == rank: the plan's tables serve as they are
    for (size_t g = 0; g < ng; ++g) {
      const GroupTable& gt = plan_.groups[g];
      GroupState& s = gs_[g];
      const uint32_t ni = gt.instances();
      s.pend.assign(ni, Pending{});
      for (uint32_t i = 0; i < ni; ++i) {
        s.pend[i].needed = gt.size_of(i);
        s.any_alone |= s.pend[i].needed == 1 && !flow_;
      }
      if (opts_.network) s.actual.assign(ni, Time::zero());
      s.member_offsets = gt.member_offsets.data();
      s.members = gt.members.data();
    }
    return;
  }
  // Fast mode: a slot per instance that holds a simulated rank, in order of first appearance;
  // its members are the simulated ranks of the instance, ascending (sim is sorted).
  slot_.assign(sim.size() * ng, kNoDep);
  for (size_t g = 0; g < ng; ++g) {
    const GroupTable& gt = plan_.groups[g];
    GroupState& s = gs_[g];
    std::vector<uint32_t> inst;   // slot -> instance
    for (size_t li = 0; li < sim.size(); ++li) {
      const uint32_t i = gt.instance_of_rank[sim[li]];
      if (i == kNoDep) continue;
      uint32_t k = 0;
      while (k < inst.size() && inst[k] != i) ++k;   // a handful of representatives
      if (k == inst.size()) inst.push_back(i);
      slot_[li * ng + g] = k;
    }
    const size_t ns = inst.size();
    s.pend.assign(ns, Pending{});
    s.own_offsets.assign(ns + 1, 0);
    for (size_t li = 0; li < sim.size(); ++li)
      if (slot_[li * ng + g] != kNoDep) ++s.own_offsets[slot_[li * ng + g] + 1];
    for (size_t k = 0; k < ns; ++k) {
      s.pend[k].needed = s.own_offsets[k + 1];
      s.any_alone |= s.pend[k].needed == 1 && !flow_;
      s.own_offsets[k + 1] += s.own_offsets[k];
    }
    s.own_members.assign(s.own_offsets[ns], 0);
    std::vector<uint32_t> fill(s.own_offsets.begin(), s.own_offsets.end() - 1);
    for (size_t li = 0; li < sim.size(); ++li)
      if (slot_[li * ng + g] != kNoDep) s.own_members[fill[slot_[li * ng + g]]++] = static_cast<uint32_t>(li);
    s.member_offsets = s.own_offsets.data();
    s.members = s.own_members.data();
    s.slot_of_inst.clear();
    for (size_t k = 0; k < ns; ++k) s.slot_of_inst.emplace_back(inst[k], static_cast<uint32_t>(k));
    std::sort(s.slot_of_inst.begin(), s.slot_of_inst.end());
  }
}

Result<ReplayResult> Replayer::run() {
  if (opts_.network && opts_.fast)
    return Status::error("flow mode simulates every rank: fast mode would leave out the traffic "
                         "of the replicas it does not simulate; run without fast mode");
  const int n = plan_.num_ranks;
  local_of_rank_.assign(n, -1);
  std::vector<uint32_t> sim;
  if (opts_.fast) {
    sim = plan_.representatives;
    std::sort(sim.begin(), sim.end());
    sim.erase(std::unique(sim.begin(), sim.end()), sim.end());
    if (sim.empty()) return Status::error("fast mode: the plan names no representative ranks");
  } else {
    sim.resize(n);
    for (int r = 0; r < n; ++r) sim[r] = r;
  }
  rs_.resize(sim.size());
  stats_.resize(sim.size());
  for (size_t i = 0; i < sim.size(); ++i) {
    local_of_rank_[sim[i]] = static_cast<int32_t>(i);
    rs_[i].rank = sim[i];
    rs_[i].prog = &plan_.programs[plan_.program_of_rank[sim[i]]];
    rs_[i].tasks = rs_[i].prog->tasks.data();
    for (int s = 0; s < kMaxStreams; ++s) {
      const std::vector<uint32_t>& st = rs_[i].prog->stream_tasks[s];
      rs_[i].ss[s].st = st.data();
      rs_[i].ss[s].len = static_cast<uint32_t>(st.size());
      if (!st.empty()) {
        rs_[i].live |= static_cast<StreamMask>(1u << s);
        rs_[i].ss[s].cur = st[0];
      }
    }
    stats_[i].rank = sim[i];
  }
  if (!opts_.rank_speed.empty()) {
    if (opts_.rank_speed.size() != static_cast<size_t>(n))
      return Status::error("rank_speed: " + std::to_string(opts_.rank_speed.size()) + " speeds for " +
                           std::to_string(n) + " ranks");
    for (size_t i = 0; i < sim.size(); ++i) {
      const double v = opts_.rank_speed[sim[i]];
      if (!(v > 0 && v <= 1e3))
        return Status::error("rank_speed: rank " + std::to_string(sim[i]) + " has speed " + std::to_string(v) +
                             "; expected a number in (0, 1000]");
      rs_[i].speed = v;
    }
  }
  if (chains_) {   // Replayer::chain: which tasks a task of another stream depends on (Plan::finalize)
    for (size_t i = 0; i < sim.size(); ++i) {
      const Program& prog = plan_.programs[plan_.program_of_rank[sim[i]]];
      SIM_CHECK(prog.cross_stream_deps.size() == prog.tasks.size() / 64 + 1, "replay: plan not finalized");
      rs_[i].xdep = prog.cross_stream_deps.data();
    }
  }
  for (uint32_t r : opts_.trace_ranks)
    if (r < static_cast<uint32_t>(n) && local_of_rank_[r] >= 0) rs_[local_of_rank_[r]].traced = true;
  if (!opts_.trace_ranks.empty()) mix_ends_.resize(rs_.size());

  setup_groups(sim);
  // Mailboxes sized by the receives each program posts per channel (counted by finalize): no
  // growth during the run.
  mbox_.resize(sim.size() * kChannels);
  uint32_t total = 0;
  for (size_t i = 0; i < sim.size(); ++i)
    for (int c = 0; c < kChannels; ++c) {
      Mailbox& mb = mbox_[i * kChannels + c];
      mb.base = total;
      mb.cap = std::max<uint32_t>(1, rs_[i].prog->recvs_on_channel[c]);
      total += mb.cap;
    }
  msgs_.resize(total);
  q_.reserve(sim.size() * kMaxStreams + 64);

  if (opts_.network) {
    net_ = std::make_unique<FlowNetwork>();
    const std::vector<Bandwidth> caps = opts_.network->link_capacities();
    net_->reserve(1024, caps.size());
    for (Bandwidth c : caps) net_->add_link(c);
    drv_ = std::make_unique<FlowEventDriver>(*net_, q_, 0, kEvFlow);
  }
  for (uint32_t li = 0; li < sim.size(); ++li) try_advance(li, Time::zero(), kNone8);

  uint64_t events = 0;
  uint64_t fp = 1469598103934665603ull;
  while (!q_.empty()) {
    const Event e = q_.pop();
    // Completion events a re-timing replaced or moved later (versioned_) are not events of the run.
    if (versioned_ && e.type == kEvTaskDone) {
      RankState& rs = rs_[e.a];
      const uint8_t s = static_cast<uint8_t>(e.b & ((1u << kStreamBits) - 1));
      if ((e.b >> kStreamBits) != rs.ss[s].ver) continue;   // replaced by an earlier one
      if (e.when < rs.ss[s].end) {                // early: the task slowed after it was posted
        push_done(e.a, s, rs.ss[s].end);          // same version: this one is still the live event
        continue;
      }
    }
    ++events;
    fp = fp_mix(fp, static_cast<uint64_t>(e.when.count_ps()));
    fp = fp_mix(fp, (static_cast<uint64_t>(e.type) << 56) ^ (static_cast<uint64_t>(e.a) << 24) ^ e.b);
    if (e.type == kEvTaskDone) {
      complete(e.a, static_cast<uint8_t>(e.b & ((1u << kStreamBits) - 1)), e.when);
    } else if (e.type == kEvFlow) {
      done_.clear();
      if (drv_->on_event(e, &done_)) {
        for (const FlowCompletion& c : done_) {
          const uint32_t x = xfer_of_slot_[c.id.slot];
          if (--xfers_[x].left == 0) finish_xfer(x, c.at);
        }
      }
    } else {
      GroupState& g = gs_[e.a];
      const uint32_t k = slot_of_inst(e.a, e.b);
      const uint8_t s = g.pend[k].stream;
      g.pend[k].arrivals = 0;
      // complete() may post this group's next collective: read the members through g, whose
      // arrays do not change during the run.
      for (uint32_t j = g.member_offsets[k]; j < g.member_offsets[k + 1]; ++j) complete(g.members[j], s, e.when);
    }
  }

  if (!net_err_.ok()) return net_err_;
  // Every stream of every simulated rank must have run to its end; otherwise the plan deadlocks.
  for (size_t i = 0; i < rs_.size(); ++i) {
    const RankState& r = rs_[i];
    for (uint8_t s = 0; s < kMaxStreams; ++s) {
      const auto& st = r.prog->stream_tasks[s];
      if (r.ss[s].pc < st.size()) {
        const Task& t = r.prog->tasks[st[r.ss[s].pc]];
        return Status::error("replay deadlock: rank " + std::to_string(r.rank) + " (" + r.prog->name +
                             ") is stuck on stream " + std::to_string(s) + " at task " +
                             std::to_string(st[r.ss[s].pc]) + " '" + plan_.ops[t.op].name + "' (layer " +
                             std::to_string(t.layer) + ", micro-batch " + std::to_string(t.micro) + ")");
      }
    }
  }

  ReplayResult out;
  out.events = events;
  out.simulated_ranks = static_cast<int>(sim.size());
  Time step = Time::zero();
  for (size_t i = 0; i < rs_.size(); ++i) {
    Time f = Time::zero();
    for (uint8_t s = 0; s < kMaxStreams; ++s) f = max(f, rs_[i].ss[s].last_end);
    stats_[i].finish = f;
    if (f > step) {
      step = f;
      out.critical_rank = rs_[i].rank;
    }
  }
  if (rs_.size() > 0 && step == Time::zero()) out.critical_rank = rs_[0].rank;
  // Close each rank's account: after its compute stream ends, a later comm stream is exposed
  // comm of that stream's last task; the rest, up to the step's end, is idle.
  for (size_t i = 0; i < rs_.size(); ++i) {
    const RankState& r = rs_[i];
    RankStats& st = stats_[i];
    Time end0 = r.ss[0].last_end;
    Time tail_comm_end = end0;
    Category tail_cat = Category::kCompute;
    for (uint8_t s = 1; s < kMaxStreams; ++s) {
      if (r.ss[s].last_end > tail_comm_end && !r.prog->stream_tasks[s].empty()) {
        tail_comm_end = r.ss[s].last_end;
        tail_cat = r.prog->tasks[r.prog->stream_tasks[s].back()].category;
      }
    }
    if (tail_comm_end > end0) st.bucket[bi(bucket_of(tail_cat))] += tail_comm_end - end0;
    st.bucket[bi(Bucket::kBubble)] += step - tail_comm_end;
  }
  out.step_time = step;
  if (net_) {
    out.flow = true;
    out.flows.stats = net_->stats();
    out.flows.collectives_as_flows = as_flows_;
    const double secs = step.seconds();
    std::vector<LinkUse> all;
    for (uint32_t l = 0; l < net_->num_links(); ++l) {
      const LinkStats ls = net_->link_stats(l, step);
      if (ls.bytes <= 0) continue;
      LinkUse u;
      u.link = l;
      u.bytes = ls.bytes;
      u.busy = ls.busy;
      const double cap = net_->capacity(l).Bps();
      u.utilisation = cap > 0 && secs > 0 ? ls.bytes / (cap * secs) : 0;
      all.push_back(u);
    }
    const size_t k = std::min(opts_.hottest_links, all.size());
    std::partial_sort(all.begin(), all.begin() + k, all.end(), [](const LinkUse& x, const LinkUse& y) {
      return x.utilisation > y.utilisation || (x.utilisation == y.utilisation && x.link < y.link);
    });
    all.resize(k);
    out.flows.hottest = std::move(all);
  }
  out.ranks = std::move(stats_);
  out.trace = std::move(trace_);
  out.fingerprint = fp_mix(fp, static_cast<uint64_t>(step.count_ps()));
  return out;
}

}  // namespace

Result<ReplayResult> replay(const Plan& plan, const ReplayOptions& opts) {
  Replayer r(plan, opts);
  return r.run();
}

}  // namespace trainsim
