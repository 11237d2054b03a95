// Description: unio::fs_watch (inotify) on every backend: the kind and name of each event, moves
// paired by cookie, is_dir, events of a watched file, a batch read once and handed out one by
// one, overflow reported as an event, the end of a watch (self_deleted, watch_removed, ENOENT),
// errors at construction, cancel, destruction with a next in flight, EBUSY. Changes are made
// with plain system calls before the next, or by a timer on the loop while it waits.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common.hpp"

using namespace std::chrono_literals;

namespace {

using unio::fs_event;
using kind = unio::fs_event_kind;

unio::result<fs_event> next_of(unio::loop& lp, unio::fs_watch& w) { return AWAIT(lp, w.async_next()); }

// The next `n` events, or the first error.
unio::result<std::vector<fs_event>> next_n(unio::loop& lp, unio::fs_watch& w, std::size_t n) {
  std::vector<fs_event> out;
  while (out.size() < n) {
    auto ev = next_of(lp, w);
    if (!ev) return ev.error();
    out.push_back(std::move(*ev));
  }
  return out;
}

std::string describe(const std::vector<fs_event>& evs) {
  std::string s;
  for (const fs_event& e : evs)
    s += std::string(unio::to_string(e.kind)) + ":" + e.name + (e.is_dir ? "/" : "") + " ";
  return s;
}

class fs_watch_test : public unio::test::conformance_test {};

// Events queued before the first next are read in one batch; the later ones are buffered, so
// their awaitable is ready without a loop turn.
TEST_P(fs_watch_test, created_modified_deleted_come_in_order_from_one_batch) {
  auto lp = make_loop();
  unio::fs_watch w(*lp, dir(), IN_CREATE | IN_MODIFY | IN_DELETE);
  put_file("a", "data");
  ASSERT_EQ(::unlink(path("a").c_str()), 0);
  auto first = next_of(*lp, w);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(first->kind, kind::created);
  EXPECT_EQ(first->name, "a");
  EXPECT_FALSE(first->is_dir);
  EXPECT_TRUE(w.async_next().await_ready()) << "the rest of the batch was not buffered";
  auto rest = next_n(*lp, w, 2);
  ASSERT_TRUE(rest) << rest.error().message();
  EXPECT_EQ(describe(*rest), "modified:a deleted:a ");
  EXPECT_FALSE(w.async_next().await_ready());
}

TEST_P(fs_watch_test, a_rename_is_a_moved_from_and_moved_to_with_one_cookie) {
  put_file("old", "x");
  auto lp = make_loop();
  unio::fs_watch w(*lp, dir());
  ASSERT_EQ(::rename(path("old").c_str(), path("new").c_str()), 0);
  auto evs = next_n(*lp, w, 2);
  ASSERT_TRUE(evs) << evs.error().message();
  EXPECT_EQ(describe(*evs), "moved_from:old moved_to:new ");
  EXPECT_NE((*evs)[0].cookie, 0u);
  EXPECT_EQ((*evs)[0].cookie, (*evs)[1].cookie);
  EXPECT_NE((*evs)[0].mask & IN_MOVED_FROM, 0u);
}

TEST_P(fs_watch_test, directories_are_marked_and_attrib_is_reported) {
  put_file("f", "x");
  auto lp = make_loop();
  unio::fs_watch w(*lp, dir());
  ASSERT_EQ(::mkdir(path("d").c_str(), 0700), 0);
  ASSERT_EQ(::chmod(path("f").c_str(), 0640), 0);
  auto evs = next_n(*lp, w, 2);
  ASSERT_TRUE(evs) << evs.error().message();
  EXPECT_EQ(describe(*evs), "created:d/ attrib:f ");
}

// A watched file reports events about itself, with an empty name; a next that waits is woken by
// a write made later by a timer.
TEST_P(fs_watch_test, a_watched_file_reports_itself_with_an_empty_name) {
  put_file("f", "x");
  auto lp = make_loop();
  unio::fs_watch w(*lp, path("f"), IN_MODIFY);
  unio::op t;
  lp->timeout(t, 2ms, [&](unio::op&) { put_file("f", "more"); });
  auto ev = next_of(*lp, w);
  ASSERT_TRUE(ev) << ev.error().message();
  EXPECT_EQ(ev->kind, kind::modified);
  EXPECT_EQ(ev->name, "");
  lp->run();
}

TEST_P(fs_watch_test, deleting_the_watched_directory_ends_the_watch) {
  ASSERT_EQ(::mkdir(path("sub").c_str(), 0700), 0);
  auto lp = make_loop();
  unio::fs_watch w(*lp, path("sub"));
  ASSERT_EQ(::rmdir(path("sub").c_str()), 0);
  auto evs = next_n(*lp, w, 2);
  ASSERT_TRUE(evs) << evs.error().message();
  EXPECT_EQ((*evs)[0].kind, kind::self_deleted);
  EXPECT_EQ((*evs)[0].name, "");
  EXPECT_EQ((*evs)[1].kind, kind::watch_removed);
  EXPECT_EQ(next_of(*lp, w).error(), std::errc::no_such_file_or_directory);
  unio::op o;
  std::error_code e;
  w.next(o, [&](unio::op&, unio::result<fs_event> r) { e = r.error(); });
  lp->run();
  EXPECT_EQ(e, std::errc::no_such_file_or_directory);
}

// More events than the kernel queues: an overflow event takes the place of those dropped.
TEST_P(fs_watch_test, overflow_is_reported_as_an_event) {
  std::ifstream limit_file("/proc/sys/fs/inotify/max_queued_events");
  long limit = 0;
  if (!(limit_file >> limit) || limit <= 0 || limit > 200000)
    GTEST_SKIP() << "max_queued_events is " << limit << ": too many files to overflow it";
  auto lp = make_loop();
  unio::fs_watch w(*lp, dir(), IN_CREATE);
  for (long i = 0; i < limit + 8; ++i) {
    int fd = raw_open("f" + std::to_string(i), O_CREAT | O_WRONLY);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ::close(fd);
  }
  auto seen = [&]() -> unio::result<long> {
    for (long n = 0; n <= limit; ++n) {
      auto ev = next_of(*lp, w);
      if (!ev) return ev.error();
      if (ev->kind == kind::overflow) return ev->name.empty() ? n : -1;
    }
    return -2;  // no overflow
  }();
  ASSERT_TRUE(seen) << seen.error().message();
  // The kernel queues `limit` events, then the overflow event in place of the rest.
  EXPECT_GE(*seen, limit - 1) << "events before the overflow (-1: it had a name, -2: none came)";
  EXPECT_LE(*seen, limit);
}

TEST_P(fs_watch_test, construction_errors) {
  auto lp = make_loop();
  try {
    unio::fs_watch w(*lp, path("missing"));
    ADD_FAILURE() << "no exception for a missing path";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
  }
  EXPECT_EQ(unio::fs_watch::open(*lp, path("missing")).error(), std::errc::no_such_file_or_directory);
  EXPECT_EQ(unio::fs_watch::open(*lp, dir(), IN_CREATE | IN_MASK_ADD).error(), std::errc::invalid_argument);
  put_file("f", "x");
  EXPECT_EQ(unio::fs_watch::open(*lp, path("f"), IN_CREATE | IN_ONLYDIR).error(), std::errc::not_a_directory);
  EXPECT_TRUE(unio::fs_watch::open(*lp, dir()));
}

// A waiting next is stopped by with_timeout, cancel() and loop::cancel; events made afterwards
// still come.
TEST_P(fs_watch_test, a_waiting_next_can_be_cancelled_and_the_watch_goes_on) {
  auto lp = make_loop();
  unio::fs_watch w(*lp, dir(), IN_CREATE);
  auto timed = AWAIT(*lp, unio::with_timeout(*lp, w.async_next(), 2ms));
  EXPECT_EQ(timed.error(), std::errc::timed_out);
  unio::op a, t;
  std::error_code ea;
  w.next(a, [&](unio::op&, unio::result<fs_event> r) { ea = r.error(); });
  lp->timeout(t, 1ms, [&](unio::op&) { w.cancel(); });
  lp->run();
  EXPECT_EQ(ea, std::errc::operation_canceled);
  w.next(a, [&](unio::op&, unio::result<fs_event> r) { ea = r.error(); });
  lp->timeout(t, 1ms, [&](unio::op&) { lp->cancel(a); });
  lp->run();
  EXPECT_EQ(ea, std::errc::operation_canceled);
  put_file("after", "x");
  auto ev = next_of(*lp, w);
  ASSERT_TRUE(ev) << ev.error().message();
  EXPECT_EQ(ev->name, "after");
}

TEST_P(fs_watch_test, destroying_the_watch_cancels_its_next_and_a_second_next_is_ebusy) {
  auto lp = make_loop();
  auto w = std::make_unique<unio::fs_watch>(*lp, dir(), IN_CREATE);
  unio::op a, b, t;
  std::error_code ea, eb;
  int calls = 0;
  w->next(a, [&](unio::op&, unio::result<fs_event> r) {
    ++calls;
    ea = r.error();
  });
  w->next(b, [&](unio::op&, unio::result<fs_event> r) { eb = r.error(); });
  lp->timeout(t, 1ms, [&](unio::op&) { w.reset(); });
  lp->run();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(ea, std::errc::operation_canceled);
  EXPECT_EQ(eb, std::errc::device_or_resource_busy);
}

INSTANTIATE_ALL_BACKENDS(fs_watch_test);

}  // namespace
