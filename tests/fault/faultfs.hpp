// The client side of unio-faultfs (fault/faultfs/faultfs.cpp, which documents the commands and
// the status): starts the daemon on a mount point inside a forked test child (child.hpp), in the
// child's private mount namespace, sends it commands through its ctl file and reads its log.
//
// Nothing outlives the child: the daemon is killed when the thread that started it exits
// (PR_SET_PDEATHSIG), and the mount lives in the child's namespace. The daemon answers no held op
// later than k_faultfs_max_hold after it arrived, so a test that never releases cannot hang.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fault/child.hpp"
#include "fault/mounts.hpp"

namespace unio::test {

// The data file's size; it starts with byte_at(i) (test_data.hpp) at each offset i.
inline constexpr std::size_t k_faultfs_size = 1 << 20;
inline constexpr long k_faultfs_max_hold_ms = 15000;

// One data op the daemon answered: its kind ("read", "write", "fsync"), offset and length, the
// result sent (bytes or -errno), and whether the kernel had asked to interrupt it.
struct faultfs_answer {
  std::string kind;
  std::uint64_t off = 0;
  std::size_t len = 0;
  long long res = 0;
  bool interrupted = false;
};

struct faultfs_status {
  long held = -1;  // data ops received and not yet answered; -1 when the status could not be read
  std::vector<faultfs_answer> log;

  // The answers to ops of `kind` at offset `off`.
  std::vector<faultfs_answer> at(const std::string& kind, std::uint64_t off) const {
    std::vector<faultfs_answer> v;
    for (const auto& a : log)
      if (a.kind == kind && a.off == off) v.push_back(a);
    return v;
  }
};

inline faultfs_status parse_faultfs_status(const std::string& text) {
  faultfs_status st;
  std::istringstream in(text);
  std::string word;
  if (!(in >> word >> st.held) || word != "held") return {};
  faultfs_answer a;
  int intr = 0;
  while (in >> a.kind >> a.off >> a.len >> a.res >> intr) {
    a.interrupted = intr != 0;
    st.log.push_back(a);
  }
  return st;
}

class faultfs {
 public:
  faultfs() = default;
  faultfs(const faultfs&) = delete;
  faultfs& operator=(const faultfs&) = delete;
  ~faultfs() { stop(); }

  // Starts the daemon on `mnt` (created if needed) and waits until it has mounted. 0, or k_skip
  // with the reason when the machine cannot (no helper built, no /dev/fuse), or 1.
  // REQUIRES: a private mount namespace (private_mount_ns); no other thread in the process.
  int start(const std::string& mnt, std::string& msg) {
#ifndef UNIO_FAULTFS
    (void)mnt;
    return report(msg, "unio-faultfs was not built: " + std::string(missing_reason()), k_skip);
#else
    if (::access("/dev/fuse", R_OK | W_OK) != 0) return report(msg, errstr("/dev/fuse", errno), k_skip);
    ::mkdir(mnt.c_str(), 0755);
    mnt_ = mnt;
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) return report(msg, errstr("pipe", errno), 1);
    pid_ = spawn(UNIO_FAULTFS, ready[1]);
    ::close(ready[1]);
    std::string said = detail_child::read_all(ready[0]);
    ::close(ready[0]);
    if (pid_ < 0) return report(msg, errstr("fork", errno), 1);
    if (said != "ready\n")
      return report(msg, std::string(UNIO_FAULTFS) + " did not mount (" + reap() + ")", k_skip);
    return 0;
#endif
  }

  // Unmounts and waits for the daemon to exit (kills it when the unmount fails).
  void stop() {
    if (pid_ <= 0) return;
    std::string ignored;
    if (umount_retry(mnt_, ignored) != 0) {
      ::kill(pid_, SIGKILL);
      ::umount2(mnt_.c_str(), MNT_DETACH);
    }
    reap();
  }

  // SIGKILL to the daemon: the kernel aborts the connection, and every op it holds fails.
  void kill_daemon() {
    if (pid_ > 0) ::kill(pid_, SIGKILL);
  }

  // Sends a command; true when the daemon accepted it.
  bool command(const std::string& cmd) const {
    int fd = ::open(path("ctl").c_str(), O_WRONLY | O_CLOEXEC);
    bool ok = fd >= 0 && ::write(fd, cmd.data(), cmd.size()) == static_cast<ssize_t>(cmd.size());
    if (fd >= 0) ::close(fd);
    return ok;
  }

  faultfs_status status() const {
    int fd = ::open(path("ctl").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    std::string text;
    char buf[65536];
    for (ssize_t n; (n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(text.size()))) > 0;)
      text.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return parse_faultfs_status(text);
  }

  // Waits until the daemon holds at least n ops or done() is true, for at most `limit`; true
  // when the daemon holds them.
  bool wait_held(
      long n, std::chrono::milliseconds limit,
      const std::function<bool()>& done = [] { return false; }) const {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end && !done()) {
      if (status().held >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return status().held >= n;
  }

  // A file of the mounted file system ("data", "ctl").
  std::string path(const std::string& name) const { return mnt_ + "/" + name; }

 private:
  static const char* missing_reason() {
#ifdef UNIO_FAULTFS_MISSING
    return UNIO_FAULTFS_MISSING;
#else
    return "no pkg-config";
#endif
  }

  // Forks the daemon with `ready_fd` as its --ready-fd; its pid, or -1.
  pid_t spawn(const char* exe, int ready_fd) {
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid != 0) return pid;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ::fcntl(ready_fd, F_SETFD, 0);
    const std::string fd = std::to_string(ready_fd), hold = std::to_string(k_faultfs_max_hold_ms);
    ::execl(exe, exe, mnt_.c_str(), "--ready-fd", fd.c_str(), "--max-hold-ms", hold.c_str(), nullptr);
    ::_exit(127);
  }

  // Waits for the daemon; how it ended.
  std::string reap() {
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    if (WIFSIGNALED(st)) return "killed by signal " + std::to_string(WTERMSIG(st));
    return "exit code " + std::to_string(WEXITSTATUS(st));
  }

  std::string mnt_;
  pid_t pid_ = -1;
};

// Runs body(fs, msg) in a forked child (run_in_child) in a private mount namespace, with
// unio-faultfs mounted inside a scratch directory.
template <class Body>
child_result on_faultfs(Body body, unsigned seconds = 60) {
  scratch_dir dir;
  if (!dir.ok()) return {1, errstr("mkdtemp", errno)};
  return run_in_child(
      [&](std::string& msg) -> int {
        if (int rc = private_mount_ns(msg); rc != 0) return rc;
        faultfs fs;
        if (int rc = fs.start(dir / "mnt", msg); rc != 0) return rc;
        return body(fs, msg);
      },
      seconds);
}

}  // namespace unio::test
