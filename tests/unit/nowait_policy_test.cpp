// The threadpool backend's RWF_NOWAIT policy: tries every read while tries hit, thins them out
// after a window of misses, and comes back when the sampled tries hit again.
#include "nowait_policy.hpp"

#include <gtest/gtest.h>

namespace {

using unio::detail::nowait_policy;

// Feeds `n` eligible reads with the given outcome; returns how many were tried.
unsigned feed(nowait_policy& p, unsigned n, bool hit) {
  unsigned tried = 0;
  for (unsigned i = 0; i < n; ++i) {
    if (!p.should_try()) continue;
    ++tried;
    p.record(hit);
  }
  return tried;
}

TEST(nowait_policy, tries_every_read_while_they_hit) {
  nowait_policy p;
  EXPECT_EQ(feed(p, 1000, true), 1000u);
  EXPECT_FALSE(p.cold());
}

TEST(nowait_policy, a_window_of_misses_thins_the_tries) {
  nowait_policy p;
  EXPECT_EQ(feed(p, nowait_policy::k_window, false), nowait_policy::k_window);
  EXPECT_TRUE(p.cold());
  unsigned n = nowait_policy::k_cold_sample * 32;
  EXPECT_EQ(feed(p, n, false), 32u);
}

TEST(nowait_policy, one_hit_in_four_keeps_trying_everything) {
  nowait_policy p;
  for (unsigned i = 0; i < nowait_policy::k_window * 4; ++i) {
    ASSERT_TRUE(p.should_try());
    p.record(i % 4 == 0);
  }
  EXPECT_FALSE(p.cold());
}

TEST(nowait_policy, sampled_hits_bring_the_tries_back) {
  nowait_policy p;
  feed(p, nowait_policy::k_window, false);
  ASSERT_TRUE(p.cold());
  // A full window of sampled tries that hit: k_window tries, one per k_cold_sample reads.
  unsigned tried = feed(p, nowait_policy::k_window * nowait_policy::k_cold_sample, true);
  EXPECT_EQ(tried, nowait_policy::k_window);
  EXPECT_FALSE(p.cold());
  EXPECT_EQ(feed(p, 100, true), 100u);
}

}  // namespace
