// unio: one API over every Linux I/O model. Include this header for the whole public API.
#pragma once

// The flags and constants unio's calls take (O_RDONLY, O_CREAT, AT_FDCWD, AT_EMPTY_PATH, ...).
#include <fcntl.h>

#include "unio/backend_info.hpp"
#include "unio/buffer.hpp"
#include "unio/dir.hpp"
#include "unio/direct_io.hpp"
#include "unio/fs_watch.hpp"
#include "unio/loop.hpp"
#include "unio/net.hpp"
#include "unio/op.hpp"
#include "unio/process.hpp"
#include "unio/result.hpp"
#include "unio/signal_set.hpp"
#include "unio/sync.hpp"
#include "unio/task.hpp"
#include "unio/timeout.hpp"
#include "unio/version.hpp"
#include "unio/when.hpp"
