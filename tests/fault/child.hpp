// Runs a fault test's body in a forked child, so that what the fault needs (a private mount
// namespace, a lowered rlimit, a dead file system) dies with the child. The child reports
// through its exit code and a message on a pipe, and is bounded by alarm(): a hang is reported
// as "killed by signal 14" instead of stalling the run.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <system_error>

namespace unio::test {

// The exit code by which a child says "this machine cannot make the fault" (then the test skips).
inline constexpr int k_skip = 77;

struct child_result {
  int code;         // the child's exit code, or 128 + signal
  std::string msg;  // what the child reported
};

inline std::string errstr(const std::string& what, int e) { return what + ": " + std::strerror(e); }

// Sets the child's message and returns its exit code.
inline int report(std::string& msg, std::string text, int code) {
  msg = std::move(text);
  return code;
}

namespace detail_child {
inline std::string read_all(int fd) {
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    msg.append(buf, static_cast<std::size_t>(n));
  }
  return msg;
}
}  // namespace detail_child

// Runs fn(msg) in a forked child killed by SIGALRM after `seconds`. A loop the child cannot create
// because its backend is unavailable there makes the child report k_skip.
inline child_result run_in_child(const std::function<int(std::string&)>& fn, unsigned seconds = 20) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return {-1, errstr("pipe", errno)};
  pid_t pid = ::fork();
  if (pid < 0) return {-1, errstr("fork", errno)};
  if (pid == 0) {
    ::close(p[0]);
    ::alarm(seconds);
    std::string msg;
    int rc = 1;
    try {
      rc = fn(msg);
    } catch (const std::system_error& e) {
      // A backend the child cannot use (posix_aio in a child of a process that used it: glibc's
      // AIO state does not survive fork) is a skip, with the library's reason.
      const bool unavailable = e.code().value() == ENOTSUP && std::strstr(e.what(), "unavailable") != nullptr;
      msg = std::string(unavailable ? "" : "exception: ") + e.what();
      if (unavailable) rc = k_skip;
    } catch (const std::exception& e) {
      msg = std::string("exception: ") + e.what();
    }
    (void)!::write(p[1], msg.data(), msg.size());
    ::_exit(rc);
  }
  ::close(p[1]);
  std::string msg = detail_child::read_all(p[0]);
  ::close(p[0]);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(st)) return {128 + WTERMSIG(st), msg + " (killed by signal " + std::to_string(WTERMSIG(st)) + ")"};
  return {WEXITSTATUS(st), msg};
}

}  // namespace unio::test

// Skips on k_skip, else expects exit code 0; records the child's message either way.
#define EXPECT_CHILD_OK(res)                               \
  do {                                                     \
    auto r_ = (res);                                       \
    if (r_.code == ::unio::test::k_skip) GTEST_SKIP() << r_.msg; \
    EXPECT_EQ(r_.code, 0) << r_.msg;                       \
    RecordProperty("detail", r_.msg);                      \
  } while (0)
