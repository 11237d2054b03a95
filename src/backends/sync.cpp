// The sync backend: every file op is the blocking system call, made inline on the loop's
// thread. It is the baseline the other backends are measured against, and it stalls the loop
// for as long as each call takes (a cache miss on a disk: milliseconds), which is exactly the
// problem that drove Node.js and Python to run file I/O on thread pools. Sockets use non-blocking fds and epoll readiness (reactor),
// as every event loop does.
#include <memory>

#include "backend.hpp"
#include "reactor.hpp"
#include "sys/syscalls.hpp"

namespace unio::detail {
namespace {

class sync_backend final : public backend {
 public:
  explicit sync_backend(backend_env& env) : env_(env), reactor_(env) {}

  std::string_view name() const noexcept override { return "sync"; }

  void submit(op& o) override {
    if (needs_readiness(o, env_)) reactor_.submit(o);
    else files_.push(o);
  }

  void cancel(op& o) override {
    if (files_.remove(o)) env_.complete(o, -ECANCELED);
    else reactor_.cancel(o);
  }

  void poll(std::optional<std::chrono::nanoseconds> timeout) override {
    if (!files_.empty()) {
      run_files();
      timeout = std::chrono::nanoseconds(0);
    }
    reactor_.wait(timeout);
  }

  void wake() noexcept override { reactor_.wake(); }

  int host_fd() const noexcept override { return reactor_.epoll_fd(); }
  std::optional<std::chrono::nanoseconds> prepare_host_wait() override {
    if (!files_.empty() || reactor_.settle().completed > 0) return std::chrono::nanoseconds(0);
    return std::nullopt;
  }

  void shutdown() override {
    while (op* o = files_.pop()) env_.complete(*o, -ECANCELED);
    reactor_.shutdown();
  }

 private:
  // Runs the ops queued before this turn; ops their handlers submit wait for the next turn.
  void run_files() {
    op_queue now;
    now.splice(files_);
    while (op* o = now.pop()) env_.complete(*o, sys::perform(*o));
  }

  backend_env& env_;
  reactor reactor_;
  op_queue files_;
};

std::array<bool, op_code_count> all_native(const loop_options&) {
  std::array<bool, op_code_count> a{};
  a.fill(true);
  return a;
}

}  // namespace

extern const backend_descriptor sync_descriptor = {
    "sync",
    [] { return std::string(); },
    all_native,
    [](backend_env& env) -> std::unique_ptr<backend> { return std::make_unique<sync_backend>(env); },
};

}  // namespace unio::detail
