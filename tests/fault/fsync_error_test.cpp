// Description: a device that fails writes under buffered data. An ext4 image without a journal
// sits on a loop device whose backing file lives on a 6 MiB tmpfs (in a private mount
// namespace), so the device runs out of space long before the file system does. 16 MiB of
// buffered writes through the loop all succeed (they only reach the page cache); the first
// fsync reports the failed writeback (ENOSPC, or EIO) on every backend, never success.
//
// What a second fsync means on Linux: a writeback error is reported once to each open file (the
// kernel's errseq rule), and the failed pages are not written again. Here the second fsync
// reported EIO (ext4's own metadata error) and the third succeeded, although the data never
// reached the device; a file opened after the error also fsyncs cleanly. unio passes each
// result through as the kernel gave it: it neither retries a failed fsync nor remembers its
// error, so after a failed fsync the data written before it must be treated as lost.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "conformance/backends.hpp"
#include "fault/child.hpp"
#include "fault/mounts.hpp"
#include "unio/unio.hpp"

namespace {

using namespace unio::test;

constexpr std::size_t k_mib = 1 << 20;

// Writes 16 MiB to a new file and fsyncs it three times. Returns "" or what went wrong; the
// fsync results go to `seen`.
std::string write_then_fsync(unio::loop& lp, const std::string& path, std::vector<int>& seen) {
  std::vector<char> buf(k_mib, 'x');
  return unio::sync_wait(lp, [&]() -> unio::task<std::string> {
    auto fd = co_await lp.async_open(AT_FDCWD, path.c_str(), {.flags = O_WRONLY | O_CREAT, .mode = 0644});
    if (!fd) co_return "open: " + fd.error().message();
    for (int i = 0; i < 16; ++i) {
      auto w = co_await unio::write_all(lp, *fd, buf.data(), buf.size(), static_cast<std::uint64_t>(i) * k_mib);
      if (!w) co_return "buffered write " + std::to_string(i) + ": " + w.error().message();
    }
    for (int i = 0; i < 3; ++i) {
      auto s = co_await lp.async_fsync(*fd);
      seen.push_back(s ? 0 : s.error().value());
    }
    (void)co_await lp.async_close(*fd);
    co_return "";
  }());
}

std::string names(const std::vector<int>& errs) {
  std::string out;
  for (int e : errs) out += (out.empty() ? "" : ", ") + std::string(e == 0 ? "ok" : std::strerror(e));
  return out;
}

class fsync_error : public backend_test {};

TEST_P(fsync_error, buffered_writes_succeed_and_fsync_reports_the_failed_writeback) {
  scratch_dir dir;
  ASSERT_TRUE(dir.ok()) << std::strerror(errno);
  auto opts = options();
  auto res = run_in_child([&](std::string& msg) -> int {
    if (int rc = private_mount_ns(msg); rc != 0) return rc;
    const std::string small = dir / "small", mnt = dir / "mnt";
    if (int rc = mount_tmpfs(small, "size=6m", msg); rc != 0) return rc;
    if (int rc = mount_image(k_ext4_no_journal, small + "/img", mnt, msg); rc != 0) return rc;
    std::vector<int> seen;
    {
      unio::loop lp(opts);
      if (std::string bad = write_then_fsync(lp, mnt + "/f", seen); !bad.empty()) return report(msg, bad, 2);
    }
    msg = "fsyncs: " + names(seen);
    if (seen.empty() || (seen[0] != ENOSPC && seen[0] != EIO)) return report(msg, "first fsync: " + msg, 3);
    return umount_retry(mnt, msg);
  }, 60);
  EXPECT_CHILD_OK(res);
}

INSTANTIATE_ALL_BACKENDS(fsync_error);

}  // namespace
