#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "unio/unio.hpp"

TEST(smoke, nop_and_read) {
  for (const char* b : {"sync", "threadpool", "auto"}) {
    unio::loop lp({.backend = b});
    unio::op o;
    int calls = 0;
    lp.nop(o, [&](unio::op& x) { ++calls; EXPECT_TRUE(x.ok()); });
    lp.run();
    EXPECT_EQ(calls, 1);
    int fd = ::open("/etc/hostname", O_RDONLY);
    char buf[64];
    auto r = unio::sync_wait(lp, [&]() -> unio::task<unio::result<std::size_t>> { co_return co_await lp.async_read(fd, buf, sizeof buf, 0); }());
    EXPECT_TRUE(r) << r.error().message();
    ::close(fd);
  }
}
