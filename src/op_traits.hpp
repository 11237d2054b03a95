// op_traits: one constexpr row per op_code, read by every layer that classifies an op.
//
// The loop (chains), the O_DIRECT layer (which ops it may take over), the syscall layer (which
// ops wait for readiness) and the backends (io_uring's opcode, what native AIO can submit, what
// may be redone on the pool) all ask this table instead of keeping their own switch. Adding an
// operation means its op_code, one row here, one case in sys::perform, one prep function and the
// two public forms in the loop; an op with no io_uring opcode in its row runs on every backend's
// pool with no backend touched. Where the kernel has an opcode: the opcode in the row and its SQE
// in the io_uring backend's prep(). Tests: its name in tests/unit/loop_basics_test.cpp, and its
// conformance test.
//
// The op's private flag byte (op::internal_flags_, A::flags) is shared by the backends: each bit
// has one owner, named below, and a row lists the bits that may be set on its ops (flag_bits),
// so two owners can never meet on one op. set_flag() (backend.hpp) checks it in debug builds.
#pragma once

#include <cstddef>
#include <cstdint>

#include "unio/op.hpp"

namespace unio::detail {

// The bits of A::flags, each with its one owner.
namespace op_flag {
inline constexpr std::uint8_t uring_poll_then_write = 0x01;  // io_uring: a stream write waits for POLLOUT on the ring
inline constexpr std::uint8_t uring_splice_wait = 0x02;      // io_uring: a splice waits for its pipe on the ring
inline constexpr std::uint8_t uring_learn = 0x04;            // io_uring: an inline buffered read whose outcome teaches the cold-read router
inline constexpr std::uint8_t aio_cancel_asked = 0x10;       // linux_aio: cancel() was asked while in the kernel
inline constexpr std::uint8_t aio_nowait = 0x20;             // linux_aio: a read sent with RWF_NOWAIT on remembered facts
inline constexpr std::uint8_t aio_in_flight = 0x40;          // linux_aio: in the kernel; posix_aio: in glibc
inline constexpr std::uint8_t reactor_cancel_asked = 0x80;   // reactor: cancel() asked while a sendfile or splice was delegated
}  // namespace op_flag

enum class op_kind : std::uint8_t {
  control,  // nop: no system call
  file,     // an fd-based file operation (blocking call; the pool can run it)
  path,     // a path-based file system operation (blocking call; the pool can run it)
  socket,   // waits for readiness (the pool cannot run it: a worker would block)
  timer,    // kept by the loop's timer heap; never reaches a backend
  work,     // a caller's function (detail::work_item): no io_uring opcode, no AIO, the pool runs it
};

// What a transfer op moves (read, write, readv, writev); none for every other op.
enum class transfer : std::uint8_t { none, in, out };

struct op_traits {
  op_code code;
  const char* name;           // as in docs and tools (to_string)
  op_kind kind;
  transfer dir;               // read/readv: in; write/writev: out; positioned at an offset or current_position
  bool vectored;              // its buffers are an iovec array (readv, writev)
  int uring_opcode;           // IORING_OP_* (kernel ABI numbers), -1 when io_uring has none
  bool uring_pool_retry;      // EOPNOTSUPP from io_uring: nothing was done, the pool may redo it
  bool uring_fixed_file;      // its SQE takes the file in sqe->fd, so a registered fd may stand there
  bool kernel_aio;            // linux_aio can submit it (IOCB_CMD_*)
  bool posix_aio;             // glibc's POSIX AIO can run it (aio_read/aio_write/aio_fsync)
  std::uint8_t flag_bits;     // the A::flags bits that may be set on it (op_flag)
};

// The most a single read/write/send/recv transfers on Linux (MAX_RW_COUNT); longer requests are
// short transfers, exactly as with the system calls. io_uring's 32-bit SQE length fits it, and a
// chain's "whole length transferred" rule compares against it, as io_uring does.
inline constexpr std::uint64_t k_max_rw = 0x7ffff000;

inline constexpr std::uint8_t k_aio_bits = op_flag::aio_cancel_asked | op_flag::aio_nowait | op_flag::aio_in_flight;
inline constexpr std::uint8_t k_uring_read_bits = op_flag::uring_learn;
inline constexpr std::uint8_t k_sync_bits = op_flag::aio_cancel_asked | op_flag::aio_in_flight;

// IORING_OP_* values used below (the kernel's enum io_uring_op; io_uring.cpp checks each against
// liburing's names): NOP 0, READV 1, WRITEV 2, FSYNC 3, POLL_ADD 6, SENDMSG 9, RECVMSG 10,
// ACCEPT 13, CONNECT 16, FALLOCATE 17, CLOSE 19, STATX 21, READ 22, WRITE 23, SEND 26, RECV 27,
// OPENAT2 28, SPLICE 30, RENAMEAT 35, UNLINKAT 36, MKDIRAT 37, SYMLINKAT 38, LINKAT 39, FTRUNCATE 55
// (Linux 6.9; liburing 2.3 has no name for it).
inline constexpr op_traits k_op_traits[] = {
    // code               name         kind              dir            vec    uring pool   fixed  kaio   paio   flag bits
    {op_code::nop,         "nop",      op_kind::control, transfer::none, false, 0,   false, false, false, false, 0},
    {op_code::open,        "open",     op_kind::path,    transfer::none, false, 28,  true,  false, false, false, 0},
    {op_code::close,       "close",    op_kind::file,    transfer::none, false, 19,  true,  false, false, false, 0},
    {op_code::read,        "read",     op_kind::file,    transfer::in,   false, 22,  true,  true,  true,  true,
     k_aio_bits | k_uring_read_bits},
    {op_code::write,       "write",    op_kind::file,    transfer::out,  false, 23,  true,  true,  true,  true,
     k_aio_bits | op_flag::uring_poll_then_write},
    {op_code::readv,       "readv",    op_kind::file,    transfer::in,   true,  1,   true,  true,  true,  false,
     k_aio_bits | k_uring_read_bits},
    {op_code::writev,      "writev",   op_kind::file,    transfer::out,  true,  2,   true,  true,  true,  false,
     k_aio_bits | op_flag::uring_poll_then_write},
    {op_code::fsync,       "fsync",    op_kind::file,    transfer::none, false, 3,   true,  true,  true,  true,  k_sync_bits},
    {op_code::fdatasync,   "fdatasync",op_kind::file,    transfer::none, false, 3,   true,  true,  true,  true,  k_sync_bits},
    {op_code::fallocate,   "fallocate",op_kind::file,    transfer::none, false, 17,  false, true,  false, false, 0},
    {op_code::ftruncate,   "ftruncate",op_kind::file,    transfer::none, false, 55,  true,  true,  false, false, 0},
    {op_code::stat,        "stat",     op_kind::path,    transfer::none, false, 21,  true,  false, false, false, 0},
    {op_code::rename,      "rename",   op_kind::path,    transfer::none, false, 35,  true,  false, false, false, 0},
    {op_code::unlink,      "unlink",   op_kind::path,    transfer::none, false, 36,  true,  false, false, false, 0},
    {op_code::mkdir,       "mkdir",    op_kind::path,    transfer::none, false, 37,  true,  false, false, false, 0},
    {op_code::rmdir,       "rmdir",    op_kind::path,    transfer::none, false, 36,  true,  false, false, false, 0},
    {op_code::accept,      "accept",   op_kind::socket,  transfer::none, false, 13,  false, true,  false, false, 0},
    {op_code::connect,     "connect",  op_kind::socket,  transfer::none, false, 16,  false, true,  false, false, 0},
    {op_code::recv,        "recv",     op_kind::socket,  transfer::none, false, 27,  false, true,  false, false, 0},
    {op_code::send,        "send",     op_kind::socket,  transfer::none, false, 26,  false, true,  false, false, 0},
    {op_code::timeout,     "timeout",  op_kind::timer,   transfer::none, false, -1,  false, false, false, false, 0},
    {op_code::sendfile,    "sendfile", op_kind::socket,  transfer::none, false, 30,  false, false, false, false,
     op_flag::reactor_cancel_asked},
    // More file system operations. splice is a readiness op like sendfile: its pipe side is
    // waited for on epoll (or by io_uring itself), never by a pool thread.
    {op_code::symlink,     "symlink",  op_kind::path,    transfer::none, false, 38,  true,  false, false, false, 0},
    {op_code::link,        "link",     op_kind::path,    transfer::none, false, 39,  true,  false, false, false, 0},
    {op_code::readlink,    "readlink", op_kind::path,    transfer::none, false, -1,  false, false, false, false, 0},
    {op_code::chmod,       "chmod",    op_kind::path,    transfer::none, false, -1,  false, false, false, false, 0},
    {op_code::fchmod,      "fchmod",   op_kind::file,    transfer::none, false, -1,  false, false, false, false, 0},
    {op_code::chown,       "chown",    op_kind::path,    transfer::none, false, -1,  false, false, false, false, 0},
    {op_code::fchown,      "fchown",   op_kind::file,    transfer::none, false, -1,  false, false, false, false, 0},
    {op_code::lchown,      "lchown",   op_kind::path,    transfer::none, false, -1,  false, false, false, false, 0},
    {op_code::utimens,     "utimens",  op_kind::path,    transfer::none, false, -1,  false, false, false, false, 0},
    {op_code::statfs,      "statfs",   op_kind::path,    transfer::none, false, -1,  false, false, false, false, 0},
    {op_code::fstatfs,     "fstatfs",  op_kind::file,    transfer::none, false, -1,  false, false, false, false, 0},
    {op_code::copy_file_range, "copy_file_range", op_kind::file, transfer::none, false, -1, false, false, false, false, 0},
    {op_code::splice,      "splice",   op_kind::socket,  transfer::none, false, 30,  false, false, false, false,
     op_flag::reactor_cancel_asked | op_flag::uring_splice_wait},
    {op_code::access,      "access",   op_kind::path,    transfer::none, false, -1,  false, false, false, false, 0},
    {op_code::mkdtemp,     "mkdtemp",  op_kind::path,    transfer::none, false, -1,  false, false, false, false, 0},
    {op_code::mkstemp,     "mkstemp",  op_kind::path,    transfer::none, false, -1,  false, false, false, false, 0},
    {op_code::realpath,    "realpath", op_kind::path,    transfer::none, false, -1,  false, false, false, false, 0},
    {op_code::work,        "work",     op_kind::work,    transfer::none, false, -1,  false, false, false, false, 0},
    {op_code::poll,        "poll",     op_kind::socket,  transfer::none, false, 6,   false, true,  false, false, 0},
    // Datagram and message socket operations. io_uring runs sendto and recvfrom as SENDMSG and
    // RECVMSG too, with a msghdr of its own (backends/io_uring_msg.hpp).
    {op_code::sendto,      "sendto",   op_kind::socket,  transfer::none, false, 9,   false, true,  false, false, 0},
    {op_code::recvfrom,    "recvfrom", op_kind::socket,  transfer::none, false, 10,  false, true,  false, false, 0},
    {op_code::sendmsg,     "sendmsg",  op_kind::socket,  transfer::none, false, 9,   false, true,  false, false, 0},
    {op_code::recvmsg,     "recvmsg",  op_kind::socket,  transfer::none, false, 10,  false, true,  false, false, 0},
};

constexpr bool rows_in_order() noexcept {
  std::size_t i = 0;
  for (const op_traits& t : k_op_traits)
    if (static_cast<std::size_t>(t.code) != i++) return false;
  return i == op_code_count;
}
static_assert(rows_in_order(), "k_op_traits needs one row per op_code, in op_code order");

constexpr const op_traits& traits(op_code c) noexcept { return k_op_traits[static_cast<std::size_t>(c)]; }

// read, write, readv, writev: the ops with a buffer, an offset and a byte count.
constexpr bool is_transfer(op_code c) noexcept { return traits(c).dir != transfer::none; }
constexpr bool is_read(op_code c) noexcept { return traits(c).dir == transfer::in; }
constexpr bool is_write(op_code c) noexcept { return traits(c).dir == transfer::out; }
constexpr bool is_socket(op_code c) noexcept { return traits(c).kind == op_kind::socket; }
// The ops whose result is a new fd (the loop's fd lifecycle reports it to the backend).
constexpr bool gives_fd(op_code c) noexcept {
  return c == op_code::open || c == op_code::accept || c == op_code::mkstemp;
}
// The readiness ops whose file side may block (sendfile, splice): they wait for their socket or
// pipe on the loop, then run on the pool where a backend has one.
constexpr bool waits_then_delegates(op_code c) noexcept { return c == op_code::sendfile || c == op_code::splice; }

// What a readiness-based backend (the reactor: linux_aio, posix_aio) does without the pool: the
// socket ops on epoll, timers on the loop's heap, nop. sendfile and splice are not among them:
// their file side can wait for the disk, so they are delegated.
constexpr bool reactor_native(op_code c) noexcept {
  op_kind k = traits(c).kind;
  return (k == op_kind::socket && !waits_then_delegates(c)) || k == op_kind::timer || k == op_kind::control;
}

}  // namespace unio::detail
