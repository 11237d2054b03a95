// Child processes: posix_spawnp + pidfd_open on the pool, waits on the pidfd on the loop.
//
// posix_spawnp rather than fork/exec or clone3: glibc (2.24 and later) runs it as
// clone(CLONE_VM|CLONE_VFORK) on a small stack of its own, so no page table is copied however
// large the program is, and an exec failure comes back as the call's error instead of as an exit
// status. The pidfd is opened after the spawn returns; the child cannot have been reaped (and its
// pid reused) in between unless the program reaps children it does not own (waitpid(-1),
// SIGCHLD ignored), which process.hpp rules out.
#include "unio/process.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

extern char** environ;

namespace unio {
namespace detail {
namespace {

// waitid's P_PIDFD (Linux 5.4); glibc names it only from 2.36 on.
constexpr auto k_p_pidfd = static_cast<idtype_t>(3);

exit_status status_of(const siginfo_t& si) noexcept {
  exit_status st;
  if (si.si_code == CLD_EXITED) {
    st.code = si.si_status;
  } else {
    st.signal = si.si_status;
    st.core_dumped = si.si_code == CLD_DUMPED;
  }
  return st;
}

std::string_view env_name(std::string_view entry) noexcept { return entry.substr(0, entry.find('=')); }

bool named_in(std::string_view name, const std::vector<std::string>& env) noexcept {
  for (const std::string& e : env)
    if (env_name(e) == name) return true;
  return false;
}

// Moves an fd that landed on 0, 1 or 2 (the caller had closed its own) above them, so that
// placing the child's stdio cannot overwrite it.
int above_stdio(int fd) noexcept {
  if (fd > 2) return fd;
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  return moved;
}

// The pipes of one spawn: end[i][0] reads, end[i][1] writes; fd i of the child gets the child's
// end. Whatever is still open when it is destroyed is closed.
struct stdio_pipes {
  int end[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};

  stdio_pipes() = default;
  stdio_pipes(const stdio_pipes&) = delete;
  stdio_pipes& operator=(const stdio_pipes&) = delete;
  ~stdio_pipes() {
    for (auto& e : end)
      for (int fd : e)
        if (fd >= 0) ::close(fd);
  }

  static int child_side(int i) noexcept { return i == 0 ? 0 : 1; }
  int child_end(int i) const noexcept { return end[i][child_side(i)]; }
  // Hands the parent's end over (made non-blocking); -1 when there is no pipe.
  int take_parent_end(int i) noexcept {
    int& fd = end[i][1 - child_side(i)];
    if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    return std::exchange(fd, -1);
  }

  int open(const spawn_request& req) noexcept {
    for (int i = 0; i < 3; ++i) {
      if (req.modes[i] != stdio::pipe) continue;
      if (::pipe2(end[i], O_CLOEXEC) != 0) return errno;
      for (int& fd : end[i])
        if ((fd = above_stdio(fd)) < 0) return errno;
    }
    return 0;
  }
};

// posix_spawn's file actions and attributes, destroyed with it.
struct spawn_setup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;

  spawn_setup() noexcept {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~spawn_setup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  spawn_setup(const spawn_setup&) = delete;
  spawn_setup& operator=(const spawn_setup&) = delete;

  int add_stdio(const spawn_request& req, const stdio_pipes& pipes) noexcept {
    for (int i = 0; i < 3; ++i) {
      int e = 0;
      if (req.modes[i] == stdio::null)
        e = posix_spawn_file_actions_addopen(&actions, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
      else if (req.modes[i] == stdio::pipe)
        e = posix_spawn_file_actions_adddup2(&actions, pipes.child_end(i), i);
      if (e != 0) return e;
    }
    return req.cwd.empty() ? 0 : posix_spawn_file_actions_addchdir_np(&actions, req.cwd.c_str());
  }

  // An empty signal mask and default dispositions, whatever the spawning thread had (the pool's
  // workers block every signal; the program may ignore SIGPIPE).
  int set_signals_and_group(bool new_group) noexcept {
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (new_group) flags |= POSIX_SPAWN_SETPGROUP;  // pgroup 0: the child's own pid
    if (int e = posix_spawnattr_setsigmask(&attr, &none); e != 0) return e;
    if (int e = posix_spawnattr_setsigdefault(&attr, &all); e != 0) return e;
    return posix_spawnattr_setflags(&attr, flags);
  }
};

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const std::string& s : v)
    out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// A child whose pidfd could not be opened cannot be waited for on the loop: it is stopped and
// reaped at once, and the spawn fails.
void discard_child(pid_t pid) noexcept {
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

spawn_request make_spawn_request(std::vector<std::string> argv, const spawn_options& opts) {
  spawn_request req;
  req.argv = std::move(argv);
  req.cwd = opts.cwd;
  req.modes[0] = opts.stdin_mode;
  req.modes[1] = opts.stdout_mode;
  req.modes[2] = opts.stderr_mode;
  req.new_process_group = opts.new_process_group;
  if (!opts.clear_env)
    for (char** e = environ; e != nullptr && *e != nullptr; ++e)
      if (!named_in(env_name(*e), opts.env)) req.env.emplace_back(*e);
  req.env.insert(req.env.end(), opts.env.begin(), opts.env.end());
  return req;
}

result<spawned_child> spawn_child(const spawn_request& req) {
  if (req.argv.empty()) return errno_code(EINVAL);
  stdio_pipes pipes;
  spawn_setup setup;
  if (int e = pipes.open(req); e != 0) return errno_code(e);
  if (int e = setup.add_stdio(req, pipes); e != 0) return errno_code(e);
  if (int e = setup.set_signals_and_group(req.new_process_group); e != 0) return errno_code(e);
  std::vector<char*> argv = c_strings(req.argv), envp = c_strings(req.env);
  spawned_child c;
  if (int e = posix_spawnp(&c.pid, argv[0], &setup.actions, &setup.attr, argv.data(), envp.data()); e != 0)
    return errno_code(e);
  c.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, c.pid, 0));
  if (c.pidfd < 0) {
    int e = errno;
    discard_child(c.pid);
    return errno_code(e);
  }
  for (int i = 0; i < 3; ++i)
    c.fds[i] = pipes.take_parent_end(i);
  return c;
}

process_state::~process_state() { ::close(pidfd); }

result<exit_status> process_state::reap_now() noexcept {
  if (status) return *status;
  siginfo_t si{};
  if (::waitid(k_p_pidfd, static_cast<id_t>(pidfd), &si, WEXITED | WNOHANG) != 0)
    return errno_code(errno == EINTR ? EAGAIN : errno);
  if (si.si_pid == 0) return errno_code(EAGAIN);  // still running
  status = status_of(si);
  return *status;
}

result<exit_status> process_state::take(op& o) {
  --waits;
  result<exit_status> r = status    ? result<exit_status>(*status)
                          : !o.ok() ? result<exit_status>(o.error())
                                    : reap_now();
  // The last wait of a destroyed process object was cancelled: the child is still to be reaped.
  if (orphaned && waits == 0 && !status) reap_later();
  return r;
}

void process_state::orphan() {
  orphaned = true;
  if (waits == 0 && reap_now().error() == std::errc::resource_unavailable_try_again) reap_later();
}

namespace {

// The wait a destroyed process object leaves on the loop; it owns its op. Only the loop's
// destruction cancels it: then the child is reaped if it has exited, else left as it is.
struct reaper {
  std::shared_ptr<process_state> st;
  std::unique_ptr<op> o;

  void operator()(op&) {
    (void)st->reap_now();
    o.reset();  // an op may be destroyed inside its handler (op.hpp)
  }
};

}  // namespace

void process_state::reap_later() {
  auto o = std::make_unique<op>();
  op& x = *o;
  lp->poll(x, pidfd, POLLIN, reaper{shared_from_this(), std::move(o)});
}

result<process> spawn_call::operator()() {
  auto c = spawn_child(req);
  if (!c) return c.error();
  return process(*lp, *c);
}

}  // namespace detail

process::process(loop& lp, const detail::spawned_child& c) : fds_(c.fds) {
  try {
    st_ = std::make_shared<detail::process_state>(lp, c.pid, c.pidfd);
  } catch (...) {
    close_pipes();
    detail::discard_child(c.pid);
    ::close(c.pidfd);
    throw;
  }
}

process::process(process&& o) noexcept : st_(std::move(o.st_)), fds_(std::exchange(o.fds_, {-1, -1, -1})) {}

process& process::operator=(process&& o) noexcept {
  if (this != &o) {
    release();
    st_ = std::move(o.st_);
    fds_ = std::exchange(o.fds_, {-1, -1, -1});
  }
  return *this;
}

process::~process() { release(); }

void process::release() noexcept {
  close_pipes();
  if (st_) st_->orphan();
  st_.reset();
}

void process::close_pipes() noexcept {
  for (int& fd : fds_)
    if (fd >= 0) ::close(std::exchange(fd, -1));
}

void process::close_stdin() noexcept {
  if (fds_[0] >= 0) ::close(std::exchange(fds_[0], -1));
}

std::error_code process::kill(int sig) const {
  if (!st_ || st_->status) return errno_code(ESRCH);
  if (::syscall(SYS_pidfd_send_signal, st_->pidfd, sig, nullptr, 0) != 0) return errno_code(errno);
  return {};
}

}  // namespace unio
