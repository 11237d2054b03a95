// Self-containment check: unio/net.hpp is the first include, so it must compile on its own.
#include "unio/net.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

TEST(unit_header, net) {
  unio::endpoint ep;
  EXPECT_EQ(ep.port(), 0);
}
