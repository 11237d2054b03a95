// unio-echo-server PORT [--max-clients N]: a TCP echo server on 127.0.0.1. Coroutine style.
//
// One task accepts connections; each connection gets its own task (unio::spawn) that receives
// up to 16 KiB at a time and sends it back, looping over short sends, until the client closes
// its side. PORT 0 picks a free port. The first line on stdout is "listening on ADDRESS:PORT",
// so a script can find the port. With --max-clients N the server stops accepting after N
// connections and exits once they are all served (the tests run it this way).
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "unio/unio.hpp"

namespace {

// Echoes one connection until the peer closes it, then closes it.
unio::task<void> serve(unio::loop& lp, int fd) {
  std::vector<char> buf(16 * 1024);
  for (;;) {
    auto n = co_await lp.async_recv(fd, buf.data(), buf.size());
    if (!n) std::fprintf(stderr, "unio-echo-server: recv: %s\n", n.error().message().c_str());
    if (!n || *n == 0) break;  // an error, or the client closed its side
    std::size_t sent = 0;
    while (sent < *n) {
      auto s = co_await lp.async_send(fd, buf.data() + sent, *n - sent);
      if (!s) {
        std::fprintf(stderr, "unio-echo-server: send: %s\n", s.error().message().c_str());
        (void)co_await lp.async_close(fd);
        co_return;
      }
      sent += *s;
    }
  }
  (void)co_await lp.async_close(fd);
}

// Accepts up to max_clients connections (0: no limit), each served by its own task.
unio::task<void> accept_loop(unio::loop& lp, int listen_fd, long max_clients) {
  for (long n = 0; max_clients == 0 || n < max_clients;) {
    auto client = co_await lp.async_accept(listen_fd);
    if (client) {
      unio::spawn(serve(lp, *client));  // runs on the loop alongside this task
      ++n;
    } else if (client.error() == std::errc::too_many_files_open ||
               client.error() == std::errc::too_many_files_open_in_system) {
      // Out of fds: the connection stays queued. Retry once clients have gone, not in a
      // busy loop.
      (void)co_await lp.async_sleep(std::chrono::milliseconds(100));
    } else {
      std::fprintf(stderr, "unio-echo-server: accept: %s\n", client.error().message().c_str());
      break;
    }
  }
  (void)co_await lp.async_close(listen_fd);
}

// Parses a decimal number in [lo, hi]; false when `s` is not one.
bool parse_number(const char* s, long lo, long hi, long& out) {
  char* end = nullptr;
  errno = 0;
  out = std::strtol(s, &end, 10);
  return end != s && *end == '\0' && errno == 0 && out >= lo && out <= hi;
}

}  // namespace

int main(int argc, char** argv) {
  long port = 0, max_clients = 0;  // 0 clients: no limit
  bool with_max = argc == 4 && std::strcmp(argv[2], "--max-clients") == 0;
  if (!(argc == 2 || with_max) || !parse_number(argv[1], 0, 65535, port) ||
      (with_max && !parse_number(argv[3], 1, 1'000'000'000, max_clients))) {
    std::fprintf(stderr, "usage: unio-echo-server PORT [--max-clients N]\n");
    return 2;
  }
  auto at = unio::endpoint::parse("127.0.0.1", static_cast<std::uint16_t>(port));
  auto listen_fd = unio::tcp_listen(*at);
  if (!listen_fd) {
    std::fprintf(stderr, "unio-echo-server: cannot listen on %s: %s\n", at->to_string().c_str(),
                 listen_fd.error().message().c_str());
    return 1;
  }
  std::printf("listening on %s\n", unio::local_endpoint(*listen_fd)->to_string().c_str());
  std::fflush(stdout);
  unio::loop lp;
  unio::spawn(accept_loop(lp, *listen_fd, max_clients));
  lp.run();  // returns when the accept loop and every connection have finished
  return 0;
}
