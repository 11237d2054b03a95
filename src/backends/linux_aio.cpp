// The linux_aio backend: Linux native AIO (io_setup/io_submit/io_getevents, raw syscalls, no
// libaio needed) for reads, writes and syncs; everything else on the loop's thread pool.
//
// Native AIO is asynchronous only for O_DIRECT files (the reason Node.js and Python never adopted
// it for file I/O), made into behaviour. On a buffered file io_submit does the whole read inside
// the syscall, including waiting for the disk on a cache miss (measured on a VM's virtio disk:
// 56-58 us per submit of a cold 4 KiB read, and QD32 no faster than QD1), so the loop would stall. By default, ops on files not opened with O_DIRECT therefore go
// to the pool; loop_options::aio_buffered submits them through AIO anyway, so the benchmark can
// show the stall.
//
// Which files are O_DIRECT: fcntl(F_GETFL), remembered per fd (fd_facts.hpp) for reads. Asking
// on every op cost a fifth of the CPU of a 4 KiB O_DIRECT read. A remembered answer can be stale
// (the fd number closed and reused, or F_SETFL, behind the loop's back), so a read sent on one
// carries RWF_NOWAIT: on a buffered file that would have to wait for the disk it fails with
// EAGAIN instead of blocking io_submit. Any failure or short count of such a read is checked
// against a fresh fcntl: a buffered file's read goes to the pool, an O_DIRECT one is submitted
// again without RWF_NOWAIT (which also covers NOWAIT's own refusals: no free request slot,
// dirty pages to write back first), anything else is the op's result. Writes and syncs always
// ask afresh (a partial NOWAIT write could not simply be sent again).
//
// While the loop waits for the device, a turn reaps only a few completions (reap_pacer.hpp), so
// the ops their handlers submit reach the device while the rest wait in the ring.
//
// Completions signal an eventfd (IOCB_FLAG_RESFD) that the loop's epoll set watches; the loop
// reaps them with io_getevents without waiting. iocbs come from a fixed table of queue_depth
// slots, so the hot path allocates nothing; an op that finds no free slot, or that io_submit
// refuses with EAGAIN (the context is full), waits for the next turn, never failed.
//
// Cancel: an op not yet submitted completes with ECANCELED. For one inside the kernel unio asks
// io_cancel, which file systems do not implement for regular file I/O (EINVAL): the op then
// completes normally, still exactly once. Shutdown waits for the kernel to finish what it has.
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <limits>
#include <string>
#include <system_error>
#include <vector>

#include "backend.hpp"
#include "delegation.hpp"
#include "fd_facts.hpp"
#include "reactor.hpp"
#include "reap_pacer.hpp"
#include "sys/syscalls.hpp"

namespace unio::detail {
namespace {

int io_setup(unsigned n, aio_context_t* ctx) { return static_cast<int>(::syscall(SYS_io_setup, n, ctx)); }
int io_destroy(aio_context_t ctx) { return static_cast<int>(::syscall(SYS_io_destroy, ctx)); }
long io_submit(aio_context_t ctx, long n, iocb** v) { return ::syscall(SYS_io_submit, ctx, n, v); }
long io_getevents(aio_context_t ctx, long min, long max, io_event* ev, timespec* t) {
  return ::syscall(SYS_io_getevents, ctx, min, max, ev, t);
}
int io_cancel(aio_context_t ctx, iocb* cb, io_event* ev) {
  return static_cast<int>(::syscall(SYS_io_cancel, ctx, cb, ev));
}

bool aio_capable(op_code c) noexcept { return traits(c).kernel_aio; }

std::string probe_aio_now() {
  aio_context_t ctx = 0;
  if (io_setup(1, &ctx) < 0) {
    int e = errno;
    std::string why = std::string("io_setup: ") + std::strerror(e);
    if (e == EPERM) why += " (refused by a seccomp filter?)";
    if (e == EAGAIN) why += " (fs.aio-max-nr reached)";
    if (e == ENOSYS) why += " (kernel built without CONFIG_AIO)";
    return why;
  }
  io_destroy(ctx);
  return {};
}

// io_destroy waits for an RCU grace period (30-45 ms on this kind of VM), so the answer is
// kept for the life of the process (a forked child probes again).
std::string probe_aio() {
  static std::mutex mu;
  static pid_t probed_by = 0;
  static std::string answer;
  std::lock_guard lk(mu);
  if (probed_by != ::getpid()) {
    answer = probe_aio_now();
    probed_by = ::getpid();
  }
  return answer;
}

class linux_aio_backend final : public backend {
 public:
  explicit linux_aio_backend(backend_env& env)
      : env_(env), reactor_(env), pool_(env, reactor_), depth_(env.options().queue_depth ? env.options().queue_depth : 256),
        buffered_(env.options().aio_buffered) {
    if (io_setup(depth_, &ctx_) < 0) throw std::system_error(errno, std::generic_category(), "unio: io_setup");
    event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (event_fd_ < 0) {
      int e = errno;
      io_destroy(ctx_);
      throw std::system_error(e, std::generic_category(), "unio: eventfd");
    }
    aio_bit_ = reactor_.watch_extra(event_fd_);
    slots_.resize(depth_);
    free_.reserve(depth_);
    for (unsigned i = depth_; i > 0; --i) free_.push_back(i - 1);
  }

  ~linux_aio_backend() override {
    io_destroy(ctx_);
    ::close(event_fd_);
  }

  std::string_view name() const noexcept override { return "linux_aio"; }

  void submit(op& o) override {
    if (needs_readiness(o, env_)) reactor_.submit(o);
    else if (o.code() == op_code::nop) nops_.push(o);
    else if (goes_to_aio(o)) waiting_.push(o);
    else delegate(o);
  }

  void cancel(op& o) override {
    if (waiting_.remove(o) || nops_.remove(o)) {
      env_.complete(o, -ECANCELED);
    } else if (A::flags(o) & k_in_kernel) {
      set_flag(o, k_cancel_asked);  // a NOWAIT read that comes back refused is not sent again
      io_event ev{};
      // Only old kernels (before 4.19) complete the op here; newer ones post the event.
      if (io_cancel(ctx_, &slots_[A::word(o)], &ev) == 0) finish_event(ev);
    } else if (!reactor_.cancel(o)) {
      pool_.cancel(o);
    }
  }

  void poll(std::optional<std::chrono::nanoseconds> timeout) override {
    const poll_deadline until(timeout);
    std::size_t done = complete_nops() + submit_waiting();  // may delegate (fsync EINVAL)
    const std::size_t budget = pacer_.budget();
    std::size_t reaped = reap(budget);
    pool_.hand_over();  // after reap(): a read that found a buffered file goes now
    done += reaped + drain_pool();
    pacer_.polled(done == 0);  // short of completions: the device is doing the work
    if (done > 0) timeout = std::chrono::nanoseconds(0);
    if (submit_refused() && (!timeout || *timeout > k_resubmit_after)) timeout = k_resubmit_after;
    bool zero = timeout && timeout->count() <= 0;
    if (!zero && !pool_.may_sleep()) timeout = std::chrono::nanoseconds(0);
    unsigned ready = reactor_.wait(until.rest(timeout));
    pool_.after_sleep();
    if ((ready & aio_bit_) != 0) clear_eventfd();
    // Completions this leaves in the ring are reaped by the next poll() before it may sleep
    // (and they make it not sleep), so clearing the eventfd loses none.
    if (reaped < budget) reap(budget - reaped);
    pool_.hand_over();
    drain_pool();
  }

  void wake() noexcept override { reactor_.wake(); }

  int host_fd() const noexcept override { return reactor_.epoll_fd(); }
  // Everything in the ring is reaped after the eventfd is cleared, so a completion that is not
  // handled here writes the eventfd again and wakes the host.
  std::optional<std::chrono::nanoseconds> prepare_host_wait() override {
    std::size_t done = complete_nops() + submit_waiting();
    clear_eventfd();
    done += reap(std::numeric_limits<std::size_t>::max());
    done += reactor_.settle().completed;
    pool_.hand_over();
    done += drain_pool();
    if (done > 0 || !pool_.may_sleep()) return std::chrono::nanoseconds(0);
    if (submit_refused()) return k_resubmit_after;
    return std::nullopt;
  }
  void fd_opened(int fd) noexcept override { facts_.forget(fd); }
  void fd_closing(int fd) noexcept override { facts_.forget(fd); }

  void shutdown() override {
    stopping_ = true;
    while (op* o = waiting_.pop()) env_.complete(*o, -ECANCELED);
    while (op* o = nops_.pop()) env_.complete(*o, -ECANCELED);
    reactor_.shutdown();
    // The kernel cannot be told to drop buffered or direct I/O it has started: wait for it.
    while (in_kernel_ > 0) {
      io_event evs[64];
      long n = io_getevents(ctx_, 1, 64, evs, nullptr);
      if (n < 0 && errno != EINTR) break;
      for (long i = 0; i < n; ++i) finish_event(evs[i]);
    }
    pool_.shutdown();
  }

 private:
  static constexpr std::uint8_t k_in_kernel = op_flag::aio_in_flight;
  static constexpr std::uint8_t k_nowait = op_flag::aio_nowait;  // sent on remembered facts, with RWF_NOWAIT
  static constexpr std::uint8_t k_cancel_asked = op_flag::aio_cancel_asked;

  // fcntl(F_GETFL) of fd, remembered; -1 with errno set when the kernel refuses.
  int fresh_flags(int fd) noexcept {
    int fl = ::fcntl(fd, F_GETFL);
    if (fl >= 0) facts_.put(fd, fl);
    return fl;
  }

  bool goes_to_aio(op& o) noexcept {
    if (!aio_capable(o.code()) || A::args(o).offset == current_position) return false;
    if (buffered_) return true;
    int fd = A::args(o).fd;
    if (is_read(o.code())) {
      if (const fd_facts::facts* f = facts_.find(fd)) {
        if ((f->flags & O_DIRECT) == 0) return false;
        set_flag(o, k_nowait);
        return true;
      }
    }
    int fl = fresh_flags(fd);
    return fl >= 0 && (fl & O_DIRECT) != 0;
  }

  // A read sent on remembered facts failed or came back short (res: its result): true when it
  // was handled here (sent again, or to the pool), false when res is the op's result.
  bool recheck(op& o, std::int64_t res) {
    if ((A::flags(o) & k_nowait) == 0) return false;
    A::flags(o) &= static_cast<std::uint8_t>(~k_nowait);
    if (res >= 0 && static_cast<std::uint64_t>(res) >= requested_bytes(o)) return false;
    if (stopping_ || (A::flags(o) & k_cancel_asked) != 0) {  // not sent again, nor rerouted
      if (res >= 0) return false;  // a short read's bytes are valid: its count is a result
      env_.complete(o, -ECANCELED);
      return true;
    }
    const int fd = A::args(o).fd;
    int fl = fresh_flags(fd);
    if (fl < 0) return false;  // the fd is gone: the op's own error (EBADF) says so
    if ((fl & O_DIRECT) == 0) {
      delegate(o);  // a buffered file behind a reused number: the pool reads it afresh
      return true;
    }
    if (res == -EOPNOTSUPP) facts_.forget(fd);  // no NOWAIT here: the next read asks fcntl
    if (res >= 0 || res == -EAGAIN || res == -EOPNOTSUPP) {
      waiting_.push(o);  // O_DIRECT after all: again, allowed to wait this time
      return true;
    }
    return false;
  }

  void delegate(op& o) { pool_.push(o); }

  // io_submit refused ops (EAGAIN: the context is full, or the kernel is short of memory) and
  // none is in the kernel, so no completion will come to wake the loop: it must not sleep longer
  // than k_resubmit_after before it submits them again.
  static constexpr std::chrono::milliseconds k_resubmit_after{1};
  bool submit_refused() const noexcept { return !waiting_.empty() && in_kernel_ == 0; }

  void fill(iocb& cb, op& o) const noexcept {
    const op_args& a = A::args(o);
    std::memset(&cb, 0, sizeof cb);
    cb.aio_data = reinterpret_cast<std::uintptr_t>(&o);
    cb.aio_fildes = static_cast<std::uint32_t>(a.fd);
    cb.aio_offset = static_cast<std::int64_t>(a.offset);
    cb.aio_flags = IOCB_FLAG_RESFD;
    cb.aio_resfd = static_cast<std::uint32_t>(event_fd_);
    if ((A::flags(o) & k_nowait) != 0) cb.aio_rw_flags = RWF_NOWAIT;
    switch (o.code()) {
      case op_code::read: cb.aio_lio_opcode = IOCB_CMD_PREAD; break;
      case op_code::write: cb.aio_lio_opcode = IOCB_CMD_PWRITE; break;
      case op_code::readv: cb.aio_lio_opcode = IOCB_CMD_PREADV; break;
      case op_code::writev: cb.aio_lio_opcode = IOCB_CMD_PWRITEV; break;
      case op_code::fsync: cb.aio_lio_opcode = IOCB_CMD_FSYNC; break;
      default: cb.aio_lio_opcode = IOCB_CMD_FDSYNC; break;
    }
    if (o.code() == op_code::readv || o.code() == op_code::writev) {
      cb.aio_buf = reinterpret_cast<std::uintptr_t>(a.iov);
      cb.aio_nbytes = static_cast<std::uint64_t>(a.iovcnt);
    } else {
      cb.aio_buf = reinterpret_cast<std::uintptr_t>(a.buf);
      cb.aio_nbytes = a.len;
    }
  }

  // Submits as many waiting ops as there are free slots; returns how many failed at once.
  std::size_t submit_waiting() {
    std::size_t failed = 0;
    while (!waiting_.empty() && !free_.empty()) {
      iocb* batch[64];
      op* ops[64];
      long n = 0;
      while (n < 64 && !waiting_.empty() && !free_.empty()) {
        op* o = waiting_.pop();
        unsigned slot = free_.back();
        free_.pop_back();
        A::word(*o) = slot;
        fill(slots_[slot], *o);
        batch[n] = &slots_[slot];
        ops[n++] = o;
      }
      long i = 0;
      while (i < n) {
        long r = io_submit(ctx_, n - i, batch + i);
        if (r > 0) {
          for (long k = i; k < i + r; ++k) set_flag(*ops[k], k_in_kernel);
          in_kernel_ += static_cast<std::size_t>(r);
          i += r;
          continue;
        }
        int e = r == 0 ? EAGAIN : errno;
        if (e == EINTR) continue;
        if (e == EAGAIN) break;  // the context is full: the rest wait for the next turn
        // The first iocb was refused (EINVAL for an fsync the file system cannot do, EBADF,
        // EOPNOTSUPP for RWF_NOWAIT on a file that cannot honour it...).
        release(*ops[i]);
        if (recheck(*ops[i], -e)) {
          // sent again or to the pool
        } else if (e == EINVAL && (ops[i]->code() == op_code::fsync || ops[i]->code() == op_code::fdatasync)) {
          delegate(*ops[i]);
        } else {
          env_.complete(*ops[i], -e);
          ++failed;
        }
        ++i;
      }
      if (i < n) {
        // Put the unsubmitted ones back at the front, in order.
        op_queue rest;
        for (long k = i; k < n; ++k) {
          release(*ops[k]);
          rest.push(*ops[k]);
        }
        rest.splice(waiting_);
        waiting_.splice(rest);
        break;
      }
    }
    return failed;
  }

  std::size_t complete_nops() {
    std::size_t n = nops_.size();
    while (op* o = nops_.pop()) env_.complete(*o, 0);
    return n;
  }

  void release(op& o) { free_.push_back(static_cast<unsigned>(A::word(o))); }

  void finish_event(const io_event& ev) {
    op& o = *reinterpret_cast<op*>(static_cast<std::uintptr_t>(ev.data));
    A::flags(o) &= static_cast<std::uint8_t>(~k_in_kernel);
    --in_kernel_;
    release(o);
    if (!recheck(o, ev.res)) env_.complete(o, ev.res);
  }

  // Reaps up to `max` completions without waiting. Returns how many came back (a read sent
  // again or rerouted counts: the turn did work).
  std::size_t reap(std::size_t max) {
    if (in_kernel_ == 0 || max == 0) return 0;
    std::size_t total = 0;
    while (total < max) {
      io_event evs[64];
      timespec zero{};
      long want = static_cast<long>(std::min<std::size_t>(max - total, 64));
      long n = io_getevents(ctx_, 0, want, evs, &zero);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      for (long i = 0; i < n; ++i) finish_event(evs[i]);
      total += static_cast<std::size_t>(n);
      if (n < want) break;
    }
    return total;
  }

  std::size_t drain_pool() { return pool_.drain(); }

  void clear_eventfd() noexcept {
    std::uint64_t v;
    (void)::read(event_fd_, &v, sizeof v);
  }

  backend_env& env_;
  reactor reactor_;
  delegation pool_;  // ops AIO cannot do, handed to the pool once per turn
  const unsigned depth_;
  const bool buffered_;
  bool stopping_ = false;
  fd_facts facts_;  // O_DIRECT or not, for reads (see the top of the file)
  reap_pacer pacer_;
  aio_context_t ctx_ = 0;
  int event_fd_ = -1;
  unsigned aio_bit_ = 0;
  std::vector<iocb> slots_;
  std::vector<unsigned> free_;
  op_queue waiting_;
  op_queue nops_;
  std::size_t in_kernel_ = 0;
};

std::array<bool, op_code_count> aio_native(const loop_options&) {
  std::array<bool, op_code_count> a{};
  for (const op_traits& t : k_op_traits)
    a[static_cast<std::size_t>(t.code)] = t.kernel_aio || reactor_native(t.code);
  return a;
}

}  // namespace

extern const backend_descriptor linux_aio_descriptor = {
    "linux_aio",
    probe_aio,
    aio_native,
    [](backend_env& env) -> std::unique_ptr<backend> { return std::make_unique<linux_aio_backend>(env); },
};

}  // namespace unio::detail
