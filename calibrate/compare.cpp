#include "calibrate/compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>

#include "calibrate/calibrated_cost_model.h"
#include "calibrate/cost_model.h"
#include "calibrate/db.h"
#include "calibrate/fit.h"
#include "models/spec.h"
#include "sim/collectives.h"
#include "topologies/hardware.h"

namespace trainsim {

namespace {

struct Acc {
  std::vector<double> ratio, rate;
  std::string unit;
};

std::string decade(double flops) {
  const int e = static_cast<int>(std::floor(std::log10(flops)));
  char b[48];
  std::snprintf(b, sizeof b, "1e%d..1e%d FLOP", e, e + 1);
  return b;
}

}  // namespace

Result<CompareReport> compare_with_default(const std::string& db_path, const std::string& gpu_name) {
  auto gpu = find_gpu(gpu_name);
  if (!gpu.ok()) return gpu.status();
  auto db = CalibrationDb::open(db_path, /*create=*/false);
  if (!db.ok()) return db.status();
  auto devs = db.value()->devices();
  if (!devs.ok()) return devs.status();
  const std::vector<int> picked = pick_devices(devs.value(), gpu->name);
  if (picked.empty()) {
    std::string have;
    for (const auto& d : devs.value()) have += (have.empty() ? "\"" : ", \"") + d.name + "\"";
    return Status::error(Error{db_path, "", gpu_name,
                               "the calibration database has no measurements of this GPU; it has " +
                                   (have.empty() ? std::string("no devices") : have)});
  }
  ClusterSpec cluster;
  cluster.gpu = gpu.value();
  cluster.gpus = cluster.gpus_per_node = gpu->gpus_per_node;
  cluster.nic_bandwidth = gpu->nic_bandwidth;
  cluster.nvlink_bandwidth = gpu->nvlink_bandwidth;
  cluster.pcie_bandwidth = gpu->pcie_bandwidth;
  auto eff = default_efficiencies(gpu_family(cluster.gpu));
  if (!eff.ok()) return eff.status();
  const DefaultCostModel def(cluster, std::move(eff).value());

  CompareReport r;
  r.db_path = db_path;
  r.gpu = gpu->name;
  r.device = devs.value()[picked.front()].name;
  // (order, group, source) -> points; order keeps gemm < attention < memory-bound < collectives.
  std::map<std::tuple<int, int, std::string, std::string>, Acc> acc;
  for (int i : picked) {
    auto ops = db.value()->op_points(devs.value()[i].id);
    if (!ops.ok()) return ops.status();
    for (const auto& p : ops.value()) {
      OpDesc op;
      op.cls = p.cls;
      op.dtype = p.dtype;
      op.name = p.name;
      std::string group, unit;
      double work = 0;
      int order = 2, sub = 0;
      if (p.cls == OpClass::kGemm) {
        op.m = p.m, op.n = p.n, op.k = p.k, op.batch = p.batch;
        const double in = p.dtype == DType::kFP8 ? 1 : p.dtype == DType::kFP32 ? 4 : 2;
        const double out = p.dtype == DType::kFP32 ? 4 : 2;
        op.flops = Flops{2.0 * p.batch * static_cast<double>(p.m) * p.n * p.k};
        op.bytes = Bytes{static_cast<int64_t>(p.batch * ((p.m * p.k + p.k * p.n) * in + p.m * p.n * out))};
        work = op.flops.v;
        group = std::string("gemm ") + to_string(p.dtype) + " " + decade(work);
        sub = static_cast<int>(p.dtype) * 100 + static_cast<int>(std::floor(std::log10(work)));
        unit = "TFLOP/s";
        order = 0;
      } else if (p.cls == OpClass::kAttention) {
        op.attn_batch = p.batch, op.heads = p.heads, op.kv_heads = p.kv_heads;
        op.seq_q = p.seq_q, op.seq_kv = p.seq_kv, op.head_dim = p.head_dim;
        op.causal = p.causal, op.backward = p.backward;
        const double f = 4.0 * p.batch * static_cast<double>(p.seq_q) * p.seq_kv * p.heads * p.head_dim;
        op.flops = Flops{p.backward ? 2 * f : f};
        work = op.flops.v * (p.causal ? 0.5 : 1.0);   // the pairs a causal kernel computes
        group = std::string("attention ") + (p.backward ? "backward" : "forward") + (p.causal ? " causal" : "");
        unit = "TFLOP/s";
        order = 1;
      } else {
        op.bytes = Bytes{p.bytes};
        work = static_cast<double>(p.bytes);
        group = std::string(to_string(p.cls));
        unit = "GB/s";
      }
      const double t_def = def.compute(op).time.seconds();
      const double t = p.time_us * 1e-6;
      if (t_def <= 0 || t <= 0) continue;
      Acc& a = acc[{order, sub, group, p.source}];
      a.ratio.push_back(t / t_def);
      a.rate.push_back(work / t / (unit == "TFLOP/s" ? 1e12 : 1e9));
      a.unit = unit;
      ++r.op_points;
    }
    auto colls = db.value()->coll_points(devs.value()[i].id);
    if (!colls.ok()) return colls.status();
    for (const auto& c : colls.value()) {
      OpDesc op;
      op.coll = c.send_recv ? CollKind::kSendRecv : c.kind;
      op.bytes = Bytes{c.bytes};
      const GroupShape shape{c.group_size, std::max(1, c.per_node), std::max(1, c.nodes)};
      const double t_def = c.send_recv ? def.p2p(op, shape.nodes == 1).time.seconds()
                                       : def.collective(op, shape).time.seconds();
      const double t = c.time_us * 1e-6;
      if (t_def <= 0 || t <= 0) continue;
      const std::string group = std::string(c.send_recv ? "send-recv" : to_string(c.kind)) + " " +
                                std::to_string(c.group_size) + " GPUs " +
                                (shape.nodes > 1 ? "over " + std::to_string(shape.nodes) + " nodes" : "in a node");
      Acc& a = acc[{3, static_cast<int>(c.send_recv ? 99 : static_cast<int>(c.kind)) * 10000 + c.group_size * 10 +
                                   (shape.nodes > 1), group, c.source}];
      a.ratio.push_back(t / t_def);
      a.rate.push_back(c.busbw_GBps);
      a.unit = "GB/s bus";
      ++r.coll_points;
    }
  }
  for (auto& [key, a] : acc) {
    CompareGroup g;
    g.group = std::get<2>(key);
    g.source = std::get<3>(key);
    g.points = static_cast<int>(a.ratio.size());
    g.median_ratio = median(a.ratio);
    g.min_ratio = *std::min_element(a.ratio.begin(), a.ratio.end());
    g.max_ratio = *std::max_element(a.ratio.begin(), a.ratio.end());
    g.median_rate = median(a.rate);
    g.rate_unit = a.unit;
    r.groups.push_back(std::move(g));
  }
  return r;
}

std::string format_compare(const CompareReport& r) {
  std::string s = "measured " + r.device + " (" + r.db_path + ") against the embedded default for " + r.gpu + ": " +
                  std::to_string(r.op_points) + " op and " + std::to_string(r.coll_points) +
                  " collective points\nratio = measured time / default time (> 1: slower than the default predicts)\n\n";
  char b[512];
  std::snprintf(b, sizeof b, "%-34s %6s %8s %15s %14s  %s\n", "group", "points", "ratio", "ratio min..max",
                "median rate", "source");
  s += b;
  for (const auto& g : r.groups) {
    char range[40], rate[40];
    std::snprintf(range, sizeof range, "%.2f..%.2f", g.min_ratio, g.max_ratio);
    std::snprintf(rate, sizeof rate, "%.0f %s", g.median_rate, g.rate_unit.c_str());
    std::snprintf(b, sizeof b, "%-34s %6d %8.2f %15s %14s  %s\n", g.group.c_str(), g.points, g.median_ratio, range,
                  rate, g.source.c_str());
    s += b;
  }
  if (r.coll_points == 0) s += "(no collective points: nothing to compare with the default bus bandwidths)\n";
  return s;
}

nlohmann::json compare_json(const CompareReport& r) {
  nlohmann::json j;
  j["db"] = r.db_path;
  j["gpu"] = r.gpu;
  j["device"] = r.device;
  j["op_points"] = r.op_points;
  j["collective_points"] = r.coll_points;
  j["groups"] = nlohmann::json::array();
  for (const auto& g : r.groups)
    j["groups"].push_back({{"group", g.group}, {"source", g.source}, {"points", g.points},
                           {"median_ratio", g.median_ratio}, {"min_ratio", g.min_ratio}, {"max_ratio", g.max_ratio},
                           {"median_rate", g.median_rate}, {"rate_unit", g.rate_unit}});
  return j;
}

}  // namespace trainsim
