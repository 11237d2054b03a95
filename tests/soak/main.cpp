// unio_soak: random op sequences on several loops at once, each on its own thread, with faults
// injected through the syscall seam, checked against models with exactly-once accounting
// (driver.hpp lists the workload and every check).
//
//   unio_soak --backend B [--seconds S] [--seed N] [--loops L] [--faults on|off] [--depth D]
//             [--dir DIR] [--inject double|model|stream|ecanceled]
//
// B is a backend or io_uring variant name as the conformance tests use them (sync, threadpool,
// io_uring, io_uring_sqpoll, io_uring_restrict, io_uring_delegate, linux_aio, posix_aio, auto).
// Defaults: 3 seconds, a seed from the clock (printed), 4 loops, faults on, 32 ops in flight per
// loop, files in $TMPDIR or /tmp. Besides the loops, one thread posts to random loops and the main
// thread opens and closes fault windows (faults.hpp) until the time is up; the loops then drain.
//
// At the end: every loop's files and streams match their models, each loop thread ran every post
// sent to it once, in order; every failure a fault window injected reached exactly one op (reads:
// at most one, since the threadpool backend tries a read on the loop's thread first and the pool
// redoes a failed try); and the process holds as many fds as before. Exit 0 with a one-line
// summary; 1 with the first violation and the command that reproduces it (given the seed the
// choices repeat; thread timing does not, and no check depends on it); 77 when the backend is
// unavailable here (the reason is printed); 2 for a usage error.
//
// --inject makes the soak itself wrong on purpose, to show that its checks fail: `double` runs
// one handler's accounting twice, `model` records every write one byte off in the file model,
// `stream` counts every send one byte longer than it was, `ecanceled` forgets that one file op
// was cancelled (one cancelled before it started). Each must end in a violation.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "conformance/variants.hpp"
#include "driver.hpp"

namespace {

using namespace unio::soak;
using clock_type = std::chrono::steady_clock;

struct settings {
  std::string backend;
  double seconds = 3;
  std::uint64_t seed = 0;
  unsigned loops = 4;
  bool faults = true;
  unsigned depth = 32;
  std::string dir;
  std::string inject;
};

settings g_set;
std::string g_tmp;  // this run's directory, removed at the end and on a violation

std::string reproduce() {
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%g", g_set.seconds);
  return "unio_soak --backend " + g_set.backend + " --seed " + std::to_string(g_set.seed) + " --seconds " + seconds +
         " --loops " + std::to_string(g_set.loops) + (g_set.faults ? "" : " --faults off") +
         (g_set.inject.empty() ? "" : " --inject " + g_set.inject);
}

void remove_tmp() {
  std::error_code ec;
  if (!g_tmp.empty()) std::filesystem::remove_all(g_tmp, ec);
}

// The first violation ends the process: the state after it proves nothing more.
[[noreturn]] void violation(const std::string& what) {
  static std::mutex mu;
  mu.lock();
  std::fprintf(stderr, "unio_soak: FAILED: %s\n  reproduce: %s\n", what.c_str(), reproduce().c_str());
  std::fflush(stderr);
  remove_tmp();
  std::_Exit(1);
}

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "unio_soak: %s\nusage: unio_soak --backend B [--seconds S] [--seed N] [--loops L] [--faults on|off] "
               "[--depth D] [--dir DIR] [--inject double|model|stream|ecanceled]\n",
               why.c_str());
  std::exit(2);
}

settings parse(int argc, char** argv) {
  settings s;
  s.seed = static_cast<std::uint64_t>(clock_type::now().time_since_epoch().count()) % 1000000007u;
  const char* tmp = std::getenv("TMPDIR");
  s.dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) usage(flag + " needs a value");
    std::string v = argv[++i];
    try {
      if (flag == "--backend") s.backend = v;
      else if (flag == "--seconds") s.seconds = std::stod(v);
      else if (flag == "--seed") s.seed = std::stoull(v);
      else if (flag == "--loops") s.loops = static_cast<unsigned>(std::stoul(v));
      else if (flag == "--faults" && (v == "on" || v == "off")) s.faults = v == "on";
      else if (flag == "--depth") s.depth = static_cast<unsigned>(std::stoul(v));
      else if (flag == "--dir") s.dir = v;
      else if (flag == "--inject" && (v == "double" || v == "model" || v == "stream" || v == "ecanceled")) s.inject = v;
      else usage("unknown flag or value: " + flag + " " + v);
    } catch (const std::exception&) {
      usage("bad value for " + flag + ": " + v);
    }
  }
  if (s.backend.empty()) usage("--backend is required");
  if (s.loops == 0 || s.seconds < 0) usage("--loops must be at least 1 and --seconds not negative");
  return s;
}

class rng final : public chooser {
 public:
  explicit rng(std::uint64_t seed) : state_(seed) {}
  std::uint32_t below(std::uint32_t n) override { return static_cast<std::uint32_t>(mix64(state_++) % n); }

 private:
  std::uint64_t state_;
};

// What the threads share. Posts: sent[source][target] is written by the source's thread only;
// a loop's keep_alive is made and dropped on its own thread. A loop is destroyed only after
// posting is over (posts_over): post() may still be waking a loop whose run() has returned.
struct run_state {
  explicit run_state(unsigned loops)
      : ready(loops + 1), posts_over(1), loops(loops), drivers(loops), keep(loops), finished(loops), results(loops),
        sent(loops + 1, std::vector<std::uint64_t>(loops)), posters_left(static_cast<int>(loops) + 1) {}

  std::latch ready;       // every loop made, and the main thread ready
  std::latch posts_over;  // every post() call has returned
  std::vector<unio::loop*> loops;
  std::vector<driver*> drivers;
  std::vector<std::optional<unio::loop::keep_alive>> keep;
  std::vector<std::atomic<bool>> finished;
  std::vector<tally> results;
  std::vector<std::vector<std::uint64_t>> sent;
  std::atomic<int> posters_left;  // loop threads that may still post, and the poster thread
  std::mutex mu;
  std::condition_variable cv;
  unsigned done = 0;
  clock_type::time_point deadline;
};

void post_to(run_state& st, unsigned source, unsigned target) {
  std::uint64_t seq = ++st.sent[source][target];
  driver* d = st.drivers[target];
  st.loops[target]->post([d, source, seq] { d->post_arrived(source, seq); });
}

// Called once by each poster when it will post no more; the last one lets every loop finish.
void poster_done(run_state& st) {
  if (st.posters_left.fetch_sub(1) != 1) return;
  for (unsigned j = 0; j < st.loops.size(); ++j) st.loops[j]->post([&st, j] { st.keep[j].reset(); });
  st.posts_over.count_down();
}

driver_options driver_options_for(run_state& st, unsigned i, const fault_plan* faults) {
  driver_options o;
  o.name = "loop " + std::to_string(i);
  o.dir = g_tmp + "/loop" + std::to_string(i);
  o.depth = g_set.depth;
  o.deadline = st.deadline;
  o.seed = mix64(g_set.seed + i);
  o.faults = faults;
  o.post_sources = static_cast<unsigned>(st.loops.size()) + 1;
  o.inject = g_set.inject;
  o.report = [](const std::string& what) { violation(what); };
  o.on_drain = [&st] { poster_done(st); };
  o.post = [&st, i, r = std::make_shared<rng>(mix64(g_set.seed ^ (0x9057 + i)))] {
    auto n = static_cast<std::uint32_t>(st.loops.size());
    if (n < 2) return false;
    unsigned j = (i + 1 + r->below(n - 1)) % n;
    post_to(st, i, j);
    return true;
  };
  return o;
}

#if defined(__SANITIZE_THREAD__)
constexpr bool k_tsan = true;
#elif defined(__has_feature)
constexpr bool k_tsan = __has_feature(thread_sanitizer);
#else
constexpr bool k_tsan = false;
#endif

// The backend's loop options. Under ThreadSanitizer io_uring's close runs on the pool: TSan keeps
// a record per fd number that libc's close resets, and a close done by the kernel
// (IORING_OP_CLOSE) leaves it stale, so the next fd of that number made on another loop's thread
// would be reported as a race on TSan's record.
unio::loop_options loop_options_here() {
  unio::loop_options o = unio::test::options_for(g_set.backend);
  if (k_tsan && o.io_uring_delegate.empty()) o.io_uring_delegate = "close";
  return o;
}

// The loops (and the io_uring probes their drivers make) are made one at a time. liburing maps
// its rings with raw system calls that ThreadSanitizer does not see, so a ring made on one thread
// where another thread's ring had just been unmapped is reported as a race on the ring's memory.
std::mutex g_setup;

void loop_thread(run_state& st, unsigned i, const fault_plan* faults) {
  std::filesystem::create_directory(g_tmp + "/loop" + std::to_string(i));
  rng pick(mix64(g_set.seed + 1000 + i));
  std::optional<unio::loop> lp;
  std::optional<driver> d;
  try {
    std::lock_guard lk(g_setup);
    lp.emplace(loop_options_here());
    d.emplace(*lp, pick, driver_options_for(st, i, faults));
  } catch (const std::exception& e) {
    violation("loop " + std::to_string(i) + ": creating the loop failed: " + e.what());
  }
  st.loops[i] = &*lp;
  st.drivers[i] = &*d;
  st.keep[i].emplace(*lp);
  st.ready.arrive_and_wait();
  d->start();
  lp->run();
  st.posts_over.wait();
  if (std::string bad = d->verify_end(); !bad.empty()) violation(bad);
  st.results[i] = d->counts();
  st.finished[i] = true;
  std::lock_guard lk(st.mu);
  ++st.done;
  st.cv.notify_all();
}

void poster_thread(run_state& st) {
  rng pick(mix64(g_set.seed ^ 0x9057));
  auto source = static_cast<unsigned>(st.loops.size());
  while (clock_type::now() < st.deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(pick.below(1000)));
    post_to(st, source, pick.below(static_cast<std::uint32_t>(st.loops.size())));
  }
  poster_done(st);
}

// Opens and closes fault windows until the deadline, a few groups at a time.
void coordinate_faults(fault_plan& faults, clock_type::time_point deadline) {
  rng pick(mix64(g_set.seed ^ 0xfa17));
  while (clock_type::now() < deadline) {
    auto g = static_cast<fault_group>(pick.below(k_fault_groups));
    auto k = static_cast<fault_kind>(pick.below(k_fault_kinds));
    if (k == fault_kind::short_io && !visible(g, k)) k = fault_kind::eintr;
    long amount = 0;
    switch (k) {
      case fault_kind::eintr: amount = 1 + pick.below(8); break;
      case fault_kind::eagain: amount = 1 + pick.below(4); break;
      case fault_kind::short_io: amount = pick.below(2) == 0 ? 1 + pick.below(16) : 1 + pick.below(8192); break;
      default: amount = pick.below(6); break;
    }
    faults.arm(g, k, amount);
    if (pick.below(2) == 0) faults.disarm(static_cast<fault_group>(pick.below(k_fault_groups)));
    std::this_thread::sleep_for(std::chrono::microseconds(200 + pick.below(10000)));
  }
  faults.disarm_all();
}

// Waits for the loops to finish draining; a loop that does not within the grace period hangs.
void await_loops(run_state& st) {
  const auto grace = std::chrono::seconds(60);
  std::unique_lock lk(st.mu);
  if (st.cv.wait_for(lk, grace, [&] { return st.done == st.loops.size(); })) return;
  std::string what = "hang: loops still running " + std::to_string(grace.count()) + " s after the deadline:";
  for (unsigned i = 0; i < st.loops.size(); ++i)
    if (!st.finished[i]) what += " loop " + std::to_string(i) + " has in flight: " + st.drivers[i]->in_flight_summary() + ";";
  violation(what);
}

// Every failure a window injected reached exactly one op (a read at most one: see the top).
std::string check_fault_tallies(const fault_plan& faults, const tally& t) {
  std::string bad;
  for (std::size_t g = 0; g < k_fault_groups; ++g) {
    long injected = faults.failures_injected(static_cast<fault_group>(g));
    auto seen = static_cast<long>(t.failed[g]);
    bool ok = static_cast<fault_group>(g) == fault_group::read ? seen <= injected : seen == injected;
    if (!ok)
      bad += std::string(to_string(static_cast<fault_group>(g))) + ": " + std::to_string(injected) +
             " failures injected, " + std::to_string(seen) + " ops saw one; ";
  }
  return bad;
}

std::string check_posts(const run_state& st) {
  std::string bad;
  for (unsigned j = 0; j < st.loops.size(); ++j) {
    std::uint64_t sent = 0;
    for (const auto& row : st.sent) sent += row[j];
    if (sent != st.results[j].posts_run)
      bad += std::to_string(sent) + " posts sent to loop " + std::to_string(j) + ", " +
             std::to_string(st.results[j].posts_run) + " ran; ";
  }
  return bad;
}

std::string summary(const tally& t, const fault_plan* faults, double secs) {
  std::string s = std::to_string(t.ops()) + " ops (" + std::to_string(static_cast<long long>(t.ops() / secs)) + "/s):";
  for (std::size_t k = 0; k < k_kinds; ++k)
    if (t.submitted[k] != 0) s += std::string(" ") + to_string(static_cast<kind>(k)) + " " + std::to_string(t.submitted[k]);
  std::uint64_t completed = 0, ecanceled = 0;
  for (std::size_t k = 0; k < k_kinds; ++k) completed += t.completed[k], ecanceled += t.ecanceled[k];
  s += "; " + std::to_string(completed) + " completions, " + std::to_string(t.cancels) + " cancels (" +
       std::to_string(ecanceled) + " ECANCELED), " + std::to_string(t.chains) + " chains, " +
       std::to_string(t.guards_fired) + " link timeouts fired, " + std::to_string(t.posts_run) + " posts, " +
       std::to_string(t.reconnects) + " reconnects, " + std::to_string(t.bytes >> 20) + " MiB";
  if (faults != nullptr)
    s += "; faults: " + faults->summary() + ", " + std::to_string(t.faults_seen) + " results shaped by them";
  return s;
}

// Lazily made process-wide resources (glibc's AIO state, the first pool) are made once before
// the fd count, so that the count compares like with like.
void warm_up() {
  unio::loop lp(loop_options_here());
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) return;
  char c = 0;
  unio::op a, b;
  lp.write(a, sv[0], &c, 1, unio::current_position, [](unio::op&) {});
  lp.read(b, sv[1], &c, 1, unio::current_position, [](unio::op&) {});
  lp.run();
  ::close(sv[0]);
  ::close(sv[1]);
}

}  // namespace

int main(int argc, char** argv) {
  g_set = parse(argc, argv);
  if (std::string why = unio::test::unavailable_reason(g_set.backend); !why.empty()) {
    std::printf("unio_soak: SKIP: %s\n", why.c_str());
    return 77;
  }
  std::string tmpl = g_set.dir + "/unio-soak-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) usage("cannot make a directory in " + g_set.dir + ": " + std::strerror(errno));
  g_tmp = tmpl;
  try {
    warm_up();
  } catch (const std::exception& e) {
    violation(std::string("creating a loop failed: ") + e.what());
  }
  const std::size_t fds_before = open_fds();
  double ran = 0;
  tally total;
  std::string faults_line;
  {
    std::optional<fault_plan> faults;  // outlives the loops: their threads are joined first
    if (g_set.faults) faults.emplace();
    const fault_plan* plan = faults ? &*faults : nullptr;
    run_state st(g_set.loops);
    auto t0 = clock_type::now();
    st.deadline = t0 + std::chrono::microseconds(static_cast<long long>(g_set.seconds * 1e6));
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < g_set.loops; ++i) threads.emplace_back(loop_thread, std::ref(st), i, plan);
    st.ready.arrive_and_wait();
    std::thread poster(poster_thread, std::ref(st));
    if (faults) coordinate_faults(*faults, st.deadline);
    await_loops(st);
    for (auto& t : threads) t.join();
    poster.join();
    ran = std::chrono::duration<double>(clock_type::now() - t0).count();
    for (const tally& t : st.results) total.add(t);
    std::string bad = check_posts(st);
    if (faults) bad += check_fault_tallies(*faults, total);
    if (!bad.empty()) violation(bad);
    faults_line = summary(total, plan, ran);
  }
  const std::size_t fds_after = open_fds();
  if (fds_after != fds_before)
    violation("fd leak: " + std::to_string(fds_before) + " fds open before the loops, " + std::to_string(fds_after) + " after");
  remove_tmp();
  std::printf("unio_soak: passed: %s, %u loops, %.1f s, seed %llu, faults %s: %s\n", g_set.backend.c_str(), g_set.loops,
              ran, static_cast<unsigned long long>(g_set.seed), g_set.faults ? "on" : "off", faults_line.c_str());
  return 0;
}
