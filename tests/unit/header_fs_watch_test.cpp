// Self-containment check: unio/fs_watch.hpp is the first include, so it must compile on its own.
#include "unio/fs_watch.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

TEST(unit_header, fs_watch) {
  unio::fs_event e;
  EXPECT_TRUE(e.name.empty());
  EXPECT_STREQ(unio::to_string(unio::fs_event_kind::overflow), "overflow");
  EXPECT_NE(unio::fs_watch::k_changes & IN_CREATE, 0u);
}
