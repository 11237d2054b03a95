// The driver's connections: a socketpair and a TCP connection over loopback, each carrying a
// patterned stream both ways, closed and connected again now and then.
//
// A connection's life: open (a recv waits on each direction, sends are actions) -> quiescing
// (reconnect: no new sends; a direction's recv is cancelled once its send is idle) -> closing
// (close ops on both fds once nothing is in flight; again for an fd a fault left open) ->
// connecting (socketpair(2), or a connect op and an accept op) -> open. While draining, a recv
// stays until its direction has received every byte sent, and a closed connection stays down.
//
// Connects are never cancelled: a connection whose connect was stopped could still reach the
// listener's backlog and be taken by the next round's accept.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "records.hpp"

namespace unio::soak {

void driver::open_conns() {
  conn& pair = conns_.emplace_back();
  begin_connect(pair);
  if (!opt_.tcp) return;
  auto at = unio::endpoint::parse("127.0.0.1", 0);
  auto fd = unio::tcp_listen(*at);
  if (!fd) opt_.report(opt_.name + ": tcp_listen: " + fd.error().message());
  listener_ = *fd;
  auto bound = unio::local_endpoint(listener_);
  if (!bound) opt_.report(opt_.name + ": local_endpoint: " + bound.error().message());
  listen_at_ = *bound;
  conn& tcp = conns_.emplace_back();
  tcp.tcp = true;
  begin_connect(tcp);
}

namespace {
void new_streams(stream_model (&dir)[2], std::uint64_t& seed) {
  for (stream_model& s : dir) s = stream_model{mix64(seed++), 0, 0};
}
}  // namespace

void driver::begin_connect(conn& c) {
  if (!c.tcp) {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, c.fd) != 0)
      opt_.report(opt_.name + ": socketpair: " + std::strerror(errno));
    new_streams(c.dir, data_seed_);
    c.ph = conn::phase::open;
    advance(c);
    return;
  }
  auto fd = unio::tcp_socket(AF_INET);
  if (!fd) opt_.report(opt_.name + ": tcp_socket: " + fd.error().message());
  c.fd[0] = *fd;
  c.ph = conn::phase::connecting;
  c.connect_ok = c.connect_failed = false;
  record& r = fresh(kind::connect);
  r.c = &c;
  ++c.busy;
  launch(r, [&](unio::op& o, auto h) { lp_.connect(o, c.fd[0], listen_at_.addr(), listen_at_.length, h); });
  accept_for(c);
}

void driver::accept_for(conn& c) {
  record& a = fresh(kind::accept);
  a.c = &c;
  c.accept_rec = &a;
  ++c.busy;
  launch(a, [&](unio::op& o, auto h) { lp_.accept(o, listener_, nullptr, nullptr, h); });
}

// A short timeout on the connection, after which advance() retries what a fault failed.
void driver::pause(conn& c) {
  record& r = fresh(kind::timeout);
  r.c = &c;
  r.wait_ns = some_wait(1000);
  c.retry = true;
  ++c.busy;
  launch(r, [&](unio::op& o, auto h) { lp_.timeout(o, std::chrono::nanoseconds(r.wait_ns), h); });
}

void driver::arm_recv(conn& c, int dir) {
  record& r = fresh(kind::recv);
  r.c = &c;
  r.dir = dir;
  r.len = draining_ ? 65536 : 1 + pick_.below(65536);  // draining: read what is left, quickly
  r.buf.resize(r.len);
  c.recv[dir] = &r;
  ++c.busy;
  launch(r, [&](unio::op& o, auto h) { lp_.recv(o, c.fd[1 - dir], r.buf.data(), r.len, 0, h); });
  if (!draining_ && pick_.below(6) == 0) guard(r, 3000);
}

// Keeps one recv on a direction while it may receive something, and cancels it once nothing
// more can come (the sender is idle and, while draining, everything sent has arrived).
void driver::tend(conn& c, int dir) {
  if (c.ph != conn::phase::open && c.ph != conn::phase::quiescing) return;
  const stream_model& s = c.dir[dir];
  bool wanted = c.send_busy[dir] || (c.ph == conn::phase::open && (!draining_ || s.received < s.sent));
  record* r = c.recv[dir];
  if (r == nullptr) {
    if (wanted) arm_recv(c, dir);
  } else if (!wanted && !r->cancel_asked) {
    r->cancel_asked = true;
    ++counts_.cancels;
    lp_.cancel(r->op);
  }
}

bool driver::do_send(bool cancel) {
  std::size_t n = conns_.size(), first = pick_.below(static_cast<std::uint32_t>(n));
  for (std::size_t i = 0; i < 2 * n; ++i) {
    conn& c = conns_[(first + i / 2) % n];
    int dir = static_cast<int>((first + i) % 2);
    if (c.ph != conn::phase::open || c.send_busy[dir]) continue;
    record& r = fresh(kind::send);
    r.c = &c;
    r.dir = dir;
    r.len = 1 + pick_.below(65536);
    r.buf.resize(r.len);
    c.dir[dir].fill(r.buf.data(), r.len);
    c.send_busy[dir] = true;
    ++c.busy;
    launch(r, [&](unio::op& o, auto h) { lp_.send(o, c.fd[dir], r.buf.data(), r.len, 0, h); });
    if (cancel) cancel_now(r);
    return true;
  }
  return false;
}

bool driver::do_reconnect() {
  conn& c = conns_[pick_.below(static_cast<std::uint32_t>(conns_.size()))];
  if (c.ph != conn::phase::open) return false;
  c.ph = conn::phase::quiescing;
  ++counts_.reconnects;
  advance(c);
  return true;
}

void driver::close_fds(conn& c) {
  for (int fd : c.fd) {
    if (fd < 0) continue;
    record& r = fresh(kind::close);
    r.c = &c;
    r.fd = fd;
    ++c.busy;
    launch(r, [&](unio::op& o, auto h) { lp_.close(o, r.fd, h); });
  }
}

// Moves a connection on after one of its ops completed (or draining began).
void driver::advance(conn& c) {
  using phase = conn::phase;
  tend(c, 0);
  tend(c, 1);
  if (c.busy > 0) return;
  switch (c.ph) {
    case phase::quiescing:
      c.ph = phase::closing;
      close_fds(c);
      break;
    case phase::closing:
      if (c.fd[0] < 0 && c.fd[1] < 0) {
        if (draining_) c.ph = phase::down;
        else begin_connect(c);
      } else if (!std::exchange(c.retry, false)) {
        pause(c);  // a fault left an fd open: close it again after a pause
      } else {
        close_fds(c);
      }
      break;
    case phase::connecting:
      if (std::exchange(c.retry, false)) {
        accept_for(c);
      } else if (c.connect_ok && c.fd[1] >= 0) {
        new_streams(c.dir, data_seed_);
        c.ph = phase::open;
        advance(c);
      } else {
        c.ph = phase::closing;
        advance(c);
      }
      break;
    default: break;
  }
}

namespace {
int port_of(int fd, bool peer) {
  sockaddr_in a{};
  socklen_t n = sizeof a;
  int r = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &n) : ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
  return r == 0 ? ntohs(a.sin_port) : -1;
}
}  // namespace

void driver::settle_connecting(conn& c, record& r, std::int64_t res) {
  if (r.k == kind::connect) {
    c.connect_ok = res == 0;
    c.connect_failed = res != 0;
    if (c.connect_failed && c.accept_rec != nullptr && !c.accept_rec->cancel_asked) {
      c.accept_rec->cancel_asked = true;
      lp_.cancel(c.accept_rec->op);
    }
    return;
  }
  c.accept_rec = nullptr;
  if (res >= 0) {
    c.fd[1] = static_cast<int>(res);
    if (port_of(c.fd[1], true) != port_of(c.fd[0], false)) fail(r, "accepted a connection that is not its connect's");
  } else if (!c.connect_failed) {  // the connection is (or will be) in the backlog: accept again
    pause(c);
  }
}

void driver::settle_socket(record& r, std::int64_t res) {
  conn& c = *r.c;
  --c.busy;
  auto n = static_cast<std::size_t>(std::max<std::int64_t>(res, 0));
  switch (r.k) {
    case kind::send:
      c.send_busy[r.dir] = false;
      c.dir[r.dir].sent += n + (opt_.inject == "stream" && n > 0 ? 1 : 0);
      counts_.bytes += n;
      break;
    case kind::recv:
      c.recv[r.dir] = nullptr;
      c.dir[r.dir].received += n;
      break;
    case kind::close:
      if (res == 0) (c.fd[0] == r.fd ? c.fd[0] : c.fd[1]) = -1;
      break;
    case kind::connect:
    case kind::accept: settle_connecting(c, r, res); break;
    default: break;
  }
  advance(c);
}

std::string driver::verify_streams() const {
  std::string bad;
  for (const conn& c : conns_) {
    if (c.ph != conn::phase::open && c.ph != conn::phase::down)
      bad += std::string(c.tcp ? "tcp" : "socketpair") + " connection stuck between phases; ";
    if (c.ph != conn::phase::open) continue;
    for (const stream_model& s : c.dir)
      if (s.received != s.sent)
        bad += std::to_string(s.sent - s.received) + " of " + std::to_string(s.sent) + " bytes sent on the " +
               (c.tcp ? "tcp" : "socketpair") + " connection never arrived; ";
  }
  return bad;
}

}  // namespace unio::soak
