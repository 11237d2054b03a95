// The conformance suite's parameterisation: every test in tests/conformance is a TEST_P of a
// fixture derived from backend_test, instantiated with INSTANTIATE_ALL_BACKENDS, so it runs on
// every backend built into unio plus "auto". A backend that is unavailable on this machine is
// skipped with its reason (GTEST_SKIP); it never passes silently.
//
// The backends and variants themselves (names, loop options, availability) are in variants.hpp.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "unio/unio.hpp"
#include "variants.hpp"

namespace unio::test {

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
