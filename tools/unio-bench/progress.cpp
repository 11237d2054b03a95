#include "progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <fmt/core.h>

namespace unio_bench {

progress_line::progress_line(std::string label, double total_s)
    : label_(std::move(label)), total_s_(total_s), enabled_(::isatty(STDERR_FILENO) == 1) {}

progress_line::~progress_line() {
  if (!enabled_) return;
  fmt::print(stderr, "\r\033[K");  // carriage return, erase to end of line
  std::fflush(stderr);
}

void progress_line::update(double elapsed_s, std::uint64_t ops) {
  if (!enabled_) return;
  // IOPS over the last interval: what the run does now, not its average so far.
  double dt = elapsed_s - last_s_;
  double iops = dt > 0 ? static_cast<double>(ops - last_ops_) / dt : 0;
  last_s_ = elapsed_s;
  last_ops_ = ops;
  double remaining = std::max(0.0, total_s_ - elapsed_s);
  fmt::print(stderr, "\r\033[K{}: {:.1f} s elapsed, {:.1f} s left, {:.0f} IOPS", label_, elapsed_s, remaining, iops);
  std::fflush(stderr);
}

}  // namespace unio_bench
