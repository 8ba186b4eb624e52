// File: reports/run_features.h
// What kind of training run a scenario is, in the few traits that decide how well trainsim's
// defaults are known to price it (GPU family, FSDP or not, which parallel axes are in use,
// precision, attention kernel, model size, GPU count, sequence length), and how far apart two
// runs are in those traits. `trainsim run --accuracy RUNS.jsonl` (reports/accuracy_context.h)
// uses it to find the published runs most like a scenario.
//
// Resemblance distance, lower = more alike (README "How sure is a prediction"):
//   4  the GPU family differs (ampere / hopper / blackwell)
//   3  one is a mixture of experts and the other is not
//   2  one shards parameters (zero 3 / FSDP) and the other does not
//   2  one uses context parallelism and the other does not
//   2  one runs unfused (pre-FlashAttention) attention and the other a fused kernel
//   2  each for the TP overlap and the EP all-to-all overlap, where one run has it and the other
//      not (the cross-checks' errors move by 8% to 40% with them)
//   2  one is a PyTorch loop (training.framework torch_compile / torch_eager) and the other runs
//      fused kernels (Megatron, NeMo); 1 where both are PyTorch loops, one eager, one compiled
//   1  each for TP in use, PP in use and fp8 GEMMs, where they differ
//   + 0.5 per doubling of total parameters, 0.25 per doubling of GPUs, 0.5 per doubling of
//     the sequence length between the two.
// The weights order the traits by how much they changed trainsim's validation errors (the
// source groups of ../shared/validation differ first by GPU generation and software stack);
// they rank rows, they price nothing.
// Thread-safety: pure functions.
#pragma once
#include <string>
#include <vector>

#include "scenarios/scenario.h"

namespace trainsim {

struct RunFeatures {
  std::string gpu;            // catalog name, e.g. "H100-SXM-80GB"
  std::string gpu_family;     // "ampere", "hopper", "blackwell"
  bool fsdp = false;          // parallel.zero == 3
  bool moe = false;
  bool tp = false, pp = false, cp = false;   // degree > 1
  bool fp8 = false;           // training.precision fp8
  bool unfused = false;       // training.attention_kernel "unfused"
  bool tp_overlap = false;    // parallel.tp_overlap
  bool ep_overlap = false;    // parallel.ep_overlap
  Framework framework = Framework::kFused;   // training.framework
  double params = 0;          // total parameters (models::total_params)
  int gpus = 0;
  int seq_len = 0;
};

RunFeatures features_of(const Scenario& s);

struct Resemblance {
  double distance = 0;
  // The traits that differ, as the row has them: "GPU family ampere", "no FSDP", "TP",
  // "params 70B", ... (size traits only where they differ by 2x or more).
  std::vector<std::string> differs;
};

// Symmetric in distance; `differs` describes `b` (the published run) against `a`.
Resemblance compare_features(const RunFeatures& a, const RunFeatures& b);

// "H100-SXM-80GB, 8.0B, 8 GPUs, FSDP, 8K" style one-line description.
std::string describe_run(const RunFeatures& f);

}  // namespace trainsim
