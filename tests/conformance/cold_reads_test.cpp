// Description: buffered reads of files evicted from the page cache give the file's bytes on every backend, and
// io_uring's cold-read path (a cold fd's reads go to its cold reader, cachestat samples one in 16) completes each
// read exactly once: pages evicted between the check and the read, pages cached although the check said not,
// cancel before and after the hand-over, and destroying the loop with cold reads in flight; O_DIRECT reads are
// never tried with RWF_NOWAIT, on the loop's thread or by a pool's read batches.
#include <fcntl.h>
#include <unistd.h>

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend.hpp"
#include "common.hpp"
#include "sys/syscalls.hpp"

namespace {

using unio::test::conformance_test;
namespace csys = unio::detail::sys;

constexpr std::size_t k_cold_page = 4096;
constexpr std::size_t k_cold_pages = 2048;  // an 8 MiB file
constexpr int k_cold_reads = 64;

// The byte at `off` of the test file.
char cold_byte(std::uint64_t off) { return static_cast<char>((off * 131 + off / 4096 * 7) % 251); }

std::int64_t cold_hook(unio::loop& lp, const char* name, std::int64_t arg = 0) {
  return unio::detail::loop_access::backend_of(lp).test_hook(name, arg);
}

class cold_reads : public conformance_test {
 protected:
  void SetUp() override {
    conformance_test::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    std::string data(k_cold_page * k_cold_pages, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = cold_byte(i);
    put_file("data", data);
    fd_ = raw_open("data", O_RDONLY);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override {
    csys::set_table(csys::real_table());
    if (fd_ >= 0) ::close(fd_);
    conformance_test::TearDown();
  }

  // Drops the file's pages from the page cache (written back first: dirty pages stay). On a
  // file system without a backing store (tmpfs) nothing is dropped; the io_uring checks below
  // then fail, so the test directory must be on a disk file system.
  void evict() const {
    ASSERT_EQ(::fdatasync(fd_), 0);
    ASSERT_EQ(::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED), 0);
  }

  // Whether this loop routes buffered reads (io_uring with its reads native, without SQPOLL).
  bool routes(unio::loop& lp) const {
    const std::string p = GetParam();
    return unio::test::backend_of(p) == "io_uring" && p != "io_uring_sqpoll" && lp.is_native(unio::op_code::read);
  }

  // Submits k_cold_reads 4 KiB reads at pages spread over the file (page i * 31 mod k_cold_pages); each
  // handler counts its calls and keeps its result.
  void submit_reads(unio::loop& lp) {
    ops_ = std::vector<unio::op>(k_cold_reads);
    bufs_.assign(k_cold_reads, std::vector<char>(k_cold_page));
    calls_.assign(k_cold_reads, 0);
    res_.assign(k_cold_reads, 1);
    for (int i = 0; i < k_cold_reads; ++i)
      lp.read(ops_[i], fd_, bufs_[i].data(), k_cold_page, offset(i), [this, i](unio::op& o) {
        ++calls_[i];
        res_[i] = o.raw_result();
      });
  }
  static std::uint64_t offset(int i) { return static_cast<std::uint64_t>(i) * 31 % k_cold_pages * k_cold_page; }

  // Every read completed once; with `may_cancel`, ECANCELED is allowed, else only the bytes.
  // Returns how many were cancelled.
  int check_reads(bool may_cancel) const {
    int cancelled = 0;
    for (int i = 0; i < k_cold_reads; ++i) {
      EXPECT_EQ(calls_[i], 1) << "read " << i;
      if (may_cancel && res_[i] == -ECANCELED) {
        ++cancelled;
        continue;
      }
      EXPECT_EQ(res_[i], static_cast<std::int64_t>(k_cold_page)) << "read " << i;
      if (res_[i] != static_cast<std::int64_t>(k_cold_page)) continue;
      for (std::size_t b = 0; b < k_cold_page; b += 509)
        if (bufs_[i][b] != cold_byte(offset(i) + b)) {
          ADD_FAILURE() << "read " << i << ": wrong byte at " << b;
          break;
        }
    }
    return cancelled;
  }

  int fd_ = -1;
  std::vector<unio::op> ops_;
  std::vector<std::vector<char>> bufs_;
  std::vector<int> calls_;
  std::vector<std::int64_t> res_;
};

TEST_P(cold_reads, reads_of_an_evicted_file_give_its_bytes) {
  auto lp = make_loop();
  for (int round = 0; round < 4; ++round) {
    evict();
    if (round == 2) cold_hook(*lp, "make_cold", fd_);  // from here io_uring asks cachestat per read
    const std::int64_t before = cold_hook(*lp, "cold_reader_reads");
    submit_reads(*lp);
    lp->run();
    check_reads(false);
    if (round >= 2 && routes(*lp)) {
      EXPECT_EQ(cold_hook(*lp, "cold_fd", fd_), 1);
      EXPECT_GT(cold_hook(*lp, "cold_reader_reads"), before) << "no read of the evicted file went to the cold reader";
    }
  }
}

// A cold fd's samples (one read in 16) ask cachestat. It answers "cached" and the pages are
// evicted before the read runs: the inline read then misses and must still give the bytes, and
// 15 cached samples of 16 turn the fd warm. Then the opposite: "not cached" for cached pages sends
// every read, samples too, to the cold reader.
TEST_P(cold_reads, pages_evicted_between_the_check_and_the_read_give_their_bytes) {
  static int evict_fd;
  static bool answer_cached;
  static int asked;
  evict_fd = fd_;
  csys::table t = csys::real_table();
  t.cachestat = [](int, const csys::cachestat_range* r, csys::cachestat_result* out, unsigned) {
    ++asked;
    *out = csys::cachestat_result{};
    if (answer_cached) {
      out->nr_cache = r->len / k_cold_page;
      (void)::posix_fadvise(evict_fd, static_cast<off_t>(r->off), static_cast<off_t>(r->len), POSIX_FADV_DONTNEED);
    }
    return 0;
  };
  csys::set_table(t);
  auto lp = make_loop();
  const int samples = 4 * k_cold_reads / 16;  // four rounds of k_cold_reads reads

  cold_hook(*lp, "make_cold", fd_);
  answer_cached = true;
  asked = 0;
  evict();
  std::int64_t before = cold_hook(*lp, "cold_reader_reads");
  for (int round = 0; round < 4; ++round) {
    submit_reads(*lp);
    lp->run();
    check_reads(false);
  }
  if (routes(*lp)) {
    EXPECT_EQ(asked, samples);
    EXPECT_EQ(cold_hook(*lp, "cold_reader_reads"), before + 4 * k_cold_reads - samples)
        << "samples said cached went to the cold reader";
    EXPECT_EQ(cold_hook(*lp, "cold_fd", fd_), 0) << "cached samples did not turn the fd warm";
  }

  cold_hook(*lp, "make_cold", fd_);
  answer_cached = false;
  asked = 0;
  before = cold_hook(*lp, "cold_reader_reads");
  for (int round = 0; round < 4; ++round) {
    submit_reads(*lp);  // most pages are cached now (the reads above brought them in)
    lp->run();
    check_reads(false);
  }
  if (routes(*lp)) {
    EXPECT_EQ(asked, samples);
    EXPECT_EQ(cold_hook(*lp, "cold_reader_reads"), before + 4 * k_cold_reads);
    EXPECT_EQ(cold_hook(*lp, "cold_fd", fd_), 1);
  }
}

TEST_P(cold_reads, cancel_before_and_after_the_hand_over_completes_each_read_once) {
  auto lp = make_loop();
  cold_hook(*lp, "make_cold", fd_);
  evict();
  submit_reads(*lp);
  for (auto& o : ops_) lp->cancel(o);  // still in the loop's turn: never reach the reader
  lp->run();
  int cancelled = check_reads(true);
  if (routes(*lp)) {
    EXPECT_EQ(cancelled, k_cold_reads);
  }

  evict();
  submit_reads(*lp);
  lp->poll();  // handed to the backend (here: to the cold reader's thread)
  for (auto& o : ops_) lp->cancel(o);
  lp->run();
  check_reads(true);
}

TEST_P(cold_reads, destroying_the_loop_with_cold_reads_in_flight_completes_each_once) {
  for (int polls = 0; polls < 3; ++polls) {
    auto lp = make_loop();
    cold_hook(*lp, "make_cold", fd_);
    evict();
    submit_reads(*lp);
    for (int p = 0; p < polls; ++p) lp->poll();
    lp.reset();
    check_reads(true);
  }
}

// A RWF_NOWAIT try of an O_DIRECT read still waits for the device on the calling thread, so the
// threadpool backend never tries one on the loop's thread (the seam counts the tries); on every
// backend the reads give the file's bytes.
// Nor by a pool's read batches (a worker tries a batch's reads with RWF_NOWAIT first, which on an
// O_DIRECT file waits for the device). On threadpool the buffered file's first read is refused
// slowly (as a miss that started the device's read), so the loop takes the O_DIRECT reads that
// follow for reads that wait, the ones a pool batches.
TEST_P(cold_reads, o_direct_reads_are_never_tried_with_rwf_nowait) {
  static std::atomic<int> direct_tries;
  static int direct_fd, buffered_fd;
  direct_fd = raw_open("data", O_RDONLY | O_DIRECT);
  if (direct_fd < 0) GTEST_SKIP() << "O_DIRECT refused here: " << std::strerror(errno);
  buffered_fd = fd_;
  direct_tries = 0;
  csys::table t = csys::real_table();
  t.preadv2 = [](int fd, const iovec* iov, int cnt, off_t off, int flags) -> ssize_t {
    if (fd == direct_fd && (flags & RWF_NOWAIT) != 0) ++direct_tries;
    if (fd == buffered_fd && (flags & RWF_NOWAIT) != 0) {
      ::usleep(200);
      errno = EAGAIN;
      return -1;
    }
    return ::preadv2(fd, iov, cnt, off, flags);
  };
  csys::set_table(t);
  {
    auto lp = make_loop();
    char buffered[64];
    unio::op first;
    lp->read(first, fd_, buffered, sizeof buffered, 0, [](unio::op&) {});
    lp->run();
    EXPECT_EQ(first.raw_result(), static_cast<std::int64_t>(sizeof buffered));
    constexpr int k_direct_reads = 32;
    std::vector<unio::op> ops(k_direct_reads);
    std::vector<char*> bufs(k_direct_reads);
    for (auto& b : bufs) b = static_cast<char*>(std::aligned_alloc(k_cold_page, k_cold_page));
    for (int round = 0; round < 2; ++round) {
      for (int i = 0; i < k_direct_reads; ++i) lp->read(ops[i], direct_fd, bufs[i], k_cold_page, offset(i), [](unio::op&) {});
      lp->run();
      for (int i = 0; i < k_direct_reads; ++i) {
        EXPECT_EQ(ops[i].raw_result(), static_cast<std::int64_t>(k_cold_page)) << "read " << i;
        EXPECT_EQ(bufs[i][17], cold_byte(offset(i) + 17)) << "read " << i;
      }
    }
    for (char* b : bufs) std::free(b);
  }
  ::close(direct_fd);
  EXPECT_EQ(direct_tries.load(), 0) << "O_DIRECT reads were tried with RWF_NOWAIT";
}

INSTANTIATE_ALL_BACKENDS(cold_reads);

}  // namespace
