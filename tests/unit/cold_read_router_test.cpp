// io_uring's cold-read router: an fd turns cold when 4 of 16 inline reads missed (not 3); a cold
// fd sends its reads to the cold reader and samples one in 16 with cachestat (asked for nothing
// else), making a cached sample inline and turning warm on 15 cached samples of 16 (not 14); without
// cachestat the sample goes inline and its hit or miss counts the same way; fds are independent,
// forgotten on request, and numbers past the table always go inline.
#include "backends/io_uring_cold_reads.hpp"

#include <gtest/gtest.h>

#include <functional>

namespace {

using unio::detail::uring::cache_answer;
using unio::detail::uring::cold_read_router;
using unio::detail::uring::read_route;

constexpr int k_router_fd = 7;

// An answer function that counts how often it is asked.
struct answerer {
  cache_answer a;
  int asked = 0;
  cache_answer operator()() {
    ++asked;
    return a;
  }
};

// `reads` warm reads on `fd`, of which the first `misses` missed.
void learn(cold_read_router& r, int fd, unsigned reads, unsigned misses) {
  answerer never{cache_answer::unknown};
  for (unsigned i = 0; i < reads; ++i) {
    ASSERT_EQ(r.pick(fd, std::ref(never)), read_route::inline_learn);
    r.learned(fd, i >= misses);
  }
  ASSERT_EQ(never.asked, 0) << "cachestat asked for a warm fd";
}

// Reads on a cold fd until the next sample, which gets `a`; returns the sample's route.
read_route sample(cold_read_router& r, int fd, cache_answer a) {
  answerer ans{a};
  for (unsigned i = 0; i < cold_read_router::k_sample; ++i) {
    read_route route = r.pick(fd, std::ref(ans));
    if (ans.asked == 1) return route;
    EXPECT_EQ(route, read_route::async) << "a cold fd's read that is not a sample";
  }
  ADD_FAILURE() << "no sample in k_sample reads";
  return read_route::async;
}

TEST(cold_read_router, an_fd_starts_warm_and_every_read_teaches_it) {
  cold_read_router r;
  EXPECT_FALSE(r.cold(k_router_fd));
  learn(r, k_router_fd, 1000, 0);
  EXPECT_FALSE(r.cold(k_router_fd));
}

TEST(cold_read_router, four_misses_of_sixteen_turn_an_fd_cold_three_do_not) {
  cold_read_router r;
  learn(r, k_router_fd, 16, 3);
  EXPECT_FALSE(r.cold(k_router_fd));
  learn(r, k_router_fd, 15, 4);
  EXPECT_FALSE(r.cold(k_router_fd)) << "a verdict before the window is full";
  learn(r, k_router_fd, 1, 0);
  EXPECT_TRUE(r.cold(k_router_fd));
}

TEST(cold_read_router, a_cold_fd_asks_cachestat_only_for_one_read_in_sixteen) {
  cold_read_router r;
  learn(r, k_router_fd, 16, 16);
  ASSERT_TRUE(r.cold(k_router_fd));
  answerer ans{cache_answer::not_cached};
  int async = 0;
  for (unsigned i = 0; i < 10 * cold_read_router::k_sample; ++i)
    async += r.pick(k_router_fd, std::ref(ans)) == read_route::async ? 1 : 0;
  EXPECT_EQ(ans.asked, 10);
  EXPECT_EQ(async, static_cast<int>(10 * cold_read_router::k_sample));
  EXPECT_TRUE(r.cold(k_router_fd));
}

TEST(cold_read_router, cached_samples_go_inline_and_fifteen_of_sixteen_turn_it_warm) {
  cold_read_router r;
  learn(r, k_router_fd, 16, 16);
  EXPECT_EQ(sample(r, k_router_fd, cache_answer::cached), read_route::inline_plain);
  EXPECT_EQ(sample(r, k_router_fd, cache_answer::not_cached), read_route::async);
  for (int i = 0; i < 12; ++i) sample(r, k_router_fd, cache_answer::cached);
  sample(r, k_router_fd, cache_answer::not_cached);
  sample(r, k_router_fd, cache_answer::cached);
  EXPECT_TRUE(r.cold(k_router_fd)) << "14 cached samples of 16";
  for (int i = 0; i < 14; ++i) sample(r, k_router_fd, cache_answer::cached);
  sample(r, k_router_fd, cache_answer::not_cached);
  EXPECT_TRUE(r.cold(k_router_fd)) << "a verdict before the window is full";
  sample(r, k_router_fd, cache_answer::cached);
  EXPECT_FALSE(r.cold(k_router_fd)) << "15 cached samples of 16";
  answerer ans{cache_answer::not_cached};
  EXPECT_EQ(r.pick(k_router_fd, std::ref(ans)), read_route::inline_learn);
}

TEST(cold_read_router, without_cachestat_samples_go_inline_and_their_hits_count) {
  cold_read_router r;
  learn(r, k_router_fd, 16, 16);
  for (int i = 0; i < 16; ++i) {
    ASSERT_EQ(sample(r, k_router_fd, cache_answer::unknown), read_route::inline_learn);
    r.learned(k_router_fd, i != 0 && i != 1);
  }
  EXPECT_TRUE(r.cold(k_router_fd)) << "14 sampled hits of 16";
  for (int i = 0; i < 16; ++i) {
    sample(r, k_router_fd, cache_answer::unknown);
    r.learned(k_router_fd, i != 3);
  }
  EXPECT_FALSE(r.cold(k_router_fd)) << "15 sampled hits of 16";
}

TEST(cold_read_router, fds_are_independent_and_forget_resets_one) {
  cold_read_router r;
  learn(r, k_router_fd, 16, 16);
  learn(r, k_router_fd + 1, 16, 0);
  EXPECT_TRUE(r.cold(k_router_fd));
  EXPECT_FALSE(r.cold(k_router_fd + 1));
  r.forget(k_router_fd);
  EXPECT_FALSE(r.cold(k_router_fd));
  learn(r, k_router_fd, 1, 1);
  r.make_cold(k_router_fd + 1);
  EXPECT_TRUE(r.cold(k_router_fd + 1));
}

TEST(cold_read_router, fds_outside_the_table_always_go_inline_untracked) {
  cold_read_router r;
  for (int fd : {-1, cold_read_router::k_max_fd, cold_read_router::k_max_fd + 5}) {
    answerer ans{cache_answer::not_cached};
    for (int i = 0; i < 32; ++i) {
      EXPECT_EQ(r.pick(fd, std::ref(ans)), read_route::inline_plain);
      r.learned(fd, false);
    }
    EXPECT_EQ(ans.asked, 0);
    EXPECT_FALSE(r.cold(fd));
    r.make_cold(fd);
    EXPECT_FALSE(r.cold(fd));
  }
}

}  // namespace
