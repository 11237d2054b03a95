// Tests specific to the io_uring backend: the probe and its capability table, auto's choice,
// refusal by seccomp (fallback and a clear error), CQ overflow, cancel races, thread changes of
// a SINGLE_ISSUER ring, delegation to the pool (forced with loop_options::io_uring_delegate), the fixed
// path of registered buffers and files, restricted rings and SQPOLL.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <linux/io_uring.h>
#include <sys/uio.h>

#include "backend.hpp"
#include "unio/unio.hpp"

#if defined(UNIO_TEST_HAVE_SECCOMP) && __has_include(<seccomp.h>)
#include <seccomp.h>
#define UNIO_TEST_SECCOMP 1
#endif

namespace {

using namespace std::chrono_literals;

const unio::backend_info* find_info(const std::vector<unio::backend_info>& all, const char* name) {
  for (const auto& b : all)
    if (b.name == name) return &b;
  return nullptr;
}

// Skips the test when io_uring is not built in or not usable here (with the reason).
#define REQUIRE_IO_URING()                                                           \
  do {                                                                               \
    auto all_ = unio::probe_backends();                                              \
    const unio::backend_info* b_ = find_info(all_, "io_uring");                      \
    if (b_ == nullptr) GTEST_SKIP() << "io_uring backend not built in";              \
    if (!b_->available) GTEST_SKIP() << "io_uring unavailable: " << b_->reason;      \
  } while (0)

unio::loop_options uring(unsigned depth = 256, bool defer_taskrun = false) {
  unio::loop_options o;
  o.backend = "io_uring";
  o.queue_depth = depth;
  o.io_uring_defer_taskrun = defer_taskrun;
  return o;
}

std::string temp_file(const std::string& contents) {
  char tmpl[] = "/tmp/unio-uring-XXXXXX";
  int fd = ::mkstemp(tmpl);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, contents.data(), contents.size()), static_cast<ssize_t>(contents.size()));
  ::close(fd);
  return tmpl;
}

// Reads `p` through the loop; returns the bytes or "<error: ...>".
std::string read_through(unio::loop& lp, const std::string& p) {
  unio::op open_op, read_op, close_op;
  int fd = -1;
  char buf[256] = {};
  std::string out;
  lp.open(open_op, AT_FDCWD, p.c_str(), {.flags = O_RDONLY}, [&](unio::op& o) { fd = o.ok() ? static_cast<int>(o.value()) : -1; });
  lp.run();
  if (fd < 0) return "<error: open " + open_op.error().message() + ">";
  lp.read(read_op, fd, buf, sizeof buf, 0, [&](unio::op& o) {
    out = o.ok() ? std::string(buf, o.value()) : "<error: read " + o.error().message() + ">";
  });
  lp.run();
  lp.close(close_op, fd, [](unio::op&) {});
  lp.run();
  return out;
}

TEST(io_uring, probe_reports_native_table) {
  REQUIRE_IO_URING();
  auto all = unio::probe_backends();
  const unio::backend_info* b = find_info(all, "io_uring");
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(b->reason.empty()) << b->reason;
  // Whatever the kernel, these are required for availability and therefore native.
  for (unio::op_code c : {unio::op_code::nop, unio::op_code::read, unio::op_code::write, unio::op_code::accept,
                          unio::op_code::connect, unio::op_code::recv, unio::op_code::send, unio::op_code::timeout,
                          unio::op_code::sendfile, unio::op_code::sendto, unio::op_code::recvfrom,
                          unio::op_code::sendmsg, unio::op_code::recvmsg})
    EXPECT_TRUE(b->native[static_cast<std::size_t>(c)]) << unio::to_string(c);
}

TEST(io_uring, auto_picks_io_uring) {
  REQUIRE_IO_URING();
  std::string why;
  EXPECT_EQ(unio::auto_backend(&why), "io_uring") << why;
  unio::loop lp;
  EXPECT_EQ(lp.backend_name(), "io_uring");
}

TEST(io_uring, reads_a_file) {
  REQUIRE_IO_URING();
  std::string p = temp_file("hello ring");
  unio::loop lp(uring());
  EXPECT_EQ(lp.backend_name(), "io_uring");
  EXPECT_EQ(read_through(lp, p), "hello ring");
  ::unlink(p.c_str());
}

#ifdef UNIO_TEST_SECCOMP
// In a forked child, io_uring_setup is refused with EPERM by a seccomp filter: auto must fall
// back to the thread pool with a reason naming io_uring, a loop on auto must work, and forcing
// io_uring must throw std::system_error naming the refusal. The child reports by exit code.
int seccomp_child(const std::string& file) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return 10;
  if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_setup), 0) != 0) return 11;
  if (seccomp_load(ctx) != 0) return 12;
  seccomp_release(ctx);
  std::string why;
  if (unio::auto_backend(&why) != "threadpool") return 2;
  if (why.find("io_uring") == std::string::npos || why.find("EPERM") == std::string::npos) return 3;
  try {
    unio::loop lp;
    if (lp.backend_name() != "threadpool") return 4;
    if (read_through(lp, file) != "fallback works") return 5;
  } catch (...) {
    return 6;
  }
  try {
    unio::loop lp(uring());
    return 7;
  } catch (const std::system_error& e) {
    std::string what = e.what();
    if (what.find("io_uring") == std::string::npos || what.find("EPERM") == std::string::npos) return 8;
  } catch (...) {
    return 9;
  }
  return 0;
}

TEST(io_uring, seccomp_refusal_falls_back_to_threadpool) {
  REQUIRE_IO_URING();
  std::string p = temp_file("fallback works");
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ::_exit(seccomp_child(p));
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ::unlink(p.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << "child died with signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see seccomp_child() for what this exit code means";
}
#endif

// 200 NOPs into a 4-entry SQ (8-entry CQ) in one turn: the SQ is flushed and refilled, the CQ
// overflows into the kernel's list (NODROP), and every op completes exactly once.
TEST(io_uring, cq_overflow_loses_nothing) {
  REQUIRE_IO_URING();
  unio::loop lp(uring(4));
  constexpr int n = 200;
  std::vector<unio::op> ops(n);
  std::vector<int> calls(n, 0);
  for (int i = 0; i < n; ++i)
    lp.nop(ops[i], [&calls, i](unio::op& o) {
      EXPECT_TRUE(o.ok()) << o.error().message();
      ++calls[i];
    });
  lp.run();
  for (int i = 0; i < n; ++i) EXPECT_EQ(calls[i], 1) << "op " << i;
}

// The same with file reads, resubmitted from their handlers, across many turns.
TEST(io_uring, small_ring_many_reads) {
  REQUIRE_IO_URING();
  std::string p = temp_file(std::string(8192, 'x'));
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  unio::loop lp(uring(2));
  constexpr int n = 64;
  std::vector<unio::op> ops(n);
  std::vector<char> bufs(n * 512);
  int done = 0;
  for (int i = 0; i < n; ++i)
    lp.read(ops[i], fd, &bufs[i * 512], 512, static_cast<std::uint64_t>(i) * 64, [&](unio::op& o) {
      EXPECT_EQ(o.raw_result(), 512);
      ++done;
    });
  lp.run();
  EXPECT_EQ(done, n);
  ::close(fd);
  ::unlink(p.c_str());
}

TEST(io_uring, cancel_waiting_recv) {
  REQUIRE_IO_URING();
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  unio::loop lp(uring());
  unio::op r;
  char buf[16];
  int calls = 0;
  lp.recv(r, sv[0], buf, sizeof buf, 0, [&](unio::op& o) {
    ++calls;
    EXPECT_EQ(o.error(), std::errc::operation_canceled);
  });
  lp.poll();  // the recv is now inside the kernel, waiting
  EXPECT_TRUE(r.busy());
  lp.cancel(r);
  lp.cancel(r);  // a second request is harmless
  lp.run();
  EXPECT_EQ(calls, 1);
  ::close(sv[0]);
  ::close(sv[1]);
}

// Cancel right after submission: the SQE has not reached the kernel, so the op never runs.
TEST(io_uring, cancel_right_after_submit) {
  REQUIRE_IO_URING();
  unio::loop lp(uring());
  for (int round = 0; round < 50; ++round) {
    unio::op o;
    int calls = 0;
    std::int64_t res = 1;
    lp.nop(o, [&](unio::op& x) {
      ++calls;
      res = x.raw_result();
    });
    lp.cancel(o);
    lp.run();
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(res, -ECANCELED);
  }
}

// A write cancelled before the ring submitted it must not happen.
TEST(io_uring, cancelled_write_never_runs) {
  REQUIRE_IO_URING();
  std::string p = temp_file("");
  int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  unio::loop lp(uring());
  unio::op w;
  int calls = 0;
  lp.write(w, fd, "data", 4, 0, [&](unio::op& o) {
    ++calls;
    EXPECT_EQ(o.error(), std::errc::operation_canceled);
  });
  lp.cancel(w);
  lp.run();
  EXPECT_EQ(calls, 1);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 0);
  ::close(fd);
  ::unlink(p.c_str());
}

// A cancel racing with completion: whichever wins, exactly one completion.
TEST(io_uring, cancel_after_completion_is_harmless) {
  REQUIRE_IO_URING();
  unio::loop lp(uring());
  unio::op a, b;
  int calls_a = 0, calls_b = 0;
  lp.nop(a, [&](unio::op&) { ++calls_a; });
  lp.poll();  // submits and reaps: a completed (handler ran or is ready)
  lp.cancel(a);
  lp.nop(b, [&](unio::op&) { ++calls_b; });
  lp.run();
  EXPECT_EQ(calls_a, 1);
  EXPECT_EQ(calls_b, 1);
}

// Shutdown with a recv waiting inside the kernel: cancelled, completed exactly once.
TEST(io_uring, destroy_with_recv_in_flight) {
  REQUIRE_IO_URING();
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  unio::op r, n;
  char buf[16];
  int calls = 0;
  std::int64_t res = 0;
  {
    unio::loop lp(uring());
    lp.recv(r, sv[0], buf, sizeof buf, 0, [&](unio::op& o) {
      ++calls;
      res = o.raw_result();
    });
    lp.poll();
    lp.nop(n, [&](unio::op&) { ++calls; });  // still in the SQ at destruction
  }
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(res, -ECANCELED);
  ::close(sv[0]);
  ::close(sv[1]);
}

// SINGLE_ISSUER: constructed here, run on other threads one after the other (with ops queued
// before each), destroyed here.
void moves_between_threads(bool defer_taskrun) {
  unio::loop lp(uring(256, defer_taskrun));
  int calls = 0;
  unio::op a, b, c;
  lp.nop(a, [&](unio::op&) { ++calls; });
  std::thread([&] { lp.run(); }).join();
  lp.nop(b, [&](unio::op&) { ++calls; });
  lp.nop(c, [&](unio::op&) { ++calls; });
  std::thread([&] { lp.run(); }).join();
  EXPECT_EQ(calls, 3);
  lp.nop(a, [&](unio::op&) { ++calls; });
  lp.run();
  EXPECT_EQ(calls, 4);
}

TEST(io_uring, loop_moves_between_threads) {
  REQUIRE_IO_URING();
  moves_between_threads(false);
}

TEST(io_uring, defer_taskrun_loop_moves_between_threads_when_idle) {
  REQUIRE_IO_URING();
  moves_between_threads(true);
}

// The same suite of basics on a SINGLE_ISSUER|DEFER_TASKRUN ring.
TEST(io_uring, defer_taskrun_basics) {
  REQUIRE_IO_URING();
  std::string p = temp_file("deferred");
  unio::loop lp(uring(4, true));
  EXPECT_EQ(read_through(lp, p), "deferred");
  std::vector<unio::op> ops(100);
  int calls = 0;
  for (auto& o : ops) lp.nop(o, [&](unio::op&) { ++calls; });
  lp.run();
  EXPECT_EQ(calls, 100);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  unio::op r;
  char buf[8];
  std::int64_t res = 0;
  lp.recv(r, sv[0], buf, sizeof buf, 0, [&](unio::op& o) { res = o.raw_result(); });
  lp.poll();
  lp.cancel(r);
  lp.run();
  EXPECT_EQ(res, -ECANCELED);
  ::close(sv[0]);
  ::close(sv[1]);
  ::unlink(p.c_str());
}

// Run on a thread that leaves a recv waiting inside the kernel and exits; the loop is then
// destroyed here. The kernel cancelled the exited thread's requests, so the recv completes
// (ECANCELED) exactly once.
TEST(io_uring, destroyed_after_its_thread_exited_with_recv_in_flight) {
  REQUIRE_IO_URING();
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  unio::op r;
  char buf[16];
  int calls = 0;
  std::int64_t res = 0;
  {
    unio::loop lp(uring());
    std::thread([&] {
      lp.recv(r, sv[0], buf, sizeof buf, 0, [&](unio::op& o) {
        ++calls;
        res = o.raw_result();
      });
      lp.poll();
    }).join();
  }
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(res, -ECANCELED);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST(io_uring, wake_from_another_thread) {
  REQUIRE_IO_URING();
  unio::loop lp(uring());
  int ran = 0;
  {
    unio::loop::keep_alive guard(lp);
    std::thread t([&, guard] {
      std::this_thread::sleep_for(20ms);
      lp.post([&] {
        ++ran;
        lp.stop();
      });
    });
    lp.run();
    t.join();
  }
  EXPECT_EQ(ran, 1);
}

// Delegation: with loop_options::io_uring_delegate the named ops are reported as not native and
// run on the loop's thread pool, with the same results; probe_backends() reports the kernel.
TEST(io_uring, delegated_ops_run_on_the_pool) {
  REQUIRE_IO_URING();
  auto all = unio::probe_backends();
  const unio::backend_info* b = find_info(all, "io_uring");
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(b->native[static_cast<std::size_t>(unio::op_code::read)]);
  unio::loop_options opts = uring();
  opts.io_uring_delegate = "files";
  std::string p = temp_file("through the pool");
  {
    unio::loop lp(opts);
    EXPECT_FALSE(lp.is_native(unio::op_code::read));
    EXPECT_FALSE(lp.is_native(unio::op_code::stat));
    EXPECT_TRUE(lp.is_native(unio::op_code::recv));
    EXPECT_EQ(read_through(lp, p), "through the pool");
    // A delegated op cancelled before the pool took it never runs.
    unio::op s;
    struct statx stx {};
    int calls = 0;
    lp.stat(s, AT_FDCWD, p.c_str(), 0, STATX_SIZE, &stx, [&](unio::op& o) {
      ++calls;
      EXPECT_EQ(o.error(), std::errc::operation_canceled);
    });
    lp.cancel(s);
    lp.run();
    EXPECT_EQ(calls, 1);
  }
  {
    opts.io_uring_delegate = "stat,ftruncate";
    unio::loop lp(opts);
    EXPECT_TRUE(lp.is_native(unio::op_code::read));
    EXPECT_FALSE(lp.is_native(unio::op_code::stat));
    EXPECT_FALSE(lp.is_native(unio::op_code::ftruncate));
  }
  ::unlink(p.c_str());
}

}  // namespace

namespace {

// The backend's test hook (counters and test actions, see uring_backend::test_hook).
std::int64_t hook(unio::loop& lp, const char* name, std::int64_t arg = 0) {
  return unio::detail::loop_access::backend_of(lp).test_hook(name, arg);
}

// Runs one read through the loop; returns its raw result.
std::int64_t read_at(unio::loop& lp, int fd, void* buf, std::size_t len, std::uint64_t off) {
  unio::op o;
  std::int64_t res = 1234567;
  lp.read(o, fd, buf, len, off, [&](unio::op& x) { res = x.raw_result(); });
  lp.run();
  return res;
}

TEST(io_uring, registered_buffers_and_files_take_the_fixed_path) {
  REQUIRE_IO_URING();
  unio::loop lp(uring());
  std::string p = temp_file("0123456789abcdef");
  int fd = ::open(p.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::vector<char> buf(4096);
  iovec v{buf.data(), 2048};  // the first half only
  ASSERT_FALSE(lp.register_buffers({&v, 1}));
  int fds[] = {fd};
  ASSERT_FALSE(lp.register_files(fds));

  EXPECT_EQ(read_at(lp, fd, buf.data() + 10, 4, 2), 4);
  EXPECT_EQ(std::string(buf.data() + 10, 4), "2345");
  EXPECT_EQ(hook(lp, "fixed_buffer_sqes"), 1);
  EXPECT_EQ(hook(lp, "fixed_file_sqes"), 1);

  char outside[4];
  EXPECT_EQ(read_at(lp, fd, outside, 4, 4), 4);
  EXPECT_EQ(read_at(lp, fd, buf.data() + 2046, 4, 0), 4);  // runs past the registered end
  EXPECT_EQ(hook(lp, "fixed_buffer_sqes"), 1);
  EXPECT_EQ(hook(lp, "fixed_file_sqes"), 3);

  ASSERT_FALSE(lp.unregister_buffers());
  ASSERT_FALSE(lp.unregister_files());
  EXPECT_EQ(read_at(lp, fd, buf.data(), 4, 0), 4);
  EXPECT_EQ(hook(lp, "fixed_buffer_sqes"), 1);
  EXPECT_EQ(hook(lp, "fixed_file_sqes"), 3);
  ::close(fd);
  ::unlink(p.c_str());
}

// An SQE prepared in its fixed form but not yet submitted when the registration goes away is
// turned back into its plain form: the op still succeeds.
TEST(io_uring, unregistering_with_fixed_sqes_queued) {
  REQUIRE_IO_URING();
  unio::loop lp(uring());
  std::string p = temp_file("abcdefgh");
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::vector<char> buf(64);
  iovec v{buf.data(), buf.size()};
  ASSERT_FALSE(lp.register_buffers({&v, 1}));
  int fds[] = {fd};
  ASSERT_FALSE(lp.register_files(fds));
  unio::op o;
  std::int64_t res = -1;
  lp.read(o, fd, buf.data(), 8, 0, [&](unio::op& x) { res = x.raw_result(); });
  EXPECT_EQ(hook(lp, "fixed_buffer_sqes"), 1);
  ASSERT_FALSE(lp.unregister_buffers());
  ASSERT_FALSE(lp.unregister_files());
  lp.run();
  EXPECT_EQ(res, 8);
  EXPECT_EQ(std::string(buf.data(), 8), "abcdefgh");
  ::close(fd);
  ::unlink(p.c_str());
}

// A read on a registered fd submitted in the same turn as the fd's close still reads the file.
TEST(io_uring, read_then_close_of_a_registered_fd_in_one_batch) {
  REQUIRE_IO_URING();
  unio::loop lp(uring());
  std::string p = temp_file("abcdefgh");
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  int fds[] = {fd};
  ASSERT_FALSE(lp.register_files(fds));
  char buf[8];
  unio::op r, c;
  std::int64_t rres = -1, cres = -1;
  lp.read(r, fd, buf, 8, 0, [&](unio::op& x) { rres = x.raw_result(); });
  lp.close(c, fd, [&](unio::op& x) { cres = x.raw_result(); });
  lp.run();
  EXPECT_EQ(rres, 8);
  EXPECT_EQ(cres, 0);
  EXPECT_EQ(hook(lp, "fixed_file_sqes"), 1);
  ::unlink(p.c_str());
}

TEST(io_uring, restricted_ring_refuses_other_opcodes) {
  REQUIRE_IO_URING();
  unio::loop_options o = uring();
  o.io_uring_restrict = true;
  unio::loop lp(o);
  EXPECT_EQ(hook(lp, "raw_sqe", IORING_OP_OPENAT), -EACCES);  // unio uses OPENAT2, never OPENAT
  EXPECT_EQ(hook(lp, "raw_sqe", IORING_OP_TEE), -EACCES);
  EXPECT_EQ(hook(lp, "raw_sqe", IORING_OP_NOP), 0);
  std::string p = temp_file("restricted");
  EXPECT_EQ(read_through(lp, p), "restricted");

  // Registration stays possible on the enabled, restricted ring, and the fixed path works.
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::vector<char> buf(64);
  iovec v{buf.data(), buf.size()};
  ASSERT_FALSE(lp.register_buffers({&v, 1}));
  int fds[] = {fd};
  ASSERT_FALSE(lp.register_files(fds));
  EXPECT_EQ(read_at(lp, fd, buf.data(), 10, 0), 10);
  EXPECT_EQ(hook(lp, "fixed_buffer_sqes"), 1);
  EXPECT_EQ(hook(lp, "fixed_file_sqes"), 1);
  unio::op c;
  std::int64_t cres = -1;
  lp.close(c, fd, [&](unio::op& x) { cres = x.raw_result(); });  // empties the table slot too
  lp.run();
  EXPECT_EQ(cres, 0);
  ::unlink(p.c_str());

  // Without restrictions the same opcode reaches its own argument checks instead.
  unio::loop plain(uring());
  EXPECT_NE(hook(plain, "raw_sqe", IORING_OP_OPENAT), -EACCES);
}

TEST(io_uring, restricted_defer_taskrun_ring_works) {
  REQUIRE_IO_URING();
  unio::loop_options o = uring(256, true);
  o.io_uring_restrict = true;
  unio::loop lp(o);
  std::string p = temp_file("deferred");
  EXPECT_EQ(read_through(lp, p), "deferred");
  EXPECT_EQ(hook(lp, "raw_sqe", IORING_OP_OPENAT), -EACCES);
  ::unlink(p.c_str());
}

TEST(io_uring, sqpoll_ring_runs_ops_and_wakes_its_poller) {
  REQUIRE_IO_URING();
  unio::loop_options o = uring();
  o.io_uring_sqpoll_idle_ms = 1;
  unio::loop lp(o);
  EXPECT_EQ(hook(lp, "sqpoll"), 1);
  std::string p = temp_file("polled");
  EXPECT_EQ(read_through(lp, p), "polled");
  // After the idle time the poller sleeps (IORING_SQ_NEED_WAKEUP); the next submission must
  // wake it. The test passes whether or not it was asleep; it never waits on a timing.
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(read_through(lp, p), "polled");
  ::unlink(p.c_str());
}

// Both options at once: the SQPOLL thread starts serving the ring only once it is enabled,
// after the restrictions are in place.
TEST(io_uring, sqpoll_and_restrictions_together) {
  REQUIRE_IO_URING();
  unio::loop_options o = uring();
  o.io_uring_sqpoll_idle_ms = 1;
  o.io_uring_restrict = true;
  unio::loop lp(o);
  EXPECT_EQ(hook(lp, "sqpoll"), 1);
  std::string p = temp_file("both");
  EXPECT_EQ(read_through(lp, p), "both");
  EXPECT_EQ(hook(lp, "raw_sqe", IORING_OP_OPENAT), -EACCES);
  ::unlink(p.c_str());
}

// A refused option is a clear error naming it (never a silent fallback). The refusal is
// simulated with the UNIO_IO_URING_REFUSE knob (this kernel grants both options), in a child so
// the environment change cannot reach other tests' threads.
void expect_refusal(const char* knob, unio::loop_options o, const char* words) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setenv("UNIO_IO_URING_REFUSE", knob, 1);
    try {
      unio::loop lp(o);
      std::_Exit(2);
    } catch (const std::system_error& e) {
      std::_Exit(std::string(e.what()).find(words) != std::string::npos ? 0 : 3);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2: the loop was created, 3: the message does not name " << words;
}

TEST(io_uring, refused_sqpoll_or_restrictions_are_clear_errors) {
  REQUIRE_IO_URING();
  unio::loop_options sq = uring();
  sq.io_uring_sqpoll_idle_ms = 10;
  expect_refusal("sqpoll", sq, "io_uring_sqpoll_idle_ms");
  unio::loop_options re = uring();
  re.io_uring_restrict = true;
  expect_refusal("restrict", re, "io_uring_restrict");
}

}  // namespace
