// sim/prefault.h is a speed hint only: a prefaulted vector keeps its size and contents, and
// its spare capacity is ordinary writable memory.
#include "sim/prefault.h"

#include <gtest/gtest.h>

#include <string>

#include <cstdint>
#include <vector>

namespace trainsim {
namespace {

TEST(Prefault, ReserveKeepsContentsAndGivesCapacity) {
  std::vector<uint64_t> v = {3, 1, 4, 1, 5};
  reserve_prefaulted(v, 1 << 20);   // 8 MiB: several calls' worth of pages
  ASSERT_EQ(v.size(), 5u);
  EXPECT_GE(v.capacity(), size_t{1} << 20);
  EXPECT_EQ(v, (std::vector<uint64_t>{3, 1, 4, 1, 5}));
  const uint64_t* data = v.data();
  for (uint64_t i = 0; i < (1 << 20) - 5; ++i) v.push_back(i);
  EXPECT_EQ(v.data(), data);   // no reallocation within the reserved capacity
  EXPECT_EQ(v[5 + 12345], 12345u);
}

TEST(Prefault, OddRangesAreHarmless) {
  std::vector<char> v(100, 'x');
  prefault(v.data(), 0);
  prefault(v.data() + 1, 50);   // less than a page
  reserve_prefaulted(v, 10);    // below the size: nothing to do
  EXPECT_EQ(std::string(v.begin(), v.end()), std::string(100, 'x'));
}

}  // namespace
}  // namespace trainsim
