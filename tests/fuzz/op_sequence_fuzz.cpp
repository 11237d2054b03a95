// libFuzzer target over op sequences on one loop: the input chooses a backend and a script of
// steps (driver actions, loop turns, fault windows); the soak's driver (tests/soak/driver.hpp)
// submits the ops and checks every result against its models as it completes, then the loop runs
// out of work and the end checks run. A violation aborts (a crash for libFuzzer).
//
// Input: byte 0 picks the backend (sync, threadpool, io_uring, io_uring_delegate, linux_aio,
// posix_aio: those available here); byte 1 bit 0 adds a TCP connection to the socketpair. Then
// steps, until the input ends: one byte picks the step (a turn of the loop with poll(); a fault
// window opened or closed; else a driver action), and the step takes the bytes its choices need
// (offsets, lengths, which op to cancel, ...). A choice past the end of the input is 0. Then the
// windows close, the driver drains and the loop runs until it has no work.
//
// Checked per input, besides the driver's checks: every failure a fault window injected reached
// exactly one op (reads: at most one, as in the soak), every post ran once, and the process holds
// as many fds as before.
//
// The seed corpus (tests/fuzz/corpus) holds inputs a fuzzing run found: for each backend the
// longest ones, with and without the TCP connection.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "conformance/variants.hpp"
#include "soak/driver.hpp"

namespace {

using namespace unio::soak;

// Choices taken from the input bytes: 1 byte for n <= 256, else 2 or 4; 0 past the end.
class byte_chooser final : public chooser {
 public:
  byte_chooser(const std::uint8_t* p, std::size_t n) : p_(p), end_(p + n) {}
  std::uint32_t below(std::uint32_t n) override {
    int bytes = n <= 256 ? 1 : n <= 65536 ? 2 : 4;
    std::uint32_t v = 0;
    for (int i = 0; i < bytes && p_ < end_; ++i) v = v << 8 | *p_++;
    return v % n;
  }
  bool empty() const noexcept { return p_ >= end_; }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

[[noreturn]] void violation(const std::string& what) {
  std::fprintf(stderr, "op_sequence_fuzz: violation: %s\n", what.c_str());
  std::abort();
}

struct environment {
  std::vector<std::string> backends;
  std::string dir;
  fault_plan faults;  // the seam stays installed for the whole process
};

environment* g_env = nullptr;

void remove_dir() {
  std::error_code ec;
  if (g_env != nullptr) std::filesystem::remove_all(g_env->dir, ec);
}

// One loop per backend, once, before any fd is counted: a backend's first use may open a
// process-wide fd.
void warm_up(const std::string& backend) {
  unio::loop lp(unio::test::options_for(backend));
  unio::op o;
  lp.nop(o, [](unio::op&) {});
  lp.run();
}

void opens_or_closes_a_window(byte_chooser& in) {
  auto g = static_cast<fault_group>(in.below(k_fault_groups));
  auto k = static_cast<fault_kind>(in.below(k_fault_kinds + 1));
  if (k == fault_kind::count_) return g_env->faults.disarm(g);
  if (k == fault_kind::short_io && !visible(g, k)) k = fault_kind::eintr;
  g_env->faults.arm(g, k, k == fault_kind::short_io ? 1 + in.below(4096) : in.below(6));
}

std::string check_tallies(const tally& t, const std::array<long, k_fault_groups>& before, std::uint64_t posts) {
  std::string bad;
  for (std::size_t g = 0; g < k_fault_groups; ++g) {
    long injected = g_env->faults.failures_injected(static_cast<fault_group>(g)) - before[g];
    auto seen = static_cast<long>(t.failed[g]);
    bool ok = static_cast<fault_group>(g) == fault_group::read ? seen <= injected : seen == injected;
    if (!ok)
      bad += std::string(to_string(static_cast<fault_group>(g))) + ": " + std::to_string(injected) +
             " failures injected, " + std::to_string(seen) + " ops saw one; ";
  }
  if (t.posts_run != posts) bad += std::to_string(posts) + " posts, " + std::to_string(t.posts_run) + " ran; ";
  return bad;
}

void run_one(const std::string& backend, bool tcp, byte_chooser& in) {
  std::array<long, k_fault_groups> before{};
  for (std::size_t g = 0; g < k_fault_groups; ++g) before[g] = g_env->faults.failures_injected(static_cast<fault_group>(g));
  unio::loop lp(unio::test::options_for(backend));
  std::uint64_t posts = 0;
  driver_options o;
  o.name = backend;
  o.dir = g_env->dir;
  o.tcp = tcp;
  o.wait_percent = 10;  // an input's timers end within 300 us
  o.faults = &g_env->faults;
  o.report = [](const std::string& what) { violation(what); };
  driver* dp = nullptr;
  o.post = [&] {
    std::uint64_t seq = ++posts;
    lp.post([&dp, seq] { dp->post_arrived(0, seq); });
    return true;
  };
  driver d(lp, in, o);
  dp = &d;
  d.start();
  while (!in.empty()) {
    switch (in.below(12)) {
      case 0: lp.poll(); break;
      case 1: opens_or_closes_a_window(in); break;
      default: d.act(static_cast<action>(in.below(k_actions))); break;
    }
  }
  g_env->faults.disarm_all();
  d.drain();
  lp.run();
  if (std::string bad = d.verify_end(); !bad.empty()) violation(bad);
  if (std::string bad = check_tallies(d.counts(), before, posts); !bad.empty()) violation(backend + ": " + bad);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_env = new environment;
  // tmpfs when there is one: fsync there costs nothing, and the fuzzer runs thousands of them.
  const char* tmp = std::getenv("TMPDIR");
  std::string base = tmp != nullptr && *tmp != '\0' ? tmp : ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  std::string tmpl = base + "/unio-opfuzz-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) violation("cannot make a directory for the files");
  g_env->dir = tmpl;
  std::atexit(remove_dir);
  auto built = unio::probe_backends();
  for (const char* b : {"sync", "threadpool", "io_uring", "io_uring_delegate", "linux_aio", "posix_aio"}) {
    bool here = std::any_of(built.begin(), built.end(), [&](const auto& i) { return i.name == unio::test::backend_of(b); });
    if (!here || !unio::test::unavailable_reason(b).empty()) continue;
    warm_up(b);
    g_env->backends.push_back(b);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2 || g_env->backends.empty()) return 0;
  const std::string& backend = g_env->backends[data[0] % g_env->backends.size()];
  bool tcp = (data[1] & 1) != 0;
  byte_chooser in(data + 2, size - 2);
  const std::size_t fds = open_fds();
  run_one(backend, tcp, in);
  if (std::size_t now = open_fds(); now != fds)
    violation(backend + ": fd leak: " + std::to_string(fds) + " fds open before the input, " + std::to_string(now) + " after");
  return 0;
}
