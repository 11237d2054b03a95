// The driver's steps on files, timers, chains, cancels and posts.
#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "records.hpp"

namespace unio::soak {

namespace {
using std::chrono::nanoseconds;

// How often each action is chosen, in action order.
constexpr unsigned k_weights[k_actions] = {
    14, 14, 4, 4,  // write, read, writev, readv
    2,  3,  1, 2,  // fsync, stat, ftruncate, reopen
    6,  3,  8,     // timer, nop, send
    4,  2,  2, 3,  // chain_write_read, chain_write_sync, chain_timers, guarded_read
    5,  4,  3, 1,  // cancel_one, cancel_unstarted, post, reconnect
};
}  // namespace

action driver::any_action() {
  unsigned total = 0;
  for (unsigned w : k_weights) total += w;
  unsigned x = pick_.below(total);
  for (std::size_t a = 0; a < k_actions; ++a) {
    if (x < k_weights[a]) return static_cast<action>(a);
    x -= k_weights[a];
  }
  return action::nop;
}

bool driver::act(action a) {
  if (draining_) return false;
  switch (a) {
    case action::write: return do_transfer(kind::write, false);
    case action::read: return do_transfer(kind::read, false);
    case action::writev: return do_transfer(kind::writev, false);
    case action::readv: return do_transfer(kind::readv, false);
    case action::fsync: return do_fsync();
    case action::stat: return do_stat();
    case action::ftruncate: return do_ftruncate();
    case action::reopen: return do_reopen();
    case action::timer: return do_timer(false);
    case action::nop: return do_nop(false);
    case action::send: return do_send(false);
    case action::chain_write_read: return do_chain_write_read(false);
    case action::chain_write_sync: return do_chain_write_sync();
    case action::chain_timers: return do_chain_timers();
    case action::guarded_read: return do_transfer(kind::read, true);
    case action::cancel_one: return do_cancel_one();
    case action::cancel_unstarted: return do_cancel_unstarted();
    case action::post: return do_post();
    case action::reconnect: return do_reconnect();
    case action::count_: break;
  }
  return false;
}

driver::file_state* driver::pick_open_file() {
  std::size_t n = files_.size(), first = pick_.below(static_cast<std::uint32_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    file_state& f = files_[(first + i) % n];
    if (f.ph == file_state::phase::open) return &f;
  }
  return nullptr;
}

// An open file and a range of it no op in flight holds, now held for the caller: small,
// page-sized or a few pages; at the start, anywhere, or around the end of the file.
bool driver::take_range(std::size_t max_len, held_range& out) {
  file_state* f = pick_open_file();
  if (f == nullptr) return false;
  std::size_t len = 0;
  switch (pick_.below(3)) {
    case 0: len = 1 + pick_.below(32); break;
    case 1: len = 1 + pick_.below(static_cast<std::uint32_t>(file_model::k_slot)); break;
    default: len = 1 + pick_.below(static_cast<std::uint32_t>(max_len)); break;
  }
  std::uint64_t room = file_model::k_span - len;
  std::uint64_t size = std::min(f->model.size(), room), off = 0;
  switch (pick_.below(3)) {
    case 0: off = pick_.below(static_cast<std::uint32_t>(room + 1)); break;
    case 1: off = size - std::min<std::uint64_t>(size, pick_.below(64)); break;
    default: off = std::min(room, size + pick_.below(8192)); break;
  }
  file_model::lease ls = f->model.slots_for(off, len);
  if (!f->model.free(ls)) return false;
  f->model.take(ls);
  out = {f, off, len, ls};
  return true;
}

// A read, write, readv or writev record on f (not yet submitted); it takes a file user.
driver::record& driver::file_op(kind k, file_state& f, std::uint64_t off, std::size_t len, file_model::lease ls) {
  record& r = fresh(k);
  r.f = &f;
  r.fd = f.fd;
  ++f.users;
  r.off = off;
  r.len = len;
  r.lease = ls;
  r.buf.resize(len);
  if (k == kind::write || k == kind::writev) {
    for (std::size_t i = 0; i < len; i += 8) {
      std::uint64_t w = mix64(data_seed_++);
      std::memcpy(r.buf.data() + i, &w, std::min<std::size_t>(8, len - i));
    }
  } else {
    std::fill(r.buf.begin(), r.buf.end(), '\x5a');
  }
  if (k == kind::readv || k == kind::writev) {  // up to three pieces, the first may be empty
    std::size_t a = pick_.below(static_cast<std::uint32_t>(len + 1)), b = a + pick_.below(static_cast<std::uint32_t>(len - a + 1));
    std::size_t cuts[4] = {0, a, b, len};
    for (int i = 0; i < 3; ++i) r.iov[i] = {r.buf.data() + cuts[i], cuts[i + 1] - cuts[i]};
    r.iovcnt = 3;
  }
  return r;
}

void driver::submit_file_op(record& r) {
  launch(r, [&](unio::op& o, auto h) {
    char* p = r.buf.data();
    switch (r.k) {
      case kind::read: lp_.read(o, r.fd, p, r.len, r.off, h); break;
      case kind::write: lp_.write(o, r.fd, p, r.len, r.off, h); break;
      case kind::readv: lp_.readv(o, r.fd, r.iov, r.iovcnt, r.off, h); break;
      default: lp_.writev(o, r.fd, r.iov, r.iovcnt, r.off, h); break;
    }
  });
}

// A wait of up to max_us microseconds, scaled by driver_options::wait_percent, in nanoseconds.
std::int64_t driver::some_wait(std::uint32_t max_us) {
  return static_cast<std::int64_t>(pick_.below(max_us * opt_.wait_percent / 100 + 1)) * 1000;
}

// A link timeout of up to max_us for r, which was submitted just before.
void driver::guard(record& r, std::uint32_t max_us) {
  record& t = fresh(kind::link_timeout);
  t.wait_ns = some_wait(max_us);
  t.partner = &r;
  r.partner = &t;
  launch(t, [&](unio::op& o, auto h) { lp_.link_timeout(o, nanoseconds(t.wait_ns), h); });
}

void driver::cancel_now(record& r, bool may_forget) {
  bool forget = may_forget && opt_.inject == "ecanceled" && !std::exchange(injected_, true);
  r.cancel_asked = r.cancel_unstarted = !forget;
  ++counts_.cancels;
  lp_.cancel(r.op);
}

// A read or write on a range of its own; guarded: with a link timeout of up to 300 us, else
// now and then one of up to 2 ms.
bool driver::do_transfer(kind k, bool guarded) {
  held_range h;
  if (!take_range(3 * file_model::k_slot, h)) return false;
  record& r = file_op(k, *h.f, h.off, h.len, h.lease);
  submit_file_op(r);
  if (guarded) guard(r, 300);
  else if (pick_.below(10) == 0) guard(r, 2000);
  return true;
}

bool driver::do_fsync() {
  file_state* f = pick_open_file();
  if (f == nullptr) return false;
  record& r = fresh(pick_.below(2) == 0 ? kind::fsync : kind::fdatasync);
  r.f = f;
  r.fd = f->fd;
  ++f->users;
  launch(r, [&](unio::op& o, auto h) {
    if (r.k == kind::fsync) lp_.fsync(o, r.fd, h);
    else lp_.fdatasync(o, r.fd, h);
  });
  return true;
}

// statx by fd (AT_EMPTY_PATH) or by name; it holds the last slot, so the size cannot change.
bool driver::do_stat() {
  file_state& f = files_[pick_.below(static_cast<std::uint32_t>(files_.size()))];
  file_model::lease ls = file_model::size_only();
  if (!f.model.free(ls)) return false;
  record& r = fresh(kind::stat);
  r.f = &f;
  r.by_path = f.ph != file_state::phase::open || pick_.below(2) == 0;
  if (!r.by_path) {
    r.fd = f.fd;
    ++f.users;
  }
  f.model.take(ls);
  r.lease = ls;
  launch(r, [&](unio::op& o, auto h) {
    if (r.by_path) lp_.stat(o, dirfd_, r.f->name.c_str(), 0, STATX_SIZE | STATX_TYPE, &r.stx, h);
    else lp_.stat(o, r.fd, "", AT_EMPTY_PATH, STATX_SIZE | STATX_TYPE, &r.stx, h);
  });
  return true;
}

bool driver::do_ftruncate() {
  file_state* f = pick_open_file();
  if (f == nullptr || !f->model.free(file_model::whole())) return false;
  record& r = fresh(kind::ftruncate);
  r.f = f;
  r.fd = f->fd;
  ++f->users;
  r.lease = file_model::whole();
  f->model.take(r.lease);
  r.off = pick_.below(2) == 0 ? pick_.below(static_cast<std::uint32_t>(file_model::k_span + 1))
                              : f->model.size() / (1 + pick_.below(4));
  launch(r, [&](unio::op& o, auto h) { lp_.ftruncate(o, r.fd, r.off, h); });
  return true;
}

// Closes an idle open file, or opens a closed one again.
bool driver::do_reopen() {
  file_state& f = files_[pick_.below(static_cast<std::uint32_t>(files_.size()))];
  bool cancel = pick_.below(6) == 0;
  if (f.ph == file_state::phase::open && f.users == 0) {
    record& r = fresh(kind::close);
    r.f = &f;
    r.fd = f.fd;
    f.ph = file_state::phase::closing;
    launch(r, [&](unio::op& o, auto h) { lp_.close(o, r.fd, h); });
    if (cancel) cancel_now(r);
    return true;
  }
  if (f.ph == file_state::phase::closed) {
    record& r = fresh(kind::open);
    r.f = &f;
    f.ph = file_state::phase::opening;
    launch(r, [&](unio::op& o, auto h) { lp_.open(o, dirfd_, r.f->name.c_str(), unio::open_how{O_RDWR, 0, 0}, h); });
    if (cancel) cancel_now(r);
    return true;
  }
  return false;
}

bool driver::do_timer(bool cancel) {
  record& r = fresh(kind::timeout);
  r.wait_ns = some_wait(2000);
  launch(r, [&](unio::op& o, auto h) { lp_.timeout(o, nanoseconds(r.wait_ns), h); });
  if (cancel) cancel_now(r);
  return true;
}

bool driver::do_nop(bool cancel) {
  record& r = fresh(kind::nop);
  launch(r, [&](unio::op& o, auto h) { lp_.nop(o, h); });
  if (cancel) cancel_now(r);
  return true;
}

driver::chain_state* driver::new_chain(int members, file_state* f, file_model::lease ls) {
  ++counts_.chains;
  auto* c = new chain_state;
  c->members = members;
  c->f = f;
  c->lease = ls;
  return c;
}

// A write and a read of the same bytes in one chain: the read must see the write.
bool driver::do_chain_write_read(bool cancel) {
  held_range h;
  if (!take_range(2 * file_model::k_slot, h)) return false;
  chain_state* ch = new_chain(2, h.f, h.lease);
  record* head = nullptr;
  {
    unio::loop::link_scope scope(lp_);
    record& w = file_op(pick_.below(3) == 0 ? kind::writev : kind::write, *h.f, h.off, h.len, {});
    w.ch = ch;
    submit_file_op(w);
    if (!cancel && pick_.below(4) == 0) guard(w, 1000);
    record& rd = file_op(kind::read, *h.f, h.off, h.len, {});
    rd.ch = ch;
    rd.chain_index = 1;
    submit_file_op(rd);
    head = &w;
  }
  if (cancel) cancel_now(*head);
  return true;
}

bool driver::do_chain_write_sync() {
  held_range h;
  if (!take_range(2 * file_model::k_slot, h)) return false;
  chain_state* ch = new_chain(2, h.f, h.lease);
  unio::loop::link_scope scope(lp_);
  record& w = file_op(kind::write, *h.f, h.off, h.len, {});
  w.ch = ch;
  submit_file_op(w);
  record& s = fresh(pick_.below(2) == 0 ? kind::fsync : kind::fdatasync);
  s.f = h.f;
  s.fd = h.f->fd;
  ++h.f->users;
  s.ch = ch;
  s.chain_index = 1;
  launch(s, [&](unio::op& o, auto h) {
    if (s.k == kind::fsync) lp_.fsync(o, s.fd, h);
    else lp_.fdatasync(o, s.fd, h);
  });
  return true;
}

bool driver::do_chain_timers() {
  chain_state* ch = new_chain(3, nullptr, {});
  unio::loop::link_scope scope(lp_);
  for (int i = 0; i < 3; ++i) {
    record& r = fresh(i == 1 ? kind::timeout : kind::nop);
    r.ch = ch;
    r.chain_index = i;
    r.wait_ns = some_wait(1000);
    launch(r, [&](unio::op& o, auto h) {
      if (r.k == kind::timeout) lp_.timeout(o, nanoseconds(r.wait_ns), h);
      else lp_.nop(o, h);
    });
  }
  return true;
}

// Cancels an op in flight, whatever it is doing (not a connect: see streams.cpp).
bool driver::do_cancel_one() {
  if (live_.empty()) return false;
  record& r = *live_[pick_.below(static_cast<std::uint32_t>(live_.size()))];
  if (r.k == kind::connect) return false;
  r.cancel_asked = true;
  ++counts_.cancels;
  lp_.cancel(r.op);
  return true;
}

// Submits an op and cancels it in the same call, before the loop can start it.
bool driver::do_cancel_unstarted() {
  switch (pick_.below(6)) {
    case 0: return do_timer(true);
    case 1: return do_nop(true);
    case 2: return do_send(true);
    case 3: return do_chain_write_read(true);
    default: {
      held_range h;
      if (!take_range(file_model::k_slot, h)) return false;
      record& r = file_op(pick_.below(2) == 0 ? kind::write : kind::read, *h.f, h.off, h.len, h.lease);
      submit_file_op(r);
      // --inject ecanceled forgets this cancel (the first of the run): a lone file op, no link
      // timeout, no chain, so its ECANCELED has nothing else to explain it.
      cancel_now(r, true);
      return true;
    }
  }
}

bool driver::do_post() {
  if (!opt_.post || !opt_.post()) return false;
  ++counts_.posts_sent;
  return true;
}

}  // namespace unio::soak
