// Self-containment check: unio/version.hpp is the first include, so it must compile on its own.
#include "unio/version.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

TEST(unit_header, version) {
  EXPECT_EQ(UNIO_VERSION_MAJOR, 0);
  EXPECT_STREQ(unio::version_string, "0.1.0");
}
