// The file the workload runs on: validation of --file, creation (pseudo-random content that
// --verify can check), cache preparation and page-cache residency.
#pragma once

#include <cstdint>
#include <string>

#include "options.hpp"

namespace unio_bench {

struct test_file {
  std::string path;
  std::uint64_t size = 0;
  bool remove_after = false;  // we created it
  bool patterned = false;     // content is pattern_word() everywhere (we wrote all of it)
};

// The 8-byte word the tool writes at byte offset 8*i of files it creates.
inline std::uint64_t pattern_word(std::uint64_t i) noexcept {
  std::uint64_t z = i + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
void fill_pattern(void* buf, std::uint64_t len, std::uint64_t offset) noexcept;

// Checks --file before anything is created. Returns an error message, or "" when usable.
std::string check_file_arg(const std::string& path);

// Creates or extends the file as needed; registers a temporary file for removal at exit and on
// SIGINT/SIGTERM. Throws std::runtime_error with a message on failure (nothing left behind).
test_file prepare_test_file(const run_options& opts);
void remove_test_file(const test_file& f);
// Removes the registered temporary file, if any (safe from a signal handler).
void remove_temp_file_now() noexcept;

// warm: reads the whole file; cold: writes back and drops it from the page cache.
void prepare_cache(const test_file& f, const std::string& mode);
// Fraction of the file's pages in the page cache (mincore), or -1 when unknown.
double residency(const test_file& f);

}  // namespace unio_bench
