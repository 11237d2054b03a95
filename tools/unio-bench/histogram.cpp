#include "histogram.hpp"

#include <cmath>

namespace unio_bench {

void histogram::merge(const histogram& o) noexcept {
  for (unsigned i = 0; i < k_buckets; ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  if (o.max_ > max_) max_ = o.max_;
}

std::uint64_t histogram::lower_bound_of(unsigned idx) noexcept {
  if (idx < k_sub) return idx;
  unsigned e = idx / k_sub + k_sub_bits - 1;
  std::uint64_t sub = idx % k_sub;
  return (std::uint64_t{1} << e) | (sub << (e - k_sub_bits));
}

std::uint64_t histogram::width_of(unsigned idx) noexcept {
  if (idx < k_sub) return 1;
  unsigned e = idx / k_sub + k_sub_bits - 1;
  return std::uint64_t{1} << (e - k_sub_bits);
}

std::uint64_t histogram::quantile(double q) const noexcept {
  if (count_ == 0) return 0;
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (rank == 0) rank = 1;
  std::uint64_t seen = 0;
  for (unsigned i = 0; i < k_buckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      std::uint64_t mid = lower_bound_of(i) + width_of(i) / 2;
      return mid < max_ ? mid : max_;
    }
  }
  return max_;
}

}  // namespace unio_bench
