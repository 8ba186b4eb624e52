#include "calibrate/host_calibrate.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "calibrate/host_executor.h"
#include "calibrate/host_mpi.h"
#include "calibrate/host_kernels.h"
#include "calibrate/jobs.h"
#include "topologies/placement.h"

namespace trainsim {

namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) {
        std::string m = line.substr(p + 1);
        m.erase(0, m.find_first_not_of(' '));
        return m;
      }
    }
  return "unknown CPU";
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return b;
}

}  // namespace

std::string host_device_name() { return "host-cpu " + cpu_model() + " (trainsim host executor, threads)"; }

std::string host_name() {
  char b[256] = {0};
  if (gethostname(b, sizeof b - 1) != 0) return "";
  return b;
}

namespace {

const char kSourcePrefix[] = "trainsim calibrate --host (";

}  // namespace

std::string collective_mechanism(const std::string& source) {
  const std::string pre = kSourcePrefix;
  if (source.rfind(pre, 0) != 0) return source;
  std::string inner = source.substr(pre.size());
  if (!inner.empty() && inner.back() == ')') inner.pop_back();
  const std::string mpi = "MPI processes, ";
  if (inner.rfind(mpi, 0) == 0) return "MPI processes (" + inner.substr(mpi.size()) + ")";
  if (inner.rfind("shared-memory threads", 0) == 0) return "shared-memory threads";
  return inner;
}

std::string describe_collective_mechanisms(const std::vector<std::string>& sources) {
  std::vector<std::pair<std::string, int>> seen;   // in order of first appearance
  for (const auto& src : sources) {
    const std::string m = collective_mechanism(src);
    auto it = std::find_if(seen.begin(), seen.end(), [&](const auto& p) { return p.first == m; });
    if (it == seen.end()) seen.emplace_back(m, 1);
    else ++it->second;
  }
  if (seen.empty()) return "none measured";
  if (seen.size() == 1) return seen.front().first;
  std::string out;
  for (const auto& [m, n] : seen)
    out += (out.empty() ? "" : ", ") + m + ": " + std::to_string(n) + (n == 1 ? " point" : " points");
  return out;
}

Result<std::vector<std::string>> measure_host_plan(const Plan& plan, int gpus_per_node,
                                                   const HostCalibrateOptions& opts) {
  using Clock = std::chrono::steady_clock;
  if (opts.backend != "threads" && opts.backend != "mpi")
    return Status::error(Error{"", "--backend", opts.backend, "accepted: threads, mpi"});
  const bool mpi = opts.backend == "mpi";
  if (mpi && !host_mpi_built()) return host_mpi_init();   // the "built without MPI" error
  if (mpi && !host_mpi_initialized())
    return Status::error(Error{"", "--backend", "mpi",
                               "timing collectives with MPI needs MPI to be initialized (run under mpirun / mpiexec)"});
  const int world = mpi ? host_mpi_size() : 1;
  const bool lead = !mpi || host_mpi_rank() == 0;   // times the kernels and writes the lines
  set_flush_denormals();
  nlohmann::ordered_json dev;
  dev["name"] = host_device_name();
  dev["driver"] = "";
  dev["cuda"] = "";
  dev["nccl"] = "";
  dev["cudnn"] = "";
  dev["host"] = host_name();
  dev["date"] = utc_now();
  dev["gpus"] = plan.num_ranks;
  std::vector<GroupShape> shapes;
  for (const auto& g : plan.groups) shapes.push_back(worst_shape(g, gpus_per_node));

  // The distinct points in plan order; the kernels are timed as they come (on the lead process).
  struct CollPointJob {
    nlohmann::ordered_json job;
    const OpDesc* op;
    int size;
    bool by_mpi;
    double seconds = 0;
  };
  std::vector<std::string> ops;
  std::vector<CollPointJob> colls;
  std::set<std::string> seen;
  Status kernel_error;
  for (const OpDesc& op : plan.ops) {
    if (op.cls == OpClass::kCollective || op.cls == OpClass::kP2p) {
      const GroupShape sh = op.cls == OpClass::kP2p ? GroupShape{2, std::min(2, gpus_per_node), gpus_per_node >= 2 ? 1 : 2}
                                                    : shapes[op.group];
      nlohmann::ordered_json j = job_for_op(op, sh.size);
      if (j.is_null()) continue;
      const int size = j["group_size"].get<int>();
      const int per_node = std::min(size, op.coll == CollKind::kSendRecv || op.cls == OpClass::kP2p ? std::max(1, std::min(2, sh.per_node)) : sh.per_node);
      j["per_node"] = per_node;
      j["nodes"] = (size + per_node - 1) / per_node;
      if (!seen.insert(j.dump()).second) continue;
      colls.push_back({std::move(j), &op, size, mpi && size <= world});
      continue;
    }
    nlohmann::ordered_json j = job_for_op(op, 1);
    if (j.is_null()) continue;
    if (!seen.insert(j.dump()).second) continue;
    if (!lead || !kernel_error.ok()) continue;
    auto k = make_host_kernel(op, opts.max_bytes);
    if (!k.ok()) {
      kernel_error = k.status();
      continue;
    }
    std::vector<double> t;
    for (int i = 0; i < opts.warmup + opts.runs; ++i) {
      auto a = Clock::now();
      k.value()->run();
      auto b = Clock::now();
      if (i >= opts.warmup) t.push_back(std::chrono::duration<double>(b - a).count());
    }
    std::sort(t.begin(), t.end());
    const double med = t.size() % 2 ? t[t.size() / 2] : 0.5 * (t[t.size() / 2 - 1] + t[t.size() / 2]);
    nlohmann::ordered_json line;
    line["kind"] = "op";
    line["device"] = dev;
    line["op"] = j;
    line["time_us"] = std::max(med, 1e-9) * 1e6;
    line["min_us"] = t.front() * 1e6;
    line["runs"] = opts.runs;
    line["source"] = std::string(kSourcePrefix) + "Eigen/CPU kernels, float)";
    ops.push_back(line.dump());
  }
  // The other processes slept through the kernels; a failure there ends every process's part.
  if (mpi && !host_mpi_all(kernel_error.ok()) && kernel_error.ok())
    return Status::error("calibrate --host (mpi): rank 0 could not set up a kernel (it printed why)");
  if (!kernel_error.ok()) return kernel_error;

  // Collectives: first those every process times together over MPI, then (lead only, the others
  // sleeping) those timed with threads.
  for (CollPointJob& c : colls) {
    if (!c.by_mpi) continue;
    const int64_t el = comm_elements(*c.op);
    auto t = c.op->cls == OpClass::kP2p ? time_mpi_send(el, opts.warmup, opts.runs)
                                        : time_mpi_collective(c.op->coll, el, c.size, opts.warmup, opts.runs);
    if (!t.ok()) return t.status();   // argument errors: the same on every process
    c.seconds = t.value();
  }
  if (lead)
    for (CollPointJob& c : colls) {
      if (c.by_mpi) continue;
      const int64_t el = comm_elements(*c.op);
      c.seconds = c.op->cls == OpClass::kP2p ? time_host_send(el, opts.warmup, opts.runs)
                                             : time_host_collective(c.op->coll, el, c.size, opts.warmup, opts.runs);
    }
  if (mpi) host_mpi_wait_all();
  if (!lead) return std::vector<std::string>{};

  const std::string mpi_source = mpi ? std::string(kSourcePrefix) + "MPI processes, " + host_mpi_library() + ")" : "";
  for (const CollPointJob& c : colls) {
    const double t = std::max(c.seconds, 1e-9);
    nlohmann::ordered_json line;
    line["kind"] = "collective";
    line["device"] = dev;
    line["coll"] = c.job;
    line["time_us"] = t * 1e6;
    line["algbw_GBps"] = static_cast<double>(c.op->bytes.count()) / t * 1e-9;
    line["busbw_GBps"] = static_cast<double>(c.op->bytes.count()) / t * 1e-9;
    line["runs"] = opts.runs;
    if (c.by_mpi)
      line["source"] = mpi_source;
    else if (mpi)   // a group larger than the MPI job: threads, and the source says why
      line["source"] = std::string(kSourcePrefix) + "shared-memory threads, float buffers; a group of " +
                       std::to_string(c.size) + " is larger than this MPI job of " + std::to_string(world) +
                       (world == 1 ? " process)" : " processes)");
    else
      line["source"] = std::string(kSourcePrefix) + "shared-memory threads, float buffers)";
    ops.push_back(line.dump());
  }
  return ops;
}

}  // namespace trainsim
