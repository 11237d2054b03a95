// Description: every failure completes the op with the kernel's exact errno (callback and co_await), and EOF short reads.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common.hpp"

namespace {

using unio::test::conformance_test;
using unio::test::neg;
using unio::test::run_one;

class errors : public conformance_test {
 protected:
  void SetUp() override {
    conformance_test::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    put_file("file", "0123456789");
    ASSERT_EQ(::mkdir(path("dir").c_str(), 0700), 0);
    ASSERT_EQ(::mkdir(path("full").c_str(), 0700), 0);
    put_file("full/inner", "x");
  }
};

TEST_P(errors, enoent) {
  auto lp = make_loop();
  struct statx sx{};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->open(o, dirfd(), "missing", {.flags = O_RDONLY}, h); }),
            neg(ENOENT));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->stat(o, dirfd(), "missing", 0, STATX_SIZE, &sx, h); }),
            neg(ENOENT));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->unlink(o, dirfd(), "missing", h); }), neg(ENOENT));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->rmdir(o, dirfd(), "missing", h); }), neg(ENOENT));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->rename(o, dirfd(), "missing", dirfd(), "x", 0, h); }),
            neg(ENOENT));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->mkdir(o, dirfd(), "missing/sub", 0700, h); }), neg(ENOENT));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) {
              lp->open(o, dirfd(), "missing/new", {.flags = O_CREAT | O_WRONLY, .mode = 0600}, h);
            }),
            neg(ENOENT));
  // The awaitable form yields the same error_code.
  auto r = unio::sync_wait(*lp, [&]() -> unio::task<unio::result<int>> {
    co_return co_await lp->async_open(dirfd(), "missing", {.flags = O_RDONLY});
  }());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::no_such_file_or_directory);
  EXPECT_EQ(r.error().category(), std::generic_category());
}

TEST_P(errors, eexist) {
  auto lp = make_loop();
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) {
              lp->open(o, dirfd(), "file", {.flags = O_CREAT | O_EXCL | O_WRONLY, .mode = 0600}, h);
            }),
            neg(EEXIST));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->mkdir(o, dirfd(), "dir", 0700, h); }), neg(EEXIST));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->mkdir(o, dirfd(), "file", 0700, h); }), neg(EEXIST));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) {
              lp->rename(o, dirfd(), "file", dirfd(), "dir", RENAME_NOREPLACE, h);
            }),
            neg(EEXIST));
  EXPECT_EQ(get_file("file"), "0123456789") << "a failed O_EXCL open must not truncate";
  auto r = unio::sync_wait(*lp, [&]() -> unio::task<unio::result<void>> {
    co_return co_await lp->async_mkdir(dirfd(), "dir", 0700);
  }());
  EXPECT_EQ(r.error(), std::errc::file_exists);
}

TEST_P(errors, eisdir) {
  auto lp = make_loop();
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->open(o, dirfd(), "dir", {.flags = O_WRONLY}, h); }),
            neg(EISDIR));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->unlink(o, dirfd(), "dir", h); }), neg(EISDIR));
  char buf[4];
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, dirfd(), buf, sizeof buf, 0, h); }), neg(EISDIR));
  iovec v{buf, sizeof buf};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->readv(o, dirfd(), &v, 1, 0, h); }), neg(EISDIR));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->rename(o, dirfd(), "file", dirfd(), "dir", 0, h); }),
            neg(EISDIR));
}

TEST_P(errors, enotdir) {
  auto lp = make_loop();
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->open(o, dirfd(), "file/x", {.flags = O_RDONLY}, h); }),
            neg(ENOTDIR));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) {
              lp->open(o, dirfd(), "file", {.flags = O_RDONLY | O_DIRECTORY}, h);
            }),
            neg(ENOTDIR));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->rmdir(o, dirfd(), "file", h); }), neg(ENOTDIR));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->mkdir(o, dirfd(), "file/sub", 0700, h); }), neg(ENOTDIR));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->rename(o, dirfd(), "dir", dirfd(), "file", 0, h); }),
            neg(ENOTDIR));
  // A relative path against a dirfd that is not a directory.
  int fd = raw_open("file", O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->open(o, fd, "x", {.flags = O_RDONLY}, h); }), neg(ENOTDIR));
  ::close(fd);
}

TEST_P(errors, enotempty) {
  auto lp = make_loop();
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->rmdir(o, dirfd(), "full", h); }), neg(ENOTEMPTY));
  EXPECT_TRUE(exists("full/inner"));
  auto r = unio::sync_wait(*lp, [&]() -> unio::task<unio::result<void>> {
    co_return co_await lp->async_rmdir(dirfd(), "full");
  }());
  EXPECT_EQ(r.error(), std::errc::directory_not_empty);
}

TEST_P(errors, ebadf) {
  auto lp = make_loop();
  char buf[4] = {};
  iovec v{buf, sizeof buf};
  struct statx sx{};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, -1, buf, sizeof buf, 0, h); }), neg(EBADF));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, -1, buf, sizeof buf, 0, h); }), neg(EBADF));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->readv(o, -1, &v, 1, 0, h); }), neg(EBADF));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->writev(o, -1, &v, 1, 0, h); }), neg(EBADF));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->fsync(o, -1, h); }), neg(EBADF));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->fdatasync(o, -1, h); }), neg(EBADF));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->fallocate(o, -1, 0, 0, 4096, h); }), neg(EBADF));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->ftruncate(o, -1, 0, h); }), neg(EBADF));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->close(o, -1, h); }), neg(EBADF));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->stat(o, -1, "rel", 0, STATX_SIZE, &sx, h); }), neg(EBADF));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->open(o, -1, "rel", {.flags = O_RDONLY}, h); }), neg(EBADF));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->recv(o, -1, buf, sizeof buf, 0, h); }), neg(EBADF));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->send(o, -1, buf, sizeof buf, 0, h); }), neg(EBADF));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->accept(o, -1, nullptr, nullptr, h); }), neg(EBADF));
  // Writing through a read-only fd, reading through a write-only one.
  int ro = raw_open("file", O_RDONLY);
  int wo = raw_open("file", O_WRONLY);
  ASSERT_GE(ro, 0);
  ASSERT_GE(wo, 0);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, ro, "zz", 2, 0, h); }), neg(EBADF));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, wo, buf, 2, 0, h); }), neg(EBADF));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->fallocate(o, ro, 0, 0, 4096, h); }), neg(EBADF));
  EXPECT_EQ(get_file("file"), "0123456789");
  ::close(ro);
  ::close(wo);
  // A closed fd.
  int fd = raw_open("file", O_RDONLY);
  ASSERT_GE(fd, 0);
  ::close(fd);
  auto r = unio::sync_wait(*lp, [&]() -> unio::task<unio::result<std::size_t>> {
    co_return co_await lp->async_read(fd, buf, sizeof buf, 0);
  }());
  EXPECT_EQ(r.error(), std::errc::bad_file_descriptor);
}

TEST_P(errors, einval) {
  auto lp = make_loop();
  int fd = raw_open("file", O_RDWR);
  ASSERT_GE(fd, 0);
  char buf[4];
  const std::uint64_t negative = std::uint64_t{1} << 63;  // a negative off_t
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, buf, sizeof buf, negative, h); }), neg(EINVAL));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, fd, buf, sizeof buf, negative, h); }),
            neg(EINVAL));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->ftruncate(o, fd, negative, h); }), neg(EINVAL));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->fallocate(o, fd, 0, 0, 0, h); }), neg(EINVAL));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) {
              lp->rename(o, dirfd(), "file", dirfd(), "other", RENAME_NOREPLACE | RENAME_EXCHANGE, h);
            }),
            neg(EINVAL));
  // Unknown resolve bits are refused, not ignored.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) {
              lp->open(o, dirfd(), "file", {.flags = O_RDONLY, .resolve = std::uint64_t{1} << 40}, h);
            }),
            neg(EINVAL));
  // rmdir of "." is EINVAL.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->rmdir(o, dirfd(), ".", h); }), neg(EINVAL));
  // A negative count of iovecs.
  iovec v{buf, sizeof buf};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->readv(o, fd, &v, -1, 0, h); }), neg(EINVAL));
  EXPECT_EQ(get_file("file"), "0123456789");
  ::close(fd);
}

TEST_P(errors, espipe_positioned_read_on_pipe) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ASSERT_EQ(::write(p[1], "ab", 2), 2);
  auto lp = make_loop();
  char buf[2];
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, p[0], buf, 2, 0, h); }), neg(ESPIPE));
  ::close(p[0]);
  ::close(p[1]);
}

TEST_P(errors, eof_reads_are_short_or_zero) {
  auto lp = make_loop();
  int fd = raw_open("file", O_RDONLY);
  ASSERT_GE(fd, 0);
  char buf[32] = {};
  // Spanning EOF: the short count.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, buf, sizeof buf, 6, h); }), 4);
  EXPECT_EQ(std::string(buf, 4), "6789");
  // At and past EOF: 0.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, buf, sizeof buf, 10, h); }), 0);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, buf, sizeof buf, 1 << 20, h); }), 0);
  // readv spanning EOF fills the first buffer, part of the second.
  char a[8] = {}, b[8] = {};
  iovec v[2] = {{a, 8}, {b, 8}};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->readv(o, fd, v, 2, 1, h); }), 9);
  EXPECT_EQ(std::string(a, 8) + std::string(b, 1), "123456789");
  // A zero-length read is 0 and not an error.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, buf, 0, 0, h); }), 0);
  // read_exact over EOF fails with ENODATA.
  auto r = unio::sync_wait(*lp, unio::read_exact(*lp, fd, buf, 11, 0));
  EXPECT_EQ(r.error(), unio::errno_code(ENODATA));
  ::close(fd);
}

// A write to a pipe whose reader is gone fails with EPIPE instead of killing the process with
// SIGPIPE (whose default action is to terminate), on every backend.
TEST_P(errors, epipe_on_a_pipe_without_reader_and_no_sigpipe) {
  auto lp = make_loop();
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ::close(p[0]);
  const char msg[] = "nobody reads this";
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, p[1], msg, sizeof msg, unio::current_position, h); }),
            neg(EPIPE));
  iovec v{const_cast<char*>(msg), sizeof msg};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->writev(o, p[1], &v, 1, unio::current_position, h); }),
            neg(EPIPE));
  ::close(p[1]);
}

INSTANTIATE_ALL_BACKENDS(errors);

}  // namespace
