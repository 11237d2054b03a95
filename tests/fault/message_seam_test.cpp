// Description: sendto, recvfrom, sendmsg and recvmsg reach the kernel as one non-blocking attempt
// (MSG_DONTWAIT), sends with MSG_NOSIGNAL and recvmsg with MSG_CMSG_CLOEXEC; EINTR is retried and
// EAGAIN makes the op wait for readiness again. Faults are injected through the syscall table, on
// every backend whose reactor calls it for sockets (all but io_uring, whose kernel sends and
// receives itself: there the tests skip with that reason).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>

#include "conformance/backends.hpp"
#include "fault/faulty_syscalls.hpp"
#include "sys/syscalls.hpp"
#include "unio/unio.hpp"

namespace {

namespace sys = unio::detail::sys;

std::atomic<int> g_flags[4];  // the flags of the last call: sendto, recvfrom, sendmsg, recvmsg
std::atomic<int> g_recvfrom_eintr{0};
std::atomic<int> g_recvfrom_eagain{0};
std::atomic<int> g_recvfrom_calls{0};

ssize_t seen_sendto(int fd, const void* buf, size_t len, int flags, const sockaddr* to, socklen_t tolen) {
  g_flags[0] = flags;
  return sys::real_table().sendto(fd, buf, len, flags, to, tolen);
}
ssize_t faulty_recvfrom(int fd, void* buf, size_t len, int flags, sockaddr* from, socklen_t* fromlen) {
  ++g_recvfrom_calls;
  g_flags[1] = flags;
  for (auto* left : {&g_recvfrom_eintr, &g_recvfrom_eagain}) {
    if (left->fetch_sub(1) > 0) {
      errno = left == &g_recvfrom_eintr ? EINTR : EAGAIN;
      return -1;
    }
  }
  return sys::real_table().recvfrom(fd, buf, len, flags, from, fromlen);
}
ssize_t seen_sendmsg(int fd, const msghdr* msg, int flags) {
  g_flags[2] = flags;
  return sys::real_table().sendmsg(fd, msg, flags);
}
ssize_t seen_recvmsg(int fd, msghdr* msg, int flags) {
  g_flags[3] = flags;
  return sys::real_table().recvmsg(fd, msg, flags);
}

// Installs the table for the test's life (the table is global: no loop may outlive it), with a
// connected pair of datagram sockets.
class message_seam : public unio::test::backend_test {
 protected:
  void SetUp() override {
    backend_test::SetUp();
    if (IsSkipped()) return;
    using unio::op_code;
    if (std::string why = unio::test::seam_unreachable(options(), {op_code::sendto, op_code::recvfrom, op_code::sendmsg, op_code::recvmsg}); !why.empty()) GTEST_SKIP() << why;
    for (auto& f : g_flags)
      f = 0;
    g_recvfrom_eintr = g_recvfrom_eagain = g_recvfrom_calls = 0;
    sys::table t = sys::real_table();
    t.sendto = &seen_sendto;
    t.recvfrom = &faulty_recvfrom;
    t.sendmsg = &seen_sendmsg;
    t.recvmsg = &seen_recvmsg;
    sys::set_table(t);
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv_), 0);
  }
  void TearDown() override {
    sys::set_table(sys::real_table());
    ::close(sv_[0]);
    ::close(sv_[1]);
  }
  int sv_[2] = {-1, -1};
};

TEST_P(message_seam, every_call_is_non_blocking_sends_never_signal_received_fds_are_cloexec) {
  unio::loop lp(options());
  auto body = [&]() -> unio::task<std::string> {
    unio::endpoint peer;  // empty: no address, so the connected peer
    if (!co_await lp.async_sendto(sv_[0], "a", 1, peer)) co_return "sendto";
    char c;
    if (!co_await lp.async_recvfrom(sv_[1], &c, 1, nullptr)) co_return "recvfrom";
    iovec iov{&c, 1};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (!co_await lp.async_sendmsg(sv_[0], &m, MSG_MORE)) co_return "sendmsg";
    if (!co_await lp.async_recvmsg(sv_[1], &m, MSG_PEEK)) co_return "recvmsg";
    co_return "";
  };
  EXPECT_EQ(unio::sync_wait(lp, body()), "");
  EXPECT_EQ(g_flags[0], MSG_DONTWAIT | MSG_NOSIGNAL);
  EXPECT_EQ(g_flags[1], MSG_DONTWAIT);
  EXPECT_EQ(g_flags[2], MSG_MORE | MSG_DONTWAIT | MSG_NOSIGNAL);  // the caller's flags are kept
  EXPECT_EQ(g_flags[3], MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
}

TEST_P(message_seam, recvfrom_retries_eintr_and_waits_again_after_eagain) {
  ASSERT_EQ(::send(sv_[0], "xyz", 3, 0), 3);
  g_recvfrom_eintr = 2;
  g_recvfrom_eagain = 1;  // the datagram is there, but the call says "not yet": wait for readiness
  unio::loop lp(options());
  char buf[8] = {};
  auto r = unio::sync_wait(lp, [&]() -> unio::task<unio::result<std::size_t>> {
    co_return co_await lp.async_recvfrom(sv_[1], buf, sizeof buf, nullptr);
  }());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 3u);
  EXPECT_EQ(std::string(buf, 3), "xyz");
  EXPECT_EQ(g_recvfrom_calls.load(), 4);  // two EINTRs retried, one EAGAIN waited for, then the datagram
}

INSTANTIATE_ALL_BACKENDS(message_seam);

}  // namespace
