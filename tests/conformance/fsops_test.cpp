// Description: the file system operations beyond open/stat/rename (symlink, link, readlink, chmod,
// chown, utimens, statfs, copy_file_range, splice, access, mkdtemp, mkstemp, realpath), their
// errors and cancel, in both forms, on every backend.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "common.hpp"

namespace {

using namespace std::chrono_literals;
using unio::test::conformance_test;
using unio::test::neg;
using unio::test::run_one;

class fsops : public conformance_test {
 protected:
  struct stat lstat_of(const std::string& name) const {
    struct stat st{};
    EXPECT_EQ(::lstat(path(name).c_str(), &st), 0) << name;
    return st;
  }
};


TEST_P(fsops, symlink_then_readlink_gives_the_target) {
  auto lp = make_loop();
  ASSERT_TRUE(AWAIT(*lp, lp->async_symlink("some/target", dirfd(), "ln")).has_value());
  auto r = AWAIT(*lp, lp->async_readlink(dirfd(), "ln"));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(*r, "some/target");
  char buf[64];
  ASSERT_EQ(::readlink(path("ln").c_str(), buf, sizeof buf), 11);
  EXPECT_EQ(std::string(buf, 11), "some/target");
}

TEST_P(fsops, readlink_of_a_3000_byte_target_grows_its_buffer) {
  auto lp = make_loop();
  std::string target;
  while (target.size() < 3000) target += "component" + std::to_string(target.size()) + "/";
  target.resize(3000);
  const std::string link = path("long");
  auto s = run_one(*lp, [&](unio::op& o, auto h) { lp->symlink(o, target.c_str(), AT_FDCWD, link.c_str(), h); });
  ASSERT_EQ(s, 0) << std::strerror(static_cast<int>(-s));
  auto r = AWAIT(*lp, lp->async_readlink(AT_FDCWD, link.c_str()));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->size(), 3000u);
  EXPECT_EQ(*r, target);
  // The callback form fills the caller's buffer and says so when it was too small.
  char small[100];
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->readlink(o, dirfd(), "long", small, sizeof small, h); }), 100);
  EXPECT_EQ(std::string(small, 100), target.substr(0, 100));
}

TEST_P(fsops, readlink_and_symlink_errors) {
  put_file("plain", "x");
  auto lp = make_loop();
  auto missing = AWAIT(*lp, lp->async_readlink(dirfd(), "missing"));
  EXPECT_EQ(missing.error(), unio::errno_code(ENOENT));
  auto not_link = AWAIT(*lp, lp->async_readlink(dirfd(), "plain"));
  EXPECT_EQ(not_link.error(), unio::errno_code(EINVAL));
  EXPECT_EQ(AWAIT(*lp, lp->async_symlink("t", dirfd(), "plain")).error(), unio::errno_code(EEXIST));
}

TEST_P(fsops, link_gives_a_second_name_for_the_same_inode) {
  put_file("a", "data");
  auto lp = make_loop();
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->link(o, dirfd(), "a", dirfd(), "b", 0, h); }), 0);
  struct stat a = lstat_of("a"), b = lstat_of("b");
  EXPECT_EQ(a.st_nlink, 2u);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(get_file("b"), "data");
  EXPECT_EQ(AWAIT(*lp, lp->async_link(dirfd(), "a", dirfd(), "b")).error(), unio::errno_code(EEXIST));
  EXPECT_EQ(AWAIT(*lp, lp->async_link(dirfd(), "none", dirfd(), "c")).error(), unio::errno_code(ENOENT));
}

TEST_P(fsops, chmod_and_fchmod_change_the_mode) {
  put_file("f", "x");
  auto lp = make_loop();
  ASSERT_TRUE(AWAIT(*lp, lp->async_chmod(dirfd(), "f", 0640)).has_value());
  EXPECT_EQ(lstat_of("f").st_mode & 07777, 0640u);
  int fd = raw_open("f", O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->fchmod(o, fd, 0604, h); }), 0);
  EXPECT_EQ(lstat_of("f").st_mode & 07777, 0604u);
  ::close(fd);
  EXPECT_EQ(AWAIT(*lp, lp->async_chmod(dirfd(), "missing", 0600)).error(), unio::errno_code(ENOENT));
  EXPECT_EQ(AWAIT(*lp, lp->async_fchmod(-1, 0600)).error(), unio::errno_code(EBADF));
}

TEST_P(fsops, chown_fchown_and_lchown_change_the_owner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give files away";
  put_file("f", "x");
  ASSERT_EQ(::symlink("f", path("l").c_str()), 0);
  auto lp = make_loop();
  ASSERT_TRUE(AWAIT(*lp, lp->async_chown(dirfd(), "f", 1234, 5678)).has_value());
  EXPECT_EQ(lstat_of("f").st_uid, 1234u);
  EXPECT_EQ(lstat_of("f").st_gid, 5678u);
  int fd = raw_open("f", O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(AWAIT(*lp, lp->async_fchown(fd, 4321, static_cast<gid_t>(-1))).has_value());
  EXPECT_EQ(lstat_of("f").st_uid, 4321u);
  EXPECT_EQ(lstat_of("f").st_gid, 5678u) << "gid -1 leaves the group alone";
  ::close(fd);
  // lchown changes the link, not the file it points to.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->lchown(o, dirfd(), "l", 111, 222, h); }), 0);
  EXPECT_EQ(lstat_of("l").st_uid, 111u);
  EXPECT_EQ(lstat_of("l").st_gid, 222u);
  EXPECT_EQ(lstat_of("f").st_uid, 4321u);
  // chown follows the link.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->chown(o, dirfd(), "l", 7, 8, h); }), 0);
  EXPECT_EQ(lstat_of("f").st_uid, 7u);
  EXPECT_EQ(lstat_of("l").st_uid, 111u);
  EXPECT_EQ(AWAIT(*lp, lp->async_lchown(dirfd(), "missing", 1, 1)).error(), unio::errno_code(ENOENT));
}

TEST_P(fsops, utimens_sets_times_to_the_nanosecond_and_omit_keeps_one) {
  put_file("f", "x");
  auto lp = make_loop();
  const timespec both[2] = {{1000000000, 123456789}, {1100000000, 987654321}};
  ASSERT_TRUE(AWAIT(*lp, lp->async_utimens(dirfd(), "f", both)).has_value());
  struct stat st = lstat_of("f");
  EXPECT_EQ(st.st_atim.tv_sec, 1000000000);
  EXPECT_EQ(st.st_atim.tv_nsec, 123456789);
  EXPECT_EQ(st.st_mtim.tv_sec, 1100000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 987654321);
  // Through an fd (AT_EMPTY_PATH), leaving the access time alone.
  int fd = raw_open("f", O_RDONLY);
  ASSERT_GE(fd, 0);
  const timespec omit_a[2] = {{0, UTIME_OMIT}, {1200000000, 5}};
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->utimens(o, fd, "", omit_a, AT_EMPTY_PATH, h); }), 0);
  st = lstat_of("f");
  EXPECT_EQ(st.st_atim.tv_sec, 1000000000);
  EXPECT_EQ(st.st_atim.tv_nsec, 123456789);
  EXPECT_EQ(st.st_mtim.tv_sec, 1200000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 5);
  ::close(fd);
  // nullptr: both now.
  ASSERT_TRUE(AWAIT(*lp, lp->async_utimens(dirfd(), "f", nullptr)).has_value());
  EXPECT_GT(lstat_of("f").st_mtim.tv_sec, 1200000000);
  EXPECT_EQ(AWAIT(*lp, lp->async_utimens(dirfd(), "missing", both)).error(), unio::errno_code(ENOENT));
}

TEST_P(fsops, statfs_and_fstatfs_match_the_system_call) {
  auto lp = make_loop();
  for (const char* where : {"/proc", "/dev/shm", "/tmp"}) {
    struct statfs want{}, got{};
    if (::statfs(where, &want) != 0) continue;
    ASSERT_TRUE(AWAIT(*lp, lp->async_statfs(where, &got)).has_value()) << where;
    EXPECT_EQ(got.f_type, want.f_type) << where;
    EXPECT_EQ(got.f_bsize, want.f_bsize) << where;
  }
  struct statfs want{}, got{};
  ASSERT_EQ(::statfs(dir().c_str(), &want), 0);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->fstatfs(o, dirfd(), &got, h); }), 0);
  EXPECT_EQ(got.f_type, want.f_type);
  EXPECT_EQ(got.f_files, want.f_files);
  struct statfs none{};
  EXPECT_EQ(AWAIT(*lp, lp->async_statfs(path("missing").c_str(), &none)).error(), unio::errno_code(ENOENT));
  EXPECT_EQ(AWAIT(*lp, lp->async_fstatfs(-1, &none)).error(), unio::errno_code(EBADF));
}

TEST_P(fsops, copy_file_range_at_offsets_leaves_positions_alone) {
  put_file("in", "0123456789abcdef");
  auto lp = make_loop();
  int in = raw_open("in", O_RDONLY);
  int out = raw_open("out", O_RDWR | O_CREAT);
  ASSERT_GE(in, 0);
  ASSERT_GE(out, 0);
  auto r = AWAIT(*lp, lp->async_copy_file_range(in, 4, out, 2, 6));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(*r, 6u);
  EXPECT_EQ(get_file("out"), std::string(2, '\0') + "456789");
  EXPECT_EQ(::lseek(in, 0, SEEK_CUR), 0);
  EXPECT_EQ(::lseek(out, 0, SEEK_CUR), 0);
  // Past the end: 0.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->copy_file_range(o, in, 100, out, 0, 4, 0, h); }), 0);
  ::close(in);
  ::close(out);
}

TEST_P(fsops, copy_file_range_at_current_position_advances_it) {
  put_file("in", "0123456789");
  auto lp = make_loop();
  int in = raw_open("in", O_RDONLY);
  int out = raw_open("out", O_RDWR | O_CREAT);
  ASSERT_GE(in, 0);
  ASSERT_GE(out, 0);
  ASSERT_EQ(::lseek(in, 3, SEEK_SET), 3);
  ASSERT_EQ(::lseek(out, 1, SEEK_SET), 1);
  const auto cur = unio::current_position;
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->copy_file_range(o, in, cur, out, cur, 4, 0, h); }), 4);
  EXPECT_EQ(::lseek(in, 0, SEEK_CUR), 7);
  EXPECT_EQ(::lseek(out, 0, SEEK_CUR), 5);
  EXPECT_EQ(get_file("out"), std::string(1, '\0') + "3456");
  EXPECT_EQ(AWAIT(*lp, lp->async_copy_file_range(-1, 0, out, 0, 4)).error(), unio::errno_code(EBADF));
  ::close(in);
  ::close(out);
}

TEST_P(fsops, splice_from_a_nonblocking_pipe_waits_for_its_data) {
  auto lp = make_loop();
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  int out = raw_open("out", O_RDWR | O_CREAT);
  ASSERT_GE(out, 0);
  // The data arrives from a timer on the same loop, so the splice has to wait for it.
  unio::op s, t;
  std::int64_t res = 1;
  bool spliced = false, done_before_data = false;
  lp->splice(s, p[0], unio::current_position, out, 3, 5, 0, [&](unio::op& o) {
    res = o.raw_result();
    spliced = true;
  });
  lp->timeout(t, 1ms, [&](unio::op&) {
    done_before_data = spliced;
    ASSERT_EQ(::write(p[1], "hello", 5), 5);
  });
  lp->run();
  EXPECT_FALSE(done_before_data) << "completed before the pipe had data: " << res;
  EXPECT_EQ(res, 5) << std::strerror(static_cast<int>(-res));
  EXPECT_EQ(get_file("out"), std::string(3, '\0') + "hello");
  ::close(p[0]);
  ::close(p[1]);
  ::close(out);
}

TEST_P(fsops, splice_into_a_full_nonblocking_pipe_waits_for_room) {
  put_file("in", "file data");
  auto lp = make_loop();
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  std::string fill(65536, 'f');
  std::size_t filled = 0;
  for (ssize_t n; (n = ::write(p[1], fill.data(), fill.size())) > 0;) filled += static_cast<std::size_t>(n);
  ASSERT_EQ(errno, EAGAIN);
  int in = raw_open("in", O_RDONLY);
  ASSERT_GE(in, 0);
  unio::op s, t;
  std::int64_t res = 1;
  bool spliced = false, done_before_room = false;
  std::size_t drained = 0;
  lp->splice(s, in, 5, p[1], unio::current_position, 4, 0, [&](unio::op& o) {
    res = o.raw_result();
    spliced = true;
  });
  lp->timeout(t, 1ms, [&](unio::op&) {
    done_before_room = spliced;
    char buf[65536];
    while (drained < filled) {
      ssize_t n = ::read(p[0], buf, std::min(sizeof buf, filled - drained));
      if (n <= 0) break;
      drained += static_cast<std::size_t>(n);
    }
  });
  lp->run();
  EXPECT_FALSE(done_before_room);
  EXPECT_EQ(drained, filled);
  EXPECT_EQ(res, 4) << std::strerror(static_cast<int>(-res));
  char got[8] = {};
  EXPECT_EQ(::read(p[0], got, sizeof got), 4);
  EXPECT_EQ(std::string(got, 4), "data");
  ::close(p[0]);
  ::close(p[1]);
  ::close(in);
}

TEST_P(fsops, cancelled_splice_waiting_on_an_empty_pipe) {
  auto lp = make_loop();
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  int out = raw_open("out", O_RDWR | O_CREAT);
  ASSERT_GE(out, 0);
  unio::op s, t;
  std::int64_t res = 1;
  lp->splice(s, p[0], unio::current_position, out, 0, 5, 0, [&](unio::op& o) { res = o.raw_result(); });
  lp->timeout(t, 1ms, [&](unio::op&) { lp->cancel(s); });
  lp->run();
  EXPECT_EQ(res, neg(ECANCELED));
  // The pipe's later data stays in the pipe.
  ASSERT_EQ(::write(p[1], "late", 4), 4);
  char got[8];
  EXPECT_EQ(::read(p[0], got, sizeof got), 4);
  EXPECT_EQ(get_file("out"), "");
  ::close(p[0]);
  ::close(p[1]);
  ::close(out);
}

TEST_P(fsops, splice_without_a_pipe_is_einval) {
  put_file("a", "x");
  auto lp = make_loop();
  int a = raw_open("a", O_RDONLY);
  int b = raw_open("b", O_RDWR | O_CREAT);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_EQ(AWAIT(*lp, lp->async_splice(a, 0, b, 0, 1)).error(), unio::errno_code(EINVAL));
  ::close(a);
  ::close(b);
}

TEST_P(fsops, access_checks_existence_and_permission) {
  put_file("f", "x");
  ASSERT_EQ(::chmod(path("f").c_str(), 0644), 0);
  auto lp = make_loop();
  EXPECT_TRUE(AWAIT(*lp, lp->async_access(dirfd(), "f", F_OK)).has_value());
  EXPECT_TRUE(AWAIT(*lp, lp->async_access(dirfd(), "f", W_OK, AT_EACCESS)).has_value());
  // No execute bit at all: refused even to root.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->access(o, dirfd(), "f", X_OK, 0, h); }), neg(EACCES));
  EXPECT_EQ(AWAIT(*lp, lp->async_access(dirfd(), "missing", F_OK)).error(), unio::errno_code(ENOENT));
}

TEST_P(fsops, mkdtemp_creates_a_directory_from_the_template) {
  auto lp = make_loop();
  const std::string tmpl = path("d-XXXXXX");
  auto r = AWAIT(*lp, lp->async_mkdtemp(tmpl));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->size(), tmpl.size());
  EXPECT_EQ(r->substr(0, tmpl.size() - 6), tmpl.substr(0, tmpl.size() - 6));
  EXPECT_NE(r->substr(tmpl.size() - 6), "XXXXXX");
  struct stat st{};
  ASSERT_EQ(::stat(r->c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // The callback form rewrites the caller's buffer.
  std::string buf = path("e-XXXXXX");
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->mkdtemp(o, buf.data(), h); }), 0);
  EXPECT_EQ(::stat(buf.c_str(), &st), 0);
  EXPECT_EQ(AWAIT(*lp, lp->async_mkdtemp(path("bad-XXXX"))).error(), unio::errno_code(EINVAL));
}

TEST_P(fsops, mkstemp_gives_an_open_fd_and_its_path) {
  auto lp = make_loop();
  const std::string tmpl = path("f-XXXXXX");
  auto r = AWAIT(*lp, lp->async_mkstemp(tmpl));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  ASSERT_GE(r->fd, 0);
  EXPECT_EQ(r->path.substr(0, tmpl.size() - 6), tmpl.substr(0, tmpl.size() - 6));
  EXPECT_NE(r->path, tmpl);
  EXPECT_NE(::fcntl(r->fd, F_GETFD) & FD_CLOEXEC, 0);
  auto w = AWAIT(*lp, lp->async_write(r->fd, "temp", 4, 0));
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(slurp(r->path), "temp");
  struct stat st{};
  ASSERT_EQ(::stat(r->path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ::close(r->fd);
  std::string buf = path("g-XXXXXX");
  auto fd = run_one(*lp, [&](unio::op& o, auto h) { lp->mkstemp(o, buf.data(), h); });
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::stat(buf.c_str(), &st), 0);
  ::close(static_cast<int>(fd));
  EXPECT_EQ(AWAIT(*lp, lp->async_mkstemp(path("bad"))).error(), unio::errno_code(EINVAL));
}

TEST_P(fsops, realpath_resolves_symlinks_and_dots) {
  ASSERT_EQ(::mkdir(path("real").c_str(), 0700), 0);
  ASSERT_EQ(::symlink("real", path("l1").c_str()), 0);
  ASSERT_EQ(::symlink("l1/../l1", path("l2").c_str()), 0);
  char want[PATH_MAX];
  ASSERT_NE(::realpath(path("real").c_str(), want), nullptr);
  auto lp = make_loop();
  const std::string through = path("l2") + "/./";
  auto r = AWAIT(*lp, lp->async_realpath(through.c_str()));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(*r, want);
  const std::string missing = path("l1/none");
  EXPECT_EQ(AWAIT(*lp, lp->async_realpath(missing.c_str())).error(), unio::errno_code(ENOENT));
  char small[4];
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->realpath(o, through.c_str(), small, sizeof small, h); }),
            neg(ERANGE));
}

TEST_P(fsops, cancelled_mkdtemp_never_runs) {
  auto lp = make_loop();
  std::string buf = path("c-XXXXXX");
  const std::string before = buf;
  unio::op o;
  std::int64_t res = 1;
  lp->mkdtemp(o, buf.data(), [&](unio::op& x) { res = x.raw_result(); });
  lp->cancel(o);
  lp->run();
  EXPECT_EQ(res, neg(ECANCELED));
  EXPECT_EQ(buf, before) << "the template was used";
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir())) entries += e.path().filename().string().starts_with("c-");
  EXPECT_EQ(entries, 0) << "a directory was created";
}

INSTANTIATE_ALL_BACKENDS(fsops);

}  // namespace
