#include "io_uring_cold_reader.hpp"

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "sys/thread_signals.hpp"
#include "thread_pool.hpp"

namespace unio::detail::uring {
namespace {

constexpr std::uint64_t k_inbox_poll = 1;  // user_data of the POLL_ADD on the inbox eventfd
constexpr unsigned k_entries = 256;
// With reads in flight the thread waits at most this long before it looks at its inbox again.
constexpr long long k_recheck_ns = 1'000'000;

void signal_fd(int fd) noexcept {
  std::uint64_t one = 1;
  while (::write(fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void clear_fd(int fd) noexcept {
  std::uint64_t n;
  while (::read(fd, &n, sizeof n) < 0 && errno == EINTR) {
  }
}

void prep_read(io_uring_sqe* sqe, op& o) noexcept {
  const op_args& a = A::args(o);
  if (o.code() == op_code::readv)
    io_uring_prep_readv(sqe, a.fd, static_cast<const iovec*>(a.iov), static_cast<unsigned>(a.iovcnt), a.offset);
  else
    io_uring_prep_read(sqe, a.fd, a.buf, static_cast<unsigned>(std::min(a.len, k_max_rw)), a.offset);
  sqe->user_data = reinterpret_cast<std::uintptr_t>(&o);
}

}  // namespace

bool cold_reader::start() noexcept {
  if (started()) return true;
  inbox_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  done_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  bool ring = false;
  if (inbox_fd_ >= 0 && done_fd_ >= 0) {
    io_uring_params p{};
    p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CLAMP;
    ring = io_uring_queue_init_params(k_entries, &ring_, &p) == 0;
    if (!ring) {
      p = io_uring_params{};
      ring = io_uring_queue_init_params(k_entries, &ring_, &p) == 0;
    }
  }
  if (ring) {
    const int base = thread_pool::calling_thread_nice();
    try {
      async_signals_blocked mask;  // the thread starts with it (sys/thread_signals.hpp)
      thread_ = std::thread([this, base] {
        (void)::pthread_setname_np(::pthread_self(), "unio-cold");
        (void)thread_pool::lower_calling_thread(base, nice_);
        run();
      });
      return true;
    } catch (...) {
      io_uring_queue_exit(&ring_);
    }
  }
  if (inbox_fd_ >= 0) ::close(inbox_fd_);
  if (done_fd_ >= 0) ::close(done_fd_);
  inbox_fd_ = done_fd_ = -1;
  return false;
}

void cold_reader::hand_over() noexcept {
  if (outbox_.empty()) return;
  outstanding_ += outbox_.size();
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox_.splice(outbox_);
  }
  if (busy_.load() == 0) wake_thread();
}

bool cold_reader::cancel(op& o) noexcept {
  if (outbox_.remove(o)) return true;
  std::lock_guard<std::mutex> lock(mu_);
  if (!inbox_.remove(o)) return false;
  --outstanding_;
  return true;
}

op_queue cold_reader::take_finished() noexcept {
  op_queue out;
  if (done_fd_ >= 0) clear_fd(done_fd_);
  std::lock_guard<std::mutex> lock(mu_);
  out.splice(finished_);
  outstanding_ -= out.size();
  return out;
}

void cold_reader::stop() noexcept {
  if (!started()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    while (op* o = inbox_.pop()) {
      A::res(*o) = -ECANCELED;
      finished_.push(*o);
    }
  }
  while (op* o = outbox_.pop()) {  // never handed over: give it back the same way
    A::res(*o) = -ECANCELED;
    ++outstanding_;
    std::lock_guard<std::mutex> lock(mu_);
    finished_.push(*o);
  }
  wake_thread();
  thread_.join();
  io_uring_queue_exit(&ring_);
  ::close(inbox_fd_);
  ::close(done_fd_);
  inbox_fd_ = done_fd_ = -1;
}

void cold_reader::wake_thread() noexcept { signal_fd(inbox_fd_); }

// The thread: take the inbox, submit it in one enter with the wait, hand finished reads back.
void cold_reader::run() noexcept {
  unsigned in_flight = 0;
  bool armed = false;
  for (;;) {
    if (!armed) {
      if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) {
        io_uring_prep_poll_add(sqe, inbox_fd_, POLLIN);
        sqe->user_data = k_inbox_poll;
        armed = true;
      }
    }
    op_queue batch;
    bool stopping;
    busy_.store(in_flight);  // before the inbox is looked at (see hand_over)
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch.splice(inbox_);
      stopping = stopping_;
    }
    in_flight += submit_inbox(batch);
    busy_.store(in_flight);
    if (stopping && in_flight == 0) return;
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec recheck{0, k_recheck_ns};
    int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, in_flight > 0 ? &recheck : nullptr, nullptr);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ETIME) {
      // The ring cannot wait: the reads it holds still finish; poll for them.
      (void)io_uring_peek_cqe(&ring_, &cqe);
    }
    op_queue done;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      if (cqe->user_data == k_inbox_poll) {
        clear_fd(inbox_fd_);
        armed = false;
        continue;
      }
      op& o = *reinterpret_cast<op*>(static_cast<std::uintptr_t>(cqe->user_data));
      A::res(o) = cqe->res;
      done.push(o);
      --in_flight;
    }
    io_uring_cq_advance(&ring_, seen);
    publish(done);
  }
}

// Prepares an SQE for each read of `batch`; when the SQ is full it is submitted first. Returns
// how many reads were queued on the ring.
unsigned cold_reader::submit_inbox(op_queue& batch) noexcept {
  unsigned n = 0;
  while (op* o = batch.front()) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
      int r = io_uring_submit(&ring_);
      if (r <= 0 && r != -EINTR) break;  // no room now: the rest go back to the inbox
      continue;
    }
    batch.pop();
    prep_read(sqe, *o);
    ++n;
  }
  if (!batch.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    batch.splice(inbox_);
    inbox_.splice(batch);
  }
  return n;
}

void cold_reader::publish(op_queue& done) noexcept {
  if (done.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    finished_.splice(done);
  }
  signal_fd(done_fd_);
}

}  // namespace unio::detail::uring
