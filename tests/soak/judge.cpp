// What a result may be, and what it changes in the models.
#include <string.h>

#include <cerrno>
#include <string>

#include "records.hpp"

namespace unio::soak {

namespace {
std::string describe(std::int64_t res) {
  if (res >= 0) return std::to_string(res);
  const char* name = ::strerrorname_np(static_cast<int>(-res));
  return std::string("-") + (name != nullptr ? name : std::to_string(-res).c_str());
}
}  // namespace

// Whether a window of kind k that can change this op's result was open while it was in flight.
bool driver::window(const record& r, fault_kind k) const noexcept {
  auto g = group_of(code_of(r.k));
  return g && r.reachable && opt_.faults != nullptr && visible(*g, k) && opt_.faults->opened_since(*g, k, r.stamp);
}

// "" when `res` is a result the models and the fault windows allow for r.
std::string driver::judge(record& r, std::int64_t res, bool broken_before) {
  if (res == -ECANCELED) {
    if (r.k == kind::link_timeout || r.cancel_asked || broken_before) return "";
    if (r.partner != nullptr) {  // only its link timeout firing explains it: judged with the pair
      r.unexplained_cancel = true;
      return "";
    }
    return "ECANCELED, but it was not cancelled, its chain did not break and it has no link timeout";
  }
  if (r.cancel_unstarted)
    return "cancelled in the call that submitted it (not started), yet completed with " + describe(res);
  if (broken_before)
    return "completed with " + describe(res) + " after an earlier member of its chain failed (must be ECANCELED)";
  if (r.k == kind::link_timeout) return res == -ETIME ? "" : "a link timeout completed with " + describe(res);
  if (res < 0) return judge_error(r, res);
  switch (r.k) {
    case kind::read:
    case kind::readv: return judge_read(r, res);
    case kind::write:
    case kind::writev: return judge_write(r, res);
    case kind::stat: return judge_stat(r, res);
    case kind::timeout: return judge_timeout(r, res);
    case kind::recv: return judge_recv(r, res);
    case kind::send: return judge_send(r, res);
    case kind::open:
    case kind::accept: return "";  // a new fd
    default: return res == 0 ? "" : "completed with " + describe(res) + ", not 0";
  }
}

std::string driver::judge_error(record& r, std::int64_t res) {
  auto g = group_of(code_of(r.k));
  int e = static_cast<int>(-res);
  if (g && e == fail_errno(*g) && window(r, fault_kind::fail)) {
    ++counts_.failed[static_cast<std::size_t>(*g)];
    ++counts_.faults_seen;
    return "";
  }
  if (e == EAGAIN && window(r, fault_kind::eagain)) {
    ++counts_.faults_seen;
    return "";
  }
  std::string where = g && !r.reachable ? " (the seam does not reach it on this backend)" : "";
  return "completed with " + describe(res) + ", which no fault window explains" + where;
}

std::string driver::judge_read(record& r, std::int64_t res) {
  std::string want = r.f->model.expect(r.off, r.len);
  auto n = static_cast<std::size_t>(res);
  if (n > want.size()) return "read " + std::to_string(n) + " bytes, the file model has " + std::to_string(want.size());
  if (n < want.size()) {
    if (!window(r, fault_kind::short_io))
      return "short read: " + std::to_string(n) + " of the " + std::to_string(want.size()) + " bytes the model has";
    ++counts_.faults_seen;
  }
  std::string d = first_difference(r.buf.data(), want.data(), n);
  return d.empty() ? d : "read the wrong bytes: " + d;
}

std::string driver::judge_write(record& r, std::int64_t res) {
  auto n = static_cast<std::size_t>(res);
  if (n > r.len) return "wrote " + std::to_string(n) + " of " + std::to_string(r.len) + " bytes";
  if (n < r.len) {
    if (!window(r, fault_kind::short_io)) return "short write: " + std::to_string(n) + " of " + std::to_string(r.len);
    ++counts_.faults_seen;
  }
  return "";
}

std::string driver::judge_stat(record& r, std::int64_t) {
  if ((r.stx.stx_mask & STATX_SIZE) == 0 || !S_ISREG(r.stx.stx_mode)) return "statx gave no size or not a regular file";
  if (r.stx.stx_size != r.f->model.size())
    return "size " + std::to_string(r.stx.stx_size) + ", the model says " + std::to_string(r.f->model.size());
  return "";
}

// A timeout never fires early: its deadline is taken after the submission started.
std::string driver::judge_timeout(record& r, std::int64_t) {
  auto waited = std::chrono::steady_clock::now() - r.started;
  if (waited < std::chrono::nanoseconds(r.wait_ns))
    return "fired after " + std::to_string(waited.count()) + " ns, asked for " + std::to_string(r.wait_ns);
  return "";
}

std::string driver::judge_recv(record& r, std::int64_t res) {
  if (res == 0) return "end of stream, but the peer is open";
  if (static_cast<std::size_t>(res) > r.len) return "received more than asked for";
  return r.c->dir[r.dir].check(r.buf.data(), static_cast<std::size_t>(res));
}

std::string driver::judge_send(record& r, std::int64_t res) {
  if (res == 0 || static_cast<std::size_t>(res) > r.len)
    return "sent " + std::to_string(res) + " of " + std::to_string(r.len) + " bytes";
  return "";
}

// A guarded op that ended in ECANCELED nobody asked for was stopped by its link timeout, which
// must then have fired (ETIME).
std::string driver::judge_pair(const record& guarded, const record& timer) const {
  if (guarded.unexplained_cancel && timer.res != -ETIME)
    return "ECANCELED, not cancelled, and its link timeout completed with " + describe(timer.res) + ", not ETIME";
  return "";
}

// The effects of a completed op on the models, and the resources it held.
void driver::settle(record& r, std::int64_t res) {
  if (r.k == kind::link_timeout && res == -ETIME) ++counts_.guards_fired;
  if (r.f != nullptr) settle_file(r, res);
  if (r.c != nullptr) settle_socket(r, res);
}

void driver::settle_file(record& r, std::int64_t res) {
  file_state& f = *r.f;
  auto n = static_cast<std::size_t>(std::max<std::int64_t>(res, 0));
  switch (r.k) {
    case kind::write:
    case kind::writev:
      f.model.write(opt_.inject == "model" ? r.off + 1 : r.off, r.buf.data(), n);
      counts_.bytes += n;
      break;
    case kind::read:
    case kind::readv: counts_.bytes += n; break;
    case kind::ftruncate:
      if (res == 0) f.model.truncate(r.off);
      break;
    case kind::open:
      f.ph = res >= 0 ? file_state::phase::open : file_state::phase::closed;
      f.fd = res >= 0 ? static_cast<int>(res) : -1;
      break;
    case kind::close:  // a close that failed (a fault, or ECANCELED: it never ran) left the fd open
      f.ph = res == 0 ? file_state::phase::closed : file_state::phase::open;
      if (res == 0) f.fd = -1;
      break;
    default: break;
  }
  if (r.fd >= 0 && r.k != kind::close) --f.users;
  if (r.lease.held()) f.model.give_back(r.lease);
}

}  // namespace unio::soak
