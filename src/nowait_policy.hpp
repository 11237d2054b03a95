// nowait_policy: which reads the threadpool backend tries on the loop's thread with RWF_NOWAIT.
//
// RWF_NOWAIT promises less than its name. Two cases make a try cost the loop's thread:
//  - A miss on a buffered file: before it answers EAGAIN the kernel starts readahead for the
//    missing pages on the calling thread (filemap_get_pages with IOCB_NOWAIT), so on a cold
//    working set the loop's thread submits device I/O: perf on this virtio VM put 17% of the loop
//    thread's samples in the device notify (iowrite16) during cold 4 KiB random reads.
//  - Any read on an O_DIRECT file: NOWAIT only forbids waiting for locks and request slots; a
//    synchronous direct read still waits for the device to finish, on the loop's thread. The
//    backend does not try reads of fds it knows are O_DIRECT (fcntl, once per fd).
// So the policy also watches what tries cost. A try that took longer than a page-cache copy
// could (k_slow_base_ns plus 1 ns per byte) may have waited for a device, or the loop's thread
// was preempted during it. A slow refusal did the readahead on the loop's thread; k_slow_strikes
// slow hits in a row (a fast try resets the count) say the fd waits for the device; either
// way the fd is not tried again until the slow-fd memory is cleared (every
// k_forget_ns; fd numbers are reused, so nothing is remembered for long). One slow try was
// enough before, and on 2 CPUs with busy workers preemption made it so often that cached QD128
// reads were tried once in 60 and the loop's thread polled for the pool's results instead (364k
// reads/s against 600k with tries). And after a window of k_window tries with fewer than 1 hit
// in 4, only one eligible read in k_cold_sample is tried, until a window of those samples hits
// again; where the kernel can say whether a sample's pages are cached (cachestat(2), Linux 6.5),
// an uncached sample is not tried at all. These only cost the loop a hand-off it would otherwise
// have saved, never correctness.
#pragma once

#include <array>
#include <cstdint>

namespace unio::detail {

class nowait_policy {
 public:
  static constexpr std::uint32_t k_window = 64;
  static constexpr std::uint32_t k_cold_sample = 16;
  static constexpr std::uint64_t k_slow_base_ns = 50'000;
  static constexpr std::uint64_t k_forget_ns = 1'000'000'000;
  static constexpr std::uint8_t k_slow_strikes = 3;

  nowait_policy() noexcept {
    slow_.fill(-1);
    strikes_.fill(0);
  }

  // Whether to try the next eligible read (on `fd`) inline. `now_ns`: a monotonic clock.
  bool should_try(int fd, std::uint64_t now_ns) noexcept {
    if (now_ns - forgot_at_ >= k_forget_ns) {
      slow_.fill(-1);
      strikes_.fill(0);
      forgot_at_ = now_ns;
    }
    if (slow_[slot(fd)] == fd) return false;
    if (!cold_) return true;
    return ++skipped_ % k_cold_sample == 0;
  }
  // The same, for a read of `bytes`, when the caller can tell whether its pages are cached:
  // `cached()` gives 1 (all cached), 0 (not) or < 0 (cannot tell; cachestat(2) refused). It is
  // asked only while the policy is cold, where a try is a sample: a sample whose pages are not
  // cached is recorded as refused without a try, because a try that misses starts the readahead
  // on the calling thread before it answers EAGAIN.
  template <class Cached>
  bool should_try(int fd, std::uint64_t now_ns, std::uint64_t bytes, Cached cached) {
    if (!should_try(fd, now_ns)) return false;
    if (!cold_ || cached() != 0) return true;
    record(fd, false, bytes, 0, true);
    return false;
  }

  // The outcome of a try of `bytes` on `fd` that took `took_ns`: hit = served completely (or end
  // of file).
  // `refused`: the kernel said the read would wait (EAGAIN, or a partial read); a try that failed
  // otherwise (EOPNOTSUPP...) is neither a hit nor a refusal.
  void record(int fd, bool hit, std::uint64_t bytes, std::uint64_t took_ns, bool refused = false) noexcept {
    std::uint8_t& strikes = strikes_[slot(fd)];
    if (took_ns <= k_slow_base_ns + bytes) {
      strikes = 0;
    } else if (refused || ++strikes >= k_slow_strikes) {
      slow_[slot(fd)] = fd;
      hit = false;
    }
    ++tries_;
    hits_ += hit ? 1 : 0;
    refusals_ += refused ? 1 : 0;
    if (tries_ < k_window) return;
    cold_ = hits_ * 4 < tries_;
    refusing_ = refusals_ * 4 >= tries_ * 3;
    tries_ = hits_ = refusals_ = 0;
  }
  bool cold() const noexcept { return cold_; }
  // Whether reads will probably wait for the device: of the last window of tries, at least 3 in
  // 4 were refused by the kernel. Slow tries do not count here: a loop thread preempted during a
  // try looks slow too, and this prediction makes the pool grow.
  bool predicts_miss() const noexcept { return refusing_; }

 private:
  static std::size_t slot(int fd) noexcept { return static_cast<unsigned>(fd) % 64u; }

  std::array<int, 64> slow_;
  std::array<std::uint8_t, 64> strikes_;  // slow tries in a row, per slot
  std::uint64_t forgot_at_ = 0;
  std::uint32_t tries_ = 0;
  std::uint32_t hits_ = 0;
  std::uint32_t skipped_ = 0;
  std::uint32_t refusals_ = 0;
  bool cold_ = false;
  bool refusing_ = false;
};

}  // namespace unio::detail
