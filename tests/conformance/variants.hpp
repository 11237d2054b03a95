// The backends and io_uring variants the tests run on, without gtest, so that programs other than
// the gtest binaries (the soak, the fuzzers) name and build them the same way.
//
// Variants: a name may also stand for a backend run with non-default loop options (only letters,
// digits and '_', as a gtest parameter name allows): "io_uring_sqpoll" (SQPOLL, 10 ms idle),
// "io_uring_restrict" (IORING_REGISTER_RESTRICTIONS) and "io_uring_delegate" (every file op
// through io_uring's delegation to the pool). They exist when their backend is built in.
// backend_of(name) gives the backend's own name.
#pragma once

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

// The backend a name runs on ("io_uring" for "io_uring_sqpoll").
inline std::string backend_of(const std::string& param) {
  for (const auto& v : k_variants)
    if (param == v.param) return v.backend;
  return param;
}

// Loop options for a name: its backend, with the variant's options applied.
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

// Why the name's backend cannot run here ("" when it can, and for a name that is not a backend:
// creating a loop with it then fails, naming it).
inline std::string unavailable_reason(const std::string& param) {
  for (const auto& b : unio::probe_backends())
    if (b.name == backend_of(param) && !b.available) return param + " unavailable: " + b.reason;
  return "";
}

}  // namespace unio::test
