// Name look-ups for loop::async_resolve and async_reverse_resolve. These are the blocking calls;
// the loop runs them on its pool as work ops (loop.hpp), so getaddrinfo's waits on /etc/hosts,
// nsswitch modules and DNS never reach the loop's thread (except on the sync backend).
#include <netdb.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "unio/loop.hpp"
#include "unio/net.hpp"

namespace unio {
namespace {

class resolve_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "unio.resolve"; }
  std::string message(int v) const override {
    if (v == resolve_errc::not_numeric)
      return "not a numeric IP address (endpoint::parse does no look-up; use loop::async_resolve for host "
             "names)";
    return ::gai_strerror(v);
  }
  std::error_condition default_error_condition(int v) const noexcept override {
    if (v == resolve_errc::not_numeric) return std::errc::invalid_argument;
    if (v == EAI_MEMORY) return std::errc::not_enough_memory;
    return {v, *this};
  }
};

// A getaddrinfo/getnameinfo result as an error_code (EAI_SYSTEM: the errno it left).
std::error_code gai_error(int rc, int saved_errno) noexcept {
  if (rc == EAI_SYSTEM) return errno_code(saved_errno != 0 ? saved_errno : EIO);
  return {rc, resolve_category()};
}

bool same(const endpoint& a, const endpoint& b) noexcept {
  return a.length == b.length && std::memcmp(&a.storage, &b.storage, a.length) == 0;
}

struct addrinfo_deleter {
  void operator()(addrinfo* p) const noexcept { ::freeaddrinfo(p); }
};

}  // namespace

const std::error_category& resolve_category() noexcept {
  static const resolve_category_impl c;
  return c;
}

namespace detail {

result<std::vector<endpoint>> resolve_now(const std::string& host, const std::string& service,
                                          const resolve_hints& hints) {
  addrinfo want{};
  want.ai_family = hints.family;
  want.ai_socktype = hints.socktype;
  want.ai_flags = hints.flags & ~AI_CANONNAME;
  addrinfo* got = nullptr;
  errno = 0;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.empty() ? nullptr : service.c_str(),
                         &want, &got);
  if (rc != 0) return gai_error(rc, errno);
  std::unique_ptr<addrinfo, addrinfo_deleter> own(got);
  std::vector<endpoint> out;
  for (const addrinfo* ai = got; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addr == nullptr || ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    endpoint ep;
    std::memcpy(&ep.storage, ai->ai_addr, ai->ai_addrlen);
    ep.length = ai->ai_addrlen;
    if (std::none_of(out.begin(), out.end(), [&](const endpoint& e) { return same(e, ep); }))
      out.push_back(ep);
  }
  if (out.empty()) return std::error_code(EAI_NONAME, resolve_category());
  return out;
}

result<name_info> reverse_resolve_now(const endpoint& ep, int flags) {
  char host[NI_MAXHOST] = {};
  char serv[NI_MAXSERV] = {};
  errno = 0;
  int rc = ::getnameinfo(ep.addr(), ep.length, host, sizeof host, serv, sizeof serv, flags);
  if (rc != 0) return gai_error(rc, errno);
  return name_info{host, serv};
}

}  // namespace detail
}  // namespace unio
