// unio-cat FILE...: prints files to standard output, like cat(1). Coroutine style.
//
// Each file is opened through the loop and read in 64 KiB chunks; each chunk is written to
// stdout with unio::write_all, which loops over short writes (stdout may be a pipe). A file
// that cannot be read is reported with its name and the reason, and the others are still
// printed; the exit status is then 1. A failed write to stdout stops everything.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "unio/unio.hpp"

namespace {

struct outcome {
  std::string error;   // empty on success
  bool fatal = false;  // stdout failed: no point in going on
};

// Copies one file to stdout.
unio::task<outcome> cat_one(unio::loop& lp, const char* path, std::vector<char>& buf) {
  auto fd = co_await lp.async_open(AT_FDCWD, path, {.flags = O_RDONLY});
  if (!fd) co_return outcome{fd.error().message()};
  outcome out;
  for (std::uint64_t offset = 0;;) {
    auto n = co_await lp.async_read(*fd, buf.data(), buf.size(), offset);
    if (!n) {
      out.error = "read: " + n.error().message();
      break;
    }
    if (*n == 0) break;  // end of file
    // Write at stdout's current position: it may be a pipe or a terminal, not a seekable file.
    auto w = co_await unio::write_all(lp, STDOUT_FILENO, buf.data(), *n, unio::current_position);
    if (!w) {
      out = {"write to standard output: " + w.error().message(), true};
      break;
    }
    offset += *n;
  }
  (void)co_await lp.async_close(*fd);  // read-only: a close error loses nothing
  co_return out;
}

// Prints every file named on the command line; returns the exit status.
unio::task<int> cat_all(unio::loop& lp, int argc, char** argv) {
  std::vector<char> buf(64 * 1024);  // one buffer, reused for every read
  int status = 0;
  for (int i = 1; i < argc; ++i) {
    outcome r = co_await cat_one(lp, argv[i], buf);
    if (r.error.empty()) continue;
    std::fprintf(stderr, "unio-cat: %s: %s\n", argv[i], r.error.c_str());
    status = 1;
    if (r.fatal) break;
  }
  co_return status;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: unio-cat FILE...\n");
    return 2;
  }
  try {
    unio::loop lp;  // "auto": the best backend that works on this machine
    // sync_wait drives the loop until the task has finished and returns its value.
    return unio::sync_wait(lp, cat_all(lp, argc, argv));
  } catch (const std::exception& e) {  // only the loop's constructor throws
    std::fprintf(stderr, "unio-cat: %s\n", e.what());
    return 1;
  }
}
