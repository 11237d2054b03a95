// Description: the awaitable form (co_await with unio::task, sync_wait, spawn) of every file op, read_exact/write_all, and task semantics.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.hpp"

namespace {

using namespace std::chrono_literals;
using unio::test::conformance_test;

class coroutine : public conformance_test {};

// Fails the task with a message naming the step when a result is an error.
#define CO_CHECK(expr, what)                                                        \
  do {                                                                              \
    auto&& r_ = (expr);                                                             \
    if (!r_) co_return std::string(what) + ": " + r_.error().message();             \
  } while (0)

unio::task<std::string> all_file_ops(unio::loop& lp, int dir) {
  CO_CHECK(co_await lp.async_nop(), "nop");
  CO_CHECK(co_await lp.async_mkdir(dir, "sub", 0700), "mkdir");
  auto fd = co_await lp.async_open(dir, "sub/f", {.flags = O_RDWR | O_CREAT | O_EXCL, .mode = 0600});
  CO_CHECK(fd, "open");
  const int f = *fd;

  auto w = co_await lp.async_write(f, "hello world", 11, 0);
  CO_CHECK(w, "write");
  if (*w != 11) co_return "write: short " + std::to_string(*w);

  char buf[16] = {};
  auto r = co_await lp.async_read(f, buf, 5, 6);
  CO_CHECK(r, "read");
  if (std::string(buf, *r) != "world") co_return "read: got '" + std::string(buf, *r) + "'";

  std::string a = "AB", b = "CDE";
  iovec out[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
  auto wv = co_await lp.async_writev(f, out, 2, 11);
  CO_CHECK(wv, "writev");
  if (*wv != 5) co_return "writev: " + std::to_string(*wv);
  char x[3] = {}, y[13] = {};
  iovec in[2] = {{x, 3}, {y, 13}};
  auto rv = co_await lp.async_readv(f, in, 2, 0);
  CO_CHECK(rv, "readv");
  if (*rv != 16 || std::string(x, 3) + std::string(y, 13) != "hello worldABCDE") co_return "readv: wrong data";

  CO_CHECK(co_await lp.async_fsync(f), "fsync");
  CO_CHECK(co_await lp.async_fdatasync(f), "fdatasync");
  auto fa = co_await lp.async_fallocate(f, 0, 0, 4096);
  if (!fa && fa.error() != unio::errno_code(EOPNOTSUPP)) co_return "fallocate: " + fa.error().message();
  CO_CHECK(co_await lp.async_ftruncate(f, 5), "ftruncate");

  struct statx sx{};
  CO_CHECK(co_await lp.async_stat(f, "", AT_EMPTY_PATH, STATX_SIZE, &sx), "stat fd");
  if (sx.stx_size != 5) co_return "stat: size " + std::to_string(sx.stx_size);
  struct statx sp{};
  CO_CHECK(co_await lp.async_stat(dir, "sub/f", 0, STATX_BASIC_STATS, &sp), "stat path");
  if (!S_ISREG(sp.stx_mode) || sp.stx_size != 5) co_return "stat path: wrong";

  CO_CHECK(co_await lp.async_close(f), "close");
  CO_CHECK(co_await lp.async_rename(dir, "sub/f", dir, "g"), "rename");
  auto nr = co_await lp.async_rename(dir, "g", dir, "sub", RENAME_NOREPLACE);
  if (nr.error() != unio::errno_code(EEXIST)) co_return "rename noreplace: " + nr.error().message();
  CO_CHECK(co_await lp.async_unlink(dir, "g"), "unlink");
  CO_CHECK(co_await lp.async_rmdir(dir, "sub"), "rmdir");
  CO_CHECK(co_await lp.async_sleep(100us), "sleep");
  co_return "";
}

TEST_P(coroutine, every_file_op_in_awaitable_form) {
  auto lp = make_loop();
  EXPECT_EQ(unio::sync_wait(*lp, all_file_ops(*lp, dirfd())), "");
  EXPECT_FALSE(exists("sub"));
  EXPECT_FALSE(exists("g"));
}

TEST_P(coroutine, awaitable_socket_ops) {
  auto lp = make_loop();
  auto ep = unio::endpoint::parse("::1", 0);
  ASSERT_TRUE(ep);
  auto l = unio::tcp_listen(*ep);
  if (!l) {
    ep = unio::endpoint::parse("127.0.0.1", 0);
    l = unio::tcp_listen(*ep);
  }
  ASSERT_TRUE(l) << l.error().message();
  auto at = unio::local_endpoint(*l);
  ASSERT_TRUE(at);
  int accepted = -1;
  unio::spawn([](unio::loop& lp, int lfd, int& out) -> unio::task<void> {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    auto a = co_await lp.async_accept(lfd, reinterpret_cast<sockaddr*>(&peer), &len);
    if (!a) co_return;
    out = *a;
    char buf[8];
    auto n = co_await lp.async_recv(out, buf, sizeof buf);
    if (n && *n > 0) (void)co_await lp.async_send(out, buf, *n);
  }(*lp, *l, accepted));
  auto got = unio::sync_wait(*lp, [](unio::loop& lp, unio::endpoint at) -> unio::task<std::string> {
    auto c = unio::tcp_socket(at.family());
    if (!c) co_return "socket";
    CO_CHECK(co_await lp.async_connect(*c, at.addr(), at.length), "connect");
    CO_CHECK(co_await lp.async_send(*c, "echo", 4), "send");
    char buf[8] = {};
    auto n = co_await lp.async_recv(*c, buf, sizeof buf);
    CO_CHECK(n, "recv");
    CO_CHECK(co_await lp.async_close(*c), "close");
    co_return std::string(buf, *n);
  }(*lp, *at));
  EXPECT_EQ(got, "echo");
  lp->run();
  EXPECT_GE(accepted, 0);
  if (accepted >= 0) ::close(accepted);
  ::close(*l);
}

TEST_P(coroutine, write_all_and_read_exact_round_trip) {
  auto lp = make_loop();
  int fd = raw_open("big", O_RDWR | O_CREAT);
  ASSERT_GE(fd, 0);
  std::string data(3 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + (i >> 12));
  auto w = unio::sync_wait(*lp, unio::write_all(*lp, fd, data.data(), data.size(), 4096));
  ASSERT_TRUE(w) << w.error().message();
  EXPECT_EQ(*w, data.size());
  std::string back(data.size(), '\0');
  auto r = unio::sync_wait(*lp, unio::read_exact(*lp, fd, back.data(), back.size(), 4096));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, data.size());
  EXPECT_TRUE(back == data);
  // One byte more than the file holds: ENODATA.
  auto over = unio::sync_wait(*lp, unio::read_exact(*lp, fd, back.data(), 2, 4096 + data.size() - 1));
  EXPECT_EQ(over.error(), unio::errno_code(ENODATA));
  ::close(fd);
}

TEST_P(coroutine, read_exact_on_a_pipe_collects_pieces) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  auto lp = make_loop();
  unio::op o1, o2;
  // The pieces arrive on later turns, while read_exact waits at the current position.
  lp->timeout(o1, 1ms, [&](unio::op&) { ASSERT_EQ(::write(p[1], "abc", 3), 3); });
  lp->timeout(o2, 2ms, [&](unio::op&) { ASSERT_EQ(::write(p[1], "defgh", 5), 5); });
  char buf[8] = {};
  auto r = unio::sync_wait(*lp, unio::read_exact(*lp, p[0], buf, 8, unio::current_position));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(std::string(buf, 8), "abcdefgh");
  auto w = unio::sync_wait(*lp, unio::write_all(*lp, p[1], "xyz", 3, unio::current_position));
  ASSERT_TRUE(w);
  ::close(p[1]);
  auto rest = unio::sync_wait(*lp, unio::read_exact(*lp, p[0], buf, 4, unio::current_position));
  EXPECT_EQ(rest.error(), unio::errno_code(ENODATA)) << "3 bytes then EOF";
  ::close(p[0]);
}

unio::task<int> leaf(unio::loop& lp, int v) {
  (void)co_await lp.async_nop();
  co_return v * 2;
}
unio::task<int> middle(unio::loop& lp) {
  int sum = 0;
  for (int i = 0; i < 100; ++i) sum += co_await leaf(lp, i);
  co_return sum;
}

TEST_P(coroutine, nested_tasks_return_values) {
  auto lp = make_loop();
  EXPECT_EQ(unio::sync_wait(*lp, middle(*lp)), 9900);
}

TEST_P(coroutine, exception_propagates_through_sync_wait) {
  auto lp = make_loop();
  auto t = [](unio::loop& lp) -> unio::task<int> {
    (void)co_await lp.async_nop();
    throw std::runtime_error("boom");
  }(*lp);
  EXPECT_THROW(unio::sync_wait(*lp, std::move(t)), std::runtime_error);
  lp->run();
}

TEST_P(coroutine, sync_wait_on_a_task_waiting_for_nothing_throws) {
  auto lp = make_loop();
  auto t = []() -> unio::task<void> { co_await std::suspend_always{}; }();
  EXPECT_THROW(unio::sync_wait(*lp, std::move(t)), std::logic_error);
}

TEST_P(coroutine, spawned_tasks_run_concurrently) {
  auto lp = make_loop();
  std::vector<int> order;
  for (int i = 0; i < 3; ++i) {
    unio::spawn([](unio::loop& lp, int i, std::vector<int>& order) -> unio::task<void> {
      (void)co_await lp.async_sleep(std::chrono::milliseconds(3 - i));
      order.push_back(i);
    }(*lp, i, order));
  }
  lp->run();
  ASSERT_EQ(order.size(), 3u);
}

TEST_P(coroutine, many_concurrent_awaits) {
  auto lp = make_loop();
  put_file("src", std::string(1 << 16, 'r'));
  int fd = raw_open("src", O_RDONLY);
  ASSERT_GE(fd, 0);
  int ok = 0;
  for (int i = 0; i < 200; ++i) {
    unio::spawn([](unio::loop& lp, int fd, int i, int& ok) -> unio::task<void> {
      char buf[256];
      auto r = co_await lp.async_read(fd, buf, sizeof buf, static_cast<std::uint64_t>(i) * 256);
      if (r && *r == sizeof buf && buf[0] == 'r' && buf[255] == 'r') ++ok;
    }(*lp, fd, i, ok));
  }
  lp->run();
  EXPECT_EQ(ok, 200);
  ::close(fd);
}

INSTANTIATE_ALL_BACKENDS(coroutine);

}  // namespace
