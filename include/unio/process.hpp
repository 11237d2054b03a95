// Child processes: async_spawn starts one, unio::process waits for it and signals it.
//
//   unio::spawn_options opts;
//   opts.stdout_mode = unio::stdio::pipe;
//   std::vector<std::string> argv{"ls", "-l"};
//   unio::result<unio::process> p = co_await lp.async_spawn(argv, opts);
//   if (!p) co_return p.error();                            // ENOENT: no such program
//   char buf[4096];
//   auto n = co_await lp.async_read(p->stdout_fd(), buf, sizeof buf, unio::current_position);
//   unio::result<unio::exit_status> st = co_await p->async_wait();
//   if (st && st->exited()) use(st->code);
//
// SPAWNING. posix_spawnp(3) (glibc: clone with CLONE_VM|CLONE_VFORK, so no page tables are
// copied, and exec errors come back as the call's error), then pidfd_open(2). It runs on the
// loop's thread pool (loop::async_work; inline on the sync backend), because the calling thread
// is suspended until the child has executed its program, and that waits on the file system: the
// PATH search, the open of /dev/null and chdir for the options, loading the program; on a cold
// or remote file system that is milliseconds the loop must not lose. Errors of the spawn are the
// spawn's result, never an exit status of 127: ENOENT (no such program, or no such cwd), EACCES
// (not executable), ENOEXEC, E2BIG, EMFILE (pipes, pidfd), EAGAIN (RLIMIT_NPROC), EINVAL (empty
// argv). The program is looked up in the PATH of the calling process (not of opts.env) when it
// has no '/'. Cancel: ECANCELED while queued on the pool (no child is made); once started, the
// spawn finishes and its process is delivered.
//
// THE CHILD starts with an empty signal mask and every signal's default disposition: an ignored
// SIGPIPE, or the signals a signal_set blocks, are not passed on (glibc's posix_spawn leaves only
// its own internal signals, 32 and 33, ignored; a glibc program sets them up again). It has the
// fds the stdio modes name on 0, 1 and 2 and no other fd of unio's (all are close-on-exec); fds
// the program opened without O_CLOEXEC are inherited, as with fork(2).
//
// PIPES: stdio::pipe gives the parent's end in stdin_fd(), stdout_fd(), stderr_fd(): non-blocking
// and close-on-exec, owned by the process object (closed when it is destroyed, or by
// close_stdin()). Read and write them with loop ops at unio::current_position (they wait for
// readiness on every backend); a read gives 0 at the end, when the child (and every process that
// inherited the pipe) has closed it. Close stdin to give the child end of file.
//
// WAITING: async_wait() polls the pidfd for POLLIN (loop::poll: the same on every backend) and
// reaps the child with waitid(P_PIDFD, WEXITED|WNOHANG). It yields the exit status; every later
// wait yields the same status again. Several waits may be in flight. Errors: ECANCELED
// (loop::cancel on its op, or the loop's destruction; the child goes on and can be waited for
// again), ECHILD (someone else reaped the child: waitpid(-1) elsewhere in the program, or SIGCHLD
// set to SIG_IGN or SA_NOCLDWAIT, which makes the kernel reap it).
//
// SIGNALLING: kill(sig) uses pidfd_send_signal(2), which names this child and never another
// process that got its pid after it was reaped: after the child has been reaped it gives ESRCH.
// A child that has exited and was not reaped yet (a zombie) takes the signal without effect.
//
// DESTROYING a process object without waiting: the child keeps running (it is not killed), and
// it is reaped when it exits, by a wait the object leaves on the loop, so no zombie remains. That
// wait keeps loop::run() going until the child exits, as any op does; kill() the child first if
// run() should not wait for it. When the loop is destroyed before the child exits, the child is
// left to the process as it is (it is reaped then if it has exited; else it becomes a zombie when
// it exits, until the program exits).
//
// SIGCHLD: unio does not use it (a pidfd per child), and does not change its disposition. A
// signal_set may wait for SIGCHLD beside processes (signal_set.hpp).
//
// Ownership and threading: loop's thread only. A process object is movable, not copyable; a
// moved-from one may only be destroyed or assigned to. The loop must outlive its process objects
// and waits (the destructor may start a wait on the loop).
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "unio/detail/shared_wait.hpp"
#include "unio/export.hpp"
#include "unio/loop.hpp"
#include "unio/op.hpp"
#include "unio/result.hpp"

namespace unio {

// What the child gets on fd 0, 1 or 2.
enum class stdio : std::uint8_t {
  inherit,  // the caller's fd 0, 1 or 2
  null,     // /dev/null
  pipe,     // a new pipe; the parent's end is process::stdin_fd() (stdout_fd, stderr_fd)
};

// Not an aggregate on purpose: GCC 12 miscompiles a braced aggregate temporary with members
// such as std::string inside a co_await expression (`co_await lp.async_spawn(argv, {.cwd = d})`
// frees memory it does not own), so designated initializers are not offered. Set the fields of
// a named object.
struct spawn_options {
  spawn_options() noexcept {}  // user-provided: not an aggregate (see above)

  std::string cwd{};               // the child's working directory; "" = the caller's
  std::vector<std::string> env{};  // "NAME=value" entries, set in the child's environment
  bool clear_env = false;          // true: env is the whole environment; false: env is added to a
                                   // copy of the caller's (an entry replaces one of the same name)
  stdio stdin_mode = stdio::inherit;
  stdio stdout_mode = stdio::inherit;
  stdio stderr_mode = stdio::inherit;
  // The child leads a new process group (its pgid is its pid), so that kill(-pid, sig) reaches
  // it and its own children, and a terminal's Ctrl-C (sent to the foreground group) does not.
  bool new_process_group = false;
};

// How a child ended: exited with a code, or killed by a signal.
struct exit_status {
  int code = 0;              // the exit code (0-255) when exited()
  int signal = 0;            // the signal that killed it when signalled(); else 0
  bool core_dumped = false;  // signalled() and the kernel wrote a core dump
  bool exited() const noexcept { return signal == 0; }
  bool signalled() const noexcept { return signal != 0; }
  bool success() const noexcept { return signal == 0 && code == 0; }
};

class process;

namespace detail {

// The child as the spawn left it: the fds belong to whoever holds it.
struct spawned_child {
  pid_t pid = -1;
  int pidfd = -1;
  std::array<int, 3> fds{-1, -1, -1};  // the parent's ends of the pipes, or -1
};

// Everything the spawn needs, prepared on the calling thread (argv, the final environment).
struct spawn_request {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string cwd;
  std::array<stdio, 3> modes{stdio::inherit, stdio::inherit, stdio::inherit};
  bool new_process_group = false;
};
UNIO_API spawn_request make_spawn_request(std::vector<std::string> argv, const spawn_options& opts);
// posix_spawnp + pidfd_open, blocking; run on the pool.
UNIO_API result<spawned_child> spawn_child(const spawn_request& req);

// What a process object and its waits share (detail/shared_wait.hpp).
struct UNIO_API process_state : std::enable_shared_from_this<process_state> {
  process_state(loop& l, pid_t p, int fd) noexcept : lp(&l), pid(p), pidfd(fd) {}
  ~process_state();
  process_state(const process_state&) = delete;
  process_state& operator=(const process_state&) = delete;

  // A poll of the pidfd; a nop when the child has been reaped already.
  template <class W>
  void begin(op& o, W&& w) {
    ++waits;
    if (status)
      lp->nop(o, std::forward<W>(w));
    else
      lp->poll(o, pidfd, POLLIN, std::forward<W>(w));
  }
  // The exit status (the pidfd is readable once the child has exited), or an error.
  result<exit_status> take(op& o);
  // Reaps the child if it has exited: its status, EAGAIN while it runs, or ECHILD.
  result<exit_status> reap_now() noexcept;
  // The process object is gone: reap the child when it exits.
  void orphan();

  loop* lp;
  pid_t pid;
  int pidfd;
  std::optional<exit_status> status;  // set once reaped
  unsigned waits = 0;                 // waits in flight
  bool orphaned = false;

 private:
  void reap_later();
};

using process_wait_awaitable = shared_wait_awaitable<process_state, exit_status>;
struct spawn_call;

}  // namespace detail

class UNIO_API process {
 public:
  process() = default;
  process(process&& o) noexcept;
  process& operator=(process&& o) noexcept;
  ~process();

  pid_t pid() const noexcept { return st_ ? st_->pid : -1; }
  // The pidfd (close-on-exec), owned by the process object; valid until it is destroyed.
  int pidfd() const noexcept { return st_ ? st_->pidfd : -1; }
  // The parent's ends of the pipes (stdio::pipe), or -1.
  int stdin_fd() const noexcept { return fds_[0]; }
  int stdout_fd() const noexcept { return fds_[1]; }
  int stderr_fd() const noexcept { return fds_[2]; }
  // Closes the parent's end of the stdin pipe (close(2), at once), so the child reads end of
  // file. No loop op may be in flight on it.
  void close_stdin() noexcept;

  // Sends `sig` (0: only checks that the child has not been reaped). ESRCH once it has been
  // reaped; EINVAL for an invalid signal; EPERM.
  std::error_code kill(int sig = SIGTERM) const;

  // Callback form: h(op&, result<exit_status>) runs once, in a later turn. `o` is busy until then.
  template <class H>
  void wait(op& o, H&& h) {
    detail::start_shared_wait(st_, o, std::forward<H>(h));
  }
  // Awaitable form: co_await yields result<exit_status>. get_op() on the awaitable gives its op.
  detail::process_wait_awaitable async_wait() { return detail::process_wait_awaitable(st_); }
  // The exit status once a wait has reaped the child.
  std::optional<exit_status> status() const noexcept { return st_ ? st_->status : std::nullopt; }

 private:
  friend struct detail::spawn_call;
  process(loop& lp, const detail::spawned_child& c);
  void close_pipes() noexcept;
  void release() noexcept;

  std::shared_ptr<detail::process_state> st_;
  std::array<int, 3> fds_{-1, -1, -1};
};

namespace detail {
// async_spawn's function on the pool.
struct spawn_call {
  loop* lp;
  spawn_request req;
  result<process> operator()();
};

// The awaitable of async_spawn: loop::async_work's, yielding result<process>.
class spawn_awaitable : public work_awaitable<spawn_call, true> {
 public:
  using work_awaitable::work_awaitable;
};
}  // namespace detail

// Starts argv[0] with the arguments argv (argv[0] is also the child's argv[0]). co_await yields
// result<process>. Everything the options name is copied: nothing needs to outlive the call.
// GCC 12 cannot compile a braced list inside a co_await expression ("array used as
// initializer"): there, name the vector first (`std::vector<std::string> argv{"ls", "-l"};`).
// `opts` defaults to spawn_options() (a call, not braces: safe inside co_await on GCC 12).
inline detail::spawn_awaitable async_spawn(loop& lp, std::vector<std::string> argv,
                                           const spawn_options& opts = spawn_options()) {
  return detail::spawn_awaitable(lp,
                                 detail::spawn_call{&lp, detail::make_spawn_request(std::move(argv), opts)});
}

inline detail::spawn_awaitable loop::async_spawn(std::vector<std::string> argv) {
  return unio::async_spawn(*this, std::move(argv));
}
inline detail::spawn_awaitable loop::async_spawn(std::vector<std::string> argv, const spawn_options& opts) {
  return unio::async_spawn(*this, std::move(argv), opts);
}

}  // namespace unio
