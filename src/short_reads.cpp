#include "short_reads.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <new>

namespace unio::detail {

// Whether the file behind a.fd is a regular file that goes on past the bytes read so far.
bool short_reads::may_have_more(const op_args& a, std::uint64_t done) noexcept {
  struct statx st {};
  if (::statx(a.fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_SIZE, &st) != 0) return false;
  if ((st.stx_mask & (STATX_TYPE | STATX_SIZE)) != (STATX_TYPE | STATX_SIZE) || !S_ISREG(st.stx_mode)) return false;
  return a.offset + done < st.stx_size;
}

// Points the op's arguments at the bytes still to read, past r.done.
void short_reads::point_at_rest(op& o, round& r) noexcept {
  op_args& a = A::args(o);
  const op_args& c = r.caller;
  a.offset = c.offset + r.done;
  if (o.code() == op_code::read) {
    a.buf = static_cast<char*>(c.buf) + r.done;
    a.len = c.len - r.done;
  } else {
    const auto* iov = static_cast<const iovec*>(c.iov);
    std::uint64_t skip = r.done;
    r.rest.clear();
    for (int i = 0; i < c.iovcnt; ++i) {
      if (skip >= iov[i].iov_len) {
        skip -= iov[i].iov_len;
        continue;
      }
      r.rest.push_back({static_cast<char*>(iov[i].iov_base) + skip, iov[i].iov_len - skip});
      skip = 0;
    }
    a.iov = r.rest.data();
    a.iovcnt = static_cast<int>(r.rest.size());
  }
  A::flags(o) = 0;  // what the backend and its pool marked on the round before
  A::word(o) = 0;
  A::cancel_requested(o) = 0;
}

// The op's last round ended with res: gives it back its arguments and its result.
bool short_reads::finish(op& o, std::int64_t& res, std::unordered_map<op*, round>::iterator it) noexcept {
  A::args(o) = it->second.caller;
  if (res >= 0) res = static_cast<std::int64_t>(it->second.done);
  rounds_.erase(it);
  return false;
}

bool short_reads::go_on(op& o, std::int64_t& res) noexcept {
  auto it = rounds_.empty() ? rounds_.end() : rounds_.find(&o);
  if (it != rounds_.end()) {  // a later round
    round& r = it->second;
    if (res <= 0) return finish(o, res, it);
    r.done += static_cast<std::uint64_t>(res);
    if (r.done >= r.want || !may_have_more(r.caller, r.done)) return finish(o, res, it);
    point_at_rest(o, r);
    return true;
  }
  if (res <= 0 || (o.code() != op_code::read && o.code() != op_code::readv)) return false;
  const op_args& a = A::args(o);
  const auto got = static_cast<std::uint64_t>(res);
  const std::uint64_t want = std::min(requested_bytes(o), k_max_rw);
  if (a.offset == current_position || got >= want || !may_have_more(a, got)) return false;
  try {
    std::vector<iovec> room;
    if (o.code() == op_code::readv) room.reserve(static_cast<std::size_t>(a.iovcnt));
    it = rounds_.emplace(&o, round{a, want, got, std::move(room)}).first;
  } catch (const std::bad_alloc&) {
    return false;  // no memory to go round: the short read is reported as it is
  }
  point_at_rest(o, it->second);
  return true;
}

}  // namespace unio::detail
