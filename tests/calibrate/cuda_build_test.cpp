// The calibrator's job-list reader (calibrate/cuda/job_file.h, header-only, no CUDA): the
// sample job list parses with the expected counts, every bad field is reported with its path,
// and the "op" objects written to measurement lines carry exactly the keys of their class.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "calibrate/cuda/gemm_layout.h"
#include "calibrate/cuda/job_file.h"

namespace {

TEST(CalibratorJobs, SampleParses) {
  tscal::JobFile jobs;
  std::vector<std::string> errors;
  ASSERT_TRUE(tscal::load_jobs(std::string(TRAINSIM_SOURCE_DIR) + "/calibrate/cuda/sample_jobs.json", &jobs, &errors))
      << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(jobs.warmup, 10);
  EXPECT_EQ(jobs.runs, 50);
  int gemm = 0, attn = 0;
  for (const auto& o : jobs.ops) { gemm += o.cls == "gemm"; attn += o.cls == "attention"; }
  EXPECT_EQ(gemm, 5);
  EXPECT_EQ(attn, 3);
  EXPECT_EQ(jobs.colls.size(), 7u);
}

TEST(CalibratorJobs, ReportsEveryBadFieldWithPath) {
  const std::string text = R"({"version": 1, "runs": 0, "ops": [
      {"class": "gemm", "dtype": "bf32", "m": 8, "n": -1, "k": 2.5, "batch": 1, "x": 1}],
      "collectives": [{"kind": "all-reduce", "dtype": "bf16", "bytes": 16, "group_size": 1}]})";
  tscal::JobFile jobs;
  std::vector<std::string> errors;
  EXPECT_FALSE(tscal::parse_jobs(text, "j.json", &jobs, &errors));
  auto has = [&](const std::string& s) {
    for (const auto& e : errors) if (e.find(s) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("j.json: /runs:"));
  EXPECT_TRUE(has("/ops/0/dtype"));
  EXPECT_TRUE(has("/ops/0/n"));
  EXPECT_TRUE(has("/ops/0/k"));
  EXPECT_TRUE(has("/ops/0/x: unknown key"));
  EXPECT_TRUE(has("/collectives/0/group_size"));
  EXPECT_EQ(errors.size(), 6u);
}

TEST(CalibratorJobs, OffloadNeedsADirection) {
  const std::string text = R"({"version": 1, "ops": [
      {"class": "offload", "name": "offload.activations.d2h", "bytes": 4096},
      {"class": "offload", "name": "offload.activations", "bytes": 4096}]})";
  tscal::JobFile jobs;
  std::vector<std::string> errors;
  EXPECT_FALSE(tscal::parse_jobs(text, "j.json", &jobs, &errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("/ops/1/name"), std::string::npos) << errors[0];
  EXPECT_TRUE(tscal::offload_to_host(jobs.ops[0]));
}

TEST(CalibratorJobs, MalformedJsonNamesLine) {
  tscal::JobFile jobs;
  std::vector<std::string> errors;
  EXPECT_FALSE(tscal::parse_jobs("{\"version\": 1,\n \"ops\": [}", "j.json", &jobs, &errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("line 2"), std::string::npos) << errors[0];
}

TEST(CalibratorJobs, OpObjectsCarryExactlyTheirClassKeys) {
  const std::string text = R"({"version": 1, "ops": [
      {"class": "gemm", "dtype": "fp8", "m": 16, "n": 32, "k": 64, "batch": 2},
      {"class": "attention", "dtype": "bf16", "batch": 1, "heads": 32, "kv_heads": 8, "seq_q": 128,
       "seq_kv": 256, "head_dim": 128, "causal": true, "backward": false},
      {"class": "norm", "name": "rms\"norm", "bytes": 1024},
      {"class": "offload", "name": "offload.activations.h2d", "bytes": 4096}]})";
  tscal::JobFile jobs;
  std::vector<std::string> errors;
  ASSERT_TRUE(tscal::parse_jobs(text, "j.json", &jobs, &errors));
  const auto in = nlohmann::json::parse(text);
  for (size_t i = 0; i < jobs.ops.size(); ++i) {
    const auto out = nlohmann::json::parse(tscal::op_json(jobs.ops[i]));
    EXPECT_EQ(out, in["ops"][i]) << tscal::op_json(jobs.ops[i]);
  }
  const auto c = nlohmann::json::parse(tscal::coll_json({"all-gather", "bf16", 1 << 20, 8, ""}, 8, 1));
  EXPECT_EQ(c["bytes"], 1 << 20);
  EXPECT_EQ(c["per_node"], 8);
}

}  // namespace

// The GEMM statement (calibrate/cuda/gemm_layout.h): aligned shapes keep TN (the layout the
// committed H100 lines were measured with); a ragged token count m (an MoE expert's) moves to
// C^T so that it is no leading dimension; a ragged reduction k (a weight gradient over an
// expert's tokens) to NT; fp8 never leaves the TN forms; every chosen leading dimension is
// aligned, or the form says it is not.
TEST(CalibratorGemmLayout, ChoosesAlignedLeadingDimensions) {
  using tscal::choose_gemm_form;
  auto f = choose_gemm_form(8192, 14336, 4096, 2, 2, false);
  EXPECT_STREQ(f.name, "TN");
  EXPECT_TRUE(f.aligned);
  f = choose_gemm_form(8289, 14336, 4096, 2, 2, false);   // forward of a busiest expert
  EXPECT_STREQ(f.name, "TN'");
  EXPECT_EQ(f.ldc, 14336);
  EXPECT_TRUE(f.swap);
  f = choose_gemm_form(4096, 14336, 8289, 2, 2, false);   // its weight gradient
  EXPECT_STREQ(f.name, "NT");
  EXPECT_EQ(f.lda, 4096);
  EXPECT_EQ(f.ldb, 14336);
  f = choose_gemm_form(4096, 8289, 14336, 2, 2, false);   // a ragged n: TN keeps it out of the leading dims
  EXPECT_TRUE(f.aligned);
  EXPECT_EQ(f.lda % 8, 0);
  EXPECT_EQ(f.ldb % 8, 0);
  EXPECT_EQ(f.ldc % 8, 0);
  f = choose_gemm_form(4096, 14336, 8289, 1, 2, true);    // fp8 with ragged k: no TN form aligns
  EXPECT_STREQ(f.name, "TN");
  EXPECT_FALSE(f.aligned);
  f = choose_gemm_form(8196, 14336, 4096, 1, 2, true);    // fp8 with a ragged m: C^T (bf16 out)
  EXPECT_STREQ(f.name, "TN'");
  EXPECT_TRUE(f.aligned);
  for (int64_t m : {1, 7, 8, 9, 16, 8289})
    for (int64_t n : {8, 14336, 13})
      for (int64_t k : {8, 4096, 8291}) {
        const auto g = choose_gemm_form(m, n, k, 2, 2, false);
        if (g.aligned) {
          EXPECT_EQ(g.lda % 8, 0) << m << " " << n << " " << k;
          EXPECT_EQ(g.ldb % 8, 0) << m << " " << n << " " << k;
          EXPECT_EQ(g.ldc % 8, 0) << m << " " << n << " " << k;
        }
        // the leading dimensions are the product's own dimensions
        for (int64_t ld : {g.lda, g.ldb, g.ldc}) EXPECT_TRUE(ld == m || ld == n || ld == k);
      }
}
