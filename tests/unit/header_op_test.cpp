// Self-containment check: unio/op.hpp is the first include, so it must compile on its own.
#include "unio/op.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

TEST(unit_header, op) {
  unio::op o;
  EXPECT_FALSE(o.busy());
  EXPECT_STREQ(unio::to_string(unio::op_code::read), "read");
}
