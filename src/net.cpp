#include "unio/net.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace unio {

std::uint16_t endpoint::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

std::string endpoint::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(port());
  }
  if (family() == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(port());
  }
  return "(unknown address family)";
}

result<endpoint> endpoint::parse(std::string_view address, std::uint16_t port) {
  std::string s(address);
  // Brackets are the URL form of an IPv6 address ("[::1]") and only valid around one.
  bool bracketed = s.size() > 2 && s.front() == '[' && s.back() == ']';
  if (bracketed) s = s.substr(1, s.size() - 2);
  endpoint ep;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ep.storage);
  if (!bracketed && ::inet_pton(AF_INET, s.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    ep.length = sizeof(sockaddr_in);
    return ep;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ep.storage);
  if (::inet_pton(AF_INET6, s.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    ep.length = sizeof(sockaddr_in6);
    return ep;
  }
  return std::error_code(resolve_errc::not_numeric, resolve_category());
}

result<int> tcp_socket(int family) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_code(errno);
  return fd;
}

result<int> tcp_listen(const endpoint& at, int backlog) {
  auto fd = tcp_socket(at.family());
  if (!fd) return fd;
  int one = 1;
  ::setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(*fd, at.addr(), at.length) < 0 || ::listen(*fd, backlog) < 0) {
    int e = errno;
    ::close(*fd);
    return errno_code(e);
  }
  return fd;
}

result<endpoint> local_endpoint(int fd) {
  endpoint ep;
  ep.length = sizeof ep.storage;
  if (::getsockname(fd, ep.addr(), &ep.length) < 0) return errno_code(errno);
  return ep;
}

}  // namespace unio
