// unio-serve: workers, the accept loop and the per-connection coroutine.
#include "server.hpp"

#include <fcntl.h>
#include <linux/tcp.h>  // struct tcp_info with tcpi_bytes_acked (glibc's netinet/tcp.h lacks it)
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "files.hpp"

namespace serve {
namespace {

constexpr std::size_t chunk_bytes = 256 * 1024;  // file data per read/send (no-sendfile fallback)
constexpr std::size_t flush_bytes = 64 * 1024;   // queued output sent before more is queued
constexpr std::size_t idle_out_bytes = 16 * 1024;  // an idle connection's output buffer kept
constexpr std::size_t sendfile_bytes = 1 << 30;  // asked of one sendfile op (it may send less)
constexpr std::size_t linger_bytes = 256 * 1024; // drained before closing after an error reply
constexpr auto accept_backoff = std::chrono::milliseconds(100);
constexpr auto shed_settle = std::chrono::milliseconds(1);  // a loop turn for shed connections to close
constexpr std::size_t shed_on_accept = 16;  // idle connections closed per EMFILE on accept
constexpr std::size_t shed_on_open = 4;     // ... and per EMFILE on a file's open
constexpr int open_retries = 3;             // opens retried after shedding, before a 503
constexpr auto linger_time = std::chrono::seconds(1);
constexpr std::size_t trim_after = 64;  // live connections at some point since the last trim

bool is_fd_exhaustion(std::error_code ec) {
  return ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system ||
         ec == std::errc::no_buffer_space || ec == std::errc::not_enough_memory;
}

// The status for a failed open.
int status_for(std::error_code ec) {
  switch (ec.value()) {
    case ENOENT: case ENOTDIR: return 404;
    case EXDEV: case EACCES: case EPERM: case ELOOP: return 403;
    case ENAMETOOLONG: return 414;
    case EMFILE: case ENFILE: case ENOMEM: return 503;
    default: return 500;
  }
}

}  // namespace

unio::result<int> make_listener(const unio::endpoint& at) {
  auto s = unio::tcp_socket(at.family());
  if (!s) return s.error();
  int one = 1;
  if (::setsockopt(*s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      ::bind(*s, at.addr(), at.length) < 0 || ::listen(*s, 1024) < 0) {
    int e = errno;
    ::close(*s);
    return unio::errno_code(e);
  }
  return *s;
}

// ---- worker ----

worker::worker(const config& cfg, int listen_fd, std::unique_ptr<unio::loop> lp)
    : cfg_(cfg), listen_fd_(listen_fd), lp_(std::move(lp)) {}

worker::~worker() {
  lp_.reset();  // runs what is left (nothing after a clean run) while the members still exist
}

void worker::run() {
  unio::spawn(accept_loop());
  lp_->run();
}

void worker::request_stop() {
  lp_->post([this] { begin_stop(); });
}

void worker::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  if (accept_op_) lp_->cancel(*accept_op_);
  for (connection* c = conns_; c != nullptr;) {
    connection* next = c->next;  // on_stop never frees c: cancellation completes later
    c->on_stop();
    c = next;
  }
}

void worker::add(connection* c) noexcept {
  c->next = conns_;
  if (conns_) conns_->prev = c;
  conns_ = c;
  peak_ = std::max(peak_, ++live_);
}

void worker::remove(connection* c) noexcept {
  if (c->prev) c->prev->next = c->next;
  else conns_ = c->next;
  if (c->next) c->next->prev = c->prev;
  if (--live_ == 0 && peak_ >= trim_after) {
    // A burst is over: give its memory back. malloc keeps freed chunks for reuse, and a few
    // live ones pin the top of the heap; without this RSS stayed at its high-water mark.
    ::malloc_trim(0);
    peak_ = 0;
  }
}

void worker::idle_push(connection* c) noexcept {
  c->idle_prev = idle_last_;
  c->idle_next = nullptr;
  if (idle_last_) idle_last_->idle_next = c;
  else idle_first_ = c;
  idle_last_ = c;
  c->in_idle_list = true;
}

void worker::idle_remove(connection* c) noexcept {
  if (!c->in_idle_list) return;
  if (c->idle_prev) c->idle_prev->idle_next = c->idle_next;
  else idle_first_ = c->idle_next;
  if (c->idle_next) c->idle_next->idle_prev = c->idle_prev;
  else idle_last_ = c->idle_prev;
  c->in_idle_list = false;
}

std::size_t worker::shed(std::size_t n) {
  std::size_t done = 0;
  for (; done < n && idle_first_ != nullptr; ++done) idle_first_->shed();  // leaves the list
  static std::atomic<bool> said{false};
  if (done > 0 && !said.exchange(true))
    std::fprintf(stderr, "unio-serve: out of file descriptors: closing the oldest idle keep-alive "
                         "connections to serve new requests (reported once)\n");
  return done;
}

unio::task<void> worker::accept_loop() {
  while (!stopping_) {
    unio::endpoint peer;
    peer.length = sizeof peer.storage;
    auto aw = lp_->async_accept(listen_fd_, peer.addr(), &peer.length);
    accept_op_ = &aw.get_op();
    auto fd = co_await aw;
    accept_op_ = nullptr;
    if (fd) {
      if (stopping_) { ::close(*fd); break; }
      int one = 1;
      ::setsockopt(*fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      unio::spawn(connection::serve(std::make_unique<connection>(*this, *fd, peer)));
      continue;
    }
    if (stopping_) break;
    auto ec = fd.error();
    if (ec == std::errc::connection_aborted || ec == std::errc::interrupted) continue;
    co_await after_accept_error(ec);
  }
}

// Out of fds (or another failure): the connection stays in the backlog. Idle keep-alive
// connections are closed to make room when there are any; else the loop backs off on a timer
// instead of spinning. Accepting is retried after either; never given up.
unio::task<void> worker::after_accept_error(std::error_code ec) {
  bool fds = is_fd_exhaustion(ec);
  if (!fds) std::fprintf(stderr, "unio-serve: accept: %s\n", ec.message().c_str());
  auto nap = lp_->async_sleep(fds && shed(shed_on_accept) > 0 ? shed_settle : accept_backoff);
  accept_op_ = &nap.get_op();
  (void)co_await nap;
  accept_op_ = nullptr;
}

// ---- connection: lifetime and watchdog ----

connection::connection(worker& w, int fd, const unio::endpoint& peer) : w_(w), fd_(fd), peer_(peer) {
  w_.add(this);
}

connection::~connection() {
  w_.idle_remove(this);
  w_.remove(this);
}

unio::task<void> connection::serve(std::unique_ptr<connection> c) {
  co_await c->run();
}

void connection::on_stop() {
  if (idle_ && current_) w_.lp().cancel(*current_);
  limit(stop_by_, w_.lp().now() + w_.cfg().grace);
}

void connection::shed() {
  w_.idle_remove(this);
  cut_ = true;
  if (current_) w_.lp().cancel(*current_);  // the idle recv: run() then closes the fd
}

// Lowers one of the deadlines; a watchdog armed for later is cancelled (its handler re-arms).
void connection::limit(clock::time_point& bound, clock::time_point t) {
  bound = std::min(bound, t);
  if (wd_op_.busy() && deadline() < armed_until_) w_.lp().cancel(wd_op_);
}

// True when the socket's TCP counters moved since the last look: bytes the peer acknowledged
// (it took them from the socket) or bytes that arrived from it.
bool connection::socket_moved() {
  tcp_info ti{};
  socklen_t len = sizeof ti;
  if (::getsockopt(fd_, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0) return false;
  std::uint64_t moved = ti.tcpi_bytes_acked + ti.tcpi_bytes_received;
  if (moved == moved_) return false;
  moved_ = moved;
  return true;
}

void connection::arm_watchdog() {
  auto now = w_.lp().now();
  auto step = std::max<clock::duration>(w_.cfg().timeout / 4, std::chrono::milliseconds(1));
  auto at = now + step;  // past the deadline (a cut in progress): look again a step later
  if (deadline() > now) at = std::min(at, deadline());
  armed_until_ = at;
  w_.lp().timeout(wd_op_, at - now, [this](unio::op& o) { on_watchdog(o); });
}

void connection::on_watchdog(unio::op&) {
  if (finished_) {
    if (wd_waiter_) std::exchange(wd_waiter_, {}).resume();  // may free *this
    return;
  }
  auto now = w_.lp().now();
  if (socket_moved()) active_at_ = now;
  if (now >= deadline()) {
    cut_ = true;
    if (current_) w_.lp().cancel(*current_);  // a file read in flight is waited for instead
  }
  arm_watchdog();
}

unio::task<void> connection::stop_watchdog() {
  finished_ = true;
  if (!wd_op_.busy()) co_return;
  w_.lp().cancel(wd_op_);
  struct until_done {
    connection& c;
    bool await_ready() const noexcept { return !c.wd_op_.busy(); }
    void await_suspend(std::coroutine_handle<> h) noexcept { c.wd_waiter_ = h; }
    void await_resume() const noexcept {}
  };
  co_await until_done{*this};
}

// ---- connection: the request loop ----

unio::task<void> connection::run() {
  touch();
  arm_watchdog();
  bool linger = false;
  for (;;) {
    if (pos_ < end_) pos_ += parser_.feed(in_ + pos_, end_ - pos_);
    auto st = parser_.status();
    if (st == request_parser::state::complete) {
      head_by_ = clock::time_point::max();
      bool keep = co_await respond(parser_.current());
      log(&parser_.current());
      if (!keep) { linger = co_await flush(); break; }
      parser_.next();
      if (out_.size() >= flush_bytes && !co_await flush()) break;
      continue;
    }
    if (st == request_parser::state::error) {
      (void)co_await reply_error(nullptr, parser_.error_status(), false);
      log(nullptr);
      linger = co_await flush();
      break;
    }
    pos_ = end_ = 0;  // the parser consumed everything it was given
    if (parser_.mid_request() && head_by_ == clock::time_point::max())
      limit(head_by_, w_.lp().now() + w_.cfg().header_timeout);  // the head's first bytes came
    // The answers to every request that came in one recv (pipelining) go out in one send.
    if (!co_await flush() || w_.stopping() || !co_await receive()) break;
  }
  if (linger && !cut_) co_await linger_close();  // a cut connection has nothing to save
  ::close(fd_);
  co_await stop_watchdog();
}

// Receives into in_; false on an error, a timeout (ECANCELED) or when the client closed its
// side. Waiting for a new request, the connection is idle: it may be shed meanwhile.
unio::task<bool> connection::receive() {
  bool waiting = !parser_.mid_request();
  if (waiting && out_.capacity() > idle_out_bytes) std::string().swap(out_);
  auto aw = w_.lp().async_recv(fd_, in_, sizeof in_);
  current_ = &aw.get_op();
  idle_ = true;
  if (waiting) w_.idle_push(this);
  auto n = co_await aw;
  w_.idle_remove(this);
  current_ = nullptr;
  idle_ = false;
  if (!n || *n == 0) co_return false;
  touch();
  end_ = *n;
  co_return true;
}

// After a response with "Connection: close", reads (and drops) what the client still sends for
// a short while, so that closing with unread data (a TCP reset) cannot destroy the response
// before the client has read it.
unio::task<void> connection::linger_close() {
  ::shutdown(fd_, SHUT_WR);
  limit(stop_by_, w_.lp().now() + linger_time);
  for (std::size_t drained = 0; drained < linger_bytes;) {
    auto aw = w_.lp().async_recv(fd_, in_, sizeof in_);
    current_ = &aw.get_op();
    idle_ = true;
    auto n = co_await aw;
    current_ = nullptr;
    idle_ = false;
    if (!n || *n == 0) break;
    drained += *n;
  }
}

unio::task<bool> connection::send_all(const char* p, std::size_t n, int flags) {
  while (n > 0) {
    auto aw = w_.lp().async_send(fd_, p, n, flags);
    current_ = &aw.get_op();
    auto r = co_await aw;
    current_ = nullptr;
    if (!r || *r == 0) co_return false;  // EPIPE/ECONNRESET/timeout: this connection only
    touch();
    p += *r;
    n -= *r;
  }
  co_return true;
}

unio::task<bool> connection::flush(int flags) {
  if (out_.empty()) co_return true;
  bool ok = co_await send_all(out_.data(), out_.size(), flags);
  out_.clear();
  co_return ok;
}

unio::task<bool> connection::reply_error(const request* rq, int status, bool keep,
                                         std::string_view extra) {
  append_error(out_, status, keep, rq && rq->method == HTTP_HEAD, extra);
  status_ = status;
  body_sent_ = 0;
  co_return keep;
}

// ---- connection: files ----

unio::task<bool> connection::respond(const request& rq) {
  constexpr std::string_view allow = "Allow: GET, HEAD\r\n";
  bool keep = rq.keep_alive && !rq.upgrade && !w_.stopping();
  bool get_or_head = rq.method == HTTP_GET || rq.method == HTTP_HEAD;
  if (rq.has_body)  // never read: this server takes no content; the connection closes
    co_return co_await reply_error(&rq, get_or_head ? 413 : 405, false, get_or_head ? "" : allow);
  if (!get_or_head) co_return co_await reply_error(&rq, 405, keep, allow);
  auto path = request_path(rq.target);
  if (!path) co_return co_await reply_error(&rq, 400, false);
  file f;
  int st = co_await open_file(*path, f);
  if (st == 301)
    co_return co_await reply_error(&rq, 301, keep, "Location: " + with_slash(rq.target) + "\r\n");
  if (st != 200) co_return co_await reply_error(&rq, st, keep);
  bool ok = co_await send_file(rq, f, *path, keep);
  ::close(f.fd);  // a regular file opened for reading: close does not block
  co_return ok && keep;
}

// Opens path below the root; a directory gives its index.html (and path becomes the index's),
// or 301 when the request named it without its trailing slash. Returns 200 or an error status.
unio::task<int> connection::open_file(std::string& path, file& f) {
  int st = co_await open_shedding(path, f);
  if (st != 200 || !S_ISDIR(f.st.stx_mode)) co_return st;
  ::close(f.fd);
  f.fd = -1;
  if (path != "." && path.back() != '/') co_return 301;
  path = index_path(path);
  st = co_await open_shedding(path, f);
  if (st == 200 && !S_ISREG(f.st.stx_mode)) {
    ::close(f.fd);
    f.fd = -1;
    st = 404;
  }
  co_return st;
}

// open_one; out of fds, idle connections are shed to make room and the open is tried again.
unio::task<int> connection::open_shedding(const std::string& path, file& f) {
  int st = co_await open_one(path, f);
  for (int i = 0; st == 503 && i < open_retries && w_.shed(shed_on_open) > 0; ++i) {
    co_await w_.lp().async_sleep(shed_settle);
    st = co_await open_one(path, f);
  }
  co_return st;
}

unio::task<int> connection::open_one(const std::string& path, file& f) {
  // The kernel refuses every escape (.., absolute paths, symlinks leading outside): EXDEV.
  unio::open_how how{.flags = O_RDONLY,
                     .resolve = unio::resolve::beneath | unio::resolve::no_magiclinks};
  auto fd = co_await w_.lp().async_open(w_.cfg().root_fd, path.c_str(), how);
  if (!fd) co_return status_for(fd.error());
  f.fd = *fd;
  auto s = co_await w_.lp().async_stat(f.fd, "", AT_EMPTY_PATH,
                                       STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_MTIME, &f.st);
  int st = !s ? 500 : (S_ISREG(f.st.stx_mode) || S_ISDIR(f.st.stx_mode)) ? 200 : 403;
  if (st != 200) {
    ::close(f.fd);
    f.fd = -1;
  }
  co_return st;
}

namespace {
// 304 when If-Modified-Since is a valid date, not in the future (RFC 9110 section 13.1.3: such
// a date is invalid and ignored), and the file is not newer.
bool is_not_modified(const request& rq, std::time_t mtime) {
  if (rq.if_modified_since.empty()) return false;
  auto since = parse_http_date(rq.if_modified_since);
  return since && *since <= std::time(nullptr) && mtime <= *since;
}
}  // namespace

unio::task<bool> connection::not_modified(std::time_t mtime, bool keep) {
  append_head(out_, 304, keep, "Last-Modified: " + http_date(mtime) + "\r\n");
  status_ = 304;
  body_sent_ = 0;
  co_return keep;
}

unio::task<bool> connection::send_file(const request& rq, const file& f, std::string_view path,
                                       bool keep) {
  std::uint64_t size = f.st.stx_size;
  std::time_t mtime = f.st.stx_mtime.tv_sec;
  if (is_not_modified(rq, mtime)) co_return co_await not_modified(mtime, keep);
  auto range = rq.range.empty() ? byte_range{} : parse_range(rq.range, size);
  if (range.kind == byte_range::unsatisfiable)
    co_return co_await reply_error(&rq, 416, keep,
                                   "Content-Range: bytes */" + std::to_string(size) + "\r\n");
  std::uint64_t first = 0, len = size;
  std::string extra = "Content-Type: ";
  extra += content_type(path);
  extra += "\r\nAccept-Ranges: bytes\r\nLast-Modified: " + http_date(mtime) + "\r\n";
  status_ = 200;
  if (range.kind == byte_range::satisfiable) {
    first = range.first;
    len = range.last - range.first + 1;
    status_ = 206;
    extra += "Content-Range: bytes " + std::to_string(first) + "-" + std::to_string(range.last) +
             "/" + std::to_string(size) + "\r\n";
  }
  extra += "Content-Length: " + std::to_string(len) + "\r\n";
  append_head(out_, status_, keep, extra);
  body_sent_ = 0;
  if (rq.method == HTTP_HEAD || len == 0) co_return true;
  co_return co_await send_body(f, first, len);
}

// Sends len bytes of the file from `first` after the queued output (which ends in this
// response's head). Bodies of at least cfg.sendfile_min bytes go out with sendfile (no copy
// through user space); the queued output is sent first with MSG_MORE so the kernel puts the
// head in the same segment as the body's first bytes. Smaller bodies are read into the queued
// output and go out with it (a copy of a few KiB costs less than handing the transfer to a pool
// thread or io-wq). A file that sendfile cannot read (EINVAL: a file system without splice
// support) is sent with reads too.
unio::task<bool> connection::send_body(const file& f, std::uint64_t first, std::uint64_t len) {
  if (len < w_.cfg().sendfile_min) co_return co_await read_and_send(f, first, len);
  if (!co_await flush(MSG_MORE)) co_return false;
  while (len > 0) {
    auto aw = w_.lp().async_sendfile(fd_, f.fd, first,
                                     static_cast<std::size_t>(std::min<std::uint64_t>(len, sendfile_bytes)));
    current_ = &aw.get_op();
    auto r = co_await aw;
    current_ = nullptr;
    if (!r && body_sent_ == 0 && (r.error() == unio::errno_code(EINVAL) || r.error() == unio::errno_code(ENOSYS)))
      co_return co_await read_and_send(f, first, len);
    // An error, a timeout, or 0: the file shrank, and the length promised cannot be kept.
    if (!r || *r == 0 || cut_) co_return false;
    touch();
    body_sent_ += *r;
    first += *r;
    len -= *r;
  }
  co_return true;
}

// The body read into the queued output in chunks; a chunk that fills it past flush_bytes is
// sent before the next is read, so memory stays at flush_bytes + chunk_bytes however large the
// file is. A small body stays queued: it goes out with the responses after it, if any.
unio::task<bool> connection::read_and_send(const file& f, std::uint64_t first, std::uint64_t len) {
  while (len > 0) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(len, chunk_bytes));
    std::size_t at = out_.size();
    out_.resize(at + want);
    auto r = co_await unio::read_exact(w_.lp(), f.fd, out_.data() + at, want, first);
    if (!r) co_return false;  // the file shrank or failed: the length promised cannot be kept
    body_sent_ += want;
    first += want;
    len -= want;
    if (out_.size() >= flush_bytes && !co_await flush()) co_return false;
  }
  co_return true;
}

// One line per response in the Common Log Format, to stdout.
void connection::log(const request* rq) {
  if (!w_.cfg().access_log) return;
  char when[64];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S +0000", &tm);
  std::string addr = peer_.to_string();
  addr = addr.substr(0, addr.rfind(':'));
  if (rq)
    std::printf("%s - - [%s] \"%s %s HTTP/%u.%u\" %d %llu\n", addr.c_str(), when,
                http_method_str(rq->method), rq->target.c_str(), rq->major, rq->minor, status_,
                static_cast<unsigned long long>(body_sent_));
  else
    std::printf("%s - - [%s] \"-\" %d 0\n", addr.c_str(), when, status_);
  std::fflush(stdout);
}

}  // namespace serve
