// Data helpers the fault tests share: aligned memory for O_DIRECT buffers and a byte pattern
// that tells every offset of a test file apart (a read from the wrong place shows).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

namespace unio::test {

inline constexpr std::size_t k_block = 4096;  // the O_DIRECT unit of the fault tests' files

struct free_deleter {
  void operator()(char* p) const noexcept { std::free(p); }
};
using aligned_buf = std::unique_ptr<char, free_deleter>;

// `n` bytes aligned to k_block (n must be a multiple of it); null when memory is exhausted.
inline aligned_buf aligned(std::size_t n) { return aligned_buf(static_cast<char*>(std::aligned_alloc(k_block, n))); }

// The byte a test file holds at offset `off`.
inline char byte_at(std::uint64_t off) { return static_cast<char>((off * 131 + 7) % 251); }

}  // namespace unio::test
