// unio-copy SRC DST: copies a file with several operations in flight. Callback style.
//
// Four lanes, each with one op and one 256 KiB buffer, claim chunks of SRC in turn, read them
// and write them to DST at the same offset: up to four ops run at once. A handler submits its
// lane's next step (an op may be resubmitted from its own handler) and captures two pointers,
// so the op stores it without allocating. At the end DST is flushed and closed. The first
// error stops new work and is printed with its file; the exit status is then 1.
#include <fcntl.h>

#include <cstdio>
#include <string>
#include <vector>

#include "unio/unio.hpp"

namespace {
constexpr std::uint64_t k_chunk = 256 * 1024;
constexpr int k_lanes = 4;

struct copier {
  struct lane {
    unio::op op;
    std::vector<char> buf = std::vector<char>(k_chunk);
    std::uint64_t off = 0, end = 0;     // the part of the claimed chunk still to copy
    std::size_t have = 0, written = 0;  // bytes read into buf, and how many are written
  };

  unio::loop& lp;
  const char *src_path, *dst_path;  // as given on the command line
  int src = -1, dst = -1, active = k_lanes;
  std::uint64_t next = 0;  // the next chunk to claim
  std::string error{};     // the first error; empty while all is well
  unio::op setup{}, close_src{};
  lane lanes[k_lanes]{};

  // Records o's error (the first one wins); returns whether o succeeded.
  bool check(const unio::op& o, const char* what, const char* path) {
    if (!o.ok() && error.empty()) error = std::string(what) + " " + path + ": " + o.error().message();
    return o.ok();
  }
  void start() {  // opens SRC, then creates DST, then sets the lanes going
    lp.open(setup, AT_FDCWD, src_path, {.flags = O_RDONLY}, [this](unio::op& o) {
      if (!check(o, "cannot open", src_path)) return;
      src = static_cast<int>(o.raw_result());
      lp.open(setup, AT_FDCWD, dst_path, {.flags = O_WRONLY | O_CREAT | O_TRUNC, .mode = 0644}, [this](unio::op& o) {
        if (check(o, "cannot create", dst_path)) dst = static_cast<int>(o.raw_result());
        for (lane& l : lanes) claim(l);
      });
    });
  }
  void claim(lane& l) {  // the lane's next chunk
    if (!error.empty()) return retire();
    l.off = next;
    l.end = next += k_chunk;
    read(l);
  }
  void read(lane& l) {
    lp.read(l.op, src, l.buf.data(), l.end - l.off, l.off, [this, &l](unio::op& o) {
      if (!check(o, "cannot read", src_path) || o.value() == 0) return retire();  // or end of file
      l.have = o.value();
      l.written = 0;
      write(l);
    });
  }
  void write(lane& l) {
    lp.write(l.op, dst, l.buf.data() + l.written, l.have - l.written, l.off + l.written, [this, &l](unio::op& o) {
      if (!check(o, "cannot write", dst_path)) return retire();
      l.written += o.value();
      if (l.written < l.have) return write(l);  // a short write: write the rest
      l.off += l.have;
      if (l.off < l.end) read(l);  // a short read: read the rest of the chunk
      else claim(l);
    });
  }
  void retire() {  // a lane is done; the last one closes SRC, flushes DST and closes it
    if (--active > 0) return;
    lp.close(close_src, src, [](unio::op&) {});  // read-only: a close error loses nothing
    if (dst < 0) return;
    lp.fdatasync(setup, dst, [this](unio::op& o) {  // so that the copy survives a crash
      check(o, "cannot flush", dst_path);
      lp.close(setup, dst, [this](unio::op& o) { check(o, "cannot close", dst_path); });
    });
  }
};
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: unio-copy SRC DST\n");
    return 2;
  }
  unio::loop lp;  // throws std::system_error, with the reason, only if no backend works here
  copier c{lp, argv[1], argv[2]};
  c.start();
  lp.run();  // returns when no op is left in flight
  if (c.error.empty()) return 0;
  std::fprintf(stderr, "unio-copy: %s\n", c.error.c_str());
  return 1;
}
