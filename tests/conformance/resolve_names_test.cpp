// Description: name look-ups on the loop's pool (loop::async_resolve, async_reverse_resolve) with
// /etc/hosts and numeric input only (no network is needed), their errors in
// unio::resolve_category() and cancellation, on every backend.
#include <arpa/inet.h>
#include <netdb.h>

#include <set>
#include <string>
#include <vector>

#include "common.hpp"

namespace {

using unio::test::conformance_test;

class resolve_names : public conformance_test {};

using endpoints = unio::result<std::vector<unio::endpoint>>;

endpoints resolve(unio::loop& lp, std::string host, std::string service, unio::resolve_hints hints = {}) {
  return unio::sync_wait(
      lp,
      [](unio::loop& lp, std::string h, std::string s, unio::resolve_hints hints) -> unio::task<endpoints> {
        co_return co_await lp.async_resolve(std::move(h), std::move(s), hints);
      }(lp, std::move(host), std::move(service), hints));
}

TEST_P(resolve_names, localhost_resolves_to_loopback_with_the_service_port) {
  auto lp = make_loop();
  auto r = resolve(*lp, "localhost", "8080");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_FALSE(r->empty());
  std::set<std::string> seen;
  for (const auto& ep : *r) {
    std::string s = ep.to_string();
    EXPECT_TRUE(s == "127.0.0.1:8080" || s == "[::1]:8080") << s;
    EXPECT_TRUE(seen.insert(s).second) << "duplicate " << s;
  }
}

TEST_P(resolve_names, numeric_host_and_service) {
  auto lp = make_loop();
  auto r = resolve(*lp, "127.0.0.1", "8080", {.flags = AI_NUMERICHOST | AI_NUMERICSERV});
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(r->front().family(), AF_INET);
  EXPECT_EQ(r->front().port(), 8080);
  EXPECT_EQ(r->front().to_string(), "127.0.0.1:8080");
  auto v6 = resolve(*lp, "::1", "443", {.flags = AI_NUMERICHOST});
  ASSERT_TRUE(v6) << v6.error().message();
  ASSERT_EQ(v6->size(), 1u);
  EXPECT_EQ(v6->front().to_string(), "[::1]:443");
}

TEST_P(resolve_names, family_hint_restricts_the_answers) {
  auto lp = make_loop();
  auto r = resolve(*lp, "localhost", "1", {.family = AF_INET});
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_FALSE(r->empty());
  for (const auto& ep : *r)
    EXPECT_EQ(ep.family(), AF_INET) << ep.to_string();
}

TEST_P(resolve_names, passive_with_empty_host_gives_the_wildcard) {
  auto lp = make_loop();
  auto r = resolve(*lp, "", "9000", {.family = AF_INET, .flags = AI_PASSIVE});
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(r->front().to_string(), "0.0.0.0:9000");
}

TEST_P(resolve_names, a_name_that_does_not_exist_fails_in_resolve_category) {
  auto lp = make_loop();
  auto r = resolve(*lp, "no-such-host.invalid", "80");
  ASSERT_FALSE(r) << "resolved to " << r->front().to_string();
  EXPECT_EQ(&r.error().category(), &unio::resolve_category()) << r.error().message();
  int v = r.error().value();
  EXPECT_TRUE(v == EAI_NONAME || v == EAI_AGAIN || v == EAI_FAIL || v == EAI_NODATA) << v;
  EXPECT_FALSE(r.error().message().empty());
  EXPECT_EQ(r.error().message(), ::gai_strerror(v));
}

TEST_P(resolve_names, numeric_only_hint_refuses_a_name) {
  auto lp = make_loop();
  auto r = resolve(*lp, "localhost", "80", {.flags = AI_NUMERICHOST});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::error_code(EAI_NONAME, unio::resolve_category()));
}

TEST_P(resolve_names, reverse_of_loopback_gives_a_host_name) {
  auto lp = make_loop();
  auto ep = unio::endpoint::parse("127.0.0.1", 80);
  ASSERT_TRUE(ep);
  auto r = unio::sync_wait(
      *lp, [](unio::loop& lp, unio::endpoint ep) -> unio::task<unio::result<unio::name_info>> {
        co_return co_await lp.async_reverse_resolve(ep);
      }(*lp, *ep));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_FALSE(r->host.empty());
  EXPECT_FALSE(r->service.empty());
  auto numeric = unio::sync_wait(
      *lp, [](unio::loop& lp, unio::endpoint ep) -> unio::task<unio::result<unio::name_info>> {
        co_return co_await lp.async_reverse_resolve(ep, NI_NUMERICHOST | NI_NUMERICSERV);
      }(*lp, *ep));
  ASSERT_TRUE(numeric) << numeric.error().message();
  EXPECT_EQ(numeric->host, "127.0.0.1");
  EXPECT_EQ(numeric->service, "80");
}

TEST_P(resolve_names, reverse_of_an_empty_endpoint_fails_in_resolve_category) {
  auto lp = make_loop();
  auto r = unio::sync_wait(*lp, [](unio::loop& lp) -> unio::task<unio::result<unio::name_info>> {
    co_return co_await lp.async_reverse_resolve(unio::endpoint{});
  }(*lp));
  ASSERT_FALSE(r);
  EXPECT_EQ(&r.error().category(), &unio::resolve_category());
  EXPECT_FALSE(r.error().message().empty());
}

TEST_P(resolve_names, cancelled_while_queued_gives_ecanceled) {
  auto lp = make_loop();
  unio::op* target = nullptr;
  endpoints got = std::vector<unio::endpoint>{};
  unio::spawn([](unio::loop& lp, unio::op*& target, endpoints& got) -> unio::task<void> {
    auto aw = lp.async_resolve("localhost", "80");
    target = &aw.get_op();
    got = co_await aw;
  }(*lp, target, got));
  ASSERT_NE(target, nullptr);
  lp->cancel(*target);
  lp->run();
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), unio::errno_code(ECANCELED));
}

INSTANTIATE_ALL_BACKENDS(resolve_names);

}  // namespace
