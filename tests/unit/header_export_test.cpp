// Self-containment check: unio/export.hpp is the first include, so it must compile on its own.
#include "unio/export.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

TEST(unit_header, export) {
#ifndef UNIO_API
  FAIL() << "UNIO_API is not defined";
#endif
  SUCCEED();
}
