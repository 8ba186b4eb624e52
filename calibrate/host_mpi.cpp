#include "calibrate/host_mpi.h"

#include <climits>
#include <cstdlib>
#include <string>

#ifdef TRAINSIM_HAVE_MPI
#include <mpi.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <tuple>
#include <thread>

#include "calibrate/fit.h"
#include "calibrate/host_exec_internal.h"
#endif

namespace trainsim {

int host_mpi_launched_size() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"}) {
    if (const char* v = std::getenv(var)) {
      const int n = std::atoi(v);
      if (n > 0) return n;
    }
  }
  return 0;
}

#ifndef TRAINSIM_HAVE_MPI

namespace {
Status not_built() {
  return Status::error(Error{"", "--backend", "mpi",
                             "this trainsim was built without MPI (CMake found no MPI); install libopenmpi-dev "
                             "openmpi-bin and rebuild, or use --backend threads"});
}
}  // namespace

bool host_mpi_built() { return false; }
Status host_mpi_init() { return not_built(); }
bool host_mpi_initialized() { return false; }
int host_mpi_rank() { return 0; }
int host_mpi_size() { return 1; }
void host_mpi_wait_all() {}
bool host_mpi_all(bool ok) { return ok; }
Result<std::vector<std::string>> host_mpi_gather_text(const std::string& mine) { return std::vector<std::string>{mine}; }
std::string host_mpi_library() { return ""; }
Result<double> time_mpi_collective(CollKind, int64_t, int, int, int) { return not_built(); }
Result<double> time_mpi_send(int64_t, int, int) { return not_built(); }
void host_mpi_finalize() {}
void host_mpi_abort(int) {}
Result<HostRun> execute_host_mpi(const Plan&, const HostExecOptions&) { return not_built(); }

#else

namespace {

using host_detail::Clock;
using host_detail::RankState;

bool g_initialized = false;

// One communication request of a stream thread, carried out by the main thread.
struct Request {
  enum class Kind { kCollective, kSend, kRecv } kind = Kind::kCollective;
  // collective
  CollKind coll = CollKind::kAllReduce;
  MPI_Comm comm = MPI_COMM_NULL;
  float* buf = nullptr;
  float* out = nullptr;
  int64_t elems = 0;
  std::vector<int> counts, displs;   // live until the request completes
  // send / recv
  int peer = 0, tag = 0;
  std::vector<float> data;   // a send's copy; a receive's message
  bool matched = false;      // recv: its message was probed
  MPI_Request req[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
  int nreq = 0;
  bool owned = false;        // a send: nobody waits, the main thread deletes it when done
  // Completion, signalled under the mutex, so the waiter (which owns the request) may destroy it
  // as soon as it sees `finished`.
  std::mutex m;
  std::condition_variable c;
  bool finished = false;
  void complete() {
    std::lock_guard<std::mutex> l(m);
    finished = true;
    c.notify_one();
  }
  void wait() {
    std::unique_lock<std::mutex> l(m);
    c.wait(l, [&] { return finished; });
  }
};

// How long the main thread polls without sleeping after the last progress (TRAINSIM_MPI_SPIN_US).
int64_t spin_us() {
  const char* v = std::getenv("TRAINSIM_MPI_SPIN_US");
  return v ? std::atoll(v) : 200;
}

int to_int(int64_t v) { return static_cast<int>(v); }   // elems fit: buffers are under max_bytes (4 GiB)

// Per group table of the plan, this rank's communicator (MPI_COMM_NULL where the rank is in no
// instance). Collective over the world: every process splits every group table, in table order.
std::vector<MPI_Comm> split_plan_groups(const Plan& plan, int rank) {
  std::vector<MPI_Comm> comms;
  for (uint32_t g = 0; g < plan.groups.size(); ++g) {
    const uint32_t inst = plan.groups[g].instance_of_rank[rank];
    MPI_Comm c = MPI_COMM_NULL;
    MPI_Comm_split(MPI_COMM_WORLD, inst == kNoDep ? MPI_UNDEFINED : static_cast<int>(inst), rank, &c);
    comms.push_back(c);
  }
  return comms;
}

// How the MPI back end moves data: the executor's steps (execute_host_mpi) and the calibration's
// timing (time_mpi_collective / time_mpi_send) both run through it.
class MpiExchange : public host_detail::Exchange {
 public:
  // Takes `comms` (a collective task's Task::group indexes them; MPI_COMM_NULL: not a member)
  // and frees them when destroyed. Collective over the world (duplicates it for sends).
  explicit MpiExchange(std::vector<MPI_Comm> comms) : comms_(std::move(comms)) { MPI_Comm_dup(MPI_COMM_WORLD, &p2p_); }
  ~MpiExchange() override {
    for (MPI_Comm& c : comms_)
      if (c != MPI_COMM_NULL) MPI_Comm_free(&c);
    MPI_Comm_free(&p2p_);
  }

  void collective(int rank, const Task& t, CollKind kind, float* buf, float* out, int64_t elems) override {
    Request r;
    r.kind = Request::Kind::kCollective;
    r.coll = kind;
    r.comm = comms_[t.group];
    r.buf = buf;
    r.out = out;
    r.elems = elems;
    submit(&r);
    r.wait();
  }
  void send(int rank, int peer, int channel, const float* buf, int64_t elems) override {
    auto* r = new Request;
    r->kind = Request::Kind::kSend;
    r->peer = peer;
    r->tag = channel;
    r->data.assign(buf, buf + elems);
    r->owned = true;
    submit(r);
  }
  std::vector<float> recv_wait(int rank, int peer, int channel) override {
    Request r;
    r.kind = Request::Kind::kRecv;
    r.peer = peer;
    r.tag = channel;
    submit(&r);
    r.wait();
    return std::move(r.data);
  }
  void thread_exited() override {
    std::lock_guard<std::mutex> l(mu_);
    cv_.notify_one();
  }

  void serve(const std::atomic<int>& running) override {
    std::vector<Request*> active;
    Clock::time_point last_progress = Clock::now();
    for (;;) {
      {
        std::unique_lock<std::mutex> l(mu_);
        if (active.empty() && incoming_.empty()) {
          if (running.load() == 0) return;
          cv_.wait(l, [&] { return !incoming_.empty() || running.load() == 0; });
          last_progress = Clock::now();
          continue;
        }
        for (Request* r : incoming_) {
          start(r);
          active.push_back(r);
        }
        incoming_.clear();
      }
      bool progressed = false;
      for (size_t i = 0; i < active.size();) {
        if (poll(active[i])) {
          Request* r = active[i];
          active.erase(active.begin() + static_cast<std::ptrdiff_t>(i));
          if (r->owned) delete r;
          else r->complete();
          progressed = true;
        } else {
          ++i;
        }
      }
      const auto now = Clock::now();
      if (progressed) {
        last_progress = now;
      } else if (now - last_progress > spin_) {
        // Nothing moved for a while: poll every ~20 us, sleeping in between, so a rank waiting
        // for a slower peer leaves the cores to the kernels; a new request wakes us at once.
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait_for(l, std::chrono::microseconds(20), [&] { return !incoming_.empty(); });
      }
    }
  }

 private:
  void submit(Request* r) {
    {
      std::lock_guard<std::mutex> l(mu_);
      incoming_.push_back(r);
    }
    cv_.notify_one();
  }

  // Chunk c of n over elems, as the thread back end's GroupComm splits buffers.
  static int64_t lo(int64_t elems, int c, int n) { return elems * c / n; }

  void start(Request* r) {
    switch (r->kind) {
      case Request::Kind::kSend:
        MPI_Isend(r->data.data(), to_int(static_cast<int64_t>(r->data.size())), MPI_FLOAT, r->peer, r->tag, p2p_,
                  &r->req[0]);
        r->nreq = 1;
        return;
      case Request::Kind::kRecv:
        return;   // probed in poll()
      case Request::Kind::kCollective:
        break;
    }
    int n = 1, me = 0;
    if (r->comm != MPI_COMM_NULL) {
      MPI_Comm_size(r->comm, &n);
      MPI_Comm_rank(r->comm, &me);
    }
    const int64_t e = r->elems;
    if (n <= 1) {   // as GroupComm: a one-member group only moves data where the kind has an output
      if (r->coll == CollKind::kReduceScatter || r->coll == CollKind::kAllToAll || r->coll == CollKind::kSendRecv)
        std::memcpy(r->out, r->buf, e * sizeof(float));
      return;
    }
    r->counts.resize(n);
    r->displs.resize(n);
    for (int j = 0; j < n; ++j) {
      r->displs[j] = to_int(lo(e, j, n));
      r->counts[j] = to_int(lo(e, j + 1, n) - lo(e, j, n));
    }
    r->nreq = 1;
    switch (r->coll) {
      case CollKind::kAllReduce:   // GroupComm averages; the sum moves the same data
        MPI_Iallreduce(MPI_IN_PLACE, r->buf, to_int(e), MPI_FLOAT, MPI_SUM, r->comm, &r->req[0]);
        break;
      case CollKind::kAllGather:   // chunk j of member j is its input; gathered in place
        MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, r->buf, r->counts.data(), r->displs.data(), MPI_FLOAT,
                        r->comm, &r->req[0]);
        break;
      case CollKind::kReduceScatter:   // out[0, chunk me) = sum over members of their chunk me
        MPI_Ireduce_scatter(r->buf, r->out, r->counts.data(), MPI_FLOAT, MPI_SUM, r->comm, &r->req[0]);
        break;
      case CollKind::kAllToAll: {   // member s sends its chunk d to member d, which puts it at chunk s
        const int c_me = r->counts[me];
        for (int j = 0; j < n; ++j) r->counts[j] = std::min(r->counts[j], c_me);   // min(c_j, c_me) both ways
        MPI_Ialltoallv(r->buf, r->counts.data(), r->displs.data(), MPI_FLOAT, r->out, r->counts.data(),
                       r->displs.data(), MPI_FLOAT, r->comm, &r->req[0]);
        break;
      }
      case CollKind::kBroadcast:
        MPI_Ibcast(r->buf, to_int(e), MPI_FLOAT, 0, r->comm, &r->req[0]);
        break;
      case CollKind::kSendRecv:   // ring shift: out = the previous member's buffer
        MPI_Irecv(r->out, to_int(e), MPI_FLOAT, (me + n - 1) % n, 0, r->comm, &r->req[0]);
        MPI_Isend(r->buf, to_int(e), MPI_FLOAT, (me + 1) % n, 0, r->comm, &r->req[1]);
        r->nreq = 2;
        break;
    }
  }

  // True when the request is complete.
  bool poll(Request* r) {
    if (r->kind == Request::Kind::kRecv && !r->matched) {
      int flag = 0;
      MPI_Message msg;
      MPI_Status st;
      MPI_Improbe(r->peer, r->tag, p2p_, &flag, &msg, &st);
      if (!flag) return false;
      int count = 0;
      MPI_Get_count(&st, MPI_FLOAT, &count);
      r->data.resize(count);
      MPI_Imrecv(r->data.data(), count, MPI_FLOAT, &msg, &r->req[0]);
      r->nreq = 1;
      r->matched = true;
    }
    if (r->nreq == 0) return true;
    int flag = 0;
    MPI_Testall(r->nreq, r->req, &flag, MPI_STATUSES_IGNORE);
    return flag != 0;
  }

  std::chrono::microseconds spin_{spin_us()};
  std::vector<MPI_Comm> comms_;   // per group table: this rank's instance, or MPI_COMM_NULL
  MPI_Comm p2p_ = MPI_COMM_NULL;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Request*> incoming_;
};

int64_t ns_of(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// Waits for a request, sleeping 1 ms between tests, so a waiting process takes no core.
void sleep_until_done(MPI_Request* req) {
  for (;;) {
    int flag = 0;
    MPI_Test(req, &flag, MPI_STATUS_IGNORE);
    if (flag) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// The calibration's timing loop: after one MPI_Barrier, a stream thread runs body() `total`
// times back to back (each returns the seconds it timed, or a negative value for a run this
// process sits out) while this thread serves the exchange, as run_step() does for a step.
// Returns per run the maximum over the processes.
std::vector<double> timed_runs(MpiExchange& ex, int total, const std::function<double()>& body) {
  std::vector<double> dur(total, 0.0);
  std::atomic<int> running{1};
  MPI_Barrier(MPI_COMM_WORLD);
  std::thread worker([&] {
    set_flush_denormals();
    for (int i = 0; i < total; ++i) dur[i] = std::max(0.0, body());
    running.fetch_sub(1);
    ex.thread_exited();
  });
  ex.serve(running);
  worker.join();
  // Sleeping: a process that sat the runs out must not take a core from those still timing.
  std::vector<double> worst(total, 0.0);
  MPI_Request req;
  MPI_Iallreduce(dur.data(), worst.data(), total, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD, &req);
  sleep_until_done(&req);
  return worst;
}

Status check_timing_args(int64_t elements, int group_size, int warmup, int runs) {
  if (!g_initialized) return Status::error("MPI timing: MPI is not initialized (run under mpirun; host_mpi_init())");
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (group_size < 2 || group_size > world)
    return Status::error("MPI timing: a group of " + std::to_string(group_size) + " processes does not fit this MPI job of " +
                         std::to_string(world) + " (need 2 <= group <= the world size)");
  if (runs < 1 || warmup < 0)
    return Status::error("MPI timing: runs (" + std::to_string(runs) + ") must be >= 1 and warm-up runs (" +
                         std::to_string(warmup) + ") >= 0");
  if (elements < 1 || elements > std::numeric_limits<int>::max())
    return Status::error("MPI timing: " + std::to_string(elements) +
                         " elements: need at least 1 (as comm_elements() gives) and no more than an MPI count (int) holds");
  return Status();
}

double median_after(const std::vector<double>& dur, int warmup, double scale) {
  std::vector<double> t(dur.begin() + warmup, dur.end());
  for (double& x : t) x *= scale;
  return median(std::move(t));
}

}  // namespace

bool host_mpi_built() { return true; }

Status host_mpi_init() {
  if (g_initialized) return Status();
  int inited = 0;
  MPI_Initialized(&inited);
  int provided = MPI_THREAD_SINGLE;
  if (!inited) {
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      return Status::error("MPI_Init_thread failed");
  } else {
    MPI_Query_thread(&provided);
  }
  if (provided < MPI_THREAD_FUNNELED)
    return Status::error("the MPI library provides only MPI_THREAD_SINGLE; the MPI back end needs "
                         "MPI_THREAD_FUNNELED (the main thread makes every MPI call while the stream threads run)");
  g_initialized = true;
  return Status();
}

bool host_mpi_initialized() { return g_initialized; }

int host_mpi_rank() {
  if (!g_initialized) return 0;
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int host_mpi_size() {
  if (!g_initialized) return 1;
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

void host_mpi_wait_all() {
  if (!g_initialized) return;
  MPI_Request req;
  MPI_Ibarrier(MPI_COMM_WORLD, &req);
  sleep_until_done(&req);
}

bool host_mpi_all(bool ok) {
  if (!g_initialized) return ok;
  int mine = ok ? 1 : 0, all = 0;
  MPI_Request req;
  MPI_Iallreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD, &req);
  sleep_until_done(&req);
  return all != 0;
}

Result<std::vector<std::string>> host_mpi_gather_text(const std::string& mine) {
  if (!g_initialized) return std::vector<std::string>{mine};
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  // Every process learns every length first, so all of them agree on whether the texts fit.
  const long long len = static_cast<long long>(mine.size());
  std::vector<long long> lens(static_cast<size_t>(size), 0);
  MPI_Request req;
  MPI_Iallgather(&len, 1, MPI_LONG_LONG, lens.data(), 1, MPI_LONG_LONG, MPI_COMM_WORLD, &req);
  sleep_until_done(&req);
  long long total = 0;
  for (long long l : lens) total += l;
  if (total > INT_MAX)
    return Status::error(Error{"", "", std::to_string(total) + " bytes", "texts to gather must total at most INT_MAX bytes"});
  std::vector<int> counts(static_cast<size_t>(size)), displs(static_cast<size_t>(size));
  for (int r = 0, at = 0; r < size; ++r) {
    counts[r] = static_cast<int>(lens[r]);
    displs[r] = at;
    at += counts[r];
  }
  std::string all(rank == 0 ? static_cast<size_t>(total) : 0, '\0');
  MPI_Igatherv(mine.data(), static_cast<int>(mine.size()), MPI_CHAR, rank == 0 ? all.data() : nullptr, counts.data(),
               displs.data(), MPI_CHAR, 0, MPI_COMM_WORLD, &req);
  sleep_until_done(&req);
  std::vector<std::string> out;
  if (rank == 0)
    for (int r = 0; r < size; ++r) out.push_back(all.substr(static_cast<size_t>(displs[r]), static_cast<size_t>(counts[r])));
  return out;
}

std::string host_mpi_library() {
  char v[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
  int len = 0;
  MPI_Get_library_version(v, &len);
  std::string line(v, static_cast<size_t>(std::max(0, std::min(len, MPI_MAX_LIBRARY_VERSION_STRING))));
  line = line.substr(0, line.find_first_of("\n,"));
  std::string out;
  for (char c : line) {
    const bool space = c == ' ' || c == '\t' || c == '\r' || c == '\0';
    if (space) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out.empty() ? std::string("unknown MPI library") : out;
}

Result<double> time_mpi_collective(CollKind kind, int64_t elements, int group_size, int warmup, int runs) {
  if (Status st = check_timing_args(elements, group_size, warmup, runs); !st.ok()) return st;
  const int me = host_mpi_rank(), world = host_mpi_size();
  // Groups of consecutive ranks, as the plan's TP groups are laid out; the remainder sits out.
  const bool member = me < world / group_size * group_size;
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, member ? me / group_size : MPI_UNDEFINED, me, &comm);
  MpiExchange ex({comm});
  // The executor's buffers: rank r's input holds 0.01 * (r + 1) (make_rank_state()).
  std::vector<float> buf(static_cast<size_t>(elements), 0.01f * static_cast<float>(me + 1)),
      out(static_cast<size_t>(elements), 0.0f);
  Task task;
  task.kind = TaskKind::kCollective;
  task.group = 0;
  const std::vector<double> dur = timed_runs(ex, warmup + runs, [&]() -> double {
    if (!member) return -1;
    const auto a = Clock::now();
    ex.collective(me, task, kind, buf.data(), out.data(), elements);
    return std::chrono::duration<double>(Clock::now() - a).count();
  });
  return median_after(dur, warmup, 1.0);
}

Result<double> time_mpi_send(int64_t elements, int warmup, int runs) {
  if (Status st = check_timing_args(elements, 2, warmup, runs); !st.ok()) return st;
  const int me = host_mpi_rank(), world = host_mpi_size();
  const int peer = me ^ 1;
  const bool member = peer < world;
  MpiExchange ex({});
  std::vector<float> buf(static_cast<size_t>(elements), 0.01f * static_cast<float>(me + 1)),
      out(static_cast<size_t>(elements), 0.0f);
  const int channel = 0;
  const std::vector<double> dur = timed_runs(ex, warmup + runs, [&]() -> double {
    if (!member) return -1;
    const auto a = Clock::now();
    // As a send task, then the peer's receive task (message in hand, copied out); even ranks lead.
    if (me % 2 == 0) {
      ex.send(me, peer, channel, buf.data(), elements);
      std::vector<float> msg = ex.recv_wait(me, peer, channel);
      std::memcpy(out.data(), msg.data(), std::min(elements, static_cast<int64_t>(msg.size())) * sizeof(float));
    } else {
      std::vector<float> msg = ex.recv_wait(me, peer, channel);
      std::memcpy(out.data(), msg.data(), std::min(elements, static_cast<int64_t>(msg.size())) * sizeof(float));
      ex.send(me, peer, channel, buf.data(), elements);
    }
    return std::chrono::duration<double>(Clock::now() - a).count();
  });
  return median_after(dur, warmup, 0.5);   // one way: half a round trip
}

void host_mpi_finalize() {
  if (!g_initialized) return;
  host_mpi_wait_all();
  MPI_Finalize();
  g_initialized = false;
}

void host_mpi_abort(int code) {
  if (g_initialized) MPI_Abort(MPI_COMM_WORLD, code);
}

Result<HostRun> execute_host_mpi(const Plan& plan, const HostExecOptions& opts) {
  using namespace host_detail;
  if (!g_initialized)
    return Status::error("host executor: --backend mpi needs MPI to be initialized (run under mpirun; "
                         "trainsim verify does this)");
  if (opts.steps < 1) return Status::error(Error{"", "--steps", std::to_string(opts.steps), "must be >= 1"});
  const int me = host_mpi_rank(), world = host_mpi_size();
  if (world != plan.num_ranks)
    return Status::error(Error{"", "mpirun -np", std::to_string(world),
                               "the restricted plan has " + std::to_string(plan.num_ranks) +
                                   " ranks and the MPI back end runs one process per rank: launch with -np " +
                                   std::to_string(plan.num_ranks) + " (or restrict to --ranks " +
                                   std::to_string(world) + ")"});
  const int64_t need = host_plan_bytes(plan);
  if (Status st = check_host_bytes(need, opts.max_bytes); !st.ok()) return st;
  std::vector<std::unique_ptr<RankState>> ranks(plan.num_ranks);
  {
    auto rs = make_rank_state(plan, me, opts.max_bytes);
    // A failure on one process must not leave the others waiting in a collective below.
    int ok = rs.ok() ? 1 : 0, all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!rs.ok()) return rs.status();
    if (!all_ok) return Status::error("host executor (mpi): another rank could not set up its program (it printed why)");
    ranks[me] = std::move(rs).value();
  }
  MpiExchange ex(split_plan_groups(plan, me));
  const std::vector<int> local{me};

  HostRun out;
  out.buffer_bytes = need;
  out.backend = "mpi";
  std::vector<std::vector<HostTaskRecord>> per_step;   // this rank's records, rebased, per measured step
  for (int step = 0; step < opts.steps + 1; ++step) {
    std::vector<std::vector<HostTaskRecord>> rec;
    Clock::time_point t0;
    MPI_Barrier(MPI_COMM_WORLD);
    const int threads = run_step(plan, local, ranks, ex, rec, &t0);
    // [-release, last end] in absolute steady_clock ns, maximised over the processes.
    int64_t last_end = ns_of(t0);
    for (const HostTaskRecord& hr : rec[me]) last_end = std::max(last_end, ns_of(t0) + hr.end.count_ps() / 1000);
    int64_t mine[2] = {-ns_of(t0), last_end}, all[2] = {0, 0};
    MPI_Allreduce(mine, all, 2, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    int total_threads = 0;
    MPI_Allreduce(&threads, &total_threads, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    out.threads = total_threads;
    if (step == 0) continue;   // warm-up
    const int64_t origin = -all[0];
    const Time shift = Time::ns(ns_of(t0) - origin);   // this process's release after the earliest one
    for (HostTaskRecord& hr : rec[me]) {
      hr.start = hr.start + shift;
      hr.end = hr.end + shift;
    }
    out.step_times.push_back(Time::ns(all[1] - origin));
    per_step.push_back(std::move(rec[me]));
  }
  const size_t med = median_step(out.step_times);
  out.step_time = out.step_times[med];

  // Gather the median step's records to rank 0: per task [start ns, end ns, start seq, end seq].
  const std::vector<HostTaskRecord>& mine = per_step[med];
  std::vector<int64_t> send;
  send.reserve(mine.size() * 4);
  for (const HostTaskRecord& hr : mine) {
    send.push_back(hr.start.count_ps() / 1000);
    send.push_back(hr.end.count_ps() / 1000);
    send.push_back(static_cast<int64_t>(hr.start_seq));
    send.push_back(static_cast<int64_t>(hr.end_seq));
  }
  const int count = to_int(static_cast<int64_t>(send.size()));
  std::vector<int> counts(me == 0 ? world : 0), displs(me == 0 ? world : 0);
  MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::vector<int64_t> recv;
  if (me == 0) {
    int total = 0;
    for (int r = 0; r < world; ++r) {
      displs[r] = total;
      total += counts[r];
    }
    recv.resize(total);
  }
  MPI_Gatherv(send.data(), count, MPI_INT64_T, recv.data(), counts.data(), displs.data(), MPI_INT64_T, 0,
              MPI_COMM_WORLD);
  out.tasks.assign(plan.num_ranks, {});
  if (me != 0) {
    out.tasks[me] = mine;
    return out;
  }
  // One order over every rank's events: time, then rank, then the process's own order.
  struct Ev {
    int64_t t;
    int rank;
    uint64_t local;
    uint64_t* seq;
  };
  std::vector<Ev> evs;
  for (int r = 0; r < world; ++r) {
    const int64_t* p = recv.data() + displs[r];
    const size_t n = static_cast<size_t>(counts[r]) / 4;
    std::vector<HostTaskRecord>& dst = out.tasks[r];
    dst.resize(n);
    for (size_t i = 0; i < n; ++i) {
      dst[i].start = Time::ns(p[4 * i]);
      dst[i].end = Time::ns(p[4 * i + 1]);
      dst[i].start_seq = static_cast<uint64_t>(p[4 * i + 2]);
      dst[i].end_seq = static_cast<uint64_t>(p[4 * i + 3]);
    }
    for (size_t i = 0; i < n; ++i) {
      evs.push_back({p[4 * i], r, dst[i].start_seq, &dst[i].start_seq});
      evs.push_back({p[4 * i + 1], r, dst[i].end_seq, &dst[i].end_seq});
    }
  }
  std::sort(evs.begin(), evs.end(), [](const Ev& a, const Ev& b) {
    return std::tie(a.t, a.rank, a.local) < std::tie(b.t, b.rank, b.local);
  });
  for (size_t i = 0; i < evs.size(); ++i) *evs[i].seq = i;
  return out;
}

#endif  // TRAINSIM_HAVE_MPI

}  // namespace trainsim
