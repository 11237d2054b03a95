// Fault-seam tests: faults injected through the syscall table (faulty_syscalls.hpp), on every
// backend and io_uring variant, for the ops whose system calls go through the table there
// (seam_reaches: all of them on sync, threadpool and linux_aio with buffered files; what is
// delegated to the pool on io_uring, so every file op on io_uring_delegate; sockets, readv/writev
// and current-position transfers on posix_aio). A test whose op the seam cannot reach skips with
// that reason; the backend meets the same fault for real elsewhere:
//   EINTR      the kernel's own I/O and glibc's AIO threads retry it themselves; what reaches
//              io_uring and native AIO is EINTR from io_uring_enter/io_getevents (strace_test);
//   short      real_fault_test.short_write_then_efbig_at_rlimit_fsize (the kernel's short write),
//              and the conformance test errors.eof_reads_are_short_or_zero (a read spanning EOF);
//   ENOSPC     real_fault_test.enospc_on_full_tmpfs_keeps_exactly_the_acknowledged_bytes;
//   EIO        fs_death_test (a shut-down ext4/xfs), also per op;
//   EMFILE     real_fault_test.emfile_from_open_and_accept_and_the_loop_does_not_spin.
//
// What they prove (the operations contract in include/unio/loop.hpp and op.hpp): EINTR is retried transparently, except by close;
// short transfers are reported as they are and read_exact/write_all loop over them; ENOSPC and
// EIO reach the caller as std::errc values, once, without retries.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include "conformance/backends.hpp"
#include "fault/faulty_syscalls.hpp"
#include "unio/unio.hpp"

namespace {

using unio::op_code;
using unio::test::faulty_syscalls;
namespace sys = unio::detail::sys;

std::vector<char> pattern(std::size_t n, unsigned seed = 1) {
  std::vector<char> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  return v;
}

std::vector<char> file_contents(int fd) {
  struct stat st {};
  EXPECT_EQ(::fstat(fd, &st), 0);
  std::vector<char> v(static_cast<std::size_t>(st.st_size));
  EXPECT_EQ(::pread(fd, v.data(), v.size(), 0), static_cast<ssize_t>(v.size()));
  return v;
}

// Skips the test unless the seam reaches every op code given (positioned transfers), or, with
// SKIP_UNLESS_SEAM_REACHES_AT_CURRENT_POSITION, transfers at the current position.
#define SKIP_UNLESS_SEAM_REACHES(...)                                                             \
  do {                                                                                            \
    if (std::string why_ = unreachable({__VA_ARGS__}, true); !why_.empty()) GTEST_SKIP() << why_; \
  } while (0)
#define SKIP_UNLESS_SEAM_REACHES_AT_CURRENT_POSITION(...)                                          \
  do {                                                                                             \
    if (std::string why_ = unreachable({__VA_ARGS__}, false); !why_.empty()) GTEST_SKIP() << why_; \
  } while (0)

// Parameter: every backend and variant. threadpool runs with inline_nowait off, so reads reach the
// pool and go through pread like every other op (the RWF_NOWAIT path is tested separately below).
class fault_seam : public unio::test::backend_test {
 protected:
  void SetUp() override {
    backend_test::SetUp();
    if (IsSkipped()) return;
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir != nullptr ? dir : "/tmp") + "/unio_fault_seam_XXXXXX";
    fd_ = ::mkstemp(path_.data());
    ASSERT_GE(fd_, 0) << std::strerror(errno);
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  unio::loop_options options() const {
    unio::loop_options o = backend_test::options();
    o.inline_nowait = false;
    o.pool_size = 2;
    return o;
  }
  // Fills the temp file with n bytes of pattern() (with the real syscalls).
  std::vector<char> fill(std::size_t n) {
    auto v = pattern(n);
    EXPECT_EQ(::pwrite(fd_, v.data(), n, 0), static_cast<ssize_t>(n));
    return v;
  }

  // Why the seam cannot reach one of `codes` on this backend ("" when it reaches them all).
  std::string unreachable(std::initializer_list<op_code> codes, bool positioned) const {
    return unio::test::seam_unreachable(options(), codes, positioned);
  }

  std::string path_;
  int fd_ = -1;
};

template <class T>
T run(unio::loop& lp, unio::task<T> t) {
  return unio::sync_wait(lp, std::move(t));
}

// ---- EINTR: retried transparently ----

TEST_P(fault_seam, eintr_on_pread_is_retried) {
  SKIP_UNLESS_SEAM_REACHES(op_code::read);
  auto want = fill(4096);
  faulty_syscalls fs;
  fs.pread.eintr = 3;
  unio::loop lp(options());
  std::vector<char> got(4096);
  auto r = run(lp, [&]() -> unio::task<unio::result<std::size_t>> {
    co_return co_await lp.async_read(fd_, got.data(), got.size(), 0);
  }());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 4096u);
  EXPECT_EQ(got, want);
  EXPECT_EQ(fs.pread.calls, 4);  // 3 interrupted + 1 real
}

TEST_P(fault_seam, eintr_on_pwrite_is_retried) {
  SKIP_UNLESS_SEAM_REACHES(op_code::write);
  auto data = pattern(3000);
  faulty_syscalls fs;
  fs.pwrite.eintr = 2;
  unio::loop lp(options());
  auto r = run(lp, [&]() -> unio::task<unio::result<std::size_t>> {
    co_return co_await lp.async_write(fd_, data.data(), data.size(), 0);
  }());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 3000u);
  EXPECT_EQ(fs.pwrite.calls, 3);
  EXPECT_EQ(file_contents(fd_), data);
}

TEST_P(fault_seam, eintr_on_read_at_current_position_is_retried) {
  SKIP_UNLESS_SEAM_REACHES_AT_CURRENT_POSITION(op_code::read);
  auto want = fill(100);
  ASSERT_EQ(::lseek(fd_, 0, SEEK_SET), 0);
  faulty_syscalls fs;
  fs.read.eintr = 1;
  unio::loop lp(options());
  std::vector<char> got(100);
  auto r = run(lp, [&]() -> unio::task<unio::result<std::size_t>> {
    co_return co_await lp.async_read(fd_, got.data(), got.size(), unio::current_position);
  }());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 100u);
  EXPECT_EQ(got, want);
  EXPECT_EQ(fs.read.calls, 2);
  EXPECT_EQ(fs.pread.calls, 0);
}

TEST_P(fault_seam, eintr_on_fsync_fdatasync_open_is_retried) {
  SKIP_UNLESS_SEAM_REACHES(op_code::fsync, op_code::fdatasync, op_code::open);
  faulty_syscalls fs;
  fs.fsync.eintr = 2;
  fs.fdatasync.eintr = 1;
  fs.openat2.eintr = 4;
  unio::loop lp(options());
  run(lp, [&]() -> unio::task<void> {
    auto a = co_await lp.async_fsync(fd_);
    EXPECT_TRUE(a) << a.error().message();
    auto b = co_await lp.async_fdatasync(fd_);
    EXPECT_TRUE(b) << b.error().message();
    auto fd = co_await lp.async_open(AT_FDCWD, path_.c_str(), {.flags = O_RDONLY});
    EXPECT_TRUE(fd) << fd.error().message();
    if (fd) ::close(*fd);
  }());
  EXPECT_EQ(fs.fsync.calls, 3);
  EXPECT_EQ(fs.fdatasync.calls, 2);
  EXPECT_EQ(fs.openat2.calls, 5);
}

// openat2 with RESOLVE_IN_ROOT/RESOLVE_BENEATH says EAGAIN when a rename or mount raced a ".." of
// the walk: unio tries again (up to sys::k_resolve_race_tries), so the caller sees the open's
// real result; without those flags an EAGAIN is the result, and a race that never ends is
// reported after the last try, not looped on.
TEST_P(fault_seam, eagain_from_a_confined_open_is_a_race_and_is_retried) {
  SKIP_UNLESS_SEAM_REACHES(op_code::open);
  faulty_syscalls fs;
  fs.openat2.eagain = 3;
  unio::loop lp(options());
  const std::string dir = path_.substr(0, path_.rfind('/'));
  const std::string name = path_.substr(path_.rfind('/') + 1);
  int dirfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dirfd, 0);
  auto open_in = [&](std::uint64_t how) {
    return run(lp, [&]() -> unio::task<unio::result<int>> {
      co_return co_await lp.async_open(dirfd, name.c_str(), {.flags = O_RDONLY, .resolve = how});
    }());
  };
  auto confined = open_in(unio::resolve::in_root);
  ASSERT_TRUE(confined) << confined.error().message();
  ::close(*confined);
  EXPECT_EQ(fs.openat2.calls, 4);
  fs.openat2.eagain = 1;
  auto plain = open_in(0);
  EXPECT_EQ(plain.error(), unio::errno_code(EAGAIN));
  EXPECT_EQ(fs.openat2.calls, 5);
  fs.openat2.eagain = 1000;
  auto endless = open_in(unio::resolve::beneath);
  EXPECT_EQ(endless.error(), unio::errno_code(EAGAIN));
  EXPECT_EQ(fs.openat2.calls, 5 + unio::detail::sys::k_resolve_race_tries);
  ::close(dirfd);
}

// Linux releases the fd even when close() reports EINTR; a retry could close an fd that another
// thread was just given. So close is called exactly once, and the op succeeds: the fd is gone.
TEST_P(fault_seam, close_is_not_retried_on_eintr) {
  SKIP_UNLESS_SEAM_REACHES(op_code::close);
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  faulty_syscalls fs;
  fs.close.eintr = 1;
  unio::loop lp(options());
  auto r = run(lp, [&]() -> unio::task<unio::result<void>> { co_return co_await lp.async_close(fd); }());
  EXPECT_TRUE(r) << r.error().message();
  EXPECT_EQ(fs.close.calls, 1);
  errno = 0;
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // released all the same
  EXPECT_EQ(errno, EBADF);
}

// ---- Short transfers: a read of a file goes on to its end, a write is reported as it is ----

TEST_P(fault_seam, short_read_of_a_file_goes_on_to_its_end) {
  SKIP_UNLESS_SEAM_REACHES(op_code::read);
  auto want = fill(4096);
  faulty_syscalls fs;
  fs.pread.cap = 100;
  unio::loop lp(options());
  std::vector<char> got(4096, 0);
  auto r = run(lp, [&]() -> unio::task<unio::result<std::size_t>> {
    co_return co_await lp.async_read(fd_, got.data(), got.size(), 0);
  }());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 4096u);
  EXPECT_EQ(fs.pread.calls, 41);  // 40 of 100 bytes and one of 96: the file ends there
  EXPECT_EQ(got, want);
}

// The end of the file is asked of the kernel (statx), not found by one more read.
TEST_P(fault_seam, read_that_meets_the_end_of_file_is_short_and_not_read_again) {
  SKIP_UNLESS_SEAM_REACHES(op_code::read);
  auto want = fill(2500);
  faulty_syscalls fs;
  unio::loop lp(options());
  std::vector<char> got(4096, 0);
  auto r = run(lp, [&]() -> unio::task<unio::result<std::size_t>> {
    co_return co_await lp.async_read(fd_, got.data(), got.size(), 0);
  }());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 2500u);
  EXPECT_EQ(fs.pread.calls, 1);
  EXPECT_TRUE(std::equal(want.begin(), want.end(), got.begin()));
}

TEST_P(fault_seam, failure_while_reading_the_rest_is_the_reads_result) {
  SKIP_UNLESS_SEAM_REACHES(op_code::read);
  fill(4096);
  faulty_syscalls fs;
  fs.pread.cap = 1000;
  fs.pread.fail_after = 2;
  fs.pread.fail_errno = EIO;
  unio::loop lp(options());
  std::vector<char> got(4096, 0);
  auto r = run(lp, [&]() -> unio::task<unio::result<std::size_t>> {
    co_return co_await lp.async_read(fd_, got.data(), got.size(), 0);
  }());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), unio::errno_code(EIO));
  EXPECT_EQ(fs.pread.calls, 3);
}

TEST_P(fault_seam, short_write_is_reported) {
  SKIP_UNLESS_SEAM_REACHES(op_code::write);
  auto data = pattern(4096);
  faulty_syscalls fs;
  fs.pwrite.cap = 100;
  unio::loop lp(options());
  auto r = run(lp, [&]() -> unio::task<unio::result<std::size_t>> {
    co_return co_await lp.async_write(fd_, data.data(), data.size(), 0);
  }());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 100u);
  EXPECT_EQ(fs.pwrite.calls, 1);
  EXPECT_EQ(file_contents(fd_), std::vector<char>(data.begin(), data.begin() + 100));
}

TEST_P(fault_seam, short_writev_is_reported_and_short_readv_goes_on) {
  SKIP_UNLESS_SEAM_REACHES(op_code::readv, op_code::writev);
  auto a = pattern(300, 1), b = pattern(300, 2);
  faulty_syscalls fs;
  fs.pwritev2.cap = 450;
  fs.preadv2.cap = 350;
  unio::loop lp(options());
  iovec out[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
  auto w = run(lp, [&]() -> unio::task<unio::result<std::size_t>> { co_return co_await lp.async_writev(fd_, out, 2, 0); }());
  ASSERT_TRUE(w) << w.error().message();
  EXPECT_EQ(*w, 450u);
  std::vector<char> x(300), y(300);
  iovec in[2] = {{x.data(), x.size()}, {y.data(), y.size()}};
  auto r = run(lp, [&]() -> unio::task<unio::result<std::size_t>> { co_return co_await lp.async_readv(fd_, in, 2, 0); }());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 450u);  // 350, then the 100 up to the end of the file
  EXPECT_EQ(fs.preadv2.calls, 2);
  EXPECT_EQ(x, a);
  EXPECT_TRUE(std::equal(b.begin(), b.begin() + 150, y.begin()));
}

TEST_P(fault_seam, read_exact_loops_over_short_reads) {
  SKIP_UNLESS_SEAM_REACHES(op_code::read);
  auto want = fill(10000);
  faulty_syscalls fs;
  fs.pread.cap = 1000;
  fs.pread.eintr = 2;
  unio::loop lp(options());
  std::vector<char> got(10000);
  auto r = run(lp, unio::read_exact(lp, fd_, got.data(), got.size(), 0));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 10000u);
  EXPECT_EQ(got, want);
  EXPECT_EQ(fs.pread.calls, 12);  // 10 short reads + 2 interrupted
}

TEST_P(fault_seam, read_exact_reports_end_of_file) {
  SKIP_UNLESS_SEAM_REACHES(op_code::read);
  fill(2500);
  faulty_syscalls fs;
  fs.pread.cap = 1000;
  unio::loop lp(options());
  std::vector<char> got(4000);
  auto r = run(lp, unio::read_exact(lp, fd_, got.data(), got.size(), 0));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::no_message_available);  // ENODATA
  EXPECT_EQ(fs.pread.calls, 4);  // 1000, 1000, 500, 0
}

TEST_P(fault_seam, write_all_loops_over_short_writes) {
  SKIP_UNLESS_SEAM_REACHES(op_code::write);
  auto data = pattern(10000);
  faulty_syscalls fs;
  fs.pwrite.cap = 1000;
  unio::loop lp(options());
  auto r = run(lp, unio::write_all(lp, fd_, data.data(), data.size(), 0));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 10000u);
  EXPECT_EQ(fs.pwrite.calls, 10);
  EXPECT_EQ(file_contents(fd_), data);
}

TEST_P(fault_seam, write_all_at_current_position_loops) {
  SKIP_UNLESS_SEAM_REACHES_AT_CURRENT_POSITION(op_code::write);
  auto data = pattern(5000);
  faulty_syscalls fs;
  fs.write.cap = 1024;
  fs.write.eintr = 1;
  unio::loop lp(options());
  auto r = run(lp, unio::write_all(lp, fd_, data.data(), data.size(), unio::current_position));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 5000u);
  EXPECT_EQ(fs.write.calls, 6);  // 1 interrupted + 5 short
  EXPECT_EQ(file_contents(fd_), data);
}

// ---- Hard errors: reach the caller once, as std::errc ----

TEST_P(fault_seam, enospc_reaches_the_caller) {
  SKIP_UNLESS_SEAM_REACHES(op_code::write);
  auto data = pattern(4096);
  faulty_syscalls fs;
  fs.pwrite.fail_errno = ENOSPC;
  unio::loop lp(options());
  auto r = run(lp, [&]() -> unio::task<unio::result<std::size_t>> {
    co_return co_await lp.async_write(fd_, data.data(), data.size(), 0);
  }());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::no_space_on_device);
  EXPECT_EQ(fs.pwrite.calls, 1);  // not retried
  EXPECT_TRUE(file_contents(fd_).empty());
}

TEST_P(fault_seam, write_all_stops_at_enospc_with_the_prefix_written) {
  SKIP_UNLESS_SEAM_REACHES(op_code::write);
  auto data = pattern(10000);
  faulty_syscalls fs;
  fs.pwrite.cap = 1000;
  fs.pwrite.fail_errno = ENOSPC;
  fs.pwrite.fail_after = 3;
  unio::loop lp(options());
  auto r = run(lp, unio::write_all(lp, fd_, data.data(), data.size(), 0));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::no_space_on_device);
  EXPECT_EQ(fs.pwrite.calls, 4);
  EXPECT_EQ(file_contents(fd_), std::vector<char>(data.begin(), data.begin() + 3000));
}

TEST_P(fault_seam, eio_after_n_calls_reaches_the_caller) {
  SKIP_UNLESS_SEAM_REACHES(op_code::read, op_code::fsync);
  auto want = fill(8192);
  faulty_syscalls fs;
  fs.pread.fail_errno = EIO;
  fs.pread.fail_after = 2;
  fs.fsync.fail_errno = EIO;
  unio::loop lp(options());
  std::vector<char> got(1024);
  std::vector<std::error_code> errs;
  run(lp, [&]() -> unio::task<void> {
    for (int i = 0; i < 4; ++i) {
      auto r = co_await lp.async_read(fd_, got.data(), got.size(), static_cast<std::uint64_t>(i) * 1024);
      errs.push_back(r.error());
    }
    auto s = co_await lp.async_fsync(fd_);
    errs.push_back(s.error());
  }());
  ASSERT_EQ(errs.size(), 5u);
  EXPECT_FALSE(errs[0]);
  EXPECT_FALSE(errs[1]);
  EXPECT_EQ(errs[2], std::errc::io_error);
  EXPECT_EQ(errs[3], std::errc::io_error);
  EXPECT_EQ(errs[4], std::errc::io_error);
  EXPECT_EQ(fs.pread.calls, 4);
  EXPECT_EQ(fs.fsync.calls, 1);
}

// Many ops in flight at once, each failing or succeeding on its own: every op completes exactly
// once and the failures are attributed to the right ops (on the threadpool they run in
// parallel, so which call fails is not known in advance; the count is).
TEST_P(fault_seam, errors_are_attributed_per_op) {
  SKIP_UNLESS_SEAM_REACHES(op_code::read);
  fill(64 * 512);
  faulty_syscalls fs;
  fs.pread.fail_errno = EIO;
  fs.pread.fail_after = 40;
  unio::loop lp(options());
  constexpr int n = 64;
  std::vector<unio::op> ops(n);
  std::vector<std::vector<char>> bufs(n, std::vector<char>(512));
  int ok = 0, eio = 0, other = 0, calls = 0;
  for (int i = 0; i < n; ++i) {
    lp.read(ops[i], fd_, bufs[i].data(), 512, static_cast<std::uint64_t>(i) * 512, [&](unio::op& o) {
      ++calls;
      if (o.ok() && o.value() == 512) ++ok;
      else if (o.error() == std::errc::io_error) ++eio;
      else ++other;
    });
  }
  lp.run();
  EXPECT_EQ(calls, n);
  EXPECT_EQ(ok, 40);
  EXPECT_EQ(eio, 24);
  EXPECT_EQ(other, 0);
}

// ---- Sockets through the seam ----

TEST_P(fault_seam, accept_eintr_is_retried_and_emfile_reported) {
  SKIP_UNLESS_SEAM_REACHES(op_code::accept);
  auto ep = unio::endpoint::parse("127.0.0.1", 0);
  ASSERT_TRUE(ep);
  auto lfd = unio::tcp_listen(*ep);
  ASSERT_TRUE(lfd) << lfd.error().message();
  auto at = unio::local_endpoint(*lfd);
  ASSERT_TRUE(at);
  int c1 = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(::connect(c1, at->addr(), at->length), 0);
  faulty_syscalls fs;
  unio::loop lp(options());
  fs.accept4.eintr = 2;
  auto a = run(lp, [&]() -> unio::task<unio::result<int>> { co_return co_await lp.async_accept(*lfd); }());
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(fs.accept4.calls, 3);
  ::close(*a);
  fs.accept4.fail_errno = EMFILE;
  auto b = run(lp, [&]() -> unio::task<unio::result<int>> { co_return co_await lp.async_accept(*lfd); }());
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error(), std::errc::too_many_files_open);
  ::close(c1);
  ::close(*lfd);
}

// sendfile: EINTR is retried at once; EAGAIN (the socket filled up between readiness and the
// call, on the loop's thread for sync, on a pool thread for threadpool) makes the op wait for
// writability again instead of failing; a short transfer is reported as it is.
TEST_P(fault_seam, sendfile_retries_eintr_waits_again_on_eagain) {
  SKIP_UNLESS_SEAM_REACHES(op_code::sendfile);
  auto want = fill(100000);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  faulty_syscalls fs;
  fs.sendfile.eintr = 2;
  fs.sendfile.eagain = 2;
  fs.sendfile.cap = 1000;
  unio::loop lp(options());
  auto r = run(lp, [&]() -> unio::task<unio::result<std::size_t>> {
    co_return co_await lp.async_sendfile(sv[0], fd_, 10, 5000);
  }());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 1000u);
  EXPECT_EQ(fs.sendfile.calls, 5);  // 2 interrupted, 2 EAGAIN, 1 real
  std::vector<char> got(2000);
  ASSERT_EQ(::recv(sv[1], got.data(), got.size(), MSG_DONTWAIT), 1000);
  EXPECT_TRUE(std::equal(got.begin(), got.begin() + 1000, want.begin() + 10));
  fs.sendfile.fail_errno = EIO;
  auto e = run(lp, [&]() -> unio::task<unio::result<std::size_t>> {
    co_return co_await lp.async_sendfile(sv[0], fd_, 0, 10);
  }());
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error(), std::errc::io_error);
  ::close(sv[0]);
  ::close(sv[1]);
}

// ---- The decorator itself ----

TEST(fault_seam_table, is_restored) {
  {
    faulty_syscalls fs;
    EXPECT_NE(&sys::current(), &sys::real_table());
    EXPECT_NE(sys::current().pread, sys::real_table().pread);
  }
  EXPECT_EQ(&sys::current(), &sys::real_table());
  EXPECT_EQ(sys::current().pread, sys::real_table().pread);
}

INSTANTIATE_ALL_BACKENDS(fault_seam);

// threadpool with inline_nowait: the first attempt is preadv2(RWF_NOWAIT) on the loop's
// thread; EINTR there is retried as well and the caller still sees one successful read.
TEST(fault_seam_nowait, eintr_on_nowait_read_is_retried) {
  char path[] = "/tmp/unio_fault_nowait_XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  auto want = pattern(4096);
  ASSERT_EQ(::pwrite(fd, want.data(), want.size(), 0), 4096);
  {
    faulty_syscalls fs;
    fs.preadv2.eintr = 2;
    unio::loop lp({.backend = "threadpool", .inline_nowait = true});
    std::vector<char> got(4096);
    auto r = run(lp, [&]() -> unio::task<unio::result<std::size_t>> {
      co_return co_await lp.async_read(fd, got.data(), got.size(), 0);
    }());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(*r, 4096u);
    EXPECT_EQ(got, want);
    EXPECT_GE(fs.preadv2.calls, 3);
  }
  ::close(fd);
  ::unlink(path);
}

}  // namespace
