// TCP helpers: addresses, listening and connecting sockets (IPv4 and IPv6).
//
// These calls never block (socket creation, bind and listen do not wait on the network), so
// they are plain functions rather than loop operations. Every socket they return is
// non-blocking and close-on-exec, which is what loop::accept/connect/recv/send expect; the
// caller owns the fd and closes it (loop::close or ::close).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

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

  // A numeric IPv4 or IPv6 address ("127.0.0.1", "::1", "0.0.0.0") and a port. No DNS lookup.
  // EINVAL when the address does not parse.
  UNIO_API static result<endpoint> parse(std::string_view address, std::uint16_t port);
};

// A listening TCP socket bound to `at` (port 0 picks a free port; see local_endpoint).
// SO_REUSEADDR is set. Errors: EADDRINUSE, EACCES, EMFILE, ...
UNIO_API result<int> tcp_listen(const endpoint& at, int backlog = 511);

// An unconnected TCP socket of the family (AF_INET or AF_INET6), for loop::connect.
UNIO_API result<int> tcp_socket(int family);

// The address a socket is bound to (getsockname).
UNIO_API result<endpoint> local_endpoint(int fd);

}  // namespace unio
