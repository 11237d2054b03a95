// The thin syscall layer shared by the sync and threadpool backends and by delegation.
//
// perform(op) runs one op's blocking system call on the calling thread and returns the result
// as >= 0 or -errno. EINTR is retried (except for close, which Linux always completes: retrying
// it could close an fd another thread just opened). Short reads and writes are returned as they
// are; looping over them is the caller's choice (read_exact/write_all).
//
// The fault seam: every system call goes through the function pointers of `table`. Tests swap
// the table (set_table) to inject EINTR, short transfers, ENOSPC and EIO, then restore it
// (LevelDB's EnvWrapper and fmt's FMT_POSIX_CALL do the same). The table is global; swap it only
// while no loop is running ops.
#pragma once

#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>

#include "unio/op.hpp"

namespace unio::detail::sys {

// cachestat(2) (Linux 6.5; glibc 2.36 has neither a wrapper nor the structs).
struct cachestat_range {
  std::uint64_t off;
  std::uint64_t len;
};
struct cachestat_result {
  std::uint64_t nr_cache;
  std::uint64_t nr_dirty;
  std::uint64_t nr_writeback;
  std::uint64_t nr_evicted;
  std::uint64_t nr_recently_evicted;
};

struct table {
  ssize_t (*pread)(int fd, void* buf, size_t len, off_t off);
  ssize_t (*pwrite)(int fd, const void* buf, size_t len, off_t off);
  ssize_t (*read)(int fd, void* buf, size_t len);
  ssize_t (*write)(int fd, const void* buf, size_t len);
  ssize_t (*preadv2)(int fd, const iovec* iov, int cnt, off_t off, int flags);
  ssize_t (*pwritev2)(int fd, const iovec* iov, int cnt, off_t off, int flags);
  int (*fsync)(int fd);
  int (*fdatasync)(int fd);
  int (*fallocate)(int fd, int mode, off_t off, off_t len);
  int (*ftruncate)(int fd, off_t len);
  int (*statx)(int dirfd, const char* path, int flags, unsigned mask, struct statx* out);
  int (*renameat2)(int olddirfd, const char* oldpath, int newdirfd, const char* newpath, unsigned flags);
  int (*unlinkat)(int dirfd, const char* path, int flags);
  int (*mkdirat)(int dirfd, const char* path, mode_t mode);
  long (*openat2)(int dirfd, const char* path, void* how, size_t size);
  int (*close)(int fd);
  int (*accept4)(int fd, sockaddr* addr, socklen_t* len, int flags);
  int (*connect)(int fd, const sockaddr* addr, socklen_t len);
  ssize_t (*recv)(int fd, void* buf, size_t len, int flags);
  ssize_t (*send)(int fd, const void* buf, size_t len, int flags);
  ssize_t (*sendfile)(int out_fd, int in_fd, off_t* offset, size_t len);
  // More file system operations. faccessat2 is the raw system call (Linux 5.8); faccessat is
  // glibc's, used when faccessat2 answers ENOSYS and no flags were given.
  int (*symlinkat)(const char* target, int newdirfd, const char* linkpath);
  int (*linkat)(int olddirfd, const char* oldpath, int newdirfd, const char* newpath, int flags);
  ssize_t (*readlinkat)(int dirfd, const char* path, char* buf, size_t len);
  int (*fchmodat)(int dirfd, const char* path, mode_t mode, int flags);
  int (*fchmod)(int fd, mode_t mode);
  int (*fchownat)(int dirfd, const char* path, uid_t uid, gid_t gid, int flags);
  int (*fchown)(int fd, uid_t uid, gid_t gid);
  int (*utimensat)(int dirfd, const char* path, const timespec times[2], int flags);
  int (*statfs)(const char* path, struct statfs* out);
  int (*fstatfs)(int fd, struct statfs* out);
  ssize_t (*copy_file_range)(int fd_in, off64_t* off_in, int fd_out, off64_t* off_out, size_t len, unsigned flags);
  ssize_t (*splice)(int fd_in, off64_t* off_in, int fd_out, off64_t* off_out, size_t len, unsigned flags);
  int (*faccessat2)(int dirfd, const char* path, int mode, int flags);
  int (*faccessat)(int dirfd, const char* path, int mode, int flags);
  char* (*mkdtemp)(char* tmpl);
  int (*mkostemp)(char* tmpl, int flags);
  char* (*realpath)(const char* path, char* resolved);
  int (*poll)(pollfd* fds, nfds_t n, int timeout_ms);
  // Datagram and message socket operations.
  ssize_t (*sendto)(int fd, const void* buf, size_t len, int flags, const sockaddr* to, socklen_t tolen);
  ssize_t (*recvfrom)(int fd, void* buf, size_t len, int flags, sockaddr* from, socklen_t* fromlen);
  ssize_t (*sendmsg)(int fd, const msghdr* msg, int flags);
  ssize_t (*recvmsg)(int fd, msghdr* msg, int flags);
  // Page-cache residency, asked by the io_uring backend before a read on a cold fd.
  int (*cachestat)(int fd, const cachestat_range* range, cachestat_result* out, unsigned flags);
};

// openat2 with RESOLVE_IN_ROOT or RESOLVE_BENEATH answers EAGAIN when a rename or a mount raced a
// ".." of the walk (the kernel cannot prove the walk stayed inside); openat2(2) leaves the retry
// to the caller. unio retries such an open up to k_resolve_race_tries times (not with
// RESOLVE_CACHED, whose EAGAIN means "not in the cache"), then reports the EAGAIN.
inline constexpr int k_resolve_race_tries = 16;
inline bool resolve_race_retries(std::uint64_t resolve) noexcept {
  return (resolve & (RESOLVE_IN_ROOT | RESOLVE_BENEATH)) != 0 && (resolve & RESOLVE_CACHED) == 0;
}

// The real system calls.
const table& real_table() noexcept;
// The table in use.
const table& current() noexcept;
// Replaces the table (tests only). Pass real_table() to restore.
void set_table(const table& t) noexcept;

// Runs a file op (or any op that can run as one blocking call) and returns >= 0 or -errno.
// Socket ops are performed as one attempt with MSG_DONTWAIT/non-blocking semantics (EAGAIN is
// returned, not waited for); the reactor waits for readiness.
std::int64_t perform(op& o) noexcept;

// Tries a read/readv without blocking (preadv2 RWF_NOWAIT). Returns the result, or -EAGAIN when
// the kernel would have to wait (the data is not in the page cache), or when the op is not a
// positioned read.
std::int64_t try_read_nowait(op& o) noexcept;

// One non-blocking attempt of an op that waits for readiness (needs_readiness() in backend.hpp):
// -EAGAIN (or -EINPROGRESS for connect) means "wait for readiness and try again". A read or write
// on a stream goes with RWF_NOWAIT; on an fd that does not take it (inotify, ttys: EOPNOTSUPP),
// plain readv/writev when the fd is non-blocking, else poll(2) first and the call only when the
// fd is ready (it could then wait only if another reader took the data in between). poll: the
// revents of poll(2) with a zero timeout, EBADF for a bad fd.
std::int64_t attempt_nonblocking(op& o) noexcept;

// Whether every page of [off, off + len) of `fd` is in the page cache (cachestat(2); it starts no
// readahead): 1 yes, 0 no, -errno when the kernel cannot tell (ENOSYS before Linux 6.5,
// EOPNOTSUPP on some file systems, EBADF).
int pages_cached(int fd, std::uint64_t off, std::uint64_t len) noexcept;

}  // namespace unio::detail::sys
