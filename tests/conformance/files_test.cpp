// Description: the success path of every file operation in the callback form, on every backend.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "common.hpp"

namespace {

using unio::test::conformance_test;
using unio::test::run_one;

class files : public conformance_test {};

TEST_P(files, nop_completes_with_zero) {
  auto lp = make_loop();
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->nop(o, h); }), 0);
}

TEST_P(files, open_creates_with_mode_and_close_releases_fd) {
  auto lp = make_loop();
  unio::open_how how{.flags = O_RDWR | O_CREAT | O_EXCL, .mode = 0600};
  auto fd = run_one(*lp, [&](unio::op& o, auto h) { lp->open(o, dirfd(), "new", how, h); });
  ASSERT_GE(fd, 0) << std::strerror(static_cast<int>(-fd));
  struct stat st{};
  ASSERT_EQ(::fstat(static_cast<int>(fd), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // O_CLOEXEC is always added.
  EXPECT_NE(::fcntl(static_cast<int>(fd), F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->close(o, static_cast<int>(fd), h); }), 0);
  EXPECT_EQ(::fcntl(static_cast<int>(fd), F_GETFD), -1) << "fd still open after close";
  EXPECT_EQ(errno, EBADF);
}

TEST_P(files, open_absolute_path_and_at_fdcwd) {
  put_file("abs", "xyz");
  auto lp = make_loop();
  const std::string p = path("abs");
  auto fd = run_one(*lp, [&](unio::op& o, auto h) { lp->open(o, AT_FDCWD, p.c_str(), {.flags = O_RDONLY}, h); });
  ASSERT_GE(fd, 0);
  char buf[8] = {};
  EXPECT_EQ(::pread(static_cast<int>(fd), buf, sizeof buf, 0), 3);
  EXPECT_STREQ(buf, "xyz");
  ::close(static_cast<int>(fd));
}

TEST_P(files, write_then_read_at_offsets) {
  auto lp = make_loop();
  int fd = raw_open("f", O_RDWR | O_CREAT);
  ASSERT_GE(fd, 0);
  const std::string hello = "hello, world";
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, fd, hello.data(), hello.size(), 0, h); }),
            static_cast<std::int64_t>(hello.size()));
  // A write at an offset past the end leaves a hole of zeros.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, fd, "!", 1, 20, h); }), 1);
  EXPECT_EQ(get_file("f"), hello + std::string(8, '\0') + "!");
  char buf[5] = {};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, buf, 5, 7, h); }), 5);
  EXPECT_EQ(std::string(buf, 5), "world");
  ::close(fd);
}

TEST_P(files, writev_then_readv) {
  auto lp = make_loop();
  int fd = raw_open("v", O_RDWR | O_CREAT);
  ASSERT_GE(fd, 0);
  std::string a = "abc", b = "", c = "defghij";
  iovec out[3] = {{a.data(), a.size()}, {b.data(), 0}, {c.data(), c.size()}};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->writev(o, fd, out, 3, 2, h); }), 10);
  EXPECT_EQ(get_file("v"), std::string(2, '\0') + "abcdefghij");
  char x[4] = {}, y[6] = {};
  iovec in[2] = {{x, 4}, {y, 6}};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->readv(o, fd, in, 2, 3, h); }), 9);
  EXPECT_EQ(std::string(x, 4), "bcde");
  EXPECT_EQ(std::string(y, 5), "fghij");
  ::close(fd);
}

TEST_P(files, fsync_and_fdatasync) {
  auto lp = make_loop();
  int fd = raw_open("s", O_RDWR | O_CREAT);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "data", 4), 4);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->fsync(o, fd, h); }), 0);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->fdatasync(o, fd, h); }), 0);
  ::close(fd);
}

TEST_P(files, fallocate_extends_or_keeps_size) {
  auto lp = make_loop();
  int fd = raw_open("a", O_RDWR | O_CREAT);
  ASSERT_GE(fd, 0);
  auto r = run_one(*lp, [&](unio::op& o, auto h) { lp->fallocate(o, fd, 0, 0, 8192, h); });
  if (r == unio::test::neg(EOPNOTSUPP)) GTEST_SKIP() << "fallocate unsupported on /tmp";
  EXPECT_EQ(r, 0);
  struct stat st{};
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 8192);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->fallocate(o, fd, FALLOC_FL_KEEP_SIZE, 8192, 8192, h); }),
            0);
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 8192);
  EXPECT_GE(st.st_blocks * 512, 16384) << "KEEP_SIZE allocation past EOF not reserved";
  EXPECT_EQ(get_file("a"), std::string(8192, '\0'));
  ::close(fd);
}

TEST_P(files, ftruncate_shrinks_and_extends_with_zeros) {
  put_file("t", "0123456789");
  auto lp = make_loop();
  int fd = raw_open("t", O_RDWR);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->ftruncate(o, fd, 3, h); }), 0);
  EXPECT_EQ(get_file("t"), "012");
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->ftruncate(o, fd, 6, h); }), 0);
  EXPECT_EQ(get_file("t"), std::string("012") + std::string(3, '\0'));
  ::close(fd);
}

TEST_P(files, stat_by_path_and_by_fd) {
  put_file("st", std::string(1234, 'q'));
  ASSERT_EQ(::mkdir(path("sd").c_str(), 0700), 0);
  ASSERT_EQ(::symlink("st", path("sl").c_str()), 0);
  auto lp = make_loop();
  struct statx sx{};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->stat(o, dirfd(), "st", 0, STATX_BASIC_STATS, &sx, h); }), 0);
  EXPECT_EQ(sx.stx_size, 1234u);
  EXPECT_TRUE(S_ISREG(sx.stx_mode));
  EXPECT_NE(sx.stx_mask & STATX_SIZE, 0u);

  struct statx dx{};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->stat(o, dirfd(), "sd", 0, STATX_TYPE, &dx, h); }), 0);
  EXPECT_TRUE(S_ISDIR(dx.stx_mode));

  // AT_SYMLINK_NOFOLLOW stats the link itself; without it, the target.
  struct statx lx{}, tx{};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) {
              lp->stat(o, dirfd(), "sl", AT_SYMLINK_NOFOLLOW, STATX_TYPE, &lx, h);
            }),
            0);
  EXPECT_TRUE(S_ISLNK(lx.stx_mode));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->stat(o, dirfd(), "sl", 0, STATX_BASIC_STATS, &tx, h); }),
            0);
  EXPECT_EQ(tx.stx_size, 1234u);

  int fd = raw_open("st", O_RDONLY);
  ASSERT_GE(fd, 0);
  struct statx fx{};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->stat(o, fd, "", AT_EMPTY_PATH, STATX_SIZE, &fx, h); }), 0);
  EXPECT_EQ(fx.stx_size, 1234u);
  ::close(fd);
}

TEST_P(files, rename_plain_and_noreplace) {
  put_file("from", "payload");
  put_file("victim", "old");
  auto lp = make_loop();
  // Plain rename replaces the target.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->rename(o, dirfd(), "from", dirfd(), "victim", 0, h); }), 0);
  EXPECT_FALSE(exists("from"));
  EXPECT_EQ(get_file("victim"), "payload");
  // RENAME_NOREPLACE onto a free name succeeds...
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) {
              lp->rename(o, dirfd(), "victim", dirfd(), "fresh", RENAME_NOREPLACE, h);
            }),
            0);
  EXPECT_EQ(get_file("fresh"), "payload");
  // ...and onto an existing one fails with EEXIST and changes nothing.
  put_file("taken", "keep");
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) {
              lp->rename(o, dirfd(), "fresh", dirfd(), "taken", RENAME_NOREPLACE, h);
            }),
            unio::test::neg(EEXIST));
  EXPECT_EQ(get_file("fresh"), "payload");
  EXPECT_EQ(get_file("taken"), "keep");
  // RENAME_EXCHANGE swaps.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) {
              lp->rename(o, dirfd(), "fresh", dirfd(), "taken", RENAME_EXCHANGE, h);
            }),
            0);
  EXPECT_EQ(get_file("fresh"), "keep");
  EXPECT_EQ(get_file("taken"), "payload");
}

TEST_P(files, rename_across_directories) {
  ASSERT_EQ(::mkdir(path("d1").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(path("d2").c_str(), 0700), 0);
  put_file("d1/x", "moved");
  int d1 = ::open(path("d1").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int d2 = ::open(path("d2").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(d1, 0);
  ASSERT_GE(d2, 0);
  auto lp = make_loop();
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->rename(o, d1, "x", d2, "y", 0, h); }), 0);
  EXPECT_EQ(get_file("d2/y"), "moved");
  EXPECT_FALSE(exists("d1/x"));
  ::close(d1);
  ::close(d2);
}

TEST_P(files, unlink_mkdir_rmdir) {
  put_file("gone", "x");
  auto lp = make_loop();
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->unlink(o, dirfd(), "gone", h); }), 0);
  EXPECT_FALSE(exists("gone"));
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->mkdir(o, dirfd(), "sub", 0700, h); }), 0);
  struct stat st{};
  ASSERT_EQ(::stat(path("sub").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->rmdir(o, dirfd(), "sub", h); }), 0);
  EXPECT_FALSE(exists("sub"));
}

TEST_P(files, current_position_on_a_pipe) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  auto lp = make_loop();
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, p[1], "abc", 3, unio::current_position, h); }), 3);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, p[1], "def", 3, unio::current_position, h); }), 3);
  char buf[16] = {};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, p[0], buf, sizeof buf, unio::current_position, h); }),
            6);
  EXPECT_EQ(std::string(buf, 6), "abcdef");
  // writev/readv at the current position work on pipes too.
  std::string a = "12", b = "345";
  iovec out[2] = {{a.data(), 2}, {b.data(), 3}};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->writev(o, p[1], out, 2, unio::current_position, h); }), 5);
  char x[2], y[3];
  iovec in[2] = {{x, 2}, {y, 3}};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->readv(o, p[0], in, 2, unio::current_position, h); }), 5);
  EXPECT_EQ(std::string(x, 2) + std::string(y, 3), "12345");
  ::close(p[1]);
  // End of the stream: 0.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, p[0], buf, sizeof buf, unio::current_position, h); }),
            0);
  ::close(p[0]);
}

TEST_P(files, current_position_on_a_file_advances) {
  auto lp = make_loop();
  int fd = raw_open("pos", O_RDWR | O_CREAT);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, fd, "abc", 3, unio::current_position, h); }), 3);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, fd, "de", 2, unio::current_position, h); }), 2);
  EXPECT_EQ(::lseek(fd, 0, SEEK_CUR), 5);
  EXPECT_EQ(get_file("pos"), "abcde");
  ASSERT_EQ(::lseek(fd, 1, SEEK_SET), 1);
  char buf[8] = {};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, buf, 2, unio::current_position, h); }), 2);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, buf + 2, 8, unio::current_position, h); }), 2);
  EXPECT_EQ(std::string(buf, 4), "bcde");
  ::close(fd);
}

TEST_P(files, many_independent_ops_in_one_turn) {
  // 64 writes to distinct ranges submitted together, then 64 reads: all complete exactly once.
  auto lp = make_loop();
  int fd = raw_open("many", O_RDWR | O_CREAT);
  ASSERT_GE(fd, 0);
  constexpr int n = 64;
  std::vector<unio::op> ops(n);
  std::vector<std::string> data(n);
  std::vector<int> calls(n, 0);
  for (int i = 0; i < n; ++i) {
    data[i] = std::string(100, static_cast<char>('A' + i % 26));
    lp->write(ops[i], fd, data[i].data(), 100, static_cast<std::uint64_t>(i) * 100, [&, i](unio::op& o) {
      ++calls[i];
      EXPECT_EQ(o.raw_result(), 100);
    });
  }
  lp->run();
  std::vector<std::string> back(n, std::string(100, '?'));
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(calls[i], 1);
    lp->read(ops[i], fd, back[i].data(), 100, static_cast<std::uint64_t>(i) * 100, [&, i](unio::op& o) {
      ++calls[i];
      EXPECT_EQ(o.raw_result(), 100);
    });
  }
  lp->run();
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(calls[i], 2);
    EXPECT_EQ(back[i], data[i]) << "op " << i;
  }
  ::close(fd);
}

TEST_P(files, backend_name_matches_request) {
  auto lp = make_loop();
  if (GetParam() == "auto") {
    EXPECT_EQ(lp->backend_name(), unio::auto_backend());
    EXPECT_FALSE(lp->backend_reason().empty());
  } else {
    EXPECT_EQ(lp->backend_name(), unio::test::backend_of(GetParam()));
  }
}

INSTANTIATE_ALL_BACKENDS(files);

}  // namespace
