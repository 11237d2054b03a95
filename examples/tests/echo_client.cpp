// Test client for unio-echo-server (plain POSIX, not an example).
//   echo_client PORT NBYTES          TCP to 127.0.0.1:PORT
//   echo_client --unix PATH NBYTES   a Unix stream socket at PATH
//   echo_client --udp PORT NBYTES    UDP to 127.0.0.1:PORT, in datagrams of up to 1000 bytes
// Stream modes send NBYTES of a pattern from one thread while another reads the echo,
// half-close, and check that exactly the same bytes came back. UDP sends one datagram at a time
// and waits (5 s at most) for its echo, which must come from the server's address. Exit status 0
// when everything came back.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

sockaddr_in loopback(const char* port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(std::atoi(port)));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

int connect_stream(bool unix_socket, const char* where) {
  int fd = ::socket(unix_socket ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int r = -1;
  if (fd >= 0 && unix_socket) {
    sockaddr_un su{};
    su.sun_family = AF_UNIX;
    std::strncpy(su.sun_path, where, sizeof su.sun_path - 1);
    r = ::connect(fd, reinterpret_cast<sockaddr*>(&su), sizeof su);
  } else if (fd >= 0) {
    sockaddr_in sa = loopback(where);
    r = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  }
  if (r != 0) {
    std::perror("echo_client: connect");
    return -1;
  }
  return fd;
}

// Send on a thread while this one reads: with a large payload both directions must flow.
int stream_echo(int fd, const std::vector<char>& out) {
  std::vector<char> in;
  std::thread sender([&] {
    for (std::size_t done = 0; done < out.size();) {
      ssize_t w = ::send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return std::perror("echo_client: send");
      done += static_cast<std::size_t>(w);
    }
    ::shutdown(fd, SHUT_WR);  // tells the server we are done; it closes after echoing
  });
  char buf[65536];
  for (ssize_t r; (r = ::recv(fd, buf, sizeof buf, 0)) != 0;) {
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      std::perror("echo_client: recv");
      break;
    }
    in.insert(in.end(), buf, buf + r);
  }
  sender.join();
  ::close(fd);
  if (in != out) {
    std::fprintf(stderr, "echo_client: sent %zu bytes, got %zu back%s\n", out.size(), in.size(),
                 in.size() == out.size() ? " (different)" : "");
    return 1;
  }
  return 0;
}

int udp_echo(const char* port, const std::vector<char>& out) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in server = loopback(port);
  for (std::size_t done = 0; done < out.size() || (out.empty() && done == 0);) {
    std::size_t n = std::min<std::size_t>(1000, out.size() - done);
    if (::sendto(fd, out.data() + done, n, 0, reinterpret_cast<sockaddr*>(&server), sizeof server) != static_cast<ssize_t>(n)) {
      std::perror("echo_client: sendto");
      return 1;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) {
      std::fprintf(stderr, "echo_client: no echo of datagram at %zu within 5 s\n", done);
      return 1;
    }
    char buf[2000];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t r = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (r != static_cast<ssize_t>(n) || std::memcmp(buf, out.data() + done, n) != 0 || from.sin_port != server.sin_port) {
      std::fprintf(stderr, "echo_client: the echo of the datagram at %zu differs (%zd bytes)\n", done, r);
      return 1;
    }
    done += n;
    if (n == 0) break;
  }
  ::close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc == 4 ? argv[1] : "";
  if (!(argc == 3 || (argc == 4 && (mode == "--unix" || mode == "--udp")))) {
    std::fprintf(stderr, "usage: echo_client [--unix PATH | --udp PORT | PORT] NBYTES\n");
    return 2;
  }
  const char* where = argv[argc - 2];
  const std::size_t n = std::strtoul(argv[argc - 1], nullptr, 10);
  std::vector<char> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<char>(i * 31 + n);
  if (mode == "--udp") return udp_echo(where, out);
  int fd = connect_stream(mode == "--unix", where);
  return fd < 0 ? 1 : stream_echo(fd, out);
}
