#include "sys/syscalls.hpp"

#include <linux/openat2.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>

#include "backend.hpp"

namespace unio::detail::sys {
namespace {

long real_openat2(int dirfd, const char* path, void* how, size_t size) {
  return ::syscall(SYS_openat2, dirfd, path, how, size);
}

int real_faccessat2(int dirfd, const char* path, int mode, int flags) {
  return static_cast<int>(::syscall(SYS_faccessat2, dirfd, path, mode, flags));
}

#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif
int real_cachestat(int fd, const cachestat_range* range, cachestat_result* out, unsigned flags) {
  return static_cast<int>(::syscall(SYS_cachestat, fd, range, out, flags));
}

const table k_real = {
    ::pread,     ::pwrite,    ::read,      ::write,     ::preadv2,    ::pwritev2, ::fsync,
    ::fdatasync, ::fallocate, ::ftruncate, ::statx,     ::renameat2,  ::unlinkat, ::mkdirat,
    real_openat2, ::close,    ::accept4,   ::connect,   ::recv,       ::send,     ::sendfile,
    ::symlinkat, ::linkat,    ::readlinkat, ::fchmodat, ::fchmod,     ::fchownat, ::fchown,
    ::utimensat, ::statfs,    ::fstatfs,   ::copy_file_range, ::splice, real_faccessat2, ::faccessat,
    ::mkdtemp,   ::mkostemp,  ::realpath,  ::poll,     ::sendto,   ::recvfrom,   ::sendmsg,  ::recvmsg,
    real_cachestat,
};

std::atomic<const table*> g_table{&k_real};
table g_installed;

// Runs f() until it does not fail with EINTR; returns the result or -errno.
template <class F>
std::int64_t retry(F f) noexcept {
  for (;;) {
    auto r = f();
    if (r >= 0) return static_cast<std::int64_t>(r);
    if (errno != EINTR) return -errno;
  }
}

off_t off_of(const op_args& a) noexcept { return static_cast<off_t>(a.offset); }
bool at_position(const op_args& a) noexcept { return a.offset == current_position; }

std::int64_t do_open(const op_args& a) noexcept {
  ::open_how how{};
  how.flags = static_cast<std::uint64_t>(a.flags) | O_CLOEXEC;
  // The kernel rejects a mode without O_CREAT/O_TMPFILE in openat2 (EINVAL); open(2) ignores it.
  if ((a.flags & O_CREAT) != 0 || (a.flags & O_TMPFILE) == O_TMPFILE) how.mode = a.mode;
  how.resolve = a.resolve;
  for (int tries = 1;; ++tries) {
    std::int64_t r = retry([&] { return current().openat2(a.dirfd, a.path, &how, sizeof how); });
    if (r != -EAGAIN || !resolve_race_retries(a.resolve) || tries == k_resolve_race_tries) return r;
  }
}

std::int64_t do_read(const op_args& a) noexcept {
  const table& t = current();
  if (at_position(a)) return retry([&] { return t.read(a.fd, a.buf, a.len); });
  return retry([&] { return t.pread(a.fd, a.buf, a.len, off_of(a)); });
}

std::int64_t do_write(const op_args& a) noexcept {
  const table& t = current();
  if (at_position(a)) return retry([&] { return t.write(a.fd, a.buf, a.len); });
  return retry([&] { return t.pwrite(a.fd, a.buf, a.len, off_of(a)); });
}

std::int64_t do_vec(const op_args& a, bool write) noexcept {
  const table& t = current();
  auto* iov = static_cast<const iovec*>(a.iov);
  off_t off = at_position(a) ? -1 : off_of(a);  // -1: preadv2/pwritev2 use the file position
  if (write) return retry([&] { return t.pwritev2(a.fd, iov, a.iovcnt, off, 0); });
  return retry([&] { return t.preadv2(a.fd, iov, a.iovcnt, off, 0); });
}

std::int64_t do_close(const op_args& a) noexcept {
  // Linux releases the fd even when close fails with EINTR, so close is never retried (a retry
  // could close an fd another thread has just been given), and EINTR is success: the fd is gone,
  // which is all the caller asked for (libuv decides the same). Other errors (EIO from a
  // deferred write-back, EBADF) are reported.
  int r = current().close(a.fd);
  return r == 0 || errno == EINTR ? 0 : -errno;
}

// ECONNABORTED: a connection in the backlog was aborted before it was taken; it is gone, and the
// accept goes on to the next one (or waits for one: EAGAIN), as EINTR does.
std::int64_t do_accept(const op_args& a) noexcept {
  auto* addr = static_cast<sockaddr*>(a.out);
  for (;;) {
    std::int64_t r = retry([&] { return current().accept4(a.fd, addr, a.addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC); });
    if (r != -ECONNABORTED) return r;
  }
}

// A caller's function (loop::queue_work and the ops built on it). It bypasses the fault table: it
// is the caller's code, not a system call of unio's.
std::int64_t do_work(const op_args& a) noexcept {
  auto* item = static_cast<work_item*>(a.buf);
  return item != nullptr && item->run != nullptr ? item->run(*item, a) : -EINVAL;
}

}  // namespace

const table& real_table() noexcept { return k_real; }
const table& current() noexcept { return *g_table.load(std::memory_order_acquire); }
void set_table(const table& t) noexcept {
  if (&t == &k_real) {
    g_table.store(&k_real, std::memory_order_release);
    return;
  }
  g_installed = t;
  g_table.store(&g_installed, std::memory_order_release);
}

namespace {

// A write to a pipe whose reader has gone raises SIGPIPE, which kills the process by default, and
// so does sendfile(2) to a closed socket. send() has MSG_NOSIGNAL; these calls have nothing alike,
// so SIGPIPE is blocked on this thread for the call, and the one it raised is consumed, leaving
// EPIPE as the op's result.
template <class F>
std::int64_t without_sigpipe(F call) noexcept {
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  std::int64_t r = retry(call);
  if (r == -EPIPE && !sigismember(&old, SIGPIPE)) {
    timespec zero{};
    while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return r;
}

// A stream that does not take RWF_NOWAIT (EOPNOTSUPP: inotify, ttys): plain I/O when the fd is
// non-blocking; else only once poll(2) says it is ready.
std::int64_t stream_io_without_nowait(int fd, const iovec* iov, int cnt, bool write) noexcept {
  const table& t = current();
  int fl = ::fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK) == 0) {
    pollfd p{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
    std::int64_t n = retry([&] { return t.poll(&p, 1, 0); });
    if (n == 0) return -EAGAIN;
  }
  return retry([&] { return write ? t.pwritev2(fd, iov, cnt, -1, 0) : t.preadv2(fd, iov, cnt, -1, 0); });
}

std::int64_t stream_read(int fd, const iovec* iov, int cnt) noexcept {
  std::int64_t r = retry([&] { return current().preadv2(fd, iov, cnt, -1, RWF_NOWAIT); });
  return r == -EOPNOTSUPP ? stream_io_without_nowait(fd, iov, cnt, false) : r;
}

std::int64_t write_without_sigpipe(int fd, const iovec* iov, int cnt) noexcept {
  return without_sigpipe([&] {
    ssize_t r = current().pwritev2(fd, iov, cnt, -1, RWF_NOWAIT);
    if (r >= 0 || errno != EOPNOTSUPP) return r;
    std::int64_t s = stream_io_without_nowait(fd, iov, cnt, true);
    if (s >= 0) return static_cast<ssize_t>(s);
    errno = static_cast<int>(-s);
    return ssize_t{-1};
  });
}

// poll(2) with a zero timeout: the revents, -EAGAIN when none, -EBADF for a bad fd.
std::int64_t do_poll(const op_args& a) noexcept {
  pollfd p{a.fd, static_cast<short>(a.mode), 0};
  std::int64_t n = retry([&] { return current().poll(&p, 1, 0); });
  if (n < 0) return n;
  if ((p.revents & POLLNVAL) != 0) return -EBADF;
  return n == 0 ? -EAGAIN : static_cast<std::uint16_t>(p.revents);
}

// sendfile(2) from an explicit offset: a local copy, so the file's position is never used.
std::int64_t do_sendfile(const op_args& a) noexcept {
  if (a.offset > static_cast<std::uint64_t>(INT64_MAX)) return -EINVAL;
  return without_sigpipe([&] {
    off_t off = off_of(a);
    return current().sendfile(a.fd, a.fd_in, &off, static_cast<size_t>(a.len));
  });
}

// An offset argument of copy_file_range/splice: a local copy (the caller's value is never
// written back), or nullptr for current_position (the fd's own position is used and advanced).
off64_t* offset_arg(std::uint64_t v, off64_t& local) noexcept {
  if (v == current_position) return nullptr;
  local = static_cast<off64_t>(v);
  return &local;
}

std::int64_t do_copy_file_range(const op_args& a) noexcept {
  if (a.offset != current_position && a.offset > static_cast<std::uint64_t>(INT64_MAX)) return -EINVAL;
  if (a.resolve != current_position && a.resolve > static_cast<std::uint64_t>(INT64_MAX)) return -EINVAL;
  return retry([&] {
    off64_t in = 0, out = 0;
    return current().copy_file_range(a.fd_in, offset_arg(a.offset, in), a.fd, offset_arg(a.resolve, out),
                                      static_cast<size_t>(a.len), a.flags);
  });
}

// splice(2) never waits for its pipe here (SPLICE_F_NONBLOCK): the reactor or io_uring waits for
// readiness, and a pool thread only ever runs a splice whose pipe was found ready. A pipe whose
// reader has gone raises SIGPIPE, as write(2) does.
std::int64_t do_splice(const op_args& a) noexcept {
  return without_sigpipe([&] {
    off64_t in = 0, out = 0;
    return current().splice(a.fd_in, offset_arg(a.offset, in), a.fd, offset_arg(a.resolve, out),
                            static_cast<size_t>(a.len), a.flags | SPLICE_F_NONBLOCK);
  });
}

// faccessat2 (Linux 5.8); on an older kernel faccessat, which has no flags argument.
std::int64_t do_access(const op_args& a) noexcept {
  const table& t = current();
  int mode = static_cast<int>(a.mode), flags = static_cast<int>(a.flags);
  std::int64_t r = retry([&] { return t.faccessat2(a.dirfd, a.path, mode, flags); });
  if (r != -ENOSYS || flags != 0) return r;
  return retry([&] { return t.faccessat(a.dirfd, a.path, mode, 0); });
}

std::int64_t do_mkdtemp(const op_args& a) noexcept {
  return current().mkdtemp(static_cast<char*>(a.buf)) != nullptr ? 0 : -errno;
}

// realpath(3) into a PATH_MAX buffer of this thread, then into the caller's buffer with its NUL;
// ERANGE when it does not fit. The result is the length without the NUL.
std::int64_t do_realpath(const op_args& a) noexcept {
  char resolved[PATH_MAX];
  if (current().realpath(a.path, resolved) == nullptr) return -errno;
  std::size_t n = std::strlen(resolved);
  if (n + 1 > a.len) return -ERANGE;
  std::memcpy(a.buf, resolved, n + 1);
  return static_cast<std::int64_t>(n);
}

// The file system ops added after sendfile (op.hpp lists their op_args fields).
std::int64_t perform_fs(const op_args& a, op_code c) noexcept {
  const table& t = current();
  auto uid = static_cast<uid_t>(a.mode);
  auto gid = static_cast<gid_t>(a.len);
  int flags = static_cast<int>(a.flags);
  switch (c) {
    case op_code::symlink: return retry([&] { return t.symlinkat(a.path, a.dirfd2, a.path2); });
    case op_code::link: return retry([&] { return t.linkat(a.dirfd, a.path, a.dirfd2, a.path2, flags); });
    case op_code::readlink:
      return retry([&] { return t.readlinkat(a.dirfd, a.path, static_cast<char*>(a.buf), a.len); });
    case op_code::chmod: return retry([&] { return t.fchmodat(a.dirfd, a.path, a.mode, 0); });
    case op_code::fchmod: return retry([&] { return t.fchmod(a.fd, a.mode); });
    case op_code::chown:
    case op_code::lchown: return retry([&] { return t.fchownat(a.dirfd, a.path, uid, gid, flags); });
    case op_code::fchown: return retry([&] { return t.fchown(a.fd, uid, gid); });
    case op_code::utimens:
      return retry([&] { return t.utimensat(a.dirfd, a.path, static_cast<const timespec*>(a.buf), flags); });
    case op_code::statfs: return retry([&] { return t.statfs(a.path, static_cast<struct statfs*>(a.out)); });
    case op_code::fstatfs: return retry([&] { return t.fstatfs(a.fd, static_cast<struct statfs*>(a.out)); });
    case op_code::copy_file_range: return do_copy_file_range(a);
    case op_code::splice: return do_splice(a);
    case op_code::access: return do_access(a);
    case op_code::mkdtemp: return do_mkdtemp(a);
    case op_code::mkstemp: return retry([&] { return t.mkostemp(static_cast<char*>(a.buf), O_CLOEXEC); });
    case op_code::realpath: return do_realpath(a);
    default: return -EINVAL;
  }
}

// The datagram and message socket ops, as one attempt that never waits (MSG_DONTWAIT): sends
// never raise SIGPIPE (MSG_NOSIGNAL), and fds received with SCM_RIGHTS are close-on-exec
// (MSG_CMSG_CLOEXEC), as accept's are.
std::int64_t perform_message(const op_args& a, op_code c) noexcept {
  const table& t = current();
  const int flags = static_cast<int>(a.flags) | MSG_DONTWAIT;
  const int send_flags = flags | MSG_NOSIGNAL;
  switch (c) {
    case op_code::sendto: {
      auto* to = static_cast<const sockaddr*>(a.out);
      return retry([&] { return t.sendto(a.fd, a.buf, a.len, send_flags, to, a.addrlen_in); });
    }
    case op_code::recvfrom: {
      auto* from = static_cast<sockaddr*>(a.out);
      return retry([&] { return t.recvfrom(a.fd, a.buf, a.len, flags, from, a.addrlen); });
    }
    case op_code::sendmsg:
      return retry([&] { return t.sendmsg(a.fd, static_cast<const msghdr*>(a.buf), send_flags); });
    case op_code::recvmsg:
      return retry([&] { return t.recvmsg(a.fd, static_cast<msghdr*>(a.buf), flags | MSG_CMSG_CLOEXEC); });
    default: return -EINVAL;
  }
}

}  // namespace

std::int64_t attempt_nonblocking(op& o) noexcept {
  const op_args& a = A::args(o);
  switch (o.code()) {
    case op_code::read: {
      iovec v{a.buf, a.len};
      return stream_read(a.fd, &v, 1);
    }
    case op_code::write: {
      iovec v{a.buf, a.len};
      return write_without_sigpipe(a.fd, &v, 1);
    }
    case op_code::readv: return stream_read(a.fd, static_cast<const iovec*>(a.iov), a.iovcnt);
    case op_code::writev: return write_without_sigpipe(a.fd, static_cast<const iovec*>(a.iov), a.iovcnt);
    default: return perform(o);
  }
}

std::int64_t perform(op& o) noexcept {
  const op_args& a = A::args(o);
  const table& t = current();
  switch (o.code()) {
    case op_code::nop: return 0;
    case op_code::open: return do_open(a);
    case op_code::close: return do_close(a);
    case op_code::read: return do_read(a);
    case op_code::write: return do_write(a);
    case op_code::readv: return do_vec(a, false);
    case op_code::writev: return do_vec(a, true);
    case op_code::fsync: return retry([&] { return t.fsync(a.fd); });
    case op_code::fdatasync: return retry([&] { return t.fdatasync(a.fd); });
    case op_code::fallocate:
      return retry([&] { return t.fallocate(a.fd, static_cast<int>(a.flags), off_of(a), static_cast<off_t>(a.len)); });
    case op_code::ftruncate: return retry([&] { return t.ftruncate(a.fd, off_of(a)); });
    case op_code::stat:
      return retry([&] {
        return t.statx(a.dirfd, a.path, static_cast<int>(a.flags), a.mode, static_cast<struct statx*>(a.out));
      });
    case op_code::rename:
      return retry([&] { return t.renameat2(a.dirfd, a.path, a.dirfd2, a.path2, a.flags); });
    case op_code::unlink:
    case op_code::rmdir:
      return retry([&] { return t.unlinkat(a.dirfd, a.path, static_cast<int>(a.flags)); });
    case op_code::mkdir: return retry([&] { return t.mkdirat(a.dirfd, a.path, a.mode); });
    case op_code::accept: return do_accept(a);
    case op_code::connect:
      return retry([&] { return t.connect(a.fd, static_cast<const sockaddr*>(a.out), a.addrlen_in); });
    case op_code::recv:
      return retry([&] { return t.recv(a.fd, a.buf, a.len, static_cast<int>(a.flags) | MSG_DONTWAIT); });
    case op_code::send:
      return retry([&] {
        return t.send(a.fd, a.buf, a.len, static_cast<int>(a.flags) | MSG_DONTWAIT | MSG_NOSIGNAL);
      });
    case op_code::sendfile: return do_sendfile(a);
    case op_code::work: return do_work(a);
    case op_code::poll: return do_poll(a);
    case op_code::sendto:
    case op_code::recvfrom:
    case op_code::sendmsg:
    case op_code::recvmsg: return perform_message(a, o.code());
    case op_code::timeout:
    case op_code::count_: break;
    default: return perform_fs(a, o.code());
  }
  return -EINVAL;
}

std::int64_t try_read_nowait(op& o) noexcept {
  const op_args& a = A::args(o);
  if (a.offset == current_position) return -EAGAIN;
  const table& t = current();
  if (o.code() == op_code::read) {
    iovec v{a.buf, a.len};
    return retry([&] { return t.preadv2(a.fd, &v, 1, off_of(a), RWF_NOWAIT); });
  }
  if (o.code() == op_code::readv) {
    return retry([&] {
      return t.preadv2(a.fd, static_cast<const iovec*>(a.iov), a.iovcnt, off_of(a), RWF_NOWAIT);
    });
  }
  return -EAGAIN;
}

int pages_cached(int fd, std::uint64_t off, std::uint64_t len) noexcept {
  if (len == 0) return 1;
  if (len > UINT64_MAX - off) return -EINVAL;
  static const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t first = off / page, end = (off + len + page - 1) / page;
  cachestat_range range{first * page, (end - first) * page};
  cachestat_result out{};
  if (current().cachestat(fd, &range, &out, 0) < 0) return -errno;
  return out.nr_cache >= end - first ? 1 : 0;
}

}  // namespace unio::detail::sys
