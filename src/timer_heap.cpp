#include "timer_heap.hpp"

namespace unio::detail {

void timer_heap::place(std::size_t i, entry e) noexcept {
  heap_[i] = e;
  A::heap_index(*e.o) = static_cast<std::uint32_t>(i);
}

void timer_heap::push(op& o) {
  heap_.push_back({A::args(o).timeout_ns, seq_++, &o});
  A::heap_index(o) = static_cast<std::uint32_t>(heap_.size() - 1);
  sift_up(heap_.size() - 1);
}

op* timer_heap::pop() {
  if (heap_.empty()) return nullptr;
  op* o = heap_.front().o;
  erase_at(0);
  return o;
}

bool timer_heap::remove(op& o) {
  std::size_t i = A::heap_index(o);
  if (i >= heap_.size() || heap_[i].o != &o) return false;
  erase_at(i);
  return true;
}

void timer_heap::erase_at(std::size_t i) noexcept {
  entry last = heap_.back();
  heap_.pop_back();
  if (i == heap_.size()) return;
  place(i, last);
  sift_up(i);
  sift_down(A::heap_index(*last.o));
}

void timer_heap::sift_up(std::size_t i) noexcept {
  entry e = heap_[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / 2;
    if (!less(e, heap_[parent])) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, e);
}

void timer_heap::sift_down(std::size_t i) noexcept {
  entry e = heap_[i];
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && less(heap_[child + 1], heap_[child])) ++child;
    if (!less(heap_[child], e)) break;
    place(i, heap_[child]);
    i = child;
  }
  place(i, e);
}

}  // namespace unio::detail
