// Self-containment check: unio/unio.hpp is the first include, so it must compile on its own.
#include "unio/unio.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

TEST(unit_header, unio) {
  EXPECT_NE(unio::version_string, nullptr);
  unio::loop lp({.backend = "sync"});
  EXPECT_EQ(lp.backend_name(), "sync");
}
