// The library's own work items (op_code::work ops whose function is unio's, not the caller's):
// the directory listings of loop::scandir and loop::read_dir (src/dir.cpp). Their arguments are
// the op's own fields, so one shared, stateless item serves every op.
#pragma once

#include "unio/op.hpp"

namespace unio::detail {

// a.dirfd, a.path: the directory; a.out: std::vector<dir_entry>*. Result: entries or -errno.
work_item& scandir_item() noexcept;
// a.fd: an open directory; a.out: std::vector<dir_entry>*. Result: entries (0 at the end) or -errno.
work_item& read_dir_item() noexcept;

}  // namespace unio::detail
