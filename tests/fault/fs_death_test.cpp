// Description: the file system dies under ops in flight. An ext4 or xfs loop image (in a private
// mount namespace) carries 64 looping ops: buffered and O_DIRECT reads and writes, fsyncs,
// fdatasyncs, opens and sendfiles to sockets. Another thread shuts the file system down
// (the shutdown ioctl with log flush, as `xfs_io -x -c 'shutdown -f'`) while they run. Every
// submission completes exactly once, ok or EIO, and every loop of ops ends in EIO (none hangs;
// a write or fsync caught inside ext4's aborting journal may end in EROFS instead);
// a socket read in flight across the shutdown, a timer and a socket pair on the same loop keep
// working; the loop's teardown and the unmount are clean. Also: after the shutdown, reads from
// the dead file system fail with EIO while reads of a healthy tmpfs file in the same batch
// succeed, each error attributed to exactly its op.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "conformance/backends.hpp"
#include "fault/child.hpp"
#include "fault/test_data.hpp"
#include "fault/mounts.hpp"
#include "unio/unio.hpp"

namespace {

using namespace unio::test;

constexpr std::size_t k_data_size = 1 << 20;
constexpr int k_slots = 64;


// Writes `size` bytes of byte_at() to a new file and makes them durable, with plain syscalls.
bool make_data_file(const std::string& path, std::size_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  std::vector<char> v(size);
  for (std::size_t i = 0; i < size; ++i) v[i] = byte_at(i);
  bool ok = ::pwrite(fd, v.data(), size, 0) == static_cast<ssize_t>(size) && ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

enum class kind { read, write, fsync, fdatasync, open, sendfile };
const char* name_of(kind k) {
  static const char* const names[] = {"read", "write", "fsync", "fdatasync", "open", "sendfile"};
  return names[static_cast<int>(k)];
}

// One looping op: resubmitted after each success, ended by its first error.
struct slot {
  kind k = kind::read;
  int fd = -1;           // read, write, fsync: the file; sendfile: the socket written to
  int peer = -1;         // sendfile: the socket drained by the handler
  char* buf = nullptr;   // read, write: one aligned block
  std::uint64_t off = 0;
  unio::op op;
  long submitted = 0, completed = 0;
  std::int64_t last = 0;
  bool ended = false;
};

// 64 looping ops on one loop over files of `dir`.
class storm {
 public:
  storm(unio::loop& lp, const std::string& dir) : lp_(lp), dir_(dir), slots_(k_slots) {}
  ~storm() {
    for (int fd : fds_) ::close(fd);
  }

  // Opens the files and sockets; "" when it worked.
  std::string prepare() {
    data_ = dir_ + "/data";
    if (!make_data_file(data_, k_data_size)) return errstr("data file", errno);
    int plain = keep(::open(data_.c_str(), O_RDONLY | O_CLOEXEC));
    int direct = keep(::open(data_.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
    if (plain < 0 || direct < 0) return errstr("open data", errno);
    plain_ = plain;
    blocks_.reset(static_cast<char*>(std::aligned_alloc(k_block, k_block * k_slots)));
    for (int i = 0; i < k_slots; ++i)
      if (std::string bad = prepare_slot(i, plain, direct); !bad.empty()) return bad;
    return "";
  }
  void start() {
    for (slot& s : slots_) submit(s);
  }
  long successes() const noexcept { return ok_.load(); }
  std::string verify() const;

 private:
  int keep(int fd) {
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }
  std::string prepare_slot(int i, int plain, int direct);
  void submit(slot& s);
  void done(slot& s, unio::op& o);

  unio::loop& lp_;
  std::string dir_, data_;
  std::vector<slot> slots_;
  std::vector<int> fds_;
  std::unique_ptr<char, free_deleter> blocks_;
  int plain_ = -1;     // the data file, buffered (sendfile reads it)
  int write_fd_ = -1;  // the last written file, for the fsync slots
  std::atomic<long> ok_{0};
};

// Slot i: kinds in turn; reads and writes alternate between buffered and O_DIRECT in groups of 8.
std::string storm::prepare_slot(int i, int plain, int direct) {
  static const kind pattern[8] = {kind::read, kind::write, kind::fsync, kind::open,
                                  kind::sendfile, kind::read, kind::write, kind::fdatasync};
  slot& s = slots_[static_cast<std::size_t>(i)];
  s.k = pattern[i % 8];
  s.buf = blocks_.get() + static_cast<std::size_t>(i) * k_block;
  s.off = static_cast<std::uint64_t>(i) * k_block;
  const bool odirect = (i / 8) % 2 == 1;
  if (s.k == kind::read) s.fd = odirect ? direct : plain;
  if (s.k == kind::write) {
    std::string p = dir_ + "/w" + std::to_string(i);
    s.fd = write_fd_ = keep(::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | (odirect ? O_DIRECT : 0), 0644));
    s.off = 0;
  }
  if (s.k == kind::fsync || s.k == kind::fdatasync) s.fd = write_fd_;
  if (s.k == kind::sendfile) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) return errstr("socketpair", errno);
    s.fd = keep(sv[0]);
    s.peer = keep(sv[1]);
  }
  if (s.k != kind::open && s.k != kind::sendfile && s.fd < 0) return errstr("open a file", errno);
  return "";
}

void storm::submit(slot& s) {
  ++s.submitted;
  auto h = [this, &s](unio::op& o) { done(s, o); };
  switch (s.k) {
    case kind::read: lp_.read(s.op, s.fd, s.buf, k_block, s.off, h); break;
    case kind::write: lp_.write(s.op, s.fd, s.buf, k_block, s.off, h); break;
    case kind::fsync: lp_.fsync(s.op, s.fd, h); break;
    case kind::fdatasync: lp_.fdatasync(s.op, s.fd, h); break;
    case kind::open: lp_.open(s.op, AT_FDCWD, data_.c_str(), {.flags = O_RDONLY}, h); break;
    case kind::sendfile: lp_.sendfile(s.op, s.fd, plain_, s.off, k_block, h); break;
  }
}

void storm::done(slot& s, unio::op& o) {
  ++s.completed;
  s.last = o.raw_result();
  if (s.last < 0) {
    s.ended = true;
    return;
  }
  if (s.k == kind::open) ::close(static_cast<int>(s.last));
  if (s.k == kind::sendfile) {
    char sink[k_block];
    while (::recv(s.peer, sink, sizeof sink, MSG_DONTWAIT) > 0) {
    }
  }
  if (s.k == kind::read || s.k == kind::sendfile) s.off = (s.off + 17 * k_block) % k_data_size;
  ++ok_;
  submit(s);
}

// The error an op gets from a file system shut down under it: EIO; or EROFS for an op that writes
// (write, fsync, fdatasync) and was inside ext4's journal when the shutdown aborted it (a few runs
// in a hundred).
bool death_error(kind k, std::int64_t res) {
  const bool writes = k == kind::write || k == kind::fsync || k == kind::fdatasync;
  return res == -EIO || (res == -EROFS && writes);
}

std::string storm::verify() const {
  for (const slot& s : slots_) {
    std::string what = std::string(name_of(s.k)) + " slot";
    if (s.completed != s.submitted)
      return what + ": " + std::to_string(s.submitted) + " submissions, " + std::to_string(s.completed) + " completions";
    if (!s.ended || !death_error(s.k, s.last)) return what + " ended with " + std::to_string(s.last) + ", not -EIO";
  }
  return "";
}

// A timer and a socket pair through the loop: "" when both work.
std::string loop_still_works(unio::loop& lp) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) return errstr("socketpair", errno);
  std::string bad = unio::sync_wait(lp, [&]() -> unio::task<std::string> {
    if (auto t = co_await lp.async_sleep(std::chrono::milliseconds(1)); !t) co_return "timer: " + t.error().message();
    if (auto w = co_await lp.async_send(sv[0], "ping", 4); !w || *w != 4) co_return "send failed";
    char buf[4] = {};
    auto r = co_await unio::read_exact(lp, sv[1], buf, 4, unio::current_position);
    if (!r || std::string(buf, 4) != "ping") co_return "recv failed";
    co_return "";
  }());
  ::close(sv[0]);
  ::close(sv[1]);
  return bad;
}

// Shuts the file system at mnt down once the storm is running (or after 5 s), then sends the
// byte a socket read on the loop waits for. Returns the shutdown error ("" when it worked).
std::string kill_fs_when_running(const storm& st, const std::string& mnt, int sock) {
  for (int i = 0; i < 5000 && st.successes() < 2 * k_slots; ++i) ::usleep(1000);
  std::string err;
  shut_down_fs(mnt, shutdown_mode::log_flush, err);
  (void)!::send(sock, "x", 1, MSG_NOSIGNAL);
  return err;
}

// The storm on a file system mounted at mnt, shut down under it. Returns the child's exit code.
int storm_until_death(const unio::loop_options& opts, const std::string& mnt, std::string& msg) {
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) != 0) return report(msg, errstr("socketpair", errno), 1);
  unio::loop lp(opts);
  storm st(lp, mnt);
  if (std::string bad = st.prepare(); !bad.empty()) return report(msg, bad, 1);
  char got = 0;
  std::int64_t recv_res = 0;
  unio::op rop;
  lp.recv(rop, sp[0], &got, 1, 0, [&](unio::op& o) { recv_res = o.raw_result(); });
  st.start();
  std::string killer_err;
  std::thread killer([&] {
    killer_err = kill_fs_when_running(st, mnt, sp[1]);
    if (!killer_err.empty()) lp.stop();
  });
  lp.run();
  killer.join();
  if (!killer_err.empty()) return report(msg, killer_err, 1);
  if (std::string bad = st.verify(); !bad.empty()) return report(msg, bad, 2);
  if (recv_res != 1 || got != 'x') return report(msg, "socket read across the shutdown: " + std::to_string(recv_res), 3);
  if (std::string bad = loop_still_works(lp); !bad.empty()) return report(msg, "after the shutdown: " + bad, 4);
  msg = std::to_string(st.successes()) + " ops succeeded, then each of the 64 loops ended in EIO";
  ::close(sp[0]);
  ::close(sp[1]);
  return 0;
}

// 32 reads in one batch, alternately from a file on a dead file system and from one on a healthy
// tmpfs: "" when each dead one failed with EIO and each healthy one read its block.
std::string reads_attributed(unio::loop& lp, int dead, int healthy) {
  constexpr int n = 32;
  std::vector<unio::op> ops(n);
  std::vector<std::vector<char>> bufs(n, std::vector<char>(k_block));
  std::vector<std::int64_t> res(n, 1);
  for (int i = 0; i < n; ++i) {
    const std::uint64_t off = static_cast<std::uint64_t>(i) * k_block;
    lp.read(ops[static_cast<std::size_t>(i)], i % 2 == 0 ? dead : healthy, bufs[static_cast<std::size_t>(i)].data(), k_block,
            off, [&res, i](unio::op& o) { res[static_cast<std::size_t>(i)] = o.raw_result(); });
  }
  lp.run();
  for (int i = 0; i < n; ++i) {
    const auto u = static_cast<std::size_t>(i);
    const std::int64_t want = i % 2 == 0 ? -EIO : static_cast<std::int64_t>(k_block);
    if (res[u] != want) return "read " + std::to_string(i) + ": " + std::to_string(res[u]) + ", not " + std::to_string(want);
    if (i % 2 == 1 && bufs[u][0] != byte_at(u * k_block)) return "read " + std::to_string(i) + ": wrong bytes";
  }
  return "";
}

class fs_death : public backend_test {
 protected:
  unio::loop_options options() const {
    unio::loop_options o = backend_test::options();
    o.pool_size = 2;
    return o;
  }
  // Mounts `fs` in a private namespace, runs the storm to its death, unmounts.
  void die_under_storm(const fs_kind& fs) {
    auto opts = options();
    auto res = on_fresh_image(fs, [&](const scratch_dir&, const std::string& mnt, std::string& msg) -> int {
      if (int rc = storm_until_death(opts, mnt, msg); rc != 0) return rc;  // the loop is gone here
      std::string detail = msg;
      if (int rc = umount_retry(mnt, msg); rc != 0) return rc;
      msg = detail;
      return 0;
    });
    EXPECT_CHILD_OK(res);
  }
};

TEST_P(fs_death, ext4_shut_down_under_64_ops_each_completes_once_with_eio) { die_under_storm(k_ext4); }

TEST_P(fs_death, eio_belongs_to_exactly_the_ops_on_the_dead_file_system) {
  auto opts = options();
  auto res = on_fresh_image(k_ext4, [&](const scratch_dir& dir, const std::string& mnt, std::string& msg) -> int {
    const std::string ok = dir / "ok";
    if (int rc = mount_tmpfs(ok, "size=2m", msg); rc != 0) return rc;
    if (!make_data_file(mnt + "/data", 32 * k_block) || !make_data_file(ok + "/data", 32 * k_block))
      return report(msg, errstr("data files", errno), 1);
    int dead = ::open((mnt + "/data").c_str(), O_RDONLY | O_CLOEXEC);
    int healthy = ::open((ok + "/data").c_str(), O_RDONLY | O_CLOEXEC);
    if (int rc = shut_down_fs(mnt, shutdown_mode::log_flush, msg); rc != 0) return rc;
    unio::loop lp(opts);
    std::string bad = reads_attributed(lp, dead, healthy);
    ::close(dead);
    ::close(healthy);
    return bad.empty() ? 0 : report(msg, bad, 2);
  });
  EXPECT_CHILD_OK(res);
}
TEST_P(fs_death, xfs_shut_down_under_64_ops_each_completes_once_with_eio) { die_under_storm(k_xfs); }

INSTANTIATE_ALL_BACKENDS(fs_death);

}  // namespace
