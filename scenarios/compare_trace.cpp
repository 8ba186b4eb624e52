#include "scenarios/compare_trace.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "scenarios/predict.h"
#include "sim/check.h"

namespace trainsim {

namespace {

using Interval = std::pair<Time, Time>;

// Length of the union of intervals (any order, possibly overlapping).
Time union_length(std::vector<Interval> v) {
  std::sort(v.begin(), v.end());
  Time total, cur_s, cur_e;
  bool open = false;
  for (const auto& [s, e] : v) {
    if (e <= s) continue;
    if (!open || s > cur_e) {
      if (open) total += cur_e - cur_s;
      cur_s = s;
      cur_e = e;
      open = true;
    } else {
      cur_e = max(cur_e, e);
    }
  }
  if (open) total += cur_e - cur_s;
  return total;
}

const std::vector<std::string>& row_order() { return trace_class_rows(); }

// The index of row `what` in trace_class_rows().
uint8_t row_index(const std::string& what) {
  const auto& k = trace_class_rows();
  const auto it = std::find(k.begin(), k.end(), what);
  SIM_CHECK(it != k.end(), "compare-trace: no row '%s'", what.c_str());
  return static_cast<uint8_t>(it - k.begin());
}

std::string row_of_kind(const std::string& nccl) { return nccl == "send-recv" ? "send/recv" : nccl; }

Time us_to_time(double us) { return Time::ps(static_cast<int64_t>(std::llround(us * 1e6))); }

}  // namespace

// Row order: op classes, then collective kinds, then send/recv, then unclassified.
const std::vector<std::string>& trace_class_rows() {
  static const std::vector<std::string> k = {"gemm",       "attention",  "elementwise",    "norm",
                                             "embedding",  "loss",       "optimizer",      "all-reduce",
                                             "all-gather", "reduce-scatter", "all-to-all", "broadcast",
                                             "send/recv",  "unclassified"};
  return k;
}

double TraceClassRow::error() const {
  return measured > Time::zero() ? (predicted.seconds() - measured.seconds()) / measured.seconds() : 0.0;
}

Result<TraceTimeline> measure_trace(const TorchTrace& t, const std::string& label, int64_t step) {
  if (t.kernels.empty())
    return Status::error(Error{label, "/traceEvents", "",
                               "no GPU kernels (events with \"cat\": \"kernel\"); record the trace with "
                               "activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]"});
  TraceTimeline tl;
  TraceKernelStats& st = tl.stats;
  st.kernels = static_cast<int>(t.kernels.size());

  // The device: the one with the most kernels (lowest id on ties).
  std::map<int64_t, int> per_device;
  for (const TraceKernel& k : t.kernels) ++per_device[k.device];
  int best = -1;
  for (const auto& [d, n] : per_device)
    if (n > best) {
      best = n;
      tl.device = d;
    }
  if (auto it = t.device_names.find(tl.device); it != t.device_names.end()) tl.device_name = it->second;

  // The step.
  const TraceStep* chosen = nullptr;
  auto in_cpu_span = [](const TraceStep& s, const TraceKernel& k) {
    const double launch = k.launch_ts >= 0 ? k.launch_ts : k.ts;
    return launch >= s.cpu_ts && launch <= s.cpu_end;
  };
  auto in_gpu_span = [](const TraceStep& s, const TraceKernel& k) {
    return k.ts < s.gpu_end && k.ts + k.dur > s.gpu_ts;
  };
  auto member = [&](const TraceStep& s, const TraceKernel& k) {
    if (k.device != tl.device) return false;
    // A kernel whose launch the trace records belongs to the step whose CPU span launched it;
    // the GPU annotation decides only for kernels without a launch record.
    if (k.launch_ts >= 0 || s.gpu_end < 0) return in_cpu_span(s, k);
    return in_gpu_span(s, k);
  };
  auto has_kernels = [&](const TraceStep& s) {
    for (const TraceKernel& k : t.kernels)
      if (member(s, k)) return true;
    return false;
  };
  if (step >= 0) {
    std::string have;
    for (const TraceStep& s : t.steps) {
      have += (have.empty() ? "" : ", ") + std::to_string(s.number);
      if (s.number == step) chosen = &s;
    }
    if (!chosen)
      return Status::error(Error{label, "--step", std::to_string(step),
                                 t.steps.empty() ? "the trace has no ProfilerStep#N annotations (profile with "
                                                   "prof.step() each iteration); omit --step to take every kernel"
                                                 : "no ProfilerStep#" + std::to_string(step) +
                                                       " with a duration in the trace; it has steps " + have});
    if (!has_kernels(*chosen))
      return Status::error(Error{label, "--step", std::to_string(step),
                                 "ProfilerStep#" + std::to_string(step) + " launched no GPU kernels on device " +
                                     std::to_string(tl.device)});
  } else {
    for (auto it = t.steps.rbegin(); it != t.steps.rend() && !chosen; ++it)
      if (has_kernels(*it)) chosen = &*it;
    if (!t.steps.empty() && !chosen)
      return Status::error(Error{label, "/traceEvents", "",
                                 "no ProfilerStep#N annotation contains GPU kernels of device " +
                                     std::to_string(tl.device)});
  }

  // Kernels of the step and the window [w0, w1] in trace microseconds.
  std::vector<const TraceKernel*> ks;
  for (const TraceKernel& k : t.kernels) {
    if (k.device != tl.device) {
      ++st.other_device;
      continue;
    }
    if (chosen && !member(*chosen, k)) {
      ++st.outside_step;
      continue;
    }
    ks.push_back(&k);
  }
  double w0 = 0, w1 = 0;
  // The GPU annotation is the window when it holds every kernel of the step. PyTorch 2.11 wrote
  // one that ends long before the step's last kernel when the CPU ran ahead of the GPU (seen on
  // an H100: a 37 ms annotation over a 109 ms step); then the kernels' own extent is the window.
  bool gpu_window = chosen && chosen->gpu_end >= 0 && !ks.empty();
  for (const TraceKernel* k : ks)
    if (gpu_window && (k->ts < chosen->gpu_ts - 1e-3 || k->ts + k->dur > chosen->gpu_end + 1e-3)) gpu_window = false;
  if (chosen && chosen->gpu_end >= 0 && ks.empty()) gpu_window = true;
  if (gpu_window) {
    w0 = chosen->gpu_ts;
    w1 = chosen->gpu_end;
    tl.window = "ProfilerStep#" + std::to_string(chosen->number) + " on the GPU (gpu_user_annotation)";
  } else {
    w0 = ks.front()->ts;
    w1 = ks.front()->ts + ks.front()->dur;
    for (const TraceKernel* k : ks) {
      w0 = std::min(w0, k->ts);
      w1 = std::max(w1, k->ts + k->dur);
    }
    tl.window = chosen ? "kernels launched in ProfilerStep#" + std::to_string(chosen->number) +
                             ", first start to last end" +
                             (chosen->gpu_end >= 0 ? " (its GPU annotation does not hold them all)" : "")
                       : "every kernel (no ProfilerStep annotations), first start to last end";
  }
  tl.step_number = chosen ? chosen->number : -1;
  tl.step = us_to_time(w1 - w0);

  std::map<std::string, MeasuredClass> rows;
  std::vector<Interval> compute, comm;
  for (const TraceKernel* k : ks) {
    ++st.in_step;
    const Time s = max(Time::zero(), us_to_time(k->ts - w0));
    const Time e = min(tl.step, us_to_time(k->ts + k->dur - w0));
    const Time d = e > s ? e - s : Time::zero();
    const KernelClass c = classify_kernel(t, *k);
    std::string what;
    if (c == KernelClass::kComm) {
      comm.emplace_back(s, e);
      std::string coll;
      for (int i : t.chain(k->op)) {   // record_param_comms names the collective
        if (t.ops[i].args && t.ops[i].args->contains("Collective name")) {
          coll = trace_json_str(*t.ops[i].args, "Collective name");
          break;
        }
      }
      if (coll.empty() && k->args) coll = trace_json_str(*k->args, "Collective name");
      const std::string kind = nccl_kind(coll, k->name);
      if (kind.empty()) {
        ++st.comm_unknown_kind;
        what = "unclassified";
      } else {
        ++st.mapped;
        what = row_of_kind(kind);
      }
    } else {
      compute.emplace_back(s, e);
      if (c == KernelClass::kUnknown) {
        ++st.unclassified;
        what = "unclassified";
      } else {
        ++st.mapped;
        what = to_string(c);
      }
    }
    tl.spans.push_back(ClassSpan{s, max(s, e), row_index(what), c == KernelClass::kComm});
    MeasuredClass& r = rows[what];
    r.what = what;
    r.time += d;
    ++r.kernels;
  }
  for (const std::string& w : row_order())
    if (auto it = rows.find(w); it != rows.end()) tl.classes.push_back(it->second);

  std::vector<Interval> all = compute;
  all.insert(all.end(), comm.begin(), comm.end());
  tl.busy_compute = union_length(compute);
  tl.busy_comm = union_length(comm);
  const Time busy = union_length(all);
  tl.exposed_comm = busy - tl.busy_compute;
  tl.idle = tl.step - busy;
  return tl;
}

Result<TraceComparison> compare_trace(const Scenario& scenario, const std::string& trace_path,
                                      const CompareTraceOptions& opts) {
  std::ifstream in(trace_path, std::ios::binary);
  if (!in)
    return Status::error(Error{trace_path, "", "", "cannot open the trace file; give the Chrome-trace JSON that "
                                                   "torch.profiler's export_chrome_trace wrote for one rank"});
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto parsed = parse_torch_trace(text, trace_path);
  if (!parsed.ok()) return parsed.status();
  const TorchTrace& trace = *parsed.value();
  auto measured = measure_trace(trace, trace_path, opts.step);
  if (!measured.ok()) return measured.status();

  TraceComparison c;
  c.scenario = scenario.name;
  c.scenario_file = scenario.file;
  {
    std::ifstream sf(scenario.file, std::ios::binary);
    std::string stext;
    if (sf) stext.assign((std::istreambuf_iterator<char>(sf)), std::istreambuf_iterator<char>());
    c.scenario_hash = hash_hex(stext.empty() ? scenario.file + "\n" + scenario.name : stext);
  }
  c.trace_file = trace_path;
  c.trace_hash = hash_hex(text);
  c.trace_rank = trace.rank;
  c.rank = opts.rank;
  c.measured_side = std::move(measured).value();
  const TraceTimeline& m = c.measured_side;

  // Simulate the full plan, tracing the chosen rank.
  Scenario s = scenario;
  if (!opts.calibration.empty()) s.options.calibration = opts.calibration;
  {
    // The rank check needs the plan's size before the (longer) replay.
    const int64_t ranks = s.cluster.gpus;
    if (static_cast<int64_t>(opts.rank) >= ranks)
      return Status::error(Error{s.file, "--rank", std::to_string(opts.rank),
                                 "out of range: the scenario has " + std::to_string(ranks) + " ranks (0.." +
                                     std::to_string(ranks - 1) + ")"});
  }
  PredictOptions po;
  po.trace_ranks = {opts.rank};
  po.references = false;
  auto pr = predict(s, po);
  if (!pr.ok()) return pr.status();
  const Prediction& p = pr.value();
  const Plan& plan = *p.plan;
  if (static_cast<int>(opts.rank) >= plan.num_ranks)
    return Status::error(Error{s.file, "--rank", std::to_string(opts.rank),
                               "out of range: the plan has " + std::to_string(plan.num_ranks) + " ranks (0.." +
                                   std::to_string(plan.num_ranks - 1) + ")"});
  c.ranks = plan.num_ranks;
  c.plan_hash = plan_fingerprint(plan);
  c.costs = s.options.calibration.empty() ? "embedded default" : s.options.calibration;
  c.calibration_notes = p.calibration_notes;

  // The simulated rank's timeline.
  const Program& prog = plan.programs[plan.program_of_rank[opts.rank]];
  std::vector<Interval> span(prog.tasks.size(), {Time::zero(), Time::zero()});
  std::vector<bool> seen(prog.tasks.size(), false);
  for (const TraceRecord& tr : p.trace)
    if (tr.rank == opts.rank && tr.task < span.size()) {
      span[tr.task] = {tr.start, tr.end};
      seen[tr.task] = true;
    }
  // A receive runs from when its stream reaches it: the previous task on its stream and its
  // dependencies done.
  for (uint8_t st = 0; st < kMaxStreams; ++st) {
    Time prev_end;
    for (uint32_t ti : prog.stream_tasks[st]) {
      const Task& t = prog.tasks[ti];
      if (t.kind == TaskKind::kRecv) {
        Time posted = prev_end;
        for (uint32_t d : t.dep)
          if (d != kNoDep) posted = max(posted, span[d].second);
        span[ti].first = min(posted, span[ti].second);
      }
      prev_end = max(prev_end, span[ti].second);
    }
  }
  struct Acc {
    Time t;
    int tasks = 0;
    std::set<CostSource> src;
  };
  std::map<std::string, Acc> pred;
  std::vector<Interval> compute, comm;
  for (uint32_t i = 0; i < prog.tasks.size(); ++i) {
    const Task& t = prog.tasks[i];
    const OpDesc& op = plan.ops[t.op];
    if (op.cls == OpClass::kOffload) continue;   // copies, not kernels
    SIM_CHECK(seen[i], "rank %u task %u (%s) has no trace record", opts.rank, i, op.name.c_str());
    const auto [a, b] = span[i];
    std::string what;
    if (t.kind == TaskKind::kCompute) {
      compute.emplace_back(a, b);
      what = to_string(op.cls);
    } else {
      comm.emplace_back(a, b);
      what = t.kind == TaskKind::kCollective ? row_of_kind(to_string(op.coll)) : "send/recv";
    }
    c.predicted_spans.push_back(ClassSpan{a, b, row_index(what), t.kind != TaskKind::kCompute});
    Acc& acc = pred[what];
    acc.t += b - a;
    acc.tasks += 1;
    if (t.kind != TaskKind::kRecv) acc.src.insert(p.op_sources[t.op]);   // a receive is priced on the sender
  }
  c.predicted = p.step_time;
  c.measured = m.step;
  c.step_error = m.step > Time::zero() ? (c.predicted.seconds() - c.measured.seconds()) / c.measured.seconds() : 0;
  std::vector<Interval> all = compute;
  all.insert(all.end(), comm.begin(), comm.end());
  const Time busy_compute = union_length(compute), busy = union_length(all);
  c.predicted_exposed = busy - busy_compute;
  c.predicted_idle = p.step_time > busy ? p.step_time - busy : Time::zero();
  if (p.step_time > Time::zero()) {
    c.predicted_shares.exposed_comm = c.predicted_exposed.seconds() / p.step_time.seconds();
    c.predicted_shares.bubble = c.predicted_idle.seconds() / p.step_time.seconds();
  }
  if (m.step > Time::zero()) {
    c.measured_shares.exposed_comm = m.exposed_comm.seconds() / m.step.seconds();
    c.measured_shares.bubble = m.idle.seconds() / m.step.seconds();
  }

  // Class rows: the union of both sides, in row order.
  std::map<std::string, const MeasuredClass*> meas;
  for (const MeasuredClass& mc : m.classes) meas[mc.what] = &mc;
  for (const std::string& w : row_order()) {
    auto pi = pred.find(w);
    auto mi = meas.find(w);
    if (pi == pred.end() && mi == meas.end()) continue;
    TraceClassRow row;
    row.what = w;
    if (pi != pred.end()) {
      row.predicted_present = true;
      row.predicted = pi->second.t;
      row.tasks = pi->second.tasks;
      row.source = join_sources(pi->second.src, "-");
    } else {
      row.source = w == "unclassified" ? "-" : "- (no such task on this rank)";
    }
    if (mi != meas.end()) {
      row.measured_present = true;
      row.measured = mi->second->time;
      row.kernels = mi->second->kernels;
    }
    c.classes.push_back(row);
  }

  if (trace.rank >= 0 && trace.rank != static_cast<int64_t>(opts.rank))
    c.notes.push_back("the trace was recorded on rank " + std::to_string(trace.rank) + " (distributedInfo.rank); it is "
                      "compared with simulated rank " + std::to_string(opts.rank) + " (--rank)");
  if (trace.world_size > 0 && trace.world_size != plan.num_ranks)
    c.notes.push_back("the trace's world size is " + std::to_string(trace.world_size) + " (distributedInfo), the "
                      "scenario's plan has " + std::to_string(plan.num_ranks) + " ranks: not the same configuration?");
  if (m.stats.other_device > 0)
    c.notes.push_back(std::to_string(m.stats.other_device) + " kernels ran on other devices than device " +
                      std::to_string(m.device) + " and are left out");
  return c;
}

}  // namespace trainsim
