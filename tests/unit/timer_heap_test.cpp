// timer_heap: deadline order, equal deadlines in insertion order, O(log n) removal from
// anywhere, and a randomized comparison against std::multiset.
#include "timer_heap.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <tuple>
#include <vector>

namespace {

using unio::detail::A;
using unio::detail::timer_heap;

// A pool of ops with deadlines, for feeding the heap.
struct ops {
  explicit ops(std::size_t n) : v(std::make_unique<unio::op[]>(n)) {}
  unio::op& at(std::size_t i, std::int64_t deadline) {
    A::args(v[i]).timeout_ns = deadline;
    return v[i];
  }
  unio::op* ptr(std::size_t i) { return &v[i]; }
  std::unique_ptr<unio::op[]> v;
};

TEST(unit_timer_heap, empty) {
  timer_heap h;
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.size(), 0u);
  EXPECT_EQ(h.top(), nullptr);
  EXPECT_EQ(h.pop(), nullptr);
}

TEST(unit_timer_heap, pops_in_deadline_order) {
  const std::int64_t deadlines[] = {50, 10, 40, 30, 20, 60, 5};
  ops o(7);
  timer_heap h;
  for (std::size_t i = 0; i < 7; ++i) h.push(o.at(i, deadlines[i]));
  EXPECT_EQ(h.size(), 7u);
  std::vector<std::int64_t> got;
  while (!h.empty()) {
    std::int64_t d = h.top_deadline();
    unio::op* t = h.top();
    unio::op* p = h.pop();
    EXPECT_EQ(t, p);
    EXPECT_EQ(A::args(*p).timeout_ns, d);
    got.push_back(d);
  }
  EXPECT_EQ(got, (std::vector<std::int64_t>{5, 10, 20, 30, 40, 50, 60}));
}

TEST(unit_timer_heap, equal_deadlines_fire_in_insertion_order) {
  ops o(20);
  timer_heap h;
  for (std::size_t i = 0; i < 20; ++i) h.push(o.at(i, i % 2 == 0 ? 100 : 200));
  for (std::size_t i = 0; i < 20; i += 2) EXPECT_EQ(h.pop(), o.ptr(i)) << i;
  for (std::size_t i = 1; i < 20; i += 2) EXPECT_EQ(h.pop(), o.ptr(i)) << i;
  EXPECT_TRUE(h.empty());
}

TEST(unit_timer_heap, remove_from_the_middle) {
  ops o(9);
  timer_heap h;
  for (std::size_t i = 0; i < 9; ++i) h.push(o.at(i, static_cast<std::int64_t>(i) * 10));
  EXPECT_TRUE(h.remove(*o.ptr(4)));
  EXPECT_TRUE(h.remove(*o.ptr(7)));
  EXPECT_FALSE(h.remove(*o.ptr(4)));  // already gone
  EXPECT_EQ(h.size(), 7u);
  std::vector<unio::op*> got;
  while (unio::op* p = h.pop()) got.push_back(p);
  EXPECT_EQ(got, (std::vector<unio::op*>{o.ptr(0), o.ptr(1), o.ptr(2), o.ptr(3), o.ptr(5), o.ptr(6), o.ptr(8)}));
}

TEST(unit_timer_heap, remove_top_last_and_only) {
  ops o(3);
  timer_heap h;
  h.push(o.at(0, 1));
  EXPECT_TRUE(h.remove(*o.ptr(0)));
  EXPECT_TRUE(h.empty());
  h.push(o.at(0, 1));
  h.push(o.at(1, 2));
  h.push(o.at(2, 3));
  EXPECT_TRUE(h.remove(*o.ptr(0)));  // the top
  EXPECT_EQ(h.top(), o.ptr(1));
  EXPECT_TRUE(h.remove(*o.ptr(2)));  // the last slot
  EXPECT_EQ(h.pop(), o.ptr(1));
  EXPECT_TRUE(h.empty());
}

TEST(unit_timer_heap, remove_of_a_popped_op_is_false) {
  ops o(4);
  timer_heap h;
  for (std::size_t i = 0; i < 4; ++i) h.push(o.at(i, 10 - static_cast<std::int64_t>(i)));
  unio::op* first = h.pop();  // its stale index now names another op's slot
  EXPECT_FALSE(h.remove(*first));
  EXPECT_EQ(h.size(), 3u);
}

// The model: a multiset of (deadline, insertion sequence, op index), which is the order the heap
// promises. Random pushes, pops and removals; after each step top() must be the model's first.
TEST(unit_timer_heap, randomized_against_multiset) {
  constexpr std::size_t n = 512;
  ops o(n);
  std::mt19937_64 rng(12345);
  for (int round = 0; round < 20; ++round) {
    timer_heap h;
    std::multiset<std::tuple<std::int64_t, std::uint64_t, std::size_t>> model;
    std::vector<std::uint64_t> seq_of(n);
    std::vector<bool> in(n, false);
    std::uint64_t seq = 0;
    for (int step = 0; step < 4000; ++step) {
      unsigned what = rng() % 10;
      std::size_t i = rng() % n;
      if (what < 5) {  // push (deadlines from a small range, so ties are common)
        if (in[i]) continue;
        std::int64_t d = static_cast<std::int64_t>(rng() % 64);
        h.push(o.at(i, d));
        seq_of[i] = seq;
        model.emplace(d, seq++, i);
        in[i] = true;
      } else if (what < 8) {  // pop
        unio::op* p = h.pop();
        if (model.empty()) {
          ASSERT_EQ(p, nullptr);
          continue;
        }
        auto first = *model.begin();
        model.erase(model.begin());
        ASSERT_EQ(p, o.ptr(std::get<2>(first)));
        in[std::get<2>(first)] = false;
      } else {  // remove a random op, in the heap or not
        bool removed = h.remove(*o.ptr(i));
        ASSERT_EQ(removed, static_cast<bool>(in[i]));
        if (removed) {
          model.erase(model.find({A::args(*o.ptr(i)).timeout_ns, seq_of[i], i}));
          in[i] = false;
        }
      }
      ASSERT_EQ(h.size(), model.size());
      if (!model.empty()) {
        ASSERT_EQ(h.top(), o.ptr(std::get<2>(*model.begin())));
        ASSERT_EQ(h.top_deadline(), std::get<0>(*model.begin()));
      }
    }
    while (unio::op* p = h.pop()) {
      ASSERT_FALSE(model.empty());
      ASSERT_EQ(p, o.ptr(std::get<2>(*model.begin())));
      model.erase(model.begin());
    }
    EXPECT_TRUE(model.empty());
  }
}

}  // namespace
