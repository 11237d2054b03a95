// The driver's private types: one record per submission, the files and connections it works on,
// and chain state. Included by the driver's .cpp files only.
#pragma once

#include <sys/stat.h>
#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "driver.hpp"

namespace unio::soak {

// The kind an op_code is counted as (for the seam and the names).
op_code code_of(kind k) noexcept;
bool is_transfer(kind k) noexcept;

// Members complete in chain order, except that a member cancelled while it waits (held) completes
// at once, with the members after it, ahead of the one still running before it.
struct driver::chain_state {
  int members = 0;
  int completed = 0;
  std::uint32_t done_mask = 0;  // bit i: member i completed
  int first_broken = 1 << 30;   // the first member that failed, was short or ECANCELED
  // The file range the chain works on, held until every member has completed: a held member
  // cancelled while an earlier one runs completes first.
  file_state* f = nullptr;
  file_model::lease lease;
};

struct driver::file_state {
  enum class phase : std::uint8_t { open, closing, closed, opening };
  std::string name;  // relative to the driver's directory
  int fd = -1;
  phase ph = phase::open;
  unsigned users = 0;  // ops in flight on fd
  file_model model;
};

// A connection: two fds, a stream each way. dir[i] goes from fd[i] to fd[1 - i].
struct driver::conn {
  enum class phase : std::uint8_t { open, quiescing, closing, connecting, down };
  bool tcp = false;
  int fd[2] = {-1, -1};  // tcp: fd[0] connects, fd[1] is accepted
  stream_model dir[2];
  bool send_busy[2] = {false, false};
  record* recv[2] = {nullptr, nullptr};  // the recv in flight on each direction
  phase ph = phase::down;
  int busy = 0;  // ops in flight on it
  bool retry = false;  // a close or accept a fault failed runs again after a pause (a timeout)
  // While connecting (tcp):
  bool connect_ok = false, connect_failed = false;
  record* accept_rec = nullptr;  // the accept in flight
};

struct driver::record {
  unio::op op;
  std::uint64_t serial = 0;  // this submission's number; 0 while free
  kind k = kind::nop;
  bool done = false;
  bool cancel_asked = false;
  bool cancel_unstarted = false;  // cancelled in the call that submitted it: must be ECANCELED
  bool reachable = false;         // the seam reaches it on this loop
  bool unexplained_cancel = false;  // ECANCELED: only its link timeout's ETIME can explain it
  std::int64_t res = 0;
  fault_stamp stamp;
  std::chrono::steady_clock::time_point started;
  std::int64_t wait_ns = 0;  // timeout, link_timeout
  // files
  file_state* f = nullptr;
  file_model::lease lease;  // held by this op (a chain's is the chain's)
  std::uint64_t off = 0;
  std::size_t len = 0;
  std::vector<char> buf;
  iovec iov[3] = {};
  int iovcnt = 0;
  bool by_path = false;
  struct statx stx = {};
  // sockets
  conn* c = nullptr;
  int dir = 0;
  int fd = -1;  // close: the fd it closes
  // links
  chain_state* ch = nullptr;
  int chain_index = 0;
  record* partner = nullptr;  // a guarded op and its link timeout point at each other
};

template <class Submit>
void driver::launch(record& r, Submit submit) {
  const auto k = static_cast<std::size_t>(r.k);
  r.serial = ++serial_;
  if (auto g = group_of(code_of(r.k)); g && opt_.faults != nullptr) r.stamp = opt_.faults->stamp(*g);
  r.reachable = reach_[k];
  r.started = std::chrono::steady_clock::now();
  ++counts_.submitted[k];
  in_flight_[k].fetch_add(1, std::memory_order_relaxed);
  live_.push_back(&r);
  submit(r.op, [this, rp = &r, serial = r.serial](unio::op&) { done(*rp, serial); });
}

}  // namespace unio::soak
