// A per-loop memo of what fcntl(F_GETFL) and statx(STATX_DIOALIGN) said about an fd, so that a
// hot path (an unaligned read on an O_DIRECT file, linux_aio choosing between the kernel and the
// pool) does not pay those two system calls on every op.
//
// Facts can go stale: the loop forgets an fd when it closes it or an open/accept returns it, but
// an fd number closed and reused behind the loop's back (::close, ::open, dup2) keeps the old
// facts. So every user must stay correct on stale facts and only lose speed (direct_io retries an
// EINVAL with fresh facts; linux_aio at worst sends an op the slow way), and a fact expires after
// k_uses lookups, which bounds how long a stale one can cost anything.
//
// Threading: one instance per loop, used on the loop's thread only.
#pragma once

#include <cstdint>
#include <vector>

#include "unio/direct_io.hpp"

namespace unio::detail {

class fd_facts {
 public:
  struct facts {
    int flags = 0;          // fcntl(F_GETFL)
    dio_alignment al{};      // statx's answer (left {1, 1} when nobody asked: not O_DIRECT)
    std::uint16_t uses = 0;  // lookups left before the facts expire
  };
  static constexpr std::uint16_t k_uses = 256;
  static constexpr int k_max_fd = 1 << 20;  // larger fds are not remembered (always asked)

  // The facts about fd, or nullptr when unknown or expired (then ask the kernel and put()).
  // Counts one use.
  facts* find(int fd) noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= table_.size()) return nullptr;
    facts& f = table_[static_cast<std::size_t>(fd)];
    if (f.uses == 0) return nullptr;
    --f.uses;
    return &f;
  }
  // Remembers fresh facts.
  void put(int fd, int flags, dio_alignment al = {}) {
    if (fd < 0 || fd >= k_max_fd) return;
    if (static_cast<std::size_t>(fd) >= table_.size()) table_.resize(static_cast<std::size_t>(fd) + 1);
    facts& f = table_[static_cast<std::size_t>(fd)];
    f.flags = flags;
    f.al = al;
    f.uses = k_uses;
  }
  void forget(int fd) noexcept {
    if (fd >= 0 && static_cast<std::size_t>(fd) < table_.size()) table_[static_cast<std::size_t>(fd)].uses = 0;
  }

 private:
  std::vector<facts> table_;
};

}  // namespace unio::detail
