// short_reads: the loop's promise that a read of a regular file is short only at its end.
//
// pread(2) on a local file returns fewer bytes than asked only at end of file. Not every path
// keeps that: io_uring's buffered reads now and then complete short in the middle of a file (its
// first, non-blocking attempt stops at a page that is not ready, and the rest is not always
// read), and a FUSE file system may answer any read short. Code that takes a short read for the
// end of the file (a file object's read(), `cat`) would then drop the rest in silence, on one
// backend and not another. So every read and readv at an offset of a regular file that completes
// with 0 < res < its length asks the kernel where the file ends (statx with AT_STATX_DONT_SYNC,
// which does not wait for a FUSE or NFS server) and, when there is more, the loop reads the rest
// with the same op and reports the total. Not continued, and reported as they are: reads at
// current_position (a second round would start wherever the fd's position is then, and the fd's
// other users share it; that is what read(2) does, and read_exact is there for it), reads of
// anything but a regular file (a block device's reads are short only at its end; a stream's are
// short by nature), and writes (a short write means the next one fails: ENOSPC, EFBIG).
//
// The same op goes round again: go_on() points its arguments at what is still to read (for a
// readv, a copy of the rest of the iovec array, kept here) and the loop starts it again; the
// final completion gets the arguments back as the caller set them. If a later round fails, the
// read fails with that error (ECANCELED when it was cancelled meanwhile); the bytes already in
// the buffer are then not reported.
//
// Threading: one per loop, used on the loop's thread only.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "backend.hpp"

namespace unio::detail {

class short_reads {
 public:
  // Called with every completion before it is dispatched. True when `o` must be started again
  // (its arguments now describe the rest); false when `res` (updated to the total when the read
  // went round) is the op's result.
  bool go_on(op& o, std::int64_t& res) noexcept;

  // Ops that are going round now.
  std::size_t in_progress() const noexcept { return rounds_.size(); }

 private:
  struct round {
    op_args caller;             // the arguments as the caller set them
    std::uint64_t want = 0;     // what the caller asked for (at most k_max_rw)
    std::uint64_t done = 0;     // bytes read so far
    std::vector<iovec> rest;    // readv: what is left of the caller's iovec array
  };

  static bool may_have_more(const op_args& a, std::uint64_t done) noexcept;
  void point_at_rest(op& o, round& r) noexcept;
  bool finish(op& o, std::int64_t& res, std::unordered_map<op*, round>::iterator it) noexcept;

  std::unordered_map<op*, round> rounds_;
};

}  // namespace unio::detail
