// Self-containment check: unio/buffer.hpp is the first include, so it must compile on its own.
#include "unio/buffer.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

TEST(unit_header, buffer) {
  unio::aligned_buffer b(1);
  EXPECT_EQ(b.size(), 1u);
}
