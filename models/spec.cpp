// Names of the spec enums (models/spec.h) and their parsers (models/spec_parse.h): one
// NameTable (models/name_table.h) per enum.
#include <string>
#include <string_view>

#include "models/name_table.h"
#include "models/spec.h"
#include "models/spec_parse.h"

namespace trainsim {
namespace {

constexpr NameTable<DType, 4> kDTypes{{
    {DType::kBF16, "bf16"}, {DType::kFP16, "fp16"}, {DType::kFP8, "fp8"}, {DType::kFP32, "fp32"}}};
constexpr NameTable<Activation, 2> kActivations{{
    {Activation::kGelu, "gelu"}, {Activation::kSwiglu, "swiglu"}}};
constexpr NameTable<NormKind, 2> kNorms{{
    {NormKind::kLayerNorm, "layernorm"}, {NormKind::kRMSNorm, "rmsnorm"}}};
constexpr NameTable<Schedule, 6> kSchedules{{{Schedule::kGpipe, "gpipe"},
                                             {Schedule::k1F1B, "1f1b"},
                                             {Schedule::kInterleaved, "interleaved"},
                                             {Schedule::kDualPipeV, "dualpipev"},
                                             {Schedule::kZBV, "zbv"},
                                             {Schedule::kDualPipe, "dualpipe"}}};
constexpr NameTable<Recompute, 3> kRecomputes{{
    {Recompute::kNone, "none"}, {Recompute::kSelective, "selective"}, {Recompute::kFull, "full"}}};
constexpr NameTable<RecomputeModule, 6> kRecomputeModules{{{kRecomputeCoreAttn, "core_attn"},
                                                          {kRecomputeLayernorm, "layernorm"},
                                                          {kRecomputeMlaUpProj, "mla_up_proj"},
                                                          {kRecomputeMlp, "mlp"},
                                                          {kRecomputeMoeAct, "moe_act"},
                                                          {kRecomputeOp, "op"}}};
constexpr NameTable<ZeroGather, 2> kZeroGathers{{{ZeroGather::kLayer, "layer"}, {ZeroGather::kTensor, "tensor"}}};
constexpr NameTable<GradReduce, 4> kGradReduces{{
    {GradReduce::kAuto, "auto"}, {GradReduce::kBf16, "bf16"}, {GradReduce::kFp16, "fp16"}, {GradReduce::kFp32, "fp32"}}};
constexpr NameTable<EpLayout, 3> kEpLayouts{{{EpLayout::kAuto, "auto"}, {EpLayout::kDp, "dp"}, {EpLayout::kFolded, "folded"}}};
constexpr NameTable<AttentionKernel, 4> kAttentionKernels{{{AttentionKernel::kFlash, "flash"},
                                                          {AttentionKernel::kUnfused, "unfused"},
                                                          {AttentionKernel::kCudnn, "cudnn"},
                                                          {AttentionKernel::kFlash1, "flash1"}}};
constexpr NameTable<Framework, 3> kFrameworks{{
    {Framework::kFused, "fused"}, {Framework::kTorchCompile, "torch_compile"}, {Framework::kTorchEager, "torch_eager"}}};
constexpr NameTable<Fp8Recipe, 3> kFp8Recipes{{
    {Fp8Recipe::kCurrent, "current"}, {Fp8Recipe::kDelayed, "delayed"}, {Fp8Recipe::kBlockwise, "blockwise"}}};

}  // namespace

const char* to_string(DType v) { return name_of(kDTypes, v); }
const char* to_string(Activation v) { return name_of(kActivations, v); }
const char* to_string(NormKind v) { return name_of(kNorms, v); }
const char* to_string(Schedule v) { return name_of(kSchedules, v); }
const char* to_string(Recompute v) { return name_of(kRecomputes, v); }
const char* to_string(AttentionKernel v) { return name_of(kAttentionKernels, v); }
const char* to_string(Fp8Recipe v) { return name_of(kFp8Recipes, v); }
const char* to_string(Framework v) { return name_of(kFrameworks, v); }
const char* to_string(ZeroGather v) { return name_of(kZeroGathers, v); }
const char* to_string(GradReduce v) { return name_of(kGradReduces, v); }
const char* to_string(EpLayout v) { return name_of(kEpLayouts, v); }
const char* to_string(MoeRouting v) {
  switch (v) {
    case MoeRouting::kBalanced: return "balanced";
    case MoeRouting::kUniform: return "uniform";
    case MoeRouting::kZipf: return "zipf";
    case MoeRouting::kHistogram: return "histogram";
  }
  return "?";
}

const char* to_string(MoeDispatch v) { return v == MoeDispatch::kDedup ? "dedup" : "direct"; }

int bytes_of(DType d) {
  switch (d) {
    case DType::kBF16:
    case DType::kFP16:
      return 2;
    case DType::kFP8:
      return 1;
    case DType::kFP32:
      return 4;
  }
  return 2;  // unreachable
}

DType resolved_grad_reduce(GradReduce g, DType precision) {
  switch (g) {
    case GradReduce::kBf16: return DType::kBF16;
    case GradReduce::kFp16: return DType::kFP16;
    case GradReduce::kFp32: return DType::kFP32;
    case GradReduce::kAuto: break;
  }
  return precision == DType::kFP16 ? DType::kFP16 : DType::kFP32;
}

bool parse_dtype(std::string_view s, DType* out) { return parse_in(kDTypes, s, out); }
bool parse_activation(std::string_view s, Activation* out) { return parse_in(kActivations, s, out); }
bool parse_norm(std::string_view s, NormKind* out) { return parse_in(kNorms, s, out); }
bool parse_schedule(std::string_view s, Schedule* out) { return parse_in(kSchedules, s, out); }
bool parse_recompute(std::string_view s, Recompute* out) { return parse_in(kRecomputes, s, out); }
bool parse_attention_kernel(std::string_view s, AttentionKernel* out) { return parse_in(kAttentionKernels, s, out); }
bool parse_fp8_recipe(std::string_view s, Fp8Recipe* out) { return parse_in(kFp8Recipes, s, out); }
bool parse_framework(std::string_view s, Framework* out) { return parse_in(kFrameworks, s, out); }
bool parse_recompute_module(std::string_view s, RecomputeModule* out) { return parse_in(kRecomputeModules, s, out); }
std::string recompute_modules_string(uint32_t modules) {
  std::string out;
  for (const auto& [bit, name] : kRecomputeModules) {
    if ((modules & bit) == 0) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}
bool parse_zero_gather(std::string_view s, ZeroGather* out) { return parse_in(kZeroGathers, s, out); }
bool parse_grad_reduce(std::string_view s, GradReduce* out) { return parse_in(kGradReduces, s, out); }
bool parse_ep_layout(std::string_view s, EpLayout* out) { return parse_in(kEpLayouts, s, out); }

const char* dtype_choices() { return "\"bf16\", \"fp16\", \"fp8\" or \"fp32\""; }
const char* activation_choices() { return "\"gelu\" or \"swiglu\""; }
const char* norm_choices() { return "\"layernorm\" or \"rmsnorm\""; }
const char* schedule_choices() {
  return "\"gpipe\", \"1f1b\", \"interleaved\", \"dualpipev\", \"zbv\" or \"dualpipe\"";
}
const char* recompute_choices() { return "\"none\", \"selective\" or \"full\""; }
const char* recompute_module_choices() {
  return "\"core_attn\", \"layernorm\", \"mla_up_proj\", \"mlp\", \"moe_act\" or \"op\"";
}
const char* attention_kernel_choices() { return "\"flash\", \"cudnn\", \"flash1\" or \"unfused\""; }
const char* framework_choices() {
  return "\"fused\" (Megatron-LM, Megatron-Core, NeMo), \"torch_compile\" or \"torch_eager\" (a PyTorch loop under "
         "autocast, with or without torch.compile)";
}
const char* fp8_recipe_choices() { return "\"current\", \"delayed\" or \"blockwise\""; }
const char* grad_reduce_choices() {
  return "\"auto\" (fp32 for bf16 and fp8 training, fp16 for fp16), \"bf16\", \"fp16\" or \"fp32\"";
}
const char* zero_gather_choices() { return "\"layer\" (FSDP) or \"tensor\" (DeepSpeed ZeRO-3)"; }
const char* ep_layout_choices() {
  return "\"auto\" (EP along DP where it applies, else folded), \"dp\" (EP along DP) or \"folded\" (parallel folding)";
}

}  // namespace trainsim
