// when_all, when_any: run several tasks concurrently on one loop and wait for all of them, or for
// the first.
//
//   auto [size, text] = co_await unio::when_all(file_size(lp, fd), read_text(lp, fd2));
//   std::vector<std::size_t> sizes = co_await unio::when_all(std::move(size_tasks));
//   auto first = co_await unio::when_any(std::move(mirrors));   // first.index, first.value
//
// Both are tasks themselves (lazy: nothing starts until the returned task is awaited, spawned or
// driven by sync_wait). When it starts, every child is started in argument (or vector) order on
// the current thread, each running until its first suspension; they then interleave on the loop's
// thread at their co_awaits, as spawned tasks do. Threading: the loop's thread only.
//
// A child of type task<void> gives std::monostate, an empty placeholder, in the tuple, vector or
// variant; detail::when_value_t<T> names the type a task<T> gives.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "unio/task.hpp"

namespace unio {

namespace detail {
template <class T>
using when_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
}  // namespace detail

// What when_any gives: the position of the task that finished first (in the argument list or the
// vector) and its value (for the pack form, a std::variant whose index() equals `index`).
template <class V>
struct when_any_result {
  std::size_t index;
  V value;
};

namespace detail {

// ---- when_all ----

// The join point of one when_all: the coroutine waiting in it, how many children (plus one for
// the starting loop) have not finished, and the first exception a child threw.
struct join_state {
  std::size_t left = 0;
  std::coroutine_handle<> waiter;
  std::exception_ptr error;
};

// The frame that runs one child of when_all and stores its value. Owned by when_all's frame,
// which frees it only after every child has finished.
class join_child {
 public:
  struct promise_type {
    join_state* state = nullptr;

    join_child get_return_object() noexcept { return join_child(handle::from_promise(*this)); }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct final_awaiter {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        join_state& s = *h.promise().state;
        return --s.left == 0 ? s.waiter : std::noop_coroutine();
      }
      void await_resume() const noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept {
      if (!state->error) state->error = std::current_exception();
    }
  };
  using handle = std::coroutine_handle<promise_type>;

  explicit join_child(handle h) noexcept : h_(h) {}
  join_child(join_child&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  join_child& operator=(join_child&&) = delete;
  ~join_child() {
    if (h_) h_.destroy();
  }

  void start(join_state& s) {
    h_.promise().state = &s;
    h_.resume();
  }

 private:
  handle h_;
};

template <class T, class Slot>
join_child run_join_child(task<T> t, Slot& slot) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(t);
    slot.emplace();
  } else {
    slot.emplace(co_await std::move(t));
  }
}

// Starts every child, then suspends until the last one has finished (or does not suspend at all
// when they all finished while starting).
class join_awaiter {
 public:
  join_awaiter(join_state& s, std::vector<join_child>& children) noexcept : state_(s), children_(children) {}
  bool await_ready() const noexcept { return children_.empty(); }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    state_.waiter = h;
    state_.left = children_.size() + 1;
    for (auto& c : children_)
      c.start(state_);
    return --state_.left != 0;
  }
  void await_resume() const noexcept {}

 private:
  join_state& state_;
  std::vector<join_child>& children_;
};

template <class Slots, class... Ts, std::size_t... I>
void add_join_children(std::vector<join_child>& out, Slots& slots, std::index_sequence<I...>,
                       task<Ts>&... ts) {
  (out.push_back(run_join_child(std::move(ts), std::get<I>(slots))), ...);
}

// ---- when_any ----

inline constexpr std::size_t k_no_winner = SIZE_MAX;

// Shared by when_any's frame and every child's frame: whoever finishes last frees it.
struct any_state_base {
  std::size_t winner = k_no_winner;
  bool waiting = false;  // when_any's coroutine is suspended and waits for the winner
  std::coroutine_handle<> waiter;
  std::exception_ptr error;

  // True for the first child to finish, which becomes the winner.
  bool claim(std::size_t i) noexcept {
    if (winner != k_no_winner) return false;
    winner = i;
    return true;
  }
};

inline constexpr std::size_t k_any_dynamic = SIZE_MAX;

template <class V>
struct any_state : any_state_base {
  std::optional<V> value;

  // I: the alternative of the variant V (pack form), or k_any_dynamic (vector form: V itself).
  template <std::size_t I, class X>
  void store(X&& x) {
    if constexpr (I == k_any_dynamic)
      value.emplace(std::forward<X>(x));
    else
      value.emplace(std::in_place_index<I>, std::forward<X>(x));
  }
};

// The frame that runs one child of when_any. Once started it owns itself (like a spawned task):
// it frees itself when the child finishes, whether or not when_any is still waiting.
class any_child {
 public:
  struct promise_type {
    std::shared_ptr<any_state_base> state;
    std::size_t index = 0;

    any_child get_return_object() noexcept { return any_child(handle::from_promise(*this)); }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct final_awaiter {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        std::shared_ptr<any_state_base> s = std::move(h.promise().state);
        const bool resume = s->winner == h.promise().index && s->waiting;
        std::coroutine_handle<> next = resume ? s->waiter : std::noop_coroutine();
        h.destroy();
        return next;
      }
      void await_resume() const noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    // The winner's exception is when_any's; a loser's is reported like a spawned task's.
    void unhandled_exception() noexcept {
      if (state->claim(index))
        state->error = std::current_exception();
      else
        report_spawn_error(std::current_exception());
    }
  };
  using handle = std::coroutine_handle<promise_type>;

  explicit any_child(handle h) noexcept : h_(h) {}
  any_child(any_child&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  any_child& operator=(any_child&&) = delete;
  ~any_child() {
    if (h_) h_.destroy();  // never started
  }

  void start(std::shared_ptr<any_state_base> s, std::size_t i) {
    handle h = std::exchange(h_, {});
    h.promise().state = std::move(s);
    h.promise().index = i;
    h.resume();
  }

 private:
  handle h_;
};

template <std::size_t I, class T, class V>
any_child run_any_child(task<T> t, any_state<V>* st, std::size_t i) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(t);
    if (st->claim(i)) st->template store<I>(std::monostate{});
  } else {
    auto v = co_await std::move(t);
    if (st->claim(i)) st->template store<I>(std::move(v));
  }
}

class any_awaiter {
 public:
  any_awaiter(std::shared_ptr<any_state_base> s, std::vector<any_child>& children) noexcept
      : state_(std::move(s)), children_(children) {}
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    state_->waiter = h;
    for (std::size_t i = 0; i < children_.size(); ++i)
      children_[i].start(state_, i);
    if (state_->winner != k_no_winner) return false;
    state_->waiting = true;
    return true;
  }
  void await_resume() const noexcept {}

 private:
  std::shared_ptr<any_state_base> state_;
  std::vector<any_child>& children_;
};

template <class V, class... Ts, std::size_t... I>
void add_any_children(std::vector<any_child>& out, any_state<V>* st, std::index_sequence<I...>,
                      task<Ts>&... ts) {
  (out.push_back(run_any_child<I>(std::move(ts), st, I)), ...);
}

template <class V>
when_any_result<V> take_winner(any_state<V>& st) {
  if (st.error) std::rethrow_exception(st.error);
  return when_any_result<V>{st.winner, std::move(*st.value)};
}

}  // namespace detail

// when_all(t1, t2, ...): starts every task and completes when all of them have finished, giving
// a std::tuple of their values in argument order (std::monostate for a task<void>).
// Exceptions: if any task throws, the first exception (in order of finishing) is rethrown from
// the co_await, but only after every task has finished; the others' values are dropped. No child
// is ever left running, so a child may refer to the caller's locals.
template <class... Ts>
task<std::tuple<detail::when_value_t<Ts>...>> when_all(task<Ts>... tasks) {
  detail::join_state state;
  std::tuple<std::optional<detail::when_value_t<Ts>>...> slots;
  std::vector<detail::join_child> children;
  children.reserve(sizeof...(Ts));
  detail::add_join_children(children, slots, std::index_sequence_for<Ts...>{}, tasks...);
  co_await detail::join_awaiter(state, children);
  children.clear();
  if (state.error) std::rethrow_exception(state.error);
  co_return std::apply([](auto&... s) { return std::tuple<detail::when_value_t<Ts>...>(std::move(*s)...); },
                       slots);
}

// when_all(vector of tasks): the same for a run-time number of tasks of one type; the values come
// in the vector's order. An empty vector gives an empty vector at once.
template <class T>
task<std::vector<detail::when_value_t<T>>> when_all(std::vector<task<T>> tasks) {
  using value = detail::when_value_t<T>;
  detail::join_state state;
  std::vector<std::optional<value>> slots(tasks.size());
  std::vector<detail::join_child> children;
  children.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i)
    children.push_back(detail::run_join_child(std::move(tasks[i]), slots[i]));
  co_await detail::join_awaiter(state, children);
  children.clear();
  if (state.error) std::rethrow_exception(state.error);
  std::vector<value> out;
  out.reserve(slots.size());
  for (auto& s : slots)
    out.push_back(std::move(*s));
  co_return out;
}

// when_any(t1, t2, ...) and when_any(vector of tasks): starts every task and completes as soon
// as the first one finishes, giving its index and value. If that first task finished by
// throwing, its exception is rethrown from the co_await instead.
//
// THE OTHER TASKS ARE NOT STOPPED. They keep running to completion, owned by when_any's
// machinery (a heap-allocated frame per task, freed when the task finishes); their values are
// dropped and an exception escaping one of them is reported like an exception escaping a
// spawned task (set_spawn_error_handler). They are never destroyed while suspended and never
// lost: the loop keeps running until they finish, and destroying the loop completes their ops
// with ECANCELED. So, as with spawn, everything they refer to (buffers, fds, the caller's
// locals, the loop) must outlive them, not just the co_await. To stop the losers early, make them
// stoppable: wait on an event they also watch, use with_timeout, or cancel their ops.
//
// Each task is started even if an earlier one finished while being started (then that earlier
// one wins). The vector must not be empty (std::invalid_argument, thrown from the co_await).
template <class... Ts>
task<when_any_result<std::variant<detail::when_value_t<Ts>...>>> when_any(task<Ts>... tasks) {
  static_assert(sizeof...(Ts) > 0, "unio::when_any needs at least one task");
  using value = std::variant<detail::when_value_t<Ts>...>;
  auto st = std::make_shared<detail::any_state<value>>();
  std::vector<detail::any_child> children;
  children.reserve(sizeof...(Ts));
  detail::add_any_children(children, st.get(), std::index_sequence_for<Ts...>{}, tasks...);
  co_await detail::any_awaiter(st, children);
  co_return detail::take_winner(*st);
}

template <class T>
task<when_any_result<detail::when_value_t<T>>> when_any(std::vector<task<T>> tasks) {
  using value = detail::when_value_t<T>;
  if (tasks.empty()) throw std::invalid_argument("unio::when_any: no tasks");
  auto st = std::make_shared<detail::any_state<value>>();
  std::vector<detail::any_child> children;
  children.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i)
    children.push_back(detail::run_any_child<detail::k_any_dynamic>(std::move(tasks[i]), st.get(), i));
  co_await detail::any_awaiter(st, children);
  co_return detail::take_winner(*st);
}

}  // namespace unio
