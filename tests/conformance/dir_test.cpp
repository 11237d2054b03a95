// Description: directory listings on the loop's pool (loop::scandir, async_scandir, read_dir and
// unio::dir_reader): names, types and inode numbers against lstat, no "." or "..", large
// directories in batches, errors and cancellation, on every backend.
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "common.hpp"

namespace {

using unio::test::conformance_test;
using unio::test::neg;
using unio::test::run_one;

class dir : public conformance_test {
 protected:
  // A directory "d" with one of every kind of entry.
  void make_mixed_tree() {
    ASSERT_EQ(::mkdir(path("d").c_str(), 0700), 0);
    put_file("d/file", "x");
    ASSERT_EQ(::link(path("d/file").c_str(), path("d/hardlink").c_str()), 0);
    ASSERT_EQ(::mkdir(path("d/sub").c_str(), 0700), 0);
    put_file("d/sub/inner", "y");  // must not be listed: scandir is not recursive
    ASSERT_EQ(::symlink("file", path("d/link").c_str()), 0);
    ASSERT_EQ(::symlink("nowhere", path("d/dangling").c_str()), 0);
    ASSERT_EQ(::mkfifo(path("d/fifo").c_str(), 0600), 0);
    put_file("d/.hidden", "");
  }

  // The DT_* type lstat gives for `name` (what getdents64 reports).
  unsigned char lstat_type(const std::string& name, std::uint64_t& ino) const {
    struct stat st {};
    if (::lstat(path(name).c_str(), &st) != 0) return 0xff;
    ino = st.st_ino;
    return static_cast<unsigned char>(IFTODT(st.st_mode));
  }

  void expect_matches_lstat(const std::vector<unio::dir_entry>& got, const std::string& sub) const {
    for (const auto& e : got) {
      std::uint64_t ino = 0;
      unsigned char t = lstat_type(sub + "/" + e.name, ino);
      EXPECT_EQ(e.ino, ino) << e.name;
      if (e.type != DT_UNKNOWN) {
        EXPECT_EQ(e.type, t) << e.name;
      }
    }
  }

  static std::set<std::string> names(const std::vector<unio::dir_entry>& v) {
    std::set<std::string> s;
    for (const auto& e : v)
      s.insert(e.name);
    return s;
  }
};

using listing = unio::result<std::vector<unio::dir_entry>>;

listing scan(unio::loop& lp, int dirfd, const char* p) {
  return unio::sync_wait(lp, [](unio::loop& lp, int dirfd, const char* p) -> unio::task<listing> {
    co_return co_await lp.async_scandir(dirfd, p);
  }(lp, dirfd, p));
}

TEST_P(dir, scandir_lists_every_kind_of_entry_like_lstat) {
  make_mixed_tree();
  auto lp = make_loop();
  auto r = scan(*lp, dirfd(), "d");
  ASSERT_TRUE(r) << r.error().message();
  const std::set<std::string> want = {"file", "hardlink", "sub", "link", "dangling", "fifo", ".hidden"};
  EXPECT_EQ(names(*r), want);
  EXPECT_EQ(r->size(), want.size()) << "an entry was listed twice";
  expect_matches_lstat(*r, "d");
  std::map<std::string, unio::dir_entry> by_name;
  for (const auto& e : *r)
    by_name[e.name] = e;
  EXPECT_EQ(by_name["file"].ino, by_name["hardlink"].ino);
  if (by_name["link"].type != DT_UNKNOWN) {
    EXPECT_EQ(by_name["link"].type, DT_LNK);
    EXPECT_EQ(by_name["dangling"].type, DT_LNK);
    EXPECT_EQ(by_name["sub"].type, DT_DIR);
    EXPECT_EQ(by_name["fifo"].type, DT_FIFO);
    EXPECT_EQ(by_name["file"].type, DT_REG);
  }
}

TEST_P(dir, scandir_callback_form_counts_and_leaves_out_dot_entries) {
  make_mixed_tree();
  auto lp = make_loop();
  std::vector<unio::dir_entry> out = {{"stale", DT_REG, 1}};
  auto n = run_one(*lp, [&](unio::op& o, auto h) { lp->scandir(o, dirfd(), "d", &out, h); });
  EXPECT_EQ(n, 7);
  EXPECT_EQ(out.size(), 7u);
  auto s = names(out);
  EXPECT_EQ(s.count("."), 0u);
  EXPECT_EQ(s.count(".."), 0u);
  EXPECT_EQ(s.count("stale"), 0u) << "*out must be replaced";
}

TEST_P(dir, scandir_of_dirfd_itself_and_of_an_empty_directory) {
  ASSERT_EQ(::mkdir(path("empty").c_str(), 0700), 0);
  put_file("top", "");
  auto lp = make_loop();
  auto self = scan(*lp, dirfd(), ".");
  ASSERT_TRUE(self) << self.error().message();
  EXPECT_EQ(names(*self), (std::set<std::string>{"empty", "top"}));
  auto empty = scan(*lp, dirfd(), "empty");
  ASSERT_TRUE(empty) << empty.error().message();
  EXPECT_TRUE(empty->empty());
  auto abs = scan(*lp, AT_FDCWD, path("empty").c_str());
  ASSERT_TRUE(abs) << abs.error().message();
  EXPECT_TRUE(abs->empty());
}

TEST_P(dir, scandir_errors_are_errnos) {
  put_file("plain", "");
  auto lp = make_loop();
  EXPECT_EQ(scan(*lp, dirfd(), "missing").error(), unio::errno_code(ENOENT));
  EXPECT_EQ(scan(*lp, dirfd(), "plain").error(), unio::errno_code(ENOTDIR));
  EXPECT_EQ(scan(*lp, -1, "relative").error(), unio::errno_code(EBADF));
  std::vector<unio::dir_entry> out;
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->scandir(o, dirfd(), "missing", &out, h); }),
            neg(ENOENT));
}

// EACCES needs an unprivileged user: a forked child drops to "nobody" (root reads anything).
TEST_P(dir, scandir_without_permission_is_eacces) {
  ASSERT_EQ(::mkdir(path("locked").c_str(), 0700), 0);
  if (::geteuid() != 0 && ::access(path("locked").c_str(), R_OK) == 0 &&
      ::chmod(path("locked").c_str(), 0) != 0)
    GTEST_SKIP() << "cannot make a directory unreadable";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::geteuid() == 0 && ::setresuid(65534, 65534, 65534) != 0) ::_exit(3);
    if (::geteuid() != 0) ::chmod(path("locked").c_str(), 0);
    std::optional<unio::loop> lp;
    try {
      lp.emplace(options());
    } catch (const std::system_error&) {
      ::_exit(4);  // posix_aio in a child of a process that used it: glibc's AIO state is not inherited
    }
    auto r = scan(*lp, dirfd(), "locked");
    ::_exit(r.error() == unio::errno_code(EACCES) ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ::chmod(path("locked").c_str(), 0700);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 3) GTEST_SKIP() << "cannot drop privileges";
  if (WEXITSTATUS(status) == 4) GTEST_SKIP() << GetParam() << " is unavailable in a forked child";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "scandir of an unreadable directory did not give EACCES";
}

TEST_P(dir, scandir_cancelled_while_queued_is_ecanceled) {
  make_mixed_tree();
  auto lp = make_loop();
  std::vector<unio::dir_entry> out;
  unio::op o;
  std::int64_t res = 0;
  int calls = 0;
  lp->scandir(o, dirfd(), "d", &out, [&](unio::op& x) {
    ++calls;
    res = x.raw_result();
  });
  lp->cancel(o);
  lp->run();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(res, neg(ECANCELED));
  EXPECT_TRUE(out.empty()) << "a cancelled scandir read the directory";
}

// 5000 entries through dir_reader: several batches, every name exactly once, then empty batches.
TEST_P(dir, dir_reader_yields_a_large_directory_in_batches) {
  constexpr int k_entries = 5000;
  ASSERT_EQ(::mkdir(path("big").c_str(), 0700), 0);
  for (int i = 0; i < k_entries; ++i) {
    int fd = raw_open("big/entry-with-a-longish-name-" + std::to_string(i), O_WRONLY | O_CREAT);
    ASSERT_GE(fd, 0);
    ::close(fd);
  }
  auto lp = make_loop();
  struct outcome {
    std::string error;
    std::vector<std::string> names;
    int batches = 0;
    bool empty_again = false;
  };
  auto got = unio::sync_wait(*lp, [](unio::loop& lp, int dirfd) -> unio::task<outcome> {
    outcome out;
    auto r = co_await unio::dir_reader::open(lp, dirfd, "big");
    if (!r) {
      out.error = "open: " + r.error().message();
      co_return out;
    }
    for (;;) {
      auto batch = co_await r->next();
      if (!batch) {
        out.error = "next: " + batch.error().message();
        co_return out;
      }
      if (batch->empty()) break;
      ++out.batches;
      for (const auto& e : *batch)
        out.names.push_back(e.name);
    }
    auto again = co_await r->next();
    out.empty_again = again && again->empty();
    auto c = co_await r->close();
    if (!c) out.error = "close: " + c.error().message();
    if (r->is_open()) out.error = "still open after close";
    co_return out;
  }(*lp, dirfd()));
  ASSERT_EQ(got.error, "");
  EXPECT_GT(got.batches, 1) << "5000 entries fit one batch?";
  EXPECT_TRUE(got.empty_again);
  ASSERT_EQ(got.names.size(), static_cast<std::size_t>(k_entries));
  std::sort(got.names.begin(), got.names.end());
  EXPECT_TRUE(std::adjacent_find(got.names.begin(), got.names.end()) == got.names.end())
      << "a name came twice";
  std::set<std::string> want;
  for (int i = 0; i < k_entries; ++i)
    want.insert("entry-with-a-longish-name-" + std::to_string(i));
  EXPECT_TRUE(std::equal(want.begin(), want.end(), got.names.begin()));
}

TEST_P(dir, dir_reader_open_errors_and_destruction_closes_the_fd) {
  put_file("plain", "");
  ASSERT_EQ(::mkdir(path("d").c_str(), 0700), 0);
  auto lp = make_loop();
  auto missing = unio::sync_wait(*lp, unio::dir_reader::open(*lp, dirfd(), "missing"));
  EXPECT_EQ(missing.error(), unio::errno_code(ENOENT));
  auto file = unio::sync_wait(*lp, unio::dir_reader::open(*lp, dirfd(), "plain"));
  EXPECT_EQ(file.error(), unio::errno_code(ENOTDIR));
  int fd = -1;
  {
    auto r = unio::sync_wait(*lp, unio::dir_reader::open(*lp, dirfd(), "d"));
    ASSERT_TRUE(r) << r.error().message();
    fd = r->fd();
    ASSERT_GE(fd, 0);
    EXPECT_NE(::fcntl(fd, F_GETFD), -1);
  }
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "the reader's destructor left its fd open";
}

TEST_P(dir, read_dir_on_a_bad_fd_is_ebadf_and_on_a_file_enotdir) {
  put_file("plain", "");
  auto lp = make_loop();
  std::vector<unio::dir_entry> out;
  // -1, not a closed number: the loop may open its own fds (the pool's eventfd) meanwhile.
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read_dir(o, -1, &out, h); }), neg(EBADF));
  int f = raw_open("plain", O_RDONLY);
  ASSERT_GE(f, 0);
  EXPECT_EQ(run_one(*lp, [&](unio::op& o, auto h) { lp->read_dir(o, f, &out, h); }), neg(ENOTDIR));
  ::close(f);
}

INSTANTIATE_ALL_BACKENDS(dir);

}  // namespace
