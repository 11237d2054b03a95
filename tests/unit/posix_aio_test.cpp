// Description: the posix_aio backend really runs its native ops through glibc's POSIX AIO (its
// helper threads appear while reads are in flight), returns the right data at depth 32, syncs,
// cancels ops glibc has not started (ECANCELED, exactly once, never run), completes every op
// exactly once when the loop is destroyed with 200 in flight, and hands completions back in
// batches (far fewer loop turns than ops), and is refused, with the reason, in a forked child of
// a process that used it.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "unio/unio.hpp"

namespace {

std::string comm_of(const std::string& task_dir) {
  std::ifstream in(task_dir + "/comm");
  std::string s;
  std::getline(in, s);
  return s;
}

// Threads of this process named like the main thread (glibc's AIO helpers inherit the name;
// unio's reaper is "unio-paio-reap"), excluding the calling thread; and whether a reaper exists.
int unnamed_helper_threads(bool* reaper_seen) {
  std::string self_comm = comm_of("/proc/self/task/" + std::to_string(::syscall(SYS_gettid)));
  int n = 0;
  *reaper_seen = false;
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return -1;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (std::stol(e->d_name) == ::syscall(SYS_gettid)) continue;
    std::string c = comm_of(std::string("/proc/self/task/") + e->d_name);
    if (c == "unio-paio-reap") *reaper_seen = true;
    else if (c == self_comm) ++n;
  }
  ::closedir(d);
  return n;
}

class posix_aio_test : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& b : unio::probe_backends())
      if (b.name == "posix_aio" && !b.available) GTEST_SKIP() << "posix_aio unavailable: " << b.reason;
    char tmpl[] = "/var/tmp/unio-paio-XXXXXX";
    fd_ = ::mkstemp(tmpl);
    ASSERT_GE(fd_, 0);
    path_ = tmpl;
    data_.resize(k_size);
    std::mt19937 rng(42);
    for (auto& c : data_) c = static_cast<char>(rng());
    ASSERT_EQ(::pwrite(fd_, data_.data(), k_size, 0), static_cast<ssize_t>(k_size));
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  static unio::loop_options opts(unsigned depth = 256) {
    unio::loop_options o;
    o.backend = "posix_aio";
    o.queue_depth = depth;
    return o;
  }

  static constexpr std::size_t k_size = 4 << 20;
  static constexpr std::size_t k_block = 4096;
  int fd_ = -1;
  std::string path_;
  std::string data_;
};

// `total` random 4 KiB reads, `depth` in flight; checks every block; returns the loop turns.
struct random_reader {
  unio::loop& lp;
  int fd;
  const std::string& data;
  std::size_t total;
  std::size_t issued = 0, done = 0, bad = 0;
  std::mt19937 rng{7};
  std::function<void()> at_half{};
  struct slot {
    unio::op op;
    std::uint64_t off = 0;
    char buf[4096];
  };
  std::vector<std::unique_ptr<slot>> slots{};

  void issue(slot& s) {
    if (issued == total) return;
    ++issued;
    s.off = (rng() % (data.size() / 4096)) * 4096;
    lp.read(s.op, fd, s.buf, 4096, s.off, [this, &s](unio::op& o) {
      if (o.raw_result() != 4096 || std::memcmp(s.buf, data.data() + s.off, 4096) != 0) ++bad;
      if (++done == total / 2 && at_half) at_half();
      issue(s);
    });
  }
  std::size_t run(std::size_t depth) {
    for (std::size_t i = 0; i < depth; ++i) slots.push_back(std::make_unique<slot>());
    for (auto& s : slots) issue(*s);
    std::size_t turns = 0;
    while (lp.run_once()) ++turns;
    return turns;
  }
};

TEST_F(posix_aio_test, reads_at_depth_32_go_through_glibc_helpers_with_correct_data) {
  unio::loop lp(opts());
  random_reader r{lp, fd_, data_, 4096};
  int helpers = -1;
  bool reaper = false;
  r.at_half = [&] { helpers = unnamed_helper_threads(&reaper); };
  r.run(32);
  EXPECT_EQ(r.done, 4096u);
  EXPECT_EQ(r.bad, 0u);
  // No op of this test is delegated, so the loop's pool was never created: the unnamed threads
  // are glibc's AIO helpers (one per fd at a time; they linger aio_idle_time after use).
  EXPECT_GE(helpers, 1) << "no glibc AIO helper thread seen while reads were in flight";
  // The reaper starts only the first time the loop has to sleep longer than spin_us with ops in
  // glibc, which a busy depth-32 run may never do; its presence is not required.
  (void)reaper;
}

TEST_F(posix_aio_test, backend_info_lists_native_and_delegated_ops) {
  bool found = false;
  for (const auto& b : unio::probe_backends()) {
    if (b.name != "posix_aio") continue;
    found = true;
    EXPECT_TRUE(b.available) << b.reason;
    for (auto c : {unio::op_code::read, unio::op_code::write, unio::op_code::fsync, unio::op_code::fdatasync,
                   unio::op_code::nop, unio::op_code::recv})
      EXPECT_TRUE(b.native[static_cast<std::size_t>(c)]) << unio::to_string(c);
    for (auto c : {unio::op_code::readv, unio::op_code::writev, unio::op_code::open, unio::op_code::stat,
                   unio::op_code::sendfile})
      EXPECT_FALSE(b.native[static_cast<std::size_t>(c)]) << unio::to_string(c);
  }
  EXPECT_TRUE(found);
  EXPECT_NE(unio::auto_backend(), "posix_aio");
}

TEST_F(posix_aio_test, writes_fsync_fdatasync_and_their_errors) {
  unio::loop lp(opts());
  auto body = [&]() -> unio::task<void> {
    std::string block(k_block, 'w');
    for (int i = 0; i < 16; ++i) {
      auto n = co_await lp.async_write(fd_, block.data(), block.size(), i * 3 * k_block);
      EXPECT_EQ(n.value_or(0), k_block);
    }
    EXPECT_TRUE(co_await lp.async_fdatasync(fd_));
    EXPECT_TRUE(co_await lp.async_fsync(fd_));
    // Linux syncs read-only fds too (glibc's aio_fsync only checks that the fd is open).
    int ro = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_TRUE(co_await lp.async_fsync(ro));
    ::close(ro);
    auto bad = co_await lp.async_fsync(-1);
    EXPECT_EQ(bad.error(), std::errc::bad_file_descriptor);
    auto bad2 = co_await lp.async_fdatasync(1 << 20);
    EXPECT_EQ(bad2.error(), std::errc::bad_file_descriptor);
    char past[16];
    auto eof = co_await lp.async_read(fd_, past, sizeof past, k_size + 10);
    EXPECT_EQ(eof.value_or(99), 0u);
    auto badr = co_await lp.async_read(-1, past, sizeof past, 0);
    EXPECT_EQ(badr.error(), std::errc::bad_file_descriptor);
  };
  unio::sync_wait(lp, body());
  for (int i = 0; i < 16; ++i) {
    char got[k_block];
    ASSERT_EQ(::pread(fd_, got, k_block, i * 3 * k_block), static_cast<ssize_t>(k_block));
    EXPECT_EQ(std::string(got, k_block), std::string(k_block, 'w'));
  }
}

// Cancel does not reach into glibc (its aio_cancel of some of an fd's queued requests can strand
// the others). glibc runs one fd's requests one after another on one helper: 32 reads queued
// behind a 16 MiB read from /dev/zero, all cancelled, each complete once with its own result,
// and none is left queued.
TEST_F(posix_aio_test, cancel_leaves_ops_glibc_holds_to_complete_with_their_own_result) {
  int zero = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(zero, 0);
  unio::loop lp(opts());
  constexpr std::size_t big = 16 << 20;
  std::vector<char> big_buf(big, 1);
  constexpr int n = 32;
  std::vector<std::vector<char>> bufs(n, std::vector<char>(4096, 'x'));
  unio::op first;
  std::vector<unio::op> ops(n);
  int first_calls = 0;
  std::vector<int> calls(n, 0);
  std::vector<std::int64_t> res(n, 0);
  lp.read(first, zero, big_buf.data(), big, 0, [&](unio::op&) { ++first_calls; });
  for (int i = 0; i < n; ++i)
    lp.read(ops[i], zero, bufs[i].data(), 4096, 0, [&, i](unio::op& o) {
      ++calls[i];
      res[i] = o.raw_result();
    });
  lp.poll();  // hands all 33 to glibc (256 slots)
  for (int i = 0; i < n; ++i)
    if (ops[i].busy()) lp.cancel(ops[i]);
  lp.run();
  EXPECT_EQ(first_calls, 1);
  EXPECT_EQ(first.raw_result(), static_cast<std::int64_t>(big));
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(calls[i], 1) << i;
    EXPECT_EQ(res[i], 4096) << i;
    EXPECT_EQ(bufs[i][0], 0) << "op " << i << " did not read /dev/zero";
  }
  ::close(zero);
}

TEST_F(posix_aio_test, cancel_of_not_yet_submitted_op) {
  unio::loop lp(opts());
  char buf[16];
  unio::op o;
  int calls = 0;
  lp.read(o, fd_, buf, sizeof buf, 0, [&](unio::op& x) {
    ++calls;
    EXPECT_EQ(x.error(), std::errc::operation_canceled);
  });
  lp.cancel(o);
  lp.run();
  EXPECT_EQ(calls, 1);
}

TEST_F(posix_aio_test, two_hundred_ops_in_flight_at_shutdown_complete_exactly_once) {
  int zero = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(zero, 0);
  constexpr int n = 200;
  std::vector<int> calls(n, 0);
  std::vector<std::int64_t> res(n, 0);
  std::vector<unio::op> ops(n);
  std::vector<std::vector<char>> bufs(n, std::vector<char>(256 * 1024));
  int fds[4] = {zero, fd_, ::dup(zero), ::dup(fd_)};
  {
    unio::loop lp(opts());
    for (int i = 0; i < n; ++i) {
      std::size_t len = (i % 4 == 1 || i % 4 == 3) ? k_block : bufs[i].size();
      lp.read(ops[i], fds[i % 4], bufs[i].data(), len, static_cast<std::uint64_t>(i) * k_block, [&, i](unio::op& o) {
        ++calls[i];
        res[i] = o.raw_result();
      });
    }
    lp.poll();  // all 200 handed to glibc; the destructor finds most of them in flight
  }
  int cancelled = 0;
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(calls[i], 1) << i;
    std::int64_t want = (i % 4 == 1 || i % 4 == 3) ? static_cast<std::int64_t>(k_block) : 256 * 1024;
    if (res[i] == -ECANCELED) ++cancelled;
    else EXPECT_EQ(res[i], want) << i;
  }
  std::printf("[          ] %d of %d cancelled at shutdown\n", cancelled, n);
  ::close(fds[2]);
  ::close(fds[3]);
  ::close(zero);
}

TEST_F(posix_aio_test, a_small_slot_table_queues_ops_until_slots_free) {
  unio::loop lp(opts(4));
  random_reader r{lp, fd_, data_, 300};
  r.run(40);  // 40 in flight, 4 slots
  EXPECT_EQ(r.done, 300u);
  EXPECT_EQ(r.bad, 0u);
}

long voluntary_switches() {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_nvcsw;
}

TEST_F(posix_aio_test, completions_come_back_in_batches) {
  unio::loop lp(opts());
  {
    // Warm glibc's helper and the page cache.
    random_reader warm{lp, fd_, data_, 256};
    warm.run(32);
  }
  // A burst: 64 reads submitted at once complete in a few turns, not 64.
  {
    std::vector<unio::op> ops(64);
    std::vector<std::vector<char>> bufs(64, std::vector<char>(k_block));
    int done = 0;
    for (int i = 0; i < 64; ++i)
      lp.read(ops[i], fd_, bufs[i].data(), k_block, static_cast<std::uint64_t>(i) * 7 * k_block,
              [&](unio::op& o) { done += o.raw_result() == static_cast<std::int64_t>(k_block); });
    std::size_t turns = 0;
    while (lp.run_once()) ++turns;
    EXPECT_EQ(done, 64);
    std::printf("[          ] burst of 64: %zu turns\n", turns);
    // One completion per turn would take 64 turns; how many fewer depends on how glibc's helper
    // and the loop interleave (16-24 seen on a loaded 2-vCPU VM), so only that is asserted.
    EXPECT_LT(turns, 64u);
  }
  // Steady state: 8192 reads at depth 32.
  random_reader r{lp, fd_, data_, 8192};
  long before = voluntary_switches();
  std::size_t turns = r.run(32);
  long sleeps = voluntary_switches() - before;
  EXPECT_EQ(r.done, 8192u);
  EXPECT_EQ(r.bad, 0u);
  std::printf("[          ] 8192 reads at depth 32: %zu turns, %ld loop sleeps\n", turns, sleeps);
  EXPECT_LT(turns, 8192u / 2);
  EXPECT_LT(sleeps, 8192 / 2);  // typically 1 sleep per 5-30 ops, depending on machine load
}

// glibc's AIO state does not survive fork(): in a child of a process that has used posix_aio the
// backend is unavailable, with the reason, and a loop asking for it fails with ENOTSUP instead of
// queueing requests no helper thread will ever run; the child's other backends work.
TEST_F(posix_aio_test, a_forked_child_of_a_process_that_used_it_is_refused_with_the_reason) {
  {
    unio::loop lp(opts());
    random_reader r{lp, fd_, data_, 64};
    r.run(8);
    ASSERT_EQ(r.done, 64u);
  }
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::alarm(20);
    int rc = 0;
    for (const auto& b : unio::probe_backends())
      if (b.name == "posix_aio" && (b.available || b.reason.find("fork") == std::string::npos)) rc |= 1;
    try {
      unio::loop lp(opts());
      rc |= 2;
    } catch (const std::system_error& e) {
      if (e.code().value() != ENOTSUP || std::string(e.what()).find("fork") == std::string::npos) rc |= 4;
    }
    unio::loop_options o;
    o.backend = "threadpool";
    unio::loop other(o);
    random_reader r{other, fd_, data_, 64};
    r.run(8);
    if (r.done != 64 || r.bad != 0) rc |= 8;
    ::_exit(rc);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st)) << "the child was killed by signal " << WTERMSIG(st);
  EXPECT_EQ(WEXITSTATUS(st) & 1, 0) << "probe_backends() did not say posix_aio is unavailable after fork, and why";
  EXPECT_EQ(WEXITSTATUS(st) & 2, 0) << "a posix_aio loop was created in the forked child";
  EXPECT_EQ(WEXITSTATUS(st) & 4, 0) << "the refusal was not ENOTSUP with the reason";
  EXPECT_EQ(WEXITSTATUS(st) & 8, 0) << "the threadpool backend did not work in the child";
}

}  // namespace
