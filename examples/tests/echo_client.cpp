// Test client for unio-echo-server (plain POSIX, not an example): connects to 127.0.0.1:PORT,
// sends NBYTES of a pattern from one thread while another reads the echo, half-closes, and
// checks that exactly the same bytes came back. Exit status 0 when they did.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: echo_client PORT NBYTES\n");
    return 2;
  }
  const std::size_t n = std::strtoul(argv[2], nullptr, 10);
  std::vector<char> out(n), in;
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<char>(i * 31 + n);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[1])));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::perror("echo_client: connect");
    return 1;
  }
  // Send on a thread while this one reads: with a large payload both directions must flow.
  std::thread sender([&] {
    for (std::size_t done = 0; done < n;) {
      ssize_t w = ::send(fd, out.data() + done, n - done, MSG_NOSIGNAL);
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
    std::fprintf(stderr, "echo_client: sent %zu bytes, got %zu back%s\n", n, in.size(),
                 in.size() == n ? " (different)" : "");
    return 1;
  }
  return 0;
}
