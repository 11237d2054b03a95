// unio-serve: one worker per thread (its own unio::loop and SO_REUSEPORT listener), one
// coroutine per connection.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <memory>
#include <string>

#include "http.hpp"
#include "unio/unio.hpp"

namespace serve {

struct config {
  int root_fd = -1;                            // O_PATH directory fd of --root
  std::chrono::milliseconds timeout{10000};    // idle/slow client limit
  std::chrono::milliseconds grace{5000};       // shutdown: how long in-flight responses may run
  bool access_log = false;
  std::uint64_t sendfile_min = 64 * 1024;     // bodies this large or larger go out with sendfile
};

// A listening socket with SO_REUSEADDR and SO_REUSEPORT, so every worker can bind the same port.
unio::result<int> make_listener(const unio::endpoint& at);

class connection;

class worker {
 public:
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
  void remove(connection* c) noexcept;

 private:
  unio::task<void> accept_loop();
  void begin_stop();

  const config& cfg_;
  int listen_fd_;
  unio::op* accept_op_ = nullptr;  // the accept or back-off sleep in flight, for cancel
  bool stopping_ = false;
  connection* conns_ = nullptr;    // intrusive list of live connections
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

  connection* prev = nullptr;
  connection* next = nullptr;

 private:
  struct file {
    int fd = -1;
    struct statx st{};
  };
  using clock = std::chrono::steady_clock;

  unio::task<void> run();
  unio::task<bool> respond(const request& rq);
  unio::task<int> open_file(std::string& path, file& f);
  unio::task<int> open_one(const std::string& path, file& f);
  unio::task<bool> send_file(const request& rq, const file& f, bool keep);
  unio::task<bool> send_body(const file& f, std::uint64_t first, std::uint64_t len);
  unio::task<bool> reply_error(const request* rq, int status, bool keep, std::string_view extra = {});
  unio::task<bool> send_all(const char* p, std::size_t n, int flags = 0);
  unio::task<bool> read_and_send(const file& f, std::uint64_t first, std::uint64_t len, bool with_head);
  unio::task<void> linger_close();
  unio::task<void> stop_watchdog();
  void reserve(std::size_t n);
  void log(const request* rq);

  // The watchdog: one timeout op per connection that cancels the recv/send in flight once the
  // deadline (last progress + --timeout-ms) has passed.
  void touch() { deadline_ = std::min(w_.lp().now() + w_.cfg().timeout, stop_by_); }
  void set_deadline(clock::time_point t);
  void arm_watchdog();
  void on_watchdog(unio::op& o);

  worker& w_;
  int fd_;
  unio::endpoint peer_;
  request_parser parser_;
  char in_[16 * 1024];
  std::size_t pos_ = 0, end_ = 0;       // unparsed received bytes: in_[pos_, end_)
  std::string head_;                    // the response head being built
  std::unique_ptr<char[]> buf_;         // head + file data without sendfile, at most head + chunk
  std::size_t cap_ = 0;
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
  clock::time_point deadline_{}, armed_until_{};
  clock::time_point stop_by_ = clock::time_point::max();  // shutdown: progress cannot extend past it
  std::coroutine_handle<> wd_waiter_;
};

}  // namespace serve
