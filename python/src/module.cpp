// unio._unio: the extension module of the Python package unio. The package's Python files
// (python/unio/) build the aiofiles-style API on it; this module gives them a unio loop per
// asyncio loop (py_loop) and the backend registry.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "errors.hpp"
#include "py_loop.hpp"
#include "running_loop.hpp"
#include "unio/backend_info.hpp"
#include "unio/version.hpp"

namespace py = pybind11;
using unio::python::py_loop;

namespace {

py::list backends() {
  py::list out;
  for (const auto& b : unio::probe_backends()) {
    out.append(py::make_tuple(b.name, b.available, b.reason));
  }
  return out;
}

py::tuple auto_backend() {
  std::string why;
  std::string name = unio::auto_backend(&why);
  return py::make_tuple(name, why);
}

void bind_loop(py::module_& m) {
  py::class_<py_loop>(m, "Loop")
      .def(py::init<const std::string&, unsigned, py::handle>(), py::arg("backend"), py::arg("pool_size"),
           py::arg("aloop"))
      .def_property_readonly("backend", &py_loop::backend_name)
      .def_property_readonly("backend_reason", &py_loop::backend_reason)
      .def_property_readonly("kick_pending", &py_loop::kick_pending)
      .def("backend_fd", &py_loop::backend_fd)
      .def("in_flight", &py_loop::in_flight)
      .def("set_kick", &py_loop::set_kick)
      .def("turn", &py_loop::turn)
      .def("cancel", &py_loop::cancel)
      .def("close", &py_loop::close)
      .def("abandon", &py_loop::abandon)
      .def("open", &py_loop::open)
      .def("close_fd", &py_loop::close_fd)
      .def("read", &py_loop::read)
      .def("readinto", &py_loop::readinto)
      .def("write", &py_loop::write)
      .def("fsync", &py_loop::fsync)
      .def("ftruncate", &py_loop::ftruncate)
      .def("stat", &py_loop::stat)
      .def("rename", &py_loop::rename)
      .def("unlink", &py_loop::unlink)
      .def("mkdir", &py_loop::mkdir)
      .def("scandir", &py_loop::scandir)
      .def("sendfile", &py_loop::sendfile)
      .def("copy_file_range", &py_loop::copy_file_range);
}

}  // namespace

PYBIND11_MODULE(_unio, m) {
  m.doc() = "unio's C++ half: a unio loop per asyncio loop, and the backend registry";
  py::register_exception<unio::python::backend_unavailable>(m, "BackendUnavailable", PyExc_RuntimeError);
  bind_loop(m);
  unio::python::init_running_loop();
  m.def("running_loop", &unio::python::running_loop,
        "asyncio.get_running_loop(), without a getpid() system call per call on Python < 3.12");
  m.def("backends", &backends, "[(name, available, reason)] of every backend built in, in preference order");
  m.def("auto_backend", &auto_backend, "(name, why): the backend 'auto' picks here");
  m.def("kernel_release", &unio::kernel_release);
  m.attr("version") = unio::version_string;
}
