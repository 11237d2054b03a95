// cold_reader: a thread with an io_uring ring of its own, which makes the buffered reads that the
// cold-read router (io_uring_cold_reads.hpp) expects to miss the page cache, so that their
// readahead work never runs on the loop's thread.
//
// Why a thread with a ring, and not IOSQE_ASYNC or the loop's pool: those run each read on a
// worker thread of its own, which wakes a thread and notifies the device once per read. On the
// virtio VM this was measured on, a cold 4 KiB read sent to io-wq cost 25-33 us of CPU (perf: 44%
// of samples in the paravirtual irq-enable of context switches, 15% in the device notify), against
// 5 us for the same reads tried inline in batches, where the kernel plugs a batch's requests into
// one notification. The cold reader keeps the batching: the loop hands it every cold read of a
// turn at once (one wake-up), it submits them all in one io_uring_enter (their readahead runs
// here, plugged), and it hands finished reads back in batches (one eventfd write each, which
// the loop's ring watches). While the thread has reads in flight the loop does not wake it: it
// takes new reads when the next completion wakes it, or after at most 1 ms (a hung device must
// not hold up reads of other files for longer). Its thread runs loop_options::pool_nice steps below the loop's, like
// the pool's workers, so that it never delays the loop for a CPU.
//
// Rules: an op pushed here completes exactly once: with its read's result, or ECANCELED when it
// is cancelled before the thread took it. A read the thread has submitted delivers its own
// result (the kernel cannot take back readahead that is under way; a hung device holds it, as it
// holds a pool worker). stop() cancels what was not taken and waits for the rest.
// The loop's thread calls everything except the thread's own loop; the finished list and the
// inbox are guarded by one mutex.
#pragma once

#include <liburing.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>

#include "backend.hpp"

namespace unio::detail::uring {

class cold_reader {
 public:
  // `nice`: steps below the creating thread's nice value for the reader's thread (0-19).
  explicit cold_reader(int nice) noexcept : nice_(nice) {}
  ~cold_reader() { stop(); }
  cold_reader(const cold_reader&) = delete;
  cold_reader& operator=(const cold_reader&) = delete;

  // Starts the thread and its ring on first use. false: they could not be created (the caller
  // reads inline instead); the error is what_failed().
  bool start() noexcept;
  bool started() const noexcept { return thread_.joinable(); }
  int event_fd() const noexcept { return done_fd_; }

  // Queues a read (A::args: fd, buffer or iovecs, offset). hand_over() passes the turn's reads to
  // the thread at once.
  void push(op& o) noexcept { outbox_.push(o); }
  void hand_over() noexcept;
  // Removes `o` if the thread has not taken it: true, and the caller completes it with ECANCELED.
  bool cancel(op& o) noexcept;
  // Finished reads, with A::res set; the event fd is cleared.
  op_queue take_finished() noexcept;
  // Reads pushed and not yet taken back by take_finished().
  std::size_t outstanding() const noexcept { return outstanding_; }
  // Cancels what the thread has not taken (returned with A::res = -ECANCELED by take_finished)
  // and waits until every read it took has finished, then ends the thread.
  void stop() noexcept;

 private:
  void run() noexcept;
  unsigned submit_inbox(op_queue& batch) noexcept;
  void publish(op_queue& done) noexcept;
  void wake_thread() noexcept;

  const int nice_;
  std::thread thread_;
  io_uring ring_{};
  int inbox_fd_ = -1;  // the thread's wake-up, watched by a POLL_ADD on its ring
  int done_fd_ = -1;   // readable when finished reads wait for the loop
  std::mutex mu_;
  op_queue inbox_;     // guarded by mu_: handed over, not yet taken by the thread
  op_queue finished_;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  // Reads in the thread's ring, as the thread last said before it looked at the inbox. While it
  // is not 0 the thread wakes for their completions (and at least every k_recheck) and looks at
  // the inbox then, so hand_over() need not write inbox_fd_.
  std::atomic<unsigned> busy_{0};
  op_queue outbox_;    // the loop's thread only: pushed this turn
  std::size_t outstanding_ = 0;  // the loop's thread only
};

}  // namespace unio::detail::uring
