// loop basics that need no I/O: keep_alive, post, and the names of the operations.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "unio/unio.hpp"

namespace {

TEST(unit_loop, run_returns_at_once_without_work) {
  for (const char* b : {"sync", "threadpool"}) {
    unio::loop lp({.backend = b});
    EXPECT_EQ(lp.backend_name(), b);
    lp.run();
    EXPECT_FALSE(lp.poll());
  }
}

// While a keep_alive exists run() waits for work from other threads; when the last copy is
// destroyed (here on another thread), run() returns, after running what was posted.
TEST(unit_loop, keep_alive_holds_run_until_released) {
  for (const char* b : {"sync", "threadpool"}) {
    unio::loop lp({.backend = b});
    std::atomic<bool> ran{false};
    std::atomic<bool> released{false};
    std::optional<unio::loop::keep_alive> mine(std::in_place, lp);
    std::optional<unio::loop::keep_alive> theirs(std::in_place, *mine);  // a copy counts too
    mine.reset();
    EXPECT_TRUE(lp.poll()) << "a live copy keeps the loop alive";
    std::thread t([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      lp.post([&] { ran = true; });
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      released = true;
      theirs.reset();  // the last one: wakes the loop
    });
    lp.run();
    t.join();
    EXPECT_TRUE(ran) << b;
    EXPECT_TRUE(released) << b;
    EXPECT_FALSE(lp.poll()) << b;
  }
}

TEST(unit_loop, to_string_names_every_op_code) {
  const char* const expected[] = {"nop",       "open",      "close",  "read",   "write", "readv",   "writev",
                                  "fsync",     "fdatasync", "fallocate", "ftruncate", "stat", "rename", "unlink",
                                  "mkdir",     "rmdir",     "accept", "connect", "recv", "send",   "timeout",
                                  "sendfile",  "symlink",   "link",   "readlink", "chmod", "fchmod", "chown",
                                  "fchown",    "lchown",    "utimens", "statfs", "fstatfs", "copy_file_range",
                                  "splice",    "access",    "mkdtemp", "mkstemp", "realpath", "work",
                                  "poll",      "sendto",    "recvfrom",  "sendmsg", "recvmsg"};
  static_assert(sizeof expected / sizeof expected[0] == unio::op_code_count);
  std::set<std::string> seen;
  for (std::size_t i = 0; i < unio::op_code_count; ++i) {
    auto c = static_cast<unio::op_code>(i);
    EXPECT_STREQ(unio::to_string(c), expected[i]) << i;
    seen.insert(unio::to_string(c));
  }
  EXPECT_EQ(seen.size(), unio::op_code_count);  // all distinct
  EXPECT_STREQ(unio::to_string(unio::op_code::count_), "invalid");
  EXPECT_STREQ(unio::to_string(static_cast<unio::op_code>(200)), "invalid");
}

}  // namespace

namespace {
// Work has no kernel form: the backends with a thread pool of their own (and sync, inline) list it
// as native, io_uring and the AIO backends as delegated.
TEST(unit_loop, work_is_delegated_by_backends_without_a_kernel_form) {
  for (const auto& b : unio::probe_backends()) {
    bool own = b.name == "sync" || b.name == "threadpool";
    EXPECT_EQ(b.native[static_cast<std::size_t>(unio::op_code::work)], own) << b.name;
  }
}
}  // namespace
