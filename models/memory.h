// File: models/memory.h
// The memory model: bytes held on one GPU rank during mixed-precision training, in closed form.
// The compiler (models/compiler*) uses it to set Program::mem and the activation alloc/free of
// tasks; reports print it. Every figure is a pure function of its arguments.
//
// Conventions (all sizes in bytes unless a name says "params" = elements):
//
//  * Activations follow Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
//    Transformer Models" (arXiv:2205.05198), section 4, re-derived tensor by tensor rather than
//    with the paper's "34 sbh + 5 a s^2 b" constant, because SwiGLU (three MLP matrices) and
//    GQA (narrow K/V) change the tensor list. 2 bytes per bf16/fp16 element; 1 byte per
//    dropout-mask element. Attention is flash-style (Dao et al. 2022): the a*s*s score and
//    softmax matrices are never stored, only the O(s) softmax statistics (log-sum-exp, fp32).
//    With that, the paper's GPT layer with dropout comes to exactly 34 sbh + 4 a s b
//    (its 5 a s^2 b term is replaced by the fp32 log-sum-exp); see layer_activation().
//  * Without sequence parallelism (SP) the tensors of the layer-norm / dropout / residual
//    regions (and the inputs of the column-parallel GEMMs) are replicated on all t ranks of the
//    TP group (the paper's "10 sbh" term); with SP they are split along the sequence, i.e. /t.
//    With SP, Megatron saves the sequence-sharded input of a column-parallel GEMM and
//    all-gathers it again in the backward pass (paper section 4.2.2), so that input is /t too.
//  * Static state follows Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training
//    Trillion Parameter Models" (arXiv:1910.02054) with Megatron-LM's mixed-precision layout:
//    bf16 weights 2 B/param, fp32 main-gradient (accumulation) buffer 4 B/param (2 B when
//    gradients are reduced in bf16/fp16: parallel.grad_reduce_dtype), Adam fp32 master
//    weights + m + v = 12 B/param (ZeRO's K = 12). See static_memory().
//  * A fixed per-GPU workspace (CUDA context, library workspaces, NCCL buffers, allocator
//    fragmentation) is a documented constant, kFixedWorkspaceBytes.
//
// Rounding: divisions by the TP degree or the shard group round up (a rank holds the larger
// shard). Counts are int64; nothing here overflows for models up to ~10^15 parameters.
// Thread-safety: pure functions, no state.
#pragma once
#include <cstdint>
#include <vector>

#include "models/spec.h"
#include "sim/plan.h"   // MemoryStatic

namespace trainsim {

// ---- Activations ---------------------------------------------------------------------------

struct LayerActivation {
  // Bytes one transformer layer keeps from its forward to its backward pass for ONE
  // micro-batch on ONE rank.
  int64_t saved_bytes = 0;
  // Extra bytes alive while this layer's backward runs because of recomputation (the
  // recomputed forward tensors of one layer); 0 without recomputation. Only one layer is
  // recomputed at a time, so a rank's peak adds this once, not once per layer.
  int64_t recompute_transient_bytes = 0;
};

// Activation memory of one transformer layer (see the header comment for conventions).
//
// Saved tensors, no recomputation (s = seq, b = micro_batch, h = hidden, t = tp,
// q = heads*head_dim, k = kv_heads*head_dim, f = ffn_hidden, a = heads; "R" = replicated
// without SP and /t with SP; "/t" = always split by TP):
//   attention block
//     input-norm input                      2sbh      R
//     QKV GEMM input (norm output)          2sbh      R
//     Q (after RoPE)                        2sbq      /t
//     K, V                                  2*2sbk    /t   (GQA: k < q)
//     flash softmax stats (log-sum-exp)     4bas      /t   (fp32, one per head and query)
//     O = flash output = out-proj input     2sbq      /t   (one tensor, counted once)
//     dropout mask after out-proj           sbh       R    (only with dropout)
//   MLP block
//     post-attention-norm input             2sbh      R
//     FC1 input (norm output)               2sbh      R
//     gelu:   GeLU input                    2sbf      /t
//             FC2 input (GeLU output)       2sbf      /t
//     swiglu: gate and up (SwiGLU inputs)   2*2sbf    /t
//             FC2 input (SwiGLU output)     2sbf      /t
//     dropout mask after FC2                sbh       R    (only with dropout)
//   MLA (attention "mla", spec.h): the attention rows above become, with r_q = q_lora_rank,
//   r_kv = kv_lora_rank, qk = qk_nope + qk_rope, v = v_head_dim, H = heads:
//     norm input, down-projection input     2sbh each      R    (one tensor feeds q and kv down)
//     q latent, q-norm output               2*2sb r_q      full (replicated down-projection:
//                                                                every TP rank holds them whole;
//                                                                absent when r_q = 0)
//     kv latent + shared rope key           2sb(r_kv+rope) full
//     kv-norm output (kv up-proj input)     2sb r_kv       full
//     Q, K (after RoPE; K with the rope     2*2sbHqk       /t
//       key broadcast to every head)
//     V, O                                  2*2sbHv        /t
//     log-sum-exp                           4bas           /t
//   Selective recompute drops the log-sum-exp; its transient is O + statistics (2sbHv/t + 4bas/t).
//   Not counted: residual adds (save nothing), norm statistics (fp32 mean/rstd, O(sb), under
//   0.1% of the total for h >= 1024), fused RoPE (saves only the cos/sin tables), attention
//   dropout (flash regenerates its mask from the RNG state; modern models use none).
//   GPT, dropout, t = 1: 2+2+2+2+2+2+1 + 2+2+8+8+1 = 34 sbh, + 4 a s b for the statistics;
//   Korthikanti's "(34 + 5as/h) sbh" minus the 5as/h score/softmax term flash never stores.
//   TP without SP: (10 + 24/t) sbh (+ 4asb/t) as in the paper's eq. 2, minus its score term.
//
// Recompute:
//   none       the list above; transient 0.
//   selective  Korthikanti's selective recomputation checkpoints the attention core
//              (QK^T, softmax, dropout, attention over V) and drops its 5as^2b term. With
//              flash attention that term does not exist; the checkpointed core keeps its inputs
//              Q, K, V (saved anyway) and its output O is saved by the out-projection, so the
//              only tensor dropped is the fp32 log-sum-exp (4bas/t) (Megatron-Core's
//              "core_attn" recompute behaves so). saved = none - 4bas/t, i.e. equal to "none"
//              within ~1.5%; transient = O and the statistics regenerated in backward
//              (2sbq/t + 4bas/t).
//              `modules` (spec.h RecomputeModule; the default is core_attn alone) picks what a
//              selective recomputation covers; each module drops its tensors and adds them to
//              the transient (all modules' together: an upper bound on what is alive at once):
//                core_attn    the log-sum-exp, as above
//                layernorm    the QKV (MLA down-projection) and FC1 inputs, in*sbh each (R),
//                             and MLA's q-norm and kv-norm outputs (full)
//                mla_up_proj  MLA's Q, K, V (2sbHqk*2 + 2sbHv, /t); nothing without MLA
//                mlp          the dense MLP's gate/up (GeLU input) and FC2 input (/t)
//                moe_act      (moe_layer_activation) the experts' FC2 input, in*rows*fe;
//                             transient 2*rows*fe
//   full       only the layer input is saved: 2sbh (R: /t with SP); transient = the whole
//              layer's "none" set, recomputed while that layer's backward runs.
// REQUIRES: seq, micro_batch, tp >= 1; model.hidden, heads, ffn_hidden > 0.
// `fp8_inputs` (an fp8 run with training.fp8_cache_inputs): the inputs kept for the linear
// layers' weight gradients are their fp8 casts, 1 B an element instead of 2: the QKV (MLA
// down-projection) and FC1 inputs, the MLA up-projection inputs and the FC2 input. The
// out-projection input O stays bf16 (the attention backward reads it), as do the norm inputs
// and the activation-function inputs.
LayerActivation layer_activation(const ModelSpec& model, int seq, int micro_batch, int tp,
                                 bool sequence_parallel, Recompute recompute,
                                 bool dropout = false, bool fp8_inputs = false,
                                 uint32_t modules = kRecomputeCoreAttn);

// What the first pipeline stage keeps for its embedding, per micro-batch. The embedding
// output itself is the first layer's input and is counted there (it is the input-norm input),
// so this is only: the token ids (int64, 8sb, needed by the embedding backward) and, with
// dropout, the embedding-dropout mask (sbh bytes, R). Learned positional embeddings are not
// modelled (they add no activation beyond the sum already counted).
int64_t embedding_activation_bytes(const ModelSpec& model, int seq, int micro_batch, int tp,
                                   bool sequence_parallel, bool dropout = false);

// What the last pipeline stage keeps for its head and loss, per micro-batch (peak-oriented):
//   final-norm input                  2sbh    R
//   LM-head GEMM input (norm output)  2sbh    R
//   logits, bf16 (vocab-parallel)     2sbV/t
//   fp32 logits / softmax kept by the vocab-parallel cross-entropy for its backward  4sbV/t
//   labels (int64) and the per-token fp32 loss    12sb
// Both logit copies are alive together while the loss is computed, which is the stage's
// peak for large vocabularies (Korthikanti counts 4sbv/t for the fp32 copy only).
int64_t head_activation_bytes(const ModelSpec& model, int seq, int micro_batch, int tp,
                              bool sequence_parallel);

// Activation memory of one MoE layer on one rank for one micro-batch: the attention block and
// norms as layer_activation(), the dense-MLP terms replaced by the shared experts' (a dense MLP
// of shared_experts*expert_ffn_hidden, TP-split like the MLP) and, per rank, unsplit:
//   router logits (fp32)                              4 * tokens * experts
//   permuted tokens = expert FC1 input (dispatch buffer)   2 * rows * h
//   swiglu: gate, up, FC2 input  3 * 2 * rows * fe ;  gelu: GeLU input, FC2 input  2 * 2 * rows * fe
//   expert outputs received back by the combine       2 * tokens * top_k * h
// where tokens = the tokens this rank routes, rows = the token copies its experts process (the
// busiest rank's, from models/moe.h), fe = expert_ffn_hidden / etp. Recompute: full keeps only
// the layer input (transient = the whole set), selective drops the log-sum-exp as for dense.
// `fp8_inputs`: as layer_activation's, and the dispatch buffer and the expert FC2 input 1 B.
LayerActivation moe_layer_activation(const ModelSpec& model, int seq, int micro_batch, int tp,
                                     bool sequence_parallel, Recompute recompute, bool dropout,
                                     int64_t tokens, int64_t rows, int etp, bool fp8_inputs = false,
                                     uint32_t modules = kRecomputeCoreAttn);

// ---- Parameters (elements) -----------------------------------------------------------------

// Models with GeLU MLPs are taken as GPT-family models with biases on every linear layer and
// LayerNorm weight+bias; SwiGLU models as Llama-family models with no biases. (Models that mix
// the two, e.g. Qwen2's QKV bias, are off by < 0.01%. FIXME: a ModelSpec flag when needed.)
// One layer: attention Q (h*q) + K, V (2*h*k) + O (q*h) [+ biases q+2k+h]
//          + MLP gelu 2*h*f [+ biases f+h] | swiglu 3*h*f
//          + two norms (LayerNorm 2h each, RMSNorm h each).
int64_t layer_params(const ModelSpec& model);
// The attention block's parameters (no norms). MHA/GQA: Q, K, V, O [+ biases]. MLA (spec.h),
// H = heads, qk = qk_nope + qk_rope, v = v_head_dim, r_q = q_lora_rank, r_kv = kv_lora_rank:
//   q:  h*r_q + r_q (down-projection + its RMSNorm) + r_q*H*qk (up-projection); h*H*qk if r_q = 0
//   kv: h*(r_kv + qk_rope) + r_kv (down-projection + RMSNorm) + r_kv*H*(qk_nope + v)
//   o:  H*v*h
// DeepSeek-V3 (h 7168, H 128, r_q 1536, r_kv 512, 128/64/128): 187,107,328 per layer.
int64_t attention_params(const ModelSpec& model);
// MLA parameters every TP rank holds whole (Megatron-Core/DeepSeek layout: the q and kv
// down-projections and their norms are not split; the up- and out-projections are); 0 else.
int64_t mla_replicated_params(const ModelSpec& model);
// One rank's share of layer `layer`'s non-expert parameters under TP degree tp: the MLA
// replicated part whole plus the rest / tp (rounded up). = ceil(layer_dense_params / tp) for
// MHA/GQA (norms are counted as split too, a convention of < 0.01%).
int64_t layer_params_local(const ModelSpec& model, int layer, int tp);
// The parameter tensors of one layer in the order its forward pass uses them (norm weight
// [+ bias], fused QKV weight [+ bias], output projection [+ bias], norm, MLP weights [+ biases]);
// they sum to layer_params(). DeepSpeed ZeRO-3 gathers each with its own collective.
std::vector<int64_t> layer_param_tensors(const ModelSpec& model);
// The same for the non-expert part of a MoE layer (norms, attention, router h*experts, each
// shared expert's MLP); they sum to layer_dense_params() of a MoE layer.
std::vector<int64_t> moe_layer_dense_tensors(const ModelSpec& model);
// One routed expert's MLP tensors; they sum to expert_params().
std::vector<int64_t> expert_param_tensors(const ModelSpec& model);
// One routed expert's MLP (swiglu 3*h*fe, gelu 2*h*fe [+ biases fe+h]); fe = expert_ffn_hidden.
int64_t expert_params(const ModelSpec& model);
// The parameters of layer `layer` that are NOT routed experts (attention, norms and, for MoE
// layers, the router h*experts and the shared experts); reduced over DP like a dense layer.
int64_t layer_dense_params(const ModelSpec& model, int layer);
// The routed experts of layer `layer`: experts * expert_params for MoE layers, else 0.
int64_t layer_expert_params(const ModelSpec& model, int layer);
// vocab*hidden. Learned positional embeddings (GPT-2/3 style) are not modelled: they are
// s*h, < 0.1% of a modern model, and RoPE models have none.
int64_t embedding_params(const ModelSpec& model);
// MoE models: sum over layers of layer_dense_params + layer_expert_params instead.
// Active parameters (MoE: top_k routed + shared experts per MoE layer; = total for dense).
int64_t active_params(const ModelSpec& model);
// layers*layer_params + embedding + (tied ? 0 : vocab*hidden LM head) + final norm. The main
// model only: multi-token-prediction modules are counted apart (mtp_params).
int64_t total_params(const ModelSpec& model);
// The parameters of the model's multi-token-prediction modules (spec.h mtp_depth), per module
// one block counted as the last layer (layer_dense_params + layer_expert_params of layers-1),
// the projection 2h*h and two norms (of the model's norm kind). The embedding and LM head they
// use are the main model's and are not counted (DeepSeek-V3's "14B" MTP figure counts its
// checkpoint's copies of both, 2 x 0.93B, beside the module's own 11.6B). 0 when mtp_depth = 0.
int64_t mtp_params(const ModelSpec& model);
// What one module adds beside its block: the projection 2h*h and the two norms.
int64_t mtp_front_params(const ModelSpec& model);

// What one multi-token-prediction module keeps on the last stage per micro-batch besides its
// block (whose activations are a layer's, of the last layer) and its pass through the shared
// head (head_activation_bytes again): the next tokens' ids (int64, 8sb), the embedding-norm
// input 2sbh (R) and the projection input, the concatenated norm outputs 2sb*2h (R). The
// hidden-norm input is the tensor the previous head's final norm saved (not counted twice).
int64_t mtp_front_activation_bytes(const ModelSpec& model, int seq, int micro_batch, int tp,
                                   bool sequence_parallel);

// ---- Static memory ---------------------------------------------------------------------------

// Per-GPU workspace outside the tensors we model, held for the whole step:
//   CUDA context with lazy module loading       ~512 MiB (PyTorch + cuDNN/cuBLAS kernels;
//                                                nvidia-smi minus torch's reserved memory)
//   cuBLAS/cuBLASLt workspaces                   ~128 MiB (32 MiB per handle/stream on Hopper:
//                                                cuBLAS docs, cublasSetWorkspace; PyTorch
//                                                PR #120925)
//   NCCL buffers                                 ~512 MiB (NCCL_BUFFSIZE 4 MiB per channel and
//                                                peer, several communicators: tp, dp, pp)
//   caching-allocator fragmentation reserve      ~384 MiB
// = 1.5 GiB. A deliberately round constant; calibrate/ may replace it with a measured value.
inline constexpr int64_t kFixedWorkspaceBytes = int64_t{3} << 29;   // 1.5 GiB

inline constexpr int64_t kBytesBf16Param = 2;     // working weights
inline constexpr int64_t kBytesFp32Grad = 4;      // main-gradient accumulation buffer (fp32 reduce)
inline constexpr int64_t kBytesAdamState = 12;    // fp32 master + m + v

// Static memory of one rank.
//   params_local                parameters this rank holds before any ZeRO sharding (after the
//                               TP/PP split), in elements.
//   largest_layer_params_local  the largest layer (or embedding/head block) of this rank, after
//                               TP, in elements; used by ZeRO-3 only.
//   zero                        0 DDP; 1 distributed optimizer; 2 + gradients; 3 + params (FSDP).
//   shard_group                 ranks the ZeRO state is divided over (>= 1).
//   zero3_prefetch              layers gathered ahead of the one in use (ZeRO-3 only).
//   dp_bucket_bytes             bytes of one gradient-reduction bucket.
//   grad_bytes                  bytes per element of the gradient buffer: 4 when gradients are
//                               accumulated and reduced in fp32, 2 in bf16/fp16 (G below).
// Result (G = 4 in the figures):
//   zero 0: params 2P, grads 4P, optimizer 12P.
//   zero 1: optimizer 12P/N.
//   zero 2: and grads 4P/N + one bucket of unsharded gradients (min(dp_bucket, 4P)) that is
//           being filled/reduce-scattered.
//   zero 3: and params 2P/N + the gathered working set, (prefetch+1) full bf16 layers
//           (2 * largest_layer * (prefetch+1)), counted in `params` (it is parameter memory and
//           is held through the whole forward and backward). With shard_group 1 nothing is
//           gathered and zero 3 equals zero 2. With zero3_reshard false the whole program's
//           parameters stay gathered (params 2P/N + 2P) and its gradients accumulate unsharded
//           until the one reduce-scatter (grads 4P/N + 4P).
//   workspace = kFixedWorkspaceBytes in every case.
//   torch_loop (training.framework "torch_compile" / "torch_eager"): the parameters are fp32 and
//           the optimizer holds m and v only: params 4P (sharded 4P/N under zero 2 and 3, beside
//           the bf16 working copies: the whole 2P under zero 2, the gathered set under zero 3),
//           optimizer 8P (8P/N). With whole parameters (zero 0, 1) the fp32 gradients are not
//           static: PyTorch allocates them during the backward (zero_grad(set_to_none=True)),
//           which the plan's tasks carry (Task::mem_grads), so grads = 0 here.
// REQUIRES: params_local >= 0, 0 <= zero <= 3, shard_group >= 1, zero3_prefetch >= 0.
MemoryStatic static_memory(int64_t params_local, int64_t largest_layer_params_local, int zero,
                           int shard_group, int zero3_prefetch, int64_t dp_bucket_bytes,
                           bool zero3_reshard = true, int grad_bytes = kBytesFp32Grad, bool torch_loop = false);

}  // namespace trainsim
