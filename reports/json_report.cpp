#include "reports/json_report.h"

#include <cmath>

#include "models/memory.h"
#include "models/spec_parse.h"
#include "reports/summary.h"
#include "reports/text_table.h"

namespace trainsim {
namespace {

using nlohmann::ordered_json;

double fraction(Time part, Time whole) {
  return whole.count_ps() > 0
             ? static_cast<double>(part.count_ps()) / static_cast<double>(whole.count_ps())
             : 0.0;
}

ordered_json time_json(Time t, Time step) {
  ordered_json j;
  j["s"] = json_number(t.seconds());
  j["ps"] = t.count_ps();
  j["fraction"] = json_number(fraction(t, step));
  return j;
}

}  // namespace

ordered_json json_number(double v) { return std::isfinite(v) ? ordered_json(v) : ordered_json(nullptr); }

ordered_json memory_report_json(const MemoryReport& m) {
  ordered_json j;
  j["rank"] = m.rank;
  j["stage"] = m.stage;
  j["params_bytes"] = m.params.count();
  j["grads_bytes"] = m.grads.count();
  j["optimizer_bytes"] = m.optimizer.count();
  j["activations_bytes"] = m.activations.count();
  j["workspace_bytes"] = m.workspace.count();
  j["total_bytes"] = m.total().count();
  j["capacity_bytes"] = m.capacity.count();
  j["oom"] = m.oom();
  return j;
}

ordered_json prediction_json(const Prediction& p) {
  const Scenario& s = p.scenario;
  const ModelSpec& m = s.model;
  const TrainingSpec& tr = s.training;
  const ParallelSpec& par = s.parallel;
  ordered_json j;

  j["scenario"] = {{"name", s.name}, {"file", s.file}};

  ordered_json model;
  model["name"] = m.name;
  model["arch"] = m.arch;
  model["layers"] = m.layers;
  model["hidden"] = m.hidden;
  model["heads"] = m.heads;
  model["kv_heads"] = m.kv_heads;
  model["head_dim"] = m.head_dim;
  if (m.mla) {   // only for MLA models, so other reports keep their bytes
    model["attention"] = "mla";
    model["q_lora_rank"] = m.q_lora_rank;
    model["kv_lora_rank"] = m.kv_lora_rank;
    model["qk_nope_head_dim"] = m.qk_nope_head_dim;
    model["qk_rope_head_dim"] = m.qk_rope_head_dim;
    model["v_head_dim"] = m.v_head_dim;
  }
  model["ffn_hidden"] = m.ffn_hidden;
  model["vocab"] = m.vocab;
  model["activation"] = to_string(m.activation);
  model["norm"] = to_string(m.norm);
  model["tied_embeddings"] = m.tied_embeddings;
  model["params"] = (m.hidden > 0 && m.heads > 0 && m.ffn_hidden > 0) ? total_params(m) : 0;
  if (m.mtp_depth > 0) {   // MTP models only, so other reports keep their bytes
    model["mtp_depth"] = m.mtp_depth;
    model["mtp_params"] = mtp_params(m);
  }
  j["model"] = std::move(model);

  ordered_json training;
  training["seq_len"] = tr.seq_len;
  training["global_batch"] = tr.global_batch;
  training["micro_batch"] = tr.micro_batch;
  training["precision"] = to_string(tr.precision);
  if (tr.precision == DType::kFP8) {
    training["fp8_recipe"] = to_string(tr.fp8_recipe);
    training["fp8_cache_inputs"] = tr.fp8_cache_inputs;
  }
  training["attention_kernel"] = to_string(tr.attention_kernel);
  training["framework"] = to_string(tr.framework);
  if (tr.train_tokens > 0) training["train_tokens"] = tr.train_tokens;   // only when set
  j["training"] = std::move(training);

  ordered_json cluster;
  cluster["gpu"] = s.cluster.gpu.name;
  cluster["gpus"] = s.cluster.gpus;
  cluster["gpus_per_node"] = s.cluster.gpus_per_node;
  cluster["hbm_capacity_bytes"] = s.cluster.gpu.hbm_capacity.count();
  {   // the figures the costs use (a custom GPU's base: the catalog GPU it starts from; null for the catalog's)
    const GpuSpec& g = s.cluster.gpu;
    ordered_json spec;
    spec["base"] = g.base.empty() ? ordered_json() : ordered_json(g.base);
    spec["family"] = g.family;
    spec["peak_bf16_tflops"] = g.peak_bf16.tflops();
    spec["peak_fp16_tflops"] = g.peak_fp16.tflops();
    spec["peak_fp8_tflops"] = g.peak_fp8.tflops();
    spec["peak_fp32_tflops"] = g.peak_fp32.tflops();
    spec["hbm_bandwidth_GBps"] = g.hbm_bandwidth.Bps() * 1e-9;
    spec["nvlink_GBps_per_direction"] = g.nvlink_bandwidth.Bps() * 1e-9;
    spec["nic_Gbps"] = g.nic_bandwidth.Bps() * 8e-9;
    spec["pcie_GBps_per_direction"] = g.pcie_bandwidth.Bps() * 1e-9;
    spec["sms"] = g.sms;
    spec["tdp_w"] = g.tdp_w;
    spec["power_limit_w"] = g.power_limit_w;
    cluster["gpu_spec"] = std::move(spec);
  }
  j["cluster"] = std::move(cluster);

  ordered_json strategy;
  strategy["tp"] = par.tp;
  strategy["pp"] = par.pp;
  strategy["vp"] = par.vp;
  strategy["dp"] = par.dp;
  strategy["cp"] = par.cp;
  strategy["cp_ulysses"] = par.cp_ulysses;
  strategy["cp_load_balance"] = par.cp_load_balance;
  strategy["ep"] = par.ep;
  if (ep_folded(par) && (par.ep > 1 || par.etp > 1)) {   // only then: EP-along-DP reports keep their bytes
    strategy["ep_layout"] = "folded";
    strategy["etp"] = par.etp;
    strategy["edp"] = expert_dp_size(par);
  } else if (par.etp > 1) {   // EP along DP with experts TP-split
    strategy["etp"] = par.etp;
  }
  if (par.ep_overlap) strategy["ep_overlap"] = true;   // only when on: other reports keep their bytes
  if (par.delay_wgrad) strategy["delay_wgrad"] = true;
  if (par.hsdp_defer_all_reduce) strategy["hsdp_defer_all_reduce"] = true;
  strategy["sequence_parallel"] = par.sequence_parallel;
  if (par.tp_overlap) strategy["tp_overlap"] = true;   // only when set: other reports keep their bytes
  strategy["schedule"] = to_string(par.schedule);
  strategy["zero"] = par.zero;
  strategy["fsdp_shard_group"] = par.fsdp_shard_group;
  strategy["recompute"] = to_string(par.recompute);
  if (par.recompute_layers > 0) strategy["recompute_layers"] = par.recompute_layers;   // only when set: other reports keep their bytes
  if (par.recompute == Recompute::kSelective && par.recompute_modules != kRecomputeCoreAttn) {   // likewise
    nlohmann::json mods = nlohmann::json::array();
    for (uint32_t bit = 1; bit <= kRecomputeOp; bit <<= 1) {
      if ((par.recompute_modules & bit) == 0) continue;
      mods.push_back(recompute_modules_string(bit));
    }
    strategy["recompute_modules"] = mods;
  }
  strategy["order"] = par.order;
  strategy["dp_bucket_mb"] = par.dp_bucket_mb;
  strategy["dp_overlap"] = par.dp_overlap;
  strategy["zero3_prefetch"] = par.zero3_prefetch;
  if (!par.zero3_reshard) strategy["zero3_reshard"] = false;   // only when set: other reports keep their bytes
  strategy["grad_reduce_dtype"] = to_string(resolved_grad_reduce(par.grad_reduce_dtype, s.training.precision));
  j["strategy"] = std::move(strategy);

  j["mode"] = p.fast ? "fast" : "full";
  j["simulated_ranks"] = p.simulated_ranks;
  j["gpus"] = p.gpus;
  j["step_time_s"] = json_number(p.step_time.seconds());
  j["step_time_ps"] = p.step_time.count_ps();
  j["tokens_per_step"] = p.tokens_per_step;
  j["tokens_per_s"] = json_number(p.tokens_per_s);
  j["tokens_per_s_per_gpu"] = json_number(p.tokens_per_s_per_gpu);
  j["model_tflops_per_gpu"] = json_number(p.model_tflops_per_gpu);
  j["hardware_tflops_per_gpu"] = json_number(p.hardware_tflops_per_gpu);
  j["peak_tflops_per_gpu"] = json_number(p.peak_tflops);
  j["mfu"] = json_number(p.mfu);
  j["hfu"] = json_number(p.hfu);
  j["critical_rank"] = p.critical_rank;
  if (const TimeToTrain ttt = time_to_train(p); ttt.present) {   // only when asked: other reports keep their bytes
    ordered_json t;
    t["tokens"] = ttt.tokens;
    t["steps"] = ttt.steps;
    t["seconds"] = json_number(ttt.seconds);
    t["days"] = json_number(ttt.seconds / 86400.0);
    t["gpu_hours"] = json_number(ttt.gpu_hours);
    const FailureSpec& f = p.scenario.training.failures;
    ordered_json fj;
    fj["per_gpu_hour"] = json_number(f.per_gpu_hour);
    fj["rate_source"] = f.rate_default ? kLlama3InterruptionsSource : "failures.per_gpu_hour";
    fj["mtbf_s"] = json_number(ttt.mtbf_s);   // null at rate 0 (infinite)
    fj["interruptions"] = json_number(ttt.interruptions);
    if (ttt.with_failures) {
      fj["checkpoint_write_s"] = json_number(f.checkpoint_write_s);
      fj["restart_s"] = json_number(f.restart_s);
      fj["checkpoint_interval_s"] = json_number(ttt.interval_s);
      fj["checkpoint_interval_auto"] = ttt.interval_auto;
      fj["lost_per_interruption_s"] = json_number(ttt.lost_s);
      fj["stalls"] = ttt.stalls;
      fj["wall_s"] = ttt.stalls ? ordered_json(nullptr) : json_number(ttt.wall_s);
      fj["wall_days"] = ttt.stalls ? ordered_json(nullptr) : json_number(ttt.wall_s / 86400.0);
      fj["goodput"] = ttt.stalls ? ordered_json(0.0) : json_number(ttt.goodput);
    }
    t["failures"] = std::move(fj);
    j["time_to_train"] = std::move(t);
  }
  if (p.moe.present) {   // MoE scenarios only: dense reports keep their shape
    ordered_json moe;
    moe["routing"] = p.moe.routing;
    moe["seed"] = p.moe.seed;
    moe["draws"] = p.moe.draws;
    moe["imbalance_mean"] = json_number(p.moe.imbalance_mean);
    moe["imbalance_max"] = json_number(p.moe.imbalance_max);
    moe["dropped_fraction"] = json_number(p.moe.dropped_fraction);
    moe["pods"] = p.moe.pods;
    moe["pods_drawn"] = p.moe.pods_drawn;
    moe["slices"] = p.moe.slices;
    moe["straggler_pod"] = p.moe.straggler_pod;
    moe["pod_spread"] = json_number(p.moe.pod_spread);
    moe["balanced_step_time_s"] = json_number(p.moe.balanced_step_time.seconds());
    moe["imbalance_cost_s"] = json_number(p.moe.imbalance_cost.seconds());
    moe["imbalance_cost_ps"] = p.moe.imbalance_cost.count_ps();
    moe["cost_source"] = "the same cost model, predicted again with balanced routing";
    if (p.moe.dedup) {   // only with dispatch "dedup", so other reports keep their bytes
      ordered_json d;
      d["dispatch"] = "dedup";
      d["node_limit"] = p.moe.node_limit;
      d["node_limit_effective"] = p.moe.node_limit_effective;
      d["ep_nodes"] = p.moe.ep_nodes;
      d["distinct_nodes_per_token"] = json_number(p.moe.distinct_nodes);
      d["distinct_remote_nodes_per_token"] = json_number(p.moe.distinct_remote_nodes);
      d["model"] = "uniform expectation over k distinct experts of E spread evenly over the EP group's nodes "
                   "(node limit M: M random nodes, k of their experts); NIC bytes = copies x remote nodes / k";
      moe["ep_dispatch"] = std::move(d);
    }
    if (p.moe.dynamic) {   // only with dynamic placement, so other reports keep their bytes
      ordered_json pl;
      pl["placement"] = "dynamic";
      pl["rebalance_every"] = p.moe.rebalance_every;
      pl["replicas"] = p.moe.replicas;
      pl["imbalance_static_mean"] = json_number(p.moe.imbalance_static_mean);
      pl["imbalance_static_max"] = json_number(p.moe.imbalance_static_max);
      pl["imbalance_dynamic_mean"] = json_number(p.moe.imbalance_mean);
      pl["imbalance_dynamic_max"] = json_number(p.moe.imbalance_max);
      pl["experts_moved"] = p.moe.experts_moved;
      pl["experts_replicated"] = p.moe.experts_replicated;
      pl["migration_bytes_per_step_all_layers"] = p.moe.migration_bytes_per_step;
      pl["migration_time_s"] = json_number(p.moe.migration_time.seconds());
      pl["static_step_time_s"] = json_number(p.moe.static_step_time.seconds());
      pl["gain_s"] = json_number(p.moe.placement_gain.seconds());
      pl["gain_ps"] = p.moe.placement_gain.count_ps();
      pl["migration_cost_model"] = "an all-to-all on the EP group per MoE layer and step (in the plan): moved experts' "
                                   "weights and optimizer states and replicas' weights / rebalance_every, plus the "
                                   "replicas' gradient and weight sync every step";
      moe["placement"] = std::move(pl);
    }
    j["moe"] = std::move(moe);
  }

  if (p.documents.present) {   // only with a documents section: other reports keep their shape
    ordered_json d;
    d["lengths"] = p.documents.lengths;
    d["seed"] = p.documents.seed;
    d["windows"] = p.documents.windows;
    d["mean_segment_tokens"] = json_number(p.documents.mean_segment);
    d["attention_fraction"] = json_number(p.documents.attention_fraction);
    d["straggler_replica"] = p.documents.straggler;
    d["dp_imbalance"] = json_number(p.documents.dp_imbalance);
    d["cp_imbalance"] = json_number(p.documents.cp_imbalance);
    d["balanced_step_time_s"] = json_number(p.documents.balanced_step_time.seconds());
    d["imbalance_cost_s"] = json_number(p.documents.imbalance_cost.seconds());
    d["imbalance_cost_ps"] = p.documents.imbalance_cost.count_ps();
    d["cost_source"] = "the same cost model, predicted again with every window at the mean attention work";
    j["documents"] = std::move(d);
  }

  if (p.gpu_speed.present) {   // only with a gpu_speed section: other reports keep their shape
    const GpuSpeedReport& g = p.gpu_speed;
    ordered_json d;
    d["cv"] = json_number(g.spec.cv);
    d["slow_share"] = json_number(g.spec.slow_share);
    d["slow_speed"] = json_number(g.spec.slow_speed);
    d["spare_share"] = json_number(g.spec.spare_share);
    d["seed"] = g.spec.seed;
    d["outliers"] = g.outliers;
    d["spares_screened_out"] = g.spares;
    d["slowest"] = json_number(g.slowest);
    d["slowest_rank"] = g.slowest_rank;
    d["mean"] = json_number(g.mean);
    d["simulated_speeds"] = p.fast ? "each simulated rank at the slowest speed of the ranks of its program (an upper estimate)"
                                   : "every rank at its own speed";
    d["uniform_step_time_s"] = json_number(g.uniform_step_time.seconds());
    d["cost_s"] = json_number(g.cost.seconds());
    d["cost_ps"] = g.cost.count_ps();
    d["cost_source"] = "what-if: the scenario's gpu_speed section; the same plan replayed with every GPU at the costs' rate";
    j["gpu_speed"] = std::move(d);
  }

  // Every bucket, zero or not, so consumers never test for presence.
  ordered_json breakdown;
  Time sum;
  for (size_t i = 0; i < static_cast<size_t>(Bucket::kCount); ++i) {
    breakdown[breakdown_key(static_cast<Bucket>(i))] = time_json(p.breakdown[i], p.step_time);
    sum += p.breakdown[i];
  }
  breakdown["total"] = time_json(sum, p.step_time);
  j["breakdown"] = std::move(breakdown);

  ordered_json comm;
  comm["total_s"] = json_number(p.comm_total.seconds());
  comm["total_ps"] = p.comm_total.count_ps();
  comm["exposed_s"] = json_number(p.comm_exposed.seconds());
  comm["exposed_ps"] = p.comm_exposed.count_ps();
  comm["hidden_fraction"] = json_number(p.comm_hidden_share);
  j["comm"] = std::move(comm);

  ordered_json memory;
  memory["capacity_bytes"] = p.peak_memory.capacity.count();
  memory["oom"] = p.peak_memory.oom();
  memory["verdict"] = memory_verdict(p.peak_memory);
  memory["peak"] = memory_report_json(p.peak_memory);
  ordered_json per_stage = ordered_json::array();
  for (const MemoryReport& r : p.memory_per_stage) per_stage.push_back(memory_report_json(r));
  memory["per_stage"] = std::move(per_stage);
  j["memory"] = std::move(memory);

  ordered_json sources = ordered_json::array();
  for (const SourceRow& r : p.sources) {
    ordered_json row;
    row["what"] = r.what;
    row["source"] = to_string(r.source);
    row["distinct_ops"] = r.distinct_ops;
    row["time_on_critical_rank_s"] = json_number(r.time_on_critical_rank.seconds());
    row["time_on_critical_rank_ps"] = r.time_on_critical_rank.count_ps();
    row["detail"] = r.detail;
    sources.push_back(std::move(row));
  }
  j["sources"] = std::move(sources);
  j["calibration"] = p.calibration;
  j["calibration_notes"] = p.calibration_notes;
  j["compute_under_collectives"] = {{"nccl_ctas", p.nccl_ctas},
                                    {"gpu_sms", p.gpu_sms},
                                    {"source", p.nccl_ctas_source},
                                    {"added_on_critical_rank_s", json_number(p.contention.seconds())}};
  j["pcie_duplex_factor"] = json_number(p.pcie_duplex);

  j["events"] = p.events;
  j["fingerprint"] = reports::strf("%016llx", (unsigned long long)p.fingerprint);
  if (p.flow) {   // flow mode only: analytic documents keep their exact key set
    const NetworkReport& n = p.network;
    ordered_json net;
    net["mode"] = "flow";
    net["topology"] = n.topology;
    net["fabric_gpus"] = n.fabric_gpus;
    net["placement"] = n.placement;
    net["link_efficiency"] = json_number(n.efficiency);
    net["transfers"] = n.transfers;
    net["flows_started"] = n.flows_started;
    net["rate_recomputations"] = n.rate_recomputations;
    net["flows_resolved"] = n.flows_resolved;
    net["peak_active_flows"] = n.peak_active_flows;
    ordered_json hot = ordered_json::array();
    for (const HotLink& h : n.hottest) {
      ordered_json row;
      row["from"] = h.from;
      row["to"] = h.to;
      row["capacity_bytes_per_s"] = json_number(h.capacity.Bps());
      row["bytes"] = json_number(h.bytes);
      row["utilisation"] = json_number(h.utilisation);
      row["busy_s"] = json_number(h.busy.seconds());
      row["busy_ps"] = h.busy.count_ps();
      hot.push_back(std::move(row));
    }
    net["hottest_links"] = std::move(hot);
    j["network"] = std::move(net);
  }
  return j;
}

}  // namespace trainsim
