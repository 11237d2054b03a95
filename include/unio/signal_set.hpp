// signal_set: signals received on the loop, through a signalfd(2).
//
//   unio::signal_set sigs(lp, {SIGINT, SIGTERM});
//   unio::result<int> s = co_await sigs.async_wait();   // the signal's number, or an error
//
//   unio::op o;                                          // the callback form
//   sigs.wait(o, [](unio::op&, unio::result<int> s) { ... });
//
// A wait completes with the number of one signal of the set that arrived, in a later loop turn
// (never inside the call). A wait is one loop op: a read of one signalfd_siginfo at the current
// position of the signalfd (loop::read), which waits for readiness on every backend, so
// loop::cancel and with_timeout stop it like any waiting read.
//
// PROCESS-WIDE RULES (a signalfd only sees signals that are blocked, so the set blocks them):
//  - Blocking. The constructor and add() block the set's signals in the CALLING thread
//    (pthread_sigmask). A process-directed signal (kill(2) on the process, a terminal's Ctrl-C, a
//    child's SIGCHLD) is delivered to any one thread that does not block it and runs its
//    disposition there (for SIGINT, SIGTERM, SIGUSR1: the end of the process), so the signals
//    must be blocked in EVERY thread of the process. A thread inherits the mask of the thread that
//    creates it: make the signal_set (or block the signals) on the main thread before any other
//    thread starts. Threads that unio starts (the loop's pool workers, posix_aio's reaper) are
//    created with every signal blocked except the synchronous ones (SIGSEGV, SIGBUS, SIGFPE,
//    SIGILL, SIGTRAP, SIGSYS), so a pool made before the set never takes its signals.
//  - Destruction and remove() leave the signals blocked, in every thread. Unblocking could run
//    the default action of a signal that is pending at that moment (for SIGTERM: death), and
//    another set may still wait for it. A signal that arrives later stays pending in the kernel
//    and goes to the next set that waits for it (or runs its disposition when the program itself
//    unblocks it with pthread_sigmask).
//  - Pending signals are kept: a signal that arrives while nobody waits stays pending in the
//    kernel and is given to the next wait. Standard signals (1-31) do not queue: one sent twice
//    before it is read arrives once. Real-time signals (SIGRTMIN..SIGRTMAX) queue.
//  - One reader per signal: when several sets (of one loop or of several loops, in any thread)
//    wait for the same signal, each occurrence goes to exactly one of them, whichever reads it
//    first, never to all. Use one set per signal and fan out in the program.
//  - Only process-directed signals are promised. A signal aimed at one thread (pthread_kill,
//    tgkill, raise) reaches the set only when that thread is the one that reads.
//  - SIGCHLD. A set may wait for SIGCHLD; it arrives when a child exits or stops (coalesced, see
//    above). unio::process (process.hpp) does not use SIGCHLD (it waits on a pidfd), so such a
//    set takes nothing from it. Do not set SIGCHLD to SIG_IGN or SA_NOCLDWAIT: the kernel then
//    reaps children itself and process::async_wait fails with ECHILD.
//  - Children started by unio::async_spawn begin with an empty signal mask and default
//    dispositions; a child started with fork(2) inherits the blocked mask.
//
// Errors of a wait: ECANCELED (cancel(), loop::cancel on its op, the set's destruction, the
// loop's destruction); any other error of read(2) on the signalfd (not expected). As for any op,
// a cancel that comes after the read took a signal does not lose it: the wait gives the signal.
//
// Ownership and threading: everything runs on the loop's thread. The set owns its signalfd.
// Destroying the set cancels every wait still in flight: each completes with ECANCELED (or the
// signal it had read already) in a later turn, after the destructor has returned; the signalfd
// stays open until the last of them has completed. The loop must outlive the waits, not the set.
// Movable; a moved-from set may only be destroyed or assigned to.
#pragma once

#include <signal.h>
#include <sys/signalfd.h>

#include <initializer_list>
#include <memory>
#include <system_error>
#include <utility>
#include <vector>

#include "unio/detail/shared_wait.hpp"
#include "unio/export.hpp"
#include "unio/loop.hpp"
#include "unio/op.hpp"
#include "unio/result.hpp"

namespace unio {

namespace detail {

// What a signal_set and its waits share (detail/shared_wait.hpp): the waits keep it, and the
// signalfd, alive after the set.
struct UNIO_API signal_state {
  signal_state(loop& l, int f, const sigset_t& m) noexcept : lp(&l), fd(f), mask(m) {}
  ~signal_state();
  signal_state(const signal_state&) = delete;
  signal_state& operator=(const signal_state&) = delete;

  // A read of one signalfd_siginfo into a buffer of the wait's own.
  template <class W>
  void begin(op& o, W&& w) {
    void* info = add_wait(o);
    lp->read(o, fd, info, sizeof(signalfd_siginfo), current_position, std::forward<W>(w));
  }
  // A wait's read completed: the signal's number or an error.
  result<int> take(op& o);
  void cancel_all();

  struct wait_slot {
    op* o;
    std::unique_ptr<signalfd_siginfo> info;
  };

  loop* lp;
  int fd;
  sigset_t mask;
  std::vector<wait_slot> waits;  // the reads in flight

 private:
  void* add_wait(op& o);
};

using signal_wait_awaitable = shared_wait_awaitable<signal_state, int>;

}  // namespace detail

class UNIO_API signal_set {
 public:
  // Blocks `signals` in the calling thread and opens a signalfd for them (non-blocking,
  // close-on-exec). Throws std::system_error: EINVAL for a number that is not a signal, for
  // SIGKILL and SIGSTOP (they cannot be caught) and for glibc's internal signals (32, 33);
  // EMFILE, ENFILE, ENOMEM from signalfd(2). An empty list is allowed (add() later).
  signal_set(loop& lp, std::initializer_list<int> signals);
  ~signal_set();
  signal_set(signal_set&& o) noexcept = default;
  signal_set& operator=(signal_set&& o) noexcept;

  // Adds `sig` (blocking it in the calling thread) or removes it (it stays blocked; an
  // occurrence pending now stays pending). Waits in flight see the change at once. Errors:
  // EINVAL as for the constructor. Adding a signal twice, or removing one that is not in the set,
  // is not an error.
  std::error_code add(int sig);
  std::error_code remove(int sig);
  bool contains(int sig) const noexcept;

  // Callback form: h(op&, result<int>) runs once, with the signal's number or an error. `o` is
  // busy until then (the op contract of op.hpp); loop::cancel(o) stops the wait (ECANCELED).
  template <class H>
  void wait(op& o, H&& h) {
    detail::start_shared_wait(st_, o, std::forward<H>(h));
  }
  // Awaitable form: co_await yields result<int>. get_op() on the awaitable gives its op.
  detail::signal_wait_awaitable async_wait() { return detail::signal_wait_awaitable(st_); }

  // Completes every wait of this set in flight with ECANCELED (in a later turn).
  void cancel();
  // The signalfd, for inspection (reading it takes signals from the set's waits).
  int fd() const noexcept { return st_->fd; }

 private:
  void close() noexcept;

  std::shared_ptr<detail::signal_state> st_;
};

}  // namespace unio
