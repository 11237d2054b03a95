// Description: cancel() of queued, waiting, timed, idle and completed ops: ECANCELED when stopped, a queued op never runs, exactly one completion.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"

namespace {

using namespace std::chrono_literals;
using unio::test::conformance_test;
using unio::test::neg;
using unio::test::probe;

class cancel : public conformance_test {};

TEST_P(cancel, queued_write_cancelled_before_the_loop_runs_never_runs) {
  // Every backend queues an op until the loop's next turn (sync and threadpool in a list, io_uring
  // in its submission ring), so an op cancelled right after submission has not started: the
  // spec (src/backend.hpp, point 5) requires ECANCELED and no effect.
  put_file("f", "original");
  auto lp = make_loop();
  int fd = raw_open("f", O_RDWR);
  ASSERT_GE(fd, 0);
  unio::op o;
  probe p;
  lp->write(o, fd, "CLOBBERED", 9, 0, p.handler());
  EXPECT_TRUE(o.busy());
  lp->cancel(o);
  lp->run();
  EXPECT_EQ(p.calls, 1);
  EXPECT_EQ(p.res, neg(ECANCELED));
  EXPECT_EQ(get_file("f"), "original") << "a cancelled queued write modified the file";
  ::close(fd);
}

// Regression (found by the Python package's tests): posix_aio called aio_cancel for ops glibc
// held, and glibc 2.36 then sometimes left the fd's other queued requests unrun for good: the
// 100 reads not cancelled never completed and run() never returned.
TEST_P(cancel, cancelling_half_of_200_reads_of_one_fd_in_flight_strands_none) {
  std::string data(1 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 13 + i / 4093);
  put_file("r", data);
  int fd = raw_open("r", O_RDONLY);
  ASSERT_GE(fd, 0);
  constexpr int n = 200;
  constexpr std::size_t len = 8192;
  for (int round = 0; round < 20 && !HasFailure(); ++round) {
    auto lp = make_loop();
    std::vector<unio::op> ops(n);
    std::vector<probe> probes(n);
    std::vector<std::string> bufs(n, std::string(len, '\0'));
    auto off = [](int i) { return static_cast<std::uint64_t>(i * 7919 % 120) * len; };
    for (int i = 0; i < n; ++i) lp->read(ops[i], fd, bufs[i].data(), len, off(i), probes[i].handler());
    lp->poll();  // handed to the backend (the kernel, glibc, the pool)
    for (int i = 0; i < n; i += 2) lp->cancel(ops[i]);
    std::atomic<bool> finished{false};
    std::thread watchdog([&] {
      for (int t = 0; t < 1000 && !finished; ++t) std::this_thread::sleep_for(10ms);
      if (!finished) {
        std::fprintf(stderr, "round %d: the reads not cancelled never completed\n", round);
        std::abort();
      }
    });
    lp->run();
    finished = true;
    watchdog.join();
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(probes[i].calls, 1) << i;
      if (i % 2 == 1 || probes[i].res != neg(ECANCELED)) {
        ASSERT_EQ(probes[i].res, static_cast<std::int64_t>(len)) << i;
        ASSERT_EQ(bufs[i], data.substr(off(i), len)) << i;
      }
    }
  }
  ::close(fd);
}

TEST_P(cancel, many_queued_ops_cancelled_none_runs) {
  auto lp = make_loop();
  int fd = raw_open("g", O_RDWR | O_CREAT);
  ASSERT_GE(fd, 0);
  constexpr int n = 100;
  std::vector<unio::op> ops(n);
  std::vector<probe> probes(n);
  const std::string data(64, 'x');
  for (int i = 0; i < n; ++i) {
    if (i % 4 == 3) lp->ftruncate(ops[i], fd, 1 << 20, probes[i].handler());
    else if (i % 4 == 2) lp->mkdir(ops[i], dirfd(), "d", 0700, probes[i].handler());
    else lp->write(ops[i], fd, data.data(), data.size(), static_cast<std::uint64_t>(i) * 64, probes[i].handler());
  }
  // Cancel in reverse order, to exercise removal from the middle and the end of queues.
  for (int i = n - 1; i >= 0; --i) lp->cancel(ops[i]);
  lp->run();
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(probes[i].calls, 1) << i;
    EXPECT_EQ(probes[i].res, neg(ECANCELED)) << i;
  }
  struct stat st{};
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 0) << "a cancelled write or ftruncate ran";
  EXPECT_FALSE(exists("d")) << "a cancelled mkdir ran";
  ::close(fd);
}

TEST_P(cancel, cancelling_one_of_several_leaves_the_others) {
  auto lp = make_loop();
  int fd = raw_open("h", O_RDWR | O_CREAT);
  ASSERT_GE(fd, 0);
  unio::op a, b, c;
  probe pa, pb, pc;
  lp->write(a, fd, "A", 1, 0, pa.handler());
  lp->write(b, fd, "B", 1, 1, pb.handler());
  lp->write(c, fd, "C", 1, 2, pc.handler());
  lp->cancel(b);
  lp->run();
  EXPECT_EQ(pa.res, 1);
  EXPECT_EQ(pb.res, neg(ECANCELED));
  EXPECT_EQ(pc.res, 1);
  EXPECT_EQ(pa.calls + pb.calls + pc.calls, 3);
  EXPECT_EQ(get_file("h"), std::string("A\0C", 3));
  ::close(fd);
}

TEST_P(cancel, recv_waiting_on_a_socket) {
  auto xy_pair = unio::test::socket_pair();
  int x = xy_pair.first, y = xy_pair.second;
  ASSERT_GE(x, 0);
  auto lp = make_loop();
  unio::op r, t;
  probe pr;
  char buf[16];
  lp->recv(r, x, buf, sizeof buf, 0, pr.handler());
  // Cancel from a timer handler, after the recv has certainly been waiting for a turn or more.
  bool was_busy = false;
  lp->timeout(t, 1ms, [&](unio::op&) {
    was_busy = r.busy();
    lp->cancel(r);
  });
  lp->run();
  EXPECT_TRUE(was_busy) << "recv completed without data";
  EXPECT_EQ(pr.calls, 1);
  EXPECT_EQ(pr.res, neg(ECANCELED));
  // The socket still works and the cancelled recv consumed nothing.
  ASSERT_EQ(::send(y, "hi", 2, 0), 2);
  EXPECT_EQ(unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->recv(o, x, buf, sizeof buf, 0, h); }), 2);
  EXPECT_EQ(std::string(buf, 2), "hi");
  ::close(x);
  ::close(y);
}

TEST_P(cancel, read_waiting_on_an_empty_pipe) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  auto lp = make_loop();
  unio::op r, t;
  probe pr;
  char buf[8];
  lp->read(r, p[0], buf, sizeof buf, unio::current_position, pr.handler());
  lp->timeout(t, 1ms, [&](unio::op&) { lp->cancel(r); });
  lp->run();
  EXPECT_EQ(pr.calls, 1);
  EXPECT_EQ(pr.res, neg(ECANCELED));
  ::close(p[0]);
  ::close(p[1]);
}

TEST_P(cancel, read_waiting_on_an_empty_blocking_pipe) {
  // A blocking pipe (no O_NONBLOCK): the read must still wait without blocking the loop thread
  // (or a worker forever), so the timer can fire and cancel it. If the loop thread were stuck in
  // read(2), the rescue thread unblocks it after a while and the test fails instead of hanging.
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  std::atomic<bool> done{false};
  std::thread rescue([&] {
    for (int i = 0; i < 500 && !done.load(); ++i) std::this_thread::sleep_for(10ms);
    if (!done.load()) (void)::write(p[1], "R", 1);
  });
  {
    auto lp = make_loop();
    unio::op r, t;
    probe pr;
    char buf[8];
    lp->read(r, p[0], buf, sizeof buf, unio::current_position, pr.handler());
    lp->timeout(t, 1ms, [&](unio::op&) { lp->cancel(r); });
    lp->run();
    done.store(true);
    EXPECT_EQ(pr.calls, 1);
    EXPECT_EQ(pr.res, neg(ECANCELED)) << "the read blocked a thread until the rescue write arrived";
  }
  done.store(true);
  rescue.join();
  ::close(p[0]);
  ::close(p[1]);
}

TEST_P(cancel, ops_reported_cancelled_never_ran) {
  // Cancel 200 writes after they were handed to the backend (one turn ran): each one either
  // ran (full count, bytes on disk) or reports ECANCELED (and its range is untouched).
  auto lp = make_loop();
  int fd = raw_open("race", O_RDWR | O_CREAT);
  ASSERT_GE(fd, 0);
  constexpr int n = 200;
  constexpr std::size_t len = 512;
  ASSERT_EQ(::ftruncate(fd, n * len), 0);
  std::vector<unio::op> ops(n);
  std::vector<probe> probes(n);
  std::vector<std::string> data(n);
  for (int i = 0; i < n; ++i) {
    data[i] = std::string(len, static_cast<char>('a' + i % 26));
    lp->write(ops[i], fd, data[i].data(), len, static_cast<std::uint64_t>(i) * len, probes[i].handler());
  }
  lp->poll();
  for (int i = 0; i < n; ++i) lp->cancel(ops[i]);
  lp->run();
  const std::string contents = get_file("race");
  ASSERT_EQ(contents.size(), n * len);
  int cancelled = 0;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(probes[i].calls, 1) << i;
    const std::string range = contents.substr(static_cast<std::size_t>(i) * len, len);
    if (probes[i].res == neg(ECANCELED)) {
      ++cancelled;
      EXPECT_EQ(range, std::string(len, '\0')) << "write " << i << " reported ECANCELED but ran";
    } else {
      EXPECT_EQ(probes[i].res, static_cast<std::int64_t>(len)) << i;
      EXPECT_EQ(range, data[i]) << i;
    }
  }
  RecordProperty("cancelled", cancelled);
  ::close(fd);
}

TEST_P(cancel, accept_waiting_for_a_connection) {
  auto ep = unio::endpoint::parse("127.0.0.1", 0);
  ASSERT_TRUE(ep);
  auto lfd = unio::tcp_listen(*ep);
  ASSERT_TRUE(lfd) << lfd.error().message();
  auto lp = make_loop();
  unio::op a, t;
  probe pa;
  lp->accept(a, *lfd, nullptr, nullptr, pa.handler());
  lp->timeout(t, 1ms, [&](unio::op&) { lp->cancel(a); });
  lp->run();
  EXPECT_EQ(pa.calls, 1);
  EXPECT_EQ(pa.res, neg(ECANCELED));
  ::close(*lfd);
}

TEST_P(cancel, timeout) {
  auto lp = make_loop();
  unio::op t, n;
  probe pt;
  lp->timeout(t, 1h, pt.handler());
  lp->nop(n, [&](unio::op&) { lp->cancel(t); });
  lp->run();  // must return: the cancelled timer no longer keeps the loop alive
  EXPECT_EQ(pt.calls, 1);
  EXPECT_EQ(pt.res, neg(ECANCELED));
  // Cancelling right after submission, before any turn.
  probe p2;
  lp->timeout(t, 1h, p2.handler());
  lp->cancel(t);
  lp->run();
  EXPECT_EQ(p2.calls, 1);
  EXPECT_EQ(p2.res, neg(ECANCELED));
}

TEST_P(cancel, idle_and_completed_ops_are_untouched) {
  auto lp = make_loop();
  unio::op never;
  lp->cancel(never);  // never submitted: no-op
  EXPECT_FALSE(never.busy());
  lp->run();

  unio::op o;
  probe p;
  lp->nop(o, p.handler());
  lp->run();
  ASSERT_EQ(p.calls, 1);
  EXPECT_EQ(p.res, 0);
  lp->cancel(o);  // completed: no-op, no second completion
  lp->run();
  EXPECT_EQ(p.calls, 1);
  EXPECT_EQ(o.raw_result(), 0);
}

TEST_P(cancel, cancel_inside_own_handler_is_a_noop) {
  auto lp = make_loop();
  unio::op o;
  int calls = 0;
  lp->nop(o, [&](unio::op& self) {
    ++calls;
    lp->cancel(self);
  });
  lp->run();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(o.raw_result(), 0);
}

TEST_P(cancel, op_completed_in_the_same_turn_completes_once) {
  // The second nop may already have completed (waiting for dispatch) when the first handler
  // cancels it: it must still complete exactly once, with 0 or ECANCELED.
  auto lp = make_loop();
  unio::op a, b;
  probe pb;
  lp->nop(a, [&](unio::op&) { lp->cancel(b); });
  lp->nop(b, pb.handler());
  lp->run();
  EXPECT_EQ(pb.calls, 1);
  EXPECT_TRUE(pb.res == 0 || pb.res == neg(ECANCELED)) << pb.res;
}

TEST_P(cancel, double_cancel_completes_once) {
  auto xy_pair = unio::test::socket_pair();
  int x = xy_pair.first, y = xy_pair.second;
  ASSERT_GE(x, 0);
  auto lp = make_loop();
  unio::op r;
  probe pr;
  char buf[4];
  lp->recv(r, x, buf, sizeof buf, 0, pr.handler());
  lp->poll();
  lp->cancel(r);
  lp->cancel(r);
  lp->run();
  EXPECT_EQ(pr.calls, 1);
  EXPECT_EQ(pr.res, neg(ECANCELED));
  ::close(x);
  ::close(y);
}

TEST_P(cancel, resubmit_from_the_cancelled_handler) {
  auto xy_pair = unio::test::socket_pair();
  int x = xy_pair.first, y = xy_pair.second;
  ASSERT_GE(x, 0);
  auto lp = make_loop();
  unio::op r;
  std::vector<std::int64_t> results;
  char buf[4];
  lp->recv(r, x, buf, sizeof buf, 0, [&](unio::op& self) {
    results.push_back(self.raw_result());
    lp->nop(self, [&](unio::op& again) { results.push_back(again.raw_result()); });
  });
  lp->cancel(r);
  lp->run();
  EXPECT_EQ(results, (std::vector<std::int64_t>{neg(ECANCELED), 0}));
  ::close(x);
  ::close(y);
}

TEST_P(cancel, awaited_op_cancelled_from_elsewhere) {
  auto xy_pair = unio::test::socket_pair();
  int x = xy_pair.first, y = xy_pair.second;
  ASSERT_GE(x, 0);
  auto lp = make_loop();
  unio::op* target = nullptr;
  unio::op t;
  lp->timeout(t, 1ms, [&](unio::op&) {
    ASSERT_NE(target, nullptr);
    lp->cancel(*target);
  });
  char buf[4];
  auto r = unio::sync_wait(*lp, [&]() -> unio::task<unio::result<std::size_t>> {
    auto aw = lp->async_recv(x, buf, sizeof buf);
    target = &aw.get_op();
    co_return co_await aw;
  }());
  EXPECT_EQ(r.error(), unio::errno_code(ECANCELED));
  lp->run();
  ::close(x);
  ::close(y);
}

TEST_P(cancel, fd_number_reused_after_cancel_and_close) {
  // A recv waits on fd N, is cancelled, N is closed and reused by a new socket: ops on the new
  // socket must see its readiness (no stale registration for the old one).
  auto lp = make_loop();
  auto xy_pair = unio::test::socket_pair();
  int x = xy_pair.first, y = xy_pair.second;
  ASSERT_GE(x, 0);
  unio::op r;
  probe pr;
  char buf[8];
  lp->recv(r, x, buf, sizeof buf, 0, pr.handler());
  lp->poll();
  lp->cancel(r);
  lp->run();
  ASSERT_EQ(pr.res, neg(ECANCELED));
  EXPECT_EQ(unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->close(o, x, h); }), 0);
  ::close(y);
  auto x2y2_pair = unio::test::socket_pair();
  int x2 = x2y2_pair.first, y2 = x2y2_pair.second;
  ASSERT_GE(x2, 0);
  // Normally x2 == x (lowest free number); if not, the test still checks a fresh socket.
  const int reader = (y2 == x) ? y2 : x2;
  const int writer = (y2 == x) ? x2 : y2;
  probe p2;
  lp->recv(r, reader, buf, sizeof buf, 0, p2.handler());
  unio::op t;
  lp->timeout(t, 1ms, [&](unio::op&) { ASSERT_EQ(::send(writer, "new", 3, 0), 3); });
  lp->run();
  EXPECT_EQ(p2.calls, 1);
  EXPECT_EQ(p2.res, 3);
  EXPECT_EQ(std::string(buf, 3), "new");
  ::close(x2);
  ::close(y2);
}

INSTANTIATE_ALL_BACKENDS(cancel);

}  // namespace
