// Description: a writer process killed with SIGKILL mid-stream. A child process writes 4 KiB
// records to a file through a loop on the backend under test, one after another, and reports
// each completed write on a pipe; the test kills it after a number of reports that changes from
// run to run (8 to 71), with writes in flight. Every write the child saw complete is in the file,
// byte for byte: a completed write is in the page cache, which outlives the process.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "conformance/backends.hpp"
#include "fault/child.hpp"
#include "fault/mounts.hpp"
#include "unio/unio.hpp"

namespace {

using namespace unio::test;

constexpr std::size_t k_record = 4096;
constexpr int k_max_records = 100000;

void fill_record(char* p, int i) {
  for (std::size_t j = 0; j < k_record; ++j) p[j] = static_cast<char>((i * 37 + static_cast<int>(j) * 11) % 241);
}

// The child: writes records to `path` until killed, reporting each completed one on `ack`. Exits
// with k_skip when its backend is unavailable in a forked child (posix_aio after the parent used
// glibc's AIO).
[[noreturn]] void write_until_killed(const unio::loop_options& opts, const std::string& path, int ack) {
  ::alarm(20);
  std::optional<unio::loop> made;
  try {
    made.emplace(opts);
  } catch (const std::system_error& e) {
    ::_exit(e.code().value() == ENOTSUP ? k_skip : 4);
  }
  unio::loop& lp = *made;
  unio::sync_wait(lp, [&]() -> unio::task<void> {
    auto fd = co_await lp.async_open(AT_FDCWD, path.c_str(), {.flags = O_WRONLY | O_CREAT | O_TRUNC, .mode = 0644});
    if (!fd) co_return;
    std::vector<char> buf(k_record);
    for (int i = 0; i < k_max_records; ++i) {
      fill_record(buf.data(), i);
      auto r = co_await lp.async_write(*fd, buf.data(), k_record, static_cast<std::uint64_t>(i) * k_record);
      if (!r || *r != k_record || ::write(ack, &i, sizeof i) != sizeof i) co_return;
    }
  }());
  ::_exit(3);
}

// Reads acks until `kill_after` came, kills the writer, then takes the acks it sent before it
// died. Returns how many records were acknowledged (they are numbered 0, 1, ... in order).
int acks_until_killed(pid_t pid, int ack, int kill_after, std::string& bad) {
  int seen = 0, rec = 0;
  for (; ::read(ack, &rec, sizeof rec) == sizeof rec; ++seen) {
    if (rec != seen) bad = "ack " + std::to_string(rec) + " out of order";
    if (seen + 1 == kill_after) ::kill(pid, SIGKILL);
  }
  return seen;
}

std::string check_records(const std::string& path, int n) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errstr("open " + path, errno);
  std::vector<char> want(k_record), got(k_record);
  std::string bad;
  for (int i = 0; i < n && bad.empty(); ++i) {
    fill_record(want.data(), i);
    if (::pread(fd, got.data(), k_record, static_cast<off_t>(i) * k_record) != static_cast<ssize_t>(k_record) || got != want)
      bad = "acknowledged record " + std::to_string(i) + " of " + std::to_string(n) + " is missing or torn";
  }
  ::close(fd);
  return bad;
}

class killed_writer : public backend_test {};

TEST_P(killed_writer, every_write_it_saw_complete_is_in_the_file) {
  scratch_dir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir / "log";
  const int kill_after = 8 + static_cast<int>(std::chrono::steady_clock::now().time_since_epoch().count() % 64);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(p[0]);
    write_until_killed(options(), path, p[1]);
  }
  ::close(p[1]);
  std::string bad;
  int acked = acks_until_killed(pid, p[0], kill_after, bad);
  ::close(p[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (WIFEXITED(st) && WEXITSTATUS(st) == k_skip)
    GTEST_SKIP() << GetParam() << " is unavailable in a forked child (glibc's AIO state does not survive fork)";
  ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << "the writer ended before it was killed, after " << acked;
  EXPECT_EQ(bad, "");
  EXPECT_GE(acked, kill_after);
  EXPECT_EQ(check_records(path, acked), "") << "killed after " << kill_after << " acks";
}

INSTANTIATE_ALL_BACKENDS(killed_writer);

}  // namespace
