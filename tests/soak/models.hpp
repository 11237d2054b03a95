// The models the soak and the op-sequence fuzzer check results against: a file's expected bytes
// with the parts of it that ops in flight hold, and the byte pattern of a socket stream.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace unio::soak {

// One file as the ops that completed left it. Ops in flight hold slots (lease) so that no two of
// them touch the same bytes, and the result of each is exact: a read returns exactly
// expect(off, len) unless a fault window allowed it to be short.
//
// The size rule: the size changes only under an op holding the last slot (a write past the end
// holds every slot from its first to the last; ftruncate holds them all), and an op whose range
// reaches the size or beyond holds the same tail, so no op in flight sees the size move.
class file_model {
 public:
  static constexpr std::uint64_t k_slot = 4096;
  static constexpr unsigned k_slots = 16;
  static constexpr std::uint64_t k_span = k_slot * k_slots;  // offsets and sizes stay below

  // Slots [first, last] of one file, or none.
  struct lease {
    int first = -1;
    int last = -1;
    bool held() const noexcept { return first >= 0; }
  };

  std::uint64_t size() const noexcept { return bytes_.size(); }
  // What a read of [off, off+len) returns: the bytes below the size (a hole reads as zeros).
  std::string expect(std::uint64_t off, std::size_t len) const;
  void write(std::uint64_t off, const char* data, std::size_t n);
  void truncate(std::uint64_t len);
  const std::string& bytes() const noexcept { return bytes_; }

  // The slots an op on [off, off+len) must hold (the tail when it reaches the size); whole:
  // every slot; size_only: the last slot (an op that reads the size).
  lease slots_for(std::uint64_t off, std::uint64_t len) const noexcept;
  static lease whole() noexcept { return {0, k_slots - 1}; }
  static lease size_only() noexcept { return {k_slots - 1, k_slots - 1}; }
  bool free(const lease& l) const noexcept;
  void take(const lease& l) noexcept;
  void give_back(lease& l) noexcept;
  bool any_held() const noexcept;

 private:
  std::string bytes_;
  std::array<bool, k_slots> held_{};
};

// One direction of a connection. Byte p of stream `key` is byte p % 8 of word(key, p / 8), so
// the receiver checks each byte it gets where it belongs in the stream, without a copy of what was
// sent: a lost, doubled or reordered byte shows as a mismatch.
struct stream_model {
  std::uint64_t key = 0;
  std::uint64_t sent = 0;      // bytes the completed sends took
  std::uint64_t received = 0;  // bytes the completed recvs gave

  static std::uint64_t word(std::uint64_t key, std::uint64_t index) noexcept;
  // Fills out[0, n) with the bytes from position `sent` on.
  void fill(char* out, std::size_t n) const noexcept;
  // "" when got[0, n) are the bytes from position `received` on, else where they differ.
  std::string check(const char* got, std::size_t n) const;
};

// splitmix64: a small, good 64-bit mix for patterns and seeds.
std::uint64_t mix64(std::uint64_t x) noexcept;

// Where two byte strings first differ, for messages.
std::string first_difference(const char* got, const char* want, std::size_t n);

}  // namespace unio::soak
