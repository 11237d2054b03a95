// Description: network faults in a private network namespace (each test in a forked child that
// calls unshare(CLONE_NEWNET), so its loopback, ports and nftables rules die with it):
//   - a connect whose SYN is dropped (nft ... drop) ends by with_timeout in ETIMEDOUT, once;
//   - a connect answered with a reset (nft ... reject with tcp reset) fails with ECONNREFUSED;
//   - a peer that resets the connection (SO_LINGER 0, close) gives ECONNRESET to a waiting recv,
//     and a later send fails with EPIPE or ECONNRESET;
//   - every byte a writer process sent before it was killed (SIGKILL) arrives, intact and in
//     order, then end of file;
//   - a half-close: a peer that shuts its write side down gives unio's recv every byte and then
//     end of file (again on the next recv), while every byte unio's sends acknowledged afterwards
//     reaches the peer before its end of file (count and checksum); unio shutting its own write
//     side down (shutdown(2) on the fd: the API has no shutdown op) gives the peer end of file
//     after every acknowledged byte, a later send fails with EPIPE, and unio's recv still gets
//     every byte the peer sends, then end of file.
// The process's fd count is the same before and after each. Skipped without root (or nft, for
// the first two).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "conformance/backends.hpp"
#include "fault/child.hpp"
#include "fault/mounts.hpp"
#include "unio/unio.hpp"

namespace {

using namespace unio::test;
using namespace std::chrono_literals;

long open_fds() {
  std::error_code ec;
  long n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec))
    ++n;
  return n;
}

// Enters a private network namespace with its loopback up.
int private_net_ns(std::string& msg) {
  if (::geteuid() != 0) return report(msg, "needs root for a private network namespace", k_skip);
  if (::unshare(CLONE_NEWNET) != 0) return report(msg, errstr("unshare(CLONE_NEWNET)", errno), k_skip);
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strcpy(ifr.ifr_name, "lo");
  bool up = s >= 0 && ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags |= IFF_UP, ::ioctl(s, SIOCSIFFLAGS, &ifr) == 0);
  if (s >= 0) ::close(s);
  return up ? 0 : report(msg, errstr("bringing lo up", errno), k_skip);
}

// Adds an nftables input rule for TCP port `port` with `verdict` ("drop", "reject with tcp reset").
int nft_rule(std::uint16_t port, const std::string& verdict, std::string& msg) {
  if (!shell("command -v nft")) return report(msg, "nft (nftables) is not installed", k_skip);
  const std::string p = std::to_string(port);
  if (!shell("nft add table inet unio_t") ||
      !shell("nft add chain inet unio_t inp '{ type filter hook input priority 0; }'") ||
      !shell("nft add rule inet unio_t inp tcp dport " + p + " " + verdict))
    return report(msg, "nft could not add the rule", k_skip);
  return 0;
}

// A listening socket on 127.0.0.1 and its endpoint.
struct listener {
  int fd = -1;
  unio::endpoint at;
  bool open() {
    auto l = unio::tcp_listen(*unio::endpoint::parse("127.0.0.1", 0));
    if (!l) return false;
    fd = *l;
    at = *unio::local_endpoint(fd);
    return true;
  }
  ~listener() {
    if (fd >= 0) ::close(fd);
  }
};

// Connects a new socket to `at` through the loop within `limit`; the result (the socket is closed).
unio::result<void> connect_within(unio::loop& lp, const unio::endpoint& at, std::chrono::milliseconds limit) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  auto r = unio::sync_wait(lp, [&]() -> unio::task<unio::result<void>> {
    co_return co_await unio::with_timeout(lp, lp.async_connect(fd, at.addr(), at.length), limit);
  }());
  ::close(fd);
  return r;
}

class net_fault : public backend_test {
 protected:
  // Runs body(loop, msg) in a child in a private network namespace, checking the fd count.
  template <class Body>
  void in_netns(Body body) {
    auto opts = options();
    auto res = run_in_child([&](std::string& msg) -> int {
      if (int rc = private_net_ns(msg); rc != 0) return rc;
      long fds = 0;
      int rc = 0;
      {
        unio::loop lp(opts);
        fds = open_fds();
        rc = body(lp, msg);
        if (rc == 0 && open_fds() != fds)
          rc = report(msg, std::to_string(open_fds() - fds) + " fd(s) more than before", 9);
      }
      return rc;
    });
    EXPECT_CHILD_OK(res);
  }
};

// Connects to a listener behind an nftables rule with `verdict` within `limit`: 0 when the
// connect fails with `want`.
int connect_behind_rule(unio::loop& lp, const char* verdict, std::chrono::milliseconds limit, std::errc want,
                        std::string& msg) {
  listener l;
  if (!l.open()) return report(msg, "listen", 1);
  if (int rc = nft_rule(l.at.port(), verdict, msg); rc != 0) return rc;
  auto r = connect_within(lp, l.at, limit);
  if (r || r.error() != want) return report(msg, "connect: " + (r ? std::string("connected") : r.error().message()), 2);
  return 0;
}

TEST_P(net_fault, blackholed_connect_ends_by_timeout) {
  in_netns([](unio::loop& lp, std::string& msg) { return connect_behind_rule(lp, "drop", 300ms, std::errc::timed_out, msg); });
}

TEST_P(net_fault, rejected_connect_is_econnrefused) {
  in_netns([](unio::loop& lp, std::string& msg) {
    return connect_behind_rule(lp, "reject with tcp reset", 5s, std::errc::connection_refused, msg);
  });
}

// A connected pair over loopback TCP: the client's fd and the accepted one.
bool tcp_pair(int& client, int& server) {
  listener l;
  if (!l.open()) return false;
  client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(client, l.at.addr(), l.at.length) != 0) return false;
  server = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  return server >= 0;
}

TEST_P(net_fault, reset_peer_gives_econnreset_then_epipe) {
  in_netns([](unio::loop& lp, std::string& msg) -> int {
    int client = -1, server = -1;
    if (!tcp_pair(client, server)) return report(msg, errstr("tcp pair", errno), 1);
    char buf[16];
    unio::result<std::size_t> got = std::make_error_code(std::errc::bad_message), sent = got;
    unio::sync_wait(lp, [&]() -> unio::task<void> {
      lp.post([client] {  // while the recv waits: the peer resets the connection
        linger lg{1, 0};
        ::setsockopt(client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        ::close(client);
      });
      got = co_await lp.async_recv(server, buf, sizeof buf);
      sent = co_await lp.async_send(server, "x", 1);
    }());
    ::close(server);
    if (got || got.error() != std::errc::connection_reset) return report(msg, "recv: " + (got ? std::string("data") : got.error().message()), 2);
    if (sent || (sent.error() != std::errc::broken_pipe && sent.error() != std::errc::connection_reset))
      return report(msg, "send after the reset: " + (sent ? std::string("sent") : sent.error().message()), 3);
    return 0;
  });
}

char stream_byte(std::size_t i) { return static_cast<char>((i * 29 + 3) % 253); }
constexpr std::size_t k_stream = 1 << 20;

// Forks a writer that sends k_stream bytes of stream_byte() on `fd`, then kills itself with
// SIGKILL (no orderly shutdown of its own: the kernel closes the socket). Returns its pid.
pid_t killed_writer(int fd) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  std::vector<char> v(k_stream);
  for (std::size_t i = 0; i < k_stream; ++i) v[i] = stream_byte(i);
  for (std::size_t off = 0; off < k_stream;) {
    ssize_t n = ::send(fd, v.data() + off, k_stream - off, MSG_NOSIGNAL);
    if (n <= 0) ::_exit(1);
    off += static_cast<std::size_t>(n);
  }
  ::kill(::getpid(), SIGKILL);
  ::_exit(2);
}

// Reads `fd` through the loop until end of file; "" when exactly n bytes came, byte i being
// byte_at(i).
std::string read_stream(unio::loop& lp, int fd, std::size_t n = k_stream,
                        char (*byte_at)(std::size_t) = stream_byte) {
  return unio::sync_wait(lp, [&]() -> unio::task<std::string> {
    std::vector<char> buf(65536);
    std::size_t at = 0;
    for (;;) {
      auto r = co_await lp.async_recv(fd, buf.data(), buf.size());
      if (!r) co_return "recv after " + std::to_string(at) + " bytes: " + r.error().message();
      if (*r == 0) break;
      for (std::size_t i = 0; i < *r; ++i)
        if (buf[i] != byte_at(at + i)) co_return "byte " + std::to_string(at + i) + " differs";
      at += *r;
    }
    co_return at == n ? "" : "got " + std::to_string(at) + " bytes before end of file";
  }());
}

TEST_P(net_fault, bytes_a_killed_writer_sent_arrive_intact) {
  in_netns([](unio::loop& lp, std::string& msg) -> int {
    int client = -1, server = -1;
    if (!tcp_pair(client, server)) return report(msg, errstr("tcp pair", errno), 1);
    pid_t pid = killed_writer(client);
    ::close(client);
    std::string bad = read_stream(lp, server);
    ::close(server);
    int st = 0;
    ::waitpid(pid, &st, 0);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) return report(msg, "the writer was not killed mid-stream", 2);
    return bad.empty() ? 0 : report(msg, bad, 3);
  });
}

char back_byte(std::size_t i) { return static_cast<char>((i * 17 + 101) % 239); }

// The checksum both sides of a stream compute: 64-bit FNV-1a, one byte at a time.
constexpr std::uint64_t k_fnv_basis = 1469598103934665603ull;
std::uint64_t fnv_step(std::uint64_t h, char c) { return (h ^ static_cast<unsigned char>(c)) * 1099511628211ull; }

// The checksum of the bytes fn(0), ..., fn(n - 1).
template <class Fn>
std::uint64_t checksum_of(std::size_t n, Fn fn) {
  std::uint64_t h = k_fnv_basis;
  for (std::size_t i = 0; i < n; ++i) h = fnv_step(h, fn(i));
  return h;
}

// What a blocking peer read from its socket until end of file.
struct received {
  std::size_t count = 0;
  std::uint64_t sum = k_fnv_basis;
};

received read_until_eof(int fd) {
  received r;
  char buf[65536];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (ssize_t i = 0; i < n; ++i) r.sum = fnv_step(r.sum, buf[i]);
    r.count += static_cast<std::size_t>(n);
  }
  return r;
}

// Sends n bytes of fn(i) on a blocking socket; false when a send failed.
template <class Fn>
bool send_blocking(int fd, std::size_t n, Fn fn) {
  std::vector<char> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = fn(i);
  for (std::size_t off = 0; off < n;) {
    ssize_t k = ::send(fd, v.data() + off, n - off, MSG_NOSIGNAL);
    if (k <= 0) return false;
    off += static_cast<std::size_t>(k);
  }
  return true;
}

// Sends n bytes of back_byte() through the loop; "" when every byte was acknowledged (in `acked`).
std::string send_back(unio::loop& lp, int fd, std::size_t n, std::size_t& acked) {
  std::vector<char> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = back_byte(i);
  return unio::sync_wait(lp, [&]() -> unio::task<std::string> {
    while (acked < n) {
      auto r = co_await lp.async_send(fd, v.data() + acked, n - acked);
      if (!r) co_return "send after " + std::to_string(acked) + " bytes: " + r.error().message();
      acked += *r;
    }
    co_return "";
  }());
}

// A second recv after end of file: "" when it is end of file again.
std::string eof_again(unio::loop& lp, int fd) {
  char c;
  auto r = unio::sync_wait(
      lp, [&]() -> unio::task<unio::result<std::size_t>> { co_return co_await lp.async_recv(fd, &c, 1); }());
  return r && *r == 0
             ? ""
             : "a recv after end of file: " + (r ? std::to_string(*r) + " bytes" : r.error().message());
}

// "" when the peer read exactly `acked` bytes of back_byte() before its end of file.
std::string peer_got(const received& got, std::size_t acked, std::size_t want) {
  if (acked != want) return std::to_string(acked) + " bytes acknowledged of " + std::to_string(want);
  if (got.count != acked)
    return "the peer read " + std::to_string(got.count) + " bytes, " + std::to_string(acked) +
           " were acknowledged";
  return got.sum == checksum_of(acked, back_byte) ? "" : "the peer's checksum differs";
}

TEST_P(net_fault, peer_half_close_gives_eof_after_every_byte_and_sends_still_arrive) {
  in_netns([](unio::loop& lp, std::string& msg) -> int {
    int client = -1, server = -1;
    if (!tcp_pair(client, server)) return report(msg, errstr("tcp pair", errno), 1);
    received got;
    std::thread peer([&] {  // sends, half-closes, then reads what unio sends until unio closes
      if (send_blocking(client, k_stream, stream_byte)) ::shutdown(client, SHUT_WR);
      got = read_until_eof(client);
    });
    std::string bad = read_stream(lp, server);
    if (bad.empty()) bad = eof_again(lp, server);
    std::size_t acked = 0;
    if (bad.empty()) bad = send_back(lp, server, k_stream, acked);
    ::close(server);  // the orderly close after the acknowledged sends
    peer.join();
    ::close(client);
    if (bad.empty()) bad = peer_got(got, acked, k_stream);
    return bad.empty() ? 0 : report(msg, bad, 2);
  });
}

TEST_P(net_fault, own_half_close_gives_the_peer_eof_and_recv_still_works) {
  in_netns([](unio::loop& lp, std::string& msg) -> int {
    int client = -1, server = -1;
    if (!tcp_pair(client, server)) return report(msg, errstr("tcp pair", errno), 1);
    received got;
    std::thread peer([&] {  // reads until unio's half-close, then sends and closes
      got = read_until_eof(client);
      send_blocking(client, k_stream, back_byte);
      ::close(client);
    });
    std::size_t acked = 0;
    std::string bad = send_back(lp, server, k_stream, acked);
    if (::shutdown(server, SHUT_WR) != 0 && bad.empty()) bad = errstr("shutdown(SHUT_WR)", errno);
    auto late = unio::sync_wait(lp, [&]() -> unio::task<unio::result<std::size_t>> {
      co_return co_await lp.async_send(server, "x", 1);
    }());
    if (bad.empty() && (late || late.error() != std::errc::broken_pipe))
      bad = "a send after shutdown(SHUT_WR): " + (late ? std::string("sent") : late.error().message());
    if (bad.empty()) bad = read_stream(lp, server, k_stream, back_byte);
    if (bad.empty()) bad = eof_again(lp, server);
    ::close(server);  // before the join: a peer still sending then fails instead of waiting
    peer.join();
    if (bad.empty()) bad = peer_got(got, acked, k_stream);
    return bad.empty() ? 0 : report(msg, bad, 2);
  });
}

INSTANTIATE_ALL_BACKENDS(net_fault);

}  // namespace
