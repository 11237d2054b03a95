// nowait_policy: which reads the threadpool backend tries on the loop's thread with RWF_NOWAIT.
//
// RWF_NOWAIT promises less than its name. Two cases make a try cost the loop's thread:
//  - A miss on a buffered file: before it answers EAGAIN the kernel starts readahead for the
//    missing pages on the calling thread (filemap_get_pages with IOCB_NOWAIT), so on a cold
//    working set the loop's thread submits device I/O: perf on this virtio VM put 17% of the loop
//    thread's samples in the device notify (iowrite16) during cold 4 KiB random reads.
//  - Any read on an O_DIRECT file: NOWAIT only forbids waiting for locks and request slots; a
//    synchronous direct read still waits for the device to finish, on the loop's thread.
// So the policy watches what tries cost. A try that took longer than a page-cache copy could
// (k_slow_base_ns plus 1 ns per byte) waited for a device: it counts as a miss and its fd is not
// tried again until the slow-fd memory is cleared (every k_forget_ns; fd numbers are reused, so
// nothing is remembered for long). And after a window of k_window tries with fewer than 1 hit
// in 4, only one eligible read in k_cold_sample is tried, until a window of those samples hits
// again. Both only cost the loop a hand-off it would otherwise have saved, never correctness.
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

  nowait_policy() noexcept { slow_.fill(-1); }

  // Whether to try the next eligible read (on `fd`) inline. `now_ns`: a monotonic clock.
  bool should_try(int fd, std::uint64_t now_ns) noexcept {
    if (now_ns - forgot_at_ >= k_forget_ns) {
      slow_.fill(-1);
      forgot_at_ = now_ns;
    }
    if (slow_[slot(fd)] == fd) return false;
    if (!cold_) return true;
    return ++skipped_ % k_cold_sample == 0;
  }
  // The outcome of a try of `bytes` on `fd` that took `took_ns`: hit = served completely (or end
  // of file).
  void record(int fd, bool hit, std::uint64_t bytes, std::uint64_t took_ns) noexcept {
    if (took_ns > k_slow_base_ns + bytes) {
      slow_[slot(fd)] = fd;
      hit = false;
    }
    ++tries_;
    hits_ += hit ? 1 : 0;
    if (tries_ < k_window) return;
    cold_ = hits_ * 4 < tries_;
    tries_ = hits_ = 0;
  }
  bool cold() const noexcept { return cold_; }

 private:
  static std::size_t slot(int fd) noexcept { return static_cast<unsigned>(fd) % 64u; }

  std::array<int, 64> slow_;
  std::uint64_t forgot_at_ = 0;
  std::uint32_t tries_ = 0;
  std::uint32_t hits_ = 0;
  std::uint32_t skipped_ = 0;
  bool cold_ = false;
};

}  // namespace unio::detail
