// Description: unio::signal_set on every backend: the signal's number in both forms, pending
// signals kept for the next wait, cancel and destruction (ECANCELED, signals stay blocked), one
// reader per signal, a pool made before the set never takes its signals, SIGCHLD, add/remove.
// Signals are sent by timers on the loop or before the wait, never raced against a clock.
// Only SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD and a real-time signal are used: their default action
// is harmless or the test blocks them first.
#include <signal.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"

using namespace std::chrono_literals;

namespace {

// Blocks `sig` in this thread and throws away any occurrence pending from an earlier test.
void block_and_clear(int sig) {
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  ::pthread_sigmask(SIG_BLOCK, &one, nullptr);
  timespec zero{};
  while (::sigtimedwait(&one, nullptr, &zero) > 0) {
  }
}

bool blocked_here(int sig) {
  sigset_t cur;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &cur);
  return sigismember(&cur, sig) == 1;
}

bool pending(int sig) {
  sigset_t p;
  ::sigpending(&p);
  return sigismember(&p, sig) == 1;
}

void send_self(int sig) { ASSERT_EQ(::kill(::getpid(), sig), 0); }

unio::task<unio::result<int>> wait_one(unio::signal_set& s) { co_return co_await s.async_wait(); }

class signal_set_test : public unio::test::conformance_test {};

TEST_P(signal_set_test, async_wait_gives_the_number_of_the_signal_that_arrived) {
  block_and_clear(SIGUSR2);
  auto lp = make_loop();
  unio::signal_set sigs(*lp, {SIGUSR1, SIGUSR2});
  EXPECT_TRUE(blocked_here(SIGUSR1));
  EXPECT_TRUE(blocked_here(SIGUSR2));
  unio::op t;
  lp->timeout(t, 1ms, [](unio::op&) { send_self(SIGUSR2); });
  auto r = unio::sync_wait(*lp, wait_one(sigs));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, SIGUSR2);
  lp->run();
}

// A signal that arrives while nobody waits stays pending and goes to the next wait, here in the
// callback form.
TEST_P(signal_set_test, a_signal_sent_before_the_wait_is_kept_for_it) {
  block_and_clear(SIGWINCH);
  auto lp = make_loop();
  unio::signal_set sigs(*lp, {SIGWINCH});
  send_self(SIGWINCH);
  unio::op o;
  int calls = 0, got = 0;
  sigs.wait(o, [&](unio::op&, unio::result<int> r) {
    ++calls;
    got = r.value_or(-1);
  });
  EXPECT_EQ(calls, 0) << "the handler ran inside wait()";
  lp->run();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got, SIGWINCH);
  EXPECT_FALSE(pending(SIGWINCH));
}

TEST_P(signal_set_test, cancel_and_loop_cancel_complete_waits_with_ecanceled) {
  block_and_clear(SIGUSR1);
  auto lp = make_loop();
  unio::signal_set sigs(*lp, {SIGUSR1});
  unio::op a, b, t;
  std::error_code ea, eb;
  sigs.wait(a, [&](unio::op&, unio::result<int> r) { ea = r.error(); });
  sigs.wait(b, [&](unio::op&, unio::result<int> r) { eb = r.error(); });
  lp->timeout(t, 1ms, [&](unio::op&) {
    lp->cancel(a);
    sigs.cancel();
  });
  lp->run();
  EXPECT_EQ(ea, std::errc::operation_canceled);
  EXPECT_EQ(eb, std::errc::operation_canceled);
  auto timed = AWAIT(*lp, unio::with_timeout(*lp, sigs.async_wait(), 2ms));
  EXPECT_EQ(timed.error(), std::errc::timed_out);
}

// Destroying the set completes its waits with ECANCELED; its signals stay blocked, and one sent
// afterwards stays pending until the next set takes it.
TEST_P(signal_set_test, destruction_cancels_waits_and_leaves_the_signals_blocked_and_pending) {
  block_and_clear(SIGUSR1);
  auto lp = make_loop();
  auto sigs = std::make_unique<unio::signal_set>(*lp, std::initializer_list<int>{SIGUSR1});
  unio::op w, t;
  std::error_code e;
  int calls = 0;
  sigs->wait(w, [&](unio::op&, unio::result<int> r) {
    ++calls;
    e = r.error();
  });
  lp->timeout(t, 1ms, [&](unio::op&) { sigs.reset(); });
  lp->run();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(e, std::errc::operation_canceled);
  EXPECT_TRUE(blocked_here(SIGUSR1));
  send_self(SIGUSR1);
  EXPECT_TRUE(pending(SIGUSR1)) << "the signal was not kept";
  unio::signal_set next(*lp, {SIGUSR1});
  auto r = unio::sync_wait(*lp, wait_one(next));
  EXPECT_EQ(r.value_or(-1), SIGUSR1);
}

// The pool is made (and its workers started) while SIGUSR1 is still unblocked here; then the set
// blocks it here. Every process-directed SIGUSR1 must reach the set: a worker that had it
// unblocked would take it and die of its default action, with the whole test binary.
TEST_P(signal_set_test, a_pool_made_before_the_set_never_takes_its_signals) {
  block_and_clear(SIGUSR1);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, SIGUSR1);
  ::pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  auto lp = make_loop();
  const auto loop_thread = std::this_thread::get_id();
  auto on_worker =
      AWAIT(*lp, lp->async_work([] { return std::make_pair(blocked_here(SIGUSR1), blocked_here(SIGTERM)); }));
  ASSERT_TRUE(on_worker) << on_worker.error().message();
  unio::signal_set sigs(*lp, {SIGUSR1});
  if (unio::test::backend_of(GetParam()) != "sync") {  // sync runs work on this thread
    EXPECT_TRUE(on_worker->first) << "a pool worker has SIGUSR1 unblocked";
    EXPECT_TRUE(on_worker->second) << "a pool worker has SIGTERM unblocked";
  }
  for (int i = 0; i < 5; ++i) {
    send_self(SIGUSR1);
    auto r = unio::sync_wait(*lp, wait_one(sigs));
    ASSERT_EQ(r.value_or(-1), SIGUSR1) << "signal " << i;
  }
  EXPECT_EQ(std::this_thread::get_id(), loop_thread);
}

// Two sets wait for the same signal: one occurrence goes to exactly one of them; the other
// still waits (and gets the next occurrence).
TEST_P(signal_set_test, each_occurrence_goes_to_one_reader_only) {
  block_and_clear(SIGUSR2);
  auto lp = make_loop();
  unio::signal_set a(*lp, {SIGUSR2}), b(*lp, {SIGUSR2});
  unio::op wa, wb, t;
  int got_a = 0, got_b = 0;
  a.wait(wa, [&](unio::op&, unio::result<int> r) {
    got_a = r.value_or(-r.error().value());
    b.cancel();
  });
  b.wait(wb, [&](unio::op&, unio::result<int> r) {
    got_b = r.value_or(-r.error().value());
    a.cancel();
  });
  lp->timeout(t, 1ms, [](unio::op&) { send_self(SIGUSR2); });
  lp->run();
  EXPECT_TRUE((got_a == SIGUSR2 && got_b == -ECANCELED) || (got_b == SIGUSR2 && got_a == -ECANCELED))
      << got_a << " " << got_b;
  unio::signal_set& loser = got_a == SIGUSR2 ? b : a;
  send_self(SIGUSR2);
  EXPECT_EQ(unio::sync_wait(*lp, wait_one(loser)).value_or(-1), SIGUSR2);
}

TEST_P(signal_set_test, sigchld_arrives_when_a_spawned_child_exits) {
  block_and_clear(SIGCHLD);
  auto lp = make_loop();
  unio::signal_set sigs(*lp, {SIGCHLD});
  std::vector<std::string> argv{"true"};
  auto p = AWAIT(*lp, lp->async_spawn(argv));
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(unio::sync_wait(*lp, wait_one(sigs)).value_or(-1), SIGCHLD);
  auto st = AWAIT(*lp, p->async_wait());
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_TRUE(st->success());
}

TEST_P(signal_set_test, add_and_remove_change_what_the_set_receives) {
  block_and_clear(SIGUSR1);
  block_and_clear(SIGUSR2);
  auto lp = make_loop();
  unio::signal_set sigs(*lp, {SIGUSR1});
  EXPECT_FALSE(sigs.contains(SIGUSR2));
  EXPECT_FALSE(sigs.add(SIGUSR2));
  EXPECT_TRUE(sigs.contains(SIGUSR2));
  send_self(SIGUSR2);
  EXPECT_EQ(unio::sync_wait(*lp, wait_one(sigs)).value_or(-1), SIGUSR2);
  EXPECT_FALSE(sigs.remove(SIGUSR2));
  EXPECT_FALSE(sigs.contains(SIGUSR2));
  EXPECT_TRUE(blocked_here(SIGUSR2)) << "remove() unblocked the signal";
  send_self(SIGUSR2);
  send_self(SIGUSR1);
  EXPECT_EQ(unio::sync_wait(*lp, wait_one(sigs)).value_or(-1), SIGUSR1);
  EXPECT_TRUE(pending(SIGUSR2)) << "a removed signal was taken";
  block_and_clear(SIGUSR2);
}

TEST_P(signal_set_test, real_time_signals_queue_and_invalid_numbers_are_einval) {
  const int rt = SIGRTMIN + 3;
  block_and_clear(rt);
  auto lp = make_loop();
  unio::signal_set sigs(*lp, {rt});
  send_self(rt);
  send_self(rt);
  EXPECT_EQ(unio::sync_wait(*lp, wait_one(sigs)).value_or(-1), rt);
  EXPECT_EQ(unio::sync_wait(*lp, wait_one(sigs)).value_or(-1), rt) << "the second occurrence was merged";
  EXPECT_EQ(sigs.add(0), std::errc::invalid_argument);
  EXPECT_EQ(sigs.add(SIGKILL), std::errc::invalid_argument);
  EXPECT_EQ(sigs.add(NSIG), std::errc::invalid_argument);
  EXPECT_THROW(unio::signal_set(*lp, {SIGSTOP}), std::system_error);
}

INSTANTIATE_ALL_BACKENDS(signal_set_test);

}  // namespace
