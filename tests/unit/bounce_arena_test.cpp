// The O_DIRECT layer's bounce slots: 128 distinct 16 KiB-aligned slots in one 2 MiB-aligned region,
// none given twice, each reusable once given back; fd_facts: remembered facts expire and are
// forgotten.
#include "direct/bounce_arena.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "fd_facts.hpp"

namespace {

using unio::detail::bounce_arena;
using unio::detail::fd_facts;

TEST(bounce_arena, gives_every_slot_once_then_none) {
  bounce_arena a;
  std::set<std::byte*> got;
  const std::size_t n = bounce_arena::k_region / bounce_arena::k_slot;
  for (std::size_t i = 0; i < n; ++i) {
    std::byte* p = a.take();
    ASSERT_NE(p, nullptr) << "slot " << i;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % bounce_arena::k_slot, 0u);
    EXPECT_TRUE(a.owns(p));
    std::memset(p, static_cast<int>(i & 0xff), bounce_arena::k_slot);  // writable, whole slot
    EXPECT_TRUE(got.insert(p).second) << "slot given twice";
  }
  EXPECT_EQ(a.take(), nullptr) << "more slots than the region holds";
  // One region, 2 MiB-aligned (a huge page must be).
  auto lo = reinterpret_cast<std::uintptr_t>(*got.begin());
  auto hi = reinterpret_cast<std::uintptr_t>(*got.rbegin());
  EXPECT_EQ(lo % bounce_arena::k_region, 0u);
  EXPECT_EQ(hi - lo, bounce_arena::k_region - bounce_arena::k_slot);
  std::byte* back = *got.begin();
  a.give(back);
  EXPECT_EQ(a.take(), back);
  EXPECT_EQ(a.take(), nullptr);
}

TEST(bounce_arena, owns_only_its_region) {
  bounce_arena a;
  std::byte other[16]{};
  EXPECT_FALSE(a.owns(other)) << "nothing is mapped before the first take";
  std::byte* p = a.take();
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(a.owns(other));
  const std::uintptr_t base = reinterpret_cast<std::uintptr_t>(p) & ~(bounce_arena::k_region - 1);
  EXPECT_TRUE(a.owns(reinterpret_cast<std::byte*>(base)));
  EXPECT_FALSE(a.owns(reinterpret_cast<std::byte*>(base - 1)));
  EXPECT_FALSE(a.owns(reinterpret_cast<std::byte*>(base + bounce_arena::k_region)));
}

TEST(fd_facts, remembers_until_forgotten_or_used_up) {
  fd_facts f;
  EXPECT_EQ(f.find(7), nullptr);
  f.put(7, 0x4000, {512, 512});
  const fd_facts::facts* x = f.find(7);
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->flags, 0x4000);
  EXPECT_EQ(x->al.offset, 512u);
  EXPECT_EQ(f.find(6), nullptr) << "a smaller fd is not known";
  f.forget(7);
  EXPECT_EQ(f.find(7), nullptr);
  f.put(7, 0, {});
  unsigned uses = 0;
  while (f.find(7) != nullptr) ++uses;
  EXPECT_EQ(uses, fd_facts::k_uses) << "facts expire after k_uses lookups";
  f.put(-1, 0, {});
  EXPECT_EQ(f.find(-1), nullptr);
  f.put(fd_facts::k_max_fd, 0, {});
  EXPECT_EQ(f.find(fd_facts::k_max_fd), nullptr) << "huge fds are not remembered";
}

}  // namespace
