// The internal backend interface: what every unio I/O backend must do.
//
// A backend turns submitted ops into completions. The loop (src/loop.cpp) owns exactly one
// backend and drives it from the loop's thread; a backend file (src/backends/<name>.cpp) needs
// nothing from any other backend file. To add a backend: write one file that defines a
// backend subclass and a backend_descriptor, and list the descriptor in src/registry.cpp.
//
// SPEC (every backend, checked by tests/conformance on each one):
//  1. Threading. submit(), cancel(), poll() and shutdown() are called only on the loop's thread.
//     wake() may be called from any thread, at any time, including concurrently with poll().
//     A backend may run its own threads (a pool, io-wq, glibc's AIO threads), but it hands an op
//     back to the loop only from poll() or shutdown(), on the loop's thread, by calling
//     env.complete(op, res). It never invokes a handler itself.
//  2. Ownership. From submit() until env.complete(op) the backend may read the op's arguments
//     and use op.backend_word_ and the intrusive links next_/prev_ as it likes. After
//     env.complete() it must not touch the op again: the handler may free or reuse it.
//  3. Exactly once. Every op passed to submit() is passed to env.complete() exactly once, with
//     res >= 0 on success or -errno. submit() never fails synchronously; a submission it cannot
//     queue right now (a full ring) is queued internally and retried, never dropped.
//  4. Not blocking. submit() and cancel() never wait for I/O. poll(timeout) is the only place
//     the loop's thread may sleep: it blocks until at least one completion has been handed
//     back, the timeout expires, or wake() is called, whichever is first. poll(0) never sleeps.
//     (The sync backend is the deliberate exception: it performs file ops inline in poll(),
//     which is the stall the benchmarks measure.)
//  5. Cancel. cancel(op) is a request. An op the backend has not started yet must complete with
//     -ECANCELED and must never run. An op already running completes with -ECANCELED if the
//     backend can stop it, else with its own result. cancel() of an op the backend no longer
//     holds is a no-op (the loop checks busy() first).
//  6. Shutdown. shutdown() completes every op still held (ECANCELED or its own result), waits
//     for its threads to stop touching ops, and returns with nothing in flight. After it the
//     backend receives no more calls except its destructor.
//  7. Capabilities. The descriptor's native(options) table tells whether the backend performs
//     each op itself (true) or delegates it to env.pool() (false). timeout ops never reach a backend: the loop keeps the
//     timers and passes the next deadline to poll(), as a duration measured at the call; work a
//     backend does before it sleeps comes off the sleep (poll_deadline), or timers fire late.
//     work ops (op_code::work: a function, loop::queue_work) have no kernel form: every backend
//     runs them where it runs blocking calls, on the pool (sync: inline in poll()).
//  8. Registered resources. set_buffers()/set_files() receive input the loop has validated
//     (loop::register_buffers/register_files; an empty span unregisters). A backend that has no
//     use for them keeps the default: accept and ignore. Results of ops must not change.
//  9. Errors at creation. A backend that cannot work here (the kernel refuses a ring, a library
//     is missing) is reported by its descriptor's probe() with a reason, before create().
// 10. The fd lifecycle. The loop calls fd_opened(fd) when an op's result is a new fd (open,
//     accept), before the op's completion is dispatched, and fd_closing(fd) when it starts a
//     close, before submit(). A backend that remembers anything per fd number (seekability, file
//     flags, a registered-file slot) drops it there: the number may name another file next. An
//     fd closed or reused behind the loop's back is not reported; what a backend remembers must
//     then fail safe (be checked again when an op fails), never give a wrong result.
// 11. Streams. A read or write at the current position of an fd that is not a regular file, block
//     device or directory (a pipe, socket, eventfd, signalfd, timerfd, inotify fd, tty, other
//     character device) waits for the fd's readiness on the loop, blocking fd or not, exactly as
//     io_uring does: it never completes with EAGAIN, never ties up a pool thread waiting for data,
//     and never blocks the loop's thread (needs_readiness() below; the reactor tries it with
//     RWF_NOWAIT, or on an fd that does not take RWF_NOWAIT, plain I/O when the fd is
//     non-blocking, else poll(2) and then the call).
// 12. Embedding (loop::backend_fd, backend_timeout). host_fd() is one fd that polls readable
//     whenever poll(0) would hand back an op or a wake() came: the backend's epoll fd, or its
//     ring. prepare_host_wait() is what poll() does before it sleeps, without sleeping: it submits
//     and hands over what is queued, takes back what finished, and arms every notification (the
//     pool's eventfd, an AIO reaper), so that host_fd() becomes readable for the next completion,
//     pool result or wake(), and is not readable for anything it handled. It returns how long the
//     host may then wait (nullopt: no limit; zero: not at all, something finished meanwhile or a
//     notification cannot be armed now). The next poll() ends that armed state.
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "unio/loop.hpp"
#include "op_traits.hpp"
#include "unio/op.hpp"

namespace unio::detail {

class thread_pool;

enum op_state : std::uint8_t {
  op_idle = 0,
  op_submitted = 1,  // accepted by the loop, held by a backend, the pool or the timer heap
  op_completed = 2,  // on the loop's ready queue, handler not yet invoked
};

// Private access to op fields for the loop, backends and the syscall layer.
struct op_access {
  static op_args& args(op& o) noexcept { return o.args_; }
  static op_handler& handler(op& o) noexcept { return o.handler_; }
  static op*& next(op& o) noexcept { return o.next_; }
  static op*& prev(op& o) noexcept { return o.prev_; }
  static std::int64_t& res(op& o) noexcept { return o.res_; }
  static std::uintptr_t& word(op& o) noexcept { return o.backend_word_; }
  static std::uint32_t& heap_index(op& o) noexcept { return o.heap_index_; }
  static std::uint8_t& state(op& o) noexcept { return o.state_; }
  static std::uint8_t& cancel_requested(op& o) noexcept { return o.cancel_requested_; }
  static std::uint8_t& flags(op& o) noexcept { return o.internal_flags_; }
  static std::uint8_t& link_flags(op& o) noexcept { return o.link_flags_; }
  static op*& link_next(op& o) noexcept { return o.link_next_; }
  static op*& link_prev(op& o) noexcept { return o.link_prev_; }
  static op*& link_timer(op& o) noexcept { return o.link_timer_; }
  static void set_code(op& o, op_code c) noexcept { o.code_ = c; }
};
using A = op_access;

// The bytes a read, write, readv or writev asks for (0 for any other op).
inline std::uint64_t requested_bytes(op& o) noexcept {
  const op_args& a = A::args(o);
  if (!is_transfer(o.code())) return 0;
  if (!traits(o.code()).vectored) return a.len;
  std::uint64_t n = 0;
  const auto* iov = static_cast<const iovec*>(a.iov);
  for (int i = 0; i < a.iovcnt; ++i) n += iov[i].iov_len;
  return n;
}

// Sets one of the op's private flag bits (op_traits.hpp names each bit's owner); in debug builds
// checks that the op's row allows the bit.
inline void set_flag(op& o, std::uint8_t bit) noexcept {
  assert((traits(o.code()).flag_bits & bit) == bit && "an op flag bit its op_traits row does not allow");
  A::flags(o) |= bit;
}
inline void clear_flag(op& o, std::uint8_t bit) noexcept { A::flags(o) &= static_cast<std::uint8_t>(~bit); }
inline bool has_flag(op& o, std::uint8_t bit) noexcept { return (A::flags(o) & bit) != 0; }

// A poll() timeout taken at poll()'s entry as a deadline, so that the work a backend does before
// it sleeps (handing ops over, inline reads, spinning) comes off the sleep instead of making the
// loop's timers late by that much.
class poll_deadline {
 public:
  explicit poll_deadline(std::optional<std::chrono::nanoseconds> timeout) noexcept
      : has_(timeout.has_value()),
        at_(has_ ? std::chrono::steady_clock::now() + *timeout : std::chrono::steady_clock::time_point{}) {}
  // What is left of the timeout now: nullopt for none, never negative.
  std::optional<std::chrono::nanoseconds> left() const noexcept {
    if (!has_) return std::nullopt;
    auto d = std::chrono::duration_cast<std::chrono::nanoseconds>(at_ - std::chrono::steady_clock::now());
    return std::max(d, std::chrono::nanoseconds(0));
  }
  // `timeout` as the caller may have shortened it (to 0: do not sleep), with the time spent since
  // poll() began taken off.
  std::optional<std::chrono::nanoseconds> rest(std::optional<std::chrono::nanoseconds> timeout) const noexcept {
    if (!timeout) return left();
    if (timeout->count() <= 0) return timeout;
    auto l = left();
    return l && *l < *timeout ? *l : *timeout;
  }

 private:
  bool has_;
  std::chrono::steady_clock::time_point at_;
};

// An intrusive FIFO of ops (singly linked through next_). Not thread-safe.
class op_queue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }
  op* front() const noexcept { return head_; }
  void push(op& o) noexcept {
    A::next(o) = nullptr;
    if (tail_ != nullptr) A::next(*tail_) = &o;
    else head_ = &o;
    tail_ = &o;
    ++size_;
  }
  op* pop() noexcept {
    op* o = head_;
    if (o == nullptr) return nullptr;
    head_ = A::next(*o);
    if (head_ == nullptr) tail_ = nullptr;
    A::next(*o) = nullptr;
    --size_;
    return o;
  }
  // Appends all of `other` (which becomes empty).
  void splice(op_queue& other) noexcept {
    if (other.empty()) return;
    if (tail_ != nullptr) A::next(*tail_) = other.head_;
    else head_ = other.head_;
    tail_ = other.tail_;
    size_ += other.size_;
    other.head_ = other.tail_ = nullptr;
    other.size_ = 0;
  }
  template <class F>
  void for_each(F f) const {
    for (op* p = head_; p != nullptr; p = A::next(*p)) f(*p);
  }
  // Moves to the back of `out`, in order, the ops among the first `window` that satisfy
  // pred(op&), at most `most` of them; the others keep their order here. Returns how many moved.
  template <class Pred>
  std::size_t extract_if(op_queue& out, std::size_t most, std::size_t window, Pred pred) {
    std::size_t moved = 0;
    op* prev = nullptr;
    for (op* p = head_; p != nullptr && moved < most && window > 0; --window) {
      op* next = A::next(*p);
      if (!pred(*p)) {
        prev = p;
        p = next;
        continue;
      }
      if (prev != nullptr) A::next(*prev) = next;
      else head_ = next;
      if (tail_ == p) tail_ = prev;
      --size_;
      out.push(*p);
      ++moved;
      p = next;
    }
    return moved;
  }
  // Removes `o` if present (linear; used by cancel, which is rare). Returns whether it was.
  bool remove(op& o) noexcept {
    op* prev = nullptr;
    for (op* p = head_; p != nullptr; prev = p, p = A::next(*p)) {
      if (p != &o) continue;
      if (prev != nullptr) A::next(*prev) = A::next(*p);
      else head_ = A::next(*p);
      if (tail_ == p) tail_ = prev;
      A::next(*p) = nullptr;
      --size_;
      return true;
    }
    return false;
  }

 private:
  op* head_ = nullptr;
  op* tail_ = nullptr;
  std::size_t size_ = 0;
};

// What the loop gives its backend.
class backend_env {
 public:
  virtual ~backend_env() = default;
  // Hands a finished op back to the loop (loop thread only). res: >= 0 or -errno.
  virtual void complete(op& o, std::int64_t res) noexcept = 0;
  // The loop's thread pool (created on first use) for delegated ops.
  virtual thread_pool& pool() = 0;
  virtual const loop_options& options() const noexcept = 0;
  // Whether fd is a stream (spec item 11; fd_kinds.hpp), learnt once per fd by the loop.
  virtual bool is_stream(int fd) noexcept = 0;
};

// Spec item 11: ops that wait for readiness on the loop (the reactor, or io_uring itself) rather
// than block a thread: socket ops (accept, connect, recv, send, sendto, recvfrom, sendmsg,
// recvmsg, poll, sendfile: its out_fd, splice: its pipe side), and reads and writes at
// current_position on a stream.
inline bool needs_readiness(op& o, backend_env& env) noexcept {
  if (is_socket(o.code())) return true;
  return is_transfer(o.code()) && A::args(o).offset == current_position && env.is_stream(A::args(o).fd);
}

class backend {
 public:
  virtual ~backend() = default;
  virtual std::string_view name() const noexcept = 0;
  virtual void submit(op& o) = 0;
  virtual void cancel(op& o) = 0;
  // timeout: nullopt = no limit; zero = do not sleep.
  virtual void poll(std::optional<std::chrono::nanoseconds> timeout) = 0;
  virtual void wake() noexcept = 0;
  virtual void shutdown() = 0;
  // Spec item 12. Loop thread only.
  virtual int host_fd() const noexcept = 0;
  virtual std::optional<std::chrono::nanoseconds> prepare_host_wait() = 0;
  // Spec item 8. Loop thread only.
  virtual std::error_code set_buffers(std::span<const iovec>) { return {}; }
  virtual std::error_code set_files(std::span<const int>) { return {}; }
  // Spec item 10. Loop thread only.
  virtual void fd_opened(int /*fd*/) noexcept {}
  virtual void fd_closing(int /*fd*/) noexcept {}
  // Test hook (tests/unit only): a backend's internal counters and test actions by name; 0 for
  // names it does not know.
  virtual std::int64_t test_hook(std::string_view, std::int64_t) { return 0; }
};

// The backend a loop owns, for tests of backend internals.
struct loop_access {
  static backend& backend_of(loop& lp) noexcept;
};

// How the registry knows a backend.
struct backend_descriptor {
  const char* name;
  // Empty when the backend works here; else the reason it does not.
  std::string (*probe)();
  // Per op_code: native (true) or delegated to the pool (false), for a loop with these options.
  std::array<bool, op_code_count> (*native)(const loop_options&);
  std::unique_ptr<backend> (*create)(backend_env& env);
};

}  // namespace unio::detail
