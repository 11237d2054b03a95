#include "plot.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include <fmt/core.h>

namespace unio_bench {

namespace {

// gnuplot single-quoted string: a quote is written twice.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// A label for the data block: double quotes inside would end the field.
std::string label_field(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? '\'' : c;
  return out + "\"";
}

std::string data_block(const std::vector<plot_row>& rows) {
  std::string d = "$d << EOD\n";
  // Log-scaled panels cannot show 0: the floor is 0.01 us.
  auto pos = [](double v) { return std::max(v, 0.01); };
  for (const auto& r : rows)
    d += fmt::format("{} {:.3f} {:.4f} {:.3f} {:.3f}\n", label_field(r.label), r.iops, r.cpu_us_per_op,
                     pos(r.p99_us), pos(r.stall_p99_us));
  return d + "EOD\n";
}

// A linear panel's axis starts at zero, so bars compare by their heights; a log panel's cannot.
std::string panel(int column, const std::string& title, const std::string& color, bool log) {
  return fmt::format("set title {}\n{}plot $d using {}:xtic(1) notitle lc rgb {}\n", quoted(title),
                     log ? "set logscale y\nset yrange [*:*]\n" : "unset logscale y\nset yrange [0:*]\n", column,
                     quoted(color));
}

std::string script(const std::string& path, const std::string& title, const std::vector<plot_row>& rows) {
  int width = std::max(900, 160 + 60 * static_cast<int>(rows.size()) * 2);
  std::string s = fmt::format("set terminal svg size {},900 dynamic noenhanced font 'sans,10'\nset output {}\n",
                              width, quoted(path));
  s += data_block(rows);
  s += fmt::format("set multiplot layout 2,2 title {}\n", quoted(title));
  s += "set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
       "set boxwidth 0.8\nset xtics rotate by -40 scale 0\nset grid ytics\nset key off\n";
  s += panel(2, "IOPS (higher is better)", "#4477aa", false);
  s += panel(3, "CPU per op, us (lower is better)", "#228833", false);
  s += panel(4, "latency p99, us (log)", "#ccbb44", true);
  s += panel(5, "event-loop stall p99, us (log; 1 ms timer lateness)", "#ee6677", true);
  return s + "unset multiplot\nset output\n";
}

}  // namespace

std::string find_gnuplot() {
  const char* env = std::getenv("PATH");
  std::string path = env ? env : "/usr/bin:/bin";
  for (std::size_t start = 0; start <= path.size();) {
    std::size_t colon = path.find(':', start);
    if (colon == std::string::npos) colon = path.size();
    std::string cand = (colon > start ? path.substr(start, colon - start) : std::string(".")) + "/gnuplot";
    if (::access(cand.c_str(), X_OK) == 0) return cand;
    start = colon + 1;
  }
  return "";
}

std::string write_plot(const std::string& path, const std::string& title, const std::vector<plot_row>& rows) {
  std::string gp = find_gnuplot();
  if (gp.empty()) return "gnuplot not found on PATH (install gnuplot-nox)";
  if (rows.empty()) return "nothing to plot";
  std::FILE* p = ::popen(("'" + gp + "'").c_str(), "w");  // gp comes from PATH: no quotes in it
  if (p == nullptr) return "cannot start gnuplot";
  std::string s = script(path, title, rows);
  std::fwrite(s.data(), 1, s.size(), p);
  int status = ::pclose(p);
  if (status != 0) return fmt::format("gnuplot failed (status {})", status);
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0 || st.st_size == 0) return "gnuplot wrote no " + path;
  return "";
}

}  // namespace unio_bench
