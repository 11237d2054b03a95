// Self-containment check: unio/result.hpp is the first include, so it must compile on its own.
#include "unio/result.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

TEST(unit_header, result) {
  unio::result<int> r = 1;
  EXPECT_TRUE(r);
  unio::result<void> v = unio::errno_code(EIO);
  EXPECT_FALSE(v);
}
