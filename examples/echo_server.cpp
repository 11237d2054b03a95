// unio-echo-server PORT [--unix PATH] [--udp] [--max-clients N] [--backend B]: an echo server
// on one loop, coroutine style: TCP on 127.0.0.1:PORT, and with --unix a Unix stream socket at
// PATH, and with --udp UDP on 127.0.0.1 at the same port number.
//
// One task accepts connections on each stream listener; each connection gets its own task
// (unio::spawn) that receives up to 16 KiB at a time and sends it back, looping over short sends,
// until the client closes its side. The UDP task sends every datagram back to its sender. PORT 0
// picks a free port. The first lines on stdout say where it listens ("listening on
// 127.0.0.1:PORT", "unix PATH", "udp 127.0.0.1:PORT"), so a script can find them. With
// --max-clients N the stream listeners stop after N connections in all, and the server exits
// once they are served (unless it serves UDP, which has no end).
//
// SIGINT or SIGTERM (through unio::signal_set) stops it cleanly: the listeners and the UDP
// socket close, the connections still open are closed after their current receive is cancelled,
// the Unix socket's file is removed, and it prints "stopped by signal N" and exits with status 0.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "unio/unio.hpp"

namespace {

// What every task of the server shares: the loop, the count of clients, and the ops that a stop
// must cancel (each task's current accept, receive or signal wait).
struct server {
  server(unio::loop& l, long max) : lp(l), max_clients(max) {}
  unio::loop& lp;
  long max_clients = 0;  // 0: no limit
  long accepted = 0;
  int tasks = 0;         // accept loops, connections and the UDP task still running
  bool stopping = false;
  std::set<unio::op*> waiting;
  unio::op* signal_wait = nullptr;

  // Stops everything that waits; each task then closes its socket and ends.
  void stop() {
    stopping = true;
    for (unio::op* o : std::set<unio::op*>(waiting)) lp.cancel(*o);
  }
  // A task ended: when it was the last, nothing is left to stop, and the signal wait goes too.
  void task_done() {
    if (--tasks == 0 && signal_wait != nullptr) lp.cancel(*signal_wait);
  }
};

// Registers an op as "cancel me at stop" for the guard's life.
struct watched {
  watched(server& s, unio::op& o) : s_(s), o_(o) { s_.waiting.insert(&o_); }
  ~watched() { s_.waiting.erase(&o_); }
  watched(const watched&) = delete;
  watched& operator=(const watched&) = delete;

 private:
  server& s_;
  unio::op& o_;
};

void report(const char* what, std::error_code e) {
  if (e != std::errc::operation_canceled) std::fprintf(stderr, "unio-echo-server: %s: %s\n", what, e.message().c_str());
}

// Sends all of buf[0, n).
unio::task<bool> send_all(unio::loop& lp, int fd, const char* buf, std::size_t n) {
  for (std::size_t sent = 0; sent < n;) {
    auto s = co_await lp.async_send(fd, buf + sent, n - sent);
    if (!s) {
      report("send", s.error());
      co_return false;
    }
    sent += *s;
  }
  co_return true;
}

// Echoes one stream connection until the peer closes it or the server stops, then closes it.
unio::task<void> serve(server& s, int fd) {
  std::vector<char> buf(16 * 1024);
  while (!s.stopping) {
    auto recv = s.lp.async_recv(fd, buf.data(), buf.size());
    watched w(s, recv.get_op());
    auto n = co_await recv;
    if (!n) report("recv", n.error());
    if (!n || *n == 0 || !co_await send_all(s.lp, fd, buf.data(), *n)) break;
  }
  (void)co_await s.lp.async_close(fd);
  s.task_done();
}

// Accepts connections (up to max_clients in all), each served by its own task.
unio::task<void> accept_loop(server& s, int listen_fd) {
  while (!s.stopping && (s.max_clients == 0 || s.accepted < s.max_clients)) {
    auto acc = s.lp.async_accept(listen_fd);
    watched w(s, acc.get_op());
    auto client = co_await acc;
    if (client) {
      ++s.accepted;
      ++s.tasks;
      unio::spawn(serve(s, *client));  // runs on the loop alongside this task
    } else if (client.error() == std::errc::too_many_files_open ||
               client.error() == std::errc::too_many_files_open_in_system) {
      // Out of fds: the connection stays queued. Retry once clients have gone, not in a busy loop.
      (void)co_await s.lp.async_sleep(std::chrono::milliseconds(100));
    } else {
      report("accept", client.error());
      break;
    }
  }
  (void)co_await s.lp.async_close(listen_fd);
  s.task_done();
}

// Sends every datagram back to its sender until the server stops.
unio::task<void> udp_loop(server& s, int fd) {
  std::vector<char> buf(65536);
  while (!s.stopping) {
    unio::endpoint from;
    auto recv = s.lp.async_recvfrom(fd, buf.data(), buf.size(), &from);
    watched w(s, recv.get_op());
    auto n = co_await recv;
    if (!n) {
      report("recvfrom", n.error());
      break;
    }
    auto sent = co_await s.lp.async_sendto(fd, buf.data(), *n, from);
    if (!sent) report("sendto", sent.error());
  }
  (void)co_await s.lp.async_close(fd);
  s.task_done();
}

// Waits for SIGINT or SIGTERM and stops the server; cancelled when the server ends by itself.
unio::task<void> on_signal(server& s, unio::signal_set& sigs) {
  auto wait = sigs.async_wait();
  s.signal_wait = &wait.get_op();
  auto sig = co_await wait;
  s.signal_wait = nullptr;
  if (!sig) co_return;  // cancelled: the server is done
  std::printf("stopped by signal %d\n", *sig);
  std::fflush(stdout);
  s.stop();
}

// Parses a decimal number in [lo, hi]; false when `s` is not one.
bool parse_number(const char* s, long lo, long hi, long& out) {
  char* end = nullptr;
  errno = 0;
  out = std::strtol(s, &end, 10);
  return end != s && *end == '\0' && errno == 0 && out >= lo && out <= hi;
}

struct options {
  long port = 0;
  long max_clients = 0;
  std::string unix_path;
  bool udp = false;
  std::string backend = "auto";
};

bool parse(int argc, char** argv, options& o) {
  if (argc < 2 || !parse_number(argv[1], 0, 65535, o.port)) return false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--udp") o.udp = true;
    else if (a == "--unix" && has_value) o.unix_path = argv[++i];
    else if (a == "--backend" && has_value) o.backend = argv[++i];
    else if (a == "--max-clients" && has_value && parse_number(argv[i + 1], 1, 1'000'000'000, o.max_clients)) ++i;
    else return false;
  }
  return true;
}

int fail(const std::string& what, std::error_code e) {
  std::fprintf(stderr, "unio-echo-server: %s: %s\n", what.c_str(), e.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  if (!parse(argc, argv, opt)) {
    std::fprintf(stderr, "usage: unio-echo-server PORT [--unix PATH] [--udp] [--max-clients N] [--backend B]\n");
    return 2;
  }
  std::optional<unio::loop> lp;
  try {
    lp.emplace(unio::loop_options{.backend = opt.backend});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unio-echo-server: %s\n", e.what());
    return 2;
  }
  // Before any socket: the signals are blocked and go to the signal_set from now on.
  unio::signal_set sigs(*lp, {SIGINT, SIGTERM});
  server s(*lp, opt.max_clients);

  auto at = unio::endpoint::parse("127.0.0.1", static_cast<std::uint16_t>(opt.port));
  auto tcp = unio::tcp_listen(*at);
  if (!tcp) return fail("cannot listen on " + at->to_string(), tcp.error());
  auto bound = unio::local_endpoint(*tcp);
  std::printf("listening on %s\n", bound->to_string().c_str());
  std::vector<int> listeners{*tcp};
  if (!opt.unix_path.empty()) {
    auto ep = unio::unix_endpoint(opt.unix_path);
    if (!ep) return fail(opt.unix_path, ep.error());
    auto ux = unio::unix_listen(*ep);
    if (!ux) return fail("cannot listen on " + opt.unix_path, ux.error());
    std::printf("unix %s\n", ep->to_string().c_str());
    listeners.push_back(*ux);
  }
  std::optional<int> udp;
  if (opt.udp) {
    auto u = unio::udp_bind(*unio::endpoint::parse("127.0.0.1", bound->port()));
    if (!u) return fail("cannot bind UDP", u.error());
    std::printf("udp %s\n", unio::local_endpoint(*u)->to_string().c_str());
    udp = *u;
  }
  std::fflush(stdout);

  for (int fd : listeners) {
    ++s.tasks;
    unio::spawn(accept_loop(s, fd));
  }
  if (udp) {
    ++s.tasks;
    unio::spawn(udp_loop(s, *udp));
  }
  unio::spawn(on_signal(s, sigs));
  lp->run();  // returns when every task has finished
  if (!opt.unix_path.empty() && opt.unix_path[0] != '@') ::unlink(opt.unix_path.c_str());
  return 0;
}
