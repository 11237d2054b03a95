// The O_DIRECT layer; src/direct/direct_io.hpp says what it does, docs/design.md why.
#include "direct/direct_io.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace unio::detail {

namespace {

constexpr std::uint64_t k_infinity = ~std::uint64_t{0};
constexpr std::size_t k_max_idle = 64;           // requests kept for reuse
constexpr std::size_t k_keep_buffer = 1u << 20;  // bounce buffers larger than this are not kept
constexpr int k_iov_max = 1024;                  // IOV_MAX on Linux

enum class stage : std::uint8_t { reading, lock_wait, edges, writing, truncating, opening };

struct file_key {
  dev_t dev;
  ino_t ino;
  bool operator==(const file_key&) const = default;
};
struct file_key_hash {
  std::size_t operator()(const file_key& k) const noexcept {
    return std::hash<std::uint64_t>()(static_cast<std::uint64_t>(k.ino) * 0x9e3779b97f4a7c15ull ^ k.dev);
  }
};

}  // namespace

// One writer's claim on the bytes [begin, end) of one file. `held` is guarded by the table's mutex.
struct block_lock {
  file_key key{};
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  bool held = false;
};

struct direct_io::request {
  direct_io* owner = nullptr;
  request* prev = nullptr;
  request* next = nullptr;
  op* user = nullptr;
  op inner[2];
  std::byte* buf = nullptr;  // bounce buffer
  std::size_t cap = 0;
  std::size_t buf_align = 0;
  stage st = stage::reading;
  bool cancel = false;
  bool retried = false;  // open: the O_DIRECT-less retry is under way
  bool cached = false;   // read: bounced on remembered facts (an EINVAL means they were stale)
  int inner_left = 0;
  std::int64_t error = 0;        // first error of the edge reads
  std::uint64_t block = 1;       // offset alignment
  std::uint64_t span_begin = 0;  // aligned span covering the user's bytes
  std::uint64_t span_len = 0;
  std::uint64_t size = 0;     // file size seen under the lock (writes)
  std::uint64_t written = 0;  // bytes of the span written so far
  std::int64_t result = 0;    // the write's result, kept while the size is fixed
  block_lock lock;

  ~request() = default;  // direct_io::drop_buffer() first
  std::uint64_t span_end() const noexcept { return span_begin + span_len; }
  std::uint64_t off() const noexcept { return A::args(*user).offset; }
  std::uint64_t len() const noexcept { return requested_bytes(*user); }
};

namespace {

// The process-wide block lock table. A lock is granted when it overlaps no held lock and no
// earlier waiter it overlaps (FIFO among conflicting writers, so none starves).
class lock_table {
 public:
  static lock_table& instance() {
    static lock_table t;
    return t;
  }

  // True: held now. False: queued; owner->granted(r) is called (on any thread) when it is.
  bool acquire(direct_io::request& r) {
    std::lock_guard lk(mu_);
    file_locks& f = files_[r.lock.key];
    if (overlaps_any(f.held, r.lock, f.held.size()) || overlaps_any(f.waiting, r.lock, f.waiting.size())) {
      f.waiting.push_back(&r);
      return false;
    }
    r.lock.held = true;
    f.held.push_back(&r);
    return true;
  }

  void release(direct_io::request& r) {
    std::lock_guard lk(mu_);
    auto it = files_.find(r.lock.key);
    if (it == files_.end()) return;
    erase(it->second.held, r);
    r.lock.held = false;
    grant_waiters(it);
  }

  // Removes a waiter that has not been granted yet. False when it already holds the lock.
  bool withdraw(direct_io::request& r) {
    std::lock_guard lk(mu_);
    if (r.lock.held) return false;
    auto it = files_.find(r.lock.key);
    if (it != files_.end()) {
      erase(it->second.waiting, r);
      grant_waiters(it);
    }
    return true;
  }

 private:
  struct file_locks {
    std::vector<direct_io::request*> held;
    std::vector<direct_io::request*> waiting;
  };
  using map = std::unordered_map<file_key, file_locks, file_key_hash>;

  static bool overlaps_any(const std::vector<direct_io::request*>& v, const block_lock& l, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      if (v[i]->lock.begin < l.end && l.begin < v[i]->lock.end) return true;
    }
    return false;
  }
  static void erase(std::vector<direct_io::request*>& v, direct_io::request& r) {
    auto it = std::find(v.begin(), v.end(), &r);
    if (it != v.end()) v.erase(it);
  }

  void grant_waiters(map::iterator it) {
    file_locks& f = it->second;
    for (std::size_t i = 0; i < f.waiting.size();) {
      direct_io::request* w = f.waiting[i];
      if (overlaps_any(f.held, w->lock, f.held.size()) || overlaps_any(f.waiting, w->lock, i)) {
        ++i;
        continue;
      }
      f.waiting.erase(f.waiting.begin() + static_cast<std::ptrdiff_t>(i));
      w->lock.held = true;
      f.held.push_back(w);
      w->owner->granted(*w);
    }
    if (f.held.empty() && f.waiting.empty()) files_.erase(it);
  }

  std::mutex mu_;
  map files_;
};

std::uint64_t align_down(std::uint64_t x, std::uint64_t a) noexcept { return x / a * a; }

// The logical block size of a block device by number (sysfs), cached per device: a mounted
// file system's device keeps its block size. 1 when there is none (tmpfs, btrfs, NFS: major 0).
std::uint32_t device_block_size(unsigned major_no, unsigned minor_no) {
  if (major_no == 0) return 1;
  static std::mutex mu;
  static std::unordered_map<std::uint64_t, std::uint32_t> cache;
  const std::uint64_t key = (std::uint64_t{major_no} << 32) | minor_no;
  std::lock_guard lk(mu);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  std::uint32_t size = 1;
  // A partition has no queue/ of its own; its disk's is one level up.
  for (const char* rel : {"queue/logical_block_size", "../queue/logical_block_size"}) {
    char path[96];
    std::snprintf(path, sizeof path, "/sys/dev/block/%u:%u/%s", major_no, minor_no, rel);
    if (FILE* f = std::fopen(path, "re")) {
      unsigned v = 0;
      if (std::fscanf(f, "%u", &v) == 1 && v != 0) size = v;
      std::fclose(f);
      if (size != 1) break;
    }
  }
  cache.emplace(key, size);
  return size;
}

// The end of file a write must respect. A block device reports size 0 and has no end of file to
// extend (writes past its end fail), so it counts as endless: its edge blocks are always read.
std::uint64_t end_of_file(const struct statx& sx) noexcept {
  return S_ISREG(sx.stx_mode) ? sx.stx_size : k_infinity;
}

bool is_aligned(std::uint64_t x, std::uint64_t a) noexcept { return a == 0 || x % a == 0; }

// Whether the op already meets the alignment (then the kernel takes it as it is).
bool fits(op& o, const dio_alignment& al) {
  const op_args& a = A::args(o);
  if (!is_aligned(a.offset, al.offset)) return false;
  if (!traits(o.code()).vectored)
    return is_aligned(reinterpret_cast<std::uintptr_t>(a.buf), al.memory) && is_aligned(a.len, al.offset);
  const auto* iov = static_cast<const iovec*>(a.iov);
  for (int i = 0; i < a.iovcnt; ++i) {
    if (!is_aligned(reinterpret_cast<std::uintptr_t>(iov[i].iov_base), al.memory) ||
        !is_aligned(iov[i].iov_len, al.offset))
      return false;
  }
  return true;
}

// Copies between the user's buffer(s), starting `skip` bytes in, and `n` bytes at `bounce`.
void copy_user(op& u, std::uint64_t skip, std::byte* bounce, std::uint64_t n, bool to_user) {
  const op_args& a = A::args(u);
  if (!traits(u.code()).vectored) {
    auto* p = static_cast<std::byte*>(a.buf) + skip;
    if (to_user)
      std::memcpy(p, bounce, n);
    else
      std::memcpy(bounce, p, n);
    return;
  }
  const auto* iov = static_cast<const iovec*>(a.iov);
  for (int i = 0; i < a.iovcnt && n > 0; ++i) {
    std::uint64_t l = iov[i].iov_len;
    if (skip >= l) {
      skip -= l;
      continue;
    }
    std::uint64_t k = std::min(l - skip, n);
    auto* p = static_cast<std::byte*>(iov[i].iov_base) + skip;
    if (to_user)
      std::memcpy(p, bounce, k);
    else
      std::memcpy(bounce, p, k);
    bounce += k;
    n -= k;
    skip = 0;
  }
}

}  // namespace

int query_alignment(int fd, unsigned mask, struct statx& sx, dio_alignment& out) noexcept {
  if (::statx(fd, "", AT_EMPTY_PATH, mask | STATX_DIOALIGN, &sx) != 0) return errno;
  if ((sx.stx_mask & STATX_DIOALIGN) != 0) {
    out = {sx.stx_dio_mem_align, sx.stx_dio_offset_align};
    return 0;
  }
  std::uint32_t b = 1;
  int ssz = 0;
  if (S_ISBLK(sx.stx_mode) && ::ioctl(fd, BLKSSZGET, &ssz) == 0 && ssz > 0)
    b = static_cast<std::uint32_t>(ssz);
  else if (S_ISREG(sx.stx_mode))
    b = device_block_size(sx.stx_dev_major, sx.stx_dev_minor);
  out = {b, b};
  return 0;
}

direct_io::~direct_io() {
  while (request* r = idle_) {
    idle_ = r->next;
    drop_buffer(*r);
    delete r;
  }
}

// Gives r a bounce buffer of at least `bytes` aligned to `align`: a huge-page slot when it fits,
// else the heap. False when there is no memory.
bool direct_io::give_buffer(request& r, std::size_t bytes, std::size_t align) {
  drop_buffer(r);
  if (bytes <= bounce_arena::k_slot && align <= bounce_arena::k_slot) {
    if (std::byte* p = arena_.take()) {
      r.buf = p;
      r.cap = bounce_arena::k_slot;
      r.buf_align = bounce_arena::k_slot;
      return true;
    }
  }
  const std::size_t cap = (bytes + align - 1) / align * align;  // aligned_alloc wants a multiple of align
  r.buf = static_cast<std::byte*>(std::aligned_alloc(align, cap));
  if (r.buf == nullptr) return false;
  r.cap = cap;
  r.buf_align = align;
  return true;
}

void direct_io::drop_buffer(request& r) noexcept {
  if (r.buf != nullptr && arena_.owns(r.buf)) arena_.give(r.buf);
  else std::free(r.buf);
  r.buf = nullptr;
  r.cap = 0;
  r.buf_align = 0;
}

bool direct_io::vector_candidate(const op_args& a) noexcept {
  if (a.iov == nullptr || a.iovcnt <= 0 || a.iovcnt > k_iov_max) return false;
  const auto* iov = static_cast<const iovec*>(a.iov);
  std::uintptr_t bits = a.offset;
  std::uint64_t total = 0;
  for (int i = 0; i < a.iovcnt; ++i) {
    bits |= reinterpret_cast<std::uintptr_t>(iov[i].iov_base) | iov[i].iov_len;
    total += iov[i].iov_len;
  }
  return total != 0 && (bits & 4095) != 0;
}

direct_io::request* direct_io::new_request(std::size_t bytes, std::size_t align) {
  request* r = idle_;
  if (r != nullptr) {
    idle_ = r->next;
    --idle_count_;
  } else {
    r = new (std::nothrow) request;
    if (r == nullptr) return nullptr;
    r->owner = this;
  }
  if ((bytes > r->cap || align > r->buf_align) && bytes != 0 && !give_buffer(*r, bytes, align)) {
    delete r;
    return nullptr;
  }
  r->cancel = r->retried = r->cached = false;
  r->inner_left = 0;
  r->error = r->result = 0;
  r->written = r->size = 0;
  r->lock = block_lock{};
  r->prev = nullptr;
  r->next = active_;
  if (active_ != nullptr) active_->prev = r;
  active_ = r;
  return r;
}

void direct_io::free_request(request& r) noexcept {
  if (r.prev != nullptr)
    r.prev->next = r.next;
  else
    active_ = r.next;
  if (r.next != nullptr) r.next->prev = r.prev;
  r.user = nullptr;
  if (idle_count_ >= k_max_idle) {
    drop_buffer(r);
    delete &r;
    return;
  }
  if (r.cap > k_keep_buffer) drop_buffer(r);
  r.next = idle_;
  idle_ = &r;
  ++idle_count_;
}

void direct_io::prep_inner(request& r, int i, op_code c, void* buf, std::uint64_t len, std::uint64_t off) {
  op& in = r.inner[i];
  A::set_code(in, c);
  A::res(in) = 0;
  A::flags(in) = 0;
  A::cancel_requested(in) = 0;
  A::word(in) = 0;
  op_args& a = A::args(in);
  a = op_args{};
  a.fd = A::args(*r.user).fd;
  a.buf = buf;
  a.len = len;
  a.offset = off;
  request* rp = &r;
  A::handler(in).set([rp, i](op& x) { rp->owner->on_inner(*rp, i, x.raw_result()); });
}

// Every internal op's handler (dispatch phase, loop thread).
void direct_io::on_inner(request& r, int i, std::int64_t res) {
  in_inner_ = true;
  switch (r.st) {
    case stage::reading:
      read_done(r, res);
      break;
    case stage::edges:
      edge_done(r, i, res);
      break;
    case stage::writing:
      write_done(r, res);
      break;
    case stage::truncating:
      truncate_done(r, res);
      break;
    case stage::opening:
      open_done(r, res);
      break;
    case stage::lock_wait:
      break;  // no internal op runs while waiting
  }
  in_inner_ = false;
}

// Completes the user's op, exactly once, and recycles the request.
void direct_io::finish(request& r, std::int64_t res) {
  op& u = *r.user;
  A::heap_index(u) = 0;
  free_request(r);
  if (in_inner_) {
    in_inner_ = false;  // the user's handler may submit: that is no longer inside ours
    env_.finish_now(u, res);
  } else {
    env_.complete(u, res);
  }
}

bool direct_io::take(op& o) {
  if (o.code() == op_code::open) return take_open(o);
  return take_rw(o);
}

bool direct_io::stale(op& o) noexcept {
  facts_.forget(A::args(o).fd);
  env_.recheck(o);
  return true;
}

bool direct_io::take_open(op& o) {
  request* r = new_request(0, 4096);
  if (r == nullptr) return false;
  r->user = &o;
  r->st = stage::opening;
  A::heap_index(o) = k_held;
  A::word(o) = reinterpret_cast<std::uintptr_t>(r);
  prep_inner(*r, 0, op_code::open, nullptr, 0, 0);
  A::args(r->inner[0]) = A::args(o);
  env_.submit_inner(r->inner[0]);
  return true;
}

void direct_io::open_done(request& r, std::int64_t res) {
  if (res == -EINVAL && !r.retried && !r.cancel) {
    // The file system refuses O_DIRECT. A refused O_CREAT has already created the file, so the
    // retry must not insist on creating it (O_EXCL) again.
    r.retried = true;
    op_args args = A::args(*r.user);
    args.flags &= ~static_cast<std::uint32_t>(O_DIRECT);
    if ((args.flags & O_CREAT) != 0) args.flags &= ~static_cast<std::uint32_t>(O_EXCL);
    prep_inner(r, 0, op_code::open, nullptr, 0, 0);
    A::args(r.inner[0]) = args;
    env_.submit_inner(r.inner[0]);
    return;
  }
  if (res >= 0 && r.retried) ++fallbacks_;
  finish(r, res);
}

// What a read needs to know about fd: remembered (cached = true) or asked now. nullopt when the
// kernel cannot tell (a bad fd: the op itself will say so).
std::optional<fd_facts::facts> direct_io::read_facts(int fd, bool& cached) {
  cached = true;
  if (const fd_facts::facts* f = facts_.find(fd)) return *f;
  cached = false;
  fd_facts::facts f;
  f.flags = ::fcntl(fd, F_GETFL);
  if (f.flags < 0) return std::nullopt;
  struct statx sx {};
  if ((f.flags & O_DIRECT) != 0 && query_alignment(fd, 0, sx, f.al) != 0) return std::nullopt;
  facts_.put(fd, f.flags, f.al);
  return f;
}

bool direct_io::take_rw(op& o) {
  const op_args& a = A::args(o);
  const bool writing = is_write(o.code());
  bool cached = false;
  struct statx sx {};
  dio_alignment al;
  if (!writing) {
    std::optional<fd_facts::facts> f = read_facts(a.fd, cached);
    if (!f || (f->flags & O_DIRECT) == 0) return pass_on(o, cached);
    al = f->al;
  } else {
    int fl = ::fcntl(a.fd, F_GETFL);
    if (fl < 0 || (fl & O_DIRECT) == 0) return false;
    // pwrite on an O_APPEND file appends whatever the offset (Linux), and a write-only file
    // cannot read its edge blocks back: both go to the kernel as they are (EINVAL when unaligned).
    if ((fl & O_APPEND) != 0 || (fl & O_ACCMODE) == O_WRONLY) return false;
    if (query_alignment(a.fd, STATX_TYPE | STATX_SIZE | STATX_INO, sx, al) != 0) return false;
    facts_.put(a.fd, fl, al);
  }
  if (al.offset == 0 || fits(o, al)) return pass_on(o, cached);
  const std::uint64_t len = requested_bytes(o);
  const std::uint64_t b = std::max<std::uint64_t>(al.offset, 1);
  if (len == 0 || a.offset > k_infinity - len - b) return pass_on(o, cached);  // let the kernel judge
  const std::uint64_t begin = align_down(a.offset, b);
  const std::uint64_t end = align_down(a.offset + len + b - 1, b);
  request* r = new_request(end - begin, std::max<std::size_t>(4096, al.memory));
  if (r == nullptr) {
    A::heap_index(o) = 0;
    env_.complete(o, -ENOMEM);
    return true;
  }
  r->user = &o;
  r->cached = cached;
  r->block = b;
  r->span_begin = begin;
  r->span_len = end - begin;
  A::heap_index(o) = k_held;
  A::word(o) = reinterpret_cast<std::uintptr_t>(r);
  if (!writing) {
    start_read(*r);
    return true;
  }
  r->size = end_of_file(sx);
  r->lock.key = {makedev(sx.stx_dev_major, sx.stx_dev_minor), static_cast<ino_t>(sx.stx_ino)};
  r->lock.begin = begin;
  r->lock.end = end > r->size ? k_infinity : end;
  start_write(*r);
  return true;
}

void direct_io::start_read(request& r) {
  r.st = stage::reading;
  prep_inner(r, 0, op_code::read, r.buf, r.span_len, r.span_begin);
  env_.submit_inner(r.inner[0]);
}

void direct_io::read_done(request& r, std::int64_t res) {
  if (res == -EINVAL && r.cached && !r.cancel) return refresh(r);
  if (res < 0) return finish(r, res);
  const std::uint64_t end = r.span_begin + static_cast<std::uint64_t>(res);
  const std::uint64_t n = end > r.off() ? std::min(r.len(), end - r.off()) : 0;
  copy_user(*r.user, 0, r.buf + (r.off() - r.span_begin), n, true);
  finish(r, static_cast<std::int64_t>(n));
}

// The remembered facts that bounced r were stale (its fd number names another file now): the user's
// op starts over on fresh ones.
void direct_io::refresh(request& r) {
  op& u = *r.user;
  facts_.forget(A::args(u).fd);
  A::heap_index(u) = 0;
  free_request(r);
  env_.recheck(u);
}

void direct_io::start_write(request& r) {
  r.st = stage::lock_wait;
  if (lock_table::instance().acquire(r)) locked(r);
}

void direct_io::granted(request& r) {
  request* rp = &r;
  env_.post_internal([this, rp] {
    in_inner_ = false;
    locked(*rp);
  });
}

// The block lock is held: learn the size under it, then read the edges.
void direct_io::locked(request& r) {
  if (r.cancel || env_.in_shutdown()) return end_write(r, -ECANCELED);
  struct statx sx {};
  if (::statx(A::args(*r.user).fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE, &sx) != 0)
    return end_write(r, -errno);
  r.size = end_of_file(sx);
  if (r.lock.end != k_infinity && r.span_end() > r.size) {
    // The file shrank (another writer's extension was cut back) since the lock was chosen: this
    // write now crosses end of file and must exclude every later writer.
    lock_table::instance().release(r);
    r.lock.end = k_infinity;
    return start_write(r);
  }
  read_edges(r);
}

void direct_io::read_edges(request& r) {
  r.st = stage::edges;
  const std::uint64_t b = r.block;
  const std::uint64_t tail = r.span_end() - b;
  const bool head_partial = r.off() != r.span_begin;
  const bool tail_partial = r.off() + r.len() != r.span_end() && (tail != r.span_begin || !head_partial);
  struct edge {
    bool partial;
    std::uint64_t at;
    std::byte* to;
  } edges[2] = {{head_partial, r.span_begin, r.buf}, {tail_partial, tail, r.buf + (tail - r.span_begin)}};
  int n = 0;
  for (int i = 0; i < 2; ++i) {
    if (!edges[i].partial) continue;
    std::memset(edges[i].to, 0, b);  // past end of file the block reads as zeros
    if (edges[i].at >= r.size) continue;
    prep_inner(r, i, op_code::read, edges[i].to, b, edges[i].at);
    ++n;
  }
  r.inner_left = n;
  if (n == 0) return write_span(r);
  for (int i = 0; i < 2; ++i) {
    if (edges[i].partial && edges[i].at < r.size) env_.submit_inner(r.inner[i]);
  }
}

void direct_io::edge_done(request& r, int i, std::int64_t res) {
  if (res < 0 && r.error == 0) r.error = res;
  if (res >= 0 && static_cast<std::uint64_t>(res) < r.block) {
    // A short read ends at end of file; what the device holds beyond it is not file data.
    auto* to = static_cast<std::byte*>(A::args(r.inner[i]).buf);
    std::memset(to + res, 0, r.block - static_cast<std::uint64_t>(res));
  }
  if (--r.inner_left > 0) return;
  if (r.error != 0) return end_write(r, r.error);
  if (r.cancel) return end_write(r, -ECANCELED);
  write_span(r);
}

void direct_io::write_span(request& r) {
  if (r.written == 0) {
    r.st = stage::writing;
    copy_user(*r.user, 0, r.buf + (r.off() - r.span_begin), r.len(), false);
  }
  prep_inner(r, 0, op_code::write, r.buf + r.written, r.span_len - r.written, r.span_begin + r.written);
  env_.submit_inner(r.inner[0]);
}

void direct_io::write_done(request& r, std::int64_t res) {
  if (res > 0) {
    r.written += static_cast<std::uint64_t>(res);
    // A short write (a full disk) is continued while it makes whole-block progress; the next
    // attempt reports the error.
    if (r.written < r.span_len && static_cast<std::uint64_t>(res) % r.block == 0 && !r.cancel)
      return write_span(r);
  }
  const std::uint64_t end = r.span_begin + r.written;
  const std::uint64_t covered = end > r.off() ? std::min(r.len(), end - r.off()) : 0;
  if (covered > 0)
    r.result = static_cast<std::int64_t>(covered);
  else
    r.result = res < 0 ? res : -EIO;
  const std::uint64_t keep = std::max(r.size, r.off() + covered);
  if (end <= r.size || keep >= end) return end_write(r, r.result);
  // The aligned write ran past the old end of file: cut the file back to where the user's bytes
  // end, still holding the lock to infinity.
  r.st = stage::truncating;
  if (env_.in_shutdown()) {
    // The loop no longer runs ops; leave the file the right size all the same.
    int rc = ::ftruncate(A::args(*r.user).fd, static_cast<off_t>(keep));
    return end_write(r, rc == 0 ? r.result : -errno);
  }
  prep_inner(r, 0, op_code::ftruncate, nullptr, 0, keep);
  env_.submit_inner(r.inner[0]);
}

void direct_io::truncate_done(request& r, std::int64_t res) {
  if (res == -ECANCELED) {
    // Cancelled by loop shutdown before it ran.
    res = ::ftruncate(A::args(*r.user).fd, static_cast<off_t>(A::args(r.inner[0]).offset)) == 0 ? 0 : -errno;
  }
  end_write(r, res < 0 ? res : r.result);
}

void direct_io::end_write(request& r, std::int64_t res) {
  lock_table::instance().release(r);  // every caller holds the lock
  finish(r, res);
}

void direct_io::cancel(op& o) {
  auto& r = *reinterpret_cast<request*>(A::word(o));
  if (r.cancel) return;
  r.cancel = true;
  switch (r.st) {
    case stage::lock_wait:
      // Not granted yet: leave the queue now. Granted: the posted continuation sees the flag.
      if (lock_table::instance().withdraw(r)) finish(r, -ECANCELED);
      return;
    case stage::truncating:
      return;  // the data is written; the size must be fixed
    default:
      for (op& in : r.inner)
        env_.cancel_inner(in);
  }
}

void direct_io::shutdown() {
  for (request* r = active_; r != nullptr;) {
    request* next = r->next;
    if (r->st == stage::lock_wait && lock_table::instance().withdraw(*r)) finish(*r, -ECANCELED);
    r = next;
  }
}

}  // namespace unio::detail

namespace unio {

result<dio_alignment> direct_alignment(int fd) noexcept {
  struct statx sx {};
  dio_alignment al;
  if (int e = detail::query_alignment(fd, 0, sx, al); e != 0) return errno_code(e);
  return al;
}

}  // namespace unio
