// Up to Python 3.11, asyncio.get_running_loop() calls getpid() on every call to notice a fork,
// and a system call cost 1.2 us on the 2-vCPU VM unio is measured on: a seventh of the whole CPU
// budget of a 4 KiB read (the Python API aims at 10x aiofiles' 113 us). The running loop is kept
// in the thread state's dict as a _RunningLoopHolder {PyObject_HEAD; loop; pid}; this reads it
// there and compares its pid with one a pthread_atfork handler keeps current. The holder's type
// is checked once (name and size) and the first answer against get_running_loop(); on any doubt
// get_running_loop() is used for good. Python 3.12 keeps the loop in the thread state and no
// longer calls getpid(), so there get_running_loop() is used as it is.
#include "running_loop.hpp"

#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstring>

namespace unio::python {

namespace py = pybind11;

namespace {

struct holder_layout {
  PyObject_HEAD
  PyObject* rl_loop;
  pid_t rl_pid;
};

enum class fast_path { unknown, on, off };

pid_t g_pid = 0;
PyObject* g_get_running_loop = nullptr;  // asyncio.get_running_loop, never freed
[[maybe_unused]] PyObject* g_key = nullptr;
[[maybe_unused]] PyTypeObject* g_holder_type = nullptr;
[[maybe_unused]] fast_path g_fast = fast_path::unknown;

void after_fork_in_child() { g_pid = ::getpid(); }

py::object slow() {
  PyObject* r = PyObject_CallNoArgs(g_get_running_loop);
  if (r == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(r);
}

#if PY_VERSION_HEX < 0x030C0000
// Checks the holder once: the type asyncio's C module uses, and the loop it gives.
void learn(PyObject* h) {
  PyTypeObject* t = Py_TYPE(h);
  auto* rl = reinterpret_cast<holder_layout*>(h);
  bool layout_ok = std::strcmp(t->tp_name, "_RunningLoopHolder") == 0 &&
                   t->tp_basicsize == static_cast<Py_ssize_t>(sizeof(holder_layout));
  if (!layout_ok) {
    g_fast = fast_path::off;
    return;
  }
  if (rl->rl_loop == Py_None) return;  // nothing to compare with yet
  py::object real = slow();
  g_fast = real.ptr() == rl->rl_loop && rl->rl_pid == g_pid ? fast_path::on : fast_path::off;
  if (g_fast == fast_path::on) g_holder_type = t;
}
#endif

}  // namespace

void init_running_loop() {
  g_pid = ::getpid();
  g_get_running_loop = py::module_::import("asyncio").attr("get_running_loop").ptr();
  Py_INCREF(g_get_running_loop);
  g_key = PyUnicode_InternFromString("__asyncio_running_event_loop__");
  ::pthread_atfork(nullptr, nullptr, after_fork_in_child);
}

py::object running_loop() {
#if PY_VERSION_HEX < 0x030C0000
  if (g_fast != fast_path::off) {
    PyObject* d = PyThreadState_GetDict();  // borrowed
    PyObject* h = d != nullptr ? PyDict_GetItemWithError(d, g_key) : nullptr;  // borrowed
    if (h == nullptr && PyErr_Occurred()) throw py::error_already_set();
    if (h != nullptr && g_fast == fast_path::unknown) learn(h);
    if (h != nullptr && g_fast == fast_path::on && Py_TYPE(h) == g_holder_type) {
      auto* rl = reinterpret_cast<holder_layout*>(h);
      if (rl->rl_loop != Py_None && rl->rl_pid == g_pid) return py::reinterpret_borrow<py::object>(rl->rl_loop);
    }
  }
#endif
  return slow();  // raises RuntimeError when no loop runs
}

}  // namespace unio::python
