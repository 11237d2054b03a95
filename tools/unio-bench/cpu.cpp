#include "cpu.hpp"

#include <dirent.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

namespace unio_bench {

namespace {

double seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; }

struct task_stat {
  std::string name;
  double user_s = 0;
  double sys_s = 0;
};

// Fields after the command name: state is field 3, utime 14, stime 15 (proc(5)). The name may
// contain spaces and parentheses, so parsing starts after the last ')'.
bool read_task_stat(const std::string& path, task_stat& out) {
  std::ifstream f(path);
  std::string line;
  if (!std::getline(f, line)) return false;
  auto open = line.find('(');
  auto close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return false;
  out.name = line.substr(open + 1, close - open - 1);
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  static const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  out.user_s = static_cast<double>(utime) / tick;
  out.sys_s = static_cast<double>(stime) / tick;
  return true;
}

std::map<std::string, task_stat> read_all_tasks() {
  std::map<std::string, task_stat> tasks;
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return tasks;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    task_stat ts;
    if (read_task_stat(std::string("/proc/self/task/") + e->d_name + "/stat", ts)) tasks[e->d_name] = ts;
  }
  ::closedir(d);
  return tasks;
}

std::string join_names(const std::map<std::string, task_stat>& tasks) {
  std::map<std::string, int> by_name;
  for (const auto& [tid, ts] : tasks) ++by_name[ts.name];
  std::string out;
  for (const auto& [name, n] : by_name) out += (out.empty() ? "" : ";") + name + "x" + std::to_string(n);
  return out;
}

}  // namespace

cpu_sample from_rusage(const struct rusage& ru) {
  return {seconds(ru.ru_utime), seconds(ru.ru_stime), ru.ru_nvcsw, ru.ru_nivcsw};
}

cpu_sample sample_rusage() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return from_rusage(ru);
}

cpu_sample operator-(const cpu_sample& a, const cpu_sample& b) {
  return {a.user_s - b.user_s, a.sys_s - b.sys_s, a.voluntary - b.voluntary, a.involuntary - b.involuntary};
}

long long thread_run_delay_ns() {
  std::ifstream in("/proc/thread-self/schedstat");
  long long on_cpu = 0, waited = -1;
  if (!(in >> on_cpu >> waited)) return -1;
  return waited;
}

task_sample sample_tasks() {
  auto tasks = read_all_tasks();
  task_sample s;
  for (const auto& [tid, ts] : tasks) {
    s.user_s += ts.user_s;
    s.sys_s += ts.sys_s;
  }
  s.tasks = static_cast<int>(tasks.size());
  s.names = join_names(tasks);
  return s;
}

task_sample operator-(const task_sample& after, const task_sample& before) {
  // A difference of sums: exact when every thread alive at the start is still alive at the end
  // (true for the benchmark's workers and pools, which live until after the end sample); a
  // thread that exits in between is lost, and that shows up as a difference from rusage.
  task_sample d = after;
  d.user_s -= before.user_s;
  d.sys_s -= before.sys_s;
  return d;
}

bool cpu_differs(const cpu_sample& ru, const task_sample& tasks) {
  double a = ru.user_s + ru.sys_s;
  double b = tasks.user_s + tasks.sys_s;
  double tol = std::max(0.05 * a, 0.01 * (tasks.tasks + 1));
  return std::fabs(a - b) > tol;
}

}  // namespace unio_bench
