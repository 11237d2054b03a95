// fault_plan: windows of faults injected through the syscall seam (tests/fault/faulty_syscalls.hpp),
// for the soak and the op-sequence fuzzer, with what an op may see because of them.
//
// The seam's system calls are grouped by the ops that make them (fault_group: read = pread and
// preadv2, write = pwrite and pwritev2, ...). A window arms one kind of fault on one group for a
// while: EINTR or EAGAIN for the next N calls, short transfers (at most N bytes a call), or a
// failure with the group's errno (fail_errno) once N more calls have passed. Each (group, kind)
// has a sequence number that is odd while its window is open, so an op that records the numbers
// at submission can tell at completion whether such a window was open at any time in between
// (opened_since): only then may its result show that fault. What each kind may show:
//   eintr     nothing: every call but close is retried, and close after EINTR has closed the fd;
//   eagain    -EAGAIN for file ops (read, write, sync, open, close); nothing for socket ops and
//             accept, which wait for readiness again;
//   short_io  a short read or write (sockets may be short anyway);
//   fail      -fail_errno(group).
//
// Thread-safety: arm/disarm from one thread (the coordinator); stamp/opened_since from any.
// The seam is process-global: REQUIRES at most one fault_plan, created before and destroyed after
// every loop that runs ops through it.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "fault/faulty_syscalls.hpp"
#include "unio/op.hpp"

namespace unio::soak {

enum class fault_group : std::uint8_t { read, write, sync, open, close, accept, recv, send, count_ };
enum class fault_kind : std::uint8_t { eintr, eagain, short_io, fail, count_ };
inline constexpr std::size_t k_fault_groups = static_cast<std::size_t>(fault_group::count_);
inline constexpr std::size_t k_fault_kinds = static_cast<std::size_t>(fault_kind::count_);

const char* to_string(fault_group g) noexcept;
const char* to_string(fault_kind k) noexcept;
// The errno a `fail` window injects into the group's calls (EIO, ENOSPC, EMFILE, ...).
int fail_errno(fault_group g) noexcept;
// The group whose seam calls op `c` makes; nullopt for ops whose calls the seam cannot fail
// (stat, ftruncate, connect, timers, nop).
std::optional<fault_group> group_of(op_code c) noexcept;
// Whether kind k on group g can change what an op sees (see the table above).
bool visible(fault_group g, fault_kind k) noexcept;

// The window sequence numbers of one group at one moment.
struct fault_stamp {
  std::array<std::uint32_t, k_fault_kinds> seq{};
};

class fault_plan {
 public:
  fault_plan() = default;
  fault_plan(const fault_plan&) = delete;
  fault_plan& operator=(const fault_plan&) = delete;

  fault_stamp stamp(fault_group g) const noexcept;
  // Whether a window of kind k on group g was open at some time since `since` was taken.
  bool opened_since(fault_group g, fault_kind k, const fault_stamp& since) const noexcept;

  // Opens a window (closing the group's open one first). amount: EINTR/EAGAIN count, the byte
  // cap, or the calls that pass before fail_errno starts.
  void arm(fault_group g, fault_kind k, long amount);
  void disarm(fault_group g);
  void disarm_all();

  // Calls that failed with fail_errno(g) so far. Exact once every window is closed and no op is
  // running (every other injected call is counted as it is taken back at disarm).
  long failures_injected(fault_group g) const noexcept;
  // Windows opened per kind, and the EINTR/EAGAIN/short faults injected, for the summary.
  std::string summary() const;

 private:
  template <class F>
  void each_call(fault_group g, F f) const;
  std::atomic<std::uint32_t>& seq(fault_group g, fault_kind k) noexcept;

  mutable test::faulty_syscalls fs_;  // its counters are atomics the seam's callers update
  std::array<std::atomic<std::uint32_t>, k_fault_groups * k_fault_kinds> seq_{};
  // Coordinator-only state.
  std::array<std::optional<fault_kind>, k_fault_groups> open_{};
  std::array<long, k_fault_groups> armed_amount_{};
  std::array<long, k_fault_groups> retried_injected_{};  // EINTR and EAGAIN taken by calls
  std::array<long, k_fault_kinds> windows_{};
  std::array<long, k_fault_kinds> injected_{};  // EINTR and EAGAIN only
};

}  // namespace unio::soak
