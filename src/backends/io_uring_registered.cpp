#include "io_uring_registered.hpp"

#include <algorithm>

namespace unio::detail::uring {
namespace {

std::error_code errc(int r) noexcept { return r < 0 ? std::error_code(-r, std::generic_category()) : std::error_code(); }

}  // namespace

void registered_tables::apply(io_uring_sqe* sqe, op& o) noexcept {
  const op_args& a = A::args(o);
  if (!fixed_bufs_.empty() && (o.code() == op_code::read || o.code() == op_code::write) &&
      a.offset != current_position) {
    if (int idx = buffer_index(a.buf, sqe->len); idx >= 0) {
      sqe->opcode = o.code() == op_code::read ? IORING_OP_READ_FIXED : IORING_OP_WRITE_FIXED;
      sqe->buf_index = static_cast<std::uint16_t>(idx);
      ++buffer_sqes_;
    }
  }
  // Ops whose SQE takes the file in sqe->fd (close does not: it needs the fd itself).
  if (traits(o.code()).uring_fixed_file) {
    if (std::int32_t idx = file_index(a.fd); idx >= 0) {
      sqe->fd = idx;
      sqe->flags |= IOSQE_FIXED_FILE;
      ++file_sqes_;
    }
  }
}

void registered_tables::undo(io_uring_sqe* sqe, op& o) noexcept {
  if (sqe->opcode == IORING_OP_READ_FIXED) sqe->opcode = IORING_OP_READ;
  if (sqe->opcode == IORING_OP_WRITE_FIXED) sqe->opcode = IORING_OP_WRITE;
  sqe->buf_index = 0;
  if ((sqe->flags & IOSQE_FIXED_FILE) != 0) {
    sqe->flags &= static_cast<std::uint8_t>(~IOSQE_FIXED_FILE);
    sqe->fd = A::args(o).fd;
  }
}

// The registered buffer that holds [buf, buf+len), or -1 (binary search over sorted ranges).
int registered_tables::buffer_index(const void* buf, std::uint64_t len) const noexcept {
  auto b = reinterpret_cast<std::uintptr_t>(buf);
  auto it = std::upper_bound(fixed_bufs_.begin(), fixed_bufs_.end(), b,
                             [](std::uintptr_t x, const fixed_buffer& f) { return x < f.begin; });
  if (it == fixed_bufs_.begin()) return -1;
  --it;
  return b < it->end && len <= it->end - b ? static_cast<int>(it->index) : -1;
}

std::int32_t registered_tables::file_index(int fd) const noexcept {
  if (fd < 0 || static_cast<std::size_t>(fd) >= fixed_file_.size()) return -1;
  return fixed_file_[static_cast<std::size_t>(fd)];
}

std::error_code registered_tables::set_buffers(io_uring& ring, std::span<const iovec> bufs) {
  if (bufs.empty()) {
    clear_buffers();
    return errc(io_uring_unregister_buffers(&ring));
  }
  int r = io_uring_register_buffers(&ring, bufs.data(), static_cast<unsigned>(bufs.size()));
  if (r < 0) return errc(r);
  reg_bufs_.assign(bufs.begin(), bufs.end());
  for (std::size_t i = 0; i < bufs.size(); ++i) {
    auto b = reinterpret_cast<std::uintptr_t>(bufs[i].iov_base);
    fixed_bufs_.push_back({b, b + bufs[i].iov_len, static_cast<unsigned>(i)});
  }
  std::sort(fixed_bufs_.begin(), fixed_bufs_.end(), [](auto& x, auto& y) { return x.begin < y.begin; });
  return {};
}

std::error_code registered_tables::set_files(io_uring& ring, std::span<const int> fds) {
  if (fds.empty()) {
    clear_files();
    return errc(io_uring_unregister_files(&ring));
  }
  int r = io_uring_register_files(&ring, fds.data(), static_cast<unsigned>(fds.size()));
  if (r < 0) return errc(r);
  reg_fds_.assign(fds.begin(), fds.end());
  int top = *std::max_element(fds.begin(), fds.end());
  fixed_file_.assign(static_cast<std::size_t>(top) + 1, -1);
  for (std::size_t i = 0; i < fds.size(); ++i) fixed_file_[static_cast<std::size_t>(fds[i])] = static_cast<std::int32_t>(i);
  return {};
}

void registered_tables::register_again(io_uring& ring) {
  if (!reg_bufs_.empty() && io_uring_register_buffers(&ring, reg_bufs_.data(), static_cast<unsigned>(reg_bufs_.size())) < 0)
    clear_buffers();
  if (!reg_fds_.empty() && io_uring_register_files(&ring, reg_fds_.data(), static_cast<unsigned>(reg_fds_.size())) < 0)
    clear_files();
}

void registered_tables::clear_buffers() noexcept {
  reg_bufs_.clear();
  fixed_bufs_.clear();
}

void registered_tables::clear_files() noexcept {
  reg_fds_.clear();
  fixed_file_.clear();
  closing_.clear();
}

void registered_tables::closing(op& close_op) {
  int fd = A::args(close_op).fd;
  std::int32_t idx = file_index(fd);
  if (idx < 0) return;
  closing_.push_back({&close_op, idx});
  fixed_file_[static_cast<std::size_t>(fd)] = -1;
}

void registered_tables::close_done(io_uring& ring, op& close_op) {
  for (std::size_t i = 0; i < closing_.size(); ++i) {
    if (closing_[i].first != &close_op) continue;
    clear_slot(ring, closing_[i].second);
    closing_.erase(closing_.begin() + static_cast<std::ptrdiff_t>(i));
    return;
  }
}

void registered_tables::forget(io_uring& ring, int fd) {
  std::int32_t idx = file_index(fd);
  if (idx < 0) return;
  clear_slot(ring, idx);
  fixed_file_[static_cast<std::size_t>(fd)] = -1;
}

void registered_tables::clear_slot(io_uring& ring, std::int32_t index) {
  int none = -1;
  io_uring_register_files_update(&ring, static_cast<unsigned>(index), &none, 1);
}

}  // namespace unio::detail::uring
