// py_loop: one unio::loop driven by one asyncio event loop (unio/_driver.py is the asyncio side).
//
// Threading: every method runs on the asyncio loop's thread with the GIL held. turn() and close()
// release the GIL while unio works (poll, backend_timeout, the loop's destructor, where the
// sync backend performs its file ops and the pool is joined). Completion handlers run there,
// without the GIL, and only queue their op; turn() and close() resolve the queued ops' futures
// once they hold the GIL again. So no Python code ever runs inside unio, and the GIL is taken
// once per turn, not once per op.
//
// Ownership: each submission allocates a `pending` that owns the op, the asyncio future and
// everything the op's arguments point to (the path strings, a Py_buffer view of the caller's
// bytes-like object, the bytes object a read fills), so they stay alive and in place until the
// op completes, whatever Python does meanwhile. A future cancelled by asyncio is seen at
// resolution (fut.done()); an open that completed anyway then has its fd closed.
//
// Driving (the contract with unio/_driver.py): every submission and every cancel makes sure one
// kick is scheduled (aloop.call_soon(kick)), whose turn(false) hands the queued ops to the kernel
// (backend_timeout()). The driver also calls turn(true) when backend_fd() is readable and when
// the timeout turn() returned has passed. turn() returns that timeout: None (wait for the fd
// only), 0.0 (turn again soon) or seconds.
#pragma once

#include <Python.h>
#include <pybind11/pybind11.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "unio/loop.hpp"

namespace unio::python {

namespace py = pybind11;

struct pending;

class py_loop {
 public:
  // Throws backend_unavailable (module.cpp) when unio cannot create a loop with `backend` here.
  py_loop(const std::string& backend, unsigned pool_size, py::handle aloop);
  ~py_loop();
  py_loop(const py_loop&) = delete;
  py_loop& operator=(const py_loop&) = delete;

  std::string backend_name() const;
  std::string backend_reason() const;
  int backend_fd() const;
  std::size_t in_flight() const { return by_future_.size(); }
  // The callable a kick schedules with aloop.call_soon; it must call turn(false).
  void set_kick(py::object kick) { kick_ = std::move(kick); }
  bool kick_pending() const { return kick_pending_; }

  py::object turn(bool poll_first);
  // Asks unio to cancel the op behind `fut` (an op that already finished is left alone).
  // False when `fut` is no op of this loop's in flight.
  bool cancel(py::handle fut);
  // Destroys the unio loop: ops in flight complete with ECANCELED and their futures are
  // cancelled. The loop is unusable afterwards.
  void close();
  // In a forked child: the unio loop (its io_uring ring is shared with the parent, its pool
  // threads do not exist here) is never touched again, not even to destroy it.
  void abandon() noexcept;

  // Submissions. Each returns an asyncio future of the running loop; `name`/`name2` are the
  // filenames an OSError carries. An offset of -1 means the fd's current position.
  py::object open(const std::string& path, int flags, unsigned mode, py::object name);
  py::object close_fd(int fd);
  py::object read(int fd, Py_ssize_t n, std::int64_t offset);
  py::object readinto(int fd, py::handle buf, std::int64_t offset);
  py::object write(int fd, py::handle data, std::int64_t offset);
  py::object fsync(int fd, bool datasync);
  py::object ftruncate(int fd, std::uint64_t length);
  py::object stat(const std::string& path, int dirfd, int flags, py::object name);
  py::object rename(const std::string& from, const std::string& to, py::object name, py::object name2);
  py::object unlink(const std::string& path, bool dir, py::object name);
  py::object mkdir(const std::string& path, unsigned mode, py::object name);
  py::object scandir(const std::string& path, bool text, py::object name);
  py::object sendfile(int out_fd, int in_fd, std::uint64_t offset, std::size_t count);
  py::object copy_file_range(int in_fd, std::uint64_t in_off, int out_fd, std::int64_t out_off, std::size_t count);

 private:
  std::unique_ptr<pending> start(int kind);
  py::object submit(std::unique_ptr<pending> p);
  py::object new_future();
  void kick();
  void on_complete(pending& p) noexcept;
  void resolve_done();
  void resolve(pending& p);
  void check_open() const;

  std::unique_ptr<unio::loop> lp_;
  py::object aloop_ref_;  // a weakref: a strong one would keep the asyncio loop alive for ever
  py::object kick_;
  bool kick_pending_ = false;
  bool abandoned_ = false;
  pid_t pid_;
  std::vector<pending*> done_;  // completed, future not resolved yet
  std::unordered_map<PyObject*, pending*> by_future_;
};

}  // namespace unio::python
