// fs_watch: an inotify instance with one watch, read through the loop (a read at the current
// position of a stream fd waits for readiness on every backend) into a buffer of whole events,
// which are parsed one at a time as they are handed out.
#include "unio/fs_watch.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace unio {
namespace detail {
namespace {

struct kind_bit {
  std::uint32_t bit;
  fs_event_kind kind;
};

// In the order they are tested: the flags the kernel sets on its own first (an IN_UNMOUNT event
// carries no other bit), then the event bits (each event has one).
constexpr kind_bit k_kinds[] = {
    {IN_Q_OVERFLOW, fs_event_kind::overflow},
    {IN_IGNORED, fs_event_kind::watch_removed},
    {IN_UNMOUNT, fs_event_kind::unmounted},
    {IN_DELETE_SELF, fs_event_kind::self_deleted},
    {IN_MOVE_SELF, fs_event_kind::self_moved},
    {IN_CREATE, fs_event_kind::created},
    {IN_DELETE, fs_event_kind::deleted},
    {IN_MODIFY, fs_event_kind::modified},
    {IN_ATTRIB, fs_event_kind::attrib},
    {IN_MOVED_FROM, fs_event_kind::moved_from},
    {IN_MOVED_TO, fs_event_kind::moved_to},
    {IN_OPEN, fs_event_kind::opened},
    {IN_ACCESS, fs_event_kind::accessed},
    {IN_CLOSE_WRITE, fs_event_kind::closed_write},
    {IN_CLOSE_NOWRITE, fs_event_kind::closed_nowrite},
};

fs_event_kind kind_of(std::uint32_t mask) noexcept {
  for (const kind_bit& k : k_kinds)
    if ((mask & k.bit) != 0) return k.kind;
  return fs_event_kind::modified;  // not reached: the kernel sets one of the bits above
}

result<std::shared_ptr<fs_watch_state>> open_watch(loop& lp, const std::string& path, std::uint32_t mask) {
  if ((mask & (IN_MASK_ADD | IN_MASK_CREATE)) != 0) return errno_code(EINVAL);
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return errno_code(errno);
  if (::inotify_add_watch(fd, path.c_str(), mask) < 0) {
    int e = errno;
    ::close(fd);
    return errno_code(e);
  }
  try {
    return std::make_shared<fs_watch_state>(lp, fd);
  } catch (...) {
    ::close(fd);
    throw;
  }
}

}  // namespace

fs_watch_state::~fs_watch_state() { ::close(fd); }

fs_event fs_watch_state::pop() {
  inotify_event head{};
  std::memcpy(&head, buf.get() + pos, sizeof head);
  const char* name = buf.get() + pos + sizeof head;
  pos += sizeof head + head.len;
  fs_event ev;
  ev.kind = kind_of(head.mask);
  ev.name.assign(name, ::strnlen(name, head.len));  // the kernel pads the name with NULs
  ev.is_dir = (head.mask & IN_ISDIR) != 0;
  ev.cookie = head.cookie;
  ev.mask = head.mask;
  if (ev.kind == fs_event_kind::watch_removed) ended = true;
  return ev;
}

result<fs_event> fs_watch_state::take(op& o) {
  if (&o != in_flight) return errno_code(EBUSY);
  in_flight = nullptr;
  if (closed) return errno_code(ECANCELED);
  if (!o.ok()) return o.error();
  if (o.code() == op_code::read) {
    pos = 0;
    end = o.value();
  }
  if (has_event()) return pop();
  return errno_code(ended ? ENOENT : EIO);  // EIO: an empty read, which inotify never gives
}

}  // namespace detail

const char* to_string(fs_event_kind k) noexcept {
  switch (k) {
    case fs_event_kind::created:
      return "created";
    case fs_event_kind::deleted:
      return "deleted";
    case fs_event_kind::modified:
      return "modified";
    case fs_event_kind::attrib:
      return "attrib";
    case fs_event_kind::moved_from:
      return "moved_from";
    case fs_event_kind::moved_to:
      return "moved_to";
    case fs_event_kind::opened:
      return "opened";
    case fs_event_kind::accessed:
      return "accessed";
    case fs_event_kind::closed_write:
      return "closed_write";
    case fs_event_kind::closed_nowrite:
      return "closed_nowrite";
    case fs_event_kind::self_deleted:
      return "self_deleted";
    case fs_event_kind::self_moved:
      return "self_moved";
    case fs_event_kind::unmounted:
      return "unmounted";
    case fs_event_kind::watch_removed:
      return "watch_removed";
    case fs_event_kind::overflow:
      return "overflow";
  }
  return "?";
}

fs_watch::fs_watch(loop& lp, const std::string& path, std::uint32_t mask) {
  auto st = detail::open_watch(lp, path, mask);
  if (!st) throw std::system_error(st.error(), "unio::fs_watch: " + path);
  st_ = std::move(*st);
}

result<fs_watch> fs_watch::open(loop& lp, const std::string& path, std::uint32_t mask) {
  auto st = detail::open_watch(lp, path, mask);
  if (!st) return st.error();
  return fs_watch(std::move(*st));
}

fs_watch::~fs_watch() { close(); }

fs_watch& fs_watch::operator=(fs_watch&& o) noexcept {
  if (this != &o) {
    close();
    st_ = std::move(o.st_);
  }
  return *this;
}

void fs_watch::close() noexcept {
  if (!st_) return;
  st_->closed = true;
  cancel();
  st_.reset();
}

void fs_watch::cancel() {
  if (st_->in_flight != nullptr) st_->lp->cancel(*st_->in_flight);
}

}  // namespace unio
