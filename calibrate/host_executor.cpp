#include "calibrate/host_executor.h"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>

#include "calibrate/fit.h"
#include "calibrate/host_exec_internal.h"
#include "calibrate/host_kernels.h"
#include "calibrate/host_mpi.h"

namespace trainsim {

using host_detail::Clock;
using host_detail::CommBuf;
using host_detail::Exchange;
using host_detail::RankState;

namespace {

// Shared-memory collectives of one group instance (members are threads).
class GroupComm {
 public:
  explicit GroupComm(int n) : n_(n), bar_(n), in_(n, nullptr) {}
  // REQUIRES: every member calls with the same kind and elems; buf and out hold elems floats.
  void run(CollKind kind, int me, float* buf, float* out, int64_t elems) {
    if (n_ <= 1) {
      if (kind == CollKind::kReduceScatter || kind == CollKind::kAllToAll || kind == CollKind::kSendRecv)
        std::memcpy(out, buf, elems * sizeof(float));
      return;
    }
    in_[me] = buf;
    bar_.arrive_and_wait();
    auto lo = [&](int c) { return elems * c / n_; };
    switch (kind) {
      case CollKind::kAllReduce: {   // member `me` reduces chunk `me` into every buffer (mean)
        const float inv = 1.0f / static_cast<float>(n_);
        for (int64_t i = lo(me); i < lo(me + 1); ++i) {
          float s = 0;
          for (int j = 0; j < n_; ++j) s += in_[j][i];
          s *= inv;
          for (int j = 0; j < n_; ++j) in_[j][i] = s;
        }
        break;
      }
      case CollKind::kAllGather:     // chunk j of member j is its input
        for (int j = 0; j < n_; ++j)
          if (j != me) std::memcpy(buf + lo(j), in_[j] + lo(j), (lo(j + 1) - lo(j)) * sizeof(float));
        break;
      case CollKind::kReduceScatter: {
        const int64_t b = lo(me), e = lo(me + 1);
        for (int64_t i = b; i < e; ++i) {
          float s = 0;
          for (int j = 0; j < n_; ++j) s += in_[j][i];
          out[i - b] = s;
        }
        break;
      }
      case CollKind::kAllToAll:
        for (int j = 0; j < n_; ++j)
          std::memcpy(out + lo(j), in_[j] + lo(me), std::min(lo(me + 1) - lo(me), lo(j + 1) - lo(j)) * sizeof(float));
        break;
      case CollKind::kBroadcast:
        if (me != 0) std::memcpy(buf, in_[0], elems * sizeof(float));
        break;
      case CollKind::kSendRecv:
        std::memcpy(out, in_[(me + n_ - 1) % n_], elems * sizeof(float));
        break;
    }
    bar_.arrive_and_wait();
  }

 private:
  int n_;
  std::barrier<> bar_;
  std::vector<float*> in_;
};

struct Mailbox {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::vector<float>> q;
  void send(const float* data, int64_t n) {
    std::vector<float> msg(data, data + n);
    {
      std::lock_guard<std::mutex> l(mu);
      q.push_back(std::move(msg));
    }
    cv.notify_one();
  }
  // Waits for the next message (a receive starts when its message is there, as in the replay).
  std::vector<float> wait_next() {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return !q.empty(); });
    std::vector<float> msg = std::move(q.front());
    q.pop_front();
    return msg;
  }
  void recv(float* data, int64_t n) { copy_out(wait_next(), data, n); }
  static void copy_out(const std::vector<float>& msg, float* data, int64_t n) {
    std::memcpy(data, msg.data(), std::min<int64_t>(n, static_cast<int64_t>(msg.size())) * sizeof(float));
  }
};

Time since(Clock::time_point t0, Clock::time_point t) {
  return Time::ns(std::chrono::duration_cast<std::chrono::nanoseconds>(t - t0).count());
}

// The thread back end's exchange: shared-memory collectives per group instance, mailboxes.
class ThreadExchange : public Exchange {
 public:
  explicit ThreadExchange(const Plan& plan) : plan_(plan) {
    for (uint32_t g = 0; g < plan.groups.size(); ++g)
      for (uint32_t i = 0; i < plan.groups[g].instances(); ++i)
        groups_[{g, i}] = std::make_unique<GroupComm>(static_cast<int>(plan.groups[g].size_of(i)));
    for (int r = 0; r < plan.num_ranks; ++r)
      for (const Task& t : plan.programs[plan.program_of_rank[r]].tasks)
        if (t.kind == TaskKind::kSend) {
          auto key = std::make_tuple(static_cast<int>(plan.peers[t.group].peer_of_rank[r]), r, static_cast<int>(t.channel));
          if (!boxes_.count(key)) boxes_[key] = std::make_unique<Mailbox>();
        }
  }
  Mailbox* box(int dst, int src, int ch) const {
    auto it = boxes_.find(std::make_tuple(dst, src, ch));
    return it == boxes_.end() ? nullptr : it->second.get();
  }
  void collective(int rank, const Task& t, CollKind kind, float* buf, float* out, int64_t elems) override {
    const GroupTable& gt = plan_.groups[t.group];
    const uint32_t inst = gt.instance_of_rank[rank];
    const uint32_t* mb = gt.members.data() + gt.member_offsets[inst];
    const int me = static_cast<int>(std::find(mb, mb + gt.size_of(inst), static_cast<uint32_t>(rank)) - mb);
    groups_.at({t.group, inst})->run(kind, me, buf, out, elems);
  }
  void send(int rank, int peer, int channel, const float* buf, int64_t elems) override {
    box(peer, rank, channel)->send(buf, elems);
  }
  std::vector<float> recv_wait(int rank, int peer, int channel) override { return box(rank, peer, channel)->wait_next(); }

 private:
  const Plan& plan_;
  std::map<std::pair<uint32_t, uint32_t>, std::unique_ptr<GroupComm>> groups_;   // (group, instance)
  std::map<std::tuple<int, int, int>, std::unique_ptr<Mailbox>> boxes_;          // (dst, src, channel)
};

}  // namespace

namespace host_detail {

int64_t host_plan_bytes(const Plan& plan) {
  int64_t need = 0;
  for (int r = 0; r < plan.num_ranks; ++r) {
    const Program& prog = plan.programs[plan.program_of_rank[r]];
    std::vector<uint8_t> seen(plan.ops.size(), 0);
    for (const Task& t : prog.tasks) {
      if (seen[t.op]) continue;
      seen[t.op] = 1;
      const OpDesc& op = plan.ops[t.op];
      need += (op.cls == OpClass::kCollective || op.cls == OpClass::kP2p) ? 8 * comm_elements(op)
                                                                           : host_kernel_footprint(op);
    }
  }
  return need;
}

Status check_host_bytes(int64_t need, int64_t max_bytes) {
  if (need > max_bytes)
    return Status::error("host executor: the restricted plan needs " + std::to_string(need >> 20) +
                         " MiB of host buffers, over the limit of " + std::to_string(max_bytes >> 20) +
                         " MiB; the host executor is meant for small scenarios (e.g. scenarios/verify_small.json)");
  return Status();
}

Result<std::unique_ptr<RankState>> make_rank_state(const Plan& plan, int r, int64_t max_bytes) {
  auto rs = std::make_unique<RankState>();
  rs->prog = &plan.programs[plan.program_of_rank[r]];
  for (const Task& t : rs->prog->tasks) {
    const OpDesc& op = plan.ops[t.op];
    if (op.cls == OpClass::kCollective || op.cls == OpClass::kP2p) {
      if (!rs->comm.count(t.op)) {
        CommBuf& b = rs->comm[t.op];
        b.buf.assign(comm_elements(op), 0.01f * static_cast<float>(r + 1));
        b.out.assign(comm_elements(op), 0.0f);
      }
    } else if (!rs->kernels.count(t.op)) {
      auto k = make_host_kernel(op, max_bytes);
      if (!k.ok()) return k.status();
      rs->kernels[t.op] = std::move(k).value();
    }
    if (t.kind == TaskKind::kSend || t.kind == TaskKind::kRecv) {
      if (t.group >= plan.peers.size() || plan.peers[t.group].peer_of_rank[r] < 0)
        return Status::error("host executor: rank " + std::to_string(r) + " program '" + rs->prog->name +
                             "' has a send/receive without a peer in table " + std::to_string(t.group));
    }
  }
  return rs;
}

int run_step(const Plan& plan, const std::vector<int>& local, std::vector<std::unique_ptr<RankState>>& ranks,
             Exchange& ex, std::vector<std::vector<HostTaskRecord>>& rec, Clock::time_point* t0_out) {
  rec.resize(plan.num_ranks);
  for (int r : local) {
    rec[r].assign(ranks[r]->prog->tasks.size(), HostTaskRecord{});
    ranks[r]->done.assign(ranks[r]->prog->tasks.size(), 0);
  }
  std::atomic<uint64_t> seq{0};
  std::atomic<int> running{0};
  std::latch go(1);
  Clock::time_point t0;
  std::vector<std::thread> threads;
  for (int r : local) {
    const Program& prog = *ranks[r]->prog;
    for (int s = 0; s < kMaxStreams; ++s) {
      if (prog.stream_tasks[s].empty()) continue;
      running.fetch_add(1);
      threads.emplace_back([&, r, s] {
        set_flush_denormals();
        RankState& rs = *ranks[r];
        go.wait();
        for (uint32_t ti : prog.stream_tasks[s]) {
          const Task& t = prog.tasks[ti];
          {
            std::unique_lock<std::mutex> l(rs.mu);
            rs.cv.wait(l, [&] {
              for (uint32_t d : t.dep)
                if (d != kNoDep && !rs.done[d]) return false;
              return true;
            });
          }
          const int peer = (t.kind == TaskKind::kSend || t.kind == TaskKind::kRecv) ? plan.peers[t.group].peer_of_rank[r] : -1;
          std::vector<float> msg;   // a receive's message, taken before its start is stamped
          if (t.kind == TaskKind::kRecv) msg = ex.recv_wait(r, peer, t.channel);
          HostTaskRecord& hr = rec[r][ti];
          hr.start_seq = seq.fetch_add(1);
          hr.start = since(t0, Clock::now());
          const OpDesc& op = plan.ops[t.op];
          switch (t.kind) {
            case TaskKind::kCompute: rs.kernels[t.op]->run(); break;
            case TaskKind::kCollective: {
              CommBuf& b = rs.comm[t.op];
              ex.collective(r, t, op.coll, b.buf.data(), b.out.data(), comm_elements(op));
              break;
            }
            case TaskKind::kSend: {
              CommBuf& b = rs.comm[t.op];
              ex.send(r, peer, t.channel, b.buf.data(), comm_elements(op));
              break;
            }
            case TaskKind::kRecv: {
              CommBuf& b = rs.comm[t.op];
              Mailbox::copy_out(msg, b.out.data(), comm_elements(op));
              break;
            }
          }
          hr.end = since(t0, Clock::now());
          hr.end_seq = seq.fetch_add(1);
          {
            std::lock_guard<std::mutex> l(rs.mu);
            rs.done[ti] = 1;
          }
          rs.cv.notify_all();
        }
        running.fetch_sub(1);
        ex.thread_exited();
      });
    }
  }
  t0 = Clock::now();
  go.count_down();
  ex.serve(running);
  for (auto& th : threads) th.join();
  *t0_out = t0;
  return static_cast<int>(threads.size());
}

size_t median_step(const std::vector<Time>& step_times) {
  std::vector<size_t> idx(step_times.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    return step_times[a] != step_times[b] ? step_times[a] < step_times[b] : a < b;
  });
  return idx[(idx.size() - 1) / 2];
}

}  // namespace host_detail

Result<HostRun> execute_host(const Plan& plan, const HostExecOptions& opts) {
  using namespace host_detail;
  if (opts.steps < 1) return Status::error(Error{"", "--steps", std::to_string(opts.steps), "must be >= 1"});
  if (opts.backend == "mpi") return execute_host_mpi(plan, opts);
  if (opts.backend != "threads") return Status::error(Error{"", "--backend", opts.backend, "accepted: threads, mpi"});
  const int n = plan.num_ranks;
  // Memory: every rank's kernels and comm buffers, checked before anything is allocated.
  const int64_t need = host_plan_bytes(plan);
  if (Status st = check_host_bytes(need, opts.max_bytes); !st.ok()) return st;
  std::vector<std::unique_ptr<RankState>> ranks;
  std::vector<int> local;
  for (int r = 0; r < n; ++r) {
    auto rs = make_rank_state(plan, r, opts.max_bytes);
    if (!rs.ok()) return rs.status();
    ranks.push_back(std::move(rs).value());
    local.push_back(r);
  }
  ThreadExchange ex(plan);
  for (int r = 0; r < n; ++r)
    for (const Task& t : ranks[r]->prog->tasks)
      if (t.kind == TaskKind::kRecv && !ex.box(r, plan.peers[t.group].peer_of_rank[r], t.channel))
        return Status::error("host executor: rank " + std::to_string(r) + " receives from rank " +
                             std::to_string(plan.peers[t.group].peer_of_rank[r]) + " on channel " +
                             std::to_string(t.channel) + ", which never sends there");

  HostRun out;
  out.buffer_bytes = need;
  out.backend = "threads";
  std::vector<std::vector<std::vector<HostTaskRecord>>> per_step;
  for (int step = 0; step < opts.steps + 1; ++step) {
    std::vector<std::vector<HostTaskRecord>> rec;
    Clock::time_point t0;
    out.threads = run_step(plan, local, ranks, ex, rec, &t0);
    if (step == 0) continue;   // warm-up
    Time st;
    for (auto& rr : rec)
      for (auto& hr : rr) st = std::max(st, hr.end);
    out.step_times.push_back(st);
    per_step.push_back(std::move(rec));
  }
  const size_t med = median_step(out.step_times);
  out.step_time = out.step_times[med];
  out.tasks = std::move(per_step[med]);
  return out;
}

double time_host_collective(CollKind kind, int64_t elements, int group_size, int warmup, int runs) {
  GroupComm comm(group_size);
  std::barrier<> sync(group_size);
  std::vector<std::vector<float>> buf(group_size, std::vector<float>(elements, 0.01f)),
      out(group_size, std::vector<float>(elements, 0.0f));
  std::vector<std::vector<double>> dur(group_size, std::vector<double>(runs, 0));
  std::vector<std::thread> th;
  for (int me = 0; me < group_size; ++me)
    th.emplace_back([&, me] {
      set_flush_denormals();
      for (int i = 0; i < warmup + runs; ++i) {
        sync.arrive_and_wait();
        auto a = Clock::now();
        comm.run(kind, me, buf[me].data(), out[me].data(), elements);
        auto b = Clock::now();
        if (i >= warmup) dur[me][i - warmup] = std::chrono::duration<double>(b - a).count();
      }
    });
  for (auto& t : th) t.join();
  std::vector<double> worst(runs, 0);
  for (int i = 0; i < runs; ++i)
    for (int me = 0; me < group_size; ++me) worst[i] = std::max(worst[i], dur[me][i]);
  return median(worst);
}

double time_host_send(int64_t elements, int warmup, int runs) {
  Mailbox mb;
  std::vector<float> buf(elements, 0.01f), out(elements);
  std::vector<double> t;
  for (int i = 0; i < warmup + runs; ++i) {
    auto a = Clock::now();
    mb.send(buf.data(), elements);
    auto b = Clock::now();
    mb.recv(out.data(), elements);
    if (i >= warmup) t.push_back(std::chrono::duration<double>(b - a).count());
  }
  return median(t);
}

}  // namespace trainsim
