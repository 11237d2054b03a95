// Peers: the same workload run through fio and through a small libuv harness, on the same
// file, right after the unio run, so that the ratio compares like with like.
#pragma once

#include <string>

#include "cpu.hpp"
#include "options.hpp"
#include "workload.hpp"

namespace unio_bench {

struct test_file;

struct peer_result {
  std::string peer;        // "fio" or "libuv"
  std::string engine;      // fio ioengine, or the libuv version
  std::string vs_backend;  // the unio backend it is compared with
  std::string command;
  std::string error;       // empty when the peer ran
  std::uint64_t ops = 0;
  double elapsed_s = 0, iops = 0, bw_bytes_s = 0;
  bool has_lat = false;
  latency_ns lat;
  cpu_sample cpu;          // fio: wait4() rusage of its process tree; libuv: its own window
  std::string cpu_source;
  double ns_per_op() const { return ops ? (cpu.user_s + cpu.sys_s) * 1e9 / static_cast<double>(ops) : 0; }
};

// The fio ioengine equivalent to a unio backend.
std::string fio_engine_for(const std::string& backend);
// Path of the libuv peer next to this executable; empty when it was not built.
std::string uv_peer_path();
// Why --vs cannot run this workload ("" when it can).
std::string check_peer(const run_options& o);

peer_result run_fio(const run_options& o, const backend_result& unio, const test_file& f);
peer_result run_libuv(const run_options& o, const backend_result& unio, const test_file& f);

}  // namespace unio_bench
