#include "unio/net.hpp"

#include <arpa/inet.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

namespace unio {
namespace {

constexpr std::size_t k_sun_path_offset = offsetof(sockaddr_un, sun_path);
constexpr std::size_t k_sun_path_size = sizeof(sockaddr_un::sun_path);

// A Unix-domain address as to_string shows it: the path (the kernel may count its NUL in the
// length, or not), "@" and the abstract name, or "(unnamed)".
std::string unix_to_string(const sockaddr_un& un, socklen_t length) {
  std::size_t n =
      length > k_sun_path_offset ? std::min<std::size_t>(length - k_sun_path_offset, k_sun_path_size) : 0;
  if (n == 0) return "(unnamed)";
  if (un.sun_path[0] == '\0') return std::string(1, '@').append(un.sun_path + 1, n - 1);
  return std::string(un.sun_path, ::strnlen(un.sun_path, n));
}

result<int> new_socket(int family, int type) {
  int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_code(errno);
  return fd;
}

// Binds `fd` to `at` and, when `listening`, listens; closes it on failure.
result<int> bind_socket(int fd, const endpoint& at, bool listening, int backlog = 0) {
  if (::bind(fd, at.addr(), at.length) < 0 || (listening && ::listen(fd, backlog) < 0)) {
    int e = errno;
    ::close(fd);
    return errno_code(e);
  }
  return fd;
}

}  // namespace

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
  if (family() == AF_UNIX) return unix_to_string(reinterpret_cast<const sockaddr_un&>(storage), length);
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

result<int> tcp_socket(int family) { return new_socket(family, SOCK_STREAM); }

result<int> tcp_listen(const endpoint& at, int backlog) {
  auto fd = tcp_socket(at.family());
  if (!fd) return fd;
  int one = 1;
  ::setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  return bind_socket(*fd, at, true, backlog);
}

result<int> udp_socket(int family) { return new_socket(family, SOCK_DGRAM); }

result<int> udp_bind(const endpoint& at) {
  auto fd = udp_socket(at.family());
  if (!fd) return fd;
  return bind_socket(*fd, at, false);
}

result<endpoint> unix_endpoint(std::string_view path) {
  bool abstract = !path.empty() && path.front() == '@';
  std::string_view name = abstract ? path.substr(1) : path;
  if (path.empty() || (!abstract && name.find('\0') != std::string_view::npos)) return errno_code(EINVAL);
  // A path keeps room for its NUL; an abstract name has none, but its leading NUL takes a byte.
  if (name.size() + 1 > k_sun_path_size) return errno_code(ENAMETOOLONG);
  endpoint ep;
  auto& un = reinterpret_cast<sockaddr_un&>(ep.storage);
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path + (abstract ? 1 : 0), name.data(), name.size());
  ep.length = static_cast<socklen_t>(k_sun_path_offset + 1 + name.size());
  return ep;
}

result<int> unix_listen(const endpoint& at, int backlog) {
  auto fd = new_socket(AF_UNIX, SOCK_STREAM);
  if (!fd) return fd;
  return bind_socket(*fd, at, true, backlog);
}

result<int> unix_socket(int type) { return new_socket(AF_UNIX, type); }

result<endpoint> local_endpoint(int fd) {
  endpoint ep;
  ep.length = sizeof ep.storage;
  if (::getsockname(fd, ep.addr(), &ep.length) < 0) return errno_code(errno);
  return ep;
}

}  // namespace unio
