// Description: power loss after acknowledged durability. On an ext4 or xfs loop image (in a
// private mount namespace) the loop writes records to four files, each made durable its own
// way: write then fdatasync, async_write_fsync (linked, datasync), an O_DSYNC write, an
// O_DIRECT|O_DSYNC write; then more records with no sync. The file system is shut down without
// flushing its journal (the shutdown ioctl without log flush, as `xfs_io -x -c shutdown`: what a
// power cut leaves on the disk), unmounted and mounted again (the journal is replayed). Every
// record whose durability was acknowledged is there, byte for byte; the others may be missing.
// O_DIRECT alone is not a durability promise: the size of an extending write is metadata that
// only fsync/fdatasync or O_DSYNC commits.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "conformance/backends.hpp"
#include "fault/child.hpp"
#include "fault/test_data.hpp"
#include "fault/mounts.hpp"
#include "unio/unio.hpp"

namespace {

using namespace unio::test;

constexpr std::size_t k_rec = k_block;  // one record per O_DIRECT block
constexpr int k_durable = 12;  // records per file written durably
constexpr int k_loose = 4;     // then written without a sync

enum class way { write_then_fdatasync, write_fsync_linked, o_dsync, o_direct_dsync };
struct durable_file {
  const char* name;
  int flags;
  way w;
};
constexpr durable_file k_files[] = {
    {"fdatasync", 0, way::write_then_fdatasync},
    {"linked", 0, way::write_fsync_linked},
    {"dsync", O_DSYNC, way::o_dsync},
    {"direct", O_DIRECT | O_DSYNC, way::o_direct_dsync},
};
constexpr int k_file_count = static_cast<int>(std::size(k_files));

// Record i of file f: bytes that differ per file, record and position.
void fill_record(char* p, int f, int i) {
  for (std::size_t j = 0; j < k_rec; ++j) p[j] = static_cast<char>((f * 53 + i * 31 + static_cast<int>(j) * 7) % 251);
}

// Writes record i of file f at its place, durably when `durable` (the file's way); the result
// is the acknowledgement.
unio::task<unio::result<std::size_t>> write_record(unio::loop& lp, int fd, int f, int i, char* buf, bool durable) {
  fill_record(buf, f, i);
  const std::uint64_t off = static_cast<std::uint64_t>(i) * k_rec;
  const way w = k_files[f].w;
  if (durable && w == way::write_fsync_linked) co_return co_await lp.async_write_fsync(fd, buf, k_rec, off, true);
  auto r = co_await lp.async_write(fd, buf, k_rec, off);
  if (!r || !durable || w != way::write_then_fdatasync) co_return r;
  auto s = co_await lp.async_fdatasync(fd);
  if (!s) co_return s.error();
  co_return r;
}

// Writes k_durable durable records then k_loose loose ones to every file (on an O_DSYNC file every
// write is durable); returns "" or what failed.
std::string write_all_files(unio::loop& lp, const std::string& mnt, int (&acked)[k_file_count]) {
  std::unique_ptr<char, free_deleter> buf(static_cast<char*>(std::aligned_alloc(k_rec, k_rec)));
  return unio::sync_wait(lp, [&]() -> unio::task<std::string> {
    for (int f = 0; f < k_file_count; ++f) {
      std::string path = mnt + "/" + k_files[f].name;
      auto fd = co_await lp.async_open(AT_FDCWD, path.c_str(), {.flags = O_WRONLY | O_CREAT | k_files[f].flags, .mode = 0644});
      if (!fd) co_return path + ": " + fd.error().message();
      for (int i = 0; i < k_durable + k_loose; ++i) {
        const bool durable = i < k_durable || (k_files[f].flags & O_DSYNC) != 0;  // O_DSYNC: every write
        auto r = co_await write_record(lp, *fd, f, i, buf.get(), durable);
        if (!r || *r != k_rec) co_return std::string(k_files[f].name) + " record " + std::to_string(i) + " failed";
        if (durable) acked[f] = i + 1;
      }
      (void)co_await lp.async_close(*fd);
    }
    co_return "";
  }());
}

// Checks the acknowledged records of every file after the remount; counts the loose ones that
// survived into `loose_kept`.
std::string check_files(const std::string& mnt, const int (&acked)[k_file_count], int& loose_kept) {
  std::vector<char> want(k_rec), got(k_rec);
  for (int f = 0; f < k_file_count; ++f) {
    int fd = ::open((mnt + "/" + k_files[f].name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::string(k_files[f].name) + ": " + std::strerror(errno) + " after the power loss";
    for (int i = 0; i < k_durable + k_loose; ++i) {
      fill_record(want.data(), f, i);
      bool same = ::pread(fd, got.data(), k_rec, static_cast<off_t>(i) * k_rec) == static_cast<ssize_t>(k_rec) && got == want;
      if (i >= acked[f]) loose_kept += same;
      else if (!same) {
        ::close(fd);
        return std::string(k_files[f].name) + ": acknowledged record " + std::to_string(i) + " is missing or torn";
      }
    }
    ::close(fd);
  }
  return "";
}

class power_loss : public backend_test {
 protected:
  void lose_power(const fs_kind& fs) {
    auto opts = options();
    auto res = on_fresh_image(fs, [&](const scratch_dir& dir, const std::string& mnt, std::string& msg) -> int {
      int acked[k_file_count] = {};
      {
        unio::loop lp(opts);
        if (std::string bad = write_all_files(lp, mnt, acked); !bad.empty()) return report(msg, bad, 2);
        if (int rc = shut_down_fs(mnt, shutdown_mode::no_log_flush, msg); rc != 0) return rc;
      }
      if (int rc = umount_retry(mnt, msg); rc != 0) return rc;
      if (int rc = remount_image(fs, dir / "img", mnt, msg); rc != 0) return report(msg, "remount: " + msg, 3);
      int loose_kept = 0;
      if (std::string bad = check_files(mnt, acked, loose_kept); !bad.empty()) return report(msg, bad, 4);
      msg = "all acknowledged records kept; " + std::to_string(loose_kept) + " of " + std::to_string(k_loose * 2) +
            " unsynced records survived";
      return umount_retry(mnt, msg);
    });
    EXPECT_CHILD_OK(res);
  }
};

TEST_P(power_loss, ext4_keeps_every_acknowledged_record) { lose_power(k_ext4); }
TEST_P(power_loss, xfs_keeps_every_acknowledged_record) { lose_power(k_xfs); }

INSTANTIATE_ALL_BACKENDS(power_loss);

}  // namespace
