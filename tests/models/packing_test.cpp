// Packed variable-length documents (models/packing.h): windows, masked attention pairs against
// brute force, and what the compiler and predict make of them.
#include "models/packing.h"

#include <gtest/gtest.h>

#include <random>

#include "models/compiler.h"
#include "models/ops.h"
#include "scenarios/loader.h"
#include "scenarios/predict.h"

namespace trainsim {
namespace {

DocumentSpec lognormal(double mean, double sigma, uint64_t seed = 7) {
  DocumentSpec d;
  d.kind = DocumentLengths::kLognormal;
  d.mean_tokens = mean;
  d.sigma = sigma;
  d.seed = seed;
  return d;
}

TEST(Packing, WindowsAreFullAndDocumentsCarryOver) {
  DocumentSpec d;
  d.kind = DocumentLengths::kFixed;
  d.mean_tokens = 3000;
  auto w = pack_windows(d, 4096, 3, 0);
  ASSERT_EQ(w.size(), 3u);
  // 3000 | 1096 ; 1904 + 2192 ; 808 + 3000 + 288
  EXPECT_EQ(w[0], (Window{3000, 1096}));
  EXPECT_EQ(w[1], (Window{1904, 2192}));
  EXPECT_EQ(w[2], (Window{808, 3000, 288}));
  auto a = pack_windows(lognormal(1000, 1.2), 8192, 50, 3);
  auto b = pack_windows(lognormal(1000, 1.2), 8192, 50, 3);
  auto c = pack_windows(lognormal(1000, 1.2, 8), 8192, 50, 3);
  auto e = pack_windows(lognormal(1000, 1.2), 8192, 50, 4);
  EXPECT_EQ(a, b);   // same seed, same replica: the same windows
  EXPECT_NE(a, c);   // another seed
  EXPECT_NE(a, e);   // another replica
  int64_t segments = 0;
  for (const Window& x : a) {
    int64_t sum = 0;
    for (int64_t t : x) {
      EXPECT_GE(t, 1);
      sum += t;
    }
    EXPECT_EQ(sum, 8192);
    segments += static_cast<int64_t>(x.size());
  }
  // 409,600 tokens of documents averaging 1000: about 410 documents (+ the splits at window
  // edges); lognormal sampling noise is far below the bounds.
  EXPECT_GT(segments, 300);
  EXPECT_LT(segments, 600);
}

// Brute force: every (q, k) with k <= q in the same document, q on `rank`'s chunks and k on
// the chunks of rank - step.
int64_t brute_pairs(const Window& w, int cp, int rank, int step, bool zigzag) {
  int64_t seq = 0;
  for (int64_t x : w) seq += x;
  std::vector<int> doc(seq), owner(seq);
  int64_t pos = 0;
  for (size_t i = 0; i < w.size(); ++i)
    for (int64_t t = 0; t < w[i]; ++t) doc[pos++] = static_cast<int>(i);
  const int n = zigzag ? 2 * cp : cp;
  const int64_t c = seq / n;
  for (int64_t t = 0; t < seq; ++t) {
    const int chunk = static_cast<int>(t / c);
    owner[t] = zigzag ? (chunk < cp ? chunk : 2 * cp - 1 - chunk) : chunk;
  }
  const int kv_rank = ((rank - step) % cp + cp) % cp;
  int64_t pairs = 0;
  for (int64_t q = 0; q < seq; ++q) {
    if (owner[q] != rank) continue;
    for (int64_t k = 0; k <= q; ++k)
      if (owner[k] == kv_rank && doc[k] == doc[q]) ++pairs;
  }
  return pairs;
}

TEST(Packing, MaskedRingPairsMatchBruteForce) {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 40; ++trial) {
    const int cp = 1 << (rng() % 3);   // 1, 2, 4
    const bool zigzag = rng() % 2;
    const int64_t seq = 64 * (zigzag ? 2 * cp : cp);
    Window w;
    int64_t left = seq;
    while (left > 0) {
      const int64_t x = std::min<int64_t>(left, 1 + rng() % 90);
      w.push_back(x);
      left -= x;
    }
    int64_t total = 0;
    for (int r = 0; r < cp; ++r)
      for (int j = 0; j < cp; ++j) {
        const int64_t got = cp_masked_pairs(w, cp, r, j, zigzag);
        EXPECT_EQ(got, brute_pairs(w, cp, r, j, zigzag)) << "trial " << trial << " r=" << r << " j=" << j;
        total += got;
      }
    EXPECT_EQ(total, masked_causal_pairs(w)) << "trial " << trial;
  }
  EXPECT_EQ(masked_causal_pairs(Window{3, 4}), 6 + 10);
}

Scenario scenario(const std::vector<std::string>& extra) {
  const std::string text = R"({
    "name": "docs",
    "model": {"name": "llama3-8b"},
    "training": {"seq_len": 65536, "global_batch": 8, "micro_batch": 1, "precision": "bf16"},
    "cluster": {"gpu": "H100-SXM-80GB", "gpus": 16, "gpus_per_node": 8},
    "parallel": {"tp": 1, "pp": 1, "cp": 4, "dp": 4, "zero": 1, "recompute": "full"}
  })";
  auto s = load_scenario_text(text, "docs.json", extra);
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return s.ok() ? s.value() : Scenario{};
}

// One document per window (fixed length = seq_len): the same attention work as without
// documents, no imbalance, no cost.
TEST(Packing, OneDocumentPerWindowChangesNothing) {
  auto a = predict(scenario({}), PredictOptions{});
  auto b = predict(scenario({"documents.lengths=fixed", "documents.mean_tokens=65536"}), PredictOptions{});
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(b->documents.present);
  EXPECT_DOUBLE_EQ(b->documents.dp_imbalance, 1.0);
  EXPECT_EQ(b->documents.imbalance_cost.count_ps(), 0);
  // Ring steps are priced from exact pair counts here, from the causal-block convention
  // without documents (a block of c(2c+1) pairs vs 2c^2): within 0.1% of the step.
  EXPECT_NEAR(b->step_time.seconds(), a->step_time.seconds(), 1e-3 * a->step_time.seconds());
}

// Short documents: far less attention work than the unmasked window; replicas and ring ranks
// unequal; Ulysses keeps its ranks even. Deterministic for a seed.
TEST(Packing, ShortDocumentsCutAttentionAndUnbalanceRanks) {
  const std::vector<std::string> docs = {"documents.lengths=lognormal", "documents.mean_tokens=2048",
                                         "documents.sigma=1.5"};
  auto plain = predict(scenario({}), PredictOptions{});
  auto ring = predict(scenario(docs), PredictOptions{});
  ASSERT_TRUE(plain.ok() && ring.ok());
  const DocumentReport& d = ring->documents;
  EXPECT_LT(d.attention_fraction, 0.5);
  EXPECT_GT(d.dp_imbalance, 1.0);
  EXPECT_GT(d.cp_imbalance, 1.0);
  EXPECT_GT(d.imbalance_cost.count_ps(), 0);
  EXPECT_LT(ring->step_time, plain->step_time);
  auto again = predict(scenario(docs), PredictOptions{});
  EXPECT_EQ(again->fingerprint, ring->fingerprint);
  std::vector<std::string> ul = docs;
  ul.push_back("parallel.cp_ulysses=4");
  auto u = predict(scenario(ul), PredictOptions{});
  ASSERT_TRUE(u.ok()) << u.status().to_string();
  EXPECT_DOUBLE_EQ(u->documents.cp_imbalance, 1.0);
  EXPECT_DOUBLE_EQ(u->documents.dp_imbalance, d.dp_imbalance);   // same windows, same straggler
}

TEST(Packing, BadDocumentSectionsAreClearErrors) {
  const std::string base = R"({"name": "d", "model": {"name": "llama3-8b"},
    "training": {"seq_len": 8192, "global_batch": 8}, "cluster": {"gpu": "H100-SXM-80GB", "gpus": 8},
    "parallel": {"dp": 8}, "documents": )";
  auto err = [&](const std::string& sec) {
    auto r = load_scenario_text(base + sec + "}", "d.json", {});
    return r.ok() ? std::string() : r.status().to_string();
  };
  EXPECT_NE(err(R"({"lengths": "zipf", "mean_tokens": 10})").find("/documents/lengths"), std::string::npos);
  EXPECT_NE(err(R"({"lengths": "zipf", "mean_tokens": 10})").find("\"lognormal\""), std::string::npos);
  EXPECT_NE(err(R"({"lengths": "lognormal", "mean_tokens": 1000})").find("/documents/sigma"), std::string::npos);
  EXPECT_NE(err(R"({"lengths": "fixed"})").find("/documents/mean_tokens"), std::string::npos);
  EXPECT_NE(err(R"({"lengths": "fixed", "mean_tokens": 0})").find("too small"), std::string::npos);
  EXPECT_NE(err(R"({"lengths": "fixed", "mean_tokens": 10, "colour": 1})").find("/documents/colour"), std::string::npos);
  EXPECT_EQ(err(R"({"lengths": "fixed", "mean_tokens": 1000})"), "");
}

}  // namespace
}  // namespace trainsim
