// Self-containment check: unio/dir.hpp is the first include, so it must compile on its own.
#include "unio/dir.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

TEST(unit_header, dir) {
  unio::dir_reader r;
  EXPECT_FALSE(r.is_open());
  unio::dir_entry e;
  EXPECT_EQ(e.ino, 0u);
}
