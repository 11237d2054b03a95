#include "faults.hpp"

#include <cerrno>
#include <sstream>

namespace unio::soak {

const char* to_string(fault_group g) noexcept {
  static constexpr const char* names[] = {"read", "write", "sync", "open", "close", "accept", "recv", "send"};
  return names[static_cast<std::size_t>(g)];
}

const char* to_string(fault_kind k) noexcept {
  static constexpr const char* names[] = {"eintr", "eagain", "short", "fail"};
  return names[static_cast<std::size_t>(k)];
}

int fail_errno(fault_group g) noexcept {
  switch (g) {
    case fault_group::read: return EIO;
    case fault_group::write: return ENOSPC;
    case fault_group::sync: return EIO;
    case fault_group::open: return EMFILE;
    case fault_group::close: return EIO;
    case fault_group::accept: return EMFILE;
    case fault_group::recv: return ECONNRESET;
    case fault_group::send: return EPIPE;
    case fault_group::count_: break;
  }
  return EINVAL;
}

std::optional<fault_group> group_of(op_code c) noexcept {
  switch (c) {
    case op_code::read:
    case op_code::readv: return fault_group::read;
    case op_code::write:
    case op_code::writev: return fault_group::write;
    case op_code::fsync:
    case op_code::fdatasync: return fault_group::sync;
    case op_code::open: return fault_group::open;
    case op_code::close: return fault_group::close;
    case op_code::accept: return fault_group::accept;
    case op_code::recv: return fault_group::recv;
    case op_code::send: return fault_group::send;
    default: return std::nullopt;
  }
}

bool visible(fault_group g, fault_kind k) noexcept {
  bool socket = g == fault_group::accept || g == fault_group::recv || g == fault_group::send;
  bool transfer = g == fault_group::read || g == fault_group::write || g == fault_group::recv || g == fault_group::send;
  switch (k) {
    case fault_kind::eintr: return false;
    case fault_kind::eagain: return !socket;
    case fault_kind::short_io: return transfer;
    case fault_kind::fail: return true;
    case fault_kind::count_: break;
  }
  return false;
}

std::atomic<std::uint32_t>& fault_plan::seq(fault_group g, fault_kind k) noexcept {
  return seq_[static_cast<std::size_t>(g) * k_fault_kinds + static_cast<std::size_t>(k)];
}

fault_stamp fault_plan::stamp(fault_group g) const noexcept {
  fault_stamp s;
  for (std::size_t k = 0; k < k_fault_kinds; ++k) s.seq[k] = seq_[static_cast<std::size_t>(g) * k_fault_kinds + k].load();
  return s;
}

bool fault_plan::opened_since(fault_group g, fault_kind k, const fault_stamp& since) const noexcept {
  std::uint32_t then = since.seq[static_cast<std::size_t>(k)];
  std::uint32_t now = seq_[static_cast<std::size_t>(g) * k_fault_kinds + static_cast<std::size_t>(k)].load();
  return (then & 1u) != 0 || now != then;
}

// The seam's calls that make up group g.
template <class F>
void fault_plan::each_call(fault_group g, F f) const {
  switch (g) {
    case fault_group::read: f(fs_.pread), f(fs_.preadv2); break;
    case fault_group::write: f(fs_.pwrite), f(fs_.pwritev2); break;
    case fault_group::sync: f(fs_.fsync), f(fs_.fdatasync); break;
    case fault_group::open: f(fs_.openat2); break;
    case fault_group::close: f(fs_.close); break;
    case fault_group::accept: f(fs_.accept4); break;
    case fault_group::recv: f(fs_.recv); break;
    case fault_group::send: f(fs_.send); break;
    case fault_group::count_: break;
  }
}

// The sequence number turns odd before the fault is set, so an op whose call meets the fault
// was submitted either with the odd number or before it changed.
void fault_plan::arm(fault_group g, fault_kind k, long amount) {
  disarm(g);
  auto gi = static_cast<std::size_t>(g);
  open_[gi] = k;
  armed_amount_[gi] = amount;
  ++windows_[static_cast<std::size_t>(k)];
  seq(g, k).fetch_add(1);
  each_call(g, [&](test::fault& f) {
    switch (k) {
      case fault_kind::eintr: f.eintr = static_cast<int>(amount); break;
      case fault_kind::eagain: f.eagain = static_cast<int>(amount); break;
      case fault_kind::short_io: f.cap = amount; break;
      case fault_kind::fail:
        f.fail_after = f.passed.load() + amount;
        f.fail_errno = fail_errno(g);
        break;
      case fault_kind::count_: break;
    }
  });
}

// The fault is cleared before the sequence number turns even again, the reverse of arm().
void fault_plan::disarm(fault_group g) {
  auto gi = static_cast<std::size_t>(g);
  if (!open_[gi]) return;
  fault_kind k = *open_[gi];
  long left = 0, calls = 0;
  each_call(g, [&](test::fault& f) {
    ++calls;
    left += f.eintr.exchange(0) + f.eagain.exchange(0);
    f.cap = -1;
    f.fail_errno = 0;
  });
  if (k == fault_kind::eintr || k == fault_kind::eagain) {
    long taken = armed_amount_[gi] * calls - left;
    retried_injected_[gi] += taken;
    injected_[static_cast<std::size_t>(k)] += taken;
  }
  seq(g, k).fetch_add(1);
  open_[gi].reset();
}

void fault_plan::disarm_all() {
  for (std::size_t g = 0; g < k_fault_groups; ++g) disarm(static_cast<fault_group>(g));
}

long fault_plan::failures_injected(fault_group g) const noexcept {
  long refused = 0;
  each_call(g, [&](test::fault& f) { refused += f.calls.load() - f.passed.load(); });
  return refused - retried_injected_[static_cast<std::size_t>(g)];
}

std::string fault_plan::summary() const {
  std::ostringstream s;
  long failed = 0;
  for (std::size_t g = 0; g < k_fault_groups; ++g) failed += failures_injected(static_cast<fault_group>(g));
  s << "windows";
  for (std::size_t k = 0; k < k_fault_kinds; ++k) s << ' ' << to_string(static_cast<fault_kind>(k)) << '=' << windows_[k];
  s << ", injected eintr=" << injected_[0] << " eagain=" << injected_[1] << " fail=" << failed;
  return s.str();
}

}  // namespace unio::soak
