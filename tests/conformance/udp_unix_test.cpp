// Description: UDP (IPv4, IPv6) and Unix-domain sockets: sendto/recvfrom with sender addresses,
// truncated datagrams, sendmsg/recvmsg with iovecs, cancel, bad fds, Unix stream and datagram
// sockets on paths and abstract names, and fd passing with SCM_RIGHTS, on every backend.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "common.hpp"

namespace {

using unio::test::conformance_test;
using unio::test::neg;
using unio::test::probe;
using unio::test::run_one;

// Closes the fd it holds.
struct owned_fd {
  int fd = -1;
  owned_fd() = default;
  explicit owned_fd(int f) : fd(f) {}
  owned_fd(const owned_fd&) = delete;
  owned_fd& operator=(const owned_fd&) = delete;
  ~owned_fd() {
    if (fd >= 0) ::close(fd);
  }
};

class udp : public conformance_test {
 protected:
  // A UDP socket bound to the loopback of `family` on a free port; false when the family is
  // unavailable here (IPv6 disabled). Fails the test on any other error.
  static bool bind_loopback(int family, owned_fd& s, unio::endpoint& at) {
    auto ep = unio::endpoint::parse(family == AF_INET ? "127.0.0.1" : "::1", 0);
    EXPECT_TRUE(ep);
    auto fd = unio::udp_bind(*ep);
    if (!fd) {
      bool missing =
          fd.error() == unio::errno_code(EAFNOSUPPORT) || fd.error() == unio::errno_code(EADDRNOTAVAIL);
      if (family != AF_INET6 || !missing) ADD_FAILURE() << "udp_bind: " << fd.error().message();
      return false;
    }
    s.fd = *fd;
    auto local = unio::local_endpoint(s.fd);
    EXPECT_TRUE(local);
    at = *local;
    EXPECT_NE(at.port(), 0);
    return true;
  }

  // A datagram from a client socket to a bound server and back, each side learning the other's
  // address from recvfrom (callback form).
  void echo(int family) {
    owned_fd server;
    unio::endpoint server_at;
    if (!bind_loopback(family, server, server_at)) GTEST_SKIP() << "IPv6 loopback unavailable";
    auto c = unio::udp_socket(family);
    ASSERT_TRUE(c) << c.error().message();
    owned_fd client(*c);
    EXPECT_NE(::fcntl(client.fd, F_GETFL) & O_NONBLOCK, 0);
    EXPECT_NE(::fcntl(client.fd, F_GETFD) & FD_CLOEXEC, 0);
    auto lp = make_loop();
    EXPECT_EQ(
        run_one(*lp, [&](unio::op& o, auto h) { lp->sendto(o, client.fd, "ping", 4, server_at, 0, h); }), 4);
    char buf[16] = {};
    unio::endpoint from;
    EXPECT_EQ(
        run_one(*lp, [&](unio::op& o, auto h) { lp->recvfrom(o, server.fd, buf, sizeof buf, &from, 0, h); }),
        4);
    EXPECT_EQ(std::string(buf, 4), "ping");
    auto client_at = unio::local_endpoint(client.fd);
    ASSERT_TRUE(client_at);
    // The client's first sendto bound it to a free port on the wildcard address; the datagram
    // came from the loopback address.
    auto want = unio::endpoint::parse(family == AF_INET ? "127.0.0.1" : "::1", client_at->port());
    EXPECT_NE(client_at->port(), 0);
    EXPECT_EQ(from.family(), family);
    EXPECT_EQ(from.to_string(), want->to_string());
    EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->sendto(o, server.fd, "pong!", 5, from, 0, h); }),
              5);
    unio::endpoint back;
    EXPECT_EQ(
        run_one(*lp, [&](unio::op& o, auto h) { lp->recvfrom(o, client.fd, buf, sizeof buf, &back, 0, h); }),
        5);
    EXPECT_EQ(std::string(buf, 5), "pong!");
    EXPECT_EQ(back.to_string(), server_at.to_string());
  }
};

TEST_P(udp, ipv4_echo_with_sender_address) { echo(AF_INET); }
TEST_P(udp, ipv6_echo_with_sender_address) { echo(AF_INET6); }

// The awaitable forms, in a coroutine: 20 datagrams out and back.
unio::task<std::string> echo_task(unio::loop& lp, int server, int client, const unio::endpoint& server_at) {
  for (int i = 0; i < 20; ++i) {
    std::string msg = "datagram " + std::to_string(i);
    auto s = co_await lp.async_sendto(client, msg.data(), msg.size(), server_at);
    if (!s || *s != msg.size()) co_return "sendto " + std::to_string(i);
    char buf[64];
    unio::endpoint from;
    auto n = co_await lp.async_recvfrom(server, buf, sizeof buf, &from);
    if (!n || std::string(buf, *n) != msg) co_return "recvfrom " + std::to_string(i);
    auto r = co_await lp.async_sendto(server, buf, *n, from);
    if (!r) co_return "reply " + std::to_string(i) + ": " + r.error().message();
    auto m = co_await lp.async_recvfrom(client, buf, sizeof buf, nullptr);  // sender not wanted
    if (!m || std::string(buf, *m) != msg) co_return "reply came back wrong " + std::to_string(i);
  }
  co_return "";
}

TEST_P(udp, awaitable_echo_ipv4_and_ipv6) {
  for (int family : {AF_INET, AF_INET6}) {
    owned_fd server;
    unio::endpoint at;
    if (!bind_loopback(family, server, at)) continue;
    owned_fd client(*unio::udp_socket(family));
    auto lp = make_loop();
    EXPECT_EQ(unio::sync_wait(*lp, echo_task(*lp, server.fd, client.fd, at)), "") << "family " << family;
  }
}

TEST_P(udp, recvfrom_waits_for_a_datagram_sent_later) {
  owned_fd server, client;
  unio::endpoint at, client_at;
  ASSERT_TRUE(bind_loopback(AF_INET, server, at));
  ASSERT_TRUE(bind_loopback(AF_INET, client, client_at));
  auto lp = make_loop();
  unio::op r, n, s;
  probe pr, ps;
  char buf[16] = {};
  unio::endpoint from;
  bool waited = false;
  lp->recvfrom(r, server.fd, buf, sizeof buf, &from, 0, pr.handler());
  // No datagram exists before this handler sends one, so the recvfrom must still be waiting.
  lp->nop(n, [&](unio::op&) {
    waited = r.busy();
    lp->sendto(s, client.fd, "late", 4, at, 0, ps.handler());
  });
  lp->run();
  EXPECT_TRUE(waited);
  EXPECT_EQ(ps.res, 4);
  EXPECT_EQ(pr.calls, 1);
  EXPECT_EQ(pr.res, 4);
  EXPECT_EQ(std::string(buf, 4), "late");
  EXPECT_EQ(from.to_string(), client_at.to_string());
}

TEST_P(udp, many_waiting_recvfroms_each_get_one_datagram_and_its_sender) {
  owned_fd server;
  unio::endpoint at;
  ASSERT_TRUE(bind_loopback(AF_INET, server, at));
  constexpr int k = 8;
  std::vector<owned_fd> clients(k);
  std::vector<unio::endpoint> client_at(k);
  for (int i = 0; i < k; ++i)
    ASSERT_TRUE(bind_loopback(AF_INET, clients[i], client_at[i]));
  auto lp = make_loop();
  std::vector<unio::op> recvs(k), sends(k);
  std::vector<probe> pr(k), ps(k);
  std::vector<std::array<char, 8>> bufs(k);
  std::vector<unio::endpoint> from(k);
  for (int i = 0; i < k; ++i)
    lp->recvfrom(recvs[i], server.fd, bufs[i].data(), 8, &from[i], 0, pr[i].handler());
  unio::op n;
  lp->nop(n, [&](unio::op&) {
    for (int i = 0; i < k; ++i)
      lp->sendto(sends[i], clients[i].fd, &"01234567"[i], 1, at, 0, ps[i].handler());
  });
  lp->run();
  // Each datagram went to exactly one recvfrom, and its sender is the client that sent it.
  std::string seen;
  for (int i = 0; i < k; ++i) {
    EXPECT_EQ(ps[i].res, 1) << i;
    ASSERT_EQ(pr[i].calls, 1) << i;
    ASSERT_EQ(pr[i].res, 1) << i;
    int sender = bufs[i][0] - '0';
    ASSERT_GE(sender, 0);
    ASSERT_LT(sender, k);
    EXPECT_EQ(from[i].to_string(), client_at[sender].to_string()) << i;
    seen += bufs[i][0];
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, "01234567");
}

TEST_P(udp, truncated_datagram_gives_the_buffer_length_or_with_msg_trunc_the_real_one) {
  owned_fd server, client;
  unio::endpoint at, client_at;
  ASSERT_TRUE(bind_loopback(AF_INET, server, at));
  ASSERT_TRUE(bind_loopback(AF_INET, client, client_at));
  auto lp = make_loop();
  for (const char* d : {"0123456789", "abcdefghij", "short"})
    ASSERT_EQ(::sendto(client.fd, d, std::strlen(d), 0, at.addr(), at.length),
              static_cast<ssize_t>(std::strlen(d)));
  char buf[4];
  unio::endpoint from;
  // Without MSG_TRUNC: the buffer's length, and the rest of the datagram is gone.
  EXPECT_EQ(
      run_one(*lp, [&](unio::op& o, auto h) { lp->recvfrom(o, server.fd, buf, sizeof buf, &from, 0, h); }),
      4);
  EXPECT_EQ(std::string(buf, 4), "0123");
  EXPECT_EQ(from.to_string(), client_at.to_string());
  // With MSG_TRUNC: the datagram's real length, more than the buffer holds.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o,
                             auto h) { lp->recvfrom(o, server.fd, buf, sizeof buf, &from, MSG_TRUNC, h); }),
            10);
  EXPECT_EQ(std::string(buf, 4), "abcd");
  // A datagram that fits is not affected by MSG_TRUNC.
  char big[16];
  EXPECT_EQ(run_one(*lp, [&](unio::op& o,
                             auto h) { lp->recvfrom(o, server.fd, big, sizeof big, nullptr, MSG_TRUNC, h); }),
            5);
  EXPECT_EQ(std::string(big, 5), "short");
}

TEST_P(udp, recvmsg_reports_truncation_in_msg_flags) {
  owned_fd server, client;
  unio::endpoint at, client_at;
  ASSERT_TRUE(bind_loopback(AF_INET, server, at));
  ASSERT_TRUE(bind_loopback(AF_INET, client, client_at));
  ASSERT_EQ(::sendto(client.fd, "0123456789", 10, 0, at.addr(), at.length), 10);
  ASSERT_EQ(::sendto(client.fd, "fits", 4, 0, at.addr(), at.length), 4);
  auto lp = make_loop();
  char buf[6];
  iovec iov{buf, sizeof buf};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->recvmsg(o, server.fd, &m, 0, h); }), 6);
  EXPECT_NE(m.msg_flags & MSG_TRUNC, 0);
  EXPECT_EQ(std::string(buf, 6), "012345");
  m = msghdr{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->recvmsg(o, server.fd, &m, 0, h); }), 4);
  EXPECT_EQ(m.msg_flags & MSG_TRUNC, 0);
}

TEST_P(udp, sendto_from_an_unbound_socket_binds_it_to_a_free_port) {
  owned_fd server;
  unio::endpoint at;
  ASSERT_TRUE(bind_loopback(AF_INET, server, at));
  owned_fd client(*unio::udp_socket(AF_INET));
  ASSERT_EQ(unio::local_endpoint(client.fd)->port(), 0);
  auto lp = make_loop();
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->sendto(o, client.fd, "x", 1, at, 0, h); }), 1);
  auto bound = unio::local_endpoint(client.fd);
  ASSERT_TRUE(bound);
  EXPECT_NE(bound->port(), 0);
  char c = 0;
  unio::endpoint from;
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->recvfrom(o, server.fd, &c, 1, &from, 0, h); }), 1);
  EXPECT_EQ(from.port(), bound->port());
}

TEST_P(udp, sendmsg_gathers_and_recvmsg_scatters_iovecs) {
  owned_fd server, client;
  unio::endpoint at, client_at;
  ASSERT_TRUE(bind_loopback(AF_INET, server, at));
  ASSERT_TRUE(bind_loopback(AF_INET, client, client_at));
  auto lp = make_loop();
  char a[] = "head-", b[] = "middle-", c[] = "tail";
  iovec out[3] = {{a, 5}, {b, 7}, {c, 4}};
  msghdr sm{};
  sm.msg_name = const_cast<sockaddr*>(at.addr());
  sm.msg_namelen = at.length;
  sm.msg_iov = out;
  sm.msg_iovlen = 3;
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->sendmsg(o, client.fd, &sm, 0, h); }), 16);
  char x[10] = {}, y[10] = {};
  iovec in[2] = {{x, sizeof x}, {y, sizeof y}};
  sockaddr_storage peer{};
  msghdr rm{};
  rm.msg_name = &peer;
  rm.msg_namelen = sizeof peer;
  rm.msg_iov = in;
  rm.msg_iovlen = 2;
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->recvmsg(o, server.fd, &rm, 0, h); }), 16);
  EXPECT_EQ(std::string(x, 10), "head-middl");
  EXPECT_EQ(std::string(y, 6), "e-tail");
  unio::endpoint sender;
  std::memcpy(&sender.storage, &peer, sizeof peer);
  sender.length = rm.msg_namelen;
  EXPECT_EQ(rm.msg_namelen, sizeof(sockaddr_in));
  EXPECT_EQ(sender.to_string(), client_at.to_string());
}

TEST_P(udp, cancel_of_a_waiting_recvfrom_completes_it_once_with_ecanceled) {
  owned_fd server, client;
  unio::endpoint at, client_at;
  ASSERT_TRUE(bind_loopback(AF_INET, server, at));
  ASSERT_TRUE(bind_loopback(AF_INET, client, client_at));
  auto lp = make_loop();
  unio::op r, n;
  probe pr;
  char buf[8];
  unio::endpoint from;
  bool was_busy = false;
  lp->recvfrom(r, server.fd, buf, sizeof buf, &from, 0, pr.handler());
  lp->nop(n, [&](unio::op&) {
    was_busy = r.busy();  // nothing was sent: it waits
    lp->cancel(r);
  });
  lp->run();
  EXPECT_TRUE(was_busy);
  EXPECT_EQ(pr.calls, 1);
  EXPECT_EQ(pr.res, neg(ECANCELED));
  // The socket still works, and the cancelled recvfrom consumed nothing.
  ASSERT_EQ(::sendto(client.fd, "ok", 2, 0, at.addr(), at.length), 2);
  EXPECT_EQ(
      run_one(*lp, [&](unio::op& o, auto h) { lp->recvfrom(o, server.fd, buf, sizeof buf, &from, 0, h); }),
      2);
  EXPECT_EQ(from.to_string(), client_at.to_string());
}

TEST_P(udp, one_op_reused_from_its_handler_receives_a_stream_of_datagrams) {
  owned_fd server, client;
  unio::endpoint at, client_at;
  ASSERT_TRUE(bind_loopback(AF_INET, server, at));
  ASSERT_TRUE(bind_loopback(AF_INET, client, client_at));
  constexpr int k = 50;
  auto lp = make_loop();
  unio::op r, s;
  char buf[8];
  unio::endpoint from;
  std::string got;
  int sent = 0;
  std::function<void(unio::op&)> on_sent = [&](unio::op& o) {
    ASSERT_EQ(o.raw_result(), 1);
    if (++sent < k) lp->sendto(s, client.fd, &"0123456789"[sent % 10], 1, at, 0, on_sent);
  };
  std::function<void(unio::op&)> on_recv = [&](unio::op& o) {
    ASSERT_EQ(o.raw_result(), 1);
    ASSERT_EQ(from.to_string(), client_at.to_string());
    got += buf[0];
    if (got.size() < k) lp->recvfrom(r, server.fd, buf, sizeof buf, &from, 0, on_recv);
  };
  lp->recvfrom(r, server.fd, buf, sizeof buf, &from, 0, on_recv);
  lp->sendto(s, client.fd, "0", 1, at, 0, on_sent);
  lp->run();
  std::string want;
  for (int i = 0; i < k; ++i)
    want += static_cast<char>('0' + i % 10);
  EXPECT_EQ(got, want);  // UDP on loopback neither drops nor reorders a slow stream like this
}

TEST_P(udp, destroying_the_loop_cancels_waiting_recvfrom_and_recvmsg_once) {
  owned_fd server;
  unio::endpoint at;
  ASSERT_TRUE(bind_loopback(AF_INET, server, at));
  unio::op r, m;
  probe pr, pm;
  char buf[8];
  unio::endpoint from;
  iovec iov{buf, sizeof buf};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  {
    auto lp = make_loop();
    lp->recvfrom(r, server.fd, buf, sizeof buf, &from, 0, pr.handler());
    lp->recvmsg(m, server.fd, &mh, 0, pm.handler());
    lp->poll();  // both are waiting now
    EXPECT_TRUE(r.busy());
    EXPECT_TRUE(m.busy());
  }
  EXPECT_EQ(pr.calls, 1);
  EXPECT_EQ(pr.res, neg(ECANCELED));
  EXPECT_EQ(pm.calls, 1);
  EXPECT_EQ(pm.res, neg(ECANCELED));
}

TEST_P(udp, connected_socket_sends_to_its_peer_with_send_or_an_empty_endpoint) {
  owned_fd server;
  unio::endpoint at;
  ASSERT_TRUE(bind_loopback(AF_INET, server, at));
  owned_fd client(*unio::udp_socket(AF_INET));
  auto lp = make_loop();
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->connect(o, client.fd, at.addr(), at.length, h); }),
            0);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->send(o, client.fd, "one", 3, 0, h); }), 3);
  unio::endpoint none;
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->sendto(o, client.fd, "two", 3, none, 0, h); }), 3);
  char buf[8] = {};
  unio::endpoint from;
  auto client_at = unio::local_endpoint(client.fd);
  ASSERT_TRUE(client_at);
  for (const char* want : {"one", "two"}) {
    EXPECT_EQ(
        run_one(*lp, [&](unio::op& o, auto h) { lp->recvfrom(o, server.fd, buf, sizeof buf, &from, 0, h); }),
        3);
    EXPECT_EQ(std::string(buf, 3), want);
    EXPECT_EQ(from.to_string(), client_at->to_string());
  }
  // The reply reaches the connected socket through plain recv.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->sendto(o, server.fd, "back", 4, from, 0, h); }), 4);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->recv(o, client.fd, buf, sizeof buf, 0, h); }), 4);
  EXPECT_EQ(std::string(buf, 4), "back");
}

TEST_P(udp, bad_fds_fail_with_ebadf_and_enotsock) {
  auto lp = make_loop();
  auto at = unio::endpoint::parse("127.0.0.1", 9);
  ASSERT_TRUE(at);
  char buf[4] = {};
  iovec iov{buf, sizeof buf};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  owned_fd file(raw_open("f", O_RDWR | O_CREAT));
  ASSERT_GE(file.fd, 0);
  for (int fd : {-1, file.fd}) {
    const std::int64_t want = neg(fd < 0 ? EBADF : ENOTSOCK);
    unio::endpoint from;
    EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->sendto(o, fd, buf, 1, *at, 0, h); }), want) << fd;
    EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->recvfrom(o, fd, buf, 1, &from, 0, h); }), want)
        << fd;
    EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->sendmsg(o, fd, &m, 0, h); }), want) << fd;
    EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->recvmsg(o, fd, &m, 0, h); }), want) << fd;
  }
}

// ---- Unix-domain sockets ----

class unix_domain : public conformance_test {
 protected:
  // An abstract name no other test process uses at the same time.
  static std::string abstract_name() {
    static int n = 0;
    return "@unio-test-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
  }

  // listen, connect and accept through the loop; then a message each way on the connection.
  void stream_exchange(const std::string& address) {
    auto at = unio::unix_endpoint(address);
    ASSERT_TRUE(at) << at.error().message();
    auto l = unio::unix_listen(*at);
    ASSERT_TRUE(l) << address << ": " << l.error().message();
    owned_fd listener(*l);
    EXPECT_EQ(unio::local_endpoint(listener.fd)->to_string(), address);
    auto c = unio::unix_socket(SOCK_STREAM);
    ASSERT_TRUE(c) << c.error().message();
    owned_fd client(*c);
    auto lp = make_loop();
    unio::op a, k;
    probe pa, pk;
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    lp->accept(a, listener.fd, reinterpret_cast<sockaddr*>(&peer), &peer_len, pa.handler());
    lp->connect(k, client.fd, at->addr(), at->length, pk.handler());
    lp->run();
    ASSERT_EQ(pk.res, 0) << std::strerror(static_cast<int>(-pk.res));
    ASSERT_GE(pa.res, 0) << std::strerror(static_cast<int>(-pa.res));
    owned_fd server(static_cast<int>(pa.res));
    unio::endpoint client_addr;
    std::memcpy(&client_addr.storage, &peer, sizeof peer);
    client_addr.length = peer_len;
    EXPECT_EQ(client_addr.family(), AF_UNIX);
    EXPECT_EQ(client_addr.to_string(), "(unnamed)");  // the client did not bind
    EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->send(o, client.fd, "hello", 5, 0, h); }), 5);
    char buf[16] = {};
    EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->recv(o, server.fd, buf, sizeof buf, 0, h); }), 5);
    EXPECT_EQ(std::string(buf, 5), "hello");
    EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->send(o, server.fd, "back", 4, 0, h); }), 4);
    EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->recv(o, client.fd, buf, sizeof buf, 0, h); }), 4);
    EXPECT_EQ(std::string(buf, 4), "back");
  }

  // A Unix datagram socket bound to `address`.
  static int bound_datagram_socket(const std::string& address) {
    auto at = unio::unix_endpoint(address);
    auto s = unio::unix_socket(SOCK_DGRAM);
    if (!at || !s) return -1;
    if (::bind(*s, at->addr(), at->length) != 0) {
      ::close(*s);
      return -1;
    }
    return *s;
  }
};

TEST_P(unix_domain, stream_on_a_path) { stream_exchange(path("stream.sock")); }
TEST_P(unix_domain, stream_on_an_abstract_name) { stream_exchange(abstract_name()); }

TEST_P(unix_domain, listen_on_an_existing_path_fails_with_eaddrinuse) {
  put_file("taken", "");
  auto at = unio::unix_endpoint(path("taken"));
  ASSERT_TRUE(at);
  EXPECT_EQ(unio::unix_listen(*at).error(), unio::errno_code(EADDRINUSE));
}

TEST_P(unix_domain, datagram_recvfrom_names_a_bound_sender_and_not_an_unbound_one) {
  const std::string receiver_path = path("rx.sock"), sender_path = path("tx.sock");
  owned_fd rx(bound_datagram_socket(receiver_path));
  owned_fd tx(bound_datagram_socket(sender_path));
  ASSERT_GE(rx.fd, 0);
  ASSERT_GE(tx.fd, 0);
  owned_fd anonymous(*unio::unix_socket(SOCK_DGRAM));
  auto to = unio::unix_endpoint(receiver_path);
  ASSERT_TRUE(to);
  auto lp = make_loop();
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->sendto(o, tx.fd, "from tx", 7, *to, 0, h); }), 7);
  char buf[16] = {};
  unio::endpoint from;
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->recvfrom(o, rx.fd, buf, sizeof buf, &from, 0, h); }),
            7);
  EXPECT_EQ(std::string(buf, 7), "from tx");
  EXPECT_EQ(from.family(), AF_UNIX);
  EXPECT_EQ(from.to_string(), sender_path);
  // The same endpoint, reused: a sender without an address leaves it empty.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->sendto(o, anonymous.fd, "anon", 4, *to, 0, h); }), 4);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->recvfrom(o, rx.fd, buf, sizeof buf, &from, 0, h); }),
            4);
  EXPECT_EQ(std::string(buf, 4), "anon");
  EXPECT_EQ(from.length, 0u);
  EXPECT_EQ(from.family(), AF_UNSPEC);
  // A reply to the named sender, on an abstract address this time.
  const std::string abstract = abstract_name();
  owned_fd named(bound_datagram_socket(abstract));
  ASSERT_GE(named.fd, 0);
  auto reply_to = unio::unix_endpoint(abstract);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->sendto(o, rx.fd, "reply", 5, *reply_to, 0, h); }), 5);
  EXPECT_EQ(
      run_one(*lp, [&](unio::op& o, auto h) { lp->recvfrom(o, named.fd, buf, sizeof buf, &from, 0, h); }), 5);
  EXPECT_EQ(from.to_string(), receiver_path);
}

// Sends `fd` over `sock` with SCM_RIGHTS, with one byte of data (callback form).
std::int64_t send_fd(unio::loop& lp, int sock, int fd) {
  char byte = 'F';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  return run_one(lp, [&](unio::op& o, auto h) { lp.sendmsg(o, sock, &m, 0, h); });
}

// Receives one fd sent by send_fd (awaitable form); -1 when none came.
unio::task<int> receive_fd(unio::loop& lp, int sock) {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  auto n = co_await lp.async_recvmsg(sock, &m);
  if (!n || *n != 1 || byte != 'F' || (m.msg_flags & MSG_CTRUNC) != 0) co_return -1;
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  if (c == nullptr || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) co_return -1;
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  co_return fd;
}

TEST_P(unix_domain, scm_rights_passes_an_fd_that_reads_the_same_file_and_is_close_on_exec) {
  put_file("shared", "contents of the shared file");
  owned_fd file(raw_open("shared", O_RDONLY));
  ASSERT_GE(file.fd, 0);
  auto [x, y] = unio::test::socket_pair();
  owned_fd a(x), b(y);
  ASSERT_GE(a.fd, 0);
  auto lp = make_loop();
  // The receiver waits first (awaitable form); the sender follows.
  int got = -2;
  auto receiver = [&]() -> unio::task<void> { got = co_await receive_fd(*lp, b.fd); };
  unio::spawn(receiver());
  EXPECT_EQ(send_fd(*lp, a.fd, file.fd), 1);
  lp->run();
  ASSERT_GE(got, 0);
  owned_fd received(got);
  EXPECT_NE(received.fd, file.fd);
  EXPECT_NE(::fcntl(received.fd, F_GETFD) & FD_CLOEXEC, 0) << "a received fd must be close-on-exec";
  struct stat s1 {
  }, s2{};
  ASSERT_EQ(::fstat(file.fd, &s1), 0);
  ASSERT_EQ(::fstat(received.fd, &s2), 0);
  EXPECT_EQ(s1.st_ino, s2.st_ino);
  EXPECT_EQ(s1.st_dev, s2.st_dev);
  char buf[64] = {};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, received.fd, buf, sizeof buf, 0, h); }), 27);
  EXPECT_EQ(std::string(buf, 27), "contents of the shared file");
}

TEST_P(unix_domain, datagram_sendmsg_recvmsg_on_a_socketpair_with_an_fd_and_without) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  owned_fd a(sv[0]), b(sv[1]);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  owned_fd pr(p[0]), pw(p[1]);
  auto lp = make_loop();
  EXPECT_EQ(send_fd(*lp, a.fd, pw.fd), 1);
  int got = unio::sync_wait(*lp, receive_fd(*lp, b.fd));
  ASSERT_GE(got, 0);
  owned_fd received(got);
  // The passed pipe end writes into the same pipe.
  ASSERT_EQ(::write(received.fd, "through", 7), 7);
  char buf[8] = {};
  ASSERT_EQ(::read(pr.fd, buf, sizeof buf), 7);
  EXPECT_EQ(std::string(buf, 7), "through");
  // A datagram without ancillary data gives no fd.
  ASSERT_EQ(::send(a.fd, "F", 1, 0), 1);
  EXPECT_EQ(unio::sync_wait(*lp, receive_fd(*lp, b.fd)), -1);
}

INSTANTIATE_ALL_BACKENDS(udp);
INSTANTIATE_ALL_BACKENDS(unix_domain);

}  // namespace
