#include "reports/summary.h"

#include <cstdint>

#include "models/compiler.h"
#include "models/memory.h"
#include "models/spec_parse.h"
#include "reports/text_table.h"
#include "topologies/placement.h"

namespace trainsim {
namespace {

using reports::Align;
using reports::gib2;
using reports::group_digits;
using reports::share;
using reports::strf;
using reports::unsigned_pct;
using reports::TextTable;

constexpr size_t kNumBuckets = static_cast<size_t>(Bucket::kCount);
constexpr size_t kMaxStageRows = 64;

double gib(Bytes b) { return b.gib(); }


std::string on_off(bool b) { return b ? "on" : "off"; }

// 300B, 15T, 2.5M: a token count as it is usually written (4 significant digits); below a
// million, every digit.
std::string count_text(int64_t n) {
  const double v = static_cast<double>(n);
  if (v >= 1e12) return strf("%.4gT", v / 1e12);
  if (v >= 1e9) return strf("%.4gB", v / 1e9);
  if (v >= 1e6) return strf("%.4gM", v / 1e6);
  return group_digits(v);
}

// A run's wall time in the unit it is read in: seconds, minutes, hours, days.
std::string duration_text(double s) {
  if (s < 120) return strf("%.1f s", s);
  if (s < 7200) return strf("%.1f minutes", s / 60);
  if (s < 2 * 86400.0) return strf("%.1f hours", s / 3600);
  if (s < 100 * 86400.0) return strf("%.1f days", s / 86400);
  return group_digits(s / 86400) + " days";
}

void kv(std::string& out, const char* key, const std::string& value) {
  out += strf("%-14s%s\n", key, value.c_str());
}

// The interruptions of the run of training.train_tokens (scenarios/predict.h time_to_train).
void interruptions_lines(std::string& out, const Prediction& p, const TimeToTrain& t) {
  const FailureSpec& f = p.scenario.training.failures;
  const std::string rate =
      f.per_gpu_hour <= 0 ? std::string("none (failures.per_gpu_hour 0)")
                          : strf("one per %s of the job (%.3g per GPU-hour x %s GPUs; %s)", duration_text(t.mtbf_s).c_str(),
                                 f.per_gpu_hour, group_digits(p.gpus).c_str(),
                                 f.rate_default ? kLlama3InterruptionsSource : "failures.per_gpu_hour");
  if (!t.with_failures) {
    kv(out, "interruptions", strf("%.1f expected in that time: %s; a \"failures\" section with checkpoint_write and "
                                  "restart gives the time with them",
                                  t.interruptions, rate.c_str()));
    return;
  }
  if (f.per_gpu_hour <= 0) {
    kv(out, "with failures", strf("%s, %.1f%% goodput: no interruptions; a checkpoint every %s", duration_text(t.wall_s).c_str(),
                                  t.goodput * 100, std::isinf(t.interval_s) ? "never" : duration_text(t.interval_s).c_str()));
    return;
  }
  if (t.stalls) {
    kv(out, "with failures", strf("never finishes: an interruption loses %s on average (restart %s + half a checkpoint "
                                  "interval and write), the job's MTBF is %s; %s",
                                  duration_text(t.lost_s).c_str(), duration_text(f.restart_s).c_str(),
                                  duration_text(t.mtbf_s).c_str(), rate.c_str()));
    return;
  }
  kv(out, "with failures",
     strf("%s, %.1f%% goodput: a checkpoint every %s of training (%s, write %s), %.1f interruptions expected, "
          "each losing %s on average (restart %s + half an interval and write); %s",
          duration_text(t.wall_s).c_str(), t.goodput * 100, duration_text(t.interval_s).c_str(),
          t.interval_auto ? "Young's sqrt(2 x write x MTBF)" : "failures.checkpoint_interval",
          duration_text(f.checkpoint_write_s).c_str(), t.interruptions, duration_text(t.lost_s).c_str(),
          duration_text(f.restart_s).c_str(), rate.c_str()));
}

void header_section(std::string& out, const Prediction& p) {
  const Scenario& s = p.scenario;
  const ModelSpec& m = s.model;
  const ParallelSpec& par = s.parallel;
  const TrainingSpec& tr = s.training;

  out += "trainsim prediction: " + s.name + "\n";
  kv(out, "model", strf("%s (%d layers, hidden %d, %d heads / %d kv, ffn %d, vocab %d, %s, "
                        "%.2f B params)",
                        m.name.c_str(), m.layers, m.hidden, m.heads,
                        m.kv_heads > 0 ? m.kv_heads : m.heads, m.ffn_hidden, m.vocab,
                        to_string(m.activation),
                        m.hidden > 0 && m.heads > 0 && m.ffn_hidden > 0
                            ? static_cast<double>(total_params(m)) * 1e-9
                            : 0.0));
  if (m.mtp_depth > 0)   // MTP models only, so other summaries keep their bytes
    kv(out, "mtp", strf("%d multi-token-prediction module%s on the last stage, +%.2f B params (not in the figure above)",
                        m.mtp_depth, m.mtp_depth > 1 ? "s" : "", static_cast<double>(mtp_params(m)) * 1e-9));
  if (m.mla)   // MLA models only, so other summaries keep their bytes
    kv(out, "attention", strf("multi-head latent: q latent %d, kv latent %d, qk head dim %d + %d rope, v head dim %d",
                              m.q_lora_rank, m.kv_lora_rank, m.qk_nope_head_dim, m.qk_rope_head_dim,
                              m.v_head_dim));
  if (m.is_moe())
    kv(out, "moe", strf("%d experts, top-%d, expert ffn %d, %d shared, %d dense layers, capacity %s, "
                        "%.2f B active params",
                        m.experts, m.top_k, m.expert_ffn_hidden, m.shared_experts, m.dense_layers,
                        m.capacity_factor > 0 ? strf("%.2f", m.capacity_factor).c_str() : "dropless",
                        static_cast<double>(active_params(m)) * 1e-9));
  kv(out, "gpus", strf("%d x %s (%s%d per node)", p.gpus, s.cluster.gpu.name.c_str(),
                       s.cluster.gpu.base.empty() ? "" : ("the scenario's GPU, based on " + s.cluster.gpu.base + "; ").c_str(),
                       s.cluster.gpus_per_node));
  if (!s.cluster.gpu.base.empty()) {   // what the scenario's GPU is: every figure the costs use
    const GpuSpec& g = s.cluster.gpu;
    kv(out, "gpu", strf("%.0f TFLOP/s bf16, %.0f fp16, %.0f fp8, %.1f fp32; HBM %.2f GiB at %.0f GB/s; NVLink %.0f "
                        "GB/s, NIC %.0f Gb/s, PCIe %.0f GB/s per direction; %d SMs; %.0f of %.0f W; %s kernel "
                        "efficiencies",
                        g.peak_bf16.tflops(), g.peak_fp16.tflops(), g.peak_fp8.tflops(), g.peak_fp32.tflops(),
                        static_cast<double>(g.hbm_capacity.count()) / 1073741824.0, g.hbm_bandwidth.Bps() * 1e-9,
                        g.nvlink_bandwidth.Bps() * 1e-9, g.nic_bandwidth.Bps() * 8e-9, g.pcie_bandwidth.Bps() * 1e-9,
                        g.sms, g.power_limit_w, g.tdp_w, g.family.c_str()));
  }
  const int64_t per_replica = static_cast<int64_t>(tr.micro_batch) * (par.dp > 0 ? par.dp : 1);
  const std::string fp8_note = tr.precision != DType::kFP8
                                   ? ""
                                   : " (" + std::string(to_string(tr.fp8_recipe)) + " scaling; LM head in bf16" +
                                         (tr.fp8_cache_inputs ? "; linear inputs kept in fp8)" : ")");
  kv(out, "batch", strf("global %lld x seq %d, micro-batch %d (%lld micro-batches per replica), "
                        "%s%s",
                        (long long)tr.global_batch, tr.seq_len, tr.micro_batch,
                        per_replica > 0 ? (long long)(tr.global_batch / per_replica) : 0LL,
                        to_string(tr.precision), fp8_note.c_str()));
  kv(out, "kernels", strf("attention %s, framework %s", to_string(tr.attention_kernel),
                          tr.framework == Framework::kFused        ? "fused (Megatron / NeMo kernels)"
                          : tr.framework == Framework::kTorchCompile ? "torch_compile (PyTorch loop, blocks compiled)"
                                                                     : "torch_eager (PyTorch loop, an op per kernel)"));
  std::string zero = strf("zero %d", par.zero);
  if (par.zero > 0) {
    const int shard = (par.fsdp_shard_group > 0 ? par.fsdp_shard_group : par.dp) * par.cp;
    zero += par.cp > 1 ? strf(" (shard group %d = dp-shard x cp", shard) : strf(" (shard group %d", shard);
    // HSDP with MoE: the routed experts' own shard group (the expert-DP ranks in one replica).
    if (s.model.is_moe() && par.fsdp_shard_group > 0 && par.fsdp_shard_group < par.dp) {
      auto es = expert_shard_group(par);
      if (es.ok() && es.value() > 0)
        zero += strf("; routed experts: shard group %d x %d replicas", es.value(), expert_dp_size(par) / es.value());
    }
    if (par.hsdp_defer_all_reduce) zero += "; replica all-reduce in the last micro-batch only";
    if (par.zero >= 3 && !par.zero3_reshard) zero += "; parameters kept gathered, gradients reduced once";
    zero += ")";
  }
  // The gradient format, where gradients are reduced over ranks at all.
  if (reduces_dp_gradients(s.model, par))
    zero += strf(", gradients reduced in %s", to_string(resolved_grad_reduce(par.grad_reduce_dtype, tr.precision)));
  std::string cp_how;
  if (par.cp > 1) {
    const int ring = par.cp / std::max(1, par.cp_ulysses);
    cp_how = ring == 1 ? " (ulysses)"
                       : par.cp_ulysses > 1
                             ? strf(" (ulysses %d x ring %d%s)", par.cp_ulysses, ring, par.cp_load_balance ? " zig-zag" : "")
                             : strf(" (ring%s)", par.cp_load_balance ? " zig-zag" : ", contiguous chunks");
  }
  // Folded EP (models/spec.h EpLayout) is named; EP along DP keeps the line it always had, with
  // its expert TP where there is one.
  std::string ep_how = ep_folded(par) && (par.ep > 1 || par.etp > 1)
                           ? strf(" (folded: etp=%d edp=%d)", par.etp, expert_dp_size(par))
                           : par.etp > 1 ? strf(" (etp=%d)", par.etp) : std::string();
  if (par.ep_overlap) ep_how += " overlapped";   // all-to-alls beside another micro-batch's compute
  if (par.delay_wgrad) ep_how += ", wgrad delayed";
  std::string recompute_how = to_string(par.recompute);
  if (par.recompute == Recompute::kFull && par.recompute_layers > 0)
    recompute_how += strf(" (first %d layer%s of each chunk)", par.recompute_layers, par.recompute_layers == 1 ? "" : "s");
  if (par.recompute == Recompute::kSelective && par.recompute_modules != kRecomputeCoreAttn)
    recompute_how += " (" + recompute_modules_string(par.recompute_modules) + ")";
  kv(out, "strategy", strf("tp=%d pp=%d vp=%d dp=%d cp=%d%s ep=%d%s, sp %s, schedule %s, %s, "
                           "recompute %s",
                           par.tp, par.pp, par.vp, par.dp, par.cp, cp_how.c_str(), par.ep, ep_how.c_str(),
                           (on_off(par.sequence_parallel) + (par.tp_overlap ? " (TP collectives overlapped)" : "")).c_str(),
                           to_string(par.schedule),
                           zero.c_str(), recompute_how.c_str()));
  if (!par.layers_per_stage.empty()) {   // an uneven split (given, or the loader's balanced one)
    std::string runs;
    for (size_t i = 0; i < par.layers_per_stage.size();) {
      size_t j = i;
      while (j < par.layers_per_stage.size() && par.layers_per_stage[j] == par.layers_per_stage[i]) ++j;
      runs += (runs.empty() ? "" : ", ") + std::to_string(par.layers_per_stage[i]) +
              (j - i > 1 ? strf(" x %zu", j - i) : std::string());
      i = j;
    }
    kv(out, "layers", strf("%d over %zu %s: %s", s.model.layers, par.layers_per_stage.size(),
                           par.layers_per_stage.size() == static_cast<size_t>(par.pp) ? "stages" : "pipeline chunks",
                           runs.c_str()));
  }
  // NVIDIA quotes NVLink both directions together (H100: 900 GB/s); the scenario's figure is per
  // direction (450). Twice the catalog's per-direction figure is most likely that mix-up.
  if (s.cluster.gpu.base.empty() && s.cluster.gpu.nvlink_bandwidth.Bps() > 0) {
    const double ratio = s.cluster.nvlink_bandwidth.Bps() / s.cluster.gpu.nvlink_bandwidth.Bps();
    if (ratio > 1.9 && ratio < 2.1)
      kv(out, "note", strf("nvlink_bandwidth %.0f GB/s per direction is twice %s's %.0f GB/s: NVIDIA quotes "
                           "NVLink for both directions together; give the per-direction figure unless this is a what-if",
                           s.cluster.nvlink_bandwidth.Bps() * 1e-9, s.cluster.gpu.name.c_str(),
                           s.cluster.gpu.nvlink_bandwidth.Bps() * 1e-9));
  }
  if (par.ep > 1 && p.plan) {   // where the all-to-all runs: the critical rank's EP group
    for (const GroupTable& g : p.plan->groups) {
      if (g.name != "ep" || p.critical_rank >= g.instance_of_rank.size()) continue;
      const uint32_t inst = g.instance_of_rank[p.critical_rank];
      if (inst == kNoDep) break;
      const GroupShape sh = shape_of(g, inst, std::max(1, s.cluster.gpus_per_node));
      kv(out, "ep group", strf("%d ranks on %d node%s (rank %u's): the dispatch and combine all-to-alls %s",
                               sh.size, sh.nodes, sh.nodes == 1 ? "" : "s", p.critical_rank,
                               sh.nodes == 1 ? "stay on NVLink" : "cross the NICs"));
      break;
    }
  }
  kv(out, "mode", strf("%s (%d of %d ranks simulated, %llu events, fingerprint %016llx)",
                       p.fast ? "fast" : "full", p.simulated_ranks, p.gpus,
                       (unsigned long long)p.events, (unsigned long long)p.fingerprint));
  if (!p.flow && !s.options.network.flow_only_given.empty()) {
    std::string keys;
    for (const std::string& k : s.options.network.flow_only_given) keys += (keys.empty() ? "" : ", ") + k;
    const bool one = s.options.network.flow_only_given.size() == 1;
    kv(out, "note", keys + (one ? " applies" : " apply") +
                        " in flow mode only (--set network.mode=flow); this analytic prediction does not use " +
                        (one ? "it" : "them"));
  }
}

void documents_section(std::string& out, const Prediction& p) {
  if (!p.documents.present) return;
  const DocumentReport& d = p.documents;
  kv(out, "documents", strf("%s, seed %llu: %lld windows, %.0f tokens per document segment, attention work %.1f%% of "
                            "unmasked causal",
                            d.lengths.c_str(), (unsigned long long)d.seed, (long long)d.windows, d.mean_segment,
                            d.attention_fraction * 100.0));
  kv(out, "imbalance", strf("DP replicas: straggler %d at %.3f x the mean attention work; CP ring ranks: %.3f x the "
                            "mean per step",
                            d.straggler, d.dp_imbalance, d.cp_imbalance));
  kv(out, "packing cost", strf("%s (%s of the step; every window at the mean work: %s, same cost model)",
                               format_time(d.imbalance_cost).c_str(), share(d.imbalance_cost, p.step_time).c_str(),
                               format_time(d.balanced_step_time).c_str()));
}

void gpu_speed_section(std::string& out, const Prediction& p) {
  if (!p.gpu_speed.present) return;
  const GpuSpeedReport& g = p.gpu_speed;
  std::string what = strf("cv %.1f%%", g.spec.cv * 100.0);
  if (g.spec.slow_share > 0)
    what += strf(", outliers %g%% at %.2f (%d GPU%s)", g.spec.slow_share * 100.0, g.spec.slow_speed, g.outliers,
                 g.outliers == 1 ? "" : "s");
  if (g.spares > 0)
    what += strf(", the slowest %d of %d GPUs screened out", g.spares, p.gpus + g.spares);
  kv(out, "gpu speed", strf("%s, seed %llu (what-if: the scenario's gpu_speed section): slowest GPU %.3f (rank %u), "
                            "mean %.3f",
                            what.c_str(), (unsigned long long)g.spec.seed, g.slowest, g.slowest_rank, g.mean));
  kv(out, "speed cost", strf("%s (%s of the step; every GPU at the costs' rate: %s, same plan)%s",
                             format_time(g.cost).c_str(), share(g.cost, p.step_time).c_str(),
                             format_time(g.uniform_step_time).c_str(),
                             p.fast ? "; fast mode: each simulated rank at the slowest speed of the ranks it stands "
                                      "for, an upper estimate (full mode gives every GPU its own)"
                                    : ""));
}

void performance_section(std::string& out, const Prediction& p) {
  out += "\n";
  kv(out, "step time", format_time(p.step_time));
  kv(out, "throughput", strf("%s tokens/s (%s tokens/s per GPU, %s tokens per step)",
                             group_digits(p.tokens_per_s).c_str(),
                             group_digits(p.tokens_per_s_per_gpu).c_str(),
                             group_digits(static_cast<double>(p.tokens_per_step)).c_str()));
  const bool fp8 = p.scenario.training.precision == DType::kFP8;
  kv(out, "TFLOP/s/GPU", strf("%.1f model, %.1f hardware (peak %.1f %s)", p.model_tflops_per_gpu,
                              p.hardware_tflops_per_gpu, p.peak_tflops,
                              fp8 ? "bf16: MFU/HFU of fp8 runs are quoted against the bf16 peak"
                                  : to_string(p.scenario.training.precision)));
  kv(out, "MFU / HFU", unsigned_pct(p.mfu) + " / " + unsigned_pct(p.hfu));
  const TimeToTrain ttt = time_to_train(p);
  if (ttt.present) {
    kv(out, "time to train",
       strf("%s tokens: %s step%s, %s (%s GPU-hours); steps only, no checkpoints, evaluation or restarts",
            count_text(ttt.tokens).c_str(), group_digits(static_cast<double>(ttt.steps)).c_str(),
            ttt.steps == 1 ? "" : "s", duration_text(ttt.seconds).c_str(),
            ttt.gpu_hours >= 100 ? group_digits(ttt.gpu_hours).c_str() : strf("%.3g", ttt.gpu_hours).c_str()));
    interruptions_lines(out, p, ttt);
  }
  if (p.moe.present) {
    const MoeReport& m = p.moe;
    kv(out, "moe routing", strf("%s, seed %llu, %d draws (MoE layers x micro-batches)", m.routing.c_str(),
                                (unsigned long long)m.seed, m.draws));
    kv(out, "imbalance", strf("busiest EP rank / mean: %.3f mean, %.3f max; %.2f%% of token copies dropped",
                              m.imbalance_mean, m.imbalance_max, m.dropped_fraction * 100.0));
    // Folded EP (models/spec.h): a pod is a connected set of EP blocks and TP x CP groups.
    const bool folded = ep_folded(p.scenario.parallel);
    if (m.pods > 1)
      kv(out, "pods", strf("%d %s (%d drawn); the step follows pod %d, %.3f x the mean pod's "
                           "busiest-rank rows",
                           m.pods, folded ? "groups of linked EP blocks" : "groups of ep pipelines", m.pods_drawn,
                           m.straggler_pod, m.pod_spread));
    if (m.slices > 1)
      kv(out, "token slices", strf("%d per pod (%s routing their own tokens into their own EP groups); "
                                   "each layer follows the busiest",
                                   m.slices, folded ? "EP blocks" : "TP/CP ranks"));
    if (m.dedup)   // direct dispatch prints nothing here (its reports keep their bytes)
      kv(out, "ep dispatch", strf("dedup (DeepEP: once per remote node, NVLink forwarding), node limit %s; "
                                  "a token's top-k experts on %.3f of the EP group's %d nodes, %.3f remote",
                                  m.node_limit > 0 ? strf("%d (in effect %d)", m.node_limit, m.node_limit_effective).c_str()
                                                   : "none",
                                  m.distinct_nodes, m.ep_nodes, m.distinct_remote_nodes));
    kv(out, "routing cost", strf("%s (%s of the step; balanced routing: %s, same cost model)",
                                   format_time(m.imbalance_cost).c_str(),
                                   share(m.imbalance_cost, p.step_time).c_str(),
                                   format_time(m.balanced_step_time).c_str()));
    if (m.dynamic) {
      kv(out, "placement", strf("dynamic every %d steps, %d replica slot%s per EP rank: imbalance %.3f mean / %.3f max "
                                "(static %.3f / %.3f); %d experts moved, %d replicas over the MoE layers",
                                m.rebalance_every, m.replicas, m.replicas == 1 ? "" : "s", m.imbalance_mean,
                                m.imbalance_max, m.imbalance_static_mean, m.imbalance_static_max, m.experts_moved,
                                m.experts_replicated));
      kv(out, "dynamic gain", strf("%s (%s of the static step %s), net of migration %s on the critical rank "
                                     "(%.1f MB per step per EP rank over all MoE layers, amortized)",
                                     format_time(m.placement_gain).c_str(), share(m.placement_gain, m.static_step_time).c_str(),
                                     format_time(m.static_step_time).c_str(), format_time(m.migration_time).c_str(),
                                     static_cast<double>(m.migration_bytes_per_step) / 1e6));
    }
  }
  documents_section(out, p);
  gpu_speed_section(out, p);
}

void breakdown_section(std::string& out, const Prediction& p) {
  out += strf("\nstep breakdown (critical rank %u)\n", p.critical_rank);
  TextTable t({"", "time", "share"}, {Align::kLeft, Align::kRight, Align::kRight});
  Time sum;
  for (size_t i = 0; i < kNumBuckets; ++i) {
    const Bucket b = static_cast<Bucket>(i);
    const Time v = p.breakdown[i];
    sum += v;
    if (v.count_ps() == 0 && b != Bucket::kCompute && b != Bucket::kBubble) continue;
    t.add({breakdown_label(b), format_time(v), share(v, p.step_time)});
  }
  t.add({"total", format_time(sum), share(sum, p.step_time)});
  out += t.render("  ");
  if (sum != p.step_time) {
    // A replay bug if it happens; say so rather than hide it.
    out += strf("  note: the buckets sum to %lld ps, the step is %lld ps\n",
                (long long)sum.count_ps(), (long long)p.step_time.count_ps());
  }
  if (p.comm_total.count_ps() > 0) {
    out += strf("  comm on the critical rank: %s, %s exposed, %s hidden\n",
                format_time(p.comm_total).c_str(), format_time(p.comm_exposed).c_str(),
                unsigned_pct(p.comm_hidden_share).c_str());
  } else {
    out += "  comm on the critical rank: none\n";
  }
}

void memory_section(std::string& out, const Prediction& p) {
  const MemoryReport& m = p.peak_memory;
  out += strf("\nmemory per GPU (peak on rank %u, stage %d)\n", m.rank, m.stage);
  TextTable t({"", "GiB", "share"}, {Align::kLeft, Align::kRight, Align::kRight});
  const double total = static_cast<double>(m.total().count());
  auto row = [&](const char* name, Bytes b) {
    t.add({name, gib2(b.count()),
           total > 0 ? unsigned_pct(static_cast<double>(b.count()) / total) : std::string("-")});
  };
  row("params", m.params);
  row("grads", m.grads);
  row("optimizer", m.optimizer);
  row("activations", m.activations);
  row("workspace", m.workspace);
  row("total", m.total());
  out += t.render("  ");
  out += strf("  capacity %s GiB (%s used)\n", gib2(m.capacity.count()).c_str(),
              m.capacity.count() > 0
                  ? unsigned_pct(total / static_cast<double>(m.capacity.count())).c_str()
                  : "-");
  out += memory_verdict(m) + "\n";

  if (p.scenario.parallel.pp > 1 && !p.memory_per_stage.empty()) {
    out += "\nmemory per stage (GiB, first rank of each stage)\n";
    TextTable st({"stage", "rank", "params", "grads", "optimizer", "activations", "workspace",
                  "total", ""},
                 {Align::kRight, Align::kRight, Align::kRight, Align::kRight, Align::kRight,
                  Align::kRight, Align::kRight, Align::kRight, Align::kLeft});
    size_t n = 0;
    for (const MemoryReport& r : p.memory_per_stage) {
      if (n++ == kMaxStageRows) {
        st.add_raw(strf("... (%zu more stages)", p.memory_per_stage.size() - kMaxStageRows));
        break;
      }
      st.add({strf("%d", r.stage), strf("%u", r.rank), gib2(r.params.count()),
              gib2(r.grads.count()), gib2(r.optimizer.count()), gib2(r.activations.count()),
              gib2(r.workspace.count()), gib2(r.total().count()), r.oom() ? "OOM" : ""});
    }
    out += st.render("  ");
  }
}

void sources_section(std::string& out, const Prediction& p) {
  out += strf("\ncost sources (time on critical rank %u)\n", p.critical_rank);
  if (p.sources.empty()) {
    out += "  (none)\n";
    return;
  }
  TextTable t({"what", "source", "ops", "time", "share", "detail"},
              {Align::kLeft, Align::kLeft, Align::kRight, Align::kRight, Align::kRight,
               Align::kLeft});
  for (const SourceRow& r : p.sources) {
    t.add({r.what, to_string(r.source), strf("%d", r.distinct_ops),
           format_time(r.time_on_critical_rank), share(r.time_on_critical_rank, p.step_time),
           r.detail});
  }
  out += t.render("  ");
  out += p.calibration.empty() ? "  costs: embedded default (no calibration database)\n"
                               : "  costs: calibration database " + p.calibration + "\n";
  for (const std::string& n : p.calibration_notes) out += "  extrapolated: " + n + "\n";
  if (p.nccl_ctas > 0)
    out += strf("  compute under collectives: each running collective holds %d of the %d SMs (compute at %.0f%% "
                "of its rate while one runs; %s); it added %s of compute on the critical rank\n",
                p.nccl_ctas, p.gpu_sms, 100.0 * std::max(0.0, 1.0 - static_cast<double>(p.nccl_ctas) / p.gpu_sms),
                p.nccl_ctas_source.c_str(), format_time(p.contention).c_str());
  else
    out += strf("  compute under collectives: not slowed (%s = 0)\n", p.nccl_ctas_source.c_str());
  if (p.scenario.parallel.activation_offload > 0 && p.pcie_duplex < 1)
    out += strf("  host copies both ways at once: each at %.0f%% of its one-direction rate (embedded default, "
                "calibrate/data/defaults.json, measured on an H100's PCIe Gen5 x16)\n", 100.0 * p.pcie_duplex);
}

}  // namespace

const char* breakdown_label(Bucket b) {
  switch (b) {
    case Bucket::kCompute: return "compute";
    case Bucket::kRecompute: return "recompute";
    case Bucket::kOptimizer: return "optimizer";
    case Bucket::kTpExposed: return "exposed TP comm";
    case Bucket::kDpExposed: return "exposed DP comm";
    case Bucket::kPpExposed: return "exposed PP comm";
    case Bucket::kCpExposed: return "exposed CP comm";
    case Bucket::kEpExposed: return "exposed EP comm";
    case Bucket::kOffloadExposed: return "exposed offload";
    case Bucket::kBubble: return "pipeline bubble";
    case Bucket::kCount: break;
  }
  return "?";
}

const char* breakdown_key(Bucket b) {
  switch (b) {
    case Bucket::kCompute: return "compute";
    case Bucket::kRecompute: return "recompute";
    case Bucket::kOptimizer: return "optimizer";
    case Bucket::kTpExposed: return "tp_exposed";
    case Bucket::kDpExposed: return "dp_exposed";
    case Bucket::kPpExposed: return "pp_exposed";
    case Bucket::kCpExposed: return "cp_exposed";
    case Bucket::kEpExposed: return "ep_exposed";
    case Bucket::kOffloadExposed: return "offload_exposed";
    case Bucket::kBubble: return "bubble";
    case Bucket::kCount: break;
  }
  return "?";
}

// Flow mode only: the fabric, flow statistics and the hottest links.
void network_section(std::string& out, const Prediction& p) {
  if (!p.flow) return;
  const NetworkReport& n = p.network;
  out += "\nnetwork (flow mode)\n";
  kv(out, "  topology", strf("%s (%d GPUs), placement %s, links at %.0f%% of line rate at most",
                             n.topology.c_str(), n.fabric_gpus, n.placement.c_str(),
                             n.efficiency * 100.0));
  kv(out, "  flows", strf("%llu started by %llu collectives/sends, %llu rate recomputations "
                          "(%llu flows re-solved), peak %llu in flight",
                          (unsigned long long)n.flows_started, (unsigned long long)n.transfers,
                          (unsigned long long)n.rate_recomputations,
                          (unsigned long long)n.flows_resolved,
                          (unsigned long long)n.peak_active_flows));
  if (n.hottest.empty()) {
    out += "  no traffic crossed the fabric\n";
    return;
  }
  out += "  hottest links (utilisation = bytes / (line rate x step time))\n";
  TextTable t({"link", "line rate", "utilisation", "bytes", "busy"},
              {Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight});
  for (const HotLink& h : n.hottest)
    t.add({h.from + " -> " + h.to, strf("%.0f Gb/s", h.capacity.Bps() * 8e-9), unsigned_pct(h.utilisation),
           strf("%.2f GiB", h.bytes / (1024.0 * 1024.0 * 1024.0)), format_time(h.busy)});
  out += t.render("    ");
}

std::string memory_verdict(const MemoryReport& m) {
  const double need = gib(m.total()), cap = gib(m.capacity);
  if (m.oom()) return strf("memory: OOM \u2014 needs %.1f GiB, GPU has %.1f GiB", need, cap);
  return strf("memory: OK (%.1f of %.1f GiB)", need, cap);
}

std::string format_summary(const Prediction& p) {
  std::string out;
  header_section(out, p);
  performance_section(out, p);
  breakdown_section(out, p);
  memory_section(out, p);
  sources_section(out, p);
  network_section(out, p);
  return out;
}

}  // namespace trainsim
