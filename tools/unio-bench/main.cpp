// unio-bench: measures unio's backends side by side (and against fio and libuv) on this machine.
// The command-line contract is docs/unio-bench.md; other tools and tests rely on it.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <stdexcept>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <unio/unio.hpp>

#include "claims.hpp"
#include "options.hpp"
#include "plot.hpp"
#include "peers.hpp"
#include "report.hpp"
#include "testfile.hpp"
#include "workload.hpp"

namespace unio_bench {

std::optional<std::uint64_t> parse_size(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0 || i > 19) return std::nullopt;
  std::uint64_t n = std::stoull(text.substr(0, i));
  std::string unit = text.substr(i);
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::pair<const char*, unsigned> k_units[] = {
      {"", 0}, {"b", 0}, {"k", 10}, {"kb", 10}, {"kib", 10}, {"m", 20}, {"mb", 20}, {"mib", 20},
      {"g", 30}, {"gb", 30}, {"gib", 30}, {"t", 40}, {"tb", 40}, {"tib", 40}};
  for (const auto& [name, shift] : k_units) {
    if (unit != name) continue;
    if (shift && n > (~std::uint64_t{0} >> shift)) return std::nullopt;
    return n << shift;
  }
  return std::nullopt;
}

namespace {

struct raw_args {
  std::string backend = "auto", bs = "4k", size = "1g";
  bool naive_pool = false;
  std::string plot;
};

int fail(const std::string& msg) {
  fmt::print(stderr, "unio-bench: {}\n", msg);
  return 2;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t comma; (comma = s.find(',', start)) != std::string::npos; start = comma + 1)
    out.push_back(s.substr(start, comma - start));
  out.push_back(s.substr(start));
  return out;
}

// "all" = every backend available here; a named backend must be built in and available.
std::string resolve_backends(const std::string& spec, std::vector<std::string>& out) {
  auto infos = unio::probe_backends();
  for (const auto& name : split(spec)) {
    if (name == "all") {
      for (const auto& b : infos)
        if (b.available) out.push_back(b.name);
      continue;
    }
    if (name == "auto") {
      out.push_back(name);
      continue;
    }
    auto it = std::find_if(infos.begin(), infos.end(), [&](const auto& b) { return b.name == name; });
    bool known = std::count(known_backend_names().begin(), known_backend_names().end(), name) > 0;
    if (it == infos.end())
      return known ? "--backend " + name + ": not built into this unio (see unio-bench backends)"
                   : "--backend " + name + ": unknown backend (auto, all, sync, threadpool, io_uring, linux_aio, posix_aio)";
    if (!it->available) return "--backend " + name + ": unavailable here: " + it->reason;
    out.push_back(name);
  }
  if (out.empty()) return "--backend: no backend selected";
  return "";
}

std::string check_sizes(const raw_args& a, run_options& o) {
  auto bs = parse_size(a.bs);
  if (!bs) return "--bs " + a.bs + ": not a size (examples: 4k, 128k, 1m)";
  if (*bs == 0) return "--bs must be greater than 0";
  if (*bs > (std::uint64_t{64} << 20)) return "--bs must be at most 64m";
  auto size = parse_size(a.size);
  if (!size) return "--size " + a.size + ": not a size (examples: 8m, 1g)";
  if (*size < *bs) return "--size must be at least --bs";
  if (a.bs.empty() || a.size.empty()) return "empty size";
  o.bs = *bs;
  o.size = *size / *bs * *bs;
  if (o.direct && o.bs % 512 != 0 && o.misalign == 0)
    return "--direct needs --bs to be a multiple of 512 (or --misalign, which unio's O_DIRECT layer serves)";
  if (o.misalign > 0 && o.size < 2 * o.bs) return "--misalign needs --size of at least two blocks";
  if (o.misalign > 0 && o.vs == "fio") return "--misalign cannot be compared with fio (fio has no unaligned O_DIRECT I/O)";
  return "";
}

std::string check_unsupported(const raw_args& a) {
  if (!a.plot.empty() && find_gnuplot().empty()) return "--plot: gnuplot not found on PATH (install gnuplot-nox)";
  return "";
}

std::string validate(const raw_args& a, run_options& o) {
  std::string err = check_unsupported(a);
  if (err.empty()) err = check_sizes(a, o);
  if (err.empty()) err = resolve_backends(a.backend, o.backends);
  if (err.empty() && !o.vs.empty()) err = check_peer(o);
  if (err.empty() && !o.file.empty()) err = check_file_arg(o.file);
  return err;
}

void add_run_options(CLI::App* run, run_options& o, raw_args& a) {
  run->add_option("--backend", a.backend, "B[,B..] | all | auto");
  run->add_option("--rw", o.rw, "workload")->check(CLI::IsMember({"randread", "randwrite", "read", "write", "randrw"}));
  run->add_option("--bs", a.bs, "block size (4k)");
  run->add_option("--iodepth", o.iodepth, "ops in flight per loop")->check(CLI::Range(1u, 65536u));
  run->add_option("--size", a.size, "file size (1g)");
  run->add_option("--file", o.file, "test file (default: a temporary file in the current directory)");
  run->add_flag("--direct", o.direct, "O_DIRECT");
  run->add_option("--misalign", o.misalign, "add N bytes to every offset and buffer address (unaligned I/O)")
      ->check(CLI::Range(0u, 4095u));
  run->add_option("--runtime", o.runtime_s, "seconds per backend")->check(CLI::Range(0.05, 86400.0));
  run->add_option("--threads", o.threads, "loops, one thread each")->check(CLI::Range(1u, 256u));
  run->add_option("--pool", o.pool, "thread pool size per loop (0 = unio's default)")->check(CLI::Range(0u, 1024u));
  run->add_option("--pool-max", o.pool_max, "most pool workers while some wait on the disk (default 64; "
                                              "--pool or less: no growth)")
      ->check(CLI::Range(0u, 4096u));
  run->add_flag("--uring-inline-misses", o.uring_inline_misses,
                "io_uring: try every buffered read on the loop's thread, misses too (io_uring's own behaviour; "
                "default: reads of files that miss go to io-wq)");
  run->add_option("--pool-nice", o.pool_nice, "nice steps of the pool's workers below the loop (0-19; default 10)")
      ->check(CLI::Range(0, 19));
  run->add_option("--rwmixread", o.rwmixread, "randrw: percent reads")->check(CLI::Range(0u, 100u));
  run->add_option("--cache", o.cache, "warm | cold")->check(CLI::IsMember({"warm", "cold"}));
  run->add_flag("--verify", o.verify, "check the data of every op");
  run->add_option("--vs", o.vs, "also run a peer: fio | libuv")->check(CLI::IsMember({"fio", "libuv"}));
  run->add_option("--json", o.json, "write JSON to FILE, or - for stdout");
  run->add_option("--csv", o.csv, "write CSV to FILE, or - for stdout");
  run->add_option("--stall-log", o.stall_log,
                  "write every loop-stall probe to FILE (- for stdout): backend, loop, due time (CLOCK_MONOTONIC ns, "
                  "as perf record -k mono), lateness (ns)");
  run->add_flag("--fixed-buffers", o.fixed_buffers, "io_uring: registered buffers and file (no effect elsewhere)");
  run->add_flag("--sqpoll", o.sqpoll, "io_uring: SQPOLL, 100 ms idle; keeps a core busy (no effect elsewhere)");
  run->add_option("--plot", a.plot, "SVG plot of IOPS, CPU/op, p99 latency and loop stall per backend (gnuplot)");
  run->add_flag("--naive-pool", a.naive_pool, "threadpool: no RWF_NOWAIT inline reads, no spinning, workers at the loop's priority (a plain pool)");
  run->add_flag("--aio-buffered", o.aio_buffered, "linux_aio: buffered files through io_submit too");
  run->add_flag("--nonblock", o.nonblock, "open the file with O_NONBLOCK");
}

void add_claims_options(CLI::App* claims, claims_options& c) {
  claims->add_flag("--quick", c.quick, "about 40 s instead of about 3 min (smaller file, shorter runs, no strace)");
  claims->add_option("--json", c.json, "write JSON to FILE, or - for stdout (the text then goes to stderr)");
  claims->add_option("--plot", c.plot, "SVG plot of every experiment (gnuplot)");
  claims->add_option("--file", c.file, "test file (default: a temporary file in the current directory)");
}

std::vector<plot_row> run_plot_rows(const run_report& rep) {
  std::vector<plot_row> rows;
  for (const auto& r : rep.results)
    rows.push_back({r.backend == r.resolved ? r.resolved : r.backend + "=" + r.resolved, r.iops, r.ns_per_op() / 1000,
                    static_cast<double>(r.lat.p99) / 1000, static_cast<double>(r.stall_p99) / 1000});
  return rows;
}

bool emit_plot(const run_report& rep, const std::string& path) {
  if (path.empty()) return true;
  const run_options& o = rep.opts;
  std::string title = fmt::format("unio-bench run: {} bs={} iodepth={} direct={} cache={}", o.rw, o.bs, o.iodepth,
                                  o.direct ? 1 : 0, o.cache);
  std::string err = write_plot(path, title, run_plot_rows(rep));
  if (err.empty()) return true;
  fmt::print(stderr, "unio-bench: --plot: {}\n", err);
  return false;
}

void run_peer(run_report& rep, const backend_result& r, const test_file& f) {
  if (rep.opts.vs.empty()) return;
  if (rep.opts.cache == "warm") prepare_cache(f, "warm");
  fmt::print(stderr, "running peer {} vs {} ...\n", rep.opts.vs, r.backend);
  rep.peers.push_back(rep.opts.vs == "fio" ? run_fio(rep.opts, r, f) : run_libuv(rep.opts, r, f));
}

bool run_all(run_report& rep, const test_file& f) {
  for (const auto& b : rep.opts.backends) {
    prepare_cache(f, rep.opts.cache);
    double before = residency(f);
    fmt::print(stderr, "running {} ...\n", b);
    try {
      rep.results.push_back(run_backend(rep.opts, b, f));
    } catch (const std::exception& e) {
      fmt::print(stderr, "unio-bench: backend {}: {}\n", b, e.what());
      return false;
    }
    rep.results.back().resident_before = before;
    rep.results.back().resident_after = residency(f);
    run_peer(rep, rep.results.back(), f);
  }
  return true;
}

int emit(const run_report& rep) {
  bool ok = true;
  std::FILE* text = rep.opts.json == "-" || rep.opts.csv == "-" || rep.opts.stall_log == "-" ? stderr : stdout;
  print_table(text, rep);
  if (!rep.opts.json.empty()) ok = write_json(rep.opts.json, rep) && ok;
  if (!rep.opts.csv.empty()) ok = write_csv(rep.opts.csv, rep) && ok;
  if (!rep.opts.stall_log.empty()) ok = write_stall_log(rep.opts.stall_log, rep) && ok;
  for (const auto& r : rep.results) ok = ok && r.errors == 0 && r.verify_errors == 0;
  for (const auto& p : rep.peers) ok = ok && p.error.empty();
  return ok ? 0 : 1;
}

int cmd_run(run_options& o, const raw_args& a) {
  if (std::string err = validate(a, o); !err.empty()) return fail(err);
  if (a.naive_pool) {
    o.inline_nowait = false;
    o.spin_us = 0;
    o.pool_nice = 0;
  }
  run_report rep;
  rep.opts = o;
  test_file f;
  try {
    f = prepare_test_file(o);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  print_run_header(stderr, o, f.path, f.remove_after);
  bool ran = run_all(rep, f);
  remove_test_file(f);
  if (!ran) return 1;
  int rc = emit(rep);
  return emit_plot(rep, a.plot) ? rc : 1;
}

}  // namespace
}  // namespace unio_bench

int main(int argc, char** argv) {
  using namespace unio_bench;
  CLI::App app{"unio-bench: unio's I/O backends measured side by side on this machine"};
  app.require_subcommand(0, 1);
  auto* backends = app.add_subcommand("backends", "each backend: available or why not; native vs delegated ops");
  auto* claims = app.add_subcommand("claims", "common claims about Linux file I/O models, measured here (default command)");
  auto* run = app.add_subcommand("run", "run a workload on one or more backends");
  run_options opts;
  raw_args raw;
  add_run_options(run, opts, raw);
  claims_options copts;
  add_claims_options(claims, copts);
  add_claims_options(&app, copts);  // `unio-bench --quick` = `unio-bench claims --quick`
  CLI11_PARSE(app, argc, argv);
  if (*backends) {
    print_backends(stdout);
    return 0;
  }
  if (*run) return cmd_run(opts, raw);
  (void)claims;
  return cmd_claims(copts);
}
