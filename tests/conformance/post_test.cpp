// Description: post() from many threads runs every function exactly once on the loop thread; keep_alive and stop() from other threads.
#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "common.hpp"

namespace {

using namespace std::chrono_literals;
using unio::test::conformance_test;

class post : public conformance_test {};

TEST_P(post, from_eight_threads_each_runs_once_on_the_loop_thread) {
  constexpr int k_threads = 8;
  constexpr int k_per_thread = 2000;
  auto lp = make_loop();
  const auto loop_thread = std::this_thread::get_id();
  // Touched only on the loop thread; TSan reports it if a function runs elsewhere.
  std::vector<int> runs(k_threads * k_per_thread, 0);
  int off_thread = 0;
  std::vector<std::thread> threads;
  {
    unio::loop::keep_alive guard(*lp);
    for (int t = 0; t < k_threads; ++t) {
      threads.emplace_back([&, t, ka = guard] {
        for (int i = 0; i < k_per_thread; ++i) {
          const int id = t * k_per_thread + i;
          lp->post([&, id] {
            if (std::this_thread::get_id() != loop_thread) ++off_thread;
            ++runs[static_cast<std::size_t>(id)];
          });
          if (i % 256 == 0) std::this_thread::yield();
        }
        (void)ka;  // the copy dies with this thread's function, releasing the loop
      });
    }
  }
  lp->run();  // returns once every thread has dropped its keep_alive and all posts ran
  for (auto& th : threads) th.join();
  lp->run();  // nothing may be left over
  EXPECT_EQ(off_thread, 0);
  for (std::size_t i = 0; i < runs.size(); ++i) ASSERT_EQ(runs[i], 1) << "posted function " << i;
}

TEST_P(post, posted_from_a_handler_runs_in_a_later_turn) {
  auto lp = make_loop();
  unio::op o;
  bool ran = false, ran_inside = false;
  lp->nop(o, [&](unio::op&) {
    lp->post([&] { ran = true; });
    ran_inside = ran;
  });
  lp->run();
  EXPECT_FALSE(ran_inside) << "post() ran the function inline";
  EXPECT_TRUE(ran);
}

TEST_P(post, wakes_a_loop_sleeping_on_keep_alive_only) {
  auto lp = make_loop();
  std::optional<unio::loop::keep_alive> guard(std::in_place, *lp);
  std::atomic<bool> started{false};
  bool ran = false;
  std::thread th([&] {
    while (!started.load()) std::this_thread::yield();
    // Whether the loop is already asleep or not, the post must be seen.
    lp->post([&] {
      ran = true;
      guard.reset();  // the loop thread drops the last keep_alive: run() returns
    });
  });
  lp->post([&] { started.store(true); });
  lp->run();
  th.join();
  EXPECT_TRUE(ran);
}

TEST_P(post, stop_from_another_thread_returns_with_a_timer_armed) {
  auto lp = make_loop();
  unio::op t;
  std::int64_t res = 1;
  lp->timeout(t, 1h, [&](unio::op& o) { res = o.raw_result(); });
  std::atomic<bool> go{false};
  std::thread th([&] {
    while (!go.load()) std::this_thread::yield();
    lp->stop();
  });
  lp->post([&] { go.store(true); });
  lp->run();  // returns because of stop(), not for lack of work
  th.join();
  EXPECT_TRUE(t.busy()) << "stop() must leave ops in flight";
  lp->cancel(t);
  lp->run();
  EXPECT_EQ(res, unio::test::neg(ECANCELED));
}

TEST_P(post, keep_alive_released_from_another_thread_ends_run) {
  auto lp = make_loop();
  auto* guard = new unio::loop::keep_alive(*lp);
  std::atomic<bool> go{false};
  std::thread th([&] {
    while (!go.load()) std::this_thread::yield();
    delete guard;  // destroyable from any thread; wakes the loop
  });
  lp->post([&] { go.store(true); });
  lp->run();
  th.join();
  SUCCEED();  // reaching here is the assertion: run() returned (the watchdog catches a hang)
}

INSTANTIATE_ALL_BACKENDS(post);

}  // namespace
