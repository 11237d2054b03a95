// running_loop(): the running asyncio loop of this thread, as asyncio.get_running_loop(), but
// without its cost on Python 3.11 and older.
#pragma once

#include <pybind11/pybind11.h>

namespace unio::python {

// Raises RuntimeError("no running event loop") as asyncio does. Call once at module import
// (installs the fork handler) with init_running_loop().
pybind11::object running_loop();
void init_running_loop();

}  // namespace unio::python
