// unio::endpoint: numeric IPv4/IPv6 parsing and printing, and the socket helpers around it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>

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
