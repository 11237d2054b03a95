// unio micro-benchmarks: the cost of one operation's round trip through a loop, per backend.
//
//   BM_nop/<backend>/<depth>         nop ops, `depth` kept in flight, resubmitted from handlers
//   BM_pread_cached/<backend>/<depth> 4 KiB reads at random offsets of a 64 MiB file in /tmp
//                                     that is read once before (page-cache hits)
//
// items_per_second is completed ops per second. Backends: every backend built in, by registry
// index (the label names it); one that is unavailable here is skipped with its reason. Compare
// BM_nop/io_uring/32 with micro.c's "io_uring NOP, batch 32" (raw liburing) run right after.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <unio/unio.hpp>

namespace {

constexpr std::size_t k_file_size = 64u << 20;
constexpr std::size_t k_bs = 4096;

// The registry's backends, in its order.
const std::vector<unio::backend_info>& backends() {
  static const std::vector<unio::backend_info> all = unio::probe_backends();
  return all;
}

// The 64 MiB data file, created on first use and removed at exit.
class data_file {
 public:
  static const data_file& get() {
    static data_file f;
    return f;
  }
  int fd() const { return fd_; }
  ~data_file() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }

 private:
  data_file() {
    char name[] = "/tmp/unio_microbench.XXXXXX";
    fd_ = ::mkstemp(name);
    if (fd_ < 0) std::abort();
    path_ = name;
    std::vector<std::uint64_t> chunk(1 << 17);
    std::uint64_t x = 88172645463325252ULL;
    for (std::size_t off = 0; off < k_file_size; off += chunk.size() * 8) {
      for (auto& w : chunk) w = (x ^= x << 13, x ^= x >> 7, x ^= x << 17);
      if (::pwrite(fd_, chunk.data(), chunk.size() * 8, static_cast<off_t>(off)) <= 0) std::abort();
    }
    std::vector<char> buf(1 << 20);  // warm the page cache
    for (std::size_t off = 0; off < k_file_size; off += buf.size())
      if (::pread(fd_, buf.data(), buf.size(), static_cast<off_t>(off)) <= 0) std::abort();
  }
  int fd_ = -1;
  std::string path_;
};

// `depth` ops in flight on one loop; each handler counts and resubmits until told to stop.
struct pipeline {
  struct slot {
    unio::op op;
    pipeline* p = nullptr;
    char* buf = nullptr;
  };
  unio::loop lp;
  std::unique_ptr<slot[]> slots;
  unio::aligned_buffer bufs;
  std::uint64_t done = 0, rng = 0x9E3779B97F4A7C15ULL;
  bool reads = false, stopping = false;
  int fd = -1;

  pipeline(const char* backend, int depth, bool do_reads)
      : lp(unio::loop_options{.backend = backend}), slots(std::make_unique<slot[]>(depth)),
        bufs(k_bs * static_cast<std::size_t>(depth)), reads(do_reads) {
    if (reads) fd = data_file::get().fd();
    for (int i = 0; i < depth; ++i) {
      slots[i].p = this;
      slots[i].buf = reinterpret_cast<char*>(bufs.data()) + k_bs * static_cast<std::size_t>(i);
    }
    for (int i = 0; i < depth; ++i) submit(slots[i]);
  }

  void submit(slot& s) {
    auto h = [ps = &s](unio::op&) { ps->p->complete(*ps); };
    if (!reads) return lp.nop(s.op, h);
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    lp.read(s.op, fd, s.buf, k_bs, (rng % (k_file_size / k_bs)) * k_bs, h);
  }
  void complete(slot& s) {
    ++done;
    if (!stopping) submit(s);
  }
  // Runs the loop until `n` more ops have completed.
  void run_for(std::uint64_t n) {
    std::uint64_t target = done + n;
    while (done < target) lp.run_once();
  }
  ~pipeline() {
    stopping = true;
    lp.run();
  }
};

void run_pipeline(benchmark::State& state, bool reads) {
  const unio::backend_info& info = backends().at(static_cast<std::size_t>(state.range(0)));
  const char* backend = info.name.c_str();
  auto depth = static_cast<int>(state.range(1));
  state.SetLabel(backend);
  if (!info.available) return state.SkipWithError(("unavailable: " + info.reason).c_str());
  pipeline p(backend, depth, reads);
  std::uint64_t start = p.done;
  for (auto _ : state) p.run_for(static_cast<std::uint64_t>(depth));
  state.SetItemsProcessed(static_cast<std::int64_t>(p.done - start));
}

void BM_nop(benchmark::State& state) { run_pipeline(state, false); }
void BM_pread_cached(benchmark::State& state) { run_pipeline(state, true); }

void args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"backend", "depth"});
  for (int backend = 0; backend < static_cast<int>(backends().size()); ++backend)
    for (int depth : {1, 32, 128}) b->Args({backend, depth});
  b->UseRealTime();
}

}  // namespace

BENCHMARK(BM_nop)->Apply(args);
BENCHMARK(BM_pread_cached)->Apply(args);

BENCHMARK_MAIN();
