// Closed-form tests of the memory model (models/memory.h): each test writes the sum by hand.
#include "models/memory.h"

#include <gtest/gtest.h>

#include <cmath>

namespace trainsim {
namespace {

// A GPT-style layer (Korthikanti et al. 2022 notation): h = 1024, a = 16, f = 4h.
ModelSpec gpt_small() {
  ModelSpec m;
  m.name = "gpt-test";
  m.layers = 24;
  m.hidden = 1024;
  m.heads = 16;
  m.kv_heads = 16;
  m.head_dim = 64;
  m.ffn_hidden = 4096;
  m.vocab = 51200;
  m.activation = Activation::kGelu;
  m.norm = NormKind::kLayerNorm;
  m.tied_embeddings = true;
  return m;
}

ModelSpec gpt3_175b() {
  ModelSpec m;
  m.name = "gpt3-175b";
  m.layers = 96;
  m.hidden = 12288;
  m.heads = 96;
  m.kv_heads = 96;
  m.head_dim = 128;
  m.ffn_hidden = 4 * 12288;
  m.vocab = 51200;
  m.activation = Activation::kGelu;
  m.norm = NormKind::kLayerNorm;
  m.tied_embeddings = true;
  return m;
}

ModelSpec llama3_8b() {
  ModelSpec m;
  m.name = "llama3-8b";
  m.layers = 32;
  m.hidden = 4096;
  m.heads = 32;
  m.kv_heads = 8;
  m.head_dim = 128;
  m.ffn_hidden = 14336;
  m.vocab = 128256;
  m.activation = Activation::kSwiglu;
  m.norm = NormKind::kRMSNorm;
  m.tied_embeddings = false;
  return m;
}

constexpr int64_t s = 2048, b = 2;

TEST(LayerActivation, GptNoDropoutTp1IsHandSum) {
  const ModelSpec m = gpt_small();
  const int64_t h = m.hidden, a = m.heads, f = m.ffn_hidden;
  // norm1 in 2sbh + QKV in 2sbh + Q,K,V 3*2sbh + O 2sbh + norm2 in 2sbh + FC1 in 2sbh
  // + GeLU in 2sbf + FC2 in 2sbf + log-sum-exp 4bas
  const int64_t expect = 2 * s * b * h * 8 + 2 * s * b * f * 2 + 4 * b * a * s;
  EXPECT_EQ(expect, 32 * s * b * h + 4 * b * a * s);  // f = 4h
  LayerActivation r = layer_activation(m, s, b, 1, false, Recompute::kNone, false);
  EXPECT_EQ(r.saved_bytes, expect);
  EXPECT_EQ(r.recompute_transient_bytes, 0);
}

TEST(LayerActivation, GptDropoutTp1IsKorthikantiMinusScoreTerm) {
  const ModelSpec m = gpt_small();
  const int64_t h = m.hidden, a = m.heads;
  // Korthikanti eq. 1: sbh(34 + 5as/h) bytes, whose 5as^2b is the score/softmax/dropout
  // term flash attention never stores; flash keeps 4bas bytes of fp32 statistics instead.
  // Breakdown of the 34: attention 2 (QKV in) + 4 (Q,K) + 2 (V) + 2 (out-proj in) + 1 (mask)
  // = 11; MLP 2 (FC1 in) + 8 (GeLU in) + 8 (FC2 in) + 1 (mask) = 19; two norm inputs 4.
  const int64_t korthikanti = s * b * h * 34 + 5 * a * s * s * b;
  const int64_t expect = korthikanti - 5 * a * s * s * b + 4 * b * a * s;
  EXPECT_EQ(layer_activation(m, s, b, 1, false, Recompute::kNone, true).saved_bytes, expect);
  // Selective recompute: Korthikanti's drops 5as^2b; flash never stored it, so what is left
  // to drop is only the log-sum-exp.
  EXPECT_EQ(layer_activation(m, s, b, 1, false, Recompute::kSelective, true).saved_bytes,
            s * b * h * 34);
}

TEST(LayerActivation, TensorParallelWithoutSpReplicatesTheTenTerm) {
  const ModelSpec m = gpt_small();
  const int64_t h = m.hidden, a = m.heads;
  for (int64_t t : {2, 4, 8}) {
    // Korthikanti eq. 2 without its score term: sbh(10 + 24/t) + 4bas/t.
    const int64_t expect = s * b * h * 10 + s * b * h * 24 / t + 4 * b * a * s / t;
    EXPECT_EQ(layer_activation(m, s, b, (int)t, false, Recompute::kNone, true).saved_bytes,
              expect) << "t=" << t;
  }
}

TEST(LayerActivation, SequenceParallelDividesEverythingByT) {
  const ModelSpec m = gpt_small();
  const int64_t h = m.hidden, a = m.heads;
  for (int64_t t : {1, 2, 4, 8}) {
    // Korthikanti eq. 4 without its score term: 34 sbh / t + 4bas/t.
    const int64_t expect = s * b * h * 34 / t + 4 * b * a * s / t;
    EXPECT_EQ(layer_activation(m, s, b, (int)t, true, Recompute::kNone, true).saved_bytes,
              expect) << "t=" << t;
    const LayerActivation none = layer_activation(m, s, b, (int)t, false, Recompute::kNone, true);
    const LayerActivation sp = layer_activation(m, s, b, (int)t, true, Recompute::kNone, true);
    if (t > 1) {
      EXPECT_LT(sp.saved_bytes, none.saved_bytes);
    }
  }
}

TEST(LayerActivation, FullRecomputeKeepsOnlyTheLayerInput) {
  const ModelSpec m = gpt_small();
  const int64_t h = m.hidden;
  for (int t : {1, 4}) {
    const LayerActivation none = layer_activation(m, s, b, t, false, Recompute::kNone, false);
    const LayerActivation full = layer_activation(m, s, b, t, false, Recompute::kFull, false);
    EXPECT_EQ(full.saved_bytes, 2 * s * b * h);                    // 2sbh, replicated
    EXPECT_EQ(full.recompute_transient_bytes, none.saved_bytes);   // one layer recomputed
    const LayerActivation full_sp = layer_activation(m, s, b, t, true, Recompute::kFull, false);
    EXPECT_EQ(full_sp.saved_bytes, 2 * s * b * h / t);             // 2sbh/t with SP
  }
}

TEST(LayerActivation, SelectiveDropsOnlyFlashStatistics) {
  const ModelSpec m = gpt_small();
  const int64_t a = m.heads, q = int64_t{m.heads} * m.head_dim;
  for (int t : {1, 2, 8}) {
    for (bool sp : {false, true}) {
      const LayerActivation none = layer_activation(m, s, b, t, sp, Recompute::kNone, false);
      const LayerActivation sel = layer_activation(m, s, b, t, sp, Recompute::kSelective, false);
      const int64_t lse = 4 * b * a * s / t;
      EXPECT_EQ(sel.saved_bytes, none.saved_bytes - lse);
      EXPECT_EQ(sel.recompute_transient_bytes, 2 * s * b * q / t + lse);
      // Within 1.5% of "none": with flash, selective recompute saves almost nothing.
      EXPECT_LT((double)(none.saved_bytes - sel.saved_bytes) / none.saved_bytes, 0.015);
    }
  }
}

TEST(LayerActivation, SwigluGqaIsHandSum) {
  const ModelSpec m = llama3_8b();
  const int64_t h = 4096, a = 32, q = 32 * 128, k = 8 * 128, f = 14336;
  const int64_t S = 8192, B = 1;
  for (int64_t t : {1, 2, 4, 8}) {
    for (bool sp : {false, true}) {
      // replicated: norm1 in, QKV in, norm2 in, FC1 in = 4 * 2sbh (no dropout)
      const int64_t repl = 4 * 2 * S * B * h;
      // split: Q 2sbq, K+V 2*2sbk, O 2sbq, gate+up 2*2sbf, FC2 in 2sbf
      const int64_t split = 2 * S * B * q + 4 * S * B * k + 2 * S * B * q + 4 * S * B * f +
                            2 * S * B * f;
      const int64_t expect = (sp ? repl / t : repl) + split / t + 4 * B * a * S / t;
      EXPECT_EQ(layer_activation(m, (int)S, (int)B, (int)t, sp, Recompute::kNone).saved_bytes,
                expect) << "t=" << t << " sp=" << sp;
    }
  }
}

TEST(LayerActivation, ScalesLinearlyWithMicroBatch) {
  const ModelSpec m = llama3_8b();
  const int64_t one = layer_activation(m, 4096, 1, 2, true, Recompute::kNone).saved_bytes;
  const int64_t four = layer_activation(m, 4096, 4, 2, true, Recompute::kNone).saved_bytes;
  EXPECT_EQ(four, 4 * one);
}

TEST(HeadAndEmbedding, ClosedForm) {
  const ModelSpec m = gpt_small();
  const int64_t h = m.hidden, V = m.vocab;
  // token ids 8sb; + dropout mask sbh (replicated without SP, /t with SP)
  EXPECT_EQ(embedding_activation_bytes(m, s, b, 4, false, false), 8 * s * b);
  EXPECT_EQ(embedding_activation_bytes(m, s, b, 4, false, true), 8 * s * b + s * b * h);
  EXPECT_EQ(embedding_activation_bytes(m, s, b, 4, true, true), 8 * s * b + s * b * h / 4);
  // final-norm in 2sbh + head in 2sbh + logits 2sbV/t + fp32 logits 4sbV/t + labels/loss 12sb
  EXPECT_EQ(head_activation_bytes(m, s, b, 1, false),
            4 * s * b * h + 6 * s * b * V + 12 * s * b);
  EXPECT_EQ(head_activation_bytes(m, s, b, 4, false),
            4 * s * b * h + 6 * s * b * V / 4 + 12 * s * b);
  EXPECT_EQ(head_activation_bytes(m, s, b, 4, true),
            4 * s * b * h / 4 + 6 * s * b * V / 4 + 12 * s * b);
}

TEST(Params, GptLayerIsTwelveHSquaredPlusBiases) {
  const ModelSpec m = gpt_small();
  const int64_t h = m.hidden;
  // 4h^2 attention + 8h^2 MLP; biases: qkv 3h + o h + fc1 4h + fc2 h = 9h; two LayerNorms 4h
  EXPECT_EQ(layer_params(m), 12 * h * h + 13 * h);
  EXPECT_EQ(embedding_params(m), int64_t{51200} * h);
}

TEST(Params, Llama3_8B) {
  const ModelSpec m = llama3_8b();
  // per layer: q 4096^2 + k,v 2*4096*1024 + o 4096^2 + MLP 3*4096*14336 + 2 RMSNorm 2*4096
  EXPECT_EQ(layer_params(m), 2 * 4096LL * 4096 + 2 * 4096LL * 1024 + 3 * 4096LL * 14336 + 8192);
  const double total = (double)total_params(m);
  EXPECT_NEAR(total / 8.03e9, 1.0, 0.005) << total;
}

TEST(Params, Gpt3_175B) {
  const double total = (double)total_params(gpt3_175b());
  EXPECT_NEAR(total / 174.6e9, 1.0, 0.01) << total;
}

TEST(Params, UntiedAddsTheHead) {
  ModelSpec m = gpt_small();
  const int64_t tied = total_params(m);
  m.tied_embeddings = false;
  EXPECT_EQ(total_params(m) - tied, int64_t{m.vocab} * m.hidden);
}

// A PyTorch loop (training.framework torch_*): fp32 parameters, m and v only in the optimizer;
// with whole parameters the gradients come during the backward (not static); FSDP keeps fp32
// shards beside its bf16 working copies.
TEST(StaticMemory, TorchLoopHoldsFp32ParametersAndNoStaticGradients) {
  const int64_t P = 1'000'000'000, L = 50'000'000, bucket = 40LL << 20;
  const int N = 8;
  MemoryStatic z0 = static_memory(P, L, 0, N, 1, bucket, true, 4, /*torch_loop=*/true);
  EXPECT_EQ(z0.params.count(), 4 * P);
  EXPECT_EQ(z0.grads.count(), 0);
  EXPECT_EQ(z0.optimizer.count(), 8 * P);
  MemoryStatic z1 = static_memory(P, L, 1, N, 1, bucket, true, 4, true);
  EXPECT_EQ(z1.grads.count(), 0);
  EXPECT_EQ(z1.optimizer.count(), 8 * P / N);
  MemoryStatic z2 = static_memory(P, L, 2, N, 1, bucket, true, 4, true);
  EXPECT_EQ(z2.params.count(), 4 * P / N + 2 * P);
  EXPECT_EQ(z2.grads.count(), 4 * P / N + bucket);
  MemoryStatic z3 = static_memory(P, L, 3, N, 1, bucket, true, 4, true);
  EXPECT_EQ(z3.params.count(), 4 * P / N + 2 * L * 2);
  EXPECT_EQ(z3.grads.count(), 4 * P / N + bucket);
  EXPECT_EQ(z3.optimizer.count(), 8 * P / N);
  EXPECT_EQ(static_memory(P, L, 3, N, 1, bucket, false, 4, true).params.count(), 4 * P / N + 2 * P);
}

TEST(StaticMemory, ZeroStages) {
  const int64_t P = 1'000'000'000;      // 1e9 params on this rank
  const int64_t L = 50'000'000;         // largest layer
  const int64_t bucket = 40LL << 20;    // 40 MiB
  const int N = 8;
  MemoryStatic z0 = static_memory(P, L, 0, N, 1, bucket);
  EXPECT_EQ(z0.params.count(), 2 * P);
  EXPECT_EQ(z0.grads.count(), 4 * P);
  EXPECT_EQ(z0.optimizer.count(), 12 * P);
  EXPECT_EQ(z0.workspace.count(), kFixedWorkspaceBytes);
  EXPECT_EQ(z0.total().count(), 18 * P + kFixedWorkspaceBytes);

  MemoryStatic z1 = static_memory(P, L, 1, N, 1, bucket);
  EXPECT_EQ(z1.params.count(), 2 * P);
  EXPECT_EQ(z1.grads.count(), 4 * P);
  EXPECT_EQ(z1.optimizer.count(), 12 * P / N);

  MemoryStatic z2 = static_memory(P, L, 2, N, 1, bucket);
  EXPECT_EQ(z2.params.count(), 2 * P);
  EXPECT_EQ(z2.grads.count(), 4 * P / N + bucket);
  EXPECT_EQ(z2.optimizer.count(), 12 * P / N);

  // ZeRO-3: params 2P/N + (prefetch + 1) gathered layers of 2L bytes each.
  MemoryStatic z3 = static_memory(P, L, 3, N, 1, bucket);
  EXPECT_EQ(z3.params.count(), 2 * P / N + 2 * L * 2);
  EXPECT_EQ(z3.grads.count(), 4 * P / N + bucket);
  EXPECT_EQ(z3.optimizer.count(), 12 * P / N);
  MemoryStatic z3p2 = static_memory(P, L, 3, N, 2, bucket);
  EXPECT_EQ(z3p2.params.count() - z3.params.count(), 2 * L);
  // Without resharding: all parameters stay gathered, gradients accumulate unsharded in fp32.
  MemoryStatic z3k = static_memory(P, L, 3, N, 1, bucket, /*zero3_reshard=*/false);
  EXPECT_EQ(z3k.params.count(), 2 * P / N + 2 * P);
  EXPECT_EQ(z3k.grads.count(), 4 * P / N + 4 * P);
  EXPECT_EQ(z3k.optimizer.count(), 12 * P / N);
  EXPECT_EQ(static_memory(P, L, 3, 1, 1, bucket, false).params.count(), 2 * P) << "one shard: nothing gathered";

  // ZeRO's headline (Rajbhandari et al. fig. 1, K = 12): stage 3 -> (2+2+K)/N per param,
  // here (2+4+12)/N plus the bucket and the gathered set.
  EXPECT_LT(z3.total().count(), z2.total().count());
  EXPECT_LT(z2.total().count(), z1.total().count());
  EXPECT_LT(z1.total().count(), z0.total().count());
}

TEST(StaticMemory, SmallRankBucketIsCapped) {
  MemoryStatic z2 = static_memory(1000, 100, 2, 4, 1, 40LL << 20);
  EXPECT_EQ(z2.grads.count(), 4000 / 4 + 4000);   // the bucket never exceeds all gradients
}

TEST(StaticMemory, ShardingRoundsUp) {
  MemoryStatic z1 = static_memory(10, 1, 1, 3, 1, 0);
  EXPECT_EQ(z1.optimizer.count(), 40);            // ceil(120 / 3)
  MemoryStatic z1b = static_memory(11, 1, 1, 3, 1, 0);
  EXPECT_EQ(z1b.optimizer.count(), 44);           // ceil(132 / 3)
}

TEST(StaticMemory, WorkspaceIsOnePointFiveGiB) {
  EXPECT_EQ(kFixedWorkspaceBytes, 1536LL << 20);
}

}  // namespace
}  // namespace trainsim
