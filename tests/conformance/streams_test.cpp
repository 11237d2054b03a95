// Reads and writes at the current position of every kind of stream fd (pipes, sockets, eventfd,
// signalfd, timerfd, inotify, ttys), blocking and non-blocking: on every backend a read waits
// for data produced later (never EAGAIN, never a blocked loop or a worker stuck forever), and a
// waiting read can be cancelled. The data comes from a timer on the same loop, so a backend
// that blocked the loop's thread in the read would never get there: a rescue thread then
// produces it and the test fails instead of hanging.
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <termios.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include "common.hpp"

using namespace std::chrono_literals;
using unio::test::neg;

namespace {

// One stream to read from: `fd` is read by the loop, produce() makes data appear on it, and
// check() says whether what was read is what produce() made.
struct stream {
  std::string kind;
  int fd = -1;
  std::vector<int> others;  // closed with fd
  std::function<void()> produce;
  std::function<bool(const char*, std::size_t)> check;
  std::size_t read_len = 256;
  std::atomic<bool> produced{false};  // produce() was called (by the test's timer or its rescue)

  stream() = default;
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;
  ~stream() {
    if (fd >= 0) ::close(fd);
    for (int o : others) ::close(o);
  }
};

void set_blocking(int fd, bool blocking) {
  int fl = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, blocking ? (fl & ~O_NONBLOCK) : (fl | O_NONBLOCK));
}

bool same_text(const char* want, const char* got, std::size_t n) {
  return n == std::strlen(want) && std::memcmp(got, want, n) == 0;
}

// SIGUSR1 stays blocked in the test's threads (and the loops' pools, created after) so that
// signalfd receives it.
void block_sigusr1() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  ::pthread_sigmask(SIG_BLOCK, &s, nullptr);
}

std::unique_ptr<stream> make_stream(const std::string& kind, const std::string& dir) {
  auto s = std::make_unique<stream>();
  s->kind = kind;
  if (kind == "pipe") {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return nullptr;
    s->fd = p[0];
    s->others = {p[1]};
    s->produce = [w = p[1]] { (void)!::write(w, "pipe", 4); };
    s->check = [](const char* b, std::size_t n) { return same_text("pipe", b, n); };
  } else if (kind == "socket") {
    auto [a, b] = unio::test::socket_pair();
    if (a < 0) return nullptr;
    s->fd = a;
    s->others = {b};
    s->produce = [b] { (void)!::send(b, "sock", 4, 0); };
    s->check = [](const char* buf, std::size_t n) { return same_text("sock", buf, n); };
  } else if (kind == "eventfd") {
    s->fd = ::eventfd(0, EFD_CLOEXEC);
    s->produce = [fd = s->fd] { ::eventfd_write(fd, 7); };
    s->check = [](const char* b, std::size_t n) {
      std::uint64_t v = 0;
      if (n == 8) std::memcpy(&v, b, 8);
      return n == 8 && v == 7;
    };
  } else if (kind == "signalfd") {
    block_sigusr1();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    s->fd = ::signalfd(-1, &set, SFD_CLOEXEC);
    s->produce = [] { ::kill(::getpid(), SIGUSR1); };
    s->check = [](const char* b, std::size_t n) {
      signalfd_siginfo si{};
      if (n == sizeof si) std::memcpy(&si, b, n);
      return n == sizeof si && si.ssi_signo == SIGUSR1;
    };
  } else if (kind == "timerfd") {
    s->fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    s->produce = [fd = s->fd] {
      itimerspec its{};
      its.it_value.tv_nsec = 1000;
      ::timerfd_settime(fd, 0, &its, nullptr);
    };
    s->check = [](const char* b, std::size_t n) {
      std::uint64_t v = 0;
      if (n == 8) std::memcpy(&v, b, 8);
      return n == 8 && v >= 1;
    };
  } else if (kind == "inotify") {
    s->fd = ::inotify_init1(IN_CLOEXEC);
    if (s->fd < 0 || ::inotify_add_watch(s->fd, dir.c_str(), IN_CREATE) < 0) return nullptr;
    std::string file = dir + "/created";
    s->produce = [file] {
      int f = ::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
      if (f >= 0) ::close(f);
    };
    s->check = [](const char* b, std::size_t n) {
      if (n < sizeof(inotify_event)) return false;
      const auto* ev = reinterpret_cast<const inotify_event*>(b);
      return (ev->mask & IN_CREATE) != 0 && std::string(ev->name) == "created";
    };
  } else if (kind == "pty") {
    int master = -1, slave = -1;
    if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) return nullptr;
    ::fcntl(master, F_SETFD, FD_CLOEXEC);
    ::fcntl(slave, F_SETFD, FD_CLOEXEC);
    termios t{};
    ::tcgetattr(slave, &t);
    ::cfmakeraw(&t);
    ::tcsetattr(slave, TCSANOW, &t);
    s->fd = master;
    s->others = {slave};
    s->produce = [slave] { (void)!::write(slave, "tty", 3); };
    s->check = [](const char* b, std::size_t n) { return same_text("tty", b, n); };
  }
  if (s->fd < 0) return nullptr;
  return s;
}

const char* const k_kinds[] = {"pipe", "socket", "eventfd", "signalfd", "timerfd", "inotify", "pty"};

class streams : public unio::test::conformance_test {
 protected:
  // A read of a fresh stream of `kind`, and a timer after `after` that runs on_timer(loop, read
  // op, stream). A rescue thread produces the data if the loop is still running after 3 s, so a
  // read that blocked the loop's thread fails the test instead of hanging it.
  struct outcome {
    int calls = 0;
    std::int64_t res = 0;
    bool produced_when_done = false;
    std::vector<char> buf;
    std::unique_ptr<stream> s;
  };
  template <class OnTimer>
  outcome read_with_timer(const std::string& kind, bool blocking, std::chrono::milliseconds after, OnTimer on_timer) {
    outcome out;
    out.s = make_stream(kind, dir());
    if (out.s == nullptr) {
      ADD_FAILURE() << kind << ": " << std::strerror(errno);
      return out;
    }
    stream& s = *out.s;
    set_blocking(s.fd, blocking);
    std::atomic<bool> finished{false};
    std::thread rescue([&] {
      for (int i = 0; i < 300 && !finished.load(); ++i) std::this_thread::sleep_for(10ms);
      if (!finished.load() && !s.produced.exchange(true)) s.produce();
    });
    out.buf.resize(s.read_len);
    {
      auto lp = make_loop();
      unio::op r, t;
      lp->read(r, s.fd, out.buf.data(), out.buf.size(), unio::current_position, [&](unio::op& o) {
        ++out.calls;
        out.res = o.raw_result();
        out.produced_when_done = s.produced.load();
      });
      lp->timeout(t, after, [&](unio::op&) { on_timer(*lp, r, s); });
      lp->run();
    }
    finished.store(true);
    rescue.join();
    return out;
  }

  // Reads from a fresh stream of `kind` while a timer on the loop produces the data later.
  void read_waits_for_data(const std::string& kind, bool blocking) {
    SCOPED_TRACE(kind + (blocking ? " (blocking)" : " (non-blocking)"));
    outcome o = read_with_timer(kind, blocking, 5ms, [](unio::loop&, unio::op&, stream& s) {
      if (!s.produced.exchange(true)) s.produce();
    });
    EXPECT_EQ(o.calls, 1);
    ASSERT_GT(o.res, 0) << std::strerror(static_cast<int>(-o.res));
    EXPECT_TRUE(o.produced_when_done) << "the read completed before the data existed";
    EXPECT_TRUE(o.s->check(o.buf.data(), static_cast<std::size_t>(o.res)));
  }

  void cancel_waiting_read(const std::string& kind, bool blocking) {
    SCOPED_TRACE(kind + (blocking ? " (blocking)" : " (non-blocking)"));
    outcome o = read_with_timer(kind, blocking, 2ms, [](unio::loop& lp, unio::op& r, stream&) { lp.cancel(r); });
    EXPECT_EQ(o.calls, 1);
    EXPECT_EQ(o.res, neg(ECANCELED)) << "the read blocked a thread until the rescue produced data";
  }
};

TEST_P(streams, a_nonblocking_read_waits_for_data_on_every_kind_of_fd) {
  for (const char* k : k_kinds) read_waits_for_data(k, false);
}

TEST_P(streams, a_blocking_read_waits_for_data_without_blocking_the_loop) {
  for (const char* k : k_kinds) read_waits_for_data(k, true);
}

TEST_P(streams, a_waiting_read_is_cancelled_on_every_kind_of_fd) {
  for (const char* k : k_kinds) {
    cancel_waiting_read(k, false);
    cancel_waiting_read(k, true);
  }
}

// Data that is there already is read at once, the same on every backend: an eventfd's counter
// (reset by the read, so a second non-blocking read waits), and a readv on a pipe.
TEST_P(streams, ready_data_is_read_at_once_and_the_counter_is_consumed) {
  int efd = ::eventfd(5, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  auto lp = make_loop();
  std::uint64_t v = 0;
  EXPECT_EQ(unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, efd, &v, 8, unio::current_position, h); }), 8);
  EXPECT_EQ(v, 5u);
  unio::op r, t;
  std::int64_t second = 1;
  lp->read(r, efd, &v, 8, unio::current_position, [&](unio::op& o) { second = o.raw_result(); });
  lp->timeout(t, 2ms, [&](unio::op&) { lp->cancel(r); });
  lp->run();
  EXPECT_EQ(second, neg(ECANCELED)) << "a read of an empty eventfd must wait, not say EAGAIN";
  ::close(efd);
}

// Writes at the current position of streams: an eventfd takes 8 bytes; a tty and a socket pass
// the bytes to the other side; a short buffer to signalfd is EINVAL on every backend.
TEST_P(streams, writes_reach_the_other_side_and_errors_are_the_kernels) {
  block_sigusr1();  // before the loop's pool starts: its threads inherit the mask
  auto lp = make_loop();
  int efd = ::eventfd(0, EFD_CLOEXEC);
  std::uint64_t add = 3;
  EXPECT_EQ(unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, efd, &add, 8, unio::current_position, h); }), 8);
  std::uint64_t got = 0;
  ASSERT_EQ(::read(efd, &got, 8), 8);
  EXPECT_EQ(got, 3u);
  // An eventfd's write of less than 8 bytes is EINVAL.
  EXPECT_EQ(unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, efd, &add, 4, unio::current_position, h); }),
            neg(EINVAL));
  ::close(efd);

  int master = -1, slave = -1;
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  termios t{};
  ::tcgetattr(slave, &t);
  ::cfmakeraw(&t);
  ::tcsetattr(slave, TCSANOW, &t);
  EXPECT_EQ(unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->write(o, slave, "abc", 3, unio::current_position, h); }), 3);
  char buf[8];
  pollfd p{master, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  EXPECT_EQ(::read(master, buf, sizeof buf), 3);
  ::close(master);
  ::close(slave);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  int sfd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  ::kill(::getpid(), SIGUSR1);
  char small[16];
  EXPECT_EQ(unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, sfd, small, sizeof small, unio::current_position, h); }),
            neg(EINVAL));
  signalfd_siginfo si{};
  EXPECT_EQ(unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, sfd, &si, sizeof si, unio::current_position, h); }),
            static_cast<std::int64_t>(sizeof si));
  EXPECT_EQ(si.ssi_signo, static_cast<unsigned>(SIGUSR1));
  ::close(sfd);
}

// Character devices without poll support (/dev/zero, /dev/null) never wait: they are read at once.
TEST_P(streams, character_devices_without_poll_are_read_at_once) {
  int z = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
  int n = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(z, 0);
  ASSERT_GE(n, 0);
  auto lp = make_loop();
  char buf[64];
  std::memset(buf, 'x', sizeof buf);
  EXPECT_EQ(unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, z, buf, sizeof buf, unio::current_position, h); }), 64);
  EXPECT_EQ(buf[0], 0);
  EXPECT_EQ(unio::test::run_one(*lp, [&](unio::op& o, auto h) { lp->read(o, n, buf, sizeof buf, unio::current_position, h); }), 0);
  ::close(z);
  ::close(n);
}

INSTANTIATE_ALL_BACKENDS(streams);

}  // namespace
