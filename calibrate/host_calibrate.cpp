#include "calibrate/host_calibrate.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "calibrate/host_executor.h"
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

Result<std::vector<std::string>> measure_host_plan(const Plan& plan, int gpus_per_node,
                                                   const HostCalibrateOptions& opts) {
  using Clock = std::chrono::steady_clock;
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

  std::vector<std::string> ops, colls;
  std::set<std::string> seen;
  for (const OpDesc& op : plan.ops) {
    nlohmann::ordered_json line;
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
      const int64_t el = comm_elements(op);
      double t;
      if (op.cls == OpClass::kP2p) t = time_host_send(el, opts.warmup, opts.runs);
      else t = time_host_collective(op.coll, el, size, opts.warmup, opts.runs);
      t = std::max(t, 1e-9);
      line["kind"] = "collective";
      line["device"] = dev;
      line["coll"] = j;
      line["time_us"] = t * 1e6;
      line["algbw_GBps"] = static_cast<double>(op.bytes.count()) / t * 1e-9;
      line["busbw_GBps"] = static_cast<double>(op.bytes.count()) / t * 1e-9;
      line["runs"] = opts.runs;
      line["source"] = "trainsim calibrate --host (shared-memory threads, float buffers)";
      colls.push_back(line.dump());
      continue;
    }
    nlohmann::ordered_json j = job_for_op(op, 1);
    if (j.is_null()) continue;
    if (!seen.insert(j.dump()).second) continue;
    auto k = make_host_kernel(op, opts.max_bytes);
    if (!k.ok()) return k.status();
    std::vector<double> t;
    for (int i = 0; i < opts.warmup + opts.runs; ++i) {
      auto a = Clock::now();
      k.value()->run();
      auto b = Clock::now();
      if (i >= opts.warmup) t.push_back(std::chrono::duration<double>(b - a).count());
    }
    std::sort(t.begin(), t.end());
    const double med = t.size() % 2 ? t[t.size() / 2] : 0.5 * (t[t.size() / 2 - 1] + t[t.size() / 2]);
    line["kind"] = "op";
    line["device"] = dev;
    line["op"] = j;
    line["time_us"] = std::max(med, 1e-9) * 1e6;
    line["min_us"] = t.front() * 1e6;
    line["runs"] = opts.runs;
    line["source"] = "trainsim calibrate --host (Eigen/CPU kernels, float)";
    ops.push_back(line.dump());
  }
  ops.insert(ops.end(), colls.begin(), colls.end());
  return ops;
}

}  // namespace trainsim
