// Description: O_DIRECT without the pain. Unaligned reads and writes on O_DIRECT files of a file
// system with 4096-byte logical sectors (a loop device, ext4 and xfs), on every backend: every
// offset class, end of file, concurrent overlapping unaligned writers checked against a model,
// cancel, shutdown; and O_DIRECT opens that the file system refuses (ramfs).
//
// The file systems live in this test process's own mount namespace, on a loop device configured
// with LO_FLAGS_AUTOCLEAR whose backing file is unlinked at once: when the process ends (even
// killed by the watchdog) the mount goes with the namespace, the device detaches and the file is
// freed. Where a mount namespace or a loop device cannot be made (a container), the tests skip
// with the reason.
#include <fcntl.h>
#include <linux/loop.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"

namespace {

using unio::test::neg;
constexpr std::size_t k_block = 4096;

// ---- scratch file systems ----

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Gives this process its own mount namespace (once), so its mounts vanish with it.
const std::string& private_namespace() {
  static const std::string reason = [] {
    if (::unshare(CLONE_NEWNS) != 0) return errno_text("unshare(CLONE_NEWNS)");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      return errno_text("mount --make-rprivate /");
    return std::string();
  }();
  return reason;
}

// Runs a shell command; returns "" or its output and exit status.
std::string run_command(const std::string& cmd) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return errno_text("popen");
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p) != nullptr)
    out += buf;
  int st = ::pclose(p);
  if (st == 0) return "";
  return cmd + " failed (status " + std::to_string(st) + "): " + out;
}

struct scratch_fs {
  std::string dir;     // mount point; empty when unavailable
  std::string device;  // "blockdev": the raw loop device (held open by device_fd)
  int device_fd = -1;
  std::string reason;  // why it is unavailable

  ~scratch_fs() {
    if (device_fd >= 0) ::close(device_fd);  // the last close detaches it (autoclear)
    if (dir.empty()) return;
    if (::umount2(dir.c_str(), 0) != 0) ::umount2(dir.c_str(), MNT_DETACH);
    ::rmdir(dir.c_str());
  }
};

// A loop device with 4096-byte sectors over an unlinked sparse file. Returns its path or "".
std::string make_loop_device(std::uint64_t bytes, int& loop_fd, std::string& reason) {
  char img[] = "/tmp/unio-dio-img-XXXXXX";
  int ifd = ::mkstemp(img);
  if (ifd < 0) return reason = errno_text("mkstemp"), "";
  ::unlink(img);  // the loop device keeps the file alive
  if (::ftruncate(ifd, static_cast<off_t>(bytes)) != 0) {
    reason = errno_text("ftruncate image");
    ::close(ifd);
    return "";
  }
  int ctl = ::open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) {
    reason = errno_text("open /dev/loop-control");
    ::close(ifd);
    return "";
  }
  std::string dev;
  for (int attempt = 0; attempt < 16 && dev.empty(); ++attempt) {
    int n = ::ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0) {
      reason = errno_text("LOOP_CTL_GET_FREE");
      break;
    }
    std::string path = "/dev/loop" + std::to_string(n);
    int lfd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (lfd < 0) {
      reason = errno_text(("open " + path).c_str());
      break;
    }
    loop_config cfg{};
    cfg.fd = static_cast<std::uint32_t>(ifd);
    cfg.block_size = k_block;
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (::ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0) {
      dev = path;
      loop_fd = lfd;
    } else {
      reason = errno_text("LOOP_CONFIGURE");
      ::close(lfd);
      if (errno != EBUSY) break;  // another process took it first: try the next free one
    }
  }
  ::close(ctl);
  ::close(ifd);
  return dev;
}

scratch_fs* make_fs(const std::string& kind) {
  auto* fs = new scratch_fs;
  if (std::string r = private_namespace(); !r.empty()) return fs->reason = r, fs;
  char mnt[] = "/tmp/unio-dio-mnt-XXXXXX";
  if (::mkdtemp(mnt) == nullptr) return fs->reason = errno_text("mkdtemp"), fs;
  if (kind == "ramfs") {
    if (::mount("none", mnt, "ramfs", 0, nullptr) != 0) {
      fs->reason = errno_text("mount ramfs");
      ::rmdir(mnt);
    } else {
      fs->dir = mnt;
    }
    return fs;
  }
  int loop_fd = -1;
  if (kind == "blockdev") {
    ::rmdir(mnt);
    fs->device = make_loop_device(8u << 20, loop_fd, fs->reason);
    fs->device_fd = loop_fd;
    return fs;
  }
  // xfs needs at least 300 MB; the image is sparse, so this costs only what mkfs writes.
  std::string dev = make_loop_device(kind == "xfs" ? (320u << 20) : (64u << 20), loop_fd, fs->reason);
  if (dev.empty()) {
    ::rmdir(mnt);
    return fs;
  }
  std::string mkfs = kind == "xfs" ? "mkfs.xfs -q -f " + dev : "mkfs.ext4 -q -F -b 4096 " + dev;
  fs->reason = run_command(mkfs);
  if (fs->reason.empty() && ::mount(dev.c_str(), mnt, kind.c_str(), 0, nullptr) != 0)
    fs->reason = errno_text(("mount " + dev).c_str());
  ::close(loop_fd);  // the mount holds the device now; without one it detaches itself
  if (fs->reason.empty())
    fs->dir = mnt;
  else
    ::rmdir(mnt);
  return fs;
}

const scratch_fs& get_fs(const std::string& kind) {
  static std::map<std::string, std::unique_ptr<scratch_fs>> made;
  auto& slot = made[kind];
  if (!slot) slot.reset(make_fs(kind));
  return *slot;
}

// ---- fixtures ----

struct dio_param {
  std::string fs;
  std::string backend;
};

void PrintTo(const dio_param& p, std::ostream* os) { *os << p.fs << "/" << p.backend; }

std::vector<dio_param> all_params(std::initializer_list<const char*> kinds) {
  std::vector<dio_param> v;
  for (const char* k : kinds) {
    for (const auto& b : unio::test::all_backend_names())
      v.push_back({k, b});
  }
  return v;
}

std::string param_name(const ::testing::TestParamInfo<dio_param>& info) {
  return info.param.fs + "_" + info.param.backend;
}

// The expected contents of byte `i` of a fresh test file.
std::byte pattern(std::uint64_t i) { return static_cast<std::byte>((i * 131 + i / 4093 + 7) & 0xff); }
std::vector<std::byte> pattern_bytes(std::uint64_t n) {
  std::vector<std::byte> v(n);
  for (std::uint64_t i = 0; i < n; ++i)
    v[i] = pattern(i);
  return v;
}

class direct_io : public ::testing::TestWithParam<dio_param> {
 protected:
  void SetUp() override {
    if (std::string why = unio::test::unavailable_reason(GetParam().backend); !why.empty()) GTEST_SKIP() << why;
    const scratch_fs& fs = get_fs(GetParam().fs);
    if (fs.dir.empty()) GTEST_SKIP() << GetParam().fs << " scratch file system unavailable: " << fs.reason;
    std::string tmpl = fs.dir + "/t-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
    ::alarm(60);
  }
  void TearDown() override {
    ::alarm(0);
    for (int fd : fds_)
      ::close(fd);
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  unio::loop_options options() const { return unio::test::options_for(GetParam().backend); }
  std::unique_ptr<unio::loop> make_loop() const { return std::make_unique<unio::loop>(options()); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  const std::string& dir() const { return dir_; }

  // Opens (creating) a file of the test directory; closed in TearDown.
  int open_file(const std::string& name, int flags) {
    int fd = ::open(path(name).c_str(), flags | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }
  // Creates `name` holding `contents` (buffered, synced) and opens it O_RDWR|O_DIRECT.
  int direct_file(const std::string& name, const std::vector<std::byte>& contents) {
    int w = ::open(path(name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (w < 0) return -1;
    bool ok = ::write(w, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size()) &&
              ::fsync(w) == 0;
    ::close(w);
    return ok ? open_file(name, O_RDWR | O_DIRECT) : -1;
  }
  std::vector<std::byte> contents(const std::string& name) const {
    std::vector<std::byte> out;
    int fd = ::open(path(name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return out;
    std::byte buf[65536];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
      out.insert(out.end(), buf, buf + n);
    ::close(fd);
    return out;
  }

 private:
  std::string dir_;
  std::vector<int> fds_;
};

// Ops in flight together, each with exactly-once bookkeeping.
struct batch {
  struct entry {
    unio::op op;
    int calls = 0;
    std::int64_t res = 0;
  };
  std::vector<std::unique_ptr<entry>> ops;

  entry& add() { return *ops.emplace_back(std::make_unique<entry>()); }
  static auto handler(entry& e) {
    return [&e](unio::op& o) {
      ++e.calls;
      e.res = o.raw_result();
    };
  }
  void expect_each_once() const {
    for (std::size_t i = 0; i < ops.size(); ++i)
      EXPECT_EQ(ops[i]->calls, 1) << "op " << i;
  }
};

// A buffer placed `mis` bytes after a 4096-aligned address.
struct user_buffer {
  unio::aligned_buffer storage;
  std::byte* p;
  user_buffer(std::size_t n, std::size_t mis) : storage(n + mis + k_block), p(storage.data() + mis) {}
};

const std::uint64_t k_offsets[] = {0, 1, 511, 512, 4095, 4096 + 700};
// Lengths: inside one block, up to a block boundary, crossing one, crossing two or more.
std::vector<std::uint64_t> lengths_for(std::uint64_t off) {
  const std::uint64_t to_boundary = k_block - off % k_block;
  return {1, 100, to_boundary, to_boundary + 1, k_block + 3, 3 * k_block + 5};
}

// ---- the alignment path is really exercised ----

TEST_P(direct_io, device_refuses_512_aligned_direct_io_that_unio_serves) {
  const auto data = pattern_bytes(4 * k_block);
  int fd = direct_file("sanity", data);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  auto al = unio::direct_alignment(fd);
  ASSERT_TRUE(al) << al.error().message();
  EXPECT_EQ(al->offset, k_block) << "the scratch device should have 4096-byte sectors";
  EXPECT_GE(al->memory, 1u);
  auto bad = unio::direct_alignment(-1);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), std::errc::bad_file_descriptor);
  unio::aligned_buffer buf(2 * k_block);
  errno = 0;
  EXPECT_EQ(::pread(fd, buf.data(), 512, 512), -1) << "a 512-aligned O_DIRECT read should be refused here";
  EXPECT_EQ(errno, EINVAL);
  ASSERT_EQ(::pread(fd, buf.data(), k_block, k_block), static_cast<ssize_t>(k_block));
  // The same 512-aligned read through unio succeeds.
  auto lp = make_loop();
  auto res = unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, buf.data(), 512, 512, h); });
  ASSERT_EQ(res, 512);
  EXPECT_EQ(std::memcmp(buf.data(), data.data() + 512, 512), 0);
}

TEST_P(direct_io, aligned_ops_pass_through) {
  auto data = pattern_bytes(4 * k_block);
  int fd = direct_file("aligned", data);
  ASSERT_GE(fd, 0);
  auto lp = make_loop();
  unio::aligned_buffer buf(2 * k_block);
  std::memset(buf.data(), 0x5a, buf.size());
  EXPECT_EQ(unio::test::run_one(
                *lp, [&](unio::op& o, auto h) { lp->write(o, fd, buf.data(), 2 * k_block, k_block, h); }),
            static_cast<std::int64_t>(2 * k_block));
  std::memset(data.data() + k_block, 0x5a, 2 * k_block);
  unio::aligned_buffer in(4 * k_block);
  EXPECT_EQ(
      unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, in.data(), 4 * k_block, 0, h); }),
      static_cast<std::int64_t>(4 * k_block));
  EXPECT_EQ(std::memcmp(in.data(), data.data(), data.size()), 0);
}

// io_uring moves the file position only for a transfer that completes inside the call that
// issued it; an O_DIRECT one completes later, so each read at the current position must still
// move it (the io_uring backend sends these to its pool).
TEST_P(direct_io, aligned_ops_at_the_current_position_move_it) {
  auto data = pattern_bytes(4 * k_block);
  int fd = direct_file("cur", data);
  ASSERT_GE(fd, 0);
  auto lp = make_loop();
  unio::aligned_buffer out(k_block);
  std::memset(out.data(), 0x6b, out.size());
  ASSERT_EQ(::lseek(fd, k_block, SEEK_SET), static_cast<off_t>(k_block));
  EXPECT_EQ(unio::test::run_one(
                *lp, [&](unio::op& o, auto h) { lp->write(o, fd, out.data(), k_block, unio::current_position, h); }),
            static_cast<std::int64_t>(k_block));
  EXPECT_EQ(::lseek(fd, 0, SEEK_CUR), static_cast<off_t>(2 * k_block));
  std::memset(data.data() + k_block, 0x6b, k_block);
  ASSERT_EQ(::lseek(fd, 0, SEEK_SET), 0);
  unio::aligned_buffer in(k_block);
  for (std::uint64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(unio::test::run_one(
                  *lp, [&](unio::op& o, auto h) { lp->read(o, fd, in.data(), k_block, unio::current_position, h); }),
              static_cast<std::int64_t>(k_block));
    EXPECT_EQ(std::memcmp(in.data(), data.data() + i * k_block, k_block), 0) << "block " << i;
  }
  EXPECT_EQ(::lseek(fd, 0, SEEK_CUR), static_cast<off_t>(4 * k_block));
  EXPECT_EQ(unio::test::run_one(
                *lp, [&](unio::op& o, auto h) { lp->read(o, fd, in.data(), k_block, unio::current_position, h); }),
            0);
}

// ---- reads ----

TEST_P(direct_io, unaligned_reads_at_every_offset_class) {
  const std::uint64_t size = 8 * k_block + 123;
  const auto data = pattern_bytes(size);
  int fd = direct_file("r", data);
  ASSERT_GE(fd, 0);
  auto lp = make_loop();
  struct want {
    std::uint64_t off, len;
    std::unique_ptr<user_buffer> buf;
  };
  std::vector<want> wants;
  batch b;
  for (std::uint64_t off : k_offsets) {
    for (std::uint64_t len : lengths_for(off)) {
      for (std::size_t mis : {0u, 1u, 512u}) {
        auto& w = wants.emplace_back(want{off, len, std::make_unique<user_buffer>(len, mis)});
        auto& e = b.add();
        lp->read(e.op, fd, w.buf->p, len, off, batch::handler(e));
      }
    }
  }
  lp->run();
  b.expect_each_once();
  for (std::size_t i = 0; i < wants.size(); ++i) {
    const auto& w = wants[i];
    ASSERT_EQ(b.ops[i]->res, static_cast<std::int64_t>(w.len)) << "off " << w.off << " len " << w.len;
    EXPECT_EQ(std::memcmp(w.buf->p, data.data() + w.off, w.len), 0) << "off " << w.off << " len " << w.len;
  }
}

TEST_P(direct_io, unaligned_readv_scatters) {
  const auto data = pattern_bytes(4 * k_block);
  int fd = direct_file("rv", data);
  ASSERT_GE(fd, 0);
  auto lp = make_loop();
  std::vector<std::byte> a(3), c(5000);
  user_buffer bb(700, 1);
  iovec iov[4] = {{a.data(), a.size()}, {nullptr, 0}, {bb.p, 700}, {c.data(), c.size()}};
  auto res = unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->readv(o, fd, iov, 4, 4001, h); });
  ASSERT_EQ(res, 5703);
  EXPECT_EQ(std::memcmp(a.data(), data.data() + 4001, 3), 0);
  EXPECT_EQ(std::memcmp(bb.p, data.data() + 4004, 700), 0);
  EXPECT_EQ(std::memcmp(c.data(), data.data() + 4704, 5000), 0);
}

TEST_P(direct_io, reads_at_and_after_end_of_file) {
  const std::uint64_t size = 2 * k_block + 100;
  const auto data = pattern_bytes(size);
  int fd = direct_file("eof", data);
  ASSERT_GE(fd, 0);
  auto lp = make_loop();
  user_buffer buf(2 * k_block, 3);
  auto read = [&](std::uint64_t off, std::uint64_t len) {
    return unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, buf.p, len, off, h); });
  };
  EXPECT_EQ(read(size - 10, 100), 10);
  EXPECT_EQ(std::memcmp(buf.p, data.data() + size - 10, 10), 0);
  EXPECT_EQ(read(2 * k_block + 50, k_block), 50);  // inside the last partial block
  EXPECT_EQ(std::memcmp(buf.p, data.data() + 2 * k_block + 50, 50), 0);
  EXPECT_EQ(read(k_block + 1, 2 * k_block), static_cast<std::int64_t>(size - k_block - 1));
  EXPECT_EQ(std::memcmp(buf.p, data.data() + k_block + 1, size - k_block - 1), 0);
  EXPECT_EQ(read(size, 10), 0);
  EXPECT_EQ(read(size + 5, 10), 0);
  EXPECT_EQ(read(10 * k_block + 1, 10), 0);
}

// ---- writes ----

TEST_P(direct_io, unaligned_writes_at_every_offset_class) {
  const std::uint64_t size = 8 * k_block + 123;
  auto model = pattern_bytes(size);
  int fd = direct_file("w", model);
  ASSERT_GE(fd, 0);
  auto lp = make_loop();
  std::uint8_t tag = 1;
  for (std::uint64_t off : k_offsets) {
    for (std::uint64_t len : lengths_for(off)) {
      for (std::size_t mis : {0u, 3u}) {
        user_buffer buf(len, mis);
        for (std::uint64_t i = 0; i < len; ++i)
          buf.p[i] = static_cast<std::byte>(tag + i);
        auto res =
            unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, fd, buf.p, len, off, h); });
        ASSERT_EQ(res, static_cast<std::int64_t>(len)) << "off " << off << " len " << len;
        if (model.size() < off + len) model.resize(off + len);
        std::memcpy(model.data() + off, buf.p, len);
        ++tag;
      }
    }
  }
  EXPECT_EQ(contents("w"), model);
}

TEST_P(direct_io, unaligned_writev_gathers) {
  auto model = pattern_bytes(3 * k_block);
  int fd = direct_file("wv", model);
  ASSERT_GE(fd, 0);
  auto lp = make_loop();
  std::string a = "head", c(5000, 'c');
  user_buffer bb(9, 1);
  std::memcpy(bb.p, "123456789", 9);
  iovec iov[3] = {{a.data(), a.size()}, {bb.p, 9}, {c.data(), c.size()}};
  auto res = unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->writev(o, fd, iov, 3, 4090, h); });
  ASSERT_EQ(res, 5013);
  std::memcpy(model.data() + 4090, a.data(), 4);
  std::memcpy(model.data() + 4094, bb.p, 9);
  std::memcpy(model.data() + 4103, c.data(), 5000);
  EXPECT_EQ(contents("wv"), model);
}

TEST_P(direct_io, write_past_end_of_file_sets_exact_size_and_zero_gap) {
  auto model = pattern_bytes(100);
  int fd = direct_file("grow", model);
  ASSERT_GE(fd, 0);
  auto lp = make_loop();
  auto write = [&](std::uint64_t off, std::uint64_t len, char c) {
    std::string s(len, c);
    auto res =
        unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, fd, s.data(), len, off, h); });
    EXPECT_EQ(res, static_cast<std::int64_t>(len)) << "off " << off;
    if (model.size() < off + len) model.resize(off + len);
    std::memset(model.data() + off, c, len);
  };
  write(10000, 50, 'a');  // a gap of two blocks and a half
  ASSERT_EQ(contents("grow"), model);
  EXPECT_EQ(std::filesystem::file_size(path("grow")), 10050u);
  write(10040, 20, 'b');  // extends inside the last block
  write(5, 3, 'c');       // inside: the size stays
  write(12287, 2, 'd');   // ends one byte into a new block
  ASSERT_EQ(contents("grow"), model);
  EXPECT_EQ(std::filesystem::file_size(path("grow")), 12289u);
  int empty = open_file("empty", O_RDWR | O_DIRECT);
  ASSERT_GE(empty, 0);
  auto res = unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, empty, "x", 1, 1, h); });
  EXPECT_EQ(res, 1);
  EXPECT_EQ(contents("empty"), (std::vector<std::byte>{std::byte{0}, std::byte{'x'}}));
}

// Writer w owns the bytes [base + (k * n + w) * chunk, +chunk) for k < rounds: the writers'
// ranges never overlap but share blocks, so the final contents are known whatever the order, and
// a read-modify-write that is not serialised loses another writer's bytes.
struct interleaved {
  std::uint64_t base, chunk;
  int writers, rounds;
  std::byte value(int w, int k) const { return static_cast<std::byte>(0x10 + w * 16 + k % 16); }
  std::uint64_t at(int w, int k) const {
    return base + (static_cast<std::uint64_t>(k) * writers + w) * chunk;
  }
  std::uint64_t end() const { return at(writers - 1, rounds - 1) + chunk; }
  void apply(std::vector<std::byte>& model) const {
    if (model.size() < end()) model.resize(end());
    for (int w = 0; w < writers; ++w)
      for (int k = 0; k < rounds; ++k)
        std::memset(model.data() + at(w, k), static_cast<int>(value(w, k)), chunk);
  }
};

// Submits writer w's chunks (all in flight at once) on `lp`.
void submit_writer(unio::loop& lp, int fd, const interleaved& plan, int w, batch& b,
                   std::vector<std::vector<std::byte>>& bufs) {
  for (int k = 0; k < plan.rounds; ++k) {
    auto& buf = bufs.emplace_back(plan.chunk, plan.value(w, k));
    auto& e = b.add();
    lp.write(e.op, fd, buf.data(), plan.chunk, plan.at(w, k), batch::handler(e));
  }
}

TEST_P(direct_io, concurrent_overlapping_unaligned_writers_on_one_loop) {
  // The file ends inside the region, so some writers also extend it.
  for (std::uint64_t chunk : {300u, 1000u, 4097u}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    const interleaved plan{777, chunk, 8, 6};
    auto model = pattern_bytes(plan.base + plan.end() / 2);
    std::string name = "conc" + std::to_string(chunk);
    int fd = direct_file(name, model);
    ASSERT_GE(fd, 0);
    auto lp = make_loop();
    batch b;
    std::vector<std::vector<std::byte>> bufs;
    bufs.reserve(64);
    for (int w = 0; w < plan.writers; ++w)
      submit_writer(*lp, fd, plan, w, b, bufs);
    lp->run();
    b.expect_each_once();
    for (auto& e : b.ops)
      EXPECT_EQ(e->res, static_cast<std::int64_t>(chunk));
    plan.apply(model);
    EXPECT_EQ(contents(name), model);
  }
}

TEST_P(direct_io, concurrent_overlapping_unaligned_writers_on_two_loops_and_threads) {
#if defined(__SANITIZE_THREAD__)
  // With requests on two fds, glibc's AIO helper thread starts another helper through glibc's
  // internal pthread_create, which TSan does not intercept: TSan's allocator then crashes in that
  // thread (seen with GCC 12's TSan and glibc 2.36). Not a unio race; the other builds run it.
  if (GetParam().backend == "posix_aio") GTEST_SKIP() << "glibc AIO helper threads crash TSan's runtime";
#endif
  const interleaved plan{5, 1500, 8, 8};
  auto model = pattern_bytes(plan.end() / 3);
  int fd0 = direct_file("two", model);
  ASSERT_GE(fd0, 0);
  int fd1 = open_file("two", O_RDWR | O_DIRECT);  // a second open file of the same inode
  ASSERT_GE(fd1, 0);
  batch b[2];
  std::vector<std::vector<std::byte>> bufs[2];
  std::atomic<int> started{0};
  // Made here, run there: a loop may move between threads while idle. (Rings set up in two
  // threads at once make TSan report the kernel-shared ring memory that munmap/mmap recycle.)
  std::unique_ptr<unio::loop> loops[2] = {make_loop(), make_loop()};
  auto run = [&](int t, int fd) {
    unio::loop& lp = *loops[t];
    bufs[t].reserve(64);
    started.fetch_add(1);
    while (started.load() < 2)
      std::this_thread::yield();
    for (int w = t; w < plan.writers; w += 2)
      submit_writer(lp, fd, plan, w, b[t], bufs[t]);
    lp.run();
  };
  std::thread t0(run, 0, fd0), t1(run, 1, fd1);
  t0.join();
  t1.join();
  for (auto& bt : b) {
    bt.expect_each_once();
    for (auto& e : bt.ops)
      EXPECT_EQ(e->res, 1500);
  }
  plan.apply(model);
  EXPECT_EQ(contents("two"), model);
}

// ---- cancel and shutdown ----

TEST_P(direct_io, cancel_of_unaligned_ops_completes_each_once) {
  const std::uint64_t size = 4 * k_block;
  auto model = pattern_bytes(size);
  int fd = direct_file("c", model);
  ASSERT_GE(fd, 0);
  auto lp = make_loop();
  user_buffer rbuf(5000, 1);
  std::string w1(3000, 'x'), w2(10, 'y'), w3(10, 'z');
  batch b;
  auto& r = b.add();
  auto& a = b.add();
  auto& c = b.add();  // overlaps a's blocks: waits for a's lock
  auto& d = b.add();
  lp->read(r.op, fd, rbuf.p, 5000, 3, batch::handler(r));
  lp->write(a.op, fd, w1.data(), w1.size(), 100, batch::handler(a));
  lp->write(c.op, fd, w2.data(), w2.size(), 200, batch::handler(c));
  lp->write(d.op, fd, w3.data(), w3.size(), 5000, batch::handler(d));
  lp->cancel(r.op);
  lp->cancel(c.op);
  lp->cancel(d.op);
  lp->run();
  b.expect_each_once();
  EXPECT_TRUE(r.res == neg(ECANCELED) || r.res == 5000) << r.res;
  if (r.res == 5000) {
    EXPECT_EQ(std::memcmp(rbuf.p, model.data() + 3, 5000), 0);
  }
  EXPECT_EQ(a.res, 3000);
  std::memset(model.data() + 100, 'x', 3000);
  EXPECT_TRUE(c.res == neg(ECANCELED) || c.res == 10) << c.res;
  if (c.res == 10) std::memset(model.data() + 200, 'y', 10);
  EXPECT_TRUE(d.res == neg(ECANCELED) || d.res == 10) << d.res;
  if (d.res == 10) std::memset(model.data() + 5000, 'z', 10);
  EXPECT_EQ(contents("c"), model);
}

TEST_P(direct_io, loop_destroyed_with_unaligned_ops_in_flight) {
  auto model = pattern_bytes(3 * k_block);
  int fd = direct_file("shut", model);
  ASSERT_GE(fd, 0);
  batch b;
  std::vector<std::vector<std::byte>> bufs;
  bufs.reserve(64);
  const interleaved plan{50, 700, 4, 4};
  user_buffer rb(100, 1);  // outlives the loop: the read completes during its destruction
  {
    auto lp = make_loop();
    for (int w = 0; w < plan.writers; ++w)
      submit_writer(*lp, fd, plan, w, b, bufs);
    auto& r = b.add();
    lp->read(r.op, fd, rb.p, 100, 1, batch::handler(r));
    lp->poll();
  }
  b.expect_each_once();
  // Each write either happened whole or not at all.
  auto got = contents("shut");
  for (int w = 0; w < plan.writers; ++w) {
    for (int k = 0; k < plan.rounds; ++k) {
      auto res = b.ops[static_cast<std::size_t>(w * plan.rounds + k)]->res;
      ASSERT_TRUE(res == 700 || res == neg(ECANCELED)) << res;
      if (res == 700) {
        ASSERT_GE(got.size(), plan.at(w, k) + 700);
        EXPECT_EQ(got[plan.at(w, k)], plan.value(w, k));
        EXPECT_EQ(got[plan.at(w, k) + 699], plan.value(w, k));
      }
    }
  }
}

TEST_P(direct_io, accepted_direct_open_is_not_a_fallback) {
  unio::loop_options o = options();
  o.direct_fallback = true;
  unio::loop lp(o);
  const std::string p = path("ok");
  unio::open_how how{.flags = O_RDWR | O_CREAT | O_DIRECT, .mode = 0600};
  auto fd = unio::test::run_one(lp, [&](unio::op& op, auto h) { lp.open(op, AT_FDCWD, p.c_str(), how, h); });
  ASSERT_GE(fd, 0);
  EXPECT_NE(::fcntl(static_cast<int>(fd), F_GETFL) & O_DIRECT, 0);
  EXPECT_EQ(lp.direct_fallbacks(), 0u);
  ::close(static_cast<int>(fd));
}

// ---- fd numbers reused behind the loop's back (the layer remembers what it learnt per fd) ----

// Reads `len` bytes at `off` of fd through the loop into a buffer misaligned by one byte.
std::vector<std::byte> read_via(unio::loop& lp, int fd, std::uint64_t off, std::size_t len, std::int64_t& res) {
  user_buffer b(len, 1);
  res = unio::test::run_one(lp, [&](unio::op& o, auto h) { lp.read(o, fd, b.p, len, off, h); });
  return {b.p, b.p + (res > 0 ? res : 0)};
}

// Three files' contents for the fd-reuse tests: a pattern, and two constant fills.
struct reuse_set {
  std::vector<std::byte> a, b, c;
};
reuse_set reuse_contents() {
  return {pattern_bytes(4 * k_block), std::vector<std::byte>(4 * k_block, std::byte{0x42}),
          std::vector<std::byte>(4 * k_block, std::byte{0x17})};
}

TEST_P(direct_io, reused_fd_number_buffered_then_direct_then_buffered) {
  const auto [a, b, c] = reuse_contents();
  int fd = direct_file("a", a);
  int fb = direct_file("b", b);
  int fc = direct_file("c", c);
  ASSERT_GE(fd, 0);
  ASSERT_GE(fb, 0);
  ASSERT_GE(fc, 0);
  int num = open_file("plain", O_RDWR);  // the fd number the loop sees throughout
  ASSERT_GE(num, 0);
  ASSERT_EQ(::pwrite(num, c.data(), 2 * k_block, 0), static_cast<ssize_t>(2 * k_block));
  auto lp = make_loop();
  std::int64_t res = 0;
  // Twice, so that the second read runs on what the first one taught the loop.
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(read_via(*lp, num, 512, 512, res), std::vector<std::byte>(c.begin(), c.begin() + 512));
    EXPECT_EQ(res, 512);
  }
  // The number now names an O_DIRECT file: the kernel refuses a 512-aligned read, unio must not.
  ASSERT_EQ(::dup3(fd, num, O_CLOEXEC), num);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(read_via(*lp, num, 512, 512, res), std::vector<std::byte>(a.begin() + 512, a.begin() + 1024));
    EXPECT_EQ(res, 512) << "pass " << i;
    EXPECT_EQ(read_via(*lp, num, 4097, 5000, res), std::vector<std::byte>(a.begin() + 4097, a.begin() + 9097));
  }
  // Another O_DIRECT file, then a buffered one, under the same number.
  ASSERT_EQ(::dup3(fb, num, O_CLOEXEC), num);
  EXPECT_EQ(read_via(*lp, num, 1, 100, res), std::vector<std::byte>(b.begin() + 1, b.begin() + 101));
  ASSERT_EQ(::fcntl(num, F_SETFL, ::fcntl(num, F_GETFL) & ~O_DIRECT), 0);
  EXPECT_EQ(read_via(*lp, num, 3, 4096, res), std::vector<std::byte>(b.begin() + 3, b.begin() + 4099));
}

// A file system whose O_DIRECT alignment is smaller than the scratch one's 4096 (the root file
// system's 512-byte sectors, usually): its facts, remembered, would make 512-aligned spans that
// the scratch file refuses.
TEST_P(direct_io, reused_fd_number_with_a_stricter_alignment) {
  std::string small = "/var/tmp/unio-dio-XXXXXX";
  int sfd = ::mkstemp(small.data());
  ASSERT_GE(sfd, 0) << std::strerror(errno);
  ::unlink(small.c_str());
  const auto s = pattern_bytes(2 * k_block);
  ASSERT_EQ(::write(sfd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  auto al = unio::direct_alignment(sfd);
  if (!al || al->offset == 0 || al->offset >= k_block || ::fcntl(sfd, F_SETFL, O_DIRECT) != 0) {
    ::close(sfd);
    GTEST_SKIP() << "/var/tmp has no O_DIRECT alignment below 4096 here";
  }
  const int keep = ::dup(sfd);  // the small-alignment file, to put back under sfd's number
  ASSERT_GE(keep, 0);
  const auto a = pattern_bytes(4 * k_block);
  int fd = direct_file("a", a);
  ASSERT_GE(fd, 0);
  std::int64_t res = 0;
  // Bounced on stale facts: a 512-aligned span, which the scratch file refuses (EINVAL).
  {
    auto lp = make_loop();
    EXPECT_EQ(read_via(*lp, sfd, 1, 100, res), std::vector<std::byte>(s.begin() + 1, s.begin() + 101));
    ASSERT_EQ(::dup3(fd, sfd, O_CLOEXEC), sfd);
    EXPECT_EQ(read_via(*lp, sfd, 1, 100, res), std::vector<std::byte>(a.begin() + 1, a.begin() + 101));
  }
  // Passed to the kernel on stale facts: 512-aligned fits the small alignment, not the new one.
  {
    ASSERT_EQ(::dup3(keep, sfd, O_CLOEXEC), sfd);
    auto lp = make_loop();
    for (int i = 0; i < 2; ++i)
      EXPECT_EQ(read_via(*lp, sfd, 512, 512, res), std::vector<std::byte>(s.begin() + 512, s.begin() + 1024));
    ASSERT_EQ(::dup3(fd, sfd, O_CLOEXEC), sfd);
    EXPECT_EQ(read_via(*lp, sfd, 512, 512, res), std::vector<std::byte>(a.begin() + 512, a.begin() + 1024));
    EXPECT_EQ(res, 512);
  }
  ::close(keep);
  ::close(sfd);
}

TEST_P(direct_io, einval_on_remembered_facts_is_still_reported_once) {
  int fd = direct_file("e", pattern_bytes(k_block));
  ASSERT_GE(fd, 0);
  auto lp = make_loop();
  const std::uint64_t negative = (std::uint64_t{1} << 63) + 1;  // unaligned, and a negative off_t
  char buf[16];
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, fd, buf, 16, negative, h); }),
              neg(EINVAL))
        << "pass " << i;
  }
}

// Aligned reads pass the O_DIRECT layer untouched, so what a backend remembers about the fd (the
// linux_aio backend sends reads of a remembered O_DIRECT fd with RWF_NOWAIT instead of asking
// fcntl each time) must not survive the number naming a buffered file: uncached (where a NOWAIT
// read cannot be served), cached, and the same file with O_DIRECT cleared by F_SETFL.
TEST_P(direct_io, reused_fd_number_direct_then_buffered_aligned_reads) {
  const auto [a, b, c] = reuse_contents();
  int fa = direct_file("a", a);
  int fb = open_file("b", O_RDWR);
  int fc = open_file("c", O_RDWR);
  int num = open_file("plain", O_RDWR);  // the fd number the loop sees throughout
  ASSERT_GE(fa, 0);
  ASSERT_GE(fb, 0);
  ASSERT_GE(fc, 0);
  ASSERT_GE(num, 0);
  ASSERT_EQ(::pwrite(fb, b.data(), b.size(), 0), static_cast<ssize_t>(b.size()));
  ASSERT_EQ(::pwrite(fc, c.data(), c.size(), 0), static_cast<ssize_t>(c.size()));
  ASSERT_EQ(::fsync(fb), 0);
  auto lp = make_loop();
  unio::aligned_buffer buf(2 * k_block);
  auto read_at = [&](std::uint64_t off, std::size_t len) {
    std::memset(buf.data(), 0, buf.size());
    std::int64_t res = unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, num, buf.data(), len, off, h); });
    EXPECT_EQ(res, static_cast<std::int64_t>(len));
    return std::vector<std::byte>(buf.data(), buf.data() + (res > 0 ? res : 0));
  };
  auto slice = [](const std::vector<std::byte>& v, std::uint64_t off, std::size_t len) {
    return std::vector<std::byte>(v.begin() + static_cast<std::ptrdiff_t>(off),
                                  v.begin() + static_cast<std::ptrdiff_t>(off + len));
  };
  ASSERT_EQ(::dup3(fa, num, O_CLOEXEC), num);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(read_at(k_block, k_block), slice(a, k_block, k_block)) << "pass " << i;
  // Uncached buffered file: 16 reads in flight, as a NOWAIT refusal for each would come back.
  ASSERT_EQ(::posix_fadvise(fb, 0, 0, POSIX_FADV_DONTNEED), 0);
  ASSERT_EQ(::dup3(fb, num, O_CLOEXEC), num);
  {
    batch bt;
    std::vector<unio::aligned_buffer> bufs;
    for (int i = 0; i < 16; ++i) bufs.emplace_back(k_block);
    for (int i = 0; i < 16; ++i) {
      auto& e = bt.add();
      lp->read(e.op, num, bufs[i].data(), k_block, static_cast<std::uint64_t>(i % 4) * k_block, batch::handler(e));
    }
    lp->run();
    bt.expect_each_once();
    for (int i = 0; i < 16; ++i) {
      EXPECT_EQ(bt.ops[i]->res, static_cast<std::int64_t>(k_block)) << i;
      EXPECT_EQ(std::vector<std::byte>(bufs[i].data(), bufs[i].data() + k_block), slice(b, 0, k_block)) << i;
    }
  }
  ASSERT_EQ(::dup3(fa, num, O_CLOEXEC), num);
  EXPECT_EQ(read_at(0, 2 * k_block), slice(a, 0, 2 * k_block));
  // Cached buffered file.
  ASSERT_EQ(::dup3(fc, num, O_CLOEXEC), num);
  EXPECT_EQ(read_at(2 * k_block, k_block), slice(c, 2 * k_block, k_block));
  // The O_DIRECT file again, then O_DIRECT cleared on the same open file.
  ASSERT_EQ(::dup3(fa, num, O_CLOEXEC), num);
  EXPECT_EQ(read_at(3 * k_block, k_block), slice(a, 3 * k_block, k_block));
  ASSERT_EQ(::fcntl(num, F_SETFL, ::fcntl(num, F_GETFL) & ~O_DIRECT), 0);
  ASSERT_EQ(::posix_fadvise(num, 0, 0, POSIX_FADV_DONTNEED), 0);
  EXPECT_EQ(read_at(k_block, k_block), slice(a, k_block, k_block));
  // A closed number is EBADF, not a read of whatever was remembered. (num and fa share one open
  // file, so O_DIRECT is set again for both; a high number, so that no fd the loop opens itself,
  // such as its pool's eventfd, takes the closed one.)
  ASSERT_EQ(::fcntl(num, F_SETFL, ::fcntl(num, F_GETFL) | O_DIRECT), 0);
  const int high = ::fcntl(fa, F_DUPFD_CLOEXEC, 900);
  ASSERT_GE(high, 900);
  for (int i = 0; i < 2; ++i) {
    std::int64_t res = unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, high, buf.data(), k_block, 0, h); });
    EXPECT_EQ(res, static_cast<std::int64_t>(k_block)) << "pass " << i;
  }
  ::close(high);
  EXPECT_EQ(unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, high, buf.data(), k_block, 0, h); }),
            neg(EBADF));
}

INSTANTIATE_TEST_SUITE_P(fs, direct_io, ::testing::ValuesIn(all_params({"ext4", "xfs"})), param_name);

// ---- a raw block device: no file size to respect, every edge block is read ----

class direct_blockdev : public ::testing::TestWithParam<dio_param> {
 protected:
  void SetUp() override {
    if (std::string why = unio::test::unavailable_reason(GetParam().backend); !why.empty()) GTEST_SKIP() << why;
    const scratch_fs& fs = get_fs("blockdev");
    if (fs.device.empty()) GTEST_SKIP() << "loop device unavailable: " << fs.reason;
    device_ = fs.device;
    ::alarm(60);
  }
  void TearDown() override { ::alarm(0); }
  std::string device_;
};

TEST_P(direct_blockdev, unaligned_writes_keep_the_neighbouring_bytes) {
  const std::uint64_t size = 16 * k_block;
  auto model = pattern_bytes(size);
  int w = ::open(device_.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(w, 0) << std::strerror(errno);
  ASSERT_EQ(::pwrite(w, model.data(), size, 0), static_cast<ssize_t>(size));
  ASSERT_EQ(::fsync(w), 0);
  ::close(w);
  int fd = ::open(device_.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  unio::loop lp(unio::test::options_for(GetParam().backend));
  batch b;
  std::vector<std::vector<std::byte>> bufs;
  bufs.reserve(8);
  const std::uint64_t at[][2] = {{1, 10}, {4095, 2}, {2 * k_block + 100, 3 * k_block}, {9 * k_block + 7, 1}};
  for (const auto& [off, len] : at) {
    auto& buf = bufs.emplace_back(len, std::byte{0xee});
    std::memset(model.data() + off, 0xee, len);
    auto& e = b.add();
    lp.write(e.op, fd, buf.data(), len, off, batch::handler(e));
  }
  lp.run();
  b.expect_each_once();
  for (std::size_t i = 0; i < b.ops.size(); ++i)
    EXPECT_EQ(b.ops[i]->res, static_cast<std::int64_t>(at[i][1]));
  user_buffer got(size, 1);
  auto res = unio::test::run_one(lp, [&](unio::op& op, auto h) { lp.read(op, fd, got.p, size - 1, 1, h); });
  ASSERT_EQ(res, static_cast<std::int64_t>(size - 1));
  EXPECT_EQ(std::memcmp(got.p, model.data() + 1, size - 1), 0);
  ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(dev, direct_blockdev, ::testing::ValuesIn(all_params({"blockdev"})), param_name);

// ---- O_DIRECT opens the file system refuses ----

class direct_open : public direct_io {};

TEST_P(direct_open, refused_open_is_einval_or_falls_back_when_asked) {
  const std::string p = path("f");
  {
    auto lp = make_loop();
    unio::open_how how{.flags = O_RDWR | O_CREAT | O_DIRECT, .mode = 0600};
    auto res =
        unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->open(o, AT_FDCWD, p.c_str(), how, h); });
    EXPECT_EQ(res, neg(EINVAL)) << "ramfs refuses O_DIRECT";
    EXPECT_EQ(lp->direct_fallbacks(), 0u);
  }
  ::unlink(p.c_str());
  unio::loop_options o = options();
  o.direct_fallback = true;
  unio::loop lp(o);
  unio::open_how how{.flags = O_RDWR | O_CREAT | O_EXCL | O_DIRECT, .mode = 0600};
  auto fd = unio::test::run_one(lp, [&](unio::op& op, auto h) { lp.open(op, AT_FDCWD, p.c_str(), how, h); });
  ASSERT_GE(fd, 0) << std::strerror(static_cast<int>(-fd));
  EXPECT_EQ(lp.direct_fallbacks(), 1u);
  EXPECT_EQ(::fcntl(static_cast<int>(fd), F_GETFL) & O_DIRECT, 0) << "the fallback fd is buffered";
  auto al = unio::direct_alignment(static_cast<int>(fd));
  ASSERT_TRUE(al) << al.error().message();
  EXPECT_EQ(al->offset, 1u) << "ramfs has no device and no alignment";
  // It works as a buffered file, unaligned ops included.
  EXPECT_EQ(unio::test::run_one(
                lp, [&](unio::op& op, auto h) { lp.write(op, static_cast<int>(fd), "abc", 3, 1, h); }),
            3);
  char buf[4] = {};
  EXPECT_EQ(
      unio::test::run_one(lp, [&](unio::op& op, auto h) { lp.read(op, static_cast<int>(fd), buf, 4, 0, h); }),
      4);
  EXPECT_EQ(std::string(buf, 4), std::string("\0abc", 4));
  ::close(static_cast<int>(fd));
  // O_EXCL still holds for a file that existed before.
  auto again =
      unio::test::run_one(lp, [&](unio::op& op, auto h) { lp.open(op, AT_FDCWD, p.c_str(), how, h); });
  EXPECT_TRUE(again == neg(EEXIST) || again == neg(EINVAL)) << again;
  if (again >= 0) ::close(static_cast<int>(again));
}

INSTANTIATE_TEST_SUITE_P(fs, direct_open, ::testing::ValuesIn(all_params({"ramfs"})), param_name);

}  // namespace
