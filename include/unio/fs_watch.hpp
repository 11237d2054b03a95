// fs_watch: changes to a file or a directory, from inotify(7), one event at a time.
//
//   unio::fs_watch w(lp, "/var/spool/in", unio::fs_watch::k_changes);
//   for (;;) {
//     unio::result<unio::fs_event> ev = co_await w.async_next();
//     if (!ev) break;                                   // ECANCELED, ENOENT after watch_removed
//     if (ev->kind == unio::fs_event_kind::created) use(ev->name, ev->is_dir);
//     if (ev->kind == unio::fs_event_kind::overflow) rescan();   // events were lost
//   }
//
// What is watched: one path, given to inotify_add_watch(2) when the fs_watch is made. A
// directory reports events about its entries (`name` is the entry's name) and about itself
// (`name` is empty); a file reports events about itself. Not recursive: a subdirectory's own
// entries are not reported (watch it too). The path is resolved once: a watch follows the inode,
// not the name (after a rename of the watched directory, events keep coming for it).
//
// The mask: inotify's IN_* bits, passed to the kernel unchanged (IN_CREATE, IN_DELETE,
// IN_MODIFY, IN_ATTRIB, IN_MOVED_FROM, IN_MOVED_TO, IN_MOVE, IN_OPEN, IN_ACCESS, IN_CLOSE_WRITE,
// IN_CLOSE_NOWRITE, IN_DELETE_SELF, IN_MOVE_SELF, IN_ALL_EVENTS, and the flags IN_ONLYDIR,
// IN_DONT_FOLLOW, IN_EXCL_UNLINK, IN_ONESHOT). fs_watch::k_changes is a mask for "what changed"
// (no opens, reads or closes). IN_MASK_ADD and IN_MASK_CREATE are refused (EINVAL). Whatever the
// mask, the kernel always reports overflow, unmounted and watch_removed.
//
// Batches: one read(2) of the inotify fd gives all the events queued (up to 16 KiB of them);
// the watch keeps them and hands them out one per async_next(). A buffered event is given
// without a loop turn when awaited directly; the callback form gives it in the next turn.
// Consecutive identical events (same kind, name and cookie, not yet read) are merged into one by
// the kernel.
//
// Overflow: when more events happen than the kernel queues for an inotify instance
// (/proc/sys/fs/inotify/max_queued_events, 16384 by default), the rest are dropped and an event
// of kind `overflow` (no name) is queued in their place: it is always reported, never dropped.
// Rescan what you watch when you see it. The watch goes on working afterwards.
//
// The end: when the watched object is deleted (after its last link and open fd are gone) or
// its file system is unmounted, the events are self_deleted or unmounted, then watch_removed:
// the kernel has removed the watch. Later calls fail with ENOENT once the buffered events are
// given out. With IN_ONESHOT, watch_removed follows the first event.
//
// Errors: constructor and open(): ENOENT (no such path), ENOTDIR (IN_ONLYDIR on a file), EACCES,
// EINVAL (a mask with no event bit, IN_MASK_ADD, IN_MASK_CREATE), EMFILE (the per-user limit
// of inotify instances, /proc/sys/fs/inotify/max_user_instances, 128 by default: each fs_watch
// uses one), ENOSPC (the per-user limit of watches). async_next(): ECANCELED (cancel(),
// loop::cancel on its op, the watch's destruction or the loop's), ENOENT (after
// watch_removed), EBUSY (another next is in flight on this watch).
//
// Ownership and threading: everything runs on the loop's thread, and the path is resolved there
// (inotify_add_watch is a path look-up). One next at a time per watch. Destroying the watch
// completes a next in flight with ECANCELED (in a later turn; the inotify fd and the buffer stay
// alive until it has). The loop must outlive the nexts, not the watch. Movable; a moved-from
// watch may only be destroyed or assigned to.
#pragma once

#include <sys/inotify.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "unio/detail/shared_wait.hpp"
#include "unio/export.hpp"
#include "unio/loop.hpp"
#include "unio/op.hpp"
#include "unio/result.hpp"

namespace unio {

// What happened, one per inotify event bit.
enum class fs_event_kind : std::uint8_t {
  created,         // IN_CREATE: an entry was created in the watched directory
  deleted,         // IN_DELETE: an entry was deleted from it
  modified,        // IN_MODIFY: a file was written (the watched file, or an entry)
  attrib,          // IN_ATTRIB: metadata changed (mode, owner, times, link count, xattrs)
  moved_from,      // IN_MOVED_FROM: an entry was renamed away; `cookie` pairs it with moved_to
  moved_to,        // IN_MOVED_TO: an entry was renamed here
  opened,          // IN_OPEN
  accessed,        // IN_ACCESS: a file was read
  closed_write,    // IN_CLOSE_WRITE: a file opened for writing was closed
  closed_nowrite,  // IN_CLOSE_NOWRITE
  self_deleted,    // IN_DELETE_SELF: the watched object itself was deleted
  self_moved,      // IN_MOVE_SELF: the watched object itself was renamed
  unmounted,       // IN_UNMOUNT: the file system of the watched object was unmounted
  watch_removed,   // IN_IGNORED: the kernel removed the watch; nothing follows (ENOENT)
  overflow,        // IN_Q_OVERFLOW: the kernel's queue overflowed and events were lost
};

// The kind's name ("created", "moved_from", ...).
UNIO_API const char* to_string(fs_event_kind k) noexcept;

struct fs_event {
  fs_event_kind kind = fs_event_kind::modified;
  // The entry's name inside the watched directory; empty for the watched object itself and for
  // overflow and watch_removed.
  std::string name;
  bool is_dir = false;       // IN_ISDIR: the entry the event is about is a directory
  std::uint32_t cookie = 0;  // equal in the moved_from and moved_to of one rename; else 0
  std::uint32_t mask = 0;    // the raw inotify mask of the event
};

namespace detail {

// What an fs_watch and its next in flight share (detail/shared_wait.hpp): the inotify fd and
// the batch buffer.
struct UNIO_API fs_watch_state {
  static constexpr std::size_t k_buffer_size = 16 * 1024;

  fs_watch_state(loop& l, int f) : lp(&l), fd(f), buf(new char[k_buffer_size]) {}
  ~fs_watch_state();
  fs_watch_state(const fs_watch_state&) = delete;
  fs_watch_state& operator=(const fs_watch_state&) = delete;

  bool has_event() const noexcept { return pos < end; }
  // The next buffered event. REQUIRES: has_event().
  fs_event pop();
  // A read of the next batch; a nop when an event is buffered, the watch has ended, or another
  // next is in flight (take() gives EBUSY to that one).
  template <class W>
  void begin(op& o, W&& w) {
    bool read = in_flight == nullptr && !has_event() && !ended;
    if (in_flight == nullptr) in_flight = &o;
    if (read)
      lp->read(o, fd, buf.get(), k_buffer_size, current_position, std::forward<W>(w));
    else
      lp->nop(o, std::forward<W>(w));
  }
  // The next event, or an error.
  result<fs_event> take(op& o);

  loop* lp;
  int fd;
  std::unique_ptr<char[]> buf;
  std::size_t pos = 0, end = 0;  // the unread part of the last batch
  bool ended = false;            // watch_removed was given out
  bool closed = false;           // the fs_watch was destroyed
  op* in_flight = nullptr;       // the next that owns the buffer
};

// A buffered event is given at once, without a loop turn, unless another next is in flight.
class fs_next_awaitable : public shared_wait_awaitable<fs_watch_state, fs_event> {
 public:
  using shared_wait_awaitable::shared_wait_awaitable;
  bool await_ready() noexcept {
    ready_ = st_->in_flight == nullptr && !st_->closed && st_->has_event();
    return ready_;
  }
  result<fs_event> await_resume() {
    if (ready_) return st_->pop();
    return shared_wait_awaitable::await_resume();
  }

 private:
  bool ready_ = false;
};

}  // namespace detail

class UNIO_API fs_watch {
 public:
  // A mask for changes: created, deleted, modified, attrib, moved_from/to, self_deleted,
  // self_moved.
  static constexpr std::uint32_t k_changes = IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM |
                                             IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF;

  // Watches `path` (an inotify instance of its own, non-blocking and close-on-exec). Throws
  // std::system_error with the errors listed above.
  fs_watch(loop& lp, const std::string& path, std::uint32_t mask = k_changes);
  // The same without exceptions.
  static result<fs_watch> open(loop& lp, const std::string& path, std::uint32_t mask = k_changes);
  ~fs_watch();
  fs_watch(fs_watch&& o) noexcept = default;
  fs_watch& operator=(fs_watch&& o) noexcept;

  // Awaitable form: co_await yields result<fs_event>. get_op() on the awaitable gives its op.
  detail::fs_next_awaitable async_next() { return detail::fs_next_awaitable(st_); }
  // Callback form: h(op&, result<fs_event>) runs once, in a later turn. `o` is busy until then;
  // loop::cancel(o) stops a read that waits (ECANCELED; buffered events stay buffered).
  template <class H>
  void next(op& o, H&& h) {
    detail::start_shared_wait(st_, o, std::forward<H>(h));
  }
  // Completes the next in flight, if any, with ECANCELED (in a later turn).
  void cancel();
  // The inotify fd, for inspection (reading it takes events from the watch).
  int fd() const noexcept { return st_->fd; }

 private:
  explicit fs_watch(std::shared_ptr<detail::fs_watch_state> st) noexcept : st_(std::move(st)) {}
  void close() noexcept;

  std::shared_ptr<detail::fs_watch_state> st_;
};

}  // namespace unio
