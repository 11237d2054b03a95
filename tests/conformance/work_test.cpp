// Description: work on the loop's pool (loop::queue_work, async_work): values, threads,
// exceptions, cancellation and loop shutdown with work queued and running, on every backend.
#include <signal.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"

namespace {

using unio::test::conformance_test;

class work : public conformance_test {
 protected:
  bool is_sync() const { return unio::test::backend_of(GetParam()) == "sync"; }
};

TEST_P(work, async_work_yields_the_value_and_runs_off_the_loop_thread) {
  auto lp = make_loop();
  const auto loop_thread = std::this_thread::get_id();
  std::thread::id ran_on;
  auto r =
      unio::sync_wait(*lp, [](unio::loop& lp, std::thread::id& on) -> unio::task<unio::result<std::string>> {
        co_return co_await lp.async_work([&on] {
          on = std::this_thread::get_id();
          return std::string("forty-two");
        });
      }(*lp, ran_on));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, "forty-two");
  if (lp->backend_name() == "sync")
    EXPECT_EQ(ran_on, loop_thread) << "sync runs work inline in poll()";
  else
    EXPECT_NE(ran_on, loop_thread) << "work ran on the loop's thread on " << lp->backend_name();
}

TEST_P(work, async_work_of_a_void_function_gives_result_void) {
  auto lp = make_loop();
  int ran = 0;
  auto r = unio::sync_wait(*lp, [](unio::loop& lp, int& ran) -> unio::task<unio::result<void>> {
    co_return co_await lp.async_work([&ran] { ++ran; });
  }(*lp, ran));
  EXPECT_TRUE(r) << r.error().message();
  EXPECT_EQ(ran, 1);
}

// The form docs/ops.md asks for under GCC 12: a function owning its captures is named before the
// co_await (GCC 12.2 destroys such a lambda twice when it is written inside the co_await).
TEST_P(work, a_function_owning_its_captures_is_destroyed_once) {
  auto lp = make_loop();
  auto owned = std::make_shared<int>(7);
  std::weak_ptr<int> watch = owned;
  auto r = unio::sync_wait(
      *lp, [](unio::loop& lp, std::shared_ptr<int> keep) -> unio::task<unio::result<std::size_t>> {
        std::string text(5000, 'x');
        auto fn = [t = std::move(text), k = std::move(keep)] {
          return t.size() + static_cast<std::size_t>(*k) + static_cast<std::size_t>(k.use_count());
        };
        co_return co_await lp.async_work(std::move(fn));
      }(*lp, std::move(owned)));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 5000u + 7u + 1u) << "the function held the only reference";
  EXPECT_TRUE(watch.expired()) << "the captures were freed with the awaitable";
}

TEST_P(work, fn_never_runs_inside_the_submitting_call) {
  auto lp = make_loop();
  std::atomic<int> ran{0};
  unio::op o;
  int calls = 0;
  lp->queue_work(
      o, [&ran] { return ++ran; },
      [&](unio::op&, unio::result<int> r, std::exception_ptr ex) {
        ++calls;
        EXPECT_TRUE(r);
        EXPECT_EQ(ex, nullptr);
      });
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(o.busy());
  lp->run();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(o.raw_result(), 0);
}

TEST_P(work, exception_from_fn_is_rethrown_at_co_await) {
  auto lp = make_loop();
  auto t = [](unio::loop& lp) -> unio::task<std::string> {
    try {
      auto r = co_await lp.async_work([]() -> int { throw std::runtime_error("boom"); });
      co_return "no exception, result " + std::string(r ? "value" : r.error().message());
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
  };
  EXPECT_EQ(unio::sync_wait(*lp, t(*lp)), "boom");
}

TEST_P(work, callback_form_delivers_the_exception_with_k_work_threw) {
  auto lp = make_loop();
  unio::op o;
  int calls = 0;
  std::string what;
  unio::result<int> got = unio::errno_code(0);
  lp->queue_work(
      o, []() -> int { throw std::logic_error("bad input"); },
      [&](unio::op&, unio::result<int> r, std::exception_ptr ex) {
        ++calls;
        got = r;
        try {
          if (ex) std::rethrow_exception(ex);
        } catch (const std::logic_error& e) {
          what = e.what();
        }
      });
  lp->run();
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(got);
  EXPECT_EQ(got.error(), unio::errno_code(unio::k_work_threw));
  EXPECT_EQ(what, "bad input");
  EXPECT_EQ(o.raw_result(), -unio::k_work_threw);
}

TEST_P(work, cancelled_while_queued_completes_with_ecanceled_and_never_runs) {
  auto lp = make_loop();
  std::atomic<int> ran{0};
  unio::op* target = nullptr;
  unio::result<int> got = 0;
  bool done = false;
  unio::spawn([](unio::loop& lp, std::atomic<int>& ran, unio::op*& target, unio::result<int>& got,
                 bool& done) -> unio::task<void> {
    auto aw = lp.async_work([&ran] { return ++ran; });
    target = &aw.get_op();
    got = co_await aw;
    done = true;
  }(*lp, ran, target, got, done));
  ASSERT_NE(target, nullptr);
  EXPECT_TRUE(target->busy());
  lp->cancel(*target);
  lp->run();
  EXPECT_TRUE(done);
  EXPECT_EQ(got.error(), unio::errno_code(ECANCELED));
  EXPECT_EQ(ran.load(), 0);
}

// 10000 items; every third is cancelled at once (still queued: it must never run), every
// seventh after the loop has turned once (it may have started: ECANCELED or its value).
TEST_P(work, ten_thousand_items_with_cancels_each_complete_exactly_once) {
  constexpr int k_items = 10000;
  auto lp = make_loop();
  auto ops = std::make_unique<unio::op[]>(k_items);
  auto ran = std::make_unique<std::atomic<int>[]>(k_items);
  std::vector<int> calls(k_items, 0);
  std::vector<std::int64_t> value(k_items, -1);
  std::vector<int> err(k_items, 0);
  for (int i = 0; i < k_items; ++i) {
    lp->queue_work(
        ops[i], [&ran, i] { return ran[i].fetch_add(1) + 1 + i * 10; },
        [&, i](unio::op&, unio::result<int> r, std::exception_ptr ex) {
          ++calls[i];
          EXPECT_EQ(ex, nullptr);
          if (r)
            value[i] = *r;
          else
            err[i] = r.error().value();
        });
    if (i % 3 == 0) lp->cancel(ops[i]);
  }
  lp->run_once();
  for (int i = 0; i < k_items; ++i)
    if (i % 7 == 0 && i % 3 != 0) lp->cancel(ops[i]);
  lp->run();
  int cancelled = 0, ran_count = 0;
  for (int i = 0; i < k_items; ++i) {
    ASSERT_EQ(calls[i], 1) << "item " << i;
    ASSERT_FALSE(ops[i].busy());
    int n = ran[i].load();
    ASSERT_LE(n, 1) << "item " << i << " ran twice";
    ran_count += n;
    if (i % 3 == 0) {
      EXPECT_EQ(n, 0) << "item " << i << " was cancelled while queued but ran";
      EXPECT_EQ(err[i], ECANCELED) << "item " << i;
    } else if (n == 1) {
      EXPECT_EQ(value[i], 1 + i * 10) << "item " << i;
    } else {
      EXPECT_EQ(i % 7, 0) << "item " << i << " never ran but was not cancelled";
      EXPECT_EQ(err[i], ECANCELED) << "item " << i;
    }
    if (err[i] == ECANCELED) ++cancelled;
  }
  EXPECT_EQ(ran_count + cancelled, k_items);
  EXPECT_GE(cancelled, (k_items + 2) / 3);
}

// Destroying the loop with work running (pool workers blocked inside fn) and work queued (not
// yet handed to the pool): the queued work completes with ECANCELED without running, the
// destructor waits for the running work, and every handler runs exactly once.
TEST_P(work, loop_destruction_cancels_queued_work_and_waits_for_running_work) {
  auto opts = options();
  opts.pool_size = 2;
  auto lp = std::make_unique<unio::loop>(opts);
  const int blockers = is_sync() ? 0 : 2;  // sync would run a blocker inline and never return
  std::atomic<int> started{0};
  std::atomic<bool> go{false};
  std::vector<std::unique_ptr<unio::op>> ops;
  std::vector<int> calls, values, errs;
  constexpr int k_queued = 50;
  calls.assign(blockers + k_queued, 0);
  values.assign(blockers + k_queued, -1);
  errs.assign(blockers + k_queued, 0);
  std::atomic<int> queued_ran{0};
  auto handler = [&](int i) {
    return [&, i](unio::op&, unio::result<int> r, std::exception_ptr) {
      ++calls[i];
      if (r)
        values[i] = *r;
      else
        errs[i] = r.error().value();
    };
  };
  for (int i = 0; i < blockers; ++i) {
    ops.push_back(std::make_unique<unio::op>());
    lp->queue_work(
        *ops.back(),
        [&started, &go, i] {
          started.fetch_add(1);
          while (!go.load())
            go.wait(false);
          return 100 + i;
        },
        handler(i));
  }
  while (started.load() < blockers) {
    lp->poll();
    std::this_thread::yield();
  }
  for (int i = blockers; i < blockers + k_queued; ++i) {
    ops.push_back(std::make_unique<unio::op>());
    lp->queue_work(
        *ops.back(), [&queued_ran] { return queued_ran.fetch_add(1); }, handler(i));
  }
  std::thread releaser([&] {
    go.store(true);
    go.notify_all();
  });
  lp.reset();
  releaser.join();
  for (int i = 0; i < blockers + k_queued; ++i)
    EXPECT_EQ(calls[i], 1) << "item " << i;
  for (int i = 0; i < blockers; ++i)
    EXPECT_EQ(values[i], 100 + i) << "running work keeps its result";
  for (int i = blockers; i < blockers + k_queued; ++i)
    EXPECT_EQ(errs[i], ECANCELED) << "item " << i;
  EXPECT_EQ(queued_ran.load(), 0);
}

// Work submitted from a handler during the loop's destruction completes with ECANCELED at once.
TEST_P(work, work_submitted_during_destruction_is_cancelled) {
  auto lp = std::make_unique<unio::loop>(options());
  unio::loop& l = *lp;  // unique_ptr::reset() nulls lp before the destructor runs the handlers
  unio::op first, second;
  std::atomic<int> ran{0};
  int second_err = 0, calls = 0;
  lp->timeout(first, std::chrono::hours(1), [&](unio::op&) {
    l.queue_work(
        second, [&ran] { return ++ran; },
        [&](unio::op&, unio::result<int> r, std::exception_ptr) {
          ++calls;
          second_err = r ? 0 : r.error().value();
        });
  });
  lp.reset();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(second_err, ECANCELED);
  EXPECT_EQ(ran.load(), 0);
}

// Work is a busy op: run() does not return while fn is still running on the pool.
TEST_P(work, running_work_keeps_run_going) {
  auto lp = make_loop();
  std::atomic<bool> started{false}, go{false};
  unio::op o;
  int calls = 0, value = 0;
  lp->queue_work(
      o,
      [&] {
        started.store(true);
        started.notify_all();
        while (!go.load())
          go.wait(false);
        return 7;
      },
      [&](unio::op&, unio::result<int> r, std::exception_ptr) {
        ++calls;
        value = r.value_or(-1);
      });
  std::thread releaser([&] {
    started.wait(false);
    go.store(true);
    go.notify_all();
  });
  lp->run();
  releaser.join();
  EXPECT_EQ(calls, 1) << "run() returned while work was still running";
  EXPECT_EQ(value, 7);
}

// The pool's workers start with every asynchronous signal blocked, whatever the creating thread
// had (here SIGTERM and SIGUSR2 unblocked), so a process-directed signal meant for a signalfd
// never runs its default action on a worker; the synchronous ones stay unblocked (a fault on a
// worker must reach the program's handler).
TEST_P(work, pool_threads_start_with_asynchronous_signals_blocked) {
  if (is_sync()) GTEST_SKIP() << "sync runs work on the loop's thread: no pool thread";
  sigset_t two, old;
  sigemptyset(&two);
  sigaddset(&two, SIGTERM);
  sigaddset(&two, SIGUSR2);
  ::pthread_sigmask(SIG_UNBLOCK, &two, &old);
  auto lp = make_loop();
  auto mask = AWAIT(*lp, lp->async_work([] {
    sigset_t m;
    ::pthread_sigmask(SIG_BLOCK, nullptr, &m);
    return m;
  }));
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(mask) << mask.error().message();
  for (int sig : {SIGTERM, SIGUSR2, SIGINT, SIGHUP, SIGCHLD, SIGPIPE})
    EXPECT_EQ(sigismember(&*mask, sig), 1) << "signal " << sig << " unblocked on a worker";
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL})
    EXPECT_EQ(sigismember(&*mask, sig), 0) << "synchronous signal " << sig << " blocked on a worker";
}

INSTANTIATE_ALL_BACKENDS(work);

}  // namespace
