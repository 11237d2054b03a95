#include "models.hpp"

#include <algorithm>
#include <cstdio>

namespace unio::soak {

std::string file_model::expect(std::uint64_t off, std::size_t len) const {
  if (off >= bytes_.size()) return {};
  return bytes_.substr(off, std::min<std::uint64_t>(len, bytes_.size() - off));
}

void file_model::write(std::uint64_t off, const char* data, std::size_t n) {
  if (n == 0) return;
  if (off + n > bytes_.size()) bytes_.resize(off + n, '\0');
  bytes_.replace(off, n, data, n);
}

void file_model::truncate(std::uint64_t len) { bytes_.resize(len, '\0'); }

file_model::lease file_model::slots_for(std::uint64_t off, std::uint64_t len) const noexcept {
  std::uint64_t end = std::max<std::uint64_t>(off + len, off + 1);
  lease l{static_cast<int>(off / k_slot), static_cast<int>((end - 1) / k_slot)};
  if (off + len > bytes_.size()) l.last = k_slots - 1;
  return l;
}

bool file_model::free(const lease& l) const noexcept {
  for (int i = l.first; i <= l.last; ++i)
    if (held_[i]) return false;
  return true;
}

void file_model::take(const lease& l) noexcept {
  for (int i = l.first; i <= l.last; ++i) held_[i] = true;
}

void file_model::give_back(lease& l) noexcept {
  for (int i = l.first; i <= l.last; ++i) held_[i] = false;
  l = {};
}

bool file_model::any_held() const noexcept {
  return std::any_of(held_.begin(), held_.end(), [](bool b) { return b; });
}

std::uint64_t mix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The stream's bytes come in 8-byte words, one mix64 each.
std::uint64_t stream_model::word(std::uint64_t key, std::uint64_t index) noexcept {
  return mix64(key ^ index * 0x100000001b3ull);
}

void stream_model::fill(char* out, std::size_t n) const noexcept {
  for (std::size_t i = 0; i < n;) {
    std::uint64_t pos = sent + i, w = word(key, pos / 8);
    for (std::uint64_t b = pos % 8; b < 8 && i < n; ++b, ++i) out[i] = static_cast<char>(w >> (b * 8));
  }
}

std::string stream_model::check(const char* got, std::size_t n) const {
  for (std::size_t i = 0; i < n;) {
    std::uint64_t pos = received + i, w = word(key, pos / 8);
    for (std::uint64_t b = pos % 8; b < 8 && i < n; ++b, ++i) {
      auto want = static_cast<char>(w >> (b * 8));
      if (got[i] == want) continue;
      char msg[128];
      std::snprintf(msg, sizeof msg, "stream byte %llu is 0x%02x, the sender sent 0x%02x",
                    static_cast<unsigned long long>(received + i),
                    static_cast<unsigned char>(got[i]), static_cast<unsigned char>(want));
      return msg;
    }
  }
  return {};
}

std::string first_difference(const char* got, const char* want, std::size_t n) {
  std::size_t i = 0;
  while (i < n && got[i] == want[i]) ++i;
  if (i == n) return {};
  char msg[96];
  std::snprintf(msg, sizeof msg, "byte %zu is 0x%02x, the model says 0x%02x", i, static_cast<unsigned char>(got[i]),
                static_cast<unsigned char>(want[i]));
  return msg;
}

}  // namespace unio::soak
