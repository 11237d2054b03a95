// A per-loop memo of what kind of file an fd is: a "file" (regular file, block device, directory:
// reads and writes never wait for another party) or a "stream" (a pipe, socket, eventfd,
// signalfd, timerfd, inotify fd, tty or other character device: a read may wait for data that
// someone else produces). A read or write at the current position of a stream waits for
// readiness on the loop (the reactor or io_uring), never on a pool thread: a worker blocked on an
// idle pipe would never come back, and a non-blocking fd would only say EAGAIN.
//
// The loop learns an fd's kind with one fstat on first use and keeps it through the fd seam: it
// forgets the fd when an op gives it out (open, accept) or closes it. An fd closed and reused
// behind the loop's back keeps the old kind for at most k_uses lookups, and both wrong answers
// fail safe: a "stream" that is now a file is read when epoll refuses it (EPERM: always ready),
// and a "file" that is now a non-blocking stream answers EAGAIN, which the loop turns into a
// fresh look and a second start (loop_impl::complete), never into the op's result.
//
// Threading: one instance per loop, used on the loop's thread only.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <vector>

namespace unio::detail {

class fd_kinds {
 public:
  enum kind : std::uint8_t { unknown = 0, file = 1, stream = 2 };
  static constexpr std::uint16_t k_uses = 4096;
  static constexpr int k_max_fd = 1 << 20;  // larger fds are not remembered (always asked)

  // The kind of fd, asking the kernel when it is not known; unknown when fstat fails (a bad fd:
  // the op reports it).
  kind of(int fd) noexcept {
    if (fd >= 0 && static_cast<std::size_t>(fd) < table_.size()) {
      entry& e = table_[static_cast<std::size_t>(fd)];
      if (e.uses > 0) {
        --e.uses;
        return e.k;
      }
    }
    kind k = ask(fd);
    if (k != unknown) put(fd, k);
    return k;
  }

  // Whether the remembered kind of fd was wrong (the kernel now says otherwise); the fresh kind
  // is remembered.
  bool changed(int fd) noexcept {
    kind fresh = ask(fd);
    kind old = peek(fd);
    forget(fd);
    if (fresh != unknown) put(fd, fresh);
    return old != unknown && fresh != unknown && fresh != old;
  }

  kind peek(int fd) const noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= table_.size()) return unknown;
    const entry& e = table_[static_cast<std::size_t>(fd)];
    return e.uses > 0 ? e.k : unknown;
  }

  void forget(int fd) noexcept {
    if (fd >= 0 && static_cast<std::size_t>(fd) < table_.size()) table_[static_cast<std::size_t>(fd)].uses = 0;
  }

 private:
  struct entry {
    kind k = unknown;
    std::uint16_t uses = 0;
  };

  static kind ask(int fd) noexcept {
    struct stat st;
    if (::fstat(fd, &st) != 0) return unknown;
    bool plain = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode);
    return plain ? file : stream;
  }

  void put(int fd, kind k) noexcept {
    if (fd < 0 || fd >= k_max_fd) return;
    try {
      if (static_cast<std::size_t>(fd) >= table_.size()) table_.resize(static_cast<std::size_t>(fd) + 64);
    } catch (...) {
      return;  // out of memory: not remembered, asked again next time
    }
    table_[static_cast<std::size_t>(fd)] = entry{k, k_uses};
  }

  std::vector<entry> table_;
};

}  // namespace unio::detail
