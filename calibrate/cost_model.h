// File: calibrate/cost_model.h
// Cost models answer two questions (ARCHITECTURE.md "Costs"): how long does this compute op
// take on this GPU, and how long does this collective / transfer take on this group. Each
// answer says where it came from (measured, interpolated, fitted, default).
//
// DefaultCostModel is the embedded default (calibrate/data/defaults.json): a roofline with
// efficiencies from public measurements, so the tool runs anywhere:
//   GEMM       t = flops / (peak(dtype) * gemm_efficiency * power); t / size_curve(t), at least
//              the operand+output bytes / (hbm_bandwidth * hbm_efficiency) (roofline)
//   attention  t = flops * causal_work_fraction * (backward ? attention_backward_work/2 : 1)
//              / (peak_bf16 * attention_efficiency * power * (backward ? bwd_ratio : 1) * ramp);
//              t / size_curve(t). ramp: each query block of a flash kernel also pays a fixed
//              overhead of c KV blocks (loading Q, the epilogue; backward: dQ, dK/dV), so with
//              n = ceil(seq_kv / block_tokens) KV blocks a non-causal kernel does n useful of n + c
//              and a causal one n/2 of (n+1)/2 + c (its diagonal blocks run whole):
//              ramp = n / (n + c), causal n / (n + 1 + 2c); c per direction and kernel
//   size_curve relative efficiency by the kernel's ideal time (small kernels run below the
//              large-shape plateau), log-linear between measured points
//   memory-bound (norm, elementwise, embedding, loss, optimizer)
//              bytes / (hbm_bandwidth * hbm_efficiency) + memory_op_overhead
//   collective sim/collectives.h alpha-beta with NVLink / NIC bandwidths times the family's
//              efficiencies (all-reduce inside a node at the NVLS figure where the family has it);
//              with in-network reduction (InNetworkReduction) a cross-node all-reduce may take
//              the SHARP algorithm, its tree height from InNetworkReduction::tiers
//   p2p        sim/collectives.h p2p_time
// `power` = (power_limit/tdp)^power_exponent for power-capped parts, else 1.
// Thread-safety: immutable after construction; const methods are reentrant.
#pragma once
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/spec.h"
#include "sim/collectives.h"
#include "sim/plan.h"
#include "sim/status.h"
#include "topologies/hardware.h"

namespace trainsim {

struct OpCost {
  Time time;
  CostSource source = CostSource::kDefault;
};

class CostModel {
 public:
  virtual ~CostModel() = default;
  virtual OpCost compute(const OpDesc& op) const = 0;
  virtual OpCost collective(const OpDesc& op, const GroupShape& shape) const = 0;
  virtual OpCost p2p(const OpDesc& op, bool same_node) const = 0;
  // One line on how a class of ops is priced from `source`, for the report's sources table.
  virtual std::string describe(OpClass cls, CostSource source) const = 0;
};

// The efficiencies of one GPU family (see defaults.json for each figure's source).
struct DefaultEfficiencies {
  std::string family;
  double gemm = 0, gemm_fp8 = 0, attention = 0, hbm = 0;
  // cuDNN's fused attention (training.attention_kernel "cudnn"): its forward efficiency and
  // backward ratio; 0 where the family has no figure. use_attention_kernel() swaps them in.
  double attention_cudnn = 0, attention_cudnn_backward_ratio = 0;
  // Per-query-block overhead of the attention kernel in KV blocks of attention_block_tokens,
  // forward and backward (0: no ramp); the cuDNN pair replaces them with the cuDNN kernel.
  double attention_overhead_fwd = 0, attention_overhead_bwd = 0;
  double attention_cudnn_overhead_fwd = 0, attention_cudnn_overhead_bwd = 0;
  int attention_block_tokens = 128;
  std::string attention_kernel = "flash attention";   // what `attention` is the efficiency of
  // The share of its work a flash kernel of `seq_kv` keys spends on useful blocks (the ramp
  // above; 1 when the overheads are 0 or the op has no sequence length).
  double attention_ramp(int64_t seq_kv, bool causal, bool backward) const;
  // Head dimension: per score the kernel's softmax work costs as much as k head-dimension
  // elements of its matmuls (forward, backward; 0: no term), so heads of d run at
  // (d / (d + k)) / (128 / (128 + k)) of the rate fitted on 128-dim heads; at and above 128
  // the fitted rate (no measurement above it). The cuDNN pair replaces them with the kernel.
  double attention_dim_overhead_fwd = 0, attention_dim_overhead_bwd = 0;
  double attention_cudnn_dim_overhead_fwd = 0, attention_cudnn_dim_overhead_bwd = 0;
  double attention_head_dim_factor(int64_t head_dim, bool backward) const;
  // FlashAttention v1 (training.attention_kernel "flash1") against FlashAttention-2, on the same
  // shapes: use_attention_kernel() scales `attention` by it.
  double attention_flash1_ratio = 1;
  double nvlink_allreduce = 0, nvlink = 0, nic = 0, p2p = 0, pcie = 0;
  Time memory_overhead, nvlink_alpha, nic_alpha;
  double nvlink_fit_residual = 0;   // rms relative residual of the NVLink all-reduce fit (0: not fitted)
  double attention_backward_work = 2.5, attention_backward_ratio = 1.0, causal_work_fraction = 0.5,
         power_exponent = 1.0 / 3;
  int nccl_ctas = 0;   // SMs one running collective holds (compute overlapping it loses them)
  double pcie_duplex = 1.0;   // each direction's share of its rate while host copies run both ways
  std::vector<std::pair<double, double>> size_curve;  // (ideal time in us, relative efficiency)
  // The relative efficiency of a kernel whose ideal time is `ideal` (1 beyond the last point).
  double size_factor(Time ideal) const;
};

// In-network reduction (scenario network.in_network_reduction: InfiniBand SHARP on the scale-out
// switches). Analytic mode sees no topology, so the height of a group's reduction tree comes
// from the node count of the group taken as contiguous nodes of a rail-optimized fat-tree
// (the one flow mode builds from the cluster section): 1 tier up to leaf_nodes nodes (one leaf
// per rail), 2 up to pod_nodes (one pod's spines) or when the fabric has 2 tiers, else 3.
// A group strided over more leaves than its node count needs is under-counted by a tier at
// most (2 x inter_alpha per tier). Flow mode reads the tiers off the fabric's routes instead.
struct InNetworkReduction {
  bool enabled = false;
  int leaf_nodes = 64;     // nodes on one leaf of a rail (the leaf radix)
  int pod_nodes = 512;     // nodes under one pod (leaf_radix^2 / NICs per node)
  int fabric_tiers = 2;    // switch tiers of the fabric (2 or 3)
  // Tiers the reduction tree of a group on `nodes` nodes climbs; 0 when disabled or nodes <= 1.
  int tiers(int nodes) const;
};

// The GPU family whose kernel efficiencies price `gpu` ("ampere", "hopper", "blackwell"): its
// GpuSpec::family, or the one its name implies (a GpuSpec built by hand).
std::string gpu_family(const GpuSpec& gpu);
// Efficiencies for a family from the embedded defaults. Error names the family if missing.
Result<DefaultEfficiencies> default_efficiencies(const std::string& family);
// Prices attention as `kernel` runs it: flash keeps the family's FlashAttention-2 figures;
// cudnn takes attention_cudnn and its backward ratio (an error where the family has none);
// unfused attention has no attention ops to price. The error says what is accepted.
Status use_attention_kernel(AttentionKernel kernel, DefaultEfficiencies* eff);

// The share of `gpu`'s SMs that one running collective of `nccl_ctas` CTAs holds (for
// ReplayOptions::comm_sm_share), at most 1; 0 for nccl_ctas <= 0.
inline double comm_sm_share(int nccl_ctas, const GpuSpec& gpu) {
  return nccl_ctas > 0 && gpu.sms > 0 ? std::min(1.0, static_cast<double>(nccl_ctas) / gpu.sms) : 0.0;
}

class DefaultCostModel : public CostModel {
 public:
  DefaultCostModel(const ClusterSpec& cluster, DefaultEfficiencies eff);
  OpCost compute(const OpDesc& op) const override;
  OpCost collective(const OpDesc& op, const GroupShape& shape) const override;
  OpCost p2p(const OpDesc& op, bool same_node) const override;
  std::string describe(OpClass cls, CostSource source = CostSource::kDefault) const override;
  const DefaultEfficiencies& efficiencies() const { return eff_; }
  double power_factor() const { return power_; }
  LinkParams links(CollKind kind) const;
  // Point-to-point: the all-gather links with NVLink at the p2p efficiency (as p2p() prices).
  LinkParams p2p_links() const;
  const ClusterSpec& cluster() const { return cluster_; }
  void set_in_network(const InNetworkReduction& r) { innet_ = r; }
  const InNetworkReduction& in_network() const { return innet_; }

 private:
  ClusterSpec cluster_;
  DefaultEfficiencies eff_;
  InNetworkReduction innet_;
  double power_ = 1.0;
};

// `attention`: the training's attention kernel (use_attention_kernel); its error if the family has
// no figure for it.
Result<std::unique_ptr<CostModel>> make_default_cost_model(const ClusterSpec& cluster,
                                                           const InNetworkReduction& innet = {},
                                                           AttentionKernel attention = AttentionKernel::kFlash);

// Fills Task::dur of every task of the plan from the cost model (each distinct op is priced
// once). `op_sources` receives the source of each op (size plan.ops.size()).
// Collectives are priced on the worst-shaped instance of their group (instances of a group
// are identical under the regular placements trainsim builds).
// `op_durations` (optional): each op's duration, indexed as plan.ops.
Status bind_costs(Plan& plan, const CostModel& model, int gpus_per_node, std::vector<CostSource>* op_sources,
                  std::vector<Time>* op_durations = nullptr);

}  // namespace trainsim
