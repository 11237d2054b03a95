// unio-faultfs: a FUSE file system whose file operations fail, wait or hang on command, for the
// fault tests (tests/fault/fuse_fault_test.cpp; the client side is tests/fault/faultfs.hpp).
//
//   unio-faultfs MOUNTPOINT [--ready-fd FD] [--max-hold-ms MS]
//
// The root holds two files:
//   data  1 MiB (k_data_size), byte i initially byte_at(i) (fault/test_data.hpp); writable in
//         place, never grows.
//         Opened with direct_io, so every read, write and fsync of it reaches this daemon, one
//         request per op of up to 128 KiB.
//   ctl   commands and status. Write one command per write(2):
//           ok                     no faults, no delay; answers every held op now
//           eio|enospc KIND N [M]  KIND (read, write or fsync): the next N ops of that kind
//                                  succeed, then M fail with that error (M absent: all of them,
//                                  until ok), then the kind succeeds again
//           delay MS               every data op is answered MS milliseconds after it arrived
//           short N                every read is answered with at most N bytes (0: whole
//                                  again), as a file system may; pread(2) then returns short
//           hang                   every data op is held until release (or --max-hold-ms)
//           release                answers every held op now and stops holding new ones
//           clear                  empties the log
//         A read from offset 0 takes a snapshot of the status, and reads go on through it:
//           held N                 data ops received and not yet answered
//           KIND OFF LEN RES INTR  one line per data op answered, in the order answered: its
//                                  offset and length (fsync: 0 0), the result sent (bytes or
//                                  -errno) and 1 when the kernel had asked to interrupt it
//
// Nothing blocks the session loop: an op to delay or hold is kept with its deadline, and a clock
// thread answers it when due, so ctl is served while data ops are held. No op is held longer
// than --max-hold-ms (default 20000), so a test that never releases cannot hang for ever.
// The daemon ignores interrupts (a hung device does not answer them) and exits when unmounted.
// --ready-fd: "ready\n" is written to FD (then closed) once the file system is mounted.
#define FUSE_USE_VERSION 35

#include <fuse3/fuse_lowlevel.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fault/test_data.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

constexpr std::size_t k_data_size = 1 << 20;
constexpr fuse_ino_t k_data_ino = 2;
constexpr fuse_ino_t k_ctl_ino = 3;

enum kind { k_read, k_write, k_fsync, k_kinds };
const char* const k_kind_names[k_kinds] = {"read", "write", "fsync"};

// Errors armed for one kind of op: `pass` more succeed, then `fail` fail with `err` (-1: all).
struct error_rule {
  int err = 0;
  long pass = 0;
  long fail = 0;

  // The error for the next op of this kind (0: success), consuming the rule.
  int next() {
    if (err == 0) return 0;
    if (pass > 0) {
      --pass;
      return 0;
    }
    if (fail == 0) return 0;
    if (fail > 0) --fail;
    return err;
  }
};

// A data op received and not yet answered.
struct pending {
  fuse_req_t req;
  kind k;
  std::uint64_t off;
  std::size_t len;
  int err;                  // the error it will be answered with (0: success)
  std::vector<char> bytes;  // a write's data (FUSE's buffer lives only during the callback)
  clock_type::time_point due;
};

// Everything the session loop and the clock thread share.
class state {
 public:
  explicit state(std::chrono::milliseconds max_hold) : data_(k_data_size), max_hold_(max_hold) {
    for (std::size_t i = 0; i < k_data_size; ++i)
      data_[i] = unio::test::byte_at(i);
  }

  // A data op arrived: decide its fate, then answer it now or keep it for the clock thread.
  void arrive(pending p);
  // Runs a ctl command; false when it is not one.
  bool command(const std::string& line);
  std::string status();
  // The clock thread's body: answers kept ops when due, until stop().
  void run_clock();
  void stop();

 private:
  void answer(pending& p);
  void log(const pending& p, long long res, bool intr);
  bool arm_error(std::istringstream& in, int err);

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<char> data_;
  error_rule rules_[k_kinds];
  std::chrono::milliseconds delay_{0};
  std::size_t read_cap_ = 0;  // "short N": the most a read is answered with (0: no limit)
  std::chrono::milliseconds max_hold_;
  bool hang_ = false;
  bool stop_ = false;
  std::list<pending> kept_;
  std::string log_;
};

void state::arrive(pending p) {
  std::unique_lock lk(mu_);
  p.err = rules_[p.k].next();
  const auto now = clock_type::now();
  if (!hang_ && delay_.count() == 0) {
    answer(p);
    return;
  }
  p.due = now + (hang_ ? max_hold_ : std::min(delay_, max_hold_));
  kept_.push_back(std::move(p));
  cv_.notify_all();
}

// Sends the answer of p and logs it. Called with mu_ held (the data and the log are shared).
void state::answer(pending& p) {
  const bool intr = fuse_req_interrupted(p.req);  // before the reply, which frees the request
  long long res = -p.err;
  if (p.err != 0) {
    fuse_reply_err(p.req, p.err);
  } else if (p.k == k_read) {
    std::size_t n = p.off >= k_data_size ? 0 : std::min(p.len, k_data_size - p.off);
    if (read_cap_ > 0) n = std::min(n, read_cap_);
    fuse_reply_buf(p.req, data_.data() + (n ? p.off : 0), n);
    res = static_cast<long long>(n);
  } else if (p.k == k_write && p.off + p.bytes.size() > k_data_size) {
    fuse_reply_err(p.req, EFBIG);  // data never grows
    res = -EFBIG;
  } else if (p.k == k_write) {
    std::copy(p.bytes.begin(), p.bytes.end(), data_.begin() + static_cast<std::ptrdiff_t>(p.off));
    fuse_reply_write(p.req, p.bytes.size());
    res = static_cast<long long>(p.bytes.size());
  } else {
    fuse_reply_err(p.req, 0);
    res = 0;
  }
  log(p, res, intr);
}

void state::log(const pending& p, long long res, bool intr) {
  log_ += std::string(k_kind_names[p.k]) + " " + std::to_string(p.off) + " " + std::to_string(p.len) + " " +
          std::to_string(res) + (intr ? " 1\n" : " 0\n");
}

bool state::arm_error(std::istringstream& in, int err) {
  std::string name;
  long pass = -1, fail = -1;
  if (!(in >> name >> pass) || pass < 0) return false;
  if (!(in >> fail)) fail = -1;
  for (int k = 0; k < k_kinds; ++k) {
    if (name != k_kind_names[k]) continue;
    rules_[k] = {err, pass, fail};
    return true;
  }
  return false;
}

bool state::command(const std::string& line) {
  std::istringstream in(line);
  std::string word;
  in >> word;
  std::lock_guard lk(mu_);
  if (word == "ok") {
    std::fill(std::begin(rules_), std::end(rules_), error_rule{});
    delay_ = {};
    read_cap_ = 0;
  }
  if (word == "ok" || word == "release") {
    hang_ = false;
    for (pending& p : kept_)
      p.due = clock_type::now();
    cv_.notify_all();
    return true;
  }
  if (word == "hang") hang_ = true;
  if (word == "clear") log_.clear();
  if (word == "hang" || word == "clear") return true;
  if (word == "eio") return arm_error(in, EIO);
  if (word == "enospc") return arm_error(in, ENOSPC);
  long ms = -1;
  if (word == "short") {
    long cap = -1;
    if (!(in >> cap) || cap < 0) return false;
    read_cap_ = static_cast<std::size_t>(cap);
    return true;
  }
  if (word != "delay" || !(in >> ms) || ms < 0) return false;
  delay_ = std::chrono::milliseconds(ms);
  return true;
}

std::string state::status() {
  std::lock_guard lk(mu_);
  return "held " + std::to_string(kept_.size()) + "\n" + log_;
}

void state::run_clock() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    auto first = std::min_element(kept_.begin(), kept_.end(), [](auto& a, auto& b) { return a.due < b.due; });
    if (first == kept_.end()) {
      cv_.wait(lk);
    } else if (first->due > clock_type::now()) {
      cv_.wait_until(lk, first->due);
    } else {
      answer(*first);
      kept_.erase(first);
    }
  }
}

void state::stop() {
  std::lock_guard lk(mu_);
  stop_ = true;
  cv_.notify_all();
}

state* the_state(fuse_req_t req) { return static_cast<state*>(fuse_req_userdata(req)); }

// ---- the file system's operations ----

struct stat attributes(fuse_ino_t ino) {
  struct stat st {};
  st.st_ino = ino;
  st.st_uid = ::getuid();
  st.st_gid = ::getgid();
  if (ino == FUSE_ROOT_ID) {
    st.st_mode = S_IFDIR | 0755;
    st.st_nlink = 2;
  } else {
    st.st_mode = S_IFREG | (ino == k_ctl_ino ? 0666 : 0644);
    st.st_nlink = 1;
    st.st_size = ino == k_data_ino ? k_data_size : 0;
  }
  return st;
}

bool known(fuse_ino_t ino) { return ino == FUSE_ROOT_ID || ino == k_data_ino || ino == k_ctl_ino; }

void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_ino_t ino = std::strcmp(name, "data") == 0  ? k_data_ino
                   : std::strcmp(name, "ctl") == 0 ? k_ctl_ino
                                                   : 0;
  if (parent != FUSE_ROOT_ID || ino == 0) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_entry_param e{};
  e.ino = ino;
  e.attr = attributes(ino);
  fuse_reply_entry(req, &e);
}

void fs_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  if (!known(ino)) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct stat st = attributes(ino);
  fuse_reply_attr(req, &st, 0);
}

// Sizes never change (a shell's `echo cmd > ctl` truncates first): the attributes stay.
void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat*, int, fuse_file_info* fi) {
  fs_getattr(req, ino, fi);
}

void fs_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino != k_data_ino && ino != k_ctl_ino) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  fi->direct_io = 1;
  fi->fh = ino == k_ctl_ino ? reinterpret_cast<std::uint64_t>(new std::string) : 0;
  fuse_reply_open(req, fi);
}

void fs_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino == k_ctl_ino) delete reinterpret_cast<std::string*>(fi->fh);
  fuse_reply_err(req, 0);
}

void ctl_read(fuse_req_t req, std::size_t size, off_t off, fuse_file_info* fi) {
  auto* snap = reinterpret_cast<std::string*>(fi->fh);
  if (off == 0) *snap = the_state(req)->status();
  const auto at = std::min(static_cast<std::size_t>(off), snap->size());
  fuse_reply_buf(req, snap->data() + at, std::min(size, snap->size() - at));
}

void fs_read(fuse_req_t req, fuse_ino_t ino, std::size_t size, off_t off, fuse_file_info* fi) {
  if (ino == k_ctl_ino) return ctl_read(req, size, off, fi);
  the_state(req)->arrive({req, k_read, static_cast<std::uint64_t>(off), size, 0, {}, {}});
}

void fs_write(fuse_req_t req, fuse_ino_t ino, const char* buf, std::size_t size, off_t off, fuse_file_info*) {
  if (ino == k_ctl_ino) {
    std::string line(buf, size);
    if (the_state(req)->command(line))
      fuse_reply_write(req, size);
    else
      fuse_reply_err(req, EINVAL);
    return;
  }
  the_state(req)->arrive({req, k_write, static_cast<std::uint64_t>(off), size, 0, {buf, buf + size}, {}});
}

void fs_fsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  if (ino != k_data_ino) {
    fuse_reply_err(req, 0);
    return;
  }
  the_state(req)->arrive({req, k_fsync, 0, 0, 0, {}, {}});
}

void fs_flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void fs_readdir(fuse_req_t req, fuse_ino_t ino, std::size_t size, off_t off, fuse_file_info*) {
  if (ino != FUSE_ROOT_ID) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  const char* const names[] = {".", "..", "data", "ctl"};
  const fuse_ino_t inos[] = {FUSE_ROOT_ID, FUSE_ROOT_ID, k_data_ino, k_ctl_ino};
  std::vector<char> buf(size);
  std::size_t used = 0;
  for (off_t i = off; i < 4; ++i) {
    struct stat st = attributes(inos[i]);
    std::size_t n = fuse_add_direntry(req, buf.data() + used, size - used, names[i], &st, i + 1);
    if (n > size - used) break;
    used += n;
  }
  fuse_reply_buf(req, buf.data(), used);
}

fuse_lowlevel_ops operations() {
  fuse_lowlevel_ops ops{};
  ops.lookup = fs_lookup;
  ops.getattr = fs_getattr;
  ops.setattr = fs_setattr;
  ops.open = fs_open;
  ops.release = fs_release;
  ops.read = fs_read;
  ops.write = fs_write;
  ops.fsync = fs_fsync;
  ops.flush = fs_flush;
  ops.readdir = fs_readdir;
  return ops;
}

// ---- main ----

struct options {
  const char* mountpoint = nullptr;
  int ready_fd = -1;
  long max_hold_ms = 20000;
};

bool parse(int argc, char** argv, options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--ready-fd" && i + 1 < argc)
      o.ready_fd = std::atoi(argv[++i]);
    else if (a == "--max-hold-ms" && i + 1 < argc)
      o.max_hold_ms = std::atol(argv[++i]);
    else if (o.mountpoint == nullptr && a[0] != '-')
      o.mountpoint = argv[i];
    else
      return false;
  }
  return o.mountpoint != nullptr && o.max_hold_ms > 0;
}

void say_ready(int fd) {
  if (fd < 0) return;
  (void)!::write(fd, "ready\n", 6);
  ::close(fd);
}

// fuse_session_new's arguments; it may copy them to the heap, freed here after the session.
struct session_args {
  char arg0[13] = "unio-faultfs";
  char* argv[2] = {arg0, nullptr};
  fuse_args args = FUSE_ARGS_INIT(1, argv);
  ~session_args() { fuse_opt_free_args(&args); }
};

// Mounts, serves until unmounted, unmounts; the exit code.
int serve(const options& o) {
  session_args sa;
  fuse_args& args = sa.args;
  state st{std::chrono::milliseconds(o.max_hold_ms)};
  const fuse_lowlevel_ops ops = operations();
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, &st);
  if (se == nullptr) return 1;
  if (fuse_session_mount(se, o.mountpoint) != 0) {
    fuse_session_destroy(se);
    return 1;
  }
  say_ready(o.ready_fd);
  std::thread clock([&st] { st.run_clock(); });
  int rc = fuse_session_loop(se);
  st.stop();
  clock.join();
  fuse_session_unmount(se);
  fuse_session_destroy(se);
  return rc < 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr, "usage: unio-faultfs MOUNTPOINT [--ready-fd FD] [--max-hold-ms MS]\n");
    return 2;
  }
  return serve(o);
}
