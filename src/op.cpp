#include "unio/op.hpp"

#include <cstdio>
#include <cstdlib>

namespace unio {

const char* to_string(op_code c) noexcept {
  static const char* const k_names[] = {
      "nop",       "open",      "close",  "read",   "write", "readv",   "writev",
      "fsync",     "fdatasync", "fallocate", "ftruncate", "stat", "rename", "unlink",
      "mkdir",     "rmdir",     "accept", "connect", "recv", "send",   "timeout",
      "sendfile",
  };
  static_assert(sizeof k_names / sizeof k_names[0] == op_code_count);
  auto i = static_cast<std::size_t>(c);
  return i < op_code_count ? k_names[i] : "invalid";
}

op::~op() {
  if (busy()) {
    std::fprintf(stderr, "unio: an op (%s) was destroyed while still busy; it must complete first\n",
                 to_string(code_));
    std::abort();
  }
}

}  // namespace unio
