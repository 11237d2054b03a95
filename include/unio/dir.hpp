// dir_reader: a directory read in batches, for directories too large to list in one vector
// (loop::async_scandir lists a whole directory at once).
//
//   auto r = co_await unio::dir_reader::open(lp, AT_FDCWD, "/var/spool/big");
//   if (!r) co_return r.error();
//   for (;;) {
//     auto batch = co_await r->next();          // result<std::vector<dir_entry>>
//     if (!batch || batch->empty()) break;      // an error, or the end
//     for (const unio::dir_entry& e : *batch) use(e.name, e.type, e.ino);
//   }
//   (void)co_await r->close();
//
// Every read is a getdents64(2) on the loop's pool (loop::read_dir): the loop's thread never
// reads the directory, except on the sync backend, which performs every op inline. A batch holds
// what one 32 KiB getdents64 returns (hundreds of entries), never "." or "..". Entries added or
// removed while the directory is being read may or may not be listed (getdents64's rule); no
// entry is listed twice.
//
// Ownership and threading: a dir_reader owns its fd and is used on the loop's thread. Only one
// next() or close() may be in flight at a time, and the reader must outlive it. close() closes the
// fd through the loop (its result is close's); destroying a reader that is still open closes the
// fd at once with close(2) on the destroying thread (a directory fd has no pending writes, so
// this does not wait on the disk). The loop must outlive the reader's ops, not the reader.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "unio/loop.hpp"
#include "unio/result.hpp"
#include "unio/task.hpp"

namespace unio {

class dir_reader {
 public:
  dir_reader() = default;
  dir_reader(dir_reader&& o) noexcept : loop_(o.loop_), fd_(std::exchange(o.fd_, -1)) {}
  dir_reader& operator=(dir_reader&& o) noexcept {
    if (this != &o) {
      reset();
      loop_ = o.loop_;
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~dir_reader() { reset(); }

  // Opens `path` relative to dirfd ("." for dirfd itself) with O_RDONLY|O_DIRECTORY through the
  // loop. Errors: ENOENT, ENOTDIR, EACCES, EBADF, EMFILE, ... in generic_category.
  static task<result<dir_reader>> open(loop& lp, int dirfd, std::string path) {
    auto fd = co_await lp.async_open(dirfd, path.c_str(), {.flags = O_RDONLY | O_DIRECTORY});
    if (!fd) co_return fd.error();
    co_return dir_reader(lp, *fd);
  }

  // The next batch: co_await yields result<std::vector<dir_entry>>, empty at the end (and again
  // on every later call). EBADF after close(). REQUIRES: opened by open().
  auto next() { return loop_->async_read_dir(fd_); }
  // Closes the fd through the loop: co_await yields result<void>. REQUIRES: opened by open().
  auto close() { return loop_->async_close(std::exchange(fd_, -1)); }

  bool is_open() const noexcept { return fd_ >= 0; }
  int fd() const noexcept { return fd_; }

 private:
  dir_reader(loop& lp, int fd) noexcept : loop_(&lp), fd_(fd) {}
  void reset() noexcept {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }

  loop* loop_ = nullptr;
  int fd_ = -1;
};

}  // namespace unio
