// loop::poll / async_poll: readiness of any fd, the same revents on every backend.
#include <poll.h>
#include <sys/eventfd.h>

#include <chrono>

#include "common.hpp"

using namespace std::chrono_literals;
using unio::test::neg;
using unio::test::run_one;

namespace {

class poll_test : public unio::test::conformance_test {};

// POLLIN on an empty pipe waits until a timer writes; the data stays in the pipe.
TEST_P(poll_test, waits_for_input_and_leaves_the_data) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  auto lp = make_loop();
  unio::op w, t;
  bool written = false, written_when_done = false;
  std::int64_t res = 0;
  lp->poll(w, p[0], POLLIN, [&](unio::op& o) {
    res = o.raw_result();
    written_when_done = written;
  });
  lp->timeout(t, 3ms, [&](unio::op&) {
    written = true;
    ASSERT_EQ(::write(p[1], "x", 1), 1);
  });
  lp->run();
  EXPECT_TRUE(written_when_done) << "completed before the pipe had data";
  EXPECT_EQ(res, POLLIN);
  char c = 0;
  EXPECT_EQ(::read(p[0], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  ::close(p[0]);
  ::close(p[1]);
}

// The awaitable form; an fd that is ready already (POLLOUT on an empty pipe, a regular file)
// completes at once with exactly the events asked for that hold.
TEST_P(poll_test, ready_fds_complete_at_once_with_the_events_that_hold) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  put_file("f", "data");
  int f = raw_open("f", O_RDONLY);
  ASSERT_GE(f, 0);
  auto lp = make_loop();
  auto out = AWAIT(*lp, lp->async_poll(p[1], POLLOUT));
  ASSERT_TRUE(out.has_value()) << out.error().message();
  EXPECT_EQ(*out, unsigned{POLLOUT});
  auto file = AWAIT(*lp, lp->async_poll(f, POLLIN | POLLOUT));
  ASSERT_TRUE(file.has_value()) << file.error().message();
  EXPECT_EQ(*file, unsigned{POLLIN | POLLOUT});
  ::close(f);
  ::close(p[0]);
  ::close(p[1]);
}

// POLLHUP is reported without being asked for when the other end goes away.
TEST_P(poll_test, reports_hangup_when_the_writer_closes) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  auto lp = make_loop();
  unio::op w, t;
  std::int64_t res = 0;
  lp->poll(w, p[0], POLLIN, [&](unio::op& o) { res = o.raw_result(); });
  lp->timeout(t, 2ms, [&](unio::op&) { ::close(p[1]); });
  lp->run();
  ASSERT_GT(res, 0) << std::strerror(static_cast<int>(-res));
  EXPECT_NE(res & POLLHUP, 0) << res;
  ::close(p[0]);
}

TEST_P(poll_test, a_bad_fd_is_ebadf) {
  auto lp = make_loop();
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ::close(fd);  // a number that is surely closed
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->poll(o, fd, POLLIN, h); }), neg(EBADF));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->poll(o, -1, POLLIN, h); }), neg(EBADF));
}

TEST_P(poll_test, a_waiting_poll_is_cancelled_exactly_once) {
  int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  auto lp = make_loop();
  unio::op w, t;
  int calls = 0;
  std::int64_t res = 0;
  lp->poll(w, efd, POLLIN, [&](unio::op& o) {
    ++calls;
    res = o.raw_result();
  });
  lp->timeout(t, 2ms, [&](unio::op&) { lp->cancel(w); });
  lp->run();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(res, neg(ECANCELED));
  // The loop forgot the poll: the fd signalled now wakes nothing and the loop is idle.
  ::eventfd_write(efd, 1);
  EXPECT_FALSE(lp->poll());
  ::close(efd);
}

// Several polls on one fd wait at once, each for its own events, beside a read on the same fd.
TEST_P(poll_test, several_waiters_on_one_fd_each_get_their_events) {
  auto [a, b] = unio::test::socket_pair();
  ASSERT_GE(a, 0);
  auto lp = make_loop();
  unio::op in1, in2, outp, t;
  std::int64_t r1 = 0, r2 = 0, ro = 0;
  char buf[8];
  lp->poll(in1, a, POLLIN, [&](unio::op& o) { r1 = o.raw_result(); });
  lp->poll(in2, a, POLLIN | POLLPRI, [&](unio::op& o) { r2 = o.raw_result(); });
  lp->poll(outp, a, POLLOUT, [&](unio::op& o) { ro = o.raw_result(); });
  lp->timeout(t, 3ms, [&](unio::op&) { ASSERT_EQ(::send(b, "hey", 3, 0), 3); });
  lp->run();
  EXPECT_EQ(ro, POLLOUT);
  EXPECT_EQ(r1, POLLIN);
  EXPECT_EQ(r2, POLLIN);
  // The data is still there for a read.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->recv(o, a, buf, sizeof buf, 0, h); }), 3);
  ::close(a);
  ::close(b);
}

INSTANTIATE_ALL_BACKENDS(poll_test);

}  // namespace
