// Self-containment check: unio/task.hpp is the first include, so it must compile on its own.
#include "unio/task.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

TEST(unit_header, task) {
  unio::loop lp({.backend = "sync"});
  auto t = []() -> unio::task<int> { co_return 7; };
  EXPECT_EQ(unio::sync_wait(lp, t()), 7);
}
