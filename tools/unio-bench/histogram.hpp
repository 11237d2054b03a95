// A log-bucketed latency histogram: 16 sub-buckets per power of two (relative error <= 6.25 %),
// fixed size, no allocation when recording. Values are nanoseconds.
#pragma once

#include <array>
#include <cstdint>

namespace unio_bench {

class histogram {
 public:
  void record(std::uint64_t v) noexcept {
    ++counts_[index_of(v)];
    ++count_;
    sum_ += v;
    if (v > max_) max_ = v;
  }
  void merge(const histogram& o) noexcept;

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }
  // The value at quantile q (0..1): the midpoint of the bucket holding it, capped at max().
  std::uint64_t quantile(double q) const noexcept;

 private:
  static constexpr unsigned k_sub_bits = 4;
  static constexpr unsigned k_sub = 1u << k_sub_bits;
  static constexpr unsigned k_buckets = (64 - k_sub_bits + 1) * k_sub;

  static unsigned index_of(std::uint64_t v) noexcept {
    if (v < k_sub) return static_cast<unsigned>(v);
    unsigned e = 63u - static_cast<unsigned>(__builtin_clzll(v));
    unsigned sub = static_cast<unsigned>(v >> (e - k_sub_bits)) & (k_sub - 1);
    return (e - k_sub_bits + 1) * k_sub + sub;
  }
  static std::uint64_t lower_bound_of(unsigned idx) noexcept;
  static std::uint64_t width_of(unsigned idx) noexcept;

  std::array<std::uint64_t, k_buckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace unio_bench
