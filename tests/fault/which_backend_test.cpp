// Description: which backend really did the I/O (no silent fallback). /proc/self/io counts the
// write system calls of every thread of the process (syscw). 64 O_DIRECT writes through a loop
// on io_uring (its own write, not delegated) or linux_aio (iocbs submitted to the kernel) add
// fewer than 64 to it: the kernel wrote, not a write(2) or pwrite(2) call. On sync, threadpool,
// posix_aio (glibc's threads call pwrite) and io_uring_delegate (the pool does) they add at least 64.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include "conformance/backends.hpp"
#include "fault/test_data.hpp"
#include "fault/mounts.hpp"
#include "unio/unio.hpp"

namespace {

using namespace unio::test;

constexpr int k_writes = 64;

// The process's write system calls so far (syscw in /proc/self/io), or -1.
long write_syscalls() {
  std::ifstream in("/proc/self/io");
  std::string key;
  long value = 0;
  while (in >> key >> value)
    if (key == "syscw:") return value;
  return -1;
}

// True when `lp` writes to an O_DIRECT file in the kernel, without a write system call.
bool kernel_writes(const unio::loop& lp) {
  const std::string_view b = lp.backend_name();
  return (b == "io_uring" && lp.is_native(unio::op_code::write)) || b == "linux_aio";
}

class which_backend : public backend_test {};

TEST_P(which_backend, o_direct_writes_are_done_where_the_backend_says) {
  scratch_dir dir;
  ASSERT_TRUE(dir.ok());
  int fd = ::open((dir / "f").c_str(), O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
  if (fd < 0) GTEST_SKIP() << "no O_DIRECT on " << dir.path() << ": " << std::strerror(errno);
  if (write_syscalls() < 0) GTEST_SKIP() << "no syscw in /proc/self/io";
  std::unique_ptr<char, free_deleter> buf(static_cast<char*>(std::aligned_alloc(k_block, k_block)));
  std::memset(buf.get(), 'd', k_block);
  unio::loop lp(options());
  const long before = write_syscalls();
  std::size_t written = unio::sync_wait(lp, [&]() -> unio::task<std::size_t> {
    std::size_t n = 0;
    for (int i = 0; i < k_writes; ++i) {
      auto r = co_await lp.async_write(fd, buf.get(), k_block, static_cast<std::uint64_t>(i) * k_block);
      n += r ? *r : 0;
    }
    co_return n;
  }());
  const long calls = write_syscalls() - before;
  ::close(fd);
  EXPECT_EQ(written, k_block * k_writes);
  if (kernel_writes(lp)) EXPECT_LT(calls, k_writes) << lp.backend_name() << " made write system calls: a fallback?";
  else EXPECT_GE(calls, k_writes) << lp.backend_name() << " wrote without write system calls?";
  RecordProperty("write_syscalls", std::to_string(calls));
}

INSTANTIATE_ALL_BACKENDS(which_backend);

}  // namespace
