// Self-containment check: unio/sync.hpp is the first include, so it must compile on its own.
#include "unio/sync.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

TEST(unit_header, sync) {
  unio::loop lp({.backend = "sync"});
  unio::semaphore sem(lp, 1);
  EXPECT_TRUE(sem.try_acquire());
  sem.release();
  unio::event ev(lp, true);
  EXPECT_TRUE(ev.is_set());
}
