// io_uring_registered: the registered buffers and files of one ring (loop::register_buffers,
// loop::register_files), and what they turn an SQE into.
//
// A READ/WRITE whose buffer lies inside a registered buffer becomes READ_FIXED/WRITE_FIXED with
// the buffer's index; an op on a registered fd names the file by its table index
// (IOSQE_FIXED_FILE). What was registered is kept, to register it again on a recreated ring.
// Closing a registered fd through the loop empties its table slot once the close has completed
// (every SQE submitted before it has been consumed by then), which drops the table's reference so
// the file is really closed. Loop thread only.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

#include "backend.hpp"

namespace unio::detail::uring {

class registered_tables {
 public:
  // Turns a prepared SQE of `o` into its fixed form where a registration covers it.
  void apply(io_uring_sqe* sqe, op& o) noexcept;
  // Turns an SQE that `apply` changed back into its plain form (before unregistering, for SQEs
  // the kernel has not consumed yet).
  static void undo(io_uring_sqe* sqe, op& o) noexcept;

  // Registers (or, with an empty span, unregisters) on `ring`; the kernel's error as an errno.
  std::error_code set_buffers(io_uring& ring, std::span<const iovec> bufs);
  std::error_code set_files(io_uring& ring, std::span<const int> fds);
  // Registers everything again on a new ring (after a thread change); what the kernel refuses
  // now is forgotten, and ops then run in their plain form.
  void register_again(io_uring& ring);

  // A close op of a registered fd starts: later ops on that number use the plain fd.
  void closing(op& close_op);
  // That close completed: the kernel's table slot is emptied.
  void close_done(io_uring& ring, op& close_op);
  // An open or accept returned `fd`, so a registered file that had the number was closed behind
  // the loop's back: forget the mapping and drop the kernel's reference.
  void forget(io_uring& ring, int fd);

  bool empty() const noexcept { return fixed_bufs_.empty() && fixed_file_.empty(); }
  std::uint64_t buffer_sqes() const noexcept { return buffer_sqes_; }
  std::uint64_t file_sqes() const noexcept { return file_sqes_; }

 private:
  struct fixed_buffer {
    std::uintptr_t begin, end;
    unsigned index;
  };
  int buffer_index(const void* buf, std::uint64_t len) const noexcept;
  std::int32_t file_index(int fd) const noexcept;
  void clear_buffers() noexcept;
  void clear_files() noexcept;
  static void clear_slot(io_uring& ring, std::int32_t index);

  std::vector<fixed_buffer> fixed_bufs_;  // sorted by address
  std::vector<iovec> reg_bufs_;
  std::vector<std::int32_t> fixed_file_;  // per fd: its table index, -1 none
  std::vector<int> reg_fds_;
  std::vector<std::pair<op*, std::int32_t>> closing_;  // close ops of registered fds, with the slot
  std::uint64_t buffer_sqes_ = 0;  // SQEs made READ_FIXED/WRITE_FIXED (test_hook)
  std::uint64_t file_sqes_ = 0;    // SQEs with IOSQE_FIXED_FILE (test_hook)
};

}  // namespace unio::detail::uring
