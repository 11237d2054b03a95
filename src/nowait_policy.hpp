// nowait_policy: which reads the threadpool backend tries on the loop's thread with RWF_NOWAIT.
//
// A try that misses is not free. On a miss the kernel starts readahead for the missing pages on
// the calling thread before it answers EAGAIN (filemap_get_pages with IOCB_NOWAIT), so on a cold
// working set the loop's thread ends up submitting device I/O: perf on this virtio VM put 17% of
// the loop thread's samples in the device notify (iowrite16) during cold 4 KiB random reads, for
// tries that almost all missed. The policy keeps the tries while they pay and thins them out when
// they do not: after a window of k_window tries with fewer than 1 hit in 4, only one eligible
// read in k_cold_sample is tried, until a window of those samples hits again.
#pragma once

#include <cstdint>

namespace unio::detail {

class nowait_policy {
 public:
  static constexpr std::uint32_t k_window = 64;
  static constexpr std::uint32_t k_cold_sample = 16;

  // Whether to try the next eligible read inline.
  bool should_try() noexcept {
    if (!cold_) return true;
    return ++skipped_ % k_cold_sample == 0;
  }
  // The outcome of a try: hit = served completely (or end of file) from the page cache.
  void record(bool hit) noexcept {
    ++tries_;
    hits_ += hit ? 1 : 0;
    if (tries_ < k_window) return;
    cold_ = hits_ * 4 < tries_;
    tries_ = hits_ = 0;
  }
  bool cold() const noexcept { return cold_; }

 private:
  std::uint32_t tries_ = 0;
  std::uint32_t hits_ = 0;
  std::uint32_t skipped_ = 0;
  bool cold_ = false;
};

}  // namespace unio::detail
