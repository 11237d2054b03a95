#include "testfile.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace unio_bench {

namespace {

constexpr std::size_t k_chunk = 1 << 20;

// The temporary file to remove at exit or on a signal; a plain array so the handler can use it.
char g_temp_path[4096];

std::string errno_text(int e) { return std::strerror(e); }

void on_signal(int sig) {
  remove_temp_file_now();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void register_temp(const std::string& path) {
  std::strncpy(g_temp_path, path.c_str(), sizeof g_temp_path - 1);
  ::signal(SIGINT, on_signal);
  ::signal(SIGTERM, on_signal);
  ::signal(SIGHUP, on_signal);
}

// Writes pattern content over [from, to). Throws with the path in the message on failure.
void write_pattern(int fd, const std::string& path, std::uint64_t from, std::uint64_t to) {
  std::vector<unsigned char> buf(k_chunk);
  for (std::uint64_t off = from; off < to;) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(k_chunk, to - off));
    fill_pattern(buf.data(), n, off);
    ssize_t w = ::pwrite(fd, buf.data(), n, static_cast<off_t>(off));
    if (w <= 0) throw std::runtime_error(path + ": not writable: " + errno_text(w < 0 ? errno : EIO));
    off += static_cast<std::uint64_t>(w);
  }
}

int open_new_temp(std::string& path) {
  char name[] = "unio-bench.XXXXXX";
  int fd = ::mkstemp(name);
  if (fd < 0) throw std::runtime_error("cannot create a temporary file in the current directory: " + errno_text(errno));
  char cwd[4096];
  path = ::getcwd(cwd, sizeof cwd) ? std::string(cwd) + "/" + name : std::string(name);
  register_temp(path);
  return fd;
}

}  // namespace

void fill_pattern(void* buf, std::uint64_t len, std::uint64_t offset) noexcept {
  auto* p = static_cast<unsigned char*>(buf);
  if (offset % 8 == 0 && len % 8 == 0) {
    for (std::uint64_t i = 0; i < len / 8; ++i) {
      std::uint64_t w = pattern_word(offset / 8 + i);
      std::memcpy(p + 8 * i, &w, 8);
    }
    return;
  }
  for (std::uint64_t i = 0; i < len; ++i) {
    std::uint64_t o = offset + i;
    p[i] = static_cast<unsigned char>(pattern_word(o / 8) >> ((o % 8) * 8));
  }
}

std::string check_file_arg(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return "--file " + path + ": is a directory";
    if (!S_ISREG(st.st_mode)) return "--file " + path + ": not a regular file";
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return "--file " + path + ": not writable: " + errno_text(errno);
    ::close(fd);
    return "";
  }
  if (errno != ENOENT) return "--file " + path + ": " + errno_text(errno);
  // Not there yet: prove it can be created, then leave nothing behind.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return "--file " + path + ": cannot be created: " + errno_text(errno);
  ::close(fd);
  ::unlink(path.c_str());
  return "";
}

test_file prepare_test_file(const run_options& opts) {
  test_file f;
  f.size = opts.size;
  int fd = -1;
  std::uint64_t have = 0;
  if (opts.file.empty()) {
    fd = open_new_temp(f.path);
    f.remove_after = true;
  } else {
    f.path = opts.file;
    fd = ::open(f.path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      f.remove_after = true;
      register_temp(f.path);
    } else {
      fd = ::open(f.path.c_str(), O_RDWR | O_CLOEXEC);
      if (fd < 0) throw std::runtime_error("--file " + f.path + ": " + errno_text(errno));
      struct stat st{};
      ::fstat(fd, &st);
      have = static_cast<std::uint64_t>(st.st_size);
    }
  }
  f.patterned = f.remove_after;
  try {
    if (have < f.size) write_pattern(fd, f.path, have, f.size);
  } catch (...) {
    ::close(fd);
    remove_test_file(f);
    throw;
  }
  ::close(fd);
  return f;
}

void remove_test_file(const test_file& f) {
  if (!f.remove_after) return;
  ::unlink(f.path.c_str());
  g_temp_path[0] = '\0';
}

void remove_temp_file_now() noexcept {
  if (g_temp_path[0] != '\0') ::unlink(g_temp_path);
  g_temp_path[0] = '\0';
}

void prepare_cache(const test_file& f, const std::string& mode) {
  int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  if (mode == "cold") {
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  } else {
    std::vector<char> buf(k_chunk);
    for (std::uint64_t off = 0; off < f.size;) {
      ssize_t r = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(off));
      if (r <= 0) break;
      off += static_cast<std::uint64_t>(r);
    }
  }
  ::close(fd);
}

double residency(const test_file& f) {
  int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || f.size == 0) return -1;
  void* map = ::mmap(nullptr, f.size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return -1;
  long page = ::sysconf(_SC_PAGESIZE);
  std::size_t pages = (f.size + page - 1) / page;
  std::vector<unsigned char> vec(pages);
  double frac = -1;
  if (::mincore(map, f.size, vec.data()) == 0) {
    std::size_t in = 0;
    for (unsigned char v : vec) in += v & 1;
    frac = static_cast<double>(in) / static_cast<double>(pages);
  }
  ::munmap(map, f.size);
  return frac;
}

}  // namespace unio_bench
