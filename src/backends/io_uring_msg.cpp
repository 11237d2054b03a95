#include "io_uring_msg.hpp"

namespace unio::detail::uring {

msg_headers::header& msg_headers::take(op& o) {
  if (auto it = live_.find(&o); it != live_.end()) return it->second;
  if (spare_.empty()) return live_[&o];
  map::node_type n = std::move(spare_.back());
  spare_.pop_back();
  n.key() = &o;
  return live_.insert(std::move(n)).position->second;
}

void msg_headers::prep(io_uring_sqe* sqe, op& o) {
  const op_args& a = A::args(o);
  header& h = take(o);
  h.iov = {a.buf, a.len};
  h.msg = msghdr{};
  h.msg.msg_iov = &h.iov;
  h.msg.msg_iovlen = 1;
  if (o.code() == op_code::sendto) {
    h.msg.msg_name = a.out;
    h.msg.msg_namelen = a.addrlen_in;
    io_uring_prep_sendmsg(sqe, a.fd, &h.msg, a.flags | MSG_NOSIGNAL);
    return;
  }
  if (a.addrlen != nullptr) {
    h.msg.msg_name = a.out;
    h.msg.msg_namelen = *a.addrlen;
  }
  io_uring_prep_recvmsg(sqe, a.fd, &h.msg, a.flags);
}

void msg_headers::done(op& o, std::int32_t res) noexcept {
  auto it = live_.find(&o);
  if (it == live_.end()) return;
  const op_args& a = A::args(o);
  if (res >= 0 && o.code() == op_code::recvfrom && a.addrlen != nullptr)
    *a.addrlen = it->second.msg.msg_namelen;
  release(o);
}

void msg_headers::release(op& o) noexcept {
  map::node_type n = live_.extract(&o);
  if (!n.empty() && spare_.size() < k_spare) spare_.push_back(std::move(n));
}

}  // namespace unio::detail::uring
