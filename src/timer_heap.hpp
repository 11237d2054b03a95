// timer_heap: a binary min-heap of timeout ops ordered by deadline, with O(log n) removal
// (each op remembers its position). Deadlines with equal times fire in submission order.
#pragma once

#include <cstdint>
#include <vector>

#include "backend.hpp"

namespace unio::detail {

class timer_heap {
 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  // The op's deadline is args.timeout_ns (absolute, steady_clock nanoseconds).
  void push(op& o);
  op* top() const noexcept { return heap_.empty() ? nullptr : heap_.front().o; }
  std::int64_t top_deadline() const noexcept { return heap_.front().deadline; }
  op* pop();
  // Returns whether `o` was in the heap.
  bool remove(op& o);

 private:
  struct entry {
    std::int64_t deadline;
    std::uint64_t seq;
    op* o;
  };
  static bool less(const entry& a, const entry& b) noexcept {
    return a.deadline != b.deadline ? a.deadline < b.deadline : a.seq < b.seq;
  }
  void place(std::size_t i, entry e) noexcept;
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;
  void erase_at(std::size_t i) noexcept;

  std::vector<entry> heap_;
  std::uint64_t seq_ = 0;
};

}  // namespace unio::detail
