#include "io_uring_probe.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace unio::detail::uring {
namespace {

struct required_opcode {
  int opcode;
  const char* name;
};
// Opcodes without which the backend is unavailable: the loop's own machinery, and socket ops,
// which the thread pool cannot run (it does not wait for readiness).
constexpr required_opcode k_required[] = {
    {IORING_OP_NOP, "NOP"},         {IORING_OP_READ, "READ"},
    {IORING_OP_WRITE, "WRITE"},     {IORING_OP_POLL_ADD, "POLL_ADD"},
    {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}, {IORING_OP_ACCEPT, "ACCEPT"},
    {IORING_OP_CONNECT, "CONNECT"}, {IORING_OP_RECV, "RECV"},
    {IORING_OP_SEND, "SEND"},       {IORING_OP_SPLICE, "SPLICE"},
    {IORING_OP_SENDMSG, "SENDMSG"}, {IORING_OP_RECVMSG, "RECVMSG"},
};

std::string read_io_uring_disabled() {
  std::ifstream f("/proc/sys/kernel/io_uring_disabled");
  std::string v;
  if (!(f >> v)) return {};
  return v;
}

// Submits one NOP and waits for it (bounded; EINTR retried): the ring really works.
std::string nop_round_trip(io_uring& ring) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (sqe == nullptr) return "no SQE on a fresh ring";
  io_uring_prep_nop(sqe);
  sqe->user_data = 0x5a;
  // EINTR, EAGAIN (no memory for the request right now) and EBUSY (completions to reap first)
  // are transient: the NOP is still in the SQ, so submitting again is safe.
  auto transient = [](int e) { return e == -EINTR || e == -EAGAIN || e == -EBUSY; };
  int r = io_uring_submit(&ring);
  for (int tries = 0; transient(r) && tries < 100; ++tries) r = io_uring_submit(&ring);
  if (r != 1) return std::string("NOP submit failed: ") + std::strerror(r < 0 ? -r : EIO);
  for (int tries = 0; tries < 100; ++tries) {
    __kernel_timespec ts{1, 0};
    io_uring_cqe* cqe = nullptr;
    r = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
    if (transient(r)) continue;
    if (r < 0 || cqe == nullptr) return std::string("NOP did not complete: ") + std::strerror(r < 0 ? -r : EIO);
    bool ok = cqe->user_data == 0x5a && cqe->res == 0;
    io_uring_cqe_seen(&ring, cqe);
    return ok ? std::string() : "NOP completed with a wrong result";
  }
  return "NOP wait interrupted too often";
}

std::string check_features(unsigned features) {
  if ((features & IORING_FEAT_NODROP) == 0) return "kernel lacks IORING_FEAT_NODROP (needs Linux 5.5)";
  if ((features & IORING_FEAT_EXT_ARG) == 0) return "kernel lacks IORING_FEAT_EXT_ARG (needs Linux 5.11)";
  return {};
}

// loop_options::io_uring_delegate names this op; socket ops, nop and timeouts cannot be delegated.
bool forced_to_pool(op_code c, std::string_view delegate) {
  if (delegate.empty() || is_socket(c) || c == op_code::nop || c == op_code::timeout) return false;
  std::istringstream in{std::string(delegate)};
  for (std::string item; std::getline(in, item, ',');)
    if (item == "files" || item == to_string(c)) return true;
  return false;
}

std::string check_opcodes(const io_uring_probe* p, std::string_view delegate, std::array<bool, op_code_count>& native) {
  for (std::size_t i = 0; i < op_code_count; ++i) {
    auto c = static_cast<op_code>(i);
    int opc = traits(c).uring_opcode;
    native[i] = opc >= 0 && io_uring_opcode_supported(p, opc) != 0 && !forced_to_pool(c, delegate);
  }
  native[static_cast<std::size_t>(op_code::timeout)] = true;  // kept by the loop, never the pool
  for (const required_opcode& r : k_required)
    if (io_uring_opcode_supported(p, r.opcode) == 0) return std::string("kernel lacks IORING_OP_") + r.name;
  return {};
}

}  // namespace

std::string setup_refusal(int err) {
  std::string disabled = read_io_uring_disabled();
  std::string sysctl = disabled.empty() ? std::string() : " (kernel.io_uring_disabled=" + disabled + ")";
  if (err == EPERM) return "io_uring_setup refused (EPERM): seccomp filter or io_uring_disabled" + sysctl;
  if (err == ENOSYS) return "io_uring_setup: kernel without io_uring (ENOSYS)" + sysctl;
  return std::string("io_uring_setup failed: ") + std::strerror(err) + sysctl;
}

kernel_report inspect_kernel(std::string_view delegate) {
  kernel_report rep;
  io_uring ring{};
  io_uring_params params{};
  int r = io_uring_queue_init_params(8, &ring, &params);
  if (r < 0) {
    rep.why_not = setup_refusal(-r);
    return rep;
  }
  rep.why_not = check_features(params.features);
  io_uring_probe* p = io_uring_get_probe_ring(&ring);
  if (p == nullptr) {
    if (rep.why_not.empty()) rep.why_not = "kernel has no io_uring opcode probe (needs Linux 5.6)";
  } else {
    std::string ops = check_opcodes(p, delegate, rep.native);
    if (rep.why_not.empty()) rep.why_not = ops;
    io_uring_free_probe(p);
  }
  if (rep.why_not.empty()) rep.why_not = nop_round_trip(ring);
  io_uring_queue_exit(&ring);
  return rep;
}

std::vector<io_uring_restriction> restrictions(const std::array<bool, op_code_count>& native) {
  std::vector<io_uring_restriction> res;
  auto allow_op = [&](int opcode) {
    io_uring_restriction r{};
    r.opcode = IORING_RESTRICTION_SQE_OP;
    r.sqe_op = static_cast<std::uint8_t>(opcode);
    res.push_back(r);
  };
  // Only opcodes this kernel has: the kernel refuses restrictions naming an unknown one.
  for (std::size_t i = 0; i < op_code_count; ++i)
    if (int opc = traits(static_cast<op_code>(i)).uring_opcode; opc >= 0 && native[i]) allow_op(opc);
  for (int opc : {IORING_OP_READ, IORING_OP_WRITE, IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_POLL_ADD,
                  IORING_OP_ASYNC_CANCEL, IORING_OP_READ_FIXED, IORING_OP_WRITE_FIXED})
    allow_op(opc);
  for (int reg : {IORING_REGISTER_BUFFERS, IORING_UNREGISTER_BUFFERS, IORING_REGISTER_FILES,
                  IORING_UNREGISTER_FILES, IORING_REGISTER_FILES_UPDATE}) {
    io_uring_restriction r{};
    r.opcode = IORING_RESTRICTION_REGISTER_OP;
    r.register_op = static_cast<std::uint8_t>(reg);
    res.push_back(r);
  }
  io_uring_restriction flags{};
  flags.opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
  flags.sqe_flags = IOSQE_FIXED_FILE;
  res.push_back(flags);
  return res;
}

}  // namespace unio::detail::uring
