// --plot FILE.svg: IOPS, CPU per op, p99 latency and loop stall per backend (or per experiment),
// drawn by gnuplot into one SVG of four panels.
#pragma once

#include <string>
#include <vector>

namespace unio_bench {

struct plot_row {
  std::string label;  // backend or experiment name (the x axis)
  double iops = 0;
  double cpu_us_per_op = 0;
  double p99_us = 0;
  double stall_p99_us = 0;
};

// Where gnuplot is, or "" when it is not on PATH.
std::string find_gnuplot();

// Draws `rows` into the SVG at `path`. Returns "" on success, else what went wrong.
std::string write_plot(const std::string& path, const std::string& title, const std::vector<plot_row>& rows);

}  // namespace unio_bench
