// The conformance suite's parameterisation: every test in tests/conformance is a TEST_P of a
// fixture derived from backend_test, instantiated with INSTANTIATE_ALL_BACKENDS, so it runs on
// every backend built into unio plus "auto". A backend that is unavailable on this machine is
// skipped with its reason (GTEST_SKIP); it never passes silently.
//
// Variants: a parameter may also name a backend run with non-default loop options (a gtest
// parameter name allows only letters, digits and '_'): "io_uring_sqpoll" (SQPOLL, 10 ms idle),
// "io_uring_restrict" (IORING_REGISTER_RESTRICTIONS) and "io_uring_delegate" (every file op
// through io_uring's delegation to the pool). They run when their backend is built
// in. backend_of(param) gives the backend's own name.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "unio/unio.hpp"

namespace unio::test {

struct backend_variant {
  const char* param;
  const char* backend;
  void (*apply)(unio::loop_options&);
};
inline constexpr backend_variant k_variants[] = {
    {"io_uring_sqpoll", "io_uring", [](unio::loop_options& o) { o.io_uring_sqpoll_idle_ms = 10; }},
    {"io_uring_restrict", "io_uring", [](unio::loop_options& o) { o.io_uring_restrict = true; }},
    {"io_uring_delegate", "io_uring", [](unio::loop_options& o) { o.io_uring_delegate = "files"; }},
};

// The backend a parameter runs on ("io_uring" for "io_uring_sqpoll").
inline std::string backend_of(const std::string& param) {
  for (const auto& v : k_variants)
    if (param == v.param) return v.backend;
  return param;
}

// Loop options for a parameter: its backend, with the variant's options applied.
inline unio::loop_options options_for(const std::string& param) {
  unio::loop_options o;
  o.backend = backend_of(param);
  for (const auto& v : k_variants)
    if (param == v.param) v.apply(o);
  return o;
}

// "auto", every backend in the registry, then the variants of the backends built in.
inline std::vector<std::string> all_backend_names() {
  std::vector<std::string> names{"auto"};
  auto all = unio::probe_backends();
  for (const auto& b : all) names.push_back(b.name);
  for (const auto& v : k_variants)
    for (const auto& b : all)
      if (b.name == v.backend) names.push_back(v.param);
  return names;
}

// Why the parameter's backend cannot run here ("" when it can).
inline std::string unavailable_reason(const std::string& param) {
  for (const auto& b : unio::probe_backends())
    if (b.name == backend_of(param) && !b.available) return param + " unavailable: " + b.reason;
  return "";
}

class backend_test : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (std::string why = unavailable_reason(GetParam()); !why.empty()) GTEST_SKIP() << why;
  }
  // Options for a loop on the backend under test.
  unio::loop_options options() const { return options_for(GetParam()); }
};

inline std::string backend_param_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

}  // namespace unio::test

#define INSTANTIATE_ALL_BACKENDS(fixture)                                                         \
  INSTANTIATE_TEST_SUITE_P(backends, fixture, ::testing::ValuesIn(::unio::test::all_backend_names()), \
                           ::unio::test::backend_param_name)
