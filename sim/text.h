// File: sim/text.h
// Small text helpers for error messages: "did you mean" suggestions. Pure functions.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace trainsim {

std::string to_lower(std::string s);
// Whether `s` contains `sub`.
bool contains(std::string_view s, std::string_view sub);
// `s` without leading and trailing whitespace.
std::string trim(std::string_view s);
// Levenshtein distance (insert, delete, substitute: 1 each).
size_t edit_distance(const std::string& a, const std::string& b);
// The candidate closest to `key` (case-insensitive) when it is close enough to be a plausible
// typo (distance <= max(2, |key|/3)); else the first candidate that starts with `key`
// ("h100" -> "H100-SXM-80GB"); else "".
std::string closest_match(const std::string& key, const std::vector<std::string>& candidates);

// The deepest nesting of JSON objects and arrays in `text` (brackets inside strings, escapes
// included, do not count), scanning no further than the first point deeper than `limit`
// (which it then returns, limit + 1). A lexical scan, not a parser: malformed text still gets a
// number. The JSON library parses deep documents iteratively but copies them recursively, one
// stack frame per level, so a file nested tens of thousands of levels deep would overflow the
// stack: readers of user files refuse depths above kMaxJsonDepth before parsing.
int json_nesting_depth(std::string_view text, int limit);
inline constexpr int kMaxJsonDepth = 64;
// Whether `text` nests deeper than kMaxJsonDepth, and the message a reader gives then (`what`
// names the document: "a scenario", "a run", ...).
inline bool json_too_deep(std::string_view text) { return json_nesting_depth(text, kMaxJsonDepth) > kMaxJsonDepth; }
std::string json_too_deep_message(const std::string& what);

}  // namespace trainsim
