// File: models/spec.h
// What a user describes: the model, the training batch and the parallel strategy. Plain data,
// filled by scenarios/ (from JSON) and consumed by models/ (op graph, compiler, memory model).
// Units: counts are plain integers (tokens, sequences, elements); sizes are elements, not bytes,
// unless a field says otherwise. Defaults here are the documented defaults of the scenario format.
// Thread-safety: plain data.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "sim/dtype.h"

namespace trainsim {

enum class Activation : uint8_t { kGelu, kSwiglu };
enum class NormKind : uint8_t { kLayerNorm, kRMSNorm };
// kDualPipeV: DeepSeek's DualPipeV ("cut-in-half" DualPipe; the V-shape of Qi et al.'s ZB-V):
// vp = 2 chunks per rank in a V (rank r holds virtual stages r and 2pp-1-r, so the embedding and
// the LM head both sit on rank 0), forwards of one chunk paired with backwards of the other in
// the steady state, and some backwards split into B (input gradients) and a later W (weight
// gradients) to fill the bubbles (models/compiler.cpp, schedule_for).
// kZBV: the ZB-V schedule (Qi et al. 2024; PyTorch's ScheduleZBVZeroBubble): the same V, every
// backward split into B and W, no paired steps.
// kDualPipe: DeepSeek-V3's bidirectional DualPipe: two copies of a pp-stage model, micro-batches
// fed from both ends (half each); rank r holds stages r and pp-1-r, the same two as rank pp-1-r,
// whose gradients it sums with ("pp-mirror" group); each rank runs DualPipeV's phases as rank
// min(r, pp-1-r) of a pipeline of pp/2 ranks with half the micro-batches.
enum class Schedule : uint8_t { kGpipe, k1F1B, kInterleaved, kDualPipeV, kZBV, kDualPipe };
// The schedules that place two chunks per rank in a V (virtual stages r and 2pp-1-r).
constexpr bool v_schedule(Schedule s) { return s == Schedule::kDualPipeV || s == Schedule::kZBV; }
// The schedules with exactly two chunks per rank (vp = 2).
constexpr bool two_chunk_schedule(Schedule s) { return v_schedule(s) || s == Schedule::kDualPipe; }
// How the MoE layers' expert-parallel groups map onto ranks (README "parallel", `ep_layout`).
//   kDp      EP along DP: an EP group is `ep` consecutive DP ranks at one tp and cp coordinate
//            (Megatron-Core before parallel folding); needs ep | dp and etp in {1, tp}.
//   kFolded  parallel folding (Liu et al. 2025, Megatron-Core's expert RankGenerator): the
//            stage's tp*cp*dp ranks, in rank order, are renumbered i = etp_idx + etp*(ep_idx +
//            ep*edp_idx); an EP group is the ep ranks of equal etp_idx and edp_idx, so it may
//            span TP and CP ranks; needs etp*ep | tp*cp*dp (an expert-TP group, etp
//            consecutive positions, may span TP groups).
//   kAuto    kDp where it applies, else kFolded (ep_folded() below).
enum class EpLayout : uint8_t { kAuto, kDp, kFolded };
enum class Recompute : uint8_t { kNone, kSelective, kFull };
// What a selective recomputation recomputes (Megatron-Core's --recompute-modules; a bit set in
// ParallelSpec::recompute_modules, only read with Recompute::kSelective):
//   kCoreAttn   the attention core (flash: only the log-sum-exp is saved; Korthikanti et al.)
//   kLayernorm  the input and pre-MLP norms (and MLA's q/kv latent norms): their outputs, the
//               linear layers' inputs, are not kept but recomputed from the kept norm inputs
//   kMlaUpProj  MLA's up-projections and RoPE: Q, K, V recomputed from the kept latents
//   kMlp        a dense layer's whole MLP (FC1, activation, FC2) rerun from its kept input
//   kMoeAct     the routed experts' activation function: the expert FC2 input recomputed
//   kOp         torchtitan's op-level policy (`selective_ac_option = "op"`, alone): a block keeps
//               its input and the outputs of its matmuls and attention except every second
//               matmul (of wq wk wv wo w1 w3 w2: wk, wo and w3), and recomputes the rest at the
//               start of its backward (the input norm, wk, RoPE, wo, the residual add, the MLP
//               norm, w3 and the SwiGLU); the attention core is not recomputed. Dense SwiGLU
//               blocks without MLA, tp 1, no dropout, not fp8 (the loader checks)
enum RecomputeModule : uint32_t {
  kRecomputeCoreAttn = 1u << 0,
  kRecomputeLayernorm = 1u << 1,
  kRecomputeMlaUpProj = 1u << 2,
  kRecomputeMlp = 1u << 3,
  kRecomputeMoeAct = 1u << 4,
  kRecomputeOp = 1u << 5,
};
// How the attention core runs: one fused flash kernel (FlashAttention, cuDNN SDPA), or the
// pre-2022 Megatron/DeepSpeed form: batched QK^T GEMM, fused scale-mask-softmax, dropout and
// batched PV GEMM, with the s x s probabilities in HBM.
enum class AttentionKernel : uint8_t { kFlash, kUnfused, kCudnn, kFlash1 };
// How an fp8 run (training.precision "fp8") scales the operands it casts to fp8:
//   kCurrent  each tensor's scale from its own amax: an amax pass over the bf16 tensor, then
//             the cast (torchao Float8 "tensorwise" dynamic scaling, Transformer Engine's
//             Float8CurrentScaling)
//   kDelayed  the scale from the amax history of earlier steps; the cast kernel records the
//             amax as it goes, no separate pass (Transformer Engine's DelayedScaling)
//   kBlockwise a scale per tile (1 x 128 activations and gradients, 128 x 128 weights), found
//             inside the cast kernel, no separate pass (DeepSeek-V3's fp8 training, Transformer
//             Engine's Float8BlockScaling)
enum class Fp8Recipe : uint8_t { kCurrent, kDelayed, kBlockwise };
// One fused kernel (FlashAttention or cuDNN's fused SDPA): no s x s matrix in HBM.
constexpr bool fused_attention(AttentionKernel k) { return k != AttentionKernel::kUnfused; }
// How ZeRO-3 gathers parameters:
//   kLayer   one collective per transformer layer on a side stream, prefetched ahead of use
//            (PyTorch FSDP: a flat parameter per wrapped layer);
//   kTensor  one collective per parameter tensor, each waited for before compute goes on
//            (DeepSpeed ZeRO-3 as of 2021: each leaf module's parameters fetched with its own
//            all-gather behind a torch.cuda.synchronize(); DeepSpeed issues #1069 and #5047).
enum class ZeroGather : uint8_t { kLayer, kTensor };
// The format data-parallel gradients are accumulated and reduced in:
//   kAuto  fp32 for bf16 and fp8 training (Megatron-LM turns on accumulate_allreduce_grads_in_fp32
//          for bf16; torchtitan's mixed_precision_reduce and Composer's DEFAULT FSDP mixed
//          precision reduce in fp32), fp16 for fp16 training (Megatron-LM's fp16 default);
//   kBf16 / kFp16 / kFp32  that format (Megatron-Core --grad-reduce-in-bf16; FSDP "PURE").
enum class GradReduce : uint8_t { kAuto, kBf16, kFp16, kFp32 };

const char* to_string(DType);
const char* to_string(Activation);
const char* to_string(NormKind);
const char* to_string(Schedule);
const char* to_string(Recompute);
const char* to_string(AttentionKernel);
const char* to_string(Fp8Recipe);
const char* to_string(ZeroGather);
const char* to_string(GradReduce);
const char* to_string(EpLayout);
int bytes_of(DType);  // 2 for bf16/fp16, 1 for fp8, 4 for fp32
// The format `g` resolves to for training in `precision` (kAuto: fp16 for fp16, else fp32).
DType resolved_grad_reduce(GradReduce g, DType precision);

struct ModelSpec {
  std::string name;                 // catalog name or user label
  std::string arch = "dense";       // "dense" or "moe"
  int layers = 0;
  int hidden = 0;
  int heads = 0;
  int kv_heads = 0;                 // = heads for MHA; < heads for GQA
  int head_dim = 0;                 // = hidden / heads unless given
  int ffn_hidden = 0;               // intermediate size of the MLP
  int vocab = 0;
  Activation activation = Activation::kGelu;
  NormKind norm = NormKind::kLayerNorm;
  bool tied_embeddings = false;     // LM head shares the embedding matrix
  // Multi-head latent attention (DeepSeek-V2/V3; attention "mla"; all 0 otherwise). Q comes
  // from a low-rank latent: h -> q_lora_rank (down-projection, RMSNorm) -> heads*(qk_nope +
  // qk_rope) (up-projection); q_lora_rank 0 = no Q compression (DeepSeek-V2-Lite: h -> heads*qk
  // directly). K and V come from one shared latent: h -> kv_lora_rank + qk_rope (the rope part
  // is one decoupled key shared by all heads), RMSNorm on the kv_lora_rank part, then
  // kv_lora_rank -> heads*(qk_nope + v_head_dim). Attention runs with query/key head dim
  // qk_nope + qk_rope and value head dim v_head_dim; the out-projection is heads*v_head_dim -> h.
  // For MLA models kv_heads = heads and head_dim = qk_nope + qk_rope (informative only).
  bool mla = false;
  int q_lora_rank = 0;
  int kv_lora_rank = 0;
  int qk_nope_head_dim = 0;
  int qk_rope_head_dim = 0;
  int v_head_dim = 0;
  int mla_qk_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  // Mixture of experts (arch "moe"; all 0 for dense models). Layers [0, dense_layers) use the
  // dense MLP of ffn_hidden; the others a routed MoE MLP: `experts` experts of
  // expert_ffn_hidden each, `top_k` of them per token, plus `shared_experts` always-on experts
  // of expert_ffn_hidden each (run as one dense MLP of shared_experts*expert_ffn_hidden).
  int experts = 0;
  int top_k = 0;
  int expert_ffn_hidden = 0;        // = ffn_hidden unless given
  int shared_experts = 0;
  int dense_layers = 0;
  double capacity_factor = 0;       // 0 = dropless; else tokens per expert capped at cf*mean
  std::string router = "softmax";   // "softmax" (Mixtral, Qwen3) or "sigmoid" (DeepSeek-V3); same cost
  bool is_moe() const { return arch == "moe" && experts > 0; }
  bool is_moe_layer(int layer) const { return is_moe() && layer >= dense_layers; }
  // Multi-token prediction (DeepSeek-V3 section 2.2; Megatron-Core multi_token_prediction.py):
  // mtp_depth chained modules on the last (virtual) pipeline stage, after the main model. One
  // module: RMSNorm of the incoming hidden states and of the embedding of the next tokens (the
  // shared embedding matrix), their concatenation projected 2h -> h, one transformer block of
  // the kind of the model's last layer, then the shared final norm, LM head and loss. Its
  // parameters (block + 2h*h + 2 norms per module) are not in param_count's main figure
  // (mtp_params(), models/memory.h). 0 = none (default); 0 to 4.
  int mtp_depth = 0;
  // Total parameter count (elements), derived by models::param_count(); informative.
};

// How many tokens each expert receives, per MoE layer and micro-batch (models/moe.h).
enum class MoeRouting : uint8_t { kBalanced, kUniform, kZipf, kHistogram };
const char* to_string(MoeRouting);

// Where experts live on the EP ranks (models/moe.h): fixed contiguous blocks, or re-placed
// every rebalance_every steps from the loads last observed (FlexMoE-style what-if).
enum class MoePlacement : uint8_t { kStatic, kDynamic };

// How the EP dispatch/combine moves tokens (sim/collectives.h): one direct all-to-all (every
// token copy to its expert's GPU), or DeepEP-style deduplicated across nodes (a token crosses
// once per remote node it needs, then NVLink forwarding; combine mirrors it).
enum class MoeDispatch : uint8_t { kDirect, kDedup };
const char* to_string(MoeDispatch);

struct MoeRoutingSpec {
  MoeRouting kind = MoeRouting::kBalanced;
  MoePlacement placement = MoePlacement::kStatic;
  int rebalance_every = 100;        // K: steps between placements (dynamic only)
  int replicas = 1;                 // extra expert slots per EP rank for replicas (dynamic only)
  double skew = 0;                  // zipf exponent s (> 0); only for kZipf
  std::vector<double> histogram;    // per-expert weights (counts or fractions); only for kHistogram
  std::string histogram_file;       // where it came from (informative)
  uint64_t seed = 1;                // = the scenario seed unless the moe section gives one
  MoeDispatch dispatch = MoeDispatch::kDirect;
  // Node-limited routing (DeepSeek-V3): each token's experts lie on at most node_limit nodes of
  // its EP group; 0 = no limit. Needs dispatch kDedup (with direct dispatch it moves the same
  // bytes); a limit >= the EP group's nodes is no limit.
  int node_limit = 0;
};

// Variable-length documents packed into windows with document-masked attention
// (models/packing.h). kNone: every window is one causal sequence (the default).
enum class DocumentLengths : uint8_t { kNone, kFixed, kLognormal };
struct DocumentSpec {
  DocumentLengths kind = DocumentLengths::kNone;
  double mean_tokens = 0;           // mean document length (tokens)
  double sigma = 0;                 // lognormal: standard deviation of log(length)
  uint64_t seed = 1;                // = the scenario seed unless the section gives one
  bool balanced = false;            // internal: every window at the mean work (imbalance cost)
};

// Which framework runs the step's non-GEMM work (training.framework). kFused: Megatron-LM /
// Megatron-Core / NeMo with fused kernels (Transformer Engine or Apex norms, fused RoPE and
// SwiGLU, fused vocab-parallel cross-entropy, bf16 weights kept beside fp32 main weights).
// kTorchCompile: a PyTorch training loop (torchtitan, llm-foundry/Composer, a plain autocast
// loop) whose blocks torch.compile fuses: fp32 parameters under torch.autocast(bfloat16), so the
// step casts whole (unsharded) weights to bf16 and the backward casts weight gradients to fp32;
// PyTorch's cross-entropy over logits cast to fp32; PyTorch's ring attention under context
// parallelism. kTorchEager: the same loop without torch.compile: every elementwise op of the
// block is a kernel of its own (models/compiler.cpp, the byte helpers of StageBuilder).
enum class Framework : uint8_t { kFused, kTorchCompile, kTorchEager };
const char* to_string(Framework);
inline bool torch_framework(Framework f) { return f != Framework::kFused; }

// Job interruptions over a whole training run (the scenario's "failures" section; the time to
// train in scenarios/predict.h). The rate's default is Llama 3 405B's pre-training: 419
// unexpected interruptions in a 54-day snapshot on 16,384 H100s (Llama 3 paper, 2024, sec.
// 3.3.4 "Reliability and Operational Challenges"; about one every 3 hours).
constexpr double kLlama3InterruptionsPerGpuHour = 419.0 / (54.0 * 24.0 * 16384.0);
constexpr const char* kLlama3InterruptionsSource = "default: Llama 3 405B's 419 in 54 days on 16,384 H100s";
struct FailureSpec {
  bool present = false;             // the section is there: checkpoint_write and restart given
  double per_gpu_hour = kLlama3InterruptionsPerGpuHour;
  bool rate_default = true;         // per_gpu_hour is the Llama 3 figure above
  double checkpoint_write_s = 0;    // training blocked by one checkpoint
  double restart_s = 0;             // from an interruption to training again (detect, reschedule, load)
  double interval_s = 0;            // training time between checkpoints; 0: Young's sqrt(2 x write x MTBF)
};

struct TrainingSpec {
  int seq_len = 0;                  // tokens per sequence
  int64_t global_batch = 0;         // sequences per optimizer step
  int micro_batch = 1;              // sequences per micro-batch per DP replica
  DType precision = DType::kBF16;   // GEMM precision; fp8 runs GEMMs at fp8 rates, the rest bf16
  AttentionKernel attention_kernel = AttentionKernel::kFlash;
  Framework framework = Framework::kFused;
  Fp8Recipe fp8_recipe = Fp8Recipe::kCurrent;   // fp8 runs only
  // fp8 runs only: the linear layers keep their inputs for the backward pass as their fp8
  // casts (Transformer Engine's fp8 Linear, DeepSeek-V3's fp8 activation caching) instead of
  // bf16 (torchao's Float8Linear). models/memory.h says which tensors.
  bool fp8_cache_inputs = false;
  bool dropout = false;             // dropout layers (GPT-3 era models: p=0.1) run and keep masks
  MoeRoutingSpec moe;               // MoE models only
  DocumentSpec documents;           // packed variable-length documents (training.documents)
  // Tokens the whole training run takes (training.train_tokens): the report adds the time to
  // train them at the predicted step (scenarios/predict.h time_to_train). 0: not asked.
  int64_t train_tokens = 0;
  FailureSpec failures;             // the time to train with interruptions (scenario "failures")
};

struct ParallelSpec {
  int tp = 1;
  int pp = 1;
  int vp = 1;                       // virtual stages per pipeline rank (interleaved 1F1B; 2 with the two-chunk schedules)
  int dp = 1;
  int cp = 1;                       // context parallel degree: each rank holds seq/cp tokens
  int cp_ulysses = 1;               // the Ulysses (all-to-all over heads) part of cp; cp/cp_ulysses
                                    // ranks pass KV blocks around a ring (ring attention)
  bool cp_load_balance = true;      // zig-zag chunking (2*cp chunks, rank r holds r and 2cp-1-r)
  int ep = 1;                       // expert parallel: ranks sharing one set of experts (EpLayout)
  int etp = 1;                      // expert tensor parallel: 1 or tp (EP along DP); folded: etp*ep | tp*cp*dp
  EpLayout ep_layout = EpLayout::kAuto;
  bool sequence_parallel = false;
  // With tp > 1 and SP: the sequence all-gathers and reduce-scatters of the dense layers run as
  // ring steps beside their GEMMs, split in tp chunks (Transformer Engine's tp_comm_overlap,
  // torchtitan's AsyncTP; compiler.h).
  bool tp_overlap = false;
  Schedule schedule = Schedule::k1F1B;
  int zero = 0;                     // 0 DDP, 1 optimizer states sharded, 2 +grads, 3 +params (FSDP)
  int fsdp_shard_group = 0;         // ZeRO shard group size; 0 = dp (all of DP)
  Recompute recompute = Recompute::kNone;
  // With recompute kFull: fully recompute only the first N layers of each model chunk (a
  // pipeline stage, or each virtual stage); the others keep their activations (Megatron's
  // --recompute-method block --recompute-num-layers N). 0 = every layer.
  int recompute_layers = 0;
  // With recompute kSelective: the RecomputeModule bits (default: the attention core only).
  uint32_t recompute_modules = kRecomputeCoreAttn;
  std::vector<int> layers_per_stage;  // empty = even split; else pp*vp entries summing to layers
  std::string order = "tp-cp-dp-pp";  // rank placement, innermost first (Megatron's order)
  int64_t dp_bucket_mb = 40;        // gradient bucket size for overlapped DP reduction (MiB of grads)
  bool dp_overlap = true;           // reduce gradient buckets while backward runs
  int zero3_prefetch = 1;           // layers whose parameters are gathered ahead of use
  ZeroGather zero3_gather = ZeroGather::kLayer;
  // ZeRO-3: free each layer's gathered parameters after use (true), or keep them from the step's
  // first use to its end and reduce-scatter the gradients once, after the last micro-batch's
  // backward, accumulating them unsharded in fp32 until then (false: FSDP2's
  // reshard_after_forward=False with gradient sync on the last micro-batch only, as torchtitan
  // runs FSDP under PP).
  bool zero3_reshard = true;
  // The format gradients are accumulated and reduced over the data-parallel ranks in (the
  // buffer's bytes per parameter and the reductions' bytes per element): GradReduce above.
  GradReduce grad_reduce_dtype = GradReduce::kAuto;
  // Share of each layer's saved activations copied to host memory after its forward and
  // fetched back, one layer ahead, for its backward (MEMO-style offload over PCIe). 0 = none.
  double activation_offload = 0;
  // MoE: the dispatch/combine all-to-alls of one micro-batch run on a stream of their own
  // beside the compute of another (Megatron-Core overlap_moe_expert_parallel_comm, the
  // combined 1F1B of DeepSeek-V3's DualPipe; models/compiler.h).
  bool ep_overlap = false;
  // With ep_overlap: in a paired backward the experts' weight-gradient GEMMs run after the
  // dispatch all-to-all's backward is launched, not before it (Megatron-Core
  // --delay-wgrad-compute with --overlap-moe-expert-parallel-comm).
  bool delay_wgrad = false;
  // HSDP with ZeRO-3: all-reduce the gradient shards over the replicas only in the last
  // micro-batch's backward (PyTorch FSDP2 set_requires_all_reduce(False) on the others; the
  // reduce-scatter still runs every micro-batch).
  bool hsdp_defer_all_reduce = false;
};

// Whether the MoE layers use the folded expert mapping (EpLayout): kAuto folds only where EP
// along DP does not apply (ep does not divide dp, or 1 < etp < tp), so every layout that
// existed before folding keeps its groups.
inline bool ep_folded(const ParallelSpec& p) {
  if (p.ep_layout != EpLayout::kAuto) return p.ep_layout == EpLayout::kFolded;
  return !(p.ep >= 1 && p.dp % p.ep == 0 && (p.etp <= 1 || p.etp == p.tp));
}
// Expert-DP size edp = tp*cp*dp / (etp*ep): the ranks of a stage holding the same expert shard
// (gradients reduce and ZeRO shards over them). Both layouts; REQUIRES etp*ep | tp*cp*dp.
inline int expert_dp_size(const ParallelSpec& p) {
  return p.tp * p.cp * p.dp / (std::max(1, p.etp) * std::max(1, p.ep));
}
// Whether a step reduces gradients over data-parallel ranks at all (dense dp x cp, or the
// routed experts' expert-DP group): where the gradient format (grad_reduce_dtype) is worth naming.
inline bool reduces_dp_gradients(const ModelSpec& m, const ParallelSpec& p) {
  return p.dp * p.cp > 1 || (m.is_moe() && expert_dp_size(p) > 1);
}

}  // namespace trainsim
