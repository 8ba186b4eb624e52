// File: models/compiler.h
// The parallel-strategy compiler: model + batch + strategy -> Plan (a program per pipeline
// stage, shared by every TP/DP rank of that stage). What it lays out, per micro-batch:
//   - transformer layers as GEMM / attention / norm / elementwise ops (models/ops.h);
//   - TP: all-reduce after the row-parallel GEMMs (forward) and column-parallel GEMMs
//     (backward); with sequence parallelism all-gather / reduce-scatter instead, and the
//     backward re-gather of the column-parallel input on a side stream (Megatron overlaps it
//     with the data-gradient GEMM). TP collectives block the compute stream, except with
//     tp_overlap (tp > 1 and SP): in dense layers each all-gather before a column-parallel
//     GEMM (QKV, FC1; backward: the out-projection's and FC2's input gradients) becomes tp-1
//     ring steps ("tp-ring" group, TP stream) beside the GEMM in tp chunks of tokens/tp rows,
//     each chunk after the step that brought its rows; each reduce-scatter after a row-parallel
//     GEMM (out-projection, FC2; backward: the QKV and FC1 input gradients) becomes the GEMM in
//     tp chunks, each but the rank's own sent to its owner when done, and one memory-bound sum
//     of the tp partial chunks where the result is first needed. MoE MLP and MLA latent
//     collectives stay blocking.
//   - PP: GPipe, 1F1B, interleaved 1F1B (Megatron's order); activations and gradients pass as
//     messages on a send stream; uneven layer splits.
//   - DP: gradients reduced in buckets of `dp_bucket_mb` while the last micro-batch's backward
//     runs (or after it, dp_overlap=false); ZeRO-1/2 reduce-scatter + parameter all-gather
//     (overlapped with the next step's forward when dp_overlap); ZeRO-3/FSDP all-gathers each
//     layer's parameters before use in forward and backward with `zero3_prefetch` layers of
//     look-ahead, and reduce-scatters each layer's gradients per micro-batch (zero3_reshard
//     false: one gather per unit at its first use in the step, one reduce-scatter after the
//     last micro-batch's backward). With MoE a
//     layer's dense part (attention, norms, router, shared experts) is sharded over the dp
//     shard group and its routed experts (the rank's EP x ETP share) over the expert-DP group:
//     "zero3.expert.param.allgather" right after the dense gather (same stream and
//     look-ahead), waited for by the first expert GEMM of the forward (and recompute) and of
//     the backward; "ep.expert.grad.reducescatter" after the layer's backward, per
//     micro-batch (Megatron-Core FSDP, torchtitan's fully_shard of the experts over the edp
//     mesh). A full recompute runs on the backward's gather, as for dense layers.
//   - CP: each rank holds seq/cp tokens of every sequence (zig-zag chunks when
//     cp_load_balance). Ulysses (cp_ulysses ranks): an all-to-all turns the sequence shards of
//     Q, K, V into head shards before the attention core and one turns the output back (both
//     on the compute stream). Ring attention (cp/cp_ulysses ranks): the core runs as one block
//     per ring step; K and V pass to the next rank on the CP stream while the current block
//     computes (a block waits for its KV); backward passes K, V and the partial dK, dV, and
//     a last shift returns dK, dV to their owner; after each step past the first a
//     memory-bound merge folds its partial output (backward: dQ, dK, dV) into fp32
//     accumulators. Gradients reduce over dp x cp.
//   - recomputation: selective (what recompute_modules names, in forward order before its first
//     consumer in the backward: the norms, MLA's up-projections, the dense MLP with its TP
//     collectives, the experts' activation, the attention core) or full (the layer's whole
//     forward again, TP collectives included).
//   - the optimizer step (Adam, memory-bound) after the last gradient reduction.
//   - memory events: a layer's saved activations are allocated at its forward and freed at the
//     end of its backward; static memory from models/memory.h.
//   - MoE (models/moe.h for routing): per MoE layer and micro-batch, router GEMM, top-k and
//     permute, dispatch all-to-all over the EP group (blocking, compute stream), grouped expert
//     GEMMs (batch = local experts, m = rows per local expert of the busiest EP rank), combine
//     all-to-all, unpermute; shared experts as a TP-split dense MLP; backward mirrored. The EP
//     group (ParallelSpec::ep_layout, models/spec.h) is `ep` consecutive ranks of each DP group
//     at one tp and cp coordinate (EP along DP), or, folded (Megatron-Core parallel folding),
//     the ep ranks of equal etp and edp index when the stage's tp*cp*dp ranks are numbered in
//     rank order as etp innermost, then ep, then edp. Tokens routed per rank are T / (tp/etp):
//     the TP group's T tokens split over its tp/etp ETP groups, whose ranks route the same
//     tokens to their etp-split experts (etp = tp: all of T, experts split like the MLP; etp =
//     1: each TP rank its own T/tp slice to whole experts); the MLP's closing TP reduce sums
//     the partial outputs and slices. Expert gradients are reduced over the expert-DP group
//     (edp = tp*cp*dp/(etp*ep) ranks of equal etp and ep index: with EP along DP the dp/ep
//     ranks at equal EP offset, times cp, times tp when etp = 1), dense ones over DP. Model FLOPs count the routed experts at the mean load (top_k per token).
//     Dynamic placement (moe.placement "dynamic"): one placement per MoE layer and step, chosen
//     from a seeded draw standing for the previous step (micro-batch index -1 of the layer's
//     stream) by place_experts() (models/moe.h), sets the busiest rank's rows of every
//     micro-batch of the step. Its cost is a collective on the EP group, laid out once per MoE
//     layer and step after the layer's last backward ("ep.placement.migration.alltoall",
//     compute stream, blocking): per rank the busiest receiver's bytes of
//       moves:    (2 + 12/expert shard group with ZeRO >= 1, else 14) B per expert parameter
//                 (bf16 weights + fp32 master weights and Adam m, v), / rebalance_every;
//       replicas: 2 B per parameter (bf16 weights), / rebalance_every;
//       replica sync, every step: 4 B per parameter and replica (its bf16 gradient to the
//                 owner, the updated bf16 weights back).
//     It is laid out in the plan (not only a report term) so that its time competes with the
//     step like any all-to-all and the reported gain is net of it. The replica slots' weights
//     and gradient buffers (6 B per parameter and slot) are added to static memory. The
//     grouped GEMMs keep E/ep experts per rank (rows as placed): extra kernel launches of
//     replicas are not priced.
//   - MLA with tp > 1 (Megatron-Core MLASelfAttention; DeepSeek): the down-projections and the
//     latent norms (q_down, q_norm, kv_down, kv_norm; models/memory.h mla_replicated_params) are
//     replicated ("duplicated" TELinear) on every TP rank, the up-projections column-parallel.
//     Two layouts, by sequence parallelism:
//   - MLA with tp > 1 and sequence parallelism: the down-projections and the latent norms run on
//     the rank's T/tp tokens (no all-gather of h), then the latents are all-gathered over TP
//     ("tp.mla.q.allgather" 2 B x T x q_lora, "tp.mla.kv.allgather" 2 B x T x kv_lora,
//     "tp.mla.kpe.allgather" 2 B x T x rope for the shared rope key) before the column-parallel
//     up-projections. Backward mirrors it: the up-projections' latent input is re-gathered on
//     the side stream for their weight gradients ("tp.mla.{q,kv}.side.allgather"), their
//     latent and rope-key input gradients, partial over the TP heads, are reduce-scattered
//     ("tp.mla.{q,kv,kpe}.reducescatter"), and the down-projections' backward on T/tp tokens
//     gives the rank's own input gradient: no h-wide reduce-scatter for the attention block.
//     With q_lora = 0 the uncompressed query projection still gathers h and reduce-scatters its
//     h-wide input gradient. Activation memory keeps the h-gathered layout's figures.
//     The replicated weights saw different tokens on each rank, so their weight gradients are
//     partial sums over TP. One all-reduce per stage and step ("tp.mla.grad.allreduce") sums
//     them: 2 B x replicated parameters x the stage's layers (bf16 like the DP buckets; with
//     ZeRO-3 the rank's 1/shard of that, the gradient it keeps), on the DP stream after the
//     stage's last backward task and (stream order) its DP reductions, compute stream after the
//     deferred ones with dp_overlap=false; the optimizer waits for it, so it is exposed.
//     Category TP comm, not DP: it runs over the TP group's links and does not grow with dp.
//     Megatron-Core does the same once per step after the DP gradient sync, not per
//     micro-batch (finalize_model_grads -> _allreduce_layernorm_grads: one coalesced, blocking
//     all-reduce over TP of the parameters marked sequence_parallel, which TELinear sets on its
//     "duplicated" MLA down-projections when sequence parallelism is on).
//   - MLA with tp > 1 without sequence parallelism: every TP rank holds all T tokens, so the
//     down-projections and latent norms run on all T tokens on every rank (duplicated work, in
//     the FLOPs) and nothing is gathered in forward. The column-parallel up-projections' input
//     (Megatron's copy_to_tensor_model_parallel_region) all-reduces the latents' input
//     gradients, partial over the TP heads, per layer and micro-batch right after their
//     weight-gradient GEMMs, blocking the compute stream like every non-SP TP all-reduce:
//     "tp.mla.kv.allreduce" 2 B x T x kv_lora, "tp.mla.q.allreduce" 2 B x T x q_lora (q_lora >
//     0), and "tp.mla.kpe.allreduce" 2 B x T x rope for the shared rope key (released
//     Megatron-Core leaves that one partial, NVIDIA/Megatron-LM issue 1699, fixed by its PR 6839
//     the same way; modelled as fixed). The down-projections' backward then sees the full
//     output gradient on every rank: their input gradient and weight gradients are complete,
//     so there is no h-wide all-reduce for the attention block (with q_lora = 0 the
//     uncompressed query projection keeps its h-wide input-gradient all-reduce,
//     "tp.attn.bwd.allreduce") and no "tp.mla.grad.allreduce" (nor its group).
//   - tied embeddings with pp > 1 (Megatron: share_embeddings_and_output_weights): the first
//     stage holds the word embedding, the last stage a copy for the LM head (a parameter of its
//     own, with its own gradient and optimizer state: StageInfo::params_local and the static
//     memory count it on the last stage, vocab/tp x h). Once per step, after the stage's last
//     backward task and its last gradient reduction (the DP reductions, then the MLA gradient
//     all-reduce if any), the two stages all-reduce that weight's gradient over the embedding
//     group, the rank of stage 0 and the rank of stage pp-1 with the same tp/cp/dp coordinates
//     (2 ranks, group "pp-embedding" at embedding_grad_group(), usually on two nodes):
//     "pp.embedding.grad.allreduce", 2 B x vocab/tp x h (bf16; with ZeRO-3 the rank's 1/shard
//     of that), on the compute stream, blocking, then the optimizer: exposed. The stage that
//     finished its backward first waits there for the other (pipeline skew, which the replay
//     counts as bubble, not as PP comm). Megatron-Core does the same in finalize_model_grads
//     (_allreduce_word_embedding_grads, after finish_grad_sync and the layernorm all-reduce).
//     With virtual stages the embedding is on stage 0's first chunk and the head on stage
//     pp-1's last: the same pair. Category PP comm: Megatron times it apart from the DP sync
//     ("embedding-grads-all-reduce"), it runs between the pipeline's end stages and its size
//     does not depend on dp. With pp = 1 the head uses the embedding's own weight (one
//     gradient, reduced once with the DP buckets): nothing is laid out.
//   - multi-token prediction (ModelSpec::mtp_depth; DeepSeek-V3 section 2.2, Megatron-Core
//     multi_token_prediction.py): on the last virtual stage, after the main loss, per module and
//     micro-batch: the embedding lookup of the next tokens ("mtp.embedding.fwd", its TP reduce
//     as the main embedding's), RMSNorms of it and of the incoming hidden states, the
//     column-parallel projection 2h -> h/t ("mtp.proj.fwd"; with SP its 2h-wide input gathered
//     over the sequence, "tp.mtp.proj.allgather"; with tp > 1 its output gathered over the hidden
//     dim, "tp.mtp.proj.out.allgather"), one transformer block laid out as the model's last
//     layer (its layer index, shapes, activations, ZeRO-3 tensors and MoE routing draw; full
//     recompute as any layer), then the shared final norm, LM head, loss and TP loss
//     all-reduce again. Backward mirrors it, last module first, before the main head's backward.
//     Its parameters (block, projection 2h*h/tp, two norms per module) are the last stage's:
//     params_local, static memory, optimizer, DP buckets or ZeRO-3 gather/reduce-scatter
//     (experts over expert-DP). The lookup uses the embedding: with pp = 1 stage 0's own, with
//     pp > 1 a copy on the last stage (a tied head's copy, or untied one of its own, counted like
//     the tied copy and all-reduced over the embedding group below, as Megatron-Core does).
//     Its GEMMs and attention count as model FLOPs.
// EP overlap (ParallelSpec::ep_overlap; Megatron-Core overlap_moe_expert_parallel_comm, the
// combined 1F1B; DeepSeek-V3 report section 3.2.1): the dispatch/combine all-to-alls (and the
// placement migration) run on kStreamEp after the compute stream's last task, and the compute
// that uses their output waits for them. Each stage runs one more warm-up forward (as
// Megatron-Core does), and each steady-state pair, a forward and a backward of two different
// micro-batches, is laid out as usual and then interleaved: both are cut after each of their
// dispatch/combine all-to-alls and the pieces alternate, the backward's first (B0 F0 B1 F1 ...),
// so the backward's combine runs beside the forward's attention, the forward's dispatch beside
// the backward's expert GEMMs, the backward's dispatch beside the forward's expert GEMMs and the
// forward's combine beside the backward's attention. Each half keeps its order (every dependency
// still points back); the pair's sends leave at its end. The loader takes it only where
// Megatron-Core or DeepSeek's DualPipe run it (ep > 1; 1F1B without pipelining, interleaved,
// dualpipev or dualpipe, whose steps pair too; recompute none or selective) and where it is
// modelled (zero 0-2, no activation offload).
// Gradients are reduced in the format parallel.grad_reduce_dtype resolves to (models/spec.h
// GradReduce: by default fp32 for bf16 and fp8 training, as Megatron-LM, torchtitan and
// Composer's FSDP do; fp16 for fp16): every data-parallel gradient reduction (buckets,
// ZeRO-3 reduce-scatters, HSDP replica all-reduces, expert gradients) moves that many bytes
// per element, and the gradient buffer holds that many (models/memory.h static_memory()).
// HSDP (fsdp_shard_group < dp) with ZeRO-3: each layer's gradient is reduce-scattered over
// its shard group and the shard then all-reduced over the replicas, both on the DP stream, per
// layer and micro-batch; with ZeRO-1/2 each bucket the same way ("dp.grad.reducescatter" then
// "dp.grad.replica.allreduce"). With ZeRO-3 the replica all-reduce runs on a stream of its
// own (kStreamDpReplica: PyTorch FSDP2's all-reduce stream), after its reduce-scatter, so the
// next layer's reduce-scatter does not wait for it; the optimizer waits for the last one. With
// ZeRO-1/2 it follows each bucket's reduce-scatter on the DP stream. With hsdp_defer_all_reduce
// (ZeRO-3; FSDP2 set_requires_all_reduce(False) on all but the last micro-batch) the replica
// all-reduces, dense and expert, run in the chunk's last micro-batch only, each of the full
// shard (the reduce-scatters still run every micro-batch and accumulate into the shard).
// HSDP with MoE (PyTorch FSDP2 HSDP + EP as torchtitan lays it out; Megatron-Core's distributed
// optimizer with several instances): the dense part as above. A dense replica is one
// shard-sized chunk of the dp x cp group (the ranks of one dp-shard group and, with etp < tp,
// their TP peers); the routed experts are sharded over the expert shard group, the ranks of the
// rank's expert-DP group inside its dense replica (eshard = edp / (dp / fsdp_shard_group),
// expert_shard_group() below; every expert-DP group must have the same number of ranks in
// every replica, e.g. ep | fsdp_shard_group with EP along DP), and their gradient shard is
// then all-reduced over the expert replicas (the expert-DP ranks holding the same shard, one
// per dense replica), on the DP stream right after the expert reduce-scatter: per layer and
// micro-batch with ZeRO-3 ("ep.expert.grad.reducescatter" then "hsdp.expert.grad.allreduce"),
// per expert bucket with ZeRO-1/2 ("ep.expert.grad.replica.allreduce"; with ZeRO 0 the whole
// bucket, all-reduced over the expert shard group first). Parameter all-gathers (ZeRO-3 before
// use, ZeRO-1/2 after the optimizer) go over the expert shard group only; expert params,
// gradients and optimizer states divide by eshard as ZeRO shards them. With eshard = 1 each
// replica holds whole experts: no expert gathers or reduce-scatters, only the all-reduce.
// In such plans kGroupExpertDp / kGroupExpertDpGather are the expert shard groups
// ("expert-dp-shard", "expert-dp-shard-gather") and the replica group is appended last.
// Thread-safety: pure function.
#pragma once
#include <algorithm>
#include <vector>

#include "models/packing.h"
#include "models/spec.h"
#include "sim/plan.h"
#include "sim/status.h"

namespace trainsim {

// Group and peer table indices of compiled plans.
inline constexpr uint8_t kGroupTp = 0;        // TP collectives on the compute stream
inline constexpr uint8_t kGroupTpSide = 1;    // SP backward input re-gather (gather stream)
inline constexpr uint8_t kGroupDp = 2;        // gradient reduction (DP stream)
inline constexpr uint8_t kGroupDpGather = 3;  // ZeRO parameter all-gather (gather stream)
inline constexpr uint8_t kGroupDpRep = 4;     // replica all-reduce when the ZeRO shard group < dp
inline constexpr uint8_t kGroupCpRing = 5;    // ring attention KV passing (cp / cp_ulysses ranks)
inline constexpr uint8_t kGroupCpA2a = 6;     // Ulysses all-to-all over heads (cp_ulysses ranks)
// MoE plans only (dense plans have groups 0-6):
inline constexpr uint8_t kGroupEp = 7;        // dispatch/combine all-to-all (compute stream; EP stream with ep_overlap)
inline constexpr uint8_t kGroupExpertDp = 8;  // expert-gradient reduction (DP stream)
inline constexpr uint8_t kGroupExpertDpGather = 9;  // ZeRO expert-parameter all-gather (gather stream)
// MLA plans with tp > 1 and sequence parallelism only, appended after the groups above (so no
// other index moves): the TP group again, for the once-per-step all-reduce of the replicated MLA
// weights' gradients (DP stream; a group of its own because a group instance runs one
// collective at a time, and the compute stream's TP collectives use kGroupTp).
inline constexpr uint8_t kGroupMlaGradDense = 7;
inline constexpr uint8_t kGroupMlaGradMoe = 10;
constexpr uint8_t mla_grad_group(bool moe) { return moe ? kGroupMlaGradMoe : kGroupMlaGradDense; }
// Whether a plan has the MLA gradient group: MLA, tp > 1 and sequence parallelism.
constexpr bool has_mla_grad_group(bool mla, int tp, bool sp) { return mla && tp > 1 && sp; }
// ZeRO-3 with zero3_gather "tensor" and a dp shard of more than one rank only, appended after
// every other group (the embedding group below included; only the HSDP MoE replica group,
// expert_replica_group(), comes after it): "dp-gather-tensor", the dp shard
// group again, for the blocking per-tensor gathers on the compute stream. The gather stream's
// embedding/head gathers keep kGroupDpGather: the members of one group must post its
// collectives in one order, which two streams do not guarantee once ranks drift apart.
// Tied-embedding or MTP plans with pp > 1 only (has_embedding_group), appended last: the
// embedding group ("pp-embedding"),
// one instance per (tp, cp, dp) coordinate holding the ranks of stage 0 and stage pp-1; ranks
// of the middle stages are not members. Index 7, +3 in MoE plans, +1 after the MLA group.
constexpr uint8_t embedding_grad_group(bool moe, bool mla_grad) {
  return static_cast<uint8_t>(7 + (moe ? 3 : 0) + (mla_grad ? 1 : 0));
}
// Whether the last stage keeps a copy of the embedding whose gradient is all-reduced with
// stage 0's: tied embeddings (the LM head) or multi-token prediction (its lookup), with pp > 1.
inline bool has_embedding_group(const ModelSpec& model, int pp) {
  return (model.tied_embeddings || model.mtp_depth > 0) && pp > 1;
}
// Pipeline chunk -> virtual stage (the layer split's index): interleaved, chunk c of pipeline
// rank s runs virtual stage c*pp + s; DualPipeV's V, chunk 0 runs s and chunk 1 runs 2pp-1-s.
// DualPipe: chunk 0 runs stage min(r, pp-1-r) of its direction's model copy, chunk 1 stage
// pp-1-min(r, pp-1-r), out of pp virtual stages.
inline int virtual_stage(const ParallelSpec& par, int chunk, int stage) {
  if (v_schedule(par.schedule)) return chunk == 0 ? stage : 2 * par.pp - 1 - stage;
  if (par.schedule == Schedule::kDualPipe) {
    const int half = std::min(stage, par.pp - 1 - stage);
    return chunk == 0 ? half : par.pp - 1 - half;
  }
  return chunk * par.pp + stage;
}
// Virtual stages (entries of the layer split): pp * vp, or pp with DualPipe (two copies).
inline int num_virtual_stages(const ParallelSpec& par) {
  return par.schedule == Schedule::kDualPipe ? par.pp : par.pp * par.vp;
}
// Whether pipeline rank `stage` runs the last virtual stage (final norm, LM head, MTP): pp-1;
// 0 in a V; 0 and pp-1 with DualPipe (one copy each).
inline bool holds_head(const ParallelSpec& par, int stage) {
  if (v_schedule(par.schedule)) return stage == 0;
  if (par.schedule == Schedule::kDualPipe) return stage == 0 || stage == par.pp - 1;
  return stage == par.pp - 1;
}
// Whether the LM head's rank holds the embedding too (pp = 1, a V, DualPipe): a tied head then
// shares its weight and no embedding group is needed.
inline bool head_with_embedding(const ParallelSpec& par) { return par.pp == 1 || two_chunk_schedule(par.schedule); }
// has_embedding_group for a plan.
inline bool has_embedding_group(const ModelSpec& model, const ParallelSpec& par) {
  return !head_with_embedding(par) && has_embedding_group(model, par.pp);
}
// DualPipe only, appended after every other group: "pp-mirror", the two ranks (r and pp-1-r at
// equal tp, cp, dp) holding the same two stages, whose gradients are summed before the optimizer.
// tp_overlap only (tp > 1, SP), appended after "pp-mirror": "tp-ring", the TP group again for the
// overlap's ring steps on the TP stream, a copy-engine group (GroupTable::copy_engine).
// HSDP MoE plans only (fsdp_shard_group < dp), appended after every other group (the
// "dp-gather-tensor" group included): "expert-dp-replica", the expert replicas (see HSDP above).
constexpr uint8_t expert_replica_group(bool mla_grad, bool embedding, bool tensor_gather) {
  return static_cast<uint8_t>(10 + (mla_grad ? 1 : 0) + (embedding ? 1 : 0) + (tensor_gather ? 1 : 0));
}
// MoE plans with etp > 1 only, appended after every other group (the HSDP replica group
// included): "expert-tp", the expert-TP groups (folded: etp consecutive stage positions, equal
// ep and edp indices; EP along DP, where etp = tp: the TP group). Megatron-Core's alltoall
// dispatcher: each rank routes its own T/tp tokens over EP, then the expert-TP group all-gathers
// the rows its members received (the expert GEMMs run on all of them with 1/etp of each
// expert) and reduce-scatters the output before the combine (backward: all-gather of the output
// gradients, reduce-scatter of the input gradients), on the compute stream, as EP comm.
constexpr uint8_t expert_tp_group_index(bool mla_grad, bool embedding, bool tensor_gather, bool replica) {
  return static_cast<uint8_t>(expert_replica_group(mla_grad, embedding, tensor_gather) + (replica ? 1 : 0));
}
inline constexpr uint8_t kPeerNext = 0;
inline constexpr uint8_t kPeerPrev = 1;

struct StageInfo {
  int stage = 0;
  std::vector<int> layers;      // global layer indices on this pipeline rank (all its chunks)
  int64_t params_local = 0;     // elements after the TP/PP split, before ZeRO
};

// Routing figures of a MoE plan over all its MoE layers and micro-batches (models/moe.h).
struct MoeStats {
  int pods = 1;                 // dp / ep groups of ep pipelines that meet only at the step's end
                                // (folded EP: connected sets of EP blocks and TP x CP groups)
  int pods_drawn = 1;           // how many of them drew their own routing (at most 64)
  int slices = 1;               // token slices per pod, each routing its own tokens (models/moe.h)
  int straggler_pod = 0;        // the one the program is laid out with (most busiest-rank rows)
  double pod_spread = 1;        // its rows / the mean pod's (1 with balanced routing or one pod)
  int draws = 0;                // MoE layers x micro-batches
  double imbalance_mean = 0;    // mean over draws of busiest-rank rows / mean rows per rank
  double imbalance_max = 0;
  int64_t routed = 0;           // token copies, summed over draws (one EP group)
  int64_t dropped = 0;          // over capacity
  // Dynamic expert placement (MoeRoutingSpec::placement; models/moe.h): the static layout's
  // imbalance on the same draws, and what the placements move (summed over MoE layers).
  bool dynamic = false;
  double imbalance_static_mean = 0;
  double imbalance_static_max = 0;
  int experts_moved = 0;        // per step decision, over all MoE layers
  int experts_replicated = 0;
  int64_t migration_bytes = 0;  // per step per busiest rank, summed over MoE layers (amortized + replica sync)
  double dropped_fraction() const { return routed > 0 ? static_cast<double>(dropped) / routed : 0; }
};


// A task whose op differs under balanced MoE routing (compile_plan's `balanced_twins`): the
// op the same task has in the plan compiled with balanced routing (interned in the same plan).
struct OpTwin {
  uint32_t program = 0;
  uint32_t task = 0;
  uint32_t op = 0;
};

struct CompiledPlan {
  Plan plan;
  std::vector<StageInfo> stages;
  int micro_batches = 0;        // per DP replica per step
  MoeStats moe;                 // draws == 0 for dense models
  DocumentStats documents;
  // With `balanced_twins` (a MoE model with static placement and no activation offload): the
  // plan with balanced routing is this plan with these tasks' ops swapped in. Its tasks,
  // dependencies and streams are the same; only the routed expert work (expert GEMMs, their
  // activation functions, the dispatch/combine all-to-alls) is sized by the balanced rows.
  // Task memory stays that of this plan (it does not change when compute chains form). Empty
  // otherwise: `twins_ok` says whether the list is complete.
  std::vector<OpTwin> balanced_twins;
  bool twins_ok = false;
};

// The MoE rank-mapping checks (ParallelSpec::ep_layout, models/spec.h): EP along DP needs
// ep | dp and etp in {1, tp}; folded needs etp*ep | tp*cp*dp (an expert-TP group may span TP
// groups: its members' rows are gathered, see expert_tp_group_index). The error says which and
// what is accepted. REQUIRES: a MoE model.
Status check_expert_layout(const ParallelSpec& parallel);

// The routed experts' ZeRO shard group size (compiler.h HSDP): expert_dp_size() without HSDP;
// with fsdp_shard_group < dp, the expert-DP ranks inside one dense replica, edp / (dp /
// fsdp_shard_group), or an error (no JSON path; the loader adds it) when the expert-DP groups
// do not split evenly over the replicas. REQUIRES: a MoE model whose check_expert_layout passed.
Result<int> expert_shard_group(const ParallelSpec& parallel);

// REQUIRES: the specs passed scenario validation (scenarios/loader). Still returns an error
// rather than crash on inconsistent input (e.g. a layer split that does not add up).
// `balanced_twins`: also list the ops the plan would have with balanced routing
// (CompiledPlan::balanced_twins), where that is the only difference (see there).
Result<CompiledPlan> compile_plan(const ModelSpec& model, const TrainingSpec& training,
                                  const ParallelSpec& parallel, int gpus_per_node, bool balanced_twins = false);

// Layers per virtual stage (pp*vp entries, virtual stage v = chunk*pp + stage): the given
// layers_per_stage, or an even split whose remainder goes one each to the virtual stages after
// the first (the first stage also runs the embedding, the last the LM head).
Result<std::vector<int>> layer_split(int layers, int pp, int vp, const std::vector<int>& given);

}  // namespace trainsim
