#include "report.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <thread>

#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <unio/unio.hpp>

namespace unio_bench {

namespace {

using json = nlohmann::json;

std::string first_line_with(const char* path, const std::string& key) {
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);) {
    if (line.rfind(key, 0) != 0) continue;
    auto colon = line.find(':');
    return colon == std::string::npos ? line : line.substr(line.find_first_not_of(" \t", colon + 1));
  }
  return "";
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

json machine_json() {
  utsname u{};
  ::uname(&u);
  return {{"hostname", u.nodename},
          {"kernel", unio::kernel_release()},
          {"arch", u.machine},
          {"cpus", std::thread::hardware_concurrency()},
          {"cpu_model", first_line_with("/proc/cpuinfo", "model name")},
          {"mem_total", first_line_with("/proc/meminfo", "MemTotal")},
          {"loadavg", loadavg()}};
}

json lat_json(const latency_ns& l) {
  return {{"mean", l.mean}, {"p50", l.p50}, {"p99", l.p99}, {"p999", l.p999}, {"max", l.max}};
}

json result_json(const run_options& o, const backend_result& r) {
  return {{"backend", r.resolved},
          {"requested", r.backend},
          {"rw", o.rw},
          {"bs", o.bs},
          {"iodepth", o.iodepth},
          {"direct", o.direct},
          {"misalign", o.misalign},
          {"runtime_s", r.elapsed_s},
          {"threads", o.threads},
          {"pool", o.pool},
          {"ops", r.ops},
          {"iops", r.iops},
          {"bw_bytes_s", r.bw_bytes_s},
          {"lat_ns", lat_json(r.lat)},
          {"cpu", {{"user_s", r.cpu.user_s}, {"sys_s", r.cpu.sys_s}, {"ns_per_op", r.ns_per_op()}}},
          {"cpu_tasks_check",
           {{"user_s", r.tasks.user_s}, {"sys_s", r.tasks.sys_s}, {"tasks", r.tasks.tasks},
            {"threads", r.tasks.names}, {"differs", cpu_differs(r.cpu, r.tasks)}}},
          {"ctx_switches", {{"voluntary", r.cpu.voluntary}, {"involuntary", r.cpu.involuntary}}},
          {"loop_stall_ns", {{"p99", r.stall_p99}, {"max", r.stall_max}, {"samples", r.stall_samples}}},
          {"loop_runq_wait_ns", r.loop_runq_wait_ns >= 0 ? json(r.loop_runq_wait_ns) : json(nullptr)},
          {"cache", {{"mode", o.cache}, {"resident_before", r.resident_before}, {"resident_after", r.resident_after}}},
          {"errors", r.errors},
          {"verify_errors", r.verify_errors}};
}

const backend_result* unio_result_for(const run_report& rep, const peer_result& p) {
  for (const auto& r : rep.results)
    if (r.backend == p.vs_backend) return &r;
  return nullptr;
}

double ratio(double a, double b) { return b > 0 ? a / b : 0; }

json peer_json(const run_report& rep, const peer_result& p) {
  json j = {{"peer", p.peer}, {"engine", p.engine}, {"vs_backend", p.vs_backend}, {"command", p.command}};
  if (!p.error.empty()) {
    j["error"] = p.error;
    return j;
  }
  j.update({{"ops", p.ops}, {"iops", p.iops}, {"bw_bytes_s", p.bw_bytes_s}, {"runtime_s", p.elapsed_s},
            {"cpu", {{"user_s", p.cpu.user_s}, {"sys_s", p.cpu.sys_s}, {"ns_per_op", p.ns_per_op()},
                     {"source", p.cpu_source}}},
            {"ctx_switches", {{"voluntary", p.cpu.voluntary}, {"involuntary", p.cpu.involuntary}}}});
  if (p.has_lat) j["lat_ns"] = lat_json(p.lat);
  if (const backend_result* u = unio_result_for(rep, p))
    j["ratio"] = {{"iops", ratio(u->iops, p.iops)}, {"cpu_per_op", ratio(u->ns_per_op(), p.ns_per_op())}};
  return j;
}

std::string human(double v) {
  if (v >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  if (v >= 1e3) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{:.0f}", v);
}

double us(double ns) { return ns / 1000.0; }

void print_table_head(std::FILE* out) {
  fmt::print(out, "{:<20} {:>8} {:>9} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>7} {:>5} {:>7} | {:>8} {:>8}\n", "",
             "IOPS", "MiB/s", "lat mean", "p50", "p99", "p99.9", "max", "CPU/op", "cores", "csw/op",
             "stall", "stall");
  fmt::print(out, "{:<20} {:>8} {:>9} | {:>44} | {:>7} {:>5} {:>7} | {:>8} {:>8}\n", "backend", "", "",
             "(microseconds)", "(us)", "", "", "p99 us", "max us");
}

void print_row(std::FILE* out, const std::string& name, double iops, double bw, const latency_ns* l,
               double ns_per_op, double cores, double csw_per_op, const backend_result* r) {
  std::string lat = l ? fmt::format("{:>8.1f} {:>8.1f} {:>8.1f} {:>8.1f} {:>8.1f}", us(l->mean), us(l->p50),
                                    us(l->p99), us(l->p999), us(l->max))
                      : fmt::format("{:>44}", "-");
  std::string stall = r ? fmt::format("{:>8.1f} {:>8.1f}", us(r->stall_p99), us(r->stall_max))
                        : fmt::format("{:>8} {:>8}", "-", "-");
  fmt::print(out, "{:<20} {:>8} {:>9.1f} | {} | {:>7.2f} {:>5.2f} {:>7.3f} | {}\n", name, human(iops),
             bw / (1 << 20), lat, us(ns_per_op), cores, csw_per_op, stall);
}

void print_result_row(std::FILE* out, const backend_result& r) {
  double cpu = r.cpu.user_s + r.cpu.sys_s;
  double csw = static_cast<double>(r.cpu.voluntary + r.cpu.involuntary);
  std::string name = r.backend == r.resolved ? r.resolved : r.backend + "=" + r.resolved;
  print_row(out, name, r.iops, r.bw_bytes_s, &r.lat, r.ns_per_op(), ratio(cpu, r.elapsed_s),
            ratio(csw, static_cast<double>(r.ops)), &r);
}

void print_peer_row(std::FILE* out, const peer_result& p) {
  std::string name = p.peer == "fio" ? "fio " + p.engine : p.engine;
  if (!p.error.empty()) {
    fmt::print(out, "{:<20} {}\n", name, p.error);
    return;
  }
  double cpu = p.cpu.user_s + p.cpu.sys_s;
  double csw = static_cast<double>(p.cpu.voluntary + p.cpu.involuntary);
  print_row(out, name, p.iops, p.bw_bytes_s, p.has_lat ? &p.lat : nullptr, p.ns_per_op(), ratio(cpu, p.elapsed_s),
            ratio(csw, static_cast<double>(p.ops)), nullptr);
}

// "; loops waited for a CPU 12.3 ms (0.8% of their time)", or nothing when the kernel does not say.
std::string runq_note(const backend_result& r, unsigned loops) {
  if (r.loop_runq_wait_ns < 0 || r.elapsed_s <= 0) return "";
  const double loops_s = r.elapsed_s * std::max(loops, 1u);
  const double ms = static_cast<double>(r.loop_runq_wait_ns) / 1e6;
  return fmt::format("; loops waited for a CPU {:.1f} ms ({:.1f}% of their time)", ms, ms / 10 / loops_s);
}

void print_notes(std::FILE* out, const backend_result& r, unsigned loops) {
  if (r.errors || r.verify_errors)
    fmt::print(out, "  ! {}: {} failed/short ops, {} verify mismatches; first: {}\n", r.resolved, r.errors,
               r.verify_errors, r.first_error);
  if (cpu_differs(r.cpu, r.tasks))
    fmt::print(out, "  note {}: CPU from rusage {:.3f} s, from /proc/self/task {:.3f} s ({} tasks at the end)\n",
               r.resolved, r.cpu.user_s + r.cpu.sys_s, r.tasks.user_s + r.tasks.sys_s, r.tasks.tasks);
  fmt::print(out, "  {}: threads at the end: {}; file in page cache: {:.0f}% before, {:.0f}% after{}\n", r.resolved,
             r.tasks.names, r.resident_before * 100, r.resident_after * 100, runq_note(r, loops));
}

void print_ratios(std::FILE* out, const run_report& rep) {
  for (const auto& p : rep.peers) {
    const backend_result* u = unio_result_for(rep, p);
    if (!p.error.empty() || u == nullptr) continue;
    std::string name = p.peer == "fio" ? "fio " + p.engine : p.engine;
    fmt::print(out, "  {} vs {}: {:.2f}x ops/s, CPU per op {:.2f}x ({:.2f} vs {:.2f} us)\n", u->resolved, name,
               ratio(u->iops, p.iops), ratio(u->ns_per_op(), p.ns_per_op()), us(u->ns_per_op()),
               us(p.ns_per_op()));
    if (u->resolved == "linux_aio" && p.engine == "libaio" && !rep.opts.direct && !rep.opts.aio_buffered)
      fmt::print(out, "    (linux_aio sends a buffered file's ops to its pool, so that a cache miss cannot block\n"
                      "     the loop in io_submit; fio libaio runs them inside io_submit. --aio-buffered compares\n"
                      "     the same mechanism, --direct the case where Linux AIO is asynchronous)\n");
  }
}

std::string csv_line(const std::vector<std::string>& cells) {
  std::string s;
  for (const auto& c : cells) s += (s.empty() ? "" : ",") + c;
  return s + "\n";
}

std::vector<std::string> csv_cells(const run_options& o, const std::string& kind, const std::string& name,
                                   double elapsed, std::uint64_t ops, double iops, double bw, const latency_ns& l,
                                   const cpu_sample& cpu, double ns_per_op, std::uint64_t stall_p99,
                                   std::uint64_t stall_max) {
  auto s = [](auto v) { return fmt::format("{}", v); };
  return {kind, name, o.rw, s(o.bs), s(o.iodepth), s(o.threads), s(o.pool), s(o.direct ? 1 : 0),
          s(elapsed), s(ops), s(iops), s(bw), s(l.mean), s(l.p50), s(l.p99), s(l.p999), s(l.max),
          s(cpu.user_s), s(cpu.sys_s), s(ns_per_op), s(cpu.voluntary), s(cpu.involuntary), s(stall_p99),
          s(stall_max)};
}

}  // namespace

bool write_text(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::cout << text << std::flush;
    return true;
  }
  std::ofstream f(path);
  f << text;
  if (f.flush()) return true;
  fmt::print(stderr, "unio-bench: cannot write {}\n", path);
  return false;
}

nlohmann::json machine_info_json() { return machine_json(); }
nlohmann::json run_result_json(const run_options& o, const backend_result& r) { return result_json(o, r); }
std::string load_average() { return loadavg(); }

const std::vector<std::string>& known_backend_names() {
  static const std::vector<std::string> names = {"io_uring", "linux_aio", "posix_aio", "threadpool", "sync"};
  return names;
}

void print_backends(std::FILE* out) {
  auto infos = unio::probe_backends();
  std::string why;
  std::string chosen = unio::auto_backend(&why);
  fmt::print(out, "unio {} on Linux {}\n\n", unio::version_string, unio::kernel_release());
  fmt::print(out, "{:<12} {:<10} {}\n", "backend", "available", "reason");
  for (const auto& b : infos) fmt::print(out, "{:<12} {:<10} {}\n", b.name, b.available ? "yes" : "no", b.reason);
  for (const auto& name : known_backend_names()) {
    bool built = std::any_of(infos.begin(), infos.end(), [&](const auto& b) { return b.name == name; });
    if (!built) fmt::print(out, "{:<12} {:<10} {}\n", name, "no", "not built into this unio");
  }
  fmt::print(out, "\nauto picks: {} ({})\n\n", chosen.empty() ? "nothing" : chosen, why);
  fmt::print(out, "{:<15}", "operation");  // as wide as the longest name, copy_file_range
  for (const auto& b : infos) fmt::print(out, " {:<11}", b.name);
  fmt::print(out, "\n");
  for (std::size_t op = 0; op < unio::op_code_count; ++op) {
    fmt::print(out, "{:<15}", unio::to_string(static_cast<unio::op_code>(op)));
    for (const auto& b : infos) fmt::print(out, " {:<11}", b.native[op] ? "native" : "delegated");
    fmt::print(out, "\n");
  }
  fmt::print(out, "(delegated = run on the loop's thread pool; timeout is kept by the loop itself)\n");
}

void print_run_header(std::FILE* out, const run_options& o, const std::string& file, bool temporary) {
  fmt::print(out, "unio-bench run: {} bs={} iodepth={} threads={} pool={} size={} MiB direct={}{} cache={} "
                  "runtime={} s\n  file {}{}\n",
             o.rw, o.bs, o.iodepth, o.threads, o.pool == 0 ? std::string("default") : std::to_string(o.pool),
             o.size >> 20, o.direct ? 1 : 0, o.misalign ? fmt::format(" misalign={}", o.misalign) : "", o.cache,
             o.runtime_s, file, temporary ? " (temporary)" : "");
}

void print_table(std::FILE* out, const run_report& rep) {
  fmt::print(out, "\n");
  print_table_head(out);
  for (const auto& r : rep.results) print_result_row(out, r);
  for (const auto& p : rep.peers) print_peer_row(out, p);
  fmt::print(out, "\n");
  for (const auto& r : rep.results) print_notes(out, r, rep.opts.threads);
  print_ratios(out, rep);
  fmt::print(out, "  load average: {}\n", loadavg());
}

bool write_json(const std::string& path, const run_report& rep) {
  json j = {{"unio_version", unio::version_string}, {"machine", machine_json()},
            {"results", json::array()}, {"peers", json::array()}};
  for (const auto& r : rep.results) j["results"].push_back(result_json(rep.opts, r));
  for (const auto& p : rep.peers) j["peers"].push_back(peer_json(rep, p));
  return write_text(path, j.dump(2) + "\n");
}

bool write_stall_log(const std::string& path, const run_report& rep) {
  std::string text = "# backend loop due_ns late_ns (due: CLOCK_MONOTONIC, as perf record -k mono)\n";
  for (const auto& r : rep.results)
    for (const auto& p : r.probes) text += fmt::format("{} {} {} {}\n", r.resolved, p.loop, p.due_ns, p.late_ns);
  return write_text(path, text);
}

bool write_csv(const std::string& path, const run_report& rep) {
  std::string text = csv_line({"kind", "name", "rw", "bs", "iodepth", "threads", "pool", "direct", "runtime_s",
                               "ops", "iops", "bw_bytes_s", "lat_mean_ns", "lat_p50_ns", "lat_p99_ns",
                               "lat_p999_ns", "lat_max_ns", "cpu_user_s", "cpu_sys_s", "ns_per_op",
                               "ctx_voluntary", "ctx_involuntary", "stall_p99_ns", "stall_max_ns"});
  for (const auto& r : rep.results)
    text += csv_line(csv_cells(rep.opts, "unio", r.resolved, r.elapsed_s, r.ops, r.iops, r.bw_bytes_s, r.lat,
                               r.cpu, r.ns_per_op(), r.stall_p99, r.stall_max));
  for (const auto& p : rep.peers)
    if (p.error.empty())
      text += csv_line(csv_cells(rep.opts, p.peer, p.engine, p.elapsed_s, p.ops, p.iops, p.bw_bytes_s, p.lat,
                                 p.cpu, p.ns_per_op(), 0, 0));
  return write_text(path, text);
}

}  // namespace unio_bench
