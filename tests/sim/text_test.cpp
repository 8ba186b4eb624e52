#include <gtest/gtest.h>

#include "sim/text.h"

namespace trainsim {
namespace {

TEST(Text, EditDistanceClosedForm) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("tp", "tpp"), 1u);       // one insertion
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
}

TEST(Text, ClosestMatchTypoThenPrefixThenNothing) {
  const std::vector<std::string> keys = {"tp", "pp", "dp", "schedule", "recompute"};
  EXPECT_EQ(closest_match("tpp", keys), "tp");
  EXPECT_EQ(closest_match("Schedul", keys), "schedule");   // case-insensitive
  EXPECT_EQ(closest_match("recomputation_mode", keys), "");  // too far, no prefix
  const std::vector<std::string> gpus = {"A100-SXM-80GB", "H100-SXM-80GB"};
  EXPECT_EQ(closest_match("h100", gpus), "H100-SXM-80GB");  // prefix fallback
}

// Brackets count outside strings only (an escaped quote does not end a string); the scan stops
// at the first level past the limit.
TEST(Text, JsonNestingDepthClosedForm) {
  EXPECT_EQ(json_nesting_depth("42", 64), 0);
  EXPECT_EQ(json_nesting_depth(R"({"a": [1, {"b": [2]}]})", 64), 4);
  EXPECT_EQ(json_nesting_depth(R"({"a": "[[[{{{"})", 64), 1);
  EXPECT_EQ(json_nesting_depth(R"({"a": "\"[[[", "b": [1]})", 64), 2);
  EXPECT_EQ(json_nesting_depth("[[][][]]", 64), 2);
  EXPECT_EQ(json_nesting_depth(std::string(1000000, '['), 64), 65);
  EXPECT_EQ(json_nesting_depth("]]]][", 64), 1);   // malformed: still a number
}

}  // namespace
}  // namespace trainsim
