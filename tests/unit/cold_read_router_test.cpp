// io_uring's cold-read router: an fd turns cold when 12 of 16 inline reads missed (not 11), a cold
// fd routes each read by cachestat's answer and turns warm when 12 of 16 answers were "cached",
// without cachestat it samples 1 read in 16 inline and turns warm on 3 hits of 4 samples; fds are
// independent, forgotten on request, and numbers past the table always go inline.
#include "backends/io_uring_cold_reads.hpp"

#include <gtest/gtest.h>

namespace {

using unio::detail::uring::cache_answer;
using unio::detail::uring::cold_read_router;
using unio::detail::uring::read_route;

constexpr int k_router_fd = 7;

// `reads` warm reads on `fd`, of which the first `misses` missed.
void learn(cold_read_router& r, int fd, unsigned reads, unsigned misses) {
  for (unsigned i = 0; i < reads; ++i) {
    ASSERT_EQ(r.pick(fd, cache_answer::unknown), read_route::inline_learn);
    r.learned(fd, i >= misses);
  }
}

TEST(cold_read_router, an_fd_starts_warm_and_every_read_teaches_it) {
  cold_read_router r;
  EXPECT_FALSE(r.cold(k_router_fd));
  learn(r, k_router_fd, 1000, 0);
  EXPECT_FALSE(r.cold(k_router_fd));
}

TEST(cold_read_router, twelve_misses_of_sixteen_turn_an_fd_cold_eleven_do_not) {
  cold_read_router r;
  learn(r, k_router_fd, 16, 11);
  EXPECT_FALSE(r.cold(k_router_fd));
  learn(r, k_router_fd, 15, 12);
  EXPECT_FALSE(r.cold(k_router_fd)) << "a verdict before the window is full";
  r.pick(k_router_fd, cache_answer::unknown);
  r.learned(k_router_fd, true);
  EXPECT_TRUE(r.cold(k_router_fd));
}

TEST(cold_read_router, a_cold_fd_follows_cachestat_read_by_read) {
  cold_read_router r;
  learn(r, k_router_fd, 16, 16);
  ASSERT_TRUE(r.cold(k_router_fd));
  EXPECT_EQ(r.pick(k_router_fd, cache_answer::not_cached), read_route::async);
  EXPECT_EQ(r.pick(k_router_fd, cache_answer::cached), read_route::inline_plain);
  // 2 answers so far (1 cached); 10 more cached and 4 not: 11 of 16 cached, still cold.
  for (int i = 0; i < 10; ++i) r.pick(k_router_fd, cache_answer::cached);
  for (int i = 0; i < 4; ++i) r.pick(k_router_fd, cache_answer::not_cached);
  EXPECT_TRUE(r.cold(k_router_fd));
  for (int i = 0; i < 12; ++i) r.pick(k_router_fd, cache_answer::cached);
  for (int i = 0; i < 4; ++i) r.pick(k_router_fd, cache_answer::not_cached);
  EXPECT_FALSE(r.cold(k_router_fd)) << "12 of 16 answers were cached";
  EXPECT_EQ(r.pick(k_router_fd, cache_answer::not_cached), read_route::inline_learn);
}

TEST(cold_read_router, without_cachestat_one_read_in_sixteen_is_a_sample) {
  cold_read_router r;
  learn(r, k_router_fd, 16, 16);
  ASSERT_TRUE(r.cold(k_router_fd));
  int samples = 0;
  for (int i = 0; i < 160; ++i) {
    read_route route = r.pick(k_router_fd, cache_answer::unknown);
    if (route == read_route::inline_learn) {
      ++samples;
      r.learned(k_router_fd, false);
    } else {
      EXPECT_EQ(route, read_route::async);
    }
  }
  EXPECT_EQ(samples, 10);
  EXPECT_TRUE(r.cold(k_router_fd));
}

TEST(cold_read_router, three_sample_hits_of_four_turn_it_warm_two_do_not) {
  cold_read_router r;
  learn(r, k_router_fd, 16, 16);
  auto sample = [&](bool hit) {
    while (r.pick(k_router_fd, cache_answer::unknown) != read_route::inline_learn) {
    }
    r.learned(k_router_fd, hit);
  };
  sample(true);
  sample(true);
  sample(false);
  sample(false);
  EXPECT_TRUE(r.cold(k_router_fd));
  sample(true);
  sample(false);
  sample(true);
  EXPECT_TRUE(r.cold(k_router_fd));
  sample(true);
  EXPECT_FALSE(r.cold(k_router_fd));
}

TEST(cold_read_router, fds_are_independent_and_forget_resets_one) {
  cold_read_router r;
  learn(r, k_router_fd, 16, 16);
  learn(r, k_router_fd + 1, 16, 0);
  EXPECT_TRUE(r.cold(k_router_fd));
  EXPECT_FALSE(r.cold(k_router_fd + 1));
  r.forget(k_router_fd);
  EXPECT_FALSE(r.cold(k_router_fd));
  EXPECT_EQ(r.pick(k_router_fd, cache_answer::not_cached), read_route::inline_learn);
  r.make_cold(k_router_fd + 1);
  EXPECT_TRUE(r.cold(k_router_fd + 1));
}

TEST(cold_read_router, fds_outside_the_table_always_go_inline_untracked) {
  cold_read_router r;
  for (int fd : {-1, cold_read_router::k_max_fd, cold_read_router::k_max_fd + 5}) {
    for (int i = 0; i < 32; ++i) {
      EXPECT_EQ(r.pick(fd, cache_answer::not_cached), read_route::inline_plain);
      r.learned(fd, false);
    }
    EXPECT_FALSE(r.cold(fd));
    r.make_cold(fd);
    EXPECT_FALSE(r.cold(fd));
  }
}

}  // namespace
