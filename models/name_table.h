// File: models/name_table.h
// One table of (enum value, name) per enum, so that the printed name and the accepted name can
// never drift apart: name_of gives a value's name, parse_in reads a name back (ASCII
// case-insensitive). Used by the spec enums (models/spec.cpp) and the CLI's (scenarios/sweep.cpp).
// Thread-safety: pure functions over constant tables.
#pragma once
#include <array>
#include <cctype>
#include <cstddef>
#include <string_view>
#include <utility>

namespace trainsim {

template <typename E, size_t N>
using NameTable = std::array<std::pair<E, const char*>, N>;

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

// The name of `v`; "?" for a value outside the table (unreachable for a valid enum value).
template <typename E, size_t N>
const char* name_of(const NameTable<E, N>& t, E v) {
  for (const auto& [e, name] : t)
    if (e == v) return name;
  return "?";
}

// The value named `s` (any case) into *out; false, *out untouched, when no name matches.
template <typename E, size_t N>
bool parse_in(const NameTable<E, N>& t, std::string_view s, E* out) {
  for (const auto& [e, name] : t) {
    if (iequals(s, name)) {
      *out = e;
      return true;
    }
  }
  return false;
}

}  // namespace trainsim
