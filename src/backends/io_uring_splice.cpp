#include "io_uring_splice.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

namespace unio::detail::uring {
namespace {

constexpr std::size_t k_spare_pipes = 16;
// 1 MiB (fs.pipe-max-size's default): a 1 GiB body took 2.4x as long through a 256 KiB pipe
// as with sendfile(2) on the pool, and as long through 1 MiB. The pipe holds page references.
constexpr int k_pipe_size = 1024 * 1024;

}  // namespace

int splice_sendfile::start(op& o) {
  const op_args& a = A::args(o);
  job j;
  int err = a.offset > static_cast<std::uint64_t>(INT64_MAX) ? EINVAL : take_pipe(j);
  if (err != 0) return err;
  int fl = ::fcntl(a.fd, F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK) == 0) ::fcntl(a.fd, F_SETFL, fl | O_NONBLOCK);
  jobs_[&o] = j;
  return 0;
}

int splice_sendfile::take_pipe(job& j) {
  if (!spare_.empty()) {
    j = spare_.back();
    spare_.pop_back();
    return 0;
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) return errno;
  (void)::fcntl(fds[1], F_SETPIPE_SZ, k_pipe_size);  // a smaller pipe only means more rounds
  int cap = ::fcntl(fds[1], F_GETPIPE_SZ);
  j.pipe_r = fds[0];
  j.pipe_w = fds[1];
  j.capacity = cap > 0 ? static_cast<std::uint32_t>(cap) : 4096;
  return 0;
}

void splice_sendfile::prep(io_uring_sqe* sqe, op& o) const {
  const op_args& a = A::args(o);
  const job& j = jobs_.at(&o);
  switch (j.at) {
    case stage::fill: {
      auto n = static_cast<unsigned>(std::min<std::uint64_t>(a.len, j.capacity));
      io_uring_prep_splice(sqe, a.fd_in, static_cast<std::int64_t>(a.offset), j.pipe_w, -1, n, 0);
      break;
    }
    case stage::drain: io_uring_prep_splice(sqe, j.pipe_r, -1, a.fd, -1, j.in_pipe, 0); break;
    case stage::wait: io_uring_prep_poll_add(sqe, a.fd, POLLOUT); break;
  }
}

std::optional<std::int64_t> splice_sendfile::done(op& o, std::int32_t res, bool stop) {
  job& j = jobs_.at(&o);
  if (res == -EAGAIN && j.at == stage::drain && !stop) {  // the socket is full
    j.at = stage::wait;
    return std::nullopt;
  }
  if (res < 0) return finish(o, stop || res == -EINTR ? -ECANCELED : res);
  switch (j.at) {
    case stage::fill:
      if (res == 0) return finish(o, 0);  // at or past the end of the file (or len 0)
      j.in_pipe = static_cast<std::uint32_t>(res);
      j.at = stage::drain;
      break;
    case stage::drain:
      if (res == 0) return finish(o, -EIO);  // the pipe had data: never expected
      j.sent += static_cast<std::uint64_t>(res);
      j.in_pipe -= std::min(static_cast<std::uint32_t>(res), j.in_pipe);
      if (j.in_pipe == 0) return finish(o, 0);
      break;
    case stage::wait: j.at = stage::drain; break;
  }
  if (stop) return finish(o, -ECANCELED);
  return std::nullopt;
}

std::int64_t splice_sendfile::finish(op& o, std::int64_t err) {
  auto it = jobs_.find(&o);
  if (it == jobs_.end()) return err;
  job j = it->second;
  jobs_.erase(it);
  const std::uint64_t sent = j.sent;
  recycle(j);
  return sent > 0 ? static_cast<std::int64_t>(sent) : err;
}

// An empty pipe is kept for the next op; one with data left in it is closed.
void splice_sendfile::recycle(job& j) {
  if (j.in_pipe == 0 && spare_.size() < k_spare_pipes) {
    j.sent = 0;
    j.at = stage::fill;
    spare_.push_back(j);
    return;
  }
  ::close(j.pipe_r);
  ::close(j.pipe_w);
}

void splice_sendfile::release_all() noexcept {
  for (auto& [o, j] : jobs_) {
    ::close(j.pipe_r);
    ::close(j.pipe_w);
  }
  jobs_.clear();
  for (auto& j : spare_) {
    ::close(j.pipe_r);
    ::close(j.pipe_w);
  }
  spare_.clear();
}

}  // namespace unio::detail::uring
