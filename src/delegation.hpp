// delegation: how a backend hands the ops it does not perform itself to the loop's thread pool,
// and takes them back. Every backend with a pool uses one (threadpool for all its file ops; io_uring,
// linux_aio and posix_aio for the ops their kernel or library cannot do).
//
//  - push() queues an op; hand_over() gives everything queued to the pool as one batch, once per
//    turn. Until then cancel() stops the op before any worker can start it (spec item 5). The
//    first hand-over creates the pool (a backend that never delegates never starts threads) and
//    reports its eventfd through the on_start callback, so the backend can watch it. When the
//    pool cannot be created (EMFILE for its eventfd, EAGAIN for a thread), the ops handed over
//    complete with that error, and the next hand-over tries again.
//  - drain() takes finished ops back; each is offered to the backend's take_back callback first
//    (the reactor takes back a sendfile that met a full socket; io_uring completes through its
//    own bookkeeping), else it is completed with its result.
//  - may_sleep()/after_sleep() wrap the backend's blocking wait: the pool writes its eventfd
//    for the next finished op only while the loop says it sleeps, never per op.
//  - shutdown() completes the queued ops with ECANCELED, cancels those the pool has not started,
//    waits for the ones workers are running and drains them all. The loop owns the pool: it
//    creates it (backend_env::pool), stops its threads and destroys it after the backend.
//
// Loop thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>

#include "backend.hpp"
#include "reactor.hpp"
#include "thread_pool.hpp"

namespace unio::detail {

class delegation {
 public:
  // on_start(event_fd) runs once, when the pool is first used. take_back(o) is offered each
  // finished op first and returns true when it kept it (empty: every op completes with its result).
  explicit delegation(backend_env& env, std::function<void(int)> on_start = {},
                      std::function<bool(op&)> take_back = {})
      : env_(env), on_start_(std::move(on_start)), take_back_(std::move(take_back)) {}
  // For a backend whose sockets wait on `r`: the pool's eventfd is watched there, and ready
  // sendfile ops come here (reactor::delegate_to) and go back to `r` when the socket filled up.
  delegation(backend_env& env, reactor& r)
      : delegation(env, [&r](int fd) { r.watch_extra(fd); }, [&r](op& o) { return r.take_back(o); }) {
    r.delegate_to(queued_);
  }
  delegation(const delegation&) = delete;
  delegation& operator=(const delegation&) = delete;

  void push(op& o) noexcept { queued_.push(o); }
  // The pool, creating it (and calling on_start) if needed.
  thread_pool& pool();
  // nullptr until the first hand-over.
  thread_pool* started() const noexcept { return pool_; }

  // Hands every queued op to the pool as one batch.
  void hand_over();
  // Cancels an op this delegation holds: a queued one completes with ECANCELED now; one in the
  // pool is marked (ECANCELED without running, unless a worker already has it). False when the
  // op is neither queued here nor waiting in the pool.
  bool cancel(op& o);
  // Takes finished ops back (through take_back, else completed with their result). Returns how
  // many came back.
  std::size_t drain();

  // Before the backend's blocking wait: false when finished ops are already waiting (do not
  // sleep). After true, the pool signals its eventfd when an op finishes; call after_sleep().
  bool may_sleep() noexcept;
  void after_sleep() noexcept;

  // See the top of the file.
  void shutdown();

 private:
  // Creates the pool; false (the queued ops completed with the error) when it cannot.
  bool start_pool() noexcept;
  // Blocks until the pool's eventfd is readable (a worker finished an op).
  void wait_for_pool() noexcept;

  backend_env& env_;
  std::function<void(int)> on_start_;
  std::function<bool(op&)> take_back_;
  thread_pool* pool_ = nullptr;
  op_queue queued_;
  bool sleeping_ = false;
  bool failed_ = false;  // start_pool() completed ops since the last may_sleep()
};

}  // namespace unio::detail
