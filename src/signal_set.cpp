// signal_set: reads of a signalfd through the loop. Each wait has a buffer of its own (128 bytes,
// the one allocation of a wait), owned by the shared state so that it outlives the set when the
// set is destroyed while the read is in flight.
#include "unio/signal_set.hpp"

#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace unio {
namespace detail {
namespace {

// Numbers a set accepts: real signals that can be blocked. glibc's sigaddset refuses its own
// internal signals (32, 33) with EINVAL.
bool valid_signal(int sig) noexcept {
  if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP) return false;
  sigset_t probe;
  sigemptyset(&probe);
  return sigaddset(&probe, sig) == 0;
}

void block_in_this_thread(int sig) noexcept {
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  pthread_sigmask(SIG_BLOCK, &one, nullptr);
}

}  // namespace

signal_state::~signal_state() {
  if (fd >= 0) ::close(fd);
}

void* signal_state::add_wait(op& o) {
  waits.push_back({&o, std::make_unique<signalfd_siginfo>()});
  return waits.back().info.get();
}

result<int> signal_state::take(op& o) {
  auto it = std::find_if(waits.begin(), waits.end(), [&](const wait_slot& w) { return w.o == &o; });
  std::unique_ptr<signalfd_siginfo> info = std::move(it->info);
  waits.erase(it);
  if (!o.ok()) return o.error();
  if (o.value() != sizeof *info) return errno_code(EIO);  // not expected from a signalfd
  return static_cast<int>(info->ssi_signo);
}

void signal_state::cancel_all() {
  for (wait_slot& w : waits)
    lp->cancel(*w.o);
}

}  // namespace detail

signal_set::signal_set(loop& lp, std::initializer_list<int> signals) {
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : signals) {
    if (!detail::valid_signal(sig))
      throw std::system_error(EINVAL, std::generic_category(), "unio::signal_set");
    sigaddset(&mask, sig);
  }
  // Blocked first: one arriving before the signalfd exists then waits for it instead of running
  // its default action.
  for (int sig : signals)
    detail::block_in_this_thread(sig);
  int fd = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "unio::signal_set: signalfd");
  st_ = std::make_shared<detail::signal_state>(lp, fd, mask);
}

signal_set::~signal_set() { close(); }

signal_set& signal_set::operator=(signal_set&& o) noexcept {
  if (this != &o) {
    close();
    st_ = std::move(o.st_);
  }
  return *this;
}

void signal_set::close() noexcept {
  if (!st_) return;
  st_->cancel_all();
  st_.reset();
}

std::error_code signal_set::add(int sig) {
  if (!detail::valid_signal(sig)) return errno_code(EINVAL);
  detail::block_in_this_thread(sig);
  sigset_t mask = st_->mask;
  sigaddset(&mask, sig);
  if (::signalfd(st_->fd, &mask, 0) < 0) return errno_code(errno);
  st_->mask = mask;
  return {};
}

std::error_code signal_set::remove(int sig) {
  if (!detail::valid_signal(sig)) return errno_code(EINVAL);
  sigset_t mask = st_->mask;
  sigdelset(&mask, sig);
  if (::signalfd(st_->fd, &mask, 0) < 0) return errno_code(errno);
  st_->mask = mask;
  return {};
}

bool signal_set::contains(int sig) const noexcept {
  return detail::valid_signal(sig) && sigismember(&st_->mask, sig) == 1;
}

void signal_set::cancel() { st_->cancel_all(); }

}  // namespace unio
