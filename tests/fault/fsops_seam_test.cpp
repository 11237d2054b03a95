// Description: access falls back from faccessat2 to faccessat on a kernel without faccessat2
// (ENOSYS), only when no flags were given; EINTR on a new file system call is retried. Faults
// are injected through the syscall table; access and chmod have no io_uring or AIO form, so every
// backend runs them on its pool, through the table.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>

#include "conformance/backends.hpp"
#include "sys/syscalls.hpp"
#include "unio/unio.hpp"

namespace {

namespace sys = unio::detail::sys;

std::atomic<int> g_faccessat2_calls{0};
std::atomic<int> g_faccessat_calls{0};
std::atomic<int> g_chmod_eintr{0};

int no_faccessat2(int, const char*, int, int) {
  ++g_faccessat2_calls;
  errno = ENOSYS;
  return -1;
}
int counted_faccessat(int dirfd, const char* path, int mode, int flags) {
  ++g_faccessat_calls;
  return sys::real_table().faccessat(dirfd, path, mode, flags);
}
int interrupted_fchmodat(int dirfd, const char* path, mode_t mode, int flags) {
  if (g_chmod_eintr.fetch_sub(1) > 0) {
    errno = EINTR;
    return -1;
  }
  return sys::real_table().fchmodat(dirfd, path, mode, flags);
}

// Installs the faulty table for the test's life (the table is global: no loop may outlive it).
class fsops_seam : public unio::test::backend_test {
 protected:
  void SetUp() override {
    backend_test::SetUp();
    if (IsSkipped()) return;
    g_faccessat2_calls = g_faccessat_calls = 0;
    g_chmod_eintr = 0;
    sys::table t = sys::real_table();
    t.faccessat2 = &no_faccessat2;
    t.faccessat = &counted_faccessat;
    t.fchmodat = &interrupted_fchmodat;
    sys::set_table(t);
  }
  void TearDown() override { sys::set_table(sys::real_table()); }
};

TEST_P(fsops_seam, access_without_faccessat2_uses_faccessat_when_no_flags) {
  unio::loop lp(options());
  auto ok = unio::sync_wait(lp, [&]() -> unio::task<unio::result<void>> {
    co_return co_await lp.async_access(AT_FDCWD, "/", F_OK);
  }());
  EXPECT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_EQ(g_faccessat2_calls.load(), 1);
  EXPECT_EQ(g_faccessat_calls.load(), 1);
  auto missing = unio::sync_wait(lp, [&]() -> unio::task<unio::result<void>> {
    co_return co_await lp.async_access(AT_FDCWD, "/nonexistent-unio-path", F_OK);
  }());
  EXPECT_EQ(missing.error(), unio::errno_code(ENOENT));
  // With flags there is nothing to fall back to: faccessat cannot honour them.
  auto flagged = unio::sync_wait(lp, [&]() -> unio::task<unio::result<void>> {
    co_return co_await lp.async_access(AT_FDCWD, "/", F_OK, AT_EACCESS);
  }());
  EXPECT_EQ(flagged.error(), unio::errno_code(ENOSYS));
  EXPECT_EQ(g_faccessat_calls.load(), 2);
}

TEST_P(fsops_seam, eintr_on_chmod_is_retried) {
  char tmpl[] = "/tmp/unio-fsops-seam-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ::close(fd);
  g_chmod_eintr = 3;
  unio::loop lp(options());
  auto r = unio::sync_wait(lp, [&]() -> unio::task<unio::result<void>> {
    co_return co_await lp.async_chmod(AT_FDCWD, tmpl, 0640);
  }());
  EXPECT_TRUE(r.has_value()) << r.error().message();
  struct stat st{};
  ASSERT_EQ(::stat(tmpl, &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_LT(g_chmod_eintr.load(), 0) << "the call after the three EINTRs was not made";
  ::unlink(tmpl);
}

INSTANTIATE_ALL_BACKENDS(fsops_seam);

}  // namespace
