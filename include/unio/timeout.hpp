// with_timeout: an op awaitable with a deadline.
//
//   char buf[512];
//   auto n = co_await unio::with_timeout(lp, lp.async_recv(fd, buf, sizeof buf), 5s);
//   if (n.error() == std::errc::timed_out) ...   // nothing arrived within 5 s
//
// `awaitable` is any awaitable of one op of the loop (lp.async_recv, async_accept, async_connect,
// async_read, async_sleep, async_work, async_scandir, async_readlink, async_splice, ...: every
// lp.async_* but async_write_fsync), passed as a temporary or as a named awaitable that has not
// been awaited yet. It allocates one small coroutine frame per call. On suspension the op is submitted together with a
// timer of `d` on the same loop. The co_await yields the awaitable's result<R>:
//  - the op finished before the timer fired: its own result. The timer has been cancelled, and
//    its completion reaped, before the coroutine resumes: nothing of it is left on the loop.
//  - the timer fired first: the op is cancelled (loop::cancel). If the cancel stopped it, the
//    result is std::errc::timed_out (ETIMEDOUT). If the op could no longer be stopped (it was
//    already running on a pool thread, or had finished and waited for its handler), its own
//    result: data the op received is never dropped.
// Either way the coroutine resumes only after both the op and the timer have completed and their
// completions have been reaped, so leaving the scope (destroying the op and its buffer) is always
// safe; a busy op is never destroyed. How fast a timed-out op stops depends on where it runs (see
// loop::cancel): a readiness op (recv, accept, connect, a read on a pipe) stops at once on every
// backend; a file op already taken by a pool thread runs to its own end first.
// An ECANCELED result means the op was cancelled by someone else (loop::cancel on get_op()).
//
// REQUIRES: `awaitable` belongs to `lp`; the result of with_timeout is co_awaited in the same
// full expression that makes it (it refers to `awaitable`, which may be a temporary of that
// expression: do not keep it in a variable); not inside a loop::link_scope (the timer would join
// the chain and only start after the op).
// Threading: the loop's thread.
#pragma once

#include <cerrno>
#include <chrono>
#include <concepts>
#include <coroutine>
#include <exception>
#include <type_traits>
#include <utility>

#include "unio/loop.hpp"
#include "unio/op.hpp"
#include "unio/result.hpp"

namespace unio {

namespace detail {

// An awaitable of one op of the loop, which with_timeout can cancel: every lp.async_* awaitable
// except async_write_fsync (two ops).
template <class A>
concept cancellable_op_awaitable = requires(A& a, std::coroutine_handle<> h) {
  { a.get_op() } -> std::same_as<op&>;
  a.await_suspend(h);
  a.await_resume();
};

// A coroutine frame that only forwards one resumption: the inner awaitable resumes it when its
// op has completed (and whatever the awaitable does then, such as readlink growing its buffer,
// is done), and it tells the timeout_awaitable. It frees itself when it has run.
struct relay {
  struct promise_type {
    relay get_return_object() noexcept { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

template <class T>
relay relay_to(T* target) {
  target->op_done();
  co_return;
}

template <class A>
class timeout_awaitable {
 public:
  using result_type = decltype(std::declval<A&>().await_resume());

  timeout_awaitable(loop& lp, A& inner, std::chrono::nanoseconds d) noexcept : loop_(lp), inner_(inner), delay_(d) {}
  timeout_awaitable(const timeout_awaitable&) = delete;
  timeout_awaitable& operator=(const timeout_awaitable&) = delete;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    handle_ = h;
    inner_.await_suspend(relay_to(this).handle);
    loop_.timeout(timer_, delay_, [this](op& t) { timer_done(t); });
  }
  result_type await_resume() {
    if (fired_ && inner_.get_op().error() == std::errc::operation_canceled) return result_type(errno_code(ETIMEDOUT));
    return inner_.await_resume();
  }

  // The relay's call: the op has completed.
  void op_done() {
    loop_.cancel(timer_);  // no-op when the timer has fired already
    finish();
  }

 private:
  void timer_done(op& t) {
    if (t.ok() && inner_.get_op().busy()) {
      fired_ = true;
      loop_.cancel(inner_.get_op());
    }
    finish();
  }
  // Resumes the coroutine once both completions have been reaped.
  void finish() {
    if (--left_ == 0) handle_.resume();
  }

  loop& loop_;
  A& inner_;
  std::chrono::nanoseconds delay_;
  std::coroutine_handle<> handle_;
  op timer_;
  int left_ = 2;
  bool fired_ = false;
};

}  // namespace detail

template <class A, class Rep, class Period>
  requires detail::cancellable_op_awaitable<std::remove_reference_t<A>>
detail::timeout_awaitable<std::remove_reference_t<A>> with_timeout(loop& lp, A&& awaitable,
                                                                  std::chrono::duration<Rep, Period> d) noexcept {
  return detail::timeout_awaitable<std::remove_reference_t<A>>(
      lp, awaitable, std::chrono::duration_cast<std::chrono::nanoseconds>(d));
}

}  // namespace unio
