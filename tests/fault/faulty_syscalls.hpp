// faulty_syscalls: a decorator over unio's syscall table (src/sys/syscalls.hpp) that injects
// faults, in the manner of LevelDB's EnvWrapper-based fault envs.
//
// It copies the real table, replaces some entries with wrappers, installs the copy with
// set_table() and puts the real table back in its destructor (RAII). Each wrapped call has a
// `fault` plan that says what to do to it:
//   eintr      fail with EINTR this many times, then behave normally;
//   eagain     then fail with EAGAIN this many times (a socket that filled up again);
//   cap        transfer at most this many bytes per call (a short read or write);
//   fail_errno fail with this errno once `fail_after` calls have succeeded (ENOSPC, EIO, ...).
// and counts the calls it saw, so a test can prove that EINTR was retried (N + 1 calls) or
// that close was not (1 call).
//
// The plans are atomics: the threadpool backend calls the table from its worker threads. The
// table is global, so only one faulty_syscalls may exist at a time, and it must outlive every
// loop that runs ops through it (declare it before the loop).
#pragma once

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include <initializer_list>
#include <string>

#include "op_traits.hpp"
#include "sys/syscalls.hpp"
#include "unio/loop.hpp"

namespace unio::test {

namespace sys = unio::detail::sys;

// Whether a fault injected through the seam reaches op `code` on `lp`'s backend, for a buffered
// regular file (`positioned`: at an offset, not current_position) or, for a socket op, a socket.
// The seam is the table that sync, threadpool, the pool (delegated ops, and linux_aio's buffered
// files) and the reactor (readiness ops on every backend but io_uring) call. It cannot reach I/O
// the kernel performs itself (io_uring's native ops) or that glibc's AIO threads perform
// (posix_aio's positioned read/write and its fsync): those backends meet the same faults for
// real instead (real_fault_test, fs_death_test).
inline bool seam_reaches(const unio::loop& lp, unio::op_code code, bool positioned = true) {
  const std::string_view b = lp.backend_name();
  if (b == "io_uring") return !lp.is_native(code);
  if (b == "posix_aio") {
    bool sync = code == unio::op_code::fsync || code == unio::op_code::fdatasync;
    return !(unio::detail::traits(code).posix_aio && (positioned || sync));
  }
  return true;
}

// The first of `codes` the seam cannot reach on `lp` (seam_reaches), as a skip reason; "" when
// it reaches them all.
inline std::string seam_unreachable(const unio::loop& lp, std::initializer_list<unio::op_code> codes,
                                    bool positioned = true) {
  for (unio::op_code c : codes)
    if (!seam_reaches(lp, c, positioned))
      return std::string(lp.backend_name()) + " performs " + unio::detail::traits(c).name +
             " without the syscall seam (in the kernel or in glibc's AIO threads); a real fault covers it";
  return "";
}
// The same for a loop with these options (a loop is made to ask).
inline std::string seam_unreachable(const unio::loop_options& opts, std::initializer_list<unio::op_code> codes,
                                    bool positioned = true) {
  unio::loop lp(opts);
  return seam_unreachable(lp, codes, positioned);
}

// What to inject into one system call. Defaults inject nothing.
struct fault {
  std::atomic<int> eintr{0};       // fail with EINTR this many more times
  std::atomic<int> eagain{0};      // then fail with EAGAIN this many more times
  std::atomic<long> cap{-1};       // at most this many bytes per transfer; -1: no cap
  std::atomic<int> fail_errno{0};  // 0: never fail; else fail with it after `fail_after` calls
  std::atomic<long> fail_after{0}; // successful calls before fail_errno starts
  std::atomic<long> calls{0};      // every call seen, injected failures included
  std::atomic<long> passed{0};     // calls passed to the real system call

  // Decides the fate of one call: 0 to go ahead, else the errno to fail with. Serialised, so
  // that "fail after N calls" is exact when pool threads call concurrently.
  int next() noexcept {
    std::lock_guard lk(mu_);
    calls.fetch_add(1);
    for (int left = eintr.load(); left > 0;) {
      if (eintr.compare_exchange_weak(left, left - 1)) return EINTR;
    }
    for (int left = eagain.load(); left > 0;) {
      if (eagain.compare_exchange_weak(left, left - 1)) return EAGAIN;
    }
    if (int e = fail_errno.load(); e != 0 && passed.load() >= fail_after.load()) return e;
    passed.fetch_add(1);
    return 0;
  }
  std::size_t clamp(std::size_t len) const noexcept {
    long c = cap.load();
    return c >= 0 && static_cast<std::size_t>(c) < len ? static_cast<std::size_t>(c) : len;
  }

 private:
  std::mutex mu_;
};

class faulty_syscalls {
 public:
  fault pread, pwrite, read, write, preadv2, pwritev2, fsync, fdatasync, close, openat2, accept4, sendfile, recv, send;

  faulty_syscalls() {
    if (active() != nullptr) {
      std::fprintf(stderr, "faulty_syscalls: only one may be installed at a time\n");
      std::abort();
    }
    active() = this;
    sys::table t = sys::real_table();
    t.pread = &w_pread;
    t.pwrite = &w_pwrite;
    t.read = &w_read;
    t.write = &w_write;
    t.preadv2 = &w_preadv2;
    t.pwritev2 = &w_pwritev2;
    t.fsync = &w_fsync;
    t.fdatasync = &w_fdatasync;
    t.close = &w_close;
    t.openat2 = &w_openat2;
    t.accept4 = &w_accept4;
    t.sendfile = &w_sendfile;
    t.recv = &w_recv;
    t.send = &w_send;
    sys::set_table(t);
  }
  ~faulty_syscalls() {
    sys::set_table(sys::real_table());
    active() = nullptr;
  }
  faulty_syscalls(const faulty_syscalls&) = delete;
  faulty_syscalls& operator=(const faulty_syscalls&) = delete;

 private:
  static faulty_syscalls*& active() noexcept {
    static faulty_syscalls* p = nullptr;
    return p;
  }
  static const sys::table& real() noexcept { return sys::real_table(); }
  template <class R>
  static R fail(int e) noexcept {
    errno = e;
    return static_cast<R>(-1);
  }
  // Shortens an iovec array to `cap` bytes in total (into `out`); returns the new count.
  static int clamp_iov(const fault& f, const iovec* iov, int cnt, iovec* out, int max) noexcept {
    std::size_t left = f.clamp(~std::size_t{0});
    int n = 0;
    for (int i = 0; i < cnt && n < max && left > 0; ++i) {
      out[n] = iov[i];
      if (out[n].iov_len > left) out[n].iov_len = left;
      left -= out[n].iov_len;
      ++n;
    }
    return n;
  }

  static ssize_t w_pread(int fd, void* buf, size_t len, off_t off) {
    fault& f = active()->pread;
    if (int e = f.next()) return fail<ssize_t>(e);
    return real().pread(fd, buf, f.clamp(len), off);
  }
  static ssize_t w_pwrite(int fd, const void* buf, size_t len, off_t off) {
    fault& f = active()->pwrite;
    if (int e = f.next()) return fail<ssize_t>(e);
    return real().pwrite(fd, buf, f.clamp(len), off);
  }
  static ssize_t w_read(int fd, void* buf, size_t len) {
    fault& f = active()->read;
    if (int e = f.next()) return fail<ssize_t>(e);
    return real().read(fd, buf, f.clamp(len));
  }
  static ssize_t w_write(int fd, const void* buf, size_t len) {
    fault& f = active()->write;
    if (int e = f.next()) return fail<ssize_t>(e);
    return real().write(fd, buf, f.clamp(len));
  }
  static ssize_t w_preadv2(int fd, const iovec* iov, int cnt, off_t off, int flags) {
    fault& f = active()->preadv2;
    if (int e = f.next()) return fail<ssize_t>(e);
    if (f.cap.load() < 0) return real().preadv2(fd, iov, cnt, off, flags);
    iovec v[64];
    return real().preadv2(fd, v, clamp_iov(f, iov, cnt, v, 64), off, flags);
  }
  static ssize_t w_pwritev2(int fd, const iovec* iov, int cnt, off_t off, int flags) {
    fault& f = active()->pwritev2;
    if (int e = f.next()) return fail<ssize_t>(e);
    if (f.cap.load() < 0) return real().pwritev2(fd, iov, cnt, off, flags);
    iovec v[64];
    return real().pwritev2(fd, v, clamp_iov(f, iov, cnt, v, 64), off, flags);
  }
  static int w_fsync(int fd) {
    fault& f = active()->fsync;
    if (int e = f.next()) return fail<int>(e);
    return real().fsync(fd);
  }
  static int w_fdatasync(int fd) {
    fault& f = active()->fdatasync;
    if (int e = f.next()) return fail<int>(e);
    return real().fdatasync(fd);
  }
  // Like Linux, an interrupted close still releases the fd: the EINTR is reported after the
  // real close, so a caller that retried would close whatever reused the number.
  static int w_close(int fd) {
    fault& f = active()->close;
    int e = f.next();
    if (e == EINTR) {
      real().close(fd);
      return fail<int>(EINTR);
    }
    if (e != 0) return fail<int>(e);
    return real().close(fd);
  }
  static long w_openat2(int dirfd, const char* path, void* how, size_t size) {
    fault& f = active()->openat2;
    if (int e = f.next()) return fail<long>(e);
    return real().openat2(dirfd, path, how, size);
  }
  static int w_accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
    fault& f = active()->accept4;
    if (int e = f.next()) return fail<int>(e);
    return real().accept4(fd, addr, len, flags);
  }
  static ssize_t w_sendfile(int out_fd, int in_fd, off_t* off, size_t len) {
    fault& f = active()->sendfile;
    if (int e = f.next()) return fail<ssize_t>(e);
    return real().sendfile(out_fd, in_fd, off, f.clamp(len));
  }
  static ssize_t w_recv(int fd, void* buf, size_t len, int flags) {
    fault& f = active()->recv;
    if (int e = f.next()) return fail<ssize_t>(e);
    return real().recv(fd, buf, f.clamp(len), flags);
  }
  static ssize_t w_send(int fd, const void* buf, size_t len, int flags) {
    fault& f = active()->send;
    if (int e = f.next()) return fail<ssize_t>(e);
    return real().send(fd, buf, f.clamp(len), flags);
  }
};

}  // namespace unio::test
