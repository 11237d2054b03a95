// The Python exceptions the extension raises.
#pragma once

#include <Python.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <stdexcept>

namespace unio::python {

namespace py = pybind11;

// A backend that is unknown or unavailable here (unio.BackendUnavailable, a RuntimeError).
struct backend_unavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// OSError(errno, strerror, filename[, None, filename2]): OSError's constructor picks the subclass
// (FileNotFoundError for ENOENT, ...), as the built-in open() and the os module do.
inline py::object make_oserror(int err, const py::object& name, const py::object& name2) {
  py::str msg(std::strerror(err));
  PyObject* e;
  if (name2 && !name2.is_none()) {
    e = PyObject_CallFunction(PyExc_OSError, "iOOOO", err, msg.ptr(), name.ptr(), Py_None, name2.ptr());
  } else if (name && !name.is_none()) {
    e = PyObject_CallFunction(PyExc_OSError, "iOO", err, msg.ptr(), name.ptr());
  } else {
    e = PyObject_CallFunction(PyExc_OSError, "iO", err, msg.ptr());
  }
  if (e == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(e);
}

}  // namespace unio::python
