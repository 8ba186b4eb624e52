#include "models/memory.h"

#include <algorithm>

#include "sim/check.h"

namespace trainsim {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int head_dim_of(const ModelSpec& m) { return m.head_dim > 0 ? m.head_dim : m.hidden / m.heads; }
int kv_heads_of(const ModelSpec& m) { return m.kv_heads > 0 ? m.kv_heads : m.heads; }
bool has_biases(const ModelSpec& m) { return m.activation == Activation::kGelu; }
int64_t norm_params(const ModelSpec& m) {
  return m.norm == NormKind::kLayerNorm ? 2 * int64_t{m.hidden} : int64_t{m.hidden};
}

void check_shape(const ModelSpec& m, int seq, int micro_batch, int tp) {
  SIM_CHECK(seq >= 1 && micro_batch >= 1 && tp >= 1, "memory model: seq=%d micro_batch=%d tp=%d",
            seq, micro_batch, tp);
  SIM_CHECK(m.hidden > 0 && m.heads > 0 && m.ffn_hidden > 0,
            "memory model: model '%s' has hidden=%d heads=%d ffn_hidden=%d", m.name.c_str(),
            m.hidden, m.heads, m.ffn_hidden);
}

}  // namespace

LayerActivation layer_activation(const ModelSpec& model, int seq, int micro_batch, int tp,
                                 bool sequence_parallel, Recompute recompute, bool dropout, bool fp8_inputs,
                                 uint32_t modules) {
  check_shape(model, seq, micro_batch, tp);
  const int64_t in = fp8_inputs ? 1 : 2;   // bytes an element of a saved linear-layer input
  const int64_t s = seq, b = micro_batch, h = model.hidden, t = tp, a = model.heads;
  const int64_t q = int64_t{model.heads} * head_dim_of(model);
  const int64_t k = int64_t{kv_heads_of(model)} * head_dim_of(model);
  const int64_t f = model.ffn_hidden;
  const int64_t sb = s * b;

  // Replicated without SP (the paper's "10" region), bytes summed before the split.
  int64_t repl = 0;
  repl += 2 * sb * h;             // input-norm input
  repl += in * sb * h;            // QKV GEMM input
  if (dropout) repl += sb * h;    // dropout mask after the out-projection
  repl += 2 * sb * h;             // post-attention-norm input
  repl += in * sb * h;            // FC1 input
  if (dropout) repl += sb * h;    // dropout mask after FC2

  // Always split by TP (heads / FFN columns), bytes summed before the split.
  int64_t split = 0;
  int64_t full = 0;               // MLA latents: on every TP rank, whole (see memory.h)
  int64_t o_bytes = 2 * sb * q;   // O = flash output = out-projection input
  int64_t latent_norm_out = 0;    // MLA: the q-norm and kv-norm outputs (full)
  int64_t qkv_bytes = 0;          // Q, K, V (split)
  if (model.mla) {
    const int64_t hq = int64_t{model.heads} * model.mla_qk_dim();
    const int64_t hv = int64_t{model.heads} * model.v_head_dim;
    if (model.q_lora_rank > 0) {
      full += 2 * sb * model.q_lora_rank;                          // q latent (q-norm input)
      latent_norm_out += in * sb * model.q_lora_rank;              // q-norm output (q up-proj input)
    }
    full += 2 * sb * (model.kv_lora_rank + model.qk_rope_head_dim);  // kv latent + shared rope key
    latent_norm_out += in * sb * model.kv_lora_rank;               // kv-norm output (kv up-proj input)
    full += latent_norm_out;
    qkv_bytes += 2 * sb * hq;     // Q (after RoPE)
    qkv_bytes += 2 * sb * hq;     // K (nope part from the up-projection + the shared rope key)
    qkv_bytes += 2 * sb * hv;     // V
    o_bytes = 2 * sb * hv;
  } else {
    qkv_bytes += 2 * sb * q;      // Q
    qkv_bytes += 2 * 2 * sb * k;  // K, V
  }
  split += qkv_bytes;
  split += o_bytes;               // O
  const int64_t mlp_bytes = (model.activation == Activation::kSwiglu ? 2 * 2 * sb * f    // gate and up
                                                                     : 2 * sb * f) +     // GeLU input
                            in * sb * f;                                                 // FC2 input
  split += mlp_bytes;
  const int64_t lse = ceil_div(4 * b * a * s, t);   // fp32 log-sum-exp, per local head

  const int64_t none = (sequence_parallel ? ceil_div(repl, t) : repl) + ceil_div(split, t) + full + lse;

  LayerActivation r;
  switch (recompute) {
    case Recompute::kNone:
      r.saved_bytes = none;
      r.recompute_transient_bytes = 0;
      break;
    case Recompute::kSelective: {
      if (modules & kRecomputeOp) {
        // torchtitan's op-level policy (models/spec.h kRecomputeOp; the loader keeps it to dense
        // SwiGLU blocks without MLA, tp 1, no dropout, bf16 inputs): kept are the block's input
        // and the outputs of wq, wv (the odd matmuls of wq wk wv wo w1 w3 w2), the attention core
        // (O and its log-sum-exp) and w1, w2; recomputed at the start of the backward are the
        // input norm's output, wk's output, the roped Q and K, wo's output, the residual sum,
        // the MLP norm's output, w3's output and the SwiGLU output.
        r.saved_bytes = 2 * sb * h + 2 * sb * q + 2 * sb * k + o_bytes + lse + 2 * sb * f + 2 * sb * h;
        r.recompute_transient_bytes = 2 * sb * h + 2 * sb * k + 2 * sb * (q + k) + 2 * sb * h + 2 * sb * h +
                                      2 * sb * h + 2 * sb * f + 2 * sb * f;
        break;
      }
      // Each module drops what it recomputes; its transient is that set, regenerated while the
      // layer's backward runs (all modules' sets counted together: an upper bound).
      int64_t dropped = 0, transient = 0;
      if (modules & kRecomputeCoreAttn) {
        dropped += lse;
        transient += ceil_div(o_bytes, t) + lse;
      }
      if (modules & kRecomputeLayernorm) {   // the QKV (down-projection) and FC1 inputs
        const int64_t norm_out = 2 * in * sb * h;
        const int64_t local = (sequence_parallel ? ceil_div(norm_out, t) : norm_out) + latent_norm_out;
        dropped += local;
        transient += local;
      }
      if ((modules & kRecomputeMlaUpProj) && model.mla) {
        dropped += ceil_div(qkv_bytes, t);
        transient += ceil_div(qkv_bytes, t);
      }
      if (modules & kRecomputeMlp) {
        dropped += ceil_div(mlp_bytes, t);
        transient += ceil_div(mlp_bytes, t);
      }
      r.saved_bytes = none - dropped;
      r.recompute_transient_bytes = transient;
      break;
    }
    case Recompute::kFull: {
      const int64_t input = 2 * sb * h;
      r.saved_bytes = sequence_parallel ? ceil_div(input, t) : input;
      r.recompute_transient_bytes = none;
      break;
    }
  }
  return r;
}

int64_t embedding_activation_bytes(const ModelSpec& model, int seq, int micro_batch, int tp,
                                   bool sequence_parallel, bool dropout) {
  check_shape(model, seq, micro_batch, tp);
  const int64_t sb = int64_t{seq} * micro_batch;
  int64_t bytes = 8 * sb;   // token ids (int64)
  if (dropout) {
    const int64_t mask = sb * model.hidden;
    bytes += sequence_parallel ? ceil_div(mask, tp) : mask;
  }
  return bytes;
}

int64_t head_activation_bytes(const ModelSpec& model, int seq, int micro_batch, int tp,
                              bool sequence_parallel) {
  check_shape(model, seq, micro_batch, tp);
  const int64_t sb = int64_t{seq} * micro_batch, h = model.hidden, v = model.vocab;
  int64_t repl = 2 * sb * h + 2 * sb * h;   // final-norm input, LM-head input
  int64_t bytes = sequence_parallel ? ceil_div(repl, tp) : repl;
  bytes += ceil_div(2 * sb * v, tp);        // bf16 logits
  bytes += ceil_div(4 * sb * v, tp);        // fp32 logits/softmax for the cross-entropy
  bytes += 12 * sb;                         // int64 labels + fp32 per-token loss
  return bytes;
}

LayerActivation moe_layer_activation(const ModelSpec& model, int seq, int micro_batch, int tp,
                                     bool sequence_parallel, Recompute recompute, bool dropout,
                                     int64_t tokens, int64_t rows, int etp, bool fp8_inputs,
                                     uint32_t modules) {
  const int64_t in = fp8_inputs ? 1 : 2;   // bytes an element of a saved linear-layer input
  // The dense layer with the MLP of ffn_hidden minus the same with the shared experts' width
  // gives the MLP terms to take out; computed with two evaluations so the conventions of
  // layer_activation() hold for everything but the routed experts.
  ModelSpec shared = model;
  const int64_t fs = int64_t{model.shared_experts} * model.expert_ffn_hidden;
  LayerActivation dense =
      layer_activation(model, seq, micro_batch, tp, sequence_parallel, Recompute::kNone, dropout, fp8_inputs);
  // MLP terms of the dense layer per ffn element (all /t): swiglu gate and up, gelu its input,
  // of 2 B, and the FC2 input.
  const int64_t sb = int64_t{seq} * micro_batch;
  const int64_t per_f = ((model.activation == Activation::kSwiglu ? 2 : 1) * 2 + in) * sb;
  int64_t none = dense.saved_bytes - ceil_div(per_f * model.ffn_hidden, tp) + ceil_div(per_f * fs, tp);
  const int64_t h = model.hidden, fe = model.expert_ffn_hidden / std::max(1, etp);
  none += 4 * tokens * model.experts;                                        // router logits
  none += in * rows * h;                                                      // dispatch buffer
  none += ((model.activation == Activation::kSwiglu ? 2 : 1) * 2 + in) * rows * fe;  // expert MLP
  none += 2 * tokens * model.top_k * h;                                       // combine input
  (void)shared;
  // "mlp" is a dense layer's MLP; a MoE layer has none (its shared experts are not recomputed).
  LayerActivation base = layer_activation(model, seq, micro_batch, tp, sequence_parallel, recompute, dropout,
                                          fp8_inputs, modules & ~uint32_t{kRecomputeMlp});
  LayerActivation r;
  switch (recompute) {
    case Recompute::kNone:
      r.saved_bytes = none;
      break;
    case Recompute::kSelective:
      r.saved_bytes = none - (dense.saved_bytes - base.saved_bytes);
      r.recompute_transient_bytes = base.recompute_transient_bytes;
      if (modules & kRecomputeMoeAct) {   // the expert FC2 input, rerun from the kept FC1 output
        r.saved_bytes -= in * rows * fe;
        r.recompute_transient_bytes += 2 * rows * fe;
      }
      break;
    case Recompute::kFull:
      r.saved_bytes = base.saved_bytes;
      r.recompute_transient_bytes = none;
      break;
  }
  return r;
}

int64_t expert_params(const ModelSpec& model) {
  const int64_t h = model.hidden, f = model.expert_ffn_hidden;
  if (model.activation == Activation::kSwiglu) return 3 * h * f;
  return 2 * h * f + (has_biases(model) ? f + h : 0);
}

int64_t layer_dense_params(const ModelSpec& model, int layer) {
  if (!model.is_moe_layer(layer)) return layer_params(model);
  const int64_t h = model.hidden, f = model.ffn_hidden;
  int64_t mlp = model.activation == Activation::kSwiglu ? 3 * h * f : 2 * h * f + (has_biases(model) ? f + h : 0);
  int64_t p = layer_params(model) - mlp;
  p += h * model.experts;                                  // router
  p += int64_t{model.shared_experts} * expert_params(model);
  return p;
}

int64_t layer_expert_params(const ModelSpec& model, int layer) {
  if (!model.is_moe_layer(layer)) return 0;
  return int64_t{model.experts} * expert_params(model);
}

int64_t active_params(const ModelSpec& model) {
  int64_t p = total_params(model);
  if (!model.is_moe()) return p;
  for (int l = 0; l < model.layers; ++l)
    p -= layer_expert_params(model, l) - int64_t{model.top_k} * expert_params(model) * (model.is_moe_layer(l) ? 1 : 0);
  return p;
}

int64_t mla_replicated_params(const ModelSpec& model) {
  if (!model.mla) return 0;
  const int64_t h = model.hidden;
  int64_t p = h * (model.kv_lora_rank + model.qk_rope_head_dim) + model.kv_lora_rank;   // kv down + kv norm
  if (model.q_lora_rank > 0) p += h * model.q_lora_rank + model.q_lora_rank;           // q down + q norm
  return p;
}

int64_t attention_params(const ModelSpec& model) {
  const int64_t h = model.hidden;
  if (model.mla) {
    const int64_t H = model.heads, qk = model.mla_qk_dim(), v = model.v_head_dim;
    int64_t p = mla_replicated_params(model);
    p += (model.q_lora_rank > 0 ? int64_t{model.q_lora_rank} : h) * H * qk;   // q up (or q) projection
    p += int64_t{model.kv_lora_rank} * H * (model.qk_nope_head_dim + v);     // kv up-projection
    p += H * v * h;                                                          // out-projection
    if (has_biases(model)) p += H * qk + H * (model.qk_nope_head_dim + v) + h;
    return p;
  }
  const int64_t q = int64_t{model.heads} * head_dim_of(model);
  const int64_t k = int64_t{kv_heads_of(model)} * head_dim_of(model);
  int64_t p = h * q + 2 * h * k + q * h;                 // Q, K, V, O
  if (has_biases(model)) p += q + 2 * k + h;
  return p;
}

int64_t layer_params_local(const ModelSpec& model, int layer, int tp) {
  const int64_t repl = mla_replicated_params(model);
  return repl + ceil_div(layer_dense_params(model, layer) - repl, tp);
}

int64_t layer_params(const ModelSpec& model) {
  const int64_t h = model.hidden, f = model.ffn_hidden;
  int64_t p = attention_params(model);
  if (model.activation == Activation::kSwiglu) {
    p += 3 * h * f;                                      // gate, up, down
  } else {
    p += 2 * h * f;                                      // fc1, fc2
    if (has_biases(model)) p += f + h;
  }
  p += 2 * norm_params(model);                           // two norms per layer
  return p;
}

namespace {

// The tensors of one layer before its MLP (norm, attention, norm), in forward order.
std::vector<int64_t> attention_tensors(const ModelSpec& model) {
  const int64_t h = model.hidden;
  const int64_t q = int64_t{model.heads} * head_dim_of(model);
  const int64_t k = int64_t{kv_heads_of(model)} * head_dim_of(model);
  const bool bias = has_biases(model);
  const bool ln = model.norm == NormKind::kLayerNorm;
  std::vector<int64_t> t;
  auto norm = [&] {
    t.push_back(h);            // weight
    if (ln) t.push_back(h);    // bias
  };
  norm();
  if (model.mla) {
    const int64_t H = model.heads, qk = model.mla_qk_dim(), v = model.v_head_dim;
    if (model.q_lora_rank > 0) {
      t.push_back(h * model.q_lora_rank);                  // q down-projection
      t.push_back(model.q_lora_rank);                      // q norm
      t.push_back(int64_t{model.q_lora_rank} * H * qk);    // q up-projection
    } else {
      t.push_back(h * H * qk);                             // q projection
    }
    if (bias) t.push_back(H * qk);
    t.push_back(h * (model.kv_lora_rank + model.qk_rope_head_dim));   // kv down-projection
    t.push_back(model.kv_lora_rank);                                  // kv norm
    t.push_back(int64_t{model.kv_lora_rank} * H * (model.qk_nope_head_dim + v));   // kv up-projection
    if (bias) t.push_back(H * (model.qk_nope_head_dim + v));
    t.push_back(H * v * h);                                // output projection
    if (bias) t.push_back(h);
  } else {
    t.push_back(h * (q + 2 * k));  // fused QKV weight
    if (bias) t.push_back(q + 2 * k);
    t.push_back(q * h);            // output projection
    if (bias) t.push_back(h);
  }
  norm();
  return t;
}

// Appends the tensors of an MLP of intermediate size f.
void push_mlp_tensors(const ModelSpec& model, int64_t f, std::vector<int64_t>& t) {
  const int64_t h = model.hidden;
  const bool bias = has_biases(model);
  if (model.activation == Activation::kSwiglu) {
    t.push_back(h * f);          // gate
    t.push_back(h * f);          // up
    t.push_back(f * h);          // down
  } else {
    t.push_back(h * f);          // fc1
    if (bias) t.push_back(f);
    t.push_back(f * h);          // fc2
    if (bias) t.push_back(h);
  }
}

}  // namespace

std::vector<int64_t> layer_param_tensors(const ModelSpec& model) {
  std::vector<int64_t> t = attention_tensors(model);
  push_mlp_tensors(model, model.ffn_hidden, t);
  return t;
}

std::vector<int64_t> moe_layer_dense_tensors(const ModelSpec& model) {
  std::vector<int64_t> t = attention_tensors(model);
  t.push_back(int64_t{model.hidden} * model.experts);   // router
  for (int i = 0; i < model.shared_experts; ++i) push_mlp_tensors(model, model.expert_ffn_hidden, t);
  return t;
}

std::vector<int64_t> expert_param_tensors(const ModelSpec& model) {
  std::vector<int64_t> t;
  push_mlp_tensors(model, model.expert_ffn_hidden, t);
  return t;
}

int64_t embedding_params(const ModelSpec& model) {
  return int64_t{model.vocab} * model.hidden;
}

int64_t total_params(const ModelSpec& model) {
  int64_t p = embedding_params(model);
  if (model.is_moe()) {
    for (int l = 0; l < model.layers; ++l) p += layer_dense_params(model, l) + layer_expert_params(model, l);
  } else {
    p += int64_t{model.layers} * layer_params(model);
  }
  if (!model.tied_embeddings) p += int64_t{model.vocab} * model.hidden;   // LM head
  p += norm_params(model);                                               // final norm
  return p;
}

int64_t mtp_front_params(const ModelSpec& model) {
  const int64_t h = model.hidden;
  return 2 * h * h + 2 * norm_params(model);
}

int64_t mtp_params(const ModelSpec& model) {
  if (model.mtp_depth <= 0) return 0;
  const int last = model.layers - 1;
  return int64_t{model.mtp_depth} *
         (layer_dense_params(model, last) + layer_expert_params(model, last) + mtp_front_params(model));
}

int64_t mtp_front_activation_bytes(const ModelSpec& model, int seq, int micro_batch, int tp,
                                   bool sequence_parallel) {
  check_shape(model, seq, micro_batch, tp);
  const int64_t sb = int64_t{seq} * micro_batch, h = model.hidden;
  const int64_t r = sequence_parallel ? tp : 1;   // "R": replicated without SP, /t with it
  return 8 * sb + ceil_div(2 * sb * h, r) + ceil_div(2 * sb * 2 * h, r);
}

MemoryStatic static_memory(int64_t params_local, int64_t largest_layer_params_local, int zero,
                           int shard_group, int zero3_prefetch, int64_t dp_bucket_bytes, bool zero3_reshard,
                           int grad_bytes, bool torch_loop) {
  SIM_CHECK(params_local >= 0 && largest_layer_params_local >= 0,
            "static_memory: params_local=%lld largest_layer=%lld", (long long)params_local,
            (long long)largest_layer_params_local);
  SIM_CHECK(zero >= 0 && zero <= 3, "static_memory: zero=%d", zero);
  SIM_CHECK(shard_group >= 1, "static_memory: shard_group=%d", shard_group);
  SIM_CHECK(grad_bytes == 2 || grad_bytes == 4, "static_memory: grad_bytes=%d", grad_bytes);
  SIM_CHECK(zero3_prefetch >= 0 && dp_bucket_bytes >= 0,
            "static_memory: zero3_prefetch=%d dp_bucket_bytes=%lld", zero3_prefetch,
            (long long)dp_bucket_bytes);
  const int64_t P = params_local, N = shard_group;
  const int64_t G = grad_bytes;
  // Resident parameter bytes (bf16 working weights; a PyTorch loop's fp32 parameters) and the
  // optimizer's (fp32 master + m + v; a PyTorch loop's m + v).
  const int64_t PB = torch_loop ? 4 : kBytesBf16Param;
  const int64_t OB = torch_loop ? 8 : kBytesAdamState;
  int64_t params = PB * P;
  int64_t grads = torch_loop && zero < 2 ? 0 : G * P;
  int64_t optimizer = OB * P;
  if (zero >= 1) optimizer = ceil_div(OB * P, N);
  if (zero >= 2) {
    grads = ceil_div(G * P, N) + std::min(dp_bucket_bytes, G * P);
    if (torch_loop) params = ceil_div(PB * P, N) + kBytesBf16Param * P;   // fp32 shards + bf16 working copies
  }
  if (zero >= 3 && N > 1) {   // with one shard nothing is gathered
    params = ceil_div(PB * P, N) + kBytesBf16Param * largest_layer_params_local * (int64_t{zero3_prefetch} + 1);
    if (!zero3_reshard) {   // every parameter stays gathered; gradients accumulate unsharded
      params = ceil_div(PB * P, N) + kBytesBf16Param * P;
      grads = ceil_div(G * P, N) + G * P;
    }
  }
  MemoryStatic m;
  m.params = Bytes{params};
  m.grads = Bytes{grads};
  m.optimizer = Bytes{optimizer};
  m.workspace = Bytes{kFixedWorkspaceBytes};
  return m;
}

}  // namespace trainsim
