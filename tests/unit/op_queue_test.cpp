// op_queue: the intrusive FIFO every backend uses.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "backend.hpp"

namespace {

using unio::detail::op_queue;

std::vector<unio::op*> drain(op_queue& q) {
  std::vector<unio::op*> v;
  while (unio::op* o = q.pop()) v.push_back(o);
  return v;
}

TEST(unit_op_queue, empty) {
  op_queue q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.pop(), nullptr);
}

TEST(unit_op_queue, push_pop_is_fifo) {
  unio::op a, b, c;
  op_queue q;
  q.push(a);
  q.push(b);
  q.push(c);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.pop(), &a);
  q.push(a);  // re-push after pop: goes to the back
  EXPECT_EQ(drain(q), (std::vector<unio::op*>{&b, &c, &a}));
  EXPECT_TRUE(q.empty());
  q.push(b);  // usable again after becoming empty
  EXPECT_EQ(q.pop(), &b);
  EXPECT_EQ(q.pop(), nullptr);
}

TEST(unit_op_queue, splice) {
  unio::op a, b, c, d;
  op_queue q, r, empty;
  q.splice(empty);  // empty into empty
  EXPECT_TRUE(q.empty());
  r.push(a);
  r.push(b);
  q.splice(r);  // into empty
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.size(), 0u);
  EXPECT_EQ(q.size(), 2u);
  r.push(c);
  r.push(d);
  q.splice(r);  // into non-empty
  q.splice(empty);  // empty into non-empty
  EXPECT_EQ(q.size(), 4u);
  EXPECT_EQ(drain(q), (std::vector<unio::op*>{&a, &b, &c, &d}));
  r.push(a);  // the spliced-from queue still works
  EXPECT_EQ(drain(r), (std::vector<unio::op*>{&a}));
}

TEST(unit_op_queue, remove_head_middle_tail_absent) {
  unio::op o[5];
  unio::op stranger;
  op_queue q;
  for (auto& x : o) q.push(x);
  EXPECT_FALSE(q.remove(stranger));
  EXPECT_TRUE(q.remove(o[2]));  // middle
  EXPECT_FALSE(q.remove(o[2]));
  EXPECT_TRUE(q.remove(o[0]));  // head
  EXPECT_TRUE(q.remove(o[4]));  // tail: the tail pointer must move back
  EXPECT_EQ(q.size(), 2u);
  q.push(stranger);
  EXPECT_EQ(drain(q), (std::vector<unio::op*>{&o[1], &o[3], &stranger}));
}

TEST(unit_op_queue, remove_only_element_then_push) {
  unio::op a, b;
  op_queue q;
  q.push(a);
  EXPECT_TRUE(q.remove(a));
  EXPECT_TRUE(q.empty());
  q.push(b);
  EXPECT_EQ(drain(q), (std::vector<unio::op*>{&b}));
}

TEST(unit_op_queue, extract_if_moves_matches_in_order_within_the_window) {
  unio::op o[6];
  op_queue q, out;
  for (auto& x : o) q.push(x);
  auto even = [&o](unio::op& x) { return (&x - o) % 2 == 0; };
  EXPECT_EQ(q.extract_if(out, 2, 6, even), 2u);  // the first two matches only
  EXPECT_EQ(q.size(), 4u);
  EXPECT_EQ(drain(out), (std::vector<unio::op*>{&o[0], &o[2]}));
  EXPECT_EQ(q.extract_if(out, 9, 2, even), 0u);  // the window (o1, o3) holds none
  EXPECT_EQ(q.extract_if(out, 9, 9, even), 1u);  // o4, the tail's neighbour
  EXPECT_EQ(drain(out), (std::vector<unio::op*>{&o[4]}));
  q.push(o[0]);  // the tail is still right: o5, then o0
  EXPECT_EQ(drain(q), (std::vector<unio::op*>{&o[1], &o[3], &o[5], &o[0]}));
  for (auto& x : o) q.push(x);
  EXPECT_EQ(q.extract_if(out, 9, 9, [&o](unio::op& x) { return &x == &o[5]; }), 1u);  // the tail
  EXPECT_EQ(q.extract_if(out, 9, 9, [](unio::op&) { return true; }), 5u);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(drain(out), (std::vector<unio::op*>{&o[5], &o[0], &o[1], &o[2], &o[3], &o[4]}));
  q.push(o[1]);  // head and tail reset
  EXPECT_EQ(drain(q), (std::vector<unio::op*>{&o[1]}));
}

}  // namespace
