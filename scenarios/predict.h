// File: scenarios/predict.h
// The whole prediction pipeline: scenario -> op graph -> plan -> cost binding -> replay ->
// figures. `predict()` is what `trainsim run` and `trainsim validate` call.
// All figures are deterministic functions of the scenario (no wall-clock values in here).
// Thread-safety: predict() is reentrant.
#pragma once
#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "scenarios/scenario.h"
#include "sim/plan.h"
#include "sim/replay.h"

namespace trainsim {

struct MemoryReport {
  uint32_t rank = 0;
  int stage = 0;
  Bytes params, grads, optimizer, activations, workspace;
  Bytes total() const { return params + grads + optimizer + activations + workspace; }
  Bytes capacity;
  bool oom() const { return total() > capacity; }
};

// Where the cost of a class of ops came from, and how much step time it accounts for on the
// critical rank (one row per op class / collective kind and source).
struct SourceRow {
  std::string what;        // "gemm", "attention", "all-reduce(tp)", ...
  CostSource source = CostSource::kDefault;
  int distinct_ops = 0;    // distinct shapes priced
  Time time_on_critical_rank;  // summed task durations of that class on the critical rank
  std::string detail;      // e.g. "roofline, GEMM efficiency curve (calibrate/data/defaults.json)"
};

// MoE routing and its cost (MoE scenarios only; present = false for dense models).
struct MoeReport {
  bool present = false;
  std::string routing;            // "balanced", "uniform", "zipf(s=1.2)", "histogram(file)"
  uint64_t seed = 0;
  int draws = 0;                  // MoE layers x micro-batches drawn
  double imbalance_mean = 1;      // busiest EP rank's rows / mean rows, mean over draws
  double imbalance_max = 1;       // ... and its maximum
  double dropped_fraction = 0;    // token copies over capacity / all routed
  int pods = 1, pods_drawn = 1;   // dp/ep groups of ep pipelines (models/compiler.h MoeStats)
  int slices = 1;                 // token slices per pod routing their own tokens (models/moe.h)
  int straggler_pod = 0;          // the pod the program follows
  double pod_spread = 1;          // its busiest-rank rows over the step / the mean pod's
  // EP dispatch (moe.dispatch, sim/collectives.h dedup_alltoall_time); reported only for
  // "dedup" (direct reports keep their bytes). Over the EP group's busiest shape: ep_nodes
  // nodes, the node limit in effect (= ep_nodes without one) and the expected distinct nodes
  // (all, and other than the token's own) a token's top-k experts touch.
  bool dedup = false;
  int node_limit = 0;             // as configured (0 = none)
  int ep_nodes = 1;
  int node_limit_effective = 1;
  double distinct_nodes = 0;
  double distinct_remote_nodes = 0;
  // The same scenario predicted again with balanced routing (same cost model, same mode);
  // imbalance_cost = step_time - balanced_step_time (0 when the routing is balanced).
  Time balanced_step_time;
  Time imbalance_cost;
  // Dynamic expert placement (moe.placement "dynamic"; models/compiler.h). The same scenario
  // predicted again with static placement gives static_step_time; placement_gain =
  // static_step_time - step_time, net of the migration collective, whose time on the critical
  // rank is migration_time (its bytes per step per rank, amortized over rebalance_every steps
  // plus the replicas' per-step sync, in migration_bytes_per_step).
  bool dynamic = false;
  int rebalance_every = 0;
  int replicas = 0;
  double imbalance_static_mean = 1;
  double imbalance_static_max = 1;
  int experts_moved = 0;
  int experts_replicated = 0;
  int64_t migration_bytes_per_step = 0;
  Time migration_time;
  Time static_step_time;
  Time placement_gain;
};

// Packed variable-length documents and the imbalance they cause (present = false unless the
// scenario has a documents section with lengths other than "none").
struct DocumentReport {
  bool present = false;
  std::string lengths;            // "fixed(2048)", "lognormal(mean 2048, sigma 1)"
  uint64_t seed = 0;
  int64_t windows = 0;            // all DP replicas, one step
  double mean_segment = 0;        // tokens per document segment in a window
  double attention_fraction = 1;  // masked / unmasked causal attention pairs
  int straggler = 0;              // DP replica with the most attention work
  double dp_imbalance = 1;        // its work / the mean replica's
  double cp_imbalance = 1;        // ring attention: busiest CP rank / mean, per step
  // The same scenario predicted again with every window at the mean work and CP ranks even;
  // imbalance_cost = step_time - balanced_step_time.
  Time balanced_step_time;
  Time imbalance_cost;
};

// Per-GPU compute speed (the scenario's "gpu_speed" section, models/gpu_speed.h; present =
// false without it). Full mode gives every rank its own speed; fast mode gives each simulated
// rank the slowest speed among the ranks of its program (the ranks it stands for), an upper
// estimate of the step: a DP replica that syncs only at its gradient reduction then counts the
// slowest GPU of every stage at once.
struct GpuSpeedReport {
  bool present = false;
  GpuSpeedSpec spec;
  double slowest = 1;            // over all GPUs of the job
  uint32_t slowest_rank = 0;     // lowest rank on ties
  double mean = 1;
  int outliers = 0;              // GPUs of the job at slow_speed drawn as outliers
  int spares = 0;                // the slowest GPUs screened out (spare_share)
  // The same plan replayed with every GPU at speed 1 (same cost model, same mode);
  // cost = step_time - uniform_step_time.
  Time uniform_step_time;
  Time cost;
};

// Flow mode: one of the most utilised links of the step.
struct HotLink {
  std::string from, to;      // vertex names of the topology ("node3/nic1", "leaf0")
  Bandwidth capacity;        // line rate of the link, this direction
  double bytes = 0;          // carried during the step
  double utilisation = 0;    // bytes / (capacity * step time), of the line rate
  Time busy;                 // time with traffic on it
};

// Flow mode: what the network did (absent in analytic mode).
struct NetworkReport {
  std::string topology;          // the topology's name
  std::string placement;         // "contiguous" | "scattered"
  int fabric_gpus = 0;
  double efficiency = 0;         // achievable fraction of a link's line rate (the NIC efficiency)
  uint64_t transfers = 0;        // collective instances and sends that became flows
  uint64_t flows_started = 0;
  uint64_t rate_recomputations = 0;   // max-min solves (one per batch of changes)
  uint64_t flows_resolved = 0;        // sum over solves of the flows re-solved
  uint64_t peak_active_flows = 0;
  std::vector<HotLink> hottest;  // by utilisation, highest first
};

struct Prediction {
  Scenario scenario;
  bool fast = false;
  Time step_time;
  int gpus = 0;
  int64_t tokens_per_step = 0;
  double tokens_per_s = 0;
  double tokens_per_s_per_gpu = 0;
  double model_tflops_per_gpu = 0;     // model FLOPs (no recompute) / step time / GPU
  double hardware_tflops_per_gpu = 0;  // with recompute
  double mfu = 0;                      // fraction of peak at the training precision
  double hfu = 0;
  double peak_tflops = 0;              // the peak MFU/HFU are taken against
  uint32_t critical_rank = 0;
  std::array<Time, static_cast<size_t>(Bucket::kCount)> breakdown{};  // critical rank
  Time comm_total;                     // all comm task time on the critical rank
  Time comm_exposed;                   // its exposed part
  double comm_hidden_share = 0;        // 1 - exposed/total (0 when no comm)
  DocumentReport documents;
  GpuSpeedReport gpu_speed;
  MemoryReport peak_memory;            // the rank with the largest total
  std::vector<MemoryReport> memory_per_stage;  // one per pipeline stage (its first rank)
  std::vector<SourceRow> sources;
  MoeReport moe;
  std::string calibration;               // database the costs rest on ("" = embedded default)
  std::vector<std::string> calibration_notes;  // where the calibration had to extrapolate
  // Compute sharing the GPU with collectives (sim/replay.h ReplayOptions::comm_sm_share): the
  // SMs one running collective holds, the GPU's SMs, where the figure comes from, and the
  // compute time it added on the critical rank.
  int nccl_ctas = 0;
  int gpu_sms = 0;
  double pcie_duplex = 1;   // host copies both ways at once: each direction's share of its rate
  std::string nccl_ctas_source;
  Time contention;
  uint64_t events = 0;
  uint64_t fingerprint = 0;
  bool flow = false;                   // network.mode == "flow"
  NetworkReport network;               // filled in flow mode
  int simulated_ranks = 0;
  std::vector<TraceRecord> trace;      // when requested
  // The plan it ran, for traces (task names, streams). Shared, never null after predict().
  std::shared_ptr<const Plan> plan;
  std::vector<CostSource> op_sources;  // per Plan::ops entry: where its cost came from
};

struct PredictOptions {
  bool fast = false;
  std::vector<uint32_t> trace_ranks;   // record the timeline of these ranks
  bool trace_representatives = false;  // ...or of one rank per pipeline stage (up to 64)
  // Also predict the references the report compares with (balanced routing, static expert
  // placement, documents at the mean work). Those reference runs set it to false, so they do
  // not start references of their own; their reference figures then equal their own step.
  bool references = true;
  // ReplayOptions::chain_compute: back-to-back compute tasks in one event (false: one per
  // task; the tests' oracle).
  bool chain_compute = true;
  // The balanced-routing reference from this plan with the routed expert ops swapped for their
  // balanced twins (CompiledPlan::balanced_twins), where the plan allows it (static placement,
  // no activation offload, not flow mode); false: compile it again from the scenario (the
  // tests' oracle). The same step either way.
  bool twin_references = true;
};

Result<Prediction> predict(const Scenario& s, const PredictOptions& opts);

// The whole training run of training.train_tokens at the predicted step: whole steps (the last
// one full), their time, and GPU-hours (every GPU of the cluster for that time); present = false
// when train_tokens is 0. Interruptions come at failures.per_gpu_hour x gpus (default: Llama 3
// 405B's rate, models/spec.h); over the steps-only time that many are expected. With the
// "failures" section (checkpoint write and restart times) the wall time with them, to first
// order (Young 1974, Daly 2006): training runs in intervals of tau between checkpoints of
// write time d; an interruption (one per MTBF M of the job, in wall time) costs the restart R
// and on average half a segment (tau + d) of lost work, so
//   wall = steps_time x (tau + d) / tau / (1 - (R + (tau + d) / 2) / M),
// tau = sqrt(2 d M) (Young's optimum) unless failures.checkpoint_interval gives it. Where the
// denominator is not positive the run loses work faster than it makes it: stalls = true.
struct TimeToTrain {
  bool present = false;
  int64_t tokens = 0;
  int64_t steps = 0;       // ceil(tokens / tokens_per_step)
  double seconds = 0;      // steps x step time
  double gpu_hours = 0;    // seconds x gpus / 3600
  double mtbf_s = 0;       // the job's: 3600 / (per_gpu_hour x gpus); inf at rate 0
  double interruptions = 0;   // expected over `seconds` (with_failures: over wall_s)
  bool with_failures = false;   // the failures section: the figures below
  double interval_s = 0;   // tau (inf: no checkpoints needed, rate 0)
  bool interval_auto = true;
  double lost_s = 0;       // per interruption: the restart and half a segment (tau + d)
  double wall_s = 0;       // with checkpoints and interruptions
  double goodput = 0;      // seconds / wall_s
  bool stalls = false;
  // The run's time as a sweep ranks it: wall_s with failures (inf where it stalls), else seconds.
  double train_s() const { return !with_failures ? seconds : stalls ? HUGE_VAL : wall_s; }
};
TimeToTrain time_to_train(const Prediction& p);

// How the scenario's GPU is shared (sim/replay.h): the SMs a running collective holds
// (costs.nccl_ctas, else the embedded default) and where that figure comes from, set into
// `ro` with the PCIe sharing of host copies (plans that offload only). Used by predict and by
// verify's simulation of a GPU run. Error only if the embedded defaults lack the GPU's family.
Result<std::string> set_gpu_sharing(const Scenario& s, ReplayOptions* ro, int* nccl_ctas);

}  // namespace trainsim
