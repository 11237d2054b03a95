// Real faults, not mocked: a full file system (a 1 MiB tmpfs in a private mount namespace) and
// an exhausted file-descriptor table (RLIMIT_NOFILE). Each case runs in a forked child, so the
// mount and the limit die with it; the child reports through its exit code and a pipe, and is
// bounded by alarm(): a size-limited tmpfs mounted in a private mount namespace gives ENOSPC,
// and a lowered RLIMIT_NOFILE gives EMFILE.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "conformance/backends.hpp"
#include "fault/child.hpp"
#include "fault/test_data.hpp"
#include "fault/mounts.hpp"
#include "unio/unio.hpp"

namespace {

using namespace unio::test;

// Byte `off` of the data the ENOSPC test writes: position-dependent, so a misplaced chunk shows.

// Checks that the file holds exactly `n` bytes of byte_at(); "" when it does.
std::string holds_exactly(const std::string& file, std::uint64_t n) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return errstr("stat", errno);
  if (static_cast<std::uint64_t>(st.st_size) != n)
    return "file has " + std::to_string(st.st_size) + " bytes, acknowledged " + std::to_string(n);
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  std::vector<char> back(n);
  bool read_ok = fd >= 0 && ::pread(fd, back.data(), back.size(), 0) == static_cast<ssize_t>(n);
  if (fd >= 0) ::close(fd);
  if (!read_ok) return errstr("read back", errno);
  for (std::uint64_t i = 0; i < n; ++i)
    if (back[i] != byte_at(i)) return "byte " + std::to_string(i) + " differs";
  return "";
}

// Parameter: every backend and io_uring variant (tests/conformance/backends.hpp). These faults
// are real, so they reach the kernel's own I/O paths too (io_uring, native AIO, glibc's AIO).
class fault_real : public backend_test {
 protected:
  unio::loop_options options() const {
    unio::loop_options o = backend_test::options();
    o.pool_size = 2;
    return o;
  }
};

// R1: fill a 1 MiB tmpfs through the loop. The first error is ENOSPC, every byte acknowledged
// before it (short writes included) is in the file, and nothing else is.
TEST_P(fault_real, enospc_on_full_tmpfs_keeps_exactly_the_acknowledged_bytes) {
  scratch_dir dir;
  ASSERT_TRUE(dir.ok()) << std::strerror(errno);
  auto opts = options();
  auto res = run_in_child([&](std::string& msg) -> int {
    if (int rc = private_mount_ns(msg); rc != 0) return rc;
    if (int rc = mount_tmpfs(dir.path(), "size=1m", msg); rc != 0) return rc;
    const std::string file = dir / "fill";
    unio::loop lp(opts);
    constexpr std::size_t chunk = 64 * 1024;
    std::vector<char> buf(chunk);
    std::uint64_t acked = 0;
    std::size_t short_writes = 0;
    std::error_code first_error;
    unio::sync_wait(lp, [&]() -> unio::task<void> {
      auto fd = co_await lp.async_open(AT_FDCWD, file.c_str(), {.flags = O_WRONLY | O_CREAT | O_TRUNC, .mode = 0644});
      if (!fd) { first_error = fd.error(); co_return; }
      while (acked < 4 * 1024 * 1024) {  // far beyond the 1 MiB: must stop on ENOSPC first
        for (std::size_t i = 0; i < chunk; ++i) buf[i] = byte_at(acked + i);
        auto r = co_await lp.async_write(*fd, buf.data(), chunk, acked);
        if (!r) { first_error = r.error(); break; }
        if (*r < chunk) ++short_writes;
        acked += *r;
      }
      // write_all from where it stopped fails the same way, and acknowledges nothing more.
      auto again = co_await unio::write_all(lp, *fd, buf.data(), chunk, acked);
      if (again || again.error() != std::errc::no_space_on_device) first_error = std::make_error_code(std::errc::bad_message);
      auto s = co_await lp.async_fsync(*fd);
      if (!s) first_error = s.error();
      (void)co_await lp.async_close(*fd);
    }());
    if (first_error != std::errc::no_space_on_device)
      return report(msg, "first error was '" + first_error.message() + "', not ENOSPC", 2);
    if (acked == 0 || acked > 1024 * 1024) return report(msg, "acknowledged " + std::to_string(acked) + " bytes", 3);
    if (std::string bad = holds_exactly(file, acked); !bad.empty()) return report(msg, bad, 5);
    msg = "acknowledged " + std::to_string(acked) + " bytes, " + std::to_string(short_writes) + " short write(s)";
    return 0;
  });
  EXPECT_CHILD_OK(res);
}

// A real short write, made by the kernel itself (so on io_uring and AIO too, where the syscall
// seam cannot reach): with RLIMIT_FSIZE at 8 KiB and SIGXFSZ ignored, a 16 KiB write transfers
// 8 KiB and says so; write_all goes on from there and gets EFBIG; the file holds exactly the
// acknowledged bytes.
TEST_P(fault_real, short_write_then_efbig_at_rlimit_fsize) {
  scratch_dir dir;
  ASSERT_TRUE(dir.ok()) << std::strerror(errno);
  const std::string file = dir / "capped";
  auto opts = options();
  auto res = run_in_child([&](std::string& msg) -> int {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit rl{};
    ::getrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = 8192;
    if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) return report(msg, errstr("setrlimit(RLIMIT_FSIZE)", errno), k_skip);
    unio::loop lp(opts);
    std::vector<char> buf(16384);
    for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = byte_at(i);
    unio::result<std::size_t> first = std::make_error_code(std::errc::bad_message), rest = first;
    unio::sync_wait(lp, [&]() -> unio::task<void> {
      auto fd = co_await lp.async_open(AT_FDCWD, file.c_str(), {.flags = O_WRONLY | O_CREAT | O_TRUNC, .mode = 0644});
      if (!fd) co_return;
      first = co_await lp.async_write(*fd, buf.data(), buf.size(), 0);
      if (first) rest = co_await unio::write_all(lp, *fd, buf.data() + *first, buf.size() - *first, *first);
      (void)co_await lp.async_close(*fd);
    }());
    if (!first || *first != 8192)
      return report(msg, "first write: " + (first ? std::to_string(*first) + " bytes" : first.error().message()), 2);
    if (rest || rest.error() != std::errc::file_too_large)
      return report(msg, "write_all past the limit: " + (rest ? std::string("succeeded") : rest.error().message()), 3);
    std::string bad = holds_exactly(file, 8192);
    return bad.empty() ? 0 : report(msg, bad, 4);
  });
  EXPECT_CHILD_OK(res);
}

// Lowers RLIMIT_NOFILE to a few above the fds open now and fills the table; returns the filler
// fds (closing one frees a slot), or an empty vector with msg set.
std::vector<int> exhaust_fds(std::string& msg) {
  int probe = ::dup(0);
  if (probe < 0) {
    msg = errstr("dup", errno);
    return {};
  }
  ::close(probe);
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = static_cast<rlim_t>(probe + 8);
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    msg = errstr("setrlimit", errno);
    return {};
  }
  std::vector<int> fillers;
  for (int fd; (fd = ::dup(0)) >= 0;) fillers.push_back(fd);
  if (errno != EMFILE) {
    msg = errstr("dup did not stop with EMFILE", errno);
    fillers.clear();
  }
  return fillers;
}

double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// R8: with the fd table full, open and accept complete with EMFILE through the loop; with a
// connection left in the backlog the loop then sleeps (no busy retry of accept), and once an
// fd is freed the backlog is served.
TEST_P(fault_real, emfile_from_open_and_accept_and_the_loop_does_not_spin) {
  auto opts = options();
  auto res = run_in_child([&](std::string& msg) -> int {
    unio::loop lp(opts);
    auto any = unio::endpoint::parse("127.0.0.1", 0);
    auto l1 = unio::tcp_listen(*any);
    auto l2 = unio::tcp_listen(*any);
    if (!l1 || !l2) return report(msg, "tcp_listen failed", 1);
    auto e1 = unio::local_endpoint(*l1), e2 = unio::local_endpoint(*l2);
    int c1 = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int c2 = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c1 < 0 || c2 < 0 || ::connect(c1, e1->addr(), e1->length) != 0) return report(msg, errstr("client", errno), 1);

    // An accept parked on an empty backlog before the table fills up. (Parking it afterwards is
    // not possible: Linux's accept4 reserves the new fd before it looks at the backlog, so it
    // fails with EMFILE at once even when no connection waits.)
    unio::op acc;
    std::int64_t acc_res = 0;
    int acc_calls = 0;
    lp.accept(acc, *l2, nullptr, nullptr, [&](unio::op& o) { ++acc_calls, acc_res = o.raw_result(); });
    lp.poll();
    if (acc_calls != 0) return report(msg, "accept on an empty backlog completed early: " + std::to_string(acc_res), 4);

    // Asked now: is_native() probes the kernel, which needs fds.
    const bool uring_accept = lp.backend_name() == "io_uring" && lp.is_native(unio::op_code::accept);
    std::vector<int> fillers = exhaust_fds(msg);
    if (fillers.empty()) return 1;

    // open: EMFILE.
    auto fd = unio::sync_wait(lp, [&]() -> unio::task<unio::result<int>> {
      co_return co_await lp.async_open(AT_FDCWD, "/dev/null", {.flags = O_RDONLY});
    }());
    // Errors are compared by value here: comparing with std::errc makes a virtual call on the
    // category, and UBSan's vptr check needs a free fd (it probes memory through a pipe), so
    // it reports a false "invalid vptr" while the table is full.
    if (fd || fd.error().value() != EMFILE)
      return report(msg, "open: expected EMFILE, got " + (fd ? std::string("an fd") : fd.error().message()), 2);

    // accept with a connection already waiting: EMFILE at once.
    auto a1 = unio::sync_wait(lp, [&]() -> unio::task<unio::result<int>> { co_return co_await lp.async_accept(*l1); }());
    if (a1 || a1.error().value() != EMFILE)
      return report(msg, "accept: expected EMFILE, got " + (a1 ? std::string("an fd") : a1.error().message()), 3);

    // The parked accept: EMFILE when its connection arrives. io_uring's own accept takes
    // RLIMIT_NOFILE when the kernel prepares the SQE, before the limit was lowered here, so it
    // may get an fd (the fd table had room above the new limit).
    if (::connect(c2, e2->addr(), e2->length) != 0) return report(msg, errstr("connect c2", errno), 4);
    while (acc_calls == 0) lp.run_once();
    if (acc_res >= 0 && uring_accept) ::close(static_cast<int>(acc_res));
    else if (acc_res != -EMFILE) return report(msg, "parked accept: " + std::to_string(acc_res), 5);

    // l1's backlog (and l2's, unless io_uring took it) still holds a connection that cannot be accepted. The loop, given only a
    // 300 ms timer, must sleep through it rather than retry accept in a busy loop.
    double cpu0 = cpu_seconds();
    unio::sync_wait(lp, [&]() -> unio::task<void> { (void)co_await lp.async_sleep(std::chrono::milliseconds(300)); }());
    double used = cpu_seconds() - cpu0;
    if (used > 0.1) return report(msg, "loop used " + std::to_string(used) + " s of CPU in a 0.3 s idle wait", 6);

    // Free one fd: the waiting connection is accepted.
    ::close(fillers.back());
    fillers.pop_back();
    auto a2 = unio::sync_wait(lp, [&]() -> unio::task<unio::result<int>> { co_return co_await lp.async_accept(*l1); }());
    if (!a2) return report(msg, "accept after freeing an fd: " + a2.error().message(), 7);
    ::close(*a2);
    msg = "cpu during idle wait " + std::to_string(used) + " s";
    return 0;
  });
  EXPECT_CHILD_OK(res);
}

INSTANTIATE_ALL_BACKENDS(fault_real);

}  // namespace
