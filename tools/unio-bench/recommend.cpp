#include "recommend.hpp"

#include <algorithm>
#include <functional>
#include <map>

#include <fmt/core.h>
#include <unio/unio.hpp>

namespace unio_bench {

namespace {

using pred = std::function<bool(const outcome&)>;

std::vector<const outcome*> select(const std::vector<std::unique_ptr<outcome>>& runs, const pred& p) {
  std::vector<const outcome*> out;
  for (const auto& r : runs)
    if (r->ok() && r->r.errors == 0 && p(*r)) out.push_back(r.get());
  return out;
}

bool buffered_read(const outcome& o, unsigned depth, const std::string& cache) {
  return o.spec.rw == "randread" && !o.spec.direct && o.spec.depth == depth && o.spec.cache == cache &&
         o.spec.variant != "nonblock" && o.spec.variant != "inline_misses";  // baselines, not choices
}

std::string figures(const outcome& o) {
  return fmt::format("{} {:.0f} IOPS, {:.2f} us CPU/op, p99 {:.0f} us, stall p99 {:.0f} us", o.spec.who(), o.r.iops,
                     o.us_per_op(), o.r.lat.p99 / 1000.0, o.r.stall_p99 / 1000.0);
}

const outcome* best(const std::vector<const outcome*>& c, const std::function<double(const outcome&)>& score) {
  const outcome* b = nullptr;
  for (const outcome* o : c)
    if (b == nullptr || score(*o) > score(*b)) b = o;
  return b;
}

double iops(const outcome& o) { return o.r.iops; }

// Highest IOPS among the candidates that keep the loop responsive (stall p99 within 3x the best
// stall, or 100 us of it); the others are named as stalling.
recommendation responsive_pick(const std::string& workload, const std::vector<const outcome*>& c) {
  recommendation r{workload, "", "not measured"};
  if (c.empty()) return r;
  double floor = static_cast<double>((*std::min_element(c.begin(), c.end(), [](auto* a, auto* b) {
                                       return a->r.stall_p99 < b->r.stall_p99;
                                     }))->r.stall_p99);
  double limit = std::max(3 * floor, floor + 100'000);
  std::vector<const outcome*> ok;
  std::string stalls;
  for (const outcome* o : c) {
    if (static_cast<double>(o->r.stall_p99) <= limit) ok.push_back(o);
    else stalls += fmt::format("{}{} ({:.0f} us)", stalls.empty() ? "" : ", ", o->spec.who(), o->r.stall_p99 / 1000.0);
  }
  const outcome* b = best(ok, iops);
  r.pick = b->spec.who();
  r.why = figures(*b) + (stalls.empty() ? "" : "; stall the loop (p99 > " + fmt::format("{:.0f}", limit / 1000) +
                                                    " us): " + stalls);
  return r;
}

recommendation fastest_pick(const std::string& workload, const std::vector<const outcome*>& c) {
  recommendation r{workload, "", "not measured"};
  const outcome* b = best(c, iops);
  if (b == nullptr) return r;
  const outcome* cheap = best(c, [](const outcome& o) { return -o.us_per_op(); });
  r.pick = b->spec.who();
  r.why = figures(*b);
  if (cheap != b) r.why += "; least CPU/op: " + figures(*cheap);
  return r;
}

// The backend that won most workloads; auto's choice and its reason beside it.
recommendation overall(const std::vector<recommendation>& recs) {
  std::map<std::string, int> wins;
  for (const auto& r : recs)
    if (!r.pick.empty()) ++wins[r.pick];
  std::string why, pick;
  int top = 0;
  for (const auto& [name, n] : wins) {
    why += fmt::format("{}{} {}", why.empty() ? "wins: " : ", ", name, n);
    if (n > top) top = n, pick = name;
  }
  std::string auto_why;
  std::string a = unio::auto_backend(&auto_why);
  why += fmt::format(" of {}; unio's auto picks {} here ({})", recs.size(), a.empty() ? "nothing" : a, auto_why);
  return {"default for a program that does all of these", pick, why};
}

}  // namespace

std::vector<recommendation> recommend(const std::vector<std::unique_ptr<outcome>>& runs) {
  std::vector<recommendation> recs;
  recs.push_back(fastest_pick("cached 4 KiB random reads, one at a time (QD1)",
                              select(runs, [](const outcome& o) { return buffered_read(o, 1, "warm"); })));
  recs.push_back(fastest_pick("cached 4 KiB random reads, 32 in flight",
                              select(runs, [](const outcome& o) { return buffered_read(o, 32, "warm"); })));
  recs.push_back(fastest_pick("cached 4 KiB random reads, 128 in flight",
                              select(runs, [](const outcome& o) { return buffered_read(o, 128, "warm"); })));
  recs.push_back(responsive_pick("uncached buffered 4 KiB reads, 32 in flight, loop must stay responsive",
                                 select(runs, [](const outcome& o) { return buffered_read(o, 32, "cold"); })));
  recs.push_back(fastest_pick("mixed 70/30 read/write, 128 in flight (cached)",
                              select(runs, [](const outcome& o) { return o.spec.rw == "randrw"; })));
  recs.push_back(overall(recs));
  return recs;
}

nlohmann::json recommendations_json(const std::vector<recommendation>& recs) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& r : recs) a.push_back({{"workload", r.workload}, {"pick", r.pick}, {"why", r.why}});
  return a;
}

}  // namespace unio_bench
