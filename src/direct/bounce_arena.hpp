// Small bounce buffers for the O_DIRECT layer, carved from one 2 MiB region per loop that is asked
// to be a transparent huge page (madvise MADV_HUGEPAGE).
//
// Why: a misaligned 4 KiB read bounces through a span of two blocks. In two separate pages that is
// two DMA segments, and on this kind of machine (virtio-blk) a two-segment read costs the device
// far more than a one-segment one: unaligned O_DIRECT reads at depth 32 ran at 0.55x the IOPS of
// aligned ones from heap buffers, 0.76x from huge-page slots (docs/design.md has the figures).
// Inside a huge page, consecutive pages are physically contiguous, so the span is one segment.
// Where the kernel gives no huge page (THP off, memory fragmented) the slots are ordinary pages:
// no worse than the heap.
//
// The region is mapped on the first take(). Threading: one arena per loop, loop thread only.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace unio::detail {

class bounce_arena {
 public:
  static constexpr std::size_t k_region = std::size_t{2} << 20;
  static constexpr std::size_t k_slot = 16 * 1024;  // also the slots' alignment

  bounce_arena() = default;
  bounce_arena(const bounce_arena&) = delete;
  bounce_arena& operator=(const bounce_arena&) = delete;
  ~bounce_arena() {
    if (base_ != nullptr) ::munmap(base_, k_region);
  }

  // A free slot of k_slot bytes, or nullptr (none left, or no memory).
  std::byte* take() noexcept {
    if (!mapped_ && !map()) return nullptr;
    if (free_.empty()) return nullptr;
    std::uint16_t i = free_.back();
    free_.pop_back();
    return base_ + std::size_t{i} * k_slot;
  }
  bool owns(const std::byte* p) const noexcept { return base_ != nullptr && p >= base_ && p < base_ + k_region; }
  void give(std::byte* p) noexcept { free_.push_back(static_cast<std::uint16_t>((p - base_) / k_slot)); }

 private:
  bool map() noexcept {
    mapped_ = true;  // one attempt
    // Map twice the size to find a 2 MiB-aligned region inside (a huge page must be aligned),
    // and keep only that region.
    const std::size_t len = 2 * k_region;
    void* m = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return false;
    auto* start = static_cast<std::byte*>(m);
    auto at = reinterpret_cast<std::uintptr_t>(m);
    base_ = reinterpret_cast<std::byte*>((at + k_region - 1) & ~(std::uintptr_t{k_region} - 1));
    if (base_ > start) ::munmap(start, static_cast<std::size_t>(base_ - start));
    if (base_ + k_region < start + len)
      ::munmap(base_ + k_region, static_cast<std::size_t>(start + len - (base_ + k_region)));
    (void)::madvise(base_, k_region, MADV_HUGEPAGE);  // a hint: EINVAL where THP is compiled out
    try {
      free_.reserve(k_region / k_slot);
    } catch (...) {
      return false;
    }
    for (std::size_t i = k_region / k_slot; i-- > 0;)
      free_.push_back(static_cast<std::uint16_t>(i));
    return true;
  }

  bool mapped_ = false;  // map() was tried (base_ is null if it failed)
  std::byte* base_ = nullptr;
  std::vector<std::uint16_t> free_;
};

}  // namespace unio::detail
