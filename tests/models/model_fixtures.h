// Shared builders of the dense-model compiler suites (tests/models/compiler_test.cpp,
// mtp_test.cpp).
#pragma once
#include <cstdint>

#include "models/spec.h"

namespace trainsim::testing {

// A small MLA model: 2 layers, hidden 1024, 16 heads, SwiGLU, RMSNorm, q_lora 384 (0: an
// uncompressed query), kv_lora 128, qk 64+32, v 64.
inline ModelSpec small_mla(int q_lora = 384) {
  ModelSpec m;
  m.name = "mla-test";
  m.layers = 2;
  m.hidden = 1024;
  m.heads = 16;
  m.kv_heads = 16;
  m.ffn_hidden = 2816;
  m.vocab = 32000;
  m.activation = Activation::kSwiglu;
  m.norm = NormKind::kRMSNorm;
  m.mla = true;
  m.q_lora_rank = q_lora;
  m.kv_lora_rank = 128;
  m.qk_nope_head_dim = 64;
  m.qk_rope_head_dim = 32;
  m.v_head_dim = 64;
  m.head_dim = 96;
  return m;
}

// A small GPT-style model: hidden 1024, 16 heads, GeLU (ffn 4h), LayerNorm, untied.
inline ModelSpec small_gpt(int layers = 8) {
  ModelSpec m;
  m.name = "gpt-small-test";
  m.layers = layers;
  m.hidden = 1024;
  m.heads = 16;
  m.kv_heads = 16;
  m.head_dim = 64;
  m.ffn_hidden = 4096;
  m.vocab = 32000;
  m.activation = Activation::kGelu;
  m.norm = NormKind::kLayerNorm;
  m.tied_embeddings = false;
  return m;
}

// `micro_batches` micro-batches of `micro_batch` sequences per replica, bf16.
inline TrainingSpec training(int seq, int micro_batches, int dp, int micro_batch = 1) {
  TrainingSpec t;
  t.seq_len = seq;
  t.micro_batch = micro_batch;
  t.global_batch = static_cast<int64_t>(micro_batches) * dp * micro_batch;
  t.precision = DType::kBF16;
  return t;
}

}  // namespace trainsim::testing
