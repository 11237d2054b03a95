#include "unio/op.hpp"

#include <cstdio>
#include <cstdlib>

#include "op_traits.hpp"

namespace unio {

const char* to_string(op_code c) noexcept {
  auto i = static_cast<std::size_t>(c);
  return i < op_code_count ? detail::k_op_traits[i].name : "invalid";
}

op::~op() {
  if (busy()) {
    std::fprintf(stderr, "unio: an op (%s) was destroyed while still busy; it must complete first\n",
                 to_string(code_));
    std::abort();
  }
}

}  // namespace unio
