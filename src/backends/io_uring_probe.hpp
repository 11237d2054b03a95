// io_uring_probe: what this kernel's io_uring can do for unio, asked of a throwaway ring.
//
// Availability: the ring must set up (io_uring_setup can be refused: EPERM from a seccomp filter
// or kernel.io_uring_disabled, ENOSYS on a kernel without io_uring), it must have
// IORING_FEAT_NODROP (5.5) and IORING_FEAT_EXT_ARG (5.11: a wait with a timeout is one
// io_uring_enter and never a hidden timeout SQE), the opcode probe (5.6) must list the opcodes
// that cannot be delegated (NOP, READ, WRITE, POLL_ADD, ASYNC_CANCEL, SPLICE and the socket ops'
// ACCEPT, CONNECT, RECV, SEND, SENDMSG, RECVMSG: the thread pool cannot wait for socket
// readiness), and a NOP must make the round trip.
// Every other opcode the probe lacks is delegated to the loop's thread pool; `native` says which.
//
// Not cached: a seccomp filter installed later (or a forked child) must see its own answer.
#pragma once

#include <liburing.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "backend.hpp"

namespace unio::detail::uring {

struct kernel_report {
  std::string why_not;  // empty: usable
  std::array<bool, op_code_count> native{};
};

// Why io_uring_setup failed with `err`, with the io_uring_disabled sysctl when there is one.
std::string setup_refusal(int err);

// Sets up a small plain ring and checks everything unio needs. `delegate` is
// loop_options::io_uring_delegate: op names (as to_string gives them), comma-separated, or
// "files" for every file op; those are reported as not native, as if the probe lacked them.
// Socket ops, nop and timeouts cannot be delegated and ignore it.
kernel_report inspect_kernel(std::string_view delegate = {});

// IORING_REGISTER_RESTRICTIONS for a ring whose ops are `native`: the opcodes unio submits (the
// op_traits opcodes the probe found, the ring's own POLL_ADD and ASYNC_CANCEL, READV/WRITEV and
// READ/WRITE for stream transfers, which stay on the ring when delegated, and
// READ_FIXED/WRITE_FIXED for registered buffers; a duplicate entry is harmless), the one SQE flag
// it sets (FIXED_FILE), and the register operations of loop::register_buffers and register_files
// (registration must stay possible after enabling: the loop's API allows it at any time). Nothing
// else: no personalities, no eventfd, no probe.
std::vector<io_uring_restriction> restrictions(const std::array<bool, op_code_count>& native);

}  // namespace unio::detail::uring
