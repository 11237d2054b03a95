#include "thread_pool.hpp"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <latch>
#include <system_error>

#include "sys/syscalls.hpp"
#include "sys/thread_signals.hpp"

namespace unio::detail {
namespace {

// The pool's marks in an op's cancel byte, both written only under queue_mu_ (the op's flags byte
// belongs to the backend, which reads it without the pool's lock):
constexpr std::uint8_t k_cancel = 0x01;  // cancel() asked: complete with ECANCELED, never run
constexpr std::uint8_t k_taken = 0x02;   // a worker has the op: too late to stop it

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

std::uint64_t now_ns() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

// getpriority's -1 is also a valid nice value: errno tells them apart.
int current_nice() noexcept {
  errno = 0;
  int n = ::getpriority(PRIO_PROCESS, 0);
  return errno == 0 ? n : 0;
}

}  // namespace

thread_pool::thread_pool(unsigned threads, unsigned spin_us, int nice, unsigned max_threads)
    : spin_us_(spin_us), nice_(nice), base_nice_(current_nice()),
      max_threads_(std::max(max_threads, std::max(threads, 1u))) {
  if (nice < 0 || nice > 19) throw std::system_error(EINVAL, std::generic_category(), "unio: pool nice (0-19)");
  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) throw std::system_error(errno, std::generic_category(), "unio: eventfd");
  if (threads == 0) threads = 1;
  core_ = threads;
  live_ = threads;
  std::latch started(threads);
  std::atomic<int> refused{0};
  try {
    workers_.reserve(threads);
    async_signals_blocked mask;  // the workers start with it (sys/thread_signals.hpp)
    for (unsigned i = 0; i < threads; ++i) {
      workers_.emplace_back([this, &started, &refused] {
        name_thread();
        if (int e = lower_priority(); e != 0) refused.store(e);
        started.count_down();
        work();
      });
    }
  } catch (...) {
    started.count_down(static_cast<std::ptrdiff_t>(threads - workers_.size()));
    started.wait();
    stop();
    ::close(event_fd_);
    throw;
  }
  started.wait();  // the workers are done with `started` and `refused`
  if (int e = refused.load(); e != 0) {
    stop();
    ::close(event_fd_);
    throw std::system_error(e, std::generic_category(), "unio: lowering the pool's priority (setpriority)");
  }
}

// "unio-pool" in top -H, perf and /proc/self/task/*/comm.
void thread_pool::name_thread() noexcept { (void)::pthread_setname_np(::pthread_self(), "unio-pool"); }

int thread_pool::lower_priority() const noexcept { return lower_calling_thread(base_nice_, nice_); }

int thread_pool::calling_thread_nice() noexcept { return current_nice(); }

int thread_pool::lower_calling_thread(int base, int steps) noexcept {
  if (steps == 0) return 0;
  const int nice = std::min(19, base + steps);
  // PRIO_PROCESS with 0 names the calling thread on Linux (per-thread nice values).
  if (::setpriority(PRIO_PROCESS, 0, nice) != 0) return errno;
  request_long_slice(nice);
  return 0;
}

// Linux 6.12's EEVDF lets a woken task preempt a running one at once when it asks for a shorter
// slice than the running one (PREEMPT_SHORT); a lower nice value alone does not (the running task
// keeps the CPU to the end of its slice). So workers ask for a long slice: the loop's thread
// (default slice), woken by a timer or a completion while both CPUs of a 2-vCPU VM run CPU-bound
// pool work (a scandir walk over a cached tree), then gets a CPU at once. Measured there: p99
// lateness of a 1 ms timer during the walk 1.6-2.6 ms without, 0.16-0.33 ms with. Kernels before
// 6.12 ignore the slice, and a refusal (a seccomp filter) only costs that latency: both are
// ignored.
void thread_pool::request_long_slice(int nice) noexcept {
  // struct sched_attr of <linux/sched/types.h>, which cannot be included beside glibc's <sched.h>
  // (both define sched_param); the kernel's ABI, version 1 (56 bytes).
  struct {
    std::uint32_t size, sched_policy;
    std::uint64_t sched_flags;
    std::int32_t sched_nice;
    std::uint32_t sched_priority;
    std::uint64_t sched_runtime, sched_deadline, sched_period;
    std::uint32_t sched_util_min, sched_util_max;
  } a{};
  static_assert(sizeof a == 56);
  a.size = sizeof a;
  a.sched_policy = SCHED_OTHER;
  a.sched_nice = nice;
  a.sched_runtime = 20'000'000;  // 20 ms; the kernel accepts 0.1-100 ms
  (void)::syscall(SYS_sched_setattr, 0, &a, 0);
}

thread_pool::~thread_pool() {
  stop();
  ::close(event_fd_);
}

void thread_pool::submit(op_queue& batch) {
  std::size_t n = batch.size();
  if (n == 0) return;
  outstanding_ += n;
  outstanding_blocking_ += count_blocking(batch);
  unsigned wake = 0;
  bool grow = false;
  {
    std::lock_guard lk(queue_mu_);
    queue_.splice(batch);
    queued_.fetch_add(n, std::memory_order_release);
    // A polling worker picks the batch up by itself. Otherwise wake one sleeper; it wakes the
    // next if work remains (take), so the futex wake-ups are spread over the workers instead of
    // all being paid by the loop's thread.
    if (spinners_.load(std::memory_order_acquire) == 0 && sleepers_ > 0) wake = 1;
    else grow = claim_extra();  // every worker waits on a device: no one would take the batch
  }
  if (wake != 0) queue_cv_.notify_one();
  if (grow) start_extra();
}

bool thread_pool::cancel(op& o) {
  std::lock_guard lk(queue_mu_);
  if ((A::cancel_requested(o) & k_taken) != 0) return false;
  if (A::state(o) != op_submitted) return false;
  A::cancel_requested(o) |= k_cancel;
  return true;
}

std::size_t thread_pool::drain(op_queue& out) {
  if (!has_finished()) return 0;
  op_queue got;
  {
    std::lock_guard lk(done_mu_);
    got.splice(done_);
    done_state_.fetch_and(k_sleeping, std::memory_order_acq_rel);  // count 0, the bit kept
  }
  std::size_t n = got.size();
  outstanding_ -= n;
  outstanding_blocking_ -= count_blocking(got);
  out.splice(got);
  return n;
}

std::size_t thread_pool::count_blocking(const op_queue& q) noexcept {
  std::size_t n = 0;
  q.for_each([&n](op& o) { n += (A::cancel_requested(o) & k_blocking) != 0 ? 1 : 0; });
  return n;
}

bool thread_pool::spin_for_finished(std::optional<std::chrono::nanoseconds> limit) const noexcept {
  std::uint64_t spin_ns = spin_us_ * 1000ull;
  if (limit && static_cast<std::uint64_t>(limit->count()) < spin_ns) spin_ns = static_cast<std::uint64_t>(limit->count());
  if (spin_ns == 0 || !polls()) return has_finished();
  std::uint64_t deadline = now_ns() + spin_ns;
  for (unsigned i = 0;; ++i) {
    if (has_finished()) return true;
    if ((i & 63) == 63 && now_ns() > deadline) return false;
    cpu_relax();
  }
}

bool thread_pool::prepare_sleep() noexcept {
  std::size_t cur = done_state_.load(std::memory_order_acquire);
  do {
    if ((cur >> 1) > 0) return false;  // finished ops wait: the bit is not set
  } while (!done_state_.compare_exchange_weak(cur, cur | k_sleeping, std::memory_order_acq_rel));
  return true;
}

void thread_pool::after_sleep() noexcept { end_sleep(); }

// The loop takes the sleep bit back. Only a worker's publish() clears it otherwise, and that
// worker then writes the eventfd exactly once: if the bit is already clear, that write (done, or
// a few instructions away) is waited for and consumed here. A nonblocking read could run before
// it, and the eventfd would then wake the loop's next wait (or an embedding host's) for nothing.
void thread_pool::end_sleep() noexcept {
  if ((done_state_.fetch_and(~k_sleeping, std::memory_order_acq_rel) & k_sleeping) != 0) return;
  std::uint64_t v;
  for (;;) {
    if (::read(event_fd_, &v, sizeof v) >= 0) return;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return;  // not on an eventfd; never wait for what cannot come
    pollfd p{event_fd_, POLLIN, 0};
    (void)::poll(&p, 1, -1);
  }
}

void thread_pool::cancel_queued() {
  op_queue left;
  {
    std::lock_guard lk(queue_mu_);
    left.splice(queue_);
    queued_.store(0, std::memory_order_relaxed);
  }
  while (op* o = left.pop()) finish(*o, -ECANCELED);
}

void thread_pool::stop() {
  {
    std::lock_guard lk(queue_mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  queue_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  join_extras(true);
  cancel_queued();  // nobody runs them now
}

void thread_pool::work() {
  op_queue mine;
  bool grow = false;
  for (bool ran = false; take(mine, false, ran, grow); ran = true) {
    if (grow) start_extra();
    run(mine);
  }
}

void thread_pool::extra_work() noexcept {
  name_thread();
  (void)lower_priority();  // the core workers proved it works; a refusal only costs latency
  op_queue mine;
  bool grow = false;
  for (bool ran = false; take(mine, true, ran, grow); ran = true) {
    if (grow) start_extra();
    run(mine);
  }
  std::lock_guard lk(queue_mu_);
  --live_;
  ended_.push_back(std::this_thread::get_id());  // joined by the next start_extra() or stop()
}

void thread_pool::run(op_queue& mine) {
  op_queue finished;
  const std::uint64_t t0 = now_ns();
  const bool blocking = any_blocking(mine);
  std::uint64_t served = 0;  // bit i: the batch's op i completed by start_reads
  if (mine.size() > 1 && (blocking || waits())) served = start_reads(mine);
  for (unsigned i = 0; op* o = mine.pop(); ++i) {
    const std::uint8_t marks = A::cancel_requested(*o);
    if ((served >> i & 1) == 0) A::res(*o) = (marks & k_cancel) != 0 ? -ECANCELED : sys::perform(*o);
    finished.push(*o);
  }
  returning_.fetch_add(1, std::memory_order_relaxed);  // until take() has the lock
  if (blocking) blocking_.fetch_sub(1, std::memory_order_relaxed);
  // Batch times averaged with weight 1/8 (workers race on it, harmlessly: it is a hint).
  const std::uint64_t took = now_ns() - t0, avg = batch_ns_.load(std::memory_order_relaxed);
  batch_ns_.store(avg - avg / 8 + took / 8, std::memory_order_relaxed);
  publish(finished);
}

std::uint64_t thread_pool::start_reads(op_queue& batch) noexcept {
  std::uint64_t served = 0;
  unsigned i = 0;
  batch.for_each([&](op& o) {
    if ((A::cancel_requested(o) & (k_prefetch | k_cancel)) == k_prefetch) {
      const std::int64_t r = sys::try_read_nowait(o);
      if (r == 0 || (r > 0 && static_cast<std::uint64_t>(r) == requested_bytes(o))) {
        A::res(o) = r;
        served |= std::uint64_t{1} << i;
      }
    }
    ++i;
  });
  return served;
}

bool thread_pool::any_blocking(const op_queue& batch) noexcept {
  bool any = false;
  batch.for_each([&any](op& o) { any |= (A::cancel_requested(o) & k_blocking) != 0; });
  return any;
}

void thread_pool::start_extra() noexcept {
  join_extras(false);
  try {
    async_signals_blocked mask;  // as the core workers (a worker calling this has them blocked)
    std::thread t([this] { extra_work(); });
    std::lock_guard lk(queue_mu_);
    extras_.push_back(std::move(t));
  } catch (...) {
    std::lock_guard lk(queue_mu_);  // no thread: give the slot back
    --live_;
  }
}

void thread_pool::join_extras(bool all) noexcept {
  for (;;) {
    std::vector<std::thread> done;
    {
      std::lock_guard lk(queue_mu_);
      for (std::size_t i = 0; i < extras_.size();) {
        const auto id = extras_[i].get_id();
        auto e = std::find(ended_.begin(), ended_.end(), id);
        if (!all && e == ended_.end()) {
          ++i;
          continue;
        }
        if (e != ended_.end()) ended_.erase(e);
        done.push_back(std::move(extras_[i]));
        extras_[i] = std::move(extras_.back());
        extras_.pop_back();
      }
    }
    // An extra worker that is still starting another adds it before it ends: join, then look again.
    for (auto& t : done) t.join();
    if (!all || done.empty()) return;
  }
}

bool thread_pool::claim_extra() noexcept {
  if (queue_.empty() || sleepers_ > 0 || spinners_.load(std::memory_order_acquire) > 0 ||
      returning_.load(std::memory_order_relaxed) > 0 || stopping_)
    return false;
  // Reads that go in batches wait for the next worker that finishes its batch, unless a whole
  // batch of them waits or every worker waits (on a file that may never answer).
  const unsigned blocked = blocking_.load(std::memory_order_relaxed);
  if (read_batch_next() && queue_.size() < k_read_batch && blocked < live_) return false;
  if (live_ >= max_threads_ || live_ - std::min(blocked, live_) >= core_) return false;
  ++live_;
  return true;
}

bool thread_pool::take(op_queue& out, bool linger, bool ran, bool& grow) {
  grow = false;
  // Poll for a while (one worker at a time) before sleeping: a futex wake-up across cores costs
  // far more than the work it would deliver.
  const bool may_spin = polls() && blocking_.load(std::memory_order_relaxed) == 0;
  bool spinning = may_spin && spinners_.fetch_add(1, std::memory_order_acq_rel) == 0;
  if (may_spin && !spinning) spinners_.fetch_sub(1, std::memory_order_acq_rel);
  std::uint64_t deadline = spinning ? now_ns() + spin_us_ * 1000ull : 0;
  std::unique_lock lk(queue_mu_, std::defer_lock);
  for (unsigned i = 0; spinning; ++i) {
    if (queued_.load(std::memory_order_acquire) > 0) {
      lk.lock();
      if (!queue_.empty()) break;
      lk.unlock();
    }
    if ((i & 63) == 63 && now_ns() > deadline) break;
    cpu_relax();
  }
  if (spinning) spinners_.fetch_sub(1, std::memory_order_acq_rel);
  if (!lk.owns_lock()) lk.lock();
  if (ran) returning_.fetch_sub(1, std::memory_order_relaxed);
  while (queue_.empty() && !stopping_) {
    ++sleepers_;
    bool idle_too_long = false;
    if (linger) idle_too_long = queue_cv_.wait_for(lk, k_linger) == std::cv_status::timeout;
    else queue_cv_.wait(lk);
    --sleepers_;
    if (idle_too_long && queue_.empty() && live_ > core_) return false;
  }
  if (stopping_) return false;
  // With a long queue take a few ops per lock round trip, leaving enough for the other workers.
  // An op marked blocking is taken alone (nothing waits behind an fsync). Reads that wait go in
  // batches: up to k_read_batch prefetchable reads of the front op's fd (run() starts them all at
  // once), and a sleeping worker is woken for the rest (chain, below).
  std::size_t n = 0;
  if (read_batch_next()) {
    // One fd only: a file that hangs (a dead NFS server, a stuck FUSE daemon) or sits on a slow
    // disk holds up no read of another file.
    const int fd = A::args(*queue_.front()).fd;
    n = queue_.extract_if(out, k_read_batch, k_read_window, [fd](op& o) {
      return (A::cancel_requested(o) & k_prefetch) != 0 && A::args(o).fd == fd;
    });
    out.for_each([](op& o) { A::cancel_requested(o) |= k_taken; });
  } else if ((A::cancel_requested(*queue_.front()) & k_blocking) != 0) {
    take_front(out, n);
  } else {
    const std::size_t most = queue_.size() >= 16 ? 4 : 1;
    while (n < most && !queue_.empty() && (A::cancel_requested(*queue_.front()) & k_blocking) == 0) take_front(out, n);
  }
  if (any_blocking(out)) blocking_.fetch_add(1, std::memory_order_relaxed);
  queued_.fetch_sub(n, std::memory_order_release);
  grow = claim_extra();
  bool chain = !queue_.empty() && sleepers_ > 0 && spinners_.load(std::memory_order_acquire) == 0;
  lk.unlock();
  if (chain) queue_cv_.notify_one();
  return true;
}

bool thread_pool::read_batch_next() const noexcept {
  const std::uint8_t marks = A::cancel_requested(*queue_.front());
  return (marks & k_prefetch) != 0 && ((marks & k_blocking) != 0 || waits());
}

void thread_pool::take_front(op_queue& out, std::size_t& n) noexcept {
  op* o = queue_.pop();
  A::cancel_requested(*o) |= k_taken;
  out.push(*o);
  ++n;
}

void thread_pool::finish(op& o, std::int64_t res) {
  A::res(o) = res;
  op_queue one;
  one.push(o);
  publish(one);
}

void thread_pool::publish(op_queue& finished) {
  // k_taken stays set: the loop resets the op's cancel byte when it is next submitted, after
  // drain() has synchronised with this thread.
  const std::size_t add = finished.size() << 1;
  std::size_t was;
  {
    std::lock_guard lk(done_mu_);
    done_.splice(finished);
    was = done_state_.load(std::memory_order_relaxed);
    while (!done_state_.compare_exchange_weak(was, (was + add) & ~k_sleeping, std::memory_order_acq_rel)) {
    }
  }
  if ((was & k_sleeping) != 0) {
    std::uint64_t one = 1;
    while (::write(event_fd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }
}

}  // namespace unio::detail
