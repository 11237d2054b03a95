// backend_info: which I/O backends exist, which work on this machine, and why not.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "unio/export.hpp"
#include "unio/op.hpp"

namespace unio {

struct backend_info {
  std::string name;       // "sync", "threadpool", ...
  bool available = false; // a loop can be created with it on this machine
  std::string reason;     // why it is unavailable (empty when available); for auto, why chosen
  // Per op_code: true when the backend performs the op itself, false when it is delegated to
  // the loop's thread pool.
  std::array<bool, op_code_count> native{};
};

// Every backend unio was built with, in preference order (auto picks the first available one).
// Probing sets up and tears down a small instance of each backend; it takes well under a
// millisecond per backend and is repeated on every call.
UNIO_API std::vector<backend_info> probe_backends();

// The backend "auto" resolves to here, with the reason in `why` (optional).
UNIO_API std::string auto_backend(std::string* why = nullptr);

// The kernel's release string (uname -r), for reports.
UNIO_API std::string kernel_release();

}  // namespace unio
