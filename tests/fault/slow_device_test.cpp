// Description: a slow device. An ext4 loop image (in a private mount namespace) whose loop device
// the cgroup v1 blkio controller throttles to 1 MiB/s of reads, for this child only, so that an
// O_DIRECT read of 256 KiB takes about a quarter of a second.
//   - with_timeout(20 ms) on such a read completes once: ETIMEDOUT when the cancel stopped it,
//     else, when the read could no longer be stopped (in the device, or on a pool thread), its
//     own whole result with the right bytes; never a short read, never twice;
//   - destroying the loop with 4 such reads in flight waits for them (bounded by the device, not
//     hung) and runs each handler once, with ECANCELED or the whole read.
// Skipped without root, loop devices or the cgroup v1 blkio hierarchy.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "conformance/backends.hpp"
#include "fault/child.hpp"
#include "fault/test_data.hpp"
#include "fault/mounts.hpp"
#include "unio/unio.hpp"

namespace {

using namespace unio::test;
using namespace std::chrono_literals;

constexpr std::size_t k_read = 256 * 1024;
constexpr const char* k_blkio = "/sys/fs/cgroup/blkio";



bool write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

// Puts this process in a new blkio cgroup `cg` that reads the device of `mnt` at 1 MiB/s.
int throttle_reads(const std::string& cg, const std::string& mnt, std::string& msg) {
  struct stat st {};
  if (::stat(mnt.c_str(), &st) != 0) return report(msg, errstr("stat " + mnt, errno), 1);
  if (::mkdir(cg.c_str(), 0755) != 0) return report(msg, errstr("mkdir " + cg, errno), k_skip);
  const std::string rule = std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev)) + " 1048576";
  if (!write_text(cg + "/blkio.throttle.read_bps_device", rule) || !write_text(cg + "/cgroup.procs", std::to_string(::getpid())))
    return report(msg, "cannot throttle " + rule + " in " + cg, k_skip);
  return 0;
}

// A data file of n bytes of byte_at() on mnt, opened O_DIRECT for reading; -1 on failure.
int slow_file(const std::string& mnt, std::size_t n) {
  const std::string path = mnt + "/slow";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  std::vector<char> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = byte_at(i);
  bool ok = fd >= 0 && ::write(fd, v.data(), n) == static_cast<ssize_t>(n) && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  return ok ? ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC) : -1;
}

// "" when buf holds k_read bytes of byte_at() from `off`.
std::string right_bytes(const char* buf, std::uint64_t off) {
  for (std::size_t i = 0; i < k_read; ++i)
    if (buf[i] != byte_at(off + i)) return "byte " + std::to_string(off + i) + " differs";
  return "";
}

// A slow read with a 20 ms timeout: "" when it ended in ETIMEDOUT or its whole, right read
// (which one goes to `seen`).
std::string timed_out_read(unio::loop& lp, int fd, std::string& seen) {
  aligned_buf buf = aligned(k_read);
  auto r = unio::sync_wait(lp, [&]() -> unio::task<unio::result<std::size_t>> {
    co_return co_await unio::with_timeout(lp, lp.async_read(fd, buf.get(), k_read, 0), 20ms);
  }());
  seen = r ? "whole read" : r.error().message();
  if (!r) return r.error() == std::errc::timed_out ? "" : "read: " + r.error().message();
  if (*r != k_read) return "a short read of " + std::to_string(*r) + " after the timeout";
  return right_bytes(buf.get(), 0);
}

// Four slow reads in flight when the loop is destroyed: "" when each handler ran once with
// ECANCELED or its whole, right read.
std::string destroyed_under_reads(const unio::loop_options& opts, int fd) {
  constexpr int n = 4;
  aligned_buf buf = aligned(n * k_read);
  std::vector<unio::op> ops(n);
  std::vector<int> calls(n, 0);
  std::vector<std::int64_t> res(n, 0);
  {
    unio::loop lp(opts);
    for (int i = 0; i < n; ++i) {
      const auto u = static_cast<std::size_t>(i);
      lp.read(ops[u], fd, buf.get() + u * k_read, k_read, u * k_read, [&calls, &res, u](unio::op& o) {
        ++calls[u];
        res[u] = o.raw_result();
      });
    }
    lp.poll();
  }
  for (std::size_t u = 0; u < n; ++u) {
    if (calls[u] != 1) return "read " + std::to_string(u) + ": " + std::to_string(calls[u]) + " completions";
    if (res[u] == -ECANCELED) continue;
    if (res[u] != static_cast<std::int64_t>(k_read)) return "read " + std::to_string(u) + ": " + std::to_string(res[u]);
    if (auto bad = right_bytes(buf.get() + u * k_read, u * k_read); !bad.empty()) return bad;
  }
  return "";
}

class slow_device : public backend_test {};

TEST_P(slow_device, timeouts_and_shutdown_on_a_throttled_device_complete_each_read_once) {
  if (::access(k_blkio, W_OK) != 0) GTEST_SKIP() << "no writable cgroup v1 blkio hierarchy at " << k_blkio;
  const std::string cg = std::string(k_blkio) + "/unio_slow_" + std::to_string(::getpid());
  auto opts = options();
  auto res = on_fresh_image(k_ext4, [&](const scratch_dir&, const std::string& mnt, std::string& msg) -> int {
    int fd = slow_file(mnt, 4 * k_read);
    if (fd < 0) return report(msg, errstr("slow file", errno), 1);
    if (int rc = throttle_reads(cg, mnt, msg); rc != 0) return rc;
    std::string bad, seen;
    {
      unio::loop lp(opts);
      bad = timed_out_read(lp, fd, seen);
    }
    if (bad.empty()) bad = destroyed_under_reads(opts, fd);
    ::close(fd);
    write_text(std::string(k_blkio) + "/cgroup.procs", std::to_string(::getpid()));
    return report(msg, bad.empty() ? "read with a timeout: " + seen : bad, bad.empty() ? 0 : 2);
  });
  ::rmdir(cg.c_str());
  EXPECT_CHILD_OK(res);
}

INSTANTIATE_ALL_BACKENDS(slow_device);

}  // namespace
