// The thread pool grows past pool_size for reads that wait on a device, up to
// loop_options::pool_max_threads, and shrinks back when idle; cached reads never grow it.
//
// A device that holds reads is made through the syscall seam: pread (what a pool worker runs)
// waits at a gate until the test opens it, and preadv2 with RWF_NOWAIT (the threadpool backend's
// inline try) answers EAGAIN, as the page cache does on a miss. The gate counts how many reads
// wait at once: that is how many workers the pool runs for them.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sys/syscalls.hpp"
#include "unio/unio.hpp"

namespace {

namespace sys = unio::detail::sys;
using namespace std::chrono_literals;

// Threads of this process named "unio-pool" (the pool's workers).
int pool_threads() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return -1;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(std::string("/proc/self/task/") + e->d_name + "/comm");
    std::string comm;
    std::getline(in, comm);
    n += comm == "unio-pool" ? 1 : 0;
  }
  ::closedir(d);
  return n;
}

// Waits up to `limit` for pred(); returns its last value.
template <class Pred>
bool eventually(Pred pred, std::chrono::seconds limit = 20s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return pred();
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// The seam's pread waits here until open(); the peak of reads waiting at once is kept.
struct gate {
  std::mutex mu;
  std::condition_variable cv;
  bool opened = false;
  int inside = 0, peak = 0;

  void pass() {
    std::unique_lock lk(mu);
    ++inside;
    peak = std::max(peak, inside);
    cv.notify_all();
    cv.wait(lk, [&] { return opened; });
    --inside;
  }
  bool wait_inside(int n, std::chrono::seconds limit) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, limit, [&] { return inside >= n; });
  }
  void open() {
    std::lock_guard lk(mu);
    opened = true;
    cv.notify_all();
  }
};

gate* g_gate = nullptr;

ssize_t gated_pread(int fd, void* buf, size_t len, off_t off) {
  g_gate->pass();
  return ::pread(fd, buf, len, off);
}
ssize_t refusing_preadv2(int fd, const iovec* iov, int cnt, off_t off, int flags) {
  if ((flags & RWF_NOWAIT) != 0) {
    errno = EAGAIN;
    return -1;
  }
  return ::preadv2(fd, iov, cnt, off, flags);
}

// Installs the gated table for its lifetime (declare it before the loop).
struct slow_device {
  gate g;
  slow_device() {
    g_gate = &g;
    sys::table t = sys::real_table();
    t.pread = &gated_pread;
    t.preadv2 = &refusing_preadv2;
    sys::set_table(t);
  }
  ~slow_device() {
    g.open();
    sys::set_table(sys::real_table());
    g_gate = nullptr;
  }
};

class pool_growth : public ::testing::Test {
 protected:
  static constexpr std::size_t k_block = 4096;
  static constexpr unsigned k_core = 2, k_max = 6;

  void SetUp() override {
    char tmpl[] = "/var/tmp/unio-growth-XXXXXX";
    fd_ = ::mkstemp(tmpl);
    ASSERT_GE(fd_, 0);
    path_ = tmpl;
    data_.resize(64 * k_block);
    for (std::size_t i = 0; i < data_.size(); ++i) data_[i] = static_cast<char>(i * 31 / 7);
    ASSERT_EQ(::pwrite(fd_, data_.data(), data_.size(), 0), static_cast<ssize_t>(data_.size()));
  }
  void TearDown() override {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  static unio::loop_options opts() {
    unio::loop_options o;
    o.backend = "threadpool";
    o.pool_size = k_core;
    o.pool_max_threads = k_max;
    return o;
  }

  struct read_slot {
    unio::op op;
    std::vector<char> buf = std::vector<char>(k_block);
    int completions = 0;
  };
  // Submits one 4 KiB read per slot, slot i at block i; each completion is counted.
  void submit_reads(unio::loop& lp, std::vector<read_slot>& slots) {
    for (std::size_t i = 0; i < slots.size(); ++i)
      lp.read(slots[i].op, fd_, slots[i].buf.data(), k_block, i * k_block, [&slots, i](unio::op&) {
        ++slots[i].completions;
      });
  }
  // "" when slot i holds block i, completed once.
  std::string check(const std::vector<read_slot>& slots, bool cancelled_ok = false) const {
    for (std::size_t i = 0; i < slots.size(); ++i) {
      const read_slot& s = slots[i];
      if (s.completions != 1) return "read " + std::to_string(i) + " completed " + std::to_string(s.completions) + " times";
      if (cancelled_ok && s.op.raw_result() == -ECANCELED) continue;
      if (s.op.raw_result() != static_cast<std::int64_t>(k_block)) return "read " + std::to_string(i) + ": " + std::to_string(s.op.raw_result());
      if (std::memcmp(s.buf.data(), data_.data() + i * k_block, k_block) != 0) return "read " + std::to_string(i) + ": wrong bytes";
    }
    return "";
  }

  int fd_ = -1;
  std::string path_;
  std::string data_;
};

TEST_F(pool_growth, reads_that_wait_on_the_device_grow_the_pool_to_its_bound_and_it_shrinks_back) {
  slow_device dev;
  unio::loop lp(opts());
  ASSERT_EQ(lp.backend_name(), "threadpool");
  const int before = pool_threads();
  ASSERT_EQ(before, static_cast<int>(k_core));
  std::vector<read_slot> slots(3 * k_max);
  submit_reads(lp, slots);
  // The loop's thread runs the loop; this one opens the gate once the pool has grown (or after
  // 20 s, and the test then fails on the peak instead of hanging).
  std::thread opener([&] {
    dev.g.wait_inside(static_cast<int>(k_max), 20s);
    std::this_thread::sleep_for(50ms);  // room for a growth past the bound to show in the peak
    dev.g.open();
  });
  lp.run();
  opener.join();
  EXPECT_EQ(dev.g.peak, static_cast<int>(k_max)) << "reads waiting on the device at once (pool_size " << k_core
                                                 << ", pool_max_threads " << k_max << ")";
  EXPECT_EQ(check(slots), "");
  EXPECT_TRUE(eventually([&] { return pool_threads() == before; }))
      << pool_threads() << " pool threads 20 s after the work ended; the core is " << before;
}

TEST_F(pool_growth, cached_reads_keep_pool_size_workers) {
  unio::loop lp(opts());
  std::vector<read_slot> slots(64);
  int peak = 0;
  for (int round = 0; round < 30; ++round) {
    for (auto& s : slots) s.completions = 0;
    submit_reads(lp, slots);
    lp.run();
    peak = std::max(peak, pool_threads());
    ASSERT_EQ(check(slots), "") << "round " << round;
  }
  EXPECT_EQ(peak, static_cast<int>(k_core));
}

TEST_F(pool_growth, no_growth_when_the_bound_is_pool_size) {
  slow_device dev;
  unio::loop_options o = opts();
  o.pool_max_threads = 0;
  unio::loop lp(o);
  std::vector<read_slot> slots(8);
  submit_reads(lp, slots);
  std::thread opener([&] {
    dev.g.wait_inside(static_cast<int>(k_core), 20s);
    std::this_thread::sleep_for(50ms);
    dev.g.open();
  });
  lp.run();
  opener.join();
  EXPECT_EQ(dev.g.peak, static_cast<int>(k_core));
  EXPECT_EQ(check(slots), "");
}

// Cancel while the grown pool holds some reads and others wait in its queue, then destroy the
// loop at once, with the extra workers still lingering: queued reads end ECANCELED, the others
// with their data, each once; the destructor waits for the extra workers (no thread is left).
TEST_F(pool_growth, cancel_and_destruction_with_a_grown_pool) {
  std::vector<read_slot> slots(3 * k_max);
  {
    slow_device dev;
    unio::loop lp(opts());
    submit_reads(lp, slots);
    std::thread opener([&] {
      dev.g.wait_inside(static_cast<int>(k_max), 20s);
      lp.post([&] {
        for (auto& s : slots) lp.cancel(s.op);
        dev.g.open();
      });
    });
    lp.run();
    opener.join();
    EXPECT_EQ(check(slots, true), "");
    int cancelled = 0;
    for (auto& s : slots) cancelled += s.op.raw_result() == -ECANCELED ? 1 : 0;
    EXPECT_GE(cancelled, 1) << "no queued read was cancelled";
    EXPECT_LE(cancelled, static_cast<int>(slots.size() - k_max)) << "a read the device held was cancelled";
  }
  // An extra worker tells the destructor it is done with the pool at its thread's exit; the
  // kernel may list the task a moment longer.
  EXPECT_TRUE(eventually([] { return pool_threads() == 0; })) << pool_threads() << " pool threads left after the loop was destroyed";
}

}  // namespace
