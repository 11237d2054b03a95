// The posix_aio backend: glibc's POSIX AIO (aio_read, aio_write, aio_fsync) for positioned
// reads and writes on files and for fsync/fdatasync; sockets and pipes through the reactor;
// everything else on the loop's thread pool.
//
// What glibc does underneath (glibc 2.36, sysdeps/pthread/aio_misc.c):
// POSIX AIO on Linux is a user-space thread pool, not a kernel interface. aio_read takes one
// process-wide mutex and appends the request to a queue per file descriptor. An fd is served by
// at most ONE helper thread at a time, which runs the fd's requests one after another with
// plain pread/pwrite/fsync; a second request on the same fd waits behind the first, so a QD32
// random read on one file is one thread doing 32 preads in a row. Helper threads are created on
// demand up to aio_threads (20 by default), are detached, and exit after aio_idle_time (1 s)
// without work. A pread that fails with ESPIPE (a pipe or socket) is retried by glibc as a plain
// read() at the current position, which could block a helper forever on an idle pipe, so reads
// and writes reach glibc only for fds that are not pipes or sockets (one fstat per op).
// The glibc state is process-global: aio_init is called once per process, before the first
// request, with loop_options::posix_aio_threads / posix_aio_idle_s (see loop.hpp).
//
// Completion design, and why. glibc can notify a completion three ways:
//  - SIGEV_THREAD: glibc 2.36 starts a NEW detached thread (pthread_create + malloc) for every
//    completed request (__aio_notify_only). Measured here: 200 completions ran on 200 distinct
//    threads. At hundreds of thousands of ops per second that is not an option.
//  - SIGEV_SIGNAL (+ SIGEV_THREAD_ID/signalfd): needs a signal number reserved process-wide and
//    blocked in every thread; a library must not take one from its host program.
//  - SIGEV_NONE + aio_error/aio_suspend: what fio's posixaio engine does. Chosen.
//
// Who notices a completion. While the loop is awake it finds finished ops itself: every turn it
// scans its in-flight aiocbs with aio_error (a plain load, no syscall) and completes them, with
// no other thread involved. When it finds none, it first waits in aio_suspend itself for at most
// loop_options::spin_us (50 us): glibc's helper then wakes the loop directly, one wake-up, as in
// fio's posixaio engine (wake(), post and parked sockets wait at most that long meanwhile). The
// loop cannot sleep LONGER in aio_suspend (it must also wait on epoll for sockets, the pool and
// wake()), so when nothing finished by then and it is about to sleep with ops in glibc, it hands
// their list to a reaper thread (one per backend, started on first use, named "unio-paio-reap"; a
// condition variable wakes it), which waits in aio_suspend, claims whatever finished, and writes
// the completion eventfd (watched by the reactor) once for that sleep. The loop then takes the
// claimed ops as one batch. While the loop is awake the reaper is parked on its condition
// variable, so glibc's helper does not have to wake it (a futex wake) per completion. The claim
// protocol: slot::status is changed by the reaper only under mu_ and while loop_sleeping_ is
// set; the loop sets and clears loop_sleeping_ under mu_, so while it is awake it owns every
// status and scans without a lock. Measured (unio-bench, QD32 cached randread, 2 loaded vCPUs):
// busy-polling aio_error for spin_us before sleeping made things worse (0.63-0.67x fio against
// 0.75-0.79x without), because the spinning loop takes CPU from glibc's helper, the thread that
// does the reads; the short aio_suspend wait instead raised it to 0.69-1.01x (median 0.89x).
// A cross-core wake-up costs 43-55 us on a 2-vCPU VM (a pipe ping-pong between two threads), so the
// reaper writes the eventfd at most once per loop sleep, never per op.
//
// aio_suspend cannot be extended while it waits: if the loop wakes for another reason (a timer,
// a socket, post), submits more and sleeps again, the reaper may still be waiting on the older
// list. It therefore waits with a short timeout (k_rescan_ns, 1 ms) and then takes the newer
// list. Trade-off: in that case an op that finishes while the reaper sleeps on OTHER, slower ops
// (a long fsync, a cache miss on another file) is noticed up to 1 ms late, and while only slow
// ops are in flight and the loop sleeps the reaper wakes 1000 times a second (each aio_suspend
// walks glibc's request lists under its global mutex). The alternatives are worse for a
// library: a signal to interrupt aio_suspend (EINTR), or a permanently parked "kick" request (an
// aio_read on a private pipe, which pins one glibc helper thread per loop and costs two wake-ups
// per kick).
//
// Before the loop reuses a finished aiocb, glibc must be done with it: glibc stores the result
// under its request mutex and keeps touching the aiocb (notification, list removal) until it
// releases that mutex, so after observing results the harvester calls aio_suspend once on a
// finished aiocb, which only takes and drops that mutex (a barrier, no wait).
//
// readv/writev go to the pool: glibc has no vectored AIO, and lio_listio would turn one iovec
// into one request per segment (each needs its own slot, glibc runs them as separate preads,
// a short read in the middle would not stop the rest, and a writev would lose its single-call
// atomicity against other writers). preadv2/pwritev2 on a pool thread keeps the exact result.
// Reads and writes at current_position also go to the pool (or the reactor for pipes/sockets):
// AIO has no "current position".
//
// aiocbs come from a fixed table of queue_depth slots (no allocation per op); an op finding no
// free slot, or refused by glibc with EAGAIN (out of memory or threads), waits for a later turn
// and is never failed. Ops delegated to the pool are handed over once per turn, as one batch.
// Cancel: an op not yet handed to glibc or the pool completes with ECANCELED; one in glibc
// completes with its own result (glibc 2.36's aio_cancel of some of an fd's queued requests can
// strand the fd's other queued requests: see cancel()). Shutdown cancels everything glibc
// holds (cancelling all of them strands nothing: a request left behind is still found and
// cancelled), joins the reaper, waits for the rest in aio_suspend on the loop's thread, then
// stops the pool.
//
// fork: glibc keeps its AIO state (the request queues, how many helper threads run and how many
// are idle) in the process, and fork() copies it without the threads. A child's requests then
// wait for idle helpers that do not exist, and never run (seen: a forked test child's loop slept
// for ever with 48 requests queued in glibc). So in a child forked from a process that has
// created a posix_aio loop, posix_aio is unavailable, with that reason; a child of a process that
// never did uses it as usual.
#include <aio.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "backend.hpp"
#include "reactor.hpp"
#include "sys/syscalls.hpp"
#include "sys/thread_signals.hpp"
#include "delegation.hpp"

namespace unio::detail {
namespace {

// How long the reaper sleeps in aio_suspend before it looks for aiocbs added meanwhile.
constexpr long k_rescan_ns = 1'000'000;
// How long the loop sleeps at most while ops wait for a retry after glibc said EAGAIN with
// nothing of ours in flight (no completion would wake it).
constexpr std::chrono::nanoseconds k_retry_wait{1'000'000};

bool paio_capable(op_code c) noexcept { return traits(c).posix_aio; }

// Whether this process has created a posix_aio loop, and whether the process it was forked from
// had (see the top of the file).
std::atomic<bool> g_aio_used{false};
std::atomic<bool> g_aio_inherited{false};

void aio_after_fork_in_child() noexcept {
  if (g_aio_used.load(std::memory_order_relaxed)) g_aio_inherited.store(true, std::memory_order_relaxed);
}

// glibc's AIO tuning is process-global and only applies before the first request.
void init_glibc_aio(const loop_options& o) {
  static std::once_flag once;
  std::call_once(once, [&] {
    (void)::pthread_atfork(nullptr, nullptr, aio_after_fork_in_child);
    g_aio_used.store(true, std::memory_order_relaxed);
    aioinit ai{};
    ai.aio_threads = o.posix_aio_threads != 0 ? static_cast<int>(std::min(o.posix_aio_threads, 1u << 16)) : 20;
    ai.aio_num = static_cast<int>(std::clamp(o.queue_depth, 64u, 1u << 16));
    ai.aio_idle_time = o.posix_aio_idle_s != 0 ? static_cast<int>(std::min(o.posix_aio_idle_s, 1u << 20)) : 1;
    ::aio_init(&ai);
  });
}

class posix_aio_backend final : public backend {
 public:
  explicit posix_aio_backend(backend_env& env)
      : env_(env), reactor_(env), pool_(env, reactor_), depth_(env.options().queue_depth ? env.options().queue_depth : 256) {
    init_glibc_aio(env.options());
    event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (event_fd_ < 0) throw std::system_error(errno, std::generic_category(), "unio: eventfd");
    reactor_.watch_extra(event_fd_);
    slots_ = std::make_unique<slot[]>(depth_);
    free_.reserve(depth_);
    for (unsigned i = depth_; i > 0; --i) free_.push_back(i - 1);
    inflight_.reserve(depth_);
    mine_.reserve(depth_);
    taken_.reserve(depth_);
    list_.reserve(depth_);
    sleep_set_.reserve(depth_);
    done_.reserve(depth_);
  }

  ~posix_aio_backend() override {
    stop_reaper();
    ::close(event_fd_);
  }

  std::string_view name() const noexcept override { return "posix_aio"; }

  void submit(op& o) override {
    if (needs_readiness(o, env_)) reactor_.submit(o);
    else if (o.code() == op_code::nop) nops_.push(o);
    else if (goes_to_aio(o)) waiting_.push(o);
    else pool_.push(o);
  }

  void cancel(op& o) override {
    if (waiting_.remove(o) || nops_.remove(o)) {
      env_.complete(o, -ECANCELED);
    } else if ((A::flags(o) & k_in_glibc) != 0) {
      // Not aio_cancel: in glibc 2.36, cancelling some of an fd's queued requests while one of
      // them runs can leave the others queued for good, never run (100 of 200 reads of one fd,
      // half of them cancelled, hung within a few rounds). The op completes with its own result.
    } else if (!reactor_.cancel(o)) {
      pool_.cancel(o);
    }
  }

  void poll(std::optional<std::chrono::nanoseconds> timeout) override {
    const poll_deadline until(timeout);
    end_host_sleep();
    pool_.hand_over();  // once per turn, as one batch (cancellable until then)
    std::size_t done = complete_nops() + submit_waiting() + harvest() + drain_pool();
    if (done > 0) timeout = std::chrono::nanoseconds(0);
    if (!waiting_.empty() && in_glibc_ == 0 && (!timeout || *timeout > k_retry_wait)) timeout = k_retry_wait;
    bool zero = timeout && timeout->count() <= 0;
    if (!zero && in_glibc_ > 0 && wait_briefly(timeout) > 0) zero = true;
    bool aio_sleeps = !zero && in_glibc_ > 0;
    if (aio_sleeps && !prepare_sleep()) zero = true, aio_sleeps = false;
    if (!zero && !pool_.may_sleep()) zero = true;
    if (zero) timeout = std::chrono::nanoseconds(0);
    (void)reactor_.wait(until.rest(timeout));
    pool_.after_sleep();
    if (aio_sleeps) after_sleep();
    harvest();
    drain_pool();
  }

  void wake() noexcept override { reactor_.wake(); }

  int host_fd() const noexcept override { return reactor_.epoll_fd(); }
  // With ops in glibc the reaper is told the loop sleeps (it writes the eventfd for the first that
  // finishes); the next poll() ends that.
  std::optional<std::chrono::nanoseconds> prepare_host_wait() override {
    end_host_sleep();
    pool_.hand_over();
    std::size_t done = complete_nops() + submit_waiting() + harvest() + drain_pool();
    done += reactor_.settle().completed;
    pool_.hand_over();
    if (done > 0) return std::chrono::nanoseconds(0);
    if (in_glibc_ > 0) {
      if (!prepare_sleep()) return std::chrono::nanoseconds(0);
      host_sleeps_ = true;
    }
    if (!pool_.may_sleep()) return std::chrono::nanoseconds(0);
    if (!waiting_.empty() && in_glibc_ == 0) return k_retry_wait;
    return std::nullopt;
  }

  void shutdown() override {
    while (op* o = waiting_.pop()) env_.complete(*o, -ECANCELED);
    while (op* o = nops_.pop()) env_.complete(*o, -ECANCELED);
    reactor_.shutdown();
    stop_reaper();
    {
      std::lock_guard lk(mu_);  // normally empty: after_sleep took what the reaper claimed
      taken_.insert(taken_.end(), done_.begin(), done_.end());
      done_.clear();
    }
    // glibc can drop what no helper thread has started; wait for the rest here.
    for (unsigned idx : inflight_) (void)::aio_cancel(slots_[idx].cb.aio_fildes, &slots_[idx].cb);
    for (;;) {
      harvest();
      if (inflight_.empty()) break;
      std::vector<const aiocb*> list;
      for (unsigned idx : inflight_) list.push_back(&slots_[idx].cb);
      (void)::aio_suspend(list.data(), static_cast<int>(list.size()), nullptr);
    }
    pool_.shutdown();
  }

 private:
  static constexpr std::uint8_t k_in_glibc = op_flag::aio_in_flight;
  // slot::status
  static constexpr std::uint8_t k_free = 0;     // the loop owns the slot (free, or being filled)
  static constexpr std::uint8_t k_running = 1;  // in glibc; whoever sees it finished claims it
  static constexpr std::uint8_t k_reaped = 2;   // claimed by the reaper, on done_

  struct slot {
    aiocb cb{};
    op* o = nullptr;            // loop thread only
    unsigned pos = 0;           // index in inflight_ (loop thread only)
    std::uint8_t status = k_free;  // guarded by mu_
  };

  bool goes_to_aio(op& o) const noexcept {
    if (!paio_capable(o.code())) return false;
    if (o.code() == op_code::fsync || o.code() == op_code::fdatasync) return true;
    if (A::args(o).offset == current_position) return false;
    // glibc turns a pread/pwrite that fails with ESPIPE into read()/write() at the current
    // position (a blocking read on an idle pipe would pin a helper thread forever): pipes and
    // sockets go to the pool, which reports ESPIPE like the other backends.
    struct stat st;
    if (::fstat(A::args(o).fd, &st) != 0) return false;  // the pool reports EBADF
    return !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode);
  }

  // Hands one op to glibc; returns 0 or an errno value.
  static int start(aiocb& cb, op& o) noexcept {
    const op_args& a = A::args(o);
    std::memset(&cb, 0, sizeof cb);
    cb.aio_fildes = a.fd;
    cb.aio_sigevent.sigev_notify = SIGEV_NONE;
    int r;
    switch (o.code()) {
      case op_code::read:
      case op_code::write:
        cb.aio_offset = static_cast<off_t>(a.offset);
        cb.aio_buf = a.buf;
        cb.aio_nbytes = a.len;
        r = o.code() == op_code::read ? ::aio_read(&cb) : ::aio_write(&cb);
        break;
      case op_code::fsync: r = ::aio_fsync(O_SYNC, &cb); break;
      default: r = ::aio_fsync(O_DSYNC, &cb); break;
    }
    return r == 0 ? 0 : errno;
  }

  // Hands waiting ops to glibc while slots are free; returns how many failed at once.
  std::size_t submit_waiting() {
    std::size_t failed = 0;
    while (!waiting_.empty() && !free_.empty()) {
      op* o = waiting_.pop();
      unsigned idx = free_.back();
      free_.pop_back();
      slot& s = slots_[idx];
      int e = start(s.cb, *o);
      if (e == 0) {
        s.o = o;
        s.pos = static_cast<unsigned>(inflight_.size());
        inflight_.push_back(idx);
        A::word(*o) = idx;
        set_flag(*o, k_in_glibc);
        s.status = k_running;
        ++in_glibc_;
        continue;
      }
      free_.push_back(idx);
      if (e == EAGAIN) {
        // glibc is out of memory or threads for now: retry on a later turn, in order.
        op_queue rest;
        rest.push(*o);
        rest.splice(waiting_);
        waiting_.splice(rest);
        break;
      }
      env_.complete(*o, -e);  // EBADF from aio_fsync, EINVAL...
      ++failed;
    }
    return failed;
  }

  // Completes every op of ours that glibc has finished: those the reaper claimed while the loop
  // slept (taken in after_sleep), and those the loop finds itself with aio_error. While the loop
  // is awake the reaper claims nothing (it only claims while loop_sleeping_ is set, and the loop
  // sets and clears that under mu_), so this scan needs no lock. Returns how many.
  std::size_t harvest() {
    if (in_glibc_ == 0) return 0;
    for (unsigned idx : inflight_) {
      slot& s = slots_[idx];
      if (s.status == k_running && ::aio_error(&s.cb) != EINPROGRESS) {
        s.status = k_free;
        mine_.push_back(idx);
      }
    }
    if (!mine_.empty()) barrier(mine_.front());
    std::size_t n = taken_.size() + mine_.size();
    for (unsigned idx : taken_) finish(idx);
    for (unsigned idx : mine_) finish(idx);
    taken_.clear();
    mine_.clear();
    return n;
  }

  // glibc stores the result under its request mutex and keeps using the aiocb until it drops
  // that mutex; aio_suspend on a finished aiocb takes and releases it without waiting.
  void barrier(unsigned idx) const noexcept {
    const aiocb* one = &slots_[idx].cb;
    timespec zero{};
    (void)::aio_suspend(&one, 1, &zero);
  }

  void finish(unsigned idx) {
    slot& s = slots_[idx];
    op& o = *s.o;
    int err = ::aio_error(&s.cb);
    ssize_t r = ::aio_return(&s.cb);
    s.o = nullptr;
    s.status = k_free;  // k_reaped slots: the reaper no longer looks at them (done_ was taken)
    unsigned last = inflight_.back();
    inflight_[s.pos] = last;
    slots_[last].pos = s.pos;
    inflight_.pop_back();
    free_.push_back(idx);
    A::flags(o) &= static_cast<std::uint8_t>(~k_in_glibc);
    --in_glibc_;
    env_.complete(o, err == 0 ? static_cast<std::int64_t>(r) : -static_cast<std::int64_t>(err));
  }

  // Before handing the wait to the reaper (two or three cross-core wake-ups), the loop waits
  // in aio_suspend itself for up to spin_us: glibc's helper then wakes the loop directly, one
  // wake-up, as in fio's posixaio engine. Not spinning: the helper needs the CPU. Meanwhile
  // wake() (post, stop) and parked sockets wait at most spin_us. Returns how many completed.
  std::size_t wait_briefly(std::optional<std::chrono::nanoseconds> timeout) {
    std::int64_t ns = static_cast<std::int64_t>(env_.options().spin_us) * 1000;
    if (timeout && timeout->count() < ns) ns = timeout->count();
    if (ns <= 0) return 0;
    list_.clear();
    for (unsigned idx : inflight_) list_.push_back(&slots_[idx].cb);
    timespec t{ns / 1'000'000'000, ns % 1'000'000'000};
    (void)::aio_suspend(list_.data(), static_cast<int>(list_.size()), &t);
    return harvest();
  }

  // The loop is about to sleep with ops in glibc: the reaper watches them and writes the eventfd
  // for the first one that finishes. False: something finished meanwhile, do not sleep.
  bool prepare_sleep() {
    bool notify;
    {
      std::lock_guard lk(mu_);
      for (unsigned idx : inflight_) {
        const slot& s = slots_[idx];
        if (s.status == k_running && ::aio_error(&s.cb) != EINPROGRESS) return false;
      }
      sleep_set_.assign(inflight_.begin(), inflight_.end());
      ++sleep_gen_;
      loop_sleeping_ = true;
      notify = reaper_idle_;
    }
    if (!reaper_.joinable()) start_reaper();
    else if (notify) cv_.notify_one();
    return true;
  }

  // A host's wait armed by prepare_host_wait() is over.
  void end_host_sleep() noexcept {
    if (!host_sleeps_) return;
    host_sleeps_ = false;
    after_sleep();
    harvest();
  }

  void after_sleep() noexcept {
    {
      std::unique_lock lk(mu_);
      loop_sleeping_ = false;
      // The reaper may be inside aio_suspend on aiocbs that harvest() is about to free and
      // submit_waiting() to reuse; glibc's aio_suspend reads the aiocbs again when it returns
      // (a reused one looks in progress and glibc follows a freed request: SEGV seen under
      // ASan). So wait until it is out: at most its k_rescan_ns timeout, and only when the loop
      // woke for something other than the reaper's own eventfd write.
      suspend_done_.wait(lk, [this] { return !reaper_suspending_; });
      taken_.swap(done_);  // harvest() completes them
    }
    std::uint64_t v;
    while (::read(event_fd_, &v, sizeof v) < 0 && errno == EINTR) {
    }
  }

  // ---- the reaper thread: watches the ops in glibc while the loop sleeps ----
  void start_reaper() {
    async_signals_blocked mask;  // the reaper starts with it (sys/thread_signals.hpp)
    reaper_ = std::thread([this] { reap_loop(); });
  }

  void reap_loop() {
    ::pthread_setname_np(::pthread_self(), "unio-paio-reap");
    std::vector<unsigned> watch;
    std::vector<const aiocb*> list;
    std::uint64_t gen = 0;
    watch.reserve(depth_);
    list.reserve(depth_);
    std::unique_lock lk(mu_);
    for (;;) {
      while (!stopping_ && !loop_sleeping_) {
        reaper_idle_ = true;
        cv_.wait(lk);
        reaper_idle_ = false;
      }
      if (stopping_) return;
      if (gen != sleep_gen_) {
        watch = sleep_set_;
        gen = sleep_gen_;
      }
      if (claim(watch) > 0) continue;
      list.clear();
      for (unsigned idx : watch)
        if (slots_[idx].status == k_running) list.push_back(&slots_[idx].cb);
      if (list.empty()) {  // not expected (a sleep set holds running ops); never busy-loop
        cv_.wait_for(lk, std::chrono::nanoseconds(k_rescan_ns));
        continue;
      }
      reaper_suspending_ = true;
      lk.unlock();
      // Wakes on the first completion in the list, or after k_rescan_ns to pick up a newer
      // sleep set (the loop may have woken for another reason, submitted more and slept again).
      timespec t{0, k_rescan_ns};
      (void)::aio_suspend(list.data(), static_cast<int>(list.size()), &t);
      lk.lock();
      reaper_suspending_ = false;
      suspend_done_.notify_all();
      if (!stopping_ && loop_sleeping_ && gen == sleep_gen_) claim(watch);
    }
  }

  // Reaper thread, mu_ held: claims the finished ops of `watch` and, if there are any, hands
  // them to the sleeping loop (one eventfd write per sleep). Returns how many.
  std::size_t claim(const std::vector<unsigned>& watch) {
    std::size_t n = 0;
    for (unsigned idx : watch) {
      slot& s = slots_[idx];
      if (s.status == k_running && ::aio_error(&s.cb) != EINPROGRESS) {
        s.status = k_reaped;
        done_.push_back(idx);
        ++n;
      }
    }
    if (n == 0) return 0;
    barrier(done_.back());
    loop_sleeping_ = false;
    std::uint64_t one = 1;
    while (::write(event_fd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
    return n;
  }

  void stop_reaper() {
    if (!reaper_.joinable()) return;
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    reaper_.join();
  }

  std::size_t complete_nops() {
    std::size_t n = nops_.size();
    while (op* o = nops_.pop()) env_.complete(*o, 0);
    return n;
  }

  std::size_t drain_pool() { return pool_.drain(); }

  backend_env& env_;
  reactor reactor_;
  delegation pool_;  // ops glibc's AIO cannot do
  const unsigned depth_;
  int event_fd_ = -1;
  std::unique_ptr<slot[]> slots_;

  // Loop thread only.
  std::vector<unsigned> free_;
  std::vector<unsigned> inflight_;  // slots in glibc (k_running or k_reaped)
  std::vector<unsigned> mine_;
  std::vector<unsigned> taken_;
  std::vector<const aiocb*> list_;
  op_queue waiting_;
  op_queue nops_;
  std::size_t in_glibc_ = 0;  // handed to glibc and not yet completed
  bool host_sleeps_ = false;  // prepare_host_wait() told the reaper the loop sleeps

  // Shared with the reaper, guarded by mu_ (and slot::status).
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<unsigned> sleep_set_;  // what the reaper watches while the loop sleeps
  std::uint64_t sleep_gen_ = 0;
  std::vector<unsigned> done_;       // claimed by the reaper, for the loop
  bool loop_sleeping_ = false;
  bool reaper_idle_ = false;
  bool reaper_suspending_ = false;          // the reaper is inside aio_suspend (guarded by mu_)
  std::condition_variable suspend_done_;   // signalled when it leaves
  bool stopping_ = false;
  std::thread reaper_;
};

std::array<bool, op_code_count> paio_native(const loop_options&) {
  std::array<bool, op_code_count> a{};
  for (const op_traits& t : k_op_traits)
    a[static_cast<std::size_t>(t.code)] = t.posix_aio || reactor_native(t.code);
  return a;
}

// ThreadSanitizer builds (GCC defines __SANITIZE_THREAD__; Clang has the feature test).
#if defined(__SANITIZE_THREAD__)
constexpr bool k_tsan_build = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool k_tsan_build = true;
#else
constexpr bool k_tsan_build = false;
#endif
#else
constexpr bool k_tsan_build = false;
#endif

// glibc (2.34+: in libc itself, no -lrt) always provides POSIX AIO; it needs only threads. A
// ThreadSanitizer build cannot use it: glibc's helper threads start more helpers through its
// internal pthread_create, which TSan does not intercept, and the new thread crashes in TSan's
// allocator (seen here with unio-sum over 2000 files; LLVM issue 109742).
std::string paio_probe() {
  if (k_tsan_build)
    return "this build uses ThreadSanitizer, which cannot run glibc's POSIX AIO: its helper threads "
           "start others that ThreadSanitizer does not see, and they crash";
  if (g_aio_inherited.load(std::memory_order_relaxed))
    return "this process was forked from one that used glibc's POSIX AIO, whose state (its helper "
           "threads) does not survive fork(): requests would never run";
  return {};
}

}  // namespace

extern const backend_descriptor posix_aio_descriptor = {
    "posix_aio",
    paio_probe,
    paio_native,
    [](backend_env& env) -> std::unique_ptr<backend> { return std::make_unique<posix_aio_backend>(env); },
};

}  // namespace unio::detail
