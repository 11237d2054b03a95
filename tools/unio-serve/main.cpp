// unio-serve --root DIR [--port 8080] [--bind 127.0.0.1] [--backend B] [--threads N]
//            [--timeout-ms 10000] [--header-timeout-ms 30000] [--access-log]
//
// A static HTTP/1.1 file server on unio loops (command line in README.md). Each of the N
// threads runs its own loop; all accept on one listening socket, which no other process can
// share. The first line
// on stdout is "listening on ADDRESS:PORT" (--port 0 picks a free port; scripts read it there);
// with --access-log one Common Log Format line per response follows. SIGINT/SIGTERM stop
// accepting, close idle connections, let responses in flight finish (at most
// min(--timeout-ms, 5 s) of inactivity), and exit 0.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "server.hpp"

namespace {

struct options {
  std::string root, bind = "127.0.0.1", backend = "auto";
  int port = 8080;
  unsigned threads = 1;
  long timeout_ms = 10000;
  long header_timeout_ms = 30000;
  bool access_log = false;
  std::uint64_t sendfile_min = 64 * 1024;
};

sigset_t stop_signals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  return s;
}

// The one listening socket; exits with a message when the address cannot be had (a port held
// by another process, of this program or not, gives "Address already in use").
int listen_or_exit(const options& o) {
  auto at = unio::endpoint::parse(o.bind, static_cast<std::uint16_t>(o.port));
  if (!at) {
    std::fprintf(stderr, "unio-serve: --bind %s: not a numeric IPv4/IPv6 address\n", o.bind.c_str());
    std::exit(2);
  }
  auto fd = serve::make_listener(*at);
  if (!fd) {
    std::fprintf(stderr, "unio-serve: cannot listen on %s: %s\n", at->to_string().c_str(),
                 fd.error().message().c_str());
    std::exit(1);
  }
  return *fd;
}

// A loop per thread, all accepting on listen_fd. Exits on failure.
std::vector<std::unique_ptr<serve::worker>> make_workers(const options& o, const serve::config& cfg,
                                                         int listen_fd) {
  std::vector<std::unique_ptr<serve::worker>> workers;
  for (unsigned i = 0; i < o.threads; ++i) {
    std::unique_ptr<unio::loop> lp;
    try {
      lp = std::make_unique<unio::loop>(unio::loop_options{.backend = o.backend});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "unio-serve: --backend %s: %s\n", o.backend.c_str(), e.what());
      std::exit(2);
    }
    if (i == 0)
      std::fprintf(stderr, "unio-serve: backend %s (%s), %u thread(s)\n",
                   std::string(lp->backend_name()).c_str(), lp->backend_reason().c_str(), o.threads);
    workers.push_back(std::make_unique<serve::worker>(cfg, listen_fd, std::move(lp)));
  }
  std::printf("listening on %s\n", unio::local_endpoint(listen_fd)->to_string().c_str());
  std::fflush(stdout);
  return workers;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{"unio-serve: a static HTTP/1.1 file server on unio loops"};
  app.add_option("--root", o.root, "directory to serve")->required()->check(CLI::ExistingDirectory);
  app.add_option("--port", o.port, "TCP port (0: pick a free one, printed on stdout)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--bind", o.bind, "numeric address to listen on");
  app.add_option("--backend", o.backend, "auto, sync, threadpool, io_uring, linux_aio, posix_aio");
  app.add_option("--threads", o.threads, "threads, each with its own loop and listener")
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--timeout-ms", o.timeout_ms, "close clients idle or stalled this long")
      ->check(CLI::Range(1L, 86400000L));
  app.add_option("--header-timeout-ms", o.header_timeout_ms,
                 "close clients whose request head has not fully arrived this long after it began")
      ->check(CLI::Range(1L, 86400000L));
  app.add_flag("--access-log", o.access_log, "one line per response on stdout");
  app.add_option("--sendfile-min", o.sendfile_min,
                 "bodies of at least this many bytes go out with sendfile, smaller ones with read + send "
                 "(0: always sendfile)");
  CLI11_PARSE(app, argc, argv);

  // Before any thread exists (loops start pool threads): the stop signals are taken by sigwait
  // below only, and a vanished client never kills the process.
  sigset_t sigs = stop_signals();
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  serve::config cfg;
  cfg.root_fd = ::open(o.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (cfg.root_fd < 0) {
    std::perror(("unio-serve: " + o.root).c_str());
    return 1;
  }
  cfg.timeout = std::chrono::milliseconds(o.timeout_ms);
  cfg.header_timeout = std::chrono::milliseconds(o.header_timeout_ms);
  cfg.grace = std::min(cfg.timeout, std::chrono::milliseconds(5000));
  cfg.access_log = o.access_log;
  cfg.sendfile_min = o.sendfile_min;

  int listen_fd = listen_or_exit(o);
  auto workers = make_workers(o, cfg, listen_fd);
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (auto& w : workers)
    threads.emplace_back([&w, &failed] {
      try {
        w->run();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "unio-serve: worker failed: %s\n", e.what());
        failed = true;
        ::kill(::getpid(), SIGTERM);  // wake the main thread, which stops the others
      }
    });

  int sig = 0;
  sigwait(&sigs, &sig);
  for (auto& w : workers) w->request_stop();
  for (auto& t : threads) t.join();
  workers.clear();
  ::close(listen_fd);
  ::close(cfg.root_fd);
  return failed ? 1 : 0;
}
