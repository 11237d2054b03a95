// Runs one `unio-bench run` workload on one backend: --threads loops, each with --iodepth
// callback ops in flight and a timer on a 1 ms grid measuring how late the loop answers.
#pragma once

#include <cstdint>
#include <string>

#include "cpu.hpp"
#include "options.hpp"

namespace unio_bench {

struct latency_ns {
  double mean = 0;
  std::uint64_t p50 = 0, p99 = 0, p999 = 0, max = 0;
};

struct backend_result {
  std::string backend;     // as requested ("auto" or a name)
  std::string resolved;    // what the loop actually used
  std::uint64_t ops = 0;
  std::uint64_t errors = 0;         // failed or short ops
  std::uint64_t verify_errors = 0;  // --verify mismatches
  std::string first_error;
  double elapsed_s = 0;
  double iops = 0;
  double bw_bytes_s = 0;
  latency_ns lat;
  cpu_sample cpu;          // rusage of the whole process over the run
  task_sample tasks;       // the /proc/self/task cross-check
  int tasks_before = 0;    // threads alive when the run started (loops built)
  std::string names_before;  // their names, as in task_sample::names
  std::uint64_t stall_p99 = 0, stall_max = 0, stall_samples = 0;
  // How long the loops' threads were runnable but not running (summed over the loops; -1 when
  // the kernel does not say): the part of the stall that is CPU contention inside the machine,
  // as opposed to a sleeping thread woken late.
  long long loop_runq_wait_ns = -1;
  // With --stall-log: every probe of every loop, in the loops' order, each in firing order.
  struct probe {
    unsigned loop;
    std::uint64_t due_ns;   // CLOCK_MONOTONIC (perf record -k mono uses the same clock)
    std::uint64_t late_ns;
  };
  std::vector<probe> probes;
  double resident_before = -1, resident_after = -1;  // page-cache residency, 0..1
  double ns_per_op() const { return ops ? (cpu.user_s + cpu.sys_s) * 1e9 / static_cast<double>(ops) : 0; }
};

struct test_file;

// Runs the workload with `backend` on `file`. Throws std::runtime_error when the backend cannot
// be set up; exits the process (after removing a temporary file) if the loops hang.
backend_result run_backend(const run_options& opts, const std::string& backend, const test_file& file);

// The stall probe alone, for `seconds`, on a loop of `backend` with no I/O: the p99 lateness of its
// timer (ns). That is the machine's floor for the stall figure (how late an idle thread's timer
// wakes up here). Throws std::runtime_error when the backend cannot be set up.
std::uint64_t idle_stall_p99(const std::string& backend, double seconds);

}  // namespace unio_bench
