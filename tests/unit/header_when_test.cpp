// Self-containment check: unio/when.hpp is the first include, so it must compile on its own.
#include "unio/when.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

TEST(unit_header, when) {
  unio::loop lp({.backend = "sync"});
  auto t = [](int v) -> unio::task<int> { co_return v; };
  auto [a, b] = unio::sync_wait(lp, unio::when_all(t(1), t(2)));
  EXPECT_EQ(a + b, 3);
  EXPECT_EQ(unio::sync_wait(lp, unio::when_any(t(4), t(5))).index, 0u);
}
