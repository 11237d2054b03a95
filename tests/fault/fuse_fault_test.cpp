// Description: a device that fails, waits or hangs: unio-faultfs (fault/faultfs/faultfs.cpp, a
// FUSE file system of ours) mounted in the private mount namespace of a forked child. The daemon
// logs every data op it answered (offset, result), and the tests compare that log with what unio
// delivered:
//   - per-op errors: with reads, writes or fsyncs armed to fail with EIO or ENOSPC after K ops,
//     in flight together or one after another, exactly the ops the daemon failed get the error,
//     the others succeed with the right bytes (written bytes land, failed writes leave none), and
//     each op completes once and reaches the daemon once;
//   - a cancel that loses the race: a read already held by the device, cancelled, completes once
//     with its whole, right result when the device answers;
//   - timeouts: with_timeout and link_timeout on a read a slow or hung device holds complete once:
//     ETIMEDOUT / ECANCELED only for a read the device never saw, else its own whole result; a
//     read queued behind a hung one on a pool is stopped (ETIMEDOUT) and never reaches the device;
//     the loop keeps working afterwards;
//   - short answers: with every read answered short, reads and readvs at an offset still get
//     every byte up to the end of the file, and no request goes past the end; a read at the
//     current position is reported as it was answered;
//   - shutdown with reads stuck on a hung file: the destructor waits for the reads the device
//     holds and returns once the device answers them, or once the daemon is killed (the kernel
//     then fails them with ECONNABORTED or ENOTCONN); each handler runs once.
// No test can hang: a releaser thread answers held ops after a bound (the sync backend's loop
// thread is itself inside the held read and cannot ask), the daemon answers nothing later than
// k_faultfs_max_hold_ms, and the child is bounded by alarm(). Skipped without root, /dev/fuse or
// libfuse3 (Debian: libfuse3-dev and fuse3).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "conformance/backends.hpp"
#include "fault/child.hpp"
#include "fault/faultfs.hpp"
#include "fault/mounts.hpp"
#include "fault/test_data.hpp"
#include "unio/unio.hpp"

namespace fuse_fault_test {

using namespace unio::test;
using namespace std::chrono_literals;

// How long the releaser waits before it answers held ops on its own: long enough for every
// backend but sync to have asked first (then this bound never matters), short enough for sync.
constexpr auto k_release_bound = 1500ms;

// n aligned blocks.
aligned_buf blocks(std::size_t n) { return aligned(n * k_block); }

// What a write at `off` puts there: never the initial byte (byte_at).
char written_byte(std::uint64_t off) { return static_cast<char>(~byte_at(off)); }

// "" when buf holds the data file's initial bytes [off, off + k_block).
std::string right_bytes(const char* buf, std::uint64_t off) {
  for (std::size_t i = 0; i < k_block; ++i)
    if (buf[i] != byte_at(off + i)) return "byte " + std::to_string(off + i) + " differs";
  return "";
}

int open_data(const faultfs& fs, int flags) { return ::open(fs.path("data").c_str(), flags | O_CLOEXEC); }

// One data op through the loop and what came of it.
struct tracked {
  unio::op op;
  std::uint64_t off = 0;
  int calls = 0;
  std::int64_t res = 0;

  auto handler() {
    return [this](unio::op& o) {
      ++calls;
      res = o.raw_result();
    };
  }
};

// Answers the ops the daemon holds (the default action: "release"), from its own thread, once
// asked to (ask: `after` later) or `bound` after it was made, whichever comes first. released()
// turns true just before the action.
class releaser {
 public:
  releaser(const faultfs& fs, std::chrono::milliseconds bound, std::function<void()> act = {})
      : act_(act ? std::move(act) : [&fs] { fs.command("release"); }),
        deadline_(std::chrono::steady_clock::now() + bound),
        thread_([this] { run(); }) {}
  ~releaser() { join(); }
  releaser(const releaser&) = delete;
  releaser& operator=(const releaser&) = delete;

  // Thread-safe; the earliest deadline wins.
  void ask(std::chrono::milliseconds after = 0ms) {
    std::lock_guard lk(mu_);
    deadline_ = std::min(deadline_, std::chrono::steady_clock::now() + after);
    cv_.notify_all();
  }
  bool released() const noexcept { return released_.load(); }
  // Waits until the action has run.
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    std::unique_lock lk(mu_);
    while (std::chrono::steady_clock::now() < deadline_)
      cv_.wait_until(lk, deadline_);
    released_ = true;
    lk.unlock();  // ask() never waits for the action
    act_();
  }

  std::function<void()> act_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::chrono::steady_clock::time_point deadline_;
  std::atomic<bool> released_{false};
  std::thread thread_;
};

// The daemon's log once it holds nothing (held ops have been released and answered).
faultfs_status settled_status(const faultfs& fs) {
  faultfs_status st = fs.status();
  for (int i = 0; i < 2500 && st.held != 0; ++i) {
    std::this_thread::sleep_for(2ms);
    st = fs.status();
  }
  return st;
}

// ---- per-op errors ----

// "" when op t completed once with the daemon's one answer to it: its error, or (reads, whose
// block is at `buf`) the whole block with the right bytes, (writes) the whole block.
std::string matches_log(const tracked& t, const faultfs_status& st, const std::string& kind,
                        const char* buf) {
  const std::string what = kind + " at " + std::to_string(t.off);
  if (t.calls != 1) return what + ": " + std::to_string(t.calls) + " completions";
  auto answers = st.at(kind, t.off);
  if (answers.size() != 1)
    return what + ": the daemon answered it " + std::to_string(answers.size()) + " times";
  if (t.res != answers[0].res)
    return what + ": unio gave " + std::to_string(t.res) + ", the daemon answered " +
           std::to_string(answers[0].res);
  if (t.res != static_cast<std::int64_t>(k_block)) return t.res < 0 ? "" : what + ": short";
  return buf != nullptr ? right_bytes(buf, t.off) : "";
}

// How many ops of `kind` the daemon answered with -err.
long failed_in_log(const faultfs_status& st, const std::string& kind, int err) {
  long n = 0;
  for (const auto& a : st.log)
    n += a.kind == kind && a.res == -err;
  return n;
}

// 12 reads in flight together, the daemon armed to fail reads 4 to 7 with EIO (in the order it
// receives them): "" when the 4 it failed, and only those, got EIO.
std::string reads_in_flight(const unio::loop_options& opts, const faultfs& fs, int fd) {
  constexpr std::size_t n = 12;
  if (!fs.command("eio read 3 4")) return "the daemon refused the command";
  aligned_buf buf = blocks(n);
  std::vector<tracked> ops(n);
  {
    unio::loop lp(opts);
    for (std::size_t i = 0; i < n; ++i) {
      ops[i].off = i * 3 * k_block;
      lp.read(ops[i].op, fd, buf.get() + i * k_block, k_block, ops[i].off, ops[i].handler());
    }
    lp.run();
  }
  const faultfs_status st = fs.status();
  if (failed_in_log(st, "read", EIO) != 4)
    return "the daemon failed " + std::to_string(failed_in_log(st, "read", EIO)) + " reads, not 4";
  for (std::size_t i = 0; i < n; ++i)
    if (auto bad = matches_log(ops[i], st, "read", buf.get() + i * k_block); !bad.empty())
      return "in flight: " + bad;
  return "";
}

// 8 reads one after another, reads 3 to 5 armed to fail: "" when exactly those got EIO.
std::string reads_in_sequence(const unio::loop_options& opts, const faultfs& fs, int fd) {
  if (!fs.command("clear") || !fs.command("eio read 2 3")) return "the daemon refused the command";
  aligned_buf buf = blocks(1);
  unio::loop lp(opts);
  for (std::uint64_t i = 0; i < 8; ++i) {
    auto r = unio::sync_wait(lp, [&]() -> unio::task<unio::result<std::size_t>> {
      co_return co_await lp.async_read(fd, buf.get(), k_block, i * k_block);
    }());
    const bool want_error = i >= 2 && i < 5;
    const std::string what = "read " + std::to_string(i) + " of 8 in sequence: ";
    if (want_error && (r || r.error() != std::errc::io_error))
      return what + (r ? "succeeded" : r.error().message());
    if (!want_error && !r) return what + r.error().message();
    if (!want_error && *r != k_block) return what + "short";
    if (auto bad = want_error ? "" : right_bytes(buf.get(), i * k_block); !bad.empty()) return what + bad;
  }
  return failed_in_log(fs.status(), "read", EIO) == 3 ? "" : "the daemon did not fail 3 reads";
}

// 12 writes in flight together, writes 4 to 7 armed to fail with ENOSPC: "" when the 4 the
// daemon failed, and only those, got ENOSPC.
std::string writes_in_flight(const unio::loop_options& opts, const faultfs& fs, int fd,
                             std::vector<tracked>& ops) {
  if (!fs.command("enospc write 3 4")) return "the daemon refused the command";
  aligned_buf buf = blocks(ops.size());
  {
    unio::loop lp(opts);
    for (std::size_t i = 0; i < ops.size(); ++i) {
      ops[i].off = i * 2 * k_block;
      char* b = buf.get() + i * k_block;
      for (std::size_t j = 0; j < k_block; ++j)
        b[j] = written_byte(ops[i].off + j);
      lp.write(ops[i].op, fd, b, k_block, ops[i].off, ops[i].handler());
    }
    lp.run();
  }
  const faultfs_status st = fs.status();
  if (failed_in_log(st, "write", ENOSPC) != 4)
    return "the daemon failed " + std::to_string(failed_in_log(st, "write", ENOSPC)) + " writes, not 4";
  for (const tracked& t : ops)
    if (auto bad = matches_log(t, st, "write", nullptr); !bad.empty()) return bad;
  return "";
}

// "" when the data file holds written_byte() in the blocks of the writes that succeeded and its
// initial bytes everywhere else.
std::string only_successful_writes_landed(const faultfs& fs, const std::vector<tracked>& ops) {
  std::vector<char> file(k_faultfs_size);
  int fd = open_data(fs, O_RDONLY);
  ssize_t got = fd < 0 ? -1 : ::pread(fd, file.data(), file.size(), 0);
  if (fd >= 0) ::close(fd);
  if (got != static_cast<ssize_t>(file.size())) return errstr("reading the file back", errno);
  std::vector<bool> written(k_faultfs_size / k_block, false);
  for (const tracked& t : ops)
    written[t.off / k_block] = t.res == static_cast<std::int64_t>(k_block);
  for (std::size_t i = 0; i < file.size(); ++i) {
    const char want = written[i / k_block] ? written_byte(i) : byte_at(i);
    if (file[i] != want)
      return "byte " + std::to_string(i) +
             " of the file: " + (written[i / k_block] ? "not written" : "written");
  }
  return "";
}

// fsync, fdatasync, fsync, fdatasync, the 2nd and 3rd armed to fail: "" when exactly those got
// EIO, as the daemon answered.
std::string syncs_in_sequence(const unio::loop_options& opts, const faultfs& fs, int fd) {
  if (!fs.command("eio fsync 1 2")) return "the daemon refused the command";
  unio::loop lp(opts);
  std::vector<std::int64_t> got;
  for (int i = 0; i < 4; ++i) {
    // Not `c ? co_await a : co_await b`: GCC 12 runs both awaits of such an expression.
    auto r = unio::sync_wait(lp, [&]() -> unio::task<unio::result<void>> {
      if (i % 2 == 0) co_return co_await lp.async_fsync(fd);
      co_return co_await lp.async_fdatasync(fd);
    }());
    got.push_back(r ? 0 : -r.error().value());
  }
  const std::vector<std::int64_t> want{0, -EIO, -EIO, 0};
  std::vector<std::int64_t> logged;
  for (const auto& a : fs.status().log)
    logged.push_back(a.res);
  auto text = [](const std::vector<std::int64_t>& v) {
    std::string s;
    for (auto x : v)
      s += std::to_string(x) + " ";
    return s;
  };
  if (got != want)
    return "fsync results: " + text(got) + "instead of " + text(want) + "; the daemon answered " +
           text(logged);
  if (logged != want) return "the daemon answered " + text(logged) + "instead of " + text(want);
  return "";
}

class fuse_fault : public backend_test {};

TEST_P(fuse_fault, read_errors_belong_to_exactly_the_reads_the_device_failed) {
  auto opts = options();
  EXPECT_CHILD_OK(on_faultfs([&](faultfs& fs, std::string& msg) -> int {
    int fd = open_data(fs, O_RDONLY | O_DIRECT);
    if (fd < 0) return report(msg, errstr("open data", errno), 1);
    std::string bad = reads_in_flight(opts, fs, fd);
    if (bad.empty()) bad = reads_in_sequence(opts, fs, fd);
    ::close(fd);
    return bad.empty() ? 0 : report(msg, bad, 2);
  }));
}

TEST_P(fuse_fault, write_errors_belong_to_exactly_the_writes_the_device_failed) {
  auto opts = options();
  EXPECT_CHILD_OK(on_faultfs([&](faultfs& fs, std::string& msg) -> int {
    int fd = open_data(fs, O_RDWR | O_DIRECT);
    if (fd < 0) return report(msg, errstr("open data", errno), 1);
    std::vector<tracked> ops(12);
    std::string bad = writes_in_flight(opts, fs, fd, ops);
    ::close(fd);
    if (bad.empty() && !fs.command("ok")) bad = "the daemon refused ok";
    if (bad.empty()) bad = only_successful_writes_landed(fs, ops);
    return bad.empty() ? 0 : report(msg, bad, 2);
  }));
}

TEST_P(fuse_fault, fsync_errors_belong_to_exactly_the_fsyncs_the_device_failed) {
  auto opts = options();
  EXPECT_CHILD_OK(on_faultfs([&](faultfs& fs, std::string& msg) -> int {
    int fd = open_data(fs, O_RDWR);
    if (fd < 0) return report(msg, errstr("open data", errno), 1);
    std::string bad = syncs_in_sequence(opts, fs, fd);
    ::close(fd);
    return bad.empty() ? 0 : report(msg, bad, 2);
  }));
}

// ---- slow and hung device ----

// "" when read t (block at buf) completed once, either with `stopped` and never seen by the
// daemon, or with its whole, right block as the daemon answered it once.
std::string stopped_or_whole(const tracked& t, std::int64_t stopped, const faultfs_status& st,
                             const char* buf) {
  const std::string what = "read at " + std::to_string(t.off);
  if (t.calls != 1) return what + ": " + std::to_string(t.calls) + " completions";
  const auto answers = st.at("read", t.off);
  if (t.res == stopped)
    return answers.empty()
               ? ""
               : what + ": reported stopped (" + std::to_string(stopped) + ") after the device answered it";
  if (t.res != static_cast<std::int64_t>(k_block)) return what + ": " + std::to_string(t.res);
  if (answers.size() != 1)
    return what + ": the daemon answered it " + std::to_string(answers.size()) + " times";
  return right_bytes(buf, t.off);
}

// What the device saw (for the test's message): the reads it held when they were cancelled, and
// how many of its answers the kernel had asked it to interrupt (the cancel reached FUSE).
std::string held_note(long held, const faultfs_status& st) {
  long intr = 0;
  for (const auto& a : st.log)
    intr += a.interrupted;
  return "held by the device when cancelled: " + std::to_string(held) +
         "; answers the kernel had asked to interrupt: " + std::to_string(intr);
}

// Two reads held by the device (one on an O_DIRECT fd, one buffered), cancelled, then released:
// "" when each completes once with its whole, right block.
std::string cancel_loses_to_the_device(const unio::loop_options& opts, const faultfs& fs, int direct,
                                       int buffered, std::string& note) {
  if (!fs.command("hang")) return "the daemon refused hang";
  releaser rel(fs, k_release_bound);
  aligned_buf buf = blocks(2);
  tracked ops[2];
  unio::loop lp(opts);
  ops[1].off = 8 * k_block;
  lp.read(ops[0].op, direct, buf.get(), k_block, ops[0].off, ops[0].handler());
  lp.read(ops[1].op, buffered, buf.get() + k_block, k_block, ops[1].off, ops[1].handler());
  lp.poll();  // sync: the loop's thread is inside the held reads until the releaser's bound
  const bool sync = lp.backend_name() == "sync";
  const bool held = fs.wait_held(2, 5s, [&] { return ops[0].calls + ops[1].calls == 2; });
  const long n = fs.status().held;
  for (tracked& t : ops)
    lp.cancel(t.op);
  rel.ask();
  lp.run();
  rel.join();
  const faultfs_status st = settled_status(fs);
  note = held_note(n, st);
  if (!held && !sync) return "the reads did not reach the device within 5 s";
  for (std::size_t i = 0; i < 2; ++i)
    if (auto bad = matches_log(ops[i], st, "read", buf.get() + i * k_block); !bad.empty() || ops[i].res < 0)
      return "a cancel that lost the race: " +
             (bad.empty() ? "read failed with " + std::to_string(ops[i].res) : bad);
  return "";
}

TEST_P(fuse_fault, cancel_of_a_read_held_by_the_device_delivers_its_result) {
  auto opts = options();
  EXPECT_CHILD_OK(on_faultfs([&](faultfs& fs, std::string& msg) -> int {
    int direct = open_data(fs, O_RDONLY | O_DIRECT), buffered = open_data(fs, O_RDONLY);
    if (direct < 0 || buffered < 0) return report(msg, errstr("open data", errno), 1);
    std::string note;
    std::string bad = cancel_loses_to_the_device(opts, fs, direct, buffered, note);
    ::close(direct);
    ::close(buffered);
    return bad.empty() ? report(msg, note, 0) : report(msg, bad + " (" + note + ")", 2);
  }));
}

// with_timeout(20 ms) on a read of a device that is slow (`device`: "delay 200", it answers
// 200 ms after each op arrives) or hung ("hang", released 100 ms later): "" when it completes
// once with ETIMEDOUT (never seen by the device) or its whole, right block.
std::string with_timeout_on_a_held_read(unio::loop& lp, const faultfs& fs, int fd, const std::string& device,
                                        std::string& seen) {
  if (!fs.command(device)) return "the daemon refused " + device;
  const bool hung = device == "hang";
  releaser rel(
      fs, k_release_bound, hung ? std::function<void()>() : [] {});  // a slow device answers by itself
  aligned_buf buf = blocks(1);
  tracked t;
  t.off = (hung ? 16 : 20) * k_block;
  unio::op release_timer;
  auto r = unio::sync_wait(lp, [&]() -> unio::task<unio::result<std::size_t>> {
    lp.timeout(release_timer, 100ms, [&](unio::op&) { rel.ask(); });
    co_return co_await unio::with_timeout(lp, lp.async_read(fd, buf.get(), k_block, t.off), 20ms);
  }());
  lp.run();  // the release timer
  rel.join();
  t.calls = 1;
  t.res = r ? static_cast<std::int64_t>(*r) : -r.error().value();
  seen = r ? "whole read" : r.error().message();
  return stopped_or_whole(t, -ETIMEDOUT, settled_status(fs), buf.get());
}

// A read with link_timeout(20 ms) on a held device, released by the timeout's handler: "" when
// each completes once, the timeout with ETIME, the read with ECANCELED (never seen by the
// device) or its whole, right block.
std::string link_timeout_on_a_held_read(unio::loop& lp, const faultfs& fs, int fd, std::string& seen) {
  if (!fs.command("hang")) return "the daemon refused hang";
  releaser rel(fs, k_release_bound);
  aligned_buf buf = blocks(1);
  tracked rd, t;
  rd.off = 24 * k_block;
  lp.read(rd.op, fd, buf.get(), k_block, rd.off, rd.handler());
  lp.link_timeout(t.op, 20ms, [&](unio::op& o) {
    ++t.calls;
    t.res = o.raw_result();
    rel.ask();
  });
  lp.run();
  rel.join();
  seen = "link timeout " + std::to_string(t.res) + ", read " + std::to_string(rd.res);
  if (t.calls != 1) return "the link timeout completed " + std::to_string(t.calls) + " times";
  const bool sync =
      lp.backend_name() == "sync";  // the deadline passes while the loop's thread is inside the read
  if (t.res != -ETIME && !(sync && t.res == -ECANCELED))
    return "the link timeout ended with " + std::to_string(t.res);
  return stopped_or_whole(rd, -ECANCELED, settled_status(fs), buf.get());
}

// "" when a read of the healthy device and a timer work on the loop.
std::string loop_still_works(unio::loop& lp, const faultfs& fs, int fd) {
  if (!fs.command("ok")) return "the daemon refused ok";
  aligned_buf buf = blocks(1);
  return unio::sync_wait(lp, [&]() -> unio::task<std::string> {
    if (auto s = co_await lp.async_sleep(1ms); !s) co_return "timer: " + s.error().message();
    auto r = co_await lp.async_read(fd, buf.get(), k_block, 32 * k_block);
    if (!r || *r != k_block)
      co_return "a read afterwards: " + (r ? std::string("short") : r.error().message());
    co_return right_bytes(buf.get(), 32 * k_block);
  }());
}

TEST_P(fuse_fault, timeouts_on_a_slow_or_hung_device_complete_once) {
  auto opts = options();
  EXPECT_CHILD_OK(on_faultfs([&](faultfs& fs, std::string& msg) -> int {
    int fd = open_data(fs, O_RDONLY | O_DIRECT);
    if (fd < 0) return report(msg, errstr("open data", errno), 1);
    std::string seen_slow, seen_hung, seen_link, bad;
    {
      unio::loop lp(opts);
      bad = with_timeout_on_a_held_read(lp, fs, fd, "delay 200", seen_slow);
      if (bad.empty() && !fs.command("ok")) bad = "the daemon refused ok";
      if (bad.empty()) bad = with_timeout_on_a_held_read(lp, fs, fd, "hang", seen_hung);
      if (bad.empty()) bad = link_timeout_on_a_held_read(lp, fs, fd, seen_link);
      if (bad.empty()) bad = loop_still_works(lp, fs, fd);
    }
    ::close(fd);
    const std::string seen = "with_timeout, slow: " + seen_slow + "; hung: " + seen_hung + "; " + seen_link;
    return bad.empty() ? report(msg, seen, 0) : report(msg, bad + " (" + seen + ")", 2);
  }));
}

// Whether a read of a buffered file runs on this loop's thread pool, where a read queued behind
// a hung one waits in the pool's queue and can still be stopped: the threadpool backend,
// linux_aio (native only for O_DIRECT files), or a read delegated by io_uring.
bool buffered_reads_on_the_pool(const unio::loop& lp) {
  const auto name = lp.backend_name();
  return name == "threadpool" || name == "linux_aio" ||
         (name == "io_uring" && !lp.is_native(unio::op_code::read));
}

// With one pool thread: read A held by the device, then read B with with_timeout(20 ms), the
// device released 100 ms later. "" when B completes once, with ETIMEDOUT and never seen by the
// device where it waited in the pool's queue, else with its whole block; A with its own.
std::string timeout_behind_a_hung_read(unio::loop_options opts, const faultfs& fs, int fd,
                                       std::string& seen) {
  opts.pool_size = 1;
  if (!fs.command("hang")) return "the daemon refused hang";
  releaser rel(fs, k_release_bound);
  aligned_buf buf = blocks(2);
  tracked a, b;
  b.off = 4 * k_block;
  unio::loop lp(opts);
  lp.read(a.op, fd, buf.get(), k_block, a.off, a.handler());
  lp.poll();
  const bool held = fs.wait_held(1, 5s, [&] { return a.calls > 0; });
  unio::op release_timer;
  auto r = unio::sync_wait(lp, [&]() -> unio::task<unio::result<std::size_t>> {
    lp.timeout(release_timer, 100ms, [&](unio::op&) { rel.ask(); });
    co_return co_await unio::with_timeout(lp, lp.async_read(fd, buf.get() + k_block, k_block, b.off), 20ms);
  }());
  lp.run();
  rel.join();
  b.calls = 1;
  b.res = r ? static_cast<std::int64_t>(*r) : -r.error().value();
  seen = std::string(lp.backend_name()) + ": " + (r ? "whole read" : r.error().message());
  const faultfs_status st = settled_status(fs);
  if (!held && lp.backend_name() != "sync") return "read A did not reach the device within 5 s";
  if (auto bad = matches_log(a, st, "read", buf.get()); !bad.empty() || a.res < 0) return "read A: " + bad;
  const bool pool = buffered_reads_on_the_pool(lp);
  if (pool && b.res != -ETIMEDOUT) return "read B, queued on the pool behind A, was not stopped";
  if (!pool && b.res == -ETIMEDOUT) return "read B was stopped, but it does not wait on a pool here";
  return stopped_or_whole(b, -ETIMEDOUT, st, buf.get() + k_block);
}

TEST_P(fuse_fault, timeout_on_a_read_queued_behind_a_hung_read) {
  auto opts = options();
  EXPECT_CHILD_OK(on_faultfs([&](faultfs& fs, std::string& msg) -> int {
    int fd = open_data(fs, O_RDONLY);
    if (fd < 0) return report(msg, errstr("open data", errno), 1);
    std::string seen;
    std::string bad = timeout_behind_a_hung_read(opts, fs, fd, seen);
    ::close(fd);
    return bad.empty() ? report(msg, seen, 0) : report(msg, bad + " (" + seen + ")", 2);
  }));
}

// ---- shutdown with reads stuck on a hung file ----

// How a shutdown under stuck reads went.
struct stuck_shutdown {
  std::vector<tracked> ops = std::vector<tracked>(4);
  aligned_buf buf = blocks(4);
  long held = 0;             // reads the device held when the loop was destroyed
  bool ended_after = false;  // the destructor returned after the releaser acted
};

// Four reads (two O_DIRECT, two buffered) on a hung device, cancelled, then the loop destroyed;
// the releaser acts (`act`) 200 ms after the destruction began.
void shut_down_under_stuck_reads(const unio::loop_options& opts, const faultfs& fs, const int fds[2],
                                 std::function<void()> act, stuck_shutdown& out) {
  releaser rel(fs, k_release_bound, std::move(act));
  {
    unio::loop lp(opts);
    for (std::size_t i = 0; i < out.ops.size(); ++i) {
      out.ops[i].off = i * 5 * k_block;
      lp.read(out.ops[i].op, fds[i % 2], out.buf.get() + i * k_block, k_block, out.ops[i].off,
              out.ops[i].handler());
    }
    lp.poll();
    fs.wait_held(1, 5s, [&] { return out.ops[3].calls > 0; });
    out.held = fs.status().held;
    for (tracked& t : out.ops)
      lp.cancel(t.op);
    rel.ask(200ms);
  }
  out.ended_after = rel.released();
}

// "" when every read completed once and the destructor, if the device held reads, waited for
// the releaser; each read's result must pass `ok_result`.
std::string check_stuck_shutdown(const stuck_shutdown& s,
                                 const std::function<std::string(const tracked&, const char*)>& ok_result,
                                 std::string& note) {
  note = "reads held by the device at destruction: " + std::to_string(s.held) + "; results:";
  for (const tracked& t : s.ops)
    note.append(" ").append(std::to_string(t.res));
  if (s.held > 0 && !s.ended_after) return "the loop's destructor returned while the device held reads";
  for (std::size_t i = 0; i < s.ops.size(); ++i) {
    if (s.ops[i].calls != 1)
      return "read " + std::to_string(i) + ": " + std::to_string(s.ops[i].calls) + " completions";
    if (auto bad = ok_result(s.ops[i], s.buf.get() + i * k_block); !bad.empty())
      return "read " + std::to_string(i) + ": " + bad;
  }
  return "";
}

// What a read's result must be after a shutdown under stuck reads: "" when it is right, given
// the block it read into and the daemon's log.
using result_check = std::function<std::string(const tracked&, const char*, const faultfs_status&)>;

// In a faultfs child: four reads stuck on the hung device, cancelled, then the loop destroyed
// while the releaser answers them (`kill`: kills the daemon instead); checked as
// check_stuck_shutdown does.
child_result stuck_shutdown_child(const unio::loop_options& opts, bool kill, const result_check& ok_result) {
  return on_faultfs([&](faultfs& fs, std::string& msg) -> int {
    const int fds[2] = {open_data(fs, O_RDONLY | O_DIRECT), open_data(fs, O_RDONLY)};
    if (fds[0] < 0 || fds[1] < 0) return report(msg, errstr("open data", errno), 1);
    if (!fs.command("hang")) return report(msg, "the daemon refused hang", 1);
    stuck_shutdown s;
    std::function<void()> act;
    if (kill) act = [&fs] { fs.kill_daemon(); };
    shut_down_under_stuck_reads(opts, fs, fds, act, s);
    const faultfs_status st = kill ? faultfs_status{} : settled_status(fs);
    std::string note;
    std::string bad = check_stuck_shutdown(
        s, [&](const tracked& t, const char* buf) { return ok_result(t, buf, st); }, note);
    ::close(fds[0]);
    ::close(fds[1]);
    return bad.empty() ? report(msg, note, 0) : report(msg, bad + " (" + note + ")", 2);
  });
}

TEST_P(fuse_fault, shutdown_with_reads_stuck_on_a_hung_file_waits_for_the_device) {
  EXPECT_CHILD_OK(
      stuck_shutdown_child(options(), false, [](const tracked& t, const char* buf, const faultfs_status& st) {
        return stopped_or_whole(t, -ECANCELED, st, buf);
      }));
}

TEST_P(fuse_fault, shutdown_with_reads_stuck_on_a_killed_device_ends_them_with_an_error) {
  EXPECT_CHILD_OK(
      stuck_shutdown_child(options(), true, [](const tracked& t, const char*, const faultfs_status&) {
        const bool ok = t.res == -ECANCELED || t.res == -ECONNABORTED || t.res == -ENOTCONN;
        return ok ? std::string()
                  : "ended with " + std::to_string(t.res) + ", not ECANCELED, ECONNABORTED or ENOTCONN";
      }));
}

// ---- short answers ----

// The daemon answers every read with at most 1000 bytes, so pread(2) itself returns short in the
// middle of the file. "" when a read and a readv at an offset still get every byte they asked
// for, a read that meets the end of the file gets the bytes up to it with no request past the end
// (the loop asks statx where the file ends), and a read at the current position is reported as
// the daemon answered it, as read(2) reports it.
std::string short_answers(const unio::loop_options& opts, const faultfs& fs, int fd) {
  if (!fs.command("short 1000")) return "the daemon refused the command";
  unio::loop lp(opts);
  auto read_at = [&](char* p, std::size_t n, std::uint64_t off) {
    return unio::sync_wait(lp, [&]() -> unio::task<unio::result<std::size_t>> {
      co_return co_await lp.async_read(fd, p, n, off);
    }());
  };
  std::vector<char> buf(65536);
  auto whole = read_at(buf.data(), buf.size(), 4096);
  if (!whole || *whole != buf.size()) return "a 64 KiB read gave " + (whole ? std::to_string(*whole) : whole.error().message());
  for (std::size_t i = 0; i < buf.size(); ++i)
    if (buf[i] != byte_at(4096 + i)) return "the 64 KiB read: byte " + std::to_string(4096 + i) + " differs";
  std::vector<char> a(10000), b(5000), c(20000);
  iovec v[3] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
  auto vr = unio::sync_wait(lp, [&]() -> unio::task<unio::result<std::size_t>> {
    co_return co_await lp.async_readv(fd, v, 3, 100000);
  }());
  if (!vr || *vr != 35000) return "a 35000-byte readv gave " + (vr ? std::to_string(*vr) : vr.error().message());
  if (v[0].iov_base != a.data() || v[2].iov_len != c.size()) return "the readv's iovec array was changed";
  for (std::size_t i = 0; i < c.size(); ++i)
    if (c[i] != byte_at(115000 + i)) return "the readv: byte " + std::to_string(115000 + i) + " differs";
  if (::lseek(fd, 7000, SEEK_SET) != 7000) return errstr("lseek", errno);
  auto cur = read_at(buf.data(), 5000, unio::current_position);  // reported as it is
  if (!cur || *cur != 1000) return "a read at the current position gave " + (cur ? std::to_string(*cur) : cur.error().message()) + ", not the daemon's 1000";
  for (std::size_t i = 0; i < 1000; ++i)
    if (buf[i] != byte_at(7000 + i)) return "the read at the current position: byte " + std::to_string(7000 + i) + " differs";
  if (!fs.command("clear")) return "the daemon refused clear";
  const std::uint64_t tail = k_faultfs_size - 2500;
  auto end = read_at(buf.data(), 8192, tail);
  if (!end || *end != 2500) return "a read over the end of the file gave " + (end ? std::to_string(*end) : end.error().message());
  for (std::size_t i = 0; i < 2500; ++i)
    if (buf[i] != byte_at(tail + i)) return "the read over the end: byte " + std::to_string(tail + i) + " differs";
  const faultfs_status st = fs.status();
  if (st.log.size() != 3) return "the read over the end reached the daemon " + std::to_string(st.log.size()) + " times, not 3 (1000, 1000, 500)";
  return "";
}

TEST_P(fuse_fault, reads_of_a_file_answered_short_go_on_to_its_end) {
  auto opts = options();
  EXPECT_CHILD_OK(on_faultfs([&](faultfs& fs, std::string& msg) -> int {
    int fd = open_data(fs, O_RDONLY);
    if (fd < 0) return report(msg, errstr("open data", errno), 1);
    std::string bad = short_answers(opts, fs, fd);
    ::close(fd);
    return bad.empty() ? 0 : report(msg, bad, 2);
  }));
}

INSTANTIATE_ALL_BACKENDS(fuse_fault);

}  // namespace fuse_fault_test
