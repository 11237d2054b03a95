// reap_pacer: a cap on completions per poll only while the loop has been sleeping for them.
#include "reap_pacer.hpp"

#include <gtest/gtest.h>

using unio::detail::reap_pacer;

TEST(reap_pacer, unlimited_until_a_poll_waits) {
  reap_pacer p;
  EXPECT_EQ(p.budget(), reap_pacer::k_unlimited);
  for (int i = 0; i < 100; ++i) p.polled(false);
  EXPECT_EQ(p.budget(), reap_pacer::k_unlimited) << "a loop never short of completions reaps them all";
}

TEST(reap_pacer, capped_for_a_window_after_a_wait) {
  reap_pacer p;
  p.polled(true);
  EXPECT_EQ(p.budget(), reap_pacer::k_batch);
  for (unsigned i = 1; i < reap_pacer::k_window; ++i) {
    p.polled(false);
    EXPECT_EQ(p.budget(), reap_pacer::k_batch) << "busy poll " << i;
  }
  p.polled(false);
  EXPECT_EQ(p.budget(), reap_pacer::k_unlimited) << "k_window busy polls in a row end the cap";
  p.polled(true);
  EXPECT_EQ(p.budget(), reap_pacer::k_batch) << "a new wait brings it back";
}
