// Conformance: sendfile (file -> socket without a copy through user space) on every backend:
// whole files, partial transfers, offset and length edges, end of file, bad fds, a closed peer
// (EPIPE, no SIGPIPE), cancel while waiting for a full socket, and the loop's shutdown.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"
#include "unio/net.hpp"

namespace {

using unio::test::conformance_test;
using unio::test::neg;
using unio::test::run_one;

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
  return s;
}

void set_blocking(int fd) {
  int fl = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

// Reads `fd` (made blocking) on a thread until end of stream.
class reader {
 public:
  explicit reader(int fd) : fd_(fd) {
    set_blocking(fd_);
    thread_ = std::thread([this] {
      char buf[65536];
      for (;;) {
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n <= 0) break;
        got_.append(buf, static_cast<std::size_t>(n));
      }
    });
  }
  ~reader() {
    if (thread_.joinable()) thread_.join();
  }
  // Waits for end of stream and returns everything read.
  const std::string& finish() {
    thread_.join();
    return got_;
  }

 private:
  int fd_;
  std::string got_;
  std::thread thread_;
};

// Everything a non-blocking socket accepts before it would block (the peer not reading).
std::size_t fill_socket(int fd) {
  std::string chunk(65536, 'f');
  std::size_t total = 0;
  for (;;) {
    ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) break;
    total += static_cast<std::size_t>(n);
  }
  return total;
}

class sendfile_test : public conformance_test {
 protected:
  void TearDown() override {
    for (int fd : fds_)
      if (fd >= 0) ::close(fd);
    conformance_test::TearDown();
  }
  int keep(int fd) {
    fds_.push_back(fd);
    return fd;
  }
  // `fd` was closed by the test itself.
  void fds_closed(int fd) { std::erase(fds_, fd); }
  std::pair<int, int> pair() {
    auto [a, b] = unio::test::socket_pair();
    EXPECT_GE(a, 0);
    return {keep(a), keep(b)};
  }
  // A file of the test directory with `contents`, opened read-only.
  int file_with(const std::string& contents) {
    put_file("data", contents);
    return keep(raw_open("data", O_RDONLY));
  }
  // Sends [offset, offset+len) of `in` to `out` with as many sendfile ops as it takes; records
  // every op's result. Stops at the first error or 0.
  std::vector<std::int64_t> send_all(unio::loop& lp, int out, int in, std::uint64_t offset, std::size_t len) {
    std::vector<std::int64_t> results;
    unio::op o;
    std::uint64_t done = 0;
    std::function<void(unio::op&)> next = [&](unio::op& x) {
      results.push_back(x.raw_result());
      if (x.raw_result() <= 0) return;
      done += x.value();
      if (done < len) lp.sendfile(o, out, in, offset + done, len - done, next);
    };
    lp.sendfile(o, out, in, offset, len, next);
    lp.run();
    return results;
  }

 private:
  std::vector<int> fds_;
};

TEST_P(sendfile_test, whole_file_over_a_socketpair) {
  auto lp = make_loop();
  std::string data = pattern(3 * 1024 * 1024 + 123);
  int in = file_with(data);
  auto [out, peer] = pair();
  reader r(peer);
  auto results = send_all(*lp, out, in, 0, data.size());
  ASSERT_FALSE(results.empty());
  std::uint64_t total = 0;
  for (auto res : results) {
    ASSERT_GT(res, 0);
    total += static_cast<std::uint64_t>(res);
  }
  EXPECT_EQ(total, data.size());
  ::shutdown(out, SHUT_WR);
  EXPECT_TRUE(r.finish() == data);
  // The file's own position is neither used nor moved.
  EXPECT_EQ(::lseek(in, 0, SEEK_CUR), 0);
}

TEST_P(sendfile_test, small_socket_buffers_give_partial_transfers_over_tcp) {
  auto lp = make_loop();
  auto l = unio::tcp_listen(*unio::endpoint::parse("127.0.0.1", 0));
  ASSERT_TRUE(l);
  keep(*l);
  auto at = unio::local_endpoint(*l);
  ASSERT_TRUE(at);
  int client = keep(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int small = 8192;
  ::setsockopt(client, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  ASSERT_EQ(::connect(client, at->addr(), at->length), 0) << std::strerror(errno);
  int server = keep(::accept4(*l, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  ASSERT_GE(server, 0);
  ::setsockopt(server, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  std::string data = pattern(8 * 1024 * 1024);
  int in = file_with(data);
  reader r(client);
  auto results = send_all(*lp, server, in, 0, data.size());
  std::uint64_t total = 0;
  for (auto res : results) {
    ASSERT_GT(res, 0);
    ASSERT_LE(res, static_cast<std::int64_t>(data.size()));
    total += static_cast<std::uint64_t>(res);
  }
  EXPECT_EQ(total, data.size());
  // 8 MiB cannot pass through 8 KiB buffers in one op: the first op was a short transfer.
  EXPECT_GT(results.size(), 1u);
  ::shutdown(server, SHUT_WR);
  EXPECT_TRUE(r.finish() == data);
}

TEST_P(sendfile_test, offsets_and_lengths) {
  auto lp = make_loop();
  std::string data = pattern(10000);
  int in = file_with(data);
  auto [out, peer] = pair();
  struct cases {
    std::uint64_t offset;
    std::size_t len;
    std::int64_t want;
  };
  for (auto c : {cases{0, 1, 1}, cases{5, 7, 7}, cases{9990, 100, 10}, cases{9999, 1, 1}, cases{10000, 10, 0},
                 cases{20000, 10, 0}, cases{0, 0, 0}, cases{1 << 20, 1, 0}}) {
    auto res = run_one(*lp, [&](unio::op& o, auto h) { lp->sendfile(o, out, in, c.offset, c.len, h); });
    EXPECT_EQ(res, c.want) << "offset " << c.offset << " len " << c.len;
    if (res <= 0) continue;
    std::string got(static_cast<std::size_t>(res), '\0');
    ASSERT_EQ(::recv(peer, got.data(), got.size(), MSG_DONTWAIT), res);
    EXPECT_TRUE(got == data.substr(c.offset, static_cast<std::size_t>(res))) << "offset " << c.offset;
  }
  char extra;
  EXPECT_EQ(::recv(peer, &extra, 1, MSG_DONTWAIT), -1) << "no byte beyond what was reported";
}

TEST_P(sendfile_test, awaitable_form_and_end_of_file) {
  auto lp = make_loop();
  int in = file_with("hello, world");
  auto [out, peer] = pair();
  unio::result<std::size_t> first = unio::errno_code(EIO), second = unio::errno_code(EIO);
  unio::spawn([](unio::loop& lp, int out, int in, unio::result<std::size_t>& a,
                 unio::result<std::size_t>& b) -> unio::task<void> {
    a = co_await lp.async_sendfile(out, in, 7, 100);
    b = co_await lp.async_sendfile(out, in, 12, 100);
  }(*lp, out, in, first, second));
  lp->run();
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(*first, 5u);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(*second, 0u);
  char buf[16] = {};
  EXPECT_EQ(::recv(peer, buf, sizeof buf, MSG_DONTWAIT), 5);
  EXPECT_EQ(std::string(buf, 5), "world");
}

TEST_P(sendfile_test, bad_fds) {
  auto lp = make_loop();
  int in = file_with("abc");
  auto [out, peer] = pair();
  auto one = [&](int o_fd, int i_fd, std::uint64_t off = 0) {
    return run_one(*lp, [&](unio::op& o, auto h) { lp->sendfile(o, o_fd, i_fd, off, 3, h); });
  };
  EXPECT_EQ(one(out, -1), neg(EBADF));
  EXPECT_EQ(one(-1, in), neg(EBADF));
  int wronly = keep(raw_open("data", O_WRONLY));
  EXPECT_EQ(one(out, wronly), neg(EBADF));
  // A stream is no file to read at an offset.
  auto s = one(out, peer);
  EXPECT_TRUE(s == neg(ESPIPE) || s == neg(EINVAL)) << s;
  EXPECT_EQ(one(out, in, ~std::uint64_t{0} >> 1 | (std::uint64_t{1} << 63)), neg(EINVAL));
}

TEST_P(sendfile_test, closed_peer_gives_epipe_without_sigpipe) {
  auto lp = make_loop();
  int in = file_with(pattern(100000));
  auto [out, peer] = pair();
  ::close(peer);
  fds_closed(peer);
  // SIGPIPE's default action would kill the test process.
  auto res = run_one(*lp, [&](unio::op& o, auto h) { lp->sendfile(o, out, in, 0, 100000, h); });
  EXPECT_EQ(res, neg(EPIPE));
}

TEST_P(sendfile_test, cancel_while_the_socket_is_full) {
  auto lp = make_loop();
  int in = file_with(pattern(100000));
  auto [out, peer] = pair();
  std::size_t filled = fill_socket(out);
  ASSERT_GT(filled, 0u);
  unio::op s, n;
  int calls = 0;
  std::int64_t res = 1;
  lp->sendfile(s, out, in, 0, 100000, [&](unio::op& o) {
    ++calls;
    res = o.raw_result();
  });
  lp->nop(n, [&](unio::op&) { lp->cancel(s); });
  lp->run();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(res, neg(ECANCELED));
  // Nothing of the file reached the socket.
  std::size_t drained = 0;
  char buf[65536];
  for (ssize_t r; (r = ::recv(peer, buf, sizeof buf, MSG_DONTWAIT)) > 0;)
    drained += static_cast<std::size_t>(r);
  EXPECT_EQ(drained, filled);
  // The op is reusable after the cancel.
  auto again = run_one(*lp, [&](unio::op& o, auto h) { lp->sendfile(o, out, in, 0, 10, h); });
  EXPECT_EQ(again, 10);
}

TEST_P(sendfile_test, shutdown_completes_a_waiting_sendfile) {
  int in = file_with(pattern(100000));
  auto [out, peer] = pair();
  fill_socket(out);
  unio::op s;
  int calls = 0;
  std::int64_t res = 1;
  {
    auto lp = make_loop();
    lp->sendfile(s, out, in, 0, 100000, [&](unio::op& o) {
      ++calls;
      res = o.raw_result();
    });
    lp->poll();
    lp->poll();
    EXPECT_EQ(calls, 0);
  }
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(res, neg(ECANCELED));
  EXPECT_FALSE(s.busy());
}

TEST_P(sendfile_test, blocking_out_fd_is_made_non_blocking) {
  auto lp = make_loop();
  int in = file_with(pattern(1000));
  auto [out, peer] = pair();
  set_blocking(out);
  auto res = run_one(*lp, [&](unio::op& o, auto h) { lp->sendfile(o, out, in, 0, 1000, h); });
  EXPECT_EQ(res, 1000);
  EXPECT_NE(::fcntl(out, F_GETFL) & O_NONBLOCK, 0);
}

std::size_t open_fds() {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::end(it); it.increment(ec))
    ++n;
  return n;
}

// Whatever a backend keeps per sendfile (io_uring: a pipe) is released: after many ops, a
// cancelled one and a failed one, destroying the loop leaves exactly the fds there were before.
TEST_P(sendfile_test, no_fd_is_left_behind) {
  int in = file_with(pattern(8192));
  auto [out, peer] = pair();
  auto [dead, gone] = pair();
  ::close(gone);
  fds_closed(gone);
  std::size_t before = open_fds();
  {
    auto lp = make_loop();
    char buf[8192];
    for (int i = 0; i < 50; ++i) {
      auto res = run_one(*lp, [&](unio::op& o, auto h) { lp->sendfile(o, out, in, 0, 8192, h); });
      ASSERT_EQ(res, 8192);
      ASSERT_EQ(::recv(peer, buf, sizeof buf, MSG_DONTWAIT), 8192);
    }
    EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->sendfile(o, dead, in, 0, 100, h); }), neg(EPIPE));
    fill_socket(out);
    unio::op s, n;
    lp->sendfile(s, out, in, 0, 8192, [](unio::op&) {});
    lp->nop(n, [&](unio::op&) { lp->cancel(s); });
    lp->run();
    EXPECT_EQ(s.raw_result(), neg(ECANCELED));
  }
  EXPECT_EQ(open_fds(), before);
}

INSTANTIATE_ALL_BACKENDS(sendfile_test);

}  // namespace
