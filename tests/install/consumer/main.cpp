// The install test's consumer: a program built against an installed unio (find_package or
// pkg-config). It also compiles the README's examples, which are the blocks between the
// "README" markers below; tests/install checks that README.md shows them unchanged.
//
// Usage: unio_consumer [FILE]   (default: the program itself). Exits 0 when a nop and a read of
// FILE succeeded.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <unio/unio.hpp>

// README callback begin
// Callback form: the caller owns the op and the buffer until the handler has run.
bool print_head(unio::loop& lp, int fd) {
  unio::op op;
  char buf[64];
  bool ok = false;
  lp.read(op, fd, buf, sizeof buf, 0, [&](unio::op& o) {
    ok = o.ok();
    if (ok) std::printf("read %zu bytes\n", o.value());
    else std::printf("read failed: %s\n", o.error().message().c_str());
  });
  lp.run();  // returns when no work is left
  return ok;
}
// README callback end

// README coroutine begin
// Coroutine form: co_await yields a unio::result<T>, a value or a std::error_code.
unio::task<unio::result<std::size_t>> count_bytes(unio::loop& lp, const char* path) {
  auto fd = co_await lp.async_open(AT_FDCWD, path, {.flags = O_RDONLY});
  if (!fd) co_return fd.error();
  char buf[16384];
  std::size_t total = 0;
  for (;;) {
    auto n = co_await lp.async_read(*fd, buf, sizeof buf, total);
    if (!n || *n == 0) {
      (void)co_await lp.async_close(*fd);
      if (!n) co_return n.error();
      co_return total;
    }
    total += *n;
  }
}
// README coroutine end

// README toolkit begin
// Sizes of the regular files in a directory: listed on the pool, stat'ed 16 at a time, with a
// deadline for the whole listing.
unio::task<std::uint64_t> dir_bytes(unio::loop& lp, const char* dir) {
  using namespace std::chrono_literals;
  auto listing = co_await unio::with_timeout(lp, lp.async_scandir(AT_FDCWD, dir), 2s);
  if (!listing) co_return 0;  // ETIMEDOUT, ENOENT, ...
  unio::semaphore limit(lp, 16);
  auto size_of = [&](std::string path) -> unio::task<std::uint64_t> {
    auto held = co_await limit.acquire();
    struct statx st {};
    auto r = co_await lp.async_stat(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_SIZE | STATX_TYPE, &st);
    co_return r && S_ISREG(st.stx_mode) ? st.stx_size : 0;
  };
  std::vector<unio::task<std::uint64_t>> sizes;
  for (const unio::dir_entry& e : *listing) sizes.push_back(size_of(std::string(dir) + "/" + e.name));
  std::uint64_t total = 0;
  for (std::uint64_t n : co_await unio::when_all(std::move(sizes))) total += n;
  co_return total;
}
// README toolkit end

// README embed begin
// A host loop of plain poll(2) driving unio: no tick, no busy loop.
void drive_from_poll(unio::loop& lp) {
  for (;;) {
    std::optional<std::chrono::nanoseconds> t = lp.backend_timeout();  // zero: work is ready now
    if (!t || t->count() > 0) {
      pollfd p{lp.backend_fd(), POLLIN, 0};
      ::poll(&p, 1, t ? int(std::chrono::ceil<std::chrono::milliseconds>(*t).count()) : -1);
    }
    if (!lp.poll()) break;  // no work left, or lp.stop()
  }
}
// README embed end

// README processes begin
// Runs a program and gives what it printed. A program that cannot be started is the spawn's
// error (ENOENT, EACCES), never an exit status of 127.
unio::task<unio::result<std::string>> output_of(unio::loop& lp, std::vector<std::string> argv) {
  unio::spawn_options opts;
  opts.stdout_mode = unio::stdio::pipe;  // the loop reads the child's stdout
  auto p = co_await lp.async_spawn(std::move(argv), opts);
  if (!p) co_return p.error();
  std::string out;
  char buf[4096];
  while (auto n = co_await lp.async_read(p->stdout_fd(), buf, sizeof buf, unio::current_position)) {
    if (*n == 0) break;  // end of file: the child closed its stdout
    out.append(buf, *n);
  }
  auto status = co_await p->async_wait();  // reaps the child
  if (!status) co_return status.error();
  if (!status->success()) std::printf("exit code %d, signal %d\n", status->code, status->signal);
  co_return out;
}
// README processes end

// The README's loop_options example.
void choose_backends() {
// (Not indented: the block is shown verbatim in README.md.)
// README options begin
unio::loop lp;                                    // "auto": the best backend that works here
unio::loop lp2({.backend = "sync"});              // exactly this one, or std::system_error
unio::loop lp3({.backend = "threadpool", .pool_size = 4, .spin_us = 0});
std::printf("%s (%s)\n", std::string(lp.backend_name()).c_str(), lp.backend_reason().c_str());
// README options end
  std::printf("%s, %s\n", std::string(lp2.backend_name()).c_str(), std::string(lp3.backend_name()).c_str());
}

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : argv[0];
  unio::loop lp;  // backend "auto"
  std::printf("unio %s, backend %s (%s)\n", unio::version_string, std::string(lp.backend_name()).c_str(),
              lp.backend_reason().c_str());

  int failures = 0;
  choose_backends();
  unio::op nop;
  bool nop_done = false;
  lp.nop(nop, [&](unio::op& o) { nop_done = o.ok(); });
  lp.run();
  if (!nop_done) {
    std::printf("nop failed\n");
    ++failures;
  }

  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::perror(path);
    return 1;
  }
  if (!print_head(lp, fd)) ++failures;
  ::close(fd);

  unio::result<std::size_t> size = unio::sync_wait(lp, count_bytes(lp, path));
  if (size) std::printf("%s: %zu bytes\n", path, *size);
  else {
    std::printf("%s: %s\n", path, size.error().message().c_str());
    ++failures;
  }
  std::string self(argv[0]);  // its folder holds at least this program
  std::string dir = self.find('/') == std::string::npos ? "." : self.substr(0, self.rfind('/'));
  std::uint64_t here = unio::sync_wait(lp, dir_bytes(lp, dir.c_str()));
  std::printf("%s: %llu bytes in regular files\n", dir.c_str(), static_cast<unsigned long long>(here));
  if (here == 0) ++failures;
  unio::op t;
  bool fired = false;
  lp.timeout(t, std::chrono::milliseconds(5), [&](unio::op& o) { fired = o.ok(); });
  drive_from_poll(lp);
  std::printf("a 5 ms timer driven by a poll(2) host loop: %s\n", fired ? "fired" : "did not fire");
  if (!fired) ++failures;
  unio::result<std::string> echoed = unio::sync_wait(lp, output_of(lp, {"echo", "unio"}));
  std::printf("echo: %s", echoed ? echoed->c_str() : (echoed.error().message() + "\n").c_str());
  if (!echoed || *echoed != "unio\n") ++failures;
  return failures == 0 ? 0 : 1;
}
