// Self-containment check: unio/process.hpp is the first include, so it must compile on its own.
#include "unio/process.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

TEST(unit_header, process) {
  unio::process p;
  EXPECT_EQ(p.pid(), -1);
  EXPECT_EQ(p.stdout_fd(), -1);
  unio::exit_status st;
  EXPECT_TRUE(st.success());
  unio::spawn_options o;
  EXPECT_EQ(o.stdout_mode, unio::stdio::inherit);
}
