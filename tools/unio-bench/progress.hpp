// The progress line of a running workload: elapsed, remaining and current IOPS, redrawn in place
// on stderr. Shown only when stderr is a terminal, so logs, pipes and the JSON/CSV outputs never
// carry it.
#pragma once

#include <cstdint>
#include <string>

namespace unio_bench {

class progress_line {
 public:
  // `label` names the run (the backend); `total_s` is the planned runtime.
  progress_line(std::string label, double total_s);
  ~progress_line();  // erases the line
  progress_line(const progress_line&) = delete;
  progress_line& operator=(const progress_line&) = delete;

  // Whether anything is drawn (stderr is a terminal).
  bool enabled() const noexcept { return enabled_; }
  // Redraws the line for `ops` completed after `elapsed_s` seconds.
  void update(double elapsed_s, std::uint64_t ops);

 private:
  std::string label_;
  double total_s_;
  bool enabled_;
  double last_s_ = 0;
  std::uint64_t last_ops_ = 0;
};

}  // namespace unio_bench
