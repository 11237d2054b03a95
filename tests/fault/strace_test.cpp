// Description: transient errors from the kernel calls a backend makes itself, which the syscall
// seam cannot reach: strace injects them (strace -f -e inject=SYSCALL:error=E:when=2+3, every
// third call from the second on: not every second one, which would hit io_uring's submitting
// call on every turn, a permanent failure rather than a transient one; io_submit: every second
// call from the first) into this test binary, which runs strace_driver.workload on
// the backend under test: O_DIRECT reads and writes, timers, and TCP accept, connect, send and
// recv on one loop, then sleeps and reads one at a time. Every op must complete exactly once with
// its right result:
//   io_uring_enter EINTR, EAGAIN, EBUSY    io_uring and its variants (the SQEs stay queued);
//   epoll_pwait2/epoll_wait EINTR          the reactor of every other backend;
//   io_getevents EINTR, io_submit EAGAIN   linux_aio (the iocbs are submitted again);
//   accept4 ECONNABORTED                   the reactor (the aborted connection is skipped, the
//                                          accept waits for the next one).
// Skipped where strace is missing or cannot trace (no ptrace).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "conformance/backends.hpp"
#include "fault/child.hpp"
#include "fault/test_data.hpp"
#include "fault/mounts.hpp"
#include "unio/unio.hpp"

namespace {

using namespace unio::test;

constexpr const char* k_driver_env = "UNIO_STRACE_BACKEND";
constexpr const char* k_driver_dir_env = "UNIO_STRACE_DIR";
constexpr int k_files_ops = 16, k_timers = 8, k_conns = 4;

// Counts an op's completions and keeps its last result.
struct tally {
  unio::op op;
  int calls = 0;
  std::int64_t res = 0;
  auto handler() {
    return [this](unio::op& o) { ++calls, res = o.raw_result(); };
  }
};

// A file of n blocks for the workload, O_DIRECT when the file system takes it (so linux_aio
// submits to the kernel); -1 on failure.
int workload_file(const std::string& path, std::size_t n) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0600);
  if (fd < 0) fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  std::vector<char> v(n * k_block, 'r');
  std::unique_ptr<char, free_deleter> b(static_cast<char*>(std::aligned_alloc(k_block, v.size())));
  std::memcpy(b.get(), v.data(), v.size());
  if (::pwrite(fd, b.get(), v.size(), 0) != static_cast<ssize_t>(v.size())) return ::close(fd), -1;
  return fd;
}

// The ops of the workload and what each must give.
class workload {
 public:
  explicit workload(unio::loop& lp) : lp_(lp) {}
  ~workload() {
    for (int fd : fds_) ::close(fd);
  }
  std::string start(const std::string& dir);
  std::string check();

 private:
  std::string start_sockets();
  unio::loop& lp_;
  std::vector<int> fds_;
  std::unique_ptr<char, free_deleter> blocks_;
  tally reads_[k_files_ops], writes_[k_files_ops], timers_[k_timers], accepts_[k_conns], connects_[k_conns];
  int clients_[k_conns] = {};
  unio::endpoint at_;
};

std::string workload::start(const std::string& dir) {
  int in = workload_file(dir + "/in", k_files_ops), out = workload_file(dir + "/out", k_files_ops);
  if (in < 0 || out < 0) return errstr("workload files", errno);
  fds_ = {in, out};
  blocks_.reset(static_cast<char*>(std::aligned_alloc(k_block, 2 * k_files_ops * k_block)));
  std::memset(blocks_.get(), 'w', 2 * k_files_ops * k_block);
  for (int i = 0; i < k_files_ops; ++i) {
    const auto off = static_cast<std::uint64_t>(i) * k_block;
    lp_.read(reads_[i].op, in, blocks_.get() + off, k_block, off, reads_[i].handler());
    lp_.write(writes_[i].op, out, blocks_.get() + (k_files_ops + i) * k_block, k_block, off, writes_[i].handler());
  }
  for (int i = 0; i < k_timers; ++i) lp_.timeout(timers_[i].op, std::chrono::milliseconds(i + 1), timers_[i].handler());
  return start_sockets();
}

std::string workload::start_sockets() {
  auto lfd = unio::tcp_listen(*unio::endpoint::parse("127.0.0.1", 0));
  if (!lfd) return "tcp_listen: " + lfd.error().message();
  fds_.push_back(*lfd);
  at_ = *unio::local_endpoint(*lfd);
  for (int i = 0; i < k_conns; ++i) {
    clients_[i] = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    fds_.push_back(clients_[i]);
    lp_.accept(accepts_[i].op, *lfd, nullptr, nullptr, accepts_[i].handler());
    lp_.connect(connects_[i].op, clients_[i], at_.addr(), at_.length, connects_[i].handler());
  }
  return "";
}

// "" when every op ran once with its right result.
std::string workload::check() {
  auto once = [](const tally& t, std::int64_t want, const char* what, int i) -> std::string {
    bool ok = t.calls == 1 && (want < 0 ? t.res >= 0 : t.res == want);
    return ok ? "" : std::string(what) + " " + std::to_string(i) + ": " + std::to_string(t.calls) + " completions, result " + std::to_string(t.res);
  };
  for (int i = 0; i < k_files_ops; ++i) {
    if (auto b = once(reads_[i], k_block, "read", i); !b.empty()) return b;
    if (auto b = once(writes_[i], k_block, "write", i); !b.empty()) return b;
    if (blocks_.get()[static_cast<std::size_t>(i) * k_block] != 'r') return "read " + std::to_string(i) + ": wrong bytes";
  }
  for (int i = 0; i < k_timers; ++i)
    if (auto b = once(timers_[i], 0, "timer", i); !b.empty()) return b;
  for (int i = 0; i < k_conns; ++i) {
    if (auto b = once(accepts_[i], -1, "accept", i); !b.empty()) return b;
    if (auto b = once(connects_[i], 0, "connect", i); !b.empty()) return b;
    fds_.push_back(static_cast<int>(accepts_[i].res));
  }
  return "";
}

// Then, one at a time so that each needs its own wait and its own submission: a 2 ms sleep and a
// read of one block, 8 times. "" when each gave its right result.
std::string one_at_a_time(unio::loop& lp, const std::string& dir) {
  int fd = workload_file(dir + "/seq", 1);
  if (fd < 0) return errstr("seq file", errno);
  std::unique_ptr<char, free_deleter> b(static_cast<char*>(std::aligned_alloc(k_block, k_block)));
  std::string bad = unio::sync_wait(lp, [&]() -> unio::task<std::string> {
    for (int i = 0; i < 8; ++i) {
      if (auto t = co_await lp.async_sleep(std::chrono::milliseconds(2)); !t) co_return "sleep: " + t.error().message();
      auto r = co_await lp.async_read(fd, b.get(), k_block, 0);
      if (!r || *r != k_block || b.get()[0] != 'r') co_return "sequential read " + std::to_string(i) + " failed";
    }
    co_return "";
  }());
  ::close(fd);
  return bad;
}

// The workload run under strace; only when strace_fault starts this binary for it (in its
// scratch directory, which it removes even when the driver is killed).
TEST(strace_driver, workload) {
  const char* param = std::getenv(k_driver_env);
  const char* dir = std::getenv(k_driver_dir_env);
  if (param == nullptr || dir == nullptr) GTEST_SKIP() << "runs only under strace, started by the strace_fault tests";
  ::alarm(30);
  unio::loop lp(options_for(param));
  workload w(lp);
  ASSERT_EQ(w.start(dir), "");
  lp.run();
  EXPECT_EQ(w.check(), "");
  EXPECT_EQ(one_at_a_time(lp, dir), "");
}

// A fault to inject and the backends that make the system call.
struct injection {
  const char* syscalls;  // for -e trace= and -e inject=
  const char* error;
  bool (*applies)(const std::string& backend);
  const char* when = "2+3";  // strace's when=: every third call from the second on
};
bool on_io_uring(const std::string& b) { return b == "io_uring"; }
bool on_reactor(const std::string& b) { return b != "io_uring"; }
bool on_linux_aio(const std::string& b) { return b == "linux_aio"; }

class strace_fault : public backend_test {
 protected:
  // Runs the driver under strace with `inj`; skips where it does not apply or strace cannot run.
  void run_injected(const injection& inj);
};

// Runs argv with `env` ("NAME=value" each) added, its output to `log`; returns the exit code
// (or 128 + signal).
int run_logged(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    // The child runs the one test it is given, whatever shard of the suite this process runs.
    ::unsetenv("GTEST_TOTAL_SHARDS");
    ::unsetenv("GTEST_SHARD_INDEX");
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

std::string slurp(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  std::string out;
  char buf[4096];
  for (ssize_t n; fd >= 0 && (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  if (fd >= 0) ::close(fd);
  return out;
}
// The last 4000 bytes of a file.
std::string slurp_tail(const std::string& path) {
  std::string out = slurp(path);
  return out.size() > 4000 ? out.substr(out.size() - 4000) : out;
}
long count_of(const std::string& path, const std::string& needle) {
  std::string text = slurp(path);
  long n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// ASAN_OPTIONS for the driver: LeakSanitizer cannot run under ptrace, so it is turned off there
// (the same workload runs leak-checked in the other fault tests).
std::string no_leak_check() {
  const char* now = std::getenv("ASAN_OPTIONS");
  return std::string("ASAN_OPTIONS=") + (now != nullptr ? now : "") + ":detect_leaks=0";
}

void strace_fault::run_injected(const injection& inj) {
  const std::string b(unio::loop(options()).backend_name());  // what "auto" chose
  if (!inj.applies(b)) GTEST_SKIP() << b << " does not call " << inj.syscalls;
  if (!shell("strace -o /dev/null true")) GTEST_SKIP() << "strace is missing or cannot trace here";
  scratch_dir dir;
  ASSERT_TRUE(dir.ok());
  char self[4096] = {};
  ASSERT_GT(::readlink("/proc/self/exe", self, sizeof self - 1), 0);
  const std::string spec = std::string(inj.syscalls) + ":error=" + inj.error + ":when=" + inj.when;
  const std::string log = dir / "log", trace = dir / "trace";
  int rc = run_logged({"strace", "-f", "-o", trace, "-e", std::string("trace=") + inj.syscalls, "-e",
                       "inject=" + spec, self, "--gtest_filter=strace_driver.workload"},
                      {std::string(k_driver_env) + "=" + GetParam(), std::string(k_driver_dir_env) + "=" + dir.path(),
                       no_leak_check()},
                      log);
  std::string out = slurp_tail(log);
  EXPECT_EQ(rc, 0) << "under strace -e inject=" << spec << ":\n" << out;
  EXPECT_NE(out.find("[  PASSED  ] 1 test"), std::string::npos) << out;
  EXPECT_GT(count_of(trace, "(INJECTED)"), 0) << "strace injected nothing into " << inj.syscalls;
}

constexpr injection k_enter_eintr{"io_uring_enter", "EINTR", on_io_uring};
constexpr injection k_enter_eagain{"io_uring_enter", "EAGAIN", on_io_uring};
constexpr injection k_enter_ebusy{"io_uring_enter", "EBUSY", on_io_uring};
constexpr injection k_epoll_eintr{"epoll_wait,epoll_pwait2", "EINTR", on_reactor};
constexpr injection k_getevents_eintr{"io_getevents", "EINTR", on_linux_aio};
constexpr injection k_submit_eagain{"io_submit", "EAGAIN", on_linux_aio, "1+2"};  // one batch: its first call
constexpr injection k_accept_aborted{"accept4", "ECONNABORTED", on_reactor};

TEST_P(strace_fault, io_uring_enter_eintr_is_retried) { run_injected(k_enter_eintr); }
TEST_P(strace_fault, io_uring_enter_eagain_keeps_the_sqes) { run_injected(k_enter_eagain); }
TEST_P(strace_fault, io_uring_enter_ebusy_keeps_the_sqes) { run_injected(k_enter_ebusy); }
TEST_P(strace_fault, epoll_wait_eintr_is_retried) { run_injected(k_epoll_eintr); }
TEST_P(strace_fault, io_getevents_eintr_is_retried) { run_injected(k_getevents_eintr); }
TEST_P(strace_fault, io_submit_eagain_submits_again) { run_injected(k_submit_eagain); }
TEST_P(strace_fault, accept4_econnaborted_waits_for_the_next_connection) { run_injected(k_accept_aborted); }

INSTANTIATE_ALL_BACKENDS(strace_fault);

}  // namespace
