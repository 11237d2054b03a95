// CPU accounting for the whole process, helper threads included.
//
// getrusage(RUSAGE_SELF) covers every thread of the process, including threads that have
// already exited (pool workers, glibc AIO helpers, io_uring io-wq workers). The per-task sum
// of /proc/self/task/*/stat is a cross-check: it sees only threads alive when it is read, in
// clock ticks, so it is sampled before the loops (and their pools) are torn down.
#pragma once

#include <sys/resource.h>

#include <string>

namespace unio_bench {

struct cpu_sample {
  double user_s = 0;
  double sys_s = 0;
  long voluntary = 0;    // context switches
  long involuntary = 0;
};

struct task_sample {
  double user_s = 0;
  double sys_s = 0;
  int tasks = 0;
  std::string names;  // thread names seen, "name x count" joined with ';'
};

cpu_sample sample_rusage();
cpu_sample operator-(const cpu_sample& a, const cpu_sample& b);
cpu_sample from_rusage(const struct rusage& ru);

task_sample sample_tasks();
// CPU of `after` minus that of `before`, counting threads that appeared in between in full.
task_sample operator-(const task_sample& after, const task_sample& before);

// How long the calling thread has waited on a run queue (runnable, not running), in ns: the second
// field of /proc/thread-self/schedstat. -1 when the kernel does not give it.
long long thread_run_delay_ns();

// True when the two accountings disagree by more than tick resolution and 5 %.
bool cpu_differs(const cpu_sample& ru, const task_sample& tasks);

}  // namespace unio_bench
