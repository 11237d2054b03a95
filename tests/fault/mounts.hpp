// Real file systems for fault tests, made inside a forked child (child.hpp): a private mount
// namespace, tmpfs, ext4 and xfs loop images, and the file-system shutdown ioctl.
//
// Everything here cleans itself up: the mounts live in the child's private mount namespace and
// vanish with it, and `mount -o loop` sets the loop device to autoclear, so it is released when
// its last mount goes. Each function returns an exit code for the child: 0 when it worked,
// k_skip (with msg set) when the machine cannot do it (not root, no mkfs.xfs, no loop devices).
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include "fault/child.hpp"

namespace unio::test {

// A directory made by the parent for the child to mount on; removed (with what the child left
// in it outside its mounts) when the test ends.
class scratch_dir {
 public:
  scratch_dir() {
    char tmpl[] = "/tmp/unio_fault_XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~scratch_dir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  bool ok() const noexcept { return !path_.empty(); }
  const std::string& path() const noexcept { return path_; }
  // A path inside the directory.
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The file-system shutdown ioctl of xfs and ext4 (XFS_IOC_GOINGDOWN, EXT4_IOC_SHUTDOWN: the same
// number), which `xfs_io -x -c shutdown` calls. After it every I/O on the file system fails with
// EIO. log_flush (xfs_io's -f): the journal is written first, so committed metadata survives;
// without it the journal is not flushed, which is what a power loss leaves on the disk.
inline constexpr unsigned long k_fs_shutdown = _IOR('X', 125, unsigned);
enum class shutdown_mode : unsigned { log_flush = 1, no_log_flush = 2 };

inline int shut_down_fs(const std::string& dir, shutdown_mode mode, std::string& msg) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return report(msg, errstr("open " + dir, errno), 1);
  unsigned flags = static_cast<unsigned>(mode);
  int r = ::ioctl(fd, k_fs_shutdown, &flags);
  int e = errno;
  ::close(fd);
  return r == 0 ? 0 : report(msg, errstr("shutdown ioctl", e), 1);
}

// Enters a private mount namespace: nothing mounted afterwards is seen outside the child.
inline int private_mount_ns(std::string& msg) {
  if (::geteuid() != 0) return report(msg, "needs root to mount in a private mount namespace", k_skip);
  if (::unshare(CLONE_NEWNS) != 0) return report(msg, errstr("unshare(CLONE_NEWNS)", errno), k_skip);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return report(msg, errstr("make / private", errno), k_skip);
  return 0;
}

// Mounts a tmpfs on dir (created if needed).
inline int mount_tmpfs(const std::string& dir, const char* options, std::string& msg) {
  ::mkdir(dir.c_str(), 0755);
  if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, options) != 0) return report(msg, errstr("mount tmpfs", errno), k_skip);
  return 0;
}

// Runs a shell command quietly; true when it exited with 0.
inline bool shell(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

struct fs_kind {
  const char* type;      // for mount -t
  const char* mkfs;      // the formatting command, given the image path after it
  unsigned size_mb;      // xfs refuses file systems under 300 MB; the image is sparse
};
inline constexpr fs_kind k_ext4{"ext4", "mkfs.ext4 -q -F", 64};
inline constexpr fs_kind k_ext4_no_journal{"ext4", "mkfs.ext4 -q -F -O ^has_journal", 64};
inline constexpr fs_kind k_xfs{"xfs", "mkfs.xfs -q -f", 320};

// Mounts an image made by mount_image again (after umount: the journal is replayed).
inline int remount_image(const fs_kind& fs, const std::string& image, const std::string& dir, std::string& msg) {
  if (!shell(std::string("mount -o loop -t ") + fs.type + " " + image + " " + dir))
    return report(msg, std::string("mount -o loop ") + fs.type + " failed (no loop devices?)", k_skip);
  return 0;
}

// Makes a sparse image of `fs` at `image` and mounts it on `dir` (created if needed) through a
// loop device.
inline int mount_image(const fs_kind& fs, const std::string& image, const std::string& dir, std::string& msg) {
  ::mkdir(dir.c_str(), 0755);
  std::string mkfs = fs.mkfs;
  if (!shell("command -v " + mkfs.substr(0, mkfs.find(' '))))
    return report(msg, mkfs.substr(0, mkfs.find(' ')) + " is not installed", k_skip);
  if (!shell("truncate -s " + std::to_string(fs.size_mb) + "M " + image)) return report(msg, "truncate " + image, 1);
  if (!shell(mkfs + " " + image)) return report(msg, mkfs + " " + image + " failed", 1);
  return remount_image(fs, image, dir, msg);
}

// Enters a private mount namespace and mounts a fresh image of `fs` there (mount_image).
inline int private_image_mount(const fs_kind& fs, const std::string& image, const std::string& dir, std::string& msg) {
  if (int rc = private_mount_ns(msg); rc != 0) return rc;
  return mount_image(fs, image, dir, msg);
}

// Runs body(dir, mnt, msg) in a forked child (run_in_child) in a private mount namespace, with a
// fresh image of `fs` mounted on mnt, inside the scratch directory dir.
template <class Body>
child_result on_fresh_image(const fs_kind& fs, Body body, unsigned seconds = 60) {
  scratch_dir dir;
  if (!dir.ok()) return {1, errstr("mkdtemp", errno)};
  return run_in_child([&](std::string& msg) -> int {
    const std::string mnt = dir / "mnt";
    if (int rc = private_image_mount(fs, dir / "img", mnt, msg); rc != 0) return rc;
    return body(dir, mnt, msg);
  }, seconds);
}

// Unmounts dir, retrying for a few seconds: a ring torn down asynchronously may hold the file
// system a moment after its loop is gone ("target is busy").
inline int umount_retry(const std::string& dir, std::string& msg) {
  for (int i = 0; i < 100; ++i) {
    if (::umount(dir.c_str()) == 0) return 0;
    if (errno != EBUSY) break;
    ::usleep(50 * 1000);
  }
  return report(msg, errstr("umount " + dir, errno), 1);
}

}  // namespace unio::test
