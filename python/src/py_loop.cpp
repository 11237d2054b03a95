#include "py_loop.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "errors.hpp"

namespace unio::python {

namespace {

// What an op's result becomes in Python.
enum result_kind : int {
  k_fd,       // open: the new fd (closed again when the future was cancelled meanwhile)
  k_none,     // close, fsync, rename, ...: None
  k_count,    // sendfile, readinto: the count
  k_bytes,    // read: a bytes object of the bytes read
  k_write,    // write: the whole buffer, however many writes it takes; the count
  k_stat,     // stat: os.stat_result
  k_entries,  // scandir: [(name, d_type, inode), ...]
};

// Interned names and objects looked up once; never freed (they live as long as the process).
struct names_t {
  PyObject* done = PyUnicode_InternFromString("done");
  PyObject* set_result = PyUnicode_InternFromString("set_result");
  PyObject* set_exception = PyUnicode_InternFromString("set_exception");
  PyObject* cancel = PyUnicode_InternFromString("cancel");
  PyObject* call_soon = PyUnicode_InternFromString("call_soon");
  PyObject* create_future = PyUnicode_InternFromString("create_future");
  PyObject* loop_kw = Py_BuildValue("(s)", "loop");
  PyObject* future_type = nullptr;  // asyncio.Future
  PyObject* stat_result = nullptr;  // os.stat_result
};
names_t& names() {
  static names_t* n = [] {
    auto* p = new names_t;
    p->future_type = py::object(py::module_::import("asyncio").attr("Future")).release().ptr();
    p->stat_result = py::object(py::module_::import("os").attr("stat_result")).release().ptr();
    return p;
  }();
  return *n;
}

py::object call_method(py::handle obj, PyObject* name, py::handle arg = {}) {
  PyObject* r = arg ? PyObject_CallMethodOneArg(obj.ptr(), name, arg.ptr()) : PyObject_CallMethodNoArgs(obj.ptr(), name);
  if (r == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(r);
}

std::uint64_t offset_of(std::int64_t off) {
  return off < 0 ? unio::current_position : static_cast<std::uint64_t>(off);
}

py::object make_stat(const struct statx& s) {
  auto t = [](const statx_timestamp& ts, int i, py::tuple& out) {
    out[7 + i] = py::int_(static_cast<long long>(ts.tv_sec));
    out[10 + i] = py::float_(static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9);
    out[13 + i] = py::int_(static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec);
  };
  py::tuple f(19);
  f[0] = py::int_(s.stx_mode);
  f[1] = py::int_(s.stx_ino);
  f[2] = py::int_(static_cast<unsigned long long>(makedev(s.stx_dev_major, s.stx_dev_minor)));
  f[3] = py::int_(s.stx_nlink);
  f[4] = py::int_(s.stx_uid);
  f[5] = py::int_(s.stx_gid);
  f[6] = py::int_(s.stx_size);
  t(s.stx_atime, 0, f);
  t(s.stx_mtime, 1, f);
  t(s.stx_ctime, 2, f);
  f[16] = py::int_(s.stx_blksize);
  f[17] = py::int_(s.stx_blocks);
  f[18] = py::int_(static_cast<unsigned long long>(makedev(s.stx_rdev_major, s.stx_rdev_minor)));
  return py::reinterpret_borrow<py::object>(names().stat_result)(f);
}

py::object make_entries(const std::vector<unio::dir_entry>& entries, bool text) {
  py::list out(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    py::object name = text ? py::reinterpret_steal<py::object>(
                                 PyUnicode_DecodeFSDefaultAndSize(e.name.data(), static_cast<Py_ssize_t>(e.name.size())))
                           : py::bytes(e.name);
    if (!name) throw py::error_already_set();
    out[i] = py::make_tuple(name, static_cast<int>(e.type), e.ino);
  }
  return out;
}

}  // namespace

struct pending {
  unio::op op;
  int kind = k_none;
  py::object fut, name, name2;
  std::string path, path2;
  PyObject* bytes = nullptr;  // k_bytes: the object the read fills
  Py_buffer view{};           // readinto, write: the caller's buffer, held until resolved
  bool has_view = false;
  int fd = -1;                // k_write: what the rest of a short write needs
  std::int64_t offset = 0;
  std::size_t written = 0;
  bool text = false;          // scandir: names as str (else bytes)
  std::unique_ptr<struct statx> stx;
  std::vector<unio::dir_entry> entries;

  // The GIL is held wherever a pending is destroyed.
  ~pending() {
    Py_XDECREF(bytes);
    if (has_view) PyBuffer_Release(&view);
  }
};

py_loop::py_loop(const std::string& backend, unsigned pool_size, py::handle aloop) : pid_(::getpid()) {
  unio::loop_options opts;
  opts.backend = backend;
  opts.pool_size = pool_size;
  // direct=True on a file system that refuses O_DIRECT (tmpfs) opens the file buffered, as the
  // Python API promises a working file either way.
  opts.direct_fallback = true;
  try {
    py::gil_scoped_release unlocked;
    lp_ = std::make_unique<unio::loop>(opts);
  } catch (const std::system_error& e) {
    throw backend_unavailable(e.what());
  }
  aloop_ref_ = py::reinterpret_steal<py::object>(PyWeakref_NewRef(aloop.ptr(), nullptr));
  if (!aloop_ref_) throw py::error_already_set();
  done_.reserve(64);
  names();
}

py_loop::~py_loop() {
  if (::getpid() != pid_) abandon();
  try {
    close();
  } catch (...) {
    // Nothing can be reported from a destructor; the futures were cancelled or their loop is gone.
  }
}

std::string py_loop::backend_name() const { check_open(); return std::string(lp_->backend_name()); }
std::string py_loop::backend_reason() const { check_open(); return lp_->backend_reason(); }
int py_loop::backend_fd() const { check_open(); return lp_->backend_fd(); }

void py_loop::check_open() const {
  if (!lp_ || abandoned_) throw std::runtime_error("unio: this loop is closed");
}

py::object py_loop::turn(bool poll_first) {
  kick_pending_ = false;
  if (!lp_ || abandoned_) return py::none();
  std::optional<std::chrono::nanoseconds> t;
  {
    py::gil_scoped_release unlocked;
    if (poll_first) lp_->poll();
    t = lp_->backend_timeout();
    // Work that is ready now (cached reads io_uring completed inside the submission, the sync
    // backend's queue) is served at once; more than that goes back to asyncio, so other
    // callbacks run in between.
    for (int i = 0; i < 2 && t && t->count() == 0; ++i) {
      lp_->poll();
      t = lp_->backend_timeout();
    }
  }
  resolve_done();
  if (!t) return py::none();
  return py::float_(static_cast<double>(t->count()) / 1e9);
}

bool py_loop::cancel(py::handle fut) {
  auto it = by_future_.find(fut.ptr());
  if (it == by_future_.end() || !lp_ || abandoned_) return false;
  lp_->cancel(it->second->op);
  kick();
  return true;
}

void py_loop::close() {
  if (!lp_) return;
  if (abandoned_) return;
  {
    py::gil_scoped_release unlocked;
    lp_.reset();
  }
  resolve_done();
}

void py_loop::abandon() noexcept {
  if (abandoned_) return;
  abandoned_ = true;
  // Leaked on purpose: destroying them would touch the parent's ring and wait for threads that
  // do not exist in this process. Their Python references leak with them.
  (void)lp_.release();
  by_future_.clear();
  done_.clear();
  (void)kick_.release();
  (void)aloop_ref_.release();
}

void py_loop::kick() {
  if (kick_pending_ || !kick_) return;
  PyObject* al = PyWeakref_GetObject(aloop_ref_.ptr());
  if (al == nullptr) throw py::error_already_set();
  if (al == Py_None) return;
  call_method(al, names().call_soon, kick_);
  kick_pending_ = true;
}

py::object py_loop::new_future() {
  PyObject* al = PyWeakref_GetObject(aloop_ref_.ptr());
  if (al == nullptr) throw py::error_already_set();
  if (al == Py_None) throw std::runtime_error("unio: the asyncio loop of this unio loop is gone");
  PyObject* args[] = {al};
  PyObject* f = PyObject_Vectorcall(names().future_type, args, 0, names().loop_kw);
  if (f == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(f);
}

std::unique_ptr<pending> py_loop::start(int kind) {
  check_open();
  auto p = std::make_unique<pending>();
  p->kind = kind;
  p->op.user_data = p.get();
  return p;
}

// The op is prepared and submitted by the caller of start(); this registers it and gives the future.
py::object py_loop::submit(std::unique_ptr<pending> p) {
  pending* raw = p.release();
  by_future_.emplace(raw->fut.ptr(), raw);
  kick();
  return raw->fut;
}

void py_loop::on_complete(pending& p) noexcept {
  std::int64_t r = p.op.raw_result();
  if (p.kind == k_write && r > 0) {
    p.written += static_cast<std::size_t>(r);
    auto len = static_cast<std::size_t>(p.view.len);
    if (p.written < len) {
      auto* at = static_cast<const char*>(p.view.buf) + p.written;
      std::uint64_t off = p.offset < 0 ? unio::current_position : static_cast<std::uint64_t>(p.offset) + p.written;
      lp_->write(p.op, p.fd, at, len - p.written, off, [this](unio::op& o) { on_complete(*static_cast<pending*>(o.user_data)); });
      return;
    }
  }
  done_.push_back(&p);
}

void py_loop::resolve_done() {
  if (done_.empty()) return;
  std::vector<pending*> batch;
  batch.swap(done_);
  for (pending* p : batch) {
    std::unique_ptr<pending> own(p);
    try {
      resolve(*p);
    } catch (py::error_already_set&) {
      // The future's loop is closed, or building the result failed: nobody is left to tell.
    }
  }
  batch.clear();
  if (done_.empty()) done_.swap(batch);  // keep the capacity
}

void py_loop::resolve(pending& p) {
  by_future_.erase(p.fut.ptr());
  std::int64_t r = p.op.raw_result();
  if (call_method(p.fut, names().done).ptr() == Py_True) {
    if (p.kind == k_fd && r >= 0) ::close(static_cast<int>(r));
    return;
  }
  if (r == -ECANCELED) {
    call_method(p.fut, names().cancel);
    return;
  }
  if (r < 0) {
    call_method(p.fut, names().set_exception, make_oserror(static_cast<int>(-r), p.name, p.name2));
    return;
  }
  py::object v;
  switch (p.kind) {
    case k_fd:
    case k_count: v = py::int_(r); break;
    case k_write: v = py::int_(p.written); break;
    case k_bytes:
      if (r != PyBytes_GET_SIZE(p.bytes) && _PyBytes_Resize(&p.bytes, static_cast<Py_ssize_t>(r)) < 0) {
        throw py::error_already_set();
      }
      v = py::reinterpret_borrow<py::object>(p.bytes);
      break;
    case k_stat: v = make_stat(*p.stx); break;
    case k_entries: v = make_entries(p.entries, p.text); break;
    default: v = py::none(); break;
  }
  call_method(p.fut, names().set_result, v);
}

// ---- Submissions ----

#define UNIO_HANDLER [this](unio::op& o) { on_complete(*static_cast<pending*>(o.user_data)); }

py::object py_loop::open(const std::string& path, int flags, unsigned mode, py::object name) {
  auto p = start(k_fd);
  p->fut = new_future();
  p->name = std::move(name);
  p->path = path;
  lp_->open(p->op, AT_FDCWD, p->path.c_str(), unio::open_how{flags, mode, 0}, UNIO_HANDLER);
  return submit(std::move(p));
}

py::object py_loop::close_fd(int fd) {
  auto p = start(k_none);
  p->fut = new_future();
  lp_->close(p->op, fd, UNIO_HANDLER);
  return submit(std::move(p));
}

py::object py_loop::read(int fd, Py_ssize_t n, std::int64_t offset) {
  if (n < 0) throw py::value_error("unio: read of a negative size");
  auto p = start(k_bytes);
  p->bytes = PyBytes_FromStringAndSize(nullptr, n);
  if (p->bytes == nullptr) throw py::error_already_set();
  p->fut = new_future();
  lp_->read(p->op, fd, PyBytes_AS_STRING(p->bytes), static_cast<std::size_t>(n), offset_of(offset), UNIO_HANDLER);
  return submit(std::move(p));
}

py::object py_loop::readinto(int fd, py::handle buf, std::int64_t offset) {
  auto p = start(k_count);
  if (PyObject_GetBuffer(buf.ptr(), &p->view, PyBUF_WRITABLE) < 0) throw py::error_already_set();
  p->has_view = true;
  p->fut = new_future();
  lp_->read(p->op, fd, p->view.buf, static_cast<std::size_t>(p->view.len), offset_of(offset), UNIO_HANDLER);
  return submit(std::move(p));
}

py::object py_loop::write(int fd, py::handle data, std::int64_t offset) {
  auto p = start(k_write);
  if (PyObject_GetBuffer(data.ptr(), &p->view, PyBUF_SIMPLE) < 0) throw py::error_already_set();
  p->has_view = true;
  p->fd = fd;
  p->offset = offset;
  p->fut = new_future();
  lp_->write(p->op, fd, p->view.buf, static_cast<std::size_t>(p->view.len), offset_of(offset), UNIO_HANDLER);
  return submit(std::move(p));
}

py::object py_loop::fsync(int fd, bool datasync) {
  auto p = start(k_none);
  p->fut = new_future();
  if (datasync) lp_->fdatasync(p->op, fd, UNIO_HANDLER);
  else lp_->fsync(p->op, fd, UNIO_HANDLER);
  return submit(std::move(p));
}

py::object py_loop::ftruncate(int fd, std::uint64_t length) {
  auto p = start(k_none);
  p->fut = new_future();
  lp_->ftruncate(p->op, fd, length, UNIO_HANDLER);
  return submit(std::move(p));
}

py::object py_loop::stat(const std::string& path, int dirfd, int flags, py::object name) {
  auto p = start(k_stat);
  p->fut = new_future();
  p->name = std::move(name);
  p->path = path;
  p->stx = std::make_unique<struct statx>();
  lp_->stat(p->op, dirfd, p->path.c_str(), flags | AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS, p->stx.get(),
            UNIO_HANDLER);
  return submit(std::move(p));
}

py::object py_loop::rename(const std::string& from, const std::string& to, py::object name, py::object name2) {
  auto p = start(k_none);
  p->fut = new_future();
  p->name = std::move(name);
  p->name2 = std::move(name2);
  p->path = from;
  p->path2 = to;
  lp_->rename(p->op, AT_FDCWD, p->path.c_str(), AT_FDCWD, p->path2.c_str(), 0, UNIO_HANDLER);
  return submit(std::move(p));
}

py::object py_loop::unlink(const std::string& path, bool dir, py::object name) {
  auto p = start(k_none);
  p->fut = new_future();
  p->name = std::move(name);
  p->path = path;
  if (dir) lp_->rmdir(p->op, AT_FDCWD, p->path.c_str(), UNIO_HANDLER);
  else lp_->unlink(p->op, AT_FDCWD, p->path.c_str(), UNIO_HANDLER);
  return submit(std::move(p));
}

py::object py_loop::mkdir(const std::string& path, unsigned mode, py::object name) {
  auto p = start(k_none);
  p->fut = new_future();
  p->name = std::move(name);
  p->path = path;
  lp_->mkdir(p->op, AT_FDCWD, p->path.c_str(), mode, UNIO_HANDLER);
  return submit(std::move(p));
}

py::object py_loop::scandir(const std::string& path, bool text, py::object name) {
  auto p = start(k_entries);
  p->fut = new_future();
  p->name = std::move(name);
  p->path = path;
  p->text = text;
  lp_->scandir(p->op, AT_FDCWD, p->path.c_str(), &p->entries, UNIO_HANDLER);
  return submit(std::move(p));
}

py::object py_loop::sendfile(int out_fd, int in_fd, std::uint64_t offset, std::size_t count) {
  auto p = start(k_count);
  p->fut = new_future();
  lp_->sendfile(p->op, out_fd, in_fd, offset, count, UNIO_HANDLER);
  return submit(std::move(p));
}

py::object py_loop::copy_file_range(int in_fd, std::uint64_t in_off, int out_fd, std::int64_t out_off,
                                    std::size_t count) {
  auto p = start(k_count);
  p->fut = new_future();
  lp_->copy_file_range(p->op, in_fd, in_off, out_fd, offset_of(out_off), count, 0, UNIO_HANDLER);
  return submit(std::move(p));
}

#undef UNIO_HANDLER

}  // namespace unio::python
