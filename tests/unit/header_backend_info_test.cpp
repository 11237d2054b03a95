// Self-containment check: unio/backend_info.hpp is the first include, so it must compile on its own.
#include "unio/backend_info.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

TEST(unit_header, backend_info) {
  unio::backend_info b;
  EXPECT_FALSE(b.available);
  EXPECT_EQ(b.native.size(), unio::op_code_count);
}
