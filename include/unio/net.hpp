// TCP helpers: addresses, listening and connecting sockets (IPv4 and IPv6).
//
// These calls never block (socket creation, bind and listen do not wait on the network), so
// they are plain functions rather than loop operations. Every socket they return is
// non-blocking and close-on-exec, which is what loop::accept/connect/recv/send expect; the
// caller owns the fd and closes it (loop::close or ::close).
#pragma once

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "unio/export.hpp"
#include "unio/result.hpp"

namespace unio {

struct endpoint {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr* addr() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* addr() noexcept { return reinterpret_cast<sockaddr*>(&storage); }
  int family() const noexcept { return storage.ss_family; }
  UNIO_API std::uint16_t port() const noexcept;
  // "127.0.0.1:8080" or "[::1]:8080".
  UNIO_API std::string to_string() const;

  // A numeric IPv4 or IPv6 address ("127.0.0.1", "::1", "0.0.0.0") and a port. No DNS lookup:
  // for host names use loop::async_resolve. When the address does not parse the error is
  // resolve_errc::not_numeric in resolve_category(), whose message says so; it compares equal
  // to std::errc::invalid_argument (EINVAL).
  UNIO_API static result<endpoint> parse(std::string_view address, std::uint16_t port);
};

// ---- Names: loop::async_resolve and async_reverse_resolve ----

// What async_resolve looks for. Each field is passed to getaddrinfo as its hints.
struct resolve_hints {
  int family = AF_UNSPEC;      // AF_INET, AF_INET6, or AF_UNSPEC for both
  int socktype = SOCK_STREAM;  // SOCK_STREAM, SOCK_DGRAM, or 0 for any (duplicates are dropped)
  // getaddrinfo's AI_* flags: AI_NUMERICHOST (no look-up: host must be numeric, EAI_NONAME
  // otherwise), AI_NUMERICSERV (service must be a port number), AI_PASSIVE (empty host: the
  // wildcard address, for bind, instead of loopback), AI_ADDRCONFIG (only families configured on
  // a non-loopback interface), AI_V4MAPPED/AI_ALL (with AF_INET6). AI_CANONNAME is ignored.
  int flags = 0;
};

// The names of an address (async_reverse_resolve).
struct name_info {
  std::string host;     // "localhost", or the numeric address when it has no name
  std::string service;  // "http", or the port number when it has no name
};

// Errors of name look-ups: the value is getaddrinfo's EAI_* code (negative on glibc) and
// message() is gai_strerror's text. EAI_SYSTEM never appears: its errno is reported in
// std::generic_category() instead.
UNIO_API const std::error_category& resolve_category() noexcept;

namespace resolve_errc {
// endpoint::parse: the address is not a numeric IPv4 or IPv6 address. Equivalent to EINVAL.
inline constexpr int not_numeric = 1;
}  // namespace resolve_errc

// A listening TCP socket bound to `at` (port 0 picks a free port; see local_endpoint).
// SO_REUSEADDR is set. Errors: EADDRINUSE, EACCES, EMFILE, ...
UNIO_API result<int> tcp_listen(const endpoint& at, int backlog = 511);

// An unconnected TCP socket of the family (AF_INET or AF_INET6), for loop::connect.
UNIO_API result<int> tcp_socket(int family);

// The address a socket is bound to (getsockname).
UNIO_API result<endpoint> local_endpoint(int fd);

}  // namespace unio
