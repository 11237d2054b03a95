// The backend registry: every backend compiled in, in preference order.
#pragma once

#include <span>
#include <string>

#include "backend.hpp"

namespace unio::detail {

// Preference order: the first available one of these is what "auto" picks.
std::span<const backend_descriptor* const> all_backends() noexcept;
// nullptr when no backend has that name.
const backend_descriptor* find_backend(std::string_view name) noexcept;
// Resolves a loop_options::backend value to a descriptor, or throws std::system_error whose
// message says why not. `reason` receives why this backend was chosen (for auto).
const backend_descriptor& resolve_backend(const std::string& name, std::string& reason);

}  // namespace unio::detail
