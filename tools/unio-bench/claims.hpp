// `unio-bench claims` (the default command): each claim of the debate on why Node.js and Python
// run file I/O on thread pools rather than Linux AIO, and whether io_uring changes that, with
// the experiment that tests it, the figures, and a verdict computed from the figures by a rule
// printed next to it; then "when to use what on this machine", computed from the same figures.
#pragma once

#include <string>

namespace unio_bench {

struct claims_options {
  bool quick = false;  // ~40 s instead of ~3 min: smaller file, shorter runs, no strace
  std::string json;    // "", "-" (stdout; the text report then goes to stderr) or a path
  std::string plot;    // "" or an SVG path
  std::string file;    // "" (a temporary file in the current directory) or a path
};

int cmd_claims(const claims_options& o);

}  // namespace unio_bench
