// semaphore and event: coordination between tasks running on one loop.
//
//   unio::semaphore limit(lp, 16);                 // at most 16 stats in flight
//   auto held = co_await limit.acquire();          // a guard; released when it goes out of scope
//   (void)co_await lp.async_stat(...);
//
//   unio::event ready(lp);
//   co_await ready.wait();                         // in one task
//   ready.set();                                   // in another: every waiter resumes
//
// Threading: both are single-threaded. Every call, and every co_await on them, happens on the
// loop's thread (inside tasks running on the loop, or before the loop runs); use loop::post to
// reach them from another thread.
//
// Waking: waiters are woken in FIFO order (the order in which they started waiting). A woken
// waiter does not run inside the call that woke it (release(), set() or a guard's destructor):
// its resumption is posted to the loop (loop::post) and runs during the loop's next turn. So
// waking 10,000 waiters, or a chain of waiters that each release for the next, never nests
// frames on the stack, and the caller of release()/set() keeps running first.
//
// Lifetime: the loop must outlive the semaphore or event. REQUIRES: no coroutine waits on it when
// it is destroyed (a waiter would never resume), and a coroutine that waits on it is not
// destroyed while it waits.
#pragma once

#include <coroutine>
#include <cstddef>
#include <mutex>
#include <utility>

#include "unio/loop.hpp"

namespace unio {

namespace detail {

// A coroutine parked in a waiter_queue; the node lives in the awaiter, in the waiter's frame.
struct waiter_node {
  std::coroutine_handle<> handle;
  waiter_node* next = nullptr;
};

// An intrusive FIFO of waiting coroutines: waiting allocates nothing.
class waiter_queue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  void push(waiter_node* n) noexcept {
    n->next = nullptr;
    if (tail_ != nullptr)
      tail_->next = n;
    else
      head_ = n;
    tail_ = n;
  }
  // REQUIRES: !empty().
  std::coroutine_handle<> pop() noexcept {
    waiter_node* n = head_;
    head_ = n->next;
    if (head_ == nullptr) tail_ = nullptr;
    return n->handle;
  }

 private:
  waiter_node* head_ = nullptr;
  waiter_node* tail_ = nullptr;
};

// Resumes `h` during a later turn of `lp`, never inside the current call.
inline void resume_later(loop& lp, std::coroutine_handle<> h) {
  lp.post([h] { h.resume(); });
}

}  // namespace detail

// A counting semaphore for tasks. acquire() takes one unit, waiting (without blocking the
// thread) while none is free; release() returns one. A released unit goes to the longest waiter
// directly, so a later acquire() or try_acquire() cannot overtake a waiter.
class semaphore {
 public:
  // Holds one unit and releases it when destroyed (or at release()). Move-only.
  class [[nodiscard]] guard {
   public:
    // Takes over a unit already acquired, e.g. by try_acquire().
    guard(semaphore& s, std::adopt_lock_t) noexcept : sem_(&s) {}
    guard(guard&& o) noexcept : sem_(std::exchange(o.sem_, nullptr)) {}
    guard& operator=(guard&& o) noexcept {
      if (this != &o) {
        release();
        sem_ = std::exchange(o.sem_, nullptr);
      }
      return *this;
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    ~guard() { release(); }

    // Releases the unit now (once; later calls and the destructor do nothing).
    void release() {
      if (sem_ != nullptr) std::exchange(sem_, nullptr)->release();
    }
    bool owns_unit() const noexcept { return sem_ != nullptr; }

   private:
    semaphore* sem_;
  };

  semaphore(loop& lp, std::size_t count) noexcept : loop_(lp), count_(count) {}
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;

  // co_await sem.acquire() gives a guard. Does not suspend when a unit is free and nobody waits.
  auto acquire() noexcept { return acquire_awaiter{*this, {}}; }
  // Takes a unit if one is free and nobody waits; the caller then owes one release() (or adopts
  // it with guard(sem, std::adopt_lock)).
  bool try_acquire() noexcept {
    if (count_ == 0 || !waiters_.empty()) return false;
    --count_;
    return true;
  }
  // Returns one unit: to the longest waiter (resumed during a later loop turn, holding it), or to
  // the count when nobody waits. Releasing more than was acquired raises the count.
  void release() {
    if (waiters_.empty())
      ++count_;
    else
      detail::resume_later(loop_, waiters_.pop());
  }
  // Units free now.
  std::size_t available() const noexcept { return count_; }

 private:
  struct acquire_awaiter {
    semaphore& sem;
    detail::waiter_node node;
    bool await_ready() noexcept { return sem.try_acquire(); }
    void await_suspend(std::coroutine_handle<> h) noexcept {
      node.handle = h;
      sem.waiters_.push(&node);
    }
    guard await_resume() noexcept { return guard(sem, std::adopt_lock); }
  };

  loop& loop_;
  std::size_t count_;
  detail::waiter_queue waiters_;
};

// A manual-reset event for tasks. wait() completes at once while the event is set; otherwise
// it waits until set(). set() wakes every current waiter and the event stays set until reset().
// A waiter woken by set() resumes even if reset() is called before its turn comes.
class event {
 public:
  explicit event(loop& lp, bool initially_set = false) noexcept : loop_(lp), set_(initially_set) {}
  event(const event&) = delete;
  event& operator=(const event&) = delete;

  void set() {
    set_ = true;
    while (!waiters_.empty())
      detail::resume_later(loop_, waiters_.pop());
  }
  void reset() noexcept { set_ = false; }
  bool is_set() const noexcept { return set_; }
  // co_await ev.wait(): does not suspend when the event is set.
  auto wait() noexcept { return wait_awaiter{*this, {}}; }

 private:
  struct wait_awaiter {
    event& ev;
    detail::waiter_node node;
    bool await_ready() const noexcept { return ev.set_; }
    void await_suspend(std::coroutine_handle<> h) noexcept {
      node.handle = h;
      ev.waiters_.push(&node);
    }
    void await_resume() const noexcept {}
  };

  loop& loop_;
  bool set_;
  detail::waiter_queue waiters_;
};

}  // namespace unio
