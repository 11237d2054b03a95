// loop::register_buffers / register_files on every backend: ops on registered buffers and fds
// give the same results as on plain ones, bad input gets the documented error, registration can
// be replaced only after unregistering, and closing a registered fd through the loop really
// closes it (io_uring's table would otherwise keep the file open).
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "common.hpp"

namespace {

using unio::test::neg;
using unio::test::run_one;

class registered : public unio::test::conformance_test {};

std::errc errc_of(std::error_code ec) { return static_cast<std::errc>(ec.value()); }

TEST_P(registered, buffers_give_the_same_results) {
  auto lp = make_loop();
  std::vector<char> a(8192, 0), b(4096, 0);
  iovec bufs[] = {{a.data(), 4096}, {b.data(), b.size()}};  // a: the first half only
  ASSERT_FALSE(lp->register_buffers(bufs));
  int fd = raw_open("f", O_RDWR | O_CREAT | O_TRUNC);
  ASSERT_GE(fd, 0);

  std::memcpy(a.data() + 100, "inside-a", 8);
  std::memcpy(b.data(), "inside-b", 8);
  char plain[8];
  std::memcpy(plain, "plain-mm", 8);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, fd, a.data() + 100, 8, 0, h); }), 8);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, fd, b.data(), 8, 8, h); }), 8);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, fd, plain, 8, 16, h); }), 8);
  EXPECT_EQ(get_file("f"), "inside-ainside-bplain-mm");

  // A read inside a registered buffer, one that runs past its end (not fixed), one at its end.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, b.data() + 16, 24, 0, h); }), 24);
  EXPECT_EQ(std::string(b.data() + 16, 24), "inside-ainside-bplain-mm");
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, a.data() + 4092, 8, 0, h); }), 8);
  EXPECT_EQ(std::string(a.data() + 4092, 8), "inside-a");
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, a.data(), 8, 100, h); }), 0);  // past EOF
  EXPECT_FALSE(lp->unregister_buffers());
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, b.data(), 8, 8, h); }), 8);
  EXPECT_EQ(std::string(b.data(), 8), "inside-b");
  ::close(fd);
}

TEST_P(registered, buffers_bad_input_and_replace) {
  auto lp = make_loop();
  std::vector<char> a(4096), b(4096);
  EXPECT_EQ(errc_of(lp->register_buffers({})), std::errc::invalid_argument);
  iovec null_base[] = {{nullptr, 4096}};
  EXPECT_EQ(errc_of(lp->register_buffers(null_base)), std::errc::invalid_argument);
  iovec zero_len[] = {{a.data(), 0}};
  EXPECT_EQ(errc_of(lp->register_buffers(zero_len)), std::errc::invalid_argument);
  iovec overlap[] = {{a.data(), 4096}, {a.data() + 100, 10}};
  EXPECT_EQ(errc_of(lp->register_buffers(overlap)), std::errc::invalid_argument);
  EXPECT_EQ(errc_of(lp->unregister_buffers()), std::errc::no_such_device_or_address);

  iovec one[] = {{a.data(), a.size()}};
  iovec other[] = {{b.data(), b.size()}};
  ASSERT_FALSE(lp->register_buffers(one));
  EXPECT_EQ(errc_of(lp->register_buffers(other)), std::errc::device_or_resource_busy);
  EXPECT_FALSE(lp->unregister_buffers());
  EXPECT_FALSE(lp->register_buffers(other));  // replace = unregister, then register
  int fd = raw_open("g", O_RDWR | O_CREAT | O_TRUNC);
  ASSERT_GE(fd, 0);
  std::memcpy(b.data(), "xyz", 3);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, fd, b.data(), 3, 0, h); }), 3);
  EXPECT_EQ(get_file("g"), "xyz");
  ::close(fd);
}

TEST_P(registered, files_give_the_same_results) {
  auto lp = make_loop();
  int fd = raw_open("f", O_RDWR | O_CREAT | O_TRUNC);
  ASSERT_GE(fd, 0);
  auto [s0, s1] = unio::test::socket_pair();
  ASSERT_GE(s0, 0);
  int fds[] = {s1, fd, s0};
  ASSERT_FALSE(lp->register_files(fds));

  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, fd, "hello world", 11, 0, h); }), 11);
  char out[16] = {};
  iovec iov[] = {{out, 5}, {out + 5, 6}};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->readv(o, fd, iov, 2, 0, h); }), 11);
  EXPECT_EQ(std::string(out, 11), "hello world");
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->fdatasync(o, fd, h); }), 0);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->ftruncate(o, fd, 5, h); }), 0);
  EXPECT_EQ(get_file("f"), "hello");

  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->send(o, s0, "ping", 4, 0, h); }), 4);
  char got[8] = {};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->recv(o, s1, got, sizeof got, 0, h); }), 4);
  EXPECT_EQ(std::string(got, 4), "ping");
  EXPECT_FALSE(lp->unregister_files());
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, out, 5, 0, h); }), 5);
  ::close(fd);
  ::close(s0);
  ::close(s1);
}

TEST_P(registered, files_bad_input_and_replace) {
  auto lp = make_loop();
  int fd = raw_open("f", O_RDWR | O_CREAT | O_TRUNC);
  ASSERT_GE(fd, 0);
  int closed = raw_open("c", O_RDWR | O_CREAT | O_TRUNC);
  ASSERT_GE(closed, 0);
  ::close(closed);
  EXPECT_EQ(errc_of(lp->register_files({})), std::errc::invalid_argument);
  int negative[] = {fd, -1};
  EXPECT_EQ(errc_of(lp->register_files(negative)), std::errc::bad_file_descriptor);
  int stale[] = {closed};
  EXPECT_EQ(errc_of(lp->register_files(stale)), std::errc::bad_file_descriptor);
  int twice[] = {fd, fd};
  EXPECT_EQ(errc_of(lp->register_files(twice)), std::errc::invalid_argument);
  EXPECT_EQ(errc_of(lp->unregister_files()), std::errc::no_such_device_or_address);
  int one[] = {fd};
  ASSERT_FALSE(lp->register_files(one));
  EXPECT_EQ(errc_of(lp->register_files(one)), std::errc::device_or_resource_busy);
  EXPECT_FALSE(lp->unregister_files());
  EXPECT_FALSE(lp->register_files(one));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, fd, "ok", 2, 0, h); }), 2);
  EXPECT_EQ(get_file("f"), "ok");
  ::close(fd);
}

// Closing a registered fd through the loop closes the file: the pipe's reader sees end of file
// (io_uring: the kernel table's reference is dropped too). A file opened afterwards, which may
// get the same number, is reached by ops on that number -- never the old file.
TEST_P(registered, closing_a_registered_fd_through_the_loop_closes_it) {
  auto lp = make_loop();
  int p[2];
  ASSERT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  put_file("old", "old-file");
  put_file("new", "new-file");
  int old_fd = raw_open("old", O_RDONLY);
  ASSERT_GE(old_fd, 0);
  int fds[] = {p[1], old_fd};
  ASSERT_FALSE(lp->register_files(fds));

  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->close(o, p[1], h); }), 0);
  char c;
  EXPECT_EQ(::read(p[0], &c, 1), 0) << "the write end is still open: " << std::strerror(errno);
  ::close(p[0]);

  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->close(o, old_fd, h); }), 0);
  std::int64_t nfd =
      run_one(*lp, [&](unio::op& o, auto h) { lp->open(o, dirfd(), "new", {.flags = O_RDONLY}, h); });
  ASSERT_GE(nfd, 0);
  char buf[16] = {};
  EXPECT_EQ(
      run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, static_cast<int>(nfd), buf, sizeof buf, 0, h); }),
      8);
  EXPECT_EQ(std::string(buf, 8), "new-file");
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->close(o, static_cast<int>(nfd), h); }), 0);
  EXPECT_FALSE(lp->unregister_files());
}

// An op on a registered fd closed earlier through the loop is an op on a closed fd.
TEST_P(registered, op_on_a_closed_registered_fd_fails_with_ebadf) {
  auto lp = make_loop();
  int fd = raw_open("f", O_RDWR | O_CREAT | O_TRUNC);
  ASSERT_GE(fd, 0);
  int fds[] = {fd};
  ASSERT_FALSE(lp->register_files(fds));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->close(o, fd, h); }), 0);
  char buf[4];
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, buf, sizeof buf, 0, h); }), neg(EBADF));
}

INSTANTIATE_ALL_BACKENDS(registered);

}  // namespace
