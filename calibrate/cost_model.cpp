#include "calibrate/cost_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "calibrate/fit.h"
#include "sim/embedded.h"
#include "topologies/placement.h"

namespace trainsim {

std::string gpu_family(const GpuSpec& gpu) {
  return gpu.family.empty() ? gpu_family_of_name(gpu.name) : gpu.family;
}

Result<DefaultEfficiencies> default_efficiencies(const std::string& family) {
  nlohmann::json j = nlohmann::json::parse(embedded::calibrate_defaults(), nullptr, false);
  if (j.is_discarded()) return Status::error("embedded calibrate/data/defaults.json does not parse");
  if (!j["families"].contains(family))
    return Status::error("calibrate/data/defaults.json: no default efficiencies for GPU family '" + family + "'");
  const auto& f = j["families"][family];
  const auto& c = j["common"];
  DefaultEfficiencies e;
  e.family = family;
  e.gemm = f.at("gemm_efficiency").get<double>();
  e.gemm_fp8 = f.value("gemm_fp8_efficiency", e.gemm);
  e.attention = f.at("attention_efficiency").get<double>();
  e.attention_cudnn = f.value("attention_cudnn_efficiency", 0.0);
  e.attention_cudnn_backward_ratio = f.value("attention_cudnn_backward_efficiency_ratio", 0.0);
  auto pair = [&](const char* key, double* fwd, double* bwd) -> Status {
    if (!f.contains(key)) return Status();
    const auto& v = f[key];
    if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number() || v[0].get<double>() < 0 ||
        v[1].get<double>() < 0)
      return Status::error("calibrate/data/defaults.json: family " + family + ": " + key +
                           " must be [forward, backward], two numbers >= 0");
    *fwd = v[0].get<double>();
    *bwd = v[1].get<double>();
    return Status();
  };
  if (Status st = pair("attention_block_overhead", &e.attention_overhead_fwd, &e.attention_overhead_bwd); !st.ok()) return st;
  if (Status st = pair("attention_cudnn_block_overhead", &e.attention_cudnn_overhead_fwd, &e.attention_cudnn_overhead_bwd);
      !st.ok())
    return st;
  if (Status st = pair("attention_head_dim_overhead", &e.attention_dim_overhead_fwd, &e.attention_dim_overhead_bwd);
      !st.ok())
    return st;
  if (Status st = pair("attention_cudnn_head_dim_overhead", &e.attention_cudnn_dim_overhead_fwd,
                       &e.attention_cudnn_dim_overhead_bwd);
      !st.ok())
    return st;
  e.hbm = f.at("hbm_efficiency").get<double>();
  e.nvlink_allreduce = f.value("nvlink_allreduce_busbw_fraction", 0.0);   // or fitted below
  e.nvlink = f.at("nvlink_busbw_fraction").get<double>();
  e.nic = f.at("nic_efficiency").get<double>();
  e.p2p = c.at("p2p_efficiency").get<double>();
  e.pcie = c.at("pcie_efficiency").get<double>();
  e.nvlink_alpha = Time::from_seconds(f.value("nvlink_alpha_us", 0.0) * 1e-6);
  e.nic_alpha = Time::from_seconds(f.at("nic_alpha_us").get<double>() * 1e-6);
  if (f.contains("nvlink_allreduce_fit")) {
    // The family's published nccl-tests curve, fitted here (see defaults.json for the source).
    const auto& fit = f["nvlink_allreduce_fit"];
    std::vector<std::pair<double, double>> pts;
    const double min_bytes = fit.at("min_bytes").get<double>();
    for (const auto& pt : fit.at("points"))
      if (pt.at(0).get<double>() >= min_bytes) pts.emplace_back(pt.at(0).get<double>(), pt.at(1).get<double>());
    auto r = fit_ring_allreduce(pts, fit.at("gpus").get<int>());
    if (!r.ok()) return Status::error("calibrate/data/defaults.json: family " + family + ": " + r.status().to_string());
    e.nvlink_allreduce = r->bus_bw.GBps_f() / fit.at("nvlink_GBps_per_direction").get<double>();
    e.nvlink_alpha = r->alpha;
    e.nvlink_fit_residual = r->rms_rel_residual;
  }
  if (!(e.nvlink_allreduce > 0))
    return Status::error("calibrate/data/defaults.json: family " + family +
                         " needs nvlink_allreduce_fit or nvlink_allreduce_busbw_fraction");
  e.memory_overhead = Time::from_seconds(c.at("memory_op_overhead_us").get<double>() * 1e-6);
  e.attention_backward_work = c.at("attention_backward_work").get<double>();
  e.attention_backward_ratio =
      f.value("attention_backward_efficiency_ratio", c.at("attention_backward_efficiency_ratio").get<double>());
  e.attention_block_tokens = c.at("attention_block_tokens").get<int>();
  for (const auto& pt : c.at("gemm_size_curve")) e.size_curve.emplace_back(pt.at(0).get<double>(), pt.at(1).get<double>());
  e.causal_work_fraction = c.at("causal_work_fraction").get<double>();
  e.power_exponent = c.at("power_exponent").get<double>();
  e.nccl_ctas = c.at("nccl_ctas").get<int>();
  e.pcie_duplex = c.at("pcie_duplex_factor").get<double>();
  e.attention_flash1_ratio = c.at("attention_flash1_ratio").get<double>();
  return e;
}

Status use_attention_kernel(AttentionKernel kernel, DefaultEfficiencies* eff) {
  if (kernel == AttentionKernel::kFlash1) {   // FlashAttention v1: the flash figures at its measured ratio
    eff->attention *= eff->attention_flash1_ratio;
    eff->attention_kernel = "FlashAttention v1 (FlashAttention-2's figure x" +
                            std::to_string(eff->attention_flash1_ratio).substr(0, 4) + ")";
    return Status();
  }
  if (kernel != AttentionKernel::kCudnn) return Status();
  if (!(eff->attention_cudnn > 0) || !(eff->attention_cudnn_backward_ratio > 0))
    return Status::error(Error{"", "/training/attention_kernel", "\"cudnn\"",
                               "the embedded default has a cuDNN fused attention figure for hopper GPUs only (measured "
                               "on an H100); this GPU is of the " + eff->family + " family: use \"flash\", or price attention from "
                               "a calibration database that measured it"});
  eff->attention = eff->attention_cudnn;
  eff->attention_backward_ratio = eff->attention_cudnn_backward_ratio;
  eff->attention_overhead_fwd = eff->attention_cudnn_overhead_fwd;
  eff->attention_overhead_bwd = eff->attention_cudnn_overhead_bwd;
  eff->attention_dim_overhead_fwd = eff->attention_cudnn_dim_overhead_fwd;
  eff->attention_dim_overhead_bwd = eff->attention_cudnn_dim_overhead_bwd;
  eff->attention_kernel = "cuDNN fused attention (measured on H100, calibrate/data/h100)";
  return Status();
}

double DefaultEfficiencies::attention_ramp(int64_t seq_kv, bool causal, bool backward) const {
  const double c = backward ? attention_overhead_bwd : attention_overhead_fwd;
  if (!(c > 0) || attention_block_tokens <= 0 || seq_kv <= 0) return 1.0;   // no ramp, or no shape to count
  const double n = static_cast<double>(std::max<int64_t>(1, (seq_kv + attention_block_tokens - 1) / attention_block_tokens));
  return causal ? n / (n + 1.0 + 2.0 * c) : n / (n + c);
}

double DefaultEfficiencies::attention_head_dim_factor(int64_t head_dim, bool backward) const {
  const double k = backward ? attention_dim_overhead_bwd : attention_dim_overhead_fwd;
  constexpr double kRef = 128;   // the head dimension the plateau was fitted on
  if (!(k > 0) || head_dim <= 0 || head_dim >= kRef) return 1.0;
  const double d = static_cast<double>(head_dim);
  return (d / (d + k)) / (kRef / (kRef + k));
}

double DefaultEfficiencies::size_factor(Time ideal) const {
  if (size_curve.empty()) return 1.0;
  const double us = std::max(ideal.us_f(), 1e-3);
  if (us <= size_curve.front().first) return size_curve.front().second;
  if (us >= size_curve.back().first) return size_curve.back().second;
  for (size_t i = 1; i < size_curve.size(); ++i) {
    if (us <= size_curve[i].first) {
      const auto [x0, y0] = size_curve[i - 1];
      const auto [x1, y1] = size_curve[i];
      const double f = (std::log(us) - std::log(x0)) / (std::log(x1) - std::log(x0));
      return y0 + f * (y1 - y0);
    }
  }
  return size_curve.back().second;
}

int InNetworkReduction::tiers(int nodes) const {
  if (!enabled || nodes <= 1) return 0;
  if (nodes <= leaf_nodes) return 1;
  if (nodes <= pod_nodes || fabric_tiers <= 2) return std::min(2, fabric_tiers);
  return 3;
}

DefaultCostModel::DefaultCostModel(const ClusterSpec& cluster, DefaultEfficiencies eff)
    : cluster_(cluster), eff_(std::move(eff)) {
  if (cluster_.pcie_bandwidth.Bps() <= 0) cluster_.pcie_bandwidth = cluster_.gpu.pcie_bandwidth;
  const GpuSpec& g = cluster_.gpu;
  if (g.tdp_w > 0 && g.power_limit_w > 0 && g.power_limit_w < g.tdp_w)
    power_ = std::pow(g.power_limit_w / g.tdp_w, eff_.power_exponent);
}

OpCost DefaultCostModel::compute(const OpDesc& op) const {
  const GpuSpec& g = cluster_.gpu;
  OpCost c;
  switch (op.cls) {
    case OpClass::kGemm: {
      const bool fp8 = op.dtype == DType::kFP8 && g.peak_fp8.per_s() > 0;
      const FlopRate rate = (fp8 ? g.peak_fp8 : g.peak(op.dtype)) * ((fp8 ? eff_.gemm_fp8 : eff_.gemm) * power_);
      // Roofline: the slower of the tensor-core time and the HBM time of its operands.
      const Time ideal = compute_time(op.flops, rate);
      const Time tc = Time::from_seconds(ideal.seconds() / eff_.size_factor(ideal));
      const Time mem = transfer_time(op.bytes, g.hbm_bandwidth * eff_.hbm);
      c.time = max(tc, mem);
      break;
    }
    case OpClass::kAttention: {
      double work = op.flops.v * (op.causal ? eff_.causal_work_fraction : 1.0);
      double eff = eff_.attention * power_ * eff_.attention_ramp(op.seq_kv, op.causal, op.backward) *
                   eff_.attention_head_dim_factor(op.head_dim, op.backward);
      if (op.backward) {
        work *= eff_.attention_backward_work / 2.0;  // the FLOP convention counts 2x forward
        eff *= eff_.attention_backward_ratio;
      }
      const Time ideal = compute_time(Flops{work}, g.peak_bf16 * eff);
      c.time = Time::from_seconds(ideal.seconds() / eff_.size_factor(ideal));
      break;
    }
    case OpClass::kOffload:   // a host <-> device copy over the GPU's PCIe link
      c.time = transfer_time(op.bytes, cluster_.pcie_bandwidth * eff_.pcie) + eff_.memory_overhead;
      break;
    default:
      c.time = transfer_time(op.bytes, g.hbm_bandwidth * eff_.hbm) + eff_.memory_overhead;
      break;
  }
  return c;
}

LinkParams DefaultCostModel::links(CollKind kind) const {
  LinkParams l;
  const double nv = kind == CollKind::kAllReduce ? eff_.nvlink_allreduce : eff_.nvlink;
  l.intra_bw = cluster_.nvlink_bandwidth * nv;
  l.intra_alpha = eff_.nvlink_alpha;
  l.inter_bw = cluster_.nic_bandwidth * eff_.nic;
  l.inter_alpha = eff_.nic_alpha;
  return l;
}

OpCost DefaultCostModel::collective(const OpDesc& op, const GroupShape& shape) const {
  if (op.coll == CollKind::kSendRecv) {   // a ring shift: one message per member, as p2p
    if (shape.size <= 1) return OpCost{};
    return p2p(op, shape.nodes == 1);
  }
  OpCost c;
  LinkParams l = links(op.coll);
  if (op.coll == CollKind::kAllReduce) l.innet_tiers = innet_.tiers(shape.nodes);
  if (op.coll == CollKind::kAllToAll && op.dedup.fanout > 0) {   // DeepEP-style MoE dispatch/combine
    c.time = dedup_alltoall_time(op.bytes, shape, l, op.dedup);
    return c;
  }
  c.time = collective_time(op.coll, op.bytes, shape, l, CollAlgo::kAuto);
  return c;
}

LinkParams DefaultCostModel::p2p_links() const {
  LinkParams l = links(CollKind::kAllGather);
  l.intra_bw = cluster_.nvlink_bandwidth * eff_.p2p;
  return l;
}

OpCost DefaultCostModel::p2p(const OpDesc& op, bool same_node) const {
  const LinkParams l = p2p_links();
  OpCost c;
  c.time = p2p_time(op.bytes, same_node, l);
  return c;
}

std::string DefaultCostModel::describe(OpClass cls, CostSource) const {
  char buf[512];
  char capped[128] = "";
  if (power_ < 1) {
    std::snprintf(capped, sizeof capped, ", power-capped x%.3f ((%.0f/%.0f W)^%.3g)", power_,
                  cluster_.gpu.power_limit_w, cluster_.gpu.tdp_w, eff_.power_exponent);
  }
  switch (cls) {
    case OpClass::kGemm:
      std::snprintf(buf, sizeof buf, "roofline: %.0f%% of %s peak (fp8 %.0f%%) for large GEMMs%s",
                    eff_.gemm * 100, cluster_.gpu.name.c_str(), eff_.gemm_fp8 * 100, capped);
      if (eff_.size_curve.size() >= 2) {   // short GEMMs run below that rate
        const size_t used = std::strlen(buf);
        std::snprintf(buf + used, sizeof buf - used, ", short ones slower (x%.2f at %.4g us of ideal time, x%.2f from %.4g us)",
                      eff_.size_curve.front().second, eff_.size_curve.front().first, eff_.size_curve.back().second,
                      eff_.size_curve.back().first);
      }
      break;
    case OpClass::kAttention:
      std::snprintf(buf, sizeof buf, "%s at %.0f%% of bf16 peak (backward x%.2f)%s, causal work x%.2f",
                    eff_.attention_kernel.c_str(), eff_.attention * 100, eff_.attention_backward_ratio,
                    capped, eff_.causal_work_fraction);
      if (eff_.attention_overhead_fwd > 0 || eff_.attention_overhead_bwd > 0) {
        const size_t used = std::strlen(buf);
        std::snprintf(buf + used, sizeof buf - used, ", ramp: %.1f/%.1f KV blocks of %d tokens per query block (fwd/bwd)",
                      eff_.attention_overhead_fwd, eff_.attention_overhead_bwd, eff_.attention_block_tokens);
      }
      if (eff_.attention_dim_overhead_fwd > 0 || eff_.attention_dim_overhead_bwd > 0) {
        const size_t used = std::strlen(buf);
        std::snprintf(buf + used, sizeof buf - used, ", heads under 128 dims slower (softmax worth %.1f/%.1f dims)",
                      eff_.attention_dim_overhead_fwd, eff_.attention_dim_overhead_bwd);
      }
      break;
    case OpClass::kCollective:
      std::snprintf(buf, sizeof buf,
                    "alpha-beta: NVLink %.0f GB/s (all-reduce %.0f, fitted to nccl-tests, rms %.0f%%), %.1f us/step; NIC %.1f GB/s per GPU",
                    links(CollKind::kAllGather).intra_bw.GBps_f(), links(CollKind::kAllReduce).intra_bw.GBps_f(),
                    eff_.nvlink_fit_residual * 100, eff_.nvlink_alpha.us_f(), links(CollKind::kAllGather).inter_bw.GBps_f());
      if (innet_.enabled) {
        const size_t used = std::strlen(buf);
        std::snprintf(buf + used, sizeof buf - used,
                      "; cross-node all-reduce may use in-network reduction (SHARP: S/q up and down the tree, 2 x %.1f us per tier)",
                      eff_.nic_alpha.us_f());
      }
      break;
    case OpClass::kP2p:
      std::snprintf(buf, sizeof buf, "p2p: NVLink %.0f GB/s, NIC %.1f GB/s",
                    (cluster_.nvlink_bandwidth * eff_.p2p).GBps_f(), links(CollKind::kAllGather).inter_bw.GBps_f());
      break;
    case OpClass::kOffload:
      std::snprintf(buf, sizeof buf, "host copy: PCIe at %.0f%% of %.0f GB/s per direction + %.1f us", eff_.pcie * 100,
                    cluster_.pcie_bandwidth.GBps_f(), eff_.memory_overhead.us_f());
      break;
    default:
      std::snprintf(buf, sizeof buf, "memory-bound: HBM at %.0f%% of %.0f GB/s + %.1f us", eff_.hbm * 100,
                    cluster_.gpu.hbm_bandwidth.GBps_f(), eff_.memory_overhead.us_f());
      break;
  }
  return std::string(buf) + " (embedded default, calibrate/data/defaults.json, family " + eff_.family + ")";
}

Result<std::unique_ptr<CostModel>> make_default_cost_model(const ClusterSpec& cluster,
                                                           const InNetworkReduction& innet,
                                                           AttentionKernel attention) {
  auto eff = default_efficiencies(gpu_family(cluster.gpu));
  if (!eff.ok()) return eff.status();
  Status st = use_attention_kernel(attention, &eff.value());
  if (!st.ok()) return st;
  auto m = std::make_unique<DefaultCostModel>(cluster, std::move(eff).value());
  m->set_in_network(innet);
  return std::unique_ptr<CostModel>(std::move(m));
}

Status bind_costs(Plan& plan, const CostModel& model, int gpus_per_node, std::vector<CostSource>* op_sources,
                  std::vector<Time>* op_durations) {
  // Each group's worst shape, found when an op first names the group (a shape scans every
  // rank: groups no collective uses are skipped).
  std::vector<GroupShape> shapes(plan.groups.size());
  std::vector<bool> shaped(plan.groups.size(), false);
  // A p2p peer table is "same node" when every rank's peer shares its node.
  std::vector<bool> same_node;
  // r / gpus_per_node, as a shift when that is a power of two (a division per rank and table
  // otherwise: 16,384 ranks).
  const bool pow2 = gpus_per_node > 0 && (gpus_per_node & (gpus_per_node - 1)) == 0;
  const int shift = pow2 ? __builtin_ctz(static_cast<unsigned>(gpus_per_node)) : 0;
  for (const auto& p : plan.peers) {
    bool same = true;
    for (size_t r = 0; r < p.peer_of_rank.size() && same; ++r) {
      const int peer = p.peer_of_rank[r];
      if (peer >= 0 && (pow2 ? (static_cast<int>(r) >> shift) != (peer >> shift)
                             : static_cast<int>(r) / gpus_per_node != peer / gpus_per_node))
        same = false;
    }
    same_node.push_back(same);
  }
  std::vector<Time> dur(plan.ops.size());
  if (op_sources) op_sources->assign(plan.ops.size(), CostSource::kDefault);
  for (size_t i = 0; i < plan.ops.size(); ++i) {
    const OpDesc& op = plan.ops[i];
    OpCost c;
    if (op.cls == OpClass::kCollective) {
      if (op.group >= shapes.size()) return Status::error("bind_costs: op '" + op.name + "' names a missing group");
      if (!shaped[op.group]) {
        shapes[op.group] = worst_shape(plan.groups[op.group], gpus_per_node);
        shaped[op.group] = true;
      }
      c = model.collective(op, shapes[op.group]);
    } else if (op.cls == OpClass::kP2p) {
      if (op.group >= same_node.size()) return Status::error("bind_costs: op '" + op.name + "' names a missing peer table");
      c = model.p2p(op, same_node[op.group]);
    } else {
      c = model.compute(op);
    }
    dur[i] = c.time;
    if (op_sources) (*op_sources)[i] = c.source;
  }
  // A program's tasks one after another: beyond ~11.6 days the replay's picoseconds could
  // overflow once waits and slowed compute add to it (extreme but valid input, such as a 16M-token
  // sequence on 8 GPUs). An error rather than a crash. The programs' serial times summed bound
  // the step too (a pipeline's stages wait on each other: 64 stages of 10^5 s each would pass a
  // per-program check and still overflow), so the sum is held to the same range.
  constexpr int64_t kMaxSerialPs = int64_t{1'000'000} * 1'000'000'000'000;   // 10^6 s
  int64_t total = 0;
  bool total_over = false;
  for (auto& prog : plan.programs) {
    int64_t serial = 0;
    bool over = false;
    for (auto& t : prog.tasks) {
      t.dur = dur[t.op];
      over |= __builtin_add_overflow(serial, t.dur.count_ps(), &serial);
    }
    if (over || serial > kMaxSerialPs)
      return Status::error("program '" + prog.name + "' alone takes " +
                           (over ? std::string("more than 100 days") : format_time(Time::ps(serial))) +
                           " per step (its tasks one after another): beyond the simulator's range of about 10^6 s; "
                           "shorten the sequence, the batch or the model, or add GPUs");
    total_over |= __builtin_add_overflow(total, serial, &total);
  }
  if (total_over || total > kMaxSerialPs)
    return Status::error("the " + std::to_string(plan.programs.size()) + " pipeline programs take " +
                         (total_over ? std::string("more than 100 days") : format_time(Time::ps(total))) +
                         " per step together (each one's tasks one after another, summed): beyond the simulator's "
                         "range of about 10^6 s; shorten the sequence, the batch or the model, or add GPUs");
  if (op_durations) *op_durations = std::move(dur);
  return Status{};
}

}  // namespace trainsim
