// Self-containment check: unio/signal_set.hpp is the first include, so it must compile on its own.
#include "unio/signal_set.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

TEST(unit_header, signal_set) {
  unio::loop lp({.backend = "sync"});
  unio::signal_set s(lp, {});
  EXPECT_GE(s.fd(), 0);
  EXPECT_FALSE(s.contains(SIGUSR1));
}
