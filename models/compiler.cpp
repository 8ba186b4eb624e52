#include "models/compiler.h"

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <tuple>
#include <string>
#include <unordered_set>

#include "models/memory.h"
#include "models/moe.h"
#include "models/packing.h"
#include "models/ops.h"
#include "sim/check.h"
#include "sim/prefault.h"
#include "topologies/placement.h"

namespace trainsim {

Result<std::vector<int>> layer_split(int layers, int pp, int vp, const std::vector<int>& given) {
  const int v = pp * vp;
  if (v <= 0 || layers <= 0) return Status::error("layer split: layers and pp*vp must be positive");
  if (!given.empty()) {
    if (static_cast<int>(given.size()) != v)
      return Status::error("layers_per_stage has " + std::to_string(given.size()) + " entries; pp*vp = " +
                           std::to_string(v));
    int sum = 0;
    for (int x : given) {
      if (x < 0) return Status::error("layers_per_stage has a negative entry");
      sum += x;
    }
    if (sum != layers)
      return Status::error("layers_per_stage sums to " + std::to_string(sum) + ", the model has " +
                           std::to_string(layers) + " layers");
    return given;
  }
  if (v > layers)
    return Status::error("pp*vp = " + std::to_string(v) + " exceeds the " + std::to_string(layers) + " layers");
  std::vector<int> out(v, layers / v);
  int rem = layers % v;
  for (int i = 1; i < v && rem > 0; ++i, --rem) ++out[i];
  if (rem > 0) ++out[0];
  return out;
}

namespace {

// An op from one call site of the builder, interned once per stage (see cached_op).
#define OP(expr) cached_op(__LINE__, 0, [&] { return (expr); })

// The final norm before the LM head: LayerNorm has a weight and a bias, RMSNorm a weight.
int64_t final_norm_params(const ModelSpec& m) {
  return (m.norm == NormKind::kRMSNorm ? 1 : 2) * static_cast<int64_t>(m.hidden);
}

struct SchedStep {
  bool fwd;
  int chunk;
  int micro;
  bool paired = false;   // a steady-state backward, run together with the forward before it
  bool defer_w = false;  // a backward whose weight gradients wait for a later W step (B/W split)
  bool w = false;        // a W step: the weight gradients of the oldest deferred backward (FIFO)
                         // of any chunk (chunk -1) or of `chunk`
};

// `extra_warm`: forwards added to each stage's warm-up (1 with ep_overlap, as Megatron-Core's
// combined 1F1B does), so that the forward and backward of a steady-state pair are never of
// the same micro-batch and chunk.
std::vector<SchedStep> schedule_for(Schedule sched, int stage, int pp, int vp, int m, int extra_warm = 0) {
  std::vector<SchedStep> out;
  if (sched == Schedule::kDualPipe)   // (pp even, m even, m >= 2pp: compile_plan checks)
    return schedule_for(Schedule::kDualPipeV, std::min(stage, pp - 1 - stage), pp / 2, 2, m / 2);
  if (sched == Schedule::kDualPipeV) {
    // DualPipeV (DeepSeek's DualPipe repository, dualpipev.py; m >= 2pp): rank r holds chunk 0
    // (virtual stage r) and chunk 1 (2pp-1-r). Its eight phases, with P = pp:
    //   1. 2(P-r-1) forwards of chunk 0            5. P-r-1 x (B1, then F1 paired with B0)
    //   2. r+1 x (F0, F1)                          6. r+1 x (B1, B0); from the middle on, their
    //   3. P-r-1 x (B1 with W deferred, W, F1)        weight gradients are deferred
    //   4. m-2P+r+1 x (F0 paired with B1,          7. P-r-1 x (W, B0 with W deferred)
    //      F1 paired with B0)                      8. r+1 x W
    // The last rank runs its first phase-4 F0 and B1 one after the other, not paired.
    int f[2] = {0, 0}, b[2] = {0, 0};
    auto F = [&](int c) { out.push_back({true, c, f[c]++}); };
    auto B = [&](int c, bool defer, bool paired) {
      SchedStep st{false, c, b[c]++, paired};
      st.defer_w = defer;
      out.push_back(st);
    };
    auto W = [&] {
      SchedStep st{false, -1, 0};
      st.w = true;
      out.push_back(st);
    };
    const int P = pp, r = stage;
    for (int i = 0; i < 2 * (P - r - 1); ++i) F(0);
    for (int i = 0; i < r + 1; ++i) F(0), F(1);
    for (int i = 0; i < P - r - 1; ++i) B(1, true, false), W(), F(1);
    for (int i = 0; i < m - 2 * P + r + 1; ++i) {
      F(0);
      B(1, false, !(i == 0 && r == P - 1));
      F(1);
      B(0, false, true);
    }
    for (int i = 0; i < P - r - 1; ++i) B(1, false, false), F(1), B(0, false, true);
    bool defer = false;
    for (int i = 0; i < r + 1; ++i) {
      if (i == (r + 1) / 2 && r % 2 == 1) defer = true;
      B(1, defer, false);
      if (i == (r + 1) / 2 && r % 2 == 0) defer = true;
      B(0, defer, false);
    }
    for (int i = 0; i < P - r - 1; ++i) W(), B(0, true, false);
    for (int i = 0; i < r + 1; ++i) W();
    return out;
  }
  if (sched == Schedule::kZBV) {
    // ZB-V (Qi et al. 2024, "Zero Bubble Pipeline Parallelism" section 6; PyTorch's
    // ScheduleZBVZeroBubble order): the same V as DualPipeV, every backward split into B and W.
    //   warm-up: 2(P-r)-1 x F0, r x (F1, F0), P-r x (F1, B1, W1)
    //   steady:  (F0 while micro-batches are left, B0, W0, F1, B1, W1) until chunk 1 catches up
    //   cool-down: r x (B0, B1), P-r x (B0, W0), then the W1 and the W0 left
    // It is generated for max(m, 2P-1) micro-batches and the steps of the ones beyond m are
    // dropped, as PyTorch does (fewer micro-batches leave bubbles).
    const int P = pp, r = stage, n = std::max(m, 2 * P - 1);
    int cnt[3][2] = {};   // forwards, backwards (B), W steps so far, per chunk
    int* f = cnt[0];
    int* b = cnt[1];
    int* w = cnt[2];
    auto add = [&](int kind, int c) {   // 0 F, 1 B, 2 W
      if (cnt[kind][c] < m) {
        SchedStep st{kind == 0, c, cnt[kind][c]};
        st.defer_w = kind == 1;
        st.w = kind == 2;
        out.push_back(st);
      }
      ++cnt[kind][c];
    };
    auto F = [&](int c) { add(0, c); };
    auto B = [&](int c) { add(1, c); };
    auto W = [&](int c) { add(2, c); };
    for (int i = 0; i < 2 * (P - r) - 1; ++i) F(0);
    for (int i = 0; i < r; ++i) F(1), F(0);
    for (int i = 0; i < P - r; ++i) F(1), B(1), W(1);
    while (f[1] < f[0] || f[0] < n) {
      if (f[0] < n) F(0);
      B(0), W(0), F(1), B(1), W(1);
    }
    for (int i = 0; i < r; ++i) B(0), B(1);
    for (int i = 0; i < P - r; ++i) B(0), W(0);
    while (w[1] < b[1]) W(1);
    while (w[0] < b[0]) W(0);
    return out;
  }
  if (sched == Schedule::kGpipe) {
    for (int i = 0; i < m; ++i)
      for (int c = 0; c < vp; ++c) out.push_back({true, c, i});
    for (int i = 0; i < m; ++i)
      for (int c = vp - 1; c >= 0; --c) out.push_back({false, c, i});
    return out;
  }
  if (vp == 1) {
    const int warm = std::min(pp - stage - 1 + extra_warm, m);
    for (int i = 0; i < warm; ++i) out.push_back({true, 0, i});
    for (int i = 0; i < m - warm; ++i) {
      out.push_back({true, 0, warm + i});
      out.push_back({false, 0, i, true});
    }
    for (int i = m - warm; i < m; ++i) out.push_back({false, 0, i});
    return out;
  }
  // Interleaved 1F1B (Narayanan et al. SC'21 section 2.2; Megatron-LM's order).
  const int total = m * vp;
  auto micro_of = [&](int k) { return (k / (pp * vp)) * pp + k % pp; };
  auto fchunk = [&](int k) { return (k / pp) % vp; };
  auto bchunk = [&](int k) { return vp - 1 - (k / pp) % vp; };
  const int warm = std::min((pp - stage - 1) * 2 + (vp - 1) * pp + extra_warm, total);
  for (int k = 0; k < warm; ++k) out.push_back({true, fchunk(k), micro_of(k)});
  for (int j = 0; j < total - warm; ++j) {
    out.push_back({true, fchunk(warm + j), micro_of(warm + j)});
    out.push_back({false, bchunk(j), micro_of(j), true});
  }
  for (int j = total - warm; j < total; ++j) out.push_back({false, bchunk(j), micro_of(j)});
  return out;
}

// (key, extra) -> op index, for the per-task op caches of StageBuilder: a StageBuilder looks
// one up for every task it emits, so this is open addressing over a flat array rather than a
// std::map (a few dozen entries; never iterated, so its order cannot leak into the plan).
class OpCache {
 public:
  static constexpr uint32_t kEmpty = 0xffffffffu;
  // The slot of (a, b), added holding kEmpty when new; valid until the next call.
  uint32_t* find_or_add(uint64_t a, int64_t b) {
    if (2 * (used_ + 1) > slots_.size()) grow();
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash(a, b) & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (!s.used) {
        s = Slot{a, b, kEmpty, true};
        ++used_;
        return &s.id;
      }
      if (s.a == a && s.b == b) return &s.id;
    }
  }

 private:
  struct Slot {
    uint64_t a = 0;
    int64_t b = 0;
    uint32_t id = kEmpty;
    bool used = false;
  };
  static size_t hash(uint64_t a, int64_t b) {
    uint64_t h = (a ^ (static_cast<uint64_t>(b) * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
    return static_cast<size_t>(h ^ (h >> 31));
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 64 : 2 * old.size(), Slot{});
    used_ = 0;
    for (const Slot& s : old)
      if (s.used) *find_or_add(s.a, s.b) = s.id;
  }
  std::vector<Slot> slots_;
  size_t used_ = 0;
};

// Builds one stage's program.
class StageBuilder {
 public:
  StageBuilder(Plan& plan, Program& prog, const ModelSpec& model, const TrainingSpec& tr,
               const ParallelSpec& par, const LayerDims& d, int stage, int m,
               const std::vector<int>& split, const std::vector<int>& first_layer)
      : plan_(plan), prog_(prog), model_(model), tr_(tr), par_(par), d_(d), stage_(stage), m_(m),
        split_(split), first_layer_(first_layer) {
    nv_ = num_virtual_stages(par);
    act_ = dense_activation(par.recompute);
    // Block recomputation: the layers past the first recompute_layers of a chunk keep theirs.
    if (par.recompute == Recompute::kFull && par.recompute_layers > 0) act_kept_ = dense_activation(Recompute::kNone);
    layer_grad_bytes_ = 2 * layer_params_local(model, 0, par.tp);
    emb_grad_bytes_ = 2 * ceil_div(embedding_params(model), par.tp);
    // The gradient byte counts above are of bf16 elements; reductions move the reduce format's.
    grad_x_ = bytes_of(resolved_grad_reduce(par.grad_reduce_dtype, tr.precision)) / 2;
    // Gradients are reduced (and ZeRO shards taken) over dp x cp: every CP rank holds the whole
    // layer and a share of the tokens (Megatron's dp-cp group; torchtitan's dp_shard x cp mesh).
    dpg_ = par.dp * par.cp;
    shard_ = (par.fsdp_shard_group > 0 ? std::min(par.fsdp_shard_group, par.dp) : par.dp) * par.cp;
    bucket_bytes_ = std::max<int64_t>(1, par.dp_bucket_mb) << 20;
    tensors_ = layer_param_tensors(model);
    moe_ = model.is_moe();
    if (moe_) {
      moe_tensors_ = moe_layer_dense_tensors(model);
      expert_tensors_ = expert_param_tensors(model);
      etp_ = std::max(1, par.etp);
      Le_ = model.experts / par.ep;
      fe_ = model.expert_ffn_hidden / etp_;
      // Each rank routes its own T/tp tokens (Megatron-Core's alltoall dispatcher; MoE with
      // tp > 1 runs with sequence parallelism there); with etp > 1 an expert-TP group gathers
      // what its members received before the expert GEMMs (compiler.h).
      Tm_ = ceil_div(d.tokens(), par.tp);
      // HSDP (shard_ < dpg_): the expert-DP group splits over the dpg_/shard_ dense replicas;
      // experts shard over its ranks in one replica (compile_plan checked that they split evenly).
      erep_ = dpg_ / shard_;
      eshard_ = expert_dp_size(par) / erep_;
      overlap_ = par.ep_overlap && par.ep > 1;
    }
    if (model.mtp_depth > 0) {
      // The projection is column-parallel (2h -> h/t), the norms are counted whole per rank.
      mtp_front_bytes_ = 2 * (ceil_div(2 * int64_t{model.hidden} * model.hidden, par.tp) + 2 * final_norm_params(model));
      // pp > 1, untied: the last stage keeps its own copy of the embedding for the MTP lookup
      // (a tied head's copy serves both; with pp = 1 it is stage 0's own matrix).
      mtp_emb_copy_ = !head_with_embedding(par) && !model.tied_embeddings;
    }
  }

  // Rows (token copies) the busiest EP rank processes in MoE layer `layer`, micro-batch `micro`.
  const std::vector<std::vector<int64_t>>* moe_rows_ = nullptr;
  // Packed documents: [micro][ring step] work factors (step 0 only without a KV ring).
  const std::vector<std::vector<double>>* doc_factors_ = nullptr;
  const std::vector<int64_t>* moe_migration_ = nullptr;   // per layer; 0 = none (static placement)
  // Balanced twins (CompiledPlan::balanced_twins): the rows with balanced routing (the same for
  // every layer and micro-batch), and where the twins go; null without.
  int64_t twin_rows_ = -1;   // -1: no twins
  std::vector<OpTwin>* twins_ = nullptr;
  uint32_t program_ = 0;
  double model_flops_adjust_ = 0;   // expert GEMMs at the mean load minus as laid out
  Flops model_flops_, hardware_flops_;   // of the tasks emitted so far (see emit)

  void build() {
    const bool zero12_gather = par_.zero >= 1 && par_.zero <= 2 && shard_ > 1;
    if (zero12_gather && par_.dp_overlap) emit_param_gather_at_start();
    auto steps = schedule_for(par_.schedule, stage_, par_.pp, par_.vp, m_, overlap_ ? 1 : 0);
    {  // ~60 tasks per layer and micro-batch (forward, recompute, backward): reserve once
      int64_t layers = 0;
      for (int c = 0; c < par_.vp; ++c) layers += split_[virtual_stage(par_, c, stage_)];
      if (holds_head(par_, stage_)) layers += 2 * model_.mtp_depth;
      prog_.tasks.reserve(static_cast<size_t>((layers + 2) * m_ * 64 + 64));
    }
    last_bwd_of_chunk_.assign(par_.vp, -1);
    for (const auto& st : steps)
      if (!st.fwd && !st.w) last_bwd_of_chunk_[st.chunk] = st.micro;
    for (size_t i = 0; i < steps.size(); ++i) {
      const SchedStep& st = steps[i];
      if (st.w) {
        weight_step(st.chunk);
        continue;
      }
      if (overlap_ && st.fwd && i + 1 < steps.size() && steps[i + 1].paired) {
        // A steady-state pair: lay both out, then interleave them (merge_pair).
        const uint32_t a = static_cast<uint32_t>(prog_.tasks.size());
        ep_cuts_.clear();
        forward(st.chunk, st.micro);
        const uint32_t f_end = static_cast<uint32_t>(prog_.tasks.size());
        const size_t f_cuts = ep_cuts_.size();
        delay_wgrad_now_ = par_.delay_wgrad;
        backward(steps[i + 1].chunk, steps[i + 1].micro);
        delay_wgrad_now_ = false;
        merge_pair(a, f_end, f_cuts);
        ++i;
        continue;
      }
      st.fwd ? forward(st.chunk, st.micro) : backward(st.chunk, st.micro, st.defer_w);
    }
    SIM_CHECK(w_queue_.empty(), "stage %d: %zu deferred weight-gradient steps never ran", stage_, w_queue_.size());
    flush_bucket();
    if (!par_.dp_overlap) emit_deferred_reductions();
    mla_grad_allreduce();
    embedding_grad_allreduce();
    mirror_grad_allreduce();
    // Optimizer: Adam over this rank's (shard of) parameters; memory-bound. Per parameter it
    // reads the gradient (4 B), master weight, m and v (12 B), writes them back (12 B) and
    // the bf16 working copy (2 B), and reads the gradient again for the norm/clip (4 B): 34 B.
    const int64_t p_local = params_local_;
    const int64_t p_dense = p_local - expert_params_local_;
    int64_t p_opt = par_.zero >= 1 ? ceil_div(p_dense, shard_) : p_dense;
    p_opt += par_.zero >= 1 ? ceil_div(expert_params_local_, eshard_) : expert_params_local_;
    OpDesc opt = memory_op("optimizer.adam", OpClass::kOptimizer, 34 * p_opt, false);
    uint32_t dep = last_reduction_;
    // The replica stream's last all-reduce, where a later reduction on another stream took the
    // place of last_reduction_ (the MLA or embedding gradient all-reduce).
    const uint32_t dep2 = last_replica_ != dep ? last_replica_ : kNoDep;
    uint32_t opt_t = emit_compute(opt, Category::kOptimizer, 0xffff, 0, dep, dep2);
    if (zero12_gather && !par_.dp_overlap) {
      // Updated parameter shards gathered back, synchronously, after the step.
      uint32_t g = emit_coll("zero.param.allgather", CollKind::kAllGather, 2 * p_dense, kGroupDp, kStreamCompute,
                             Category::kDpComm, 0xffff, 0, opt_t);
      if (expert_params_local_ > 0 && eshard_ > 1)
        emit_coll("zero.expert.param.allgather", CollKind::kAllGather, 2 * expert_params_local_, kGroupExpertDp,
                  kStreamCompute, Category::kDpComm, 0xffff, 0, g);
    }
  }

  int64_t params_local_ = 0;
  int64_t expert_params_local_ = 0;
  uint8_t expert_rep_group_ = 0xff;   // "expert-dp-replica" where the plan has it (HSDP MoE; compiler.h)
  uint8_t expert_tp_group_ = 0xff;    // "expert-tp" where the plan has it (etp > 1; compiler.h)
  uint8_t mirror_group_ = 0xff;       // "pp-mirror" (DualPipe; compiler.h)
  uint8_t tp_ring_group_ = 0xff;      // "tp-ring" (parallel.tp_overlap; compiler.h)
  uint8_t tensor_gather_group_ = kGroupDpGather;   // "dp-gather-tensor" where the plan has it (compiler.h)   // routed-expert part of params_local_ (after EP/etp)

 private:
  static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
  // ModelSpec::is_moe_layer without its string comparison (asked several times per layer).
  bool moe_layer(int layer) const { return moe_ && layer >= model_.dense_layers; }

  __attribute__((always_inline)) uint32_t emit(const Task& t) {
    std::vector<Task>& v = prog_.tasks;
    const size_t i = v.size();
    if (i >= prefaulted_) prefault_ahead();
    v.push_back(t);
    // The program's FLOPs, summed in task order as the tasks are written (their op and
    // category never change afterwards): GEMMs and attention, once without recomputation.
    if (t.category == Category::kCompute || t.category == Category::kRecompute) {
      const OpDesc& op = plan_.ops[t.op];
      if (op.cls == OpClass::kGemm || op.cls == OpClass::kAttention) {
        if (t.category == Category::kCompute) model_flops_ += op.flops;
        hardware_flops_ += op.flops;
      }
    }
    return static_cast<uint32_t>(i);
  }
  // Tasks are written once, in order: map the next 256 KiB of the reserved capacity in one
  // call rather than fault on each page (sim/prefault.h; most of the build time otherwise).
  __attribute__((noinline)) void prefault_ahead() {
    std::vector<Task>& v = prog_.tasks;
    const size_t end = std::min(v.capacity(), v.size() + (size_t{256} << 10) / sizeof(Task));
    prefault(v.data() + v.size(), (end - v.size()) * sizeof(Task));
    prefaulted_ = end;
  }
  // An op built once per call site (and `extra` value): within a stage every layer and
  // micro-batch runs the same shapes, so each site's OpDesc is interned once, not per task.
  template <class F>
  uint32_t cached_op(int site, int64_t extra, F&& make) {
    if (extra == 0) {   // OP(expr): most tasks; a table indexed by the line (or -site)
      std::vector<uint32_t>& table = site >= 0 ? site_ops_ : neg_site_ops_;
      const size_t k = static_cast<size_t>(site >= 0 ? site : -site);
      if (k >= table.size()) table.resize(k + 1, OpCache::kEmpty);
      uint32_t& id = table[k];
      if (id == OpCache::kEmpty) id = plan_.intern_op(make());
      return id;
    }
    uint32_t* id = op_cache_.find_or_add(static_cast<uint64_t>(static_cast<uint32_t>(site)), extra);
    if (*id == OpCache::kEmpty) *id = plan_.intern_op(make());
    return *id;
  }

  uint32_t emit_compute(const OpDesc& op, Category cat, int layer, int micro, uint32_t dep = kNoDep,
                        uint32_t dep2 = kNoDep) {
    return emit_compute(plan_.intern_op(op), cat, layer, micro, dep, dep2);
  }
  // B/W split (SchedStep::defer_w): a deferred weight-gradient GEMM, one layer's of them, and
  // one backward's layers, queued until their W step (FIFO, as DualPipe's WeightGradStore).
  struct WTask {
    uint32_t op;
    uint32_t dep;        // the SP re-gather of its input, or kNoDep
    uint32_t twin_op;    // balanced twin (MoE expert GEMMs), or OpCache::kEmpty
  };
  struct WLayer {
    int layer, micro;
    int64_t dense, expert;   // gradient bytes (dense_bytes, expert_bytes)
    int64_t free_bytes;      // saved activations released after the last W task
    std::vector<WTask> tasks;
    int64_t hold_bytes = 0;  // the output gradients the W tasks read, kept from the B to the W
    int64_t x_bytes = 0;     // the inputs they read (a share of the saved activations)
  };
  struct WUnit {
    int chunk = 0;
    bool last_micro = false;
    std::vector<WLayer> layers;
  };
  // A transformer layer's weight-gradient GEMM: emitted now, or queued for the W step when the
  // backward being laid out defers them (w_layer_). `dep`: the SP re-gather of its input.
  void wgrad(uint32_t op, int layer, int micro, uint32_t dep = kNoDep, uint32_t twin_op = OpCache::kEmpty) {
    if (w_layer_ != nullptr) {
      w_layer_->tasks.push_back(WTask{op, dep, twin_op});
      // Its operands stay alive until the W step, as the weight-gradient closures of DualPipe's
      // WeightGradStore hold them: the output gradient (k x n, bf16), allocated here, and the
      // input (m x k), kept from the layer's saved activations (layer_backward); an input that
      // SP re-gathers (dep) is kept as saved, sequence-sharded, and gathered again for the W.
      const OpDesc& o = plan_.ops[op];
      w_layer_->hold_bytes += 2 * o.k * o.n * o.batch;
      w_layer_->x_bytes += 2 * o.m * o.k * o.batch / (dep != kNoDep ? d_.t : 1);
      return;
    }
    const uint32_t t = emit_compute(op, Category::kCompute, layer, micro, dep);
    if (twin_op != OpCache::kEmpty) twin(t, twin_op);
  }
  // A compute kernel; an fp8 GEMM that takes bf16 operands is preceded by their cast
  // (fp8_cast_op), which then carries the dependencies.
  uint32_t emit_compute(uint32_t op, Category cat, int layer, int micro, uint32_t dep = kNoDep,
                        uint32_t dep2 = kNoDep) {
    last_cast_ = kNoDep;
    if (d_.gemm_dtype == DType::kFP8 && plan_.ops[op].dtype == DType::kFP8 && plan_.ops[op].cls == OpClass::kGemm) {
      last_cast_weight_ = cat == Category::kCompute && micro == 0 && !no_weight_cast_;
      const uint32_t q = fp8_cast_op(op, last_cast_weight_);
      if (q != OpCache::kEmpty) {
        last_cast_ = emit_kernel(q, cat, layer, micro, dep, dep2);
        dep = dep2 = kNoDep;
      }
    }
    return emit_kernel(op, cat, layer, micro, dep, dep2);
  }
  // fp8 GEMMs (training.precision "fp8") read fp8 operands, which a memory-bound kernel casts
  // from bf16 before each GEMM that needs them: a forward GEMM's input (and, in the first
  // micro-batch's forward, its weight: Transformer Engine keeps the fp8 weights for the other
  // micro-batches of the step), a data-gradient GEMM's output gradient. Each cast writes the
  // tensor twice in fp8, as is and transposed, since Hopper's fp8 tensor-core GEMMs take only
  // K-major operands and the weight-gradient GEMM contracts over the tokens (the input and the
  // output gradient transposed; they need no cast of their own). Per element: read 2 B, write
  // 2 x 1 B, plus a 2 B amax pass under current scaling (Fp8Recipe): 6 B, or 4 B delayed or
  // blockwise (whose tile scales, 4 B per 128 elements, are neglected).
  // Fused casts (Transformer Engine's LayerNorm+cast, activation+cast) are not modelled.
  // Returns OpCache::kEmpty for ops that take no cast (weight gradients).
  uint32_t fp8_cast_op(uint32_t gemm, bool with_weight) {
    const size_t key = 2 * static_cast<size_t>(gemm) + (with_weight ? 1 : 0);
    if (key >= fp8_cast_of_.size()) fp8_cast_of_.resize(key + 1, kCastUnknown);
    if (fp8_cast_of_[key] != kCastUnknown) return fp8_cast_of_[key];
    const OpDesc g = plan_.ops[gemm];   // a copy: intern_op below may grow plan_.ops
    const std::string_view name = g.name;
    const size_t dot = name.rfind('.');
    const std::string_view suffix = dot == std::string_view::npos ? name : name.substr(dot + 1);
    uint32_t id = OpCache::kEmpty;
    if (suffix != "wgrad") {
      const bool fwd = !g.backward;
      const int64_t per_elem = tr_.fp8_recipe == Fp8Recipe::kCurrent ? 6 : 4;
      const int64_t elems = g.batch * g.m * g.k + (fwd && with_weight ? g.batch * g.n * g.k : 0);
      id = plan_.intern_op(memory_op(std::string(name.substr(0, dot)) + (fwd ? ".fp8cast.fwd" : ".fp8cast.bwd"),
                                     OpClass::kElementwise, per_elem * elems, !fwd));
    }
    fp8_cast_of_[key] = id;
    return id;
  }
  uint32_t emit_kernel(uint32_t op, Category cat, int layer, int micro, uint32_t dep = kNoDep,
                       uint32_t dep2 = kNoDep) {
    Task t;
    t.kind = TaskKind::kCompute;
    t.stream = kStreamCompute;
    t.category = cat;
    t.op = op;
    t.layer = static_cast<uint16_t>(layer);
    t.micro = static_cast<uint16_t>(micro);
    t.dep[0] = dep;
    t.dep[1] = dep2;
    return last_compute_ = emit(t);
  }
  // Activation offload: a layer's offloaded share leaves HBM when its copy to host ends and
  // comes back when the copy from host starts (mem_free / mem_alloc on the copy tasks).
  bool offloading() const { return par_.activation_offload > 0; }
  int64_t offload_bytes(int layer, int micro) const {
    return static_cast<int64_t>(static_cast<double>(act_for(layer, micro).saved_bytes) * par_.activation_offload);
  }
  uint32_t emit_offload(bool to_host, int layer, int micro, uint32_t dep) {
    const int64_t bytes = offload_bytes(layer, micro);
    Task t;
    t.kind = TaskKind::kCompute;
    t.stream = to_host ? kStreamOffloadOut : kStreamOffloadIn;
    t.category = Category::kOffload;
    t.op = cached_op(-10 - (to_host ? 0 : 1), bytes, [&] {
      OpDesc o;
      o.name = to_host ? "offload.activations.d2h" : "offload.activations.h2d";
      o.cls = OpClass::kOffload;
      o.backward = !to_host;
      o.bytes = Bytes(bytes);
      return o;
    });
    t.layer = static_cast<uint16_t>(layer);
    t.micro = static_cast<uint16_t>(micro);
    t.dep[0] = dep;
    (to_host ? t.mem_free : t.mem_alloc) = bytes;
    return emit(t);
  }

  uint32_t emit_coll(const char* name, CollKind kind, int64_t bytes, uint8_t group, uint8_t stream,
                     Category cat, int layer, int micro, uint32_t dep = kNoDep, const A2aDedup& dedup = {}) {
    Task t;
    t.kind = TaskKind::kCollective;
    t.stream = stream;
    t.category = cat;
    t.op = coll_op(name, kind, bytes, group, dedup);
    t.group = group;
    t.layer = static_cast<uint16_t>(layer);
    t.micro = static_cast<uint16_t>(micro);
    t.dep[0] = dep;
    uint32_t i = emit(t);
    if (stream == kStreamCompute) last_compute_ = i;
    return i;
  }
  // Keyed by the name's address (every caller passes a string literal): two literals of the
  // same text may get two entries, but intern_op maps both to the same op.
  // `dedup` is the same for every call of one name (ep_a2a), so it needs no place in the key.
  uint32_t coll_op(const char* name, CollKind kind, int64_t bytes, uint8_t group, const A2aDedup& dedup = {}) {
    const uint64_t key = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(name)) ^ (uint64_t{group} << 56);
    // A direct-mapped memo in front of the table: a call site asks for the same op on every
    // layer and micro-batch. Where two keys share an entry the table answers.
    CollMemo& m = coll_memo_[(key ^ (key >> 7)) % coll_memo_.size()];
    if (m.key == key && m.bytes == bytes) return m.id;
    uint32_t* id = coll_cache_.find_or_add(key, bytes);
    if (*id == OpCache::kEmpty) {
      OpDesc op = collective_op(name, kind, bytes, group);
      op.dedup = dedup;
      *id = plan_.intern_op(std::move(op));
    }
    m = CollMemo{key, bytes, *id};
    return *id;
  }

  void emit_p2p(bool send, uint8_t channel, uint8_t peer, int layer, int micro) {
    Task t;
    t.kind = send ? TaskKind::kSend : TaskKind::kRecv;
    t.stream = send ? kStreamP2p : kStreamCompute;
    t.category = Category::kPpComm;
    // Activations (or their gradients) of one micro-batch, sequence-sharded across the TP
    // group (SP, or Megatron's scatter/gather optimization without SP).
    const int64_t bytes = 2 * d_.tokens() * d_.h / d_.t;
    t.op = cached_op(-1 - channel, peer, [&] {
      return p2p_op(channel % 2 == 0 ? "pp.activation" : "pp.gradient", bytes, peer);
    });
    t.group = peer;
    t.channel = channel;
    t.layer = static_cast<uint16_t>(layer);
    t.micro = static_cast<uint16_t>(micro);
    if (send) t.dep[0] = last_compute_;
    uint32_t i = emit(t);
    if (!send) last_compute_ = i;
  }

  // TP collective on the compute stream; nothing when tp == 1.
  void tp_coll(const char* name, CollKind kind, int layer, int micro) {
    if (d_.t <= 1) return;
    tp_coll_bytes(name, kind, 2 * d_.tokens() * d_.h, layer, micro);
  }
  // A TP collective of `bytes` on the compute stream.
  void tp_coll_bytes(const char* name, CollKind kind, int64_t bytes, int layer, int micro) {
    emit_coll(name, kind, bytes, kGroupTp, kStreamCompute, Category::kTpComm, layer, micro);
  }
  // The SP re-gather of a column-parallel GEMM's input (`bytes`) for its weight gradient, on
  // the side stream, issued when the block's backward starts.
  uint32_t side_gather_bytes(const char* name, int64_t bytes, int layer, int micro) {
    return emit_coll(name, CollKind::kAllGather, bytes, kGroupTpSide, kStreamGather, Category::kTpComm, layer, micro,
                     last_compute_);
  }
  // After a row-parallel GEMM (fwd) / before a column-parallel GEMM's input grad goes back (bwd).
  void tp_reduce(const char* ar, const char* rs, int layer, int micro) {
    tp_coll(d_.sp ? rs : ar, d_.sp ? CollKind::kReduceScatter : CollKind::kAllReduce, layer, micro);
  }
  void tp_gather(const char* ag, int layer, int micro) {
    if (d_.sp) tp_coll(ag, CollKind::kAllGather, layer, micro);
  }
  // TP communication overlap (parallel.tp_overlap; compiler.h): the dense layers' sequence
  // all-gathers and reduce-scatters run as ring steps on the TP stream beside the GEMM they
  // feed or drain, which is split into tp chunks of tokens/tp rows.
  bool tp_overlap() const { return tp_ring_group_ != 0xff; }
  int64_t tp_chunk_tokens() const { return ceil_div(d_.tokens(), d_.t); }
  int64_t tp_chunk_bytes() const { return 2 * tp_chunk_tokens() * d_.h; }
  // All-gather + column-parallel GEMM (`chunk`: the GEMM of tokens/tp rows): the first chunk
  // runs on the rank's own shard while the ring brings the next, each chunk after the step that
  // brought its rows; the first step waits for the producer of the shard. An fp8 GEMM casts its
  // weight once (with the first chunk). Returns the last chunk.
  uint32_t ag_gemm(const char* step, uint32_t chunk, Category c, int layer, int micro, uint32_t dep = kNoDep) {
    const uint32_t ready = last_compute_;
    uint32_t last = emit_compute(chunk, c, layer, micro, dep);
    uint32_t s = kNoDep;
    for (int k = 1; k < d_.t; ++k) {
      s = emit_coll(step, CollKind::kSendRecv, tp_chunk_bytes(), tp_ring_group_, kStreamTp, Category::kTpComm, layer,
                    micro, k == 1 ? ready : kNoDep);
      no_weight_cast_ = true;
      last = emit_compute(chunk, c, layer, micro, s);
      no_weight_cast_ = false;
    }
    return last;
  }
  // Row-parallel GEMM + reduce-scatter: the GEMM in tp chunks, each but the last (the rank's own
  // rows) sent to the rank that owns its rows as soon as it is done (one shift of the ring per
  // chunk, as Transformer Engine's pipelined reduce-scatter writes each chunk to its owner);
  // rs_finish() sums the own chunk and the tp-1 received ones where the result is first needed.
  // Returns the last send.
  uint32_t gemm_rs(const char* step, uint32_t chunk, Category c, int layer, int micro, uint32_t dep = kNoDep) {
    uint32_t s = kNoDep;
    for (int k = 0; k < d_.t; ++k) {
      no_weight_cast_ = k > 0;
      const uint32_t g = emit_compute(chunk, c, layer, micro, k == 0 ? dep : kNoDep);
      no_weight_cast_ = false;
      if (k + 1 < d_.t)
        s = emit_coll(step, CollKind::kSendRecv, tp_chunk_bytes(), tp_ring_group_, kStreamTp, Category::kTpComm,
                      layer, micro, g);
    }
    return s;
  }
  // A column-parallel GEMM over the gathered sequence (`gemm_of(rows)`, interned once per call
  // site: one shape per plan): in tp chunks beside the ring's all-gather with tp_overlap, else
  // whole, after the caller's blocking gather.
  template <class F>
  void gathered_gemm(int site, const char* ring, F&& gemm_of, Category c, int layer, int micro) {
    if (tp_overlap())
      ag_gemm(ring, cached_op(site, 0, [&] { return gemm_of(tp_chunk_tokens()); }), c, layer, micro);
    else
      emit_compute(cached_op(site, 0, [&] { return gemm_of(d_.tokens()); }), c, layer, micro);
  }
  // A row-parallel GEMM whose output TP reduces: in tp chunks sent on the ring as they end with
  // tp_overlap (returns the last send, for rs_finish()), else whole (returns kNoDep; the
  // caller's blocking all-reduce / reduce-scatter follows).
  template <class F>
  uint32_t reduced_gemm(int site, const char* ring, F&& gemm_of, Category c, int layer, int micro) {
    if (tp_overlap()) return gemm_rs(ring, cached_op(site, 0, [&] { return gemm_of(tp_chunk_tokens()); }), c, layer, micro);
    emit_compute(cached_op(site, 0, [&] { return gemm_of(d_.tokens()); }), c, layer, micro);
    return kNoDep;
  }
  // The forward's TP reduction after reduced_gemm(): the ring's sum, or the blocking collective.
  void reduce_out(uint32_t sent, const char* ar, const char* rs, Category c, int layer, int micro) {
    if (tp_overlap()) rs_finish(sent, c, layer, micro, false);
    else tp_reduce(ar, rs, layer, micro);
  }
  // The sum of a reduce-scatter's tp partial chunks (bf16): read tp chunks, write one.
  void rs_finish(uint32_t sent, Category c, int layer, int micro, bool bwd) {
    emit_compute(cached_op(bwd ? -41 : -40, 0, [&] {
                   return memory_op(bwd ? "tp.reducescatter.sum.bwd" : "tp.reducescatter.sum.fwd",
                                    OpClass::kElementwise, (d_.t + 1) * tp_chunk_bytes(), bwd);
                 }),
                 c, layer, micro, sent);
  }
  // MLA with tp > 1 (compiler.h): the latents' input gradients are reduced over TP (reduce-
  // scattered with SP, all-reduced without), not the h-wide input gradient of the block.
  bool mla_latent() const { return d_.mla && d_.t > 1; }
  // MLA with sequence parallelism: the down-projections run on the rank's T/tp tokens and the
  // latents (not h) are gathered before the up-projections.
  bool mla_latent_sp() const { return mla_latent() && d_.sp; }
  // Whether the attention block gathers h before its projections (with SP) and reduces the
  // h-wide input gradient after them: always, except MLA with tp > 1 and a compressed query.
  bool attn_gathers_h() const { return !(mla_latent() && d_.q_lora > 0); }

  // The bytes of the block's memory-bound kernels per element of the tensor each works on, fused
  // (training.framework "fused" and "torch_compile") or as eager PyTorch runs them, an op per
  // kernel (models/spec.h Framework; the eager counts follow PyTorch's ops, README "framework"):
  //  - RMSNorm: F.rms_norm's composite (bf16 x: to fp32 6, pow 8, mean 4, mul 8, type_as 6, times
  //    the weight: with fp32 parameters under autocast (whole_params) an fp32 product 6 that the
  //    next linear casts back to bf16 6 = 44; with FSDP's bf16 parameters a bf16 product 4 = 36);
  //    its backward through each of them (98; 76 with bf16 parameters: no cast's backward, the
  //    weight's product and gradient in bf16). LayerNorm is one kernel either way
  //    (native_layer_norm; its backward reads x and dy twice, for dx and for the weight
  //    gradient: 10).
  //  - RoPE (x*cos + cat(-x2, x1)*sin): mul 4, neg 2, cat 4, mul 4, add 6 = 20; backward 30 (the
  //    two muls, the neg, the slices' zero-filled gradients and the sums of the three paths).
  //  - SwiGLU: silu 4 and mul 6 per ffn element; backward: the mul's two gradients 12, silu's
  //    6 and the cat of the chunked FC1 output's gradient 8 (26). GELU: one kernel either way.
  //  - the residual's backward: autograd adds the two gradients of x (6 instead of 4).
  bool eager() const { return tr_.framework == Framework::kTorchEager; }
  int64_t norm_bytes() const {   // read x, write y
    return (eager() && d_.rmsnorm ? (whole_params() ? 44 : 36) : 4) * d_.norm_tokens() * d_.h;
  }
  int64_t norm_bwd_bytes() const {   // x, dy -> dx
    return (eager() ? (d_.rmsnorm ? (whole_params() ? 98 : 76) : 10) : 6) * d_.norm_tokens() * d_.h;
  }
  int64_t resid_bytes() const { return 3 * 2 * d_.norm_tokens() * d_.h; }     // a + b -> c
  int64_t resid_bwd_bytes() const { return (eager() ? 6 : 4) * d_.norm_tokens() * d_.h; }
  // RoPE on a dense layer's local Q and K heads (read + write), and its MLP activation forward
  // (SwiGLU: gate, up -> out; GeLU: in -> out), as the forward and the op-level recompute run them.
  int64_t rope_bytes() const { return (eager() ? 20 : 4) * d_.tokens() * (d_.q + d_.kv) / d_.t; }
  int64_t rope_bwd_bytes() const { return (eager() ? 30 : 4) * d_.tokens() * (d_.q + d_.kv) / d_.t; }
  int64_t mlp_act_bytes() const {
    return (d_.swiglu ? (eager() ? 10 : 6) : 4) * d_.tokens() * d_.f / d_.t;
  }
  int64_t mlp_act_bwd_bytes() const {
    return (d_.swiglu ? (eager() ? 26 : 10) : 6) * d_.tokens() * d_.f / d_.t;
  }
  // PyTorch loops (training.framework "torch_compile" / "torch_eager") keep fp32 parameters and
  // run the step under torch.autocast(bfloat16). Where the parameters are whole on the rank (DDP,
  // ZeroRedundancyOptimizer: zero 0 and 1) autocast casts each weight to bf16 once per step, in
  // the first micro-batch's forward, and its cache keeps the copy for the step's later forwards
  // (one autocast region around the step, as torchtitan runs its schedules); a recomputed
  // forward (activation checkpointing re-enters autocast) casts again (read 4, write 2 per
  // parameter). FSDP (zero 2 and 3) casts the shard before its all-gather (1/shard of that, not
  // counted). Every backward casts the bf16 weight gradient to fp32 (read 2, write 4: the cast's
  // backward, or FSDP's cast to its fp32 reduce dtype; FSDP reducing in bf16 casts only the
  // reduced shard, not counted), and with the parameters whole, a later
  // micro-batch's gradient is added to the fp32 .grad (read 4 + 4, write 4). `param_bytes`: the
  // parameters' bytes in bf16.
  bool torch_casts() const { return torch_framework(tr_.framework); }
  // The LM head's weight on this rank (the embedding table's when tied), bf16 bytes.
  int64_t head_param_bytes() const { return 2 * d_.h * (d_.vocab / d_.t); }
  bool whole_params() const { return torch_casts() && par_.zero < 2; }
  int64_t weight_cast_bytes(int64_t param_bytes) const { return whole_params() ? 3 * param_bytes : 0; }
  int64_t grad_cast_bytes(int64_t param_bytes, int micro) const {
    if (!torch_casts()) return 0;
    if (!whole_params() && grad_x_ != 2) return 0;   // FSDP reducing in bf16: the gradient stays bf16
    return 3 * param_bytes + (whole_params() && micro > 0 ? 6 * param_bytes : 0);
  }
  // With whole parameters under autocast (whole_params), the gradient cast of a weight of
  // `param_bytes` (bf16 bytes) releases the bf16 copy a recomputed forward made (`recomputed`)
  // and, in the step's last backward, the step's copy; the step's first backward allocates the
  // fp32 gradient (2 x param_bytes), held to the step's end.
  void grad_memory(uint32_t cast_task, int64_t param_bytes, int micro, bool recomputed = false) {
    if (!whole_params()) return;
    prog_.tasks[cast_task].mem_free += (recomputed ? param_bytes : 0) + (last_micro_ ? param_bytes : 0);
    if (micro == 0) allocate_grads(cast_task, param_bytes);
  }
  // The fp32 gradient of `param_bytes` (bf16 bytes) of parameters, allocated by `task`.
  void allocate_grads(uint32_t task, int64_t param_bytes) {
    prog_.tasks[task].mem_alloc += 2 * param_bytes;
    prog_.tasks[task].mem_grads = 1;
  }
  // A memory-bound kernel of `bytes` (none for 0), its op interned per (site, bytes).
  uint32_t maybe_memory(int site, const char* name, OpClass cls, int64_t bytes, bool bwd, Category c, int layer,
                        int micro, uint32_t dep = kNoDep, uint32_t dep2 = kNoDep) {
    if (bytes <= 0) return kNoDep;
    return emit_compute(cached_op(site, bytes, [&] { return memory_op(name, cls, bytes, bwd); }), c, layer, micro, dep,
                        dep2);
  }

  // s x s elements of one rank's heads for one micro-batch.
  int64_t score_elems() const { return d_.b * (d_.heads / d_.t) * d_.s * d_.s; }

  // Context parallelism (see the file comment of compiler.h).
  int64_t cp_ring() const { return d_.cp / d_.cp_ulysses; }
  // K and V of one ring block: seq/ring tokens of this rank's kv heads.
  // MLA passes the decompressed per-head K (qk_dim) and V (v_dim), as Megatron-Core does.
  // PyTorch loops (training.framework torch_*) run PyTorch's ring attention
  // (torch.distributed.tensor.experimental context_parallel, as torchtitan of Dec 2024 runs it):
  // its flash kernel takes as many K/V heads as query heads, so the model repeats K and V to the
  // query heads before the kernel (torchtitan's repeat_kv) and the ring passes the repeated
  // heads; dK and dV travel in fp32 (its convert_to_f32); and K, V are all-gathered once per
  // pass (torchtitan's default rotate method, "allgather") instead of shifted a hop per step, so
  // every step after the first waits for the whole gather.
  bool torch_cp() const { return torch_framework(tr_.framework) && !d_.mla; }
  int64_t cp_kv_bytes() const {
    const int64_t kv_dims = d_.mla ? d_.qk_dim + d_.v_dim : 2 * d_.head_dim;
    const int64_t heads = torch_cp() ? attention_heads_local(d_) : attention_kv_heads_local(d_);
    return 2 * d_.b * (d_.s * d_.cp_ulysses) * heads * kv_dims;
  }
  int64_t cp_dkv_bytes() const { return torch_cp() ? 2 * cp_kv_bytes() : cp_kv_bytes(); }
  // Ulysses all-to-all send buffers: this rank's seq/cp tokens of all its TP heads.
  int64_t ulysses_qkv_bytes() const {
    if (d_.mla) return 2 * d_.b * d_.s * (d_.heads / d_.t) * (2 * d_.qk_dim + d_.v_dim);   // Q, K, V
    return 2 * d_.b * d_.s * (d_.q / d_.t + 2 * attention_kv_heads_local(d_) * d_.cp_ulysses * d_.head_dim);
  }
  int64_t ulysses_out_bytes() const { return 2 * d_.b * d_.s * (d_.q / d_.t); }
  // The merges of ring attention's partial results (memory-bound, per ring step after the first;
  // Transformer Engine's and PyTorch's ring attention both run them as kernels of their own):
  //   forward:  the step's output (bf16) folded into the fp32 accumulator by its log-sum-exp:
  //             read 4 + 2, write 4 B per output element; once per layer, the step-0 output
  //             into the accumulator and the accumulator back to bf16: 6 + 6 B;
  //   backward: the step's dQ into the fp32 dQ accumulator (10 B per Q element) and its dK, dV
  //             into the fp32 ones that travel on (10 B per K, V element); once, dQ to bf16 (6 B).
  // Every element of the accumulator counts at every step (zig-zag steps that take half the
  // queries touch half of it on some ranks: an upper bound).
  int64_t cp_out_elems() const { return d_.b * d_.s * (d_.heads / d_.t) * d_.v_dim; }
  int64_t cp_q_elems() const { return d_.b * d_.s * (d_.heads / d_.t) * d_.qk_dim; }
  int64_t cp_kv_elems() const { return cp_kv_bytes() / 2; }
  uint32_t cp_merge_op(bool bwd) {
    return cached_op(bwd ? -51 : -50, 0, [&] {
      return memory_op(bwd ? "attn.cp.merge.bwd" : "attn.cp.merge.fwd", OpClass::kElementwise,
                       bwd ? 10 * (cp_q_elems() + cp_kv_elems()) : 10 * cp_out_elems(), bwd);
    });
  }
  uint32_t cp_merge_ends_op(bool bwd) {
    return cached_op(bwd ? -53 : -52, 0, [&] {
      return memory_op(bwd ? "attn.cp.merge.out.bwd" : "attn.cp.merge.out.fwd", OpClass::kElementwise,
                       bwd ? 6 * cp_q_elems() : 12 * cp_out_elems(), bwd);
    });
  }
  // Step j of the ring: step 0 is the rank's own (causal) diagonal; with zig-zag chunks every
  // later step is half a block on every rank, the work of a causal block (cp_causal_pairs);
  // with contiguous chunks the slowest rank computes a full block.
  OpDesc cp_block(bool backward, int step) const {
    const int64_t sb = d_.s * d_.cp_ulysses;   // tokens of one ring block
    return attention_block_op(d_, backward, sb, sb, step == 0 || d_.cp_zigzag);
  }
  // Packed documents (models/packing.h): the attention work of micro-batch `micro` (and of each
  // ring step) relative to plain causal attention of the window; ops interned per micro-batch.
  bool docs() const { return doc_factors_ != nullptr; }
  uint32_t core_op(bool bwd, int micro) {
    return cached_op(bwd ? -31 : -30, docs() ? micro : 0, [&] {
      OpDesc o = attention_op(d_, bwd);
      if (docs()) o.flops = Flops{o.flops.v * (*doc_factors_)[micro][0]};
      return o;
    });
  }
  uint32_t block_op(bool bwd, int step, int micro) {
    const int64_t extra = docs() ? static_cast<int64_t>(micro) * 65536 + step : (step == 0 ? 0 : 1);
    return cached_op(bwd ? -33 : -32, extra, [&] {
      OpDesc o = cp_block(bwd, step);
      if (docs()) o.flops = Flops{o.flops.v * (*doc_factors_)[micro][step]};
      return o;
    });
  }

  uint32_t cp_attention_forward(Category c, int layer, int micro) {
    uint32_t first = kNoDep;
    if (d_.cp_ulysses > 1)
      first = emit_coll("cp.ulysses.qkv.alltoall", CollKind::kAllToAll, ulysses_qkv_bytes(), kGroupCpA2a,
                        kStreamCompute, Category::kCpComm, layer, micro);
    const int64_t R = cp_ring();
    const uint32_t qkv_ready = last_compute_;
    uint32_t shift = kNoDep;
    if (R > 1)   // the first hop of the local K, V (or their all-gather) starts as soon as they exist
      shift = torch_cp() ? emit_coll("cp.allgather.kv", CollKind::kAllGather, R * cp_kv_bytes(), kGroupCpRing,
                                     kStreamCp, Category::kCpComm, layer, micro, qkv_ready)
                         : emit_coll("cp.ring.kv.sendrecv", CollKind::kSendRecv, cp_kv_bytes(), kGroupCpRing,
                                     kStreamCp, Category::kCpComm, layer, micro, qkv_ready);
    uint32_t prev = emit_compute(block_op(false, 0, micro), c, layer, micro);
    if (first == kNoDep) first = prev;
    for (int64_t j = 1; j < R; ++j) {
      const uint32_t got = shift;   // block j's K, V
      // Two KV buffers: the hop that fills block j+1's buffer waits for block j-1 to free it.
      if (j + 1 < R && !torch_cp())
        shift = emit_coll("cp.ring.kv.sendrecv", CollKind::kSendRecv, cp_kv_bytes(), kGroupCpRing, kStreamCp,
                          Category::kCpComm, layer, micro, prev);
      prev = emit_compute(block_op(false, static_cast<int>(j), micro), c, layer, micro, got);
      emit_compute(cp_merge_op(false), c, layer, micro);
    }
    if (R > 1) emit_compute(cp_merge_ends_op(false), c, layer, micro);
    if (d_.cp_ulysses > 1)
      emit_coll("cp.ulysses.out.alltoall", CollKind::kAllToAll, ulysses_out_bytes(), kGroupCpA2a, kStreamCompute,
                Category::kCpComm, layer, micro);
    return first;
  }
  void cp_attention_backward(int layer, int micro) {
    const Category c = Category::kCompute;
    if (d_.cp_ulysses > 1)
      emit_coll("cp.ulysses.dout.alltoall", CollKind::kAllToAll, ulysses_out_bytes(), kGroupCpA2a, kStreamCompute,
                Category::kCpComm, layer, micro);
    const int64_t R = cp_ring();
    uint32_t shift = kNoDep;
    if (R > 1)   // K, V start their second trip around the ring (PyTorch's: their second all-gather)
      shift = torch_cp() ? emit_coll("cp.allgather.kv", CollKind::kAllGather, R * cp_kv_bytes(), kGroupCpRing,
                                     kStreamCp, Category::kCpComm, layer, micro, last_compute_)
                         : emit_coll("cp.ring.kv.sendrecv", CollKind::kSendRecv, cp_kv_bytes(), kGroupCpRing,
                                     kStreamCp, Category::kCpComm, layer, micro, last_compute_);
    uint32_t prev = emit_compute(block_op(true, 0, micro), c, layer, micro);
    uint32_t dkv = kNoDep;
    for (int64_t j = 1; j < R; ++j) {
      const uint32_t got = shift;
      if (j + 1 < R && !torch_cp())   // the next K, V into the buffer block j-1 freed
        shift = emit_coll("cp.ring.kv.sendrecv", CollKind::kSendRecv, cp_kv_bytes(), kGroupCpRing, kStreamCp,
                          Category::kCpComm, layer, micro, prev);
      // The dK, dV that block j-1 added to go on to the next rank, which adds them to its own
      // block j's before block j+1 starts.
      const uint32_t dkv_prev = dkv;
      dkv = emit_coll("cp.ring.dkv.sendrecv", CollKind::kSendRecv, cp_dkv_bytes(), kGroupCpRing, kStreamCp,
                      Category::kCpComm, layer, micro, prev);
      emit_compute(block_op(true, static_cast<int>(j), micro), c, layer, micro, got, dkv_prev);
      prev = emit_compute(cp_merge_op(true), c, layer, micro);   // the dK, dV to pass on are summed here
    }
    if (R > 1) emit_compute(cp_merge_ends_op(true), c, layer, micro);
    if (R > 1)   // the last dK, dV return to the rank that owns K, V, after the last hop they
                 // were added to (and so, on every rank, after the group's previous exchange)
      emit_coll("cp.ring.dkv.return", CollKind::kSendRecv, cp_dkv_bytes(), kGroupCpRing, kStreamCompute,
                Category::kCpComm, layer, micro, dkv);
    if (d_.cp_ulysses > 1)
      emit_coll("cp.ulysses.dqkv.alltoall", CollKind::kAllToAll, ulysses_qkv_bytes(), kGroupCpA2a, kStreamCompute,
                Category::kCpComm, layer, micro);
  }

  // The attention core forward; returns its first task.
  uint32_t attention_forward(Category c, int layer, int micro) {
    if (d_.cp > 1) return cp_attention_forward(c, layer, micro);
    if (fused_attention(tr_.attention_kernel)) return emit_compute(core_op(false, micro), c, layer, micro);
    const int64_t bh = d_.b * (d_.heads / d_.t);
    uint32_t first = emit_compute(OP(gemm_op("attn.scores.fwd", d_.s, d_.s, d_.qk_dim, DType::kBF16, false, bh)), c,
                                  layer, micro);
    // Megatron's FusedScaleMaskSoftmax: reads the scores, writes the probabilities (fp16/bf16).
    emit_compute(OP(memory_op("attn.softmax.fwd", OpClass::kElementwise, 2 * 2 * score_elems(), false)), c, layer, micro);
    if (tr_.dropout)  // reads probabilities, writes them and a 1-byte mask
      emit_compute(OP(memory_op("attn.dropout.fwd", OpClass::kElementwise, 5 * score_elems(), false)), c, layer, micro);
    emit_compute(OP(gemm_op("attn.context.fwd", d_.s, d_.v_dim, d_.s, DType::kBF16, false, bh)), c, layer, micro);
    return first;
  }
  void attention_backward(int layer, int micro) {
    const Category c = Category::kCompute;
    if (d_.cp > 1) {
      cp_attention_backward(layer, micro);
      return;
    }
    if (fused_attention(tr_.attention_kernel)) {
      emit_compute(core_op(true, micro), c, layer, micro);
      return;
    }
    const int64_t bh = d_.b * (d_.heads / d_.t);
    emit_compute(OP(gemm_op("attn.context.dgrad", d_.s, d_.s, d_.v_dim, DType::kBF16, true, bh)), c, layer, micro);
    emit_compute(OP(gemm_op("attn.context.wgrad", d_.s, d_.v_dim, d_.s, DType::kBF16, true, bh)), c, layer, micro);
    if (tr_.dropout)
      emit_compute(OP(memory_op("attn.dropout.bwd", OpClass::kElementwise, 5 * score_elems(), true)), c, layer, micro);
    emit_compute(OP(memory_op("attn.softmax.bwd", OpClass::kElementwise, 3 * 2 * score_elems(), true)), c, layer, micro);
    emit_compute(OP(gemm_op("attn.scores.dgrad", d_.s, d_.qk_dim, d_.s, DType::kBF16, true, bh)), c, layer, micro);
    emit_compute(OP(gemm_op("attn.scores.wgrad", d_.s, d_.qk_dim, d_.s, DType::kBF16, true, bh)), c, layer, micro);
  }

  // MLA projections into the attention core (Megatron-Core MLASelfAttention / DeepSeek):
  //   q:  down h -> q_lora (replicated on every TP rank), RMSNorm, up q_lora -> H/t*(nope+rope)
  //       (column-parallel); or, q_lora = 0, one column-parallel h -> H/t*(nope+rope);
  //   kv: down h -> kv_lora + rope (replicated), RMSNorm on the kv_lora part, up kv_lora ->
  //       H/t*(nope+v) (column-parallel);
  //   RoPE on the rope part of Q (H/t heads) and on the one shared rope key.
  // Replicated GEMMs run the rank's T/tp tokens with SP (their weight gradients then partial sums
  // over TP, reduced once per step by mla_grad_allreduce()), all T tokens without SP (the
  // latents' input gradients all-reduced per micro-batch: complete weight gradients).
  void mla_in_forward(Category c, int layer, int micro) {
    const int64_t T = d_.tokens(), Hl = d_.heads / d_.t;
    const bool latent = mla_latent_sp();
    const int64_t Tn = latent ? d_.norm_tokens() : T;   // tokens of the down-projections
    const DType g = d_.gemm_dtype;
    if (d_.q_lora > 0) {
      emit_compute(OP(gemm_op("attn.mla.q_down.fwd", Tn, d_.q_lora, d_.h, g, false)), c, layer, micro);
      emit_compute(OP(memory_op("attn.mla.q_norm.fwd", OpClass::kNorm, 2 * 2 * Tn * d_.q_lora, false)), c, layer, micro);
      if (latent) tp_coll_bytes("tp.mla.q.allgather", CollKind::kAllGather, 2 * T * d_.q_lora, layer, micro);
      emit_compute(OP(gemm_op("attn.mla.q_up.fwd", T, Hl * d_.qk_dim, d_.q_lora, g, false)), c, layer, micro);
    } else {
      emit_compute(OP(gemm_op("attn.mla.q.fwd", T, Hl * d_.qk_dim, d_.h, g, false)), c, layer, micro);
    }
    emit_compute(OP(gemm_op("attn.mla.kv_down.fwd", Tn, d_.kv_lora + d_.rope, d_.h, g, false)), c, layer, micro);
    emit_compute(OP(memory_op("attn.mla.kv_norm.fwd", OpClass::kNorm, 2 * 2 * Tn * d_.kv_lora, false)), c, layer, micro);
    if (latent) {
      tp_coll_bytes("tp.mla.kv.allgather", CollKind::kAllGather, 2 * T * d_.kv_lora, layer, micro);
      tp_coll_bytes("tp.mla.kpe.allgather", CollKind::kAllGather, 2 * T * d_.rope, layer, micro);
    }
    emit_compute(OP(gemm_op("attn.mla.kv_up.fwd", T, Hl * (d_.nope + d_.v_dim), d_.kv_lora, g, false)), c, layer, micro);
    // RoPE: read + write the rope parts of Q (H/t heads) and the shared key.
    emit_compute(OP(memory_op("attn.rope.fwd", OpClass::kElementwise, 2 * 2 * T * (Hl + 1) * d_.rope, false)), c, layer,
                 micro);
  }
  // The TP all-reduce of the replicated MLA weights' gradients (compiler.h): once per stage and
  // step, after the stage's DP reductions (stream order) and its last backward (dep), before the
  // optimizer. Only with MLA, tp > 1 and SP (without SP their gradients are already complete).
  void mla_grad_allreduce() {
    if (!mla_latent_sp()) return;
    int64_t layers = 0;
    for (int c = 0; c < par_.vp; ++c) layers += split_[virtual_stage(par_, c, stage_)];
    if (holds_head(par_, stage_)) layers += model_.mtp_depth;   // the MTP blocks (MLA like the last layer)
    int64_t bytes = 2 * mla_replicated_params(model_) * layers;
    if (par_.zero >= 3 && shard_ > 1) bytes = ceil_div(bytes, shard_);   // the shard this rank keeps
    bytes *= grad_x_;   // the main gradients, in the reduce format
    if (bytes == 0) return;
    last_reduction_ = emit_coll("tp.mla.grad.allreduce", CollKind::kAllReduce, bytes, mla_grad_group(model_.is_moe()),
                                par_.dp_overlap ? kStreamDp : kStreamCompute, Category::kTpComm, 0xffff, 0,
                                last_compute_);
  }
  // Tied embeddings or MTP under PP (compiler.h): stage 0 (embedding) and stage pp-1 (the LM
  // head's or the MTP lookup's copy) all-reduce that weight's gradient once per step on the
  // compute stream, after its last backward task (stream order) and the stage's last gradient
  // reduction (dep), before the optimizer. Nothing on other stages or pp = 1.
  void embedding_grad_allreduce() {
    if (!has_embedding_group(model_, par_) || (stage_ != 0 && stage_ != par_.pp - 1)) return;
    int64_t bytes = emb_grad_bytes_;
    if (par_.zero >= 3 && shard_ > 1) bytes = ceil_div(bytes, shard_);   // the shard this rank keeps
    bytes *= grad_x_;   // the main gradient, in the reduce format
    const uint8_t group = embedding_grad_group(moe_, has_mla_grad_group(d_.mla, d_.t, d_.sp));
    last_reduction_ = emit_coll("pp.embedding.grad.allreduce", CollKind::kAllReduce, bytes, group, kStreamCompute,
                                Category::kPpComm, 0xffff, 0, last_reduction_);
  }
  // DualPipe (compiler.h "pp-mirror"): rank r and rank pp-1-r hold the same two stages, one copy
  // per direction, and sum their gradients once per step before the optimizer: all of them, or
  // the shard this rank keeps with ZeRO (after its DP reduction), on the compute stream after
  // the stage's last reduction.
  void mirror_grad_allreduce() {
    if (mirror_group_ == 0xff) return;
    const int64_t dense = 2 * (params_local_ - expert_params_local_), expert = 2 * expert_params_local_;
    const int64_t bytes = grad_x_ * ((par_.zero >= 1 ? ceil_div(dense, shard_) : dense) +
                                     (par_.zero >= 1 ? ceil_div(expert, eshard_) : expert));
    last_reduction_ = emit_coll("pp.mirror.grad.allreduce", CollKind::kAllReduce, bytes, mirror_group_,
                                kStreamCompute, Category::kDpComm, 0xffff, 0, last_reduction_);
  }
  // sg: the SP re-gather of h (side stream) for a weight gradient whose input is the gathered
  // h: the down-projections' without the latent layout, the uncompressed query's.
  void mla_in_backward(int layer, int micro, uint32_t sg) {
    const Category c = Category::kCompute;
    const int64_t T = d_.tokens(), Hl = d_.heads / d_.t;
    const bool latent = mla_latent_sp();
    const int64_t Tn = latent ? d_.norm_tokens() : T;
    const DType g = d_.gemm_dtype;
    uint32_t sg_kv = kNoDep, sg_q = kNoDep;
    if (latent) {
      sg_kv = side_gather_bytes("tp.mla.kv.side.allgather", 2 * T * d_.kv_lora, layer, micro);
      if (d_.q_lora > 0) sg_q = side_gather_bytes("tp.mla.q.side.allgather", 2 * T * d_.q_lora, layer, micro);
    }
    emit_compute(OP(memory_op("attn.rope.bwd", OpClass::kElementwise, 2 * 2 * T * (Hl + 1) * d_.rope, true)), c, layer,
                 micro);
    const int64_t nkv = Hl * (d_.nope + d_.v_dim);
    emit_compute(OP(gemm_op("attn.mla.kv_up.dgrad", T, d_.kv_lora, nkv, g, true)), c, layer, micro);
    wgrad(OP(gemm_op("attn.mla.kv_up.wgrad", d_.kv_lora, nkv, T, g, true)), layer, micro, sg_kv);
    if (latent) {  // the latent and rope-key gradients are partial over the TP heads
      tp_coll_bytes("tp.mla.kv.reducescatter", CollKind::kReduceScatter, 2 * T * d_.kv_lora, layer, micro);
      tp_coll_bytes("tp.mla.kpe.reducescatter", CollKind::kReduceScatter, 2 * T * d_.rope, layer, micro);
    } else if (mla_latent()) {   // the same without SP: all-reduced, every rank keeps all T tokens
      tp_coll_bytes("tp.mla.kv.allreduce", CollKind::kAllReduce, 2 * T * d_.kv_lora, layer, micro);
      tp_coll_bytes("tp.mla.kpe.allreduce", CollKind::kAllReduce, 2 * T * d_.rope, layer, micro);
    }
    emit_compute(OP(memory_op("attn.mla.kv_norm.bwd", OpClass::kNorm, 3 * 2 * Tn * d_.kv_lora, true)), c, layer, micro);
    emit_compute(OP(gemm_op("attn.mla.kv_down.dgrad", Tn, d_.h, d_.kv_lora + d_.rope, g, true)), c, layer, micro);
    wgrad(OP(gemm_op("attn.mla.kv_down.wgrad", d_.h, d_.kv_lora + d_.rope, Tn, g, true)), layer, micro, latent ? kNoDep : sg);
    if (d_.q_lora > 0) {
      emit_compute(OP(gemm_op("attn.mla.q_up.dgrad", T, d_.q_lora, Hl * d_.qk_dim, g, true)), c, layer, micro);
      wgrad(OP(gemm_op("attn.mla.q_up.wgrad", d_.q_lora, Hl * d_.qk_dim, T, g, true)), layer, micro, sg_q);
      if (latent) tp_coll_bytes("tp.mla.q.reducescatter", CollKind::kReduceScatter, 2 * T * d_.q_lora, layer, micro);
      else if (mla_latent()) tp_coll_bytes("tp.mla.q.allreduce", CollKind::kAllReduce, 2 * T * d_.q_lora, layer, micro);
      emit_compute(OP(memory_op("attn.mla.q_norm.bwd", OpClass::kNorm, 3 * 2 * Tn * d_.q_lora, true)), c, layer, micro);
      emit_compute(OP(gemm_op("attn.mla.q_down.dgrad", Tn, d_.h, d_.q_lora, g, true)), c, layer, micro);
      wgrad(OP(gemm_op("attn.mla.q_down.wgrad", d_.h, d_.q_lora, Tn, g, true)), layer, micro);
    } else {
      emit_compute(OP(gemm_op("attn.mla.q.dgrad", T, d_.h, Hl * d_.qk_dim, g, true)), c, layer, micro);
      wgrad(OP(gemm_op("attn.mla.q.wgrad", d_.h, Hl * d_.qk_dim, T, g, true)), layer, micro, latent ? sg : kNoDep);
    }
  }

  // One transformer layer forward. Returns the index of its first task.
  uint32_t layer_forward(int layer, int micro, bool recompute, uint32_t first_dep, uint32_t first_dep2 = kNoDep) {
    const Category c = recompute ? Category::kRecompute : Category::kCompute;
    const DType g = d_.gemm_dtype;
    uint32_t first = maybe_memory(__LINE__, "layer.autocast.cast.fwd", OpClass::kElementwise,
                                  recompute || micro == 0 ? weight_cast_bytes(dense_bytes(layer) + expert_bytes(layer)) : 0,
                                  false, c, layer, micro, first_dep, first_dep2);
    if (first != kNoDep) {
      first_dep = first_dep2 = kNoDep;
      // The bf16 copies: the step's, held by autocast's cache until the last backward of the
      // layer; a recomputation's, until that micro-batch's backward (grad_memory).
      prog_.tasks[first].mem_alloc += dense_bytes(layer) + expert_bytes(layer);
    }
    const uint32_t norm = emit_compute(OP(memory_op("attn.norm.fwd", OpClass::kNorm, norm_bytes(), false)), c, layer,
                                       micro, first_dep, first_dep2);
    if (first == kNoDep) first = norm;
    if (attn_gathers_h() && !(tp_overlap() && !d_.mla)) tp_gather("tp.attn.allgather", layer, micro);
    if (d_.mla) {
      mla_in_forward(c, layer, micro);
    } else {
      gathered_gemm(__LINE__, "tp.attn.ring.allgather",
                    [&](int64_t rows) { return gemm_op("attn.qkv.fwd", rows, (d_.q + 2 * d_.kv) / d_.t, d_.h, g, false); },
                    c, layer, micro);
      if (d_.swiglu)  // RoPE on Q and K: read + write
        emit_compute(OP(memory_op("attn.rope.fwd", OpClass::kElementwise, rope_bytes(), false)),
                     c, layer, micro);
    }
    attention_forward(c, layer, micro);
    if (eager() && !d_.mla)   // the attention output's transpose to (tokens, heads x dim): a copy
      emit_compute(OP(memory_op("attn.out.copy.fwd", OpClass::kElementwise, 4 * d_.tokens() * d_.q / d_.t, false)), c,
                   layer, micro);
    reduce_out(reduced_gemm(__LINE__, "tp.attn.ring.reducescatter",
                            [&](int64_t rows) { return gemm_op("attn.proj.fwd", rows, d_.h, d_.q / d_.t, g, false); }, c,
                            layer, micro),
               "tp.attn.allreduce", "tp.attn.reducescatter", c, layer, micro);
    emit_compute(OP(memory_op("attn.residual.fwd", OpClass::kElementwise, resid_bytes(), false)), c, layer, micro);
    emit_compute(OP(memory_op("mlp.norm.fwd", OpClass::kNorm, norm_bytes(), false)), c, layer, micro);
    if (moe_layer(layer)) {
      tp_gather("tp.mlp.allgather", layer, micro);
      moe_forward(layer, micro, c, recompute);
      tp_reduce("tp.mlp.allreduce", "tp.mlp.reducescatter", layer, micro);
    } else {
      dense_mlp_forward(c, layer, micro);
    }
    emit_compute(OP(memory_op("mlp.residual.fwd", OpClass::kElementwise, resid_bytes(), false)), c, layer, micro);
    return first;
  }
  // A dense layer's MLP from the norm output to the TP-reduced FC2 output (with SP its gather
  // first; with tp_overlap both collectives split beside FC1 and FC2). Returns its first compute
  // task (the recompute module "mlp" reruns it whole).
  uint32_t dense_mlp_forward(Category c, int layer, int micro) {
    const DType g = d_.gemm_dtype;
    if (!tp_overlap()) tp_gather("tp.mlp.allgather", layer, micro);
    const uint32_t first = static_cast<uint32_t>(prog_.tasks.size());
    const int64_t f1 = (d_.swiglu ? 2 : 1) * d_.f / d_.t;
    gathered_gemm(__LINE__, "tp.mlp.ring.allgather",
                  [&](int64_t rows) { return gemm_op("mlp.fc1.fwd", rows, f1, d_.h, g, false); }, c, layer, micro);
    emit_compute(OP(memory_op(d_.swiglu ? "mlp.swiglu.fwd" : "mlp.gelu.fwd", OpClass::kElementwise, mlp_act_bytes(), false)),
                 c, layer, micro);
    reduce_out(reduced_gemm(__LINE__, "tp.mlp.ring.reducescatter",
                            [&](int64_t rows) { return gemm_op("mlp.fc2.fwd", rows, d_.h, d_.f / d_.t, g, false); }, c,
                            layer, micro),
               "tp.mlp.allreduce", "tp.mlp.reducescatter", c, layer, micro);
    return first;
  }

  // The SP re-gather of h for a column-parallel GEMM's weight gradient (side_gather_bytes).
  uint32_t side_gather(const char* name, int layer, int micro) {
    if (!d_.sp) return kNoDep;
    return side_gather_bytes(name, 2 * d_.tokens() * d_.h, layer, micro);
  }

  // The first recomputed task of a layer's backward takes the selective modules' transient.
  void rec_task(uint32_t task) {
    if (rec_alloc_ == 0) return;
    prog_.tasks[task].mem_alloc += rec_alloc_;
    rec_alloc_ = 0;
  }
  // Selective recomputation before the attention backward: the norms (the QKV or MLA
  // down-projection input, MLA's latent norms), MLA's up-projections and RoPE (Q, K, V), the
  // attention core: what `mods` (ParallelSpec::recompute_modules) names, in forward order.
  void attention_recompute(uint32_t mods, int layer, int micro) {
    const Category c = Category::kRecompute;
    const int64_t T = d_.tokens(), Hl = d_.heads / d_.t;
    const DType g = d_.gemm_dtype;
    if (mods & kRecomputeLayernorm) {
      rec_task(emit_compute(OP(memory_op("attn.norm.fwd", OpClass::kNorm, norm_bytes(), false)), c, layer, micro));
      if (d_.mla) {
        const int64_t Tn = mla_latent_sp() ? d_.norm_tokens() : T;
        if (d_.q_lora > 0)
          emit_compute(OP(memory_op("attn.mla.q_norm.fwd", OpClass::kNorm, 2 * 2 * Tn * d_.q_lora, false)), c, layer,
                       micro);
        emit_compute(OP(memory_op("attn.mla.kv_norm.fwd", OpClass::kNorm, 2 * 2 * Tn * d_.kv_lora, false)), c, layer,
                     micro);
      }
    }
    if ((mods & kRecomputeMlaUpProj) && d_.mla) {
      if (d_.q_lora > 0)
        rec_task(emit_compute(OP(gemm_op("attn.mla.q_up.fwd", T, Hl * d_.qk_dim, d_.q_lora, g, false)), c, layer, micro));
      else
        rec_task(emit_compute(OP(gemm_op("attn.mla.q.fwd", T, Hl * d_.qk_dim, d_.h, g, false)), c, layer, micro));
      emit_compute(OP(gemm_op("attn.mla.kv_up.fwd", T, Hl * (d_.nope + d_.v_dim), d_.kv_lora, g, false)), c, layer,
                   micro);
      emit_compute(OP(memory_op("attn.rope.fwd", OpClass::kElementwise, 2 * 2 * T * (Hl + 1) * d_.rope, false)), c,
                   layer, micro);
    }
    if (mods & kRecomputeCoreAttn) rec_task(attention_forward(c, layer, micro));
  }

  // torchtitan's op-level selective recomputation (models/spec.h kRecomputeOp): what the block
  // did not keep, rerun in forward order when its backward starts (the first backward op to use a
  // recomputed tensor, FC2's input gradient, comes right after the residual's): the input norm,
  // wk (the K columns of the fused QKV GEMM), RoPE on Q and K, wo, the residual add, the MLP
  // norm, w3 (the up half of the fused FC1) and the SwiGLU. The attention core's output is kept.
  // The loader keeps it to tp 1 (no TP collectives to rerun) and dense SwiGLU blocks.
  void op_recompute(int layer, int micro) {
    const Category c = Category::kRecompute;
    const int64_t T = d_.tokens();
    const DType g = d_.gemm_dtype;
    rec_task(emit_compute(OP(memory_op("attn.norm.fwd", OpClass::kNorm, norm_bytes(), false)), c, layer, micro));
    emit_compute(OP(gemm_op("attn.k.fwd", T, d_.kv, d_.h, g, false)), c, layer, micro);
    emit_compute(OP(memory_op("attn.rope.fwd", OpClass::kElementwise, rope_bytes(), false)), c, layer, micro);
    emit_compute(OP(gemm_op("attn.proj.fwd", T, d_.h, d_.q, g, false)), c, layer, micro);
    emit_compute(OP(memory_op("attn.residual.fwd", OpClass::kElementwise, resid_bytes(), false)), c, layer, micro);
    emit_compute(OP(memory_op("mlp.norm.fwd", OpClass::kNorm, norm_bytes(), false)), c, layer, micro);
    emit_compute(OP(gemm_op("mlp.fc1.up.fwd", T, d_.f, d_.h, g, false)), c, layer, micro);
    emit_compute(OP(memory_op("mlp.swiglu.fwd", OpClass::kElementwise, mlp_act_bytes(), false)), c, layer, micro);
  }

  // One transformer layer backward (with its recomputation). Returns its last task.
  uint32_t layer_backward(int layer, int micro, uint32_t gather_dep, uint32_t offload_dep = kNoDep) {
    const int64_t T = d_.tokens();
    const DType g = d_.gemm_dtype;
    const Category c = Category::kCompute;
    const LayerActivation act = act_for(layer, micro);
    const Recompute rec = recompute_of(layer);
    if (rec == Recompute::kFull) {
      uint32_t first = layer_forward(layer, micro, /*recompute=*/true, gather_dep, offload_dep);
      offload_dep = kNoDep;
      prog_.tasks[first].mem_alloc += act.recompute_transient_bytes;
      gather_dep = kNoDep;
    }
    // Selective: the modules' transient is taken by the first recomputed task (rec_task()).
    const uint32_t mods = rec == Recompute::kSelective ? par_.recompute_modules : 0u;
    rec_alloc_ = rec == Recompute::kSelective ? act.recompute_transient_bytes : 0;
    uint32_t first_b = emit_compute(OP(memory_op("mlp.residual.bwd", OpClass::kElementwise, resid_bwd_bytes(), true)),
                                    c, layer, micro, gather_dep, offload_dep);
    const bool ov = tp_overlap(), ov_mlp = ov && !moe_layer(layer);
    if (!ov_mlp) tp_gather("tp.mlp.bwd.allgather", layer, micro);
    const int64_t f1 = (d_.swiglu ? 2 : 1) * d_.f / d_.t;
    uint32_t sg = side_gather("tp.mlp.fc1in.allgather", layer, micro);
    if (mods & kRecomputeLayernorm)   // the FC1 (router, shared experts) input, from the kept norm input
      rec_task(emit_compute(OP(memory_op("mlp.norm.fwd", OpClass::kNorm, norm_bytes(), false)), Category::kRecompute,
                            layer, micro));
    if (mods & kRecomputeOp) op_recompute(layer, micro);
    if (moe_layer(layer)) {
      moe_backward(layer, micro, sg, (mods & kRecomputeMoeAct) != 0);
    } else {
      // The whole MLP forward again (a checkpointed module): its SP gather and TP reduction too.
      if (mods & kRecomputeMlp) rec_task(dense_mlp_forward(Category::kRecompute, layer, micro));
      gathered_gemm(__LINE__, "tp.mlp.bwd.ring.allgather",
                    [&](int64_t rows) { return gemm_op("mlp.fc2.dgrad", rows, d_.f / d_.t, d_.h, g, true); }, c, layer,
                    micro);
      wgrad(OP(gemm_op("mlp.fc2.wgrad", d_.f / d_.t, d_.h, T, g, true)), layer, micro);
      emit_compute(OP(memory_op(d_.swiglu ? "mlp.swiglu.bwd" : "mlp.gelu.bwd", OpClass::kElementwise, mlp_act_bwd_bytes(), true)), c,
                   layer, micro);
      // With tp_overlap the input gradient's reduce-scatter goes on beside the weight gradient.
      const uint32_t sent = reduced_gemm(
          __LINE__, "tp.mlp.bwd.ring.reducescatter",
          [&](int64_t rows) { return gemm_op("mlp.fc1.dgrad", rows, d_.h, f1, g, true); }, c, layer, micro);
      wgrad(OP(gemm_op("mlp.fc1.wgrad", d_.h, f1, T, g, true)), layer, micro, sg);
      if (ov) rs_finish(sent, c, layer, micro, true);
    }
    if (!ov_mlp) tp_reduce("tp.mlp.bwd.allreduce", "tp.mlp.bwd.reducescatter", layer, micro);
    emit_compute(OP(memory_op("mlp.norm.bwd", OpClass::kNorm, norm_bwd_bytes(), true)), c, layer, micro);
    emit_compute(OP(memory_op("attn.residual.bwd", OpClass::kElementwise, resid_bwd_bytes(), true)), c,
                 layer, micro);
    if (!ov) tp_gather("tp.attn.bwd.allgather", layer, micro);
    uint32_t sg2 = attn_gathers_h() ? side_gather("tp.attn.qkvin.allgather", layer, micro) : kNoDep;
    gathered_gemm(__LINE__, "tp.attn.bwd.ring.allgather",
                  [&](int64_t rows) { return gemm_op("attn.proj.dgrad", rows, d_.q / d_.t, d_.h, g, true); }, c, layer,
                  micro);
    wgrad(OP(gemm_op("attn.proj.wgrad", d_.q / d_.t, d_.h, T, g, true)), layer, micro);
    if (eager() && !d_.mla)   // the output gradient back to (heads, tokens, dim) for the kernel
      emit_compute(OP(memory_op("attn.out.copy.bwd", OpClass::kElementwise, 4 * T * d_.q / d_.t, true)), c, layer, micro);
    if (rec == Recompute::kSelective) attention_recompute(mods, layer, micro);
    attention_backward(layer, micro);
    if (d_.mla) {
      mla_in_backward(layer, micro, sg2);
    } else {
      if (d_.swiglu)
        emit_compute(OP(memory_op("attn.rope.bwd", OpClass::kElementwise, rope_bwd_bytes(), true)), c,
                     layer, micro);
      if (eager())   // the split of the fused QKV output: its gradient is the cat of dQ, dK, dV
        emit_compute(OP(memory_op("attn.qkv.cat.bwd", OpClass::kElementwise, 4 * T * (d_.q + 2 * d_.kv) / d_.t, true)),
                     c, layer, micro);
      const uint32_t sent = reduced_gemm(
          __LINE__, "tp.attn.bwd.ring.reducescatter",
          [&](int64_t rows) { return gemm_op("attn.qkv.dgrad", rows, d_.h, (d_.q + 2 * d_.kv) / d_.t, g, true); }, c,
          layer, micro);
      wgrad(OP(gemm_op("attn.qkv.wgrad", d_.h, (d_.q + 2 * d_.kv) / d_.t, T, g, true)), layer, micro, sg2);
      if (ov) rs_finish(sent, c, layer, micro, true);
    }
    if (attn_gathers_h() && !(ov && !d_.mla))
      tp_reduce("tp.attn.bwd.allreduce", "tp.attn.bwd.reducescatter", layer, micro);
    uint32_t last = emit_compute(OP(memory_op("attn.norm.bwd", OpClass::kNorm, norm_bwd_bytes(), true)), c, layer, micro);
    rec_task(first_b);   // nothing was recomputed (e.g. moe_act alone on a dense layer): its transient is 0
    int64_t release = act.saved_bytes + (rec != Recompute::kNone ? act.recompute_transient_bytes : 0);
    if (w_layer_ != nullptr) {   // a deferred W still reads the linear layers' inputs: they go after it
      const int64_t keep = std::min(w_layer_->x_bytes, release);
      w_layer_->free_bytes += keep;
      release -= keep;
    }
    prog_.tasks[last].mem_free += release;
    // A deferred W casts its gradients when it runs (weight_step).
    return w_layer_ != nullptr ? last : layer_grad_cast(layer, micro, last);
  }
  // PyTorch loops: the layer's weight gradients to fp32 (grad_cast_bytes) once they exist and
  // before their reduction; returns the cast, or `last` where there is none.
  uint32_t layer_grad_cast(int layer, int micro, uint32_t last) {
    const int64_t pbytes = dense_bytes(layer) + expert_bytes(layer);
    const uint32_t cast = maybe_memory(__LINE__, "layer.autocast.gradcast.bwd", OpClass::kElementwise,
                                       grad_cast_bytes(pbytes, micro), true, Category::kCompute, layer, micro);
    if (cast == kNoDep) return last;
    grad_memory(cast, pbytes, micro, recompute_of(layer) == Recompute::kFull);
    return cast;
  }

  int64_t dense_bytes(int l) const {
    return moe_ ? 2 * layer_params_local(model_, l, par_.tp) : layer_grad_bytes_;
  }
  // bf16 bytes of this rank's routed experts of layer l (Le experts, split by etp).
  int64_t expert_bytes(int l) const {
    return moe_layer(l) ? 2 * Le_ * ceil_div(expert_params(model_), etp_) : 0;
  }
  int64_t rows_of(int layer, int micro) const { return (*moe_rows_)[layer][micro]; }
  // The recomputation a layer gets: the scenario's, except that with block recomputation
  // (recompute "full" and recompute_layers N > 0) only the first N layers of the layer's model
  // chunk are recomputed and the rest keep their activations.
  Recompute recompute_of(int layer) const {
    if (par_.recompute != Recompute::kFull || par_.recompute_layers <= 0) return par_.recompute;
    return layer - chunk_first_layer(layer) < par_.recompute_layers ? Recompute::kFull : Recompute::kNone;
  }
  int chunk_first_layer(int layer) const {
    for (int c = 0; c < par_.vp; ++c) {
      const int v = virtual_stage(par_, c, stage_);
      if (layer >= first_layer_[v] && layer < first_layer_[v] + split_[v]) return first_layer_[v];
    }
    return layer;   // not on this stage: never asked
  }
  // The score tensors an unfused attention keeps when nothing is recomputed (Korthikanti et al.
  // 2022 eq. 1: softmax output (2), dropout mask (1), dropout output (2) per score element:
  // 5as^2b/t bytes that a fused kernel never stores); 0 otherwise.
  int64_t unfused_score_bytes(Recompute r) const {
    if (tr_.attention_kernel != AttentionKernel::kUnfused || r != Recompute::kNone) return 0;
    const int64_t score = static_cast<int64_t>(tr_.micro_batch) * (d_.heads / d_.t) * d_.s * d_.s;
    return (tr_.dropout ? 5 : 2) * score;
  }
  // A dense layer's activations under recomputation `r`.
  LayerActivation dense_activation(Recompute r) const {
    LayerActivation a =
        layer_activation(model_, static_cast<int>(d_.s), tr_.micro_batch, par_.tp, d_.sp, r, tr_.dropout, fp8_inputs(),
                         par_.recompute_modules);
    a.saved_bytes += unfused_score_bytes(r);
    return a;
  }
  // The linear layers keep their inputs for the backward pass as fp8 casts (1 B an element).
  bool fp8_inputs() const { return tr_.precision == DType::kFP8 && tr_.fp8_cache_inputs; }
  LayerActivation act_for(int layer, int micro) const {
    const Recompute r = recompute_of(layer);
    if (!moe_layer(layer)) {
      LayerActivation a = r == par_.recompute ? act_ : act_kept_;
      a.saved_bytes += eager_saved_bytes(r, false);
      return a;
    }
    LayerActivation a = moe_layer_activation(model_, static_cast<int>(d_.s), tr_.micro_batch, par_.tp, d_.sp, r,
                                             tr_.dropout, Tm_, rows_of(layer, micro), etp_, fp8_inputs(),
                                             par_.recompute_modules);
    a.saved_bytes += unfused_score_bytes(r) + eager_saved_bytes(r, true);
    return a;
  }
  // What eager PyTorch's separate ops keep for the backward beyond the fused set
  // (training.framework "torch_eager"): F.rms_norm's composite keeps its fp32 upcast input and
  // the bf16 normalized product (6 B an element, each of the two norms), RoPE the rotate_half
  // result (2 B an element of Q and K), SwiGLU the SiLU output (2 B an ffn element; dense layers).
  // None where the layer is recomputed whole, nor under torchtitan's op-level policy (recompute
  // module "op", which keeps matmul and attention outputs only); the norms' part not where the
  // "layernorm" module recomputes them.
  int64_t eager_saved_bytes(Recompute r, bool moe) const {
    if (!eager() || d_.mla || r == Recompute::kFull) return 0;
    const uint32_t mods = r == Recompute::kSelective ? par_.recompute_modules : 0u;
    if (mods & kRecomputeOp) return 0;
    int64_t b = 0;
    if (d_.rmsnorm && !(mods & kRecomputeLayernorm)) b += 2 * 6 * d_.norm_tokens() * d_.h;
    if (d_.swiglu) b += 2 * d_.tokens() * (d_.q + d_.kv) / d_.t;
    if (d_.swiglu && !moe) b += 2 * d_.tokens() * d_.f / d_.t;
    return b;
  }
  // Dispatch/combine (and their backward); `token` false for the placement migration, which
  // moves expert weights, never deduplicated.
  // `twin_bytes` (>= 0): the size with balanced routing, for the balanced twin.
  // With ep_overlap the all-to-all runs on the EP stream after the compute stream's last task
  // and the returned index is the dependency of the compute that uses its output (kNoDep
  // otherwise: on the compute stream it blocks); dispatch and combine cut the pair there
  // (ep_cuts_, merge_pair).
  uint32_t ep_a2a(const char* name, int64_t bytes, int layer, int micro, bool token = true, int64_t twin_bytes = -1) {
    if (par_.ep <= 1) return kNoDep;
    A2aDedup dd;
    if (token && tr_.moe.dispatch == MoeDispatch::kDedup) dd = {model_.top_k, model_.experts, tr_.moe.node_limit};
    const uint32_t i = emit_coll(name, CollKind::kAllToAll, bytes, kGroupEp, overlap_ ? kStreamEp : kStreamCompute,
                                 Category::kEpComm, layer, micro, overlap_ ? last_compute_ : kNoDep, dd);
    if (twin_bytes >= 0) twin(i, coll_op(name, CollKind::kAllToAll, twin_bytes, kGroupEp, dd));
    if (!overlap_) return kNoDep;
    if (token) ep_cuts_.push_back(i);
    return i;
  }
  // Expert TP (etp > 1): the expert-TP group gathers the rows its members received (all-gather,
  // `gather`) before the expert GEMMs and reduce-scatters their output after (Megatron-Core's
  // alltoall dispatcher; the backward mirrors them). `rows`: the group's rows (the busiest
  // group's), bf16 h-wide; `twin_rows` (>= 0) the balanced twin's.
  // `dep`: an all-to-all on the EP stream whose output it gathers (ep_overlap). Returns kNoDep
  // when laid out (it then carries the dependency), else `dep` for the next task to carry.
  uint32_t etp_coll(const char* name, bool gather, int64_t rows, int layer, int micro, int64_t twin_rows,
                    uint32_t dep = kNoDep) {
    if (etp_ <= 1) return dep;
    const CollKind kind = gather ? CollKind::kAllGather : CollKind::kReduceScatter;
    const int64_t h = d_.h;
    const uint32_t i =
        emit_coll(name, kind, 2 * h * rows, expert_tp_group_, kStreamCompute, Category::kEpComm, layer, micro, dep);
    if (twin_rows >= 0) twin(i, coll_op(name, kind, 2 * h * twin_rows, expert_tp_group_));
    return kNoDep;
  }
  // The all-to-all rows of one rank: its own routed copies out, its share of its expert-TP
  // group's rows in (the busiest group's, split evenly over its members).
  int64_t a2a_rows(int64_t group_rows) const { return std::max(Tm_ * model_.top_k, ceil_div(group_rows, etp_)); }
  // ep_overlap (compiler.h): interleaves a steady-state pair laid out as its forward [a, f_end)
  // then its backward [f_end, end). Each is cut after its dispatch/combine all-to-alls (ep_cuts_:
  // the forward's first f_cuts, then the backward's) and the pieces alternate, the backward's
  // first: B0 F0 B1 F1 ... So the backward's combine runs on the EP stream beside the forward's
  // attention, the forward's dispatch beside the backward's experts, the backward's dispatch
  // beside the forward's experts, the forward's combine beside the backward's attention
  // (DeepSeek-V3 report, section 3.2.1; Megatron-Core's combined 1F1B). Each half keeps its own
  // order, so every dependency still points back; the indices kept for later tasks move with
  // their tasks.
  void merge_pair(uint32_t a, uint32_t f_end, size_t f_cuts) {
    std::vector<Task>& v = prog_.tasks;
    const uint32_t end = static_cast<uint32_t>(v.size());
    if (f_end == a || end == f_end) return;
    using Seg = std::pair<uint32_t, uint32_t>;
    auto pieces = [&](uint32_t lo, uint32_t hi, size_t c0, size_t c1) {
      std::vector<Seg> s;
      for (size_t c = c0; c < c1; ++c) {
        s.push_back({lo, ep_cuts_[c] + 1});
        lo = ep_cuts_[c] + 1;
      }
      if (lo < hi) s.push_back({lo, hi});
      return s;
    };
    const std::vector<Seg> fs = pieces(a, f_end, 0, f_cuts), bs = pieces(f_end, end, f_cuts, ep_cuts_.size());
    std::vector<uint32_t> pos(end - a);   // old index - a -> new index
    std::vector<Task> merged;
    merged.reserve(end - a);
    auto take = [&](const Seg& s) {
      for (uint32_t i = s.first; i < s.second; ++i) {
        pos[i - a] = a + static_cast<uint32_t>(merged.size());
        merged.push_back(v[i]);
      }
    };
    for (size_t k = 0; k < std::max(fs.size(), bs.size()); ++k) {
      if (k < bs.size()) take(bs[k]);
      if (k < fs.size()) take(fs[k]);
    }
    auto map = [&](uint32_t& i) {
      if (i != kNoDep && i >= a && i < end) i = pos[i - a];
    };
    for (Task& t : merged)
      for (uint32_t& d : t.dep) map(d);
    std::copy(merged.begin(), merged.end(), v.begin() + a);
    map(expert_pg_);
    map(last_reduction_);
    map(last_replica_);
    map(pending_after_);
    map(pending_exp_after_);
    for (uint32_t& u : unit_starts_) map(u);
    for (auto& kv : gather_for_layer_) map(kv.second);
    for (auto& kv : expert_gather_for_layer_) map(kv.second);
    if (twins_ != nullptr)   // appended in task order: this pair's are at the end
      for (auto it = twins_->rbegin(); it != twins_->rend() && it->program == program_ && it->task >= a; ++it)
        map(it->task);
    for (uint32_t i = end; i-- > a;)   // the compute stream's last task is now the forward's
      if (v[i].stream == kStreamCompute) {
        last_compute_ = i;
        break;
      }
  }
  // Task i has op `op` in the balanced twin (listed only where it differs).
  void twin(uint32_t i, uint32_t op) {
    if (prog_.tasks[i].op != op) twins_->push_back(OpTwin{program_, i, op});
  }
  // An expert GEMM as laid out (busiest rank) and, for model FLOPs, at the mean load.
  // `rows_in_k`: the rows per expert are k (weight gradients), else m; `twin_rows` (>= 0) the
  // balanced twin's rows per expert.
  void expert_gemm(const char* name, int64_t m, int64_t n, int64_t k, bool bwd, int64_t rows_pos, int site,
                   Category c, int layer, int micro, uint32_t dep, bool rows_in_k, int64_t twin_rows,
                   uint32_t dep2 = kNoDep) {
    // The op is built only when the cache misses (its name would allocate on every call).
    auto op_of = [&](int64_t mm, int64_t kk) {
      return cached_op(site, mm * 1000003 + n * 7 + kk, [&] { return gemm_op(name, mm, n, kk, d_.gemm_dtype, bwd, Le_); });
    };
    uint32_t id = op_of(m, k);
    auto twin_op = [&] { return rows_in_k ? op_of(m, twin_rows) : op_of(twin_rows, k); };
    if (w_layer_ != nullptr && bwd && rows_in_k) {   // a weight gradient (its rows are the reduction), deferred
      SIM_CHECK(dep == kNoDep && dep2 == kNoDep, "a deferred expert weight gradient with a dependency");
      wgrad(id, layer, micro, kNoDep, twin_rows >= 0 ? twin_op() : OpCache::kEmpty);
    } else {
      const uint32_t ti = emit_compute(id, c, layer, micro, dep, dep2);
      if (twin_rows >= 0) {
        const uint32_t cast = last_cast_;   // fp8: the cast of this GEMM's operands, at the busiest rows
        const bool w = last_cast_weight_;
        const uint32_t tw = twin_op();
        twin(ti, tw);
        if (cast != kNoDep) twin(cast, fp8_cast_op(tw, w));
      }
    }
    if (c == Category::kCompute) {
      // Mean load: Tm*top_k rows over the local experts; the GEMM's FLOPs scale with its rows.
      const double mean_rows = static_cast<double>(Tm_) * model_.top_k;
      const double flops = plan_.ops[id].flops.v;
      model_flops_adjust_ += flops * (mean_rows / static_cast<double>(rows_pos)) - flops;
    }
  }

  // The experts' activation function over `rows` (forward: read 2 (swiglu) or 1 inputs, write
  // 1; backward 5 or 3 tensors), and its balanced twin (`twin_rows` >= 0).
  uint32_t expert_act(bool bwd, int64_t rows, Category c, int layer, int micro, int64_t twin_rows) {
    auto op_of = [&](int64_t r) {
      return cached_op(bwd ? -21 : -20, r, [&] {
        const char* name = bwd ? (d_.swiglu ? "moe.expert.swiglu.bwd" : "moe.expert.gelu.bwd")
                               : (d_.swiglu ? "moe.expert.swiglu.fwd" : "moe.expert.gelu.fwd");
        const int64_t tensors = bwd ? (d_.swiglu ? 5 : 3) : (d_.swiglu ? 3 : 2);
        return memory_op(name, OpClass::kElementwise, tensors * 2 * r * fe_, bwd);
      });
    };
    const uint32_t t = emit_compute(op_of(rows), c, layer, micro);
    if (twin_rows >= 0) twin(t, op_of(twin_rows));
    return t;
  }

  void moe_forward(int layer, int micro, Category c, bool recompute) {
    const int64_t T = d_.tokens(), h = d_.h, E = model_.experts, k = model_.top_k;
    const int64_t R = rows_of(layer, micro);
    const int64_t mpe = ceil_div(R, Le_);
    uint32_t eg = kNoDep;
    if (!recompute && micro == 0) {
      auto it = expert_gather_for_layer_.find(mtp_key_ != 0 ? mtp_key_ : layer);
      if (it != expert_gather_for_layer_.end()) eg = it->second;
    }
    emit_compute(OP(gemm_op("moe.router.fwd", Tm_, E, h, DType::kBF16, false)), c, layer, micro, eg);
    // softmax/sigmoid over bf16 logits into fp32 scores, top-k selection: indices (8 B) and weights (4 B).
    emit_compute(OP(memory_op("moe.topk.fwd", OpClass::kElementwise, Tm_ * E * (2 + 4 + 4) + Tm_ * k * 12, false)), c,
                 layer, micro);
    if (model_.shared_experts > 0) shared_forward(c, layer, micro);
    // Permute: read each token once, write it once per chosen expert.
    emit_compute(OP(memory_op("moe.permute.fwd", OpClass::kElementwise, 2 * h * (Tm_ + Tm_ * k), false)), c, layer,
                 micro);
    const int64_t a2a = 2 * h * a2a_rows(R);
    // The balanced twin's figures (-1 without twins).
    const int64_t Rb = twin_rows_, mpe_b = Rb >= 0 ? ceil_div(Rb, Le_) : -1;
    const int64_t a2a_b = Rb >= 0 ? 2 * h * a2a_rows(Rb) : -1;
    uint32_t w = ep_a2a("ep.dispatch.alltoall", a2a, layer, micro, true, a2a_b);
    w = etp_coll("ep.etp.allgather", true, R, layer, micro, Rb, w);
    const int64_t f1 = (d_.swiglu ? 2 : 1) * fe_;
    expert_gemm("moe.expert.fc1.fwd", mpe, f1, h, false, mpe * Le_, __LINE__, c, layer, micro, expert_pg_, false, mpe_b,
                w);
    expert_act(false, R, c, layer, micro, Rb);
    expert_gemm("moe.expert.fc2.fwd", mpe, h, fe_, false, mpe * Le_, __LINE__, c, layer, micro, kNoDep, false, mpe_b);
    etp_coll("ep.etp.reducescatter", false, R, layer, micro, Rb);
    w = ep_a2a("ep.combine.alltoall", a2a, layer, micro, true, a2a_b);
    // Unpermute: read the k expert outputs of each token, write their weighted sum.
    emit_compute(OP(memory_op("moe.unpermute.fwd", OpClass::kElementwise, 2 * h * (Tm_ * k + Tm_), false)), c, layer,
                 micro, w);
    (void)T;
  }
  void shared_forward(Category c, int layer, int micro) {
    const int64_t T = d_.tokens(), fs = int64_t{model_.shared_experts} * model_.expert_ffn_hidden / d_.t;
    const int64_t f1 = (d_.swiglu ? 2 : 1) * fs;
    emit_compute(OP(gemm_op("moe.shared.fc1.fwd", T, f1, d_.h, d_.gemm_dtype, false)), c, layer, micro);
    emit_compute(OP(memory_op(d_.swiglu ? "moe.shared.swiglu.fwd" : "moe.shared.gelu.fwd", OpClass::kElementwise,
                              (d_.swiglu ? 3 : 2) * 2 * T * fs, false)),
                 c, layer, micro);
    emit_compute(OP(gemm_op("moe.shared.fc2.fwd", T, d_.h, fs, d_.gemm_dtype, false)), c, layer, micro);
  }
  // `act_recompute`: the experts' activation is rerun first (recompute module moe_act).
  void moe_backward(int layer, int micro, uint32_t sg, bool act_recompute) {
    const Category c = Category::kCompute;
    const DType g = d_.gemm_dtype;
    const int64_t T = d_.tokens(), h = d_.h, E = model_.experts, k = model_.top_k;
    const int64_t R = rows_of(layer, micro);
    const int64_t mpe = ceil_div(R, Le_);
    // Unpermute backward: the output gradient to each of the k copies, and the routing-weight
    // gradients from the saved expert outputs.
    emit_compute(OP(memory_op("moe.unpermute.bwd", OpClass::kElementwise, 2 * h * (Tm_ + 2 * Tm_ * k), true)), c, layer,
                 micro);
    const int64_t a2a = 2 * h * a2a_rows(R);
    const int64_t Rb = twin_rows_, mpe_b = Rb >= 0 ? ceil_div(Rb, Le_) : -1;
    const int64_t a2a_b = Rb >= 0 ? 2 * h * a2a_rows(Rb) : -1;
    uint32_t w = ep_a2a("ep.combine.bwd.alltoall", a2a, layer, micro, true, a2a_b);
    w = etp_coll("ep.etp.bwd.allgather", true, R, layer, micro, Rb, w);
    const int64_t f1 = (d_.swiglu ? 2 : 1) * fe_;
    if (act_recompute) rec_task(expert_act(false, R, Category::kRecompute, layer, micro, Rb));
    // delay_wgrad: the expert weight gradients are held back (through the W capture) and laid
    // out after the dispatch all-to-all, so it starts right after the input gradients.
    WLayer delayed{layer, micro, 0, 0, 0, {}};
    const bool delay = delay_wgrad_now_ && w_layer_ == nullptr;
    if (delay) w_layer_ = &delayed;
    expert_gemm("moe.expert.fc2.dgrad", mpe, fe_, h, true, mpe * Le_, __LINE__, c, layer, micro, expert_pg_, false, mpe_b,
                w);
    expert_gemm("moe.expert.fc2.wgrad", fe_, h, mpe, true, mpe * Le_, __LINE__, c, layer, micro, kNoDep, true, mpe_b);
    expert_act(true, R, c, layer, micro, Rb);
    expert_gemm("moe.expert.fc1.dgrad", mpe, h, f1, true, mpe * Le_, __LINE__, c, layer, micro, kNoDep, false, mpe_b);
    expert_gemm("moe.expert.fc1.wgrad", h, f1, mpe, true, mpe * Le_, __LINE__, c, layer, micro, kNoDep, true, mpe_b);
    if (delay) w_layer_ = nullptr;
    etp_coll("ep.etp.bwd.reducescatter", false, R, layer, micro, Rb);
    w = ep_a2a("ep.dispatch.bwd.alltoall", a2a, layer, micro, true, a2a_b);
    emit_wgrads(delayed);
    emit_compute(OP(memory_op("moe.permute.bwd", OpClass::kElementwise, 2 * h * (Tm_ * k + Tm_), true)), c, layer,
                 micro, w);
    if (model_.shared_experts > 0) {
      const int64_t fs = int64_t{model_.shared_experts} * model_.expert_ffn_hidden / d_.t;
      const int64_t sf1 = (d_.swiglu ? 2 : 1) * fs;
      emit_compute(OP(gemm_op("moe.shared.fc2.dgrad", T, fs, h, g, true)), c, layer, micro);
      wgrad(OP(gemm_op("moe.shared.fc2.wgrad", fs, h, T, g, true)), layer, micro);
      emit_compute(OP(memory_op(d_.swiglu ? "moe.shared.swiglu.bwd" : "moe.shared.gelu.bwd", OpClass::kElementwise,
                                (d_.swiglu ? 5 : 3) * 2 * T * fs, true)),
                   c, layer, micro);
      emit_compute(OP(gemm_op("moe.shared.fc1.dgrad", T, h, sf1, g, true)), c, layer, micro);
      wgrad(OP(gemm_op("moe.shared.fc1.wgrad", h, sf1, T, g, true)), layer, micro, sg);
      sg = kNoDep;
    }
    emit_compute(OP(memory_op("moe.topk.bwd", OpClass::kElementwise, Tm_ * E * (4 + 4 + 2), true)), c, layer, micro);
    emit_compute(OP(gemm_op("moe.router.dgrad", Tm_, h, E, DType::kBF16, true)), c, layer, micro);
    wgrad(OP(gemm_op("moe.router.wgrad", h, E, Tm_, DType::kBF16, true)), layer, micro, sg);
    if (last_micro_ && moe_migration_ != nullptr && (*moe_migration_)[layer] > 0)   // see compiler.h
      ep_a2a("ep.placement.migration.alltoall", (*moe_migration_)[layer], layer, micro, false);
  }

  // ZeRO-3: gather a unit's parameters on the gather stream, `prefetch` units ahead. With
  // per-tensor gathering (DeepSpeed 2021, see ZeroGather) a transformer layer's parameters come
  // in one blocking collective per tensor on the compute stream (sizes in `tensors_`, scaled to
  // this rank's TP shard); other units in one collective as with FSDP.
  // `expert`: a MoE layer's routed experts (this rank's EP x ETP share), sharded over the
  // expert-DP group (Megatron-Core FSDP, torchtitan's edp mesh); gathered right after the
  // layer's dense part, which goes over the dp shard group.
  uint32_t zero3_gather(int64_t bytes, int layer, int micro, bool expert = false) {
    if (par_.zero < 3 || (expert ? eshard_ : shard_) <= 1 || bytes == 0) return kNoDep;
    if (!par_.zero3_reshard) {   // kept from the first use (in program order) to the step's end
      const uint64_t key = (uint64_t{static_cast<uint16_t>(layer)} << 48) ^ (uint64_t{expert} << 47) ^
                           static_cast<uint64_t>(bytes);
      if (!gathered_.insert(key).second) return kNoDep;
    }
    // Issued once the compute stream reached the unit `prefetch` places back: the gather
    // stream then runs ahead by at most prefetch+1 units.
    uint32_t dep = kNoDep;
    const int back = par_.zero3_prefetch;
    if (static_cast<int>(unit_starts_.size()) > back) dep = unit_starts_[unit_starts_.size() - 1 - back];
    if (par_.zero3_gather == ZeroGather::kTensor && layer != 0xffff) {
      // Experts are gathered only here, so their group never mixes streams.
      const uint8_t group = expert ? kGroupExpertDpGather : tensor_gather_group_;
      const std::vector<int64_t>& ts = expert ? expert_tensors_ : moe_layer(layer) ? moe_tensors_ : tensors_;
      const int64_t split = expert ? etp_ : d_.t;
      uint32_t last = kNoDep;
      for (int e = 0; e < (expert ? Le_ : 1); ++e)
        for (int64_t elems : ts)
          last = emit_coll(expert ? "zero3.expert.param.allgather.tensor" : "zero3.param.allgather.tensor",
                           CollKind::kAllGather, 2 * ceil_div(elems, split), group, kStreamCompute, Category::kDpComm,
                           layer, micro, kNoDep);
      return last;
    }
    return emit_coll(expert ? "zero3.expert.param.allgather" : "zero3.param.allgather", CollKind::kAllGather, bytes,
                     expert ? kGroupExpertDpGather : kGroupDpGather, kStreamGather, Category::kDpComm, layer, micro,
                     dep);
  }
  // ZeRO-3 gradients of a unit: the dense part reduce-scattered over the dp shard group (and
  // all-reduced over its replicas with HSDP), `expert` bytes of routed experts over expert-DP.
  void zero3_reduce(int64_t bytes, int layer, int micro, uint32_t after, int64_t expert = 0) {
    if (par_.zero < 3) return;
    if (!par_.zero3_reshard && !last_micro_) return;   // accumulated unsharded until the last backward
    bytes *= grad_x_;
    expert *= grad_x_;
    if (shard_ > 1) {
      uint32_t rs = emit_coll("zero3.grad.reducescatter", CollKind::kReduceScatter, bytes, kGroupDp, kStreamDp,
                              Category::kDpComm, layer, micro, after);
      last_reduction_ = rs;
      if (shard_ < dpg_ && replica_now())   // HSDP: on the replica stream, beside the next reduce-scatter (compiler.h)
        last_reduction_ = last_replica_ = emit_coll("hsdp.grad.allreduce", CollKind::kAllReduce, bytes / shard_,
                                                    kGroupDpRep, kStreamDpReplica, Category::kDpComm, layer, micro, rs);
    } else if (dpg_ > 1 && replica_now()) {   // a shard group of one rank (fsdp_shard_group 1): each rank holds it all
      last_reduction_ = emit_coll("hsdp.grad.allreduce", CollKind::kAllReduce, bytes, kGroupDpRep, kStreamDp,
                                  Category::kDpComm, layer, micro, after);
    }
    if (expert > 0 && eshard_ * erep_ > 1) emit_expert_reduction(expert, kStreamDp, after, layer, micro);
  }

  // ZeRO-3 HSDP: whether this backward all-reduces its gradient shards over the replicas (every
  // micro-batch, or only the chunk's last with hsdp_defer_all_reduce).
  bool replica_now() const { return !par_.hsdp_defer_all_reduce || last_micro_; }
  // Gradient buckets for ZeRO 0-2: filled during the last backward of a chunk.
  void add_grads(int64_t bytes, uint32_t after) {
    if (par_.zero >= 3 || dpg_ <= 1) return;
    pending_bytes_ += bytes * grad_x_;
    pending_after_ = after;
    if (pending_bytes_ >= bucket_bytes_) flush_bucket();
  }
  // Emits the pending bucket's reduction after the task that filled it last (pending_after_).
  void add_expert_grads(int64_t bytes, uint32_t after) {
    if (par_.zero >= 3 || bytes == 0 || eshard_ * erep_ <= 1) return;
    pending_exp_bytes_ += bytes * grad_x_;
    pending_exp_after_ = after;
    if (pending_exp_bytes_ >= bucket_bytes_) flush_expert_bucket();
  }
  void flush_expert_bucket() {
    if (pending_exp_bytes_ == 0) return;
    if (!par_.dp_overlap) {
      deferred_.push_back(-pending_exp_bytes_);   // negative: an expert bucket
    } else {
      emit_expert_reduction(pending_exp_bytes_, kStreamDp, pending_exp_after_);
    }
    pending_exp_bytes_ = 0;
  }
  // Expert gradients: reduce-scattered (ZeRO >= 1) or all-reduced over the expert shard group
  // (all of expert-DP without HSDP); with HSDP the shard (ZeRO >= 1) or the whole buffer
  // (ZeRO 0) then all-reduced over the expert replicas, on the same stream, as for the dense part.
  void emit_expert_reduction(int64_t bytes, uint8_t stream, uint32_t after, int layer = 0xffff, int micro = 0) {
    const bool rs = par_.zero >= 1;
    uint32_t t = after;
    if (eshard_ > 1)
      t = emit_coll(rs ? "ep.expert.grad.reducescatter" : "ep.expert.grad.allreduce",
                    rs ? CollKind::kReduceScatter : CollKind::kAllReduce, bytes, kGroupExpertDp, stream,
                    Category::kDpComm, layer, micro, after);
    if (erep_ > 1 && (par_.zero < 3 || replica_now())) {
      // ZeRO-3 (FSDP2 HSDP): on the replica stream (compiler.h); ZeRO 0-2 after the reduce on `stream`.
      const bool fsdp = par_.zero >= 3;
      t = emit_coll(fsdp ? "hsdp.expert.grad.allreduce" : "ep.expert.grad.replica.allreduce", CollKind::kAllReduce,
                    rs ? bytes / eshard_ : bytes, expert_rep_group_, fsdp ? kStreamDpReplica : stream,
                    Category::kDpComm, layer, micro, t);
      if (fsdp) last_replica_ = t;
    }
    last_reduction_ = t;
  }
  void flush_bucket() {
    flush_expert_bucket();
    if (pending_bytes_ == 0) return;
    if (!par_.dp_overlap) {
      deferred_.push_back(pending_bytes_);
    } else {
      emit_reduction(pending_bytes_, kStreamDp, pending_after_);
    }
    pending_bytes_ = 0;
  }
  void emit_reduction(int64_t bytes, uint8_t stream, uint32_t after) {
    if (shard_ == 1 && dpg_ > 1) {   // a shard group of one rank (fsdp_shard_group 1): replicas only
      last_reduction_ = emit_coll("dp.grad.replica.allreduce", CollKind::kAllReduce, bytes, kGroupDpRep, stream,
                                  Category::kDpComm, 0xffff, 0, after);
      return;
    }
    const bool rs = par_.zero >= 1 && shard_ > 1;
    uint32_t t = emit_coll(rs ? "dp.grad.reducescatter" : "dp.grad.allreduce",
                           rs ? CollKind::kReduceScatter : CollKind::kAllReduce, bytes, kGroupDp, stream,
                           Category::kDpComm, 0xffff, 0, after);
    if (rs && shard_ < dpg_)
      t = emit_coll("dp.grad.replica.allreduce", CollKind::kAllReduce, bytes / shard_, kGroupDpRep, stream,
                    Category::kDpComm, 0xffff, 0, t);
    last_reduction_ = t;
  }
  void emit_deferred_reductions() {
    for (int64_t b : deferred_) {
      if (b < 0) emit_expert_reduction(-b, kStreamCompute, last_compute_);
      else emit_reduction(b, kStreamCompute, last_compute_);
    }
  }
  void emit_param_gather_at_start() {
    // The previous step's updated shards, gathered in forward order while this step's
    // forward runs (Megatron --overlap-param-gather); a layer's first forward waits for its
    // bucket.
    int64_t acc = 0;
    auto flush = [&] {
      if (acc == 0) return;
      uint32_t t = emit_coll("zero.param.allgather", CollKind::kAllGather, acc, kGroupDpGather, kStreamGather,
                             Category::kDpComm, 0xffff, 0, kNoDep);
      for (int l : pending_layers_) gather_for_layer_[l] = t;
      pending_layers_.clear();
      acc = 0;
    };
    for (int c = 0; c < par_.vp; ++c) {
      const int v = virtual_stage(par_, c, stage_);
      if (v == 0) {
        acc += emb_grad_bytes_;
        pending_layers_.push_back(-1);
      }
      for (int l = first_layer_[v]; l < first_layer_[v] + split_[v]; ++l) {
        acc += dense_bytes(l);
        pending_layers_.push_back(l);
        if (expert_bytes(l) > 0 && eshard_ > 1)   // one gather per MoE layer's experts
          expert_gather_for_layer_[l] =
              emit_coll("zero.expert.param.allgather", CollKind::kAllGather, expert_bytes(l), kGroupExpertDpGather,
                        kStreamGather, Category::kDpComm, 0xffff, 0, kNoDep);
        if (acc >= bucket_bytes_) flush();
      }
      if (v == nv_ - 1) {   // the final norm and the LM head (a tied head on stage 0 is the embedding's)
        const bool shared = model_.tied_embeddings && head_with_embedding(par_);
        acc += (shared ? 0 : emb_grad_bytes_) + 2 * final_norm_params(model_);
        if (model_.mtp_depth > 0) {   // the MTP modules run after the head: in its bucket
          const int L = model_.layers - 1;
          acc += mtp_emb_copy_ ? emb_grad_bytes_ : 0;
          for (int k = 0; k < model_.mtp_depth; ++k) {
            acc += dense_bytes(L) + mtp_front_bytes_;
            if (expert_bytes(L) > 0 && eshard_ > 1)
              expert_gather_for_layer_[kMtpKey - k] =
                  emit_coll("zero.expert.param.allgather", CollKind::kAllGather, expert_bytes(L), kGroupExpertDpGather,
                            kStreamGather, Category::kDpComm, 0xffff, 0, kNoDep);
          }
        }
        pending_layers_.push_back(kHeadSlot);
      }
    }
    flush();
  }

  // Multi-token prediction (spec.h mtp_depth; compiler.h), module k on the last virtual stage,
  // after the main loss. The block is laid out as the model's last layer (layers - 1): its
  // shapes, activations, ZeRO-3 tensors and MoE routing draw are that layer's, and its tasks
  // carry that layer index in traces (an approximation: a module draws its own routing).
  // Not offloaded (activation_offload applies to the main layers only).
  void mtp_forward(int k, int micro) {
    const int L = model_.layers - 1;
    const int64_t T = d_.tokens(), h = d_.h;
    const bool shared = model_.tied_embeddings && head_with_embedding(par_);
    // ZeRO-3: the embedding (the shared matrix or the last stage's copy), projection and norms.
    uint32_t fg = zero3_gather(emb_grad_bytes_ + mtp_front_bytes_, 0xffff, micro);
    uint32_t e = emit_compute(OP(memory_op("mtp.embedding.fwd", OpClass::kEmbedding, 2 * 2 * T * h, false)),
                              Category::kCompute, 0xffff, micro, fg);
    prog_.tasks[e].mem_alloc += mtp_front_activation_bytes(model_, static_cast<int>(d_.s), tr_.micro_batch, par_.tp, d_.sp);
    unit_starts_.push_back(e);
    tp_reduce("tp.mtp.embedding.allreduce", "tp.mtp.embedding.reducescatter", 0xffff, micro);
    emit_compute(OP(memory_op("mtp.enorm.fwd", OpClass::kNorm, norm_bytes(), false)), Category::kCompute, 0xffff, micro);
    emit_compute(OP(memory_op("mtp.hnorm.fwd", OpClass::kNorm, norm_bytes(), false)), Category::kCompute, 0xffff, micro);
    // Column-parallel 2h -> h/t: with SP its input is gathered over the sequence first; its
    // output is gathered over the hidden dim (Megatron-Core's eh_proj, then
    // all_gather_last_dim_from_tensor_parallel_region; with SP scattered back, no transfer).
    if (d_.sp && d_.t > 1)
      tp_coll_bytes("tp.mtp.proj.allgather", CollKind::kAllGather, 2 * T * 2 * h, 0xffff, micro);
    emit_compute(OP(gemm_op("mtp.proj.fwd", T, h / d_.t, 2 * h, d_.gemm_dtype, false)), Category::kCompute, 0xffff,
                 micro);
    if (d_.t > 1) tp_coll_bytes("tp.mtp.proj.out.allgather", CollKind::kAllGather, 2 * T * h, 0xffff, micro);
    uint32_t pg = zero3_gather(dense_bytes(L), L, micro);
    expert_pg_ = zero3_gather(expert_bytes(L), L, micro, /*expert=*/true);
    mtp_key_ = kMtpKey - k;
    uint32_t first = layer_forward(L, micro, false, pg);
    mtp_key_ = 0;
    prog_.tasks[first].mem_alloc += act_for(L, micro).saved_bytes;
    unit_starts_.push_back(first);
    // The shared final norm, LM head and loss, as the main head's.
    head_forward(micro, shared ? kNoDep : zero3_gather(emb_grad_bytes_ + 2 * final_norm_params(model_), 0xffff, micro),
                 kNoDep);
  }
  // The final norm, LM head and vocab-parallel cross-entropy (the main model's, and each MTP
  // module's through the shared head), after `hg` (the head's ZeRO-3 gather) and `dep2`.
  void head_forward(int micro, uint32_t hg, uint32_t dep2) {
    const int64_t T = d_.tokens();
    uint32_t n = emit_compute(OP(memory_op("final.norm.fwd", OpClass::kNorm, norm_bytes(), false)), Category::kCompute,
                              0xffff, micro, hg, dep2);
    prog_.tasks[n].mem_alloc += head_activation_bytes(model_, static_cast<int>(d_.s), tr_.micro_batch, par_.tp, d_.sp);
    unit_starts_.push_back(n);
    tp_gather("tp.head.allgather", 0xffff, micro);
    const uint32_t wc = maybe_memory(__LINE__, "head.autocast.cast.fwd", OpClass::kElementwise,
                                     micro == 0 ? weight_cast_bytes(head_param_bytes()) : 0, false, Category::kCompute,
                                     0xffff, micro);
    if (wc != kNoDep) prog_.tasks[wc].mem_alloc += head_param_bytes();   // its bf16 copy, saved for the backward
    // The LM head runs in bf16 in fp8 runs too: Megatron-Core's output layer is not a
    // Transformer Engine module, and torchtitan's Float8 conversion skips "output". The MoE
    // router likewise stays out of fp8.
    emit_compute(OP(gemm_op("head.fwd", T, d_.vocab / d_.t, d_.h, DType::kBF16, false)), Category::kCompute, 0xffff,
                 micro);
    // PyTorch loops: F.cross_entropy(logits.float(), ...) casts the bf16 logits to fp32 first.
    if (torch_casts())
      emit_compute(OP(memory_op("loss.torch.cast.fwd", OpClass::kLoss, T * (d_.vocab / d_.t) * (2 + 4), false)),
                   Category::kCompute, 0xffff, micro);
    // Vocab-parallel cross-entropy: reads bf16 logits, writes fp32 softmax, reads it back.
    emit_compute(OP(memory_op("loss.fwd", OpClass::kLoss, T * (d_.vocab / d_.t) * (2 + 4 + 4), false)),
                 Category::kCompute, 0xffff, micro);
    if (d_.t > 1)  // max, sum-exp and target-logit all-reduces over the vocab shards (fp32)
      emit_coll("tp.loss.allreduce", CollKind::kAllReduce, 3 * 4 * T, kGroupTp, kStreamCompute, Category::kTpComm,
                0xffff, micro);
  }
  // Its backward, from the loss to the final norm (returned), after `hg`.
  uint32_t head_backward(int micro, uint32_t hg) {
    const int64_t T = d_.tokens();
    const int64_t logits = T * (d_.vocab / d_.t);
    if (torch_casts()) {
      // PyTorch's cross-entropy backward: nll_loss's gradient is a dense fp32 tensor (zeros, then
      // the targets scattered), log_softmax's backward writes another, and the cast's backward
      // takes it to bf16. The two fp32 gradients beside the saved log-probabilities are the
      // loss's peak: 8 B a logit more than the 4 the forward's saved bytes leave room for.
      const uint32_t z = emit_compute(OP(memory_op("loss.torch.nllgrad.bwd", OpClass::kLoss, 4 * logits, true)),
                                      Category::kCompute, 0xffff, micro, hg);
      prog_.tasks[z].mem_alloc += 8 * logits;
      hg = kNoDep;
    }
    emit_compute(OP(memory_op("loss.bwd", OpClass::kLoss, logits * (4 + 2), true)), Category::kCompute,
                 0xffff, micro, hg);
    if (torch_casts()) {
      const uint32_t cb = emit_compute(OP(memory_op("loss.torch.cast.bwd", OpClass::kLoss, (4 + 2) * logits, true)),
                                       Category::kCompute, 0xffff, micro);
      prog_.tasks[cb].mem_free += 8 * logits;
    }
    emit_compute(OP(gemm_op("head.dgrad", T, d_.h, d_.vocab / d_.t, DType::kBF16, true)), Category::kCompute, 0xffff,
                 micro);
    emit_compute(OP(gemm_op("head.wgrad", d_.h, d_.vocab / d_.t, T, DType::kBF16, true)), Category::kCompute, 0xffff,
                 micro);
    const uint32_t gc = maybe_memory(__LINE__, "head.autocast.gradcast.bwd", OpClass::kElementwise,
                                     grad_cast_bytes(head_param_bytes(), micro), true, Category::kCompute, 0xffff, micro);
    if (gc != kNoDep) grad_memory(gc, head_param_bytes(), micro);
    tp_reduce("tp.head.bwd.allreduce", "tp.head.bwd.reducescatter", 0xffff, micro);
    uint32_t n = emit_compute(OP(memory_op("final.norm.bwd", OpClass::kNorm, norm_bwd_bytes(), true)),
                              Category::kCompute, 0xffff, micro);
    prog_.tasks[n].mem_free += head_activation_bytes(model_, static_cast<int>(d_.s), tr_.micro_batch, par_.tp, d_.sp);
    return n;
  }
  // Its backward, mirrored. The head's and final norm's gradients accumulate into the main
  // head's (reduced after the main head's backward), the lookup's into the embedding's (pp = 1,
  // or the tied head's copy) or, pp > 1 untied, into the last stage's copy: reduced here with
  // module 0 (the last of the backward), all-reduced with stage 0 once per step.
  void mtp_backward(int k, int micro, bool last_micro) {
    const int L = model_.layers - 1;
    const int64_t T = d_.tokens(), h = d_.h;
    const bool shared = model_.tied_embeddings && head_with_embedding(par_);
    head_backward(micro, shared ? kNoDep : zero3_gather(emb_grad_bytes_ + 2 * final_norm_params(model_), 0xffff, micro));
    uint32_t pg = zero3_gather(dense_bytes(L), L, micro);
    expert_pg_ = zero3_gather(expert_bytes(L), L, micro, /*expert=*/true);
    unit_starts_.push_back(static_cast<uint32_t>(prog_.tasks.size()));
    mtp_key_ = kMtpKey - k;
    uint32_t last = layer_backward(L, micro, pg);
    mtp_key_ = 0;
    zero3_reduce(dense_bytes(L), L, micro, last, expert_bytes(L));
    if (last_micro) {
      add_grads(dense_bytes(L), last);
      add_expert_grads(expert_bytes(L), last);
    }
    uint32_t fg = zero3_gather(emb_grad_bytes_ + mtp_front_bytes_, 0xffff, micro);
    tp_gather("tp.mtp.proj.bwd.allgather", 0xffff, micro);   // SP: the sequence scatter's backward
    uint32_t sg = d_.sp && d_.t > 1 ? side_gather_bytes("tp.mtp.proj.side.allgather", 2 * T * 2 * h, 0xffff, micro)
                                    : kNoDep;
    emit_compute(OP(gemm_op("mtp.proj.dgrad", T, 2 * h, h / d_.t, d_.gemm_dtype, true)), Category::kCompute, 0xffff,
                 micro, fg);
    emit_compute(OP(gemm_op("mtp.proj.wgrad", 2 * h, h / d_.t, T, d_.gemm_dtype, true)), Category::kCompute, 0xffff,
                 micro, sg);
    if (d_.t > 1)   // the 2h-wide input gradient, partial over the output shards
      tp_coll_bytes(d_.sp ? "tp.mtp.proj.bwd.reducescatter" : "tp.mtp.proj.bwd.allreduce",
                    d_.sp ? CollKind::kReduceScatter : CollKind::kAllReduce, 2 * T * 2 * h, 0xffff, micro);
    emit_compute(OP(memory_op("mtp.hnorm.bwd", OpClass::kNorm, norm_bwd_bytes(), true)), Category::kCompute, 0xffff,
                 micro);
    emit_compute(OP(memory_op("mtp.enorm.bwd", OpClass::kNorm, norm_bwd_bytes(), true)), Category::kCompute, 0xffff,
                 micro);
    tp_gather("tp.mtp.embedding.bwd.allgather", 0xffff, micro);
    uint32_t e = emit_compute(OP(memory_op("mtp.embedding.bwd", OpClass::kEmbedding, 2 * 4 * T * h, true)),
                              Category::kCompute, 0xffff, micro);
    prog_.tasks[e].mem_free += mtp_front_activation_bytes(model_, static_cast<int>(d_.s), tr_.micro_batch, par_.tp, d_.sp);
    const int64_t grads = mtp_front_bytes_ + (k == 0 && mtp_emb_copy_ ? emb_grad_bytes_ : 0);
    zero3_reduce(grads, 0xffff, micro, e);
    if (last_micro) add_grads(grads, e);
  }

  // Pipeline messages of virtual stage v: the activation from v-1 and the gradient from v+1.
  // Interleaved, v-1 runs on the previous rank and v+1 on the next; in a V (DualPipeV), chunk
  // 1's run the other way, on channels 2 and 3 (one sender per receiving rank and channel), and
  // the turn from virtual stage pp-1 to pp stays on rank pp-1: no message at all.
  // DualPipe: the same with the direction of the chunk's model copy: downwards (rank r+1 runs
  // v+1) on channels 0 and 1, upwards on 2 and 3; the middle ranks pass messages across.
  bool turn_in(int v) const { return v_schedule(par_.schedule) && v == par_.pp; }        // v-1 is on this rank
  bool turn_out(int v) const { return v_schedule(par_.schedule) && v == par_.pp - 1; }   // v+1 is on this rank
  bool up(int chunk) const {   // the chunk's v+1 runs on rank r-1
    if (par_.schedule == Schedule::kDualPipe) return (stage_ < par_.pp / 2) == (chunk == 1);
    return v_schedule(par_.schedule) && chunk == 1;
  }
  uint8_t fwd_channel(int c) const { return up(c) ? 2 : 0; }
  uint8_t bwd_channel(int c) const { return up(c) ? 3 : 1; }
  uint8_t peer_of_next(int c) const { return up(c) ? kPeerPrev : kPeerNext; }   // v+1's rank
  uint8_t peer_of_prev(int c) const { return up(c) ? kPeerNext : kPeerPrev; }   // v-1's rank

  void forward(int chunk, int micro) {
    const int v = virtual_stage(par_, chunk, stage_);
    const int64_t T = d_.tokens();
    if (v > 0 && !turn_in(v)) emit_p2p(false, fwd_channel(chunk), peer_of_prev(chunk), first_layer_[v], micro);
    uint32_t pg = kNoDep;
    auto param_dep = [&](int layer) -> uint32_t {
      if (micro != 0) return kNoDep;   // the gather of the step's first use covers the rest
      auto it = gather_for_layer_.find(layer);
      return it == gather_for_layer_.end() ? kNoDep : it->second;
    };
    if (v == 0) {
      pg = zero3_gather(emb_grad_bytes_, 0xffff, micro);
      uint32_t e = emit_compute(OP(memory_op("embedding.fwd", OpClass::kEmbedding, 2 * 2 * T * d_.h, false)),
                                Category::kCompute, 0xffff, micro, pg, param_dep(-1));
      prog_.tasks[e].mem_alloc += embedding_activation_bytes(model_, static_cast<int>(d_.s), tr_.micro_batch, par_.tp, d_.sp);
      unit_starts_.push_back(e);
      tp_reduce("tp.embedding.allreduce", "tp.embedding.reducescatter", 0xffff, micro);
    }
    for (int l = first_layer_[v]; l < first_layer_[v] + split_[v]; ++l) {
      pg = zero3_gather(dense_bytes(l), l, micro);
      expert_pg_ = zero3_gather(expert_bytes(l), l, micro, /*expert=*/true);
      uint32_t dep = pg != kNoDep ? pg : param_dep(l);
      uint32_t first = layer_forward(l, micro, false, dep);
      prog_.tasks[first].mem_alloc += act_for(l, micro).saved_bytes;
      unit_starts_.push_back(first);
      if (offloading()) emit_offload(true, l, micro, last_compute_);
    }
    if (v == nv_ - 1) {
      const bool shared = model_.tied_embeddings && head_with_embedding(par_);
      uint32_t hg = shared ? kNoDep : zero3_gather(emb_grad_bytes_ + 2 * final_norm_params(model_), 0xffff, micro);
      head_forward(micro, hg, param_dep(kHeadSlot));
      for (int k = 0; k < model_.mtp_depth; ++k) mtp_forward(k, micro);
    } else if (!turn_out(v)) {
      emit_p2p(true, fwd_channel(chunk), peer_of_next(chunk), first_layer_[v] + split_[v] - 1, micro);
    }
  }

  // `defer_w`: the transformer layers' weight-gradient GEMMs, their gradient reductions and
  // the release of their saved activations wait for a later weight_step() (a B/W split).
  void backward(int chunk, int micro, bool defer_w = false) {
    const int v = virtual_stage(par_, chunk, stage_);
    const int64_t T = d_.tokens();
    const bool last_micro = micro == last_bwd_of_chunk_[chunk];
    last_micro_ = last_micro;
    WUnit* unit = nullptr;
    if (defer_w) {
      w_queue_.emplace_back();
      unit = &w_queue_.back();
      unit->chunk = chunk;
      unit->last_micro = last_micro;
    }
    if (v < nv_ - 1 && !turn_out(v))
      emit_p2p(false, bwd_channel(chunk), peer_of_next(chunk), first_layer_[v] + split_[v] - 1, micro);
    if (v == nv_ - 1) {
      // The MTP modules first, last one first: their gradient flows into the main model's final
      // hidden states, and the head's and embedding's gradients they add are reduced with the
      // main head's (below) and the embedding's.
      for (int k = model_.mtp_depth - 1; k >= 0; --k) mtp_backward(k, micro, last_micro);
      // A tied head on the embedding's own rank shares its weight: gathered and reduced once,
      // at the embedding.
      const bool shared = model_.tied_embeddings && head_with_embedding(par_);
      uint32_t hg = shared ? kNoDep : zero3_gather(emb_grad_bytes_ + 2 * final_norm_params(model_), 0xffff, micro);
      const uint32_t n = head_backward(micro, hg);
      const int64_t head_grads = (shared ? 0 : emb_grad_bytes_) + 2 * final_norm_params(model_);
      zero3_reduce(head_grads, 0xffff, micro, n);
      if (last_micro) add_grads(head_grads, n);
    }
    // Offloaded activations come back one layer ahead: the top layer's when the chunk's
    // backward starts, layer l-1's when layer l's backward starts.
    const int top = first_layer_[v] + split_[v] - 1;
    uint32_t fetched = offloading() && split_[v] > 0 ? emit_offload(false, top, micro, last_compute_) : kNoDep;
    for (int l = top; l >= first_layer_[v]; --l) {
      uint32_t pg = zero3_gather(dense_bytes(l), l, micro);
      expert_pg_ = zero3_gather(expert_bytes(l), l, micro, /*expert=*/true);   // serves the recompute too
      unit_starts_.push_back(static_cast<uint32_t>(prog_.tasks.size()));   // the layer's first backward task
      const uint32_t mine = fetched;
      if (offloading() && l > first_layer_[v]) fetched = emit_offload(false, l - 1, micro, last_compute_);
      if (unit != nullptr) {
        unit->layers.push_back(WLayer{l, micro, dense_bytes(l), expert_bytes(l), 0, {}});
        w_layer_ = &unit->layers.back();
        const uint32_t last = layer_backward(l, micro, pg, mine);
        prog_.tasks[last].mem_alloc += w_layer_->hold_bytes;
        w_layer_ = nullptr;
        continue;
      }
      uint32_t last = layer_backward(l, micro, pg, mine);
      zero3_reduce(dense_bytes(l), l, micro, last, expert_bytes(l));
      if (last_micro) {
        add_grads(dense_bytes(l), last);
        add_expert_grads(expert_bytes(l), last);
      }
    }
    if (v == 0) {
      uint32_t pg = zero3_gather(emb_grad_bytes_, 0xffff, micro);
      tp_gather("tp.embedding.bwd.allgather", 0xffff, micro);
      uint32_t e = emit_compute(OP(memory_op("embedding.bwd", OpClass::kEmbedding, 2 * 4 * T * d_.h, true)),
                                Category::kCompute, 0xffff, micro, pg);
      prog_.tasks[e].mem_free += embedding_activation_bytes(model_, static_cast<int>(d_.s), tr_.micro_batch, par_.tp, d_.sp);
      // A PyTorch loop's fp32 table gradient, allocated by the step's first backward (a tied head
      // on this rank allocated it already).
      if (whole_params() && micro == 0 && !(model_.tied_embeddings && head_with_embedding(par_)))
        allocate_grads(e, emb_grad_bytes_);
      zero3_reduce(emb_grad_bytes_, 0xffff, micro, e);
      if (last_micro) add_grads(emb_grad_bytes_, e);
    } else if (!turn_in(v)) {
      emit_p2p(true, bwd_channel(chunk), peer_of_prev(chunk), first_layer_[v], micro);
    }
    if (last_micro && unit == nullptr) flush_bucket();
  }

  // A W step (DualPipeV): the oldest deferred backward's weight gradients, layer by layer, each
  // layer's gradient reduction after its last one, and the release of its saved activations.
  // The weight-gradient GEMMs a layer held back (wgrad), in order; returns the last one.
  uint32_t emit_wgrads(const WLayer& wl) {
    uint32_t last = kNoDep;
    for (const WTask& t : wl.tasks) {
      last = emit_compute(t.op, Category::kCompute, wl.layer, wl.micro, t.dep);
      if (t.twin_op != OpCache::kEmpty) twin(last, t.twin_op);
    }
    return last;
  }
  // `chunk`: the oldest of that chunk's (ZB-V), or -1: the oldest of all (DualPipeV).
  void weight_step(int chunk) {
    auto it = w_queue_.begin();
    while (it != w_queue_.end() && chunk >= 0 && it->chunk != chunk) ++it;
    SIM_CHECK(it != w_queue_.end(), "stage %d: a W step of chunk %d with no deferred backward", stage_, chunk);
    WUnit unit = std::move(*it);
    w_queue_.erase(it);
    last_micro_ = unit.last_micro;
    for (const WLayer& wl : unit.layers) {
      const uint32_t w = emit_wgrads(wl);
      SIM_CHECK(w != kNoDep, "stage %d: layer %d deferred no weight gradient", stage_, wl.layer);
      const uint32_t last = layer_grad_cast(wl.layer, wl.micro, w);
      prog_.tasks[last].mem_free += wl.free_bytes + wl.hold_bytes;
      zero3_reduce(wl.dense, wl.layer, wl.micro, last, wl.expert);
      if (unit.last_micro) {
        add_grads(wl.dense, last);
        add_expert_grads(wl.expert, last);
      }
    }
    if (unit.last_micro) flush_bucket();
  }

  Plan& plan_;
  Program& prog_;
  const ModelSpec& model_;
  const TrainingSpec& tr_;
  const ParallelSpec& par_;
  const LayerDims d_;
  const int stage_;
  const int m_;
  const std::vector<int>& split_;
  const std::vector<int>& first_layer_;
  int nv_ = 1;
  LayerActivation act_;
  LayerActivation act_kept_;   // a dense layer's activations past a chunk's recompute_layers
  int64_t rec_alloc_ = 0;      // the selective transient not yet allocated (rec_task())
  bool no_weight_cast_ = false;  // a later chunk of a split fp8 GEMM: its weight is cast already
  std::unordered_set<uint64_t> gathered_;   // zero3_reshard false: the units gathered so far
  int64_t layer_grad_bytes_ = 0, emb_grad_bytes_ = 0;
  int64_t grad_x_ = 1;   // bytes of a reduced gradient element / 2 (2 for fp32 reductions)
  int shard_ = 1;   // ZeRO shard group (ranks), cp included
  int dpg_ = 1;     // gradient-reduction group: dp * cp
  int64_t bucket_bytes_ = 0;
  std::vector<int64_t> tensors_;   // one layer's parameter tensors (elements, before TP)
  std::vector<int64_t> moe_tensors_, expert_tensors_;   // a MoE layer's dense tensors; one expert's
  uint32_t expert_pg_ = kNoDep;   // ZeRO-3: the gather of the current layer's experts
  size_t prefaulted_ = 0;   // tasks below this index lie on mapped pages
  uint32_t last_compute_ = kNoDep;
  uint32_t last_cast_ = kNoDep;       // the fp8 cast task the last emit_compute laid out, or kNoDep
  bool last_cast_weight_ = false;     // ... and whether it cast the weight too
  static constexpr uint32_t kCastUnknown = OpCache::kEmpty - 1;
  std::vector<uint32_t> fp8_cast_of_;   // 2 * GEMM op + with weight -> its cast op (fp8_cast_op)
  uint32_t last_reduction_ = kNoDep;
  uint32_t last_replica_ = kNoDep;   // the last HSDP replica all-reduce (kStreamDpReplica)
  int64_t pending_bytes_ = 0;
  uint32_t pending_after_ = kNoDep;
  std::vector<int64_t> deferred_;
  std::vector<int> last_bwd_of_chunk_;
  std::deque<WUnit> w_queue_;   // deferred backwards (WUnit, above), oldest first
  WLayer* w_layer_ = nullptr;   // while a deferring backward lays out a layer: where its W tasks go
  std::vector<uint32_t> unit_starts_;
  static constexpr int kHeadSlot = -2;   // gather_for_layer_ key of the final norm and LM head (-1: embedding)
  static constexpr int kMtpKey = -10;    // expert_gather_for_layer_ key of MTP module k: kMtpKey - k
  int mtp_key_ = 0;                      // while an MTP block is laid out: its key; else 0
  int64_t mtp_front_bytes_ = 0;          // bf16 bytes of one MTP module's projection + norms (this rank)
  bool mtp_emb_copy_ = false;            // the last stage keeps an embedding copy for the MTP lookup
  std::vector<int> pending_layers_;
  std::map<int, uint32_t> gather_for_layer_;
  std::map<int, uint32_t> expert_gather_for_layer_;
  bool moe_ = false;   // model_.is_moe()
  int etp_ = 1, Le_ = 1;
  int64_t fe_ = 0, Tm_ = 0;
  int eshard_ = 1;   // expert shard group: the expert-DP ranks in one dense replica (all of them without HSDP)
  int erep_ = 1;     // expert replicas (HSDP): expert-DP ranks holding the same expert shard
  bool last_micro_ = false;   // the backward being built is its chunk's last micro-batch
  bool overlap_ = false;      // ep_overlap with ep > 1 (MoE)
  bool delay_wgrad_now_ = false;   // a paired backward with delay_wgrad (moe_backward)
  std::vector<uint32_t> ep_cuts_;   // the pair's dispatch/combine all-to-alls so far (merge_pair)
  int64_t pending_exp_bytes_ = 0;
  uint32_t pending_exp_after_ = kNoDep;
  OpCache op_cache_;     // (call site, extra) -> op
  std::vector<uint32_t> site_ops_;   // call site (a line) -> op, for extra == 0
  std::vector<uint32_t> neg_site_ops_;   // the same for the negative sites, by -site
  OpCache coll_cache_;   // (name literal's address ^ group << 56, bytes) -> op
  struct CollMemo {
    uint64_t key = 0;
    int64_t bytes = -1;   // no collective has -1 bytes: an empty entry never matches
    uint32_t id = 0;
  };
  std::array<CollMemo, 64> coll_memo_{};
};

GroupTable split_group(const GroupTable& g, int chunk, bool replica, std::string name) {
  // Splits every instance of `g` (members ascending) into consecutive shards of `chunk` ranks
  // (replica=false: the shard groups) or into the sets of ranks at equal shard offsets
  // (replica=true: the replica groups).
  // chunk 1 as replicas, or a chunk covering every instance as shards: the groups of `g`.
  bool same = chunk == 1 && replica;
  if (!replica) {
    same = true;
    for (uint32_t i = 0; same && i < g.instances(); ++i) same = g.size_of(i) == static_cast<uint32_t>(chunk);
  }
  if (same) {
    GroupTable out = g;
    out.name = std::move(name);
    return out;
  }
  GroupTable out;
  out.name = std::move(name);
  out.instance_of_rank.assign(g.instance_of_rank.size(), kNoDep);
  out.member_offsets.push_back(0);
  for (uint32_t i = 0; i < g.instances(); ++i) {
    const uint32_t base = g.member_offsets[i];
    const uint32_t n = g.size_of(i);
    const uint32_t shards = n / chunk;
    if (!replica) {
      for (uint32_t s = 0; s < shards; ++s) {
        const uint32_t inst = out.instances();
        for (uint32_t k = 0; k < static_cast<uint32_t>(chunk); ++k) {
          uint32_t r = g.members[base + s * chunk + k];
          out.members.push_back(r);
          out.instance_of_rank[r] = inst;
        }
        out.member_offsets.push_back(static_cast<uint32_t>(out.members.size()));
      }
    } else {
      for (uint32_t k = 0; k < static_cast<uint32_t>(chunk); ++k) {
        const uint32_t inst = out.instances();
        for (uint32_t s = 0; s < shards; ++s) {
          uint32_t r = g.members[base + s * chunk + k];
          out.members.push_back(r);
          out.instance_of_rank[r] = inst;
        }
        out.member_offsets.push_back(static_cast<uint32_t>(out.members.size()));
      }
    }
  }
  return out;
}

// A rank's position among its stage's ranks in rank order: its tp, cp and dp coordinates as one
// mixed-radix number over ParallelSpec::order with pp left out (the folded expert order counts
// these positions: etp innermost, then ep, then edp).
int stage_index(const Placement& pl, const std::array<int, kNumAxes>& c) {
  int i = 0, mult = 1;
  for (Axis a : pl.order()) {
    if (a == Axis::kPp) continue;
    i += c[static_cast<int>(a)] * mult;
    mult *= pl.size(a);
  }
  return i;
}

// Folded pods (models/moe.h): the stage's ranks linked by the EP groups and by the TP x CP groups
// (a layer's TP collectives and CP exchanges), as connected components. An EP block (the etp*ep
// consecutive positions of one edp index) is one token slice: its EP groups route the tokens of
// the same ETP groups. Returns the component count and the most blocks one component holds.
std::pair<int, int> folded_pods(const Placement& pl, const ParallelSpec& par) {
  const int S = par.tp * par.cp * par.dp, B = std::max(1, par.etp) * par.ep;
  std::vector<int> parent(S);
  for (int i = 0; i < S; ++i) parent[i] = i;
  auto find = [&](int x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  auto unite = [&](int a, int b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  };
  std::vector<int> first_of_dp(par.dp, -1);
  pl.for_each_rank([&](uint32_t, const std::array<int, kNumAxes>& c) {
    if (c[static_cast<int>(Axis::kPp)] != 0) return;
    const int i = stage_index(pl, c);
    int& f = first_of_dp[c[static_cast<int>(Axis::kDp)]];
    if (f < 0) f = i;
    unite(i, f);             // the TP x CP group of one DP replica
    unite(i, i / B * B);     // the EP block (its EP groups and the ETP groups inside TP groups)
  });
  std::map<int, int> blocks;   // component root -> EP blocks in it
  for (int b = 0; b < S / B; ++b) ++blocks[find(b * B)];
  int most = 0;
  for (const auto& [root, n] : blocks) most = std::max(most, n);
  return {static_cast<int>(blocks.size()), most};
}

// The expert-DP groups (compiler.h): EP along DP, the ranks at equal EP offset of each DP group
// (etp = tp), with etp = 1 also across the TP group (same experts there), and across CP (CP
// ranks hold the same experts and saw different tokens: their gradients reduce too); folded
// (stage position i = a + etp*(j + ep*b)), the ranks of equal (a, j).
GroupTable make_expert_dp_table(const Placement& pl, const ParallelSpec& par) {
  auto c = [](const std::array<int, kNumAxes>& co, Axis a) { return static_cast<uint32_t>(co[static_cast<int>(a)]); };
  const uint32_t PP = static_cast<uint32_t>(par.pp), TP = static_cast<uint32_t>(par.tp),
                 EP = static_cast<uint32_t>(par.ep), ETP = static_cast<uint32_t>(std::max(1, par.etp));
  if (ep_folded(par))
    return make_keyed_group_table(pl, "expert-dp", PP * ETP * EP, [&](uint32_t, const std::array<int, kNumAxes>& co) {
      const uint32_t p = static_cast<uint32_t>(stage_index(pl, co));
      return (c(co, Axis::kPp) * ETP + p % ETP) * EP + p / ETP % EP;
    });
  const bool fold_tp = par.etp != par.tp;
  return make_keyed_group_table(pl, "expert-dp", PP * TP * EP, [&](uint32_t, const std::array<int, kNumAxes>& co) {
    return (c(co, Axis::kPp) * TP + (fold_tp ? 0 : c(co, Axis::kTp))) * EP + c(co, Axis::kDp) % EP;
  });
}

// HSDP with MoE (compiler.h): the dense replica of a rank is its chunk of the dp x cp group
// (members ascending, cut into shard-sized chunks as split_group does); the expert shard group
// is the rank's expert-DP group within that replica, and its expert replica group the ranks
// at the same place in the expert shard groups of the other replicas. Keys per rank for
// make_keyed_group_table; an error unless every expert-DP group has the same number of ranks
// in every replica.
struct ExpertHsdpKeys {
  int eshard = 1;                       // ranks of an expert shard group
  uint32_t shard_keys = 0, rep_keys = 0;
  std::vector<uint32_t> shard_key, rep_key;   // per rank
};
Result<ExpertHsdpKeys> expert_hsdp_keys(const Placement& pl, const GroupTable& edp, int shard) {
  const GroupTable dp = make_group_table(pl, {Axis::kDp, Axis::kCp}, "dp");
  const uint32_t n = static_cast<uint32_t>(pl.num_ranks());
  const uint32_t reps = dp.size_of(0) / static_cast<uint32_t>(shard);
  std::vector<uint32_t> replica(n, 0);
  for (uint32_t i = 0; i < dp.instances(); ++i)
    for (uint32_t k = dp.member_offsets[i]; k < dp.member_offsets[i + 1]; ++k)
      replica[dp.members[k]] = (k - dp.member_offsets[i]) / static_cast<uint32_t>(shard);
  const uint32_t size = edp.size_of(0);
  ExpertHsdpKeys out;
  out.shard_key.assign(n, kNoDep);
  out.rep_key.assign(n, kNoDep);
  std::vector<uint32_t> count(static_cast<size_t>(edp.instances()) * reps, 0);
  for (uint32_t i = 0; i < edp.instances(); ++i)
    for (uint32_t k = edp.member_offsets[i]; k < edp.member_offsets[i + 1]; ++k) {
      const uint32_t r = edp.members[k];
      out.shard_key[r] = i * reps + replica[r];
      out.rep_key[r] = count[out.shard_key[r]]++;   // its place in the expert shard group, for now
    }
  const std::string why = "HSDP with MoE shards the routed experts over the expert-DP ranks inside each dense replica, "
                          "so every expert-DP group (edp=" + std::to_string(size) + " ranks) needs the same number of "
                          "ranks in each of the dp/fsdp_shard_group=" + std::to_string(reps) + " replicas";
  if (size % reps != 0)
    return Status::error(why + "; " + std::to_string(reps) + " does not divide " + std::to_string(size));
  for (uint32_t i = 0; i < edp.instances(); ++i)
    for (uint32_t rho = 0; rho < reps; ++rho)
      if (edp.size_of(i) != size || count[i * reps + rho] != size / reps)
        return Status::error(why + "; one has " + std::to_string(count[i * reps + rho]) + " in replica " +
                             std::to_string(rho) + ", not " + std::to_string(size / reps) +
                             " (its EP groups cross the replicas' boundaries)");
  out.eshard = static_cast<int>(size / reps);
  for (uint32_t r = 0; r < n; ++r)
    if (out.shard_key[r] != kNoDep) out.rep_key[r] += out.shard_key[r] / reps * static_cast<uint32_t>(out.eshard);
  out.shard_keys = edp.instances() * reps;
  out.rep_keys = edp.instances() * static_cast<uint32_t>(out.eshard);
  return out;
}

}  // namespace

Status check_expert_layout(const ParallelSpec& par) {
  const std::string ep = std::to_string(par.ep), etp = std::to_string(par.etp), tp = std::to_string(par.tp);
  const int ranks = par.tp * par.cp * par.dp;
  const std::string R = std::to_string(ranks);
  if (par.ep < 1 || par.etp < 1) return Status::error("ep=" + ep + ", etp=" + etp + ": both must be >= 1");
  if (!ep_folded(par)) {
    if (par.dp % par.ep != 0)
      return Status::error("ep=" + ep + " does not divide dp=" + std::to_string(par.dp) +
                           " (ep_layout \"dp\": EP groups are carved from DP; \"folded\" folds them over tp*cp*dp)");
    if (par.etp != 1 && par.etp != par.tp)
      return Status::error("etp=" + etp + " must be 1 or tp=" + tp + " with ep_layout \"dp\" (\"folded\" takes any etp with etp*ep dividing tp*cp*dp)");
    return Status();
  }
  // Folded. With ep_layout "auto" EP along DP did not apply: say why too.
  const std::string why_not_dp = par.ep_layout == EpLayout::kAuto && par.dp % par.ep != 0
                                     ? "ep=" + ep + " does not divide dp=" + std::to_string(par.dp) + " (EP along DP), and "
                                     : "";
  if (ranks % (par.etp * par.ep) != 0)
    return Status::error(why_not_dp + "ep*etp=" + std::to_string(par.ep * par.etp) + " does not divide tp*cp*dp=" + R +
                         " (folded EP: the stage's ranks split into expert-DP x EP x ETP)");
  return Status();
}

Result<int> expert_shard_group(const ParallelSpec& par) {
  const int shard_dp = par.fsdp_shard_group > 0 && par.zero > 0 ? std::min(par.fsdp_shard_group, par.dp) : par.dp;
  if (shard_dp >= par.dp) return expert_dp_size(par);
  if (par.dp % shard_dp != 0)
    return Status::error("fsdp_shard_group=" + std::to_string(shard_dp) + " must divide dp=" + std::to_string(par.dp));
  ParallelSpec one = par;   // every stage has the same groups: count one
  one.pp = 1;
  auto pl = Placement::make(one, 1);
  if (!pl.ok()) return pl.status();
  auto keys = expert_hsdp_keys(pl.value(), make_expert_dp_table(pl.value(), one), shard_dp * par.cp);
  if (!keys.ok()) return keys.status();
  return keys->eshard;
}

Result<CompiledPlan> compile_plan(const ModelSpec& model, const TrainingSpec& tr, const ParallelSpec& par,
                                  int gpus_per_node, bool balanced_twins) {
  if (par.zero == 0 && par.fsdp_shard_group > 0 && par.fsdp_shard_group < par.dp) {
    // Nothing is sharded without ZeRO: a shard group means nothing, gradients all-reduce over
    // all of dp (the loader rejects the combination; callers of the API get this reading).
    ParallelSpec p = par;
    p.fsdp_shard_group = 0;
    return compile_plan(model, tr, p, gpus_per_node);
  }
  if (par.cp < 1 || par.cp_ulysses < 1 || par.cp % par.cp_ulysses != 0)
    return Status::error("cp_ulysses (" + std::to_string(par.cp_ulysses) + ") must divide cp (" +
                         std::to_string(par.cp) + ")");
  if (par.cp > 1) {
    const int ring = par.cp / par.cp_ulysses;
    const int chunks = (ring > 1 && par.cp_load_balance) ? 2 * par.cp : par.cp;
    if (tr.seq_len % chunks != 0)
      return Status::error("seq_len " + std::to_string(tr.seq_len) + " is not divisible by " + std::to_string(chunks) +
                           (chunks == 2 * par.cp ? " (2*cp zig-zag chunks)" : " (cp)"));
    if (!fused_attention(tr.attention_kernel))
      return Status::error("context parallelism needs a fused attention kernel (flash or cudnn)");
    if (par.cp_ulysses > 1 && model.heads % (par.tp * par.cp_ulysses) != 0)
      return Status::error("heads (" + std::to_string(model.heads) + ") must be divisible by tp*cp_ulysses (" +
                           std::to_string(par.tp * par.cp_ulysses) + ") for the Ulysses all-to-all");
  }
  if (model.mla) {
    if (model.kv_lora_rank <= 0 || model.qk_nope_head_dim <= 0 || model.qk_rope_head_dim <= 0 ||
        model.v_head_dim <= 0 || model.q_lora_rank < 0)
      return Status::error("attention \"mla\" needs kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim and "
                           "v_head_dim > 0 and q_lora_rank >= 0 (got kv_lora_rank=" +
                           std::to_string(model.kv_lora_rank) + ")");
    if (model.heads % par.tp != 0)
      return Status::error("tp=" + std::to_string(par.tp) + " does not divide heads=" + std::to_string(model.heads) +
                           " (MLA splits its up- and out-projections by head)");
  }
  if (!model.is_moe() && (par.ep != 1 || par.etp != 1))
    return Status::error("ep=" + std::to_string(par.ep) + ", etp=" + std::to_string(par.etp) +
                         ": expert parallelism needs a MoE model (arch \"moe\"); use ep=1, etp=1");
  if (model.is_moe()) {
    const std::string E = std::to_string(model.experts), ep = std::to_string(par.ep);
    if (par.ep < 1 || model.experts % par.ep != 0)
      return Status::error("ep=" + ep + " does not divide experts=" + E);
    if (model.top_k < 1 || model.top_k > model.experts)
      return Status::error("top_k=" + std::to_string(model.top_k) + " must be 1 to experts=" + E);
    Status fold = check_expert_layout(par);
    if (!fold.ok()) return fold;
    if (model.expert_ffn_hidden <= 0 || model.expert_ffn_hidden % par.etp != 0)
      return Status::error("etp=" + std::to_string(par.etp) + " does not divide expert_ffn_hidden=" +
                           std::to_string(model.expert_ffn_hidden));
    if (tr.moe.kind == MoeRouting::kHistogram && static_cast<int>(tr.moe.histogram.size()) != model.experts)
      return Status::error("the routing histogram has " + std::to_string(tr.moe.histogram.size()) +
                           " entries; the model has " + E + " experts");
  }
  if (tr.micro_batch <= 0 || par.dp <= 0 || tr.global_batch % (static_cast<int64_t>(par.dp) * tr.micro_batch) != 0)
    return Status::error("global_batch must be a multiple of dp*micro_batch");
  const int m = static_cast<int>(tr.global_batch / (static_cast<int64_t>(par.dp) * tr.micro_batch));
  if (two_chunk_schedule(par.schedule)) {
    const bool dual = par.schedule == Schedule::kDualPipe;
    const int min_m = par.schedule == Schedule::kZBV ? 1 : 2 * par.pp;
    if (par.vp != 2 || par.pp < 2 || m < min_m || (dual && (par.pp % 2 != 0 || m % 2 != 0)))
      return Status::error(std::string("the ") + to_string(par.schedule) + " schedule needs vp=2 (vp=" +
                           std::to_string(par.vp) + "), pp >= 2 (pp=" + std::to_string(par.pp) + ") and at least " +
                           std::to_string(min_m) + " micro-batches (" + std::to_string(m) + ")" +
                           (dual ? "; dualpipe also an even pp and an even number of micro-batches" : ""));
  } else if (par.vp > 1 && (par.schedule != Schedule::kInterleaved || m % par.pp != 0)) {
    return Status::error("vp>1 needs the interleaved schedule and micro-batches (" + std::to_string(m) +
                         ") divisible by pp (" + std::to_string(par.pp) + ")");
  }
  auto split = layer_split(model.layers, par.pp, num_virtual_stages(par) / par.pp, par.layers_per_stage);
  if (!split.ok()) return split.status();
  auto placement = Placement::make(par, gpus_per_node);
  if (!placement.ok()) return placement.status();
  const Placement& pl = placement.value();

  CompiledPlan out;
  out.micro_batches = m;
  Plan& plan = out.plan;
  plan.num_ranks = pl.num_ranks();
  plan.groups.push_back(make_group_table(pl, {Axis::kTp}, "tp"));
  plan.groups.push_back(make_group_table(pl, {Axis::kTp}, "tp-side"));
  const int shard_dp = par.fsdp_shard_group > 0 ? std::min(par.fsdp_shard_group, par.dp) : par.dp;
  const int shard = shard_dp * par.cp;   // ZeRO shards span dp x cp
  GroupTable dp = make_group_table(pl, {Axis::kDp, Axis::kCp}, par.cp > 1 ? "dp-cp" : "dp");
  if (shard_dp < par.dp) {
    if (par.dp % shard_dp != 0) return Status::error("fsdp_shard_group must divide dp");
    plan.groups.push_back(split_group(dp, shard, false, "dp-shard"));
    plan.groups.push_back(split_group(dp, shard, false, "dp-shard-gather"));
    plan.groups.push_back(split_group(dp, shard, true, "dp-replica"));
  } else {
    GroupTable gather = dp;
    gather.name = "dp-gather";
    plan.groups.push_back(std::move(dp));
    plan.groups.push_back(std::move(gather));
    GroupTable rep = make_group_table(pl, {}, "dp-replica");
    plan.groups.push_back(std::move(rep));
  }
  {  // kGroupCpRing, kGroupCpA2a: the cp group cut into Ulysses groups (consecutive) and rings
    GroupTable cp = make_group_table(pl, {Axis::kCp}, "cp");
    plan.groups.push_back(split_group(cp, par.cp_ulysses, true, "cp-ring"));
    plan.groups.push_back(split_group(cp, par.cp_ulysses, false, "cp-ulysses"));
  }
  const bool folded = model.is_moe() && ep_folded(par);
  // The routed experts' ZeRO shard group: expert-DP, or with HSDP its ranks in one dense replica.
  int eshard_all = model.is_moe() ? expert_dp_size(par) : 1;
  GroupTable expert_rep;   // HSDP MoE only: "expert-dp-replica"
  if (model.is_moe()) {
    // EP along DP: EP groups are `ep` consecutive ranks of each DP group; expert-DP groups the
    // ranks at equal EP offset (etp = tp), and with etp = 1 also across the TP group (same
    // experts there). Folded: stage position i = a + etp*(j + ep*b); EP groups are keyed by
    // (a, b), expert-DP groups by (a, j).
    const int etp = std::max(1, par.etp);
    auto keyed = [&](std::string name, uint32_t num_keys, auto key) {
      return make_keyed_group_table(pl, std::move(name), num_keys,
                                    [&](uint32_t, const std::array<int, kNumAxes>& co) { return key(co); });
    };
    auto c = [](const std::array<int, kNumAxes>& co, Axis a) { return static_cast<uint32_t>(co[static_cast<int>(a)]); };
    auto pos = [&](const std::array<int, kNumAxes>& co) { return static_cast<uint32_t>(stage_index(pl, co)); };
    const uint32_t PP = static_cast<uint32_t>(par.pp), TP = static_cast<uint32_t>(par.tp),
                   CP = static_cast<uint32_t>(par.cp), EP = static_cast<uint32_t>(par.ep), ETP = static_cast<uint32_t>(etp);
    const uint32_t stage_ranks = TP * CP * static_cast<uint32_t>(par.dp);
    const uint32_t dp_blocks = (static_cast<uint32_t>(par.dp) + EP - 1) / EP;
    const uint32_t edp_blocks = (stage_ranks + ETP * EP - 1) / (ETP * EP);
    if (folded) {
      plan.groups.push_back(keyed("ep", PP * ETP * edp_blocks, [&](const std::array<int, kNumAxes>& co) {
        const uint32_t p = pos(co);
        return (c(co, Axis::kPp) * ETP + p % ETP) * edp_blocks + p / (ETP * EP);
      }));
    } else {
      plan.groups.push_back(keyed("ep", PP * CP * TP * dp_blocks, [&](const std::array<int, kNumAxes>& co) {
        return ((c(co, Axis::kPp) * CP + c(co, Axis::kCp)) * TP + c(co, Axis::kTp)) * dp_blocks + c(co, Axis::kDp) / EP;
      }));
    }
    GroupTable edp = make_expert_dp_table(pl, par);
    if (shard_dp < par.dp) {
      // HSDP: kGroupExpertDp and its gather copy become the expert shard groups; the replica
      // group is appended last (compiler.h).
      auto keys = expert_hsdp_keys(pl, edp, shard);
      if (!keys.ok()) return keys.status();
      const ExpertHsdpKeys& k = keys.value();
      edp = make_keyed_group_table(pl, "expert-dp-shard", k.shard_keys,
                                   [&](uint32_t r, const std::array<int, kNumAxes>&) { return k.shard_key[r]; });
      expert_rep = make_keyed_group_table(pl, "expert-dp-replica", k.rep_keys,
                                          [&](uint32_t r, const std::array<int, kNumAxes>&) { return k.rep_key[r]; });
      eshard_all = k.eshard;
    }
    GroupTable eg = edp;
    eg.name = shard_dp < par.dp ? "expert-dp-shard-gather" : "expert-dp-gather";
    plan.groups.push_back(std::move(edp));
    plan.groups.push_back(std::move(eg));
  }
  const bool mla_grad = has_mla_grad_group(model.mla, par.tp, par.sequence_parallel);
  if (mla_grad) {   // appended: every other group keeps its index (compiler.h)
    SIM_CHECK(plan.groups.size() == mla_grad_group(model.is_moe()), "MLA gradient group at index %zu, not %d",
              plan.groups.size(), mla_grad_group(model.is_moe()));
    plan.groups.push_back(make_group_table(pl, {Axis::kTp}, "tp-mla-grad"));
  }
  if (has_embedding_group(model, par)) {   // the embedding group: stage 0 and stage pp-1
    SIM_CHECK(plan.groups.size() == embedding_grad_group(model.is_moe(), mla_grad),
              "embedding group at index %zu, not %d", plan.groups.size(),
              embedding_grad_group(model.is_moe(), mla_grad));
    plan.groups.push_back(make_restricted_group_table(pl, {Axis::kPp}, Axis::kPp, {0, par.pp - 1}, "pp-embedding"));
  }
  uint8_t tensor_gather_group = kGroupDpGather;
  if (par.zero >= 3 && par.zero3_gather == ZeroGather::kTensor && shard > 1) {   // appended last (compiler.h)
    tensor_gather_group = static_cast<uint8_t>(plan.groups.size());
    GroupTable g = plan.groups[kGroupDpGather];
    g.name = "dp-gather-tensor";
    plan.groups.push_back(std::move(g));
  }
  uint8_t expert_rep_group = 0xff;
  if (!expert_rep.members.empty()) {   // appended after every other group (compiler.h)
    expert_rep_group = static_cast<uint8_t>(plan.groups.size());
    SIM_CHECK(expert_rep_group == expert_replica_group(mla_grad, has_embedding_group(model, par),
                                                       tensor_gather_group != kGroupDpGather),
              "expert replica group at index %d", int{expert_rep_group});
    plan.groups.push_back(std::move(expert_rep));
  }
  uint8_t expert_tp_group = 0xff;
  if (model.is_moe() && par.etp > 1) {   // appended after every other group (compiler.h)
    expert_tp_group = static_cast<uint8_t>(plan.groups.size());
    SIM_CHECK(expert_tp_group == expert_tp_group_index(mla_grad, has_embedding_group(model, par),
                                                       tensor_gather_group != kGroupDpGather, expert_rep_group != 0xff),
              "expert-TP group at index %d", int{expert_tp_group});
    const uint32_t ETP = static_cast<uint32_t>(par.etp);
    if (folded) {   // etp consecutive stage positions (equal ep and edp indices)
      const uint32_t per_stage = static_cast<uint32_t>(par.tp * par.cp * par.dp) / ETP;
      plan.groups.push_back(make_keyed_group_table(pl, "expert-tp", static_cast<uint32_t>(par.pp) * per_stage,
                                                   [&](uint32_t, const std::array<int, kNumAxes>& co) {
                                                     return static_cast<uint32_t>(co[static_cast<int>(Axis::kPp)]) * per_stage +
                                                            static_cast<uint32_t>(stage_index(pl, co)) / ETP;
                                                   }));
    } else {   // EP along DP takes etp = tp: the TP group
      plan.groups.push_back(make_group_table(pl, {Axis::kTp}, "expert-tp"));
    }
  }
  uint8_t mirror_group = 0xff;
  if (par.schedule == Schedule::kDualPipe) {   // appended after every other group (compiler.h)
    mirror_group = static_cast<uint8_t>(plan.groups.size());
    const uint32_t half = static_cast<uint32_t>(par.pp / 2);
    plan.groups.push_back(make_keyed_group_table(
        pl, "pp-mirror", static_cast<uint32_t>(par.tp * par.cp * par.dp) * half,
        [&](uint32_t, const std::array<int, kNumAxes>& co) {
          const int s = co[static_cast<int>(Axis::kPp)];
          return static_cast<uint32_t>(stage_index(pl, co)) * half + static_cast<uint32_t>(std::min(s, par.pp - 1 - s));
        }));
  }
  uint8_t tp_ring_group = 0xff;
  if (par.tp_overlap && par.tp > 1 && par.sequence_parallel) {   // appended after every other group (compiler.h)
    tp_ring_group = static_cast<uint8_t>(plan.groups.size());
    plan.groups.push_back(make_group_table(pl, {Axis::kTp}, "tp-ring"));
    // Copy engines carry the ring steps (Transformer Engine's userbuffers ring exchange,
    // torchtitan's AsyncTP): they hold no SMs.
    plan.groups.back().copy_engine = true;
  }
  plan.peers.push_back(make_pp_peer_table(pl, +1, "pp-next"));
  plan.peers.push_back(make_pp_peer_table(pl, -1, "pp-prev"));
  if (par.vp > 1 && par.schedule == Schedule::kInterleaved) {  // the last stage's next is the first stage's next chunk
    for (int r = 0; r < plan.num_ranks; ++r) {
      auto c = std::array<int, 4>{pl.coord(r, Axis::kTp), pl.coord(r, Axis::kCp), pl.coord(r, Axis::kDp),
                                  pl.coord(r, Axis::kPp)};
      if (c[3] == par.pp - 1) {
        auto n = c;
        n[3] = 0;
        plan.peers[kPeerNext].peer_of_rank[r] = static_cast<int32_t>(pl.rank_of(n));
      }
      if (c[3] == 0) {
        auto n = c;
        n[3] = par.pp - 1;
        plan.peers[kPeerPrev].peer_of_rank[r] = static_cast<int32_t>(pl.rank_of(n));
      }
    }
  }

  const std::vector<int>& sp = split.value();
  std::vector<int> first_layer(sp.size(), 0);
  for (size_t v = 1; v < sp.size(); ++v) first_layer[v] = first_layer[v - 1] + sp[v - 1];
  const LayerDims d = layer_dims(model, tr, par);

  // MoE routing: one draw per (MoE layer, micro-batch); the busiest EP rank's rows.
  std::vector<std::vector<int64_t>> moe_rows(model.layers);
  int64_t twin_rows = -1;   // >= 0: list the balanced twins (CompiledPlan::balanced_twins)
  std::vector<int64_t> moe_migration(model.layers, 0);   // bytes per rank of the placement collective
  const bool dynamic = model.is_moe() && tr.moe.placement == MoePlacement::kDynamic;
  if (model.is_moe()) {
    // Tokens routed per expert-TP group: its etp members' T/tp each (one rank's with etp = 1).
    const int64_t tm = int64_t{std::max(1, par.etp)} * ((d.tokens() + par.tp - 1) / par.tp);
    const int64_t pe = (expert_params(model) + std::max(1, par.etp) - 1) / std::max(1, par.etp);
    const int64_t move_b = par.zero >= 1 ? 2 * pe + (12 * pe + eshard_all - 1) / eshard_all : 14 * pe;
    const int64_t K = std::max(1, tr.moe.rebalance_every);
    out.moe.dynamic = dynamic;
    // Pods: the dp/ep groups of ep pipelines that share EP groups at every stage. A pod's
    // pipelines wait for each other at every MoE layer's all-to-all; pods meet only at the
    // step's gradient reduction. Each pod draws its own routing; the program is laid out with
    // the pod whose busiest-rank rows sum highest over the step (the straggler). Up to
    // kMaxPods pods are drawn (the maximum over more moves little and costs draws).
    // Slices (models/moe.h): a pod's tp x cp token slices (cp when etp = tp) route their own
    // tokens into their own EP groups and wait for each other every layer, so a pod's draw of
    // a layer and micro-batch is the slice with the busiest rank. Folded: pods are the
    // connected components of EP blocks and TP x CP groups, a slice is one EP block.
    constexpr int kMaxPods = 64;
    const auto fp = folded ? folded_pods(pl, par) : std::pair<int, int>{par.dp / par.ep, 0};
    const int pods = std::min(fp.first, kMaxPods);
    const int slices = folded ? fp.second : (par.etp == par.tp ? 1 : par.tp) * par.cp;
    out.moe.pods = fp.first;
    out.moe.pods_drawn = pods;
    out.moe.slices = slices;
    int pod = 0;
    // Dynamic placement needs each expert's copies; otherwise only the busiest rank is used.
    MoeRouter router(tr.moe, model.experts, model.top_k, par.ep, tm, model.capacity_factor,
                     dynamic ? MoeDetail::kExperts : MoeDetail::kBusiestRank);
    MoeDraw dr;
    // The busiest slice's figures of a draw (its per-expert rows are not kept).
    struct Kept {
      int64_t routed, dropped, max_rank_rows;
      double imbalance;
    };
    auto keep = [](const MoeDraw& x) { return Kept{x.routed, x.dropped, x.max_rank_rows, x.imbalance}; };
    // Of two slices' figures, the busier one's (the first on ties).
    auto busier = [](const Kept& a, const Kept& b) { return b.max_rank_rows > a.max_rank_rows ? b : a; };
    const int moe_layers = std::max(0, model.layers - model.dense_layers);
    std::vector<Kept> kept;
    if (tr.moe.kind != MoeRouting::kBalanced && (pods > 1 || slices > 1)) {
      // The draws of every pod, kept for the straggler's layout below rather than drawn twice.
      if (!dynamic) kept.resize(static_cast<size_t>(pods) * moe_layers * m);
      std::vector<double> total(pods, 0);
      std::vector<MoeDraw> drs(m);
      std::vector<Kept> best(m);
      for (int g = 0; g < pods; ++g)
        for (int l = model.dense_layers; l < model.layers; ++l) {
          for (int sl = 0; sl < slices; ++sl) {
            router.draw_micros(l, 0, m, g, drs.data(), sl);
            for (int mi = 0; mi < m; ++mi) best[mi] = sl == 0 ? keep(drs[mi]) : busier(best[mi], keep(drs[mi]));
          }
          for (int mi = 0; mi < m; ++mi) {
            total[g] += static_cast<double>(best[mi].max_rank_rows);
            if (!kept.empty()) kept[(static_cast<size_t>(g) * moe_layers + (l - model.dense_layers)) * m + mi] = best[mi];
          }
        }
      double sum = 0;
      for (int g = 0; g < pods; ++g) {
        sum += total[g];
        if (total[g] > total[pod]) pod = g;
      }
      out.moe.pod_spread = sum > 0 ? total[pod] / (sum / pods) : 1;
    }
    out.moe.straggler_pod = pod;
    const int layout_slices = tr.moe.kind == MoeRouting::kBalanced ? 1 : slices;   // balanced: all alike
    std::vector<ExpertPlacement> place(layout_slices);
    MoeDraw x;
    for (int l = model.dense_layers; l < model.layers; ++l) {
      moe_rows[l].resize(m);
      if (dynamic) {  // each slice's EP group places its experts from what it saw
        int64_t worst = 0;
        for (int sl = 0; sl < layout_slices; ++sl) {
          MoeDraw seen;
          router.draw(l, -1, pod, &seen, sl);
          place[sl] = place_experts(seen.expert_rows, par.ep, tr.moe.replicas);
          for (int r = 0; r < par.ep && !place[sl].is_static; ++r)
            worst = std::max(worst, (place[sl].incoming_moves[r] * move_b + place[sl].incoming_replicas[r] * 2 * pe + K - 1) / K +
                                        place[sl].incoming_replicas[r] * 4 * pe);
          out.moe.experts_moved += place[sl].moved;
          out.moe.experts_replicated += place[sl].replicated;
        }
        moe_migration[l] = worst;
        out.moe.migration_bytes += worst;
      }
      for (int mi = 0; mi < m; ++mi) {
        double static_imb = 0;
        if (!kept.empty()) {
          const Kept& k = kept[(static_cast<size_t>(pod) * moe_layers + (l - model.dense_layers)) * m + mi];
          dr.routed = k.routed;
          dr.dropped = k.dropped;
          dr.max_rank_rows = k.max_rank_rows;
          dr.imbalance = k.imbalance;
          static_imb = dr.imbalance;
        } else {
          // The busiest slice after placement; the static imbalance is the busiest slice's before it.
          for (int sl = 0; sl < layout_slices; ++sl) {
            router.draw(l, mi, pod, sl == 0 ? &dr : &x, sl);
            MoeDraw& cur = sl == 0 ? dr : x;
            static_imb = std::max(static_imb, cur.imbalance);
            if (dynamic && !place[sl].is_static) {
              cur.max_rank_rows = max_rank_rows(place[sl], cur.expert_rows, par.ep);
              cur.imbalance = static_cast<double>(cur.max_rank_rows) * par.ep / static_cast<double>(cur.routed);
            }
            if (sl > 0 && x.max_rank_rows > dr.max_rank_rows) std::swap(dr, x);
          }
        }
        moe_rows[l][mi] = dr.max_rank_rows;
        out.moe.draws += 1;
        out.moe.imbalance_mean += dr.imbalance;
        out.moe.imbalance_max = std::max(out.moe.imbalance_max, dr.imbalance);
        out.moe.imbalance_static_mean += static_imb;
        out.moe.imbalance_static_max = std::max(out.moe.imbalance_static_max, static_imb);
        out.moe.routed += dr.routed;
        out.moe.dropped += dr.dropped;
      }
    }
    if (out.moe.draws > 0) {
      out.moe.imbalance_mean /= out.moe.draws;
      out.moe.imbalance_static_mean /= out.moe.draws;
    }
    // The balanced twin's rows: balanced routing draws the same rows for every layer,
    // micro-batch, pod and slice (models/moe.h), as the plan compiled with it lays out.
    if (balanced_twins && !dynamic && par.activation_offload <= 0 && tr.moe.kind != MoeRouting::kBalanced &&
        model.layers > model.dense_layers) {
      MoeRoutingSpec bal = tr.moe;
      bal.kind = MoeRouting::kBalanced;
      MoeRouter rb(bal, model.experts, model.top_k, par.ep, tm, model.capacity_factor, MoeDetail::kBusiestRank);
      MoeDraw bd;
      rb.draw(model.dense_layers, 0, 0, &bd, 0);
      twin_rows = bd.max_rank_rows;
      out.twins_ok = true;
    }
  }

  // Packed documents: per micro-batch (and ring step) attention work of the straggling replica.
  std::vector<std::vector<double>> doc_factors;
  if (tr.documents.kind != DocumentLengths::kNone) {
    DocumentLayout dl = layout_documents(tr.documents, tr.seq_len, tr.micro_batch, m, par.dp,
                                         par.cp / par.cp_ulysses, par.cp_load_balance);
    doc_factors = std::move(dl.factors);
    out.documents = dl.stats;
  }

  plan.programs.resize(par.pp);
  out.stages.resize(par.pp);
  // Per layer, this rank's share: dense part / tp, routed experts / (ep * etp).
  auto lp_dense = [&](int l) { return layer_params_local(model, l, par.tp); };
  auto lp_expert = [&](int l) {
    if (!model.is_moe_layer(l)) return int64_t{0};
    const int etp = std::max(1, par.etp);
    return int64_t{model.experts / par.ep} * ((expert_params(model) + etp - 1) / etp);
  };
  const int64_t ep = (embedding_params(model) + par.tp - 1) / par.tp;
  for (int s = 0; s < par.pp; ++s) {
    Program& prog = plan.programs[s];
    prog.name = "stage " + std::to_string(s);
    StageInfo& info = out.stages[s];
    info.stage = s;
    int64_t params = 0, expert_local = 0;
    int64_t largest = 0;
    const bool head_emb = head_with_embedding(par);   // the head's rank holds the embedding
    for (int c = 0; c < par.vp; ++c) {
      const int v = virtual_stage(par, c, s);
      for (int l = first_layer[v]; l < first_layer[v] + sp[v]; ++l) {
        info.layers.push_back(l);
        params += lp_dense(l) + lp_expert(l);
        expert_local += lp_expert(l);
        // As gathered under ZeRO-3: the dense part over the dp shard, the experts over expert-DP.
        largest = std::max(largest, (shard > 1 ? lp_dense(l) : 0) + (eshard_all > 1 ? lp_expert(l) : 0));
      }
      if (v == 0) params += ep;
      if (v == num_virtual_stages(par) - 1) {
        // LM head (a copy of the embedding when tied and the stages differ) + final norm.
        if (!model.tied_embeddings || !head_emb) params += ep;
        params += final_norm_params(model);
        if (model.mtp_depth > 0) {
          // MTP (spec.h): per module a block counted as the last layer, the column-parallel
          // projection 2h*h/tp and two norms; pp > 1 untied, a copy of the embedding for the
          // lookup (tied, the head's copy serves it; pp = 1, stage 0's own).
          const int L = model.layers - 1;
          if (!head_emb && !model.tied_embeddings) params += ep;
          const int64_t front = (2 * int64_t{model.hidden} * model.hidden + par.tp - 1) / par.tp + 2 * final_norm_params(model);
          params += int64_t{model.mtp_depth} * (lp_dense(L) + lp_expert(L) + front);
          expert_local += int64_t{model.mtp_depth} * lp_expert(L);
          largest = std::max(largest, (shard > 1 ? lp_dense(L) : 0) + (eshard_all > 1 ? lp_expert(L) : 0));
        }
      }
    }
    // ZeRO-3 working set: the largest transformer layer, dense part and routed experts (the
    // embedding and head are gathered outside the layer loop and freed right after use).
    if (largest == 0) largest = ep;
    info.params_local = params;
    StageBuilder b(plan, prog, model, tr, par, d, s, m, sp, first_layer);
    b.params_local_ = params;
    b.expert_params_local_ = expert_local;
    b.tensor_gather_group_ = tensor_gather_group;
    b.expert_rep_group_ = expert_rep_group;
    b.expert_tp_group_ = expert_tp_group;
    b.mirror_group_ = mirror_group;
    b.tp_ring_group_ = tp_ring_group;
    b.moe_rows_ = &moe_rows;
    if (!doc_factors.empty()) b.doc_factors_ = &doc_factors;
    b.moe_migration_ = &moe_migration;
    if (twin_rows >= 0) {
      b.twin_rows_ = twin_rows;
      b.twins_ = &out.balanced_twins;
      b.program_ = static_cast<uint32_t>(s);
    }
    b.build();
    const int64_t bucket = std::max<int64_t>(1, par.dp_bucket_mb) << 20;
    // The working set is counted with the dense part, or with the experts where only they are
    // sharded (dp shard of one rank, expert-DP of several).
    const bool dense_gathers = shard > 1 || expert_local == 0;
    // The gathered working set is the layer in use and `zero3_prefetch` ahead; a prefetch
    // beyond the stage's layers (and MTP blocks) gathers them all, no more.
    const int stage_units = static_cast<int>(info.layers.size()) +
                            (holds_head(par, s) ? model.mtp_depth : 0);
    const int prefetch = std::max(0, std::min(par.zero3_prefetch, stage_units - 1));
    const int grad_bytes = bytes_of(resolved_grad_reduce(par.grad_reduce_dtype, tr.precision));
    const bool torch_loop = torch_framework(tr.framework);
    prog.mem = static_memory(params - expert_local, dense_gathers ? largest : 0, par.zero, shard, prefetch,
                             bucket, par.zero3_reshard, grad_bytes, torch_loop);
    if (expert_local > 0) {
      // Routed experts: their grads and optimizer states (ZeRO-3: and params) sharded over the
      // expert-DP group (Megatron's distributed optimizer); the workspace is counted once.
      MemoryStatic e = static_memory(expert_local, dense_gathers ? 0 : largest, par.zero, eshard_all,
                                     prefetch, bucket, par.zero3_reshard, grad_bytes, torch_loop);
      prog.mem.params = prog.mem.params + e.params;
      prog.mem.grads = prog.mem.grads + e.grads;
      prog.mem.optimizer = prog.mem.optimizer + e.optimizer;
      if (dynamic && par.ep > 1 && tr.moe.replicas > 0) {
        // Replica slots: bf16 weights and a gradient buffer per slot (compiler.h).
        int64_t slots = 0;
        for (int l : info.layers) slots += model.is_moe_layer(l) ? tr.moe.replicas : 0;
        const int64_t pe = (expert_params(model) + std::max(1, par.etp) - 1) / std::max(1, par.etp);
        prog.mem.params = prog.mem.params + Bytes{2 * slots * pe};
        prog.mem.grads = prog.mem.grads + Bytes{grad_bytes * slots * pe};
      }
    }
    prog.hardware_flops = b.hardware_flops_;
    prog.model_flops = Flops{b.model_flops_.v + b.model_flops_adjust_};
  }
  plan.program_of_rank.resize(plan.num_ranks);
  pl.for_each_rank([&](uint32_t r, const std::array<int, kNumAxes>& c) {
    plan.program_of_rank[r] = static_cast<uint32_t>(c[static_cast<int>(Axis::kPp)]);
  });
  for (int s = 0; s < par.pp; ++s) plan.representatives.push_back(pl.rank_of({0, 0, 0, s}));
  Status st = plan.finalize();
  if (!st.ok()) return st;
  return out;
}

}  // namespace trainsim
