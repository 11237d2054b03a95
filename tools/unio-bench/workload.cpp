#include "workload.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <cstring>
#include <ctime>
#include <latch>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <unio/unio.hpp>

#include "histogram.hpp"
#include "progress.hpp"
#include "testfile.hpp"

namespace unio_bench {

namespace {

using namespace std::chrono_literals;

std::uint64_t now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t xorshift(std::uint64_t& s) noexcept {
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return s * 2685821657736338717ULL;
}

struct worker;

// One in-flight I/O: preallocated with its buffer, resubmitted from its own handler.
struct slot {
  unio::op op;
  worker* w = nullptr;
  unsigned char* buf = nullptr;
  std::uint64_t offset = 0;
  std::uint64_t start_ns = 0;
  bool is_write = false;
};

struct worker {
  const run_options& o;
  const test_file& file;
  unio::loop* lp = nullptr;
  int fd = -1;
  int ref_fd = -1;  // --verify's reference reads: the same file without O_DIRECT (any alignment)
  std::unique_ptr<slot[]> slots;
  unio::aligned_buffer buffers;
  std::size_t stride = 0;  // bytes between slots' buffers
  unio::aligned_buffer scratch;  // --verify reference reads (aligned for O_DIRECT)
  histogram lat, stall;
  std::vector<backend_result::probe> probes;  // with --stall-log only
  unsigned index = 0;                          // this loop's number in the run
  std::uint64_t ops = 0, errors = 0, verify_errors = 0;
  std::atomic<std::uint64_t> shown_ops{0};  // ops, published each timer tick for the progress line
  std::string first_error;
  std::uint64_t rng, cursor = 0, blocks = 0;
  bool random = false, mixed = false, writes = false;  // --rw, decoded once (no string compares per op)
  std::uint64_t deadline_ns = 0;
  bool stopping = false;
  unio::op timer;
  std::uint64_t timer_due_ns = 0;
  std::uint64_t start_ns = 0, end_ns = 0;
  long long runq_ns = -1;  // this loop's thread: time runnable but not running during the run
  std::string loop_error;
  std::string resolved;

  worker(const run_options& opts, const test_file& f, unsigned index)
      : o(opts), file(f), index(index), rng(0x9E3779B97F4A7C15ULL * (index + 1)) {
    if (!o.stall_log.empty()) probes.reserve(static_cast<std::size_t>(o.runtime_s * 1000) + 16);
    blocks = f.size / o.bs - (o.misalign > 0 ? 1 : 0);  // a shifted last block would pass the end
    cursor = blocks / o.threads * index;
    random = o.random();
    mixed = o.rw == "randrw";
    writes = o.has_writes();
  }

  void setup_slots();
  void start();
  void submit(slot& s);
  void complete(slot& s);
  void check(slot& s);
  void verify(slot& s);
  void arm_timer();
  void on_timer();
  void note_error(const std::string& what);
};

// The loop's sleeps end on time, not up to 50 us late (the default timer slack lets the kernel
// coalesce wake-ups): the probe measures the loop, not that policy.
void exact_wakeups() noexcept { ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL); }

void worker::setup_slots() {
  // With --misalign each slot's buffer starts `misalign` bytes into a 4 KiB-aligned stride.
  stride = (static_cast<std::size_t>(o.bs) + o.misalign + 4095) / 4096 * 4096;
  buffers = unio::aligned_buffer(stride * o.iodepth);
  slots = std::make_unique<slot[]>(o.iodepth);
  std::mt19937_64 gen(rng);
  auto* words = reinterpret_cast<std::uint64_t*>(buffers.data());
  for (std::size_t i = 0; i < buffers.size() / 8; ++i) words[i] = gen();  // random write data
  for (unsigned i = 0; i < o.iodepth; ++i) {
    slots[i].w = this;
    slots[i].buf = reinterpret_cast<unsigned char*>(buffers.data()) + stride * i + o.misalign;
  }
  if (o.verify) scratch = unio::aligned_buffer(o.bs);
}

void worker::start() {
  start_ns = now_ns();
  arm_timer();
  for (unsigned i = 0; i < o.iodepth; ++i) submit(slots[i]);
}

void worker::submit(slot& s) {
  std::uint64_t block = random ? xorshift(rng) % blocks : cursor++ % blocks;
  s.offset = block * o.bs + o.misalign;
  s.is_write = mixed ? xorshift(rng) % 100 >= o.rwmixread : writes;
  if (s.is_write && o.verify) fill_pattern(s.buf, o.bs, s.offset);
  auto h = [p = &s](unio::op&) { p->w->complete(*p); };
  s.start_ns = now_ns();
  if (s.is_write) lp->write(s.op, fd, s.buf, o.bs, s.offset, h);
  else lp->read(s.op, fd, s.buf, o.bs, s.offset, h);
}

void worker::complete(slot& s) {
  std::uint64_t t = now_ns();
  lat.record(t - s.start_ns);
  ++ops;
  check(s);
  if (t >= deadline_ns) stopping = true;
  if (!stopping) submit(s);
}

void worker::check(slot& s) {
  if (!s.op.ok()) {
    note_error(fmt::format("{} at {}: {}", s.is_write ? "write" : "read", s.offset, s.op.error().message()));
  } else if (s.op.value() != o.bs) {
    note_error(fmt::format("short {} at {}: {} of {} bytes", s.is_write ? "write" : "read", s.offset,
                           s.op.value(), o.bs));
  } else if (o.verify) {
    verify(s);
  }
}

// Written data is read back; read data is compared with the pattern (files this tool wrote) or
// with a blocking pread of the same range (a file given with --file).
void worker::verify(slot& s) {
  auto* ref = reinterpret_cast<unsigned char*>(scratch.data());
  if (s.is_write || !file.patterned) {
    if (::pread(ref_fd, ref, o.bs, static_cast<off_t>(s.offset)) != static_cast<ssize_t>(o.bs)) {
      note_error(fmt::format("verify: reference pread at {} failed", s.offset));
      return;
    }
  } else {
    fill_pattern(ref, o.bs, s.offset);
  }
  if (std::memcmp(ref, s.buf, o.bs) == 0) return;
  if (verify_errors++ == 0 && first_error.empty())
    first_error = fmt::format("verify: data mismatch in {} at offset {}", s.is_write ? "write" : "read", s.offset);
}

void worker::note_error(const std::string& what) {
  if (errors++ == 0 && first_error.empty()) first_error = what;
}

// The stall probe: a timer due on a fixed 1 ms grid that starts with the run, re-armed after each
// firing for the next grid point still ahead. (Arming it 1 ms after each firing would put every
// deadline 1 ms after a turn ended: a loop that blocks for B per turn would show B - 1 ms, and a
// block shorter than 1 ms nothing at all. On the grid, deadlines fall at every phase of the loop's
// turns, as events from outside do.)
constexpr std::uint64_t k_probe_period = 1'000'000;

// The next point of the probe's grid (which starts at `start`) after now.
std::uint64_t next_grid_point(std::uint64_t start, std::uint64_t now) noexcept {
  return start + ((now - start) / k_probe_period + 1) * k_probe_period;
}

void worker::arm_timer() {
  std::uint64_t now = now_ns();
  timer_due_ns = next_grid_point(start_ns, now);
  lp->timeout(timer, std::chrono::nanoseconds(timer_due_ns - now), [this](unio::op&) { on_timer(); });
}

void worker::on_timer() {
  std::uint64_t t = now_ns();
  const std::uint64_t late = t > timer_due_ns ? t - timer_due_ns : 0;
  stall.record(late);
  if (!o.stall_log.empty()) probes.push_back({index, timer_due_ns, late});
  shown_ops.store(ops, std::memory_order_relaxed);
  if (t >= deadline_ns) stopping = true;
  if (!stopping) arm_timer();
}

// Start/stop choreography between the main thread and the workers: every loop is built before
// the CPU counters are read, and torn down only after they are read again.
struct phases {
  explicit phases(unsigned n) : ready(n + 1), go(n + 1), release(1) {}
  std::barrier<> ready;
  std::barrier<> go;
  std::mutex mu;
  std::condition_variable cv;
  unsigned done = 0;
  std::latch release;
};

// --sqpoll: long enough that a steady run never lets the poller sleep.
constexpr unsigned k_sqpoll_idle_ms = 100;

// --fixed-buffers: one registered buffer (all slots) and the file. A refusal (RLIMIT_MEMLOCK)
// is reported and the run goes on without.
void register_run(worker& w, unio::loop& lp) {
  iovec all{w.buffers.data(), w.buffers.size()};
  if (std::error_code ec = lp.register_buffers({&all, 1}))
    fmt::print(stderr, "unio-bench: --fixed-buffers: register_buffers: {} (running without)\n", ec.message());
  int fds[] = {w.fd};
  if (std::error_code ec = lp.register_files(fds))
    fmt::print(stderr, "unio-bench: --fixed-buffers: register_files: {} (running without)\n", ec.message());
}

// The io_uring-only flags do nothing on other backends: say so once per backend.
void note_io_uring_flags(const run_options& o, const std::string& backend) {
  if (!o.fixed_buffers && !o.sqpoll && !o.uring_inline_misses) return;
  std::string name = backend == "auto" ? unio::auto_backend() : backend;
  if (name == "io_uring") return;
  std::string flags = std::string(o.fixed_buffers ? " --fixed-buffers" : "") + (o.sqpoll ? " --sqpoll" : "") +
                      (o.uring_inline_misses ? " --uring-inline-misses" : "");
  fmt::print(stderr, "unio-bench: note:{} apply to io_uring only; no effect on {}\n", flags, name);
}

void worker_thread(worker& w, phases& ph, const std::string& backend) {
  std::unique_ptr<unio::loop> lp;
  try {
    exact_wakeups();
    unio::loop_options lo;
    lo.backend = backend;
    lo.pool_size = w.o.pool;
    lo.queue_depth = std::max(256u, w.o.iodepth + 1);
    if (w.o.inline_nowait) lo.inline_nowait = *w.o.inline_nowait;
    if (w.o.spin_us) lo.spin_us = *w.o.spin_us;
    if (w.o.pool_nice) lo.pool_nice = *w.o.pool_nice;
    if (w.o.pool_max) lo.pool_max_threads = *w.o.pool_max;
    lo.io_uring_route_cold_reads = !w.o.uring_inline_misses;
    lo.aio_buffered = w.o.aio_buffered;
    if (w.o.sqpoll) lo.io_uring_sqpoll_idle_ms = k_sqpoll_idle_ms;
    lp = std::make_unique<unio::loop>(lo);
    w.lp = lp.get();
    w.resolved = std::string(lp->backend_name());
    w.setup_slots();
    if (w.o.fixed_buffers) register_run(w, *lp);
  } catch (const std::exception& e) {
    w.loop_error = e.what();
  }
  ph.ready.arrive_and_wait();
  ph.go.arrive_and_wait();
  if (lp && w.loop_error.empty()) {
    const long long runq_before = thread_run_delay_ns();
    w.start();
    lp->run();
    w.end_ns = now_ns();
    const long long runq_after = thread_run_delay_ns();
    if (runq_before >= 0 && runq_after >= runq_before) w.runq_ns = runq_after - runq_before;
  }
  {
    std::lock_guard lk(ph.mu);
    ++ph.done;
  }
  ph.cv.notify_one();
  ph.release.wait();
}

int open_for(const run_options& o, const test_file& f) {
  int flags = (o.has_writes() ? O_RDWR : O_RDONLY) | O_CLOEXEC | (o.direct ? O_DIRECT : 0) |
              (o.nonblock ? O_NONBLOCK : 0);
  int fd = ::open(f.path.c_str(), flags);
  if (fd < 0) throw std::runtime_error(fmt::format("open {}: {}", f.path, std::strerror(errno)));
  return fd;
}

// Waits for every worker to finish, redrawing the progress line meanwhile. A loop that does not
// drain within a minute after the deadline is a unio bug, reported as such (the process exits:
// the hung threads cannot be joined).
void wait_done(phases& ph, const std::vector<std::unique_ptr<worker>>& ws, const run_options& o,
               const std::string& backend) {
  progress_line progress(backend, o.runtime_s);
  auto start = std::chrono::steady_clock::now();
  auto limit = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                           std::chrono::duration<double>(o.runtime_s) + 60s);
  std::unique_lock lk(ph.mu);
  auto all_done = [&] { return ph.done == ws.size(); };
  while (!all_done() && std::chrono::steady_clock::now() < limit) {
    std::uint64_t ops = 0;
    for (auto& w : ws) ops += w->shown_ops.load(std::memory_order_relaxed);
    progress.update(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), ops);
    ph.cv.wait_for(lk, progress.enabled() ? 250ms : 1s, all_done);
  }
  if (all_done()) return;
  fmt::print(stderr, "\nunio-bench: backend {} did not finish {} s after its deadline (loop hang, a unio bug)\n",
             backend, 60);
  remove_temp_file_now();
  std::_Exit(3);
}

void collect(backend_result& r, std::vector<std::unique_ptr<worker>>& ws) {
  histogram lat, stall;
  std::uint64_t first = ~std::uint64_t{0}, last = 0;
  long long runq = 0;  // -1 once some loop's thread has no figure from the kernel
  for (auto& w : ws) {
    runq = w->runq_ns < 0 || runq < 0 ? -1 : runq + w->runq_ns;
    lat.merge(w->lat);
    stall.merge(w->stall);
    r.probes.insert(r.probes.end(), w->probes.begin(), w->probes.end());
    r.ops += w->ops;
    r.errors += w->errors;
    r.verify_errors += w->verify_errors;
    if (r.first_error.empty()) r.first_error = w->first_error;
    first = std::min(first, w->start_ns);
    last = std::max(last, w->end_ns);
  }
  r.loop_runq_wait_ns = runq;
  r.resolved = ws.front()->resolved;
  r.elapsed_s = last > first ? static_cast<double>(last - first) / 1e9 : 0;
  r.iops = r.elapsed_s > 0 ? static_cast<double>(r.ops) / r.elapsed_s : 0;
  r.bw_bytes_s = r.iops * static_cast<double>(ws.front()->o.bs);
  r.lat = {lat.mean(), lat.quantile(0.5), lat.quantile(0.99), lat.quantile(0.999), lat.max()};
  r.stall_p99 = stall.quantile(0.99);
  r.stall_max = stall.max();
  r.stall_samples = stall.count();
}

}  // namespace

backend_result run_backend(const run_options& o, const std::string& backend, const test_file& file) {
  backend_result r;
  r.backend = backend;
  note_io_uring_flags(o, backend);
  int fd = open_for(o, file);
  int ref_fd = o.verify ? ::open(file.path.c_str(), O_RDONLY | O_CLOEXEC) : -1;
  std::vector<std::unique_ptr<worker>> ws;
  for (unsigned i = 0; i < o.threads; ++i) {
    ws.push_back(std::make_unique<worker>(o, file, i));
    ws.back()->fd = fd;
    ws.back()->ref_fd = ref_fd;
  }
  phases ph(o.threads);
  std::vector<std::thread> threads;
  for (auto& w : ws) threads.emplace_back(worker_thread, std::ref(*w), std::ref(ph), std::cref(backend));
  ph.ready.arrive_and_wait();
  std::string error;
  for (auto& w : ws) {
    if (!w->loop_error.empty() && error.empty()) error = w->loop_error;
    w->deadline_ns = now_ns() + static_cast<std::uint64_t>(o.runtime_s * 1e9);
  }
  cpu_sample cpu0 = sample_rusage();
  task_sample tasks0 = sample_tasks();
  ph.go.arrive_and_wait();
  wait_done(ph, ws, o, backend);
  r.cpu = sample_rusage() - cpu0;
  r.tasks = sample_tasks() - tasks0;
  r.tasks_before = tasks0.tasks;
  r.names_before = tasks0.names;
  ph.release.count_down();
  for (auto& t : threads) t.join();
  ::close(fd);
  if (ref_fd >= 0) ::close(ref_fd);
  if (!error.empty()) throw std::runtime_error(error);
  collect(r, ws);
  return r;
}

std::uint64_t idle_stall_p99(const std::string& backend, double seconds) {
  std::uint64_t p99 = 0;
  std::string error;
  // On a thread of its own, as a run's loops are (the slack setting stays with that thread).
  std::thread t([&] {
    try {
      exact_wakeups();
      unio::loop_options lo;
      lo.backend = backend;
      unio::loop lp(lo);
      histogram stall;
      unio::op timer;
      const std::uint64_t start = now_ns(), end = start + static_cast<std::uint64_t>(seconds * 1e9);
      std::uint64_t due = 0;
      std::function<void()> arm = [&] {
        std::uint64_t now = now_ns();
        due = next_grid_point(start, now);
        lp.timeout(timer, std::chrono::nanoseconds(due - now), [&](unio::op&) {
          std::uint64_t t = now_ns();
          stall.record(t > due ? t - due : 0);
          if (t < end) arm();
        });
      };
      arm();
      lp.run();
      p99 = stall.quantile(0.99);
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  t.join();
  if (!error.empty()) throw std::runtime_error(error);
  return p99;
}

}  // namespace unio_bench
