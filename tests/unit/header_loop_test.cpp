// Self-containment check: unio/loop.hpp is the first include, so it must compile on its own.
#include "unio/loop.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

TEST(unit_header, loop) {
  unio::loop_options o;
  EXPECT_EQ(o.backend, "auto");
  unio::open_how how{};
  EXPECT_EQ(how.flags, 0);
}
