// File: sim/dtype.h
// Numeric formats an op runs in. Lives in sim/ because op descriptors in the plan carry it;
// names and sizes are in models/spec.h (to_string, bytes_of).
#pragma once
#include <cstdint>

namespace trainsim {
enum class DType : uint8_t { kBF16, kFP16, kFP8, kFP32 };
}  // namespace trainsim
