// File: calibrate/cuda/executor.cpp
// trainsim_executor: the CUDA verify executor (issue 6). Reads an exported plan
// (calibrate/FORMAT.md section 4, `trainsim run SCENARIO --export-plan FILE`) and runs the
// programs of the ranks asked for (--ranks, default the first exported one), one GPU and one
// host thread per rank (--devices, default 0, 1, ...), task by task in the plan's issue order:
//   - one CUDA stream per plan stream the rank uses;
//   - each task on its stream, after cudaStreamWaitEvent on the end events of its deps that
//     are on other streams (deps on the same stream are implied by stream order);
//   - compute ops through op_runner.h (cuBLASLt GEMMs, cuDNN fused SDPA, own memory-bound
//     kernels), as the calibrator measures them; offload ops as cudaMemcpyAsync to/from pinned
//     host memory (stream offload-out: device to host; offload-in: host to device);
//   - communication between ranks run here over NCCL (where it was found at build time), one
//     communicator per group instance (ncclCommInitAll over its members' GPUs, members in rank
//     order) and one per direction and message channel of each p2p pair (plan_file.h
//     comm_specs): collectives as nccl_ops.h enqueues them (nccl-tests buffer convention); a
//     recv on its plan stream; a send on its own stream per receiver and channel, after the task
//     before it on its plan stream, and not holding up the tasks after it there (the
//     simulator's sends are buffered: a send completes without waiting for its receive; an NCCL
//     send waits for the receive, so kept on the plan stream it could deadlock two stages that
//     send to each other first) - tasks that depend on a send still wait for it;
//   - collectives over a group of size 1 are no-ops, dropped and reported; send/recv to a peer
//     not run here is dropped and reported; collectives over groups with members not run here
//     are refused (exit 2) unless --drop-comm, which drops them (reported);
//   - a dropped task still waits for its deps and records its end event, so later tasks that
//     depend on it keep their order.
// Buffers: one set per distinct op (inputs random, never zeros), reused by every task of that
// op; when their sum does not fit in device memory (or --shared-buffers), all ops carve their
// buffers from one shared region sized for the largest op (values alias; kernels do not change,
// but the values drift to inf/NaN and GEMMs on them ran 16-22% fast on an H100: a warning says so).
// Timing: `--warmup` untimed steps, then `--steps` timed ones. The rank threads meet at a host
// barrier before each step. A step starts with a short spin kernel (the host queues ahead) and
// an event on the compute stream that every other stream waits for; it ends when every stream
// has reached an event that the compute stream waits for. A rank's step time = end - start on
// its GPU; per task, events recorded just before and after it on its stream give start_us /
// end_us relative to that start (GPUs' events cannot be compared with each other; the barrier
// and the common spin align the starts to within the host threads' wake-up). The step time
// is the largest over the ranks; the tasks' times written are those of the median step (the
// lower middle one when --steps is even).
//
//   trainsim_executor --plan FILE [--rank R | --ranks R1,R2,..] [--device N | --devices D1,D2,..]
//                     [--warmup 2] [--steps 5] [--out FILE.json] [--drop-comm] [--shared-buffers] [--lead-us 2000]
//   trainsim_executor --self-test --plan FILE [--rank R | --ranks R1,R2,..] [--drop-comm]   # parse and classify; no GPU
//   trainsim_executor --version
//
// Exit codes: 0 done; 1 a CUDA/library call failed (check.h names the call); 2 bad arguments,
// a bad plan file, or a task this executor refuses to run; 3 no CUDA device.
#include <algorithm>
#include <barrier>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <cuda_runtime.h>

#include "calibrator.h"
#include "check.h"
#include "device_info.h"
#include "kernels.h"
#include "op_runner.h"
#include "plan_file.h"
#ifdef TRAINSIM_HAVE_NCCL
#include "nccl_ops.h"
#endif

namespace {

constexpr const char* kVersion = "0.2.0";

#ifdef TRAINSIM_HAVE_NCCL
constexpr bool kLocalComm = true;
#else
constexpr bool kLocalComm = false;
#endif

int usage(const char* msg) {
  if (msg) std::fprintf(stderr, "error: %s\n", msg);
  std::fprintf(stderr,
               "usage: trainsim_executor --plan FILE [--rank R | --ranks R1,R2,..] [--device N | --devices D1,D2,..]\n"
               "                         [--warmup 2] [--steps 5] [--out FILE.json] [--drop-comm] [--shared-buffers]\n"
               "                         [--lead-us 2000]\n"
               "       trainsim_executor --self-test --plan FILE [--rank R | --ranks R1,R2,..] [--drop-comm]\n"
               "       trainsim_executor --version\n");
  return 2;
}

bool parse_int(const char* s, int* out) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (!s[0] || *end || v < 0 || v > 1 << 24) return false;
  *out = static_cast<int>(v);
  return true;
}

// "0,1,3" -> {0, 1, 3}; false on an empty item, a non-number or a repeat.
bool parse_list(const std::string& s, std::vector<int>* out) {
  out->clear();
  size_t a = 0;
  while (a <= s.size()) {
    const size_t b = std::min(s.find(',', a), s.size());
    int v = 0;
    if (!parse_int(s.substr(a, b - a).c_str(), &v)) return false;
    if (std::find(out->begin(), out->end(), v) != out->end()) return false;
    out->push_back(v);
    a = b + 1;
  }
  return !out->empty();
}

std::string fmt(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.3f", v);
  return b;
}

// What happens to each task of a rank, and which ops run.
struct Classified {
  std::vector<tscal::TaskAction> action;
  std::vector<std::string> why;          // for dropped / refused tasks
  std::vector<int> compute_ops;          // distinct compute op indices that run (ascending)
  std::vector<int> offload_ops;          // distinct offload op indices
  std::vector<int> comm_ops;             // distinct communication op indices that run
  std::vector<int> streams;              // plan streams used (ascending)
  int refused = 0, dropped = 0;
};

Classified classify(const tscal::PlanFile& pf, const tscal::PlanRank& r, const std::vector<int>& here, bool drop_comm) {
  Classified c;
  std::vector<bool> seen_op(pf.ops.size(), false), seen_stream(tscal::kPlanStreams, false);
  for (const auto& t : r.tasks) {
    std::string why;
    tscal::TaskAction a = tscal::task_action(pf, r, t, here, drop_comm, kLocalComm, &why);
    if (a == tscal::TaskAction::kRun) {
      const tscal::PlanOp& op = pf.ops[t.op];
      if (t.kind != "compute") {
        if (!seen_op[t.op]) { seen_op[t.op] = true; c.comm_ops.push_back(t.op); }
      } else if (op.cls == "offload") {
        if (op.bytes <= 0) { a = tscal::TaskAction::kDrop; why = "offload copy of 0 bytes"; }
        else if (t.stream != 5 && t.stream != 6) {
          a = tscal::TaskAction::kDrop;
          why = "offload op on stream " + std::to_string(t.stream) + " (direction unknown; expected offload-out 5 or offload-in 6)";
        } else if (!seen_op[t.op]) { seen_op[t.op] = true; c.offload_ops.push_back(t.op); }
      } else {
        tscal::OpJob j;
        if (!tscal::job_for_plan_op(op, t.op, &j, &why)) a = tscal::TaskAction::kDrop;
        else if (!seen_op[t.op]) { seen_op[t.op] = true; c.compute_ops.push_back(t.op); }
      }
    }
    c.refused += a == tscal::TaskAction::kRefuse;
    c.dropped += a == tscal::TaskAction::kDrop;
    c.action.push_back(a);
    c.why.push_back(why);
    seen_stream[t.stream] = true;
  }
  std::sort(c.compute_ops.begin(), c.compute_ops.end());
  std::sort(c.offload_ops.begin(), c.offload_ops.end());
  std::sort(c.comm_ops.begin(), c.comm_ops.end());
  for (int s = 0; s < tscal::kPlanStreams; ++s)
    if (seen_stream[s]) c.streams.push_back(s);
  return c;
}

const char* kStreamNames[tscal::kPlanStreams] = {"compute", "dp", "p2p", "gather", "cp", "offload-out", "offload-in",
                                                 "dp-replica", "ep", "tp"};

// Prints the refusals (at most 10 distinct reasons) and returns 2.
int refuse(const tscal::PlanRank& r, const Classified& c) {
  std::map<std::string, int> reasons;
  for (size_t i = 0; i < r.tasks.size(); ++i)
    if (c.action[i] == tscal::TaskAction::kRefuse) ++reasons[c.why[i]];
  std::fprintf(stderr, "error: rank %d: %d task(s) cannot run on this executor:\n", r.rank, c.refused);
  int n = 0;
  for (const auto& [w, k] : reasons) {
    if (++n > 10) break;
    std::fprintf(stderr, "  %d x %s\n", k, w.c_str());
  }
  return 2;
}

// The size of a communication op's buffers on one rank: send then receive (a p2p message is
// sent and received from one buffer pair; a collective's as coll_counts lays them out).
int64_t comm_bytes(const tscal::PlanFile& pf, const tscal::PlanRank& r, int op) {
  const tscal::PlanOp& o = pf.ops[op];
  if (o.cls == "p2p" || o.coll.empty()) return 2 * std::max<int64_t>(o.bytes, 2);
  for (const auto& t : r.tasks)   // every task of one op is over one group kind
    if (t.op == op && t.kind == "collective") {
      const auto* gi = pf.groups[t.group].find(r.group_instances[t.group]);
      const int n = gi ? static_cast<int>(gi->members.size()) : 1;
      return tscal::coll_counts(o.coll, o.dtype, o.bytes, n).buffer_bytes();
    }
  return tscal::coll_counts(o.coll, o.dtype, o.bytes, 1).buffer_bytes();
}

int64_t device_bytes_per_op(const tscal::PlanFile& pf, const tscal::PlanRank& r, const Classified& c, int64_t* largest) {
  int64_t sum = 0;
  *largest = 0;
  auto add = [&](int64_t b) {
    sum += b;
    *largest = std::max(*largest, b);
  };
  for (int o : c.compute_ops) {
    tscal::OpJob j;
    std::string why;
    tscal::job_for_plan_op(pf.ops[o], o, &j, &why);
    add(tscal::runner_bytes(j, 1));
  }
  for (int o : c.offload_ops) add(pf.ops[o].bytes);
  for (int o : c.comm_ops) add(comm_bytes(pf, r, o));
  return sum;
}

int self_test(const tscal::PlanFile& pf, const tscal::PlanRank& r, const Classified& c) {
  std::printf("rank %d (program %d \"%s\"): %zu tasks\n", r.rank, r.program, r.program_name.c_str(), r.tasks.size());
  std::map<std::string, int> kinds;
  std::vector<int> per_stream(tscal::kPlanStreams, 0);
  int deps = 0, cross = 0;
  for (const auto& t : r.tasks) {
    ++kinds[t.kind];
    ++per_stream[t.stream];
    for (int d : t.deps) {
      ++deps;
      cross += r.tasks[d].stream != t.stream;
    }
  }
  for (const auto& [k, n] : kinds) std::printf("  %-11s %d\n", k.c_str(), n);
  std::printf("streams:");
  for (int s : c.streams) std::printf(" %s(%d tasks)", kStreamNames[s], per_stream[s]);
  std::printf("\ndeps: %d, across streams: %d\n", deps, cross);
  std::map<std::string, int> classes;
  for (int o : c.compute_ops) ++classes[pf.ops[o].cls];
  std::printf("distinct compute ops run: %zu", c.compute_ops.size());
  for (const auto& [k, n] : classes) std::printf(" %s=%d", k.c_str(), n);
  std::printf("; offload ops: %zu; communication ops run: %zu\n", c.offload_ops.size(), c.comm_ops.size());
  std::map<std::string, int> reasons;
  for (size_t i = 0; i < r.tasks.size(); ++i)
    if (c.action[i] != tscal::TaskAction::kRun)
      ++reasons[(c.action[i] == tscal::TaskAction::kRefuse ? "refuse: " : "drop: ") + c.why[i]];
  std::printf("dropped: %d, refused: %d\n", c.dropped, c.refused);
  int n = 0;
  for (const auto& [w, k] : reasons) {
    if (++n > 12) { std::printf("  ...\n"); break; }
    std::printf("  %d x %s\n", k, w.c_str());
  }
  int64_t largest = 0;
  const int64_t sum = device_bytes_per_op(pf, r, c, &largest);
  std::printf("device buffers: %.2f GiB one set per op, %.2f GiB shared (largest op)\n", sum / 1073741824.0,
              largest / 1073741824.0);
  return c.refused ? 2 : 0;
}

struct OffloadCopy {
  void* dev = nullptr;
  void* host = nullptr;
  int64_t bytes = 0;
};

struct StepTimes {
  double step_us = 0, issue_us = 0;
  std::vector<float> start_ms, end_ms;
};

// One rank run here: its GPU, what it does with each task, and (after the run) its times.
struct LocalRank {
  const tscal::PlanRank* r = nullptr;
  int device = 0;
  Classified cl;
  std::vector<tscal::TaskAction> action;
  std::vector<std::string> why;
#ifdef TRAINSIM_HAVE_NCCL
  std::vector<ncclComm_t> comm;   // per task: its communicator (communication tasks that run)
  std::vector<int> index, size;   // per task: this rank's index in it and its size
#endif
  // results
  std::vector<std::string> op_note, op_source;
  bool shared = false;
  std::vector<StepTimes> timed;
};

struct RunOptions {
  int warmup = 2, steps = 5, lead_us = 2000;
  bool shared = false;
};

// Runs one rank's program for warmup + steps steps on its GPU (one host thread per rank; the
// threads meet at `step_barrier` before every step).
void run_rank(const tscal::PlanFile& pf, LocalRank& lr, const RunOptions& ro, std::barrier<>& step_barrier) {
  const tscal::PlanRank& r = *lr.r;
  const Classified& cl = lr.cl;
  const int device = lr.device;
  TS_CUDA(cudaSetDevice(device));
  const size_t nt = r.tasks.size();

  // Streams: one per plan stream used; sends get their own per receiver and message channel (see
  // the file comment: with two chunks per rank a receiver may wait on one channel while the
  // sender's next message is on the other, so one stream for both could deadlock).
  std::vector<cudaStream_t> stream(tscal::kPlanStreams, nullptr);
  for (int s : cl.streams) TS_CUDA(cudaStreamCreateWithFlags(&stream[s], cudaStreamNonBlocking));
  if (!stream[0]) TS_CUDA(cudaStreamCreateWithFlags(&stream[0], cudaStreamNonBlocking));
  cudaStream_t setup = stream[0];
  std::map<std::pair<int, int>, cudaStream_t> send_stream;  // (receiver rank, channel) -> stream
  std::vector<cudaStream_t> task_stream(nt);
  for (size_t i = 0; i < nt; ++i) {
    const tscal::PlanTask& t = r.tasks[i];
    task_stream[i] = stream[t.stream];
    if (t.kind == "send" && lr.action[i] == tscal::TaskAction::kRun) {
      const std::pair<int, int> key{r.peer_ranks[t.group], t.channel};
      auto it = send_stream.find(key);
      if (it == send_stream.end()) {
        cudaStream_t st;
        TS_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
        it = send_stream.emplace(key, st).first;
      }
      task_stream[i] = it->second;
    }
  }
  std::vector<cudaStream_t> all_streams;
  for (int s : cl.streams) all_streams.push_back(stream[s]);
  for (const auto& [p, st] : send_stream) all_streams.push_back(st);

  // Buffers and runners.
  int64_t largest = 0;
  const int64_t per_op = device_bytes_per_op(pf, r, cl, &largest);
  const int64_t usable = tscal::usable_device_bytes();
  const bool use_shared = ro.shared || per_op > usable * 9 / 10;
  lr.shared = use_shared;
  std::unique_ptr<tscal::DeviceBuffer> arena_mem;
  tscal::Arena arena;
  if (use_shared) {
    if (largest > usable) {
      std::fprintf(stderr, "error: rank %d: the largest op needs %.2f GiB of device memory; %.2f GiB are usable on GPU %d\n",
                   r.rank, largest / 1073741824.0, usable / 1073741824.0, device);
      std::exit(2);
    }
    std::fprintf(stderr, "note: rank %d: one buffer set per op needs %.2f GiB (%.2f GiB usable)%s; all ops share one region of %.2f GiB\n",
                 r.rank, per_op / 1073741824.0, usable / 1073741824.0, ro.shared ? ", --shared-buffers" : "",
                 largest / 1073741824.0);
    std::fprintf(stderr,
                 "warning: with shared buffers one op's output is another's input: values drift to inf/NaN and "
                 "GEMMs run fast on them (16-22%% on an H100); do not trust these timings\n");
    arena_mem = std::make_unique<tscal::DeviceBuffer>(largest);
    arena.base = static_cast<char*>(arena_mem->p);
    arena.size = largest;
  }
  std::vector<std::unique_ptr<tscal::OpRunner>> runner(pf.ops.size());
  lr.op_note.assign(pf.ops.size(), "");
  lr.op_source.assign(pf.ops.size(), "");
  std::vector<std::string> op_skip(pf.ops.size());
  for (int o : cl.compute_ops) {
    tscal::OpJob j;
    std::string why, note;
    tscal::job_for_plan_op(pf.ops[o], o, &j, &why);
    arena.used = 0;
    runner[o] = tscal::make_runner(j, device, 1, use_shared ? &arena : nullptr, setup, &why, &note);
    if (!note.empty()) std::fprintf(stderr, "note: rank %d: /ops/%d (%s): %s\n", r.rank, o, pf.ops[o].name.c_str(), note.c_str());
    lr.op_note[o] = note;
    if (runner[o]) lr.op_source[o] = runner[o]->source();
    else {
      std::fprintf(stderr, "skip: rank %d: /ops/%d (%s): %s; its tasks are dropped\n", r.rank, o, pf.ops[o].name.c_str(),
                   why.c_str());
      op_skip[o] = why;
    }
  }
  std::vector<OffloadCopy> offload(pf.ops.size());
  std::vector<std::unique_ptr<tscal::DeviceBuffer>> owned;
  for (int o : cl.offload_ops) {
    OffloadCopy& oc = offload[o];
    oc.bytes = pf.ops[o].bytes;
    if (use_shared) {
      oc.dev = arena.base;
    } else {
      owned.push_back(std::make_unique<tscal::DeviceBuffer>(oc.bytes));
      oc.dev = owned.back()->p;
    }
    TS_CUDA(cudaMallocHost(&oc.host, static_cast<size_t>(oc.bytes)));
    tscal::fill_random(oc.dev, oc.bytes / 2, tscal::ElemType::kBF16, 77, 1.0f, setup);
    std::memset(oc.host, 0x3c, static_cast<size_t>(oc.bytes));  // bf16 ~1.0: not zeros
  }
  // Communication buffers: send half then receive half of comm_bytes, random bf16.
  std::vector<char*> comm_buf(pf.ops.size(), nullptr);
  for (int o : cl.comm_ops) {
    const int64_t b = comm_bytes(pf, r, o);
    if (use_shared) comm_buf[o] = arena.base;
    else {
      owned.push_back(std::make_unique<tscal::DeviceBuffer>(b));
      comm_buf[o] = static_cast<char*>(owned.back()->p);
    }
    tscal::fill_random(comm_buf[o], b / 2, tscal::ElemType::kBF16, 91 + static_cast<uint64_t>(r.rank), 1.0f, setup);
    lr.op_source[o] = "NCCL";
  }
  TS_CUDA(cudaDeviceSynchronize());

  // Final actions: tasks of ops that could not be built are dropped too.
  for (size_t i = 0; i < nt; ++i) {
    const int o = r.tasks[i].op;
    if (lr.action[i] == tscal::TaskAction::kRun && r.tasks[i].kind == "compute" && pf.ops[o].cls != "offload" && !runner[o]) {
      lr.action[i] = tscal::TaskAction::kDrop;
      lr.why[i] = "cannot run here: " + op_skip[o];
    }
  }
  // The task before each task on its plan stream (a send waits for it; see the file comment).
  std::vector<int> prev_on_stream(nt, -1);
  {
    std::vector<int> last(tscal::kPlanStreams, -1);
    for (size_t i = 0; i < nt; ++i) {
      prev_on_stream[i] = last[r.tasks[i].stream];
      if (r.tasks[i].kind != "send" || task_stream[i] == stream[r.tasks[i].stream]) last[r.tasks[i].stream] = static_cast<int>(i);
    }
  }

  // Events: start/end per task; step start/end; one per stream to join.
  std::vector<cudaEvent_t> ev_start(nt), ev_end(nt), ev_join(all_streams.size());
  for (size_t i = 0; i < nt; ++i) {
    TS_CUDA(cudaEventCreate(&ev_start[i]));
    TS_CUDA(cudaEventCreate(&ev_end[i]));
  }
  for (auto& e : ev_join) TS_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  cudaEvent_t step_start, step_end;
  TS_CUDA(cudaEventCreate(&step_start));
  TS_CUDA(cudaEventCreate(&step_end));

  for (int step = 0; step < ro.warmup + ro.steps; ++step) {
    step_barrier.arrive_and_wait();
    const auto host_t0 = std::chrono::steady_clock::now();
    cudaStream_t s0 = stream[0];
    if (ro.lead_us > 0) tscal::spin(int64_t{ro.lead_us} * 1000, s0);
    TS_CUDA(cudaEventRecord(step_start, s0));
    for (cudaStream_t st : all_streams)
      if (st != s0) TS_CUDA(cudaStreamWaitEvent(st, step_start, 0));
    for (size_t i = 0; i < nt; ++i) {
      const tscal::PlanTask& t = r.tasks[i];
      cudaStream_t st = task_stream[i];
      for (int d : t.deps)
        if (task_stream[d] != st) TS_CUDA(cudaStreamWaitEvent(st, ev_end[d], 0));
      if (st != stream[t.stream] && prev_on_stream[i] >= 0) TS_CUDA(cudaStreamWaitEvent(st, ev_end[prev_on_stream[i]], 0));
      TS_CUDA(cudaEventRecord(ev_start[i], st));
      if (lr.action[i] == tscal::TaskAction::kRun) {
        const int o = t.op;
        if (t.kind != "compute") {
#ifdef TRAINSIM_HAVE_NCCL
          const tscal::PlanOp& op = pf.ops[o];
          if (t.kind == "collective") {
            const tscal::CollShape sh = tscal::coll_shape(op.coll, op.dtype, op.bytes, lr.size[i]);
            tscal::enqueue_coll(op.coll, sh, lr.index[i], lr.size[i], comm_buf[o],
                                comm_buf[o] + sh.send_elems * sh.esize, lr.comm[i], st);
          } else {
            const size_t count = static_cast<size_t>(std::max<int64_t>(op.bytes / 2, 1));
            if (t.kind == "send") TS_NCCL(ncclSend(comm_buf[o], count, ncclBfloat16, 1, lr.comm[i], st));
            else TS_NCCL(ncclRecv(comm_buf[o] + count * 2, count, ncclBfloat16, 0, lr.comm[i], st));
          }
#endif
        } else if (runner[o]) {
          runner[o]->run(st, step);
        } else {  // offload copy
          const OffloadCopy& oc = offload[o];
          if (t.stream == 5) TS_CUDA(cudaMemcpyAsync(oc.host, oc.dev, static_cast<size_t>(oc.bytes), cudaMemcpyDeviceToHost, st));
          else TS_CUDA(cudaMemcpyAsync(oc.dev, oc.host, static_cast<size_t>(oc.bytes), cudaMemcpyHostToDevice, st));
        }
      }
      TS_CUDA(cudaEventRecord(ev_end[i], st));
    }
    for (size_t k = 0; k < all_streams.size(); ++k)
      if (all_streams[k] != s0) {
        TS_CUDA(cudaEventRecord(ev_join[k], all_streams[k]));
        TS_CUDA(cudaStreamWaitEvent(s0, ev_join[k], 0));
      }
    TS_CUDA(cudaEventRecord(step_end, s0));
    const auto host_t1 = std::chrono::steady_clock::now();
    TS_CUDA(cudaEventSynchronize(step_end));
    TS_CUDA(cudaGetLastError());
    if (step < ro.warmup) continue;
    StepTimes sts;
    float ms = 0;
    TS_CUDA(cudaEventElapsedTime(&ms, step_start, step_end));
    sts.step_us = 1000.0 * ms;
    sts.issue_us = std::chrono::duration<double, std::micro>(host_t1 - host_t0).count();
    sts.start_ms.resize(nt);
    sts.end_ms.resize(nt);
    for (size_t i = 0; i < nt; ++i) {
      TS_CUDA(cudaEventElapsedTime(&sts.start_ms[i], step_start, ev_start[i]));
      TS_CUDA(cudaEventElapsedTime(&sts.end_ms[i], step_start, ev_end[i]));
    }
    std::fprintf(stderr, "rank %d step %d: %.3f us (host issue %.3f us)\n", r.rank, step - ro.warmup, sts.step_us,
                 sts.issue_us);
    lr.timed.push_back(std::move(sts));
  }

  for (size_t i = 0; i < nt; ++i) {
    TS_CUDA(cudaEventDestroy(ev_start[i]));
    TS_CUDA(cudaEventDestroy(ev_end[i]));
  }
  for (auto& e : ev_join) TS_CUDA(cudaEventDestroy(e));
  TS_CUDA(cudaEventDestroy(step_start));
  TS_CUDA(cudaEventDestroy(step_end));
  runner.clear();
  for (auto& oc : offload)
    if (oc.host) TS_CUDA(cudaFreeHost(oc.host));
  TS_CUDA(cudaDeviceSynchronize());
  owned.clear();
  for (cudaStream_t st : all_streams) TS_CUDA(cudaStreamDestroy(st));
}

}  // namespace

int main(int argc, char** argv) {
  std::string plan_path, out_path;
  std::vector<int> ranks, devices;
  RunOptions ro;
  bool self = false, drop_comm = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&](const char* what) -> const char* {
      if (i + 1 >= argc) { usage((a + " needs " + what).c_str()); std::exit(2); }
      return argv[++i];
    };
    int v = 0;
    if (a == "--plan") plan_path = next("a file");
    else if (a == "--out") out_path = next("a file");
    else if (a == "--rank") { if (!parse_int(next("a number"), &v)) return usage("--rank: not a rank"); ranks = {v}; }
    else if (a == "--ranks") { if (!parse_list(next("a list"), &ranks)) return usage("--ranks: a comma-separated list of distinct ranks"); }
    else if (a == "--device") { if (!parse_int(next("a number"), &v)) return usage("--device: not a number"); devices = {v}; }
    else if (a == "--devices") { if (!parse_list(next("a list"), &devices)) return usage("--devices: a comma-separated list of distinct device numbers"); }
    else if (a == "--warmup") { if (!parse_int(next("a number"), &ro.warmup)) return usage("--warmup: a number >= 0"); }
    else if (a == "--steps") { if (!parse_int(next("a number"), &ro.steps) || ro.steps < 1) return usage("--steps: a number >= 1"); }
    else if (a == "--lead-us") { if (!parse_int(next("a number"), &ro.lead_us)) return usage("--lead-us: a number >= 0"); }
    else if (a == "--self-test") self = true;
    else if (a == "--drop-comm") drop_comm = true;
    else if (a == "--shared-buffers") ro.shared = true;
    else if (a == "--version") {
      std::printf("trainsim_executor %s (built with CUDA %d.%d; %s%s)\n", kVersion, CUDART_VERSION / 1000,
                  (CUDART_VERSION % 1000) / 10, tscal::built_with().c_str(),
                  kLocalComm ? "; NCCL between local ranks" : "; without NCCL: one rank's communication is dropped or refused");
      return 0;
    } else if (a == "--help" || a == "-h") { usage(nullptr); return 0; }
    else return usage(("unknown argument " + a).c_str());
  }
  if (plan_path.empty()) return usage("--plan is required");

  tscal::PlanFile pf;
  std::vector<std::string> errors;
  if (!tscal::load_plan(plan_path, &pf, &errors)) {
    size_t n = 0;
    for (const auto& e : errors) {
      if (++n > 50) { std::fprintf(stderr, "... and %zu more\n", errors.size() - 50); break; }
      std::fprintf(stderr, "%s\n", e.c_str());
    }
    return 2;
  }
  if (ranks.empty()) ranks = {pf.ranks.front().rank};
  if (devices.empty())
    for (size_t k = 0; k < ranks.size(); ++k) devices.push_back(static_cast<int>(k));
  if (devices.size() != ranks.size()) {
    std::fprintf(stderr, "error: --devices gives %zu device(s) for %zu rank(s); give one device per rank\n", devices.size(),
                 ranks.size());
    return 2;
  }
  std::vector<LocalRank> local(ranks.size());
  for (size_t k = 0; k < ranks.size(); ++k) {
    local[k].r = pf.find_rank(ranks[k]);
    if (!local[k].r) {
      std::string have;
      for (const auto& r : pf.ranks) have += (have.empty() ? "" : ", ") + std::to_string(r.rank);
      std::fprintf(stderr, "error: %s: rank %d is not exported; the file has rank(s) %s\n", plan_path.c_str(), ranks[k],
                   have.c_str());
      return 2;
    }
    local[k].device = devices[k];
    local[k].cl = classify(pf, *local[k].r, ranks, drop_comm);
    local[k].action = local[k].cl.action;
    local[k].why = local[k].cl.why;
  }
  std::vector<std::vector<tscal::TaskAction>> actions;
  for (const auto& lr : local) actions.push_back(lr.action);
  const std::vector<tscal::CommSpec> specs = tscal::comm_specs(pf, ranks, actions);
  if (self) {
    std::printf("self-test: %s: version %lld, scenario \"%s\", costs \"%s\", %lld ranks in the plan, %zu exported\n",
                plan_path.c_str(), (long long)pf.version, pf.scenario.c_str(), pf.costs.c_str(), (long long)pf.num_ranks,
                pf.ranks.size());
    if (pf.predicted_step_us >= 0) std::printf("predicted step: %.3f us\n", pf.predicted_step_us);
    int rc = 0;
    for (const auto& lr : local) rc = std::max(rc, self_test(pf, *lr.r, lr.cl));
    std::printf("communicators: %zu", specs.size());
    for (const auto& c : specs) {
      std::printf(" %s[", c.group >= 0 ? pf.groups[c.group].name.c_str() : "p2p");
      for (size_t m = 0; m < c.members.size(); ++m) std::printf("%s%d", m ? "," : "", c.members[m]);
      std::printf("]");
    }
    std::printf("\nbuilt with: %s%s\n", tscal::built_with().c_str(), kLocalComm ? ", NCCL" : ", no NCCL");
    return rc;
  }
  for (const auto& lr : local)
    if (lr.cl.refused) return refuse(*lr.r, lr.cl);

  int count = 0;
  for (int d : devices)
    if (const int rc = tscal::check_device(d, &count); rc != 0) return rc;
  std::string names;
  for (const auto& lr : local) {
    cudaDeviceProp prop{};
    TS_CUDA(cudaGetDeviceProperties(&prop, lr.device));
    std::fprintf(stderr, "trainsim_executor: rank %d on GPU %d %s (cc %d.%d): %zu tasks, %zu distinct compute ops, %zu communication ops, %d dropped\n",
                 lr.r->rank, lr.device, prop.name, prop.major, prop.minor, lr.r->tasks.size(), lr.cl.compute_ops.size(),
                 lr.cl.comm_ops.size(), lr.cl.dropped);
  }
  const std::string dev_json = tscal::device_json(devices.front(), static_cast<int>(devices.size()));

#ifdef TRAINSIM_HAVE_NCCL
  // Communicators (main thread, before the rank threads start).
  std::vector<std::vector<ncclComm_t>> comms(specs.size());
  auto local_index = [&](int rank) -> int {
    for (size_t k = 0; k < ranks.size(); ++k)
      if (ranks[k] == rank) return static_cast<int>(k);
    return -1;
  };
  for (size_t c = 0; c < specs.size(); ++c) {
    std::vector<int> devs;
    for (int m : specs[c].members) devs.push_back(devices[local_index(m)]);
    std::vector<int> sorted = devs;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
      std::fprintf(stderr, "error: a communicator over ranks that share a GPU (NCCL needs one GPU per rank): give --devices "
                           "distinct GPUs, or --drop-comm\n");
      return 2;
    }
    comms[c].resize(devs.size());
    TS_NCCL(ncclCommInitAll(comms[c].data(), static_cast<int>(devs.size()), devs.data()));
  }
  for (auto& lr : local) {
    const tscal::PlanRank& r = *lr.r;
    lr.comm.assign(r.tasks.size(), nullptr);
    lr.index.assign(r.tasks.size(), 0);
    lr.size.assign(r.tasks.size(), 1);
    for (size_t i = 0; i < r.tasks.size(); ++i) {
      const tscal::PlanTask& t = r.tasks[i];
      if (lr.action[i] != tscal::TaskAction::kRun || t.kind == "compute") continue;
      const tscal::CommSpec want = tscal::comm_spec_of(pf, r, t);
      const size_t c = static_cast<size_t>(std::find(specs.begin(), specs.end(), want) - specs.begin());
      const auto& mem = specs[c].members;
      const int idx = static_cast<int>(std::find(mem.begin(), mem.end(), r.rank) - mem.begin());
      lr.comm[i] = comms[c][idx];
      lr.index[i] = idx;
      lr.size[i] = static_cast<int>(mem.size());
    }
  }
#endif

  // One thread per rank.
  std::barrier<> step_barrier(static_cast<std::ptrdiff_t>(local.size()));
  {
    std::vector<std::thread> threads;
    for (auto& lr : local) threads.emplace_back([&pf, &lr, &ro, &step_barrier] { run_rank(pf, lr, ro, step_barrier); });
    for (auto& t : threads) t.join();
  }
#ifdef TRAINSIM_HAVE_NCCL
  for (auto& cs : comms)
    for (ncclComm_t c : cs) TS_NCCL(ncclCommDestroy(c));
#endif

  // Step k's time: the largest over the ranks. The median step, and its tasks.
  const size_t n = local.front().timed.size();
  std::vector<double> step_us(n, 0.0), issue_us(n, 0.0);
  for (const auto& lr : local)
    for (size_t k = 0; k < n; ++k) {
      step_us[k] = std::max(step_us[k], lr.timed[k].step_us);
      issue_us[k] = std::max(issue_us[k], lr.timed[k].issue_us);
    }
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return step_us[a] < step_us[b]; });
  const double median = n % 2 ? step_us[order[n / 2]] : 0.5 * (step_us[order[n / 2 - 1]] + step_us[order[n / 2]]);
  const size_t med_step = order[(n - 1) / 2];

  // Output.
  FILE* out = stdout;
  if (!out_path.empty()) {
    out = std::fopen(out_path.c_str(), "w");
    if (!out) {
      std::fprintf(stderr, "error: %s: cannot open for writing: %s\n", out_path.c_str(), std::strerror(errno));
      return 2;
    }
  }
  std::fprintf(out, "{\"device\": %s,\n", dev_json.c_str());
  std::fprintf(out, " \"executor\": \"trainsim_executor %s\", \"plan\": \"%s\", \"scenario\": \"%s\", \"costs\": \"%s\",\n", kVersion,
               tscal::json_escape(plan_path).c_str(), tscal::json_escape(pf.scenario).c_str(),
               tscal::json_escape(pf.costs).c_str());
  std::fprintf(out, " \"rank\": %d, \"ranks\": [", local.front().r->rank);
  for (size_t k = 0; k < local.size(); ++k) std::fprintf(out, "%s%d", k ? ", " : "", local[k].r->rank);
  std::fprintf(out, "], \"devices\": [");
  for (size_t k = 0; k < local.size(); ++k) std::fprintf(out, "%s%d", k ? ", " : "", local[k].device);
  std::fprintf(out, "], \"communicators\": %zu,\n", specs.size());
  std::fprintf(out, " \"predicted_step_us\": %s, \"step_us\": %.3f, \"steps\": %d, \"warmup\": %d,\n",
               pf.predicted_step_us >= 0 ? fmt(pf.predicted_step_us).c_str() : "null", median, ro.steps, ro.warmup);
  std::fprintf(out, " \"step_times_us\": [");
  for (size_t i = 0; i < n; ++i) std::fprintf(out, "%s%.3f", i ? ", " : "", step_us[i]);
  std::fprintf(out, "], \"host_issue_us\": [");
  for (size_t i = 0; i < n; ++i) std::fprintf(out, "%s%.3f", i ? ", " : "", issue_us[i]);
  bool any_shared = false;
  for (const auto& lr : local) any_shared |= lr.shared;
  std::fprintf(out, "],\n \"tasks_from\": \"median step (timed step %zu, %.3f us)\", \"lead_us\": %d, \"buffers\": \"%s\",\n",
               med_step, step_us[med_step], ro.lead_us, any_shared ? "shared" : "per-op");
  // Per op class: simulated vs measured task time (sum of end - start over run tasks, all ranks).
  std::map<std::string, std::pair<double, double>> by_class;
  for (const auto& lr : local) {
    const StepTimes& ms = lr.timed[med_step];
    for (size_t i = 0; i < lr.r->tasks.size(); ++i) {
      if (lr.action[i] != tscal::TaskAction::kRun) continue;
      auto& p = by_class[pf.ops[lr.r->tasks[i].op].cls];
      p.first += lr.r->tasks[i].dur_us;
      p.second += 1000.0 * (ms.end_ms[i] - ms.start_ms[i]);
    }
  }
  std::fprintf(out, " \"by_class\": {");
  bool first = true;
  for (const auto& [k, p] : by_class) {
    std::fprintf(out, "%s\"%s\": {\"sim_us\": %.3f, \"gpu_us\": %.3f}", first ? "" : ", ", k.c_str(), p.first, p.second);
    first = false;
  }
  std::fprintf(out, "},\n \"ops\": [");
  first = true;
  {
    std::vector<int> ops;
    for (const auto& lr : local) {
      ops.insert(ops.end(), lr.cl.compute_ops.begin(), lr.cl.compute_ops.end());
      ops.insert(ops.end(), lr.cl.comm_ops.begin(), lr.cl.comm_ops.end());
    }
    std::sort(ops.begin(), ops.end());
    ops.erase(std::unique(ops.begin(), ops.end()), ops.end());
    for (int o : ops) {
      std::string source, note;
      for (const auto& lr : local)
        if (!lr.op_source[o].empty()) { source = lr.op_source[o]; note = lr.op_note[o]; break; }
      std::fprintf(out, "%s\n  {\"op\": %d, \"name\": \"%s\", \"class\": \"%s\", \"source\": \"%s\"%s%s%s}", first ? "" : ",", o,
                   tscal::json_escape(pf.ops[o].name).c_str(), pf.ops[o].cls.c_str(), tscal::json_escape(source).c_str(),
                   note.empty() ? "" : ", \"note\": \"", tscal::json_escape(note).c_str(), note.empty() ? "" : "\"");
      first = false;
    }
  }
  std::fprintf(out, "],\n \"tasks\": [");
  first = true;
  for (const auto& lr : local) {
    const StepTimes& ms = lr.timed[med_step];
    for (size_t i = 0; i < lr.r->tasks.size(); ++i) {
      const tscal::PlanTask& t = lr.r->tasks[i];
      std::fprintf(out, "%s\n  {\"rank\": %d, \"index\": %zu, \"op\": %d, \"stream\": %d, \"start_us\": %.3f, \"end_us\": %.3f, \"sim_us\": %.3f%s}",
                   first ? "" : ",", lr.r->rank, i, t.op, t.stream, 1000.0 * ms.start_ms[i], 1000.0 * ms.end_ms[i], t.dur_us,
                   lr.action[i] == tscal::TaskAction::kRun ? "" : ", \"dropped\": true");
      first = false;
    }
  }
  std::fprintf(out, "],\n \"dropped\": [");
  first = true;
  for (const auto& lr : local)
    for (size_t i = 0; i < lr.r->tasks.size(); ++i) {
      if (lr.action[i] == tscal::TaskAction::kRun) continue;
      const tscal::PlanTask& t = lr.r->tasks[i];
      std::fprintf(out, "%s\n  {\"rank\": %d, \"index\": %zu, \"op\": %d, \"name\": \"%s\", \"kind\": \"%s\", \"sim_us\": %.3f, \"why\": \"%s\"}",
                   first ? "" : ",", lr.r->rank, i, t.op, tscal::json_escape(pf.ops[t.op].name).c_str(), t.kind.c_str(), t.dur_us,
                   tscal::json_escape(lr.why[i]).c_str());
      first = false;
    }
  std::fprintf(out, "]}\n");
  if (out != stdout) std::fclose(out);
  std::fprintf(stderr, "trainsim_executor: step %.3f us (median of %d, largest over %zu rank(s))%s\n", median, ro.steps,
               local.size(), pf.predicted_step_us >= 0 ? (", predicted " + fmt(pf.predicted_step_us) + " us").c_str() : "");
  return 0;
}
