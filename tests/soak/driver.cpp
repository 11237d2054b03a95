// The driver's life: records, completion accounting, refilling, the end checks.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <sstream>
#include <utility>

#include "records.hpp"

namespace unio::soak {

namespace {
constexpr kind k_all_kinds[] = {kind::read,    kind::write,        kind::readv,   kind::writev, kind::fsync,
                                kind::fdatasync, kind::stat,       kind::ftruncate, kind::open, kind::close,
                                kind::timeout, kind::nop,          kind::link_timeout, kind::connect,
                                kind::accept,  kind::send,         kind::recv};
static_assert(std::size(k_all_kinds) == k_kinds);

std::size_t at(kind k) noexcept { return static_cast<std::size_t>(k); }
}  // namespace

const char* to_string(kind k) noexcept {
  static constexpr const char* names[] = {"read",    "write", "readv",        "writev",  "fsync",  "fdatasync",
                                          "stat",    "ftruncate", "open",     "close",   "timeout", "nop",
                                          "link_timeout", "connect", "accept", "send",   "recv"};
  return names[at(k)];
}

op_code code_of(kind k) noexcept {
  static constexpr op_code codes[] = {op_code::read,    op_code::write,     op_code::readv,   op_code::writev,
                                      op_code::fsync,   op_code::fdatasync, op_code::stat,    op_code::ftruncate,
                                      op_code::open,    op_code::close,     op_code::timeout, op_code::nop,
                                      op_code::timeout, op_code::connect,   op_code::accept,  op_code::send,
                                      op_code::recv};
  return codes[at(k)];
}

bool is_transfer(kind k) noexcept {
  return k == kind::read || k == kind::write || k == kind::readv || k == kind::writev;
}

void tally::add(const tally& o) {
  for (std::size_t i = 0; i < k_kinds; ++i) {
    submitted[i] += o.submitted[i];
    completed[i] += o.completed[i];
    ecanceled[i] += o.ecanceled[i];
  }
  for (std::size_t g = 0; g < k_fault_groups; ++g) failed[g] += o.failed[g];
  cancels += o.cancels;
  faults_seen += o.faults_seen;
  chains += o.chains;
  guards_fired += o.guards_fired;
  posts_sent += o.posts_sent;
  posts_run += o.posts_run;
  reconnects += o.reconnects;
  bytes += o.bytes;
}

std::uint64_t tally::ops() const {
  std::uint64_t n = 0;
  for (auto s : submitted) n += s;
  return n;
}

driver::driver(unio::loop& lp, chooser& pick, driver_options o) : lp_(lp), pick_(pick), opt_(std::move(o)) {
  post_seen_.assign(opt_.post_sources, 0);
  data_seed_ = mix64(opt_.seed);
  for (kind k : k_all_kinds) reach_[at(k)] = test::seam_reaches(lp_, code_of(k));
}

driver::~driver() {
  if (dirfd_ >= 0) ::close(dirfd_);
}

void driver::start() {
  thread_ = std::this_thread::get_id();
  dirfd_ = ::open(opt_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd_ < 0) opt_.report(opt_.name + ": cannot open " + opt_.dir + ": " + std::strerror(errno));
  for (unsigned i = 0; i < opt_.files; ++i) {
    file_state& f = files_.emplace_back();
    f.name = std::to_string(i);
    f.name.insert(0, 1, 'f');  // "f" + to_string(i) draws a false -Wrestrict warning from GCC 12
    f.fd = ::openat(dirfd_, f.name.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (f.fd < 0) opt_.report(opt_.name + ": cannot create " + f.name + ": " + std::strerror(errno));
  }
  open_conns();
  refill();
}

// A free record, reset (its op is idle: records are freed only after their handler ran).
driver::record& driver::fresh(kind k) {
  record* r = nullptr;
  if (free_.empty()) {
    r = &records_.emplace_back();
  } else {
    r = free_.back();
    free_.pop_back();
    std::destroy_at(r);
    std::construct_at(r);
  }
  r->k = k;
  return *r;
}

void driver::fail(const record& r, const std::string& what) {
  std::ostringstream s;
  s << opt_.name << " (" << lp_.backend_name() << "): " << to_string(r.k) << " #" << r.serial;
  if (r.f != nullptr) s << " on " << r.f->name << " [" << r.off << ", +" << r.len << ")";
  if (r.ch != nullptr) s << " (member " << r.chain_index << " of a chain of " << r.ch->members << ")";
  s << ": " << what;
  opt_.report(s.str());
}

// Every handler runs here: the exactly-once checks, then the result against the models.
void driver::done(record& r, std::uint64_t serial) {
  account(r, serial);
  bool broken_before = r.ch != nullptr && chain_step(r);
  if (std::string why = judge(r, r.res, broken_before); !why.empty()) fail(r, why);
  settle(r, r.res);
  if (r.ch != nullptr) chain_done(r);
  release(r);
  if (opt_.inject == "double" && !std::exchange(injected_, true)) done(r, serial);
  after_completion();
}

// Exactly once: on the loop's thread, for a submission not completed before, and not busy.
void driver::account(record& r, std::uint64_t serial) {
  if (std::this_thread::get_id() != thread_) fail(r, "its handler ran on a thread other than the loop's");
  if (r.serial != serial || r.done)
    opt_.report(opt_.name + ": the handler of submission #" + std::to_string(serial) + " (" + to_string(r.k) +
                ") ran again: completed twice (exactly once violated)");
  if (r.op.busy()) fail(r, "still busy inside its own handler");
  r.done = true;
  r.res = r.op.raw_result();
  ++counts_.completed[at(r.k)];
  in_flight_[at(r.k)].fetch_sub(1, std::memory_order_relaxed);
  live_.erase(std::find(live_.begin(), live_.end(), &r));
  if (r.res == -ECANCELED) ++counts_.ecanceled[at(r.k)];
}

// Frees r, and its link-timeout partner once both are done (the pair is judged then).
void driver::release(record& r) {
  record* p = r.partner;
  if (p == nullptr) return free_record(r);
  if (!p->done) return;
  record& guarded = p->k == kind::link_timeout ? r : *p;
  if (std::string why = judge_pair(guarded, *guarded.partner); !why.empty()) fail(guarded, why);
  free_record(*p);
  free_record(r);
}

// Checks that chain member r may complete now; returns whether an earlier member broke the chain.
bool driver::chain_step(record& r) {
  chain_state& ch = *r.ch;
  std::uint32_t earlier = (1u << r.chain_index) - 1;
  bool broken_before = ch.first_broken < r.chain_index;
  bool cancelled = r.res == -ECANCELED && (r.cancel_asked || broken_before);
  if ((ch.done_mask & earlier) != earlier && !cancelled) {
    int missing = 0;
    while ((ch.done_mask >> missing & 1u) != 0) ++missing;
    fail(r, "completed before member " + std::to_string(missing) + " of its chain, which neither failed nor was cancelled");
  }
  return broken_before;
}

void driver::chain_done(record& r) {
  chain_state& ch = *r.ch;
  bool whole = r.res >= 0 && (!is_transfer(r.k) || static_cast<std::size_t>(r.res) == r.len);
  if (!whole) ch.first_broken = std::min(ch.first_broken, r.chain_index);
  ch.done_mask |= 1u << r.chain_index;
  if (++ch.completed == ch.members) {
    if (ch.lease.held()) ch.f->model.give_back(ch.lease);
    delete r.ch;
  }
  r.ch = nullptr;
}

void driver::free_record(record& r) {
  r.serial = 0;
  free_.push_back(&r);
}

void driver::after_completion() {
  if (!draining_ && std::chrono::steady_clock::now() >= opt_.deadline) drain();
  if (!draining_) refill();
}

void driver::refill() {
  for (int tries = 0; tries < 32 && live_.size() < opt_.depth && !draining_; ++tries) act(any_action());
}

void driver::drain() {
  if (draining_) return;
  draining_ = true;
  if (opt_.on_drain) opt_.on_drain();
  for (conn& c : conns_) advance(c);
}

void driver::post_arrived(unsigned source, std::uint64_t seq) {
  std::string who = opt_.name + ": a post from sender " + std::to_string(source);
  if (std::this_thread::get_id() != thread_) opt_.report(who + " ran on a thread other than the loop's");
  if (source >= post_seen_.size()) opt_.report(who + ": no such sender");
  if (seq != post_seen_[source] + 1)
    opt_.report(who + " ran as number " + std::to_string(seq) + " after number " + std::to_string(post_seen_[source]) +
                " (posts run once each, in the order posted)");
  post_seen_[source] = seq;
  ++counts_.posts_run;
}

std::string driver::in_flight_summary() const {
  std::ostringstream s;
  for (kind k : k_all_kinds)
    if (int n = in_flight_[at(k)].load(std::memory_order_relaxed); n != 0) s << (s.tellp() > 0 ? ", " : "") << to_string(k) << ' ' << n;
  return s.tellp() > 0 ? s.str() : "none";
}

namespace {
// The whole file behind fd (or, when fd < 0, at dirfd/name), read with plain system calls.
std::string contents(int dirfd, const std::string& name, int fd) {
  int own = fd >= 0 ? -1 : ::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC);
  int rd = fd >= 0 ? fd : own;
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::pread(rd, buf, sizeof buf, static_cast<off_t>(out.size()));
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  if (own >= 0) ::close(own);
  return out;
}
}  // namespace

std::size_t open_fds() {
  std::size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

std::string driver::verify_end() {
  std::ostringstream bad;
  if (!live_.empty()) bad << live_.size() << " ops still in flight after the loop ran out of work: " << in_flight_summary() << "; ";
  for (kind k : k_all_kinds)
    if (counts_.submitted[at(k)] != counts_.completed[at(k)])
      bad << to_string(k) << ": " << counts_.submitted[at(k)] << " submitted, " << counts_.completed[at(k)] << " completed; ";
  for (file_state& f : files_) {
    std::string got = contents(dirfd_, f.name, f.fd);
    const std::string& want = f.model.bytes();
    if (got.size() != want.size())
      bad << f.name << " is " << got.size() << " bytes, the model " << want.size() << "; ";
    else if (std::string d = first_difference(got.data(), want.data(), got.size()); !d.empty())
      bad << f.name << ": " << d << "; ";
    if (f.fd >= 0) ::close(f.fd);
    f.fd = -1;
  }
  bad << verify_streams();
  for (conn& c : conns_)
    for (int& fd : c.fd)
      if (fd >= 0) ::close(std::exchange(fd, -1));
  if (listener_ >= 0) ::close(std::exchange(listener_, -1));
  std::string s = bad.str();
  return s.empty() ? s : opt_.name + " (" + std::string(lp_.backend_name()) + "): " + s;
}

}  // namespace unio::soak
