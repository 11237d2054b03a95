// aligned_buffer: an owning, aligned, zero-initialised byte buffer.
//
// O_DIRECT requires the memory address, the file offset and the length to be multiples of the
// device's alignment (see statx STATX_DIOALIGN). aligned_buffer gives the memory part of that:
// its data() is aligned to `alignment` (a power of two, default 4096, which satisfies every
// device Linux supports). Moving transfers ownership; the buffer is not copyable.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <span>
#include <stdexcept>
#include <utility>

namespace unio {

class aligned_buffer {
 public:
  static constexpr std::size_t default_alignment = 4096;

  aligned_buffer() = default;
  // Throws std::bad_alloc when memory is exhausted, std::invalid_argument when alignment is not a
  // power of two.
  explicit aligned_buffer(std::size_t size, std::size_t alignment = default_alignment);
  aligned_buffer(aligned_buffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)),
        alignment_(o.alignment_) {}
  aligned_buffer& operator=(aligned_buffer&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      alignment_ = o.alignment_;
    }
    return *this;
  }
  aligned_buffer(const aligned_buffer&) = delete;
  aligned_buffer& operator=(const aligned_buffer&) = delete;
  ~aligned_buffer() { std::free(data_); }

  std::byte* data() noexcept { return data_; }
  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t alignment() const noexcept { return alignment_; }
  std::span<std::byte> span() noexcept { return {data_, size_}; }
  std::span<const std::byte> span() const noexcept { return {data_, size_}; }

 private:
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t alignment_ = default_alignment;
};

inline aligned_buffer::aligned_buffer(std::size_t size, std::size_t alignment)
    : size_(size), alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    throw std::invalid_argument("unio::aligned_buffer: alignment must be a power of two");
  // Rounding a size near SIZE_MAX up would wrap to a tiny allocation behind a huge size().
  if (size > ~std::size_t{0} - (alignment - 1)) throw std::bad_alloc();
  std::size_t rounded = (size + alignment - 1) / alignment * alignment;
  if (rounded == 0) rounded = alignment;
  data_ = static_cast<std::byte*>(std::aligned_alloc(alignment, rounded));
  if (data_ == nullptr) throw std::bad_alloc();
  std::memset(data_, 0, rounded);
}

}  // namespace unio
