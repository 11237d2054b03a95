// op: one caller-owned asynchronous operation.
//
// Ownership and lifetime (the contract every backend relies on):
//  - The caller owns the op object and everything its arguments point to (buffers, iovec
//    arrays, path strings, statx outputs, socket addresses, msghdrs and what they point to). All
//    of it must stay alive and in place from the moment the op is submitted until its completion
//    handler has started to run.
//  - An op is "busy" from submission until its handler is invoked. Submitting a busy op, or
//    destroying one, is a programming error (unio aborts with a message rather than corrupt
//    memory).
//  - Every submitted op completes exactly once: its handler runs on the loop's thread with the
//    result, an error, or ECANCELED (cancelled, or the loop was destroyed with it in flight).
//  - Inside its handler the op is no longer busy and may be submitted again (a read loop reuses
//    one op), or destroyed.
//
// The op stores its handler inline when the callable is at most 48 bytes
// (detail::op_handler::inline_size), no more aligned than std::max_align_t and nothrow-movable
// (a lambda capturing a few pointers); other callables allocate once per submission. The hot
// path therefore allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <system_error>
#include <type_traits>
#include <utility>

#include "unio/export.hpp"

namespace unio {

// Every operation unio offers. The numeric order is stable and used for capability tables.
enum class op_code : std::uint8_t {
  nop,
  open,
  close,
  read,
  write,
  readv,
  writev,
  fsync,
  fdatasync,
  fallocate,
  ftruncate,
  stat,
  rename,
  unlink,
  mkdir,
  rmdir,
  accept,
  connect,
  recv,
  send,
  timeout,
  sendfile,
  // More file system operations (libuv's uv_fs_* set).
  symlink,
  link,
  readlink,
  chmod,
  fchmod,
  chown,
  fchown,
  lchown,
  utimens,
  statfs,
  fstatfs,
  copy_file_range,
  splice,
  access,
  mkdtemp,
  mkstemp,
  realpath,
  work,  // a function run on the loop's pool (loop::queue_work; also async_resolve, scandir)
  poll,  // readiness of any fd (loop::async_poll): the revents
  // Datagram and message socket operations (UDP, Unix-domain sockets, fd passing).
  sendto,
  recvfrom,
  sendmsg,
  recvmsg,
  count_  // not an operation: the number of operations
};
inline constexpr std::size_t op_code_count = static_cast<std::size_t>(op_code::count_);

// The operation's name as used in docs and tools ("read", "fdatasync", ...).
UNIO_API const char* to_string(op_code c) noexcept;

// Offset meaning "the file's current position" (read(2)/write(2) instead of pread/pwrite); needed
// for pipes, terminals and sockets. Concurrent ops at the current position have no defined order.
inline constexpr std::uint64_t current_position = ~std::uint64_t{0};

// openat2(2) resolve flags; the values are the kernel's RESOLVE_* values and are honoured by every
// backend (the kernel does the resolution, so they cannot be bypassed by the I/O model).
namespace resolve {
inline constexpr std::uint64_t no_xdev = 0x01;        // RESOLVE_NO_XDEV
inline constexpr std::uint64_t no_magiclinks = 0x02;  // RESOLVE_NO_MAGICLINKS
inline constexpr std::uint64_t no_symlinks = 0x04;    // RESOLVE_NO_SYMLINKS
inline constexpr std::uint64_t beneath = 0x08;        // RESOLVE_BENEATH: EXDEV when escaping dirfd
inline constexpr std::uint64_t in_root = 0x10;        // RESOLVE_IN_ROOT: dirfd acts as "/"
}  // namespace resolve

class op;
class loop;

namespace detail {

struct op_access;

// The arguments of an op; which fields mean what is documented per operation in docs/ops.md.
// The file system ops added after sendfile reuse these fields (no field was added for them):
//   symlink          path = target, dirfd2/path2 = the new link
//   link             dirfd/path = existing name, dirfd2/path2 = new name, flags
//   readlink         dirfd/path, buf/len = the caller's output buffer
//   chmod, fchmod    dirfd/path or fd, mode
//   chown, lchown    dirfd/path, mode = uid, len = gid, flags (AT_SYMLINK_NOFOLLOW for lchown)
//   fchown           fd, mode = uid, len = gid
//   utimens          dirfd/path, buf = const timespec[2] (nullptr: now), flags
//   statfs, fstatfs  path or fd, out = struct statfs*
//   copy_file_range, splice  fd_in/offset = input and its offset, fd/resolve = output and its
//                    offset (current_position: the fd's own position), len, flags
//   access           dirfd/path, mode, flags
//   mkdtemp, mkstemp buf = the caller's template, rewritten in place
//   realpath         path, buf/len = the caller's output buffer
//   poll             fd, mode = the poll(2) events asked for
// So do the socket ops added after work:
//   sendto           fd, buf/len, flags, out = the destination (const sockaddr*), addrlen_in = its length
//   recvfrom         fd, buf/len, flags, out = the sender's address (sockaddr*, or nullptr),
//                    addrlen = its in/out length (nullptr with out)
//   sendmsg, recvmsg fd, buf = the caller's struct msghdr, flags
struct op_args {
  int fd = -1;
  int dirfd = -100;   // AT_FDCWD
  int dirfd2 = -100;  // rename: new directory
  int fd_in = -1;     // sendfile: the file read from (fd is the socket or pipe written to)
  int iovcnt = 0;
  std::uint32_t flags = 0;  // open flags, msg flags, unlink/rename/statx flags, fallocate mode
  std::uint32_t mode = 0;   // open/mkdir mode; statx mask
  std::uint64_t offset = 0;  // read/write offset, fallocate offset, ftruncate length
  std::uint64_t len = 0;     // buffer length, fallocate length
  std::uint64_t resolve = 0;  // open: resolve flags; copy_file_range, splice: the output offset
  std::int64_t timeout_ns = 0;
  void* buf = nullptr;
  const void* iov = nullptr;  // const struct iovec*
  const char* path = nullptr;
  const char* path2 = nullptr;
  void* out = nullptr;  // struct statx* (stat), struct statfs* (statfs), or sockaddr* (the socket ops)
  std::uint32_t* addrlen = nullptr;  // accept, recvfrom: in/out length of *out
  std::uint32_t addrlen_in = 0;  // connect, sendto: length of *out
};

// What an op_code::work op runs: op_args::buf points at one. The thread that performs the op
// (a pool worker; the loop's thread on the sync backend) calls run(self, args); its return value,
// >= 0 or -errno, is the op's result. run must not throw. The item belongs to whoever submitted
// the op and must outlive its completion (op ownership rule above).
struct work_item {
  std::int64_t (*run)(work_item& self, const op_args& a) noexcept = nullptr;
};

// A move-only callable `void(op&)` with inline storage.
class op_handler {
 public:
  static constexpr std::size_t inline_size = 48;

  op_handler() = default;
  op_handler(const op_handler&) = delete;
  op_handler& operator=(const op_handler&) = delete;
  ~op_handler() { reset(); }

  template <class F>
  void set(F&& f) {
    using D = std::decay_t<F>;
    reset();
    if constexpr (sizeof(D) <= inline_size && alignof(D) <= alignof(std::max_align_t) &&
                  std::is_nothrow_move_constructible_v<D>) {
      ::new (static_cast<void*>(storage_)) D(std::forward<F>(f));
      invoke_ = [](void* p, op& o) { (*static_cast<D*>(p))(o); };
      relocate_ = [](void* dst, void* src) noexcept {
        ::new (dst) D(std::move(*static_cast<D*>(src)));
        static_cast<D*>(src)->~D();
      };
      destroy_ = [](void* p) noexcept { static_cast<D*>(p)->~D(); };
    } else {
      D* heap = new D(std::forward<F>(f));
      std::memcpy(storage_, &heap, sizeof heap);
      invoke_ = [](void* p, op& o) { (**static_cast<D**>(p))(o); };
      relocate_ = [](void* dst, void* src) noexcept { std::memcpy(dst, src, sizeof(D*)); };
      destroy_ = [](void* p) noexcept { delete *static_cast<D**>(p); };
    }
  }

  // Moves the callable out of `from` (which becomes empty).
  void take(op_handler& from) noexcept {
    reset();
    if (from.invoke_ == nullptr) return;
    from.relocate_(storage_, from.storage_);
    invoke_ = std::exchange(from.invoke_, nullptr);
    relocate_ = from.relocate_;
    destroy_ = from.destroy_;
  }

  explicit operator bool() const noexcept { return invoke_ != nullptr; }
  void operator()(op& o) { invoke_(storage_, o); }

  void reset() noexcept {
    if (invoke_ != nullptr) destroy_(storage_);
    invoke_ = nullptr;
  }

 private:
  alignas(std::max_align_t) unsigned char storage_[inline_size];
  void (*invoke_)(void*, op&) = nullptr;
  void (*relocate_)(void*, void*) noexcept = nullptr;
  void (*destroy_)(void*) noexcept = nullptr;
};

}  // namespace detail

class UNIO_API op {
 public:
  op() = default;
  op(const op&) = delete;
  op& operator=(const op&) = delete;
  // REQUIRES: !busy(). Destroying a busy op aborts the process with a message.
  ~op();

  // Which operation this op was last submitted as.
  op_code code() const noexcept { return code_; }
  // True from submission until the handler is invoked.
  bool busy() const noexcept { return state_ != 0; }

  // Valid inside the handler and afterwards (until the next submission):
  // the raw result: >= 0 on success (bytes transferred, or a new fd for open/accept/mkstemp), else -errno.
  std::int64_t raw_result() const noexcept { return res_; }
  bool ok() const noexcept { return res_ >= 0; }
  // The error, or an empty error_code on success.
  std::error_code error() const noexcept {
    return res_ >= 0 ? std::error_code{} : std::error_code(static_cast<int>(-res_), std::generic_category());
  }
  // The success value (bytes transferred or fd); 0 when the op failed.
  std::size_t value() const noexcept { return res_ >= 0 ? static_cast<std::size_t>(res_) : 0; }

  // Free for the caller; unio never touches it.
  void* user_data = nullptr;

 private:
  friend struct detail::op_access;
  detail::op_args args_;
  detail::op_handler handler_;
  op* next_ = nullptr;  // intrusive queue link, owned by whoever holds the op
  op* prev_ = nullptr;
  std::int64_t res_ = 0;
  std::uintptr_t backend_word_ = 0;  // private to the backend (or the loop) holding the op
  std::uint32_t heap_index_ = 0;     // timer heap position
  op_code code_ = op_code::nop;
  std::uint8_t state_ = 0;           // 0 idle, else detail::op_state
  std::uint8_t cancel_requested_ = 0;
  std::uint8_t internal_flags_ = 0;
  std::uint8_t link_flags_ = 0;      // linked ops (loop::link_scope, link_timeout): set and read by the loop only
  op* link_next_ = nullptr;          // the next op of its chain
  op* link_prev_ = nullptr;          // the previous op of its chain; a link timeout: the op it guards
  op* link_timer_ = nullptr;         // the link timeout guarding this op
};

}  // namespace unio
