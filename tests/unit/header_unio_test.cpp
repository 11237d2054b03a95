// Self-containment check: unio/unio.hpp is the first include, so it must compile on its own.
#include "unio/unio.hpp"
// (the header above must stay first)
#include <gtest/gtest.h>

TEST(unit_header, unio) {
  EXPECT_NE(unio::version_string, nullptr);
  unio::loop lp({.backend = "sync"});
  EXPECT_EQ(lp.backend_name(), "sync");
}

namespace {
// README.md's coroutine example, unchanged: with unio/unio.hpp alone it must compile (AT_FDCWD and
// O_RDONLY come from <fcntl.h>, which unio.hpp brings).
unio::task<unio::result<std::size_t>> count_bytes(unio::loop& lp, const char* path) {
  auto fd = co_await lp.async_open(AT_FDCWD, path, {.flags = O_RDONLY});
  if (!fd) co_return fd.error();
  char buf[16384];
  std::size_t total = 0;
  for (;;) {
    auto n = co_await lp.async_read(*fd, buf, sizeof buf, total);
    if (!n || *n == 0) {
      (void)co_await lp.async_close(*fd);
      if (!n) co_return n.error();
      co_return total;
    }
    total += *n;
  }
}
}  // namespace

TEST(unit_header, unio_alone_compiles_the_readme_coroutine_example) {
  unio::loop lp({.backend = "sync"});
  auto n = unio::sync_wait(lp, count_bytes(lp, "/proc/self/cmdline"));
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_GT(*n, 0u);
  auto missing = unio::sync_wait(lp, count_bytes(lp, "/nonexistent/unio"));
  EXPECT_EQ(missing.error(), std::errc::no_such_file_or_directory);
}
