// op_handler: the op's type-erased completion handler. Small nothrow-movable callables live
// inline (no allocation); bigger, over-aligned or throwing-move ones go to the heap. Either way
// the callable is invoked as asked and every object constructed is destroyed exactly once.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <new>
#include <stdexcept>

#include "unio/loop.hpp"
#include "unio/op.hpp"

namespace {

using unio::detail::op_handler;

// Counts constructions, destructions, invocations and heap allocations of the callable.
struct counts {
  int constructed = 0;
  int destroyed = 0;
  int invoked = 0;
  int allocated = 0;
};
counts g;

template <std::size_t Size, bool NothrowMove = true, std::size_t Align = alignof(int*)>
struct alignas(Align) probe {
  std::array<unsigned char, Size> payload{};
  int* hits = nullptr;

  explicit probe(int* h) : hits(h) { ++g.constructed; }
  probe(const probe& o) : payload(o.payload), hits(o.hits) { ++g.constructed; }
  probe(probe&& o) noexcept(NothrowMove) : payload(o.payload), hits(o.hits) { ++g.constructed; }
  ~probe() { ++g.destroyed; }
  void operator()(unio::op&) {
    ++g.invoked;
    if (hits != nullptr) ++*hits;
  }
  static void* operator new(std::size_t n) {
    ++g.allocated;
    return ::operator new(n, std::align_val_t{Align});
  }
  static void operator delete(void* p) { ::operator delete(p, std::align_val_t{Align}); }
};

using small = probe<16>;                                  // inline
using exactly_inline = probe<op_handler::inline_size - sizeof(int*)>;  // exactly 48 bytes: inline
using big = probe<100>;                                   // > 48 bytes: heap
using throwing_move = probe<8, false>;                    // may throw on move: heap
using over_aligned = probe<8, true, 128>;                 // alignment > max_align_t: heap

class unit_op_handler : public ::testing::Test {
 protected:
  void SetUp() override { g = {}; }
  void TearDown() override { EXPECT_EQ(g.constructed, g.destroyed) << "a callable leaked or was destroyed twice"; }
};

template <class P>
void set_invoke_reset(int expect_alloc) {
  int hits = 0;
  unio::op o;
  {
    op_handler h;
    EXPECT_FALSE(h);
    h.set(P(&hits));
    EXPECT_TRUE(h);
    EXPECT_EQ(g.allocated, expect_alloc);
    h(o);
    h(o);
    EXPECT_EQ(hits, 2);
  }  // the destructor releases the callable
  EXPECT_EQ(g.constructed, g.destroyed);
}

TEST_F(unit_op_handler, small_is_inline) {
  static_assert(sizeof(small) <= op_handler::inline_size);
  set_invoke_reset<small>(0);
}
TEST_F(unit_op_handler, exactly_inline_size_is_inline) {
  static_assert(sizeof(exactly_inline) == op_handler::inline_size);
  set_invoke_reset<exactly_inline>(0);
}
TEST_F(unit_op_handler, bigger_than_inline_goes_to_heap) {
  static_assert(sizeof(big) > op_handler::inline_size);
  set_invoke_reset<big>(1);
}
TEST_F(unit_op_handler, throwing_move_goes_to_heap) { set_invoke_reset<throwing_move>(1); }
TEST_F(unit_op_handler, over_aligned_goes_to_heap) { set_invoke_reset<over_aligned>(1); }

template <class P>
void take_moves_ownership() {
  int hits = 0;
  unio::op o;
  op_handler a, b;
  a.set(P(&hits));
  int live = g.constructed - g.destroyed;
  EXPECT_EQ(live, 1);
  b.take(a);
  EXPECT_FALSE(a);
  EXPECT_TRUE(b);
  EXPECT_EQ(g.constructed - g.destroyed, 1);  // still exactly one live callable
  b(o);
  EXPECT_EQ(hits, 1);
  a.take(b);  // and back
  a(o);
  EXPECT_EQ(hits, 2);
  op_handler empty;
  a.take(empty);  // taking from an empty handler empties the target
  EXPECT_FALSE(a);
  EXPECT_EQ(g.constructed, g.destroyed);
}

TEST_F(unit_op_handler, take_inline) { take_moves_ownership<small>(); }
TEST_F(unit_op_handler, take_heap) { take_moves_ownership<big>(); }

TEST_F(unit_op_handler, set_replaces_and_destroys_the_previous) {
  int h1 = 0, h2 = 0;
  unio::op o;
  op_handler h;
  h.set(big(&h1));
  h.set(small(&h2));
  EXPECT_EQ(g.constructed - g.destroyed, 1);
  h(o);
  EXPECT_EQ(h1, 0);
  EXPECT_EQ(h2, 1);
  h.reset();
  EXPECT_FALSE(h);
  h.reset();  // idempotent
  EXPECT_EQ(g.constructed, g.destroyed);
}

// Through a real loop: a handler with a capture bigger than the inline storage runs once, and
// every copy of its captures is destroyed exactly once, for completed and cancelled ops alike.
TEST_F(unit_op_handler, big_capture_through_the_loop) {
  for (const char* backend : {"sync", "threadpool"}) {
    int hits = 0;
    {
      unio::loop lp({.backend = backend});
      unio::op a, b, c;
      std::array<char, 200> blob{};
      blob[199] = 'z';
      big p(&hits);
      char seen = 0;
      lp.nop(a, [p, blob, &seen](unio::op& o) mutable {
        p(o);
        seen = blob[199];
      });
      lp.timeout(b, std::chrono::hours(1), [p](unio::op& o) mutable {
        EXPECT_EQ(o.error(), std::errc::operation_canceled);
        p(o);
      });
      lp.timeout(c, std::chrono::milliseconds(1), [p](unio::op& o) mutable { p(o); });
      lp.run_once();
      lp.cancel(b);
      lp.run();
      EXPECT_EQ(seen, 'z');
      EXPECT_EQ(hits, 3) << backend;
    }
    EXPECT_EQ(g.constructed, g.destroyed) << backend;
  }
}

}  // namespace
