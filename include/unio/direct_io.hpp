// O_DIRECT alignment: what a file opened with O_DIRECT demands of buffers, offsets and lengths.
//
// Direct I/O bypasses the page cache, so the kernel requires the memory address to be a multiple
// of `memory` and the file offset and length to be multiples of `offset` (EINVAL otherwise).
// unio's loop hides that requirement: a read, write, readv or writev with an explicit offset on an
// O_DIRECT file that does not meet it is carried out through aligned bounce buffers (reads) or a
// read-modify-write of the edge blocks (writes), serialised per block across every loop of the
// process (docs/design.md, "O_DIRECT without the pain"). Aligned requests go to the kernel
// unchanged and are the fast path; use direct_alignment() and aligned_buffer (buffer.hpp) to
// stay on it.
#pragma once

#include <cstdint>

#include "unio/export.hpp"
#include "unio/result.hpp"

namespace unio {

struct dio_alignment {
  // Required alignment of the buffer address, in bytes (a power of two). 1 = none.
  std::uint32_t memory = 1;
  // Required alignment of the file offset and of the length, in bytes (a power of two). 1 = none.
  std::uint32_t offset = 1;
  // Both fields are 0 when the kernel reports that direct I/O is not supported for this file
  // (statx gives dio_offset_align 0; the file system then serves O_DIRECT I/O buffered or refuses
  // it).
};

// The alignment direct I/O on `fd` requires, whether or not fd was opened with O_DIRECT:
// statx(STATX_DIOALIGN) where the kernel and file system report it (Linux 6.1+: ext4, xfs, block
// devices), else the logical block size of the file's block device (sysfs
// queue/logical_block_size, BLKSSZGET for a block device itself), else {1, 1} (a file system
// without a block device, such as tmpfs, which accepts any alignment). Thread-safe; performs one
// or two system calls and never waits for I/O. Errors: EBADF (fd is not open) and the other
// errors of statx(2).
UNIO_API result<dio_alignment> direct_alignment(int fd) noexcept;

}  // namespace unio
