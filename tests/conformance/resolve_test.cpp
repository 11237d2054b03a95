// Description: openat2 resolve flags (beneath, no_symlinks, in_root, no_magiclinks, no_xdev) are enforced by every backend.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "common.hpp"

namespace {

using unio::test::conformance_test;
using unio::test::neg;
using unio::test::run_one;

// dir/outside          "OUT"
// dir/root/inside      "IN"
// dir/root/etc/f       "ROOTED"
// dir/root/ok      ->  inside            (stays inside)
// dir/root/up      ->  ../outside        (escapes, relative)
// dir/root/abs     ->  <dir>/outside     (escapes, absolute)
// dir/root/rooted  ->  /etc/f            (absolute; inside the root only under in_root)
class resolve_flags : public conformance_test {
 protected:
  void SetUp() override {
    conformance_test::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    put_file("outside", "OUT");
    ASSERT_EQ(::mkdir(path("root").c_str(), 0700), 0);
    ASSERT_EQ(::mkdir(path("root/etc").c_str(), 0700), 0);
    put_file("root/inside", "IN");
    put_file("root/etc/f", "ROOTED");
    ASSERT_EQ(::symlink("inside", path("root/ok").c_str()), 0);
    ASSERT_EQ(::symlink("../outside", path("root/up").c_str()), 0);
    ASSERT_EQ(::symlink(path("outside").c_str(), path("root/abs").c_str()), 0);
    ASSERT_EQ(::symlink("/etc/f", path("root/rooted").c_str()), 0);
    root_ = ::open(path("root").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(root_, 0);
  }
  void TearDown() override {
    if (root_ >= 0) ::close(root_);
    conformance_test::TearDown();
  }

  // Opens `p` relative to `dirfd` with the resolve flags; returns the contents or "-errno".
  std::string open_read(unio::loop& lp, int dirfd, const std::string& p, std::uint64_t res) {
    auto fd = run_one(lp, [&](unio::op& o, auto h) {
      lp.open(o, dirfd, p.c_str(), {.flags = O_RDONLY, .resolve = res}, h);
    });
    if (fd < 0) return std::to_string(fd);
    char buf[64] = {};
    ssize_t n = ::pread(static_cast<int>(fd), buf, sizeof buf, 0);
    ::close(static_cast<int>(fd));
    return std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  }

  int root_ = -1;
};

const std::string exdev = std::to_string(neg(EXDEV));
const std::string eloop = std::to_string(neg(ELOOP));

TEST_P(resolve_flags, beneath_allows_paths_inside) {
  auto lp = make_loop();
  EXPECT_EQ(open_read(*lp, root_, "inside", unio::resolve::beneath), "IN");
  EXPECT_EQ(open_read(*lp, root_, "ok", unio::resolve::beneath), "IN");
  EXPECT_EQ(open_read(*lp, root_, "etc/../inside", unio::resolve::beneath), "IN");
}

TEST_P(resolve_flags, beneath_refuses_escapes_with_exdev) {
  auto lp = make_loop();
  EXPECT_EQ(open_read(*lp, root_, "../outside", unio::resolve::beneath), exdev);
  EXPECT_EQ(open_read(*lp, root_, "etc/../../outside", unio::resolve::beneath), exdev);
  EXPECT_EQ(open_read(*lp, root_, "up", unio::resolve::beneath), exdev);
  EXPECT_EQ(open_read(*lp, root_, "abs", unio::resolve::beneath), exdev);
  EXPECT_EQ(open_read(*lp, root_, path("outside"), unio::resolve::beneath), exdev);
  // Without the flag the same paths do escape: the refusal above is the flag's doing.
  EXPECT_EQ(open_read(*lp, root_, "up", 0), "OUT");
  EXPECT_EQ(open_read(*lp, root_, "abs", 0), "OUT");
  // The awaitable form refuses too, and O_CREAT through an escaping link creates nothing.
  auto r = unio::sync_wait(*lp, [&]() -> unio::task<unio::result<int>> {
    co_return co_await lp->async_open(root_, "../created", {.flags = O_CREAT | O_WRONLY, .mode = 0600,
                                                            .resolve = unio::resolve::beneath});
  }());
  EXPECT_EQ(r.error(), unio::errno_code(EXDEV));
  EXPECT_FALSE(exists("created"));
}

TEST_P(resolve_flags, no_symlinks_gives_eloop) {
  auto lp = make_loop();
  EXPECT_EQ(open_read(*lp, root_, "ok", unio::resolve::no_symlinks), eloop);
  EXPECT_EQ(open_read(*lp, root_, "up", unio::resolve::no_symlinks), eloop);
  EXPECT_EQ(open_read(*lp, root_, "inside", unio::resolve::no_symlinks), "IN");
  EXPECT_EQ(open_read(*lp, root_, "ok", unio::resolve::no_symlinks | unio::resolve::beneath), eloop);
}

TEST_P(resolve_flags, in_root_confines_absolute_paths_and_dotdot) {
  auto lp = make_loop();
  EXPECT_EQ(open_read(*lp, root_, "/etc/f", unio::resolve::in_root), "ROOTED");
  EXPECT_EQ(open_read(*lp, root_, "../../../../etc/f", unio::resolve::in_root), "ROOTED");
  EXPECT_EQ(open_read(*lp, root_, "rooted", unio::resolve::in_root), "ROOTED");
  EXPECT_EQ(open_read(*lp, root_, "/inside", unio::resolve::in_root), "IN");
  // "up" -> ../outside resolves to <root>/outside, which does not exist.
  EXPECT_EQ(open_read(*lp, root_, "up", unio::resolve::in_root), std::to_string(neg(ENOENT)));
  // The absolute link to the real outside file is re-rooted too.
  EXPECT_EQ(open_read(*lp, root_, "abs", unio::resolve::in_root), std::to_string(neg(ENOENT)));
}

TEST_P(resolve_flags, no_magiclinks_refuses_proc_fd_links) {
  auto lp = make_loop();
  int fd = raw_open("outside", O_RDONLY);
  ASSERT_GE(fd, 0);
  const std::string magic = "/proc/self/fd/" + std::to_string(fd);
  if (::access(magic.c_str(), R_OK) != 0) GTEST_SKIP() << "no /proc";
  EXPECT_EQ(open_read(*lp, AT_FDCWD, magic, 0), "OUT");
  EXPECT_EQ(open_read(*lp, AT_FDCWD, magic, unio::resolve::no_magiclinks), eloop);
  ::close(fd);
}

TEST_P(resolve_flags, no_xdev_refuses_mount_crossing) {
  struct stat a{}, b{};
  if (::stat(dir().c_str(), &a) != 0 || ::stat("/proc/self", &b) != 0 || a.st_dev == b.st_dev)
    GTEST_SKIP() << "/proc is not a separate mount here";
  auto lp = make_loop();
  EXPECT_EQ(open_read(*lp, dirfd(), "outside", unio::resolve::no_xdev), "OUT");
  EXPECT_EQ(open_read(*lp, AT_FDCWD, "/proc/version", unio::resolve::no_xdev), exdev);
}

INSTANTIATE_ALL_BACKENDS(resolve_flags);

}  // namespace
