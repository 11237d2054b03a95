// Description: op reuse from inside its own handler, large and non-trivial handler captures (heap fallback), handler lifetime and throwing handlers.
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <functional>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.hpp"

namespace {

using namespace std::chrono_literals;
using unio::test::conformance_test;

class reuse : public conformance_test {};

TEST_P(reuse, read_loop_resubmits_the_same_op) {
  std::string data(100 * 1000 + 123, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 23);
  put_file("src", data);
  int fd = raw_open("src", O_RDONLY);
  ASSERT_GE(fd, 0);
  auto lp = make_loop();
  unio::op o;
  std::string got;
  char buf[1000];
  int calls = 0;
  std::function<void(unio::op&)> on_read = [&](unio::op& self) {
    ++calls;
    ASSERT_GE(self.raw_result(), 0);
    EXPECT_FALSE(self.busy()) << "op still busy inside its handler";
    if (self.value() == 0) return;
    got.append(buf, self.value());
    lp->read(self, fd, buf, sizeof buf, got.size(), [&](unio::op& x) { on_read(x); });
    EXPECT_TRUE(self.busy());
  };
  lp->read(o, fd, buf, sizeof buf, 0, [&](unio::op& x) { on_read(x); });
  lp->run();
  EXPECT_EQ(calls, 102);  // 101 reads with data (the last one short) and one at EOF
  EXPECT_TRUE(got == data);
  ::close(fd);
}

TEST_P(reuse, op_changes_kind_across_resubmissions) {
  auto lp = make_loop();
  int fd = raw_open("k", O_RDWR | O_CREAT);
  ASSERT_GE(fd, 0);
  unio::op o;
  std::vector<std::string> trail;
  char buf[4] = {};
  lp->write(o, fd, "abcd", 4, 0, [&](unio::op& a) {
    trail.push_back(std::string(unio::to_string(a.code())) + "=" + std::to_string(a.raw_result()));
    lp->timeout(a, 0ns, [&](unio::op& b) {
      trail.push_back(std::string(unio::to_string(b.code())) + "=" + std::to_string(b.raw_result()));
      lp->read(b, fd, buf, 4, 0, [&](unio::op& c) {
        trail.push_back(std::string(unio::to_string(c.code())) + "=" + std::to_string(c.raw_result()));
        lp->nop(c, [&](unio::op& d) { trail.push_back(std::string(unio::to_string(d.code())) + "=" + std::to_string(d.raw_result())); });
      });
    });
  });
  lp->run();
  EXPECT_EQ(trail, (std::vector<std::string>{"write=4", "timeout=0", "read=4", "nop=0"}));
  EXPECT_EQ(std::string(buf, 4), "abcd");
  ::close(fd);
}

TEST_P(reuse, thousand_resubmissions_of_a_nop) {
  auto lp = make_loop();
  unio::op o;
  int n = 0;
  std::function<void(unio::op&)> again = [&](unio::op& self) {
    if (++n < 1000) lp->nop(self, [&](unio::op& x) { again(x); });
  };
  lp->nop(o, [&](unio::op& x) { again(x); });
  lp->run();
  EXPECT_EQ(n, 1000);
}

TEST_P(reuse, large_capture_uses_the_heap_and_is_intact) {
  auto lp = make_loop();
  std::array<std::uint64_t, 64> big{};  // 512 bytes: far above op_handler::inline_size
  std::iota(big.begin(), big.end(), 1000);
  static_assert(sizeof(big) > unio::detail::op_handler::inline_size);
  auto token = std::make_shared<int>(7);
  std::uint64_t sum = 0;
  int calls = 0;
  std::vector<unio::op> ops(20);
  for (auto& o : ops) {
    lp->nop(o, [big, token, &sum, &calls](unio::op& x) {
      ++calls;
      EXPECT_EQ(x.raw_result(), 0);
      sum += std::accumulate(big.begin(), big.end(), std::uint64_t{0}) + static_cast<std::uint64_t>(*token);
    });
  }
  EXPECT_EQ(token.use_count(), 21);
  lp->run();
  EXPECT_EQ(calls, 20);
  EXPECT_EQ(sum, 20 * (64 * 1000 + 64 * 63 / 2 + 7));
  EXPECT_EQ(token.use_count(), 1) << "handlers were not destroyed after running";
}

TEST_P(reuse, throwing_move_handler_uses_the_heap) {
  // std::function's move constructor is not noexcept in every library: the handler must still
  // work (heap path) and be destroyed exactly once.
  struct counted {
    std::shared_ptr<int> t;
    counted(std::shared_ptr<int> p) : t(std::move(p)) {}
    counted(const counted&) = default;
    counted(counted&& o) noexcept(false) : t(std::move(o.t)) {}
    void operator()(unio::op& o) const { *t += static_cast<int>(o.raw_result()) + 1; }
  };
  auto lp = make_loop();
  auto token = std::make_shared<int>(0);
  unio::op o;
  lp->nop(o, counted(token));
  lp->run();
  EXPECT_EQ(*token, 1);
  EXPECT_EQ(token.use_count(), 1);
}

TEST_P(reuse, inline_handler_destroyed_after_running) {
  auto lp = make_loop();
  auto token = std::make_shared<int>(0);
  unio::op o;
  lp->timeout(o, 0ns, [token](unio::op&) { ++*token; });
  EXPECT_EQ(token.use_count(), 2);
  lp->run();
  EXPECT_EQ(*token, 1);
  EXPECT_EQ(token.use_count(), 1);
}

TEST_P(reuse, handlers_destroyed_at_loop_shutdown) {
  auto token = std::make_shared<int>(0);
  std::vector<unio::op> ops(10);
  {
    auto lp = make_loop();
    std::array<char, 200> pad{};
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (i % 2 == 0) lp->timeout(ops[i], 1h, [token](unio::op&) { ++*token; });
      else lp->timeout(ops[i], 1h, [token, pad](unio::op&) { *token += 1 + pad[0]; });
    }
  }
  EXPECT_EQ(*token, 10);
  EXPECT_EQ(token.use_count(), 1);
}

TEST_P(reuse, throwing_handler_propagates_and_the_others_still_run_once) {
  auto lp = make_loop();
  std::vector<unio::op> ops(5);
  std::vector<int> calls(5, 0);
  for (int i = 0; i < 5; ++i) {
    lp->nop(ops[i], [&, i](unio::op&) {
      ++calls[i];
      if (i == 1) throw std::runtime_error("handler failed");
    });
  }
  int thrown = 0;
  for (;;) {
    try {
      lp->run();
      break;
    } catch (const std::runtime_error&) {
      ++thrown;
    }
  }
  EXPECT_EQ(thrown, 1);
  EXPECT_EQ(calls, (std::vector<int>{1, 1, 1, 1, 1}));
}

INSTANTIATE_ALL_BACKENDS(reuse);

}  // namespace
