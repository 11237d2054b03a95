// io_uring_msg: sendto and recvfrom on io_uring, as IORING_OP_SENDMSG and IORING_OP_RECVMSG.
//
// Those opcodes take a struct msghdr in user memory, not the arguments themselves: the
// kernel reads it (and its iovec) when the op runs, which for a datagram not yet arrived is long
// after submission, and RECVMSG writes the sender's address length and msg_flags back into it
// when it completes. The caller of loop::sendto/recvfrom gave no msghdr, and the op holds only
// what the caller gave (op.hpp), so each sendto and recvfrom between its SQE and its CQE has one
// here: built from the op's arguments when its SQE is prepared, released when its CQE (or its
// completion without one: cancelled in the backlog, shutdown) is handled. recvfrom's address
// length is then copied to the caller's. Released headers are kept for reuse, so a steady stream
// of these ops allocates nothing. Loop thread only.
#pragma once

#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "backend.hpp"

namespace unio::detail::uring {

class msg_headers {
 public:
  msg_headers() { spare_.reserve(k_spare); }
  msg_headers(const msg_headers&) = delete;
  msg_headers& operator=(const msg_headers&) = delete;

  // The ops that need a header: sendmsg and recvmsg bring their own.
  static bool needs_header(op_code c) noexcept { return c == op_code::sendto || c == op_code::recvfrom; }

  // Fills the SQE of a sendto or recvfrom with its header (the same one when it is prepared again).
  void prep(io_uring_sqe* sqe, op& o);
  // The op's CQE: a received sender address length goes to the caller; the header is released.
  void done(op& o, std::int32_t res) noexcept;
  // The op completes without a CQE: its header, if it has one, is released.
  void release(op& o) noexcept;

 private:
  struct header {
    msghdr msg;
    iovec iov;
  };
  using map = std::unordered_map<op*, header>;
  static constexpr std::size_t k_spare = 256;  // released headers kept at most
  header& take(op& o);

  map live_;                           // ops with an SQE prepared and no CQE handled yet
  std::vector<map::node_type> spare_;  // released headers, for reuse
};

}  // namespace unio::detail::uring
