// io_uring_splice: sendfile on io_uring, as IORING_OP_SPLICE from the file into a pipe of the
// loop's (up to the pipe's capacity, from the op's offset), then SPLICE from the pipe to the
// socket until the pipe is empty; the op's result is what reached the socket.
//
// The kernel runs SPLICE on an io-wq worker (never inline), so a closed peer's SIGPIPE goes to
// that worker, which blocks every signal, and EPIPE is the result. A full non-blocking socket
// answers -EAGAIN (io-wq does not poll for SPLICE); the op then waits with POLL_ADD(POLLOUT) and
// splices again. out_fd is made non-blocking at the start so a worker never sleeps on it (it
// could not be stopped). Each op in flight has its own pipe (a few empty ones are kept for
// reuse); a pipe left with data (an error, a cancel) is closed, never reused. Loop thread only.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "backend.hpp"

namespace unio::detail::uring {

class splice_sendfile {
 public:
  splice_sendfile() = default;
  splice_sendfile(const splice_sendfile&) = delete;
  splice_sendfile& operator=(const splice_sendfile&) = delete;
  ~splice_sendfile() { release_all(); }

  // Gives a sendfile op a job with an empty pipe: 0, or the errno to complete it with.
  int start(op& o);
  // Fills the SQE of the op's current stage.
  void prep(io_uring_sqe* sqe, op& o) const;
  // One stage's CQE. nullopt: the op needs an SQE for its next stage; else its result (the job
  // is over). `stop`: a cancel or shutdown was asked, so no further stage starts.
  std::optional<std::int64_t> done(op& o, std::int32_t res, bool stop);
  // Ends the op's job now: what reached the socket, or `err` when nothing did.
  std::int64_t finish(op& o, std::int64_t err);
  // Closes every pipe (jobs of ops completed without their stage handler, spare pipes).
  void release_all() noexcept;

 private:
  enum class stage : std::uint8_t { fill, drain, wait };
  struct job {
    int pipe_r = -1;
    int pipe_w = -1;
    std::uint32_t capacity = 0;  // the pipe's size in bytes
    std::uint32_t in_pipe = 0;   // bytes read from the file, not yet sent
    std::uint64_t sent = 0;      // bytes that reached the socket
    stage at = stage::fill;
  };
  int take_pipe(job& j);
  void recycle(job& j);

  std::unordered_map<op*, job> jobs_;  // sendfile ops in flight
  std::vector<job> spare_;             // empty pipes for the next sendfile
};

}  // namespace unio::detail::uring
