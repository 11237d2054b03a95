// The thread pool grows past pool_size for ops that wait on a device, up to
// loop_options::pool_max_threads, and shrinks back when idle; cached reads never grow it. Reads
// that wait go to the workers in batches of up to thread_pool::k_read_batch, each read of a batch
// tried with RWF_NOWAIT first (which starts a miss's device read); the pool grows for them only
// while a whole batch waits. An
// fsync waits on a worker of its own. The loop does not poll for results of ops that wait.
//
// A device that holds reads is made through the syscall seam: pread (what a pool worker runs)
// waits at a gate until the test opens it, and preadv2 with RWF_NOWAIT (the threadpool backend's
// inline try) answers EAGAIN, as the page cache does on a miss. The gate counts how many reads
// wait at once: each worker waits at the first read of its batch, so that is how many workers
// the pool runs for them. RWF_NOWAIT tries off the loop's thread (the test's) are counted.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend.hpp"
#include "sys/syscalls.hpp"
#include "thread_pool.hpp"
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
std::atomic<int> g_pool_tries{0};  // RWF_NOWAIT reads off the loop's thread
std::thread::id g_loop_thread;
constexpr std::size_t k_batch = unio::detail::thread_pool::k_read_batch;

int g_gated_fd = -1;  // the only fd whose reads wait at the gate; -1: every fd

ssize_t gated_pread(int fd, void* buf, size_t len, off_t off) {
  if (g_gated_fd < 0 || fd == g_gated_fd) g_gate->pass();
  return ::pread(fd, buf, len, off);
}
int gated_fsync(int fd) {
  g_gate->pass();
  return ::fsync(fd);
}

ssize_t refusing_preadv2(int fd, const iovec* iov, int cnt, off_t off, int flags) {
  if ((flags & RWF_NOWAIT) != 0) {
    if (std::this_thread::get_id() != g_loop_thread) ++g_pool_tries;
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
    t.fsync = &gated_fsync;
    g_pool_tries = 0;
    g_loop_thread = std::this_thread::get_id();
    sys::set_table(t);
  }
  // Runs the loop on this thread while another opens the gate once `n` workers wait at it (or
  // after 20 s: the test then fails on what it checks instead of hanging) and 50 ms more, room
  // for a growth past the bound to show in the peak; `held()` runs just before it opens.
  template <class Held>
  void run_until_held(unio::loop& lp, int n, Held held) {
    std::thread opener([&] {
      g.wait_inside(n, std::chrono::seconds(20));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      held();
      g.open();
    });
    lp.run();
    opener.join();
  }
  void run_until_held(unio::loop& lp, int n) {
    run_until_held(lp, n, [] {});
  }
  ~slow_device() {
    g_gated_fd = -1;
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
    data_.resize(256 * k_block);
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

std::int64_t pool_polls(unio::loop& lp) { return unio::detail::loop_access::backend_of(lp).test_hook("pool_polls", 0); }

TEST_F(pool_growth, reads_that_wait_on_the_device_grow_the_pool_to_its_bound_and_it_shrinks_back) {
  slow_device dev;
  unio::loop lp(opts());
  ASSERT_EQ(lp.backend_name(), "threadpool");
  const int before = pool_threads();
  ASSERT_EQ(before, static_cast<int>(k_core));
  // One batch per worker the bound allows, and one more that must wait for them.
  std::vector<read_slot> slots((k_max + 1) * k_batch);
  submit_reads(lp, slots);
  dev.run_until_held(lp, static_cast<int>(k_max));
  EXPECT_EQ(dev.g.peak, static_cast<int>(k_max)) << "workers waiting on the device at once (pool_size " << k_core
                                                 << ", pool_max_threads " << k_max << ")";
  EXPECT_EQ(check(slots), "");
  EXPECT_EQ(g_pool_tries.load(), static_cast<int>(slots.size())) << "reads of the batches tried with RWF_NOWAIT first";
  EXPECT_EQ(pool_polls(lp), 0) << "the loop would poll for results that take a device's time";
  EXPECT_TRUE(eventually([&] { return pool_threads() == before; }))
      << pool_threads() << " pool threads 20 s after the work ended; the core is " << before;
}

// A batch goes to one worker: with the bound at pool_size and two batches' worth of waiting
// reads, two workers wait, one read each at the gate, and every read of their batches was tried
// with RWF_NOWAIT (which starts a miss's device read) before.
TEST_F(pool_growth, waiting_reads_go_in_batches_read_ahead_together) {
  slow_device dev;
  unio::loop_options o = opts();
  o.pool_max_threads = 0;
  unio::loop lp(o);
  std::vector<read_slot> slots(k_core * k_batch);
  submit_reads(lp, slots);
  int tried_while_held = -1;
  dev.run_until_held(lp, static_cast<int>(k_core), [&] { tried_while_held = g_pool_tries.load(); });
  EXPECT_EQ(dev.g.peak, static_cast<int>(k_core));
  EXPECT_EQ(tried_while_held, static_cast<int>(slots.size()))
      << "reads started while each worker waited at the first read of its batch";
  EXPECT_EQ(check(slots), "");
}

ssize_t slowly_refusing_preadv2(int fd, const iovec* iov, int cnt, off_t off, int flags) {
  // The loop's try: a miss that started the readahead on the loop's thread.
  if ((flags & RWF_NOWAIT) != 0 && std::this_thread::get_id() == g_loop_thread) std::this_thread::sleep_for(1ms);
  return refusing_preadv2(fd, iov, cnt, off, flags);
}

// A slow refusal stops the loop's tries on that fd, so the loop no longer marks its reads; the
// pool still batches and reads them ahead, because its batches take a device's time.
TEST_F(pool_growth, reads_the_loop_did_not_mark_go_in_batches_while_the_pool_waits) {
  slow_device dev;
  sys::table t = sys::real_table();
  t.pread = &gated_pread;
  t.preadv2 = &slowly_refusing_preadv2;
  sys::set_table(t);
  unio::loop_options o = opts();
  o.pool_max_threads = 0;
  unio::loop lp(o);
  for (int round = 0; round < 2; ++round) {
    std::vector<read_slot> slots(k_core * k_batch);
    g_pool_tries = 0;
    {
      std::lock_guard lk(dev.g.mu);
      dev.g.opened = false;
      dev.g.peak = 0;
    }
    submit_reads(lp, slots);
    dev.run_until_held(lp, static_cast<int>(k_core));
    EXPECT_EQ(dev.g.peak, static_cast<int>(k_core)) << "round " << round;
    EXPECT_EQ(g_pool_tries.load(), static_cast<int>(slots.size())) << "round " << round;
    EXPECT_EQ(check(slots), "") << "round " << round;
  }
}

// A worker's batch holds reads of one fd: reads of another file queued among those of a file that
// does not answer (a dead NFS server, a stuck FUSE daemon) are not taken into its batches, and
// while every worker waits on it the pool grows for them.
TEST_F(pool_growth, a_file_that_hangs_holds_up_no_read_of_another_file) {
  for (const bool interleaved : {true, false}) {
    SCOPED_TRACE(interleaved ? "the other file's reads queued among the hung ones" : "queued after them");
    slow_device dev;
    g_gated_fd = fd_;
    const int other = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(other, 0);
    unio::loop lp(opts());
    std::vector<read_slot> hung(k_core * k_batch);
    constexpr std::size_t k_other = 8;
    std::vector<read_slot> fine(k_other);
    std::atomic<std::size_t> fine_done{0};
    auto submit_fine = [&] {
      for (std::size_t i = 0; i < k_other; ++i)
        lp.read(fine[i].op, other, fine[i].buf.data(), k_block, i * k_block, [&fine, &fine_done, i](unio::op&) {
          ++fine[i].completions;
          ++fine_done;
        });
    };
    for (std::size_t i = 0; i < hung.size(); ++i) {
      if (interleaved && i == k_batch / 2) submit_fine();
      lp.read(hung[i].op, fd_, hung[i].buf.data(), k_block, i * k_block, [&hung, i](unio::op&) { ++hung[i].completions; });
    }
    if (!interleaved) submit_fine();
    std::size_t done_while_hung = 0;
    std::thread opener([&] {
      dev.g.wait_inside(1, 20s);
      (void)eventually([&] { return fine_done.load() == k_other; }, 10s);
      done_while_hung = fine_done.load();
      dev.g.open();
    });
    lp.run();
    opener.join();
    ::close(other);
    EXPECT_EQ(done_while_hung, k_other) << "reads of the other file that completed while the first did not answer";
    EXPECT_EQ(check(hung), "");
    for (std::size_t i = 0; i < k_other; ++i) {
      EXPECT_EQ(fine[i].completions, 1) << i;
      EXPECT_EQ(std::memcmp(fine[i].buf.data(), data_.data() + i * k_block, k_block), 0) << i;
    }
  }
}

// An fsync is not a read: it is never batched behind another (each waits on its own worker), so
// the pool grows one worker per waiting fsync, to the bound.
TEST_F(pool_growth, fsyncs_wait_on_workers_of_their_own) {
  slow_device dev;
  unio::loop lp(opts());
  std::vector<unio::op> ops(k_max);
  int done = 0;
  for (auto& op : ops) lp.fsync(op, fd_, [&done](unio::op&) { ++done; });
  dev.run_until_held(lp, static_cast<int>(k_max));
  EXPECT_EQ(dev.g.peak, static_cast<int>(k_max));
  EXPECT_EQ(done, static_cast<int>(k_max));
  for (auto& op : ops) EXPECT_EQ(op.raw_result(), 0);
  EXPECT_EQ(g_pool_tries.load(), 0);
}

// The loop polls for the pool's results only while they come within spin_us: after ops that
// waited it does not, after a run of quick ones it does again.
TEST_F(pool_growth, the_loop_polls_only_for_quick_results) {
  unio::loop lp(opts());
  int done = 0;
  std::vector<unio::op> ops(k_core);
  auto round = [&](std::chrono::microseconds each) {
    for (auto& op : ops) lp.queue_work(op, [each] { std::this_thread::sleep_for(each); },
                                    [&done](unio::op&, auto&&, std::exception_ptr) { ++done; });
    lp.run();
  };
  round(20ms);
  EXPECT_EQ(pool_polls(lp), 0) << "after ops of 20 ms";
  for (int i = 0; i < 400 && pool_polls(lp) == 0; ++i) round(0us);
  EXPECT_EQ(pool_polls(lp), 1) << "after 400 rounds of empty work";
  EXPECT_GT(done, static_cast<int>(k_core));
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
  std::vector<read_slot> slots((k_core + 2) * k_batch);
  submit_reads(lp, slots);
  dev.run_until_held(lp, static_cast<int>(k_core));
  EXPECT_EQ(dev.g.peak, static_cast<int>(k_core));
  EXPECT_EQ(check(slots), "");
}

// Cancel while the grown pool holds some reads and others wait in its queue, then destroy the
// loop at once, with the extra workers still lingering: queued reads end ECANCELED, the others
// with their data, each once; the destructor waits for the extra workers (no thread is left).
TEST_F(pool_growth, cancel_and_destruction_with_a_grown_pool) {
  std::vector<read_slot> slots((k_max + 2) * k_batch);
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
    // Every worker holds a batch; the rest were queued.
    EXPECT_EQ(cancelled, static_cast<int>(slots.size() - k_max * k_batch));
  }
  // An extra worker tells the destructor it is done with the pool at its thread's exit; the
  // kernel may list the task a moment longer.
  EXPECT_TRUE(eventually([] { return pool_threads() == 0; })) << pool_threads() << " pool threads left after the loop was destroyed";
}

}  // namespace
