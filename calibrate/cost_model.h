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
//              / (peak_bf16 * attention_efficiency * power * (backward ? bwd_ratio : 1));
//              t / size_curve(t)
//   size_curve relative efficiency by the kernel's ideal time (small kernels run below the
//              large-shape plateau), log-linear between measured points
//   memory-bound (norm, elementwise, embedding, loss, optimizer)
//              bytes / (hbm_bandwidth * hbm_efficiency) + memory_op_overhead
//   collective sim/collectives.h alpha-beta with NVLink / NIC bandwidths times the family's
//              efficiencies (all-reduce inside a node at the NVLS figure where the family has it)
//   p2p        sim/collectives.h p2p_time
// `power` = (power_limit/tdp)^power_exponent for power-capped parts, else 1.
// Thread-safety: immutable after construction; const methods are reentrant.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

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
  double nvlink_allreduce = 0, nvlink = 0, nic = 0, p2p = 0, pcie = 0;
  Time memory_overhead, nvlink_alpha, nic_alpha;
  double nvlink_fit_residual = 0;   // rms relative residual of the NVLink all-reduce fit (0: not fitted)
  double attention_backward_work = 2.5, attention_backward_ratio = 1.0, causal_work_fraction = 0.5,
         power_exponent = 1.0 / 3;
  std::vector<std::pair<double, double>> size_curve;  // (ideal time in us, relative efficiency)
  // The relative efficiency of a kernel whose ideal time is `ideal` (1 beyond the last point).
  double size_factor(Time ideal) const;
};

// The GPU family of a catalog GPU ("ampere", "hopper", "blackwell").
std::string gpu_family(const GpuSpec& gpu);
// Efficiencies for a family from the embedded defaults. Error names the family if missing.
Result<DefaultEfficiencies> default_efficiencies(const std::string& family);

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

 private:
  ClusterSpec cluster_;
  DefaultEfficiencies eff_;
  double power_ = 1.0;
};

Result<std::unique_ptr<CostModel>> make_default_cost_model(const ClusterSpec& cluster);

// Fills Task::dur of every task of the plan from the cost model (each distinct op is priced
// once). `op_sources` receives the source of each op (size plan.ops.size()).
// Collectives are priced on the worst-shaped instance of their group (instances of a group
// are identical under the regular placements trainsim builds).
Status bind_costs(Plan& plan, const CostModel& model, int gpus_per_node, std::vector<CostSource>* op_sources);

}  // namespace trainsim
