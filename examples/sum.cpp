// unio-sum [--backend B] FILE...: each file's POSIX checksum, exactly as cksum(1) prints it
// ("CRC SIZE NAME", in argument order). Coroutine style, with the arithmetic on the loop's pool.
//
// Up to 16 files are read at once (a semaphore), each in 256 KiB chunks through the loop, into
// one of 16 buffers allocated once (a buffer per file cost more than the reading). The
// CRC of each chunk is folded in with async_work, on the loop's thread pool (inline on the sync
// backend), so the loop's thread only moves data and keeps serving other files while workers
// compute. A file's chunks are folded in order; files proceed independently. A file that cannot
// be read is reported with its name, the others are still summed, and the exit status is 1.
#include <fcntl.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "unio/unio.hpp"

namespace {

// The CRC-32 of POSIX cksum: polynomial 0x04C11DB7, most significant bit first, no reflection.
constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i << 24;
    for (int k = 0; k < 8; ++k) c = (c & 0x80000000u) != 0 ? (c << 1) ^ 0x04C11DB7u : c << 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<std::uint32_t, 256> k_table = make_table();

std::uint32_t crc_update(std::uint32_t crc, const unsigned char* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) crc = (crc << 8) ^ k_table[(crc >> 24) ^ p[i]];
  return crc;
}

// cksum's ending: the length, least significant byte first, then the complement.
std::uint32_t crc_finish(std::uint32_t crc, std::uint64_t length) {
  for (; length != 0; length >>= 8) {
    auto b = static_cast<unsigned char>(length & 0xff);
    crc = crc_update(crc, &b, 1);
  }
  return ~crc;
}

struct sum {
  std::uint32_t crc = 0;
  std::uint64_t size = 0;
  std::string error;  // empty on success
};

constexpr std::size_t k_chunk = 256 * 1024;
constexpr std::size_t k_files_at_once = 16;

// The read buffers: a file holding a slot of the semaphore takes one and gives it back when done,
// so there is always one to take.
struct buffers {
  std::vector<std::unique_ptr<unsigned char[]>> free;
  buffers() {
    for (std::size_t i = 0; i < k_files_at_once; ++i)
      free.push_back(std::make_unique_for_overwrite<unsigned char[]>(k_chunk));
  }
  std::unique_ptr<unsigned char[]> take() {
    auto b = std::move(free.back());
    free.pop_back();
    return b;
  }
};

unio::task<sum> sum_file(unio::loop& lp, unio::semaphore& limit, buffers& pool, const char* path) {
  auto held = co_await limit.acquire();
  auto buf = pool.take();
  sum s;
  auto fd = co_await lp.async_open(AT_FDCWD, path, {.flags = O_RDONLY});
  if (!fd) {
    pool.free.push_back(std::move(buf));
    co_return sum{0, 0, fd.error().message()};
  }
  for (;;) {
    auto n = co_await lp.async_read(*fd, buf.get(), k_chunk, s.size);
    if (!n) {
      s.error = n.error().message();
      break;
    }
    if (*n == 0) break;
    const unsigned char* data = buf.get();
    const std::size_t len = *n;
    auto folded = co_await lp.async_work([crc = s.crc, data, len] { return crc_update(crc, data, len); });
    if (!folded) {
      s.error = folded.error().message();
      break;
    }
    s.crc = *folded;
    s.size += len;
  }
  (void)co_await lp.async_close(*fd);
  pool.free.push_back(std::move(buf));
  if (s.error.empty()) s.crc = crc_finish(s.crc, s.size);
  co_return s;
}

unio::task<int> sum_all(unio::loop& lp, const std::vector<const char*>& paths) {
  unio::semaphore limit(lp, k_files_at_once);
  buffers pool;
  std::vector<unio::task<sum>> jobs;
  jobs.reserve(paths.size());
  for (const char* p : paths) jobs.push_back(sum_file(lp, limit, pool, p));
  std::vector<sum> sums = co_await unio::when_all(std::move(jobs));
  int status = 0;
  for (std::size_t i = 0; i < sums.size(); ++i) {
    if (!sums[i].error.empty()) {
      std::fprintf(stderr, "unio-sum: %s: %s\n", paths[i], sums[i].error.c_str());
      status = 1;
      continue;
    }
    std::printf("%u %llu %s\n", sums[i].crc, static_cast<unsigned long long>(sums[i].size), paths[i]);
  }
  co_return status;
}

}  // namespace

int main(int argc, char** argv) {
  unio::loop_options opts;
  std::vector<const char*> paths;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--backend") == 0 && i + 1 < argc) opts.backend = argv[++i];
    else paths.push_back(argv[i]);
  }
  if (paths.empty()) {
    std::fprintf(stderr, "usage: unio-sum [--backend B] FILE...\n");
    return 2;
  }
  try {
    unio::loop lp(opts);
    return unio::sync_wait(lp, sum_all(lp, paths));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unio-sum: %s\n", e.what());
    return 2;
  }
}
