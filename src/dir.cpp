// Directory listings on the pool: getdents64(2) into a buffer on the performing thread's stack,
// parsed into dir_entry values there, so the loop's thread never reads a directory (except on the
// sync backend, which performs every op inline). glibc's readdir would do the same with a heap
// buffer per DIR; the raw system call keeps one batch per op and needs no DIR object across ops.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "unio/loop.hpp"
#include "work_items.hpp"

namespace unio::detail {
namespace {

// One getdents64 call's worth. 32 KiB holds about 800 entries with 20-byte names and is a safe
// amount of stack for a pool worker (and for the loop's thread on sync).
constexpr std::size_t k_batch_bytes = 32 * 1024;

// struct linux_dirent64: d_ino (u64), d_off (s64), d_reclen (u16), d_type (u8), d_name.
constexpr std::size_t k_reclen_at = 16;
constexpr std::size_t k_type_at = 18;
constexpr std::size_t k_name_at = 19;

bool is_dot_or_dotdot(const char* n) noexcept {
  return n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0));
}

// Appends the entries of one getdents64 buffer, without "." and "..".
void parse(const char* buf, std::size_t n, std::vector<dir_entry>& out) {
  for (std::size_t pos = 0; pos < n;) {
    std::uint64_t ino = 0;
    unsigned short reclen = 0;
    std::memcpy(&ino, buf + pos, sizeof ino);
    std::memcpy(&reclen, buf + pos + k_reclen_at, sizeof reclen);
    const char* name = buf + pos + k_name_at;
    if (!is_dot_or_dotdot(name))
      out.push_back(dir_entry{name, static_cast<unsigned char>(buf[pos + k_type_at]), ino});
    if (reclen == 0) break;  // never from a sane kernel; do not loop forever
    pos += reclen;
  }
}

long getdents(int fd, char* buf, std::size_t len) noexcept {
  for (;;) {
    long n = ::syscall(SYS_getdents64, fd, buf, len);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

// Reads until a batch has an entry other than "." and "..", or the end. Returns how many entries
// were appended (0 at the end) or -errno.
std::int64_t read_batch(int fd, std::vector<dir_entry>& out) {
  alignas(8) char buf[k_batch_bytes];
  for (;;) {
    long n = getdents(fd, buf, sizeof buf);
    if (n <= 0) return n;
    std::size_t before = out.size();
    parse(buf, static_cast<std::size_t>(n), out);
    if (out.size() > before) return static_cast<std::int64_t>(out.size() - before);
  }
}

std::int64_t run_read_dir(work_item&, const op_args& a) noexcept {
  auto& out = *static_cast<std::vector<dir_entry>*>(a.out);
  out.clear();
  try {
    return read_batch(a.fd, out);
  } catch (...) {  // std::bad_alloc from a name or the vector
    out.clear();
    return -ENOMEM;
  }
}

std::int64_t read_all(int fd, std::vector<dir_entry>& out) noexcept {
  try {
    for (;;) {
      std::int64_t r = read_batch(fd, out);
      if (r <= 0) return r;
    }
  } catch (...) {
    return -ENOMEM;
  }
}

std::int64_t run_scandir(work_item&, const op_args& a) noexcept {
  auto& out = *static_cast<std::vector<dir_entry>*>(a.out);
  out.clear();
  int fd = ::openat(a.dirfd, a.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  std::int64_t r = read_all(fd, out);
  ::close(fd);
  if (r < 0) {
    out.clear();
    return r;
  }
  return static_cast<std::int64_t>(out.size());
}

}  // namespace

work_item& scandir_item() noexcept {
  static work_item item{&run_scandir};
  return item;
}

work_item& read_dir_item() noexcept {
  static work_item item{&run_read_dir};
  return item;
}

}  // namespace unio::detail
