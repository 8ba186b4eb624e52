#include "scenarios/predict.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>

#include "calibrate/calibrated_cost_model.h"
#include "calibrate/cost_model.h"
#include "models/compiler.h"
#include "topologies/flow_collectives.h"
#include "topologies/placement.h"
#include "topologies/topology_file.h"

namespace trainsim {

namespace {

std::string source_class(const OpDesc& op, const Plan& plan) {
  switch (op.cls) {
    case OpClass::kCollective:
      return std::string(to_string(op.coll)) + "(" + plan.groups[op.group].name + ")";
    case OpClass::kP2p:
      return "p2p(pp)";
    default:
      return to_string(op.cls);
  }
}

// Flow mode: the fabric the job runs on (network.topology, or a rail-optimized fat-tree sized
// from the cluster section: 2 tiers up to leaf_radix^2 / NICs-per-node nodes, else 3), with
// the scenario's what-ifs applied.
Result<std::shared_ptr<const ClusterGraph>> scenario_fabric(const Scenario& s) {
  const NetworkOptions& no = s.options.network;
  Result<ClusterGraph> g = Status::error("unreachable");
  if (no.topology.empty()) {
    FabricOptions f;
    const int64_t k = f.leaf_radix;
    f.tiers = s.cluster.nodes() > k * k / s.cluster.gpus_per_node ? 3 : 2;
    f.oversubscription = no.oversubscription;
    f.modifications = no.modifications;
    g = build_cluster(s.cluster, f);
    if (!g.ok()) {
      Status st;
      for (Error e : g.status().errors()) {
        e.file = s.file;
        if (e.path.rfind("/cluster/network", 0) == 0) e.path = "/network" + e.path.substr(16);
        st.add(e);
      }
      return st;
    }
  } else {
    TopologyOverrides o;
    o.oversubscription = no.oversubscription;
    o.modifications = no.modifications;
    o.label = s.file;
    o.path = "/network";
    g = load_topology(no.topology, o);
    if (!g.ok()) return g.status();
  }
  auto out = std::make_shared<const ClusterGraph>(std::move(g).value());
  const std::string where = no.topology.empty() ? "a fat-tree from the cluster section" : no.topology;
  if (out->gpus_per_node() != s.cluster.gpus_per_node)
    return Status::error(Error{s.file, "/network/topology", "\"" + where + "\"",
                               "has " + std::to_string(out->gpus_per_node()) +
                                   " GPUs per node but the cluster section " +
                                   std::to_string(s.cluster.gpus_per_node) +
                                   "; use a topology with cluster.gpus_per_node GPUs per node"});
  if (out->num_gpus() < s.cluster.gpus)
    return Status::error(Error{s.file, "/network/topology", "\"" + where + "\"",
                               "has " + std::to_string(out->num_gpus()) + " GPUs; the job needs " +
                                   std::to_string(s.cluster.gpus)});
  return out;
}

// network.in_network_reduction for the analytic model: the tree heights of the fat-tree
// scenario_fabric builds from the cluster section (leaf radix 64, one NIC per GPU).
InNetworkReduction in_network(const Scenario& s) {
  InNetworkReduction r;
  r.enabled = s.options.network.in_network_reduction;
  const FabricOptions f;
  const int64_t k = f.leaf_radix;
  r.leaf_nodes = f.leaf_radix;
  r.pod_nodes = static_cast<int>(k * k / s.cluster.gpus_per_node);
  r.fabric_tiers = s.cluster.nodes() > r.pod_nodes ? 3 : 2;
  return r;
}

}  // namespace

namespace {

// The step time of `s` after `change`, in the same mode, without references of its own.
template <class F>
Result<Time> reference_step(const Scenario& s, const PredictOptions& opts, F&& change) {
  Scenario v = s;
  change(v);
  PredictOptions o;
  o.fast = opts.fast;
  o.references = false;
  o.chain_compute = opts.chain_compute;
  o.twin_references = opts.twin_references;
  auto p = predict(v, o);
  if (!p.ok()) return p.status();
  return p.value().step_time;
}

// The step of `plan` with the twins' ops (and their durations) in place of their tasks' own,
// replayed as the plan was; the plan is as it was on return.
Result<Time> twin_step(Plan& plan, const std::vector<OpTwin>& twins, const std::vector<Time>& op_dur,
                       const ReplayOptions& ro) {
  struct Saved {
    uint32_t op;
    Time dur;
  };
  std::vector<Saved> saved(twins.size());
  auto swap_in = [&](bool in) {
    for (size_t i = 0; i < twins.size(); ++i) {
      Task& t = plan.programs[twins[i].program].tasks[twins[i].task];
      if (in) {
        saved[i] = Saved{t.op, t.dur};
        t.op = twins[i].op;
        t.dur = op_dur[twins[i].op];
      } else {
        t.op = saved[i].op;
        t.dur = saved[i].dur;
      }
    }
  };
  swap_in(true);
  ReplayOptions o = ro;
  o.trace_ranks.clear();
  auto r = replay(plan, o);
  swap_in(false);
  if (!r.ok()) return r.status();
  return r.value().step_time;
}

}  // namespace

Result<std::string> set_gpu_sharing(const Scenario& s, ReplayOptions* ro, int* nccl_ctas) {
  auto eff = default_efficiencies(gpu_family(s.cluster.gpu));
  if (!eff.ok()) return eff.status();
  const bool own = s.options.nccl_ctas >= 0;
  *nccl_ctas = own ? s.options.nccl_ctas : eff.value().nccl_ctas;
  ro->comm_sm_share = comm_sm_share(*nccl_ctas, s.cluster.gpu);
  if (s.parallel.activation_offload > 0) ro->pcie_duplex = eff.value().pcie_duplex;   // only copies use it
  return std::string(own ? "scenario costs.nccl_ctas" : "embedded default, calibrate/data/defaults.json");
}

Result<Prediction> predict(const Scenario& s, const PredictOptions& opts) {
  const bool twins = opts.references && opts.twin_references && s.model.is_moe() &&
                     s.training.moe.kind != MoeRouting::kBalanced && s.options.network_mode != "flow";
  auto compiled = compile_plan(s.model, s.training, s.parallel, s.cluster.gpus_per_node, twins);
  if (!compiled.ok()) return compiled.status();
  auto plan = std::make_shared<Plan>(std::move(compiled.value().plan));
  const auto& stages = compiled.value().stages;

  std::unique_ptr<CostModel> model;
  const CalibratedCostModel* calibrated = nullptr;
  if (!s.options.calibration.empty()) {
    auto cal = CalibratedCostModel::make(s.options.calibration, s.cluster, s.options.prefer_source,
                                         s.training.attention_kernel);
    if (!cal.ok()) return cal.status();
    calibrated = cal.value().get();
    model = std::move(cal).value();
  } else {
    auto def = make_default_cost_model(s.cluster, in_network(s), s.training.attention_kernel);
    if (!def.ok()) return def.status();
    model = std::move(def).value();
  }
  std::vector<CostSource> op_src;
  std::vector<Time> op_dur;
  Status st = bind_costs(*plan, *model, s.cluster.gpus_per_node, &op_src, twins ? &op_dur : nullptr);
  if (!st.ok()) return st;

  ReplayOptions ro;
  ro.fast = opts.fast;
  ro.trace_ranks = opts.trace_ranks;
  ro.chain_compute = opts.chain_compute;
  if (opts.trace_representatives) {  // one rank per pipeline stage, simulated in both modes
    ro.trace_ranks = plan->representatives;
    if (ro.trace_ranks.size() > 64) ro.trace_ranks.resize(64);
  }
  std::unique_ptr<FabricNetworkModel> net;
  double nic_eff = 0;
  if (s.options.network_mode == "flow") {
    auto fabric = scenario_fabric(s);
    if (!fabric.ok()) return fabric.status();
    auto eff = default_efficiencies(gpu_family(s.cluster.gpu));
    if (!eff.ok()) return eff.status();
    // With a calibration database, its fitted link figures where it has points (intra: bus
    // bandwidth and step latency per collective kind; across nodes: step latency, and the NIC
    // efficiency from the fitted per-GPU rate); the embedded default's elsewhere.
    const DefaultCostModel dm(s.cluster, eff.value());
    FlowCosts fc;
    for (size_t k = 0; k < fc.coll.size(); ++k)
      fc.coll[k] = calibrated ? calibrated->links(static_cast<CollKind>(k)) : dm.links(static_cast<CollKind>(k));
    fc.p2p = calibrated ? calibrated->p2p_links() : dm.p2p_links();
    fc.efficiency = calibrated ? calibrated->flow_efficiency() : eff.value().nic;
    fc.in_network_reduction = s.options.network.in_network_reduction;
    nic_eff = fc.efficiency;
    const NodePlacement how = s.options.network.placement == "scattered" ? NodePlacement::kScattered
                                                                         : NodePlacement::kContiguous;
    auto nodes = place_nodes(s.cluster.nodes(), fabric.value()->num_nodes(), how, s.options.seed);
    if (!nodes.ok()) return nodes.status();
    net = std::make_unique<FabricNetworkModel>(fabric.value(), std::move(nodes).value(), fc);
    ro.network = net.get();
    ro.hottest_links = static_cast<size_t>(s.options.network.hottest_links);
  }
  int nccl_ctas = 0;
  auto ctas_src = set_gpu_sharing(s, &ro, &nccl_ctas);
  if (!ctas_src.ok()) return ctas_src.status();
  std::vector<double> speeds;   // per rank, as drawn
  int outliers = 0;
  if (s.options.gpu_speed.present) {
    speeds = draw_gpu_speeds(s.options.gpu_speed, plan->num_ranks, &outliers);
    ro.rank_speed = speeds;
    if (opts.fast) {   // a simulated rank stands for the ranks of its program: the slowest of them
      std::vector<double> slowest(plan->programs.size(), HUGE_VAL);
      for (size_t k = 0; k < speeds.size(); ++k)
        slowest[plan->program_of_rank[k]] = std::min(slowest[plan->program_of_rank[k]], speeds[k]);
      for (size_t k = 0; k < speeds.size(); ++k) ro.rank_speed[k] = slowest[plan->program_of_rank[k]];
    }
  }
  auto rr = replay(*plan, ro);
  if (!rr.ok()) return rr.status();
  ReplayResult& r = rr.value();

  Prediction p;
  p.scenario = s;
  p.fast = opts.fast;
  p.step_time = r.step_time;
  p.gpus = plan->num_ranks;
  p.tokens_per_step = s.training.global_batch * s.training.seq_len;
  const double secs = r.step_time.seconds();
  if (secs > 0) {
    p.tokens_per_s = static_cast<double>(p.tokens_per_step) / secs;
    p.tokens_per_s_per_gpu = p.tokens_per_s / p.gpus;
  }
  // FLOPs per GPU per step: every rank of a stage runs the same program; all stages together
  // hold the whole model once per TP rank and DP replica.
  double model_flops = 0, hw_flops = 0;
  for (size_t i = 0; i < plan->programs.size(); ++i) {
    model_flops += plan->programs[i].model_flops.v;
    hw_flops += plan->programs[i].hardware_flops.v;
  }
  // Sum over stages = one TP rank of one DP replica running the whole model; per GPU divide
  // by the number of stages (each GPU runs one stage).
  const double per_gpu_model = model_flops / plan->programs.size();
  const double per_gpu_hw = hw_flops / plan->programs.size();
  const GpuSpec& gpu = s.cluster.gpu;
  const FlopRate peak = s.training.precision == DType::kFP8 && gpu.peak_fp8.per_s() > 0
                            ? gpu.peak_bf16   // MFU of fp8 runs is quoted against the bf16 peak
                            : gpu.peak(s.training.precision);
  p.peak_tflops = peak.tflops();
  if (secs > 0) {
    p.model_tflops_per_gpu = per_gpu_model / secs * 1e-12;
    p.hardware_tflops_per_gpu = per_gpu_hw / secs * 1e-12;
    p.mfu = p.model_tflops_per_gpu / p.peak_tflops;
    p.hfu = p.hardware_tflops_per_gpu / p.peak_tflops;
  }

  // The critical rank's account.
  const RankStats* crit = nullptr;
  for (const auto& rs : r.ranks)
    if (rs.rank == r.critical_rank) crit = &rs;
  SIM_CHECK(crit != nullptr, "critical rank %u not among simulated ranks", r.critical_rank);
  p.critical_rank = r.critical_rank;
  p.breakdown = crit->bucket;
  for (size_t c = 0; c < crit->comm_total.size(); ++c) p.comm_total += crit->comm_total[c];
  for (Bucket b : {Bucket::kTpExposed, Bucket::kDpExposed, Bucket::kPpExposed, Bucket::kCpExposed,
                   Bucket::kEpExposed})
    p.comm_exposed += crit->bucket[static_cast<size_t>(b)];
  if (p.comm_total > Time::zero()) {
    const double hidden = 1.0 - p.comm_exposed.seconds() / p.comm_total.seconds();
    p.comm_hidden_share = std::clamp(hidden, 0.0, 1.0);
  }

  // Memory: static per stage + the peak of the dynamic (activation) account over its ranks.
  // Per stage: the simulated rank with the largest activation peak (lowest id on ties).
  // Gradients a PyTorch loop allocates during the backward (Task::mem_grads) are reported as
  // grads: the part of the peak that was gradient memory at that moment.
  std::vector<int64_t> stage_dyn(plan->programs.size(), -1), stage_grad(plan->programs.size(), 0);
  std::vector<uint32_t> stage_rank(plan->programs.size(), 0);
  for (const auto& rs : r.ranks) {  // ascending rank order
    const uint32_t prog = plan->program_of_rank[rs.rank];
    if (rs.peak_dynamic_mem > stage_dyn[prog]) {
      stage_dyn[prog] = rs.peak_dynamic_mem;
      stage_grad[prog] = rs.peak_grad_mem;
      stage_rank[prog] = rs.rank;
    }
  }
  for (size_t i = 0; i < plan->programs.size(); ++i) {
    const MemoryStatic& m = plan->programs[i].mem;
    MemoryReport mr;
    mr.rank = stage_rank[i];
    mr.stage = stages[i].stage;
    mr.params = m.params;
    mr.grads = m.grads + Bytes(stage_grad[i]);
    mr.optimizer = m.optimizer;
    mr.workspace = m.workspace;
    mr.activations = Bytes(std::max<int64_t>(0, stage_dyn[i] - stage_grad[i]));
    mr.capacity = gpu.hbm_capacity;
    p.memory_per_stage.push_back(mr);
    if (i == 0 || mr.total() > p.peak_memory.total()) p.peak_memory = mr;
  }

  // Where the costs came from: per op class, summed over the critical rank's program.
  // A row's key depends on the op alone: look it up once per distinct op, not per task.
  std::map<std::pair<std::string, int>, SourceRow> rows;
  std::vector<SourceRow*> row_of_op(plan->ops.size(), nullptr);   // map nodes do not move
  const Program& cp = plan->programs[plan->program_of_rank[r.critical_rank]];

  for (const Task& t : cp.tasks) {
    if (t.kind == TaskKind::kRecv) continue;   // priced on the sender
    SourceRow*& rp = row_of_op[t.op];
    if (rp == nullptr) {   // the op's first task
      const OpDesc& op = plan->ops[t.op];
      auto key = std::make_pair(source_class(op, *plan), static_cast<int>(op_src[t.op]));
      SourceRow& row = rows[key];
      if (row.what.empty()) {
        row.what = key.first;
        row.source = op_src[t.op];
        row.detail = model->describe(op.cls, op_src[t.op]);
      }
      ++row.distinct_ops;
      rp = &row;
    }
    rp->time_on_critical_rank += t.dur;
  }
  for (auto& [k, v] : rows) p.sources.push_back(v);

  if (s.model.is_moe()) {
    const MoeStats& ms = compiled.value().moe;
    MoeReport& mr = p.moe;
    mr.present = true;
    const MoeRoutingSpec& rt = s.training.moe;
    mr.routing = to_string(rt.kind);
    if (rt.kind == MoeRouting::kZipf) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "zipf(s=%g)", rt.skew);
      mr.routing = buf;
    } else if (rt.kind == MoeRouting::kHistogram) {
      mr.routing = "histogram(" + rt.histogram_file + ")";
    }
    mr.seed = rt.seed;
    mr.draws = ms.draws;
    mr.imbalance_mean = ms.imbalance_mean;
    mr.imbalance_max = ms.imbalance_max;
    mr.dropped_fraction = ms.dropped_fraction();
    mr.pods = ms.pods;
    mr.pods_drawn = ms.pods_drawn;
    mr.slices = ms.slices;
    mr.straggler_pod = ms.straggler_pod;
    mr.pod_spread = ms.pod_spread;
    if (rt.dispatch == MoeDispatch::kDedup && s.parallel.ep > 1) {
      const GroupShape ep = worst_shape(plan->groups[kGroupEp], s.cluster.gpus_per_node);
      const int k = s.model.top_k, E = s.model.experts;
      mr.dedup = true;
      mr.node_limit = rt.node_limit;
      mr.ep_nodes = ep.nodes;
      mr.node_limit_effective = effective_node_limit(k, E, ep.nodes, rt.node_limit);
      mr.distinct_nodes = expected_item_nodes(k, E, ep.nodes, rt.node_limit);
      mr.distinct_remote_nodes = expected_remote_nodes(k, E, ep.nodes, rt.node_limit);
    }
    mr.balanced_step_time = r.step_time;
    if (opts.references && rt.kind != MoeRouting::kBalanced) {
      if (compiled.value().twins_ok) {
        auto t = twin_step(*plan, compiled.value().balanced_twins, op_dur, ro);
        if (!t.ok()) return t.status();
        mr.balanced_step_time = t.value();
      } else {
        auto t = reference_step(s, opts, [](Scenario& v) { v.training.moe.kind = MoeRouting::kBalanced; });
        if (!t.ok()) return t.status();
        mr.balanced_step_time = t.value();
      }
    }
    mr.imbalance_cost = r.step_time - mr.balanced_step_time;
    if (ms.dynamic) {
      mr.dynamic = true;
      mr.rebalance_every = rt.rebalance_every;
      mr.replicas = rt.replicas;
      mr.imbalance_static_mean = ms.imbalance_static_mean;
      mr.imbalance_static_max = ms.imbalance_static_max;
      mr.experts_moved = ms.experts_moved;
      mr.experts_replicated = ms.experts_replicated;
      mr.migration_bytes_per_step = ms.migration_bytes;
      for (const Task& t : cp.tasks)
        if (plan->ops[t.op].name == "ep.placement.migration.alltoall") mr.migration_time += t.dur;
      mr.static_step_time = r.step_time;
      if (opts.references) {
        auto t = reference_step(s, opts, [](Scenario& v) { v.training.moe.placement = MoePlacement::kStatic; });
        if (!t.ok()) return t.status();
        mr.static_step_time = t.value();
      }
      mr.placement_gain = mr.static_step_time - r.step_time;
    }
  }

  if (s.training.documents.kind != DocumentLengths::kNone) {
    const DocumentStats& ds = compiled.value().documents;
    const DocumentSpec& dsp = s.training.documents;
    DocumentReport& dr = p.documents;
    dr.present = true;
    char buf[96];
    if (dsp.kind == DocumentLengths::kFixed) std::snprintf(buf, sizeof buf, "fixed(%g)", dsp.mean_tokens);
    else std::snprintf(buf, sizeof buf, "lognormal(mean %g, sigma %g)", dsp.mean_tokens, dsp.sigma);
    dr.lengths = buf;
    dr.seed = dsp.seed;
    dr.windows = ds.windows;
    dr.mean_segment = ds.segments > 0 ? static_cast<double>(ds.windows) * s.training.seq_len / ds.segments : 0;
    dr.attention_fraction = ds.attention_fraction;
    dr.straggler = ds.straggler;
    dr.dp_imbalance = ds.dp_imbalance;
    dr.cp_imbalance = ds.cp_imbalance;
    dr.balanced_step_time = r.step_time;
    if (opts.references && !dsp.balanced) {
      auto t = reference_step(s, opts, [](Scenario& v) { v.training.documents.balanced = true; });
      if (!t.ok()) return t.status();
      dr.balanced_step_time = t.value();
    }
    dr.imbalance_cost = r.step_time - dr.balanced_step_time;
  }

  if (s.options.gpu_speed.present) {
    GpuSpeedReport& g = p.gpu_speed;
    g.present = true;
    g.spec = s.options.gpu_speed;
    const auto slowest = std::min_element(speeds.begin(), speeds.end());   // the lowest rank of equals
    g.slowest = *slowest;
    g.slowest_rank = static_cast<uint32_t>(slowest - speeds.begin());
    g.mean = std::accumulate(speeds.begin(), speeds.end(), 0.0) / static_cast<double>(speeds.size());
    g.outliers = outliers;
    g.spares = spare_gpus(g.spec, plan->num_ranks);
    g.uniform_step_time = r.step_time;
    if (opts.references) {   // the same plan, every GPU at the costs' rate
      ReplayOptions o = ro;
      o.rank_speed.clear();
      o.trace_ranks.clear();
      auto u = replay(*plan, o);
      if (!u.ok()) return u.status();
      g.uniform_step_time = u.value().step_time;
    }
    g.cost = r.step_time - g.uniform_step_time;
  }

  p.pcie_duplex = ro.pcie_duplex;
  p.nccl_ctas = nccl_ctas;
  p.gpu_sms = s.cluster.gpu.sms;
  p.nccl_ctas_source = ctas_src.value();
  for (const RankStats& rk : r.ranks)
    if (rk.rank == r.critical_rank) p.contention = rk.contention;
  p.calibration = s.options.calibration;
  if (calibrated) p.calibration_notes = calibrated->notes();
  p.events = r.events;
  p.fingerprint = r.fingerprint;
  p.simulated_ranks = r.simulated_ranks;
  if (r.flow) {
    p.flow = true;
    NetworkReport& nr = p.network;
    const ClusterGraph& g = net->graph();
    nr.topology = g.name();
    nr.placement = s.options.network.placement;
    nr.fabric_gpus = g.num_gpus();
    nr.efficiency = nic_eff;
    nr.transfers = r.flows.collectives_as_flows;
    nr.flows_started = r.flows.stats.flows_started;
    nr.rate_recomputations = r.flows.stats.solves;
    nr.flows_resolved = r.flows.stats.flows_resolved;
    nr.peak_active_flows = r.flows.stats.peak_active_flows;
    for (const LinkUse& u : r.flows.hottest) {
      HotLink h;
      const Link& l = g.link(u.link);
      h.from = g.vertex_name(l.from);
      h.to = g.vertex_name(l.to);
      h.capacity = l.bw;
      h.bytes = u.bytes;
      h.busy = u.busy;
      h.utilisation = secs > 0 && l.bw.Bps() > 0 ? u.bytes / (l.bw.Bps() * secs) : 0;
      nr.hottest.push_back(h);
    }
  }
  p.trace = std::move(r.trace);
  p.plan = plan;
  p.op_sources = std::move(op_src);
  return p;
}

TimeToTrain time_to_train(const Prediction& p) {
  TimeToTrain t;
  const int64_t tokens = p.scenario.training.train_tokens;
  if (tokens <= 0 || p.tokens_per_step <= 0) return t;
  t.present = true;
  t.tokens = tokens;
  t.steps = tokens / p.tokens_per_step + (tokens % p.tokens_per_step != 0 ? 1 : 0);
  t.seconds = static_cast<double>(t.steps) * p.step_time.seconds();
  t.gpu_hours = t.seconds * p.gpus / 3600.0;
  const FailureSpec& f = p.scenario.training.failures;
  const double rate = f.per_gpu_hour * p.gpus / 3600.0;   // interruptions per second of the job
  t.mtbf_s = rate > 0 ? 1.0 / rate : HUGE_VAL;
  t.interruptions = t.seconds * rate;
  if (!f.present) return t;
  t.with_failures = true;
  const double d = f.checkpoint_write_s, r = f.restart_s;
  t.interval_auto = f.interval_s <= 0;
  t.interval_s = t.interval_auto ? (rate > 0 ? std::sqrt(2.0 * d * t.mtbf_s) : HUGE_VAL) : f.interval_s;
  // The checkpoints' share (none where tau is infinite or both tau and d are 0), and the loss
  // per interruption: the restart and half a segment.
  const double ckpt = std::isinf(t.interval_s) || t.interval_s <= 0 ? 1.0 : (t.interval_s + d) / t.interval_s;
  const double segment = std::isinf(t.interval_s) ? 0.0 : t.interval_s + d;
  t.lost_s = r + segment / 2.0;
  const double keep = 1.0 - t.lost_s * rate;
  if (!(keep > 0)) {
    t.stalls = true;
    return t;
  }
  t.wall_s = t.seconds * ckpt / keep;
  t.goodput = t.wall_s > 0 ? t.seconds / t.wall_s : 1.0;
  t.interruptions = t.wall_s * rate;
  return t;
}

}  // namespace trainsim
