// Description: child processes (unio::async_spawn, lp.async_spawn, unio::process) on every
// backend: exit codes and signals, spawn errors as the spawn's result (never 127), pipes read and
// written through the loop, cwd and environment, the child's clean signal state, kill through the
// pidfd (ESRCH once reaped), cancel of a wait, and no zombie after a process object is destroyed
// without a wait. Children end by themselves or when their stdin closes, never by a clock.
// Each op is awaited with AWAIT in plain test code: no argv list or options are built inside a
// co_await expression (GCC 12 miscompiles braced temporaries there; process.hpp).
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common.hpp"

using namespace std::chrono_literals;

namespace {

using unio::stdio;

unio::spawn_options with_stdio(stdio in, stdio out, stdio err = stdio::inherit) {
  unio::spawn_options o;
  o.stdin_mode = in;
  o.stdout_mode = out;
  o.stderr_mode = err;
  return o;
}

// Reads fd (at its current position) through the loop until end of file.
std::string read_all(unio::loop& lp, int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = AWAIT(lp, lp.async_read(fd, buf, sizeof buf, unio::current_position));
    if (!n) return out + "<" + n.error().message() + ">";
    if (*n == 0) return out;
    out.append(buf, *n);
  }
}

struct run_result {
  std::error_code spawn_error;
  std::string out, err;
  unio::result<unio::exit_status> status{unio::errno_code(ECANCELED)};
};

// Spawns argv with stdout and stderr piped (the rest as `opts` says), reads both to the end, waits.
run_result run(unio::loop& lp, const std::vector<std::string>& argv, unio::spawn_options opts = {}) {
  opts.stdout_mode = stdio::pipe;
  opts.stderr_mode = stdio::pipe;
  run_result r;
  auto p = AWAIT(lp, unio::async_spawn(lp, argv, opts));
  if (!p) {
    r.spawn_error = p.error();
    return r;
  }
  r.out = read_all(lp, p->stdout_fd());
  r.err = read_all(lp, p->stderr_fd());
  r.status = AWAIT(lp, p->async_wait());
  return r;
}

// Whether `pid` is still a child of this process (running or a zombie): waitid with WNOWAIT
// leaves it as it is.
bool is_our_child(pid_t pid) {
  siginfo_t si{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

class process_test : public unio::test::conformance_test {
 protected:
  // `cat` with its stdin piped (it runs until the pipe closes) and stdout as given.
  unio::process start_cat(unio::loop& lp, unio::spawn_options opts = with_stdio(stdio::pipe, stdio::null)) {
    opts.stdin_mode = stdio::pipe;
    std::vector<std::string> argv{"cat"};
    auto p = AWAIT(lp, lp.async_spawn(argv, opts));
    EXPECT_TRUE(p) << p.error().message();
    return p ? std::move(*p) : unio::process();
  }
};

TEST_P(process_test, exit_codes_and_output_come_back) {
  auto lp = make_loop();
  auto r = run(*lp, {"sh", "-c", "echo out; echo err >&2; exit 7"});
  ASSERT_FALSE(r.spawn_error) << r.spawn_error.message();
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  ASSERT_TRUE(r.status) << r.status.error().message();
  EXPECT_TRUE(r.status->exited());
  EXPECT_FALSE(r.status->signalled());
  EXPECT_EQ(r.status->code, 7);
  EXPECT_FALSE(r.status->success());
}

TEST_P(process_test, the_loop_member_spawns_and_later_waits_give_the_same_status) {
  auto lp = make_loop();
  std::vector<std::string> argv{"true"};
  auto p = AWAIT(*lp, lp->async_spawn(argv));
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_GT(p->pid(), 0);
  EXPECT_GE(p->pidfd(), 0);
  EXPECT_EQ(p->stdin_fd(), -1);
  EXPECT_FALSE(p->status());
  auto a = AWAIT(*lp, p->async_wait());
  auto b = AWAIT(*lp, p->async_wait());
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_TRUE(a->success());
  EXPECT_TRUE(b->success());
  ASSERT_TRUE(p->status());
  EXPECT_TRUE(p->status()->success());
  unio::op o;
  std::error_code e{EIO, std::generic_category()};
  p->wait(o, [&](unio::op&, unio::result<unio::exit_status> r) { e = r.error(); });
  lp->run();
  EXPECT_FALSE(e) << "the callback form: " << e.message();
}

TEST_P(process_test, spawn_errors_are_the_spawns_result_not_an_exit_status) {
  put_file("not-executable", "#!/bin/sh\nexit 0\n");
  auto lp = make_loop();
  EXPECT_EQ(run(*lp, {"/nonexistent/unio-no-such-program"}).spawn_error,
            std::errc::no_such_file_or_directory);
  EXPECT_EQ(run(*lp, {"unio-no-such-program-on-path"}).spawn_error, std::errc::no_such_file_or_directory);
  EXPECT_EQ(run(*lp, {path("not-executable")}).spawn_error, std::errc::permission_denied);
  EXPECT_EQ(run(*lp, {}).spawn_error, std::errc::invalid_argument);
  unio::spawn_options in_missing_dir;
  in_missing_dir.cwd = path("no-such-dir");
  EXPECT_EQ(run(*lp, {"true"}, in_missing_dir).spawn_error, std::errc::no_such_file_or_directory);
}

TEST_P(process_test, stdin_pipe_is_written_through_the_loop_and_closed_for_eof) {
  auto lp = make_loop();
  unio::process p = start_cat(*lp, with_stdio(stdio::pipe, stdio::pipe));
  ASSERT_GT(p.pid(), 0);
  for (int fd : {p.stdin_fd(), p.stdout_fd()}) {
    EXPECT_NE(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  }
  EXPECT_EQ(p.stderr_fd(), -1);
  auto w = unio::sync_wait(*lp, unio::write_all(*lp, p.stdin_fd(), "hello cat", 9, unio::current_position));
  ASSERT_TRUE(w) << w.error().message();
  p.close_stdin();
  EXPECT_EQ(p.stdin_fd(), -1);
  EXPECT_EQ(read_all(*lp, p.stdout_fd()), "hello cat");
  auto st = AWAIT(*lp, p.async_wait());
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_TRUE(st->success());
}

TEST_P(process_test, cwd_and_environment_added_or_replaced) {
  ::setenv("UNIO_TEST_INHERITED", "yes", 1);
  auto lp = make_loop();
  const std::vector<std::string> argv{"sh", "-c",
                                      "pwd; echo ${UNIO_TEST_ADDED:-unset} ${UNIO_TEST_INHERITED:-unset}"};
  unio::spawn_options added;
  added.cwd = dir();
  added.env = {"UNIO_TEST_ADDED=42"};
  auto r = run(*lp, argv, added);
  ASSERT_FALSE(r.spawn_error) << r.spawn_error.message();
  char real[PATH_MAX];
  ASSERT_NE(::realpath(dir().c_str(), real), nullptr);
  EXPECT_EQ(r.out, std::string(real) + "\n42 yes\n");
  unio::spawn_options replaced;
  replaced.env = {"UNIO_TEST_ADDED=1"};
  replaced.clear_env = true;
  r = run(*lp, argv, replaced);
  EXPECT_EQ(r.out.substr(r.out.find('\n') + 1), "1 unset\n");
  unio::spawn_options overridden;
  overridden.env = {"UNIO_TEST_INHERITED=no"};
  r = run(*lp, argv, overridden);
  EXPECT_EQ(r.out.substr(r.out.find('\n') + 1), "unset no\n");
  ::unsetenv("UNIO_TEST_INHERITED");
}

TEST_P(process_test, null_stdin_reads_end_of_file_at_once) {
  auto lp = make_loop();
  auto r = run(*lp, {"sh", "-c", "cat; echo done"}, with_stdio(stdio::null, stdio::inherit));
  ASSERT_FALSE(r.spawn_error) << r.spawn_error.message();
  EXPECT_EQ(r.out, "done\n");
}

// The parent blocks SIGUSR1 (a signal_set) and ignores SIGPIPE; the child has neither. (glibc's
// posix_spawn leaves its own internal signals, 32 and 33, ignored in the child; they are masked
// out of the comparison.)
TEST_P(process_test, the_child_starts_with_no_blocked_or_ignored_signal) {
  auto lp = make_loop();
  unio::signal_set sigs(*lp, {SIGUSR1});
  struct sigaction ign {
  }, old{};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, &old);
  auto r = run(*lp, {"grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"});
  ::sigaction(SIGPIPE, &old, nullptr);
  ASSERT_FALSE(r.spawn_error) << r.spawn_error.message();
  std::uint64_t blocked = 0, ignored = 0;
  ASSERT_EQ(std::sscanf(r.out.c_str(), "SigBlk: %" SCNx64 " SigIgn: %" SCNx64, &blocked, &ignored), 2)
      << r.out;
  const std::uint64_t glibc_internal = (std::uint64_t{1} << 31) | (std::uint64_t{1} << 32);
  EXPECT_EQ(blocked, 0u) << r.out;
  EXPECT_EQ(ignored & ~glibc_internal, 0u) << r.out;
}

// A child killed through the pidfd is reported signalled; once it is reaped, kill() is ESRCH
// (the pid may name another process by then).
TEST_P(process_test, kill_goes_through_the_pidfd_and_is_esrch_once_reaped) {
  auto lp = make_loop();
  unio::process p = start_cat(*lp);
  ASSERT_GT(p.pid(), 0);
  EXPECT_FALSE(p.kill(0));
  EXPECT_FALSE(p.kill(SIGTERM));
  auto st = AWAIT(*lp, p.async_wait());
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_TRUE(st->signalled());
  EXPECT_FALSE(st->exited());
  EXPECT_EQ(st->signal, SIGTERM);
  EXPECT_FALSE(st->core_dumped);
  EXPECT_EQ(p.kill(SIGTERM), std::errc::no_such_process);
  EXPECT_EQ(unio::process().kill(SIGTERM), std::errc::no_such_process);
}

// A wait is cancelled (with_timeout, loop::cancel); the child goes on, and a later wait reaps it.
TEST_P(process_test, a_cancelled_wait_leaves_the_child_to_a_later_wait) {
  auto lp = make_loop();
  unio::process p = start_cat(*lp);
  ASSERT_GT(p.pid(), 0);
  auto timed = unio::sync_wait(*lp, [](unio::loop& lp, unio::process& p) -> unio::task<std::error_code> {
    co_return (co_await unio::with_timeout(lp, p.async_wait(), 2ms)).error();
  }(*lp, p));
  EXPECT_EQ(timed, std::errc::timed_out);
  unio::op w, t;
  std::error_code e;
  p.wait(w, [&](unio::op&, unio::result<unio::exit_status> r) { e = r.error(); });
  lp->timeout(t, 1ms, [&](unio::op&) { lp->cancel(w); });
  lp->run();
  EXPECT_EQ(e, std::errc::operation_canceled);
  EXPECT_TRUE(is_our_child(p.pid()));
  p.close_stdin();
  auto st = AWAIT(*lp, p.async_wait());
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_TRUE(st->success());
}

TEST_P(process_test, new_process_group_makes_the_child_a_group_leader) {
  auto lp = make_loop();
  for (bool group : {false, true}) {
    unio::spawn_options opts = with_stdio(stdio::pipe, stdio::null);
    opts.new_process_group = group;
    unio::process p = start_cat(*lp, opts);
    ASSERT_GT(p.pid(), 0);
    EXPECT_EQ(::getpgid(p.pid()), group ? p.pid() : ::getpgrp());
    p.close_stdin();
    EXPECT_TRUE(AWAIT(*lp, p.async_wait()));
  }
}

// Destroying the process object without a wait: the child goes on (here until its stdin, closed
// with the object, reaches end of file), and the loop reaps it; no zombie is left.
TEST_P(process_test, a_process_destroyed_without_wait_is_reaped_by_the_loop) {
  auto lp = make_loop();
  pid_t pid = -1;
  {
    unio::process p = start_cat(*lp);
    pid = p.pid();
    ASSERT_GT(pid, 0);
  }
  lp->run();  // returns once the loop has reaped the child
  EXPECT_FALSE(is_our_child(pid)) << "pid " << pid << " is still a child (a zombie?)";
  EXPECT_EQ(errno, ECHILD);
}

INSTANTIATE_ALL_BACKENDS(process_test);

}  // namespace
