// cold_read_router: which buffered file reads the io_uring backend tries on the loop's thread and
// which it sends to its cold reader (io_uring_cold_reader.hpp), decided per fd from what its
// reads did.
//
// Why. io_uring's first attempt at a buffered read runs inside the io_uring_enter that submits
// it, on the loop's thread, with IOCB_NOWAIT. On a page-cache miss that attempt does not simply
// answer "would block": the kernel first starts readahead for the missing pages (allocates the
// folios, builds and submits the bio, notifies the device) and only then leaves the read to
// wait asynchronously. On a cold file that work is most of the loop thread's time (perf: 92% of
// its samples in io_submit_sqes -> filemap_read during cold 4 KiB random reads) and it delays
// everything else the loop serves. The cold reader makes such reads on a thread of its own. But
// a read sent there pays a hand-off to another thread even when its pages are cached, so only
// the reads of files that miss should go.
//
// How an fd's reads are routed:
//  - warm (every fd starts so): reads go inline and each one teaches the router. A read whose
//    completion was already posted when the io_uring_enter that submitted it returned, from an
//    enter that did not wait, was served from the page cache (a hit); any other was a miss. When
//    k_turn of an fd's last k_window reads missed, the fd turns cold: a quarter, because every
//    miss of a warm fd runs its readahead on the loop's thread (with 12 of 16, a file half in
//    the cache stayed warm for good and the loop's 1 ms timer was 0.9 ms late at p99).
//  - cold: reads go to the cold reader, except one in k_sample, a sample: the backend asks the
//    kernel whether its pages are cached (cachestat(2), Linux 6.5, which starts no readahead; about
//    1.2 us on the VM measured, so it is not asked for every read) and makes it inline if they
//    are; where cachestat cannot answer (an older kernel, a file system that refuses it) the
//    sample goes inline and teaches the router as a warm read does. When k_sample_turn of the
//    last k_sample_window samples were cached, the fd turns warm again. The bar is high on
//    purpose: a miss reads a whole folio (large folios make that 16 KiB and more), so a cold file
//    under random reads soon has a share of its pages cached, and with 3 of 4 (or 7 of 8) the fd
//    flapped between the modes 70 (150) times a second, paying inline misses each time.
// A wrong guess costs time, never correctness: a read routed inline that misses is io_uring's
// own behaviour (its readahead runs on the loop's thread); a cached read sent to the cold reader
// is a hand-off. fd numbers are reused: the backend forgets an fd when the loop closes it or
// opens a new one with its number (the fd seam).
#pragma once

#include <cstdint>
#include <vector>

namespace unio::detail::uring {

enum class read_route : std::uint8_t {
  inline_learn,  // inline; report its outcome with learned()
  inline_plain,  // inline (cachestat said cached); nothing to report
  async,         // to the cold reader
};

// Whether the pages of a read are in the page cache, as far as the kernel could tell.
enum class cache_answer : std::uint8_t { cached, not_cached, unknown };

class cold_read_router {
 public:
  static constexpr unsigned k_window = 16;
  static constexpr unsigned k_turn = 4;
  static constexpr unsigned k_sample = 16;
  static constexpr unsigned k_sample_window = 16;
  static constexpr unsigned k_sample_turn = 15;
  // fds at or above this number are not tracked: their reads always go inline.
  static constexpr int k_max_fd = 1 << 20;

  bool cold(int fd) const noexcept { return tracked(fd) && static_cast<std::size_t>(fd) < fds_.size() && fds_[fd].cold; }

  // The route of the next read on `fd`. `answer()` gives the cache_answer for the read's pages;
  // it is called only for a cold fd's samples (it costs a system call).
  template <class Answer>
  read_route pick(int fd, Answer answer) {
    if (!tracked(fd)) return read_route::inline_plain;
    fd_state& s = at(fd);
    if (!s.cold) return read_route::inline_learn;
    if (++s.skip % k_sample != 0) return read_route::async;
    const cache_answer a = answer();
    if (a == cache_answer::unknown) return read_route::inline_learn;
    const bool cached = a == cache_answer::cached;
    count(s, cached, k_sample_window, k_sample_turn);
    return cached ? read_route::inline_plain : read_route::async;
  }

  // The outcome of an inline_learn read on `fd`: hit = served from the page cache.
  void learned(int fd, bool hit) noexcept {
    if (!tracked(fd) || static_cast<std::size_t>(fd) >= fds_.size()) return;
    fd_state& s = fds_[fd];
    if (s.cold) count(s, hit, k_sample_window, k_sample_turn);
    else count(s, !hit, k_window, k_turn);
  }

  // Marks `fd` cold at once, as if its reads had missed (tests).
  void make_cold(int fd) {
    if (tracked(fd)) at(fd) = fd_state{true, 0, 0, 0};
  }

  void forget(int fd) noexcept {
    if (tracked(fd) && static_cast<std::size_t>(fd) < fds_.size()) fds_[fd] = fd_state{};
  }

 private:
  struct fd_state {
    bool cold = false;
    std::uint8_t seen = 0;   // observations in the current window
    std::uint8_t votes = 0;  // of them, those that argue for changing mode
    std::uint8_t skip = 0;   // cold: reads since the last sample
  };

  static bool tracked(int fd) noexcept { return fd >= 0 && fd < k_max_fd; }

  fd_state& at(int fd) {
    if (static_cast<std::size_t>(fd) >= fds_.size()) fds_.resize(static_cast<std::size_t>(fd) + 64);
    return fds_[static_cast<std::size_t>(fd)];
  }

  // One observation; `change` argues for leaving the current mode. At the end of a window of
  // `window` observations the mode flips when at least `turn` of them argued for it.
  static void count(fd_state& s, bool change, unsigned window, unsigned turn) noexcept {
    ++s.seen;
    s.votes += change ? 1 : 0;
    if (s.seen < window) return;
    if (s.votes >= turn) s.cold = !s.cold;
    s.seen = s.votes = 0;
  }

  std::vector<fd_state> fds_;
};

}  // namespace unio::detail::uring
