// unio-du [--backend B] PATH...: the apparent size of each tree in bytes, like
// `du -sb --apparent-size PATH...` ("SIZE<TAB>PATH" per argument). Coroutine style.
//
// Every directory is listed with async_scandir and every entry is stat'ed with async_stat
// (AT_SYMLINK_NOFOLLOW: a symlink counts its own size, never its target's), all concurrently:
// the subtrees of a directory are walked by a when_all of tasks. A semaphore keeps at most 64
// listings and stats in flight, so a tree of a million files does not queue a million ops at
// once. A file with several hard links counts once (by device and inode), as du does, and an
// argument already counted is not printed again. An entry that cannot be read is reported with
// its path, the walk goes on, and the exit status is 1.
#include <fcntl.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "unio/unio.hpp"

namespace {

struct walk {
  unio::loop& lp;
  unio::semaphore limit{lp, 64};
  std::set<std::pair<std::uint64_t, std::uint64_t>> seen{};  // (device, inode) of dirs and linked files
  std::uint64_t bytes = 0;
  int errors = 0;

  void fail(const std::string& path, std::error_code e) {
    std::fprintf(stderr, "unio-du: %s: %s\n", path.c_str(), e.message().c_str());
    ++errors;
  }
};

// Whether this inode is counted for the first time. Directories and arguments are remembered
// whatever they are (a directory met again, through two arguments, is not walked twice); other
// files only when they have several links.
bool first_time(walk& w, const struct statx& st, bool argument) {
  if (!argument && !S_ISDIR(st.stx_mode) && st.stx_nlink < 2) return true;
  std::uint64_t dev = (std::uint64_t{st.stx_dev_major} << 32) | st.stx_dev_minor;
  return w.seen.insert({dev, st.stx_ino}).second;
}

// Adds the size of the tree at `path` to w.bytes; false when it was counted before.
unio::task<bool> visit(walk& w, std::string path, bool argument = false) {
  struct statx st {};
  {
    auto held = co_await w.limit.acquire();
    auto r = co_await w.lp.async_stat(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW,
                                      STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_INO | STATX_NLINK, &st);
    if (!r) {
      w.fail(path, r.error());
      co_return true;
    }
  }
  if (!first_time(w, st, argument)) co_return false;
  w.bytes += st.stx_size;
  if (!S_ISDIR(st.stx_mode)) co_return true;
  std::vector<unio::dir_entry> entries;
  {
    auto held = co_await w.limit.acquire();
    auto r = co_await w.lp.async_scandir(AT_FDCWD, path.c_str());
    if (!r) {
      w.fail(path, r.error());
      co_return true;
    }
    entries = std::move(*r);
  }
  std::vector<unio::task<bool>> subtrees;
  subtrees.reserve(entries.size());
  for (const unio::dir_entry& e : entries) subtrees.push_back(visit(w, path + "/" + e.name));
  co_await unio::when_all(std::move(subtrees));
  co_return true;
}

unio::task<int> du_all(unio::loop& lp, const std::vector<std::string>& paths) {
  walk w{lp};  // one set of inodes for all arguments, as du keeps
  for (const std::string& p : paths) {
    w.bytes = 0;
    if (!co_await visit(w, p, true)) continue;
    std::printf("%llu\t%s\n", static_cast<unsigned long long>(w.bytes), p.c_str());
  }
  co_return w.errors > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  unio::loop_options opts;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--backend") == 0 && i + 1 < argc) opts.backend = argv[++i];
    else paths.emplace_back(argv[i]);
  }
  if (paths.empty()) {
    std::fprintf(stderr, "usage: unio-du [--backend B] PATH...\n");
    return 2;
  }
  try {
    unio::loop lp(opts);
    return unio::sync_wait(lp, du_all(lp, paths));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unio-du: %s\n", e.what());
    return 2;
  }
}
