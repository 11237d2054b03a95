// The experiments behind `unio-bench claims`: one workload on one backend variant, run through
// the same runner as `unio-bench run`, cached by key so that several claims share a run. Also the
// probes that are not workloads: syscall counts (strace), a seccomp-filtered child, O_DIRECT
// alignment.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "options.hpp"
#include "testfile.hpp"
#include "workload.hpp"

namespace unio_bench {

struct experiment {
  std::string backend;          // a unio backend name
  std::string variant;          // "" (unio's defaults), "naive", "aio_buffered", "nonblock", "sqpoll",
                                // "inline_misses" (io_uring tries every buffered read inline, as the kernel does)
                                // (io_uring SQPOLL) or "fixed" (registered buffers and file)
  std::string rw = "randread";
  unsigned depth = 32;
  bool direct = false;
  std::string cache = "warm";   // warm or cold (fadvise DONTNEED); O_DIRECT ignores it
  std::string label() const;    // "threadpool-naive randread QD32 cold"; unique, so also the key
  std::string who() const;      // "threadpool-naive"
};

struct outcome {
  experiment spec;
  std::string unavailable;  // non-empty: it did not run, and why
  run_options opts;
  backend_result r;
  bool ok() const { return unavailable.empty(); }
  double csw_per_op() const;
  double us_per_op() const { return r.ns_per_op() / 1000.0; }
};

class lab {
 public:
  lab(bool quick, test_file file);
  // Runs the experiment the first time it is asked for; later calls return the same outcome.
  const outcome& get(const experiment& e);
  const std::vector<std::unique_ptr<outcome>>& all() const { return done_; }
  // "" when the backend can run here, else "backend X not built into this unio" or its reason.
  std::string why_not(const std::string& backend) const;
  const test_file& file() const { return file_; }
  bool quick() const { return quick_; }
  double runtime_for(const experiment& e) const;
  // Experiments that would end after the deadline are skipped (reported as not run).
  void set_deadline(std::chrono::steady_clock::time_point t) { deadline_ = t; }

 private:
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  bool quick_;
  test_file file_;
  std::map<std::string, std::string> avail_;  // name -> "" or the reason it is unavailable
  std::vector<std::unique_ptr<outcome>> done_;
};

// Prints a progress line on stderr when stderr is a terminal.
void progress(const std::string& line);

// System calls per op of an experiment, from `strace -f -c` of a child `unio-bench run`,
// differential (a long run minus a short one, so start-up calls cancel out).
struct syscall_count {
  std::string error;  // non-empty: not counted, and why
  double per_op = 0;
  double calls = 0;
  std::uint64_t ops = 0;
};
syscall_count count_syscalls(const experiment& e, const lab& l);

// A forked child with a seccomp filter that refuses io_uring_setup (EPERM) asks unio which
// backends work. Must be called while the process has one thread.
struct seccomp_probe {
  std::string error;       // non-empty: could not be done here
  bool listed = false;     // io_uring is built into unio
  bool available = false;  // ... and unio found it usable under the filter
  std::string reason;      // unio's reason when unavailable
  std::string auto_pick, auto_why;
};
seccomp_probe probe_under_seccomp();

// O_DIRECT alignment, shown with raw preads on the test file and then through unio.
struct alignment_demo {
  std::string error;
  long aligned = 0;           // pread(4 KiB at 0, aligned buffer): bytes or -errno
  long unaligned_offset = 0;  // pread(4 KiB at offset 1000)
  long unaligned_buffer = 0;  // pread(4 KiB at 0 into buffer+1)
  long unio_unaligned = 0;    // unio read of 100 bytes at offset 1000 on the O_DIRECT fd
  std::string unio_backend;
};
alignment_demo demo_alignment(const std::string& path);

}  // namespace unio_bench
