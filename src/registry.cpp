#include "registry.hpp"

#include <sys/utsname.h>

#include <cerrno>
#include <system_error>

#include "unio/backend_info.hpp"

namespace unio::detail {

// One line per backend file; a backend not built into this unio is simply not listed.
extern const backend_descriptor threadpool_descriptor;
extern const backend_descriptor sync_descriptor;
extern const backend_descriptor linux_aio_descriptor;
extern const backend_descriptor posix_aio_descriptor;
#ifdef UNIO_HAVE_IO_URING
extern const backend_descriptor io_uring_descriptor;
#endif

namespace {
// The order auto prefers. sync is last: it blocks the loop, so auto never picks it while the
// thread pool works.
const backend_descriptor* const k_backends[] = {
#ifdef UNIO_HAVE_IO_URING
    &io_uring_descriptor,  // where the kernel allows it (probe: setup, opcodes, a NOP round trip)
#endif
    &threadpool_descriptor,
    &linux_aio_descriptor,
    &posix_aio_descriptor,
    &sync_descriptor,
};
}  // namespace

std::span<const backend_descriptor* const> all_backends() noexcept { return k_backends; }

const backend_descriptor* find_backend(std::string_view name) noexcept {
  for (const backend_descriptor* d : k_backends)
    if (name == d->name) return d;
  return nullptr;
}

const backend_descriptor& resolve_backend(const std::string& name, std::string& reason) {
  if (name.empty() || name == "auto") {
    std::string skipped;
    for (const backend_descriptor* d : k_backends) {
      std::string why = d->probe();
      if (why.empty()) {
        reason = skipped.empty() ? std::string("first in preference order") : "skipped " + skipped;
        return *d;
      }
      if (!skipped.empty()) skipped += "; ";
      skipped += std::string(d->name) + ": " + why;
    }
    throw std::system_error(ENOSYS, std::generic_category(), "unio: no backend works here (" + skipped + ")");
  }
  const backend_descriptor* d = find_backend(name);
  if (d == nullptr) {
    std::string known;
    for (const backend_descriptor* k : k_backends) known += std::string(known.empty() ? "" : ", ") + k->name;
    throw std::system_error(EINVAL, std::generic_category(),
                            "unio: unknown backend '" + name + "' (built in: auto, " + known + ")");
  }
  std::string why = d->probe();
  if (!why.empty())
    throw std::system_error(ENOTSUP, std::generic_category(), "unio: backend " + name + " is unavailable: " + why);
  reason = "requested";
  return *d;
}

}  // namespace unio::detail

namespace unio {

std::vector<backend_info> probe_backends() {
  std::vector<backend_info> out;
  for (const detail::backend_descriptor* d : detail::all_backends()) {
    backend_info bi;
    bi.name = d->name;
    bi.reason = d->probe();
    bi.available = bi.reason.empty();
    bi.native = d->native(loop_options{});
    out.push_back(std::move(bi));
  }
  return out;
}

std::string auto_backend(std::string* why) {
  std::string reason;
  try {
    const detail::backend_descriptor& d = detail::resolve_backend("auto", reason);
    if (why != nullptr) *why = reason;
    return d.name;
  } catch (const std::system_error& e) {
    if (why != nullptr) *why = e.what();
    return {};
  }
}

std::string kernel_release() {
  utsname u{};
  if (::uname(&u) != 0) return "unknown";
  return u.release;
}

}  // namespace unio
