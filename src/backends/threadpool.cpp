// The threadpool backend: file ops run as blocking system calls on the loop's worker threads
// (the libuv/Node.js model), sockets on epoll readiness. Every operation is available and the
// loop never blocks on a file, whatever the file system or the kernel.
//
// What it does beyond libuv (a cross-core wake-up costs 40-55 us on a 2-vCPU VM, measured with a
// pipe ping-pong between two threads):
//  - ops submitted during one loop turn are handed to the pool as one batch;
//  - with loop_options::inline_nowait, reads are first tried on the loop's thread with
//    preadv2(RWF_NOWAIT), which the kernel completes only from the page cache and refuses
//    (EAGAIN) when it would have to wait. A page-cache hit then costs one syscall and no
//    hand-off. With more than one read in a batch, two thirds go to the pool, so both cores
//    work while the loop's thread also runs the handlers (measured against 1/2 and 1/4 at
//    depth 128 with a pool of 4: 1/3 inline was best). When the tries keep missing (a cold
//    working set), src/nowait_policy.hpp thins them out, since a miss makes the loop's thread
//    start the readahead I/O;
//  - finished ops come back in batches, and the loop polls briefly before it sleeps;
//  - a read expected to wait for the disk (its try, or one on its fd in the same turn, was
//    refused, or 3 in 4 recent tries were) and fsync/fdatasync are marked blocking: the pool
//    grows past pool_size for them (thread_pool.hpp, loop_options::pool_max_threads), while
//    cached work keeps pool_size workers;
//  - reads of buffered files are marked prefetchable: a worker takes several reads of one fd that
//    wait (marked, or while the pool's batches take a device's time) at once and starts them
//    all with RWF_NOWAIT before reading them (thread_pool.hpp), so a cold working set gets as
//    many reads in flight as the loop submits from a few workers.
#include <fcntl.h>
#include <time.h>

#include <cerrno>

#include <memory>

#include "backend.hpp"
#include "delegation.hpp"
#include "fd_facts.hpp"
#include "nowait_policy.hpp"
#include "reactor.hpp"
#include "sys/syscalls.hpp"
#include "thread_pool.hpp"

namespace unio::detail {
namespace {

class threadpool_backend final : public backend {
 public:
  explicit threadpool_backend(backend_env& env)
      : env_(env),
        reactor_(env),
        pool_(env, reactor_),
        inline_nowait_(env.options().inline_nowait) {
    pool_.pool();  // every file op runs there: start it now
    reactor_.delegate_to(pending_);  // ready sendfile ops join the turn's batch (flush)
  }

  std::string_view name() const noexcept override { return "threadpool"; }

  void submit(op& o) override {
    if (needs_readiness(o, env_)) reactor_.submit(o);
    else pending_.push(o);
  }

  void cancel(op& o) override {
    if (pending_.remove(o)) env_.complete(o, -ECANCELED);
    else if (!reactor_.cancel(o)) pool_.cancel(o);
  }

  void poll(std::optional<std::chrono::nanoseconds> timeout) override {
    const poll_deadline until(timeout);
    std::size_t done = flush();
    done += drain();
    bool zero = timeout && timeout->count() <= 0;
    thread_pool& workers = *pool_.started();
    if (done == 0 && !zero && workers.outstanding() > 0 && !workers.only_blocking_outstanding() &&
        workers.spin_for_finished(until.left()))
      done += drain();
    if (done > 0) timeout = std::chrono::nanoseconds(0);
    zero = timeout && timeout->count() <= 0;
    if (!zero && !pool_.may_sleep()) timeout = std::chrono::nanoseconds(0);
    reactor_.wait(until.rest(timeout));
    pool_.after_sleep();
    drain();
  }

  void wake() noexcept override { reactor_.wake(); }

  // A number opened or closed through the loop: what was known about its file no longer holds.
  void fd_opened(int fd) noexcept override { facts_.forget(fd); }
  void fd_closing(int fd) noexcept override { facts_.forget(fd); }

  // "pool_polls": 1 when the loop would poll for the pool's results before sleeping (the pool's
  // recent mean batch time is within spin_us), 0 when not or no pool runs yet.
  std::int64_t test_hook(std::string_view name, std::int64_t) override {
    thread_pool* workers = pool_.started();
    if (name == "pool_polls") return workers != nullptr && workers->polls() ? 1 : 0;
    return 0;
  }

  int host_fd() const noexcept override { return reactor_.epoll_fd(); }
  std::optional<std::chrono::nanoseconds> prepare_host_wait() override {
    std::size_t done = flush() + drain();
    done += reactor_.settle().completed;  // a sendfile handed off joins pending_
    done += flush() + drain();
    // As poll() does before it sleeps: a short spin for a result saves a cross-core wake-up.
    thread_pool* workers = pool_.started();
    if (done == 0 && workers != nullptr && workers->outstanding() > 0 && !workers->only_blocking_outstanding() &&
        workers->spin_for_finished())
      done += drain();
    if (done > 0 || !pool_.may_sleep()) return std::chrono::nanoseconds(0);
    return std::nullopt;
  }

  void shutdown() override {
    while (op* o = pending_.pop()) env_.complete(*o, -ECANCELED);
    reactor_.shutdown();
    pool_.shutdown();
  }

 private:
  // Hands this turn's file ops to the pool, after serving page-cache reads inline.
  std::size_t flush() {
    if (pending_.empty()) return 0;
    std::size_t completed = 0;
    std::size_t n = pending_.size();
    std::size_t inline_budget = n <= 1 ? n : n / 3;
    int refused_fd = -1;  // a read on it was refused this turn: its other reads would miss too
    while (op* o = pending_.pop()) {
      if (is_read(o->code())) {
        const int fd = A::args(*o).fd;
        if (inline_nowait_ && !known_direct(fd)) {
          if (fd != refused_fd && inline_budget > 0) {
            --inline_budget;
            try_result t = try_inline(*o);
            if (t == try_result::hit) {
              ++completed;
              continue;
            }
            if (t == try_result::refused) refused_fd = fd;
          }
          thread_pool::mark_prefetchable(*o);
        }
        if (fd == refused_fd || nowait_.predicts_miss()) thread_pool::mark_blocking(*o);
      } else if (o->code() == op_code::fsync || o->code() == op_code::fdatasync) {
        thread_pool::mark_blocking(*o);
      }
      pool_.push(*o);
    }
    pool_.hand_over();
    return completed;
  }

  // hit: completed inline; refused: the kernel said it would wait; skipped: not tried, or failed
  // for another reason.
  enum class try_result { hit, refused, skipped };
  // Tries a read on the loop's thread with RWF_NOWAIT (if the policy allows); `hit` when it
  // completed the op. Only a full read (or end of file) is final: a partial one may have stopped
  // at an uncached page, so the pool redoes it rather than return a surprising short read.
  try_result try_inline(op& o) {
    int fd = A::args(o).fd;
    std::uint64_t t0 = monotonic_ns();
    std::uint64_t want = requested_bytes(o);
    auto cached = [&] { return sys::pages_cached(fd, A::args(o).offset, want); };
    if (!nowait_.should_try(fd, t0, want, cached)) return try_result::skipped;
    std::int64_t r = sys::try_read_nowait(o);
    bool hit = r == 0 || (r > 0 && static_cast<std::uint64_t>(r) == want);
    bool refused = r == -EAGAIN || (r > 0 && !hit);
    nowait_.record(fd, hit, want, monotonic_ns() - t0, refused);
    if (refused) return try_result::refused;
    if (!hit) return try_result::skipped;  // an error the pool will report, or meet again
    env_.complete(o, r);
    return try_result::hit;
  }

  // Whether `fd` is O_DIRECT (fcntl, remembered in fd_facts): a NOWAIT try of a direct read still
  // waits for the device. A stale answer (F_SETFL behind the loop's back) only costs a hand-off,
  // or a slow try (the policy's slow strikes stop those), until the fact expires.
  bool known_direct(int fd) {
    int flags;
    if (const fd_facts::facts* f = facts_.find(fd)) {
      flags = f->flags;
    } else {
      flags = ::fcntl(fd, F_GETFL);
      if (flags >= 0) facts_.put(fd, flags);
    }
    return flags >= 0 && (flags & O_DIRECT) != 0;
  }

  static std::uint64_t monotonic_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
  }

  std::size_t drain() { return pool_.drain(); }

  backend_env& env_;
  reactor reactor_;
  delegation pool_;
  const bool inline_nowait_;
  nowait_policy nowait_;
  fd_facts facts_;
  op_queue pending_;
};

std::array<bool, op_code_count> all_native(const loop_options&) {
  std::array<bool, op_code_count> a{};
  a.fill(true);
  return a;
}

}  // namespace

extern const backend_descriptor threadpool_descriptor = {
    "threadpool",
    [] { return std::string(); },
    all_native,
    [](backend_env& env) -> std::unique_ptr<backend> { return std::make_unique<threadpool_backend>(env); },
};

}  // namespace unio::detail
