// unio-embed [--backend B] [--size MIB] [--runs N] FILE: drives a unio loop from a host event
// loop of plain poll(2), as a GUI toolkit, asyncio or libuv would, through loop::backend_fd()
// and loop::backend_timeout(). No tick, no busy loop.
//
// It reads FILE (created with SIZE MiB, default 20, when it does not exist) in 64 KiB chunks
// with 4 reads in flight, once with lp.run() and once from the host loop, alternating, N times
// (default 3), and a 50 ms unio timer is armed during each host run. It prints the median of each
// way, their ratio, the host's wake-ups (and those after which poll() ran no handler: "empty"),
// and how late the timer fired. Exit status 1 when the data read differs from the file, the
// timer did not fire, or any wake-up was empty; 2 for bad usage or a backend unavailable here.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "unio/unio.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::size_t k_chunk = 64 * 1024;
constexpr int k_depth = 4;

// Reads the whole file in chunks, k_depth at a time; `handled` counts completions.
struct reader {
  reader(unio::loop& l, int f, std::vector<char>& into) : lp(l), fd(f), size(into.size()), data(into) {
    std::fill(data.begin(), data.end(), '\0');
  }
  unio::loop& lp;
  int fd;
  std::size_t size;
  std::vector<char>& data;
  std::uint64_t next = 0;
  int in_flight = 0;
  int handled = 0;
  bool failed = false;
  clock_type::time_point finished{};  // when the last read completed
  unio::op ops[k_depth];

  void start_all() {
    for (auto& o : ops) start(o);
  }
  void start(unio::op& o) {
    if (next >= size) return;
    std::uint64_t off = next;
    std::size_t len = std::min<std::size_t>(k_chunk, size - off);
    next += len;
    ++in_flight;
    lp.read(o, fd, data.data() + off, len, off, [this, len](unio::op& x) {
      ++handled;
      --in_flight;
      if (x.raw_result() != static_cast<std::int64_t>(len)) failed = true;
      start(x);
      if (done()) finished = clock_type::now();
    });
  }
  bool done() const { return in_flight == 0 && next >= size; }
};

struct host_result {
  double seconds = 0;
  int wakes = 0;
  int empty_wakes = 0;
  double timer_late_ms = -1;  // -1: the timer did not fire
};

// The host loop: sleep in poll(2) on backend_fd for at most backend_timeout, then poll().
host_result run_hosted(unio::loop& lp, reader& r) {
  host_result h;
  unio::op timer;
  auto t0 = clock_type::now();
  lp.timeout(timer, std::chrono::milliseconds(50), [&](unio::op&) {
    ++r.handled;
    h.timer_late_ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count() - 50.0;
  });
  r.start_all();
  while (!r.done() || timer.busy()) {
    std::optional<std::chrono::nanoseconds> t = lp.backend_timeout();
    int before = r.handled;
    if (!t || t->count() > 0) {
      pollfd p{lp.backend_fd(), POLLIN, 0};
      // poll(2) counts milliseconds; a timer due in 0.3 ms must not be waited for as 0 (a spin)
      // nor as 1 ms late, so round up and let unio fire it when its time has come.
      int ms = t ? static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(*t).count()) : -1;
      int n = ::poll(&p, 1, ms);
      ++h.wakes;
      lp.poll();
      if (n == 1 && r.handled == before) ++h.empty_wakes;
    } else {
      lp.poll();
    }
  }
  h.seconds = std::chrono::duration<double>(r.finished - t0).count();
  return h;
}

double run_plain(unio::loop& lp, reader& r) {
  auto t0 = clock_type::now();
  r.start_all();
  lp.run();
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

bool make_file(const std::string& path, std::size_t size) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return true;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  std::vector<char> block(1 << 20);
  for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 131 + i / 977);
  for (std::size_t done = 0; done < size;) {
    std::size_t n = std::min(block.size(), size - done);
    if (::write(fd, block.data(), n) != static_cast<ssize_t>(n)) return ::close(fd), false;
    done += n;
  }
  return ::close(fd) == 0;
}

bool same_as_file(int fd, const std::vector<char>& got) {
  std::vector<char> want(got.size());
  return ::pread(fd, want.data(), want.size(), 0) == static_cast<ssize_t>(want.size()) && want == got;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int usage() {
  std::fprintf(stderr, "usage: unio-embed [--backend B] [--size MIB] [--runs N] FILE\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  unio::loop_options opts;
  std::size_t mib = 20;
  int runs = 3;
  std::string file;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--backend" && i + 1 < argc) opts.backend = argv[++i];
    else if (a == "--size" && i + 1 < argc) mib = std::strtoul(argv[++i], nullptr, 10);
    else if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (!a.empty() && a[0] != '-' && file.empty()) file = a;
    else return usage();
  }
  if (file.empty() || mib == 0 || runs <= 0) return usage();
  if (!make_file(file, mib << 20)) {
    std::fprintf(stderr, "unio-embed: %s: %s\n", file.c_str(), std::strerror(errno));
    return 2;
  }
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    std::fprintf(stderr, "unio-embed: %s: %s\n", file.c_str(), std::strerror(errno));
    return 2;
  }
  std::optional<unio::loop> lp;
  try {
    lp.emplace(opts);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unio-embed: %s\n", e.what());
    return 2;
  }
  auto size = static_cast<std::size_t>(st.st_size);
  std::vector<double> plain, hosted;
  std::vector<char> buf_a(size), buf_b(size);  // allocated once: the runs measure reads, not page faults
  int wakes = 0, empty = 0, bad = 0;
  double worst_late = 0;
  for (int i = 0; i < runs; ++i) {
    reader a(*lp, fd, buf_a);
    plain.push_back(run_plain(*lp, a));
    reader b(*lp, fd, buf_b);
    host_result h = run_hosted(*lp, b);
    hosted.push_back(h.seconds);
    if (std::getenv("EMBED_DEBUG")) std::fprintf(stderr, "run %d: plain %.2f ms hosted %.2f ms\n", i, plain.back() * 1e3, h.seconds * 1e3);
    wakes += h.wakes;
    empty += h.empty_wakes;
    worst_late = std::max(worst_late, h.timer_late_ms);
    if (a.failed || b.failed || !same_as_file(fd, a.data) || !same_as_file(fd, b.data) || h.timer_late_ms < 0) ++bad;
  }
  double p = median(plain), h = median(hosted);
  std::printf("backend %s: %zu MiB in %zu KiB reads, %d in flight, %d runs\n", std::string(lp->backend_name()).c_str(),
              size >> 20, k_chunk >> 10, k_depth, runs);
  std::printf("lp.run():      %.2f ms (median)\n", p * 1e3);
  std::printf("poll(2) host:  %.2f ms (median), %.2fx run(); %d wake-ups, %d empty; 50 ms timer late by %.3f ms at worst\n",
              h * 1e3, h / p, wakes, empty, worst_late);
  ::close(fd);
  if (bad > 0) std::fprintf(stderr, "unio-embed: %d runs read wrong data or missed the timer\n", bad);
  if (empty > 0) std::fprintf(stderr, "unio-embed: %d of %d wake-ups with nothing to do\n", empty, wakes);
  return bad > 0 || empty > 0 ? 1 : 0;
}
