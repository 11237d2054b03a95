// reactor: epoll readiness for socket ops, and the sleep/wake primitive of the backends that
// do not wait on a kernel completion queue (sync, threadpool, linux_aio and posix_aio, which add
// their completion eventfds with watch_extra).
//
// Socket ops (accept, connect, recv, send, poll), and reads/writes at the current position of a
// stream (needs_readiness in backend.hpp), are first attempted without blocking; one that would
// block (EAGAIN, EINPROGRESS) is parked on its fd until epoll reports readiness, then attempted
// again. Ops on one fd and direction complete in submission order (polls in any order: they
// take nothing from the fd). Each fd is registered with EPOLLONESHOT and re-armed only while ops
// wait on it. An fd epoll refuses (EPERM: it has no poll support, so it is always ready, as
// poll(2) says) gets its ops performed at once.
//
// sendfile waits for its out_fd to be writable here like send; then, with a delegate queue set
// (delegate_to: every backend with a pool), it leaves the reactor for that queue and runs on the
// pool, since sendfile(2) may block on reading the file (never on the socket: the reactor makes
// out_fd non-blocking). Without one (sync) it runs inline. An op handed off no longer keeps the
// order of its fd's queue. splice does the same once both sides are ready: it waits for its
// input pipe to be readable or its output pipe writable, whichever is not, and the call never
// waits on a pipe (SPLICE_F_NONBLOCK), so a pipe emptied or filled meanwhile sends it back here.
//
// REQUIRES: an fd with parked ops is not closed behind the reactor's back (close it with
// loop::close after the ops completed or were cancelled).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <unordered_map>

#include "backend.hpp"

namespace unio::detail {

class reactor {
 public:
  // Throws std::system_error when epoll or the wake eventfd cannot be created.
  explicit reactor(backend_env& env);
  ~reactor();
  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;

  // Loop thread. Queues a socket op; it is attempted on the next wait().
  void submit(op& o);
  // Loop thread. Cancels a queued or parked op (completes it with ECANCELED); returns whether
  // the reactor held it.
  bool cancel(op& o);
  // Loop thread. Sets the queue that ready sendfile ops go to (see the top of the file).
  void delegate_to(op_queue& q) noexcept { delegate_ = &q; }
  // Loop thread. A delegated op came back from the pool with its result in A::res. Returns true
  // when the reactor took it back to wait for writability again (the socket filled up between
  // readiness and the call: EAGAIN). A cancel asked meanwhile turns that EAGAIN into ECANCELED
  // (false: the caller completes the op with A::res).
  bool take_back(op& o);
  // Loop thread. Watches an extra fd for readability (a pool's or a kernel queue's eventfd);
  // returns its bit in the mask wait() returns. At most 8 extra fds.
  unsigned watch_extra(int fd);
  // Loop thread. Attempts queued ops, then sleeps up to `timeout` (nullopt: no limit) unless
  // something completed; returns the mask of extra fds that became readable.
  unsigned wait(std::optional<std::chrono::nanoseconds> timeout);
  // Any thread.
  void wake() noexcept;
  // The epoll fd: readable when a parked op's fd, an extra fd or the wake eventfd is (spec item 12).
  int epoll_fd() const noexcept { return epfd_; }
  struct settled {
    unsigned extra = 0;         // the extra fds that are readable
    std::size_t completed = 0;  // ops completed or handed off
  };
  // Loop thread. For a host about to wait on epoll_fd(): attempts queued ops and handles every
  // event there is now (reading the wake eventfd), without sleeping, so that the epoll fd is
  // readable afterwards only for something new (or an extra fd the backend has yet to clear).
  settled settle();
  // Loop thread. Completes every held op with ECANCELED.
  void shutdown();
  bool idle() const noexcept { return held_ == 0; }

 private:
  struct fd_state {
    op_queue readers;  // accept, recv, read, readv
    op_queue writers;  // connect, send, write, writev
    op_queue pollers;  // poll: each asks for its own events, none waits for another
    bool registered = false;
  };

  // The queue of st an op waits in.
  static op_queue& queue_of(fd_state& st, op& o) noexcept;
  void attempt_queued();
  // One epoll_wait (up to 64 events) handled; returns how many there were.
  int handle_events(std::optional<std::chrono::nanoseconds> timeout, unsigned& extra);
  // Tries `o` once; returns true when it completed.
  bool attempt(op& o);
  void park(op& o);
  void arm(int fd, fd_state& st);
  void on_ready(int fd, std::uint32_t events);
  void run_queue(op_queue& q);
  void run_pollers(op_queue& q);
  void perform_unpollable(op_queue& q);
  void done(op& o, std::int64_t res);
  bool hand_off(op& o);

  backend_env& env_;
  int epfd_ = -1;
  int wake_fd_ = -1;
  unsigned extra_count_ = 0;
  op_queue fresh_;
  std::unordered_map<int, fd_state> fds_;
  std::size_t held_ = 0;
  std::size_t completed_in_attempt_ = 0;
  op_queue* delegate_ = nullptr;
  bool stopped_ = false;
};

}  // namespace unio::detail
