// unio: one API over every Linux I/O model. Include this header for the whole public API.
#pragma once

#include "unio/backend_info.hpp"
#include "unio/buffer.hpp"
#include "unio/dir.hpp"
#include "unio/direct_io.hpp"
#include "unio/loop.hpp"
#include "unio/net.hpp"
#include "unio/op.hpp"
#include "unio/result.hpp"
#include "unio/task.hpp"
#include "unio/version.hpp"
