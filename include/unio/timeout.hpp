// with_timeout: an op awaitable with a deadline.
//
//   char buf[512];
//   auto n = co_await unio::with_timeout(lp, lp.async_recv(fd, buf, sizeof buf), 5s);
//   if (n.error() == std::errc::timed_out) ...   // nothing arrived within 5 s
//
// `awaitable` is any op awaitable of the loop (lp.async_recv, async_accept, async_connect,
// async_read, async_sleep, ...: a detail::op_awaitable<R>), passed as a temporary or as a named
// awaitable that has not been awaited yet. On suspension the op is submitted together with a
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
#include <coroutine>

#include "unio/loop.hpp"
#include "unio/op.hpp"
#include "unio/result.hpp"

namespace unio {

namespace detail {

template <class R>
class timeout_awaitable {
 public:
  timeout_awaitable(loop& lp, op_awaitable<R>& inner, std::chrono::nanoseconds d) noexcept
      : loop_(lp), inner_(inner), delay_(d) {}
  timeout_awaitable(const timeout_awaitable&) = delete;
  timeout_awaitable& operator=(const timeout_awaitable&) = delete;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    handle_ = h;
    loop_.submit(inner_.get_op(), [this](op&) { op_done(); });
    loop_.timeout(timer_, delay_, [this](op& t) { timer_done(t); });
  }
  result<R> await_resume() const {
    if (fired_ && inner_.get_op().error() == std::errc::operation_canceled) return errno_code(ETIMEDOUT);
    return inner_.await_resume();
  }

 private:
  void op_done() {
    loop_.cancel(timer_);  // no-op when the timer has fired already
    finish();
  }
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
  op_awaitable<R>& inner_;
  std::chrono::nanoseconds delay_;
  std::coroutine_handle<> handle_;
  op timer_;
  int left_ = 2;
  bool fired_ = false;
};

}  // namespace detail

template <class R, class Rep, class Period>
detail::timeout_awaitable<R> with_timeout(loop& lp, detail::op_awaitable<R>&& awaitable,
                                          std::chrono::duration<Rep, Period> d) noexcept {
  return detail::timeout_awaitable<R>(lp, awaitable, std::chrono::duration_cast<std::chrono::nanoseconds>(d));
}

template <class R, class Rep, class Period>
detail::timeout_awaitable<R> with_timeout(loop& lp, detail::op_awaitable<R>& awaitable,
                                          std::chrono::duration<Rep, Period> d) noexcept {
  return detail::timeout_awaitable<R>(lp, awaitable, std::chrono::duration_cast<std::chrono::nanoseconds>(d));
}

}  // namespace unio
