// Description: the linux_aio backend really uses native AIO where it says it does: O_DIRECT
// files and (with aio_buffered) buffered files go through io_submit, other files through the
// pool, and results are the same either way.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "unio/unio.hpp"

namespace {

bool linux_aio_available(std::string* why) {
  for (const auto& b : unio::probe_backends())
    if (b.name == "linux_aio") {
      *why = b.reason;
      return b.available;
    }
  *why = "not built";
  return false;
}

// rchar of /proc/self/io: bytes this process read through read-like syscalls. Native AIO does
// not count there (the kernel reads on io_submit's behalf); pread on a pool thread does.
long long rchar() {
  std::ifstream in("/proc/self/io");
  std::string key;
  long long v = -1;
  while (in >> key >> v)
    if (key == "rchar:") return v;
  return -1;
}

class linux_aio_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!linux_aio_available(&why)) GTEST_SKIP() << "linux_aio unavailable: " << why;
    char tmpl[] = "/var/tmp/unio-aio-XXXXXX";  // a disk file system: tmpfs ignores O_DIRECT rules
    fd_ = ::mkstemp(tmpl);
    ASSERT_GE(fd_, 0);
    path_ = tmpl;
    data_.resize(k_size);
    for (std::size_t i = 0; i < k_size; ++i) data_[i] = static_cast<char>(i * 7 + 3);
    ASSERT_EQ(::pwrite(fd_, data_.data(), k_size, 0), static_cast<ssize_t>(k_size));
    ::fsync(fd_);
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }

  // Reads the whole file in 64 KiB ops, 8 in flight; returns the rchar delta.
  long long read_all(unio::loop& lp, int fd, unio::aligned_buffer& out) {
    constexpr std::size_t chunk = 64 * 1024;
    long long before = rchar();
    std::size_t next = 0, done = 0;
    unio::op ops[8];
    auto issue = [&](unio::op& o, auto& self) -> void {
      if (next >= k_size) return;
      std::size_t off = next;
      next += chunk;
      lp.read(o, fd, out.data() + off, chunk, off, [&, off](unio::op& x) {
        EXPECT_EQ(x.raw_result(), static_cast<std::int64_t>(chunk)) << "offset " << off << ": " << x.error().message();
        ++done;
        self(x, self);
      });
    };
    for (auto& o : ops) issue(o, issue);
    lp.run();
    EXPECT_EQ(done, k_size / chunk);
    return rchar() - before;
  }

  static constexpr std::size_t k_size = 4 << 20;
  int fd_ = -1;
  std::string path_;
  std::string data_;
};

TEST_F(linux_aio_test, buffered_files_go_to_the_pool_by_default) {
  unio::loop lp({.backend = "linux_aio"});
  unio::aligned_buffer buf(k_size);
  long long delta = read_all(lp, fd_, buf);
  EXPECT_EQ(std::memcmp(buf.data(), data_.data(), k_size), 0);
  EXPECT_GE(delta, static_cast<long long>(k_size)) << "buffered reads should have run as pread on the pool";
}

TEST_F(linux_aio_test, aio_buffered_submits_buffered_files_natively) {
  unio::loop_options o{.backend = "linux_aio"};
  o.aio_buffered = true;
  unio::loop lp(o);
  unio::aligned_buffer buf(k_size);
  long long delta = read_all(lp, fd_, buf);
  EXPECT_EQ(std::memcmp(buf.data(), data_.data(), k_size), 0);
  EXPECT_LT(delta, static_cast<long long>(k_size / 2)) << "reads should have gone through io_submit";
}

TEST_F(linux_aio_test, o_direct_files_go_through_aio) {
  int dfd = ::open(path_.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  if (dfd < 0) GTEST_SKIP() << "O_DIRECT refused here: " << std::strerror(errno);
  unio::loop lp({.backend = "linux_aio"});
  unio::aligned_buffer buf(k_size);
  long long delta = read_all(lp, dfd, buf);
  EXPECT_EQ(std::memcmp(buf.data(), data_.data(), k_size), 0);
  EXPECT_LT(delta, static_cast<long long>(k_size / 2));
  ::close(dfd);
}

TEST_F(linux_aio_test, native_writes_vectors_and_syncs) {
  unio::loop_options o{.backend = "linux_aio"};
  o.aio_buffered = true;
  unio::loop lp(o);
  auto body = [&]() -> unio::task<void> {
    char a[5] = {'h', 'e', 'l', 'l', 'o'}, b[3] = {'a', 'i', 'o'};
    iovec w[2] = {{a, 5}, {b, 3}};
    auto n = co_await lp.async_writev(fd_, w, 2, 100);
    EXPECT_EQ(n.value_or(0), 8u);
    EXPECT_TRUE(co_await lp.async_fdatasync(fd_));
    EXPECT_TRUE(co_await lp.async_fsync(fd_));
    char r1[5] = {}, r2[3] = {};
    iovec r[2] = {{r1, 5}, {r2, 3}};
    auto m = co_await lp.async_readv(fd_, r, 2, 100);
    EXPECT_EQ(m.value_or(0), 8u);
    EXPECT_EQ(std::string(r1, 5) + std::string(r2, 3), "helloaio");
    char past[16];
    auto eof = co_await lp.async_read(fd_, past, sizeof past, k_size + 10);
    EXPECT_EQ(eof.value_or(99), 0u);
    auto bad = co_await lp.async_read(-1, past, sizeof past, 0);
    EXPECT_EQ(bad.error(), std::errc::bad_file_descriptor);
  };
  unio::sync_wait(lp, body());
}

TEST_F(linux_aio_test, backend_info_lists_native_and_delegated_ops) {
  for (const auto& b : unio::probe_backends()) {
    if (b.name != "linux_aio") continue;
    for (auto c : {unio::op_code::read, unio::op_code::write, unio::op_code::readv, unio::op_code::writev,
                   unio::op_code::fsync, unio::op_code::fdatasync})
      EXPECT_TRUE(b.native[static_cast<std::size_t>(c)]) << unio::to_string(c);
    for (auto c : {unio::op_code::open, unio::op_code::stat, unio::op_code::rename, unio::op_code::fallocate,
                   unio::op_code::sendfile})
      EXPECT_FALSE(b.native[static_cast<std::size_t>(c)]) << unio::to_string(c);
  }
}

}  // namespace
