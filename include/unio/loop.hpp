// loop: a single-threaded event loop that owns one I/O backend.
//
// Threading: a loop is used from one thread at a time (the thread that calls run()). Only
// post(), stop(), keep_alive and wake-ups are safe from other threads. Handlers run on the loop's
// thread, inside run()/run_once(), or inside the destructor (see below).
//
// Submitting: each operation has a callback form, `lp.read(op, ..., handler)`, where the caller
// owns `op` (see op.hpp for the lifetime contract), and an awaitable form,
// `co_await lp.async_read(...)`, which keeps the op in the coroutine frame and yields a
// result<T>. Submission never blocks and never fails synchronously: invalid arguments, a full
// queue or an unsupported operation all complete the op with an error code through the handler.
// The handler never runs inside the submitting call.
//
// Liveness: run() returns when no op is busy, no timer is armed, nothing is posted and no
// keep_alive guard exists, or when stop() is called.
//
// Destruction: the destructor cancels everything still in flight and runs each remaining handler
// exactly once (with ECANCELED, or with the op's own result when it already finished), waiting
// for pool threads that are inside a blocking call. Ops submitted from those handlers complete
// with ECANCELED at once. Posted functions that have not run yet are run.
#pragma once

#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "unio/export.hpp"
#include "unio/net.hpp"
#include "unio/op.hpp"
#include "unio/result.hpp"

namespace unio {

struct loop_options {
  // "auto" (the best backend that works here) or a backend name: "sync", "threadpool", ...
  // See backend_info.hpp for the list and the reasons a backend may be unavailable.
  std::string backend = "auto";
  // Worker threads of the loop's thread pool (the threadpool backend, and delegation of ops a
  // backend cannot do natively). 0 = the number of CPUs, at least 2, so one slow op cannot
  // stall all file I/O.
  unsigned pool_size = 0;
  // The most workers the pool grows to while some of them wait on a device. A worker running an
  // op that the backend expects to wait (on threadpool: a read the page cache refused with
  // RWF_NOWAIT, or any read while most tries are refused; an fsync or fdatasync) does not count
  // against pool_size: when ops are queued and no worker is free for them, the pool starts
  // another, up to this bound, so a cold random-read workload keeps its queue depth in flight
  // at the device instead of pool_size reads. Such reads of buffered files go to a worker in
  // batches of up to 32, each first tried with RWF_NOWAIT (which starts a miss's device read
  // without waiting for it) before the worker reads the others, so the
  // pool grows for them only while a whole batch waits (fsyncs: one worker each). Workers above
  // pool_size end after 0.5 s idle. Below pool_size (e.g. 0): no growth.
  unsigned pool_max_threads = 64;
  // How many nice steps (0-19) the pool's workers run below the thread that creates the pool, so
  // that the loop's thread gets a CPU first when it wakes while workers are busy: on a 2-vCPU VM
  // it cut the p99 lateness of a 1 ms timer on a loop doing cached reads through the pool from
  // 124-151 us to 44-88 us. 0 = the same priority. Under CPU contention from other processes the pool
  // then gets a smaller share. Out of range: creating the pool throws std::system_error (EINVAL).
  // When not 0, workers also ask the kernel for a long scheduling slice (Linux 6.12+), so the
  // loop's thread preempts them at once when it wakes: a 1 ms timer's p99 lateness during a
  // CPU-bound scandir walk on 2 vCPUs went from 1.6-3.5 ms to 0.14-0.74 ms.
  int pool_nice = 10;
  // Submission queue depth hint for kernel queues (io_uring entries, AIO context size).
  unsigned queue_depth = 256;
  // threadpool: try reads on the loop thread with RWF_NOWAIT first. The kernel completes them
  // only when no wait is needed (page-cache hits) and refuses otherwise, so the loop never
  // blocks; refused reads go to the pool. Off also turns off the pool's read batches with
  // tries (pool_max_threads). Turn off to measure a plain ("naive") pool.
  bool inline_nowait = true;
  // threadpool: how long an idle worker polls for new work, and the waiting loop for
  // completions, before sleeping. A cross-core wake-up costs tens of microseconds on a VM;
  // polling briefly avoids paying it per op. Neither polls while the pool's ops wait on a device
  // (workers: while any marked op runs; the loop: while ops take longer than spin_us on
  // average). 0 disables polling. posix_aio: how long the loop
  // waits in aio_suspend itself (glibc's helper wakes it directly) before it hands the wait to
  // its reaper thread; 0 = always the reaper.
  unsigned spin_us = 50;
  // linux_aio: submit ops on files opened without O_DIRECT through AIO as well. The kernel then
  // performs them inside io_submit, on the loop's thread (a cache miss stalls the loop for the
  // disk's latency). Off by default: such ops go to the pool. For benchmarks that show the stall.
  bool aio_buffered = false;
  // posix_aio: the most helper threads glibc's POSIX AIO may run (aioinit::aio_threads). glibc
  // serves each fd with at most one thread at a time, so more threads help only with I/O spread
  // over several files. 0 = glibc's default (20). PROCESS-GLOBAL: glibc keeps one AIO state per
  // process and aio_init only takes effect before the process's first AIO request, so the first
  // posix_aio loop of the process applies this value (and aio_num = queue_depth); the values of
  // later loops are ignored.
  unsigned posix_aio_threads = 0;
  // posix_aio: seconds an idle glibc AIO thread waits for new work before it exits
  // (aioinit::aio_idle_time). 0 = glibc's default (1 s). Process-global, applied once, like
  // posix_aio_threads.
  unsigned posix_aio_idle_s = 0;
  // io_uring: set the ring up with SINGLE_ISSUER|DEFER_TASKRUN (Linux 6.1+; else the default
  // COOP_TASKRUN). The kernel then runs completion work only when the loop polls, which saves
  // interrupts under load. REQUIRES: a loop whose thread stops running it with ops still inside
  // the kernel (a pending accept or recv) is destroyed on that same thread; moving an idle loop
  // between threads is fine. Violations abort with a message (the kernel refuses other threads).
  bool io_uring_defer_taskrun = false;
  // An open with O_DIRECT that the file system refuses (EINVAL: ramfs, some FUSE and network
  // file systems) is retried without O_DIRECT, and the retry's result is the open's result; each
  // such success is counted by loop::direct_fallbacks(). A refused O_CREAT has already created
  // the file, so the retry drops O_EXCL. Off: the open completes with EINVAL.
  bool direct_fallback = false;
  // io_uring: SQPOLL. A kernel thread polls the submission queue, so submitting costs no system
  // call; it sleeps after this many milliseconds without new SQEs (the loop wakes it again).
  // 0 = off, the default: the poller keeps a whole core busy while it polls (on a 2-vCPU VM it
  // used 2.0 cores for a 4 KiB read workload, 2.8 us CPU per read against 2.2 without it), so it
  // pays only with a spare core and a steady stream of submissions. Ignores
  // io_uring_defer_taskrun (the kernel refuses the combination). Where the kernel refuses SQPOLL
  // (EPERM before Linux 5.11 without CAP_SYS_ADMIN, EINVAL on a kernel without it) creating the
  // loop throws std::system_error naming the reason; unio never silently runs without it.
  unsigned io_uring_sqpoll_idle_ms = 0;
  // io_uring: restrict the ring (IORING_REGISTER_RESTRICTIONS, Linux 5.10) to the opcodes and SQE
  // flags unio submits and to the register operations that loop::register_buffers and
  // register_files need, so that a bug or an attacker with access to the ring's memory cannot
  // make it do anything else (any other opcode fails with EACCES). Where the kernel refuses it,
  // creating the loop throws std::system_error naming the reason.
  bool io_uring_restrict = false;
  // io_uring: keep page-cache misses off the loop's thread. io_uring tries a buffered read inside
  // the io_uring_enter that submits it, and on a miss that try starts the readahead (page
  // allocation, the device request) on the loop's thread before the read waits, which stalls the
  // loop on cold files. On: the backend learns per fd which reads miss (a read whose completion
  // was not ready when its enter returned); an fd whose reads mostly miss sends each read whose
  // pages cachestat(2) (Linux 6.5) reports uncached to an io-wq worker (IOSQE_ASYNC) and the
  // rest inline, until its reads are mostly cached again. io-wq's bound on concurrent file
  // work is raised to pool_max_threads (the kernel's default is 4 per CPU). Off: every read is
  // tried inline, as io_uring does by itself. Not used with SQPOLL (the kernel's SQ thread makes
  // the tries) or O_DIRECT files.
  bool io_uring_route_cold_reads = true;
  // io_uring, for diagnosis and tests: ops that run on the loop's thread pool although the
  // kernel has their opcode, as op names (to_string) separated by commas, or "files" for every
  // file op. Socket ops, nop and timeouts stay on the ring whatever it says; so do reads and
  // writes at the current position of a stream (the pool cannot wait for readiness).
  // Results are the same either way; loop::is_native reports the effect. Empty: the kernel's
  // probe alone decides.
  std::string io_uring_delegate{};
};

class loop;
struct spawn_options;  // process.hpp

namespace detail {
struct loop_impl;
struct loop_access;
class spawn_awaitable;  // process.hpp

// The awaitable form of an op: owns the op, submits on suspension, resumes the coroutine on
// completion and yields result<R> (R = void, std::size_t or int).
template <class R>
class op_awaitable {
 public:
  template <class Prep>
  op_awaitable(loop& lp, Prep&& prep) : loop_(lp) { std::forward<Prep>(prep)(op_); }
  op_awaitable(const op_awaitable&) = delete;
  op_awaitable& operator=(const op_awaitable&) = delete;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h);
  result<R> await_resume() const {
    if (!op_.ok()) return op_.error();
    if constexpr (std::is_void_v<R>) return {};
    else return static_cast<R>(op_.raw_result());
  }
  // The underlying op, e.g. to cancel it from elsewhere while it is awaited.
  unio::op& get_op() noexcept { return op_; }

 private:
  loop& loop_;
  unio::op op_;
};
// The awaitable of loop::async_write_fsync: a write and an fsync in one chain.
class write_sync_awaitable {
 public:
  write_sync_awaitable(loop& lp, int fd, const void* buf, std::size_t len, std::uint64_t offset, bool datasync)
      : loop_(lp), fd_(fd), buf_(buf), len_(len), offset_(offset), datasync_(datasync) {}
  write_sync_awaitable(const write_sync_awaitable&) = delete;
  write_sync_awaitable& operator=(const write_sync_awaitable&) = delete;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h);
  result<std::size_t> await_resume() const;

 private:
  loop& loop_;
  int fd_;
  const void* buf_;
  std::size_t len_;
  std::uint64_t offset_;
  bool datasync_;
  int left_ = 2;
  std::coroutine_handle<> handle_;
  unio::op write_;
  unio::op sync_;
};
// The awaitable of the ops that give text (readlink, realpath, mkdtemp, mkstemp): the op and the
// string it fills live in the coroutine frame, so no other op pays for them. readlink starts with
// a small buffer and runs again with a larger one while the target may have been cut short.
class UNIO_API text_awaitable {
 public:
  enum class kind : std::uint8_t { readlink, realpath, mkdtemp, mkstemp };
  text_awaitable(loop& lp, kind k, int dirfd, const char* path, std::string text)
      : loop_(lp), kind_(k), dirfd_(dirfd), path_(path), text_(std::move(text)) {}
  text_awaitable(const text_awaitable&) = delete;
  text_awaitable& operator=(const text_awaitable&) = delete;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h);
  result<std::string> await_resume();
  // The underlying op, e.g. to cancel it from elsewhere while it is awaited.
  unio::op& get_op() noexcept { return op_; }

 protected:
  void start();
  void on_done();

  loop& loop_;
  kind kind_;
  int dirfd_;
  const char* path_;
  std::string text_;
  std::coroutine_handle<> handle_;
  unio::op op_;
};
}  // namespace detail

// What async_mkstemp gives: the new file's fd (O_RDWR, close-on-exec; the caller closes it) and
// its path (the template with its XXXXXX replaced).
struct temp_file {
  int fd = -1;
  std::string path;
};

namespace detail {
class UNIO_API temp_file_awaitable : public text_awaitable {
 public:
  temp_file_awaitable(loop& lp, std::string tmpl) : text_awaitable(lp, kind::mkstemp, -100, nullptr, std::move(tmpl)) {}
  result<temp_file> await_resume();
};
}  // namespace detail

// ---- Work on the loop's pool and directory listings (loop::queue_work, async_work, scandir) ----

// The errno of a work op whose function threw (queue_work's handler also receives the exception;
// async_work rethrows it instead).
inline constexpr int k_work_threw = ENOTRECOVERABLE;

// One entry of a directory listing (loop::scandir, read_dir, dir_reader). "." and ".." are never
// listed.
struct dir_entry {
  std::string name;
  // The DT_* value from getdents64 (DT_REG, DT_DIR, DT_LNK, DT_FIFO, DT_SOCK, DT_CHR, DT_BLK).
  // DT_UNKNOWN on file systems that do not store the type in the directory (some network, FUSE
  // and older file systems): stat the entry then. For a symlink it is DT_LNK, never the target's.
  unsigned char type = 0;
  std::uint64_t ino = 0;  // the inode number, as lstat's st_ino (not across mount points)
};

namespace detail {
struct work_void {};

// A function and its outcome, as one work_item: run() calls fn on the performing thread and
// stores what it returned or threw. The loop's thread reads the outcome only after completion.
template <class F>
struct work_call : work_item {
  using value_type = std::invoke_result_t<F&>;
  using stored_type = std::conditional_t<std::is_void_v<value_type>, work_void, value_type>;
  static_assert(!std::is_reference_v<value_type>,
                "unio: a work function must return a value, not a reference");

  explicit work_call(F f) : fn(std::move(f)) { run = &call; }

  static std::int64_t call(work_item& self, const op_args&) noexcept {
    auto& w = static_cast<work_call&>(self);
    try {
      if constexpr (std::is_void_v<value_type>) {
        w.fn();
        w.value.emplace();
      } else {
        w.value.emplace(w.fn());
      }
      return 0;
    } catch (...) {
      w.error = std::current_exception();
      return -k_work_threw;
    }
  }
  // fn's value; else the op's error: ECANCELED (fn never ran) or k_work_threw.
  result<value_type> take(const unio::op& o) {
    if (!value) return o.ok() ? errno_code(ECANCELED) : o.error();
    if constexpr (std::is_void_v<value_type>) return {};
    else return std::move(*value);
  }

  F fn;
  std::optional<stored_type> value;  // set when fn returned
  std::exception_ptr error;          // set when fn threw
};

// queue_work's one allocation: the function, its outcome and the handler.
template <class F, class H>
struct work_box : work_call<F> {
  work_box(F f, H handler) : work_call<F>(std::move(f)), h(std::move(handler)) {}
  void deliver(unio::op& o) {
    std::unique_ptr<work_box> own(this);
    auto r = this->take(o);
    h(o, std::move(r), std::move(this->error));
  }
  H h;
};

// async_work's awaitable: the function and its outcome live here, in the coroutine frame.
// Flat: fn returns a result<T> itself, which co_await yields unwrapped (async_resolve).
template <class F, bool Flat = false>
class work_awaitable {
 public:
  using value_type = typename work_call<F>::value_type;
  using yield_type = std::conditional_t<Flat, value_type, result<value_type>>;

  work_awaitable(loop& lp, F fn) : loop_(lp), call_(std::move(fn)) {}
  work_awaitable(const work_awaitable&) = delete;
  work_awaitable& operator=(const work_awaitable&) = delete;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h);
  yield_type await_resume() {
    if (call_.error) std::rethrow_exception(call_.error);
    if constexpr (Flat) {
      if (!call_.value) return value_type(call_.take(op_).error());
      return std::move(*call_.value);
    } else {
      return call_.take(op_);
    }
  }
  // The underlying op, e.g. to cancel it while it is awaited.
  unio::op& get_op() noexcept { return op_; }

 private:
  loop& loop_;
  work_call<F> call_;
  unio::op op_;
};

// The awaitable of async_scandir and async_read_dir: the entries live in the coroutine frame.
class entries_awaitable {
 public:
  template <class Prep>
  entries_awaitable(loop& lp, Prep&& prep) : loop_(lp) { std::forward<Prep>(prep)(op_, &entries_); }
  entries_awaitable(const entries_awaitable&) = delete;
  entries_awaitable& operator=(const entries_awaitable&) = delete;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h);
  result<std::vector<dir_entry>> await_resume() {
    if (!op_.ok()) return op_.error();
    return std::move(entries_);
  }
  unio::op& get_op() noexcept { return op_; }

 private:
  loop& loop_;
  std::vector<dir_entry> entries_;
  unio::op op_;
};

// Blocking name look-ups, run on the pool by async_resolve/async_reverse_resolve.
UNIO_API result<std::vector<endpoint>> resolve_now(const std::string& host, const std::string& service,
                                                   const resolve_hints& hints);
UNIO_API result<name_info> reverse_resolve_now(const endpoint& ep, int flags);
}  // namespace detail

// openat2-style open parameters.
struct open_how {
  int flags = 0;               // O_RDONLY, O_CREAT, O_DIRECT, ...; O_CLOEXEC is always added
  unsigned mode = 0;           // permission bits when creating
  std::uint64_t resolve = 0;   // unio::resolve::* flags
};

class UNIO_API loop {
 public:
  // Throws std::system_error when the backend is unknown or unavailable here; the message names
  // the reason (for example "io_uring: io_uring_setup: Operation not permitted (seccomp?)").
  explicit loop(loop_options opts = {});
  ~loop();
  loop(const loop&) = delete;
  loop& operator=(const loop&) = delete;

  // The backend in use ("sync", "threadpool", ...) and, for auto, why it was chosen.
  std::string_view backend_name() const noexcept;
  const std::string& backend_reason() const noexcept;
  const loop_options& options() const noexcept;
  // Whether this loop's backend performs `code` itself (true) or hands it to the loop's thread
  // pool (false): probe_backends()'s table for the backend, with this loop's options applied.
  bool is_native(op_code code) const;

  // Runs until no work is left or stop() is called.
  void run();
  // Runs one turn: waits for at least one event if there is work and nothing is ready yet, then
  // dispatches. Returns true while work remains.
  bool run_once();
  // Non-blocking turn: dispatches whatever is ready. Returns true while work remains, false
  // when none is left or after stop() was called (the stop is consumed, as run() does).
  bool poll();
  // Makes run() return after the current turn (and poll() return false). Thread-safe. Ops in
  // flight stay in flight.
  void stop() noexcept;

  // ---- Driving the loop from another event loop (docs/design.md, "Embedding") ----
  // A host loop (poll/epoll, a GUI toolkit, asyncio, libuv) waits until backend_fd() is readable
  // or backend_timeout() has passed, then calls poll(); it repeats, asking backend_timeout()
  // again before every wait. No tick and no busy loop is needed, and nothing is missed.
  //
  // backend_fd(): one fd, the same for the loop's life (the backend's epoll fd, or the io_uring
  // ring), that polls readable whenever poll() would make progress: completions, pool results,
  // posted functions, wake-ups, stop(). Wait for POLLIN only; never read from it or close it.
  int backend_fd() const noexcept;
  // Before each wait: does what run() does before it sleeps (submits queued ops, hands work to
  // the pool, arms the notifications that make backend_fd() readable) and says how long the host
  // may wait: zero when poll() has work now (call it without waiting); the time until the next
  // timer; nullopt when only backend_fd() can end the wait (or the loop has no work at all).
  // Loop thread only (the thread that calls poll()).
  std::optional<std::chrono::nanoseconds> backend_timeout();

  // Runs `fn` on the loop's thread during a later turn. Thread-safe; wakes the loop.
  void post(std::function<void()> fn);

  // While a keep_alive exists, run() does not return for lack of work (for example while other
  // threads are going to post()). Copyable; destroyable from any thread.
  class UNIO_API keep_alive {
   public:
    explicit keep_alive(loop& lp);
    keep_alive(const keep_alive& o);
    keep_alive& operator=(const keep_alive&) = delete;
    ~keep_alive();
   private:
    loop& loop_;
  };

  // Current time of the loop's clock (steady_clock), updated once per turn.
  std::chrono::steady_clock::time_point now() const noexcept;

  // ---- Operations, callback form. `h` is invoked as h(op&) exactly once. ----
  template <class H> void nop(op& o, H&& h) { prep_nop(o); submit(o, std::forward<H>(h)); }
  // Result: the new fd. Paths are relative to dirfd (AT_FDCWD for the working directory).
  template <class H> void open(op& o, int dirfd, const char* path, open_how how, H&& h) {
    prep_open(o, dirfd, path, how); submit(o, std::forward<H>(h));
  }
  template <class H> void close(op& o, int fd, H&& h) { prep_close(o, fd); submit(o, std::forward<H>(h)); }
  // Result: bytes read; fewer than len at end of file; 0 at or past it. At an offset of a
  // regular file (and for readv), fewer than len only at end of file, on every backend: a kernel
  // or file system that answers short before it (io_uring now and then, FUSE) is asked for the
  // rest, and a failure on the way is the result. At current_position, and on streams, devices
  // and other files, a short read is reported as it is.
  template <class H> void read(op& o, int fd, void* buf, std::size_t len, std::uint64_t offset, H&& h) {
    prep_read(o, fd, buf, len, offset); submit(o, std::forward<H>(h));
  }
  template <class H> void write(op& o, int fd, const void* buf, std::size_t len, std::uint64_t offset, H&& h) {
    prep_write(o, fd, buf, len, offset); submit(o, std::forward<H>(h));
  }
  template <class H> void readv(op& o, int fd, const iovec* iov, int iovcnt, std::uint64_t offset, H&& h) {
    prep_readv(o, fd, iov, iovcnt, offset); submit(o, std::forward<H>(h));
  }
  template <class H> void writev(op& o, int fd, const iovec* iov, int iovcnt, std::uint64_t offset, H&& h) {
    prep_writev(o, fd, iov, iovcnt, offset); submit(o, std::forward<H>(h));
  }
  template <class H> void fsync(op& o, int fd, H&& h) { prep_fsync(o, fd, false); submit(o, std::forward<H>(h)); }
  template <class H> void fdatasync(op& o, int fd, H&& h) { prep_fsync(o, fd, true); submit(o, std::forward<H>(h)); }
  template <class H> void fallocate(op& o, int fd, int mode, std::uint64_t offset, std::uint64_t len, H&& h) {
    prep_fallocate(o, fd, mode, offset, len); submit(o, std::forward<H>(h));
  }
  template <class H> void ftruncate(op& o, int fd, std::uint64_t length, H&& h) {
    prep_ftruncate(o, fd, length); submit(o, std::forward<H>(h));
  }
  // statx(2): fills *out. flags: AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH, ...; mask: STATX_* bits.
  template <class H> void stat(op& o, int dirfd, const char* path, int flags, unsigned mask, struct statx* out, H&& h) {
    prep_stat(o, dirfd, path, flags, mask, out); submit(o, std::forward<H>(h));
  }
  // renameat2(2); flags: RENAME_NOREPLACE, RENAME_EXCHANGE or 0.
  template <class H> void rename(op& o, int olddirfd, const char* oldpath, int newdirfd, const char* newpath, unsigned flags, H&& h) {
    prep_rename(o, olddirfd, oldpath, newdirfd, newpath, flags); submit(o, std::forward<H>(h));
  }
  template <class H> void unlink(op& o, int dirfd, const char* path, H&& h) {
    prep_unlink(o, dirfd, path, false); submit(o, std::forward<H>(h));
  }
  template <class H> void rmdir(op& o, int dirfd, const char* path, H&& h) {
    prep_unlink(o, dirfd, path, true); submit(o, std::forward<H>(h));
  }
  template <class H> void mkdir(op& o, int dirfd, const char* path, unsigned mode, H&& h) {
    prep_mkdir(o, dirfd, path, mode); submit(o, std::forward<H>(h));
  }
  // Result: the accepted fd (non-blocking, close-on-exec). addr/addrlen may be null.
  template <class H> void accept(op& o, int listen_fd, sockaddr* addr, socklen_t* addrlen, H&& h) {
    prep_accept(o, listen_fd, addr, addrlen); submit(o, std::forward<H>(h));
  }
  template <class H> void connect(op& o, int fd, const sockaddr* addr, socklen_t addrlen, H&& h) {
    prep_connect(o, fd, addr, addrlen); submit(o, std::forward<H>(h));
  }
  // Result: bytes received; 0 when the peer closed its side.
  template <class H> void recv(op& o, int fd, void* buf, std::size_t len, int flags, H&& h) {
    prep_recv(o, fd, buf, len, flags); submit(o, std::forward<H>(h));
  }
  // Result: bytes sent (may be fewer than len). Never raises SIGPIPE (EPIPE instead).
  template <class H> void send(op& o, int fd, const void* buf, std::size_t len, int flags, H&& h) {
    prep_send(o, fd, buf, len, flags); submit(o, std::forward<H>(h));
  }
  // Copies up to len bytes of the regular file in_fd, from in_offset, to out_fd (a socket or a
  // pipe) without a copy through user space (sendfile(2), or splice on io_uring). The file's
  // position is neither used nor changed. Result: bytes that reached out_fd, which may be fewer
  // than len (like send: loop for the rest); 0 when in_offset is at or past the end of the file.
  // Never raises SIGPIPE (EPIPE instead). out_fd is made non-blocking (O_NONBLOCK) if it is not:
  // the op waits for writability on the loop, never on a thread. docs/ops.md has the details.
  template <class H>
  void sendfile(op& o, int out_fd, int in_fd, std::uint64_t in_offset, std::size_t len, H&& h) {
    prep_sendfile(o, out_fd, in_fd, in_offset, len); submit(o, std::forward<H>(h));
  }
  // ---- Datagrams and messages (UDP, Unix-domain sockets; docs/ops.md has the details) ----
  // sendto(2): one datagram of len bytes to `to`; an empty endpoint (length 0) passes no address,
  // so a connected socket sends to its peer (a connection-mode socket ignores `to` or fails with
  // EISCONN, as sendto(2) says). `to` is read when the op runs: keep it valid until completion,
  // like the buffer. Result: bytes sent. Never raises SIGPIPE (EPIPE instead).
  template <class H>
  void sendto(op& o, int fd, const void* buf, std::size_t len, const endpoint& to, int flags, H&& h) {
    prep_sendto(o, fd, buf, len, to, flags); submit(o, std::forward<H>(h));
  }
  // recvfrom(2): one datagram into buf, and its sender's address into *from (nullptr: not
  // wanted; a sender without an address, an unbound Unix datagram socket, leaves it empty:
  // length 0, family AF_UNSPEC). A datagram longer than len is cut to len bytes, the rest is
  // discarded and the result is len; with MSG_TRUNC in flags the result is the datagram's real
  // length instead, as Linux's recvfrom(2) gives it, so result > len tells a cut datagram.
  // Result: bytes received (0 for an empty datagram, or when a stream peer closed its side).
  template <class H>
  void recvfrom(op& o, int fd, void* buf, std::size_t len, endpoint* from, int flags, H&& h) {
    prep_recvfrom(o, fd, buf, len, from, flags); submit(o, std::forward<H>(h));
  }
  // sendmsg(2) of the caller's *msg: gathered iovecs, an optional address, ancillary data
  // (SCM_RIGHTS passes fds over a Unix-domain socket). Result: bytes sent. Never raises SIGPIPE.
  template <class H> void sendmsg(op& o, int fd, const msghdr* msg, int flags, H&& h) {
    prep_msg(o, op_code::sendmsg, fd, const_cast<msghdr*>(msg), flags); submit(o, std::forward<H>(h));
  }
  // recvmsg(2) into the caller's *msg, which the kernel updates as recvmsg(2) does (msg_namelen,
  // msg_controllen, msg_flags: MSG_TRUNC when the datagram was cut to the buffers, MSG_CTRUNC
  // when ancillary data was). Received fds are close-on-exec (MSG_CMSG_CLOEXEC is always added).
  // Result: bytes received.
  template <class H> void recvmsg(op& o, int fd, msghdr* msg, int flags, H&& h) {
    prep_msg(o, op_code::recvmsg, fd, msg, flags); submit(o, std::forward<H>(h));
  }
  // ---- More file system operations (docs/ops.md has each one's contract) ----
  // symlinkat(2): creates linkpath (relative to newdirfd) pointing at target.
  template <class H> void symlink(op& o, const char* target, int newdirfd, const char* linkpath, H&& h) {
    prep_symlink(o, target, newdirfd, linkpath); submit(o, std::forward<H>(h));
  }
  // linkat(2); flags: AT_SYMLINK_FOLLOW, AT_EMPTY_PATH or 0.
  template <class H>
  void link(op& o, int olddirfd, const char* oldpath, int newdirfd, const char* newpath, int flags, H&& h) {
    prep_link(o, olddirfd, oldpath, newdirfd, newpath, flags); submit(o, std::forward<H>(h));
  }
  // readlinkat(2) into buf (no NUL added). Result: the bytes placed; len of them means the target
  // may have been cut short (async_readlink grows its buffer and runs again).
  template <class H> void readlink(op& o, int dirfd, const char* path, char* buf, std::size_t len, H&& h) {
    prep_readlink(o, dirfd, path, buf, len); submit(o, std::forward<H>(h));
  }
  template <class H> void chmod(op& o, int dirfd, const char* path, unsigned mode, H&& h) {
    prep_chmod(o, dirfd, path, mode); submit(o, std::forward<H>(h));
  }
  template <class H> void fchmod(op& o, int fd, unsigned mode, H&& h) {
    prep_fchmod(o, fd, mode); submit(o, std::forward<H>(h));
  }
  // fchownat(2); uid or gid (uid_t)-1 / (gid_t)-1 leaves it unchanged. lchown changes a symlink
  // itself, not its target (AT_SYMLINK_NOFOLLOW).
  template <class H> void chown(op& o, int dirfd, const char* path, uid_t uid, gid_t gid, H&& h) {
    prep_chown(o, op_code::chown, dirfd, path, uid, gid); submit(o, std::forward<H>(h));
  }
  template <class H> void lchown(op& o, int dirfd, const char* path, uid_t uid, gid_t gid, H&& h) {
    prep_chown(o, op_code::lchown, dirfd, path, uid, gid); submit(o, std::forward<H>(h));
  }
  template <class H> void fchown(op& o, int fd, uid_t uid, gid_t gid, H&& h) {
    prep_fchown(o, fd, uid, gid); submit(o, std::forward<H>(h));
  }
  // utimensat(2): times[0] = access, times[1] = modification (UTIME_NOW, UTIME_OMIT allowed);
  // times == nullptr sets both to now. flags: AT_SYMLINK_NOFOLLOW; AT_EMPTY_PATH with path "" for
  // the file dirfd refers to (an fd of any file).
  template <class H> void utimens(op& o, int dirfd, const char* path, const timespec times[2], int flags, H&& h) {
    prep_utimens(o, dirfd, path, times, flags); submit(o, std::forward<H>(h));
  }
  // statfs(2)/fstatfs(2): fills *out.
  template <class H> void statfs(op& o, const char* path, struct statfs* out, H&& h) {
    prep_statfs(o, path, out); submit(o, std::forward<H>(h));
  }
  template <class H> void fstatfs(op& o, int fd, struct statfs* out, H&& h) {
    prep_fstatfs(o, fd, out); submit(o, std::forward<H>(h));
  }
  // copy_file_range(2). Offsets: a position (the fd's own position is neither used nor changed)
  // or current_position (the fd's position is used and advanced). Result: bytes copied (may be
  // fewer than len; 0 at end of file).
  template <class H>
  void copy_file_range(op& o, int fd_in, std::uint64_t off_in, int fd_out, std::uint64_t off_out, std::size_t len,
                       unsigned flags, H&& h) {
    prep_copy_range(o, op_code::copy_file_range, fd_in, off_in, fd_out, off_out, len, flags);
    submit(o, std::forward<H>(h));
  }
  // splice(2): one of fd_in, fd_out is a pipe (its offset must be current_position), the other a
  // file or a pipe. The op waits for the pipe (readable input, writable output) on the loop,
  // also on a non-blocking pipe (never EAGAIN). Result: bytes moved; 0 when the input pipe has no
  // writer left and is empty, or the input file is at its end.
  template <class H>
  void splice(op& o, int fd_in, std::uint64_t off_in, int fd_out, std::uint64_t off_out, std::size_t len,
              unsigned flags, H&& h) {
    prep_copy_range(o, op_code::splice, fd_in, off_in, fd_out, off_out, len, flags);
    submit(o, std::forward<H>(h));
  }
  // faccessat2(2) (faccessat(2) on kernels before 5.8 when flags == 0). mode: F_OK or R_OK|W_OK|X_OK;
  // flags: AT_EACCESS, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH. Success: access is allowed.
  template <class H> void access(op& o, int dirfd, const char* path, int mode, int flags, H&& h) {
    prep_access(o, dirfd, path, mode, flags); submit(o, std::forward<H>(h));
  }
  // mkdtemp(3)/mkostemp(3) with O_CLOEXEC: tmpl (the caller's buffer, ending in "XXXXXX") is
  // rewritten in place to the created directory's or file's path. mkstemp's result: the new fd.
  template <class H> void mkdtemp(op& o, char* tmpl, H&& h) {
    prep_mktemp(o, op_code::mkdtemp, tmpl); submit(o, std::forward<H>(h));
  }
  template <class H> void mkstemp(op& o, char* tmpl, H&& h) {
    prep_mktemp(o, op_code::mkstemp, tmpl); submit(o, std::forward<H>(h));
  }
  // realpath(3) into buf (NUL-terminated; ERANGE when len is too small; PATH_MAX always
  // suffices). Result: the path's length.
  template <class H> void realpath(op& o, const char* path, char* buf, std::size_t len, H&& h) {
    prep_realpath(o, path, buf, len); submit(o, std::forward<H>(h));
  }
  // Completes with success after `d` (measured on the loop's clock), or ECANCELED.
  template <class H> void timeout(op& o, std::chrono::nanoseconds d, H&& h) {
    prep_timeout(o, d); submit(o, std::forward<H>(h));
  }

  // ---- Work on the loop's pool ----
  // Runs fn() on the loop's thread pool (on every backend; the sync backend runs it inline on the
  // loop's thread inside run()/poll(), which stalls the loop for as long as fn takes; never inside
  // the submitting call), then the handler on the loop's thread. fn must not touch the loop.
  // Queued work keeps run() going like any busy op. Cancel: work not yet started completes with
  // ECANCELED and fn never runs; once fn runs it runs to the end and its result is delivered. The
  // loop's destructor cancels queued work the same way and waits for running work.
  // Callback form: h(op&, result<R> r, std::exception_ptr ex), R = fn's return type
  // (result<void> for void). r holds fn's value, or ECANCELED, or k_work_threw when fn threw, and
  // then ex holds the exception (else ex is null): it is never lost and never terminates the
  // program. fn, its value and h live in one heap block allocated here and freed after h returns
  // (the only allocation; async_work has none). op.raw_result() is 0, -ECANCELED or -k_work_threw.
  template <class F, class H>
  void queue_work(op& o, F fn, H h) {
    auto* box = new detail::work_box<F, H>(std::move(fn), std::move(h));
    prep_work(o, *box);
    submit(o, [box](op& x) { box->deliver(x); });
  }
  // Awaitable form: co_await yields result<R> (fn's value, or ECANCELED). An exception thrown by
  // fn is rethrown from the co_await. fn and its value live in the coroutine frame: no allocation.
  // get_op() on the awaitable gives the op to cancel.
  template <class F>
  auto async_work(F fn) { return detail::work_awaitable<F>(*this, std::move(fn)); }

  // ---- Names (getaddrinfo/getnameinfo on the pool, through async_work) ----
  // Resolves host and service (either may be empty, not both) with /etc/hosts, DNS and whatever
  // nsswitch.conf names. Yields the addresses in getaddrinfo's order without duplicates, each with
  // the service's port (0 when service is empty). Errors: unio::resolve_category() with the EAI_*
  // value (EAI_NONAME: no such name; EAI_AGAIN: the name server did not answer, try later), or an
  // errno in generic_category for EAI_SYSTEM; ECANCELED when cancelled before it started (a
  // running look-up cannot be stopped: it finishes and its result is delivered).
  auto async_resolve(std::string host, std::string service, resolve_hints hints = {}) {
    auto fn = [h = std::move(host), s = std::move(service), hints] {
      return detail::resolve_now(h, s, hints);
    };
    return detail::work_awaitable<decltype(fn), true>(*this, std::move(fn));
  }
  // The host and service names of an address (getnameinfo). flags: NI_* (NI_NAMEREQD: fail with
  // EAI_NONAME when the address has no name instead of giving it in numeric form; NI_NUMERICHOST,
  // NI_NUMERICSERV, NI_DGRAM). Errors as async_resolve.
  auto async_reverse_resolve(const endpoint& ep, int flags = 0) {
    auto fn = [ep, flags] { return detail::reverse_resolve_now(ep, flags); };
    return detail::work_awaitable<decltype(fn), true>(*this, std::move(fn));
  }

  // ---- Directories (getdents64 on the pool; on sync, inline on the loop's thread) ----
  // Lists the directory `path` (relative to dirfd; "." for dirfd itself) into *out, which is
  // replaced; the loop's thread never reads the directory. *out and path must stay valid and
  // untouched until the handler runs. Result: the number of entries ("." and ".." are left
  // out), or -errno: ENOENT, ENOTDIR, EACCES, EBADF, ENOMEM, ... (the directory is opened with
  // openat(O_DIRECTORY) and closed again on the pool). Cancel: ECANCELED while queued.
  template <class H>
  void scandir(op& o, int dirfd, const char* path, std::vector<dir_entry>* out, H&& h) {
    prep_scandir(o, dirfd, path, out); submit(o, std::forward<H>(h));
  }
  // The next batch of entries of the directory open on dir_fd (at its position), into *out
  // (replaced): empty at the end. Result: the number of entries, or -errno (EBADF, ENOTDIR).
  // One read_dir at a time per fd. unio::dir_reader wraps it.
  template <class H> void read_dir(op& o, int dir_fd, std::vector<dir_entry>* out, H&& h) {
    prep_read_dir(o, dir_fd, out); submit(o, std::forward<H>(h));
  }
  auto async_scandir(int dirfd, const char* path) {
    return detail::entries_awaitable(
        *this, [=, this](op& o, std::vector<dir_entry>* v) { prep_scandir(o, dirfd, path, v); });
  }
  auto async_read_dir(int dir_fd) {
    return detail::entries_awaitable(
        *this, [=, this](op& o, std::vector<dir_entry>* v) { prep_read_dir(o, dir_fd, v); });
  }

  // ---- Readiness of any fd (IORING_OP_POLL_ADD on io_uring, epoll on every other backend) ----
  // Waits until `fd` has one of `events` (POLLIN, POLLOUT, POLLPRI, POLLRDHUP, as poll(2)) and
  // gives the revents: those of `events` that hold, plus POLLERR and POLLHUP, which are always
  // reported. One-shot: nothing is read or written. An fd that is ready already (a pipe with
  // data) completes in the next turn; a file without poll support (a regular file, /dev/null) is
  // always ready, as in poll(2). Several polls on one fd may wait at once. Errors: EBADF (not an
  // open fd). Cancel: ECANCELED while it waits. A completed poll promises nothing about later:
  // another reader may take the data first.
  template <class H> void poll(op& o, int fd, unsigned events, H&& h) {
    prep_poll(o, fd, events); submit(o, std::forward<H>(h));
  }
  auto async_poll(int fd, unsigned events) {
    return make<unsigned>([=, this](op& o) { prep_poll(o, fd, events); });
  }

  // Requests cancellation of a busy op. The target still completes exactly once: with ECANCELED
  // if it was stopped before it took effect (a queued op never runs), or with its own result if
  // it had already started or finished (a blocking syscall on a pool thread cannot be
  // interrupted; docs/ops.md lists what each backend can stop). No-op when !target.busy().
  void cancel(op& target);

  // ---- Linked operations (io_uring's IOSQE_IO_LINK and LINK_TIMEOUT, on every backend) ----
  // Ops submitted between begin_link() and end_link() -- or during a link_scope's life -- form
  // a chain: each starts only after the previous one has completed successfully. "Successfully"
  // means a result >= 0 and, for read, write, readv and writev, the whole length transferred (a
  // short transfer breaks the chain, as in io_uring; a read at end of file is short). Once an op
  // of the chain fails, every later op of the chain completes with ECANCELED without running.
  // Each op still completes exactly once, in chain order. Cancelling a chain member that has
  // not started completes it and the ops after it with ECANCELED; ops before it are not
  // affected. A chain ends at end_link(), or when the loop runs a turn (do not run the loop
  // inside a scope: ops submitted after the turn start a new chain). Scopes nest (the inner
  // one joins the outer chain). Every backend emulates chains in the loop: a later op is
  // handed to the backend in the turn its predecessor's completion is reaped (so a chain costs
  // one loop turn per link on io_uring too; native IOSQE_IO_LINK is later work).
  void begin_link() noexcept;
  void end_link() noexcept;
  class UNIO_API link_scope {
   public:
    explicit link_scope(loop& lp) noexcept : loop_(lp) { lp.begin_link(); }
    ~link_scope() { loop_.end_link(); }
    link_scope(const link_scope&) = delete;
    link_scope& operator=(const link_scope&) = delete;

   private:
    loop& loop_;
  };
  // A deadline for the op submitted just before this call (in the same turn; inside or outside
  // a chain; t itself does not join the chain). The clock starts when that op starts. If the op
  // has not completed within `d`, it is cancelled (it completes with ECANCELED, or with its own
  // result if the backend cannot stop it any more, see cancel) and t completes with ETIME; if
  // the op completes first, t completes with ECANCELED. EINVAL for t when no op was submitted
  // just before, or that op already has a link timeout. Cancelling t removes the deadline.
  template <class H> void link_timeout(op& t, std::chrono::nanoseconds d, H&& h) {
    prep_link_timeout(t, d); submit(t, std::forward<H>(h));
  }

  // ---- Registered buffers and files (io_uring's fixed buffers and files) ----
  // Registration tells the kernel about memory and files up front, so io_uring does not map the
  // buffer's pages or look the fd up on every op. Worth it for long-lived buffers and files
  // that carry many ops (a buffer pool, a database file, a busy socket); pointless for a
  // handful of ops. Every backend accepts the same calls with the same validation; only io_uring
  // uses them (other backends: no effect on how ops run, results are identical).
  //
  // register_buffers: afterwards a read or write (not readv/writev) whose [buf, buf+len) lies
  // inside one registered buffer runs as IORING_OP_READ_FIXED/WRITE_FIXED; other ops are
  // unchanged. The memory must stay valid until unregister_buffers() or the loop's destruction.
  // The kernel pins it and counts it against RLIMIT_MEMLOCK. Errors: EINVAL (empty span, more
  // than 16384 buffers, a null base, a length of 0 or above 1 GiB, overlapping buffers), EBUSY
  // (buffers are registered already: unregister first, there is no partial replace), or the
  // kernel's error (ENOMEM over RLIMIT_MEMLOCK; nothing is registered then and ops work as
  // before).
  std::error_code register_buffers(std::span<const iovec> bufs);
  // ENXIO when none are registered. Ops already submitted are not affected.
  std::error_code unregister_buffers();
  // register_files: afterwards every op on one of these fds (except close, open, stat and the
  // path operations) refers to the file by its index (IOSQE_FIXED_FILE). Errors: EINVAL (empty
  // span, more than 32768 fds, a duplicate fd), EBADF (a negative or closed fd), EBUSY (files
  // are registered already), or the kernel's error. The io_uring kernel table holds its own
  // reference to each file: closing a registered fd with loop::close() also removes it from the
  // table (the file is then really closed); a registered fd closed with ::close() behind the
  // loop's back stays open in the kernel until unregister_files(), and if its number is reused
  // by a file the loop did not open, ops on the new file would reach the old one. Unregister
  // (or close through the loop) first.
  std::error_code register_files(std::span<const int> fds);
  // ENXIO when none are registered. Ops already submitted are not affected.
  std::error_code unregister_files();

  // ---- Operations, awaitable form: co_await yields result<R>. ----
  auto async_nop() { return make<void>([&](op& o) { prep_nop(o); }); }
  auto async_open(int dirfd, const char* path, open_how how) {
    return make<int>([=, this](op& o) { prep_open(o, dirfd, path, how); });
  }
  auto async_close(int fd) { return make<void>([=, this](op& o) { prep_close(o, fd); }); }
  auto async_read(int fd, void* buf, std::size_t len, std::uint64_t offset) {
    return make<std::size_t>([=, this](op& o) { prep_read(o, fd, buf, len, offset); });
  }
  auto async_write(int fd, const void* buf, std::size_t len, std::uint64_t offset) {
    return make<std::size_t>([=, this](op& o) { prep_write(o, fd, buf, len, offset); });
  }
  auto async_readv(int fd, const iovec* iov, int iovcnt, std::uint64_t offset) {
    return make<std::size_t>([=, this](op& o) { prep_readv(o, fd, iov, iovcnt, offset); });
  }
  auto async_writev(int fd, const iovec* iov, int iovcnt, std::uint64_t offset) {
    return make<std::size_t>([=, this](op& o) { prep_writev(o, fd, iov, iovcnt, offset); });
  }
  auto async_fsync(int fd) { return make<void>([=, this](op& o) { prep_fsync(o, fd, false); }); }
  auto async_fdatasync(int fd) { return make<void>([=, this](op& o) { prep_fsync(o, fd, true); }); }
  auto async_fallocate(int fd, int mode, std::uint64_t offset, std::uint64_t len) {
    return make<void>([=, this](op& o) { prep_fallocate(o, fd, mode, offset, len); });
  }
  auto async_ftruncate(int fd, std::uint64_t length) {
    return make<void>([=, this](op& o) { prep_ftruncate(o, fd, length); });
  }
  auto async_stat(int dirfd, const char* path, int flags, unsigned mask, struct statx* out) {
    return make<void>([=, this](op& o) { prep_stat(o, dirfd, path, flags, mask, out); });
  }
  auto async_rename(int olddirfd, const char* oldpath, int newdirfd, const char* newpath, unsigned flags = 0) {
    return make<void>([=, this](op& o) { prep_rename(o, olddirfd, oldpath, newdirfd, newpath, flags); });
  }
  auto async_unlink(int dirfd, const char* path) {
    return make<void>([=, this](op& o) { prep_unlink(o, dirfd, path, false); });
  }
  auto async_rmdir(int dirfd, const char* path) {
    return make<void>([=, this](op& o) { prep_unlink(o, dirfd, path, true); });
  }
  auto async_mkdir(int dirfd, const char* path, unsigned mode) {
    return make<void>([=, this](op& o) { prep_mkdir(o, dirfd, path, mode); });
  }
  auto async_accept(int listen_fd, sockaddr* addr = nullptr, socklen_t* addrlen = nullptr) {
    return make<int>([=, this](op& o) { prep_accept(o, listen_fd, addr, addrlen); });
  }
  auto async_connect(int fd, const sockaddr* addr, socklen_t addrlen) {
    return make<void>([=, this](op& o) { prep_connect(o, fd, addr, addrlen); });
  }
  auto async_recv(int fd, void* buf, std::size_t len, int flags = 0) {
    return make<std::size_t>([=, this](op& o) { prep_recv(o, fd, buf, len, flags); });
  }
  auto async_send(int fd, const void* buf, std::size_t len, int flags = 0) {
    return make<std::size_t>([=, this](op& o) { prep_send(o, fd, buf, len, flags); });
  }
  auto async_sendfile(int out_fd, int in_fd, std::uint64_t in_offset, std::size_t len) {
    return make<std::size_t>([=, this](op& o) { prep_sendfile(o, out_fd, in_fd, in_offset, len); });
  }
  // `to` and *from, like buf and *msg, must stay valid until the op completes.
  auto async_sendto(int fd, const void* buf, std::size_t len, const endpoint& to, int flags = 0) {
    return make<std::size_t>([=, this, &to](op& o) { prep_sendto(o, fd, buf, len, to, flags); });
  }
  auto async_recvfrom(int fd, void* buf, std::size_t len, endpoint* from, int flags = 0) {
    return make<std::size_t>([=, this](op& o) { prep_recvfrom(o, fd, buf, len, from, flags); });
  }
  auto async_sendmsg(int fd, const msghdr* msg, int flags = 0) {
    return make<std::size_t>(
        [=, this](op& o) { prep_msg(o, op_code::sendmsg, fd, const_cast<msghdr*>(msg), flags); });
  }
  auto async_recvmsg(int fd, msghdr* msg, int flags = 0) {
    return make<std::size_t>([=, this](op& o) { prep_msg(o, op_code::recvmsg, fd, msg, flags); });
  }
  auto async_symlink(const char* target, int newdirfd, const char* linkpath) {
    return make<void>([=, this](op& o) { prep_symlink(o, target, newdirfd, linkpath); });
  }
  auto async_link(int olddirfd, const char* oldpath, int newdirfd, const char* newpath, int flags = 0) {
    return make<void>([=, this](op& o) { prep_link(o, olddirfd, oldpath, newdirfd, newpath, flags); });
  }
  // Yields the whole target, however long.
  detail::text_awaitable async_readlink(int dirfd, const char* path) {
    return {*this, detail::text_awaitable::kind::readlink, dirfd, path, std::string()};
  }
  auto async_chmod(int dirfd, const char* path, unsigned mode) {
    return make<void>([=, this](op& o) { prep_chmod(o, dirfd, path, mode); });
  }
  auto async_fchmod(int fd, unsigned mode) { return make<void>([=, this](op& o) { prep_fchmod(o, fd, mode); }); }
  auto async_chown(int dirfd, const char* path, uid_t uid, gid_t gid) {
    return make<void>([=, this](op& o) { prep_chown(o, op_code::chown, dirfd, path, uid, gid); });
  }
  auto async_lchown(int dirfd, const char* path, uid_t uid, gid_t gid) {
    return make<void>([=, this](op& o) { prep_chown(o, op_code::lchown, dirfd, path, uid, gid); });
  }
  auto async_fchown(int fd, uid_t uid, gid_t gid) {
    return make<void>([=, this](op& o) { prep_fchown(o, fd, uid, gid); });
  }
  // `times` (when not nullptr) must stay valid until the op completes, like a buffer.
  auto async_utimens(int dirfd, const char* path, const timespec times[2], int flags = 0) {
    return make<void>([=, this](op& o) { prep_utimens(o, dirfd, path, times, flags); });
  }
  auto async_statfs(const char* path, struct statfs* out) {
    return make<void>([=, this](op& o) { prep_statfs(o, path, out); });
  }
  auto async_fstatfs(int fd, struct statfs* out) { return make<void>([=, this](op& o) { prep_fstatfs(o, fd, out); }); }
  auto async_copy_file_range(int fd_in, std::uint64_t off_in, int fd_out, std::uint64_t off_out, std::size_t len,
                             unsigned flags = 0) {
    return make<std::size_t>([=, this](op& o) {
      prep_copy_range(o, op_code::copy_file_range, fd_in, off_in, fd_out, off_out, len, flags);
    });
  }
  auto async_splice(int fd_in, std::uint64_t off_in, int fd_out, std::uint64_t off_out, std::size_t len,
                    unsigned flags = 0) {
    return make<std::size_t>([=, this](op& o) {
      prep_copy_range(o, op_code::splice, fd_in, off_in, fd_out, off_out, len, flags);
    });
  }
  auto async_access(int dirfd, const char* path, int mode, int flags = 0) {
    return make<void>([=, this](op& o) { prep_access(o, dirfd, path, mode, flags); });
  }
  // Yield the created directory's path, or the new file's fd and path (temp_file).
  detail::text_awaitable async_mkdtemp(std::string tmpl) {
    return {*this, detail::text_awaitable::kind::mkdtemp, -100, nullptr, std::move(tmpl)};
  }
  detail::temp_file_awaitable async_mkstemp(std::string tmpl) { return {*this, std::move(tmpl)}; }
  // Yields the absolute path with every symlink, "." and ".." resolved.
  detail::text_awaitable async_realpath(const char* path) {
    return {*this, detail::text_awaitable::kind::realpath, -100, path, std::string()};
  }
  auto async_sleep(std::chrono::nanoseconds d) { return make<void>([=, this](op& o) { prep_timeout(o, d); }); }
  // A write linked to an fsync (fdatasync when `datasync`): the sync runs only after the whole
  // write succeeded. Yields the bytes written (== len) when both succeeded, else the write's
  // error, ECANCELED when the write was short (the sync did not run; use the callback form with
  // link_scope to learn the count), or the sync's error.
  auto async_write_fsync(int fd, const void* buf, std::size_t len, std::uint64_t offset, bool datasync = false) {
    return detail::write_sync_awaitable(*this, fd, buf, len, offset, datasync);
  }

  // How many opens loop_options::direct_fallback has turned into buffered opens (the file
  // system refused O_DIRECT). Loop thread only.
  std::uint64_t direct_fallbacks() const noexcept;

  // Internal: submits a prepared op. Use the named operations above.
  void submit_prepared(op& o);

  // ---- Child processes (the only loop.hpp lines of process support) ----
  // unio::async_spawn(*this, argv, opts), defined in unio/process.hpp (include it, or
  // unio/unio.hpp, to call these). co_await yields result<process>.
  detail::spawn_awaitable async_spawn(std::vector<std::string> argv);
  detail::spawn_awaitable async_spawn(std::vector<std::string> argv, const spawn_options& opts);

 private:
  template <class R>
  friend class detail::op_awaitable;
  template <class F, bool Flat>
  friend class detail::work_awaitable;
  friend class detail::entries_awaitable;
  friend struct detail::loop_access;
  template <class R, class P>
  detail::op_awaitable<R> make(P&& p) { return detail::op_awaitable<R>(*this, std::forward<P>(p)); }

  template <class H>
  void submit(op& o, H&& h);

  void prep_nop(op& o);
  void prep_open(op& o, int dirfd, const char* path, open_how how);
  void prep_close(op& o, int fd);
  void prep_read(op& o, int fd, void* buf, std::size_t len, std::uint64_t offset);
  void prep_write(op& o, int fd, const void* buf, std::size_t len, std::uint64_t offset);
  void prep_readv(op& o, int fd, const iovec* iov, int iovcnt, std::uint64_t offset);
  void prep_writev(op& o, int fd, const iovec* iov, int iovcnt, std::uint64_t offset);
  void prep_fsync(op& o, int fd, bool datasync);
  void prep_fallocate(op& o, int fd, int mode, std::uint64_t offset, std::uint64_t len);
  void prep_ftruncate(op& o, int fd, std::uint64_t length);
  void prep_stat(op& o, int dirfd, const char* path, int flags, unsigned mask, struct statx* out);
  void prep_rename(op& o, int olddirfd, const char* oldpath, int newdirfd, const char* newpath, unsigned flags);
  void prep_unlink(op& o, int dirfd, const char* path, bool dir);
  void prep_mkdir(op& o, int dirfd, const char* path, unsigned mode);
  void prep_accept(op& o, int fd, sockaddr* addr, socklen_t* addrlen);
  void prep_connect(op& o, int fd, const sockaddr* addr, socklen_t addrlen);
  void prep_recv(op& o, int fd, void* buf, std::size_t len, int flags);
  void prep_send(op& o, int fd, const void* buf, std::size_t len, int flags);
  void prep_timeout(op& o, std::chrono::nanoseconds d);
  void prep_sendfile(op& o, int out_fd, int in_fd, std::uint64_t in_offset, std::size_t len);
  void prep_sendto(op& o, int fd, const void* buf, std::size_t len, const endpoint& to, int flags);
  void prep_recvfrom(op& o, int fd, void* buf, std::size_t len, endpoint* from, int flags);
  void prep_msg(op& o, op_code c, int fd, msghdr* msg, int flags);
  void prep_link_timeout(op& o, std::chrono::nanoseconds d);
  void prep_symlink(op& o, const char* target, int newdirfd, const char* linkpath);
  void prep_link(op& o, int olddirfd, const char* oldpath, int newdirfd, const char* newpath, int flags);
  void prep_readlink(op& o, int dirfd, const char* path, char* buf, std::size_t len);
  void prep_chmod(op& o, int dirfd, const char* path, unsigned mode);
  void prep_fchmod(op& o, int fd, unsigned mode);
  void prep_chown(op& o, op_code c, int dirfd, const char* path, uid_t uid, gid_t gid);
  void prep_fchown(op& o, int fd, uid_t uid, gid_t gid);
  void prep_utimens(op& o, int dirfd, const char* path, const timespec times[2], int flags);
  void prep_statfs(op& o, const char* path, struct statfs* out);
  void prep_fstatfs(op& o, int fd, struct statfs* out);
  void prep_copy_range(op& o, op_code c, int fd_in, std::uint64_t off_in, int fd_out, std::uint64_t off_out,
                       std::size_t len, unsigned flags);
  void prep_access(op& o, int dirfd, const char* path, int mode, int flags);
  void prep_mktemp(op& o, op_code c, char* tmpl);
  void prep_realpath(op& o, const char* path, char* buf, std::size_t len);
  void prep_work(op& o, detail::work_item& item);
  void prep_scandir(op& o, int dirfd, const char* path, std::vector<dir_entry>* out);
  void prep_read_dir(op& o, int dir_fd, std::vector<dir_entry>* out);
  void prep_poll(op& o, int fd, unsigned events);
  detail::op_handler& handler_of(op& o) noexcept;

  std::unique_ptr<detail::loop_impl> impl_;
};

template <class H>
void loop::submit(op& o, H&& h) {
  handler_of(o).set(std::forward<H>(h));
  submit_prepared(o);
}

template <class R>
void detail::op_awaitable<R>::await_suspend(std::coroutine_handle<> h) {
  loop_.submit(op_, [h](op&) { h.resume(); });
}

template <class F, bool Flat>
void detail::work_awaitable<F, Flat>::await_suspend(std::coroutine_handle<> h) {
  loop_.prep_work(op_, call_);
  loop_.submit(op_, [h](op&) { h.resume(); });
}

inline void detail::entries_awaitable::await_suspend(std::coroutine_handle<> h) {
  loop_.submit(op_, [h](op&) { h.resume(); });
}

inline void detail::write_sync_awaitable::await_suspend(std::coroutine_handle<> h) {
  handle_ = h;
  auto done = [this](op&) {
    if (--left_ == 0) handle_.resume();
  };
  loop::link_scope chain(loop_);
  loop_.write(write_, fd_, buf_, len_, offset_, done);
  if (datasync_) loop_.fdatasync(sync_, fd_, done);
  else loop_.fsync(sync_, fd_, done);
}

inline result<std::size_t> detail::write_sync_awaitable::await_resume() const {
  if (!write_.ok()) return write_.error();
  if (!sync_.ok()) return sync_.error();
  return write_.value();
}

}  // namespace unio
