// Self-containment check: unio/timeout.hpp is the first include, so it must compile on its own.
#include "unio/timeout.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

#include <chrono>

#include "unio/task.hpp"

TEST(unit_header, timeout) {
  unio::loop lp({.backend = "sync"});
  auto t = [](unio::loop& lp) -> unio::task<bool> {
    auto r = co_await unio::with_timeout(lp, lp.async_nop(), std::chrono::hours(1));
    co_return r.has_value();
  };
  EXPECT_TRUE(unio::sync_wait(lp, t(lp)));
}
