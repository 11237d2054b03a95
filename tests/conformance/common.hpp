// Shared helpers of the conformance suite: a per-test temporary directory, a loop on the
// backend under test, a hang watchdog and small helpers that run one op to completion.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>

#include "backends.hpp"

namespace unio::test {

// A conformance test with a fresh temporary directory (removed in TearDown) and an alarm that
// kills the process if one test hangs, so a hang is reported instead of stalling the run.
class conformance_test : public backend_test {
 protected:
  static constexpr unsigned k_watchdog_s = 60;

  void SetUp() override {
    backend_test::SetUp();
    if (IsSkipped()) return;
    char tmpl[] = "/tmp/unio-conf-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
    dir_ = tmpl;
    dirfd_ = ::open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(dirfd_, 0) << std::strerror(errno);
    ::alarm(k_watchdog_s);
  }

  void TearDown() override {
    ::alarm(0);
    if (dirfd_ >= 0) ::close(dirfd_);
    dirfd_ = -1;
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  std::unique_ptr<unio::loop> make_loop() const { return std::make_unique<unio::loop>(options()); }

  // Absolute path of `name` inside the test directory.
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  int dirfd() const noexcept { return dirfd_; }
  const std::string& dir() const noexcept { return dir_; }

  // Creates (or replaces) a file with `contents`, with plain syscalls.
  void put_file(const std::string& name, const std::string& contents) const {
    int fd = ::open(path(name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0) << name << ": " << std::strerror(errno);
    ASSERT_EQ(::write(fd, contents.data(), contents.size()), static_cast<ssize_t>(contents.size()));
    ::close(fd);
  }

  // The whole contents of a file, read with plain syscalls ("<missing>" when it cannot be opened).
  std::string get_file(const std::string& name) const { return slurp(path(name)); }

  static std::string slurp(const std::string& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "<missing>";
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
  }

  bool exists(const std::string& name) const {
    struct stat st{};
    return ::lstat(path(name).c_str(), &st) == 0;
  }

  // Opens a file of the test directory with plain syscalls.
  int raw_open(const std::string& name, int flags, mode_t mode = 0600) const {
    return ::open(path(name).c_str(), flags | O_CLOEXEC, mode);
  }

 private:
  std::string dir_;
  int dirfd_ = -1;
};

// Submits one op with `submit(op&, handler)`, runs the loop until it has no work left and
// returns the op's raw result. Fails the test unless the handler ran exactly once.
template <class Submit>
std::int64_t run_one(unio::loop& lp, Submit&& submit) {
  unio::op o;
  int calls = 0;
  std::int64_t res = 0;
  submit(o, [&calls, &res](unio::op& x) {
    ++calls;
    res = x.raw_result();
  });
  EXPECT_EQ(calls, 0) << "a handler ran inside the submitting call";
  lp.run();
  EXPECT_EQ(calls, 1) << "handler must run exactly once";
  EXPECT_FALSE(o.busy());
  return res;
}

// Counts handler calls and keeps the last result.
struct probe {
  int calls = 0;
  std::int64_t res = 1;
  auto handler() {
    return [this](unio::op& o) {
      ++calls;
      res = o.raw_result();
    };
  }
};

// A connected pair of non-blocking stream sockets (AF_UNIX).
inline std::pair<int, int> socket_pair() {
  int sv[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) return {-1, -1};
  return {sv[0], sv[1]};
}

// Wraps a co_await of a named op in a task, since awaitables are neither copyable nor movable.
// The loop runs until the task is done.
#define AWAIT(lp, expr) unio::sync_wait(lp, [&]() -> unio::task<decltype((expr).await_resume())> { co_return co_await (expr); }())

// -errno, to compare with op::raw_result().
constexpr std::int64_t neg(int e) noexcept { return -static_cast<std::int64_t>(e); }

}  // namespace unio::test
