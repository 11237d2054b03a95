// Output of unio-bench: the backends table, the run table, JSON (docs/unio-bench.md's schema plus a
// "peers" array) and CSV.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "options.hpp"
#include "peers.hpp"
#include "workload.hpp"

namespace unio_bench {

struct run_report {
  run_options opts;
  std::vector<backend_result> results;
  std::vector<peer_result> peers;
};

// `unio-bench backends`: availability, the kernel, auto's choice, native vs delegated ops.
void print_backends(std::FILE* out);
// Every backend name unio knows of, built in or not.
const std::vector<std::string>& known_backend_names();

void print_run_header(std::FILE* out, const run_options& o, const std::string& file, bool temporary);
void print_table(std::FILE* out, const run_report& r);
// Returns false (after a message on stderr) when the file cannot be written.
bool write_json(const std::string& path, const run_report& r);
bool write_csv(const std::string& path, const run_report& r);
// --stall-log: one line per stall probe, "backend loop due_ns late_ns" (due on CLOCK_MONOTONIC).
bool write_stall_log(const std::string& path, const run_report& r);
// Writes text to a path, or to stdout for "-". False (after a message) when it cannot.
bool write_text(const std::string& path, const std::string& text);

// Pieces of the JSON report, shared with `claims`.
nlohmann::json machine_info_json();
nlohmann::json run_result_json(const run_options& o, const backend_result& r);
std::string load_average();

}  // namespace unio_bench
