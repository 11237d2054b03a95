#include "peers.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "testfile.hpp"

namespace unio_bench {

namespace {

struct child_output {
  int status = -1;
  std::string out;
  struct rusage ru{};
};

// Runs argv with extra environment entries, capturing stdout; CPU is the child's wait4()
// rusage, which includes its own children and threads.
child_output run_child(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  child_output c;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return c;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "unio-bench: cannot run %s: %s\n", args[0], std::strerror(errno));
    std::_Exit(127);
  }
  ::close(fds[1]);
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
    if (n > 0) c.out.append(buf, static_cast<std::size_t>(n));
    else if (errno != EINTR) break;
  }
  ::close(fds[0]);
  if (pid > 0) ::wait4(pid, &c.status, 0, &c.ru);
  return c;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

bool child_failed(const child_output& c, peer_result& p) {
  if (WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0) return false;
  p.error = fmt::format("{} failed (status {})", p.peer, c.status);
  return true;
}

std::vector<std::string> fio_args(const run_options& o, const std::string& engine, const test_file& f) {
  std::vector<std::string> a = {"fio", "--name=unio-peer", "--filename=" + f.path, "--ioengine=" + engine,
                                "--rw=" + o.rw, fmt::format("--bs={}", o.bs), fmt::format("--iodepth={}", o.iodepth),
                                fmt::format("--size={}", f.size),
                                fmt::format("--runtime={}ms", static_cast<long>(o.runtime_s * 1000)),
                                "--time_based", fmt::format("--direct={}", o.direct ? 1 : 0), "--invalidate=0",
                                "--norandommap", fmt::format("--numjobs={}", o.threads), "--group_reporting",
                                "--lat_percentiles=1", "--output-format=json"};
  if (o.rw == "randrw") a.push_back(fmt::format("--rwmixread={}", o.rwmixread));
  // unio submits a loop turn's ops with one call and reaps every ready completion: fio's
  // equivalent is batched submission and reaping (iodepth_batch_submit/iodepth_batch_complete).
  if (engine == "io_uring" || engine == "libaio") {
    a.push_back(fmt::format("--iodepth_batch_submit={}", std::min(8u, o.iodepth)));
    a.emplace_back("--iodepth_batch_complete_min=1");
    a.push_back(fmt::format("--iodepth_batch_complete_max={}", o.iodepth));
  }
  if (engine == "io_uring" && o.fixed_buffers) {
    a.emplace_back("--fixedbufs=1");
    a.emplace_back("--registerfiles=1");
  }
  if (engine == "io_uring" && o.sqpoll) a.emplace_back("--sqthread_poll=1");
  return a;
}

std::uint64_t fio_percentile(const nlohmann::json& dir, const char* key) {
  for (const char* lat : {"lat_ns", "clat_ns"}) {
    if (dir.contains(lat) && dir[lat].contains("percentile") && dir[lat]["percentile"].contains(key))
      return dir[lat]["percentile"][key].get<std::uint64_t>();
  }
  return 0;
}

// Sums both directions; latency is taken from the direction with more I/Os.
void parse_fio(const std::string& out, peer_result& p) {
  auto brace = out.find('{');
  if (brace == std::string::npos) throw std::runtime_error("no JSON in fio output");
  auto j = nlohmann::json::parse(out.substr(brace));
  const auto& job = j.at("jobs").at(0);
  const auto& rd = job.at("read");
  const auto& wr = job.at("write");
  std::uint64_t rops = rd.at("total_ios").get<std::uint64_t>(), wops = wr.at("total_ios").get<std::uint64_t>();
  const auto& dir = rops >= wops ? rd : wr;
  p.ops = rops + wops;
  p.iops = rd.at("iops").get<double>() + wr.at("iops").get<double>();
  p.bw_bytes_s = rd.at("bw_bytes").get<double>() + wr.at("bw_bytes").get<double>();
  p.elapsed_s = std::max(rd.at("runtime").get<double>(), wr.at("runtime").get<double>()) / 1000.0;
  p.has_lat = true;
  p.lat = {dir.at("lat_ns").at("mean").get<double>(), fio_percentile(dir, "50.000000"),
           fio_percentile(dir, "99.000000"), fio_percentile(dir, "99.900000"),
           dir.at("lat_ns").at("max").get<std::uint64_t>()};
}

std::map<std::string, std::string> parse_kv(const std::string& line) {
  std::map<std::string, std::string> kv;
  std::istringstream in(line);
  for (std::string tok; in >> tok;) {
    auto eq = tok.find('=');
    if (eq != std::string::npos) kv[tok.substr(0, eq)] = tok.substr(eq + 1);
  }
  return kv;
}

unsigned pool_size_for(const run_options& o) {
  if (o.pool != 0) return o.pool;
  unsigned n = std::thread::hardware_concurrency();
  return n < 2 ? 2 : n;  // unio's default (loop_options::pool_size = 0)
}

}  // namespace

std::string fio_engine_for(const std::string& backend) {
  if (backend == "io_uring") return "io_uring";
  if (backend == "linux_aio") return "libaio";
  if (backend == "posix_aio") return "posixaio";
  return "psync";  // sync, threadpool: blocking preads, one per job
}

std::string uv_peer_path() {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "";
  std::string dir(self, static_cast<std::size_t>(n));
  dir = dir.substr(0, dir.rfind('/'));
  std::string path = dir + "/unio-bench-uv-peer";
  return ::access(path.c_str(), X_OK) == 0 ? path : "";
}

std::string check_peer(const run_options& o) {
  if (o.vs == "libuv") {
    if (uv_peer_path().empty())
      return "--vs libuv: the libuv peer was not built (install libuv1-dev and reconfigure)";
    if (o.rw != "randread" && o.rw != "read") return "--vs libuv: only --rw randread and read are supported";
  }
  if (o.vs == "fio" && ::access("/usr/bin/fio", X_OK) != 0 && ::access("/usr/local/bin/fio", X_OK) != 0)
    return "--vs fio: fio is not installed";
  return "";
}

peer_result run_fio(const run_options& o, const backend_result& unio, const test_file& f) {
  peer_result p;
  p.peer = "fio";
  p.engine = fio_engine_for(unio.resolved);
  p.vs_backend = unio.backend;
  p.cpu_source = "wait4 rusage of the fio process tree";
  auto argv = fio_args(o, p.engine, f);
  p.command = join(argv);
  child_output c = run_child(argv, {});
  if (child_failed(c, p)) return p;
  p.cpu = from_rusage(c.ru);
  try {
    parse_fio(c.out, p);
  } catch (const std::exception& e) {
    p.error = std::string("cannot parse fio output: ") + e.what();
  }
  return p;
}

peer_result run_libuv(const run_options& o, const backend_result& unio, const test_file& f) {
  peer_result p;
  p.peer = "libuv";
  p.vs_backend = unio.backend;
  p.cpu_source = "getrusage(RUSAGE_SELF) of the harness over its run window";
  std::vector<std::string> argv = {uv_peer_path(), f.path, std::to_string(o.iodepth * o.threads),
                                   fmt::format("{}", o.runtime_s), std::to_string(o.bs), o.rw};
  if (o.direct) argv.push_back("direct");
  std::string env = fmt::format("UV_THREADPOOL_SIZE={}", pool_size_for(o));
  p.command = env + " " + join(argv);
  child_output c = run_child(argv, {env});
  if (child_failed(c, p)) return p;
  auto kv = parse_kv(c.out);
  if (!kv.count("ops") || !kv.count("secs")) {
    p.error = "cannot parse the libuv peer's output: " + c.out;
    return p;
  }
  p.engine = "libuv " + kv["version"];
  p.ops = std::stoull(kv["ops"]);
  p.elapsed_s = std::stod(kv["secs"]);
  p.iops = p.elapsed_s > 0 ? static_cast<double>(p.ops) / p.elapsed_s : 0;
  p.bw_bytes_s = p.iops * static_cast<double>(o.bs);
  p.cpu = {std::stod(kv["cpu_user_s"]), std::stod(kv["cpu_sys_s"]), std::stol(kv["vcsw"]), std::stol(kv["ivcsw"])};
  return p;
}

}  // namespace unio_bench
