#include "experiments.hpp"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <unio/unio.hpp>

namespace unio_bench {

namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

run_options options_for(const experiment& e, const test_file& f, double runtime) {
  run_options o;
  o.backends = {e.backend};
  o.rw = e.rw;
  o.iodepth = e.depth;
  o.size = f.size;
  o.file = f.path;
  o.direct = e.direct;
  o.runtime_s = runtime;
  o.cache = e.direct ? "warm" : e.cache;
  if (e.variant == "naive") {
    o.inline_nowait = false;
    o.spin_us = 0;
    o.pool_nice = 0;
  }
  o.aio_buffered = e.variant == "aio_buffered";
  o.nonblock = e.variant == "nonblock";
  o.sqpoll = e.variant == "sqpoll";
  o.fixed_buffers = e.variant == "fixed";
  o.uring_inline_misses = e.variant == "inline_misses";
  return o;
}

// Cold: write back and drop. Warm: read the file only when pages are missing.
void prepare(const experiment& e, const test_file& f) {
  if (e.direct) return;
  if (e.cache == "cold") prepare_cache(f, "cold");
  else if (residency(f) < 0.999) prepare_cache(f, "warm");
}

}  // namespace

std::string experiment::who() const { return variant.empty() ? backend : backend + "-" + variant; }

std::string experiment::label() const {
  std::string s = fmt::format("{} {} QD{}", who(), rw, depth);
  return s + (direct ? " O_DIRECT" : " " + cache);
}

double outcome::csw_per_op() const {
  return r.ops ? static_cast<double>(r.cpu.voluntary + r.cpu.involuntary) / static_cast<double>(r.ops) : 0;
}

void progress(const std::string& line) {
  if (::isatty(STDERR_FILENO)) fmt::print(stderr, "  {}\n", line);
}

lab::lab(bool quick, test_file file) : quick_(quick), file_(std::move(file)) {
  for (const auto& b : unio::probe_backends()) avail_[b.name] = b.available ? "" : b.reason;
}

std::string lab::why_not(const std::string& backend) const {
  auto it = avail_.find(backend);
  if (it == avail_.end()) return "backend " + backend + " not built into this unio";
  if (!it->second.empty()) return "backend " + backend + " unavailable (" + it->second + ")";
  return "";
}

// Cold runs are short: every read they make warms the cache they are measuring.
double lab::runtime_for(const experiment& e) const {
  bool cold = e.cache == "cold" && !e.direct;
  if (quick_) return cold ? 0.5 : 0.6;
  return cold ? 1.5 : 4.0;
}

const outcome& lab::get(const experiment& e) {
  for (const auto& d : done_)
    if (d->spec.label() == e.label()) return *d;
  auto out = std::make_unique<outcome>();
  out->spec = e;
  out->opts = options_for(e, file_, runtime_for(e));
  out->unavailable = why_not(e.backend);
  auto need = std::chrono::duration<double>(out->opts.runtime_s + 1.5);
  if (out->ok() && std::chrono::steady_clock::now() + need > deadline_)
    out->unavailable = "skipped: the time budget is spent";
  if (out->ok()) {
    progress(fmt::format("running {} ({} s)", e.label(), out->opts.runtime_s));
    prepare(e, file_);
    double before = residency(file_);
    try {
      out->r = run_backend(out->opts, e.backend, file_);
      out->r.resident_before = before;
      out->r.resident_after = residency(file_);
    } catch (const std::exception& ex) {
      out->unavailable = fmt::format("backend {} failed to run: {}", e.backend, ex.what());
    }
    if (out->ok() && e.direct) out->r.resident_before = -1;
  }
  done_.push_back(std::move(out));
  return *done_.back();
}

namespace {

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// "100.00    0.123456           1    123456      1234 total": calls is the 4th field.
double strace_total_calls(const std::string& path) {
  std::ifstream f(path);
  double calls = -1;
  for (std::string line; std::getline(f, line);) {
    std::istringstream in(line);
    std::string pct, secs, usecs, n, last;
    if (!(in >> pct >> secs >> usecs >> n)) continue;
    for (std::string w; in >> w;) last = w;
    if (last == "total") calls = std::atof(n.c_str());
  }
  return calls;
}

struct traced { std::string error; double calls = 0; std::uint64_t ops = 0; };

traced strace_run(const experiment& e, const lab& l, double runtime, const std::string& dir) {
  std::string exe = self_exe();
  std::string out = dir + "/strace.txt", js = dir + "/run.json";
  std::string cmd = fmt::format("strace -f -c -o {} {} run --backend {} --rw {} --iodepth {} --size {} --file {} "
                                "--runtime {} --cache warm --json {}{}{}{}{}{} >/dev/null 2>&1",
                                shell_quote(out), shell_quote(exe), e.backend, e.rw, e.depth, l.file().size,
                                shell_quote(l.file().path), runtime, shell_quote(js), e.direct ? " --direct" : "",
                                e.variant == "naive" ? " --naive-pool" : "",
                                e.variant == "aio_buffered" ? " --aio-buffered" : "",
                                e.variant == "sqpoll" ? " --sqpoll" : "", e.variant == "fixed" ? " --fixed-buffers" : "");
  traced t;
  if (std::system(cmd.c_str()) != 0) return {"strace or the traced run failed", 0, 0};
  t.calls = strace_total_calls(out);
  try {
    std::ifstream jf(js);
    t.ops = nlohmann::json::parse(jf).at("results").at(0).at("ops").get<std::uint64_t>();
  } catch (const std::exception&) {
    return {"the traced run wrote no JSON", 0, 0};
  }
  if (t.calls < 0) t.error = "no total line in strace -c output";
  return t;
}

}  // namespace

syscall_count count_syscalls(const experiment& e, const lab& l) {
  if (std::system("command -v strace >/dev/null 2>&1") != 0) return {"strace is not installed", 0, 0, 0};
  char tmpl[] = "/tmp/unio-bench-strace.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return {"cannot create a temporary directory", 0, 0, 0};
  std::string dir = tmpl;
  progress("counting system calls of " + e.label() + " under strace -f -c");
  traced shortr = strace_run(e, l, 0.2, dir);
  traced longr = shortr.error.empty() ? strace_run(e, l, 1.5, dir) : shortr;
  std::system(("rm -rf " + shell_quote(dir)).c_str());
  if (!longr.error.empty()) return {longr.error, 0, 0, 0};
  if (longr.ops <= shortr.ops) return {"the traced runs did no work", 0, 0, 0};
  double calls = longr.calls - shortr.calls;
  std::uint64_t ops = longr.ops - shortr.ops;
  return {"", calls / static_cast<double>(ops), calls, ops};
}

namespace {

bool install_io_uring_filter() {
#if defined(__x86_64__)
  constexpr unsigned arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr unsigned arch = AUDIT_ARCH_AARCH64;
#else
  return false;
#endif
  sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof f / sizeof f[0]), f};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

// In the child: one line per field, '\n'-free values.
void child_report(int fd) {
  std::string text;
  if (!install_io_uring_filter()) {
    text = "error\ncould not install a seccomp filter here\n";
  } else {
    std::string listed = "0", avail = "0", reason, why;
    for (const auto& b : unio::probe_backends())
      if (b.name == "io_uring") listed = "1", avail = b.available ? "1" : "0", reason = b.reason;
    std::string pick = unio::auto_backend(&why);
    text = "ok\n" + listed + "\n" + avail + "\n" + reason + "\n" + pick + "\n" + why + "\n";
  }
  for (std::size_t off = 0; off < text.size();) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
}

}  // namespace

seccomp_probe probe_under_seccomp() {
  int p[2];
  seccomp_probe r;
  if (::pipe2(p, O_CLOEXEC) != 0) return r.error = "pipe failed", r;
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return r.error = "fork failed", r;
  if (pid == 0) {
    ::close(p[0]);
    child_report(p[1]);
    ::_exit(0);
  }
  ::close(p[1]);
  std::string text;
  char buf[512];
  for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  ::close(p[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::istringstream in(text);
  std::string head, listed, avail;
  if (!std::getline(in, head) || head != "ok") {
    std::getline(in, r.error);
    if (r.error.empty()) r.error = "the filtered child reported nothing";
    return r;
  }
  std::getline(in, listed);
  std::getline(in, avail);
  std::getline(in, r.reason);
  std::getline(in, r.auto_pick);
  std::getline(in, r.auto_why);
  r.listed = listed == "1";
  r.available = avail == "1";
  return r;
}

namespace {

long pread_result(int fd, void* buf, std::size_t len, off_t off) {
  ssize_t n = ::pread(fd, buf, len, off);
  return n < 0 ? -errno : n;
}

long unio_unaligned_read(int fd, std::string& backend) {
  unio::loop lp;
  backend = std::string(lp.backend_name());
  char buf[100];
  unio::op o;
  long res = 0;
  lp.read(o, fd, buf, sizeof buf, 1000, [&](unio::op& d) {
    res = d.ok() ? static_cast<long>(d.value()) : -static_cast<long>(d.error().value());
  });
  lp.run();
  return res;
}

}  // namespace

alignment_demo demo_alignment(const std::string& path) {
  alignment_demo d;
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) return d.error = fmt::format("open O_DIRECT: {}", std::strerror(errno)), d;
  unio::aligned_buffer buf(8192);
  auto* p = reinterpret_cast<unsigned char*>(buf.data());
  d.aligned = pread_result(fd, p, 4096, 0);
  d.unaligned_offset = pread_result(fd, p, 4096, 1000);
  d.unaligned_buffer = pread_result(fd, p + 1, 4096, 0);
  try {
    d.unio_unaligned = unio_unaligned_read(fd, d.unio_backend);
  } catch (const std::exception& e) {
    d.unio_backend = e.what();
  }
  ::close(fd);
  return d;
}

}  // namespace unio_bench
