// unio-serve: one worker per thread (its own unio::loop, all accepting on one listening socket),
// one coroutine per connection.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>

#include "http.hpp"
#include "unio/unio.hpp"

namespace serve {

struct config {
  int root_fd = -1;                            // O_PATH directory fd of --root
  std::chrono::milliseconds timeout{10000};    // no byte moved either way this long: closed
  std::chrono::milliseconds header_timeout{30000};  // a request head must arrive within this
  std::chrono::milliseconds grace{5000};       // shutdown: how long in-flight responses may run
  bool access_log = false;
  std::uint64_t sendfile_min = 64 * 1024;     // bodies this large or larger go out with sendfile
};

// The server's one listening socket (SO_REUSEADDR, not SO_REUSEPORT: no other socket, of this
// process or another, can bind the port while it is open; EADDRINUSE if one already has it).
// Every worker accepts on it; the caller owns it and closes it after the workers are gone.
unio::result<int> make_listener(const unio::endpoint& at);

class connection;

class worker {
 public:
  // listen_fd is shared with the other workers and stays the caller's.
  worker(const config& cfg, int listen_fd, std::unique_ptr<unio::loop> lp);
  ~worker();
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  // Serves until request_stop(); returns once the in-flight responses are done.
  void run();
  // Thread-safe: stop accepting, close idle connections, let responses finish (bounded).
  void request_stop();

  unio::loop& lp() noexcept { return *lp_; }
  const config& cfg() const noexcept { return cfg_; }
  bool stopping() const noexcept { return stopping_; }
  void add(connection* c) noexcept;
  // When the last of a burst of connections is gone, freed memory is given back to the system.
  void remove(connection* c) noexcept;
  // The idle keep-alive connections (waiting for a request, nothing of it received), oldest
  // first: the first to go when fds run out.
  void idle_push(connection* c) noexcept;
  void idle_remove(connection* c) noexcept;
  // Out of fds (EMFILE/ENFILE): closes up to n of the oldest idle connections (their fds are
  // free once their coroutines have run: give the loop a turn). Returns how many it closed.
  // The first shedding of the process is reported once on stderr.
  std::size_t shed(std::size_t n);

 private:
  unio::task<void> accept_loop();
  unio::task<void> after_accept_error(std::error_code ec);
  void begin_stop();

  const config& cfg_;
  int listen_fd_;
  unio::op* accept_op_ = nullptr;  // the accept or back-off sleep in flight, for cancel
  bool stopping_ = false;
  connection* conns_ = nullptr;    // intrusive list of live connections
  std::size_t live_ = 0, peak_ = 0;  // connections now, and the most since memory was trimmed
  connection* idle_first_ = nullptr;  // intrusive list of idle connections, oldest first
  connection* idle_last_ = nullptr;
  std::unique_ptr<unio::loop> lp_;  // declared last: destroyed first, while the rest still lives
};

class connection {
 public:
  connection(worker& w, int fd, const unio::endpoint& peer);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Serves the connection until it closes; owns (and frees) it.
  static unio::task<void> serve(std::unique_ptr<connection> c);
  // The server is stopping: an idle connection closes now, a busy one within the grace period.
  void on_stop();
  // Closes an idle connection now (fd shedding); it leaves the idle list at once.
  void shed();

  connection* prev = nullptr;
  connection* next = nullptr;
  connection* idle_prev = nullptr;
  connection* idle_next = nullptr;
  bool in_idle_list = false;

 private:
  struct file {
    int fd = -1;
    struct statx st{};
  };
  using clock = std::chrono::steady_clock;

  unio::task<void> run();
  unio::task<bool> receive();
  unio::task<bool> respond(const request& rq);
  unio::task<int> open_file(std::string& path, file& f);
  unio::task<int> open_one(const std::string& path, file& f);
  unio::task<int> open_shedding(const std::string& path, file& f);
  unio::task<bool> send_file(const request& rq, const file& f, std::string_view path, bool keep);
  unio::task<bool> not_modified(std::time_t mtime, bool keep);
  unio::task<bool> send_body(const file& f, std::uint64_t first, std::uint64_t len);
  // Responses are queued in out_ (heads, error replies, small bodies) and sent by flush(): when
  // no further complete request is buffered, before a sendfile, or past flush_bytes. These
  // return whether the connection may go on (queueing cannot fail; sending can).
  unio::task<bool> reply_error(const request* rq, int status, bool keep, std::string_view extra = {});
  unio::task<bool> flush(int flags = 0);
  unio::task<bool> send_all(const char* p, std::size_t n, int flags = 0);
  unio::task<bool> read_and_send(const file& f, std::uint64_t first, std::uint64_t len);
  unio::task<void> linger_close();
  unio::task<void> stop_watchdog();
  void log(const request* rq);

  // The watchdog: one timeout op per connection, firing every quarter of --timeout-ms (or at
  // an earlier deadline). Progress is any byte the socket moved either way, read from the TCP
  // counters at each firing (tcpi_bytes_acked, tcpi_bytes_received) besides completed ops, so
  // a client reading slowly from a large sendfile is told from a dead one on every backend,
  // whatever the size of the op in flight. Once the deadline (last progress + --timeout-ms, the
  // head's deadline, or the stop's) has passed, the recv/send in flight is cancelled.
  void touch() { active_at_ = w_.lp().now(); }
  clock::time_point deadline() const {
    return std::min({active_at_ + w_.cfg().timeout, head_by_, stop_by_});
  }
  void limit(clock::time_point& bound, clock::time_point t);
  bool socket_moved();
  void arm_watchdog();
  void on_watchdog(unio::op& o);

  worker& w_;
  int fd_;
  unio::endpoint peer_;
  request_parser parser_;
  char in_[4 * 1024];                   // the parser is incremental: any size takes any head
  std::size_t pos_ = 0, end_ = 0;       // unparsed received bytes: in_[pos_, end_)
  std::string out_;                     // queued output: heads, error replies, small bodies
  int status_ = 0;                      // of the last response, for the access log
  std::uint64_t body_sent_ = 0;
  unio::op* current_ = nullptr;         // the recv/send/sendfile in flight, cancelled on timeout
  bool idle_ = false;                   // waiting for a request (nothing half-received)
  bool finished_ = false;
  // The deadline passed (a slow client, or the grace period after a stop) and the op in flight
  // was cancelled. A cancelled sendfile that had already moved bytes reports them instead of
  // ECANCELED, so the body loops check this flag rather than rely on the error.
  bool cut_ = false;
  unio::op wd_op_;
  clock::time_point active_at_{}, armed_until_{};
  clock::time_point head_by_ = clock::time_point::max();  // the request head in progress
  clock::time_point stop_by_ = clock::time_point::max();  // shutdown or linger: progress cannot extend past it
  std::uint64_t moved_ = 0;             // the socket's TCP byte counters at the last look
  std::coroutine_handle<> wd_waiter_;
};

}  // namespace serve
