// Model catalog (models/catalog.h): lookups, aliases, the figures of a few well-known models.
#include <gtest/gtest.h>

#include "models/catalog.h"
#include "models/memory.h"

namespace trainsim {
namespace {

TEST(Catalog, NamesAndSources) {
  const auto names = model_names();
  EXPECT_EQ(names.size(), model_catalog().size());
  for (const char* n : {"gpt3-175b", "llama3-8b", "llama3-70b", "llama3-405b", "megatron-gpt-1.7b",
                        "megatron-gpt-3.6b", "megatron-gpt-7.5b", "megatron-gpt-18b",
                        "megatron-gpt-39b", "megatron-gpt-76b", "megatron-gpt-145b",
                        "megatron-gpt-310b", "megatron-gpt-530b", "megatron-gpt-1t",
                        "megatron-gpt-22b"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  }
  for (const auto& m : model_catalog()) {
    EXPECT_FALSE(m.source.empty()) << m.spec.name;
    EXPECT_GT(m.seq_len, 0) << m.spec.name;
    // Qwen3 and DeepSeek-V3 give head_dim explicitly (heads*head_dim != hidden).
    if (m.spec.name != "qwen3-235b-a22b" && m.spec.name != "deepseek-v3") {
      EXPECT_EQ(m.spec.head_dim * m.spec.heads, m.spec.hidden) << m.spec.name;
    }
    EXPECT_EQ(m.spec.heads % m.spec.kv_heads, 0) << m.spec.name;
    EXPECT_TRUE(m.spec.arch == "dense" || m.spec.arch == "moe") << m.spec.name;
    if (m.spec.arch == "moe") {
      EXPECT_GT(m.spec.experts, 0) << m.spec.name;
      EXPECT_LE(m.spec.top_k, m.spec.experts) << m.spec.name;
    }
  }
}

// Total and active parameters of the MoE entries against their published sizes (Mixtral: 46.7B
// total, 12.9B active; Qwen3-235B-A22B: 235B / 22B; DeepSeek-V3 with MLA: 671B / 37B, the
// technical report's figures without the multi-token-prediction module).
TEST(Catalog, MoeParameterCounts) {
  auto mx = find_model("mixtral-8x7b");
  ASSERT_TRUE(mx.ok());
  EXPECT_NEAR(total_params(mx.value()) * 1e-9, 46.7, 0.1);
  EXPECT_NEAR(active_params(mx.value()) * 1e-9, 12.9, 0.1);
  auto qw = find_model("qwen3-235b-a22b");
  ASSERT_TRUE(qw.ok());
  EXPECT_NEAR(total_params(qw.value()) * 1e-9, 235, 1.5);
  EXPECT_NEAR(active_params(qw.value()) * 1e-9, 22, 0.5);
  auto ds = find_model("deepseek-v3");
  ASSERT_TRUE(ds.ok());
  EXPECT_EQ(ds.value().dense_layers, 3);
  EXPECT_EQ(ds.value().shared_experts, 1);
  EXPECT_TRUE(ds.value().mla);
  EXPECT_NEAR(total_params(ds.value()) * 1e-9, 671, 3);
  EXPECT_NEAR(active_params(ds.value()) * 1e-9, 37, 1);
}

TEST(Catalog, Llama3) {
  auto m = find_model("llama3-8b");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->layers, 32);
  EXPECT_EQ(m->hidden, 4096);
  EXPECT_EQ(m->heads, 32);
  EXPECT_EQ(m->kv_heads, 8);
  EXPECT_EQ(m->ffn_hidden, 14336);
  EXPECT_EQ(m->vocab, 128256);
  EXPECT_EQ(m->activation, Activation::kSwiglu);
  EXPECT_EQ(m->norm, NormKind::kRMSNorm);
  EXPECT_FALSE(m->tied_embeddings);

  auto big = find_model("LLAMA-3.1-405B");  // case-insensitive alias
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->name, "llama3-405b");
  EXPECT_EQ(big->layers, 126);
  EXPECT_EQ(big->hidden, 16384);
  EXPECT_EQ(big->heads, 128);
  EXPECT_EQ(big->ffn_hidden, 53248);

  auto mid = find_model("Llama3-70B");
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(mid->layers, 80);
  EXPECT_EQ(mid->ffn_hidden, 28672);
}

TEST(Catalog, GptFamily) {
  auto g = find_model("gpt3-175b");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->layers, 96);
  EXPECT_EQ(g->hidden, 12288);
  EXPECT_EQ(g->ffn_hidden, 49152);
  EXPECT_EQ(g->vocab, 51200);
  EXPECT_EQ(g->activation, Activation::kGelu);
  EXPECT_EQ(g->norm, NormKind::kLayerNorm);

  struct Row { const char* name; int layers, hidden, heads; };
  for (const Row& r : {Row{"megatron-gpt-1.7b", 24, 2304, 24}, Row{"megatron-gpt-3.6b", 30, 3072, 32},
                       Row{"megatron-gpt-7.5b", 36, 4096, 32}, Row{"megatron-gpt-18b", 40, 6144, 48},
                       Row{"megatron-gpt-39b", 48, 8192, 64}, Row{"megatron-gpt-76b", 60, 10240, 80},
                       Row{"megatron-gpt-145b", 80, 12288, 96}, Row{"megatron-gpt-310b", 96, 16384, 128},
                       Row{"megatron-gpt-530b", 105, 20480, 128}, Row{"megatron-gpt-1t", 128, 25600, 160}}) {
    auto m = find_model(r.name);
    ASSERT_TRUE(m.ok()) << r.name;
    EXPECT_EQ(m->layers, r.layers) << r.name;
    EXPECT_EQ(m->hidden, r.hidden) << r.name;
    EXPECT_EQ(m->heads, r.heads) << r.name;
    EXPECT_EQ(m->ffn_hidden, 4 * r.hidden) << r.name;
    EXPECT_EQ(m->vocab, 51200) << r.name;
  }
  auto mt = find_model("mt-nlg-530b");
  ASSERT_TRUE(mt.ok());
  EXPECT_EQ(mt->name, "megatron-gpt-530b");
}

TEST(Catalog, UnknownNameListsKnownOnes) {
  auto m = find_model("llama3-7b");
  ASSERT_FALSE(m.ok());
  const std::string msg = m.status().errors()[0].message;
  EXPECT_NE(msg.find("unknown model"), std::string::npos);
  EXPECT_NE(msg.find("did you mean"), std::string::npos);
  EXPECT_NE(msg.find("gpt3-175b"), std::string::npos);
  EXPECT_NE(msg.find("megatron-gpt-1t"), std::string::npos);
  EXPECT_FALSE(find_model("").ok());
}

}  // namespace
}  // namespace trainsim
