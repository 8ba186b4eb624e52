// trainsim: the command-line front end. Only this file turns a Status into an exit code:
//   0 success, 1 the run failed (I/O, simulation), 2 bad input (scenario, flags), 3 a check
//   failed (verify / compare-trace beyond --tolerance, compare beyond --fail-above).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <thread>
#include <unistd.h>
#include <fstream>
#include <iostream>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>

#include "calibrate/calibrated_cost_model.h"
#include "calibrate/cost_model.h"
#include "calibrate/compare.h"
#include "calibrate/host_calibrate.h"
#include "calibrate/host_executor.h"
#include "calibrate/host_mpi.h"
#include "calibrate/db.h"
#include "calibrate/import_nccl_tests.h"
#include "calibrate/import_torch_trace.h"
#include "calibrate/jobs.h"
#include "models/compiler.h"
#include "models/restrict.h"
#include "reports/compare_report.h"
#include "reports/plan_report.h"
#include "reports/compare_trace_report.h"
#include "reports/io.h"
#include "topologies/describe.h"
#include "topologies/topology_file.h"
#include "reports/html_report.h"
#include "reports/json_report.h"
#include "reports/results_store.h"
#include "reports/verify_report.h"
#include "reports/summary.h"
#include "reports/trace.h"
#include "reports/text_table.h"
#include "reports/sweep_report.h"
#include "reports/accuracy_context.h"
#include "reports/validate_report.h"
#include "reports/validate_run.h"
#include "scenarios/compare_trace.h"
#include "scenarios/loader.h"
#include "scenarios/sweep.h"
#include "scenarios/predict.h"
#include "scenarios/verify.h"

#ifndef TRAINSIM_VERSION
#define TRAINSIM_VERSION "unknown"
#endif
#include "scenarios/published_run.h"
#include "sim/plan_export.h"
#include "sim/text.h"

namespace {

using trainsim::Status;

int fail(const Status& st, int code) {
  if (trainsim::host_mpi_rank() != 0) {
    // An MPI helper process: give rank 0 a moment to report (and end the job) first, so that an
    // error every process meets is printed once.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::fprintf(stderr, "(MPI rank %d) ", trainsim::host_mpi_rank());
  }
  std::fputs(st.to_string().c_str(), stderr);
  return code;
}

// `text` to the report file `path` ("wrote PATH"); 0, or 1 with the error printed.
int write_report(const std::string& path, const std::string& text) {
  Status st = trainsim::write_text_file(path, text);
  if (!st.ok()) return fail(st, 1);
  if (path != "-") std::printf("wrote %s\n", path.c_str());   // "-": the report is the output
  return 0;
}

// A report's text to stdout and, when json_out is set, its JSON to that file; the exit code.
template <typename Json>
int print_report(const std::string& text, const std::string& json_out, const Json& j) {
  std::fputs(text.c_str(), stdout);
  return json_out.empty() ? 0 : write_report(json_out, j.dump(2) + "\n");
}

// "I/N" with 0 <= I < N (digits only).
bool parse_shard(const std::string& t, int* shard, int* shards) {
  const size_t slash = t.find('/');
  if (slash == std::string::npos) return false;
  auto whole = [](const std::string& d, int* out) {
    if (d.empty() || d.size() > 6 || d.find_first_not_of("0123456789") != std::string::npos) return false;
    *out = std::stoi(d);
    return true;
  };
  int i = 0, n = 0;
  if (!whole(t.substr(0, slash), &i) || !whole(t.substr(slash + 1), &n) || n < 1 || i >= n) return false;
  *shard = i;
  *shards = n;
  return true;
}

// `trainsim sweep` once the options are read: predict (this shard's points; under MPI every
// process its shard, gathered to rank 0), or fill every point from the stores; record the
// points this run has in `store_path` (so --from-store with --store merges stores into one);
// print the table and write the JSON. Rank 0 reports.
struct SweepFiles {
  std::string json, csv, html;   // --json, --csv, --html ("" = not asked)
};
int run_sweep_command(const std::string& scenario, const std::vector<trainsim::SweepAxis>& axes,
                      trainsim::SweepOptions so, int top, const SweepFiles& files,
                      const std::string& store_path, const std::vector<std::string>& from, bool resume = false,
                      const std::string& command = "sweep") {
  // The stores first: a store that does not open fails the command before any point is predicted.
  std::unique_ptr<trainsim::ResultsStore> out_store;
  if (!store_path.empty() && trainsim::host_mpi_rank() == 0) {
    auto store = trainsim::ResultsStore::open(store_path, true);
    if (!store.ok()) return fail(store.status(), 1);
    out_store = std::move(store).value();
  }
  std::vector<std::unique_ptr<trainsim::ResultsStore>> stores;
  std::vector<const trainsim::ResultsStore*> ptrs;
  for (const auto& f : from) {
    auto st = trainsim::ResultsStore::open(f, false, "a shard's `trainsim sweep --shard I/N --store FILE` makes one");
    if (!st.ok()) return fail(st.status(), 2);
    ptrs.push_back(st.value().get());
    stores.push_back(std::move(st).value());
  }
  // One process predicting with a store: points are recorded as they come, a batch at least a
  // second apart (a transaction each), so a run cut off keeps what it finished; --resume takes
  // back the points of this version recorded before.
  const bool as_they_come = out_store && from.empty() && !trainsim::host_mpi_initialized();
  std::vector<trainsim::SweepPointRecord> pending;
  auto last_flush = std::chrono::steady_clock::now();
  std::map<int64_t, std::string> stored;   // --resume: point -> record of this version
  bool loaded = false;
  size_t resumed = 0;
  Status write_failed;   // a batch that could not be written: an I/O failure (exit 1), not bad input
  auto flush = [&]() -> Status {
    Status st = pending.empty() ? Status() : out_store->add_sweep_points(pending);
    pending.clear();
    last_flush = std::chrono::steady_clock::now();
    if (!st.ok()) write_failed = st;
    return st;
  };
  if (as_they_come) {
    so.on_point = [&, name = trainsim::sweep_scenario_name(scenario), machine = trainsim::host_name()](
                      const std::string& key, size_t i, size_t points, const trainsim::SweepPoint& p) -> Status {
      pending.push_back(trainsim::sweep_point_row(key, i, points, name, p, TRAINSIM_VERSION, machine));
      return std::chrono::steady_clock::now() - last_flush >= std::chrono::seconds(1) ? flush() : Status();
    };
  }
  if (resume) {
    so.reuse = [&](const std::string& key, size_t i, trainsim::SweepPoint* p) {
      if (!loaded) {
        loaded = true;
        auto recs = out_store->sweep_points(key);
        if (recs.ok())
          for (const auto& x : recs.value())
            if (x.version == TRAINSIM_VERSION) stored[x.point] = x.point_json;
      }
      auto it = stored.find(static_cast<int64_t>(i));
      if (it == stored.end()) return false;
      auto j = nlohmann::json::parse(it->second, nullptr, false);
      if (j.is_discarded() || !trainsim::fill_sweep_point(j, store_path, p).ok()) return false;   // predicted again
      ++resumed;
      return true;
    };
  }
  auto res = trainsim::run_sweep(scenario, axes, so);
  if (as_they_come) {   // the points of a run cut short by an error are kept too
    flush();
    if (!write_failed.ok()) return fail(write_failed, 1);
  }
  if (!res.ok()) return fail(res.status(), 2);
  trainsim::SweepResult& r = res.value();
  r.command = command;
  if (trainsim::host_mpi_initialized()) {
    // Each process's points as {"point": index, "record": ...}, gathered to rank 0.
    nlohmann::json mine = nlohmann::json::array();
    for (size_t i = 0; i < r.points.size(); ++i)
      if (r.points[i].computed) mine.push_back({{"point", i}, {"record", trainsim::sweep_point_record(r.points[i])}});
    auto all = trainsim::host_mpi_gather_text(mine.dump());
    if (!all.ok()) return fail(all.status(), 1);
    if (trainsim::host_mpi_rank() != 0) return 0;   // MPI helper process: rank 0 reports
    for (size_t from_rank = 1; from_rank < all.value().size(); ++from_rank) {
      const std::string src = "MPI rank " + std::to_string(from_rank);
      auto j = nlohmann::json::parse(all.value()[from_rank], nullptr, false);
      if (!j.is_array()) return fail(Status::error(trainsim::Error{src, "", "", "sent points that are not a JSON array"}), 1);
      for (const auto& e : j) {
        const size_t i = e.value("point", r.points.size());
        if (i >= r.points.size() || !e.contains("record"))
          return fail(Status::error(trainsim::Error{src, "/point", e.dump(), "a point of this sweep"}), 1);
        if (Status st = trainsim::fill_sweep_point(e["record"], src, &r.points[i]); !st.ok()) return fail(st, 1);
      }
    }
    r.shard = 0;
    r.shards = 1;
  }
  if (!ptrs.empty()) {
    if (Status st = trainsim::fill_sweep_from_stores(&r, ptrs, TRAINSIM_VERSION); !st.ok()) return fail(st, 2);
  }
  if (out_store && !as_they_come) {   // as they come: recorded already
    if (Status st = trainsim::store_sweep(r, *out_store, TRAINSIM_VERSION, trainsim::host_name()); !st.ok())
      return fail(st, 1);
  }
  int rc = print_report(trainsim::format_sweep(r, static_cast<size_t>(top)), files.json, trainsim::sweep_json(r));
  if (rc == 0 && !files.csv.empty()) rc = write_report(files.csv, trainsim::sweep_csv(r));
  if (rc == 0 && !files.html.empty()) rc = write_report(files.html, trainsim::sweep_html(r, TRAINSIM_VERSION));
  if (rc == 0 && !store_path.empty()) {
    size_t n = 0;
    for (const auto& p : r.points) n += p.computed;
    std::printf("recorded %zu point(s) in %s (sweep %s)\n", n - resumed, store_path.c_str(), r.key.c_str());
    if (resume) std::printf("resumed %zu point(s) recorded there before\n", resumed);
  }
  return rc;
}

// --exec-records FILE: the executor's per-task records of the reported step, per rank
// [start ns, end ns, start seq, end seq] in task order (for tests and for inspecting a run).
Status write_exec_records(const std::string& path, const trainsim::HostRun& run) {
  nlohmann::json j;
  j["backend"] = run.backend;
  j["step_ns"] = run.step_time.count_ps() / 1000;
  j["threads"] = run.threads;
  nlohmann::json ranks = nlohmann::json::array();
  for (const auto& rr : run.tasks) {
    nlohmann::json tasks = nlohmann::json::array();
    for (const auto& t : rr)
      tasks.push_back({t.start.count_ps() / 1000, t.end.count_ps() / 1000, t.start_seq, t.end_seq});
    ranks.push_back(std::move(tasks));
  }
  j["ranks"] = std::move(ranks);
  return trainsim::write_text_file(path, j.dump() + "\n");
}

// "0,8,16-19" -> ranks
bool parse_ranks(const std::string& s, std::vector<uint32_t>* out, std::string* err,
                 const char* flag = "--trace-ranks") {
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    auto dash = item.find('-');
    try {
      if (dash == std::string::npos) {
        out->push_back(static_cast<uint32_t>(std::stoul(item)));
      } else {
        uint32_t a = static_cast<uint32_t>(std::stoul(item.substr(0, dash)));
        uint32_t b = static_cast<uint32_t>(std::stoul(item.substr(dash + 1)));
        if (b < a) throw std::out_of_range("range");
        if (b - a > 100000) {
          *err = std::string(flag) + " = \"" + s + "\": '" + item + "' spans " + std::to_string(b - a + 1) +
                 " ranks; a range may span at most 100001 (list several ranges)";
          return false;
        }
        for (uint32_t r = a; r <= b; ++r) out->push_back(r);
      }
    } catch (const std::exception&) {
      *err = std::string(flag) + " = \"" + s + "\": '" + item + "' is not a rank or a range; write e.g. 0,8,16-23";
      return false;
    }
  }
  return true;
}

int run_import(const std::vector<std::string>& files, const std::string& db_path, const std::string& format,
               const std::string& device) {
  auto db = trainsim::CalibrationDb::open(db_path, /*create=*/true);
  if (!db.ok()) return fail(db.status(), 2);
  for (const auto& f : files) {
    trainsim::Result<trainsim::ImportStats> st = Status::error("unreachable");
    if (format == "jsonl") {
      st = db.value()->import_jsonl(f);
    } else {
      std::ifstream in(f, std::ios::binary);
      if (!in) return fail(Status::error(trainsim::Error{f, "", "", "cannot open the file"}), 2);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      trainsim::ImportDeviceHint hint;
      hint.device_name = device;
      auto lines = format == "nccl-tests" ? trainsim::import_nccl_tests_log(text, f, hint)
                                          : trainsim::import_torch_trace(text, f, hint);
      if (!lines.ok()) return fail(lines.status(), 2);
      st = db.value()->import_lines(lines.value(), f);
    }
    if (!st.ok()) return fail(st.status(), 2);
    std::printf("%s: %d op and %d collective measurements imported into %s\n", f.c_str(), st->ops, st->collectives,
                db_path.c_str());
  }
  auto fits = trainsim::refit(*db.value());
  if (!fits.ok()) return fail(fits.status(), 1);
  std::printf("%d fitted curves stored\n", fits.value());
  return 0;
}

// "5%" -> 0.05. A bare number is refused: a percent sign says which scale is meant.
bool parse_tolerance(const std::string& s, double* out, std::string* err, const char* flag = "--tolerance") {
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    if (used + 1 == s.size() && s.back() == '%' && v >= 0) {
      *out = v / 100;
      return true;
    }
  } catch (const std::exception&) {
  }
  *err = std::string(flag) + " = \"" + s + "\": write a non-negative percentage, e.g. 5% or 25%";
  return false;
}

int run_verify_history(const std::string& db_path, const std::string& scenario) {
  auto store = trainsim::ResultsStore::open(db_path, /*create=*/false);
  if (!store.ok()) return fail(store.status(), 2);
  std::string name;
  if (!scenario.empty()) {   // a scenario file, or a scenario name as recorded
    auto sc = trainsim::load_scenario_file(scenario, {});
    name = sc.ok() ? sc->name : scenario;
  }
  auto recs = store.value()->records(name);
  if (!recs.ok()) return fail(recs.status(), 1);
  std::fputs(trainsim::format_history(recs.value()).c_str(), stdout);
  return 0;
}

// The end of verify and compare-trace: the report's JSON to `json_out`, the record (its version,
// tolerance, verdict and class rows from the report) to the results store at `db_path`, and the
// exit code (3 past the tolerance).
template <typename Json>
int finish_report(const Json& j, double tolerance, const std::string& json_out, const std::string& db_path,
                  trainsim::VerifyRecord r, const char* what) {
  if (!json_out.empty())
    if (int rc = write_report(json_out, j.dump(2) + "\n"); rc != 0) return rc;
  const bool passed = j["passed"].template get<bool>();
  if (!db_path.empty()) {
    auto store = trainsim::ResultsStore::open(db_path, /*create=*/true);
    if (!store.ok()) return fail(store.status(), 1);
    r.version = TRAINSIM_VERSION;
    r.tolerance = tolerance;
    r.passed = passed;
    r.classes_json = j["classes"].dump();
    auto id = store.value()->add(r);
    if (!id.ok()) return fail(id.status(), 1);
    std::printf("recorded as %s %lld in %s\n", what, static_cast<long long>(id.value()), db_path.c_str());
  }
  return passed ? 0 : 3;
}

// trainsim_executor for `verify --executor cuda`: $TRAINSIM_EXECUTOR, else next to this binary
// (build/calibrate/cuda/trainsim_executor from build/trainsim, or the same folder), else PATH.
std::string find_executor() {
  if (const char* e = std::getenv("TRAINSIM_EXECUTOR"); e && *e) return e;
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const auto& p : {self.parent_path() / "calibrate" / "cuda" / "trainsim_executor",
                          self.parent_path() / "trainsim_executor"})
      if (std::filesystem::exists(p, ec)) return p.string();
  }
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    std::string dir;
    while (std::getline(ss, dir, ':'))
      if (!dir.empty() && std::filesystem::exists(std::filesystem::path(dir) / "trainsim_executor", ec))
        return (std::filesystem::path(dir) / "trainsim_executor").string();
  }
  return "";
}

int run_verify(const std::string& scenario, trainsim::VerifyOptions vo, double tolerance,
               const std::string& json_out, const std::string& db_path, const std::vector<std::string>& overrides,
               const std::string& records_out = "", const std::string& html_out = "") {
  if (vo.executor == "cuda" && vo.executor_bin.empty()) vo.executor_bin = find_executor();
  auto sc = trainsim::load_scenario_file(scenario, overrides);
  if (!sc.ok()) return fail(sc.status(), 2);
  trainsim::HostRun exec_run;
  if (!records_out.empty()) vo.run_out = &exec_run;
  auto v = trainsim::verify_scenario(sc.value(), vo);
  if (!v.ok()) return fail(v.status(), 2);
  if (trainsim::host_mpi_rank() != 0) return 0;   // MPI helper process: rank 0 reports
  if (!records_out.empty()) {
    Status st = write_exec_records(records_out, exec_run);
    if (!st.ok()) return fail(st, 1);
  }
  std::fputs(trainsim::format_verification(v.value(), tolerance, TRAINSIM_VERSION).c_str(), stdout);
  if (!html_out.empty())
    if (int rc = write_report(html_out, trainsim::verify_html(v.value(), tolerance, TRAINSIM_VERSION)); rc != 0)
      return rc;
  const auto j = trainsim::verify_json(v.value(), tolerance, TRAINSIM_VERSION);
  trainsim::VerifyRecord r;
  r.scenario = v->scenario;
  r.scenario_hash = v->scenario_hash;
  r.plan_hash = v->plan_hash;
  r.machine = v->machine;
  r.device = v->device;
  r.executor = v->executor;
  r.calibration = v->calibration;
  r.ranks = v->ranks;
  r.predicted_s = v->predicted.seconds();
  r.measured_s = v->measured.seconds();
  r.step_error = v->step_error;
  return finish_report(j, tolerance, json_out, db_path, std::move(r), "verification");
}

// calibrate --host: the host measurement lines of the scenarios' restricted plans, to `out` (or
// stdout). backend "mpi" (REQUIRES host_mpi_init()): every process calls this; the plan must have
// one rank per process (as verify's MPI back end), and only rank 0 writes.
int run_calibrate_host(const std::vector<std::string>& scenarios, int ranks, const std::string& backend,
                       const std::string& out) {
  trainsim::HostCalibrateOptions co;
  co.backend = backend;
  std::string text;
  for (const auto& f : scenarios) {
    auto sc = trainsim::load_scenario_file(f, {});
    if (!sc.ok()) return fail(sc.status(), 2);
    auto plan = trainsim::compile_plan(sc->model, sc->training, sc->parallel, sc->cluster.gpus_per_node);
    if (!plan.ok()) return fail(plan.status(), 2);
    auto rp = trainsim::restrict_plan(plan->plan, sc->parallel, sc->cluster.gpus_per_node, ranks);
    if (!rp.ok()) return fail(rp.status(), 2);
    if (backend == "mpi" && trainsim::host_mpi_size() != rp->plan.num_ranks)
      return fail(Status::error(trainsim::Error{
                      f, "mpirun -np", std::to_string(trainsim::host_mpi_size()),
                      "the restricted plan has " + std::to_string(rp->plan.num_ranks) +
                          " ranks and its collectives are timed with one process per rank, as `trainsim verify "
                          "--backend mpi` runs them: launch with -np " +
                          std::to_string(rp->plan.num_ranks) + " or give --ranks " +
                          std::to_string(trainsim::host_mpi_size())}),
                  2);
    auto lines = trainsim::measure_host_plan(rp->plan, sc->cluster.gpus_per_node, co);
    if (!lines.ok()) return fail(lines.status(), 2);
    for (const auto& l : lines.value()) text += l + "\n";
  }
  if (trainsim::host_mpi_rank() != 0) return 0;   // MPI helper process: rank 0 writes
  if (out.empty()) {
    std::fputs(text.c_str(), stdout);
  } else {
    Status st = trainsim::write_text_file(out, text);
    if (!st.ok()) return fail(st, 1);
    std::printf("wrote %s: host measurements of \"%s\"; load them with `trainsim calibrate import %s --db FILE`\n",
                out.c_str(), trainsim::host_device_name().c_str(), out.c_str());
  }
  return 0;
}

// compare-trace: the same report and history as verify, from a real run's profiler trace.
int run_compare_trace(const std::string& scenario, const std::string& trace, const trainsim::CompareTraceOptions& co,
                      double tolerance, const std::string& json_out, const std::string& db_path,
                      const std::vector<std::string>& overrides, const std::string& html_out) {
  auto sc = trainsim::load_scenario_file(scenario, overrides);
  if (!sc.ok()) return fail(sc.status(), 2);
  auto c = trainsim::compare_trace(sc.value(), trace, co);
  if (!c.ok()) return fail(c.status(), 2);
  std::fputs(trainsim::format_trace_comparison(c.value(), tolerance, TRAINSIM_VERSION).c_str(), stdout);
  if (!html_out.empty())
    if (int rc = write_report(html_out, trainsim::compare_trace_html(c.value(), tolerance, TRAINSIM_VERSION)); rc != 0)
      return rc;
  const auto j = trainsim::compare_trace_json(c.value(), tolerance, TRAINSIM_VERSION);
  trainsim::VerifyRecord r;
  r.kind = "compare-trace";
  r.scenario = c->scenario;
  r.scenario_hash = c->scenario_hash;
  r.plan_hash = c->plan_hash;
  r.machine = c->trace_file;
  r.device = c->measured_side.device_name;
  r.executor = "torch.profiler trace";
  r.calibration = c->costs;
  r.ranks = c->ranks;
  r.predicted_s = c->predicted.seconds();
  r.measured_s = c->measured.seconds();
  r.step_error = c->step_error;
  r.details_json = nlohmann::ordered_json{{"trace", j["trace"]}, {"rank", j["rank"]}, {"shares", j["shares"]},
                                          {"timeline", j["timeline"]}, {"kernels", j["kernels"]}}
                       .dump();
  return finish_report(j, tolerance, json_out, db_path, std::move(r), "comparison");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"trainsim: predict the step time, throughput, MFU, time breakdown and memory of LLM training jobs"};
  app.require_subcommand(1);

  // run
  std::string scenario_path, json_out, trace_out, trace_ranks;
  std::vector<std::string> overrides;
  bool fast = false;
  auto* run = app.add_subcommand("run", "predict one training step of a scenario (default: the embedded quickstart)");
  run->add_option("scenario", scenario_path, "scenario JSON file (omit for the embedded scenarios/quickstart.json)");
  run->add_option("--json", json_out, "write every figure as JSON to FILE");
  run->add_option("--trace", trace_out, "write a Chrome/Perfetto trace of the timeline to FILE");
  run->add_option("--trace-ranks", trace_ranks, "ranks to trace, e.g. 0,8,16-23 (default: the critical rank's stage representatives, up to 64 ranks)");
  std::string html_out;
  run->add_option("--html", html_out,
                  "write the report as one self-contained HTML page to FILE (charts of the breakdown, memory and the "
                  "traced ranks' timeline; no script, loads nothing)");
  run->add_option("--set", overrides, "override a scenario field, e.g. --set parallel.tp=4 (repeatable)")->allow_extra_args(false);
  run->add_flag("--fast", fast, "collapse identical data-parallel and tensor-parallel replicas");
  std::string calibration;
  run->add_option("--calibration", calibration, "price ops from this calibration database (trainsim calibrate import)");
  std::string export_plan, export_ranks = "0";
  run->add_option("--export-plan", export_plan, "write the bound plan of --export-ranks as JSON to FILE (calibrate/FORMAT.md section 4)");
  run->add_option("--export-ranks", export_ranks, "ranks to export, e.g. 0,1 or 0-7 (default: 0)");
  std::vector<std::string> accuracy_runs;
  int accuracy_k = 5;
  run->add_option("--accuracy", accuracy_runs,
                  "after the report, how far trainsim was on the published runs of this JSON-lines file "
                  "(e.g. ../shared/validation/published_runs.jsonl) most like the scenario (repeatable: "
                  "the rows of every file)")
      ->allow_extra_args(false);
  auto* accuracy_k_opt =
      run->add_option("--accuracy-k", accuracy_k, "with --accuracy: how many of the most alike runs to show (default 5)");

  // sweep
  std::string sweep_scenario, sweep_json_out, sweep_calibration;
  std::vector<std::string> sweep_vary, sweep_overrides;
  bool sweep_full = false, sweep_fast_flag = false;
  int sweep_top = 0;
  std::string sweep_rank = "step";
  auto* swp = app.add_subcommand("sweep", "predict a scenario over every combination of a few keys' values (compare parallel strategies)");
  swp->add_option("--vary", sweep_vary, "KEY=V1,V2,... e.g. --vary parallel.tp=1,2,4,8 (repeatable: the product of all); "
                                        "KEY=auto takes a rule's candidates, K1+K2+...=auto the combinations that fit together")
      ->required()->allow_extra_args(false);
  std::string search_keys = "tp,pp,vp,micro_batch,sp,recompute";
  auto* srch = app.add_subcommand(
      "search", "find the fastest parallel strategy that fits: every layout of the keys' values that the GPU count, batch "
                "and model allow (a sweep over them, best first)");
  srch->add_option("--keys", search_keys,
                   "what to search, jointly: some of tp, pp, vp (with the interleaved schedule), cp, ep, micro_batch, sp "
                   "(sequence parallelism), zero, recompute (default tp,pp,vp,micro_batch,sp,recompute; the rest keep "
                   "the scenario's values)");
  std::string sweep_shard, sweep_store;
  std::vector<std::string> sweep_from;
  bool sweep_resume = false;
  std::string sweep_csv_out, sweep_html_out;
  int sweep_jobs = 0;
  std::string sweep_memory_limit = "100%";
  for (CLI::App* c : {swp, srch}) {   // sweep's options, search's too (one of them runs)
    c->add_option("scenario", sweep_scenario, "scenario JSON file (omit for the embedded scenarios/quickstart.json)");
    c->add_option("--set", sweep_overrides, "override a scenario field in every point, e.g. --set training.global_batch=512 (repeatable)")->allow_extra_args(false);
    c->add_option("--json", sweep_json_out, "write every point as JSON to FILE");
    c->add_option("--csv", sweep_csv_out, "write every point as CSV to FILE, best first (one column per key)");
    c->add_option("--html", sweep_html_out,
                  "write the result as one self-contained HTML page to FILE (bar charts of the best points' step and "
                  "memory, then the table)");
    c->add_option("--calibration", sweep_calibration, "price ops from this calibration database (trainsim calibrate import)");
    c->add_option("--rank-by", sweep_rank,
                  "step (shortest first; the default), tokens-per-gpu or tokens (most first), or train (the time to train "
                  "training.train_tokens, with the failures section's interruptions; shortest first): what the table is ranked by");
    c->add_option("--top", sweep_top,
                  c == srch ? "print only the N best rows of the table (default 20; 0: every row; the JSON keeps every point)"
                            : "print only the N best rows of the table (the JSON keeps every point)");
    c->add_option("--memory-limit", sweep_memory_limit,
                  "a point fits when its peak memory is at most this share of its GPU's, e.g. 90% (default 100%: "
                  "whatever is not OOM); ranking only, the figures do not change");
    c->add_option("--jobs", sweep_jobs,
                  "threads predicting points at once (default: one per core; the results do not depend on it)");
    auto* full_opt = c->add_flag("--full", sweep_full, "simulate every rank of every point (default: fast mode, identical replicas collapsed)");
    c->add_flag("--fast", sweep_fast_flag, "fast mode, identical replicas collapsed: the default (accepted for symmetry with run)")
        ->excludes(full_opt);
    c->add_option("--shard", sweep_shard,
                  "I/N: predict only the points whose index % N = I (one of N shards, e.g. jobs of a batch scheduler); "
                  "under mpirun the processes split the points among themselves instead");
    c->add_option("--store", sweep_store,
                  "record the points this run predicted in this SQLite results store (created if missing), as they come");
    c->add_flag("--resume", sweep_resume,
                "with --store: take the points this trainsim version already recorded there for this sweep instead of "
                "predicting them again (a shard cut off, run again)");
    c->add_option("--from-store", sweep_from,
                  "predict nothing: take every point from these results stores (the shards' --store files; repeatable) "
                  "and print the whole result")
        ->allow_extra_args(false);
  }
  auto* search_top_opt = srch->get_option("--top");
  std::vector<std::string> search_across;
  srch->add_option("--across", search_across,
                   "KEY=V1,V2,...: one search per value (repeatable: their product), a row each with its best layout "
                   "(capacity planning), e.g. --across cluster.gpus=512,1024,2048 --across cluster.gpu=H100-SXM-80GB,B200")
      ->allow_extra_args(false);

  // calibrate
  std::vector<std::string> cal_scenarios;
  std::string jobs_out;
  bool sweep = false, sweep_fp8 = false;
  auto* cal = app.add_subcommand("calibrate", "list what to measure for scenarios (or a standard sweep), or import measurements");
  cal->add_option("scenarios", cal_scenarios, "scenario files whose plans say what to measure");
  cal->add_option("--jobs", jobs_out, "write the job list for trainsim_calibrator to FILE (default: stdout)");
  cal->add_flag("--sweep", sweep, "the standard grid of a GPU type instead of scenarios");
  cal->add_flag("--fp8", sweep_fp8, "with --sweep: also fp8 GEMMs");
  bool cal_host = false;
  std::string host_out;
  int host_ranks = 2;
  cal->add_flag("--host", cal_host, "measure this machine's host-executor kernels and collectives for the scenarios' restricted plans");
  cal->add_option("--out", host_out, "with --host: write the measurement lines to FILE (default: stdout)");
  auto* cal_ranks = cal->add_option("--ranks", host_ranks, "with --host: local ranks the plans are restricted to (default 2; with --backend mpi: the MPI job's size)");
  std::string cal_backend;
  cal->add_option("--backend", cal_backend,
                  "with --host: how collectives are timed, as verify's host executor moves data: threads (the "
                  "default) or mpi (between the processes of `mpirun -np N trainsim calibrate --host ...`; the "
                  "default when started by an MPI launcher)");
  std::vector<std::string> import_files;
  std::string db_path, import_format = "jsonl", device_name;
  auto* imp = cal->add_subcommand("import", "load measurements into a calibration database (one transaction per file)");
  imp->add_option("files", import_files, "measurement files")->required();
  imp->add_option("--db", db_path, "calibration database (created if missing)")->required();
  imp->add_option("--format", import_format, "jsonl (trainsim_calibrator), nccl-tests (a *_perf log), torch-trace (torch.profiler JSON)")
      ->check(CLI::IsMember({"jsonl", "nccl-tests", "torch-trace"}));
  imp->add_option("--device", device_name, "device name when the log does not say it (nccl-tests, torch-trace)");
  std::string cmp_db, cmp_gpu, cmp_json;
  auto* cmp = cal->add_subcommand("compare", "how a database's measurements of a GPU differ from the embedded default costs");
  cmp->add_option("db", cmp_db, "calibration database")->required();
  cmp->add_option("--gpu", cmp_gpu, "catalog GPU whose default costs to compare with, e.g. H100-SXM-80GB")->required();
  cmp->add_option("--json", cmp_json, "write the groups as JSON to FILE");

  // topo
  std::string topo_what;
  auto* topo = app.add_subcommand("topo", "cluster fabrics: describe a builtin or a topology file");
  topo->require_subcommand(1);
  auto* describe_cmd = topo->add_subcommand("describe", "GPUs, nodes, switches, links per tier, bisection bandwidth, oversubscription");
  describe_cmd->add_option("topology", topo_what, "a builtin name (see `trainsim topo list`) or a topology JSON file")->required();
  auto* topo_list = topo->add_subcommand("list", "the builtin topologies");

  // validate
  std::string runs_path, vjson_out;
  bool full = false, val_fast_flag = false;
  auto* val = app.add_subcommand("validate", "replay published training runs and compare with what they measured");
  val->add_option("runs", runs_path, "JSON-lines file in the schema of shared/validation/README.md")->required();
  val->add_option("--json", vjson_out, "write rows and summary as JSON to FILE");
  std::string vcsv_out, vhtml_out;
  val->add_option("--csv", vcsv_out, "write the rows as CSV to FILE (id, group, metric, status, measured, predicted, error_pct, reason, defaults)");
  val->add_option("--html", vhtml_out,
                  "write the validation as one self-contained HTML page to FILE (every row's signed error as a bar, "
                  "grouped by source; the summary; the text report)");
  auto* vfull_opt = val->add_flag("--full", full, "simulate every rank (default: fast mode, identical replicas collapsed)");
  val->add_flag("--fast", val_fast_flag, "fast mode, identical replicas collapsed: the default (accepted for symmetry with run)")
      ->excludes(vfull_opt);
  std::string val_calibration;
  val->add_option("--calibration", val_calibration, "price the rows of GPUs this calibration database measured from it");
  std::string val_prefer;
  val->add_option("--prefer-source", val_prefer, "with --calibration: of several measurements of an op, the one whose source contains TEXT counts (costs.prefer_source)");
  std::vector<std::string> val_explain;
  val->add_option("--explain", val_explain,
                  "after the table, the whole prediction report (as `trainsim run` prints it) of the scenario the row "
                  "with this id becomes; repeatable")
      ->allow_extra_args(false);
  std::string val_baseline;
  val->add_option("--baseline", val_baseline,
                  "after the report, how each row's error moved since this earlier `validate --json` file (rows "
                  "matched by id and metric; a regression check of the accuracy)");
  std::string val_scenarios;
  val->add_option("--scenarios", val_scenarios,
                  "write the scenario each published row becomes (its defaults applied and listed in its description) "
                  "to DIR/ID.json, to run, sweep or search from (DIR is created if missing)");

  // verify
  std::string verify_scenario_path, verify_json_out, verify_tolerance = "5%", verify_db = "trainsim_results.db";
  trainsim::VerifyOptions vo;
  bool verify_history = false, verify_no_record = false;
  auto* ver = app.add_subcommand("verify", "execute a scenario's plan, restricted to local devices, and compare it with the simulation of the same plan");
  ver->add_option("scenario", verify_scenario_path, "scenario JSON file (with --history: a scenario file or name to filter by)");
  ver->add_option("--executor", vo.executor, "host (real CPU kernels) or cuda");
  std::string verify_backend, verify_records;
  ver->add_option("--backend", verify_backend,
                  "host executor back end: threads (ranks as threads of this process; the default) or mpi (one process "
                  "per rank: mpirun -np N trainsim verify ...; the default when started by an MPI launcher)");
  ver->add_option("--exec-records", verify_records, "write the executor's per-task records of the reported step as JSON to FILE");
  ver->add_option("--tolerance", verify_tolerance, "exit with code 3 when |step-time error| exceeds this (default 5%)");
  auto* verify_ranks = ver->add_option("--ranks", vo.ranks, "local devices the plan is restricted to (default 2; with --backend mpi: the MPI job's size)");
  ver->add_option("--steps", vo.steps, "measured steps, after one warm-up step (default 3; the median is reported)");
  ver->add_option("--json", verify_json_out, "write the report as JSON to FILE");
  std::string verify_html_out;
  ver->add_option("--html", verify_html_out,
                  "write the verification as one self-contained HTML page to FILE (predicted and measured time per "
                  "class as pairs of bars, and the report)");
  ver->add_option("--calibration", vo.calibration, "host: a host calibration database (trainsim calibrate --host + import; default: measure now); cuda: a GPU calibration database (default: the embedded default)");
  ver->add_option("--executor-bin", vo.executor_bin, "cuda: the trainsim_executor program (default: $TRAINSIM_EXECUTOR, else beside this binary, else on PATH)");
  ver->add_option("--history-db", verify_db, "results store that records every verification (default trainsim_results.db)");
  ver->add_flag("--no-record", verify_no_record, "do not record this verification in the results store");
  ver->add_flag("--history", verify_history, "print how the step-time error moved across versions");
  std::vector<std::string> verify_overrides;
  ver->add_option("--set", verify_overrides, "override a scenario field, as run's --set (repeatable)")->allow_extra_args(false);

  // compare-trace
  std::string ct_scenario, ct_trace, ct_json, ct_tolerance = "5%", ct_db = "trainsim_results.db";
  trainsim::CompareTraceOptions cto;
  bool ct_no_record = false;
  auto* ct = app.add_subcommand("compare-trace", "compare a PyTorch profiler trace of one rank of a real run with the simulated timeline of that rank");
  ct->add_option("scenario", ct_scenario, "scenario JSON file of the same configuration")->required();
  ct->add_option("trace", ct_trace, "torch.profiler Chrome-trace JSON of one rank (export_chrome_trace)")->required();
  ct->add_option("--rank", cto.rank, "simulated rank the trace is compared with (default 0)");
  std::vector<std::string> ct_overrides;
  ct->add_option("--set", ct_overrides, "override a scenario field, as run's --set (repeatable)")->allow_extra_args(false);
  ct->add_option("--step", cto.step, "ProfilerStep number to compare (default: the last complete one)");
  ct->add_option("--calibration", cto.calibration, "price ops from this calibration database (default: the scenario's costs.calibration)");
  ct->add_option("--tolerance", ct_tolerance, "exit with code 3 when |step-time error| exceeds this (default 5%)");
  ct->add_option("--json", ct_json, "write the report as JSON to FILE");
  std::string ct_html;
  ct->add_option("--html", ct_html,
                 "write the comparison as one self-contained HTML page to FILE (the simulated rank and the trace as "
                 "timelines on one axis; predicted and measured time per class)");
  ct->add_option("--history-db", ct_db, "results store that records every comparison (default trainsim_results.db)");
  ct->add_flag("--no-record", ct_no_record, "do not record this comparison in the results store");

  // plan
  std::string plan_scenario, plan_json, plan_cal;
  std::vector<std::string> plan_set;
  trainsim::PlanReportOptions plan_opts;
  auto* planc = app.add_subcommand("plan", "the plan a scenario compiles to, in words: programs, groups, and one rank's "
                                           "streams and ops with their bound costs");
  planc->add_option("scenario", plan_scenario, "scenario JSON file (omit for the embedded quickstart)");
  planc->add_option("--set", plan_set, "override a scenario field, as run's --set (repeatable)")->allow_extra_args(false);
  planc->add_option("--rank", plan_opts.rank, "the rank whose program, groups and ops are shown (default 0)");
  planc->add_option("--top", plan_opts.top_ops, "op rows to print, largest total time first (default 25)");
  planc->add_option("--calibration", plan_cal, "price ops from this calibration database");
  planc->add_option("--json", plan_json, "write the summary as JSON to FILE (every op of the rank)");

  // compare
  std::string cmp_a, cmp_b, cmpc_json, cmp_fail_above, cmp_cal, cmp_cal_a, cmp_cal_b;
  std::vector<std::string> cmp_set, cmp_set_a;
  bool cmp_fast = false;
  auto* cmpc = app.add_subcommand(
      "compare", "two predictions side by side and where the step time and memory moved: a scenario against a "
                 "changed copy (--set), another scenario, or a stored `run --json` prediction");
  cmpc->add_option("a", cmp_a, "A: a scenario JSON file or a prediction written by `trainsim run --json` (omit for the "
                               "embedded quickstart)");
  cmpc->add_option("b", cmp_b, "B: the same kinds of file (default: A's scenario changed by --set; for a stored A, the "
                               "scenario file it records, predicted now)");
  cmpc->add_option("--set", cmp_set, "override a field of B's scenario, as run's --set (repeatable)")->allow_extra_args(false);
  cmpc->add_option("--set-a", cmp_set_a, "override a field of A's scenario (repeatable)")->allow_extra_args(false);
  cmpc->add_flag("--fast", cmp_fast, "predict the scenarios in fast mode");
  cmpc->add_option("--calibration", cmp_cal, "price both scenarios from this calibration database");
  cmpc->add_option("--calibration-a", cmp_cal_a, "price A's scenario from this calibration database");
  cmpc->add_option("--calibration-b", cmp_cal_b, "price B's scenario from this calibration database");
  cmpc->add_option("--json", cmpc_json, "write the comparison as JSON to FILE");
  std::string cmpc_html;
  cmpc->add_option("--html", cmpc_html,
                   "write the comparison as one self-contained HTML page to FILE (each side's breakdown and memory as "
                   "bars on one scale, then the report)");
  cmpc->add_option("--fail-above", cmp_fail_above,
                   "exit with code 3 when B's step differs from A's by more than this, e.g. 2% (a regression check; "
                   "tokens/s where the tokens per step differ, tokens/s per GPU where the GPU counts do)");

  // An unknown first word is a misspelt subcommand, not a missing one.
  if (argc > 1 && argv[1][0] != '-') {
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands({})) names.push_back(sub->get_name());
    if (std::find(names.begin(), names.end(), argv[1]) == names.end()) {
      const std::string near = trainsim::closest_match(argv[1], names);
      std::string all;
      for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
      std::fprintf(stderr, "error: unknown subcommand \"%s\"%s; the subcommands are %s (trainsim --help)\n", argv[1],
                   near.empty() ? "" : ("; did you mean \"" + near + "\"?").c_str(), all.c_str());
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  // Report files, checked before any work (a typo in a path should not cost a long search).
  // "-" is standard output: the report alone goes there, the text the command prints to stderr.
  {
    const std::vector<std::pair<const char*, const std::string*>> outs = {
        {"--json", &json_out},          {"--trace", &trace_out},   {"--html", &html_out},
        {"--json", &sweep_json_out},    {"--csv", &sweep_csv_out}, {"--html", &sweep_html_out},
        {"--json", &cmp_json},          {"--json", &vjson_out},    {"--csv", &vcsv_out},
        {"--html", &vhtml_out},         {"--json", &verify_json_out}, {"--html", &verify_html_out},
        {"--json", &ct_json},           {"--html", &ct_html},      {"--json", &plan_json},
        {"--json", &cmpc_json},         {"--html", &cmpc_html}};
    Status st;
    int dashes = 0;
    for (const auto& [opt, path] : outs) {
      if (path->empty()) continue;
      if (*path == "-") ++dashes;
      Status c = trainsim::check_output_path(*path);
      for (trainsim::Error e : c.errors()) {
        e.message = std::string(opt) + ": " + e.message;
        st.add(std::move(e));
      }
    }
    if (dashes > 1) st.add(trainsim::Error{"", "", "-", "only one report can go to standard output (\"-\")"});
    if (!st.ok()) return fail(st, 2);
    if (dashes == 1) {
      std::fflush(stdout);
      const int real_stdout = ::dup(1);
      if (real_stdout < 0 || ::dup2(2, 1) < 0) return fail(Status::error("cannot redirect standard output for \"-\""), 1);
      trainsim::set_report_stream(real_stdout);
    }
  }

  if (*run) {
    auto sc = scenario_path.empty() ? trainsim::load_embedded_quickstart(overrides)
                                    : trainsim::load_scenario_file(scenario_path, overrides);
    if (!sc.ok()) return fail(sc.status(), 2);
    if (!calibration.empty()) sc.value().options.calibration = calibration;
    trainsim::PredictOptions po;
    po.fast = fast;
    if (!trace_out.empty() || !html_out.empty()) {   // the HTML page's timeline shows the same ranks
      std::string err;
      if (trace_ranks.empty()) {
        po.trace_representatives = true;
      } else if (!parse_ranks(trace_ranks, &po.trace_ranks, &err)) {
        return fail(Status::error(err), 2);
      }
    } else if (!trace_ranks.empty()) {
      return fail(Status::error("--trace-ranks needs --trace FILE or --html FILE"), 2);
    }
    if (export_plan.empty() && export_ranks != "0")
      return fail(Status::error("--export-ranks needs --export-plan FILE"), 2);
    if (accuracy_runs.empty() && accuracy_k_opt->count() > 0)
      return fail(Status::error("--accuracy-k needs --accuracy RUNS.jsonl"), 2);
    if (accuracy_k < 1)
      return fail(Status::error(trainsim::Error{"--accuracy-k", "", std::to_string(accuracy_k),
                                                "a number of runs, at least 1"}),
                  2);
    auto pr = trainsim::predict(sc.value(), po);
    if (!pr.ok()) return fail(pr.status(), 2);
    std::optional<trainsim::AccuracyContext> accuracy;
    if (!accuracy_runs.empty()) {
      trainsim::ValidateOptions vo;
      vo.calibration = sc.value().options.calibration;
      vo.prefer_source = sc.value().options.prefer_source;
      std::vector<trainsim::ValidateRow> all;
      std::string names;
      for (const auto& f : accuracy_runs) {
        auto rows = trainsim::run_validation(f, vo);
        if (!rows.ok()) return fail(rows.status(), 2);
        all.insert(all.end(), rows.value().begin(), rows.value().end());
        names += (names.empty() ? "" : " and ") + f;
      }
      accuracy = trainsim::accuracy_context(trainsim::features_of(sc.value()), all, accuracy_k, names);
    }
    std::fputs(trainsim::format_summary(pr.value()).c_str(), stdout);
    if (accuracy) std::fputs(trainsim::format_accuracy_context(*accuracy).c_str(), stdout);
    if (!json_out.empty()) {
      auto doc = trainsim::prediction_json(pr.value());
      if (accuracy) doc["accuracy"] = trainsim::accuracy_context_json(*accuracy);
      if (int rc = write_report(json_out, doc.dump(2) + "\n"); rc != 0) return rc;
    }
    if (!export_plan.empty()) {
      trainsim::PlanExportOptions eo;
      std::string err;
      if (!parse_ranks(export_ranks, &eo.ranks, &err, "--export-ranks")) return fail(Status::error(err), 2);
      eo.scenario = scenario_path.empty() ? "quickstart (embedded)" : scenario_path;
      for (const auto& ov : overrides) eo.scenario += " --set " + ov;
      eo.costs = sc.value().options.calibration.empty() ? "embedded default" : sc.value().options.calibration;
      eo.predicted_step_us = pr.value().step_time.us_f();
      auto text = trainsim::export_plan_json(*pr.value().plan, eo);
      if (!text.ok()) return fail(text.status(), 2);
      Status st = trainsim::write_text_file(export_plan, text.value());
      if (!st.ok()) return fail(st, 1);
      std::printf("wrote %s (%zu ranks)\n", export_plan.c_str(), eo.ranks.size());
    }
    if (!trace_out.empty()) {
      Status st = trainsim::write_text_file(trace_out, trainsim::chrome_trace(pr.value()).dump() + "\n");
      if (!st.ok()) return fail(st, 1);
      std::printf("wrote %s (%zu events)\n", trace_out.c_str(), pr.value().trace.size());
    }
    if (!html_out.empty())
      return write_report(html_out,
                          trainsim::prediction_html(pr.value(), TRAINSIM_VERSION, accuracy ? &*accuracy : nullptr));
    return 0;
  }

  if (*swp || *srch) {
    if (*srch) {   // one joint auto axis over the keys asked
      static const std::pair<const char*, const char*> kKeys[] = {
          {"tp", "parallel.tp"}, {"pp", "parallel.pp"}, {"vp", "parallel.vp"}, {"cp", "parallel.cp"},
          {"ep", "parallel.ep"}, {"micro_batch", "training.micro_batch"}, {"sp", "parallel.sequence_parallel"},
          {"zero", "parallel.zero"}, {"recompute", "parallel.recompute"}};
      std::string accepted;
      for (const auto& [name, key] : kKeys) accepted += (accepted.empty() ? "" : ", ") + std::string(name);
      std::string joint;
      std::stringstream ks(search_keys);
      std::string k;
      while (std::getline(ks, k, ',')) {
        k = trainsim::trim(k);
        const auto* it = std::find_if(std::begin(kKeys), std::end(kKeys), [&](const auto& e) { return k == e.first; });
        if (it == std::end(kKeys))
          return fail(Status::error(trainsim::Error{"--keys", "", "\"" + k + "\"",
                                                    "accepted: " + accepted + " (comma-separated)"}),
                      2);
        joint += (joint.empty() ? "" : "+") + std::string(it->second);
      }
      if (joint.empty())
        return fail(Status::error(trainsim::Error{"--keys", "", "\"" + search_keys + "\"", "at least one of " + accepted}),
                    2);
      sweep_vary = {joint + "=auto"};
      if (search_top_opt->count() == 0) sweep_top = 20;
    }
    auto axes = trainsim::parse_sweep_axes(sweep_vary);
    if (!axes.ok()) return fail(axes.status(), 2);
    if (*srch) axes.value()[0].joint = true;   // one key too: the layouts that fit
    trainsim::SweepOptions so;
    so.fast = !sweep_full;
    if (sweep_jobs < 0 || sweep_jobs > 1024)
      return fail(Status::error(trainsim::Error{"--jobs", "", std::to_string(sweep_jobs),
                                                "a number of threads from 1 to 1024 (0 or no --jobs: one per core)"}),
                  2);
    {   // --memory-limit: "90%" or 0.9
      std::string t = trainsim::trim(sweep_memory_limit);
      const bool pct = !t.empty() && t.back() == '%';
      if (pct) t.pop_back();
      char* end = nullptr;
      const double v = t.empty() ? NAN : std::strtod(t.c_str(), &end);
      so.memory_limit = pct ? v / 100 : v;
      if (t.empty() || end == nullptr || *end != '\0' || !(so.memory_limit > 0 && so.memory_limit <= 1))
        return fail(Status::error(trainsim::Error{"--memory-limit", "", "\"" + sweep_memory_limit + "\"",
                                                  "a share of each GPU's memory above 0 and at most 100%, e.g. 90% or 0.9"}),
                    2);
    }
    so.jobs = sweep_jobs > 0 ? sweep_jobs
              : trainsim::host_mpi_launched_size() > 1 ? 1
                                                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (!trainsim::parse_sweep_rank(sweep_rank, &so.rank_by))
      return fail(Status::error(trainsim::Error{"--rank-by", "", "\"" + sweep_rank + "\"",
                                                "accepted: \"step\", \"tokens-per-gpu\", \"tokens\" or \"train\""}),
                  2);
    if (sweep_top < 0)
      return fail(Status::error(trainsim::Error{"--top", "", std::to_string(sweep_top),
                                                "a number of rows, at least 1 (0 or no --top: every row)"}),
                  2);
    so.overrides = sweep_overrides;
    so.calibration = sweep_calibration;
    const bool mpi = trainsim::host_mpi_launched_size() > 1;
    if (!sweep_shard.empty()) {
      if (!parse_shard(sweep_shard, &so.shard, &so.shards))
        return fail(Status::error(trainsim::Error{"--shard", "", "\"" + sweep_shard + "\"",
                                                  "I/N with 0 <= I < N, e.g. --shard 0/4 for the first of four shards"}),
                    2);
      if (mpi)
        return fail(Status::error(trainsim::Error{"--shard", "", sweep_shard,
                                                  "not under mpirun: there the processes split the points among themselves"}),
                    2);
    }
    if (sweep_resume && (sweep_store.empty() || !sweep_from.empty() || mpi))
      return fail(Status::error(trainsim::Error{"--resume", "", "",
                                                "needs --store FILE (the store the cut-off run recorded in), and "
                                                "neither --from-store nor mpirun"}),
                  2);
    if (!sweep_from.empty()) {
      if (!sweep_shard.empty() || mpi)
        return fail(Status::error(trainsim::Error{"--from-store", "", sweep_from[0],
                                                  "predicts nothing: run it as one process, without --shard"}),
                    2);
      so.compute = false;
    }
    if (*srch && !search_across.empty()) {   // capacity planning: a search per across combination
      const char* other = !sweep_csv_out.empty()   ? "--csv"
                          : !sweep_html_out.empty() ? "--html"
                          : !sweep_shard.empty()    ? "--shard"
                          : !sweep_store.empty()    ? "--store"
                          : !sweep_from.empty()     ? "--from-store"
                          : mpi                     ? "mpirun"
                                                    : nullptr;
      if (other != nullptr)
        return fail(Status::error(trainsim::Error{"--across", "", search_across[0],
                                                  std::string("not with ") + other +
                                                      ": --across prints a row per search and --json writes them"}),
                    2);
      auto across = trainsim::parse_sweep_axes(search_across);
      if (!across.ok()) {
        Status st;
        for (trainsim::Error e : across.status().errors()) {
          if (e.file == "--vary") e.file = "--across";
          st.add(std::move(e));
        }
        return fail(st, 2);
      }
      auto res = trainsim::run_search_across(sweep_scenario, axes.value(), across.value(), so);
      if (!res.ok()) return fail(res.status(), 2);
      return print_report(trainsim::format_search_across(res.value()), sweep_json_out,
                          trainsim::search_across_json(res.value()));
    }
    if (!mpi)
      return run_sweep_command(sweep_scenario, axes.value(), so, sweep_top,
                               SweepFiles{sweep_json_out, sweep_csv_out, sweep_html_out}, sweep_store, sweep_from,
                               sweep_resume, *srch ? "search" : "sweep");
    // Under mpirun: process r of N predicts the points of shard r/N; rank 0 gathers and reports.
    if (Status st = trainsim::host_mpi_init(); !st.ok()) return fail(st, 2);
    so.shard = trainsim::host_mpi_rank();
    so.shards = trainsim::host_mpi_size();
    const int rc = run_sweep_command(sweep_scenario, axes.value(), so, sweep_top,
                                     SweepFiles{sweep_json_out, sweep_csv_out, sweep_html_out}, sweep_store, {},
                                     false, *srch ? "search" : "sweep");
    if (rc != 0) trainsim::host_mpi_abort(rc);
    trainsim::host_mpi_finalize();
    return rc;
  }

  if (*topo) {
    if (*topo_list) {
      for (const auto& b : trainsim::builtin_topologies())
        std::printf("%-16s %s\n%16s source: %s\n", b.name.c_str(), b.summary.c_str(), "", b.source.c_str());
      return 0;
    }
    auto g = trainsim::load_topology(topo_what);
    if (!g.ok()) return fail(g.status(), 2);
    std::fputs(trainsim::format_description(trainsim::describe(g.value())).c_str(), stdout);
    return 0;
  }
  if (*ver) {
    if (verify_history) return run_verify_history(verify_db, verify_scenario_path);
    if (verify_scenario_path.empty()) return fail(Status::error("verify: give a scenario file (e.g. scenarios/verify_small.json)"), 2);
    double tol = 0;
    std::string err;
    if (!parse_tolerance(verify_tolerance, &tol, &err)) return fail(Status::error(err), 2);
    if (verify_backend.empty()) verify_backend = trainsim::host_mpi_launched_size() > 1 ? "mpi" : "threads";
    vo.backend = verify_backend;
    if (vo.backend != "mpi")
      return run_verify(verify_scenario_path, vo, tol, verify_json_out, verify_no_record ? "" : verify_db,
                        verify_overrides, verify_records, verify_html_out);
    // The MPI back end: every process of the job runs this; rank 0 reports. An error on any
    // process ends the whole job (the others may be waiting for it).
    if (Status st = trainsim::host_mpi_init(); !st.ok()) return fail(st, 2);
    if (verify_ranks->count() == 0) vo.ranks = trainsim::host_mpi_size();
    const int rc = run_verify(verify_scenario_path, vo, tol, verify_json_out, verify_no_record ? "" : verify_db,
                              verify_overrides, verify_records, verify_html_out);
    if (rc != 0 && rc != 3) trainsim::host_mpi_abort(rc);
    trainsim::host_mpi_finalize();
    return rc;
  }
  if (*planc) {
    auto sc = plan_scenario.empty() ? trainsim::load_embedded_quickstart(plan_set)
                                    : trainsim::load_scenario_file(plan_scenario, plan_set);
    if (!sc.ok()) return fail(sc.status(), 2);
    if (!plan_cal.empty()) sc.value().options.calibration = plan_cal;
    if (plan_opts.top_ops < 0)
      return fail(Status::error(trainsim::Error{"--top", "", std::to_string(plan_opts.top_ops), "a number of rows, 0 or more"}), 2);
    trainsim::PredictOptions po;
    po.fast = true;   // the plan and its bound costs are the same in either mode
    auto pr = trainsim::predict(sc.value(), po);
    if (!pr.ok()) return fail(pr.status(), 2);
    auto text = trainsim::format_plan_summary(pr.value(), plan_opts);
    if (!text.ok()) return fail(text.status(), 2);
    std::fputs(text.value().c_str(), stdout);
    if (plan_json.empty()) return 0;
    auto j = trainsim::plan_summary_json(pr.value(), plan_opts);
    if (!j.ok()) return fail(j.status(), 2);
    return write_report(plan_json, j.value().dump(2) + "\n");
  }

  if (*cmpc) {
    double limit = -1;
    if (!cmp_fail_above.empty()) {
      std::string err;
      if (!parse_tolerance(cmp_fail_above, &limit, &err, "--fail-above")) return fail(Status::error(err), 2);
    }
    if (!cmp_cal.empty() && (!cmp_cal_a.empty() || !cmp_cal_b.empty()))
      return fail(Status::error("--calibration prices both sides: give it alone, or --calibration-a / --calibration-b"), 2);
    trainsim::CompareSideOptions oa, ob;
    oa.predict.fast = ob.predict.fast = cmp_fast;
    oa.calibration = cmp_cal.empty() ? cmp_cal_a : cmp_cal;
    ob.calibration = cmp_cal.empty() ? cmp_cal_b : cmp_cal;
    // Each error says which side it is about.
    auto side_errors = [](const char* side, const Status& from, Status* to) {
      for (trainsim::Error e : from.errors()) {
        e.file = side + e.file;
        to->add(std::move(e));
      }
    };
    auto ra = trainsim::load_compared_run(cmp_a, cmp_set_a, oa);
    if (!ra.ok() && cmp_b.empty()) {   // B would be A again, or what A records: A's errors alone
      Status st;
      side_errors("A ", ra.status(), &st);
      return fail(st, 2);
    }
    // Without B: A's scenario changed by --set, or, when A is a stored prediction, the scenario
    // file it records predicted now in its mode (has the prediction moved since it was stored?).
    // A stored fast-mode A makes a scenario B fast too, given or not.
    std::string b_path = cmp_b;
    if (ra.ok() && ra.value().stored && ra.value().mode == "fast") ob.predict.fast = true;
    if (cmp_b.empty() && ra.ok() && ra.value().stored) {
      b_path = ra.value().file == "<embedded>" ? "" : ra.value().file;
    } else if (cmp_b.empty()) {
      if (cmp_set.empty() && cmp_cal_b.empty() && ra.ok())
        return fail(Status::error("compare needs a B that differs from scenario A: give a second file, or --set "
                                  "KEY=VALUE (or --calibration-b DB) for A changed"),
                    2);
      b_path = cmp_a;
    }
    auto rb = trainsim::load_compared_run(b_path, cmp_set, ob);
    if (!ra.ok() || !rb.ok()) {
      Status st;
      side_errors("A ", ra.status(), &st);
      side_errors("B ", rb.status(), &st);
      return fail(st, 2);
    }
    const auto c = trainsim::compare_runs(std::move(ra).value(), std::move(rb).value());
    if (int rc = print_report(trainsim::format_comparison(c), cmpc_json, trainsim::comparison_json(c)); rc != 0) return rc;
    if (!cmpc_html.empty())
      if (int rc = write_report(cmpc_html, trainsim::compare_html(c, TRAINSIM_VERSION)); rc != 0) return rc;
    if (limit >= 0) {
      const trainsim::CompareJudgement jd = trainsim::judge(c);   // the step, or throughput where sizes differ
      const bool over = std::fabs(jd.change) > limit;
      std::printf("regression check: %s %s, limit %s: %s\n", jd.label, trainsim::reports::signed_pct(jd.change).c_str(),
                  cmp_fail_above.c_str(), over ? "FAILED (exit 3)" : "passed");
      if (over) return 3;
    }
    return 0;
  }

  if (*ct) {
    double tol = 0;
    std::string err;
    if (!parse_tolerance(ct_tolerance, &tol, &err)) return fail(Status::error(err), 2);
    return run_compare_trace(ct_scenario, ct_trace, cto, tol, ct_json, ct_no_record ? "" : ct_db, ct_overrides,
                             ct_html);
  }
  if (*cal && *imp) return run_import(import_files, db_path, import_format, device_name);
  if (*cal && *cmp) {
    auto r = trainsim::compare_with_default(cmp_db, cmp_gpu);
    if (!r.ok()) return fail(r.status(), 2);
    return print_report(trainsim::format_compare(r.value()), cmp_json, trainsim::compare_json(r.value()));
  }
  if (*cal && cal_host) {
    if (cal_scenarios.empty())
      return fail(Status::error("calibrate --host: give scenario files (e.g. scenarios/verify_small.json)"), 2);
    if (cal_backend.empty()) cal_backend = trainsim::host_mpi_launched_size() > 1 ? "mpi" : "threads";
    if (cal_backend != "threads" && cal_backend != "mpi")
      return fail(Status::error(trainsim::Error{"", "--backend", cal_backend, "accepted: threads, mpi"}), 2);
    if (cal_backend != "mpi") return run_calibrate_host(cal_scenarios, host_ranks, "threads", host_out);
    // MPI: every process of the job takes part in timing the collectives; rank 0 writes. An
    // error on any process ends the whole job (the others may be waiting for it).
    if (Status st = trainsim::host_mpi_init(); !st.ok()) return fail(st, 2);
    if (cal_ranks->count() == 0) host_ranks = trainsim::host_mpi_size();
    const int rc = run_calibrate_host(cal_scenarios, host_ranks, "mpi", host_out);
    if (rc != 0) trainsim::host_mpi_abort(rc);
    trainsim::host_mpi_finalize();
    return rc;
  }
  if (*cal) {
    trainsim::JobList jobs;
    if (sweep) {
      jobs = trainsim::sweep_jobs(sweep_fp8);
    } else {
      if (cal_scenarios.empty())
        return fail(Status::error("calibrate: give scenario files, or --sweep for the standard grid"), 2);
      Status all;
      for (const auto& f : cal_scenarios) {
        auto sc = trainsim::load_scenario_file(f, {});
        if (!sc.ok()) {
          all.merge(sc.status());
          continue;
        }
        auto plan = trainsim::compile_plan(sc->model, sc->training, sc->parallel, sc->cluster.gpus_per_node);
        if (!plan.ok()) {
          all.merge(plan.status());
          continue;
        }
        trainsim::add_plan_jobs(plan->plan, &jobs);
      }
      if (!all.ok()) return fail(all, 2);
    }
    const std::string text = jobs.to_json().dump(2) + "\n";
    if (jobs_out.empty()) {
      std::fputs(text.c_str(), stdout);
    } else {
      Status st = trainsim::write_text_file(jobs_out, text);
      if (!st.ok()) return fail(st, 1);
      std::printf("wrote %s: %zu ops, %zu collective points\n", jobs_out.c_str(), jobs.ops.size(), jobs.collectives.size());
    }
    return 0;
  }

  if (*val) {
    trainsim::ValidateOptions vo;
    vo.calibration = val_calibration;
    vo.prefer_source = val_prefer;
    vo.fast = !full;
    vo.explain = val_explain;
    auto rows = trainsim::run_validation(runs_path, vo);
    if (!rows.ok()) return fail(rows.status(), 2);
    auto summary = trainsim::summarize(rows.value());
    // Every figure says where its costs come from: a row priced from a calibration lists it
    // among its defaults; the rest rest on the embedded default.
    auto eff = trainsim::default_efficiencies("hopper");   // nccl_ctas is common to every family
    if (!eff.ok()) return fail(eff.status(), 1);
    const std::string costs = trainsim::reports::strf(
        "costs: the embedded default (calibrate/data/defaults.json) unless a row's defaults name a calibration; "
        "compute beside collectives: %d SMs held per running NCCL collective (embedded default)",
        eff.value().nccl_ctas);
    std::optional<trainsim::ValidateBaseline> baseline;
    if (!val_baseline.empty()) {   // read before anything is printed: a bad file fails the command
      auto doc = trainsim::read_json_document(val_baseline, "baseline (a file `trainsim validate --json` wrote)");
      if (!doc.ok()) return fail(doc.status(), 2);
      auto b = trainsim::validation_baseline(doc.value(), val_baseline, rows.value());
      if (!b.ok()) return fail(b.status(), 2);
      baseline = std::move(b).value();
    }
    std::fputs(trainsim::format_validate(rows.value(), summary, costs).c_str(), stdout);
    if (baseline) std::fputs(trainsim::format_baseline(*baseline, summary).c_str(), stdout);
    for (const auto& id : val_explain)
      for (const auto& r : rows.value()) {
        if (r.id != id) continue;
        std::printf("\n== %s: ", id.c_str());
        if (!r.ok && r.explain.empty()) {
          std::printf("not predicted (%s)\n", r.reason.c_str());
        } else {
          std::printf("the prediction of the scenario this row becomes (%s %.4g, measured %.4g, error %+.1f%%) ==\n%s",
                      r.metric.c_str(), r.predicted, r.measured, r.error_pct, r.explain.c_str());
        }
      }
    int rc = vjson_out.empty() ? 0 : write_report(vjson_out, trainsim::validate_json(rows.value(), summary).dump(2) + "\n");
    if (rc == 0 && !vcsv_out.empty()) rc = write_report(vcsv_out, trainsim::validate_csv(rows.value()));
    if (rc == 0 && !vhtml_out.empty())
      rc = write_report(vhtml_out, trainsim::validate_html(rows.value(), summary, runs_path, costs, TRAINSIM_VERSION));
    if (rc == 0 && !val_scenarios.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(val_scenarios, ec);
      if (ec)
        return fail(Status::error(trainsim::Error{"--scenarios", "", val_scenarios, "cannot create the directory: " + ec.message()}),
                    1);
      auto raw = trainsim::read_run_rows(runs_path);
      if (!raw.ok()) return fail(raw.status(), 2);
      size_t written = 0, other = 0;
      for (const auto& row : raw.value()) {
        auto rs = trainsim::scenario_from_row(row.raw, std::filesystem::path(runs_path).parent_path().string());
        if (!rs.ok() || rs->document.is_null()) {
          ++other;
          continue;
        }
        nlohmann::json doc = rs->document;
        std::string desc = "Published run " + row.id;
        if (row.raw.contains("source") && row.raw["source"].is_string()) desc += " (" + row.raw["source"].get<std::string>() + ")";
        desc += ", as `trainsim validate` replays it.";
        if (!rs->defaults.empty()) {
          desc += " Defaults applied:";
          for (const auto& d : rs->defaults) desc += " " + d + ";";
          desc.pop_back();
          desc += ".";
        }
        doc["description"] = desc;
        std::string name = row.id;
        for (char& ch : name)
          if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.')) ch = '_';
        const std::string file = (std::filesystem::path(val_scenarios) / (name + ".json")).string();
        if (Status st = trainsim::write_text_file(file, doc.dump(2) + "\n"); !st.ok()) return fail(st, 1);
        ++written;
      }
      std::printf("wrote %zu scenario file(s) to %s", written, val_scenarios.c_str());
      if (other) std::printf(" (%zu row(s) did not become one: a scenario row names its file, or the row is unsupported)", other);
      std::printf("\n");
    }
    return rc;
  }
  return 0;
}
