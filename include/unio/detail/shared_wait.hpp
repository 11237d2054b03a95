// shared_wait: the wait of a handle object (signal_set, fs_watch, process) on the loop, in
// callback and awaitable form, written once.
//
// The handle and its waits share a state S (std::shared_ptr), so a wait still in flight keeps the
// state's fd and buffers alive after the handle is destroyed, and the handle's destruction can
// cancel it. The wait is one loop op (a read, a poll, or a nop when the answer is known
// already), so loop::cancel and with_timeout work on it as on any op. S provides:
//   template <class W> void begin(op& o, W&& w);   submits `o` with the handler w
//   result<T> take(op& o);                         the completed op's answer
// Both run on the loop's thread.
#pragma once

#include <coroutine>
#include <memory>
#include <utility>

#include "unio/op.hpp"
#include "unio/result.hpp"

namespace unio::detail {

// The handler of a wait's op: runs h(op&, result<T>) once.
template <class S, class H>
struct shared_wait {
  std::shared_ptr<S> st;
  H h;
  void operator()(op& o) { h(o, st->take(o)); }
};

// Starts a wait in callback form: h(op&, result<T>) runs once, in a later loop turn.
template <class S, class H>
void start_shared_wait(const std::shared_ptr<S>& st, op& o, H&& h) {
  st->begin(o, shared_wait<S, std::decay_t<H>>{st, std::forward<H>(h)});
}

// The awaitable form: co_await yields result<T>; get_op() gives the op, to cancel the wait
// (loop::cancel) or give it a deadline (with_timeout).
template <class S, class T>
class shared_wait_awaitable {
 public:
  explicit shared_wait_awaitable(std::shared_ptr<S> st) noexcept : st_(std::move(st)) {}
  shared_wait_awaitable(const shared_wait_awaitable&) = delete;
  shared_wait_awaitable& operator=(const shared_wait_awaitable&) = delete;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    handle_ = h;
    start_shared_wait(st_, op_, [this](op&, result<T> r) {
      result_ = std::move(r);
      handle_.resume();
    });
  }
  result<T> await_resume() { return std::move(result_); }
  op& get_op() noexcept { return op_; }

 protected:
  std::shared_ptr<S> st_;

 private:
  std::coroutine_handle<> handle_;
  result<T> result_{errno_code(ECANCELED)};
  op op_;
};

}  // namespace unio::detail
