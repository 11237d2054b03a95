// The threadpool backend's RWF_NOWAIT policy: tries every read while tries hit, thins them out
// after a window of misses, and comes back when the sampled tries hit again; it predicts device
// waits (the pool then grows) from the kernel's refusals only, never from slow tries.
#include "nowait_policy.hpp"

#include <gtest/gtest.h>

namespace {

using unio::detail::nowait_policy;

constexpr int k_fd = 5;
constexpr std::uint64_t k_fast_ns = 1'500;  // a 4 KiB page-cache copy

// Feeds `n` eligible 4 KiB reads on k_fd with the given outcome, all at time 0 (so the slow-fd
// memory is not cleared); returns how many were tried.
unsigned feed(nowait_policy& p, unsigned n, bool hit, std::uint64_t took_ns = k_fast_ns) {
  unsigned tried = 0;
  for (unsigned i = 0; i < n; ++i) {
    if (!p.should_try(k_fd, 0)) continue;
    ++tried;
    p.record(k_fd, hit, 4096, took_ns);
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
    ASSERT_TRUE(p.should_try(k_fd, 0));
    p.record(k_fd, i % 4 == 0, 4096, k_fast_ns);
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

namespace {

// An O_DIRECT read "hits" (it completes) but waited for the device: after k_slow_strikes such
// tries in a row its fd is not tried again until the memory is cleared, and other fds are not
// affected.
TEST(nowait_policy, slow_hits_in_a_row_stop_tries_on_that_fd_for_a_while) {
  nowait_policy p;
  for (unsigned i = 0; i + 1 < nowait_policy::k_slow_strikes; ++i) {
    ASSERT_TRUE(p.should_try(k_fd, 0));
    p.record(k_fd, true, 4096, 300'000);  // 300 us: a device read
  }
  ASSERT_TRUE(p.should_try(k_fd, 0)) << "stopped before k_slow_strikes slow tries";
  p.record(k_fd, true, 4096, 300'000);
  EXPECT_FALSE(p.should_try(k_fd, 1));
  EXPECT_TRUE(p.should_try(k_fd + 1, 1));
  EXPECT_FALSE(p.should_try(k_fd, nowait_policy::k_forget_ns / 2));
  EXPECT_TRUE(p.should_try(k_fd, nowait_policy::k_forget_ns + 1));
}

// A loop thread preempted during a try makes it slow now and then: a fast try in between resets
// the count, so the fd is still tried.
TEST(nowait_policy, slow_tries_that_are_not_in_a_row_do_not_stop_tries) {
  nowait_policy p;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(p.should_try(k_fd, 0)) << "try " << i;
    p.record(k_fd, true, 4096, i % 3 == 2 ? k_fast_ns : 300'000);
  }
  EXPECT_FALSE(p.cold());
}

// A refusal that took long did the readahead on the loop's thread: the fd is not tried again
// (no strikes needed), until the memory is cleared.
TEST(nowait_policy, a_slow_refusal_stops_tries_on_that_fd_at_once) {
  nowait_policy p;
  ASSERT_TRUE(p.should_try(k_fd, 0));
  p.record(k_fd, false, 4096, 300'000, true);
  EXPECT_FALSE(p.should_try(k_fd, 1));
  EXPECT_TRUE(p.should_try(k_fd + 1, 1));
  EXPECT_TRUE(p.should_try(k_fd, nowait_policy::k_forget_ns + 1));
}

// A large cached read may take long because it copies much: the allowance grows with its size.
TEST(nowait_policy, a_large_read_gets_time_for_its_copy) {
  nowait_policy p;
  ASSERT_TRUE(p.should_try(k_fd, 0));
  p.record(k_fd, true, 1 << 20, 200'000);  // 1 MiB in 200 us: a copy at 5 GB/s
  EXPECT_TRUE(p.should_try(k_fd, 1));
}

TEST(nowait_policy, predicts_waits_from_a_window_of_refusals_until_tries_hit_again) {
  nowait_policy p;
  EXPECT_FALSE(p.predicts_miss());
  for (unsigned i = 0; i < nowait_policy::k_window; ++i) p.record(k_fd, false, 4096, k_fast_ns, i % 4 != 0);
  EXPECT_TRUE(p.predicts_miss()) << "3 refusals in 4 tries";
  for (unsigned i = 0; i < nowait_policy::k_window; ++i) p.record(k_fd, true, 4096, k_fast_ns);
  EXPECT_FALSE(p.predicts_miss()) << "a window of hits";
}

TEST(nowait_policy, slow_tries_and_other_failures_predict_no_wait) {
  nowait_policy p;
  for (unsigned i = 0; i < nowait_policy::k_window; ++i) p.record(k_fd, true, 4096, 300'000);  // preempted
  EXPECT_TRUE(p.cold());
  EXPECT_FALSE(p.predicts_miss());
  for (unsigned i = 0; i < nowait_policy::k_window; ++i) p.record(k_fd, false, 4096, k_fast_ns, false);  // EOPNOTSUPP
  EXPECT_FALSE(p.predicts_miss());
  for (unsigned i = 0; i < nowait_policy::k_window; ++i) p.record(k_fd, false, 4096, k_fast_ns, i % 2 == 0);
  EXPECT_FALSE(p.predicts_miss()) << "1 refusal in 2 tries";
}

// With cachestat's answer: a warm policy never asks it; a cold one asks only for its samples,
// tries none whose pages are not cached (each counts as a refusal, so the policy stays cold and
// keeps predicting waits) and tries those that are (which can bring the tries back).
TEST(nowait_policy, cold_samples_are_tried_only_when_their_pages_are_cached) {
  nowait_policy p;
  unsigned asked = 0;
  auto answer = [&](int a) {
    return [&asked, a] {
      ++asked;
      return a;
    };
  };
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(p.should_try(k_fd, 0, 4096, answer(0)));
  EXPECT_EQ(asked, 0u) << "asked while warm";
  feed(p, nowait_policy::k_window, false);
  ASSERT_TRUE(p.cold());
  unsigned tried = 0;
  const unsigned reads = nowait_policy::k_window * nowait_policy::k_cold_sample * 2;
  for (unsigned i = 0; i < reads; ++i) tried += p.should_try(k_fd, 0, 4096, answer(0)) ? 1 : 0;
  EXPECT_EQ(tried, 0u);
  EXPECT_EQ(asked, reads / nowait_policy::k_cold_sample);
  EXPECT_TRUE(p.cold());
  EXPECT_TRUE(p.predicts_miss());
  asked = 0;
  for (unsigned i = 0; i < reads; ++i) {
    if (!p.should_try(k_fd, 0, 4096, answer(i % 2 == 0 ? 1 : -1))) continue;
    ++tried;
    p.record(k_fd, true, 4096, k_fast_ns);
  }
  EXPECT_GT(tried, 0u) << "cached (or unknown) samples were not tried";
  EXPECT_FALSE(p.cold()) << "a window of sampled hits brings the tries back";
}

}  // namespace
