#include "scenarios/verify.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <memory>
#include <thread>

#include "calibrate/calibrated_cost_model.h"
#include "calibrate/db.h"
#include "calibrate/cost_model.h"
#include "calibrate/host_executor.h"
#include "calibrate/host_mpi.h"
#include "models/compiler.h"
#include "models/restrict.h"
#include "scenarios/predict.h"
#include "sim/plan_export.h"
#include "sim/replay.h"
#include "sim/text.h"

#include <nlohmann/json.hpp>

namespace trainsim {

namespace {

uint64_t fnv(uint64_t h, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= 0x100000001B3ull;
  }
  return h;
}

std::string hex16(uint64_t h) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(h));
  return b;
}

// Of everything the executor and the simulator read: ops, tasks, groups, peers.
std::string plan_hash(const Plan& p) {
  uint64_t h = 0xcbf29ce484222325ull;
  h = fnv(h, static_cast<uint64_t>(p.num_ranks));
  for (const OpDesc& op : p.ops) h = fnv(h, op.hash());
  for (const Program& prog : p.programs)
    for (const Task& t : prog.tasks) {
      h = fnv(h, t.op);
      h = fnv(h, (uint64_t{t.dep[0]} << 32) | t.dep[1]);
      h = fnv(h, (uint64_t{static_cast<uint8_t>(t.kind)} << 32) | (uint64_t{t.stream} << 24) |
                     (uint64_t{static_cast<uint8_t>(t.category)} << 16) | (uint64_t{t.channel} << 8) | t.group);
      h = fnv(h, static_cast<uint64_t>(t.mem_alloc));
      h = fnv(h, static_cast<uint64_t>(t.mem_free));
    }
  for (uint32_t pr : p.program_of_rank) h = fnv(h, pr);
  for (const GroupTable& g : p.groups)
    for (uint32_t r : g.instance_of_rank) h = fnv(h, r);
  for (const PeerTable& pt : p.peers)
    for (int32_t r : pt.peer_of_rank) h = fnv(h, static_cast<uint32_t>(r));
  return hex16(h);
}

std::string class_of(const Plan& p, const OpDesc& op) {
  if (op.cls == OpClass::kCollective)
    return std::string(to_string(op.coll)) + "(" + (op.group < p.groups.size() ? p.groups[op.group].name : "?") + ")";
  if (op.cls == OpClass::kP2p) return "send/recv";
  return to_string(op.cls);
}

int class_rank(const OpDesc& op) {   // row order: compute classes, collectives, p2p
  if (op.cls == OpClass::kCollective) return 100 + static_cast<int>(op.coll) * 16 + op.group;
  if (op.cls == OpClass::kP2p) return 1000;
  return static_cast<int>(op.cls);
}

// Per-task spans of every rank: [rank][task] = (start, end).
using Spans = std::vector<std::vector<std::pair<Time, Time>>>;

TimelineShares shares(const Plan& p, const Spans& spans, Time step) {
  TimelineShares out;
  if (step <= Time::zero() || p.num_ranks == 0) return out;
  double exp_sum = 0, bub_sum = 0;
  for (int r = 0; r < p.num_ranks; ++r) {
    const Program& prog = p.programs[p.program_of_rank[r]];
    Time cursor, exposed, bubble;
    for (uint32_t ti : prog.stream_tasks[kStreamCompute]) {
      const Task& t = prog.tasks[ti];
      const auto [start, end] = spans[r][ti];
      if (start > cursor) {
        const Time gap = start - cursor;
        Time comm_until = cursor;
        for (uint32_t d : t.dep)
          if (d != kNoDep && is_comm(prog.tasks[d].category)) comm_until = max(comm_until, spans[r][d].second);
        const Time e = min(gap, comm_until - cursor);
        exposed += e;
        bubble += gap - e;
      }
      if (is_comm(t.category)) exposed += end - start;
      cursor = max(cursor, end);
    }
    if (step > cursor) bubble += step - cursor;
    exp_sum += exposed.seconds() / step.seconds();
    bub_sum += bubble.seconds() / step.seconds();
  }
  out.exposed_comm = exp_sum / p.num_ranks;
  out.bubble = bub_sum / p.num_ranks;
  return out;
}

// Collective spans as the time after the last member arrived: a member that arrives early
// waits for its peers, and that wait is the other ranks' lateness, not the collective's cost
// (the calibration times a collective from a common start). Applied to both sides' spans for
// the per-class and per-op rows; the shares keep each rank's own timeline. Members are matched
// by task index, which holds when they run the same program (a TP, CP or DP group of one
// stage); other collectives keep their own start.
Spans collective_spans(const Plan& p, Spans spans) {
  for (int r = 0; r < p.num_ranks; ++r) {
    const uint32_t prog = p.program_of_rank[r];
    const Program& pr = p.programs[prog];
    for (uint32_t i = 0; i < pr.tasks.size(); ++i) {
      const Task& t = pr.tasks[i];
      if (t.kind != TaskKind::kCollective || t.group >= p.groups.size()) continue;
      const GroupTable& g = p.groups[t.group];
      const uint32_t inst = g.instance_of_rank[r];
      if (inst == kNoDep) continue;
      Time last = spans[r][i].first;
      bool same = true;
      for (uint32_t k = g.member_offsets[inst]; k < g.member_offsets[inst + 1] && same; ++k) {
        const uint32_t m = g.members[k];
        same = p.program_of_rank[m] == prog && spans[m].size() > i;
        if (same) last = max(last, spans[m][i].first);
      }
      if (same) spans[r][i].first = min(last, spans[r][i].second);
    }
  }
  return spans;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string temp_path(const char* stem) {
  std::string tmpl = std::string("/tmp/") + stem + "_XXXXXX";
  const int fd = mkstemp(tmpl.data());
  if (fd < 0) return "";
  close(fd);
  return tmpl;
}

// --executor cuda: exports every rank of the bound restricted plan, runs trainsim_executor on
// them (one GPU and one thread per rank, GPUs 0..n-1, NCCL between them; one warm-up step, then
// opts.steps timed steps) and reads its output (calibrate/FORMAT.md section 4: per-task
// start/end of the median step, relative to the step's start on that rank's GPU).
Result<HostRun> execute_cuda(const Plan& bound, const Scenario& s, Time predicted, const VerifyOptions& opts) {
  PlanExportOptions eo;
  std::string rank_list;
  for (uint32_t r = 0; r < static_cast<uint32_t>(bound.num_ranks); ++r) {
    eo.ranks.push_back(r);
    rank_list += (r ? "," : "") + std::to_string(r);
  }
  eo.scenario = s.file;
  eo.costs = opts.calibration.empty() ? "embedded default" : opts.calibration;
  eo.predicted_step_us = predicted.seconds() * 1e6;
  auto text = export_plan_json(bound, eo);
  if (!text.ok()) return text.status();
  const std::string plan_file = temp_path("trainsim_verify_plan"), out_file = temp_path("trainsim_verify_exec"),
                    log_file = temp_path("trainsim_verify_log");
  if (plan_file.empty() || out_file.empty() || log_file.empty())
    return Status::error("verify: cannot create temporary files in /tmp");
  auto cleanup = [&] {
    for (const auto& f : {plan_file, out_file, log_file}) std::filesystem::remove(f);
  };
  {
    std::ofstream o(plan_file, std::ios::binary);
    o << text.value();
    if (!o) {
      cleanup();
      return Status::error(Error{plan_file, "", "", "cannot write the exported plan"});
    }
  }
  const std::string cmd = shell_quote(opts.executor_bin) + " --plan " + shell_quote(plan_file) + " --out " +
                          shell_quote(out_file) + " --ranks " + rank_list + " --warmup 1 --steps " + std::to_string(opts.steps) + " 2> " +
                          shell_quote(log_file);
  const int status = std::system(cmd.c_str());
  const int rc = status == -1 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::string log;
  {
    std::ifstream in(log_file);
    log.assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  if (rc != 0) {
    cleanup();
    if (log.size() > 2000) log = "..." + log.substr(log.size() - 2000);
    return Status::error(Error{opts.executor_bin, "--executor", "cuda",
                               "trainsim_executor failed (exit code " + std::to_string(rc) + "): " + log});
  }
  nlohmann::json j;
  {
    std::ifstream in(out_file);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    if (!json_too_deep(text)) j = nlohmann::json::parse(text, nullptr, false);
    else j = nlohmann::json(nlohmann::json::value_t::discarded);
  }
  cleanup();
  if (j.is_discarded() || !j.contains("tasks") || !j.contains("step_us"))
    return Status::error(Error{opts.executor_bin, "", "", "trainsim_executor wrote no readable output (tasks, step_us)"});
  HostRun r;
  r.tasks.resize(bound.num_ranks);
  for (uint32_t k = 0; k < static_cast<uint32_t>(bound.num_ranks); ++k)
    r.tasks[k].resize(bound.programs[bound.program_of_rank[k]].tasks.size());
  for (const auto& t : j["tasks"]) {
    const size_t i = t.value("index", size_t{0});
    const int rank = t.value("rank", -1);
    if (rank < 0 || rank >= static_cast<int>(bound.num_ranks) || i >= r.tasks[rank].size()) continue;
    r.tasks[rank][i].start = Time::from_seconds(t.value("start_us", 0.0) * 1e-6);
    r.tasks[rank][i].end = Time::from_seconds(t.value("end_us", 0.0) * 1e-6);
  }
  r.step_time = Time::from_seconds(j.value("step_us", 0.0) * 1e-6);
  if (j.contains("step_times_us"))
    for (const auto& x : j["step_times_us"]) r.step_times.push_back(Time::from_seconds(x.get<double>() * 1e-6));
  const std::string dev = j.contains("device") && j["device"].is_object() ? j["device"].value("name", "") : "";
  r.backend = bound.num_ranks == 1 ? std::string("trainsim_executor, one GPU")
                                    : "trainsim_executor, " + std::to_string(bound.num_ranks) + " GPUs (one thread each, NCCL)";
  r.device = dev.empty() ? std::string("unknown GPU") : dev;
  r.threads = static_cast<int>(bound.num_ranks);
  return r;
}

std::string machine_description() {
  return host_name() + ", " + std::to_string(std::thread::hardware_concurrency()) + " hardware threads";
}

}  // namespace

double VerifyClassRow::error() const {
  return measured > Time::zero() ? (predicted.seconds() - measured.seconds()) / measured.seconds() : 0.0;
}

std::string hash_hex(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return hex16(h);
}

std::string plan_fingerprint(const Plan& p) { return plan_hash(p); }

Result<Verification> verify_scenario(const Scenario& s, const VerifyOptions& opts) {
  const bool cuda = opts.executor == "cuda";
  if (cuda && opts.executor_bin.empty())
    return Status::error(Error{"", "--executor", "cuda",
                               "no trainsim_executor program found (it is built from calibrate/cuda where a CUDA "
                               "compiler is found, as build/calibrate/cuda/trainsim_executor); give it with "
                               "--executor-bin PATH, or use --executor host"});
  if (!cuda && opts.executor != "host")
    return Status::error(Error{"", "--executor", opts.executor, "accepted: host, cuda"});
  if (opts.steps < 1) return Status::error(Error{"", "--steps", std::to_string(opts.steps), "must be >= 1"});
  if (opts.backend != "threads" && opts.backend != "mpi")
    return Status::error(Error{"", "--backend", opts.backend, "accepted: threads, mpi"});
  const bool mpi = opts.backend == "mpi";
  if (mpi && !host_mpi_built())
    return Status::error(Error{"", "--backend", "mpi",
                               "this trainsim was built without MPI (CMake found no MPI); install libopenmpi-dev "
                               "openmpi-bin and rebuild, or use --backend threads"});
  if (mpi && !host_mpi_initialized())
    return Status::error(Error{"", "--backend", "mpi", "MPI is not initialized (run under mpirun / mpiexec)"});

  Verification v;
  v.scenario = s.name;
  v.scenario_file = s.file;
  {
    std::ifstream in(s.file, std::ios::binary);
    std::string text;
    if (in) text.assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    v.scenario_hash = hash_hex(text.empty() ? s.file + "\n" + s.name : text);
  }
  auto compiled = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node);
  if (!compiled.ok()) return compiled.status();
  const Plan& full = compiled.value().plan;
  auto restricted = restrict_plan(full, s.parallel, s.cluster.gpus_per_node, opts.ranks);
  if (!restricted.ok()) return restricted.status();
  RestrictedPlan& rp = restricted.value();
  v.kept = rp.kept;
  v.dropped = rp.dropped;
  v.ranks = rp.plan.num_ranks;
  v.full_ranks = full.num_ranks;
  v.plan_hash = plan_hash(rp.plan);
  if (mpi && host_mpi_size() != rp.plan.num_ranks)
    return Status::error(Error{"", "mpirun -np", std::to_string(host_mpi_size()),
                               "the restricted plan has " + std::to_string(rp.plan.num_ranks) +
                                   " ranks and the MPI back end runs one process per rank: launch with -np " +
                                   std::to_string(rp.plan.num_ranks) + " or give --ranks " +
                                   std::to_string(host_mpi_size())});
  v.executor = opts.executor;
  v.device = cuda ? s.cluster.gpu.name : host_device_name();
  v.machine = machine_description();
  HostExecOptions ho;
  ho.steps = opts.steps;
  ho.max_bytes = opts.max_bytes;
  ho.backend = opts.backend;
  // The on-the-fly host calibration times collectives with the executor's back end (mpi: with
  // every process of the job, calibrate/host_calibrate.h).
  HostCalibrateOptions calib = opts.calib;
  calib.backend = opts.backend;
  if (mpi && host_mpi_rank() != 0) {
    // A helper process: take part in timing the calibration's collectives (sleeping while rank 0
    // times the kernels), sleep while rank 0 simulates (so it takes no core from it), run this
    // process's rank with the others, hand the records to rank 0.
    if (!cuda && opts.calibration.empty()) {
      auto lines = measure_host_plan(rp.plan, s.cluster.gpus_per_node, calib);
      if (!lines.ok()) return lines.status();
    }
    host_mpi_wait_all();
    auto run = execute_host(rp.plan, ho);
    if (!run.ok()) return run.status();
    v.backend = run->backend;
    if (opts.run_out) *opts.run_out = std::move(run).value();
    return v;
  }

  // The calibration: a given database, or the host measured now into a temporary one.
  std::string db_path = opts.calibration;
  std::string temp_db;
  std::unique_ptr<CostModel> gpu_model;
  if (cuda) {
    if (db_path.empty()) {
      auto def = make_default_cost_model(s.cluster, {}, s.training.attention_kernel);
      if (!def.ok()) return def.status();
      gpu_model = std::move(def).value();
      v.calibration = "embedded default";
    } else {
      auto cal = CalibratedCostModel::make(db_path, s.cluster, s.options.prefer_source, s.training.attention_kernel);
      if (!cal.ok()) return cal.status();
      gpu_model = std::move(cal).value();
      v.calibration = db_path;
    }
  } else if (db_path.empty()) {
    auto lines = measure_host_plan(rp.plan, s.cluster.gpus_per_node, calib);
    if (!lines.ok()) return lines.status();
    char tmpl[] = "/tmp/trainsim_verify_cal_XXXXXX";
    const int fd = mkstemp(tmpl);
    if (fd < 0) return Status::error("verify: cannot create a temporary calibration database in /tmp");
    close(fd);
    std::filesystem::remove(tmpl);
    temp_db = tmpl;
    auto db = CalibrationDb::open(temp_db, /*create=*/true);
    if (!db.ok()) return db.status();
    auto st = db.value()->import_lines(lines.value(), "host measurement");
    if (!st.ok()) return st.status();
    db_path = temp_db;
    v.calibration = "measured on the fly (" + std::to_string(lines.value().size()) + " points)";
    v.calibration_on_the_fly = true;
    v.calibration_points = static_cast<int>(lines.value().size());
  } else {
    if (!std::filesystem::exists(db_path))
      return Status::error(Error{db_path, "--calibration", db_path,
                                 "no such calibration database; create one with `trainsim calibrate --host SCENARIO "
                                 "--out host.jsonl` and `trainsim calibrate import host.jsonl --db FILE`, or omit "
                                 "--calibration to measure on the fly"});
    v.calibration = db_path;
  }
  std::unique_ptr<CostModel> host_model;
  std::vector<std::string> notes;
  if (!cuda) {
    // Of a database holding a host's collectives timed both ways, the way this run moves data.
    auto model = CalibratedCostModel::make_for_device(db_path, s.cluster, v.device,
                                                      mpi ? "MPI processes" : "shared-memory threads");
    if (!temp_db.empty()) std::filesystem::remove(temp_db);   // the model holds its points in memory
    if (!model.ok()) return model.status();
    host_model = std::move(model).value();
  }
  const CostModel& cost_model = cuda ? *gpu_model : *host_model;
  const auto* calibrated = dynamic_cast<const CalibratedCostModel*>(&cost_model);

  // Simulate the restricted plan.
  Plan sim_plan = rp.plan;
  std::vector<CostSource> sources;
  Status st = bind_costs(sim_plan, cost_model, s.cluster.gpus_per_node, &sources);
  if (!st.ok()) return st;
  if (calibrated) v.calibration_notes = calibrated->notes();
  v.collectives = calibrated ? describe_collective_mechanisms(calibrated->collective_sources()) : "embedded default";
  if (!cuda && calibrated) {
    const char* want = mpi ? "MPI processes" : "shared-memory threads";
    const auto srcs = calibrated->collective_sources();
    const auto other = std::count_if(srcs.begin(), srcs.end(), [&](const std::string& src) {
      return collective_mechanism(src).rfind(want, 0) != 0;
    });
    if (other > 0)
      v.calibration_notes.push_back(
          std::to_string(other) + " of " + std::to_string(srcs.size()) + " collective points were not timed with " +
          want + ", which this run's collectives use" +
          (mpi ? " (calibrate with `mpirun -np " + std::to_string(rp.plan.num_ranks) +
                     " trainsim calibrate --host SCENARIO --backend mpi`)"
               : std::string(" (calibrate with `trainsim calibrate --host SCENARIO --backend threads`)")));
  }
  ReplayOptions ro;
  for (int r = 0; r < sim_plan.num_ranks; ++r) ro.trace_ranks.push_back(static_cast<uint32_t>(r));
  if (cuda) {   // the GPU shares its SMs with NCCL and its PCIe link between copy directions
    int ctas = 0;
    auto shared = set_gpu_sharing(s, &ro, &ctas);
    if (!shared.ok()) return shared.status();
  }
  auto sim = replay(sim_plan, ro);
  if (!sim.ok()) return sim.status();
  Spans pred(sim_plan.num_ranks);
  for (int r = 0; r < sim_plan.num_ranks; ++r)
    pred[r].assign(sim_plan.programs[sim_plan.program_of_rank[r]].tasks.size(), {Time::zero(), Time::zero()});
  for (const TraceRecord& tr : sim->trace) pred[tr.rank][tr.task] = {tr.start, tr.end};
  v.predicted = sim->step_time;

  // Execute it (mpi: release the helper processes waiting above; every process runs its rank).
  if (mpi) host_mpi_wait_all();
  auto run = cuda ? execute_cuda(sim_plan, s, v.predicted, opts) : execute_host(rp.plan, ho);
  if (!run.ok()) return run.status();
  if (cuda) v.device = run->device;
  v.backend = mpi ? "mpi, " + std::to_string(rp.plan.num_ranks) + " processes" : run->backend;
  v.measured = run->step_time;
  v.measured_steps = run->step_times;
  Spans meas(rp.plan.num_ranks);
  for (int r = 0; r < rp.plan.num_ranks; ++r)
    for (const HostTaskRecord& t : run->tasks[r]) meas[r].emplace_back(t.start, t.end);
  if (opts.run_out) *opts.run_out = run.value();
  v.step_error = v.measured > Time::zero() ? (v.predicted.seconds() - v.measured.seconds()) / v.measured.seconds() : 0;

  // Per class and per op.
  struct Acc {
    Time pred, meas;
    int tasks = 0;
    std::set<CostSource> src;
  };
  std::map<std::pair<int, std::string>, Acc> by_class;
  std::map<uint32_t, Acc> by_op;
  const Spans pred_c = collective_spans(rp.plan, pred), meas_c = collective_spans(rp.plan, meas);
  for (int r = 0; r < rp.plan.num_ranks; ++r) {
    const Program& prog = rp.plan.programs[rp.plan.program_of_rank[r]];
    for (uint32_t i = 0; i < prog.tasks.size(); ++i) {
      const OpDesc& op = rp.plan.ops[prog.tasks[i].op];
      const Time pd = pred_c[r][i].second - pred_c[r][i].first, md = meas_c[r][i].second - meas_c[r][i].first;
      Acc& c = by_class[{class_rank(op), class_of(rp.plan, op)}];
      Acc& o = by_op[prog.tasks[i].op];
      for (Acc* a : {&c, &o}) {
        a->pred += pd;
        a->meas += md;
        a->tasks += 1;
        a->src.insert(sources[prog.tasks[i].op]);
      }
    }
  }
  const int64_t n = std::max(1, rp.plan.num_ranks);
  for (const auto& [key, a] : by_class) {
    VerifyClassRow row;
    row.what = key.second;
    row.predicted = Time::ps(a.pred.count_ps() / n);
    row.measured = Time::ps(a.meas.count_ps() / n);
    row.tasks = a.tasks;
    row.source = join_sources(a.src, "");
    v.classes.push_back(row);
  }
  std::vector<VerifyOpRow> ops;
  for (const auto& [oi, a] : by_op) {
    VerifyOpRow row;
    const OpDesc& op = rp.plan.ops[oi];
    row.op = op.name;
    row.what = class_of(rp.plan, op);
    row.predicted = a.pred;
    row.measured = a.meas;
    row.tasks = a.tasks;
    row.source = join_sources(a.src, "");
    ops.push_back(row);
  }
  std::stable_sort(ops.begin(), ops.end(), [](const VerifyOpRow& a, const VerifyOpRow& b) {
    auto err = [](const VerifyOpRow& x) { return std::llabs(x.measured.count_ps() - x.predicted.count_ps()); };
    return err(a) > err(b);
  });
  if (ops.size() > 10) ops.resize(10);
  v.top_ops = std::move(ops);
  v.predicted_shares = shares(rp.plan, pred, v.predicted);
  v.measured_shares = shares(rp.plan, meas, v.measured);
  return v;
}

}  // namespace trainsim
