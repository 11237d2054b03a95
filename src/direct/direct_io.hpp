// The O_DIRECT layer: unaligned reads and writes on O_DIRECT files, for every backend.
//
// The loop hands it each read/write/readv/writev whose buffer, offset or length is not a multiple
// of 4096 (candidate(): no system call, so ordinary aligned ops pay nothing). take() then learns
// whether the fd is O_DIRECT (fcntl) and what it requires (statx STATX_DIOALIGN); an op that
// already meets the requirement, or whose fd is not O_DIRECT, goes back to the loop unchanged.
// Reads use remembered facts (fd_facts.hpp; the loop reports every fd it closes or hands out,
// fd_opened/fd_closing), so an unaligned read costs no extra system call; facts can be stale when
// an fd number was reused behind the loop's back, so an EINVAL met on remembered facts is retried
// once with fresh ones: for an op passed on to the kernel (marked, and checked by completed()) and
// for a bounced one alike, through direct_env::recheck. Writes always ask afresh: they need the
// file's size, inode and O_APPEND under their lock. The rest the layer carries out itself with
// internal ops that it submits through the loop's own backend (so a bounced read is exactly as
// asynchronous as a plain one):
//  - read, readv: one aligned read of the covering blocks into a bounce buffer, then the
//    requested bytes are copied out (fewer at end of file).
//  - write, writev: read-modify-write. A process-wide table of block locks (keyed by device,
//    inode and byte range) serialises writers whose spans share a block, on any loop and thread;
//    a waiting writer is resumed on its own loop (post), never by blocking a thread. Under the
//    lock: read the partial edge blocks (zeros past end of file), patch the user's bytes in,
//    write the whole span, and when the span ran past the old end of file, ftruncate the file
//    back to max(old size, offset + len). A write that may cross end of file locks up to
//    infinity, so concurrent extenders cannot cut each other's data.
//  - open with O_DIRECT, when loop_options::direct_fallback is set: an EINVAL refusal is retried
//    without O_DIRECT and counted (loop::direct_fallbacks()).
// The user's op is completed exactly once: with the result, an error, or ECANCELED (cancel()
// cancels the internal op in flight; a write that has begun writing is not abandoned half way).
//
// Threading: one direct_io per loop, used on the loop's thread only; only the lock table is
// shared between threads.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <optional>

#include "backend.hpp"
#include "direct/bounce_arena.hpp"
#include "fd_facts.hpp"
#include "unio/direct_io.hpp"

namespace unio::detail {

// What the layer needs from its loop (implemented by the loop).
class direct_env {
 public:
  virtual ~direct_env() = default;
  // Submits an internal op straight to the backend (no alignment check). It completes through
  // its handler like any op (ECANCELED at once while the loop shuts down).
  virtual void submit_inner(op& o) = 0;
  virtual void cancel_inner(op& o) = 0;
  // Queues the completion of a user op (its handler runs in the loop's dispatch phase).
  virtual void complete(op& o, std::int64_t res) noexcept = 0;
  // Runs a user op's handler at once. Only from an internal op's handler (dispatch phase).
  virtual void finish_now(op& o, std::int64_t res) = 0;
  // Runs fn on the loop's thread during a later turn. Thread-safe; wakes the loop.
  virtual void post_internal(std::function<void()> fn) = 0;
  virtual bool in_shutdown() const noexcept = 0;
  // Starts a user op the layer held over again, as if just submitted (it stays counted). Used
  // when remembered facts proved stale.
  virtual void recheck(op& o) = 0;
};

class direct_io {
 public:
  struct request;

  explicit direct_io(direct_env& env) : env_(env) {}
  ~direct_io();
  direct_io(const direct_io&) = delete;
  direct_io& operator=(const direct_io&) = delete;

  // True when the op might need the layer: a positioned read/write/readv/writev that is not
  // 4096-aligned, or an O_DIRECT open when `fallback` is on. No system call.
  static bool candidate(op& o, bool fallback) noexcept {
    const op_args& a = A::args(o);
    if (o.code() == op_code::open) return fallback && (a.flags & static_cast<std::uint32_t>(O_DIRECT)) != 0;
    if (!is_transfer(o.code()) || a.offset == current_position) return false;
    if (traits(o.code()).vectored) return vector_candidate(a);
    return a.len != 0 && ((reinterpret_cast<std::uintptr_t>(a.buf) | a.offset | a.len) & 4095) != 0;
  }
  // Takes a candidate op over (true), or leaves it to the caller to submit as usual (false). Called
  // with the op already counted as submitted by the loop. An op left to the caller on remembered
  // facts is marked, so that completed() can tell whether its EINVAL came from stale facts.
  bool take(op& o);
  // Every completion of a user op passes here first (the loop's complete). True when the layer
  // took the op back instead: it was passed on to the kernel on remembered facts and failed with
  // EINVAL, so it starts again on fresh facts (direct_env::recheck).
  bool completed(op& o, std::int64_t res) noexcept {
    if (A::heap_index(o) != k_passed_cached || !is_transfer(o.code())) return false;
    A::heap_index(o) = 0;
    return res == -EINVAL && !env_.in_shutdown() && stale(o);
  }
  // The fd lifecycle (the loop's fd_opened/fd_closing): the loop closes fd, or an open or accept
  // returned it, so what was known about the number no longer holds.
  void forget(int fd) noexcept { facts_.forget(fd); }
  // True when `o` is a user op the layer holds.
  static bool holds(op& o) noexcept { return A::heap_index(o) == k_held && o.code() != op_code::timeout; }
  void cancel(op& o);
  // Loop shutdown, before the backend's: writers waiting for a block lock complete with
  // ECANCELED; everything else finishes through its internal ops.
  void shutdown();
  std::uint64_t fallbacks() const noexcept { return fallbacks_; }

  // Internal (the lock table and internal ops call these).
  void granted(request& r);  // any thread, with the lock table's mutex held

 private:
  // heap_index_ belongs to the timer heap for timeout ops only; for a file op it marks "held here",
  // or "passed on to the kernel on remembered facts".
  static constexpr std::uint32_t k_held = 0xffffffffu;
  static constexpr std::uint32_t k_passed_cached = 0xfffffffeu;

  bool stale(op& o) noexcept;
  // Leaves `o` to the caller (false); on remembered facts, marked for completed().
  static bool pass_on(op& o, bool cached) noexcept {
    if (cached) A::heap_index(o) = k_passed_cached;
    return false;
  }

  static bool vector_candidate(const op_args& a) noexcept;

  request* new_request(std::size_t bytes, std::size_t align);
  bool give_buffer(request& r, std::size_t bytes, std::size_t align);
  void drop_buffer(request& r) noexcept;
  void free_request(request& r) noexcept;
  void prep_inner(request& r, int i, op_code c, void* buf, std::uint64_t len, std::uint64_t off);
  void on_inner(request& r, int i, std::int64_t res);
  void finish(request& r, std::int64_t res);

  bool take_open(op& o);
  bool take_rw(op& o);
  std::optional<fd_facts::facts> read_facts(int fd, bool& cached);
  void refresh(request& r);
  void start_read(request& r);
  void read_done(request& r, std::int64_t res);
  void start_write(request& r);
  void locked(request& r);
  void read_edges(request& r);
  void edge_done(request& r, int i, std::int64_t res);
  void write_span(request& r);
  void write_done(request& r, std::int64_t res);
  void truncate_done(request& r, std::int64_t res);
  void end_write(request& r, std::int64_t res);
  void open_done(request& r, std::int64_t res);

  direct_env& env_;
  fd_facts facts_;
  bounce_arena arena_;  // before the requests that hold its slots are deleted (~direct_io)
  request* active_ = nullptr;  // intrusive list of requests in flight
  request* idle_ = nullptr;    // free list
  std::size_t idle_count_ = 0;
  std::uint64_t fallbacks_ = 0;
  bool in_inner_ = false;  // inside an internal op's handler: the user's handler may run now
};

// The alignment O_DIRECT on fd needs (see unio::direct_alignment). `sx` receives the statx
// answer for `mask` | STATX_DIOALIGN. Returns 0 or an errno value.
int query_alignment(int fd, unsigned mask, struct statx& sx, dio_alignment& out) noexcept;

}  // namespace unio::detail
