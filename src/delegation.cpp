#include "delegation.hpp"

#include <poll.h>

#include <cerrno>
#include <new>
#include <system_error>
#include <utility>

namespace unio::detail {

thread_pool& delegation::pool() {
  if (pool_ == nullptr) {
    pool_ = &env_.pool();
    if (on_start_) on_start_(pool_->event_fd());
  }
  return *pool_;
}

void delegation::hand_over() {
  if (queued_.empty()) return;
  if (pool_ == nullptr && !start_pool()) return;
  pool_->submit(queued_);
}

// The pool's eventfd and threads are created by the first hand-over, when the process may have
// run out of fds (EMFILE) or threads (EAGAIN). The error then belongs to the queued ops: they
// complete with it, instead of an exception leaving poll() with them still held.
bool delegation::start_pool() noexcept {
  int err = ENOMEM;
  try {
    pool();
    return true;
  } catch (const std::system_error& e) {
    err = e.code().value();
  } catch (const std::bad_alloc&) {
  }
  while (op* o = queued_.pop()) env_.complete(*o, -err);
  failed_ = true;
  return false;
}

bool delegation::cancel(op& o) {
  if (queued_.remove(o)) {
    env_.complete(o, -ECANCELED);
    return true;
  }
  return pool_ != nullptr && pool_->cancel(o);
}

std::size_t delegation::drain() {
  if (pool_ == nullptr) return 0;
  op_queue got;
  std::size_t n = pool_->drain(got);
  while (op* o = got.pop())
    if (!take_back_ || !take_back_(*o)) env_.complete(*o, A::res(*o));
  return n;
}

void delegation::shutdown() {
  while (op* o = queued_.pop()) env_.complete(*o, -ECANCELED);
  if (pool_ == nullptr) return;
  pool_->cancel_queued();
  drain();
  while (pool_->outstanding() > 0) {
    wait_for_pool();
    drain();
  }
}

bool delegation::may_sleep() noexcept {
  after_sleep();  // a sleep prepared for a wait that never came (the host did not block) ends here
  if (std::exchange(failed_, false)) return false;  // start_pool() completed ops: hand them back first
  if (pool_ == nullptr || pool_->outstanding() == 0) return true;  // nothing can finish
  sleeping_ = pool_->prepare_sleep();
  return sleeping_;
}

void delegation::after_sleep() noexcept {
  if (sleeping_) pool_->after_sleep();
  sleeping_ = false;
}

void delegation::wait_for_pool() noexcept {
  if (!pool_->prepare_sleep()) return;  // finished ops are already waiting
  pollfd p{pool_->event_fd(), POLLIN, 0};
  while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
  }
  pool_->after_sleep();
}

}  // namespace unio::detail
