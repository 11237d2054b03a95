// driver: one loop's random workload, for the soak (tests/soak/main.cpp) and the op-sequence
// fuzzer (tests/fuzz/op_sequence_fuzz.cpp), checked op by op as it runs.
//
// The workload, on one loop: reads, writes, readv and writev at offsets of a few files, fsync and
// fdatasync, stat by fd and by path, ftruncate, close and open again; send and recv of patterned
// bytes over a socketpair and a TCP connection over loopback (closed and connected again now and
// then: close, connect, accept); timeouts and nops; chains (link_scope: write then read of the same
// bytes, write then fsync, nop-timeout-nop); link timeouts on reads, writes and recvs; cancels of
// ops in flight and of ops in the call that submitted them; posts from other threads. The choices
// come from a chooser: the soak's seeded generator, or the fuzzer's input bytes.
//
// What is checked, as each handler runs (the first violation goes to driver_options::report):
//  - exactly once: the handler runs on the loop's thread, once per submission, never for an op
//    already completed, and the op is no longer busy in it; at the end every kind's submitted
//    count equals its completed count;
//  - results are the ones the models allow: a read returns exactly the file model's bytes, a
//    completed write is what later reads see (the model), stat's size is the model's, recv gets
//    the sender's bytes in order (stream_model), a timeout fires no earlier than asked;
//  - ECANCELED only for an op that was cancelled, whose chain broke, or whose link timeout fired
//    (the timeout then completed with ETIME); an op cancelled in the call that submitted it has
//    not started and must complete with ECANCELED, with no effect; an op reported ECANCELED never
//    ran (a cancelled write left no bytes, a cancelled send sent none, a cancelled close left the
//    fd open);
//  - chains complete in order; a member after a failed or short one completes with ECANCELED;
//  - a fault shows only while its window was open and where the seam reaches the op
//    (fault_plan, test::seam_reaches); a short transfer only under a short_io window;
//  - posts from one thread run once each, in the order they were posted.
// verify_end() then compares each file with its model byte for byte and checks that every byte
// sent on an open connection was received.
#pragma once

#include <sys/stat.h>
#include <sys/uio.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "faults.hpp"
#include "models.hpp"
#include "unio/unio.hpp"

namespace unio::soak {

// The ops the driver submits, for accounting.
enum class kind : std::uint8_t {
  read, write, readv, writev, fsync, fdatasync, stat, ftruncate, open, close,
  timeout, nop, link_timeout, connect, accept, send, recv, count_
};
inline constexpr std::size_t k_kinds = static_cast<std::size_t>(kind::count_);
const char* to_string(kind k) noexcept;

// One step the driver can take.
enum class action : std::uint8_t {
  write, read, writev, readv, fsync, stat, ftruncate, reopen, timer, nop, send,
  chain_write_read, chain_write_sync, chain_timers, guarded_read, cancel_one, cancel_unstarted, post, reconnect,
  count_
};
inline constexpr std::size_t k_actions = static_cast<std::size_t>(action::count_);

// A source of choices.
class chooser {
 public:
  virtual ~chooser() = default;
  // A number in [0, n). REQUIRES: n >= 1.
  virtual std::uint32_t below(std::uint32_t n) = 0;
};

// Counts of one driver (the loop's thread only).
struct tally {
  std::array<std::uint64_t, k_kinds> submitted{}, completed{}, ecanceled{};
  std::array<std::uint64_t, k_fault_groups> failed{};  // results of fail_errno(group)
  std::uint64_t cancels = 0;       // cancel requests
  std::uint64_t faults_seen = 0;   // results a fault window shaped: errors and short transfers
  std::uint64_t chains = 0, guards_fired = 0, posts_sent = 0, posts_run = 0, reconnects = 0, bytes = 0;
  void add(const tally& o);
  std::uint64_t ops() const;  // every submission
};

struct driver_options {
  std::string name = "loop";  // for messages
  std::string dir;            // an existing directory for this driver's files
  unsigned files = 3;
  unsigned depth = 0;         // ops kept in flight: after each completion it acts until there are as many
  bool tcp = true;            // a TCP connection over loopback besides the socketpair
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::uint64_t seed = 0;     // file data and stream keys
  unsigned wait_percent = 100;  // timeouts and link timeouts: up to 1-3 ms at 100
  const fault_plan* faults = nullptr;  // the windows results are judged by; nullptr: no faults
  unsigned post_sources = 1;  // senders post_arrived() may name
  std::function<bool()> post;      // the post action: posts to some loop; false when it cannot
  std::function<void()> on_drain;  // called once, when draining starts
  // Called with the first violation. It must not return (the soak exits, the fuzzer aborts).
  std::function<void(const std::string&)> report;
  // A deliberate bug in the driver's own bookkeeping, to show its checks fail (unio_soak
  // --inject): "double" runs one completion's accounting twice, "model" records every write one
  // byte off, "stream" counts every send one byte longer, "ecanceled" forgets that one op was
  // cancelled. Empty: none.
  std::string inject;
};

class driver {
 public:
  // `lp` and `pick` must outlive the driver. Every method but in_flight_summary() runs on the
  // loop's thread.
  driver(unio::loop& lp, chooser& pick, driver_options o);
  ~driver();
  driver(const driver&) = delete;
  driver& operator=(const driver&) = delete;

  // Creates the files and sockets and submits the first ops (and, with a depth, fills it).
  void start();
  // Takes one step; false when it cannot be taken now (no free file range, no idle stream, ...).
  bool act(action a);
  // A step chosen by the chooser.
  action any_action();
  // From now on no new work: waits that would never end (a recv with nothing left to come, an
  // accept) are cancelled; streams are read to their end. run() then returns once all is done.
  void drain();
  // After the loop ran out of work: files against their models, streams complete, every
  // submission completed. Closes every fd the driver holds. "" or the first violation.
  std::string verify_end();
  // A post from `source` with sequence number seq (1, 2, ...) ran on this loop.
  void post_arrived(unsigned source, std::uint64_t seq);

  const tally& counts() const noexcept { return counts_; }
  // Ops in flight, per kind ("read 3, recv 2"); safe from any thread.
  std::string in_flight_summary() const;

 private:
  struct chain_state;
  struct file_state;
  struct conn;
  struct record;

  // records and accounting (driver.cpp)
  record& fresh(kind k);
  template <class Submit>
  void launch(record& r, Submit submit);
  void done(record& r, std::uint64_t serial);
  void account(record& r, std::uint64_t serial);
  void release(record& r);
  bool chain_step(record& r);
  void chain_done(record& r);
  void free_record(record& r);
  void fail(const record& r, const std::string& what);
  void after_completion();
  void refill();
  bool in_past_deadline();

  // results (judge.cpp)
  std::string judge(record& r, std::int64_t res, bool broken_before);
  std::string judge_error(record& r, std::int64_t res);
  std::string judge_read(record& r, std::int64_t res);
  std::string judge_write(record& r, std::int64_t res);
  std::string judge_stat(record& r, std::int64_t res);
  std::string judge_timeout(record& r, std::int64_t res);
  std::string judge_recv(record& r, std::int64_t res);
  std::string judge_send(record& r, std::int64_t res);
  std::string judge_pair(const record& guarded, const record& timer) const;
  bool window(const record& r, fault_kind k) const noexcept;
  void settle(record& r, std::int64_t res);
  void settle_file(record& r, std::int64_t res);

  // file actions (actions.cpp)
  file_state* pick_open_file();
  struct held_range {
    file_state* f = nullptr;
    std::uint64_t off = 0;
    std::size_t len = 0;
    file_model::lease lease;
  };
  bool take_range(std::size_t max_len, held_range& out);
  record& file_op(kind k, file_state& f, std::uint64_t off, std::size_t len, file_model::lease ls);
  void submit_file_op(record& r);
  std::int64_t some_wait(std::uint32_t max_us);
  void guard(record& r, std::uint32_t max_us);
  bool do_transfer(kind k, bool guarded);
  bool do_fsync();
  bool do_stat();
  bool do_ftruncate();
  bool do_reopen();
  bool do_timer(bool cancel_now);
  bool do_nop(bool cancel_now);
  bool do_chain_write_read(bool cancel_now);
  bool do_chain_write_sync();
  bool do_chain_timers();
  bool do_cancel_one();
  bool do_cancel_unstarted();
  bool do_post();
  chain_state* new_chain(int members, file_state* f, file_model::lease ls);
  // Cancels r in the call that submitted it. `may_forget`: the op --inject ecanceled may pick.
  void cancel_now(record& r, bool may_forget = false);

  // sockets (streams.cpp)
  void open_conns();
  bool do_send(bool cancel_now);
  bool do_reconnect();
  void arm_recv(conn& c, int dir);
  void tend(conn& c, int dir);
  void advance(conn& c);
  void begin_connect(conn& c);
  void accept_for(conn& c);
  void pause(conn& c);
  void close_fds(conn& c);
  void settle_socket(record& r, std::int64_t res);
  void settle_connecting(conn& c, record& r, std::int64_t res);
  std::string verify_streams() const;

  unio::loop& lp_;
  chooser& pick_;
  driver_options opt_;
  std::thread::id thread_;
  int dirfd_ = -1;
  int listener_ = -1;
  unio::endpoint listen_at_;
  std::array<bool, k_kinds> reach_{};  // the seam reaches this kind of op on this loop
  std::deque<record> records_;
  std::vector<record*> free_;
  std::vector<record*> live_;   // submitted, not yet completed
  std::deque<file_state> files_;
  std::deque<conn> conns_;
  std::vector<std::uint64_t> post_seen_;
  std::uint64_t serial_ = 0;
  std::uint64_t data_seed_ = 0;
  bool draining_ = false;
  bool injected_ = false;  // driver_options::inject has been done
  tally counts_;
  std::array<std::atomic<int>, k_kinds> in_flight_{};
};

// The fds this process has open (the entries of /proc/self/fd, its own directory fd included).
std::size_t open_fds();

}  // namespace unio::soak
