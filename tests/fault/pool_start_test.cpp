// Description: the first op a backend delegates creates the loop's thread pool (an eventfd and
// threads). With the fd table full that creation fails; the op completes with EMFILE, exactly
// once, on every backend, instead of the error escaping poll() with the op still held (which
// aborted linux_aio, posix_aio and io_uring_delegate: "an op (open) was destroyed while still
// busy"). Once an fd is free, the next delegated op starts the pool and succeeds.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "conformance/backends.hpp"
#include "fault/child.hpp"
#include "unio/unio.hpp"

namespace {

using namespace unio::test;

class pool_start : public backend_test {};

// Fills the fd table up to a lowered RLIMIT_NOFILE; returns the fillers (empty on failure).
std::vector<int> fill_fd_table() {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  int probe = ::dup(0);
  if (probe < 0) return {};
  ::close(probe);
  rl.rlim_cur = static_cast<rlim_t>(probe + 4);
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) return {};
  std::vector<int> fillers;
  for (int fd; (fd = ::dup(0)) >= 0;) fillers.push_back(fd);
  return fillers;
}

unio::result<int> open_null(unio::loop& lp) {
  return unio::sync_wait(lp, [&]() -> unio::task<unio::result<int>> {
    co_return co_await lp.async_open(AT_FDCWD, "/dev/null", {.flags = O_RDONLY});
  }());
}

TEST_P(pool_start, first_delegated_op_with_a_full_fd_table_completes_with_emfile) {
  auto opts = options();
  auto res = run_in_child([&](std::string& msg) -> int {
    unio::loop lp(opts);
    std::vector<int> fillers = fill_fd_table();
    if (fillers.empty()) return report(msg, "could not fill the fd table", 1);
    auto fd = open_null(lp);
    if (fd || fd.error().value() != EMFILE)
      return report(msg, "open: expected EMFILE, got " + (fd ? std::string("an fd") : fd.error().message()), 2);
    for (int f : fillers) ::close(f);
    auto again = open_null(lp);
    if (!again) return report(msg, "open with free fds: " + again.error().message(), 3);
    ::close(*again);
    return 0;
  });
  EXPECT_CHILD_OK(res);
}

INSTANTIATE_ALL_BACKENDS(pool_start);

}  // namespace
