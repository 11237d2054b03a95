#include "reactor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <system_error>

#include "sys/syscalls.hpp"

namespace unio::detail {
namespace {

constexpr std::uint64_t k_wake_tag = 1ull << 40;
constexpr int k_max_events = 64;
constexpr std::uint64_t k_extra_tag = 2ull << 40;
// backend_word_ of a connect op whose non-blocking connect() is in progress.
constexpr std::uintptr_t k_connecting = 1;
// op flag: cancel() was asked for a sendfile the reactor did not hold (it was on the pool).
constexpr std::uint8_t k_cancel_asked = op_flag::reactor_cancel_asked;

bool is_reader(op_code c) noexcept {
  return c == op_code::accept || c == op_code::recv || c == op_code::recvfrom || c == op_code::recvmsg ||
         c == op_code::read || c == op_code::readv;
}

// backend_word_ of a splice that waits for its output (else it waits for its input).
constexpr std::uintptr_t k_splice_out = 2;

// The fd an op waits on, and whether it waits to read: a splice waits on the side that
// splice_ready() found not ready.
int wait_fd(op& o) noexcept {
  bool input = o.code() == op_code::splice && A::word(o) != k_splice_out;
  return input ? A::args(o).fd_in : A::args(o).fd;
}
bool waits_to_read(op& o) noexcept {
  return o.code() == op_code::splice ? A::word(o) != k_splice_out : is_reader(o.code());
}

bool is_pipe(int fd) noexcept {
  struct stat st;
  return ::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

// Whether both sides of a splice are ready (a regular file always is; a bad fd counts as ready:
// the call reports it). Otherwise A::word names the side to wait for; when both are ready it
// names a pipe side, in case the call still finds it busy.
bool splice_ready(op& o) noexcept {
  const op_args& a = A::args(o);
  pollfd p[2] = {{a.fd_in, POLLIN, 0}, {a.fd, POLLOUT, 0}};
  if (::poll(p, 2, 0) < 0) return true;
  bool in = p[0].revents != 0, out = p[1].revents != 0;
  if (!in || !out) A::word(o) = in ? k_splice_out : 0;
  else A::word(o) = is_pipe(a.fd_in) ? 0 : k_splice_out;
  return in && out;
}

// accept4 on a blocking listening socket would block the loop; make it non-blocking first.
void ensure_nonblocking(int fd) noexcept {
  int fl = ::fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK) == 0) ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

// epoll_pwait2 (Linux 5.11) takes a nanosecond timeout; epoll_wait only milliseconds, which
// would make every timer up to 1 ms late. Fall back to it on older kernels.
int wait_events(int epfd, epoll_event* evs, int max, std::optional<std::chrono::nanoseconds> t) noexcept {
  static std::atomic<bool> have_pwait2{true};
  if (have_pwait2) {
    timespec ts{};
    if (t) {
      auto ns = t->count() < 0 ? 0 : t->count();
      ts.tv_sec = ns / 1'000'000'000;
      ts.tv_nsec = ns % 1'000'000'000;
    }
    int n = ::epoll_pwait2(epfd, evs, max, t ? &ts : nullptr, nullptr);
    if (n >= 0 || errno != ENOSYS) return n < 0 ? 0 : n;
    have_pwait2.store(false);
  }
  int ms = -1;
  if (t) ms = t->count() <= 0 ? 0 : static_cast<int>(std::min<long long>((t->count() + 999'999) / 1'000'000, 1'000'000'000));
  int n = ::epoll_wait(epfd, evs, max, ms);
  return n < 0 ? 0 : n;
}

}  // namespace

reactor::reactor(backend_env& env) : env_(env) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "unio: epoll_create1");
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    int e = errno;
    ::close(epfd_);
    throw std::system_error(e, std::generic_category(), "unio: eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = k_wake_tag;
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, wake_fd_, &ev);
}

reactor::~reactor() {
  ::close(wake_fd_);
  ::close(epfd_);
}

void reactor::submit(op& o) {
  A::word(o) = 0;
  ++held_;
  fresh_.push(o);
}

bool reactor::cancel(op& o) {
  bool found = fresh_.remove(o);
  if (!found) {
    auto it = fds_.find(wait_fd(o));
    if (it != fds_.end()) found = queue_of(it->second, o).remove(o);
  }
  if (found) done(o, -ECANCELED);
  else if (waits_then_delegates(o.code())) set_flag(o, k_cancel_asked);
  return found;
}

bool reactor::take_back(op& o) {
  if (!waits_then_delegates(o.code()) || A::res(o) != -EAGAIN) return false;
  if ((A::flags(o) & k_cancel_asked) != 0 || stopped_) {
    A::res(o) = -ECANCELED;
    return false;
  }
  submit(o);
  return true;
}

// A sendfile whose out_fd is writable (or in error: the call reports it), or a splice whose
// sides are ready (checked by the caller), leaves for the pool.
bool reactor::hand_off(op& o) {
  pollfd p{A::args(o).fd, POLLOUT, 0};
  if (o.code() == op_code::sendfile && ::poll(&p, 1, 0) == 0) return false;
  --held_;
  ++completed_in_attempt_;  // the backend must not sleep before it passes the op on
  delegate_->push(o);
  return true;
}

unsigned reactor::watch_extra(int fd) {
  if (extra_count_ >= 8) throw std::system_error(EINVAL, std::generic_category(), "unio: too many extra fds");
  unsigned bit = 1u << extra_count_;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = k_extra_tag | bit;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0)
    throw std::system_error(errno, std::generic_category(), "unio: epoll_ctl");
  ++extra_count_;
  return bit;
}

void reactor::done(op& o, std::int64_t res) {
  --held_;
  ++completed_in_attempt_;
  env_.complete(o, res);
}

bool reactor::attempt(op& o) {
  const op_args& a = A::args(o);
  std::int64_t res;
  if (o.code() == op_code::connect && A::word(o) == k_connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    res = ::getsockopt(a.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ? -errno : -err;
  } else {
    if (o.code() == op_code::accept || o.code() == op_code::connect || o.code() == op_code::sendfile)
      ensure_nonblocking(a.fd);
    if (o.code() == op_code::splice && !splice_ready(o)) return false;
    if (waits_then_delegates(o.code()) && delegate_ != nullptr) return hand_off(o);
    res = sys::attempt_nonblocking(o);
  }
  if (res == -EAGAIN || res == -EWOULDBLOCK) return false;
  if (o.code() == op_code::connect && (res == -EINPROGRESS || res == -EALREADY)) {
    A::word(o) = k_connecting;
    return false;
  }
  done(o, res);
  return true;
}

op_queue& reactor::queue_of(fd_state& st, op& o) noexcept {
  if (o.code() == op_code::poll) return st.pollers;
  return waits_to_read(o) ? st.readers : st.writers;
}

void reactor::park(op& o) {
  int fd = wait_fd(o);
  fd_state& st = fds_[fd];
  queue_of(st, o).push(o);
  arm(fd, st);
}

void reactor::arm(int fd, fd_state& st) {
  epoll_event ev{};
  ev.events = EPOLLONESHOT | EPOLLRDHUP;
  if (!st.readers.empty()) ev.events |= EPOLLIN;
  if (!st.writers.empty()) ev.events |= EPOLLOUT;
  st.pollers.for_each([&](op& p) { ev.events |= A::args(p).mode & (EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP); });
  ev.data.u64 = static_cast<std::uint32_t>(fd);
  // The fd may have been closed and its number reused since it was registered (epoll forgets
  // closed fds), so fall back between MOD and ADD.
  int op1 = st.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  int r = ::epoll_ctl(epfd_, op1, fd, &ev);
  if (r < 0 && (errno == ENOENT || errno == EEXIST)) {
    r = ::epoll_ctl(epfd_, op1 == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
  }
  if (r < 0) {
    int e = errno;
    st.registered = false;
    op_queue waiting;
    waiting.splice(st.readers);
    waiting.splice(st.writers);
    waiting.splice(st.pollers);
    if (e == EPERM) perform_unpollable(waiting);
    while (op* o = waiting.pop()) done(*o, -e);  // a closed fd
    return;
  }
  st.registered = true;
}

// epoll refused the fd (EPERM): it has no poll support, so it never waits (a regular file, most
// character devices). Only an fd number reused behind the loop's back gets here: the ops run now.
void reactor::perform_unpollable(op_queue& q) {
  while (op* o = q.pop()) done(*o, sys::perform(*o));
}

// Polls complete in any order: each is tried, those still waiting stay.
void reactor::run_pollers(op_queue& q) {
  op_queue waiting;
  while (op* o = q.pop())
    if (!attempt(*o)) waiting.push(*o);
  q.splice(waiting);
}

void reactor::run_queue(op_queue& q) {
  while (op* o = q.pop()) {
    const int fd = wait_fd(*o);
    const bool reads = waits_to_read(*o);
    if (attempt(*o)) continue;
    if (wait_fd(*o) != fd || waits_to_read(*o) != reads) {  // a splice now waits for its other side
      park(*o);
      continue;
    }
    // Still not ready: put it back at the front, keeping the order of the rest.
    op_queue rest;
    rest.splice(q);
    q.push(*o);
    q.splice(rest);
    return;
  }
}

void reactor::on_ready(int fd, std::uint32_t events) {
  auto it = fds_.find(fd);
  if (it == fds_.end()) return;
  fd_state& st = it->second;
  const std::uint32_t err = EPOLLERR | EPOLLHUP;
  if ((events & (EPOLLIN | EPOLLRDHUP | err)) != 0) run_queue(st.readers);
  if ((events & (EPOLLOUT | err)) != 0) run_queue(st.writers);
  run_pollers(st.pollers);
  if (!st.readers.empty() || !st.writers.empty() || !st.pollers.empty()) arm(fd, st);
}

void reactor::attempt_queued() {
  op_queue todo;
  todo.splice(fresh_);
  while (op* o = todo.pop()) {
    auto it = fds_.find(wait_fd(*o));
    // Keep per-fd order: an op behind parked ones on the same direction waits its turn.
    if (it != fds_.end() && o->code() != op_code::poll) {
      op_queue& q = queue_of(it->second, *o);
      if (!q.empty()) {
        q.push(*o);
        continue;
      }
    }
    if (!attempt(*o)) park(*o);
  }
}

unsigned reactor::wait(std::optional<std::chrono::nanoseconds> timeout) {
  completed_in_attempt_ = 0;
  attempt_queued();
  if (completed_in_attempt_ > 0) timeout = std::chrono::nanoseconds(0);
  // A non-blocking turn with no socket op parked has nothing to learn from epoll; skipping the
  // syscall keeps busy file-only loops cheap. Wake-ups left in the eventfd are read later.
  if (timeout && timeout->count() <= 0 && held_ == 0) return 0;
  unsigned extra = 0;
  handle_events(timeout, extra);
  return extra;
}

reactor::settled reactor::settle() {
  completed_in_attempt_ = 0;
  attempt_queued();
  settled s;
  while (handle_events(std::chrono::nanoseconds(0), s.extra) == k_max_events) {
  }
  s.completed = completed_in_attempt_;
  return s;
}

int reactor::handle_events(std::optional<std::chrono::nanoseconds> timeout, unsigned& extra) {
  epoll_event evs[k_max_events];
  int n = wait_events(epfd_, evs, k_max_events, timeout);
  for (int i = 0; i < n; ++i) {
    std::uint64_t tag = evs[i].data.u64;
    if (tag == k_wake_tag) {
      std::uint64_t v;
      (void)::read(wake_fd_, &v, sizeof v);
    } else if ((tag & k_extra_tag) != 0) {
      extra |= static_cast<unsigned>(tag & 0xff);
    } else {
      on_ready(static_cast<int>(tag), evs[i].events);
    }
  }
  return n;
}

void reactor::wake() noexcept {
  std::uint64_t one = 1;
  (void)::write(wake_fd_, &one, sizeof one);
}

void reactor::shutdown() {
  stopped_ = true;
  while (op* o = fresh_.pop()) done(*o, -ECANCELED);
  for (auto& [fd, st] : fds_) {
    while (op* o = st.readers.pop()) done(*o, -ECANCELED);
    while (op* o = st.writers.pop()) done(*o, -ECANCELED);
    while (op* o = st.pollers.pop()) done(*o, -ECANCELED);
  }
  fds_.clear();
}

}  // namespace unio::detail
