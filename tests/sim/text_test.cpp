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

}  // namespace
}  // namespace trainsim
