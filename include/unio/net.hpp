// Socket helpers: addresses (IPv4, IPv6 and Unix-domain), and TCP, UDP and Unix-domain sockets.
//
// These calls never block (socket creation, bind and listen do not wait on the network), so
// they are plain functions rather than loop operations. Every socket they return is
// non-blocking and close-on-exec, which is what the loop's socket operations (accept, connect,
// recv, send, sendto, recvfrom, sendmsg, recvmsg) expect; the caller owns the fd and closes it
// (loop::close or ::close). A Unix-domain socket works with the same operations as a TCP or UDP
// one; only its address differs (unix_endpoint).
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

// A socket address of any family: IPv4, IPv6 or Unix-domain (AF_UNIX), as the kernel gives it
// (accept, recvfrom, local_endpoint) or as parse/unix_endpoint build it. `length` is the
// address's length in `storage`, as sockaddr lengths are passed to the kernel.
struct endpoint {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr* addr() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* addr() noexcept { return reinterpret_cast<sockaddr*>(&storage); }
  int family() const noexcept { return storage.ss_family; }
  // The port of an IPv4 or IPv6 address; 0 for any other family.
  UNIO_API std::uint16_t port() const noexcept;
  // "127.0.0.1:8080" or "[::1]:8080"; a Unix-domain address as its path ("/run/app.sock"), an
  // abstract one as "@" and its name ("@app"), and an unnamed one (an unbound socket, as
  // accept gives a client that did not bind) as "(unnamed)". Any other family (a
  // default-constructed endpoint) gives "(unknown address family)".
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

// ---- TCP ----

// A listening TCP socket bound to `at` (port 0 picks a free port; see local_endpoint).
// SO_REUSEADDR is set. Errors: EADDRINUSE, EACCES, EMFILE, ...
UNIO_API result<int> tcp_listen(const endpoint& at, int backlog = 511);

// An unconnected TCP socket of the family (AF_INET or AF_INET6), for loop::connect.
UNIO_API result<int> tcp_socket(int family);

// ---- UDP ----

// An unbound UDP socket of the family (AF_INET or AF_INET6). Its first sendto binds it to a free
// port of the kernel's choice; loop::connect on it fixes a default peer for send/recv.
// Errors: EAFNOSUPPORT (a family the kernel lacks, IPv6 disabled), EMFILE, ENFILE.
UNIO_API result<int> udp_socket(int family);

// A UDP socket bound to `at` (port 0 picks a free port; see local_endpoint), for recvfrom.
// SO_REUSEADDR is not set: a second socket on the same address and port fails with EADDRINUSE
// instead of sharing the datagrams. Errors: EADDRINUSE, EADDRNOTAVAIL, EACCES (a port below
// 1024 without the capability), EAFNOSUPPORT, EMFILE.
UNIO_API result<int> udp_bind(const endpoint& at);

// ---- Unix-domain sockets (AF_UNIX) ----

// The Unix-domain address `path`. A path names a socket file ("/run/app.sock", or relative to
// the working directory). A leading '@' names a socket in the abstract namespace instead ("@app":
// the name "app", no file; Linux only): it belongs to the network namespace and goes away with
// its last socket. The address is not checked for existence. Errors: ENAMETOOLONG when it does
// not fit sun_path (a path of more than 107 bytes, as the terminating NUL needs room; an abstract
// name of more than 107 bytes after the '@'); EINVAL for an empty path or a path (not an
// abstract name) holding a NUL byte.
UNIO_API result<endpoint> unix_endpoint(std::string_view path);

// A listening Unix-domain stream socket bound to `at` (from unix_endpoint). Binding a path
// creates the socket file (permissions from the umask); it is not removed when the socket is
// closed, and an existing file at that path, even a stale socket file, fails with EADDRINUSE:
// unlink it first. Errors: EADDRINUSE, EACCES, ENOENT (a directory of the path is missing),
// EMFILE, ...
UNIO_API result<int> unix_listen(const endpoint& at, int backlog = 511);

// An unbound Unix-domain socket of `type`: SOCK_STREAM (for loop::connect) or SOCK_DGRAM (for
// sendto; bind(2) it first to receive replies, since datagrams from an unbound socket carry no
// sender address); SOCK_SEQPACKET works as well. Errors: ESOCKTNOSUPPORT or EINVAL (a type
// AF_UNIX lacks), EMFILE, ENFILE.
UNIO_API result<int> unix_socket(int type);

// The address a socket is bound to (getsockname); for an unbound Unix-domain socket, an unnamed
// address.
UNIO_API result<endpoint> local_endpoint(int fd);

}  // namespace unio
