// Description: seeded random file-op sequences on every backend, checked byte for byte against an in-memory model (UNIO_DIFF_SEED=n replays one seed).
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "common.hpp"

namespace {

using unio::test::conformance_test;

constexpr std::uint64_t k_span = 256 * 1024;  // offsets fall in [0, k_span)

// The model: the file's bytes. A hole reads as zeros, which is what std::string::resize adds.
struct model {
  std::string bytes;
  void write(std::uint64_t off, const std::string& data) {
    if (data.empty()) return;
    if (off + data.size() > bytes.size()) bytes.resize(off + data.size(), '\0');
    bytes.replace(off, data.size(), data);
  }
  std::string read(std::uint64_t off, std::size_t len) const {
    if (off >= bytes.size()) return {};
    return bytes.substr(off, std::min<std::size_t>(len, bytes.size() - off));
  }
};

// Where two strings first differ, for failure messages.
std::string first_difference(const std::string& got, const std::string& want) {
  std::size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  std::ostringstream s;
  s << "sizes " << got.size() << " vs model " << want.size() << ", first difference at byte " << i;
  return s.str();
}

class runner {
 public:
  runner(unio::loop& lp, int fd, std::uint64_t seed) : lp_(lp), fd_(fd), rng_(seed) {}

  // Runs `n` random ops; returns "" or a description of the first divergence.
  std::string run(int n) {
    for (int i = 0; i < n; ++i) {
      step_ = i;
      std::string err = one();
      if (!err.empty()) return "op " + std::to_string(i) + " (" + what_ + "): " + err;
    }
    what_ = "final verify";
    return verify();
  }

 private:
  std::uint64_t pick(std::uint64_t lo, std::uint64_t hi) {  // inclusive
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng_);
  }
  std::uint64_t offset() {
    switch (pick(0, 3)) {
      case 0: return pick(0, 4096);
      case 1: return m_.bytes.empty() ? 0 : pick(0, m_.bytes.size());  // near or at the end
      default: return pick(0, k_span - 1);
    }
  }
  std::size_t length() {
    switch (pick(0, 3)) {
      case 0: return pick(0, 16);
      case 1: return pick(1, 4096);
      default: return pick(1, 65536);
    }
  }
  std::string random_bytes(std::size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(pick(0, 255));
    return s;
  }

  // Runs one op to completion; callback or awaitable form at random.
  template <class Cb, class Aw>
  std::int64_t exec(Cb&& cb, Aw&& aw) {
    if (pick(0, 1) == 0) {
      unio::op o;
      int calls = 0;
      std::int64_t res = 0;
      cb(o, [&](unio::op& x) {
        ++calls;
        res = x.raw_result();
      });
      lp_.run();
      if (calls != 1) return -100000 - calls;
      return res;
    }
    return unio::sync_wait(lp_, [](Aw& aw) -> unio::task<std::int64_t> {
      auto r = co_await aw();
      if (!r) co_return -static_cast<std::int64_t>(r.error().value());
      if constexpr (std::is_void_v<std::remove_reference_t<decltype(r.value())>>) co_return 0;
      else co_return static_cast<std::int64_t>(r.value());
    }(aw));
  }

  std::string one() {
    switch (pick(0, 19)) {
      case 0: case 1: case 2: case 3: return do_write();
      case 4: case 5: case 6: return do_read();
      case 7: case 8: return do_writev();
      case 9: case 10: return do_readv();
      case 11: return do_ftruncate();
      case 12: case 13: return do_fallocate();
      case 14: return pick(0, 2) == 0 ? do_sync() : do_read();  // fsync is slow on a real disk
      case 15: case 16: return do_batch(true);
      case 17: case 18: return do_batch(false);
      default: return verify();
    }
  }

  std::string do_write() {
    auto off = offset();
    auto data = random_bytes(length());
    what_ = "write " + std::to_string(data.size()) + "@" + std::to_string(off);
    auto r = exec([&](unio::op& o, auto h) { lp_.write(o, fd_, data.data(), data.size(), off, h); },
                  [&] { return lp_.async_write(fd_, data.data(), data.size(), off); });
    if (r < 0 || r > static_cast<std::int64_t>(data.size())) return "result " + std::to_string(r);
    m_.write(off, data.substr(0, static_cast<std::size_t>(r)));  // a short write is legal
    return {};
  }

  std::string do_read() {
    auto off = offset();
    auto len = length();
    what_ = "read " + std::to_string(len) + "@" + std::to_string(off);
    std::string buf(len, '\x5a');
    auto r = exec([&](unio::op& o, auto h) { lp_.read(o, fd_, buf.data(), len, off, h); },
                  [&] { return lp_.async_read(fd_, buf.data(), len, off); });
    return check_read(r, buf, m_.read(off, len));
  }

  std::string check_read(std::int64_t r, const std::string& buf, const std::string& want) {
    if (r != static_cast<std::int64_t>(want.size()))
      return "returned " + std::to_string(r) + ", model says " + std::to_string(want.size());
    std::string got = buf.substr(0, static_cast<std::size_t>(r));
    if (got != want) return "data differs: " + first_difference(got, want);
    return {};
  }

  // 1 to 4 iovecs (some may be empty) over one contiguous range.
  std::vector<std::size_t> split(std::size_t total) {
    std::size_t parts = pick(1, 4);
    std::vector<std::size_t> cuts{0, total};
    for (std::size_t i = 1; i < parts; ++i) cuts.push_back(pick(0, total));
    std::sort(cuts.begin(), cuts.end());
    std::vector<std::size_t> lens;
    for (std::size_t i = 1; i < cuts.size(); ++i) lens.push_back(cuts[i] - cuts[i - 1]);
    return lens;
  }

  std::string do_writev() {
    auto off = offset();
    auto data = random_bytes(length());
    auto lens = split(data.size());
    std::vector<iovec> iov;
    std::size_t at = 0;
    for (auto l : lens) {
      iov.push_back({data.data() + at, l});
      at += l;
    }
    what_ = "writev " + std::to_string(data.size()) + "@" + std::to_string(off) + " in " + std::to_string(iov.size());
    const int cnt = static_cast<int>(iov.size());
    auto r = exec([&](unio::op& o, auto h) { lp_.writev(o, fd_, iov.data(), cnt, off, h); },
                  [&] { return lp_.async_writev(fd_, iov.data(), cnt, off); });
    if (r < 0 || r > static_cast<std::int64_t>(data.size())) return "result " + std::to_string(r);
    m_.write(off, data.substr(0, static_cast<std::size_t>(r)));
    return {};
  }

  std::string do_readv() {
    auto off = offset();
    auto len = length();
    std::string buf(len, '\x5a');
    auto lens = split(len);
    std::vector<iovec> iov;
    std::size_t at = 0;
    for (auto l : lens) {
      iov.push_back({buf.data() + at, l});
      at += l;
    }
    what_ = "readv " + std::to_string(len) + "@" + std::to_string(off) + " in " + std::to_string(iov.size());
    const int cnt = static_cast<int>(iov.size());
    auto r = exec([&](unio::op& o, auto h) { lp_.readv(o, fd_, iov.data(), cnt, off, h); },
                  [&] { return lp_.async_readv(fd_, iov.data(), cnt, off); });
    return check_read(r, buf, m_.read(off, len));
  }

  std::string do_ftruncate() {
    std::uint64_t len = pick(0, 2) == 0 ? pick(0, 4096) : pick(0, k_span);
    what_ = "ftruncate " + std::to_string(len);
    auto r = exec([&](unio::op& o, auto h) { lp_.ftruncate(o, fd_, len, h); },
                  [&] { return lp_.async_ftruncate(fd_, len); });
    if (r != 0) return "result " + std::to_string(r);
    m_.bytes.resize(len, '\0');
    return {};
  }

  std::string do_fallocate() {
    static const int modes[] = {0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE};
    const int mode = modes[pick(0, 4)];
    auto off = offset();
    std::uint64_t len = std::max<std::size_t>(1, length());
    what_ = "fallocate mode " + std::to_string(mode) + " " + std::to_string(len) + "@" + std::to_string(off);
    auto r = exec([&](unio::op& o, auto h) { lp_.fallocate(o, fd_, mode, off, len, h); },
                  [&] { return lp_.async_fallocate(fd_, mode, off, len); });
    if (r == -EOPNOTSUPP) return {};  // the file system lacks this mode: no change expected
    if (r != 0) return "result " + std::to_string(r);
    const std::uint64_t end = off + len;
    if ((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) != 0 && off < m_.bytes.size())
      std::fill(m_.bytes.begin() + static_cast<std::ptrdiff_t>(off),
                m_.bytes.begin() + static_cast<std::ptrdiff_t>(std::min<std::uint64_t>(end, m_.bytes.size())), '\0');
    if ((mode & FALLOC_FL_KEEP_SIZE) == 0 && end > m_.bytes.size()) m_.bytes.resize(end, '\0');
    return {};
  }

  std::string do_sync() {
    bool data_only = pick(0, 1) == 1;
    what_ = data_only ? "fdatasync" : "fsync";
    auto r = data_only ? exec([&](unio::op& o, auto h) { lp_.fdatasync(o, fd_, h); },
                              [&] { return lp_.async_fdatasync(fd_); })
                       : exec([&](unio::op& o, auto h) { lp_.fsync(o, fd_, h); }, [&] { return lp_.async_fsync(fd_); });
    return r == 0 ? std::string() : "result " + std::to_string(r);
  }

  // Several ops in flight at once (they may run in parallel on a pool): writes to disjoint
  // ranges, plus (reads=true) reads of existing bytes that no write of the batch touches.
  std::string do_batch(bool with_reads) {
    struct item {
      bool is_write;
      std::uint64_t off;
      std::string data;  // write: the bytes; read: the buffer
      std::int64_t res = 1;
      int calls = 0;
    };
    std::vector<item> items;
    auto overlaps = [&](std::uint64_t off, std::size_t len) {
      for (auto& it : items)
        if (off < it.off + it.data.size() && it.off < off + len) return true;
      return false;
    };
    const std::size_t nw = pick(1, 8);
    for (std::size_t i = 0; i < nw; ++i) {
      auto off = offset();
      auto len = std::max<std::size_t>(1, length() / 4);
      if (!overlaps(off, len)) items.push_back({true, off, random_bytes(len)});
    }
    const std::size_t size_before = m_.bytes.size();
    if (with_reads && size_before > 0) {
      const std::size_t nr = pick(1, 8);
      for (std::size_t i = 0; i < nr; ++i) {
        auto off = pick(0, size_before - 1);
        auto len = std::min<std::size_t>(std::max<std::size_t>(1, length() / 4), size_before - off);
        if (!overlaps(off, len)) items.push_back({false, off, std::string(len, '\x5a')});
      }
    }
    what_ = "batch of " + std::to_string(items.size());
    std::vector<unio::op> ops(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
      auto h = [&items, i](unio::op& o) {
        ++items[i].calls;
        items[i].res = o.raw_result();
      };
      auto& it = items[i];
      if (it.is_write) lp_.write(ops[i], fd_, it.data.data(), it.data.size(), it.off, h);
      else lp_.read(ops[i], fd_, it.data.data(), it.data.size(), it.off, h);
    }
    lp_.run();
    // Reads first: they saw the bytes before the batch (no write of the batch overlaps them).
    for (auto& it : items) {
      if (it.calls != 1) return "handler ran " + std::to_string(it.calls) + " times";
      if (it.is_write) continue;
      std::string err = check_read(it.res, it.data, m_.read(it.off, it.data.size()));
      if (!err.empty()) return "batched read @" + std::to_string(it.off) + ": " + err;
    }
    for (auto& it : items) {
      if (!it.is_write) continue;
      if (it.res < 0 || it.res > static_cast<std::int64_t>(it.data.size())) return "batched write: " + std::to_string(it.res);
      m_.write(it.off, it.data.substr(0, static_cast<std::size_t>(it.res)));
    }
    return {};
  }

  std::string verify() {
    what_ = "verify";
    struct statx sx{};
    auto r = exec([&](unio::op& o, auto h) { lp_.stat(o, fd_, "", AT_EMPTY_PATH, STATX_SIZE, &sx, h); },
                  [&] { return lp_.async_stat(fd_, "", AT_EMPTY_PATH, STATX_SIZE, &sx); });
    if (r != 0) return "stat: " + std::to_string(r);
    if (sx.stx_size != m_.bytes.size())
      return "size " + std::to_string(sx.stx_size) + ", model " + std::to_string(m_.bytes.size());
    std::string all(m_.bytes.size(), '\x5a');
    if (!all.empty()) {
      auto got = unio::sync_wait(lp_, unio::read_exact(lp_, fd_, all.data(), all.size(), 0));
      if (!got) return "read_exact: " + got.error().message();
    }
    if (all != m_.bytes) return "contents differ: " + first_difference(all, m_.bytes);
    return {};
  }

 public:
  const std::string& contents() const { return m_.bytes; }

 private:
  unio::loop& lp_;
  int fd_;
  std::mt19937_64 rng_;
  model m_;
  int step_ = 0;
  std::string what_;
};

class differential : public conformance_test {};

TEST_P(differential, random_file_ops_match_the_model) {
  int ops = 300;
  std::vector<std::uint64_t> seeds{1, 2, 3, 4, 5, 6};
  if (const char* s = std::getenv("UNIO_DIFF_SEED")) seeds = {std::strtoull(s, nullptr, 0)};
  if (const char* s = std::getenv("UNIO_DIFF_OPS")) ops = std::atoi(s);
  for (std::uint64_t seed : seeds) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " (replay: UNIO_DIFF_SEED=" + std::to_string(seed) +
                 " --gtest_filter='*differential*/" + GetParam() + "')");
    unio::loop_options opt = options();
    opt.pool_size = 1 + static_cast<unsigned>(seed % 4);
    opt.inline_nowait = (seed % 2) == 0;
    unio::loop lp(opt);
    const std::string name = "diff-" + std::to_string(seed);
    int fd = raw_open(name, O_RDWR | O_CREAT | O_TRUNC);
    ASSERT_GE(fd, 0);
    runner r(lp, fd, seed);
    std::string err = r.run(ops);
    EXPECT_EQ(err, "") << "seed " << seed;
    ::close(fd);
    // An independent check with plain syscalls.
    if (err.empty()) {
      std::string on_disk = get_file(name);
      EXPECT_TRUE(on_disk == r.contents()) << "seed " << seed << ": " << first_difference(on_disk, r.contents());
    }
  }
}

INSTANTIATE_ALL_BACKENDS(differential);

}  // namespace
