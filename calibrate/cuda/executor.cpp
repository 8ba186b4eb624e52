// File: calibrate/cuda/executor.cpp
// trainsim_executor: the CUDA verify executor (issue 6). Reads an exported plan
// (calibrate/FORMAT.md section 4, `trainsim run SCENARIO --export-plan FILE`) and runs the
// program of ONE rank on one GPU, task by task in the plan's issue order:
//   - one CUDA stream per plan stream the rank uses;
//   - each task on its stream, after cudaStreamWaitEvent on the end events of its deps that
//     are on other streams (deps on the same stream are implied by stream order);
//   - compute ops through op_runner.h (cuBLASLt GEMMs, cuDNN fused SDPA, own memory-bound
//     kernels), as the calibrator measures them; offload ops as cudaMemcpyAsync to/from pinned
//     host memory (stream offload-out: device to host; offload-in: host to device);
//   - collectives over a group of size 1 are no-ops, dropped and reported; send/recv to a peer
//     not run here is dropped and reported; collectives over larger groups need NCCL over as
//     many local GPUs, which is NOT built: they are refused (exit 2) unless --drop-comm, which
//     drops them (reported) so that one rank of a multi-rank plan runs alone;
//   - a dropped task still waits for its deps and records its end event, so later tasks that
//     depend on it keep their order.
// Buffers: one set per distinct op (inputs random, never zeros), reused by every task of that
// op; when their sum does not fit in device memory (or --shared-buffers), all ops carve their
// buffers from one shared region sized for the largest op (values alias; kernels do not change,
// but the values drift to inf/NaN and GEMMs on them ran 16-22% fast on an H100: a warning says so).
// Timing: `--warmup` untimed steps, then `--steps` timed ones. A step starts with a short spin
// kernel (the host queues ahead) and an event on the compute stream that every other stream
// waits for; it ends when every stream has reached an event that the compute stream waits
// for. step time = end - start; per task, events recorded just before and after it on its
// stream give start_us / end_us relative to the step's start. The tasks' times written are
// those of the median step (the lower middle one when --steps is even).
//
//   trainsim_executor --plan FILE [--rank R] [--device N] [--warmup 2] [--steps 5] [--out FILE.json]
//                     [--drop-comm] [--shared-buffers] [--lead-us 2000]
//   trainsim_executor --self-test --plan FILE [--rank R] [--drop-comm]   # parse and classify; no GPU
//   trainsim_executor --version
//
// Exit codes: 0 done; 1 a CUDA/library call failed (check.h names the call); 2 bad arguments,
// a bad plan file, or a task this executor refuses to run; 3 no CUDA device.
#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "calibrator.h"
#include "check.h"
#include "device_info.h"
#include "kernels.h"
#include "op_runner.h"
#include "plan_file.h"

namespace {

constexpr const char* kVersion = "0.1.0";

int usage(const char* msg) {
  if (msg) std::fprintf(stderr, "error: %s\n", msg);
  std::fprintf(stderr,
               "usage: trainsim_executor --plan FILE [--rank R] [--device N] [--warmup 2] [--steps 5] [--out FILE.json]\n"
               "                         [--drop-comm] [--shared-buffers] [--lead-us 2000]\n"
               "       trainsim_executor --self-test --plan FILE [--rank R] [--drop-comm]\n"
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

std::string fmt(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.3f", v);
  return b;
}

// What happens to each task of the rank, and which ops run.
struct Classified {
  std::vector<tscal::TaskAction> action;
  std::vector<std::string> why;          // for dropped / refused tasks
  std::vector<int> compute_ops;          // distinct compute op indices that run (ascending)
  std::vector<int> offload_ops;          // distinct offload op indices
  std::vector<int> streams;              // plan streams used (ascending)
  int refused = 0, dropped = 0;
};

Classified classify(const tscal::PlanFile& pf, const tscal::PlanRank& r, bool drop_comm) {
  Classified c;
  const std::vector<int> here = {r.rank};
  std::vector<bool> seen_op(pf.ops.size(), false), seen_stream(tscal::kPlanStreams, false);
  for (const auto& t : r.tasks) {
    std::string why;
    tscal::TaskAction a = tscal::task_action(pf, r, t, here, drop_comm, &why);
    if (a == tscal::TaskAction::kRun) {
      const tscal::PlanOp& op = pf.ops[t.op];
      if (op.cls == "offload") {
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
  for (int s = 0; s < tscal::kPlanStreams; ++s)
    if (seen_stream[s]) c.streams.push_back(s);
  return c;
}

const char* kStreamNames[tscal::kPlanStreams] = {"compute", "dp", "p2p", "gather", "cp", "offload-out", "offload-in"};

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

int64_t device_bytes_per_op(const tscal::PlanFile& pf, const Classified& c, int64_t* largest) {
  int64_t sum = 0;
  *largest = 0;
  for (int o : c.compute_ops) {
    tscal::OpJob j;
    std::string why;
    tscal::job_for_plan_op(pf.ops[o], o, &j, &why);
    const int64_t b = tscal::runner_bytes(j, 1);
    sum += b;
    *largest = std::max(*largest, b);
  }
  for (int o : c.offload_ops) {
    sum += pf.ops[o].bytes;
    *largest = std::max<int64_t>(*largest, pf.ops[o].bytes);
  }
  return sum;
}

int self_test(const std::string& path, const tscal::PlanFile& pf, const tscal::PlanRank& r, const Classified& c) {
  std::printf("self-test: %s: version %lld, scenario \"%s\", costs \"%s\", %lld ranks in the plan, %zu exported\n",
              path.c_str(), (long long)pf.version, pf.scenario.c_str(), pf.costs.c_str(), (long long)pf.num_ranks,
              pf.ranks.size());
  if (pf.predicted_step_us >= 0) std::printf("predicted step: %.3f us\n", pf.predicted_step_us);
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
  std::printf("; offload ops: %zu\n", c.offload_ops.size());
  std::map<std::string, int> reasons;
  for (size_t i = 0; i < r.tasks.size(); ++i)
    if (c.action[i] != tscal::TaskAction::kRun) {
      std::string w = c.why[i];
      // group the reasons by their text before any rank number, so the list stays short
      ++reasons[(c.action[i] == tscal::TaskAction::kRefuse ? "refuse: " : "drop: ") + w];
    }
  std::printf("dropped: %d, refused: %d\n", c.dropped, c.refused);
  int n = 0;
  for (const auto& [w, k] : reasons) {
    if (++n > 12) { std::printf("  ...\n"); break; }
    std::printf("  %d x %s\n", k, w.c_str());
  }
  int64_t largest = 0;
  const int64_t sum = device_bytes_per_op(pf, c, &largest);
  std::printf("device buffers: %.2f GiB one set per op, %.2f GiB shared (largest op)\n", sum / 1073741824.0,
              largest / 1073741824.0);
  std::printf("built with: %s\n", tscal::built_with().c_str());
  return c.refused ? 2 : 0;
}

struct OffloadCopy {
  void* dev = nullptr;
  void* host = nullptr;
  int64_t bytes = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string plan_path, out_path;
  int device = 0, rank = -1, warmup = 2, steps = 5, lead_us = 2000;
  bool self = false, drop_comm = false, shared = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&](const char* what) -> const char* {
      if (i + 1 >= argc) { usage((a + " needs " + what).c_str()); std::exit(2); }
      return argv[++i];
    };
    if (a == "--plan") plan_path = next("a file");
    else if (a == "--out") out_path = next("a file");
    else if (a == "--rank") { if (!parse_int(next("a number"), &rank)) return usage("--rank: not a rank"); }
    else if (a == "--device") { if (!parse_int(next("a number"), &device)) return usage("--device: not a number"); }
    else if (a == "--warmup") { if (!parse_int(next("a number"), &warmup)) return usage("--warmup: a number >= 0"); }
    else if (a == "--steps") { if (!parse_int(next("a number"), &steps) || steps < 1) return usage("--steps: a number >= 1"); }
    else if (a == "--lead-us") { if (!parse_int(next("a number"), &lead_us)) return usage("--lead-us: a number >= 0"); }
    else if (a == "--self-test") self = true;
    else if (a == "--drop-comm") drop_comm = true;
    else if (a == "--shared-buffers") shared = true;
    else if (a == "--version") {
      std::printf("trainsim_executor %s (built with CUDA %d.%d; %s)\n", kVersion, CUDART_VERSION / 1000,
                  (CUDART_VERSION % 1000) / 10, tscal::built_with().c_str());
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
  if (rank < 0) rank = pf.ranks.front().rank;
  const tscal::PlanRank* rp = pf.find_rank(rank);
  if (!rp) {
    std::string have;
    for (const auto& r : pf.ranks) have += (have.empty() ? "" : ", ") + std::to_string(r.rank);
    std::fprintf(stderr, "error: %s: --rank %d is not exported; the file has rank(s) %s\n", plan_path.c_str(), rank,
                 have.c_str());
    return 2;
  }
  const tscal::PlanRank& r = *rp;
  const Classified cl = classify(pf, r, drop_comm);
  if (self) return self_test(plan_path, pf, r, cl);
  if (cl.refused) return refuse(r, cl);

  int count = 0;
  if (const int rc = tscal::check_device(device, &count); rc != 0) return rc;
  TS_CUDA(cudaSetDevice(device));
  cudaDeviceProp prop{};
  TS_CUDA(cudaGetDeviceProperties(&prop, device));
  const std::string dev_json = tscal::device_json(device, 1);
  std::fprintf(stderr, "trainsim_executor: %s (cc %d.%d); %s rank %d: %zu tasks, %zu distinct compute ops, %d dropped\n",
               prop.name, prop.major, prop.minor, plan_path.c_str(), r.rank, r.tasks.size(), cl.compute_ops.size(),
               cl.dropped);

  // Streams (one per plan stream used) and a setup stream.
  std::vector<cudaStream_t> stream(tscal::kPlanStreams, nullptr);
  for (int s : cl.streams) TS_CUDA(cudaStreamCreateWithFlags(&stream[s], cudaStreamNonBlocking));
  if (!stream[0]) TS_CUDA(cudaStreamCreateWithFlags(&stream[0], cudaStreamNonBlocking));
  cudaStream_t setup = stream[0];

  // Buffers and runners.
  int64_t largest = 0;
  const int64_t per_op = device_bytes_per_op(pf, cl, &largest);
  const int64_t usable = tscal::usable_device_bytes();
  const bool use_shared = shared || per_op > usable * 9 / 10;
  std::unique_ptr<tscal::DeviceBuffer> arena_mem;
  tscal::Arena arena;
  if (use_shared) {
    if (largest > usable) {
      std::fprintf(stderr, "error: the largest op needs %.2f GiB of device memory; %.2f GiB are usable\n",
                   largest / 1073741824.0, usable / 1073741824.0);
      return 2;
    }
    std::fprintf(stderr, "note: one buffer set per op needs %.2f GiB (%.2f GiB usable)%s; all ops share one region of %.2f GiB\n",
                 per_op / 1073741824.0, usable / 1073741824.0, shared ? ", --shared-buffers" : "",
                 largest / 1073741824.0);
    std::fprintf(stderr,
                 "warning: with shared buffers one op's output is another's input: values drift to inf/NaN and "
                 "GEMMs run fast on them (16-22%% on an H100); do not trust these timings\n");
    arena_mem = std::make_unique<tscal::DeviceBuffer>(largest);
    arena.base = static_cast<char*>(arena_mem->p);
    arena.size = largest;
  }
  std::vector<std::unique_ptr<tscal::OpRunner>> runner(pf.ops.size());
  std::vector<std::string> op_note(pf.ops.size()), op_skip(pf.ops.size());
  for (int o : cl.compute_ops) {
    tscal::OpJob j;
    std::string why, note;
    tscal::job_for_plan_op(pf.ops[o], o, &j, &why);
    arena.used = 0;
    runner[o] = tscal::make_runner(j, device, 1, use_shared ? &arena : nullptr, setup, &why, &note);
    if (!note.empty()) std::fprintf(stderr, "note: /ops/%d (%s): %s\n", o, pf.ops[o].name.c_str(), note.c_str());
    op_note[o] = note;
    if (!runner[o]) {
      std::fprintf(stderr, "skip: /ops/%d (%s): %s; its tasks are dropped\n", o, pf.ops[o].name.c_str(), why.c_str());
      op_skip[o] = why;
    }
  }
  std::vector<OffloadCopy> offload(pf.ops.size());
  std::vector<std::unique_ptr<tscal::DeviceBuffer>> offload_dev;
  for (int o : cl.offload_ops) {
    OffloadCopy& oc = offload[o];
    oc.bytes = pf.ops[o].bytes;
    if (use_shared) {
      oc.dev = arena.base;
    } else {
      offload_dev.push_back(std::make_unique<tscal::DeviceBuffer>(oc.bytes));
      oc.dev = offload_dev.back()->p;
    }
    TS_CUDA(cudaMallocHost(&oc.host, static_cast<size_t>(oc.bytes)));
    tscal::fill_random(oc.dev, oc.bytes / 2, tscal::ElemType::kBF16, 77, 1.0f, setup);
    std::memset(oc.host, 0x3c, static_cast<size_t>(oc.bytes));  // bf16 ~1.0: not zeros
  }
  TS_CUDA(cudaDeviceSynchronize());

  // Final actions: tasks of ops that could not be built are dropped too.
  const size_t nt = r.tasks.size();
  std::vector<tscal::TaskAction> action = cl.action;
  std::vector<std::string> why = cl.why;
  for (size_t i = 0; i < nt; ++i) {
    const int o = r.tasks[i].op;
    if (action[i] == tscal::TaskAction::kRun && pf.ops[o].cls != "offload" && !runner[o]) {
      action[i] = tscal::TaskAction::kDrop;
      why[i] = "cannot run here: " + op_skip[o];
    }
  }

  // Events: start/end per task; step start/end; one per stream to join.
  std::vector<cudaEvent_t> ev_start(nt), ev_end(nt), ev_join(tscal::kPlanStreams);
  for (size_t i = 0; i < nt; ++i) {
    TS_CUDA(cudaEventCreate(&ev_start[i]));
    TS_CUDA(cudaEventCreate(&ev_end[i]));
  }
  for (auto& e : ev_join) TS_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  cudaEvent_t step_start, step_end;
  TS_CUDA(cudaEventCreate(&step_start));
  TS_CUDA(cudaEventCreate(&step_end));

  struct StepTimes {
    double step_us = 0, issue_us = 0;
    std::vector<float> start_ms, end_ms;
  };
  std::vector<StepTimes> timed;
  for (int step = 0; step < warmup + steps; ++step) {
    const auto host_t0 = std::chrono::steady_clock::now();
    cudaStream_t s0 = stream[0];
    if (lead_us > 0) tscal::spin(int64_t{lead_us} * 1000, s0);
    TS_CUDA(cudaEventRecord(step_start, s0));
    for (int s : cl.streams)
      if (s != 0) TS_CUDA(cudaStreamWaitEvent(stream[s], step_start, 0));
    for (size_t i = 0; i < nt; ++i) {
      const tscal::PlanTask& t = r.tasks[i];
      cudaStream_t st = stream[t.stream];
      for (int d : t.deps)
        if (r.tasks[d].stream != t.stream) TS_CUDA(cudaStreamWaitEvent(st, ev_end[d], 0));
      TS_CUDA(cudaEventRecord(ev_start[i], st));
      if (action[i] == tscal::TaskAction::kRun) {
        const int o = t.op;
        if (runner[o]) {
          runner[o]->run(st, step);
        } else {  // offload copy
          const OffloadCopy& oc = offload[o];
          if (t.stream == 5) TS_CUDA(cudaMemcpyAsync(oc.host, oc.dev, static_cast<size_t>(oc.bytes), cudaMemcpyDeviceToHost, st));
          else TS_CUDA(cudaMemcpyAsync(oc.dev, oc.host, static_cast<size_t>(oc.bytes), cudaMemcpyHostToDevice, st));
        }
      }
      TS_CUDA(cudaEventRecord(ev_end[i], st));
    }
    for (int s : cl.streams)
      if (s != 0) {
        TS_CUDA(cudaEventRecord(ev_join[s], stream[s]));
        TS_CUDA(cudaStreamWaitEvent(s0, ev_join[s], 0));
      }
    TS_CUDA(cudaEventRecord(step_end, s0));
    const auto host_t1 = std::chrono::steady_clock::now();
    TS_CUDA(cudaEventSynchronize(step_end));
    TS_CUDA(cudaGetLastError());
    if (step < warmup) continue;
    StepTimes st;
    float ms = 0;
    TS_CUDA(cudaEventElapsedTime(&ms, step_start, step_end));
    st.step_us = 1000.0 * ms;
    st.issue_us = std::chrono::duration<double, std::micro>(host_t1 - host_t0).count();
    st.start_ms.resize(nt);
    st.end_ms.resize(nt);
    for (size_t i = 0; i < nt; ++i) {
      TS_CUDA(cudaEventElapsedTime(&st.start_ms[i], step_start, ev_start[i]));
      TS_CUDA(cudaEventElapsedTime(&st.end_ms[i], step_start, ev_end[i]));
    }
    std::fprintf(stderr, "step %d: %.3f us (host issue %.3f us)\n", step - warmup, st.step_us, st.issue_us);
    timed.push_back(std::move(st));
  }

  // The median step.
  std::vector<size_t> order(timed.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return timed[a].step_us < timed[b].step_us; });
  const size_t n = order.size();
  const double median = n % 2 ? timed[order[n / 2]].step_us
                              : 0.5 * (timed[order[n / 2 - 1]].step_us + timed[order[n / 2]].step_us);
  const size_t med_step = order[(n - 1) / 2];
  const StepTimes& ms = timed[med_step];

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
  std::fprintf(out, " \"rank\": %d, \"predicted_step_us\": %s, \"step_us\": %.3f, \"steps\": %d, \"warmup\": %d,\n", r.rank,
               pf.predicted_step_us >= 0 ? fmt(pf.predicted_step_us).c_str() : "null", median, steps, warmup);
  std::fprintf(out, " \"step_times_us\": [");
  for (size_t i = 0; i < timed.size(); ++i) std::fprintf(out, "%s%.3f", i ? ", " : "", timed[i].step_us);
  std::fprintf(out, "], \"host_issue_us\": [");
  for (size_t i = 0; i < timed.size(); ++i) std::fprintf(out, "%s%.3f", i ? ", " : "", timed[i].issue_us);
  std::fprintf(out, "],\n \"tasks_from\": \"median step (timed step %zu, %.3f us)\", \"lead_us\": %d, \"buffers\": \"%s\",\n",
               med_step, ms.step_us, lead_us, use_shared ? "shared" : "per-op");
  // Per op class: simulated vs measured task time (sum of end - start over run tasks).
  std::map<std::string, std::pair<double, double>> by_class;
  for (size_t i = 0; i < nt; ++i) {
    if (action[i] != tscal::TaskAction::kRun) continue;
    auto& p = by_class[pf.ops[r.tasks[i].op].cls];
    p.first += r.tasks[i].dur_us;
    p.second += 1000.0 * (ms.end_ms[i] - ms.start_ms[i]);
  }
  std::fprintf(out, " \"by_class\": {");
  bool first = true;
  for (const auto& [k, p] : by_class) {
    std::fprintf(out, "%s\"%s\": {\"sim_us\": %.3f, \"gpu_us\": %.3f}", first ? "" : ", ", k.c_str(), p.first, p.second);
    first = false;
  }
  std::fprintf(out, "},\n \"ops\": [");
  first = true;
  for (int o : cl.compute_ops) {
    std::fprintf(out, "%s\n  {\"op\": %d, \"name\": \"%s\", \"class\": \"%s\", \"source\": \"%s\"%s%s%s}", first ? "" : ",", o,
                 tscal::json_escape(pf.ops[o].name).c_str(), pf.ops[o].cls.c_str(),
                 runner[o] ? tscal::json_escape(runner[o]->source()).c_str() : "",
                 op_note[o].empty() ? "" : ", \"note\": \"", tscal::json_escape(op_note[o]).c_str(),
                 op_note[o].empty() ? "" : "\"");
    first = false;
  }
  std::fprintf(out, "],\n \"tasks\": [");
  for (size_t i = 0; i < nt; ++i) {
    const tscal::PlanTask& t = r.tasks[i];
    std::fprintf(out, "%s\n  {\"rank\": %d, \"index\": %zu, \"op\": %d, \"stream\": %d, \"start_us\": %.3f, \"end_us\": %.3f, \"sim_us\": %.3f%s}",
                 i ? "," : "", r.rank, i, t.op, t.stream, 1000.0 * ms.start_ms[i], 1000.0 * ms.end_ms[i], t.dur_us,
                 action[i] == tscal::TaskAction::kRun ? "" : ", \"dropped\": true");
  }
  std::fprintf(out, "],\n \"dropped\": [");
  first = true;
  for (size_t i = 0; i < nt; ++i) {
    if (action[i] == tscal::TaskAction::kRun) continue;
    const tscal::PlanTask& t = r.tasks[i];
    std::fprintf(out, "%s\n  {\"rank\": %d, \"index\": %zu, \"op\": %d, \"name\": \"%s\", \"kind\": \"%s\", \"sim_us\": %.3f, \"why\": \"%s\"}",
                 first ? "" : ",", r.rank, i, t.op, tscal::json_escape(pf.ops[t.op].name).c_str(), t.kind.c_str(), t.dur_us,
                 tscal::json_escape(why[i]).c_str());
    first = false;
  }
  std::fprintf(out, "]}\n");
  if (out != stdout) std::fclose(out);

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
  for (int s = 0; s < tscal::kPlanStreams; ++s)
    if (stream[s]) TS_CUDA(cudaStreamDestroy(stream[s]));
  std::fprintf(stderr, "trainsim_executor: step %.3f us (median of %d)%s\n", median, steps,
               pf.predicted_step_us >= 0 ? (", predicted " + fmt(pf.predicted_step_us) + " us").c_str() : "");
  return 0;
}
