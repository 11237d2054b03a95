// task<T>: a small lazily-started coroutine type for writing unio code with co_await.
//
// A task does nothing until it is awaited (by another task), spawned on a loop, or driven by
// sync_wait(). Awaiting a task runs it to completion and yields its value; an exception thrown
// inside it is rethrown at the co_await. A task is move-only and owns its coroutine frame; it is
// awaited once, as an rvalue (`co_await f()` or `co_await std::move(t)`: awaiting a named task
// without std::move does not compile). when.hpp runs several tasks at once.
//
// GCC 12: a temporary lambda (or brace-built aggregate) that owns something, written inside a
// co_await expression (`co_await lp.async_work([s = std::move(text)] { ... })`), is destroyed
// twice by GCC 12.2, a compiler bug. Name it first and pass std::move(fn) (docs/toolkit.md).
//
//   unio::task<std::size_t> size_of(unio::loop& lp, int fd) {
//     struct statx st{};
//     auto r = co_await lp.async_stat(fd, "", AT_EMPTY_PATH, STATX_SIZE, &st);
//     co_return r ? st.stx_size : 0;
//   }
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <stdexcept>
#include <utility>

#include "unio/loop.hpp"
#include "unio/result.hpp"

namespace unio {

template <class T = void>
class task;

// What happens to an exception that escapes a spawned task (spawn(), task::detach(), and the
// tasks when_any leaves running): it has no awaiter to go to, so it is handed to the spawn error
// handler, on the loop's thread, and the task's frame is then freed as usual. The default handler
// writes "unio: exception escaped a spawned task: <what()>" to stderr and returns; the program
// goes on. A handler must not throw (it is noexcept). Setting a handler is thread-safe; it
// applies to the whole process. Returns the previous handler; nullptr restores the default.
using spawn_error_handler = void (*)(std::exception_ptr) noexcept;
inline spawn_error_handler set_spawn_error_handler(spawn_error_handler h) noexcept;

namespace detail {

template <class>
inline constexpr bool always_false = false;

inline void default_spawn_error_handler(std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    std::fprintf(stderr, "unio: exception escaped a spawned task: %s\n", x.what());
  } catch (...) {
    std::fprintf(stderr, "unio: exception escaped a spawned task (not a std::exception)\n");
  }
}

inline std::atomic<spawn_error_handler>& spawn_error_hook() noexcept {
  static std::atomic<spawn_error_handler> hook{nullptr};
  return hook;
}

// Hands an exception that escaped a detached task to the spawn error handler.
inline void report_spawn_error(std::exception_ptr e) noexcept {
  spawn_error_handler h = spawn_error_hook().load(std::memory_order_acquire);
  (h != nullptr ? h : default_spawn_error_handler)(std::move(e));
}

struct task_promise_base {
  std::coroutine_handle<> continuation = std::noop_coroutine();
  std::exception_ptr error;
  bool detached = false;

  std::suspend_always initial_suspend() noexcept { return {}; }
  struct final_awaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      auto& p = h.promise();
      if (p.detached) {
        // A spawned task owns itself: it has no awaiter, so it frees its own frame, after
        // reporting an exception that escaped it.
        if (p.error) report_spawn_error(std::exchange(p.error, nullptr));
        h.destroy();
        return std::noop_coroutine();
      }
      return p.continuation;
    }
    void await_resume() const noexcept {}
  };
  final_awaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { error = std::current_exception(); }
};

template <class T>
struct task_promise : task_promise_base {
  std::optional<T> value;
  task<T> get_return_object() noexcept;
  template <class U>
  void return_value(U&& v) { value.emplace(std::forward<U>(v)); }
  T take() {
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }
};

template <>
struct task_promise<void> : task_promise_base {
  task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() {
    if (error) std::rethrow_exception(error);
  }
};

}  // namespace detail

template <class T>
class [[nodiscard]] task {
 public:
  using promise_type = detail::task_promise<T>;

  explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  task(task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  task& operator=(task&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  task(const task&) = delete;
  ~task() {
    if (h_) h_.destroy();
  }

  bool done() const noexcept { return !h_ || h_.done(); }

  auto operator co_await() && noexcept {
    struct awaiter {
      std::coroutine_handle<promise_type> h;
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<> cont) noexcept {
        h.promise().continuation = cont;
        return h;
      }
      T await_resume() { return h.promise().take(); }
    };
    return awaiter{h_};
  }
  // A task is awaited once, as an rvalue: `co_await f()` or `co_await std::move(t)`.
  template <class U = T>
  auto operator co_await() const& noexcept {
    static_assert(detail::always_false<U>,
                  "unio::task: co_await on a task lvalue; write `co_await std::move(t)` (a task is awaited once)");
    return std::suspend_never{};
  }

  // Starts the task now and lets it free itself when it finishes (fire and forget). Its value is
  // dropped; an exception escaping it goes to the spawn error handler (set_spawn_error_handler).
  void detach() && {
    auto h = std::exchange(h_, {});
    h.promise().detached = true;
    h.resume();
  }

  // Starts the task if it has not started (used by sync_wait).
  void start() { h_.resume(); }
  T take() { return h_.promise().take(); }

 private:
  std::coroutine_handle<promise_type> h_;
};

namespace detail {
template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
  return task<T>(std::coroutine_handle<task_promise<T>>::from_promise(*this));
}
inline task<void> task_promise<void>::get_return_object() noexcept {
  return task<void>(std::coroutine_handle<task_promise<void>>::from_promise(*this));
}
}  // namespace detail

inline spawn_error_handler set_spawn_error_handler(spawn_error_handler h) noexcept {
  return detail::spawn_error_hook().exchange(h, std::memory_order_acq_rel);
}

// Starts `t` on the current thread (it runs until its first suspension) and detaches it; it
// continues on the loop's thread as its operations complete and frees itself when it finishes.
// Any T: the value is dropped. An exception escaping `t` is reported to the spawn error handler
// (see set_spawn_error_handler; by default a line on stderr), never lost and never fatal.
// Everything the task refers to must outlive it.
template <class T>
void spawn(task<T> t) {
  std::move(t).detach();
}

// Runs the loop until `t` has finished and returns its value (rethrows its exception). If the
// loop runs out of work before `t` finishes (a task waiting on nothing), throws
// std::logic_error instead of hanging.
template <class T>
T sync_wait(loop& lp, task<T> t) {
  t.start();
  while (!t.done()) {
    if (!lp.run_once() && !t.done()) throw std::logic_error("unio::sync_wait: loop ran out of work");
  }
  return t.take();
}

// Reads exactly len bytes at offset (or at the current position), looping over short reads.
// Fails with the first error; end of file before len bytes fails with ENODATA.
inline task<result<std::size_t>> read_exact(loop& lp, int fd, void* buf, std::size_t len, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < len) {
    auto r = co_await lp.async_read(fd, static_cast<char*>(buf) + done, len - done,
                                    offset == current_position ? offset : offset + done);
    if (!r) co_return r.error();
    if (*r == 0) co_return errno_code(ENODATA);
    done += *r;
  }
  co_return done;
}

// Writes all len bytes at offset, looping over short writes. Fails with the first error.
inline task<result<std::size_t>> write_all(loop& lp, int fd, const void* buf, std::size_t len, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < len) {
    auto r = co_await lp.async_write(fd, static_cast<const char*>(buf) + done, len - done,
                                     offset == current_position ? offset : offset + done);
    if (!r) co_return r.error();
    if (*r == 0) co_return errno_code(EIO);
    done += *r;
  }
  co_return done;
}

}  // namespace unio
