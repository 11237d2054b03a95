// The `unio-bench run` options, after parsing and validation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace unio_bench {

struct run_options {
  std::vector<std::string> backends;  // resolved list: names from probe_backends() or "auto"
  std::string rw = "randread";        // randread randwrite read write randrw
  std::uint64_t bs = 4096;
  unsigned iodepth = 32;
  std::uint64_t size = std::uint64_t{1} << 30;
  std::string file;                   // empty: a temporary file in the current directory
  bool direct = false;
  double runtime_s = 5;
  unsigned threads = 1;
  unsigned pool = 0;                  // 0: unio's default
  unsigned rwmixread = 70;
  std::string cache = "warm";         // warm or cold
  bool verify = false;
  std::string vs;                     // "", "fio" or "libuv"
  std::string json;                   // "", "-" or a path
  std::string csv;
  std::string stall_log;              // "", "-" or a path: every stall probe, for matching with traces
  // Loop tuning, for the experiments of `claims` (and run's --naive-pool etc.); unset = unio's default.
  std::optional<bool> inline_nowait;  // threadpool: RWF_NOWAIT first on the loop thread
  std::optional<unsigned> spin_us;    // threadpool: polling before sleeping
  std::optional<int> pool_nice;       // the pool's workers' nice steps below the loop
  std::optional<unsigned> pool_max;   // loop_options::pool_max_threads
  bool uring_inline_misses = false;   // io_uring: loop_options::io_uring_route_cold_reads = false
  bool aio_buffered = false;          // linux_aio: buffered files through io_submit too
  bool nonblock = false;              // open the file with O_NONBLOCK
  // io_uring only (other backends: a note on stderr, no effect): register the run's buffers and
  // file (fixed buffers and files), and SQPOLL with a 100 ms idle time.
  bool fixed_buffers = false;
  // Bytes added to every op's file offset and buffer address (0..4095): unaligned I/O, which
  // unio's O_DIRECT layer serves through aligned bounce buffers on O_DIRECT files.
  unsigned misalign = 0;
  bool sqpoll = false;

  bool has_reads() const { return rw != "write" && rw != "randwrite"; }
  bool has_writes() const { return rw != "read" && rw != "randread"; }
  bool random() const { return rw.rfind("rand", 0) == 0; }
};

// Parses "4k", "1g", "512", "8MiB" (binary units, like fio). nullopt when unparsable.
std::optional<std::uint64_t> parse_size(const std::string& text);

}  // namespace unio_bench
