#include "reports/run_features.h"

#include <cmath>

#include "calibrate/cost_model.h"
#include "models/memory.h"
#include "reports/text_table.h"

namespace trainsim {

namespace {

// "8.0B", "175B", "560M": total parameters at a glance.
std::string params_text(double p) {
  if (p >= 1e11) return reports::strf("%.0fB", p / 1e9);
  if (p >= 1e9) return reports::strf("%.1fB", p / 1e9);
  return reports::strf("%.0fM", p / 1e6);
}

// "2K", "128K", "1M", "1000": a sequence length.
std::string seq_text(int s) {
  if (s >= (1 << 20) && s % (1 << 20) == 0) return std::to_string(s >> 20) + "M";
  if (s >= 1024 && s % 1024 == 0) return std::to_string(s >> 10) + "K";
  return std::to_string(s);
}

// |log2(a / b)|, 0 when either is not positive.
double doublings(double a, double b) {
  if (!(a > 0) || !(b > 0)) return 0;
  return std::fabs(std::log2(a / b));
}

}  // namespace

RunFeatures features_of(const Scenario& s) {
  RunFeatures f;
  f.gpu = s.cluster.gpu.name;
  f.gpu_family = gpu_family(s.cluster.gpu);
  f.fsdp = s.parallel.zero == 3;
  f.moe = s.model.is_moe();
  f.tp = s.parallel.tp > 1;
  f.pp = s.parallel.pp > 1;
  f.cp = s.parallel.cp > 1;
  f.fp8 = s.training.precision == DType::kFP8;
  f.unfused = s.training.attention_kernel == AttentionKernel::kUnfused;
  f.tp_overlap = s.parallel.tp_overlap;
  f.ep_overlap = s.parallel.ep_overlap;
  f.framework = s.training.framework;
  f.params = static_cast<double>(total_params(s.model));
  f.gpus = s.cluster.gpus;
  f.seq_len = s.training.seq_len;
  return f;
}

Resemblance compare_features(const RunFeatures& a, const RunFeatures& b) {
  Resemblance r;
  auto flag = [&](bool differ, double weight, const std::string& what) {
    if (!differ) return;
    r.distance += weight;
    r.differs.push_back(what);
  };
  flag(a.gpu_family != b.gpu_family, 4, "GPU family " + b.gpu_family);
  flag(a.moe != b.moe, 3, b.moe ? "MoE" : "dense");
  flag(a.fsdp != b.fsdp, 2, b.fsdp ? "FSDP" : "no FSDP");
  flag(a.cp != b.cp, 2, b.cp ? "CP" : "no CP");
  flag(a.unfused != b.unfused, 2, b.unfused ? "unfused attention" : "fused attention");
  const bool ta = torch_framework(a.framework), tb = torch_framework(b.framework);
  flag(ta != tb, 2, tb ? "PyTorch loop" : "fused kernels");
  flag(ta && tb && a.framework != b.framework, 1,
       b.framework == Framework::kTorchEager ? "eager" : "torch.compile");
  flag(a.tp_overlap != b.tp_overlap, 2, b.tp_overlap ? "TP overlap" : "no TP overlap");
  flag(a.ep_overlap != b.ep_overlap, 2, b.ep_overlap ? "EP overlap" : "no EP overlap");
  flag(a.tp != b.tp, 1, b.tp ? "TP" : "no TP");
  flag(a.pp != b.pp, 1, b.pp ? "PP" : "no PP");
  flag(a.fp8 != b.fp8, 1, b.fp8 ? "fp8" : "16-bit");
  const double dp = doublings(a.params, b.params);
  const double dg = doublings(a.gpus, b.gpus);
  const double ds = doublings(a.seq_len, b.seq_len);
  r.distance += 0.5 * dp + 0.25 * dg + 0.5 * ds;
  if (dp >= 1) r.differs.push_back("params " + params_text(b.params));
  if (dg >= 1) r.differs.push_back(std::to_string(b.gpus) + " GPUs");
  if (ds >= 1) r.differs.push_back("seq " + seq_text(b.seq_len));
  return r;
}

std::string describe_run(const RunFeatures& f) {
  std::string s = f.gpu + ", " + params_text(f.params) + (f.moe ? " MoE" : "") + ", " +
                  std::to_string(f.gpus) + " GPUs";
  std::string axes;
  if (f.fsdp) axes += "FSDP ";
  if (f.tp) axes += "TP ";
  if (f.pp) axes += "PP ";
  if (f.cp) axes += "CP ";
  if (axes.empty()) axes = "DP ";
  axes.pop_back();
  s += ", " + axes;
  if (f.fp8) s += ", fp8";
  if (f.unfused) s += ", unfused attn";
  if (f.tp_overlap) s += ", TP overlap";
  if (f.ep_overlap) s += ", EP overlap";
  if (f.framework == Framework::kTorchCompile) s += ", torch.compile";
  if (f.framework == Framework::kTorchEager) s += ", eager";
  return s + ", " + seq_text(f.seq_len);
}

}  // namespace trainsim
