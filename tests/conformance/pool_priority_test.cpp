// Description: loop_options::pool_nice: the pool's workers run that many nice steps below the
// loop's thread (seen by opening /proc/thread-self/stat through the loop: the thread that runs
// the open is the one the file describes), ops outside the pool keep the loop's priority, and
// an out-of-range value is EINVAL when the loop is created.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <system_error>

#include "common.hpp"

namespace {

using unio::test::conformance_test;
using unio::test::run_one;

class pool_priority : public conformance_test {
 protected:
  // The nice value of the thread that ran an open of /proc/thread-self/stat on `lp`.
  static int nice_of_open(unio::loop& lp) {
    unio::open_how how{.flags = O_RDONLY};
    auto fd = run_one(lp, [&](unio::op& o, auto h) { lp.open(o, AT_FDCWD, "/proc/thread-self/stat", how, h); });
    EXPECT_GE(fd, 0) << std::strerror(static_cast<int>(-fd));
    if (fd < 0) return -100;
    char buf[1024];
    ssize_t n = ::pread(static_cast<int>(fd), buf, sizeof buf - 1, 0);
    ::close(static_cast<int>(fd));
    EXPECT_GT(n, 0);
    if (n <= 0) return -100;
    buf[n] = '\0';
    // Fields after the command's closing parenthesis: state is field 3, nice field 19.
    std::string rest(std::strrchr(buf, ')') + 2);
    int field = 3;
    std::size_t at = 0;
    while (field < 19 && at != std::string::npos) {
      at = rest.find(' ', at);
      if (at != std::string::npos) ++at;
      ++field;
    }
    EXPECT_NE(at, std::string::npos) << buf;
    return at == std::string::npos ? -100 : std::atoi(rest.c_str() + at);
  }

  // Whether an open on this loop runs on a pool worker: the threadpool backend's ops all do,
  // and so does an op another backend delegates.
  static bool open_on_pool(const unio::loop& lp) {
    return lp.backend_name() == "threadpool" || !lp.is_native(unio::op_code::open);
  }

  static int my_nice() {
    errno = 0;
    int n = ::getpriority(PRIO_PROCESS, 0);
    return errno == 0 ? n : 0;
  }
};

TEST_P(pool_priority, workers_run_the_given_steps_below_the_loop) {
  unio::loop_options o = options();
  o.pool_nice = 7;
  unio::loop lp(o);
  const int base = my_nice();
  const int want = open_on_pool(lp) ? std::min(19, base + 7) : base;
  EXPECT_EQ(nice_of_open(lp), want) << lp.backend_name() << (open_on_pool(lp) ? ": a pool worker" : ": not the pool");
  EXPECT_EQ(my_nice(), base) << "the loop's own thread must keep its priority";
}

TEST_P(pool_priority, zero_keeps_the_loops_priority) {
  unio::loop_options o = options();
  o.pool_nice = 0;
  unio::loop lp(o);
  EXPECT_EQ(nice_of_open(lp), my_nice()) << lp.backend_name();
}

TEST_P(pool_priority, out_of_range_is_einval_at_creation) {
  for (int bad : {-1, 20}) {
    unio::loop_options o = options();
    o.pool_nice = bad;
    try {
      unio::loop lp(o);
      ADD_FAILURE() << "pool_nice " << bad << " accepted";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EINVAL) << e.what();
    }
  }
}

INSTANTIATE_ALL_BACKENDS(pool_priority);

}  // namespace
