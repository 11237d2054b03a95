// unio's version.
#pragma once

#define UNIO_VERSION_MAJOR 0
#define UNIO_VERSION_MINOR 1
#define UNIO_VERSION_PATCH 0

namespace unio {
inline constexpr const char* version_string = "0.1.0";
}  // namespace unio
