// Embedding: a host loop of plain poll(2) drives unio through backend_fd() and
// backend_timeout(), with no tick: nothing is missed, timers fire, and the host is not woken
// for nothing.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"

using namespace std::chrono_literals;
using unio::test::neg;

namespace {

// What a host loop saw.
struct host_stats {
  int waits = 0;        // times it slept in poll(2)
  int empty_wakes = 0;  // wake-ups after which lp.poll() ran no handler
  bool stopped = false;  // lp.poll() returned false
};

// Drives `lp` from a poll(2) loop until done() or lp.poll() says no work is left. `handled` is
// a counter the test's handlers bump, to tell empty wake-ups from real ones. A wait longer than
// `limit` fails the test instead of hanging.
template <class Done>
host_stats host_loop(unio::loop& lp, const int& handled, Done done, std::chrono::milliseconds limit = 10s) {
  host_stats s;
  while (!done()) {
    std::optional<std::chrono::nanoseconds> t = lp.backend_timeout();
    if (!t || t->count() > 0) {
      pollfd p{lp.backend_fd(), POLLIN, 0};
      auto ms = t ? std::chrono::ceil<std::chrono::milliseconds>(*t) : limit;
      int before = handled;
      int n = ::poll(&p, 1, static_cast<int>(std::min(ms, limit).count()));
      ++s.waits;
      if (n == 0 && !t) {
        ADD_FAILURE() << "the host waited " << limit.count() << " ms for backend_fd with work in flight";
        return s;
      }
      if (!lp.poll()) {
        s.stopped = true;
        return s;
      }
      if (n == 1 && handled == before) ++s.empty_wakes;
      continue;
    }
    if (!lp.poll()) {
      s.stopped = true;
      return s;
    }
  }
  return s;
}

class embed : public unio::test::conformance_test {};

// 2 MiB read in 64 KiB chunks, 4 in flight, driven only by the host's poll(2).
TEST_P(embed, a_poll_host_reads_a_file_with_no_tick_and_no_empty_wakeups) {
  constexpr std::size_t k_chunk = 64 * 1024, k_size = 2 * 1024 * 1024;
  std::string data(k_size, '\0');
  for (std::size_t i = 0; i < k_size; ++i) data[i] = static_cast<char>(i * 7 + i / 4096);
  put_file("f", data);
  int fd = raw_open("f", O_RDONLY);
  ASSERT_GE(fd, 0);
  auto lp = make_loop();
  std::vector<char> got(k_size);
  std::uint64_t next = 0;
  int handled = 0, in_flight = 0;
  bool failed = false;
  unio::op ops[4];
  std::function<void(unio::op&)> start = [&](unio::op& o) {
    if (next >= k_size) return;
    std::uint64_t off = next;
    next += k_chunk;
    ++in_flight;
    lp->read(o, fd, got.data() + off, k_chunk, off, [&, off](unio::op& x) {
      ++handled;
      --in_flight;
      if (x.raw_result() != static_cast<std::int64_t>(k_chunk)) failed = true;
      (void)off;
      start(x);
    });
  };
  for (auto& o : ops) start(o);
  host_stats s = host_loop(*lp, handled, [&] { return in_flight == 0 && next >= k_size; });
  EXPECT_FALSE(failed);
  EXPECT_EQ(handled, static_cast<int>(k_size / k_chunk));
  EXPECT_TRUE(got == std::vector<char>(data.begin(), data.end()));
  EXPECT_EQ(s.empty_wakes, 0) << "of " << s.waits << " waits";
  ::close(fd);
}

// A timer alone: backend_timeout() says how long until it is due; the host sleeps that long and
// the timer fires, not early.
TEST_P(embed, a_timer_is_due_after_the_time_backend_timeout_gives) {
  auto lp = make_loop();
  unio::op t;
  int handled = 0;
  auto start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point fired;
  lp->timeout(t, 30ms, [&](unio::op& o) {
    EXPECT_TRUE(o.ok());
    ++handled;
    fired = std::chrono::steady_clock::now();
  });
  auto first = lp->backend_timeout();
  ASSERT_TRUE(first.has_value());
  EXPECT_LE(*first, std::chrono::nanoseconds(30ms));
  EXPECT_GT(*first, std::chrono::nanoseconds(0));
  host_stats s = host_loop(*lp, handled, [&] { return handled == 1; });
  EXPECT_EQ(handled, 1);
  EXPECT_GE(fired - start, 30ms);
  EXPECT_EQ(s.empty_wakes, 0);
}

// Work from other threads (post, a pool op, stop) makes backend_fd() readable.
TEST_P(embed, posts_from_another_thread_and_stop_wake_the_host) {
  auto lp = make_loop();
  int handled = 0;
  std::atomic<bool> go{false};
  {
    unio::loop::keep_alive guard(*lp);
    std::thread t([&, guard] {
      while (!go.load()) std::this_thread::sleep_for(1ms);
      lp->post([&] { ++handled; });
    });
    auto first = lp->backend_timeout();
    EXPECT_FALSE(first.has_value()) << "nothing is due: the host may sleep until backend_fd";
    pollfd p{lp->backend_fd(), POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 0), 0) << "backend_fd readable with nothing to do";
    go.store(true);
    host_loop(*lp, handled, [&] { return handled == 1; });
    t.join();
  }
  EXPECT_EQ(handled, 1);
  std::thread stopper([&] { lp->stop(); });
  stopper.join();
  host_stats s = host_loop(*lp, handled, [] { return false; });
  EXPECT_TRUE(s.stopped) << "stop() must end the host's loop through poll()";
}

// Socket readiness and a work item on the pool, both completing while the host sleeps.
TEST_P(embed, a_recv_and_pool_work_complete_while_the_host_sleeps) {
  auto [a, b] = unio::test::socket_pair();
  ASSERT_GE(a, 0);
  auto lp = make_loop();
  int handled = 0;
  char buf[8];
  unio::op r, w, t;
  std::int64_t rres = 0;
  lp->recv(r, a, buf, sizeof buf, 0, [&](unio::op& o) {
    rres = o.raw_result();
    ++handled;
  });
  int work_value = 0;
  lp->queue_work(w, [] { return 42; }, [&](unio::op&, unio::result<int> v, std::exception_ptr) {
    work_value = v ? *v : -1;
    ++handled;
  });
  lp->timeout(t, 5ms, [&](unio::op&) {
    ++handled;
    ASSERT_EQ(::send(b, "ping", 4, 0), 4);
  });
  host_stats s = host_loop(*lp, handled, [&] { return handled == 3; });
  EXPECT_EQ(rres, 4);
  EXPECT_EQ(work_value, 42);
  EXPECT_EQ(s.empty_wakes, 0) << "of " << s.waits << " waits";
  ::close(a);
  ::close(b);
}

// Regression (found by the Python package's tests): on io_uring a sendfile's next splice stage,
// queued while backend_timeout() reaped the previous one, stayed in the SQ with nullopt returned,
// and the host slept for ever (within some tens of sendfiles).
TEST_P(embed, sendfiles_to_sockets_and_pipes_complete_while_the_host_sleeps) {
  std::string data(200000, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 + i / 253);
  put_file("src", data);
  int in = raw_open("src", O_RDONLY);
  ASSERT_GE(in, 0);
  auto lp = make_loop();
  int handled = 0;
  for (int i = 0; i < 150 && !HasFailure(); ++i) {
    auto [a, b] = unio::test::socket_pair();
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    unio::op s1, s2;
    std::int64_t r1 = 0, r2 = 0;
    lp->sendfile(s1, a, in, 1000, 50000, [&](unio::op& o) {
      r1 = o.raw_result();
      ++handled;
    });
    lp->sendfile(s2, p[1], in, 0, 1000, [&](unio::op& o) {
      r2 = o.raw_result();
      ++handled;
    });
    int want = handled + 2;
    host_loop(*lp, handled, [&] { return handled == want; }, 5s);
    if (s1.busy() || s2.busy()) {  // failed above; the ops must complete before they go
      lp->cancel(s1);
      lp->cancel(s2);
      lp->run();
    }
    EXPECT_GT(r1, 0) << "round " << i;
    EXPECT_EQ(r2, 1000) << "round " << i;
    for (int fd : {a, b, p[0], p[1]}) ::close(fd);
  }
  ::close(in);
}

// An idle loop: nothing due, backend_fd not readable, and poll() says there is no work.
TEST_P(embed, an_idle_loop_gives_no_timeout_and_an_unreadable_fd) {
  auto lp = make_loop();
  EXPECT_FALSE(lp->backend_timeout().has_value());
  pollfd p{lp->backend_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);
  EXPECT_FALSE(lp->poll());
  EXPECT_EQ(lp->backend_fd(), lp->backend_fd());
}

INSTANTIATE_ALL_BACKENDS(embed);

}  // namespace
