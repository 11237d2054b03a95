// The io_uring backend: every operation is an SQE on one ring per loop, and the ring is what the
// loop sleeps on. Built on liburing 2.3 (Debian 12); newer kernel features are used by raw value
// where liburing 2.3 does not name them.
//
// The backend's parts: io_uring_probe (what the kernel can do: availability and which opcodes
// are native), io_uring_registered (registered buffers and files), io_uring_splice (sendfile),
// io_uring_msg (the msghdr of sendto and recvfrom); this file is the ring and an op's way through it.
//
// Design choices, with the kernel versions that drive them:
//  - Availability: see io_uring_probe.hpp. Every opcode the probe lacks is delegated to the
//    loop's thread pool; native() reports which. IORING_OP_FTRUNCATE (6.9) is opcode 55 by number
//    (liburing 2.3 stops at 48).
//  - Setup flags, best first, falling back when setup says EINVAL:
//      [R_DISABLED|SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG|SUBMIT_ALL|CLAMP  (6.1), opt-in]
//      COOP_TASKRUN|TASKRUN_FLAG|SUBMIT_ALL|CLAMP                            (5.19), default
//      CLAMP                                                                  (older)
//    SINGLE_ISSUER|DEFER_TASKRUN (loop_options::io_uring_defer_taskrun) binds the ring to one
//    task, while a loop may be constructed on one thread, run on another and destroyed on a
//    third. The ring is then created disabled (R_DISABLED) and enabled by the first poll(),
//    which binds it to the loop's thread (IORING_REGISTER_ENABLE_RINGS, by raw register call:
//    liburing 2.3's .so does not export io_uring_enable_rings). submit() never enters the kernel
//    before that: a full SQ queues ops internally. A later poll() or shutdown() from another
//    thread while no op is inside the kernel recreates the ring on that thread (pending SQEs are
//    prepared again). With ops inside the kernel the kernel refuses every other thread (EEXIST),
//    and requests of an exited thread are not completed until the ring is torn down (checked on
//    6.18: nothing is posted), so that misuse aborts with a message. Because a server that stops
//    its worker loops with accepts pending and destroys them from main would hit exactly that,
//    the default is COOP_TASKRUN, which any thread may drive.
//  - One enter per turn: poll() submits everything queued and waits in one
//    io_uring_submit_and_wait_timeout (EXT_ARG); poll(0) submits and reaps without sleeping.
//  - Wake-ups: wake() writes an eventfd that the ring watches with a re-armed POLL_ADD; the
//    thread pool's eventfd is watched the same way, using its prepare_sleep/after_sleep protocol.
//  - Never drop: a full SQ is flushed with io_uring_submit and, if still full (or EBUSY/EAGAIN),
//    the op waits in a backlog, never failed. CQ overflow: NODROP keeps overflowed CQEs in the
//    kernel; reap() re-enters with GETEVENTS while IORING_SQ_CQ_OVERFLOW (or the deferred
//    task-run flag) is set. EINTR is retried; EAGAIN/EBUSY reap first, then wait.
//  - user_data is the op's address (ops are at least 8-byte aligned) with a 3-bit tag in the low
//    bits for the ring's own SQEs: cancel requests, wake and pool polls, and ops whose SQE was
//    turned into a NOP because they were cancelled before the kernel saw them.
//  - Cancel. An op whose SQE is still in the SQ has its SQE rewritten into a NOP and completes
//    with ECANCELED without ever running (spec item 5). An op inside the kernel gets an
//    IORING_OP_ASYNC_CANCEL keyed by its user_data; it then completes exactly once, with
//    ECANCELED or with its own result if it won the race. The cancel SQE's own CQE is ignored.
//  - Positioned I/O on pipes, sockets and other streams. pread/pwrite answer ESPIPE, but
//    io_uring ignores the offset of a stream file (FMODE_STREAM) and transfers data. So the
//    first positioned read/write on an fd checks it with lseek(SEEK_CUR); an ESPIPE fd fails
//    the op with ESPIPE (as every other backend does), a seekable one is remembered until a
//    close op on it or an open/accept op returning that number. An fd closed and reused behind
//    the loop's back may therefore keep a stale "seekable" mark (the op then reads the stream).
//  - Delegation. Ops whose opcode the probe lacks, reads/writes at the current position of a
//    file or device (io_uring leaves the position unmoved when the file system completes one
//    asynchronously: O_DIRECT, FUSE), and file ops the kernel answers with EOPNOTSUPP at completion
//    (an io_uring limitation on that file; nothing was done, so the pool may redo it) run on the
//    loop's thread pool. EINVAL is never retried: the probe already showed that the opcode
//    exists, so EINVAL is the kernel's verdict on the arguments, the same the syscall would give.
//  - sendfile is native: SPLICE file -> pipe -> socket (io_uring_splice.hpp).
//  - sendto and recvfrom are SENDMSG and RECVMSG with a msghdr the backend keeps for the op
//    (io_uring_msg.hpp); sendmsg and recvmsg pass the caller's. Sends carry MSG_NOSIGNAL, and
//    recvmsg MSG_CMSG_CLOEXEC, as on every backend.
//
// Diagnostic options (loop_options): io_uring_delegate names ops that run on the pool although the
// kernel has their opcode, so the delegation path can be compared and tested (the conformance
// suite runs whole through it, variant io_uring_delegate). The environment variable
// UNIO_IO_URING_REFUSE="sqpoll,restrict" is a test knob: setup then answers as a kernel that
// refuses those options would (EPERM, EINVAL), so the error paths can be tested on a kernel that
// accepts them. Nothing else is read from the environment.
//
// Options and registrations (docs/design.md has when to use them):
//  - SQPOLL (loop_options::io_uring_sqpoll_idle_ms, any kernel with io_uring; unprivileged since
//    5.11). liburing's submit sets IORING_ENTER_SQ_WAKEUP when the poller sleeps. The kernel
//    thread may read a published SQE at any time: cancel rewrites only unpublished SQEs (the
//    others get ASYNC_CANCEL), shutdown drops only unpublished ones, and a CQE that arrives
//    before the SQ head moved frees its slot itself (untrack). SQPOLL refuses COOP_TASKRUN and
//    DEFER_TASKRUN, so only the plain mode sets up with it. A refusal is an exception naming
//    the option, never a silent ring without it.
//  - Restrictions (loop_options::io_uring_restrict, 5.10): the ring is set up R_DISABLED,
//    IORING_REGISTER_RESTRICTIONS allows unio's opcodes, IOSQE_FIXED_FILE and the buffer/file
//    register calls, then ENABLE_RINGS (a SINGLE_ISSUER ring is enabled by its first poll, as
//    before). Other opcodes complete with -EACCES.
//  - Fixed buffers and files (loop::register_buffers/register_files, io_uring_registered.hpp):
//    applied when an SQE is prepared. Unregistering turns SQEs still in the SQ back into their plain
//    form; closing a registered fd through the loop empties its table slot once the close has
//    completed; everything is registered again on a recreated ring.
//
// Not done yet (later work): native linked SQEs (the loop keeps chains and link timeouts for
// every backend, src/loop.cpp), multishot accept/recv, provided buffers.
#include <liburing.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backend.hpp"
#include "delegation.hpp"
#include "io_uring_cold_reader.hpp"
#include "io_uring_cold_reads.hpp"
#include "io_uring_msg.hpp"
#include "io_uring_probe.hpp"
#include "io_uring_registered.hpp"
#include "io_uring_splice.hpp"
#include "reap_pacer.hpp"
#include "sys/syscalls.hpp"

namespace unio::detail {
namespace {

// IORING_OP_FTRUNCATE (Linux 6.9); liburing 2.3 has no name for it.
constexpr unsigned k_op_ftruncate = 55;

// ---- user_data tags (low 3 bits) ----
constexpr std::uint64_t k_tag_mask = 7;
constexpr std::uint64_t k_tag_op = 0;            // an op's SQE
constexpr std::uint64_t k_tag_op_cancelled = 1;  // an op's SQE rewritten into a NOP by cancel
constexpr std::uint64_t k_tag_cancel = 2;        // an ASYNC_CANCEL request: its CQE is ignored
constexpr std::uint64_t k_tag_wake = 3;          // POLL_ADD on the wake eventfd
constexpr std::uint64_t k_tag_pool = 4;          // POLL_ADD on the thread pool's eventfd
constexpr std::uint64_t k_tag_ignore = 5;        // a dropped SQE (shutdown); also LIBURING_UDATA_TIMEOUT (7)
constexpr std::uint64_t k_tag_raw = 6;           // test_hook("raw_sqe"): its result is kept
constexpr std::uint64_t k_cold_poll = k_tag_pool | 8;  // POLL_ADD on the cold reader's eventfd (tagged as the pool's)
// op flag: the op's SQE is a POLL_ADD(POLLOUT); the write itself follows from user space.
constexpr std::uint8_t k_poll_then_write = op_flag::uring_poll_then_write;
// op flag of a buffered read tried inline whose outcome teaches the cold-read router
// (io_uring_cold_reads.hpp).
constexpr std::uint8_t k_learn = op_flag::uring_learn;

// ---- where an op is (op.backend_word_: state in bits 0-3, flags, SQ position in bits 32-63;
// once in the kernel, a k_learn read keeps there the number of the enter that submitted it) ----
constexpr std::uintptr_t k_state_mask = 0xf;
constexpr std::uintptr_t k_backlog = 1;    // waiting for SQ space
constexpr std::uintptr_t k_in_sq = 2;      // SQE prepared, not yet consumed by the kernel
constexpr std::uintptr_t k_in_kernel = 3;  // SQE consumed, CQE not yet reaped
constexpr std::uintptr_t k_delegated = 4;  // queued for the thread pool, or held by it
constexpr std::uintptr_t k_cold = 5;       // with the cold reader (io_uring_cold_reader.hpp)
constexpr std::uintptr_t k_finished = 6;   // result known at submission; handed back by poll()
constexpr std::uintptr_t k_cancel_sent = 0x10;    // SQE rewritten or ASYNC_CANCEL prepared
constexpr std::uintptr_t k_cancel_queued = 0x20;  // ASYNC_CANCEL waiting for SQ space
constexpr std::uintptr_t k_learned_hit = 0x40;    // a k_learn read whose CQE its own enter posted

std::uintptr_t state_of(op& o) noexcept { return A::word(o) & k_state_mask; }
void set_state(op& o, std::uintptr_t s) noexcept { A::word(o) = (A::word(o) & ~k_state_mask) | s; }
std::uint64_t user_data(op& o, std::uint64_t tag) noexcept { return reinterpret_cast<std::uintptr_t>(&o) | tag; }
op& op_of(std::uint64_t ud) noexcept { return *reinterpret_cast<op*>(static_cast<std::uintptr_t>(ud & ~k_tag_mask)); }

// A number per thread, never reused within the process (std::thread::id is: a joined thread's
// id goes to the next thread, which would hide a thread change from the SINGLE_ISSUER check).
std::uint64_t this_thread_serial() noexcept {
  static std::atomic<std::uint64_t> next{1};
  thread_local const std::uint64_t serial = next.fetch_add(1, std::memory_order_relaxed);
  return serial;
}

[[noreturn]] void fatal(const char* what) noexcept {
  std::fprintf(stderr, "unio: io_uring: %s\n", what);
  std::abort();
}

// The io_uring opcode of each unio operation is in its op_traits row, by the kernel's numbers
// (checked here against liburing's names).
static_assert(traits(op_code::nop).uring_opcode == IORING_OP_NOP);
static_assert(traits(op_code::open).uring_opcode == IORING_OP_OPENAT2);
static_assert(traits(op_code::close).uring_opcode == IORING_OP_CLOSE);
static_assert(traits(op_code::read).uring_opcode == IORING_OP_READ);
static_assert(traits(op_code::write).uring_opcode == IORING_OP_WRITE);
static_assert(traits(op_code::readv).uring_opcode == IORING_OP_READV);
static_assert(traits(op_code::writev).uring_opcode == IORING_OP_WRITEV);
static_assert(traits(op_code::fsync).uring_opcode == IORING_OP_FSYNC);
static_assert(traits(op_code::fdatasync).uring_opcode == IORING_OP_FSYNC);
static_assert(traits(op_code::fallocate).uring_opcode == IORING_OP_FALLOCATE);
static_assert(traits(op_code::ftruncate).uring_opcode == static_cast<int>(k_op_ftruncate));
static_assert(traits(op_code::stat).uring_opcode == IORING_OP_STATX);
static_assert(traits(op_code::rename).uring_opcode == IORING_OP_RENAMEAT);
static_assert(traits(op_code::unlink).uring_opcode == IORING_OP_UNLINKAT);
static_assert(traits(op_code::rmdir).uring_opcode == IORING_OP_UNLINKAT);
static_assert(traits(op_code::mkdir).uring_opcode == IORING_OP_MKDIRAT);
static_assert(traits(op_code::accept).uring_opcode == IORING_OP_ACCEPT);
static_assert(traits(op_code::connect).uring_opcode == IORING_OP_CONNECT);
static_assert(traits(op_code::recv).uring_opcode == IORING_OP_RECV);
static_assert(traits(op_code::send).uring_opcode == IORING_OP_SEND);
static_assert(traits(op_code::sendfile).uring_opcode == IORING_OP_SPLICE);
static_assert(traits(op_code::symlink).uring_opcode == IORING_OP_SYMLINKAT);
static_assert(traits(op_code::link).uring_opcode == IORING_OP_LINKAT);
static_assert(traits(op_code::splice).uring_opcode == IORING_OP_SPLICE);
static_assert(traits(op_code::poll).uring_opcode == IORING_OP_POLL_ADD);
static_assert(traits(op_code::sendto).uring_opcode == IORING_OP_SENDMSG);
static_assert(traits(op_code::recvfrom).uring_opcode == IORING_OP_RECVMSG);
static_assert(traits(op_code::sendmsg).uring_opcode == IORING_OP_SENDMSG);
static_assert(traits(op_code::recvmsg).uring_opcode == IORING_OP_RECVMSG);

// Whether an op that io_uring answered with EOPNOTSUPP may be redone on the pool: file ops whose
// syscall path differs from io_uring's (the op_traits row). Socket ops cannot run on the pool;
// fallocate reaches the same vfs_fallocate either way, so its EOPNOTSUPP is final.
bool pool_can_retry(op_code c) noexcept { return traits(c).uring_pool_retry; }

__kernel_timespec to_timespec(std::chrono::nanoseconds d) noexcept {
  if (d.count() < 0) d = std::chrono::nanoseconds(0);
  return {static_cast<long long>(d.count() / 1000000000), static_cast<long long>(d.count() % 1000000000)};
}

// ---------------------------------------------------------------------------------------------
// The backend
// ---------------------------------------------------------------------------------------------

struct setup_mode {
  unsigned flags;
  bool single_issuer;
};
constexpr setup_mode k_modes[] = {
    {IORING_SETUP_R_DISABLED | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
         IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CLAMP,
     true},
    {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CLAMP, false},
    {IORING_SETUP_CLAMP, false},
};

class uring_backend final : public backend {
 public:
  explicit uring_backend(backend_env& env) : env_(env), pool_(env, [this](int) { arm_internal_polls(); }, [this](op& o) {
        complete(o, A::res(o));  // its close and fd bookkeeping
        return true;
      }), cold_(env.options().pool_nice) {
    uring::kernel_report rep = uring::inspect_kernel(env.options().io_uring_delegate);
    if (!rep.why_not.empty()) throw std::system_error(ENOTSUP, std::generic_category(), "unio: io_uring: " + rep.why_not);
    native_ = rep.native;
    entries_ = std::clamp(env.options().queue_depth, 1u, 32768u);
    sqpoll_idle_ms_ = env.options().io_uring_sqpoll_idle_ms;
    restrict_ = env.options().io_uring_restrict;
    // With SQPOLL the kernel's SQ thread makes the inline attempts, never the loop's thread.
    route_reads_ = env.options().io_uring_route_cold_reads && sqpoll_idle_ms_ == 0;
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "unio: io_uring: eventfd");
    try {
      create_ring(env.options().io_uring_defer_taskrun && sqpoll_idle_ms_ == 0 ? 0 : 1);
    } catch (...) {
      ::close(wake_fd_);
      throw;
    }
    arm_internal_polls();
  }

  ~uring_backend() override {
    if (ring_ready_) io_uring_queue_exit(&ring_);
    ::close(wake_fd_);
  }

  std::string_view name() const noexcept override { return "io_uring"; }

  void submit(op& o) override {
    if (!positioned_io_allowed(o)) {
      A::res(o) = -ESPIPE;
      set_state(o, k_finished);
      finished_.push(o);
      return;
    }
    if (o.code() == op_code::close) tables_.closing(o);
    if (wants_pool(o)) {
      set_state(o, k_delegated);
      pool_.push(o);
      return;
    }
    if (send_cold(o)) return;
    if (is_stream_write(o)) set_flag(o, k_poll_then_write);
    if (o.code() == op_code::sendfile) {
      if (int err = splicer_.start(o); err != 0) {
        A::res(o) = -err;
        set_state(o, k_finished);
        finished_.push(o);
        return;
      }
    }
    enqueue(o);
  }

  void cancel(op& o) override {
    if (o.code() == op_code::sendfile && state_of(o) == k_backlog) {
      backlog_.remove(o);
      complete(o, splicer_.finish(o, -ECANCELED));
      return;
    }
    switch (state_of(o)) {
      case k_backlog:
        backlog_.remove(o);
        messages_.release(o);  // prepared once already if a recreated ring sent it back here
        env_.complete(o, -ECANCELED);
        return;
      case k_delegated: pool_.cancel(o); return;
      case k_cold:
        if (cold_.cancel(o)) env_.complete(o, -ECANCELED);
        return;
      case k_finished: return;  // already has its result
      case k_in_sq:
        // With SQPOLL the kernel thread may be reading a published SQE right now: only an SQE
        // not yet published can be rewritten; a published one is cancelled like one inside.
        if (sqpoll_idle_ms_ > 0 && published(o)) {
          if ((A::word(o) & (k_cancel_sent | k_cancel_queued)) == 0) send_cancel(o);
        } else {
          cancel_unsubmitted(o);
        }
        return;
      case k_in_kernel:
        if ((A::word(o) & (k_cancel_sent | k_cancel_queued)) == 0) send_cancel(o);
        return;
      default: return;
    }
  }

  void poll(std::optional<std::chrono::nanoseconds> timeout) override {
    bind_to_this_thread();
    completed_ = 0;
    woken_ = false;
    reap_budget_ = static_cast<unsigned>(std::min<std::size_t>(pacer_.budget(), std::numeric_limits<unsigned>::max()));
    while (op* o = finished_.pop()) complete(*o, A::res(*o));
    flush_queues();
    drain_pool();
    drain_cold();
    reap();
    bool nowait = completed_ > 0 || woken_ || (timeout && timeout->count() <= 0);
    if (!nowait && !pool_.may_sleep()) nowait = true;
    // Whether the ops this enter submits complete during it (page-cache hits) or later (a
    // device, io-wq): only the latter calls for pacing the reaping.
    const unsigned sq_before = io_uring_sq_ready(&ring_);
    const unsigned seen_before = cqes_taken_ + io_uring_cq_ready(&ring_);
    wait_for_events(nowait ? std::optional(std::chrono::nanoseconds(0)) : timeout);
    if (sq_before > 0) pacer_.polled(cqes_taken_ + io_uring_cq_ready(&ring_) - seen_before < sq_before);
    pool_.after_sleep();
    pool_.hand_over();
    drain_pool();
    drain_cold();
    reap_budget_ = std::numeric_limits<unsigned>::max();
  }

  // The ring's fd polls readable when CQEs wait (with DEFER_TASKRUN also for deferred completion
  // work); wake() and the pool reach it through their POLL_ADDs on the ring.
  int host_fd() const noexcept override { return ring_.ring_fd; }
  std::optional<std::chrono::nanoseconds> prepare_host_wait() override {
    bind_to_this_thread();
    completed_ = 0;
    woken_ = false;
    reap_budget_ = std::numeric_limits<unsigned>::max();
    while (op* o = finished_.pop()) complete(*o, A::res(*o));
    reap();
    flush_queues();
    drain_pool();
    drain_cold();
    flush_sq();
    reap();
    // Reaping may have queued SQEs (a sendfile's next splice stage, a stream write that found
    // its socket full again) that nothing submits while the host sleeps: poll() does at once.
    if (completed_ > 0 || woken_ || io_uring_cq_ready(&ring_) > 0 || sq_needs_enter() || !pool_.may_sleep())
      return std::chrono::nanoseconds(0);
    // As wait_for_events: no armed wake poll, or a backlog only SQ space can move, is waited for
    // in short steps.
    if (!wake_armed_ || !backlog_.empty() || !cancel_backlog_.empty()) return std::chrono::milliseconds(1);
    return std::nullopt;
  }

  // A new fd number may be a reused one: what was known about the old file no longer holds.
  void fd_opened(int fd) noexcept override {
    forget_fd(fd);
    tables_.forget(ring_, fd);
  }
  void fd_closing(int fd) noexcept override { forget_fd(fd); }

  void wake() noexcept override {
    std::uint64_t one = 1;
    while (::write(wake_fd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }

  void shutdown() override {
    shutting_down_ = true;
    while (op* o = finished_.pop()) env_.complete(*o, A::res(*o));
    while (op* o = backlog_.pop()) {
      messages_.release(*o);
      env_.complete(*o, -ECANCELED);
    }
    drop_unsubmitted();
    if (held_ > 0) cancel_and_reap_all();
    cold_.stop();
    drain_cold();
    pool_.shutdown();
    splicer_.release_all();  // jobs of sendfile ops completed above without their stage handler
  }

 private:
  // ---- the ring ----

  void create_ring(std::size_t first_mode) {
    int last = EINVAL;
    for (std::size_t m = first_mode; m < std::size(k_modes); ++m) {
      io_uring_params p{};
      p.flags = k_modes[m].flags | extra_setup_flags();
      p.sq_thread_idle = sqpoll_idle_ms_;
      int r = simulated_refusal(p.flags);
      if (r == 0) r = io_uring_queue_init_params(entries_, &ring_, &p);
      if (r == -EINVAL) continue;
      if (r < 0) {
        last = -r;
        break;
      }
      mode_ = m;
      single_issuer_ = k_modes[m].single_issuer;
      features_ = p.features;
      ring_ready_ = true;
      reset_sq_tracking();
      try {
        configure_ring((p.flags & IORING_SETUP_R_DISABLED) != 0);
      } catch (...) {
        io_uring_queue_exit(&ring_);
        ring_ready_ = false;
        throw;
      }
      return;
    }
    throw std::system_error(last, std::generic_category(), "unio: io_uring: " + option_refusal(last));
  }

  unsigned extra_setup_flags() const noexcept {
    return (sqpoll_idle_ms_ > 0 ? IORING_SETUP_SQPOLL : 0u) | (restrict_ ? IORING_SETUP_R_DISABLED : 0u);
  }

  // Why setup failed, naming the loop option the kernel refused (the plain ring worked in the
  // probe, so an option it refuses is the cause).
  std::string option_refusal(int err) const {
    std::string why = std::strerror(err);
    if (sqpoll_idle_ms_ > 0)
      return "SQPOLL refused by the kernel (" + why +
             "; before Linux 5.11 it needs CAP_SYS_ADMIN): set loop_options::io_uring_sqpoll_idle_ms = 0";
    if (restrict_)
      return "a disabled ring for restrictions refused by the kernel (" + why +
             "; needs Linux 5.10): set loop_options::io_uring_restrict = false";
    return err == EINVAL ? std::string("no setup flags accepted") : uring::setup_refusal(err);
  }

  // The UNIO_IO_URING_REFUSE test knob ("sqpoll", "restrict"): setup answers as a kernel that
  // refuses the option would (EPERM for SQPOLL as before Linux 5.11, EINVAL for R_DISABLED).
  static int simulated_refusal(unsigned flags) {
    const char* env = std::getenv("UNIO_IO_URING_REFUSE");
    if (env == nullptr) return 0;
    std::string v = env;
    if ((flags & IORING_SETUP_SQPOLL) != 0 && v.find("sqpoll") != std::string::npos) return -EPERM;
    if ((flags & IORING_SETUP_R_DISABLED) != 0 && v.find("restrict") != std::string::npos) return -EINVAL;
    return 0;
  }

  // After setup: restrictions (only possible while the ring is disabled), enabling, and the
  // registrations of the loop (again, when the ring is recreated). SINGLE_ISSUER rings stay
  // disabled until the first poll() binds them to the loop's thread.
  void configure_ring(bool disabled) {
    if (restrict_) register_restrictions();
    if (disabled && !single_issuer_) {
      int r = io_uring_register(static_cast<unsigned>(ring_.ring_fd), IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
      if (r < 0) throw std::system_error(-r, std::generic_category(), "unio: io_uring: IORING_REGISTER_ENABLE_RINGS");
    }
    tables_.register_again(ring_);
  }

  // The restrictions are uring::restrictions(native_).
  void register_restrictions() {
    std::vector<io_uring_restriction> res = uring::restrictions(native_);
    int r = io_uring_register(static_cast<unsigned>(ring_.ring_fd), IORING_REGISTER_RESTRICTIONS, res.data(),
                              static_cast<unsigned>(res.size()));
    if (r < 0)
      throw std::system_error(-r, std::generic_category(),
                              std::string("unio: io_uring: IORING_REGISTER_RESTRICTIONS refused (") + std::strerror(-r) +
                                  "; needs Linux 5.10): set loop_options::io_uring_restrict = false");
  }

  void reset_sq_tracking() {
    unsigned n = ring_.sq.ring_entries;
    slot_op_.assign(n, nullptr);
    slot_how_.assign(n, ::open_how{});
    seen_head_ = ring_.sq.sqe_tail;
    dropped_seen_ = IO_URING_READ_ONCE(*ring_.cq.koverflow);
    wake_armed_ = false;
    pool_armed_ = false;
    owner_ = 0;
    learn_in_sq_ = 0;
    learn_bytes_ = 0;
    cold_armed_ = false;
  }

  bool on_owner_thread() const noexcept { return !single_issuer_ || owner_ == this_thread_serial(); }

  // SINGLE_ISSUER rings are enabled by the first thread that needs to enter the kernel. A later
  // thread change is honoured by recreating the ring while no op is inside the kernel.
  void bind_to_this_thread() {
    if (on_owner_thread()) return;
    if (owner_ == 0) {
      enable_ring();
      return;
    }
    if (held_ - in_sq_ > 0) fatal("loop used from a second thread while ops are inside the kernel (SINGLE_ISSUER ring)");
    recreate_ring();
  }

  void enable_ring() {
    int r = io_uring_register(static_cast<unsigned>(ring_.ring_fd), IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
    if (r < 0) throw std::system_error(-r, std::generic_category(), "unio: io_uring: IORING_REGISTER_ENABLE_RINGS");
    owner_ = this_thread_serial();
  }

  // Moves the not yet submitted ops to a fresh ring bound to this thread.
  void recreate_ring() {
    std::vector<op*> pending;
    for (unsigned pos = seen_head_; pos != ring_.sq.sqe_tail; ++pos)
      if (op* o = slot_op_[pos & ring_.sq.ring_mask]) pending.push_back(o);
    for (op* o : pending) untrack(*o);
    in_sq_ = 0;
    io_uring_queue_exit(&ring_);
    ring_ready_ = false;
    create_ring(mode_);
    if (single_issuer_) enable_ring();
    arm_internal_polls();
    // They were submitted before the ops already in the backlog, so they go in front of them.
    op_queue again;
    for (op* o : pending) {
      if ((A::word(*o) & k_cancel_sent) != 0) {
        messages_.release(*o);
        env_.complete(*o, -ECANCELED);
        continue;
      }
      A::word(*o) = k_backlog;
      again.push(*o);
    }
    again.splice(backlog_);
    backlog_.splice(again);
    flush_queues();
  }

  // ---- SQEs ----

  // A free SQE; a full SQ is flushed first when this thread may enter the ring. nullptr: still
  // full (the caller queues and retries on the next turn).
  io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe != nullptr || !on_owner_thread()) return sqe;
    flush_sq();
    return io_uring_get_sqe(&ring_);
  }

  void flush_sq() {
    for (;;) {
      const std::uint64_t began = begin_enter();
      int r = io_uring_submit(&ring_);
      note_consumed(began);
      if (r == -EINTR) continue;
      if (r >= 0 || r == -EAGAIN || r == -EBUSY) return;  // what is left stays in the SQ
      check_enter_error(r);
      return;
    }
  }

  // SQEs that reach the kernel only through another io_uring_enter: unpublished ones, and
  // without SQPOLL (whose thread consumes published SQEs by itself) published ones a submit left.
  bool sq_needs_enter() const noexcept {
    if (ring_.sq.sqe_tail != ring_.sq.sqe_head) return true;
    return sqpoll_idle_ms_ == 0 && io_uring_sq_ready(&ring_) > 0;
  }

  void check_enter_error(int r) {
    if (r == -EEXIST) fatal("ring entered from a thread other than the loop's (SINGLE_ISSUER)");
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ETIME) {
      std::fprintf(stderr, "unio: io_uring: io_uring_enter: %s\n", std::strerror(-r));
      std::abort();
    }
  }

  // Every io_uring_enter that may submit or post CQEs starts a new number, so a k_learn read can
  // tell whether its CQE came from the enter that submitted it. Returns the enter's start time
  // when k_learn reads are in the SQ (0 otherwise: no clock read on other turns).
  std::uint64_t begin_enter() noexcept {
    if (++enter_seq_ == 0) enter_seq_ = 1;  // 0 marks "learned nothing" in a read's stamp
    return learn_in_sq_ > 0 ? now_ns() : 0;
  }

  // Ops whose SQE the kernel has consumed are now inside the kernel (their SQE slot is free).
  // `began`: begin_enter()'s time for the enter that consumed them. A k_learn read is stamped with
  // the enter's number, or with 0 when the enter took longer than inline copies could (it waited,
  // so a CQE it posted may be a miss that the device answered meanwhile).
  void note_consumed(std::uint64_t began = 0) noexcept {
    unsigned head = io_uring_smp_load_acquire(ring_.sq.khead);
    bool waited = false;
    if (began != 0) waited = now_ns() - began > k_inline_enter_ns + learn_bytes_;
    for (; seen_head_ != head; ++seen_head_) {
      op*& slot = slot_op_[seen_head_ & ring_.sq.ring_mask];
      if (slot == nullptr) continue;
      set_state(*slot, k_in_kernel);
      if (has_flag(*slot, k_learn)) {
        std::uint32_t stamp = waited ? 0 : enter_seq_;
        A::word(*slot) = (A::word(*slot) & 0xffffffffu) | (static_cast<std::uintptr_t>(stamp) << 32);
        if (learn_in_sq_ > 0) --learn_in_sq_;
      }
      slot = nullptr;
      --in_sq_;
    }
    if (learn_in_sq_ == 0) learn_bytes_ = 0;
    if (began != 0 && !waited) mark_inline_hits();
  }

  // The CQEs in the ring right after an enter: those of k_learn reads this enter submitted were
  // posted inline. Marked now, because they may be reaped only after later enters (the reap
  // pacer takes a few per turn while other ops wait on a device).
  void mark_inline_hits() noexcept {
    unsigned head;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      if ((cqe->user_data & k_tag_mask) != k_tag_op) continue;
      op& o = op_of(cqe->user_data);
      if (has_flag(o, k_learn) && static_cast<std::uint32_t>(A::word(o) >> 32) == enter_seq_) A::word(o) |= k_learned_hit;
    }
  }

  static std::uint64_t now_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000u + static_cast<std::uint64_t>(ts.tv_nsec);
  }

  // Reads and writes at the current position of a stream stay on the ring even when
  // delegation is asked for: the pool cannot wait for readiness (a worker would block, or get
  // EAGAIN on a non-blocking fd). READ and WRITE are required opcodes; READV/WRITEV are in every
  // kernel that has io_uring (5.1), and so is RW_CUR_POS in every kernel with EXT_ARG (5.11).
  // Those at the current position of a file or device go to the pool: io_uring moves the file
  // position only when the transfer completes inside the call that issues it, so one that the
  // file system finishes asynchronously (O_DIRECT on ext4 or xfs, FUSE) leaves the position where
  // it was, and the next read at the current position reads the same bytes again.
  bool wants_pool(op& o) noexcept {
    if (is_transfer(o.code()) && A::args(o).offset == current_position) return !needs_readiness(o, env_);
    return !native_[static_cast<std::size_t>(o.code())];
  }

  // Gives `o` an SQE now, or queues it in the backlog when the SQ is full.
  void enqueue(op& o) {
    io_uring_sqe* sqe = backlog_.empty() ? get_sqe() : nullptr;
    if (sqe == nullptr) {
      set_state(o, k_backlog);
      backlog_.push(o);
      return;
    }
    place(sqe, o);
  }

  // A write at the current position of a stream: a pipe or socket whose reader is gone raises
  // SIGPIPE in whichever context the kernel runs it -- with io_uring that can be task work run on return
  // from any syscall of the loop's thread, where unio cannot block the signal. So such writes
  // wait for POLLOUT on the ring and are then made from user space with SIGPIPE blocked
  // (sys::attempt_nonblocking), the same way on every backend. send() is not affected: it
  // carries MSG_NOSIGNAL.
  bool is_stream_write(op& o) noexcept {
    return is_write(o.code()) && needs_readiness(o, env_);
  }

  // The POLLOUT stage of a stream write finished: try the write, or wait again.
  void on_poll_write_ready(op& o, std::int32_t poll_res) {
    if (poll_res < 0 || shutting_down_) {
      complete(o, poll_res < 0 ? poll_res : -ECANCELED);
      return;
    }
    std::int64_t r = sys::attempt_nonblocking(o);
    if (r == -EAGAIN) enqueue(o);
    else complete(o, r);
  }

  void place(io_uring_sqe* sqe, op& o) {
    unsigned index = static_cast<unsigned>(sqe - ring_.sq.sqes);
    prep(sqe, o, slot_how_[index]);
    if (has_flag(o, k_learn)) {
      ++learn_in_sq_;
      learn_bytes_ += requested_bytes(o);
    }
    if (o.code() == op_code::sendfile) splicer_.prep(sqe, o);
    if (uring::msg_headers::needs_header(o.code())) messages_.prep(sqe, o);
    if ((A::flags(o) & k_poll_then_write) == 0 && !tables_.empty()) tables_.apply(sqe, o);
    sqe->user_data = user_data(o, k_tag_op);
    unsigned pos = ring_.sq.sqe_tail - 1;  // the SQE just taken
    A::word(o) = (static_cast<std::uintptr_t>(pos) << 32) | k_in_sq;
    slot_op_[index] = &o;
    link(o);
    ++in_sq_;
  }

  // A positioned read of a buffered file: inline (perhaps learned from), or to the cold reader
  // (io_uring_cold_reads.hpp). true: it went to the cold reader.
  bool send_cold(op& o) {
    clear_flag(o, k_learn);
    const op_args& a = A::args(o);
    if (!route_reads_ || !is_read(o.code()) || a.offset == current_position || !buffered_file(a.fd)) return false;
    auto answer = [&] {
      int c = sys::pages_cached(a.fd, a.offset, requested_bytes(o));
      return c < 0 ? uring::cache_answer::unknown : c == 1 ? uring::cache_answer::cached : uring::cache_answer::not_cached;
    };
    switch (router_.pick(a.fd, answer)) {
      case uring::read_route::inline_learn: set_flag(o, k_learn); return false;
      case uring::read_route::inline_plain: return false;
      case uring::read_route::async: break;
    }
    if (!cold_.start()) return false;  // no thread or ring for it: inline, as io_uring would
    if (!cold_armed_) cold_armed_ = arm_poll(cold_.event_fd(), k_cold_poll);
    ++reads_sent_cold_;
    set_state(o, k_cold);
    cold_.push(o);
    return true;
  }

  void drain_cold() {
    if (cold_.outstanding() == 0) return;
    op_queue done = cold_.take_finished();
    while (op* o = done.pop()) complete(*o, A::res(*o));
  }

  // The outcome of a k_learn read: a hit when its CQE was posted by the enter that submitted it
  // (the kernel posts inline completions before the enter returns) and that enter did not wait.
  void learn(op& o, std::int32_t res, bool cancelled) noexcept {
    const bool hit = !cancelled && res >= 0 && (A::word(o) & k_learned_hit) != 0;
    if (!cancelled) router_.learned(A::args(o).fd, hit);
  }

  // Fills `sqe` for `o`. `how` is SQE-slot storage for openat2, which the kernel copies when it
  // consumes the SQE.
  static void prep(io_uring_sqe* sqe, op& o, ::open_how& how) {
    const op_args& a = A::args(o);
    std::uint64_t off = a.offset == current_position ? ~std::uint64_t{0} : a.offset;
    auto len32 = static_cast<unsigned>(std::min(a.len, k_max_rw));
    if ((A::flags(o) & k_poll_then_write) != 0) {
      io_uring_prep_poll_add(sqe, a.fd, POLLOUT);
      return;
    }
    if (has_flag(o, op_flag::uring_splice_wait)) return prep_splice_wait(sqe, a);
    switch (o.code()) {
      case op_code::nop: io_uring_prep_nop(sqe); break;
      case op_code::open:
        how = ::open_how{};
        how.flags = static_cast<std::uint64_t>(a.flags) | O_CLOEXEC;
        // openat2 rejects a mode without O_CREAT/O_TMPFILE (EINVAL); open(2) ignores it.
        if ((a.flags & O_CREAT) != 0 || (a.flags & O_TMPFILE) == O_TMPFILE) how.mode = a.mode;
        how.resolve = a.resolve;
        io_uring_prep_openat2(sqe, a.dirfd, a.path, &how);
        break;
      case op_code::close: io_uring_prep_close(sqe, a.fd); break;
      case op_code::read: io_uring_prep_read(sqe, a.fd, a.buf, len32, off); break;
      case op_code::write: io_uring_prep_write(sqe, a.fd, a.buf, len32, off); break;
      case op_code::readv:
        io_uring_prep_readv(sqe, a.fd, static_cast<const iovec*>(a.iov), static_cast<unsigned>(a.iovcnt), off);
        break;
      case op_code::writev:
        io_uring_prep_writev(sqe, a.fd, static_cast<const iovec*>(a.iov), static_cast<unsigned>(a.iovcnt), off);
        break;
      case op_code::fsync: io_uring_prep_fsync(sqe, a.fd, 0); break;
      case op_code::fdatasync: io_uring_prep_fsync(sqe, a.fd, IORING_FSYNC_DATASYNC); break;
      case op_code::fallocate:
        io_uring_prep_fallocate(sqe, a.fd, static_cast<int>(a.flags), static_cast<off_t>(a.offset),
                                static_cast<off_t>(a.len));
        break;
      case op_code::ftruncate: io_uring_prep_rw(static_cast<int>(k_op_ftruncate), sqe, a.fd, nullptr, 0, a.offset); break;
      case op_code::stat:
        io_uring_prep_statx(sqe, a.dirfd, a.path, static_cast<int>(a.flags), a.mode, static_cast<struct statx*>(a.out));
        break;
      case op_code::rename:
        io_uring_prep_renameat(sqe, a.dirfd, a.path, a.dirfd2, a.path2, a.flags);
        break;
      case op_code::unlink:
      case op_code::rmdir: io_uring_prep_unlinkat(sqe, a.dirfd, a.path, static_cast<int>(a.flags)); break;
      case op_code::mkdir: io_uring_prep_mkdirat(sqe, a.dirfd, a.path, a.mode); break;
      case op_code::accept:
        io_uring_prep_accept(sqe, a.fd, static_cast<sockaddr*>(a.out), reinterpret_cast<socklen_t*>(a.addrlen),
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
      case op_code::connect:
        io_uring_prep_connect(sqe, a.fd, static_cast<const sockaddr*>(a.out), a.addrlen_in);
        break;
      case op_code::recv: io_uring_prep_recv(sqe, a.fd, a.buf, len32, static_cast<int>(a.flags)); break;
      case op_code::send:
        io_uring_prep_send(sqe, a.fd, a.buf, len32, static_cast<int>(a.flags) | MSG_NOSIGNAL);
        break;
      case op_code::sendfile: break;  // splicer_.prep() fills the SQE of the op's current stage
      case op_code::sendto:
      case op_code::recvfrom: break;  // messages_.prep() fills the SQE with the op's msghdr
      case op_code::sendmsg:
        io_uring_prep_sendmsg(sqe, a.fd, static_cast<const msghdr*>(a.buf), a.flags | MSG_NOSIGNAL);
        break;
      case op_code::recvmsg:
        io_uring_prep_recvmsg(sqe, a.fd, static_cast<msghdr*>(a.buf), a.flags | MSG_CMSG_CLOEXEC);
        break;
      case op_code::symlink: io_uring_prep_symlinkat(sqe, a.path, a.dirfd2, a.path2); break;
      case op_code::link:
        io_uring_prep_linkat(sqe, a.dirfd, a.path, a.dirfd2, a.path2, static_cast<int>(a.flags));
        break;
      case op_code::splice:
        io_uring_prep_splice(sqe, a.fd_in, a.offset == current_position ? -1 : static_cast<std::int64_t>(a.offset),
                             a.fd, a.resolve == current_position ? -1 : static_cast<std::int64_t>(a.resolve), len32,
                             a.flags);
        break;
      case op_code::poll: io_uring_prep_poll_add(sqe, a.fd, a.mode); break;
      default:
        // Ops without an opcode in their op_traits row run on the pool and never get an SQE;
        // timeouts never reach a backend.
        assert(traits(o.code()).uring_opcode < 0 && "an op_traits row names an opcode that prep() lacks");
        io_uring_prep_nop(sqe);
        break;
    }
  }

  // SPLICE on a non-blocking pipe answers -EAGAIN (Linux 6.18 too) instead of waiting: the op then
  // polls on the ring for its input pipe to be readable or, when that one is, its output to be
  // writable (a regular file is always ready), and splices again.
  static void prep_splice_wait(io_uring_sqe* sqe, const op_args& a) {
    pollfd p{a.fd_in, POLLIN, 0};
    if (::poll(&p, 1, 0) == 0) io_uring_prep_poll_add(sqe, a.fd_in, POLLIN);
    else io_uring_prep_poll_add(sqe, a.fd, POLLOUT);
  }

  // A splice's CQE: its POLL_ADD stage is over (splice again), or the splice found its pipe busy.
  bool splice_waits(op& o, std::int32_t res, bool cancel_asked) {
    bool waited = has_flag(o, op_flag::uring_splice_wait);
    clear_flag(o, op_flag::uring_splice_wait);
    bool stop = cancel_asked || shutting_down_;
    if (!waited && res != -EAGAIN) return false;  // its result, as any op's
    // A cancel that raced the splice (its ASYNC_CANCEL found nothing to stop) still wins when
    // the splice moved nothing: EAGAIN is not a result the caller asked for.
    if (stop || (waited && res < 0)) {
      complete(o, stop ? -ECANCELED : res);
      return true;
    }
    if (!waited) set_flag(o, op_flag::uring_splice_wait);
    enqueue(o);
    return true;
  }

  // POLL_ADD's result is the mask its wake-up carried, which may name events that do not hold (a
  // socket's data wakes waiters with POLLIN|POLLPRI): the events that hold now, as every other
  // backend reports them (poll(2) with a zero timeout), unless they are gone already.
  static std::int32_t poll_events_now(op& o, std::int32_t res) noexcept {
    pollfd p{A::args(o).fd, static_cast<short>(A::args(o).mode), 0};
    if (::poll(&p, 1, 0) != 1 || (p.revents & POLLNVAL) != 0) return res;
    return static_cast<std::uint16_t>(p.revents);
  }

  // ---- registered buffers and files (loop::register_buffers/register_files) ----

  std::error_code set_buffers(std::span<const iovec> bufs) override {
    if (bufs.empty()) unfix_unconsumed_sqes();
    return tables_.set_buffers(ring_, bufs);
  }

  std::error_code set_files(std::span<const int> fds) override {
    if (fds.empty()) unfix_unconsumed_sqes();
    return tables_.set_files(ring_, fds);
  }

  // Before unregistering: SQEs that still wait in the SQ go back to their plain form (they
  // would otherwise reach the kernel after the table is gone and fail). With SQPOLL the kernel
  // thread is first given a moment to consume what was published already.
  void unfix_unconsumed_sqes() {
    unsigned from = seen_head_;
    if (sqpoll_idle_ms_ > 0) {
      flush_sq();
      for (int i = 0; i < 100000 && io_uring_smp_load_acquire(ring_.sq.khead) != ring_.sq.sqe_head; ++i)
        std::this_thread::yield();
      note_consumed();
      from = ring_.sq.sqe_head;
    }
    for (unsigned pos = from; pos != ring_.sq.sqe_tail; ++pos) {
      op* o = slot_op_[pos & ring_.sq.ring_mask];
      if (o == nullptr || (A::word(*o) & k_cancel_sent) != 0) continue;
      uring::registered_tables::undo(&ring_.sq.sqes[pos & ring_.sq.ring_mask], *o);
    }
  }

  // ---- test hooks (tests/unit/io_uring_test.cpp) ----

  std::int64_t test_hook(std::string_view name, std::int64_t arg) override {
    if (name == "fixed_buffer_sqes") return static_cast<std::int64_t>(tables_.buffer_sqes());
    if (name == "fixed_file_sqes") return static_cast<std::int64_t>(tables_.file_sqes());
    if (name == "sqpoll") return (ring_.flags & IORING_SETUP_SQPOLL) != 0;
    if (name == "raw_sqe") return raw_sqe(static_cast<unsigned>(arg));
    if (name == "cold_reader_reads") return static_cast<std::int64_t>(reads_sent_cold_);
    if (name == "cold_fd") return router_.cold(static_cast<int>(arg)) ? 1 : 0;
    if (name == "make_cold") router_.make_cold(static_cast<int>(arg));
    return 0;
  }

  // Submits an SQE with a raw opcode (fd -1, no buffer) and waits up to a second for its result.
  std::int64_t raw_sqe(unsigned opcode) {
    bind_to_this_thread();
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) return -EBUSY;
    io_uring_prep_rw(static_cast<int>(opcode), sqe, -1, nullptr, 0, 0);
    sqe->user_data = k_tag_raw;
    raw_done_ = false;
    for (int i = 0; i < 1000 && !raw_done_; ++i) wait_for_events(std::chrono::milliseconds(1));
    return raw_done_ ? raw_res_ : -ETIME;
  }

  // ---- the list of ops with an SQE (in the SQ or in the kernel), through next_/prev_ ----

  void link(op& o) noexcept {
    A::prev(o) = nullptr;
    A::next(o) = held_head_;
    if (held_head_ != nullptr) A::prev(*held_head_) = &o;
    held_head_ = &o;
    ++held_;
  }

  // Whether the op's SQE is visible to the kernel (the SQ tail was published past it).
  bool published(op& o) const noexcept {
    unsigned pos = static_cast<unsigned>(A::word(o) >> 32);
    return static_cast<int>(ring_.sq.sqe_head - pos) > 0;
  }

  void untrack(op& o) noexcept {
    // Its SQE slot, if note_consumed() has not freed it yet: with SQPOLL the kernel thread may
    // post an op's CQE before it advances the SQ head.
    if (state_of(o) == k_in_sq) {
      op*& slot = slot_op_[static_cast<unsigned>(A::word(o) >> 32) & ring_.sq.ring_mask];
      if (slot == &o) {
        slot = nullptr;
        --in_sq_;
      }
    }
    op* p = A::prev(o);
    op* n = A::next(o);
    if (p != nullptr) A::next(*p) = n;
    else held_head_ = n;
    if (n != nullptr) A::prev(*n) = p;
    A::next(o) = A::prev(o) = nullptr;
    --held_;
    if ((A::word(o) & k_cancel_queued) != 0) {
      std::erase(cancel_backlog_, &o);
      A::word(o) &= ~k_cancel_queued;
    }
  }

  // ---- cancel ----

  // The SQE has not reached the kernel: make it a NOP that reports the op as cancelled.
  void cancel_unsubmitted(op& o) noexcept {
    if ((A::word(o) & k_cancel_sent) != 0) return;
    unsigned pos = static_cast<unsigned>(A::word(o) >> 32);
    io_uring_sqe* sqe = &ring_.sq.sqes[pos & ring_.sq.ring_mask];
    io_uring_prep_nop(sqe);
    sqe->user_data = user_data(o, k_tag_op_cancelled);
    A::word(o) |= k_cancel_sent;
  }

  void send_cancel(op& o) {
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) {
      if ((A::word(o) & k_cancel_queued) == 0) cancel_backlog_.push_back(&o);
      A::word(o) |= k_cancel_queued;
      return;
    }
    io_uring_prep_cancel64(sqe, user_data(o, k_tag_op), 0);
    sqe->user_data = k_tag_cancel;
    A::word(o) = (A::word(o) & ~k_cancel_queued) | k_cancel_sent;
  }

  // ---- one turn ----

  // Moves everything that waited for SQ space into the SQ, re-arms the internal polls and hands
  // the delegated ops to the pool.
  void flush_queues() {
    if (!cancel_backlog_.empty()) {
      std::vector<op*> cancels;
      cancels.swap(cancel_backlog_);
      for (op* o : cancels) {
        A::word(*o) &= ~k_cancel_queued;
        send_cancel(*o);
      }
    }
    while (!backlog_.empty()) {
      io_uring_sqe* sqe = get_sqe();
      if (sqe == nullptr) break;
      place(sqe, *backlog_.pop());
    }
    arm_internal_polls();
    pool_.hand_over();
    cold_.hand_over();
  }

  void arm_internal_polls() {
    if (!wake_armed_) wake_armed_ = arm_poll(wake_fd_, k_tag_wake);
    if (cold_.started() && !cold_armed_) cold_armed_ = arm_poll(cold_.event_fd(), k_cold_poll);
    if (pool_.started() != nullptr && !pool_armed_) pool_armed_ = arm_poll(pool_.started()->event_fd(), k_tag_pool);
  }

  bool arm_poll(int fd, std::uint64_t tag) {
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) return false;
    io_uring_prep_poll_add(sqe, fd, POLLIN);
    sqe->user_data = tag;
    return true;
  }

  // Submits the SQ and waits (one enter per round) until an op completes, wake() is called, the
  // pool has finished ops, or the timeout expires. CQEs of the ring's own SQEs alone do not end
  // the wait.
  void wait_for_events(std::optional<std::chrono::nanoseconds> timeout) {
    using clock = std::chrono::steady_clock;
    const auto deadline = timeout ? clock::now() + *timeout : clock::time_point::max();
    for (;;) {
      // Without an armed wake poll (no SQE was free for it) a wake() could be missed: sleep in
      // short steps until it is armed again.
      // With SQPOLL a full SQ frees up when the kernel thread consumes it, which posts no CQE:
      // retry the backlog in the same short steps.
      bool short_steps = !wake_armed_ || (sqpoll_idle_ms_ > 0 && !backlog_.empty());
      bool bounded = timeout.has_value() || short_steps;
      auto left = timeout ? std::chrono::nanoseconds(deadline - clock::now()) : std::chrono::nanoseconds(1000000);
      if (short_steps) left = std::min<std::chrono::nanoseconds>(left, std::chrono::milliseconds(1));
      __kernel_timespec ts = to_timespec(left);
      io_uring_cqe* cqe = nullptr;
      const std::uint64_t began = begin_enter();
      int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, bounded ? &ts : nullptr, nullptr);
      note_consumed(began);
      check_enter_error(r);
      reap();
      if (r == -EAGAIN || r == -EBUSY) wait_without_submitting(deadline);
      flush_queues();
      // A spent reap budget ends the wait too: the CQEs left (perhaps only the ring's own) are
      // the next poll()'s.
      if (completed_ > 0 || woken_ || reap_budget_ == 0 || r == -EINTR || clock::now() >= deadline) return;
    }
  }

  // The kernel refused the submission for now (memory, or a CQ overflow it could not flush):
  // wait briefly for completions instead of spinning.
  void wait_without_submitting(std::chrono::steady_clock::time_point deadline) {
    auto left = deadline - std::chrono::steady_clock::now();
    __kernel_timespec ts = to_timespec(std::min<std::chrono::nanoseconds>(left, std::chrono::milliseconds(1)));
    io_uring_cqe* cqe = nullptr;
    begin_enter();
    int r = io_uring_wait_cqes(&ring_, &cqe, 1, &ts, nullptr);
    check_enter_error(r);
    reap();
  }

  // Handles every CQE there is, including overflowed ones the kernel still holds (NODROP) and
  // completions waiting in deferred task work.
  void reap() {
    check_dropped();
    for (;;) {
      if (reap_budget_ == 0) return;
      if (reap_batch() > 0) continue;
      unsigned flags = IO_URING_READ_ONCE(*ring_.sq.kflags);
      if ((flags & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) == 0 || !on_owner_thread()) return;
      begin_enter();
      int r = io_uring_get_events(&ring_);
      if (r == -EINTR) continue;
      check_enter_error(r);
      if (io_uring_cq_ready(&ring_) == 0) return;
    }
  }

  // With NODROP the kernel keeps overflowed CQEs in a list; only when it cannot allocate an
  // entry is a CQE dropped, and cq.koverflow counts it. The op it belonged to can then never
  // complete, so say so loudly rather than hang silently.
  void check_dropped() noexcept {
    unsigned dropped = IO_URING_READ_ONCE(*ring_.cq.koverflow);
    if (dropped == dropped_seen_) return;
    std::fprintf(stderr, "unio: io_uring: the kernel dropped %u completions (out of memory for CQ overflow)\n",
                 dropped - dropped_seen_);
    dropped_seen_ = dropped;
  }

  struct cqe_copy {
    std::uint64_t user_data;
    std::int32_t res;
  };

  // Copies up to a batch of CQEs out of the ring, releases their slots, then handles them (so
  // handling may enter the kernel without touching CQ memory in use).
  unsigned reap_batch() {
    cqe_copy got[64];
    const unsigned max = std::min<unsigned>(std::size(got), reap_budget_);
    unsigned n = 0;
    unsigned head;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      if (n == max) break;
      got[n++] = {cqe->user_data, cqe->res};
    }
    io_uring_cq_advance(&ring_, n);
    reap_budget_ -= n;
    cqes_taken_ += n;
    for (unsigned i = 0; i < n; ++i) handle(got[i]);
    return n;
  }

  void handle(const cqe_copy& c) {
    switch (c.user_data & k_tag_mask) {
      case k_tag_op: on_op_done(op_of(c.user_data), c.res, false); break;
      case k_tag_op_cancelled: on_op_done(op_of(c.user_data), c.res, true); break;
      case k_tag_wake:
        wake_armed_ = false;
        woken_ = true;
        clear_wake_fd();
        break;
      case k_tag_pool:
        if (c.user_data == k_cold_poll) cold_armed_ = false;
        else pool_armed_ = false;
        woken_ = true;
        break;
      case k_tag_raw:
        raw_res_ = c.res;
        raw_done_ = true;
        break;
      default: break;  // cancel requests' own results, dropped SQEs
    }
  }

  void on_op_done(op& o, std::int32_t res, bool cancelled) {
    bool cancel_asked = (A::word(o) & (k_cancel_sent | k_cancel_queued)) != 0;
    if (has_flag(o, k_learn)) learn(o, res, cancelled || cancel_asked);
    clear_flag(o, k_learn);
    untrack(o);
    if (cancelled || (cancel_asked && res == -EINTR)) res = -ECANCELED;  // an io-wq worker interrupted
    if ((A::flags(o) & k_poll_then_write) != 0) {
      on_poll_write_ready(o, res);
      return;
    }
    if (o.code() == op_code::sendfile) {
      if (auto r = splicer_.done(o, res, cancel_asked || shutting_down_)) complete(o, *r);
      else enqueue(o);
      return;
    }
    if (o.code() == op_code::splice && splice_waits(o, res, cancel_asked)) return;
    if (o.code() == op_code::poll && res > 0) res = poll_events_now(o, res);
    // An aborted connection is gone from the backlog: wait for the next one (sys::do_accept).
    if (o.code() == op_code::accept && res == -ECONNABORTED && !cancel_asked && !shutting_down_) {
      enqueue(o);
      return;
    }
    if (uring::msg_headers::needs_header(o.code())) messages_.done(o, res);
    // The pool's open retries a resolve race (sys::resolve_race_retries); so does this one, there.
    const bool resolve_race = o.code() == op_code::open && res == -EAGAIN && sys::resolve_race_retries(A::args(o).resolve);
    if ((res == -EOPNOTSUPP || resolve_race) && !cancel_asked && !shutting_down_ && pool_can_retry(o.code())) {
      set_state(o, k_delegated);
      pool_.push(o);
      return;
    }
    complete(o, res);
  }

  void complete(op& o, std::int64_t res) {
    if (o.code() == op_code::close) tables_.close_done(ring_, o);
    ++completed_;
    env_.complete(o, res);
  }

  // ---- positioned I/O on streams (see the top of the file) ----

  bool positioned_io_allowed(op& o) {
    if (!is_transfer(o.code()) || A::args(o).offset == current_position) return true;
    int fd = A::args(o).fd;
    if (fd >= 0 && static_cast<std::size_t>(fd) < seekable_.size() && seekable_[fd] != 0) return true;
    if (::lseek(fd, 0, SEEK_CUR) < 0) return errno != ESPIPE;  // other errors: the kernel reports them
    if (fd >= 0 && fd < k_max_cached_fd) {
      if (static_cast<std::size_t>(fd) >= seekable_.size()) seekable_.resize(static_cast<std::size_t>(fd) + 64, 0);
      // Whether reads go through the page cache, for the cold-read router: an O_DIRECT read
      // always completes after its enter, which must not be taken for a miss.
      int fl = route_reads_ ? ::fcntl(fd, F_GETFL) : -1;
      seekable_[fd] = static_cast<std::uint8_t>(k_fd_seekable | (fl >= 0 && (fl & O_DIRECT) == 0 ? k_fd_buffered : 0));
    }
    return true;
  }

  // Known seekable and opened without O_DIRECT (as of the loop's first positioned op on it; a
  // later F_SETFL is not seen: a wrong answer routes reads worse, never wrongly).
  bool buffered_file(int fd) const noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < seekable_.size() && (seekable_[fd] & k_fd_buffered) != 0;
  }

  void forget_fd(std::int64_t fd) noexcept {
    if (fd >= 0 && static_cast<std::size_t>(fd) < seekable_.size()) seekable_[static_cast<std::size_t>(fd)] = 0;
    if (fd >= 0 && fd <= INT32_MAX) router_.forget(static_cast<int>(fd));
  }

  void clear_wake_fd() noexcept {
    std::uint64_t v;
    while (::read(wake_fd_, &v, sizeof v) < 0 && errno == EINTR) {
    }
  }

  void drain_pool() { pool_.drain(); }

  // ---- shutdown ----

  // Ops whose SQE never reached the kernel complete as cancelled now; their SQEs become NOPs.
  // With SQPOLL only the SQEs not yet published may be rewritten (the others are cancelled
  // inside the kernel by cancel_and_reap_all).
  void drop_unsubmitted() {
    unsigned from = sqpoll_idle_ms_ > 0 ? ring_.sq.sqe_head : seen_head_;
    for (unsigned pos = from; pos != ring_.sq.sqe_tail; ++pos) {
      op* slot = slot_op_[pos & ring_.sq.ring_mask];
      io_uring_sqe* sqe = &ring_.sq.sqes[pos & ring_.sq.ring_mask];
      if (slot == nullptr) continue;
      io_uring_prep_nop(sqe);
      sqe->user_data = k_tag_ignore;
      untrack(*slot);  // frees the slot
      messages_.release(*slot);
      env_.complete(*slot, -ECANCELED);
    }
  }

  void cancel_and_reap_all() {
    reap_budget_ = std::numeric_limits<unsigned>::max();
    if (!on_owner_thread()) {
      if (owner_ != 0) fatal("loop destroyed on another thread while ops are inside the kernel (io_uring_defer_taskrun)");
      enable_ring();
    }
    for (op* o = held_head_; o != nullptr; o = A::next(*o))
      if ((A::word(*o) & (k_cancel_sent | k_cancel_queued)) == 0) send_cancel(*o);
    while (held_ > 0) {
      flush_queues();
      __kernel_timespec ts{0, 100 * 1000 * 1000};
      io_uring_cqe* cqe = nullptr;
      int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      note_consumed();
      check_enter_error(r);
      reap();
    }
  }

  backend_env& env_;
  delegation pool_;  // the ops the probe lacks, and EOPNOTSUPP retries
  std::array<bool, op_code_count> native_{};
  unsigned entries_ = 0;
  int wake_fd_ = -1;
  unsigned sqpoll_idle_ms_ = 0;  // loop_options::io_uring_sqpoll_idle_ms; 0 = no SQPOLL
  bool restrict_ = false;        // loop_options::io_uring_restrict

  io_uring ring_{};
  bool ring_ready_ = false;
  std::size_t mode_ = 0;
  bool single_issuer_ = false;
  unsigned features_ = 0;
  std::uint64_t owner_ = 0;  // this_thread_serial() of the thread the ring is bound to

  // Per SQ slot: the op whose SQE sits there until the kernel consumes it, and openat2 storage.
  std::vector<op*> slot_op_;
  std::vector<::open_how> slot_how_;
  unsigned seen_head_ = 0;  // SQ head as of the last note_consumed()
  unsigned dropped_seen_ = 0;  // cq.koverflow as of the last check_dropped()
  // CQEs reap() may still take: what pacer_ allows during a poll(), unlimited outside (shutdown).
  unsigned reap_budget_ = std::numeric_limits<unsigned>::max();
  reap_pacer pacer_;
  unsigned cqes_taken_ = 0;  // CQEs reaped so far (wraps)

  op* held_head_ = nullptr;  // ops with an SQE (in the SQ or in the kernel)
  std::size_t held_ = 0;
  std::size_t in_sq_ = 0;    // of those, still in the SQ

  static constexpr int k_max_cached_fd = 1 << 20;
  static constexpr std::uint8_t k_fd_seekable = 1;  // known to accept positioned I/O
  static constexpr std::uint8_t k_fd_buffered = 2;  // and its reads go through the page cache
  std::vector<std::uint8_t> seekable_;              // per fd: k_fd_* bits
  // Buffered reads: inline or io-wq (io_uring_cold_reads.hpp), and what the current turn's
  // enters need to learn from the inline ones.
  static constexpr std::uint64_t k_inline_enter_ns = 50'000;  // plus 1 ns per byte asked by k_learn reads
  bool route_reads_ = true;
  uring::cold_reader cold_;
  bool cold_armed_ = false;  // the POLL_ADD on the cold reader's event fd
  uring::cold_read_router router_;
  std::uint32_t enter_seq_ = 1;
  unsigned learn_in_sq_ = 0;
  std::uint64_t learn_bytes_ = 0;
  std::uint64_t reads_sent_cold_ = 0;

  op_queue finished_;  // completed at submission (ESPIPE)
  op_queue backlog_;   // waiting for SQ space, in submission order
  std::vector<op*> cancel_backlog_;  // ASYNC_CANCEL requests waiting for SQ space

  uring::registered_tables tables_;
  std::int64_t raw_res_ = 0;
  bool raw_done_ = false;

  bool wake_armed_ = false;
  bool pool_armed_ = false;
  bool woken_ = false;
  bool shutting_down_ = false;
  std::size_t completed_ = 0;  // ops handed back during the current poll()

  uring::splice_sendfile splicer_;  // sendfile ops in flight
  uring::msg_headers messages_;     // the msghdr of each sendto and recvfrom with an SQE
};

std::array<bool, op_code_count> native_table(const loop_options& o) {
  return uring::inspect_kernel(o.io_uring_delegate).native;
}

}  // namespace

extern const backend_descriptor io_uring_descriptor = {
    "io_uring",
    [] { return uring::inspect_kernel().why_not; },
    native_table,
    [](backend_env& env) -> std::unique_ptr<backend> { return std::make_unique<uring_backend>(env); },
};

}  // namespace unio::detail
