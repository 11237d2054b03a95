// Description: timeout ops fire in deadline order (ties in submission order), a 0 timeout fires, and no timer is ever early.
#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

#include "common.hpp"

namespace {

using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;
using unio::test::conformance_test;

class timers : public conformance_test {};

struct timer_rec {
  std::chrono::nanoseconds d{};
  clk::time_point before, after;  // steady_clock around the submission
  clk::time_point fired;
  clk::time_point loop_now;
  std::int64_t res = 1;
  int calls = 0;
  int order = -1;
};

// Submits one timeout per duration and runs the loop; returns the records.
std::vector<timer_rec> fire_all(unio::loop& lp, const std::vector<std::chrono::nanoseconds>& ds) {
  std::vector<timer_rec> recs(ds.size());
  std::vector<unio::op> ops(ds.size());
  int next = 0;
  for (std::size_t i = 0; i < ds.size(); ++i) {
    recs[i].d = ds[i];
    recs[i].before = clk::now();
    lp.timeout(ops[i], ds[i], [&, i](unio::op& o) {
      recs[i].fired = clk::now();
      recs[i].loop_now = lp.now();
      recs[i].res = o.raw_result();
      recs[i].order = next++;
      ++recs[i].calls;
    });
    recs[i].after = clk::now();
  }
  lp.run();
  return recs;
}

void expect_all_fired_never_early(const std::vector<timer_rec>& recs) {
  for (std::size_t i = 0; i < recs.size(); ++i) {
    const auto& r = recs[i];
    ASSERT_EQ(r.calls, 1) << "timer " << i;
    EXPECT_EQ(r.res, 0) << "timer " << i;
    EXPECT_GE(r.fired, r.before + r.d) << "timer " << i << " (" << r.d.count() << " ns) fired early by "
                                       << (r.before + r.d - r.fired).count() << " ns";
    EXPECT_GE(r.loop_now, r.before + r.d) << "loop::now() inside the handler is before the deadline";
  }
}

TEST_P(timers, zero_and_negative_timeouts_fire) {
  auto lp = make_loop();
  auto recs = fire_all(*lp, {0ns, -5ms, 0ns});
  expect_all_fired_never_early(recs);
}

TEST_P(timers, never_early) {
  auto lp = make_loop();
  auto recs = fire_all(*lp, {1ns, 1us, 50us, 100us, 500us, 1ms, 2ms, 3ms});
  expect_all_fired_never_early(recs);
}

TEST_P(timers, fire_in_deadline_order) {
  auto lp = make_loop();
  // Durations far apart compared to the time it takes to submit them; the check below only
  // relies on what the clock readings around each submission prove.
  auto recs = fire_all(*lp, {8ms, 2ms, 6ms, 0ms, 4ms, 10ms, 1ms});
  expect_all_fired_never_early(recs);
  for (std::size_t i = 0; i < recs.size(); ++i) {
    for (std::size_t j = 0; j < recs.size(); ++j) {
      // If j's deadline is certainly earlier than i's, j must have fired first.
      if (recs[j].after + recs[j].d < recs[i].before + recs[i].d) {
        EXPECT_LT(recs[j].order, recs[i].order) << "timer " << j << " (" << recs[j].d.count() << " ns) vs timer "
                                                << i << " (" << recs[i].d.count() << " ns)";
      }
    }
  }
}

TEST_P(timers, many_random_timers_fire_in_deadline_order) {
  std::mt19937 rng(42);
  std::vector<std::chrono::nanoseconds> ds;
  for (int i = 0; i < 500; ++i) ds.push_back(std::chrono::microseconds(rng() % 3000));
  auto lp = make_loop();
  auto recs = fire_all(*lp, ds);
  expect_all_fired_never_early(recs);
  std::vector<std::size_t> by_order(recs.size());
  for (std::size_t i = 0; i < recs.size(); ++i) by_order[static_cast<std::size_t>(recs[i].order)] = i;
  // Consecutive firings: the later one's deadline cannot be certainly earlier.
  for (std::size_t k = 1; k < by_order.size(); ++k) {
    const auto& a = recs[by_order[k - 1]];
    const auto& b = recs[by_order[k]];
    EXPECT_FALSE(b.after + b.d < a.before + a.d) << "inversion at firing " << k;
  }
}

TEST_P(timers, equal_durations_fire_in_submission_order) {
  // Deadlines are submission time + d, so equal durations give non-decreasing deadlines in
  // submission order whatever the scheduling: the order is deterministic.
  auto lp = make_loop();
  for (std::chrono::nanoseconds d : {0ns, 1000000ns}) {
    auto recs = fire_all(*lp, std::vector<std::chrono::nanoseconds>(200, d));
    expect_all_fired_never_early(recs);
    for (std::size_t i = 0; i < recs.size(); ++i) EXPECT_EQ(recs[i].order, static_cast<int>(i)) << "d=" << d.count();
  }
}

TEST_P(timers, periodic_timer_resubmitted_from_its_handler) {
  auto lp = make_loop();
  unio::op t;
  int ticks = 0;
  clk::time_point last = clk::now();
  std::function<void(unio::op&)> tick = [&](unio::op& o) {
    EXPECT_EQ(o.raw_result(), 0);
    EXPECT_GE(clk::now(), last + 200us);
    ++ticks;
    last = clk::now();
    if (ticks < 20) lp->timeout(o, 200us, [&](unio::op& x) { tick(x); });
  };
  lp->timeout(t, 200us, [&](unio::op& x) { tick(x); });
  lp->run();
  EXPECT_EQ(ticks, 20);
}

TEST_P(timers, async_sleep_never_early) {
  auto lp = make_loop();
  auto start = clk::now();
  auto r = unio::sync_wait(*lp, [&]() -> unio::task<unio::result<void>> {
    auto r1 = co_await lp->async_sleep(1ms);
    if (!r1) co_return r1;
    co_return co_await lp->async_sleep(0ns);
  }());
  EXPECT_TRUE(r) << r.error().message();
  EXPECT_GE(clk::now(), start + 1ms);
}

TEST_P(timers, timer_fires_while_io_waits) {
  // A timer must not be held up by a socket op waiting for data.
  auto [x, y] = unio::test::socket_pair();
  ASSERT_GE(x, 0);
  auto lp = make_loop();
  unio::op r, t;
  char buf[4];
  std::int64_t rres = 1;
  bool fired = false;
  lp->recv(r, x, buf, sizeof buf, 0, [&](unio::op& o) { rres = o.raw_result(); });
  lp->timeout(t, 2ms, [&](unio::op&) {
    fired = true;
    EXPECT_TRUE(r.busy());
    lp->cancel(r);
  });
  lp->run();
  EXPECT_TRUE(fired);
  EXPECT_EQ(rres, unio::test::neg(ECANCELED));
  ::close(x);
  ::close(y);
}

TEST_P(timers, cancelling_timers_in_the_middle_of_the_heap) {
  // Cancel every third of 300 timers (removal from arbitrary heap positions): the cancelled
  // ones complete with ECANCELED, the others still fire, never early, in deadline order.
  std::mt19937 rng(7);
  constexpr int n = 300;
  auto lp = make_loop();
  std::vector<timer_rec> recs(n);
  std::vector<unio::op> ops(n);
  int next = 0;
  for (int i = 0; i < n; ++i) {
    recs[i].d = std::chrono::microseconds(rng() % 2000);
    recs[i].before = clk::now();
    lp->timeout(ops[i], recs[i].d, [&, i](unio::op& o) {
      recs[i].fired = clk::now();
      recs[i].res = o.raw_result();
      recs[i].order = next++;
      ++recs[i].calls;
    });
    recs[i].after = clk::now();
  }
  for (int i = 0; i < n; i += 3) lp->cancel(ops[i]);
  lp->run();
  std::vector<int> fired;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(recs[i].calls, 1) << i;
    if (i % 3 == 0) {
      EXPECT_EQ(recs[i].res, unio::test::neg(ECANCELED)) << i;
      continue;
    }
    EXPECT_EQ(recs[i].res, 0) << i;
    EXPECT_GE(recs[i].fired, recs[i].before + recs[i].d) << i;
    fired.push_back(i);
  }
  std::sort(fired.begin(), fired.end(), [&](int a, int b) { return recs[a].order < recs[b].order; });
  for (std::size_t k = 1; k < fired.size(); ++k) {
    const auto& a = recs[fired[k - 1]];
    const auto& b = recs[fired[k]];
    EXPECT_FALSE(b.after + b.d < a.before + a.d) << "inversion between timers " << fired[k - 1] << " and " << fired[k];
  }
}

INSTANTIATE_ALL_BACKENDS(timers);

}  // namespace
