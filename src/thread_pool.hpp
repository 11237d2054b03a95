// thread_pool: worker threads that run blocking syscalls for one loop.
//
// It is the engine of the threadpool backend and the delegation target of every other backend.
// The loop's thread hands over ops in batches (submit) and takes finished ones back in batches
// (drain). Cross-thread wake-ups are what a pool pays for: on a VM a wake-up across cores costs
// 40-55 us (a pipe ping-pong between two threads on a 2-vCPU VM), more than the 1.5 us a cached 4 KiB read takes. So:
//  - one idle worker polls the queue for `spin_us` before it sleeps; a batch wakes at most one
//    sleeper (none when a worker is polling), and a worker that leaves work queued wakes the next;
//  - finished ops are appended to one list; the eventfd is written only when the loop has said
//    it is about to sleep (prepare_sleep), at most once per sleep, never per op.
//
// Priority: workers run `nice` steps below the thread that created the pool (the loop's), so
// that when the loop and busy workers want the two CPUs of a small machine, the kernel runs the
// loop as soon as it wakes: on this 2-vCPU VM, cached 4 KiB QD32 reads through the pool had the
// loop's 1 ms timer late by 124-151 us at p99 with equal priorities and 44-88 us at nice +10,
// with the same or more IOPS. The cost: under CPU contention from other processes the
// pool gets a smaller share (nice 10 weighs about a tenth of nice 0).
//
// Growth for ops that wait on a device: the backend marks an op it expects to wait (a read the
// page cache refused, an fsync: mark_blocking) and the pool does not count a worker running one
// against its CPU-sized core. A worker that takes a marked op while ops are still queued and no
// worker is idle starts one more worker first, as long as fewer than `threads` workers run
// unmarked ops and the pool has fewer than `max_threads` (io-wq's bounded workers work the
// same way, with the scheduler telling it when a worker blocks). So a cold QD32 run keeps
// about 32 reads in flight while cached work still runs on `threads` workers. The extra workers
// are started by the workers (a thread start costs the loop's thread nothing) and end after
// k_linger idle, down to `threads`. A marked op is taken alone (nothing waits behind an fsync),
// except buffered reads the backend marked prefetchable too:
//
// Read batches: a worker takes up to k_read_batch queued marked reads of one fd and first tries
// each with RWF_NOWAIT: a read the page cache holds completes at once, and one that misses has
// its device read started by the kernel (the readahead a plain read would start, then EAGAIN)
// without waiting; then it reads the others in order. So a few workers keep a deep queue at the
// device. (readahead(2) of each read's range instead gave the same IOPS for a cold second, but
// it reads exactly the range where the kernel's own readahead reads whole large folios: over 5 s
// the file warmed to 80% instead of 100%, and 82-86k reads/s instead of 177-192k.) On a 2-vCPU
// VM a thread switch (futex wake, I/O sleep, eventfd) costs far more than a read's own CPU, and
// one worker per read was the slowest way to keep 32 reads in flight. Cold 4 KiB QD32 reads, same
// runs: 33 workers, one read each: 24-36k IOPS at 42-65 us of CPU per read; batches of up to 4 (9
// workers): 62-66k at 23-26 us; of 8 (5 workers): 71-86k at 18-21 us; of 16 (the 2 core workers):
// 88-103k at 13-16 us, but the loop's 1 ms timer late by 160-1150 us at p99 and reads' p99.9
// latency 11-15 ms (two busy workers and the loop on two CPUs); of 32 (one worker at a time):
// 70-75k at 13-14 us (fio io_uring: 62-65k), the timer late by 84-250 us (an idle thread's: 71-81
// us) and p99.9 1.3-2.4 ms. So k_read_batch is 32: at QD32 one worker keeps the device busy and the
// other CPU stays free for the loop; deeper queues grow the pool a batch at a time (only while a
// whole batch waits, or every worker waits). Prefetchable reads the backend did not mark go in such
// batches too while the pool's batches take longer than k_device_ns on average (they wait on a
// device, whatever the backend predicted).
//
// Cancel: an op still in the queue is marked and completed with ECANCELED without running; an
// op a worker has started runs to the end and keeps its result.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "backend.hpp"

namespace unio::detail {

class thread_pool {
 public:
  // Throws std::system_error when the eventfd or a thread cannot be created, or when a worker
  // cannot lower its priority by `nice` (0-19; 0 = the creator's priority). `max_threads`: the
  // most workers while some run ops marked blocking (below `threads`: no growth).
  thread_pool(unsigned threads, unsigned spin_us, int nice = 0, unsigned max_threads = 0);
  ~thread_pool();
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  // The core workers (always running).
  unsigned size() const noexcept { return static_cast<unsigned>(workers_.size()); }
  // How long an extra worker (started for blocking ops) waits idle before it ends.
  static constexpr std::chrono::milliseconds k_linger{500};
  // Marks `o`, before submit(), as an op that will probably wait on a device (see the top).
  static void mark_blocking(op& o) noexcept { A::cancel_requested(o) |= k_blocking; }
  // Marks a positioned read of a buffered (not O_DIRECT) file: the pool may try it with RWF_NOWAIT
  // (on an O_DIRECT file that waits for the device) and batch it (see the top).
  static void mark_prefetchable(op& o) noexcept { A::cancel_requested(o) |= k_prefetch; }
  // The most reads one worker takes at once, and the mean batch time above which the pool's ops
  // are taken to wait for a device (a batch of 4 cached 4 KiB reads takes under 10 us here, a
  // disk read 100s of us).
  static constexpr std::size_t k_read_batch = 32;
  static_assert(k_read_batch <= 64, "run() keeps a batch's served reads in a 64-bit mask");
  // How far into the queue a worker looks for reads of its batch's fd.
  static constexpr std::size_t k_read_window = 4 * k_read_batch;
  static constexpr std::uint64_t k_device_ns = 50'000;
  // Readable when finished ops wait and the loop is sleeping (see prepare_sleep).
  int event_fd() const noexcept { return event_fd_; }

  // ---- Loop thread only. ----
  // Queues every op of `batch` (batch becomes empty).
  void submit(op_queue& batch);
  // Marks `o` cancelled if it is still queued (it then completes with ECANCELED without
  // running) and returns true; false when a worker has it or it has finished.
  bool cancel(op& o);
  // Moves finished ops (res set) to `out`; returns how many.
  std::size_t drain(op_queue& out);
  // Ops submitted and not yet drained.
  std::size_t outstanding() const noexcept { return outstanding_; }
  // True when every op submitted and not yet drained is marked blocking: a result is then a
  // device's latency away, and polling for it (spin_for_finished) would only take a CPU from the
  // workers (on cold reads it was 18% of all CPU samples).
  bool only_blocking_outstanding() const noexcept { return outstanding_ > 0 && outstanding_blocking_ == outstanding_; }
  // True when finished ops are waiting to be drained (cheap; no lock).
  bool has_finished() const noexcept { return (done_state_.load(std::memory_order_acquire) >> 1) > 0; }
  // Polls up to spin_us (and no longer than `limit`, the loop's next timer) for a finished op;
  // returns whether one arrived. It does not poll (only looks) while the workers' batches take
  // longer than spin_us on average (batch_ns_): reads that wait for a disk without being marked
  // blocking had the loop's thread, at a higher priority than the workers, burn 15-29% of all CPU
  // samples in cold 4 KiB reads, polling for the next of many results in flight.
  bool spin_for_finished(std::optional<std::chrono::nanoseconds> limit = std::nullopt) const noexcept;
  // Whether the pool's batches take within spin_us on average (so spin_for_finished and idle
  // workers poll), and whether they take longer than k_device_ns (they wait on a device).
  bool polls() const noexcept {
    return spin_us_ > 0 && batch_ns_.load(std::memory_order_relaxed) <= spin_us_ * 1000ull;
  }
  bool waits() const noexcept { return batch_ns_.load(std::memory_order_relaxed) > k_device_ns; }
  // Call before blocking on event_fd(): returns false (do not sleep) when finished ops are
  // already waiting. After a true return, the next finished op writes the eventfd.
  bool prepare_sleep() noexcept;
  // Call after waking: clears the sleep flag and consumes the eventfd's write, if a finished op
  // made one, so that no later wait wakes for it.
  void after_sleep() noexcept;
  // Finishes every op still queued with ECANCELED (drain() returns them); the workers go on.
  void cancel_queued();
  // Stops the workers after they finish what they are running. Ops still queued are finished
  // with ECANCELED; drain() returns them all afterwards.
  void stop();

 private:
  // The pool's marks in an op's cancel byte (see thread_pool.cpp for the other two).
  static constexpr std::uint8_t k_blocking = 0x04;
  static constexpr std::uint8_t k_prefetch = 0x08;

  void work();
  // An extra worker's life: work until idle for k_linger (or the pool stops), then end.
  void extra_work() noexcept;
  // Runs the ops in `mine` (one batch taken by take()), publishes them; what work() and
  // extra_work() share.
  void run(op_queue& mine);
  // Tries each prefetchable read of a batch with RWF_NOWAIT (sys::try_read_nowait): one the page
  // cache holds completes there (its bit, by position in the batch, is set in the result); one
  // that misses has had its device read started by the kernel's own readahead, sized as a plain
  // read's would be, and is read in order afterwards.
  static std::uint64_t start_reads(op_queue& batch) noexcept;
  static bool any_blocking(const op_queue& batch) noexcept;
  // Under queue_mu_, with ops queued: whether the next batch is one of reads that wait (the front
  // op is a prefetchable read, and marked blocking or the pool's batches wait on a device).
  bool read_batch_next() const noexcept;
  // Under queue_mu_: moves the front op to `out` (marked taken) and counts it in n.
  void take_front(op_queue& out, std::size_t& n) noexcept;
  // Starts one extra worker (its slot already counted in live_); on failure gives the slot back.
  // Joins the extra workers that ended first.
  void start_extra() noexcept;
  // Joins the extra workers that ended (all of them, and any they started, when the pool stops).
  void join_extras(bool all) noexcept;
  static void name_thread() noexcept;
  // Lowers the calling worker's priority by nice_; returns 0 or an errno value.
  int lower_priority() const noexcept;
 public:
  // The calling thread's nice value, and lowering it to `steps` (0-19) below `base` as the
  // workers do (also for the io_uring backend's cold reader); 0 or an errno value.
  static int calling_thread_nice() noexcept;
  static int lower_calling_thread(int base, int steps) noexcept;

 private:
  static void request_long_slice(int nice) noexcept;
  // Blocks until there is work (fills `out` with one or a few ops) or the pool stops (false).
  // An extra worker (`linger`) also returns false after k_linger idle while the pool is above
  // its core size. Sets `grow` when the caller should start an extra worker (start_extra).
  // `ran`: the caller has run a batch since its last take (it counts in returning_).
  bool take(op_queue& out, bool linger, bool ran, bool& grow);
  // Under queue_mu_: whether ops wait that no worker can take soon (none idle or about to be,
  // every worker beyond the CPU-sized core count blocked; for batched reads, a whole batch
  // waits) and the pool may grow; if so counts the new worker.
  bool claim_extra() noexcept;
  void finish(op& o, std::int64_t res);
  // Hands finished ops to the loop; wakes it only if it is sleeping.
  void publish(op_queue& finished);
  void end_sleep() noexcept;

  const unsigned spin_us_;
  const int nice_;
  const int base_nice_;  // the creator's nice value
  int event_fd_ = -1;
  std::vector<std::thread> workers_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  op_queue queue_;                  // guarded by queue_mu_
  unsigned sleepers_ = 0;           // guarded by queue_mu_
  bool stopping_ = false;           // guarded by queue_mu_
  unsigned core_ = 0;               // the core workers' number (set before they start)
  const unsigned max_threads_;
  unsigned live_ = 0;               // core + extra workers; guarded by queue_mu_
  std::atomic<unsigned> blocking_{0};  // workers running a batch of marked ops
  std::vector<std::thread> extras_;    // extra workers' threads; guarded by queue_mu_
  std::vector<std::thread::id> ended_;  // extra workers that ended, to join; guarded by queue_mu_
  std::atomic<std::size_t> queued_{0};
  std::atomic<unsigned> spinners_{0};
  std::atomic<unsigned> returning_{0};  // workers between a batch's end and their next take()
  std::atomic<std::uint64_t> batch_ns_{0};  // the time of a batch, averaged over recent ones

  std::mutex done_mu_;
  op_queue done_;                   // guarded by done_mu_
  // Finished ops waiting in done_ (the count, shifted left by one) and, in bit 0, "the loop
  // sleeps": one word, so that adding ops and taking the sleep flag are one atomic step. A
  // worker writes the eventfd only when its own publish cleared the bit, so every write has ops
  // behind it that the woken loop will drain (two steps let a worker that saw the flag in one
  // sleep clear it in the next, after the loop had drained its ops: a wake-up for nothing).
  // Changed under done_mu_, except the bit, which the loop sets and clears without the lock.
  static constexpr std::size_t k_sleeping = 1;
  std::atomic<std::size_t> done_state_{0};

  std::size_t outstanding_ = 0;     // loop thread only
  std::size_t outstanding_blocking_ = 0;  // of those, marked blocking; loop thread only
  static std::size_t count_blocking(const op_queue& q) noexcept;
};

}  // namespace unio::detail
