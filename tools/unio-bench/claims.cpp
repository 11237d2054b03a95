#include "claims.hpp"
#include "workload.hpp"

#include <unistd.h>

#include <algorithm>
#include <optional>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>

#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <unio/unio.hpp>

#include "experiments.hpp"
#include "plot.hpp"
#include "recommend.hpp"
#include "report.hpp"
#include "testfile.hpp"

namespace unio_bench {

namespace {

using json = nlohmann::json;

const char* const k_confirmed = "confirmed";
const char* const k_refuted = "refuted";
const char* const k_partly = "partly";
const char* const k_not_measurable = "not measurable here";

struct claim {
  claim(std::string i, std::string q, std::string e, std::string r)
      : id(std::move(i)), quote(std::move(q)), experiment(std::move(e)), rule(std::move(r)) {}
  std::string id, quote, experiment, rule;
  std::string verdict, reason;     // reason: why not measurable, or the decisive figure
  std::vector<std::string> lines;  // the figures, as text
  json figures = json::object();
};

double us(double ns) { return ns / 1000.0; }
double per(double a, double b) { return b > 0 ? a / b : 0; }

// confirmed at or above `confirm_at`, refuted below `refute_below`, partly in between.
std::string grade(double v, double confirm_at, double refute_below) {
  if (v >= confirm_at) return k_confirmed;
  if (v < refute_below) return k_refuted;
  return k_partly;
}

void not_measurable(claim& c, const std::string& why) {
  c.verdict = k_not_measurable;
  c.reason = why;
}

// The first experiment that did not run, as a reason; "" when all ran.
std::string missing(std::initializer_list<const outcome*> os) {
  for (const outcome* o : os)
    if (!o->ok()) return o->unavailable;
  return "";
}

// A cold experiment whose file was still in the page cache does not test a cache miss.
std::string not_cold(std::initializer_list<const outcome*> os) {
  for (const outcome* o : os)
    if (o->r.resident_before > 0.05)
      return fmt::format("the page cache could not be dropped for {} ({:.0f}% of the file resident)",
                         o->spec.label(), o->r.resident_before * 100);
  return "";
}

json summary(const outcome& o) {
  const backend_result& r = o.r;
  return {{"experiment", o.spec.label()}, {"iops", r.iops}, {"lat_mean_us", us(r.lat.mean)},
          {"lat_p99_us", us(static_cast<double>(r.lat.p99))}, {"stall_p99_us", us(static_cast<double>(r.stall_p99))},
          {"stall_max_us", us(static_cast<double>(r.stall_max))}, {"cpu_us_per_op", o.us_per_op()},
          {"ctx_switches_per_op", o.csw_per_op()}, {"errors", r.errors},
          {"resident_before", r.resident_before}, {"resident_after", r.resident_after}};
}

std::string cache_text(const backend_result& r) {
  if (r.resident_before < 0) return "";
  return fmt::format("; cached {:.0f}%->{:.0f}%", r.resident_before * 100, r.resident_after * 100);
}

// One line per experiment: the figures every claim shows.
std::string line(const outcome& o) {
  const backend_result& r = o.r;
  return fmt::format("{:<34} {:>8.0f} IOPS, lat mean {:.1f} us p99 {:.1f} us, stall p99 {:.0f} us max {:.0f} us, "
                     "CPU {:.2f} us/op, {:.3f} csw/op{}{}",
                     o.spec.label(), r.iops, us(r.lat.mean), us(static_cast<double>(r.lat.p99)),
                     us(static_cast<double>(r.stall_p99)), us(static_cast<double>(r.stall_max)), o.us_per_op(),
                     o.csw_per_op(), cache_text(r), r.errors ? fmt::format(", {} errors ({})", r.errors, r.first_error) : "");
}

void show(claim& c, std::initializer_list<const outcome*> os) {
  for (const outcome* o : os) {
    c.lines.push_back(line(*o));
    c.figures["runs"].push_back(summary(*o));
  }
}

experiment ex(const std::string& backend, const std::string& variant, unsigned depth, const std::string& cache,
              bool direct = false, const std::string& rw = "randread") {
  experiment e;
  e.backend = backend;
  e.variant = variant;
  e.depth = depth;
  e.cache = cache;
  e.direct = direct;
  e.rw = rw;
  return e;
}

double stall(const outcome& o) { return static_cast<double>(o.r.stall_p99); }
// Ratios of stalls and latencies use a 1 us floor under the denominator.
double over(double a, double b) { return a / std::max(b, 1000.0); }

// ---- The claims ----

claim claim1(lab& l) {
  claim c{"1", "Blocking file I/O on the event loop stalls it (the reason runtimes use a thread pool).",
          "sync vs threadpool, 4 KiB randread QD32 on a cold cache (fadvise DONTNEED), loop stall = lateness "
          "of a 1 ms timer on the same loop",
          "confirmed if sync's stall p99 >= 10x threadpool's; refuted if < 2x; partly in between"};
  // The floor: how late the same probe is on a loop with no I/O at all. A threadpool stall near it
  // is the machine's (waking an idle thread), not the loop's doing. Measured before and after the
  // runs, and the lower taken: the host may still be busy with the runs' I/O afterwards (one
  // measurement right after them read 1147 us where the others read 52-76 us).
  const double idle_s = l.quick() ? 0.5 : 1.5;
  std::string idle_error;
  auto idle_p99 = [&]() -> std::optional<double> {
    try {
      return static_cast<double>(idle_stall_p99("threadpool", idle_s));
    } catch (const std::exception& e) {
      idle_error = e.what();
      return std::nullopt;
    }
  };
  std::optional<double> idle_before = idle_p99();
  const outcome& s = l.get(ex("sync", "", 32, "cold"));
  const outcome& t = l.get(ex("threadpool", "", 32, "cold"));
  if (auto m = missing({&s, &t}); !m.empty()) return not_measurable(c, m), c;
  show(c, {&s, &t});
  if (auto m = not_cold({&s}); !m.empty()) return not_measurable(c, m), c;
  double r = over(stall(s), stall(t));
  c.figures["stall_ratio"] = r;
  c.verdict = grade(r, 10, 2);
  c.reason = fmt::format("sync's stall p99 is {:.1f}x threadpool's", r);
  std::optional<double> idle_after = idle_p99();
  if (!idle_before && !idle_after) {
    c.reason += fmt::format("; idle loop not measured: {}", idle_error);
    return c;
  }
  double idle = std::min(idle_before.value_or(*idle_after), idle_after.value_or(*idle_before));
  c.figures["idle_loop_stall_p99_us"] = idle / 1000;
  c.reason += fmt::format("; an idle loop's stall p99 here is {:.0f} us (threadpool's {:.0f} us, {:.1f}x that floor)",
                          idle / 1000, stall(t) / 1000, over(stall(t), idle));
  return c;
}

claim claim2(lab& l) {
  claim c{"2", "O_NONBLOCK has no effect on regular files: reads block regardless.",
          "sync backend, 4 KiB randread QD1 on a cold cache, the file opened without and with O_NONBLOCK; "
          "a cached read (sync QD1 warm) for scale",
          "confirmed if no read with O_NONBLOCK fails with EAGAIN and their mean latency stays >= 0.5x that "
          "without the flag and >= 5x a cached read (they waited for the disk); refuted if neither; partly otherwise"};
  const outcome& s = l.get(ex("sync", "", 1, "cold"));
  const outcome& n = l.get(ex("sync", "nonblock", 1, "cold"));
  const outcome& w = l.get(ex("sync", "", 1, "warm"));
  if (auto m = missing({&s, &n, &w}); !m.empty()) return not_measurable(c, m), c;
  show(c, {&s, &n, &w});
  if (auto m = not_cold({&s, &n}); !m.empty()) return not_measurable(c, m), c;
  double r = per(n.r.lat.mean, std::max(s.r.lat.mean, 1.0)), vs_cached = over(n.r.lat.mean, w.r.lat.mean);
  bool no_eagain = n.r.errors == 0, waited = r >= 0.5 && vs_cached >= 5;
  c.figures.update({{"nonblock_errors", n.r.errors}, {"lat_ratio_with_without", r}, {"lat_ratio_vs_cached", vs_cached}});
  c.verdict = no_eagain && waited ? k_confirmed : (!no_eagain && !waited ? k_refuted : k_partly);
  c.reason = fmt::format("{} reads failed with O_NONBLOCK; their mean latency is {:.2f}x that without the flag and "
                         "{:.1f}x a cached read", n.r.errors, r, vs_cached);
  return c;
}

claim claim3(lab& l) {
  claim c{"3", "Linux AIO is asynchronous only with O_DIRECT: io_submit blocks on buffered reads that miss the cache.",
          "linux_aio with aio_buffered=true on a cold buffered file vs linux_aio with O_DIRECT, 4 KiB randread QD32",
          "confirmed if the buffered stall p99 >= 10x the O_DIRECT stall p99; refuted if < 2x; partly in between"};
  const outcome& b = l.get(ex("linux_aio", "aio_buffered", 32, "cold"));
  const outcome& d = l.get(ex("linux_aio", "", 32, "cold", true));
  if (auto m = missing({&b, &d}); !m.empty()) return not_measurable(c, m), c;
  show(c, {&b, &d});
  if (auto m = not_cold({&b}); !m.empty()) return not_measurable(c, m), c;
  double r = over(stall(b), stall(d));
  c.figures["stall_ratio"] = r;
  c.verdict = grade(r, 10, 2);
  c.reason = fmt::format("buffered stall p99 is {:.1f}x O_DIRECT's", r);
  return c;
}

std::string errno_text(long v) {
  return v >= 0 ? fmt::format("{} bytes", v) : fmt::format("-1, {}", std::strerror(static_cast<int>(-v)));
}

void alignment_part(claim& c, const alignment_demo& a) {
  c.lines.push_back(fmt::format("pread O_DIRECT 4 KiB at offset 0, aligned buffer: {}", errno_text(a.aligned)));
  c.lines.push_back(fmt::format("pread O_DIRECT 4 KiB at offset 1000:             {}", errno_text(a.unaligned_offset)));
  c.lines.push_back(fmt::format("pread O_DIRECT 4 KiB into buffer+1:              {}", errno_text(a.unaligned_buffer)));
  c.lines.push_back(fmt::format("unio ({}) read of 100 bytes at offset 1000 on the same O_DIRECT fd: {}",
                                a.unio_backend, errno_text(a.unio_unaligned)));
  c.figures["pread_aligned"] = a.aligned;
  c.figures["pread_unaligned_offset"] = a.unaligned_offset;
  c.figures["pread_unaligned_buffer"] = a.unaligned_buffer;
  c.figures["unio_unaligned_read"] = a.unio_unaligned;
}

claim claim4(lab& l) {
  claim c{"4", "O_DIRECT demands 512-byte alignment (else EINVAL) and bypasses the cache, which can hurt small cached reads.",
          "(a) raw preads on the O_DIRECT test file; (b) sync backend, 4 KiB randread QD1: cached buffered vs O_DIRECT",
          "(a) holds if the unaligned-offset pread fails with EINVAL and the aligned one reads 4096 bytes; (b) holds if "
          "cached buffered IOPS >= 2x O_DIRECT IOPS; confirmed if both hold, partly if one, refuted if neither"};
  alignment_demo a = demo_alignment(l.file().path);
  if (!a.error.empty()) return not_measurable(c, a.error), c;
  alignment_part(c, a);
  const outcome& w = l.get(ex("sync", "", 1, "warm"));
  const outcome& d = l.get(ex("sync", "", 1, "warm", true));
  if (auto m = missing({&w, &d}); !m.empty()) return not_measurable(c, m), c;
  show(c, {&w, &d});
  bool part_a = a.unaligned_offset == -EINVAL && a.aligned == 4096;
  double r = per(w.r.iops, d.r.iops);
  bool part_b = r >= 2;
  c.figures["buffered_over_direct_iops"] = r;
  c.verdict = part_a && part_b ? k_confirmed : (part_a || part_b ? k_partly : k_refuted);
  c.reason = fmt::format("(a) {}; (b) cached buffered reads are {:.1f}x the O_DIRECT rate", part_a ? "EINVAL" : "no EINVAL", r);
  return c;
}

// How many threads carry `name` in a task_sample::names string ("a x2;b x1" without spaces).
int named(const std::string& names, const std::string& name) {
  std::string key = name + "x";
  for (std::size_t at = 0; (at = names.find(key, at)) != std::string::npos; at += key.size())
    if (at == 0 || names[at - 1] == ';') return std::atoi(names.c_str() + at + key.size());
  return 0;
}

std::string process_name() {
  std::ifstream f("/proc/self/comm");
  std::string n;
  std::getline(f, n);
  return n;
}

// Threads started during the run that carry the process's name: glibc's helpers inherit it,
// unio names its own threads (unio-*) or started them with the loop, before the first count.
int threads_started(const outcome& o) {
  std::string me = process_name();
  // A helper left over from an earlier run may exit during this one: that is not a negative start.
  return std::max(0, named(o.r.tasks.names, me) - named(o.r.names_before, me));
}

claim claim5(lab& l) {
  claim c{"5", "POSIX AIO on Linux is implemented in user space by glibc with threads.",
          "posix_aio vs sync, 4 KiB randread QD32, cached; threads named like the process (glibc's helpers; unio "
          "names its own) counted in /proc/self/task when the loop was built and at the end of the run",
          "confirmed if the posix_aio run started >= 1 thread and more than the sync run did; refuted if it "
          "started none; partly otherwise"};
  if (auto why = l.why_not("posix_aio"); !why.empty()) return not_measurable(c, why), c;
  const outcome& p = l.get(ex("posix_aio", "", 32, "warm"));
  const outcome& s = l.get(ex("sync", "", 32, "warm"));
  if (auto m = missing({&p, &s}); !m.empty()) return not_measurable(c, m), c;
  show(c, {&p, &s});
  int np = threads_started(p), ns = threads_started(s);
  c.lines.push_back(fmt::format("threads started during the run: posix_aio {} (at the end: {}), sync {}", np,
                                p.r.tasks.names, ns));
  c.figures["threads_started_posix_aio"] = np;
  c.figures["threads_started_sync"] = ns;
  c.verdict = np >= 1 && np > ns ? k_confirmed : (np == 0 ? k_refuted : k_partly);
  c.reason = fmt::format("{} thread(s) appeared under posix_aio, {} under sync", np, ns);
  return c;
}

claim claim6(lab& l) {
  claim c{"6", "A thread-pool hand-off costs ~0.1 ms, negligible next to 5-10 ms of disk latency.",
          "hand-off = mean latency of a 4 KiB cached read at QD1 through the pool minus the same read done inline "
          "(sync); naive pool = threadpool with inline_nowait=false, spin_us=0, pool_nice=0; disk = sync O_DIRECT QD1 mean",
          "confirmed if the naive hand-off is <= 10% of this disk's latency; refuted if > 50%; partly in between"};
  const outcome& s = l.get(ex("sync", "", 1, "warm"));
  const outcome& n = l.get(ex("threadpool", "naive", 1, "warm"));
  const outcome& t = l.get(ex("threadpool", "", 1, "warm"));
  const outcome& d = l.get(ex("sync", "", 1, "warm", true));
  if (auto m = missing({&s, &n, &t, &d}); !m.empty()) return not_measurable(c, m), c;
  show(c, {&s, &n, &t, &d});
  double naive = n.r.lat.mean - s.r.lat.mean, tuned = t.r.lat.mean - s.r.lat.mean, disk = d.r.lat.mean;
  double share = per(naive, disk);
  c.lines.push_back(fmt::format("hand-off: naive pool {:.1f} us, unio's pool {:.1f} us; disk (O_DIRECT QD1) {:.1f} us "
                                "mean, p99 {:.1f} us; naive hand-off = {:.0f}% of the disk latency (the claim: 0.1/5 = 2%)",
                                us(naive), us(tuned), us(disk), us(static_cast<double>(d.r.lat.p99)), share * 100));
  c.figures.update({{"handoff_naive_us", us(naive)}, {"handoff_unio_us", us(tuned)}, {"disk_us", us(disk)},
                    {"handoff_share_of_disk", share}});
  c.verdict = share <= 0.10 ? k_confirmed : (share > 0.5 ? k_refuted : k_partly);
  c.reason = fmt::format("naive hand-off {:.0f} us = {:.0f}% of a {:.0f} us disk read", us(naive), share * 100, us(disk));
  return c;
}

claim claim7(lab& l) {
  claim c{"7", "io_uring needs no O_DIRECT to be asynchronous: buffered reads that miss the cache do not block.",
          "io_uring vs threadpool (and sync for scale), 4 KiB randread QD32, cold buffered file; io_uring as unio "
          "runs it (reads of files that miss go to its cold reader thread) and io_uring-inline_misses (every read "
          "tried inside io_uring_enter, as the kernel does by itself)",
          "confirmed if io_uring's stall p99 <= 2x threadpool's; refuted if >= 10x; partly in between"};
  if (auto why = l.why_not("io_uring"); !why.empty()) return not_measurable(c, why), c;
  const outcome& u = l.get(ex("io_uring", "", 32, "cold"));
  const outcome& k = l.get(ex("io_uring", "inline_misses", 32, "cold"));
  const outcome& t = l.get(ex("threadpool", "", 32, "cold"));
  const outcome& s = l.get(ex("sync", "", 32, "cold"));
  if (auto m = missing({&u, &k, &t, &s}); !m.empty()) return not_measurable(c, m), c;
  show(c, {&u, &k, &t, &s});
  if (auto m = not_cold({&u, &k}); !m.empty()) return not_measurable(c, m), c;
  c.lines.push_back("io_uring threads at the end: " + u.r.tasks.names);
  double r = over(stall(u), stall(t)), rk = over(stall(k), stall(t));
  c.figures["stall_ratio_vs_threadpool"] = r;
  c.figures["stall_ratio_inline_misses_vs_threadpool"] = rk;
  c.figures["iops_ratio_vs_inline_misses"] = per(u.r.iops, k.r.iops);
  c.verdict = r <= 2 ? k_confirmed : (r >= 10 ? k_refuted : k_partly);
  c.reason = fmt::format("io_uring's stall p99 is {:.1f}x threadpool's ({:.1f}x sync's); tried inline as the kernel "
                         "does by itself, {:.1f}x",
                         r, over(stall(u), stall(s)), rk);
  return c;
}

claim claim8a(lab& l) {
  claim c{"8a", "io_uring reduces context switches by orders of magnitude (vs a thread pool).",
          "io_uring vs naive threadpool (and unio's threadpool), 4 KiB randread QD32, cached; voluntary+involuntary "
          "switches of the whole process (getrusage) per op",
          "confirmed if naive-pool switches/op >= 100x io_uring's (two orders); refuted if < 10x; partly in between "
          "(io_uring's count is floored at 1 per run)"};
  if (auto why = l.why_not("io_uring"); !why.empty()) return not_measurable(c, why), c;
  const outcome& u = l.get(ex("io_uring", "", 32, "warm"));
  const outcome& n = l.get(ex("threadpool", "naive", 32, "warm"));
  const outcome& t = l.get(ex("threadpool", "", 32, "warm"));
  if (auto m = missing({&u, &n, &t}); !m.empty()) return not_measurable(c, m), c;
  show(c, {&u, &n, &t});
  double floor = per(1.0, static_cast<double>(std::max<std::uint64_t>(u.r.ops, 1)));
  double r = per(n.csw_per_op(), std::max(u.csw_per_op(), floor));
  double rt = per(t.csw_per_op(), std::max(u.csw_per_op(), floor));
  c.figures.update({{"csw_ratio_naive", r}, {"csw_ratio_unio_pool", rt}});
  c.verdict = grade(r, 100, 10);
  c.reason = fmt::format("naive pool {:.1f}x io_uring's switches per op (unio's pool {:.1f}x)", r, rt);
  return c;
}

claim claim8b(lab& l) {
  claim c{"8b", "Batching submissions in one io_uring_enter cuts system calls.",
          "strace -f -c of a child `unio-bench run` (1.5 s minus 0.2 s, so start-up calls cancel): io_uring vs naive "
          "threadpool (and unio's), 4 KiB randread QD32, cached",
          "confirmed if io_uring makes <= 0.5x the naive pool's system calls per op; refuted if >= 1x; partly in between"};
  if (auto why = l.why_not("io_uring"); !why.empty()) return not_measurable(c, why), c;
  if (l.quick()) return not_measurable(c, "system calls are counted under strace only in the full run (not --quick)"), c;
  syscall_count u = count_syscalls(ex("io_uring", "", 32, "warm"), l);
  syscall_count n = count_syscalls(ex("threadpool", "naive", 32, "warm"), l);
  syscall_count t = count_syscalls(ex("threadpool", "", 32, "warm"), l);
  for (const auto* s : {&u, &n, &t})
    if (!s->error.empty()) return not_measurable(c, s->error), c;
  c.lines.push_back(fmt::format("system calls per op (under strace): io_uring {:.3f}, naive threadpool {:.3f}, "
                                "unio threadpool {:.3f} ({:.0f}/{:.0f}/{:.0f} calls over {}/{}/{} ops)",
                                u.per_op, n.per_op, t.per_op, u.calls, n.calls, t.calls, u.ops, n.ops, t.ops));
  c.figures.update({{"syscalls_per_op_io_uring", u.per_op}, {"syscalls_per_op_naive", n.per_op},
                    {"syscalls_per_op_unio_pool", t.per_op}});
  double r = per(u.per_op, n.per_op);
  c.verdict = r <= 0.5 ? k_confirmed : (r >= 1 ? k_refuted : k_partly);
  c.reason = fmt::format("io_uring makes {:.2f}x the naive pool's system calls per op", r);
  return c;
}

claim claim8c(lab& l) {
  claim c{"8c", "SQPOLL mode can eliminate system calls entirely.",
          "strace -f -c of a child `unio-bench run` (as in 8b): io_uring with SQPOLL (100 ms idle) vs plain io_uring, "
          "4 KiB randread QD32, cached; the CPU of the poller thread (counted in the process) beside",
          "confirmed if SQPOLL makes <= 0.01 system calls per op; refuted if it makes >= 0.5x plain io_uring's; partly "
          "in between (the loop still enters the kernel to wait for completions when none are ready)"};
  if (auto why = l.why_not("io_uring"); !why.empty()) return not_measurable(c, why), c;
  const outcome& q = l.get(ex("io_uring", "sqpoll", 32, "warm"));
  const outcome& u = l.get(ex("io_uring", "", 32, "warm"));
  if (auto m = missing({&q, &u}); !m.empty()) return not_measurable(c, m), c;
  show(c, {&q, &u});
  c.lines.push_back(fmt::format("cores used: SQPOLL {:.2f}, plain {:.2f} (the poller spins on a core of its own)",
                                q.r.elapsed_s > 0 ? (q.r.cpu.user_s + q.r.cpu.sys_s) / q.r.elapsed_s : 0,
                                u.r.elapsed_s > 0 ? (u.r.cpu.user_s + u.r.cpu.sys_s) / u.r.elapsed_s : 0));
  if (l.quick()) return not_measurable(c, "system calls are counted under strace only in the full run (not --quick)"), c;
  syscall_count sq = count_syscalls(ex("io_uring", "sqpoll", 32, "warm"), l);
  syscall_count pl = count_syscalls(ex("io_uring", "", 32, "warm"), l);
  for (const auto* x : {&sq, &pl})
    if (!x->error.empty()) return not_measurable(c, x->error), c;
  c.lines.push_back(fmt::format("system calls per op (under strace): SQPOLL {:.4f}, plain io_uring {:.4f}", sq.per_op,
                                pl.per_op));
  c.figures.update({{"syscalls_per_op_sqpoll", sq.per_op}, {"syscalls_per_op_io_uring", pl.per_op},
                    {"cpu_us_per_op_sqpoll", q.us_per_op()}, {"cpu_us_per_op_io_uring", u.us_per_op()}});
  double r = per(sq.per_op, pl.per_op);
  c.verdict = sq.per_op <= 0.01 ? k_confirmed : (r >= 0.5 ? k_refuted : k_partly);
  c.reason = fmt::format("SQPOLL makes {:.4f} system calls per op ({:.2f}x plain io_uring's), at {:.2f} vs {:.2f} us "
                         "CPU per op", sq.per_op, r, q.us_per_op(), u.us_per_op());
  return c;
}

claim claim9(lab& l) {
  claim c{"9", "Fixed (registered) buffers and files cut per-op cost.",
          "CPU per op: io_uring with registered buffers and file (loop::register_buffers/register_files) vs plain "
          "io_uring, 4 KiB randread QD32, cached and O_DIRECT",
          "confirmed if either case costs >= 10% less CPU per op with registration; refuted if neither costs >= 3% "
          "less; partly otherwise"};
  if (auto why = l.why_not("io_uring"); !why.empty()) return not_measurable(c, why), c;
  const outcome& fc = l.get(ex("io_uring", "fixed", 32, "warm"));
  const outcome& pc = l.get(ex("io_uring", "", 32, "warm"));
  const outcome& fd = l.get(ex("io_uring", "fixed", 32, "warm", true));
  const outcome& pd = l.get(ex("io_uring", "", 32, "warm", true));
  if (auto m = missing({&fc, &pc}); !m.empty()) return not_measurable(c, m), c;
  show(c, {&fc, &pc});
  double cached = 1 - per(fc.us_per_op(), pc.us_per_op());
  double direct = 0;
  bool have_direct = fd.ok() && pd.ok();
  if (have_direct) {
    show(c, {&fd, &pd});
    direct = 1 - per(fd.us_per_op(), pd.us_per_op());
  } else {
    c.lines.push_back("O_DIRECT case not run: " + (fd.ok() ? pd.unavailable : fd.unavailable));
  }
  c.figures.update({{"cpu_saving_cached", cached}, {"cpu_saving_direct", have_direct ? json(direct) : json(nullptr)}});
  double best = std::max(cached, direct);
  c.verdict = best >= 0.10 ? k_confirmed : (best < 0.03 ? k_refuted : k_partly);
  c.reason = fmt::format("registration saves {:.0f}% CPU per op on cached reads{}", cached * 100,
                         have_direct ? fmt::format(", {:.0f}% on O_DIRECT reads", direct * 100) : std::string());
  return c;
}

claim claim10(lab& l) {
  claim c{"10", "io_uring cuts CPU usage by 50-80% for I/O-heavy workloads.",
          "CPU per op (getrusage of the whole process, all threads): io_uring vs naive threadpool, with unio's "
          "threadpool and sync beside, 4 KiB randread QD32, cached",
          "confirmed if io_uring's CPU/op is >= 50% below the naive pool's; refuted if < 10% below; partly in between"};
  if (auto why = l.why_not("io_uring"); !why.empty()) return not_measurable(c, why), c;
  const outcome& u = l.get(ex("io_uring", "", 32, "warm"));
  const outcome& n = l.get(ex("threadpool", "naive", 32, "warm"));
  const outcome& t = l.get(ex("threadpool", "", 32, "warm"));
  const outcome& s = l.get(ex("sync", "", 32, "warm"));
  if (auto m = missing({&u, &n, &t, &s}); !m.empty()) return not_measurable(c, m), c;
  show(c, {&u, &n, &t, &s});
  double cut = 1 - per(u.us_per_op(), n.us_per_op()), cut_t = 1 - per(u.us_per_op(), t.us_per_op());
  c.figures.update({{"cpu_cut_vs_naive", cut}, {"cpu_cut_vs_unio_pool", cut_t}});
  c.verdict = grade(cut, 0.5, 0.1);
  c.reason = fmt::format("io_uring uses {:.0f}% less CPU per op than the naive pool, {:.0f}% less than unio's pool",
                         cut * 100, cut_t * 100);
  return c;
}

claim claim11(lab& l) {
  claim c{"11", "io_uring gives 2-3x throughput at high concurrency, particularly for mixed read/write.",
          "io_uring vs naive threadpool (and unio's), 4 KiB randrw (70% reads) and randread, QD128, cached",
          "confirmed if io_uring's randrw IOPS >= 2x the naive pool's and its randrw gain >= its randread gain; "
          "refuted if the randrw gain < 1.2x; partly otherwise"};
  if (auto why = l.why_not("io_uring"); !why.empty()) return not_measurable(c, why), c;
  const outcome& urd = l.get(ex("io_uring", "", 128, "warm"));
  const outcome& nrd = l.get(ex("threadpool", "naive", 128, "warm"));
  const outcome& trd = l.get(ex("threadpool", "", 128, "warm"));
  const outcome& urw = l.get(ex("io_uring", "", 128, "warm", false, "randrw"));
  const outcome& nrw = l.get(ex("threadpool", "naive", 128, "warm", false, "randrw"));
  const outcome& trw = l.get(ex("threadpool", "", 128, "warm", false, "randrw"));
  if (auto m = missing({&urd, &nrd, &trd, &urw, &nrw, &trw}); !m.empty()) return not_measurable(c, m), c;
  show(c, {&urd, &nrd, &trd, &urw, &nrw, &trw});
  double rw = per(urw.r.iops, nrw.r.iops), rd = per(urd.r.iops, nrd.r.iops);
  double rw_t = per(urw.r.iops, trw.r.iops), rd_t = per(urd.r.iops, trd.r.iops);
  c.figures.update({{"randrw_gain_vs_naive", rw}, {"randread_gain_vs_naive", rd},
                    {"randrw_gain_vs_unio_pool", rw_t}, {"randread_gain_vs_unio_pool", rd_t}});
  c.verdict = rw >= 2 && rw >= rd ? k_confirmed : (rw < 1.2 ? k_refuted : k_partly);
  c.reason = fmt::format("io_uring/naive pool: randrw {:.2f}x, randread {:.2f}x (vs unio's pool: {:.2f}x, {:.2f}x)",
                         rw, rd, rw_t, rd_t);
  return c;
}

const std::vector<std::string>& file_ops() {
  static const std::vector<std::string> ops = {"open", "close", "read", "write", "readv", "writev", "fsync", "fdatasync",
                                               "fallocate", "ftruncate", "stat", "rename", "unlink", "mkdir", "rmdir"};
  return ops;
}

// File ops the backend performs itself; the others are listed in `delegated`.
int native_file_ops(const unio::backend_info& b, std::string& delegated) {
  int n = 0;
  for (std::size_t i = 0; i < unio::op_code_count; ++i) {
    std::string name(unio::to_string(static_cast<unio::op_code>(i)));
    if (std::find(file_ops().begin(), file_ops().end(), name) == file_ops().end()) continue;
    if (b.native[i]) ++n;
    else delegated += (delegated.empty() ? "" : " ") + name;
  }
  return n;
}

claim claim12(lab&) {
  claim c{"12", "A thread pool covers every file operation; AIO leaves many (open, stat, rename, ...) blocking.",
          "the native-operation tables of the backends built here (unio::probe_backends), 15 file operations",
          "confirmed if threadpool does all 15 itself and every AIO backend here does fewer; refuted if an AIO backend "
          "does all 15 or threadpool does not"};
  const unio::backend_info* pool = nullptr;
  std::vector<const unio::backend_info*> aio;
  auto infos = unio::probe_backends();
  for (const auto& b : infos) {
    if (b.name == "threadpool") pool = &b;
    if (b.name == "linux_aio" || b.name == "posix_aio") aio.push_back(&b);
  }
  if (pool == nullptr || aio.empty()) return not_measurable(c, "threadpool or no AIO backend built into this unio"), c;
  std::string none;
  int np = native_file_ops(*pool, none);
  bool aio_short = true;
  c.lines.push_back(fmt::format("threadpool: {} of {} file ops itself", np, file_ops().size()));
  for (const auto* b : aio) {
    std::string del;
    int n = native_file_ops(*b, del);
    aio_short = aio_short && n < static_cast<int>(file_ops().size());
    c.lines.push_back(fmt::format("{}: {} of {} itself; to the pool: {}", b->name, n, file_ops().size(), del));
    c.figures[b->name + "_native_file_ops"] = n;
  }
  c.figures["threadpool_native_file_ops"] = np;
  bool full = np == static_cast<int>(file_ops().size());
  c.verdict = full && aio_short ? k_confirmed : k_refuted;
  c.reason = "unio sends the rest to its pool, so none of them blocks the loop";
  return c;
}

std::string read_sysctl(const char* path) {
  std::ifstream f(path);
  std::string v;
  return f >> v ? v : std::string();
}

claim claim13(lab&, const seccomp_probe& sp) {
  claim c{"13", "io_uring can be disabled by sysctl or seccomp (some distributions do), so a fallback is needed.",
          "read kernel.io_uring_disabled; ask unio which backends work here, and again in a child under a seccomp "
          "filter that refuses io_uring_setup",
          "confirmed if the sysctl exists and under seccomp unio reports io_uring unavailable and auto falls back; "
          "partly if only one of the two; refuted if neither"};
  std::string v = read_sysctl("/proc/sys/kernel/io_uring_disabled");
  c.lines.push_back("kernel.io_uring_disabled = " + (v.empty() ? std::string("(absent: kernel before 6.6)") : v) +
                    " (0 = allowed, 1 = only the io_uring_group, 2 = nobody)");
  for (const auto& b : unio::probe_backends())
    if (b.name == "io_uring")
      c.lines.push_back(fmt::format("here: io_uring {}", b.available ? "available" : "unavailable: " + b.reason));
  if (!sp.error.empty()) c.lines.push_back("seccomp child: " + sp.error);
  else if (!sp.listed) return not_measurable(c, "backend io_uring not built into this unio"), c;
  else
    c.lines.push_back(fmt::format("under seccomp: io_uring {}; auto picks {} ({})",
                                  sp.available ? "available" : "unavailable: " + sp.reason, sp.auto_pick, sp.auto_why));
  bool fell_back = sp.error.empty() && !sp.available && !sp.auto_pick.empty() && sp.auto_pick != "io_uring";
  c.figures.update({{"sysctl", v}, {"seccomp_refused", fell_back}, {"auto_under_seccomp", sp.auto_pick}});
  int held = (v.empty() ? 0 : 1) + (fell_back ? 1 : 0);
  c.verdict = held == 2 ? k_confirmed : (held == 1 ? k_partly : k_refuted);
  c.reason = fell_back ? "unio falls back to " + sp.auto_pick + " when io_uring is refused" : "no fallback shown";
  return c;
}

std::vector<claim> evaluate(lab& l, const seccomp_probe& sp) {
  std::vector<std::function<claim(lab&)>> all = {claim1, claim2, claim3, claim4, claim5, claim6, claim7, claim8a,
                                                 claim8b, claim8c, claim9, claim10, claim11, claim12};
  std::vector<claim> out;
  for (const auto& f : all) out.push_back(f(l));
  out.push_back(claim13(l, sp));
  return out;
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::toupper(ch); });
  return s;
}

void print_claim(std::FILE* out, const claim& c) {
  fmt::print(out, "[{}] {}\n", c.id, c.quote);
  fmt::print(out, "    experiment: {}\n", c.experiment);
  for (const auto& ln : c.lines) fmt::print(out, "      {}\n", ln);
  fmt::print(out, "    rule:       {}\n", c.rule);
  fmt::print(out, "    verdict:    {}{}\n\n", upper(c.verdict), c.reason.empty() ? "" : " -- " + c.reason);
}

void print_summary(std::FILE* out, const std::vector<claim>& cs) {
  fmt::print(out, "Summary\n");
  for (const auto& c : cs) fmt::print(out, "  {:<4} {:<20} {}\n", c.id, c.verdict, c.quote);
}

void print_runs(std::FILE* out, const lab& l) {
  fmt::print(out, "\nExperiments (4 KiB, 1 loop, {} s each warm, {} s cold; stall = 1 ms timer lateness)\n",
             l.runtime_for(experiment{}), l.runtime_for(experiment{"sync", "", "randread", 32, false, "cold"}));
  for (const auto& o : l.all())
    fmt::print(out, "  {}\n", o->ok() ? line(*o) : fmt::format("{:<34} not run: {}", o->spec.label(), o->unavailable));
}

void print_recs(std::FILE* out, const std::vector<recommendation>& recs) {
  fmt::print(out, "\nWhen to use what on this machine (computed from the runs above)\n");
  for (const auto& r : recs)
    fmt::print(out, "  {}:\n    -> {} ({})\n", r.workload, r.pick.empty() ? "no data" : r.pick, r.why);
}

json claims_json(const std::vector<claim>& cs) {
  json a = json::array();
  for (const auto& c : cs)
    a.push_back({{"id", c.id}, {"claim", c.quote}, {"experiment", c.experiment}, {"rule", c.rule},
                 {"verdict", c.verdict}, {"reason", c.reason}, {"figures", c.figures}, {"lines", c.lines}});
  return a;
}

json report_json(const claims_options& o, const lab& l, const std::vector<claim>& cs,
                 const std::vector<recommendation>& recs, double wall) {
  json runs = json::array();
  for (const auto& r : l.all()) {
    if (!r->ok()) {
      runs.push_back({{"label", r->spec.label()}, {"not_run", r->unavailable}});
      continue;
    }
    json j = run_result_json(r->opts, r->r);
    j["label"] = r->spec.label();
    j["variant"] = r->spec.variant;
    runs.push_back(j);
  }
  return {{"unio_version", unio::version_string}, {"machine", machine_info_json()},
          {"mode", o.quick ? "quick" : "full"}, {"wall_s", wall},
          {"file", {{"size", l.file().size}, {"temporary", l.file().remove_after}}},
          {"claims", claims_json(cs)}, {"results", runs}, {"recommendations", recommendations_json(recs)}};
}

std::vector<plot_row> plot_rows(const lab& l) {
  std::vector<plot_row> rows;
  for (const auto& o : l.all())
    if (o->ok())
      rows.push_back({o->spec.label(), o->r.iops, o->us_per_op(), us(static_cast<double>(o->r.lat.p99)),
                      us(static_cast<double>(o->r.stall_p99))});
  return rows;
}

test_file make_file(const claims_options& o) {
  run_options ro;
  ro.file = o.file;
  ro.size = o.quick ? (std::uint64_t{256} << 20) : (std::uint64_t{1} << 30);
  progress(fmt::format("writing the {} MiB test file", ro.size >> 20));
  return prepare_test_file(ro);
}

int finish(const claims_options& o, const lab& l, const std::vector<claim>& cs, double wall) {
  std::FILE* text = o.json == "-" ? stderr : stdout;
  auto recs = recommend(l.all());
  for (const auto& c : cs) print_claim(text, c);
  print_summary(text, cs);
  print_runs(text, l);
  print_recs(text, recs);
  fmt::print(text, "\nwall time {:.1f} s ({}); load average {}\n", wall, o.quick ? "quick" : "full", load_average());
  bool ok = true;
  if (!o.json.empty()) ok = write_text(o.json, report_json(o, l, cs, recs, wall).dump(2) + "\n");
  if (!o.plot.empty()) {
    std::string err = write_plot(o.plot, "unio-bench claims: the experiments", plot_rows(l));
    if (!err.empty()) fmt::print(stderr, "unio-bench: --plot: {}\n", err);
    ok = ok && err.empty();
  }
  return ok ? 0 : 1;
}

}  // namespace

int cmd_claims(const claims_options& o) {
  auto t0 = std::chrono::steady_clock::now();
  if (!o.plot.empty() && find_gnuplot().empty()) {
    fmt::print(stderr, "unio-bench: --plot: gnuplot not found on PATH (install gnuplot-nox)\n");
    return 2;
  }
  seccomp_probe sp = probe_under_seccomp();  // first: the process must still have one thread
  test_file f;
  try {
    f = make_file(o);
  } catch (const std::exception& e) {
    fmt::print(stderr, "unio-bench: {}\n", e.what());
    return 2;
  }
  lab l(o.quick, f);
  l.set_deadline(t0 + std::chrono::seconds(o.quick ? 38 : 175));
  std::vector<claim> cs = evaluate(l, sp);
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int rc = finish(o, l, cs, wall);
  remove_test_file(f);
  return rc;
}

}  // namespace unio_bench
