// Description: the coroutine toolkit on every backend: when_all, when_any (and what becomes of the losers),
// semaphore, event, with_timeout (a timed-out op is really cancelled and reaped; a result that wins the race
// is kept), and spawn of any task<T> with its exceptions reported.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "common.hpp"

namespace {

using namespace std::chrono_literals;
using unio::test::conformance_test;

class toolkit : public conformance_test {};

// ---- helpers ----

unio::task<void> nops(unio::loop& lp, int n) {
  for (int i = 0; i < n; ++i)
    (void)co_await lp.async_nop();
}

unio::task<int> logged_value(unio::loop& lp, std::vector<std::string>& log, std::string name, int n, int v) {
  log.push_back(name + ":start");
  co_await nops(lp, n);
  log.push_back(name + ":end");
  co_return v;
}

// An address on the current stack: where a resumed coroutine runs, to see whether resumptions nest.
[[gnu::noinline]] std::uintptr_t stack_mark() {
  return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
}

struct stack_span {
  std::uintptr_t lo = UINTPTR_MAX;
  std::uintptr_t hi = 0;
  void note() {
    auto m = stack_mark();
    lo = std::min(lo, m);
    hi = std::max(hi, m);
  }
  std::uintptr_t width() const { return hi >= lo ? hi - lo : 0; }
};

// Records what reaches the spawn error handler while it exists, then restores the previous one.
struct error_catcher {
  static inline std::vector<std::string> seen;
  unio::spawn_error_handler prev;
  error_catcher() : prev(unio::set_spawn_error_handler(&record)) { seen.clear(); }
  ~error_catcher() { unio::set_spawn_error_handler(prev); }
  static void record(std::exception_ptr e) noexcept {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      seen.emplace_back(x.what());
    } catch (...) {
      seen.emplace_back("?");
    }
  }
};

// ---- when_all ----

TEST_P(toolkit, when_all_starts_every_task_before_any_finishes_and_keeps_argument_order) {
  auto lp = make_loop();
  std::vector<std::string> log;
  auto outer = [](unio::loop& lp,
                  std::vector<std::string>& log) -> unio::task<std::tuple<int, std::string, std::monostate>> {
    auto text = [](unio::loop& lp, std::vector<std::string>& log) -> unio::task<std::string> {
      log.push_back("b:start");
      co_await nops(lp, 1);
      log.push_back("b:end");
      co_return "bee";
    };
    auto none = [](unio::loop& lp, std::vector<std::string>& log) -> unio::task<void> {
      log.push_back("c:start");
      co_await nops(lp, 2);
      log.push_back("c:end");
    };
    co_return co_await unio::when_all(logged_value(lp, log, "a", 5, 7), text(lp, log), none(lp, log));
  };
  auto [a, b, c] = unio::sync_wait(*lp, outer(*lp, log));
  EXPECT_EQ(a, 7);
  EXPECT_EQ(b, "bee");
  (void)c;
  ASSERT_EQ(log.size(), 6u);
  EXPECT_EQ(log[0], "a:start");
  EXPECT_EQ(log[1], "b:start");
  EXPECT_EQ(log[2], "c:start");
  EXPECT_FALSE(lp->poll()) << "nothing may be left on the loop";
}

TEST_P(toolkit, when_all_children_really_run_concurrently) {
  // The first child waits for an event only the second sets: run one after the other, they
  // would never finish (sync_wait would throw for lack of work).
  auto lp = make_loop();
  unio::event ev(*lp);
  auto waiter = [](unio::event& ev) -> unio::task<int> {
    co_await ev.wait();
    co_return 1;
  };
  auto setter = [](unio::loop& lp, unio::event& ev) -> unio::task<int> {
    co_await nops(lp, 3);
    ev.set();
    co_return 2;
  };
  auto [x, y] = unio::sync_wait(*lp, unio::when_all(waiter(ev), setter(*lp, ev)));
  EXPECT_EQ(x, 1);
  EXPECT_EQ(y, 2);
}

TEST_P(toolkit, when_all_vector_gives_values_in_vector_order) {
  auto lp = make_loop();
  std::vector<unio::task<int>> ts;
  for (int i = 0; i < 100; ++i) {
    ts.push_back([](unio::loop& lp, int i) -> unio::task<int> {
      co_await nops(lp, i % 5);
      co_return i* i;
    }(*lp, i));
  }
  auto v = unio::sync_wait(*lp, unio::when_all(std::move(ts)));
  ASSERT_EQ(v.size(), 100u);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(v[static_cast<std::size_t>(i)], i * i);
}

TEST_P(toolkit, when_all_of_void_tasks_and_of_nothing) {
  auto lp = make_loop();
  int ran = 0;
  std::vector<unio::task<void>> ts;
  for (int i = 0; i < 3; ++i) {
    ts.push_back([](unio::loop& lp, int& ran) -> unio::task<void> {
      co_await nops(lp, 1);
      ++ran;
    }(*lp, ran));
  }
  std::vector<std::monostate> v = unio::sync_wait(*lp, unio::when_all(std::move(ts)));
  EXPECT_EQ(v.size(), 3u);
  EXPECT_EQ(ran, 3);
  auto none = unio::sync_wait(*lp, unio::when_all(std::vector<unio::task<int>>{}));
  EXPECT_TRUE(none.empty());
}

TEST_P(toolkit, when_all_rethrows_only_after_every_task_finished) {
  auto lp = make_loop();
  bool slow_done = false;
  auto thrower = [](unio::loop& lp) -> unio::task<int> {
    co_await nops(lp, 1);
    throw std::runtime_error("boom");
  };
  auto slow = [](unio::loop& lp, bool& done) -> unio::task<void> {
    co_await nops(lp, 30);
    done = true;
  };
  auto outer = [&](unio::loop& lp) -> unio::task<std::string> {
    try {
      (void)co_await unio::when_all(thrower(lp), slow(lp, slow_done));
    } catch (const std::runtime_error& e) {
      co_return std::string(e.what()) + (slow_done ? " after slow" : " before slow");
    }
    co_return "no exception";
  };
  EXPECT_EQ(unio::sync_wait(*lp, outer(*lp)), "boom after slow");
  EXPECT_FALSE(lp->poll());
}

// ---- when_any ----

TEST_P(toolkit, when_any_gives_the_first_and_the_losers_run_to_completion) {
  auto lp = make_loop();
  unio::event gate(*lp);
  int losers_done = 0;
  auto loser = [](unio::event& gate, int& done) -> unio::task<std::string> {
    co_await gate.wait();
    ++done;
    co_return "late";
  };
  auto winner = [](unio::loop& lp) -> unio::task<int> {
    co_await nops(lp, 2);
    co_return 42;
  };
  auto r =
      unio::sync_wait(*lp, unio::when_any(loser(gate, losers_done), winner(*lp), loser(gate, losers_done)));
  EXPECT_EQ(r.index, 1u);
  ASSERT_EQ(r.value.index(), 1u);
  EXPECT_EQ(std::get<1>(r.value), 42);
  EXPECT_EQ(losers_done, 0) << "the losers wait for the gate";
  gate.set();
  lp->run();
  EXPECT_EQ(losers_done, 2) << "losers must run to completion, not be dropped";
  EXPECT_FALSE(lp->poll());
}

TEST_P(toolkit, when_any_vector_and_a_loser_exception_is_reported) {
  error_catcher catcher;
  auto lp = make_loop();
  unio::event gate(*lp);
  int finished = 0;
  std::vector<unio::task<int>> ts;
  for (int i = 0; i < 10; ++i) {
    ts.push_back([](unio::loop& lp, unio::event& gate, int i, int& finished) -> unio::task<int> {
      if (i == 7)
        co_await nops(lp, 1);
      else
        co_await gate.wait();
      ++finished;
      if (i == 3) throw std::runtime_error("loser 3 failed");
      co_return i * 10;
    }(*lp, gate, i, finished));
  }
  auto r = unio::sync_wait(*lp, unio::when_any(std::move(ts)));
  EXPECT_EQ(r.index, 7u);
  EXPECT_EQ(r.value, 70);
  EXPECT_TRUE(error_catcher::seen.empty());
  gate.set();
  lp->run();
  EXPECT_EQ(finished, 10);
  ASSERT_EQ(error_catcher::seen.size(), 1u);
  EXPECT_EQ(error_catcher::seen[0], "loser 3 failed");
}

TEST_P(toolkit, when_any_rethrows_the_winners_exception) {
  error_catcher catcher;
  auto lp = make_loop();
  unio::event gate(*lp);
  bool loser_done = false;
  auto thrower = [](unio::loop& lp) -> unio::task<void> {
    co_await nops(lp, 1);
    throw std::runtime_error("first");
  };
  auto loser = [](unio::event& gate, bool& done) -> unio::task<void> {
    co_await gate.wait();
    done = true;
  };
  EXPECT_THROW(unio::sync_wait(*lp, unio::when_any(thrower(*lp), loser(gate, loser_done))),
               std::runtime_error);
  EXPECT_FALSE(loser_done);
  gate.set();
  lp->run();
  EXPECT_TRUE(loser_done);
  EXPECT_TRUE(error_catcher::seen.empty()) << "the winner's exception went to the awaiter, not the handler";
}

TEST_P(toolkit, when_any_with_a_task_finishing_at_start) {
  auto lp = make_loop();
  unio::event gate(*lp);
  auto ready = []() -> unio::task<int> { co_return 5; };
  auto later = [](unio::event& gate) -> unio::task<int> {
    co_await gate.wait();
    co_return 6;
  };
  auto r = unio::sync_wait(*lp, unio::when_any(later(gate), ready()));
  EXPECT_EQ(r.index, 1u);
  EXPECT_EQ(std::get<1>(r.value), 5);
  gate.set();
  lp->run();
}

// ---- spawn ----

TEST_P(toolkit, spawn_accepts_a_task_with_a_value_and_reports_exceptions) {
  error_catcher catcher;
  auto lp = make_loop();
  int ran = 0;
  unio::spawn([](unio::loop& lp, int& ran) -> unio::task<int> {
    co_await nops(lp, 1);
    ++ran;
    co_return 3;
  }(*lp, ran));
  unio::spawn([](unio::loop& lp) -> unio::task<std::string> {
    co_await nops(lp, 1);
    throw std::runtime_error("spawned boom");
  }(*lp));
  unio::spawn([](unio::loop& lp) -> unio::task<void> {
    co_await nops(lp, 0);  // completes at once: the throw happens inside spawn()
    throw std::logic_error("before any suspension");
  }(*lp));
  ASSERT_EQ(error_catcher::seen.size(), 1u);
  EXPECT_EQ(error_catcher::seen[0], "before any suspension");
  lp->run();
  EXPECT_EQ(ran, 1);
  ASSERT_EQ(error_catcher::seen.size(), 2u);
  EXPECT_EQ(error_catcher::seen[1], "spawned boom");
}

TEST_P(toolkit, spawn_default_handler_writes_the_exception_to_stderr) {
  auto prev = unio::set_spawn_error_handler(nullptr);
  auto lp = make_loop();
  ::testing::internal::CaptureStderr();
  unio::spawn([](unio::loop& lp) -> unio::task<void> {
    co_await nops(lp, 1);
    throw std::runtime_error("reported on stderr");
  }(*lp));
  lp->run();
  std::string err = ::testing::internal::GetCapturedStderr();
  unio::set_spawn_error_handler(prev);
  EXPECT_NE(err.find("unio: exception escaped a spawned task: reported on stderr"), std::string::npos) << err;
}

// ---- semaphore ----

TEST_P(toolkit, semaphore_caps_ops_in_flight_at_its_count) {
  auto lp = make_loop();
  unio::semaphore limit(*lp, 16);
  int in_flight = 0, most = 0, ok = 0;
  std::vector<unio::task<void>> ts;
  ts.reserve(9000);
  for (int i = 0; i < 9000; ++i) {
    ts.push_back([](unio::loop& lp, unio::semaphore& limit, int dir, int& in_flight, int& most,
                    int& ok) -> unio::task<void> {
      auto held = co_await limit.acquire();
      most = std::max(most, ++in_flight);
      struct statx st {};
      auto r = co_await lp.async_stat(dir, ".", 0, STATX_TYPE, &st);
      if (r && S_ISDIR(st.stx_mode)) ++ok;
      --in_flight;
    }(*lp, limit, dirfd(), in_flight, most, ok));
  }
  auto v = unio::sync_wait(*lp, unio::when_all(std::move(ts)));
  EXPECT_EQ(v.size(), 9000u);
  EXPECT_EQ(ok, 9000);
  EXPECT_EQ(most, 16);
  EXPECT_EQ(in_flight, 0);
  EXPECT_EQ(limit.available(), 16u);
}

TEST_P(toolkit, semaphore_wakes_waiters_in_fifo_order_without_barging) {
  auto lp = make_loop();
  unio::semaphore sem(*lp, 1);
  ASSERT_TRUE(sem.try_acquire());
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) {
    unio::spawn([](unio::semaphore& sem, std::vector<int>& order, int i) -> unio::task<void> {
      auto held = co_await sem.acquire();
      order.push_back(i);
    }(sem, order, i));
  }
  EXPECT_TRUE(order.empty());
  sem.release();
  EXPECT_TRUE(order.empty()) << "a waiter must not run inside release()";
  EXPECT_FALSE(sem.try_acquire()) << "the released unit belongs to the first waiter";
  lp->run();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(sem.available(), 1u);
}

TEST_P(toolkit, semaphore_guard_and_try_acquire) {
  auto lp = make_loop();
  unio::semaphore sem(*lp, 2);
  EXPECT_TRUE(sem.try_acquire());
  EXPECT_TRUE(sem.try_acquire());
  EXPECT_FALSE(sem.try_acquire());
  {
    unio::semaphore::guard g(sem, std::adopt_lock);
    unio::semaphore::guard moved(std::move(g));
    EXPECT_FALSE(g.owns_unit());
    EXPECT_TRUE(moved.owns_unit());
    EXPECT_EQ(sem.available(), 0u);
  }
  EXPECT_EQ(sem.available(), 1u);
  {
    unio::semaphore::guard g(sem, std::adopt_lock);
    g.release();
    EXPECT_EQ(sem.available(), 2u);
  }
  EXPECT_EQ(sem.available(), 2u) << "a released guard must not release again";
  auto t = [](unio::semaphore& sem) -> unio::task<std::size_t> {
    auto g = co_await sem.acquire();  // a unit is free: no suspension
    co_return sem.available();
  };
  EXPECT_EQ(unio::sync_wait(*lp, t(sem)), 1u);
  EXPECT_EQ(sem.available(), 2u);
}

TEST_P(toolkit, semaphore_chain_of_20000_waiters_does_not_nest_on_the_stack) {
  auto lp = make_loop();
  unio::semaphore sem(*lp, 1);
  ASSERT_TRUE(sem.try_acquire());
  int n = 0;
  stack_span span;
  for (int i = 0; i < 20000; ++i) {
    unio::spawn([](unio::semaphore& sem, int& n, stack_span& span) -> unio::task<void> {
      auto held = co_await sem.acquire();
      span.note();
      ++n;
    }(sem, n, span));  // each releases for the next as it ends
  }
  sem.release();
  lp->run();
  EXPECT_EQ(n, 20000);
  EXPECT_LT(span.width(), 64u * 1024) << "resumptions nested on the stack";
}

// ---- event ----

TEST_P(toolkit, event_wakes_every_waiter_in_order_and_stays_set) {
  auto lp = make_loop();
  unio::event ev(*lp);
  EXPECT_FALSE(ev.is_set());
  std::vector<int> order;
  auto waiter = [](unio::event& ev, std::vector<int>& order, int i) -> unio::task<void> {
    co_await ev.wait();
    order.push_back(i);
  };
  for (int i = 0; i < 3; ++i)
    unio::spawn(waiter(ev, order, i));
  ev.set();
  EXPECT_TRUE(ev.is_set());
  EXPECT_TRUE(order.empty()) << "a waiter must not run inside set()";
  lp->run();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  unio::spawn(waiter(ev, order, 3));
  EXPECT_EQ(order.size(), 4u) << "waiting on a set event does not suspend";
  ev.reset();
  EXPECT_FALSE(ev.is_set());
  unio::spawn(waiter(ev, order, 4));
  lp->run();
  EXPECT_EQ(order.size(), 4u) << "after reset() a waiter waits";
  ev.set();
  ev.reset();  // too late to hold back the waiter set() woke
  lp->run();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST_P(toolkit, event_with_10000_waiters) {
  auto lp = make_loop();
  unio::event ev(*lp);
  int n = 0;
  stack_span span;
  for (int i = 0; i < 10000; ++i) {
    unio::spawn([](unio::event& ev, int& n, stack_span& span) -> unio::task<void> {
      co_await ev.wait();
      span.note();
      ++n;
    }(ev, n, span));
  }
  ev.set();
  lp->run();
  EXPECT_EQ(n, 10000);
  EXPECT_LT(span.width(), 64u * 1024);
}

// ---- with_timeout ----

// The error of a with_timeout'd recv of up to 16 bytes, and what it received.
unio::task<std::pair<std::error_code, std::string>> recv_within(unio::loop& lp, int fd,
                                                                std::chrono::nanoseconds d) {
  char buf[16];
  auto r = co_await unio::with_timeout(lp, lp.async_recv(fd, buf, sizeof buf), d);
  if (!r) co_return std::pair{r.error(), std::string()};
  co_return std::pair{std::error_code(), std::string(buf, *r)};
}

TEST_P(toolkit, with_timeout_recv_without_data_times_out_and_the_op_is_reaped) {
  auto [a, b] = unio::test::socket_pair();
  ASSERT_GE(a, 0);
  auto lp = make_loop();
  auto [err, got] = unio::sync_wait(*lp, recv_within(*lp, a, 20ms));
  EXPECT_EQ(err, std::errc::timed_out);
  EXPECT_FALSE(lp->poll()) << "the recv and the timer must both be reaped";
  // The cancelled recv took nothing: data sent now is there for the next reader.
  ASSERT_EQ(::send(b, "xy", 2, 0), 2);
  auto [err2, got2] = unio::sync_wait(*lp, recv_within(*lp, a, 1h));
  EXPECT_FALSE(err2) << err2.message();
  EXPECT_EQ(got2, "xy");
  EXPECT_FALSE(lp->poll()) << "the 1 h timer must be cancelled and reaped";
  ::close(a);
  ::close(b);
}

TEST_P(toolkit, with_timeout_recv_with_data_ready_gives_the_data) {
  auto [a, b] = unio::test::socket_pair();
  ASSERT_GE(a, 0);
  ASSERT_EQ(::send(b, "ready", 5, 0), 5);
  auto lp = make_loop();
  auto [err, got] = unio::sync_wait(*lp, recv_within(*lp, a, 1h));
  EXPECT_FALSE(err) << err.message();
  EXPECT_EQ(got, "ready");
  EXPECT_FALSE(lp->poll());
  ::close(a);
  ::close(b);
}

TEST_P(toolkit, with_timeout_racing_a_zero_timeout_never_loses_data) {
  // The data is there and the deadline is now: either may win, but what the recv took is given.
  auto [a, b] = unio::test::socket_pair();
  ASSERT_GE(a, 0);
  auto lp = make_loop();
  for (int i = 0; i < 50; ++i) {
    std::string msg = "m" + std::to_string(i);
    ASSERT_EQ(::send(b, msg.data(), msg.size(), 0), static_cast<ssize_t>(msg.size()));
    auto [err, got] = unio::sync_wait(*lp, recv_within(*lp, a, 0ns));
    if (err) {
      ASSERT_EQ(err, std::errc::timed_out);
      char buf[16];
      ssize_t n = ::recv(a, buf, sizeof buf, 0);
      ASSERT_GT(n, 0) << "timed out, yet the data is gone";
      got.assign(buf, static_cast<std::size_t>(n));
    }
    EXPECT_EQ(got, msg);
    ASSERT_FALSE(lp->poll());
  }
  ::close(a);
  ::close(b);
}

TEST_P(toolkit, with_timeout_accept_without_a_client_times_out) {
  auto ep = unio::endpoint::parse("127.0.0.1", 0);
  ASSERT_TRUE(ep);
  auto l = unio::tcp_listen(*ep);
  ASSERT_TRUE(l) << l.error().message();
  auto lp = make_loop();
  auto t = [](unio::loop& lp, int lfd) -> unio::task<std::error_code> {
    auto r = co_await unio::with_timeout(lp, lp.async_accept(lfd), 20ms);
    if (r) ::close(*r);
    co_return r.error();
  };
  EXPECT_EQ(unio::sync_wait(*lp, t(*lp, *l)), std::errc::timed_out);
  EXPECT_FALSE(lp->poll());
  ::close(*l);
}

TEST_P(toolkit, with_timeout_connect_to_a_full_backlog_times_out) {
  // With backlog 0 the accept queue holds one connection; while nobody accepts, the kernel drops
  // the SYN of the next one, so its connect waits (SYN retries) until it is cancelled.
  auto ep = unio::endpoint::parse("127.0.0.1", 0);
  ASSERT_TRUE(ep);
  auto l = unio::tcp_listen(*ep, 0);
  ASSERT_TRUE(l) << l.error().message();
  auto at = unio::local_endpoint(*l);
  ASSERT_TRUE(at);
  int filler = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(filler, 0);
  ASSERT_EQ(::connect(filler, at->addr(), at->length), 0) << std::strerror(errno);
  auto c = unio::tcp_socket(AF_INET);
  ASSERT_TRUE(c);
  auto lp = make_loop();
  auto t = [](unio::loop& lp, int fd, unio::endpoint at) -> unio::task<std::error_code> {
    auto r = co_await unio::with_timeout(lp, lp.async_connect(fd, at.addr(), at.length), 50ms);
    co_return r.error();
  };
  EXPECT_EQ(unio::sync_wait(*lp, t(*lp, *c, *at)), std::errc::timed_out);
  EXPECT_FALSE(lp->poll());
  ::close(*c);
  ::close(filler);
  ::close(*l);
}

TEST_P(toolkit, with_timeout_read_on_an_empty_pipe_times_out) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  auto lp = make_loop();
  auto t = [](unio::loop& lp, int fd) -> unio::task<std::error_code> {
    char buf[8];
    auto r =
        co_await unio::with_timeout(lp, lp.async_read(fd, buf, sizeof buf, unio::current_position), 20ms);
    co_return r.error();
  };
  EXPECT_EQ(unio::sync_wait(*lp, t(*lp, p[0])), std::errc::timed_out);
  EXPECT_FALSE(lp->poll());
  ASSERT_EQ(::write(p[1], "z", 1), 1);
  char c = 0;
  EXPECT_EQ(::read(p[0], &c, 1), 1) << "the cancelled read took nothing";
  EXPECT_EQ(c, 'z');
  ::close(p[0]);
  ::close(p[1]);
}

TEST_P(toolkit, with_timeout_file_read_completes_with_its_data) {
  put_file("f", "file contents");
  int fd = raw_open("f", O_RDONLY);
  ASSERT_GE(fd, 0);
  auto lp = make_loop();
  auto t = [](unio::loop& lp, int fd) -> unio::task<std::string> {
    char buf[32];
    auto aw = lp.async_read(fd, buf, sizeof buf, 5);  // a named awaitable works too
    auto r = co_await unio::with_timeout(lp, aw, 1h);
    if (!r) co_return "error: " + r.error().message();
    co_return std::string(buf, *r);
  };
  EXPECT_EQ(unio::sync_wait(*lp, t(*lp, fd)), "contents");
  EXPECT_FALSE(lp->poll()) << "the timer must be cancelled and reaped";
  ::close(fd);
}

TEST_P(toolkit, with_timeout_takes_every_single_op_awaitable) {
  put_file("a", "x");
  put_file("b", "y");
  ASSERT_EQ(::symlink("a", path("link").c_str()), 0);
  auto lp = make_loop();
  auto t = [](unio::loop& lp, std::string dir) -> unio::task<std::string> {
    std::string out;
    auto list = co_await unio::with_timeout(lp, lp.async_scandir(AT_FDCWD, dir.c_str()), 1h);
    out += list ? std::to_string(list->size()) + " entries" : list.error().message();
    auto target = co_await unio::with_timeout(lp, lp.async_readlink(AT_FDCWD, (dir + "/link").c_str()), 1h);
    out += ", link -> " + (target ? *target : target.error().message());
    auto value = co_await unio::with_timeout(lp, lp.async_work([] { return 6 * 7; }), 1h);
    out += ", work " + (value ? std::to_string(*value) : value.error().message());
    co_return out;
  };
  EXPECT_EQ(unio::sync_wait(*lp, t(*lp, dir())), "3 entries, link -> a, work 42");
  EXPECT_FALSE(lp->poll()) << "every timer must be cancelled and reaped";
}

TEST_P(toolkit, with_timeout_splice_from_an_empty_pipe_times_out_and_takes_nothing) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  int fd = raw_open("out", O_WRONLY | O_CREAT | O_TRUNC);
  ASSERT_GE(fd, 0);
  auto lp = make_loop();
  auto t = [](unio::loop& lp, int in, int out) -> unio::task<std::error_code> {
    auto r = co_await unio::with_timeout(lp, lp.async_splice(in, unio::current_position, out, 0, 4096), 20ms);
    co_return r.error();
  };
  EXPECT_EQ(unio::sync_wait(*lp, t(*lp, p[0], fd)), std::errc::timed_out);
  EXPECT_FALSE(lp->poll());
  ASSERT_EQ(::write(p[1], "z", 1), 1);
  char c = 0;
  EXPECT_EQ(::read(p[0], &c, 1), 1) << "the cancelled splice took nothing";
  ::close(p[0]);
  ::close(p[1]);
  ::close(fd);
}

TEST_P(toolkit, with_timeout_of_a_longer_sleep) {
  auto lp = make_loop();
  auto t = [](unio::loop& lp) -> unio::task<std::error_code> {
    auto r = co_await unio::with_timeout(lp, lp.async_sleep(1h), 1ms);
    co_return r.error();
  };
  EXPECT_EQ(unio::sync_wait(*lp, t(*lp)), std::errc::timed_out);
  EXPECT_FALSE(lp->poll());
}

TEST_P(toolkit, with_timeout_cancelled_by_someone_else_gives_ecanceled) {
  auto [a, b] = unio::test::socket_pair();
  ASSERT_GE(a, 0);
  auto lp = make_loop();
  auto t = [](unio::loop& lp, int fd) -> unio::task<std::error_code> {
    char buf[8];
    auto aw = lp.async_recv(fd, buf, sizeof buf);
    unio::spawn([](unio::loop& lp, unio::op* target) -> unio::task<void> {
      co_await nops(lp, 1);  // by then the recv waits
      lp.cancel(*target);
    }(lp, &aw.get_op()));
    auto r = co_await unio::with_timeout(lp, aw, 1h);
    co_return r.error();
  };
  EXPECT_EQ(unio::sync_wait(*lp, t(*lp, a)), std::errc::operation_canceled);
  EXPECT_FALSE(lp->poll()) << "the 1 h timer must be cancelled and reaped";
  ::close(a);
  ::close(b);
}

TEST_P(toolkit, with_timeout_inside_when_any_and_when_all) {
  // Several timed recvs at once: the one whose peer sends wins; the others time out.
  auto lp = make_loop();
  std::vector<std::pair<int, int>> pairs;
  for (int i = 0; i < 4; ++i) {
    pairs.push_back(unio::test::socket_pair());
    ASSERT_GE(pairs.back().first, 0);
  }
  ASSERT_EQ(::send(pairs[2].second, "two", 3, 0), 3);
  std::vector<unio::task<std::pair<std::error_code, std::string>>> ts;
  for (auto& p : pairs)
    ts.push_back(recv_within(*lp, p.first, 30ms));
  auto all = unio::sync_wait(*lp, unio::when_all(std::move(ts)));
  ASSERT_EQ(all.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    if (i == 2) {
      EXPECT_FALSE(all[i].first);
      EXPECT_EQ(all[i].second, "two");
    } else {
      EXPECT_EQ(all[i].first, std::errc::timed_out) << i;
    }
  }
  EXPECT_FALSE(lp->poll());
  for (auto& p : pairs) {
    ::close(p.first);
    ::close(p.second);
  }
}

INSTANTIATE_ALL_BACKENDS(toolkit);

}  // namespace
