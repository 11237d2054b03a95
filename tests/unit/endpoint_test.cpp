// unio::endpoint: numeric IPv4/IPv6 parsing, Unix-domain addresses, printing, and the socket
// helpers around them.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <string>

#include "unio/net.hpp"

namespace {

TEST(unit_endpoint, ipv4) {
  auto ep = unio::endpoint::parse("127.0.0.1", 8080);
  ASSERT_TRUE(ep) << ep.error().message();
  EXPECT_EQ(ep->family(), AF_INET);
  EXPECT_EQ(ep->port(), 8080);
  EXPECT_EQ(ep->length, sizeof(sockaddr_in));
  EXPECT_EQ(ep->to_string(), "127.0.0.1:8080");
  auto any = unio::endpoint::parse("0.0.0.0", 0);
  ASSERT_TRUE(any);
  EXPECT_EQ(any->to_string(), "0.0.0.0:0");
  auto top = unio::endpoint::parse("255.255.255.255", 65535);
  ASSERT_TRUE(top);
  EXPECT_EQ(top->to_string(), "255.255.255.255:65535");
  // The address in network byte order, as bind() wants it.
  auto* sin = reinterpret_cast<const sockaddr_in*>(ep->addr());
  EXPECT_EQ(ntohl(sin->sin_addr.s_addr), 0x7f000001u);
}

TEST(unit_endpoint, ipv6) {
  auto ep = unio::endpoint::parse("::1", 443);
  ASSERT_TRUE(ep) << ep.error().message();
  EXPECT_EQ(ep->family(), AF_INET6);
  EXPECT_EQ(ep->port(), 443);
  EXPECT_EQ(ep->length, sizeof(sockaddr_in6));
  EXPECT_EQ(ep->to_string(), "[::1]:443");
  auto bracketed = unio::endpoint::parse("[2001:db8::5]", 80);
  ASSERT_TRUE(bracketed);
  EXPECT_EQ(bracketed->to_string(), "[2001:db8::5]:80");
  auto mapped = unio::endpoint::parse("::ffff:10.0.0.1", 1);
  ASSERT_TRUE(mapped);
  EXPECT_EQ(mapped->family(), AF_INET6);
  EXPECT_EQ(mapped->to_string(), "[::ffff:10.0.0.1]:1");
  auto full = unio::endpoint::parse("2001:0db8:0000:0000:0000:0000:0000:0001", 2);
  ASSERT_TRUE(full);
  EXPECT_EQ(full->to_string(), "[2001:db8::1]:2");  // printed in canonical form
}

TEST(unit_endpoint, bad_input_is_einval) {
  for (const char* bad : {"", "localhost", "256.1.1.1", "1.2.3", "1.2.3.4:80", " 127.0.0.1", "127.0.0.1 ", "::1]",
                          "[::1", "[]", "::g", "1:2:3:4:5:6:7:8:9", "fe80::1%lo", "[::1]:80", "[1.2.3.4]"}) {
    auto ep = unio::endpoint::parse(bad, 80);
    EXPECT_FALSE(ep) << "'" << bad << "' parsed as " << (ep ? ep->to_string() : "");
    if (!ep) {
      EXPECT_EQ(ep.error(), std::errc::invalid_argument) << bad;
    }
  }
}

TEST(unit_endpoint, default_is_unknown_family) {
  unio::endpoint ep;
  EXPECT_EQ(ep.family(), AF_UNSPEC);
  EXPECT_EQ(ep.port(), 0);
  EXPECT_EQ(ep.to_string(), "(unknown address family)");
}

TEST(unit_endpoint, listen_and_local_endpoint_round_trip) {
  for (const char* addr : {"127.0.0.1", "::1"}) {
    auto ep = unio::endpoint::parse(addr, 0);
    ASSERT_TRUE(ep);
    auto fd = unio::tcp_listen(*ep);
    if (!fd && std::string(addr) == "::1") GTEST_SKIP() << "no IPv6 loopback here: " << fd.error().message();
    ASSERT_TRUE(fd) << addr << ": " << fd.error().message();
    auto local = unio::local_endpoint(*fd);
    ASSERT_TRUE(local);
    EXPECT_EQ(local->family(), ep->family());
    EXPECT_NE(local->port(), 0);  // port 0 picked a free port
    auto again = unio::endpoint::parse(addr, local->port());
    ASSERT_TRUE(again);
    EXPECT_EQ(local->to_string(), again->to_string());
    ::close(*fd);
  }
}

TEST(unit_endpoint, helper_errors) {
  EXPECT_EQ(unio::local_endpoint(-1).error(), std::errc::bad_file_descriptor);
  unio::endpoint unknown;
  EXPECT_FALSE(unio::tcp_listen(unknown));
  auto s = unio::tcp_socket(AF_INET);
  ASSERT_TRUE(s);
  ::close(*s);
}

}  // namespace

namespace {
TEST(unit_endpoint, parse_error_points_to_async_resolve) {
  auto ep = unio::endpoint::parse("localhost", 80);
  ASSERT_FALSE(ep);
  EXPECT_EQ(&ep.error().category(), &unio::resolve_category());
  EXPECT_EQ(ep.error(), std::errc::invalid_argument);
  EXPECT_NE(ep.error().message().find("async_resolve"), std::string::npos) << ep.error().message();
}
}  // namespace

namespace {
TEST(unit_endpoint, unix_path_and_abstract_name) {
  auto p = unio::unix_endpoint("/run/app.sock");
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->family(), AF_UNIX);
  EXPECT_EQ(p->port(), 0);
  EXPECT_EQ(p->length, offsetof(sockaddr_un, sun_path) + 14);  // the path and its NUL
  EXPECT_EQ(p->to_string(), "/run/app.sock");
  auto a = unio::unix_endpoint("@app");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->length, offsetof(sockaddr_un, sun_path) + 4);  // a NUL, then the name without one
  EXPECT_EQ(reinterpret_cast<const sockaddr_un*>(a->addr())->sun_path[0], '\0');
  EXPECT_EQ(a->to_string(), "@app");
  auto rel = unio::unix_endpoint("relative.sock");
  ASSERT_TRUE(rel);
  EXPECT_EQ(rel->to_string(), "relative.sock");
}

TEST(unit_endpoint, unix_names_that_do_not_fit_sun_path_are_enametoolong) {
  constexpr std::size_t room = sizeof(sockaddr_un::sun_path);  // 108 on Linux
  EXPECT_TRUE(unio::unix_endpoint("/" + std::string(room - 2, 'p')));  // 107 bytes and the NUL
  EXPECT_EQ(unio::unix_endpoint("/" + std::string(room - 1, 'p')).error(), unio::errno_code(ENAMETOOLONG));
  EXPECT_TRUE(unio::unix_endpoint("@" + std::string(room - 1, 'a')));  // the leading NUL and 107 bytes
  EXPECT_EQ(unio::unix_endpoint("@" + std::string(room, 'a')).error(), unio::errno_code(ENAMETOOLONG));
  EXPECT_EQ(unio::unix_endpoint("").error(), unio::errno_code(EINVAL));
  EXPECT_EQ(unio::unix_endpoint(std::string("a\0b", 3)).error(), unio::errno_code(EINVAL));
}

TEST(unit_endpoint, unbound_unix_socket_is_unnamed) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    auto s = unio::unix_socket(type);
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_NE(::fcntl(*s, F_GETFL) & O_NONBLOCK, 0);
    EXPECT_NE(::fcntl(*s, F_GETFD) & FD_CLOEXEC, 0);
    auto local = unio::local_endpoint(*s);
    ASSERT_TRUE(local);
    EXPECT_EQ(local->family(), AF_UNIX);
    EXPECT_EQ(local->to_string(), "(unnamed)");
    ::close(*s);
  }
}

TEST(unit_endpoint, udp_bind_picks_a_port_and_refuses_a_taken_one) {
  auto ep = unio::endpoint::parse("127.0.0.1", 0);
  ASSERT_TRUE(ep);
  auto a = unio::udp_bind(*ep);
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_NE(::fcntl(*a, F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(::fcntl(*a, F_GETFD) & FD_CLOEXEC, 0);
  auto local = unio::local_endpoint(*a);
  ASSERT_TRUE(local);
  EXPECT_NE(local->port(), 0);
  EXPECT_EQ(unio::udp_bind(*local).error(), unio::errno_code(EADDRINUSE));
  ::close(*a);
  EXPECT_EQ(unio::udp_socket(AF_UNIX + 1000).error(), unio::errno_code(EAFNOSUPPORT));
}
}  // namespace
