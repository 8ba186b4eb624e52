// trainsim_bench: how fast and how lean the prediction pipeline is (STYLE.md 7: performance is
// measured by a program that prints a table, not by a timed unit test).
//
// For every scenario file (default: every scenarios/*.json), it runs predict() in full mode and
// in fast mode and prints one row per (scenario, mode):
//   GPUs, simulated ranks, events, wall seconds around predict() (std::chrono::steady_clock,
//   the whole pipeline: compile, cost binding, replay, figures), events per second, peak RSS
//   (getrusage ru_maxrss) and the predicted step time.
// Each row runs in a fresh child process (this binary re-executed with --child), so the peak
// RSS of a row is that row's own and not the largest seen so far in one process; --in-process
// runs every row here instead (peak RSS is then the process peak so far, marked with '*').
//
// Flow rows (--mode flow or all): full mode with --set network.mode=flow (collectives and sends
// that cross nodes as flows on the max-min fabric model), adding the flows started, flows per
// second of wall time and the rate recomputations (max-min solves).
//
// The targets, checked at the end:
//   scenarios/llama3_405b_16k.json, full mode: <= 10 s wall on one core and <= 1 GiB peak RSS;
//   the same in flow mode: <= 60 s wall and <= 4 GiB peak RSS (issue 3);
//   fast mode: <= 10 ms per scenario.
//
// Usage: trainsim_bench [--scenarios DIR] [--only NAME]... [--mode full|fast|flow|both|all]
//                       [--repeat N] [--in-process] [FILE.json ...]
//        trainsim_bench --flow [CASE]     the max-min flow solver (sim/flow_bench.h)
//        trainsim_bench --topology        fabric graph builds of the large builtins
//   DIR defaults to "scenarios" (run from the source root, or pass the path); NAME matches the
//   file stem ("llama3_405b_16k") or the scenario name ("llama3-405b-16k"); --repeat N runs
//   each row N times and reports the fastest (default 1 for full mode; fast mode rows are
//   always run at least 5 times, their wall time being in the milliseconds).
// Single-threaded: predict() uses one core.
//
// Memory: main() tells glibc to keep freed memory in the process (a fixed mmap threshold of
// 32 MiB, no trimming below 1 GiB), so that a repeat reuses the pages the previous one freed.
// By default glibc returns large blocks to the kernel and moves its mmap threshold with what was
// last freed, and whether a repeat found its few MiB of task arrays mapped or had to fault them
// in again (~3 us per 4 KiB page on the benchmark VM, even after MADV_POPULATE_WRITE) depended
// on the sizes freed before it: GPT-3 fast mode took 17 or 30 ms from one build to the next.
// Repeats thus measure the steady state; a cold `trainsim run` still pays those faults once.
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "scenarios/loader.h"
#include "scenarios/predict.h"
#include "sim/flow_bench.h"
#include "topologies/topology_file.h"

namespace {

namespace fs = std::filesystem;

struct Row {
  std::string file, name, mode;
  bool ok = false;
  std::string error;
  int gpus = 0, simulated = 0;
  unsigned long long events = 0;
  double wall_s = 0;          // fastest of the repeats
  double rss_mib = 0;         // peak RSS of the process that ran it
  double step_s = 0;
  int repeats = 0;
  unsigned long long flows = 0, solves = 0;   // flow mode
};

double peak_rss_mib() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux: KiB
}

// Runs one (scenario, mode) in this process. mode: "full", "fast" or "flow".
Row run_one(const std::string& file, const std::string& mode, int repeats) {
  Row row;
  row.file = file;
  row.mode = mode;
  const bool fast = mode == "fast";
  std::vector<std::string> ov;
  if (mode == "flow") ov.push_back("network.mode=flow");
  auto sc = trainsim::load_scenario_file(file, ov);
  if (!sc.ok()) {
    row.error = sc.status().to_string();
    return row;
  }
  row.name = sc.value().name;
  trainsim::PredictOptions po;
  po.fast = fast;
  const int n = std::max(repeats, fast ? 5 : 1);
  double best = 1e300;
  for (int i = 0; i < n; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto pr = trainsim::predict(sc.value(), po);
    const auto t1 = std::chrono::steady_clock::now();
    if (!pr.ok()) {
      row.error = pr.status().to_string();
      return row;
    }
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
    const trainsim::Prediction& p = pr.value();
    row.gpus = p.gpus;
    row.simulated = p.simulated_ranks;
    row.events = p.events;
    row.step_s = p.step_time.seconds();
    row.flows = p.network.flows_started;
    row.solves = p.network.rate_recomputations;
  }
  row.wall_s = best;
  row.repeats = n;
  row.rss_mib = peak_rss_mib();
  row.ok = true;
  return row;
}

// One line, tab-separated, for the parent: ok name gpus sim events wall rss step repeats | error.
std::string encode(const Row& r) {
  char buf[512];
  if (!r.ok) {
    std::string e = r.error;
    std::replace(e.begin(), e.end(), '\n', ' ');
    return "ERR\t" + e + "\n";
  }
  std::snprintf(buf, sizeof buf, "OK\t%s\t%d\t%d\t%llu\t%.9f\t%.3f\t%.9f\t%d\t%llu\t%llu\n", r.name.c_str(),
                r.gpus, r.simulated, r.events, r.wall_s, r.rss_mib, r.step_s, r.repeats, r.flows, r.solves);
  return buf;
}

Row decode(const std::string& file, const std::string& mode, const std::string& line, int status) {
  Row r;
  r.file = file;
  r.mode = mode;
  if (line.rfind("OK\t", 0) == 0) {
    char name[256] = {0};
    if (std::sscanf(line.c_str(), "OK\t%255[^\t]\t%d\t%d\t%llu\t%lf\t%lf\t%lf\t%d\t%llu\t%llu", name, &r.gpus,
                    &r.simulated, &r.events, &r.wall_s, &r.rss_mib, &r.step_s, &r.repeats, &r.flows,
                    &r.solves) == 10) {
      r.name = name;
      r.ok = true;
      return r;
    }
  }
  if (line.rfind("ERR\t", 0) == 0) {
    r.error = line.substr(4);
  } else {
    r.error = "child process failed (wait status " + std::to_string(status) + ")";
  }
  return r;
}

// Runs one (scenario, mode) in a fresh process: this binary with --child.
Row run_isolated(const char* self, const std::string& file, const std::string& mode, int repeats) {
  int fds[2];
  if (pipe(fds) != 0) return run_one(file, mode, repeats);
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    const std::string rep = std::to_string(repeats);
    execl(self, self, "--child", file.c_str(), mode.c_str(), rep.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t k;
  while ((k = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(k));
  close(fds[0]);
  int status = 0;
  if (pid > 0) waitpid(pid, &status, 0);
  return decode(file, mode, out, status);
}

std::string stem_of(const std::string& file) { return fs::path(file).stem().string(); }

void usage() {
  std::fprintf(stderr,
               "usage: trainsim_bench [--scenarios DIR] [--only NAME]... [--mode full|fast|flow|both|all]\n"
               "                      [--repeat N] [--in-process] [FILE.json ...]\n");
}

}  // namespace

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);   // see the file comment (Memory)
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  if (argc == 5 && std::strcmp(argv[1], "--child") == 0) {
    const Row r = run_one(argv[2], argv[3], std::atoi(argv[4]));
    std::fputs(encode(r).c_str(), stdout);
    return r.ok ? 0 : 1;
  }

  if (argc >= 2 && std::strcmp(argv[1], "--flow") == 0) {   // the flow-level network solver
    trainsim::flow_benchmark(stdout, argc >= 3 ? argv[2] : "");
    return 0;
  }
  if (argc >= 2 && std::strcmp(argv[1], "--topology") == 0) {   // fabric graph builds
    for (const char* name : {"dgx-h100", "megascale-12k", "llama3-24k"}) {
      const auto t0 = std::chrono::steady_clock::now();
      auto g = trainsim::load_topology(name);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!g.ok()) return 1;
      std::printf("%-16s %8d GPUs %8d links  build %.3f s  peak %.1f MiB (process)\n", name, g->summary().gpus,
                  g->summary().links, s, peak_rss_mib());
    }
    return 0;
  }
  std::string dir = "scenarios", mode = "both";
  std::vector<std::string> only, files;
  int repeats = 1;
  bool isolate = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "error: %s needs a value\n", a.c_str());
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--scenarios") dir = next();
    else if (a == "--only") only.push_back(next());
    else if (a == "--mode") mode = next();
    else if (a == "--repeat") repeats = std::max(1, std::atoi(next()));
    else if (a == "--in-process") isolate = false;
    else if (a == "-h" || a == "--help") {
      usage();
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "error: unknown option %s\n", a.c_str());
      usage();
      return 2;
    } else {
      files.push_back(a);
    }
  }
  if (mode != "full" && mode != "fast" && mode != "flow" && mode != "both" && mode != "all") {
    std::fprintf(stderr, "error: --mode = \"%s\"; write full, fast, flow, both (full and fast) or all\n",
                 mode.c_str());
    return 2;
  }
  if (files.empty()) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path().string());
    if (ec) {
      std::fprintf(stderr, "error: --scenarios %s: %s; run from the source root or pass --scenarios DIR\n",
                   dir.c_str(), ec.message().c_str());
      return 2;
    }
    std::sort(files.begin(), files.end());
  }

  const char* self = "/proc/self/exe";
  if (isolate && access(self, X_OK) != 0) isolate = false;
  std::vector<Row> rows;
  for (const std::string& f : files) {
    if (!only.empty()) {
      bool match = false;
      auto sc = trainsim::load_scenario_file(f);
      const std::string name = sc.ok() ? sc.value().name : "";
      for (const auto& o : only) match = match || o == stem_of(f) || o == name || o == f;
      if (!match) continue;
    }
    for (const char* m : {"full", "fast", "flow"}) {
      const std::string rm = m;
      const bool want = mode == "all" || mode == rm || (mode == "both" && rm != "flow");
      if (!want) continue;
      rows.push_back(isolate ? run_isolated(self, f, rm, repeats) : run_one(f, rm, repeats));
      const Row& r = rows.back();
      if (!r.ok) std::fprintf(stderr, "%s (%s): %s\n", f.c_str(), r.mode.c_str(), r.error.c_str());
    }
  }
  if (rows.empty()) {
    std::fprintf(stderr, "error: no scenario matched\n");
    return 2;
  }

  std::printf("%-20s %-4s %7s %7s %11s %10s %9s %10s %10s\n", "scenario", "mode", "GPUs", "ranks", "events",
              "wall s", "Mev/s", "peak MiB", "step s");
  int failed = 0;
  for (const Row& r : rows) {
    const std::string label = stem_of(r.file);
    if (!r.ok) {
      std::printf("%-20s %-4s  FAILED\n", label.c_str(), r.mode.c_str());
      ++failed;
      continue;
    }
    const double evs = r.wall_s > 0 ? static_cast<double>(r.events) / r.wall_s / 1e6 : 0;
    std::printf("%-20s %-4s %7d %7d %11llu %10.4f %9.2f %9.1f%s %10.4f\n", label.c_str(), r.mode.c_str(), r.gpus,
                r.simulated, r.events, r.wall_s, evs, r.rss_mib, isolate ? " " : "*", r.step_s);
  }
  bool any_flow = false;
  for (const Row& r : rows) any_flow = any_flow || (r.ok && r.mode == "flow");
  if (any_flow) {
    std::printf("\nflow mode (network.mode=flow)\n%-20s %12s %10s %12s %14s\n", "scenario", "flows", "wall s",
                "flows/s", "rate recomp.");
    for (const Row& r : rows)
      if (r.ok && r.mode == "flow")
        std::printf("%-20s %12llu %10.4f %12.0f %14llu\n", stem_of(r.file).c_str(), r.flows, r.wall_s,
                    r.wall_s > 0 ? static_cast<double>(r.flows) / r.wall_s : 0.0, r.solves);
  }
  std::printf("wall: steady_clock around predict() (compile + cost binding + replay + figures), fastest of\n"
              "      the repeats (fast mode: at least 5). peak: getrusage ru_maxrss of %s.\n",
              isolate ? "a fresh process per row" : "this process so far (*: includes earlier rows)");

  // The targets.
  std::printf("\ntargets\n");
  for (const Row& r : rows) {
    if (!r.ok) continue;
    if (r.mode == "full" && stem_of(r.file) == "llama3_405b_16k") {
      const bool t_ok = r.wall_s <= 10.0, m_ok = r.rss_mib <= 1024.0;
      std::printf("  llama3_405b_16k full: %.2f s wall (<= 10 s: %s), %.1f MiB peak (<= 1024 MiB: %s)\n", r.wall_s,
                  t_ok ? "ok" : "MISSED", r.rss_mib, m_ok ? "ok" : "MISSED");
    }
    if (r.mode == "flow" && stem_of(r.file) == "llama3_405b_16k") {
      const bool t_ok = r.wall_s <= 60.0, m_ok = r.rss_mib <= 4096.0;
      std::printf("  llama3_405b_16k flow: %.2f s wall (<= 60 s: %s), %.1f MiB peak (<= 4096 MiB: %s)\n", r.wall_s,
                  t_ok ? "ok" : "MISSED", r.rss_mib, m_ok ? "ok" : "MISSED");
    }
  }
  double worst_fast = -1;
  std::string worst_name;
  for (const Row& r : rows)
    if (r.ok && r.mode == "fast" && r.wall_s > worst_fast) {
      worst_fast = r.wall_s;
      worst_name = stem_of(r.file);
    }
  if (worst_fast >= 0)
    std::printf("  fast mode, slowest scenario: %s %.3f ms (<= 10 ms: %s)\n", worst_name.c_str(), worst_fast * 1e3,
                worst_fast <= 0.010 ? "ok" : "MISSED");
  return failed ? 1 : 0;
}
