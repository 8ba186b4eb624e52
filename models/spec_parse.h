// File: models/spec_parse.h
// Parses the enum names of models/spec.h as they are written in scenario files ("bf16",
// "swiglu", "interleaved", ...). Matching is case-insensitive; to_string() (models/spec.h)
// gives the canonical spelling back, so parse(to_string(x)) == x for every value.
// Each parser returns false (and leaves *out untouched) for an unknown name; the matching
// *_choices() string lists the accepted names for an error message.
//
//   DType d;
//   if (!parse_dtype("BF16", &d)) { /* report: accepted: dtype_choices() */ }
//
// Thread-safety: pure functions.
#pragma once
#include <string>
#include <string_view>

#include "models/spec.h"

namespace trainsim {

bool parse_dtype(std::string_view s, DType* out);
bool parse_activation(std::string_view s, Activation* out);
bool parse_norm(std::string_view s, NormKind* out);
bool parse_schedule(std::string_view s, Schedule* out);
bool parse_recompute(std::string_view s, Recompute* out);
bool parse_attention_kernel(std::string_view s, AttentionKernel* out);
bool parse_fp8_recipe(std::string_view s, Fp8Recipe* out);
bool parse_framework(std::string_view s, Framework* out);
bool parse_recompute_module(std::string_view s, RecomputeModule* out);
// The names of the set bits, in table order, ", "-separated ("" for none).
std::string recompute_modules_string(uint32_t modules);
bool parse_zero_gather(std::string_view s, ZeroGather* out);
bool parse_grad_reduce(std::string_view s, GradReduce* out);
bool parse_ep_layout(std::string_view s, EpLayout* out);

// "\"bf16\", \"fp16\", \"fp8\" or \"fp32\"" and so on: ready for "accepted: ..." messages.
const char* dtype_choices();
const char* activation_choices();
const char* norm_choices();
const char* schedule_choices();
const char* recompute_choices();
const char* recompute_module_choices();
const char* attention_kernel_choices();
const char* fp8_recipe_choices();
const char* framework_choices();
const char* zero_gather_choices();
const char* grad_reduce_choices();
const char* ep_layout_choices();

}  // namespace trainsim
