// The conformance suite's parameterisation: every test in tests/conformance is a TEST_P of a
// fixture derived from backend_test, instantiated with INSTANTIATE_ALL_BACKENDS, so it runs on
// every backend built into unio plus "auto". A backend that is unavailable on this machine is
// skipped with its reason (GTEST_SKIP); it never passes silently.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "unio/unio.hpp"

namespace unio::test {

// "auto" followed by every backend in the registry.
inline std::vector<std::string> all_backend_names() {
  std::vector<std::string> names{"auto"};
  for (const auto& b : unio::probe_backends()) names.push_back(b.name);
  return names;
}

class backend_test : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    for (const auto& b : unio::probe_backends()) {
      if (b.name == GetParam() && !b.available) GTEST_SKIP() << GetParam() << " unavailable: " << b.reason;
    }
  }
  // Options for a loop on the backend under test.
  unio::loop_options options() const {
    unio::loop_options o;
    o.backend = GetParam();
    return o;
  }
};

inline std::string backend_param_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

}  // namespace unio::test

#define INSTANTIATE_ALL_BACKENDS(fixture)                                                         \
  INSTANTIATE_TEST_SUITE_P(backends, fixture, ::testing::ValuesIn(::unio::test::all_backend_names()), \
                           ::unio::test::backend_param_name)
