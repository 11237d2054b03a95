// The loop: backend-agnostic. One turn (turn()) has these phases, in this order (docs/design.md
// lists the same):
//   1. poll     - the backend submits what was queued and waits for completions, at most until
//                 the next timer is due (not at all when something is ready already);
//   2. timers   - expired timeout ops complete;
//   3. posted   - functions post()ed from any thread run;
//   4. dispatch - handlers of the ops that completed before this phase run, in completion order.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <optional>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "backend.hpp"
#include "direct/direct_io.hpp"
#include "fd_kinds.hpp"
#include "registry.hpp"
#include "short_reads.hpp"
#include "thread_pool.hpp"
#include "timer_heap.hpp"
#include "work_items.hpp"

namespace unio {
namespace detail {

std::int64_t steady_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

unsigned default_pool_size() noexcept {
  unsigned n = std::thread::hardware_concurrency();
  return n < 2 ? 2 : n;
}

// Linked ops (A::link_flags). Chains and link timeouts are kept by the loop for every backend:
// a held op waits, linked from its predecessor (link_next/link_prev), until that one completes;
// then it is started in the same turn (to_start) or, when the chain is broken, completed with
// ECANCELED. A link timeout is a timer op that points at the op it guards (link_prev), which
// points back (link_timer); its clock starts when that op starts.
constexpr std::uint8_t k_chained = 0x01;          // has a successor (link_next)
constexpr std::uint8_t k_held = 0x02;             // waits for its predecessor, or in to_start
constexpr std::uint8_t k_guarded = 0x04;          // has a link timeout (link_timer)
constexpr std::uint8_t k_is_link_timeout = 0x08;  // this op is a link timeout
constexpr std::uint8_t k_armed = 0x10;            // a link timeout in the timer heap

// Whether the chain goes on after `o` completed with `res`: success, and for reads and writes
// the whole length (io_uring breaks a chain on a short read or write the same way).
bool chain_continues(op& o, std::int64_t res) noexcept {
  if (res < 0) return false;
  if (!is_transfer(o.code())) return true;
  return static_cast<std::uint64_t>(res) >= std::min(requested_bytes(o), k_max_rw);
}

// The kernel's limits for io_uring registration (IORING_MAX_REG_BUFFERS, the 1 GiB cap per
// buffer, and the fixed-file table size of Linux 5.x), checked the same way on every backend.
constexpr std::size_t k_max_registered_buffers = 1u << 14;
constexpr std::size_t k_max_buffer_len = std::size_t{1} << 30;
constexpr std::size_t k_max_registered_files = 1u << 15;

std::error_code validate_buffers(std::span<const iovec> bufs) {
  const auto invalid = std::make_error_code(std::errc::invalid_argument);
  if (bufs.empty() || bufs.size() > k_max_registered_buffers) return invalid;
  std::vector<iovec> sorted(bufs.begin(), bufs.end());
  for (const iovec& v : sorted)
    if (v.iov_base == nullptr || v.iov_len == 0 || v.iov_len > k_max_buffer_len) return invalid;
  auto base = [](const iovec& v) { return reinterpret_cast<std::uintptr_t>(v.iov_base); };
  std::sort(sorted.begin(), sorted.end(), [&](const iovec& a, const iovec& b) { return base(a) < base(b); });
  for (std::size_t i = 1; i < sorted.size(); ++i)
    if (base(sorted[i - 1]) + sorted[i - 1].iov_len > base(sorted[i])) return invalid;
  return {};
}

std::error_code validate_files(std::span<const int> fds) {
  if (fds.empty() || fds.size() > k_max_registered_files) return std::make_error_code(std::errc::invalid_argument);
  for (int fd : fds)
    if (fd < 0 || ::fcntl(fd, F_GETFD) < 0) return std::make_error_code(std::errc::bad_file_descriptor);
  std::vector<int> sorted(fds.begin(), fds.end());
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
    return std::make_error_code(std::errc::invalid_argument);
  return {};
}

struct loop_impl final : backend_env, direct_env {
  explicit loop_impl(loop_options o) : opts(std::move(o)) {
    if (opts.pool_size == 0) opts.pool_size = default_pool_size();
    if (opts.pool_nice < 0 || opts.pool_nice > 19)
      throw std::system_error(EINVAL, std::generic_category(), "unio: loop_options::pool_nice must be 0-19");
    const backend_descriptor& d = resolve_backend(opts.backend, reason);
    descriptor = &d;
    now_ns = steady_now_ns();
    be = d.create(*this);
  }

  // backend_env
  // `o` joins the ready queue before its links are settled: the chain members that its failure
  // completes with ECANCELED queue after it, so handlers run in chain order.
  void complete(op& o, std::int64_t res) noexcept override {
    if (direct.completed(o, res)) return;
    if (res == -EAGAIN && stale_kind(o)) return;
    if (short_read_goes_on(o, res)) return;
    if (res >= 0 && gives_fd(o.code())) fd_opened(static_cast<int>(res));
    A::res(o) = res;
    A::state(o) = op_completed;
    ready.push(o);
    if (A::link_flags(o) != 0) settle_links(o, res);
  }
  thread_pool& pool() override {
    if (!pool_) pool_ = std::make_unique<thread_pool>(opts.pool_size, opts.spin_us, opts.pool_nice, opts.pool_max_threads);
    return *pool_;
  }
  const loop_options& options() const noexcept override { return opts; }
  bool is_stream(int fd) noexcept override { return kinds.of(fd) == fd_kinds::stream; }

  // A read or write at the current position that a thread performed as a file op and that says
  // EAGAIN: its fd was a file when the loop learnt its kind and is a non-blocking stream now (the
  // number was reused behind the loop's back). It starts again, to wait for readiness.
  bool stale_kind(op& o) noexcept {
    if (!is_transfer(o.code()) || A::args(o).offset != current_position || shutting_down_) return false;
    if (kinds.peek(A::args(o).fd) != fd_kinds::file || !kinds.changed(A::args(o).fd)) return false;
    rechecks.push(o);
    return true;
  }

  // A read of a regular file that came back short before the end of the file reads the rest
  // (short_reads.hpp): the op starts again, from rechecks, on its next round.
  bool short_read_goes_on(op& o, std::int64_t& res) noexcept {
    if (res <= 0 && shorts.in_progress() == 0) return false;
    if (!shorts.go_on(o, res)) return false;
    rechecks.push(o);
    return true;
  }

  // direct_env: the O_DIRECT layer's internal ops and the user ops it finishes.
  void submit_inner(op& o) override {
    A::state(o) = op_submitted;
    ++pending;
    if (shutting_down_) complete(o, -ECANCELED);
    else be->submit(o);
  }
  void cancel_inner(op& o) override { cancel(o); }
  void finish_now(op& o, std::int64_t res) override {
    A::res(o) = res;
    A::state(o) = op_idle;
    --pending;
    op_handler h;
    h.take(A::handler(o));
    h(o);
  }
  void post_internal(std::function<void()> fn) override {
    {
      std::lock_guard lk(post_mu);
      posted.push_back(std::move(fn));
      has_posted.store(true, std::memory_order_release);
    }
    be->wake();
  }
  bool in_shutdown() const noexcept override { return shutting_down_; }
  void recheck(op& o) override {
    if (shutting_down_) complete(o, -ECANCELED);
    else rechecks.push(o);
  }

  // The fd lifecycle: every fd the loop hands out (open, accept) and every close it starts is
  // told to the layers that remember things per fd number.
  void fd_opened(int fd) noexcept {
    direct.forget(fd);
    kinds.forget(fd);
    be->fd_opened(fd);
  }
  void fd_closing(int fd) noexcept {
    direct.forget(fd);
    kinds.forget(fd);
    be->fd_closing(fd);
  }

  void restart_rechecked() {
    while (op* o = rechecks.pop()) {
      if (shutting_down_) complete(*o, -ECANCELED);
      else begin_io(*o);
    }
  }

  bool alive() const noexcept {
    return pending > 0 || has_posted.load(std::memory_order_acquire) ||
           keepalive.load(std::memory_order_acquire) > 0;
  }

  std::optional<std::chrono::nanoseconds> wait_time(bool may_block) const noexcept {
    using ns = std::chrono::nanoseconds;
    if (!may_block || !ready.empty() || !to_start.empty() || !rechecks.empty() ||
        has_posted.load(std::memory_order_acquire) ||
        stop_requested.load(std::memory_order_acquire))
      return ns(0);
    if (!timers.empty()) return ns(std::max<std::int64_t>(0, timers.top_deadline() - steady_now_ns()));
    return std::nullopt;
  }

  void fire_timers() {
    while (!timers.empty() && timers.top_deadline() <= now_ns) {
      op& t = *timers.pop();
      if ((A::link_flags(t) & k_is_link_timeout) != 0) fire_link_timeout(t);
      else complete(t, 0);
    }
  }

  // ---- linked ops ----

  // `o` completes: detach its link timeout (which completes with ECANCELED: the op finished
  // first) and start or cancel the rest of its chain.
  void settle_links(op& o, std::int64_t res) noexcept {
    std::uint8_t f = A::link_flags(o);
    A::link_flags(o) = 0;
    if ((f & k_is_link_timeout) != 0) {
      if (op* x = A::link_prev(o)) A::link_timer(*x) = nullptr;
      A::link_prev(o) = nullptr;
      return;
    }
    if (op* t = A::link_timer(o)) {
      A::link_timer(o) = nullptr;
      A::link_prev(*t) = nullptr;
      if ((A::link_flags(*t) & k_armed) != 0) timers.remove(*t);
      complete(*t, -ECANCELED);
    }
    op* n = A::link_next(o);
    if (n == nullptr) return;
    A::link_next(o) = nullptr;
    A::link_prev(*n) = nullptr;
    if (chain_continues(o, res)) to_start.push(*n);
    else cancel_chain(*n);
  }

  // Completes `first` and every op after it with ECANCELED (none of them has started).
  void cancel_chain(op& first) noexcept {
    for (op* c = &first; c != nullptr;) {
      op* next = A::link_next(*c);
      A::link_next(*c) = nullptr;
      if (next != nullptr) A::link_prev(*next) = nullptr;
      complete(*c, -ECANCELED);
      c = next;
    }
  }

  // Adds `o` to the open chain. Returns true when `o` must not start now: it waits for its
  // predecessor, or the chain is broken already and it was completed with ECANCELED.
  bool join_chain(op& o) {
    op* p = link_tail;
    link_tail = &o;
    if (p == nullptr) return false;  // the first op of the chain
    if (A::state(*p) == op_submitted) {
      A::link_next(*p) = &o;
      A::link_flags(*p) |= k_chained;
      A::link_prev(o) = p;
      A::link_flags(o) |= k_held;
      return true;
    }
    if (chain_continues(*p, A::res(*p))) return false;  // it completed already
    complete(o, -ECANCELED);
    return true;
  }

  void attach_link_timeout(op& t) {
    op* x = last_submitted;
    last_submitted = nullptr;
    if (x == nullptr || A::link_timer(*x) != nullptr || A::state(*x) != op_submitted) {
      A::link_flags(t) = 0;
      complete(t, x == nullptr || A::link_timer(*x) != nullptr ? -EINVAL : -ECANCELED);
      return;
    }
    A::link_timer(*x) = &t;
    A::link_flags(*x) |= k_guarded;
    A::link_prev(t) = x;
    if ((A::link_flags(*x) & k_held) == 0) arm_link_timeout(t);
  }

  void arm_link_timeout(op& t) {
    A::args(t).timeout_ns += steady_now_ns();
    A::link_flags(t) |= k_armed;
    timers.push(t);
  }

  void fire_link_timeout(op& t) {
    op* x = A::link_prev(t);
    A::link_flags(t) &= static_cast<std::uint8_t>(~k_armed);
    complete(t, -ETIME);  // detaches x
    if (x != nullptr) cancel(*x);
  }

  // Ops whose predecessor completed successfully in this turn.
  void start_linked() {
    while (op* o = to_start.pop()) {
      A::link_flags(*o) &= static_cast<std::uint8_t>(~k_held);
      if (shutting_down_) complete(*o, -ECANCELED);
      else start(*o);
    }
  }

  void cancel_held(op& o) {
    if (!to_start.remove(o)) {
      if (op* p = A::link_prev(o)) A::link_next(*p) = nullptr;
      A::link_prev(o) = nullptr;
    }
    complete(o, -ECANCELED);  // its successors and its link timeout with it
  }

  void run_posted() {
    if (!has_posted.load(std::memory_order_acquire)) return;
    std::vector<std::function<void()>> fns;
    {
      std::lock_guard lk(post_mu);
      fns.swap(posted);
      has_posted.store(false, std::memory_order_release);
    }
    for (auto& f : fns) f();
  }

  // Runs the handlers of the ops that are ready now; ops completing meanwhile wait for the next
  // turn, so a handler that resubmits at once cannot starve timers and posted work.
  void dispatch() {
    op_queue now;
    now.splice(ready);
    while (op* o = now.pop()) {
      A::state(*o) = op_idle;
      --pending;
      op_handler h;
      h.take(A::handler(*o));
      try {
        h(*o);
      } catch (...) {
        // Keep the exactly-once promise for the rest: they run on the next turn.
        now.splice(ready);
        ready.splice(now);
        throw;
      }
    }
  }

  bool turn(bool may_block) {
    last_submitted = nullptr;
    link_tail = nullptr;
    restart_rechecked();
    start_linked();
    if (pending > 0 || !ready.empty()) be->poll(wait_time(may_block));
    else if (may_block && alive()) be->poll(wait_time(may_block));
    now_ns = steady_now_ns();
    restart_rechecked();
    start_linked();
    fire_timers();
    start_linked();
    run_posted();
    dispatch();
    return alive();
  }

  void submit(op& o) {
    A::state(o) = op_submitted;
    ++pending;
    if (shutting_down_) {
      complete(o, -ECANCELED);
      return;
    }
    if ((A::link_flags(o) & k_is_link_timeout) != 0) {
      attach_link_timeout(o);
      return;
    }
    last_submitted = &o;
    if (link_depth > 0 && join_chain(o)) return;
    start(o);
  }

  void start(op& o) {
    if (op* t = A::link_timer(o)) arm_link_timeout(*t);
    if (o.code() == op_code::timeout) {
      A::args(o).timeout_ns += steady_now_ns();
      timers.push(o);
      return;
    }
    begin_io(o);
  }

  // Hands a started file or network op to the O_DIRECT layer or the backend.
  void begin_io(op& o) {
    if (o.code() == op_code::close) fd_closing(A::args(o).fd);
    else if (direct_io::candidate(o, opts.direct_fallback) && direct.take(o)) return;
    be->submit(o);
  }

  void cancel(op& o) {
    if (A::state(o) != op_submitted) return;  // idle, or completed and waiting for dispatch
    if (!rechecks.empty() && rechecks.remove(o)) {
      complete(o, -ECANCELED);
      return;
    }
    std::uint8_t f = A::link_flags(o);
    if ((f & k_is_link_timeout) != 0) {
      if ((f & k_armed) != 0) timers.remove(o);
      complete(o, -ECANCELED);
      return;
    }
    if ((f & k_held) != 0) {
      cancel_held(o);
      return;
    }
    if (o.code() == op_code::timeout) {
      if (timers.remove(o)) complete(o, -ECANCELED);
      return;
    }
    if (direct_io::holds(o)) return direct.cancel(o);
    be->cancel(o);
  }

  std::error_code register_buffers(std::span<const iovec> bufs) {
    if (std::error_code ec = validate_buffers(bufs)) return ec;
    if (buffers_registered) return std::make_error_code(std::errc::device_or_resource_busy);
    if (std::error_code ec = be->set_buffers(bufs)) return ec;
    buffers_registered = true;
    return {};
  }

  std::error_code unregister_buffers() {
    if (!buffers_registered) return std::make_error_code(std::errc::no_such_device_or_address);
    buffers_registered = false;
    return be->set_buffers({});
  }

  std::error_code register_files(std::span<const int> fds) {
    if (std::error_code ec = validate_files(fds)) return ec;
    if (files_registered) return std::make_error_code(std::errc::device_or_resource_busy);
    if (std::error_code ec = be->set_files(fds)) return ec;
    files_registered = true;
    return {};
  }

  std::error_code unregister_files() {
    if (!files_registered) return std::make_error_code(std::errc::no_such_device_or_address);
    files_registered = false;
    return be->set_files({});
  }

  void shut_down() {
    shutting_down_ = true;
    direct.shutdown();
    restart_rechecked();
    while (op* o = timers.pop()) complete(*o, -ECANCELED);
    be->shutdown();
    if (pool_) {
      pool_->stop();
      op_queue left;
      pool_->drain(left);
      while (op* o = left.pop()) complete(*o, A::res(*o));
    }
    // Handlers may submit more ops; those complete with ECANCELED right away, and so do the
    // chain members released by ops that completed successfully.
    while (!ready.empty() || !to_start.empty() || !rechecks.empty() || has_posted.load()) {
      restart_rechecked();
      start_linked();
      run_posted();
      dispatch();
    }
    if (pending != 0) {
      std::fprintf(stderr, "unio: internal error: %zu ops lost at loop shutdown\n", pending);
      std::abort();
    }
  }

  loop_options opts;
  std::string reason;
  const backend_descriptor* descriptor = nullptr;
  std::optional<std::array<bool, op_code_count>> native;  // is_native(), asked on first use
  std::unique_ptr<thread_pool> pool_;  // before be: the backend may hold a reference to it
  std::unique_ptr<backend> be;
  direct_io direct{*this};  // after be: destroyed first, with nothing left in flight
  fd_kinds kinds;           // file or stream, per fd (needs_readiness)
  op_queue ready;
  timer_heap timers;
  std::size_t pending = 0;  // submitted ops whose handler has not run yet
  std::int64_t now_ns = 0;
  bool shutting_down_ = false;
  bool buffers_registered = false;
  bool files_registered = false;
  op_queue to_start;                 // chain members released this turn (linked ops)
  op_queue rechecks;                 // ops to start again: on fresh O_DIRECT facts (direct_io::completed),
                                     // as a stream (stale_kind), for the rest of a short read (shorts)
  short_reads shorts;
  op* link_tail = nullptr;           // the last op of the open chain
  op* last_submitted = nullptr;      // what link_timeout applies to
  unsigned link_depth = 0;           // open link scopes
  std::atomic<bool> stop_requested{false};
  std::atomic<int> keepalive{0};
  std::mutex post_mu;
  std::vector<std::function<void()>> posted;
  std::atomic<bool> has_posted{false};
};

}  // namespace detail

using detail::A;

loop::loop(loop_options opts) : impl_(std::make_unique<detail::loop_impl>(std::move(opts))) {}

loop::~loop() { impl_->shut_down(); }

std::string_view loop::backend_name() const noexcept { return impl_->be->name(); }
const std::string& loop::backend_reason() const noexcept { return impl_->reason; }
const loop_options& loop::options() const noexcept { return impl_->opts; }

bool loop::is_native(op_code code) const {
  if (static_cast<std::size_t>(code) >= op_code_count) return false;
  if (!impl_->native) impl_->native = impl_->descriptor->native(impl_->opts);
  return (*impl_->native)[static_cast<std::size_t>(code)];
}

void loop::run() {
  while (!impl_->stop_requested.load(std::memory_order_acquire)) {
    if (!impl_->turn(true)) break;
  }
  impl_->stop_requested.store(false, std::memory_order_release);
}

bool loop::run_once() { return impl_->turn(true); }
bool loop::poll() {
  bool more = impl_->turn(false);
  return !impl_->stop_requested.exchange(false, std::memory_order_acq_rel) && more;
}

int loop::backend_fd() const noexcept { return impl_->be->host_fd(); }
std::optional<std::chrono::nanoseconds> loop::backend_timeout() {
  auto backend_limit = impl_->be->prepare_host_wait();
  auto loop_limit = impl_->wait_time(true);  // after the backend: what it completed counts
  if (!backend_limit) return loop_limit;
  if (!loop_limit) return backend_limit;
  return std::min(*backend_limit, *loop_limit);
}

void loop::stop() noexcept {
  impl_->stop_requested.store(true, std::memory_order_release);
  impl_->be->wake();
}

void loop::post(std::function<void()> fn) { impl_->post_internal(std::move(fn)); }

loop::keep_alive::keep_alive(loop& lp) : loop_(lp) { lp.impl_->keepalive.fetch_add(1); }
loop::keep_alive::keep_alive(const keep_alive& o) : loop_(o.loop_) { loop_.impl_->keepalive.fetch_add(1); }
loop::keep_alive::~keep_alive() {
  if (loop_.impl_->keepalive.fetch_sub(1) == 1) loop_.impl_->be->wake();
}

std::chrono::steady_clock::time_point loop::now() const noexcept {
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(impl_->now_ns));
}

void loop::submit_prepared(op& o) { impl_->submit(o); }
std::uint64_t loop::direct_fallbacks() const noexcept { return impl_->direct.fallbacks(); }

void loop::begin_link() noexcept { ++impl_->link_depth; }
void loop::end_link() noexcept {
  if (impl_->link_depth > 0 && --impl_->link_depth == 0) impl_->link_tail = nullptr;
}

std::error_code loop::register_buffers(std::span<const iovec> bufs) { return impl_->register_buffers(bufs); }
std::error_code loop::unregister_buffers() { return impl_->unregister_buffers(); }
std::error_code loop::register_files(std::span<const int> fds) { return impl_->register_files(fds); }
std::error_code loop::unregister_files() { return impl_->unregister_files(); }

detail::backend& detail::loop_access::backend_of(loop& lp) noexcept { return *lp.impl_->be; }
void loop::cancel(op& target) { impl_->cancel(target); }

detail::op_handler& loop::handler_of(op& o) noexcept { return A::handler(o); }

// ---- preparation: reset the op and fill in its arguments ----
namespace {
detail::op_args& begin(op& o, op_code c) {
  if (o.busy()) {
    std::fprintf(stderr, "unio: op submitted while still busy with %s; an op must complete before reuse\n",
                 to_string(o.code()));
    std::abort();
  }
  A::set_code(o, c);
  A::res(o) = 0;
  A::flags(o) = 0;
  A::cancel_requested(o) = 0;
  A::word(o) = 0;
  A::link_flags(o) = 0;
  A::link_next(o) = A::link_prev(o) = A::link_timer(o) = nullptr;
  detail::op_args& a = A::args(o);
  a = detail::op_args{};
  return a;
}
}  // namespace

void loop::prep_nop(op& o) { begin(o, op_code::nop); }
void loop::prep_open(op& o, int dirfd, const char* path, open_how how) {
  auto& a = begin(o, op_code::open);
  a.dirfd = dirfd;
  a.path = path;
  a.flags = static_cast<std::uint32_t>(how.flags);
  a.mode = how.mode;
  a.resolve = how.resolve;
}
void loop::prep_close(op& o, int fd) { begin(o, op_code::close).fd = fd; }
void loop::prep_read(op& o, int fd, void* buf, std::size_t len, std::uint64_t offset) {
  auto& a = begin(o, op_code::read);
  a.fd = fd;
  a.buf = buf;
  a.len = len;
  a.offset = offset;
}
void loop::prep_write(op& o, int fd, const void* buf, std::size_t len, std::uint64_t offset) {
  auto& a = begin(o, op_code::write);
  a.fd = fd;
  a.buf = const_cast<void*>(buf);
  a.len = len;
  a.offset = offset;
}
void loop::prep_readv(op& o, int fd, const iovec* iov, int iovcnt, std::uint64_t offset) {
  auto& a = begin(o, op_code::readv);
  a.fd = fd;
  a.iov = iov;
  a.iovcnt = iovcnt;
  a.offset = offset;
}
void loop::prep_writev(op& o, int fd, const iovec* iov, int iovcnt, std::uint64_t offset) {
  auto& a = begin(o, op_code::writev);
  a.fd = fd;
  a.iov = iov;
  a.iovcnt = iovcnt;
  a.offset = offset;
}
void loop::prep_fsync(op& o, int fd, bool datasync) {
  begin(o, datasync ? op_code::fdatasync : op_code::fsync).fd = fd;
}
void loop::prep_fallocate(op& o, int fd, int mode, std::uint64_t offset, std::uint64_t len) {
  auto& a = begin(o, op_code::fallocate);
  a.fd = fd;
  a.flags = static_cast<std::uint32_t>(mode);
  a.offset = offset;
  a.len = len;
}
void loop::prep_ftruncate(op& o, int fd, std::uint64_t length) {
  auto& a = begin(o, op_code::ftruncate);
  a.fd = fd;
  a.offset = length;
}
void loop::prep_stat(op& o, int dirfd, const char* path, int flags, unsigned mask, struct statx* out) {
  auto& a = begin(o, op_code::stat);
  a.dirfd = dirfd;
  a.path = path;
  a.flags = static_cast<std::uint32_t>(flags);
  a.mode = mask;
  a.out = out;
}
void loop::prep_rename(op& o, int olddirfd, const char* oldpath, int newdirfd, const char* newpath, unsigned flags) {
  auto& a = begin(o, op_code::rename);
  a.dirfd = olddirfd;
  a.path = oldpath;
  a.dirfd2 = newdirfd;
  a.path2 = newpath;
  a.flags = flags;
}
void loop::prep_unlink(op& o, int dirfd, const char* path, bool dir) {
  auto& a = begin(o, op_code::unlink);
  a.dirfd = dirfd;
  a.path = path;
  a.flags = dir ? AT_REMOVEDIR : 0;
  if (dir) A::set_code(o, op_code::rmdir);
}
void loop::prep_mkdir(op& o, int dirfd, const char* path, unsigned mode) {
  auto& a = begin(o, op_code::mkdir);
  a.dirfd = dirfd;
  a.path = path;
  a.mode = mode;
}
void loop::prep_accept(op& o, int fd, sockaddr* addr, socklen_t* addrlen) {
  auto& a = begin(o, op_code::accept);
  a.fd = fd;
  a.out = addr;
  a.addrlen = addrlen;
}
void loop::prep_connect(op& o, int fd, const sockaddr* addr, socklen_t addrlen) {
  auto& a = begin(o, op_code::connect);
  a.fd = fd;
  a.out = const_cast<sockaddr*>(addr);
  a.addrlen_in = addrlen;
}
void loop::prep_recv(op& o, int fd, void* buf, std::size_t len, int flags) {
  auto& a = begin(o, op_code::recv);
  a.fd = fd;
  a.buf = buf;
  a.len = len;
  a.flags = static_cast<std::uint32_t>(flags);
}
void loop::prep_send(op& o, int fd, const void* buf, std::size_t len, int flags) {
  auto& a = begin(o, op_code::send);
  a.fd = fd;
  a.buf = const_cast<void*>(buf);
  a.len = len;
  a.flags = static_cast<std::uint32_t>(flags);
}
void loop::prep_sendfile(op& o, int out_fd, int in_fd, std::uint64_t in_offset, std::size_t len) {
  auto& a = begin(o, op_code::sendfile);
  a.fd = out_fd;
  a.fd_in = in_fd;
  a.offset = in_offset;
  a.len = len;
}
// op.hpp lists which op_args field holds what for the datagram and message ops.
void loop::prep_sendto(op& o, int fd, const void* buf, std::size_t len, const endpoint& to, int flags) {
  auto& a = begin(o, op_code::sendto);
  a.fd = fd;
  a.buf = const_cast<void*>(buf);
  a.len = len;
  a.flags = static_cast<std::uint32_t>(flags);
  // An empty endpoint is no address at all (sendto(2) with NULL): the connected peer's.
  a.out = to.length > 0 ? const_cast<sockaddr*>(to.addr()) : nullptr;
  a.addrlen_in = to.length;
}
void loop::prep_recvfrom(op& o, int fd, void* buf, std::size_t len, endpoint* from, int flags) {
  auto& a = begin(o, op_code::recvfrom);
  a.fd = fd;
  a.buf = buf;
  a.len = len;
  a.flags = static_cast<std::uint32_t>(flags);
  if (from == nullptr) return;
  // The kernel leaves the address untouched for a sender that has none: it then reads as empty.
  from->storage.ss_family = AF_UNSPEC;
  from->length = sizeof from->storage;
  a.out = from->addr();
  a.addrlen = &from->length;
}
void loop::prep_msg(op& o, op_code c, int fd, msghdr* msg, int flags) {
  auto& a = begin(o, c);
  a.fd = fd;
  a.buf = msg;
  a.flags = static_cast<std::uint32_t>(flags);
}
void loop::prep_timeout(op& o, std::chrono::nanoseconds d) {
  begin(o, op_code::timeout).timeout_ns = d.count() < 0 ? 0 : d.count();
}
void loop::prep_work(op& o, detail::work_item& item) { begin(o, op_code::work).buf = &item; }
void loop::prep_scandir(op& o, int dirfd, const char* path, std::vector<dir_entry>* out) {
  auto& a = begin(o, op_code::work);
  a.buf = &detail::scandir_item();
  a.dirfd = dirfd;
  a.path = path;
  a.out = out;
}
void loop::prep_read_dir(op& o, int dir_fd, std::vector<dir_entry>* out) {
  auto& a = begin(o, op_code::work);
  a.buf = &detail::read_dir_item();
  a.fd = dir_fd;
  a.out = out;
}
void loop::prep_poll(op& o, int fd, unsigned events) {
  auto& a = begin(o, op_code::poll);
  a.fd = fd;
  a.mode = events;
}
void loop::prep_link_timeout(op& o, std::chrono::nanoseconds d) {
  prep_timeout(o, d);
  A::link_flags(o) = detail::k_is_link_timeout;
}

// The file system ops added after sendfile; op.hpp lists which op_args field holds what.
void loop::prep_symlink(op& o, const char* target, int newdirfd, const char* linkpath) {
  auto& a = begin(o, op_code::symlink);
  a.path = target;
  a.dirfd2 = newdirfd;
  a.path2 = linkpath;
}
void loop::prep_link(op& o, int olddirfd, const char* oldpath, int newdirfd, const char* newpath, int flags) {
  auto& a = begin(o, op_code::link);
  a.dirfd = olddirfd;
  a.path = oldpath;
  a.dirfd2 = newdirfd;
  a.path2 = newpath;
  a.flags = static_cast<std::uint32_t>(flags);
}
void loop::prep_readlink(op& o, int dirfd, const char* path, char* buf, std::size_t len) {
  auto& a = begin(o, op_code::readlink);
  a.dirfd = dirfd;
  a.path = path;
  a.buf = buf;
  a.len = len;
}
void loop::prep_chmod(op& o, int dirfd, const char* path, unsigned mode) {
  auto& a = begin(o, op_code::chmod);
  a.dirfd = dirfd;
  a.path = path;
  a.mode = mode;
}
void loop::prep_fchmod(op& o, int fd, unsigned mode) {
  auto& a = begin(o, op_code::fchmod);
  a.fd = fd;
  a.mode = mode;
}
void loop::prep_chown(op& o, op_code c, int dirfd, const char* path, uid_t uid, gid_t gid) {
  auto& a = begin(o, c);
  a.dirfd = dirfd;
  a.path = path;
  a.mode = uid;
  a.len = gid;
  a.flags = c == op_code::lchown ? AT_SYMLINK_NOFOLLOW : 0;
}
void loop::prep_fchown(op& o, int fd, uid_t uid, gid_t gid) {
  auto& a = begin(o, op_code::fchown);
  a.fd = fd;
  a.mode = uid;
  a.len = gid;
}
void loop::prep_utimens(op& o, int dirfd, const char* path, const timespec times[2], int flags) {
  auto& a = begin(o, op_code::utimens);
  a.dirfd = dirfd;
  a.path = path;
  a.buf = const_cast<timespec*>(times);
  a.flags = static_cast<std::uint32_t>(flags);
}
void loop::prep_statfs(op& o, const char* path, struct statfs* out) {
  auto& a = begin(o, op_code::statfs);
  a.path = path;
  a.out = out;
}
void loop::prep_fstatfs(op& o, int fd, struct statfs* out) {
  auto& a = begin(o, op_code::fstatfs);
  a.fd = fd;
  a.out = out;
}
void loop::prep_copy_range(op& o, op_code c, int fd_in, std::uint64_t off_in, int fd_out, std::uint64_t off_out,
                           std::size_t len, unsigned flags) {
  auto& a = begin(o, c);
  a.fd_in = fd_in;
  a.offset = off_in;
  a.fd = fd_out;
  a.resolve = off_out;
  a.len = len;
  a.flags = flags;
}
void loop::prep_access(op& o, int dirfd, const char* path, int mode, int flags) {
  auto& a = begin(o, op_code::access);
  a.dirfd = dirfd;
  a.path = path;
  a.mode = static_cast<std::uint32_t>(mode);
  a.flags = static_cast<std::uint32_t>(flags);
}
void loop::prep_mktemp(op& o, op_code c, char* tmpl) { begin(o, c).buf = tmpl; }
void loop::prep_realpath(op& o, const char* path, char* buf, std::size_t len) {
  auto& a = begin(o, op_code::realpath);
  a.path = path;
  a.buf = buf;
  a.len = len;
}

// ---- the awaitables of the ops that give text ----
namespace {
constexpr std::size_t k_readlink_first = 256;       // most targets fit; longer ones run again
constexpr std::size_t k_readlink_max = 1u << 20;    // no file system stores a longer target
}  // namespace

void detail::text_awaitable::await_suspend(std::coroutine_handle<> h) {
  handle_ = h;
  if (kind_ == kind::readlink) text_.resize(k_readlink_first);
  if (kind_ == kind::realpath) text_.resize(PATH_MAX);
  start();
}

void detail::text_awaitable::start() {
  auto done = [this](op&) { on_done(); };
  switch (kind_) {
    case kind::readlink: loop_.readlink(op_, dirfd_, path_, text_.data(), text_.size(), done); break;
    case kind::realpath: loop_.realpath(op_, path_, text_.data(), text_.size(), done); break;
    case kind::mkdtemp: loop_.mkdtemp(op_, text_.data(), done); break;
    case kind::mkstemp: loop_.mkstemp(op_, text_.data(), done); break;
  }
}

// A readlink that filled the whole buffer may have been cut short: run it again, larger.
void detail::text_awaitable::on_done() {
  if (kind_ == kind::readlink && op_.ok() && op_.value() == text_.size() && text_.size() < k_readlink_max) {
    text_.resize(text_.size() * 4);
    start();
    return;
  }
  handle_.resume();
}

result<std::string> detail::text_awaitable::await_resume() {
  if (!op_.ok()) return op_.error();
  if (kind_ == kind::readlink && op_.value() == text_.size()) return errno_code(ENAMETOOLONG);
  if (kind_ == kind::readlink || kind_ == kind::realpath) text_.resize(op_.value());
  return std::move(text_);
}

result<temp_file> detail::temp_file_awaitable::await_resume() {
  if (!op_.ok()) return op_.error();
  return temp_file{static_cast<int>(op_.raw_result()), std::move(text_)};
}

}  // namespace unio
