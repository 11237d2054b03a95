// aligned_buffer: alignment, zero fill, move, and the power-of-two check.
#include <gtest/gtest.h>

#include <cstdint>
#include <new>
#include <stdexcept>
#include <utility>

#include "unio/buffer.hpp"

namespace {

bool aligned(const void* p, std::size_t a) { return reinterpret_cast<std::uintptr_t>(p) % a == 0; }

TEST(unit_aligned_buffer, default_is_empty) {
  unio::aligned_buffer b;
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.alignment(), unio::aligned_buffer::default_alignment);
  EXPECT_TRUE(b.span().empty());
}

TEST(unit_aligned_buffer, alignment_and_zero_fill) {
  for (std::size_t a : {8u, 64u, 512u, 4096u, 65536u}) {
    for (std::size_t n : {1u, 100u, 4096u, 10000u}) {
      unio::aligned_buffer b(n, a);
      ASSERT_NE(b.data(), nullptr);
      EXPECT_TRUE(aligned(b.data(), a)) << "alignment " << a;
      EXPECT_EQ(b.size(), n);
      EXPECT_EQ(b.alignment(), a);
      EXPECT_EQ(b.span().size(), n);
      for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(b.data()[i], std::byte{0});
      b.data()[n - 1] = std::byte{0xff};  // the whole size is writable
    }
  }
  unio::aligned_buffer d(10);
  EXPECT_TRUE(aligned(d.data(), 4096));
}

TEST(unit_aligned_buffer, zero_size_still_allocates_aligned) {
  unio::aligned_buffer b(0, 512);
  EXPECT_NE(b.data(), nullptr);
  EXPECT_TRUE(aligned(b.data(), 512));
  EXPECT_EQ(b.size(), 0u);
}

TEST(unit_aligned_buffer, move_construct_and_assign) {
  unio::aligned_buffer a(100, 512);
  a.data()[0] = std::byte{7};
  std::byte* p = a.data();
  unio::aligned_buffer b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.size(), 100u);
  EXPECT_EQ(b.alignment(), 512u);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT: moved-from state is specified
  EXPECT_EQ(a.size(), 0u);
  unio::aligned_buffer c(10, 64);
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(c.alignment(), 512u);
  EXPECT_EQ(c.data()[0], std::byte{7});
  EXPECT_EQ(b.data(), nullptr);  // NOLINT
  auto& self = c;
  c = std::move(self);  // self-move keeps the buffer
  EXPECT_EQ(c.data(), p);
  const unio::aligned_buffer& cc = c;
  EXPECT_EQ(cc.data(), p);
  EXPECT_EQ(cc.span().size(), 100u);
}

TEST(unit_aligned_buffer, bad_alignment_throws) {
  for (std::size_t a : {0u, 3u, 24u, 4097u, 6144u}) {
    EXPECT_THROW(unio::aligned_buffer(16, a), std::invalid_argument) << "alignment " << a;
  }
}

// Regression: size + alignment - 1 overflowed for sizes near SIZE_MAX, so a tiny block was
// allocated while size() claimed the huge size (writes through span() would overrun the heap).
TEST(unit_aligned_buffer, huge_size_throws_bad_alloc_instead_of_wrapping) {
  constexpr std::size_t max = ~std::size_t{0};
  for (std::size_t n : {max, max - 4094}) {
    EXPECT_THROW(unio::aligned_buffer b(n), std::bad_alloc) << n;
  }
  EXPECT_THROW(unio::aligned_buffer b(max - 10, 64), std::bad_alloc);
}

}  // namespace
