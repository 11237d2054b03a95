// "When to use what on this machine": for each kind of workload the claims measured, the backend
// the figures favour, computed from the experiments' outcomes (never written by hand).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments.hpp"

namespace unio_bench {

struct recommendation {
  std::string workload;  // "cached 4 KiB random reads, 32 in flight"
  std::string pick;      // a backend variant ("threadpool", "io_uring", ...) or "" when nothing ran
  std::string why;       // the figures behind the pick, and what to avoid
};

std::vector<recommendation> recommend(const std::vector<std::unique_ptr<outcome>>& runs);
nlohmann::json recommendations_json(const std::vector<recommendation>& recs);

}  // namespace unio_bench
