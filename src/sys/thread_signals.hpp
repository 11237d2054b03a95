// The signal mask of the threads unio starts (the loop's pool workers, posix_aio's reaper).
//
// A process-directed signal (kill(2), a terminal's Ctrl-C, SIGCHLD) is delivered to any one
// thread that does not block it, and runs its disposition there: for SIGINT, SIGTERM or SIGUSR1
// the default is to end the process. A program that reads signals through a signalfd, which sees
// only signals that are blocked, blocks them in its own threads; a worker that had them unblocked
// (because the pool was created before the program blocked them) would take such a signal and
// kill the process.
// So every thread unio starts is created with every signal blocked that may be blocked, except
// the synchronous ones a thread raises itself by faulting (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
// SIGTRAP, SIGSYS from seccomp): blocking those would make the kernel kill the process outright
// instead of running the program's (or a sanitizer's) handler. glibc's sigfillset leaves out
// its internal signals (thread cancellation, setxid), and SIGKILL and SIGSTOP cannot be blocked.
// (libuv can leave its threads' masks alone because it receives signals with a handler that
// writes to a pipe, which any thread may run; a signalfd needs the signal blocked everywhere.)
//
// The mask is set by the creating thread around the thread's creation (a new thread inherits
// its creator's mask), so no signal can reach the worker between its start and its first line.
#pragma once

#include <pthread.h>
#include <signal.h>

namespace unio::detail {

// While it lives, the calling thread blocks every asynchronous signal; threads created meanwhile
// start with that mask. The previous mask is restored at the end of the scope.
class async_signals_blocked {
 public:
  async_signals_blocked() noexcept {
    sigset_t all;
    sigfillset(&all);
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS})
      sigdelset(&all, sig);
    pthread_sigmask(SIG_BLOCK, &all, &old_);
  }
  ~async_signals_blocked() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  async_signals_blocked(const async_signals_blocked&) = delete;
  async_signals_blocked& operator=(const async_signals_blocked&) = delete;

 private:
  sigset_t old_;
};

}  // namespace unio::detail
