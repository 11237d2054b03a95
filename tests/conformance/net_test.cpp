// Description: TCP over IPv4 and IPv6: accept/connect/recv/send, a 10k-message echo on one loop, ECONNREFUSED, peer reset and orderly close.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "common.hpp"

namespace {

using unio::test::conformance_test;
using unio::test::neg;
using unio::test::run_one;

// A connected TCP pair made through the loop: accept and connect run concurrently.
struct tcp_pair {
  int listener = -1, server = -1, client = -1;
  sockaddr_storage peer{};
  socklen_t peer_len = sizeof peer;
  ~tcp_pair() {
    for (int fd : {listener, server, client})
      if (fd >= 0) ::close(fd);
  }
};

class tcp : public conformance_test {
 protected:
  // Listens on the loopback of `family`; skips the test when that family is unavailable.
  bool listen_on(int family, tcp_pair& p, unio::endpoint& at) {
    auto ep = unio::endpoint::parse(family == AF_INET ? "127.0.0.1" : "::1", 0);
    EXPECT_TRUE(ep);
    auto l = unio::tcp_listen(*ep);
    if (!l) {
      if (family == AF_INET6 && (l.error() == unio::errno_code(EAFNOSUPPORT) ||
                                 l.error() == unio::errno_code(EADDRNOTAVAIL)))
        return false;
      ADD_FAILURE() << "tcp_listen: " << l.error().message();
      return false;
    }
    p.listener = *l;
    auto local = unio::local_endpoint(p.listener);
    EXPECT_TRUE(local);
    at = *local;
    EXPECT_NE(at.port(), 0);
    return true;
  }

  // Accepts and connects through the loop (callback form).
  void connect_pair(unio::loop& lp, int family, tcp_pair& p) {
    unio::endpoint at;
    if (!listen_on(family, p, at)) GTEST_SKIP() << "IPv6 loopback unavailable";
    auto c = unio::tcp_socket(family);
    ASSERT_TRUE(c) << c.error().message();
    p.client = *c;
    unio::op a, k;
    int calls = 0;
    std::int64_t ares = 1, cres = 1;
    lp.accept(a, p.listener, reinterpret_cast<sockaddr*>(&p.peer), &p.peer_len, [&](unio::op& o) {
      ++calls;
      ares = o.raw_result();
    });
    lp.connect(k, p.client, at.addr(), at.length, [&](unio::op& o) {
      ++calls;
      cres = o.raw_result();
    });
    lp.run();
    ASSERT_EQ(calls, 2);
    ASSERT_GE(ares, 0) << std::strerror(static_cast<int>(-ares));
    ASSERT_EQ(cres, 0) << std::strerror(static_cast<int>(-cres));
    p.server = static_cast<int>(ares);
  }

  void basic_exchange(int family) {
    auto lp = make_loop();
    tcp_pair p;
    connect_pair(*lp, family, p);
    if (IsSkipped() || HasFatalFailure()) return;
    // The accepted socket: non-blocking, close-on-exec, and the peer address is the client's.
    EXPECT_NE(::fcntl(p.server, F_GETFL) & O_NONBLOCK, 0);
    EXPECT_NE(::fcntl(p.server, F_GETFD) & FD_CLOEXEC, 0);
    EXPECT_EQ(p.peer.ss_family, family);
    auto cl = unio::local_endpoint(p.client);
    ASSERT_TRUE(cl);
    unio::endpoint peer;
    std::memcpy(&peer.storage, &p.peer, sizeof p.peer);
    peer.length = p.peer_len;
    EXPECT_EQ(peer.port(), cl->port());
    // send then recv, both directions.
    EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->send(o, p.client, "ping", 4, 0, h); }), 4);
    char buf[16] = {};
    EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->recv(o, p.server, buf, sizeof buf, 0, h); }), 4);
    EXPECT_EQ(std::string(buf, 4), "ping");
    // A recv submitted before the data arrives waits for it.
    unio::op r, s;
    std::int64_t rres = 1, sres = 1;
    lp->recv(r, p.client, buf, sizeof buf, 0, [&](unio::op& o) { rres = o.raw_result(); });
    lp->send(s, p.server, "pong!", 5, 0, [&](unio::op& o) { sres = o.raw_result(); });
    lp->run();
    EXPECT_EQ(sres, 5);
    EXPECT_EQ(rres, 5);
    EXPECT_EQ(std::string(buf, 5), "pong!");
  }
};

TEST_P(tcp, ipv4_accept_connect_send_recv) { basic_exchange(AF_INET); }
TEST_P(tcp, ipv6_accept_connect_send_recv) { basic_exchange(AF_INET6); }

// Echo: the server coroutine echoes what it receives; the client sends `count` messages of
// varying length and checks each echo byte for byte. Client and server share the loop.
unio::task<void> echo_server(unio::loop& lp, int listener, int& served) {
  auto a = co_await lp.async_accept(listener);
  if (!a) co_return;
  const int fd = *a;
  std::vector<char> buf(4096);
  for (;;) {
    auto n = co_await lp.async_recv(fd, buf.data(), buf.size());
    if (!n || *n == 0) break;
    std::size_t sent = 0;
    while (sent < *n) {
      auto s = co_await lp.async_send(fd, buf.data() + sent, *n - sent);
      if (!s) break;
      sent += *s;
    }
    served += static_cast<int>(*n);
  }
  (void)co_await lp.async_close(fd);
}

unio::task<std::string> echo_client(unio::loop& lp, const unio::endpoint& at, int count) {
  auto c = unio::tcp_socket(at.family());
  if (!c) co_return "tcp_socket: " + c.error().message();
  const int fd = *c;
  auto k = co_await lp.async_connect(fd, at.addr(), at.length);
  if (!k) co_return "connect: " + k.error().message();
  std::string msg, got;
  for (int i = 0; i < count; ++i) {
    msg = "message " + std::to_string(i) + " " + std::string(static_cast<std::size_t>(i % 97), char('a' + i % 26));
    std::size_t sent = 0;
    while (sent < msg.size()) {
      auto s = co_await lp.async_send(fd, msg.data() + sent, msg.size() - sent);
      if (!s) co_return "send: " + s.error().message();
      sent += *s;
    }
    got.assign(msg.size(), '\0');
    std::size_t have = 0;
    while (have < msg.size()) {
      auto n = co_await lp.async_recv(fd, got.data() + have, msg.size() - have);
      if (!n) co_return "recv: " + n.error().message();
      if (*n == 0) co_return "recv: early EOF at message " + std::to_string(i);
      have += *n;
    }
    if (got != msg) co_return "message " + std::to_string(i) + " came back as '" + got + "'";
  }
  (void)co_await lp.async_close(fd);
  co_return "";
}

void run_echo(unio::loop& lp, const unio::endpoint& at, int listener, int count) {
  int served = 0;
  unio::spawn(echo_server(lp, listener, served));
  std::string err = unio::sync_wait(lp, echo_client(lp, at, count));
  EXPECT_EQ(err, "");
  lp.run();  // the server sees EOF and finishes
  std::size_t expect = 0;
  for (int i = 0; i < count; ++i) expect += ("message " + std::to_string(i) + " ").size() + static_cast<std::size_t>(i % 97);
  EXPECT_EQ(static_cast<std::size_t>(served), expect);
}

TEST_P(tcp, echo_10k_messages_ipv4) {
  tcp_pair p;
  unio::endpoint at;
  ASSERT_TRUE(listen_on(AF_INET, p, at));
  auto lp = make_loop();
  run_echo(*lp, at, p.listener, 10000);
}

TEST_P(tcp, echo_ipv6) {
  tcp_pair p;
  unio::endpoint at;
  if (!listen_on(AF_INET6, p, at)) GTEST_SKIP() << "IPv6 loopback unavailable";
  auto lp = make_loop();
  run_echo(*lp, at, p.listener, 2000);
}

TEST_P(tcp, connect_to_a_closed_port_is_refused) {
  auto lp = make_loop();
  for (int family : {AF_INET, AF_INET6}) {
    tcp_pair p;
    unio::endpoint at;
    if (!listen_on(family, p, at)) continue;
    ::close(p.listener);  // the port is now closed
    p.listener = -1;
    auto c = unio::tcp_socket(family);
    ASSERT_TRUE(c);
    p.client = *c;
    EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->connect(o, p.client, at.addr(), at.length, h); }),
              neg(ECONNREFUSED))
        << "family " << family;
  }
  // The awaitable form.
  tcp_pair p;
  unio::endpoint at;
  ASSERT_TRUE(listen_on(AF_INET, p, at));
  ::close(p.listener);
  p.listener = -1;
  p.client = *unio::tcp_socket(AF_INET);
  auto r = unio::sync_wait(*lp, [&]() -> unio::task<unio::result<void>> {
    co_return co_await lp->async_connect(p.client, at.addr(), at.length);
  }());
  EXPECT_EQ(r.error(), unio::errno_code(ECONNREFUSED));
}

// Closes `fd` with SO_LINGER {1, 0}: the peer receives a RST.
void reset_close(int& fd) {
  linger lg{1, 0};
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  ::close(fd);
  fd = -1;
}

// Waits (plain poll, no loop) until the RST has arrived on `fd`.
void wait_for_error(int fd) {
  pollfd pfd{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, -1), 1);
}

TEST_P(tcp, peer_reset_gives_econnreset_on_recv) {
  auto lp = make_loop();
  tcp_pair p;
  connect_pair(*lp, AF_INET, p);
  if (HasFatalFailure()) return;
  // The recv waits first; the reset arrives while it is parked.
  unio::op r, n;
  std::int64_t rres = 1;
  char buf[8];
  lp->recv(r, p.client, buf, sizeof buf, 0, [&](unio::op& o) { rres = o.raw_result(); });
  lp->nop(n, [&](unio::op&) { reset_close(p.server); });
  lp->run();
  EXPECT_EQ(rres, neg(ECONNRESET));
}

TEST_P(tcp, send_after_peer_reset_fails_without_sigpipe) {
  auto lp = make_loop();
  tcp_pair p;
  connect_pair(*lp, AF_INET, p);
  if (HasFatalFailure()) return;
  reset_close(p.server);
  wait_for_error(p.client);
  // The first send reports the reset (ECONNRESET) or, once it was consumed, EPIPE; a later one
  // EPIPE. No SIGPIPE may be raised (the test process would die).
  std::string data(1024, 'z');
  auto first = run_one(*lp, [&](unio::op& o, auto h) { lp->send(o, p.client, data.data(), data.size(), 0, h); });
  EXPECT_TRUE(first == neg(ECONNRESET) || first == neg(EPIPE)) << first;
  auto second = run_one(*lp, [&](unio::op& o, auto h) { lp->send(o, p.client, data.data(), data.size(), 0, h); });
  EXPECT_EQ(second, neg(EPIPE));
}

TEST_P(tcp, orderly_close_gives_data_then_zero) {
  auto lp = make_loop();
  tcp_pair p;
  connect_pair(*lp, AF_INET, p);
  if (HasFatalFailure()) return;
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->send(o, p.server, "last", 4, 0, h); }), 4);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->close(o, p.server, h); }), 0);
  p.server = -1;
  char buf[16] = {};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->recv(o, p.client, buf, sizeof buf, 0, h); }), 4);
  EXPECT_EQ(std::string(buf, 4), "last");
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->recv(o, p.client, buf, sizeof buf, 0, h); }), 0);
  // A recv waiting when the peer shuts down its side also completes with 0.
  tcp_pair q;
  connect_pair(*lp, AF_INET, q);
  if (HasFatalFailure()) return;
  unio::op r, n;
  std::int64_t rres = 1;
  lp->recv(r, q.client, buf, sizeof buf, 0, [&](unio::op& o) { rres = o.raw_result(); });
  lp->nop(n, [&](unio::op&) { ::shutdown(q.server, SHUT_WR); });
  lp->run();
  EXPECT_EQ(rres, 0);
}

TEST_P(tcp, large_transfer_with_short_sends) {
  // 8 MiB through a socket with small buffers: sends come back short and are continued; the
  // receiver gets every byte in order.
  auto lp = make_loop();
  tcp_pair p;
  connect_pair(*lp, AF_INET, p);
  if (HasFatalFailure()) return;
  int small = 16384;
  ::setsockopt(p.client, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  ::setsockopt(p.server, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  std::string out(8 << 20, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>((i * 131) >> 7);
  std::string in(out.size(), '\1');
  std::size_t sent = 0, got = 0;
  int short_sends = 0;
  unio::op s, r;
  std::function<void(unio::op&)> on_send = [&](unio::op& o) {
    ASSERT_GT(o.raw_result(), 0) << std::strerror(static_cast<int>(-o.raw_result()));
    if (o.value() < std::min<std::size_t>(out.size() - sent, 1 << 20)) ++short_sends;
    sent += o.value();
    if (sent < out.size())
      lp->send(s, p.client, out.data() + sent, std::min<std::size_t>(out.size() - sent, 1 << 20), 0,
               [&](unio::op& x) { on_send(x); });
  };
  std::function<void(unio::op&)> on_recv = [&](unio::op& o) {
    ASSERT_GT(o.raw_result(), 0) << std::strerror(static_cast<int>(-o.raw_result()));
    got += o.value();
    if (got < in.size()) lp->recv(r, p.server, in.data() + got, in.size() - got, 0, [&](unio::op& x) { on_recv(x); });
  };
  lp->send(s, p.client, out.data(), 1 << 20, 0, [&](unio::op& x) { on_send(x); });
  lp->recv(r, p.server, in.data(), in.size(), 0, [&](unio::op& x) { on_recv(x); });
  lp->run();
  EXPECT_EQ(sent, out.size());
  EXPECT_GT(short_sends, 0) << "short sends must be reported, not hidden";
  ASSERT_EQ(got, in.size());
  EXPECT_TRUE(in == out) << "stream corrupted";
}

INSTANTIATE_ALL_BACKENDS(tcp);

}  // namespace
