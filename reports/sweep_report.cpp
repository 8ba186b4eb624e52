#include "reports/sweep_report.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

#include "reports/json_report.h"
#include "reports/text_table.h"

namespace trainsim {
namespace {

using nlohmann::ordered_json;
using reports::Align;
using reports::strf;
using reports::TextTable;

std::string secs(double s) { return format_time(Time::from_seconds(s)); }

// The best point that fits in `order` (sweep_ranking); r.points.size() when none does.
size_t best_fit(const SweepResult& r, const std::vector<size_t>& order) {
  for (size_t i : order)
    if (sweep_fits(r.points[i], r.memory_limit)) return i;
  return r.points.size();
}

// The keys of the axes in order, tied keys each apart: the table's and the CSV's columns.
std::vector<std::string> axis_keys(const SweepResult& r) {
  std::vector<std::string> keys;
  for (const auto& a : r.axes) keys.insert(keys.end(), a.keys.begin(), a.keys.end());
  return keys;
}

// A column title per key (axis_keys): the key without its section ("tp"), or the whole key where
// two keys would share a title.
std::vector<std::string> titles(const std::vector<std::string>& keys) {
  std::vector<std::string> shortn, out;
  for (const auto& k : keys) {
    const size_t dot = k.find('.');
    shortn.push_back(dot == std::string::npos ? k : k.substr(dot + 1));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    int same = 0;
    for (const auto& s : shortn) same += s == shortn[i];
    out.push_back(same > 1 ? keys[i] : shortn[i]);
  }
  return out;
}

// A point's value of `key` ("KEY=VALUE" in SweepPoint::set), or "" when it sets no such key.
std::string set_value(const SweepPoint& p, const std::string& key) {
  for (const auto& o : p.set)
    if (o.size() > key.size() && o.compare(0, key.size(), key) == 0 && o[key.size()] == '=') return o.substr(key.size() + 1);
  return "";
}


// The first line of a point's error, without the "error: " prefix.
std::string first_error(const std::string& e) {
  std::string line = e.substr(0, e.find('\n'));
  if (line.rfind("error: ", 0) == 0) line = line.substr(7);
  return line;
}

// "90%": a memory limit as a percentage, in its shortest form.
std::string limit_text(double limit) {
  std::string t = strf("%.2f", limit * 100);
  while (t.back() == '0') t.pop_back();
  if (t.back() == '.') t.pop_back();
  return t + "%";
}

// A computed point's status in the JSON and CSV: invalid (refused), oom (the prediction's
// verdict), over_limit (fits, but above SweepResult::memory_limit), ok.
const char* status_of(const SweepResult& r, const SweepPoint& p) {
  return !p.ok ? "invalid" : p.oom ? "oom" : !sweep_fits(p, r.memory_limit) ? "over_limit" : "ok";
}

std::string point_name(const SweepPoint& p) {
  std::string s;
  for (const auto& o : p.set) s += (s.empty() ? "" : " ") + o;
  return s;
}

// The verdict of the best point that fits, and the others' distance from it, per ranking.
const char* best_label(SweepRank r) {
  switch (r) {
    case SweepRank::kTokensPerGpu: return "most tokens/s per GPU that fits";
    case SweepRank::kTokens: return "most tokens/s that fits";
    case SweepRank::kTrain: return "shortest time to train that fits";
    case SweepRank::kStep: break;
  }
  return "fastest that fits";
}

std::string distance(SweepRank r, const SweepPoint& p, const SweepPoint& best) {
  switch (r) {
    case SweepRank::kTokensPerGpu:
      return strf("fits, %+.1f%% tokens/s per GPU", (p.tokens_per_s_per_gpu / best.tokens_per_s_per_gpu - 1) * 100);
    case SweepRank::kTokens:
      return strf("fits, %+.1f%% tokens/s", (p.tokens_per_s / best.tokens_per_s - 1) * 100);
    case SweepRank::kTrain:
      if (p.train_s <= 0 || best.train_s <= 0) return "fits, no time to train (training.train_tokens)";
      if (std::isinf(p.train_s)) return "fits, never finishes (failures)";
      return strf("fits, %+.1f%% time to train", (p.train_s / best.train_s - 1) * 100);
    case SweepRank::kStep: break;
  }
  return strf("fits, %+.1f%% step", (p.step_s / best.step_s - 1) * 100);
}

// The cost sources (SweepPoint::costs) of r's predicted points, added to *costs.
void collect_costs(const SweepResult& r, std::set<std::string>* costs) {
  for (const auto& p : r.points)
    if (p.computed && p.ok) costs->insert(p.costs);
}
// A line per cost source, saying that `trainsim run` with `how` lists the source of every op class.
std::string costs_lines(const std::set<std::string>& costs, const char* how) {
  std::string out;
  for (const auto& c : costs)
    out += "costs: " + (c == "embedded default" ? std::string("embedded default (calibrate/data/defaults.json)")
                                                : "calibration database " + c) +
           "; `trainsim run` with " + how + " lists the source of every op class\n";
  return out;
}

// What a ranking is by, in words.
const char* ranked_text(SweepRank r) {
  switch (r) {
    case SweepRank::kTokens: return "tokens/s";
    case SweepRank::kTrain: return "time to train";
    case SweepRank::kTokensPerGpu: return "tokens/s per GPU";
    case SweepRank::kStep: break;
  }
  return "step time";
}

// A point's value of `key` as a positive whole number (set_value), or -1.
int key_int(const SweepPoint& p, const std::string& key) {
  const std::string v = set_value(p, key);
  char* end = nullptr;
  const long x = v.empty() ? 0 : std::strtol(v.c_str(), &end, 10);
  return end && *end == '\0' && x > 0 && x <= (1 << 24) ? static_cast<int>(x) : -1;
}

}  // namespace

LayoutGrid layout_grid(const SweepResult& r) {
  LayoutGrid g;
  bool has_tp = false, has_pp = false;
  for (const auto& a : r.axes)
    for (const auto& k : a.keys) {
      has_tp |= k == "parallel.tp";
      has_pp |= k == "parallel.pp";
    }
  if (!has_tp || !has_pp) return g;
  std::set<int> tps, pps;
  for (const auto& p : r.points) {
    if (!p.computed) continue;
    const int tp = key_int(p, "parallel.tp"), pp = key_int(p, "parallel.pp");
    if (tp > 0 && pp > 0) tps.insert(tp), pps.insert(pp);
  }
  if (tps.empty()) return g;
  g.tp.assign(tps.begin(), tps.end());
  g.pp.assign(pps.begin(), pps.end());
  g.best.assign(g.tp.size(), std::vector<size_t>(g.pp.size(), LayoutGrid::kNoPoint));
  g.tried.assign(g.tp.size(), std::vector<bool>(g.pp.size(), false));
  auto at = [](const std::vector<int>& v, int x) { return std::lower_bound(v.begin(), v.end(), x) - v.begin(); };
  for (size_t i : sweep_ranking(r)) {   // best first: a cell keeps the first point that fits
    const SweepPoint& p = r.points[i];
    const int tp = key_int(p, "parallel.tp"), pp = key_int(p, "parallel.pp");
    if (tp <= 0 || pp <= 0) continue;
    const size_t a = at(g.tp, tp), b = at(g.pp, pp);
    g.tried[a][b] = true;
    if (g.best[a][b] == LayoutGrid::kNoPoint && sweep_fits(p, r.memory_limit)) g.best[a][b] = i;
  }
  return g;
}

std::string format_sweep(const SweepResult& r, size_t top) {
  std::string out;
  std::string shape;
  for (const auto& a : r.axes) shape += (shape.empty() ? "" : " x ") + a.key + " (" + std::to_string(a.values.size()) + ")";
  out += strf("trainsim %s: %s, %zu points: %s; %s mode; ranked by %s\n", r.command.c_str(), r.scenario.c_str(), r.points.size(),
              shape.c_str(), r.fast ? "fast" : "full", ranked_text(r.rank_by));
  size_t here = 0;
  for (const auto& p : r.points) here += p.computed;
  if (r.shards > 1) {
    out += strf("shard %d/%d: %zu of the %zu points; `--from-store` with every shard's store prints the whole sweep\n",
                r.shard, r.shards, here, r.points.size());
  } else if (here < r.points.size()) {
    out += strf("%zu of the %zu points computed\n", here, r.points.size());
  }
  if (!r.overrides.empty()) {
    std::string s;
    for (const auto& o : r.overrides) s += (s.empty() ? "" : " ") + std::string("--set ") + o;
    out += "every point: " + s + "\n";
  }
  for (const auto& n : r.notes) out += "note: " + n + "\n";
  if (r.memory_limit < 1)
    out += "note: a point fits when its peak memory is at most " + limit_text(r.memory_limit) +
           " of its GPU's (--memory-limit)\n";
  if (r.rank_by == SweepRank::kTrain) {
    bool any = false;
    for (const auto& p : r.points) any |= p.computed && p.ok && p.train_s > 0;
    if (!any && here > 0)
      out += "note: ranked by time to train, but no point names training.train_tokens (e.g. --set "
             "training.train_tokens=15T): the step time decides\n";
  }
  out += "\n";

  std::vector<std::string> head = {"#"};
  std::vector<Align> align = {Align::kRight};
  const std::vector<std::string> keys = axis_keys(r);
  for (const auto& t : titles(keys)) head.push_back(t), align.push_back(Align::kRight);
  const bool total = r.rank_by == SweepRank::kTokens;   // a column of the job's tokens/s
  bool train = false;                                   // a column of the time to train (training.train_tokens)
  bool speed = false;                                   // a column of the GPU speed spread's cost (gpu_speed)
  for (const auto& p : r.points) {
    train |= p.computed && p.ok && p.train_s > 0;
    speed |= p.computed && p.ok && p.speed;
  }
  for (const char* h : {"dp", "step", "tokens/s", "tokens/s/GPU", "MFU", "compute", "exposed comm", "bubble", "speed cost",
                        "peak GiB", "train days"})
    if ((total || std::string(h) != "tokens/s") && (train || std::string(h) != "train days") &&
        (speed || std::string(h) != "speed cost"))
      head.push_back(h), align.push_back(Align::kRight);
  head.push_back("verdict");
  align.push_back(Align::kLeft);
  TextTable t(head, align);
  const std::vector<size_t> order = sweep_ranking(r);
  const size_t best = best_fit(r, order);
  for (size_t k = 0; k < order.size(); ++k) {
    const SweepPoint& p = r.points[order[k]];
    std::vector<std::string> row = {std::to_string(k + 1)};
    for (const auto& key : keys) row.push_back(set_value(p, key));
    if (!p.ok) {
      for (int i = 0; i < 8 + total + train + speed; ++i) row.push_back(i == 0 && p.dp > 0 ? std::to_string(p.dp) : "-");
      row.push_back("refused: " + first_error(p.error));
    } else {
      std::string verdict;
      if (p.oom) {
        verdict = strf("OOM on rank %u (%.1f of %.1f GiB)", p.peak_rank, p.peak_memory_gib, p.capacity_gib);
      } else if (!sweep_fits(p, r.memory_limit)) {
        verdict = strf("over the %s memory limit on rank %u (%.1f of %.1f GiB)", limit_text(r.memory_limit).c_str(),
                       p.peak_rank, p.peak_memory_gib, p.capacity_gib);
      } else if (order[k] == best) {
        verdict = best_label(r.rank_by);
      } else {
        verdict = distance(r.rank_by, p, r.points[best]);
      }
      if (order[k] == r.given) verdict += " (as given)";
      row.push_back(std::to_string(p.dp));
      row.push_back(secs(p.step_s));
      if (total) row.push_back(reports::group_digits(p.tokens_per_s));
      row.insert(row.end(), {reports::group_digits(p.tokens_per_s_per_gpu),
                             strf("%.1f%%", p.mfu * 100), secs(p.compute_s), secs(p.exposed_comm_s),
                             secs(p.bubble_s)});
      if (speed) row.push_back(p.speed ? secs(p.speed_cost_s) : "-");
      row.push_back(strf("%.2f", p.peak_memory_gib));
      if (train) row.push_back(std::isinf(p.train_s) ? "never" : p.train_s > 0 ? strf("%.1f", p.train_s / 86400.0) : "-");
      row.push_back(verdict);
    }
    if (top == 0 || k < top) t.add(std::move(row));
  }
  if (top > 0 && order.size() > top) {
    size_t oom = 0, refused = 0;
    for (size_t k = top; k < order.size(); ++k) {
      oom += r.points[order[k]].ok && !sweep_fits(r.points[order[k]], r.memory_limit);
      refused += !r.points[order[k]].ok;
    }
    t.add_raw(strf("... %zu more (%zu fit, %zu %s, %zu refused; --json writes every point)", order.size() - top,
                   order.size() - top - oom - refused, oom,
                   r.memory_limit < 1 ? ("OOM or over the " + limit_text(r.memory_limit) + " limit").c_str() : "OOM",
                   refused));
  }
  out += t.render("");
  out += "\n";
  const LayoutGrid grid = layout_grid(r);
  if (grid.tp.size() > 1 || grid.pp.size() > 1) {
    std::vector<size_t> place(r.points.size(), 0);
    for (size_t k = 0; k < order.size(); ++k) place[order[k]] = k + 1;
    std::vector<std::string> gh = {""};
    std::vector<Align> ga = {Align::kLeft};
    for (int pp : grid.pp) gh.push_back("pp " + std::to_string(pp)), ga.push_back(Align::kRight);
    TextTable gt(gh, ga);
    for (size_t a = 0; a < grid.tp.size(); ++a) {
      std::vector<std::string> row = {"tp " + std::to_string(grid.tp[a])};
      for (size_t b = 0; b < grid.pp.size(); ++b) {
        const size_t i = grid.best[a][b];
        row.push_back(i != LayoutGrid::kNoPoint ? strf("#%zu %s", place[i], secs(r.points[i].step_s).c_str())
                      : grid.tried[a][b]      ? (r.memory_limit < 1 ? "too big" : "OOM")
                                              : "");
      }
      gt.add(std::move(row));
    }
    out += strf("best per tp x pp (#: its place in the table, then its step; %s: none of the pair's points fits; "
                "blank: no point)\n",
                r.memory_limit < 1 ? "too big" : "OOM");
    out += gt.render("");
    out += "\n";
  }
  if (best < r.points.size()) {
    const SweepPoint& b = r.points[best];
    out += strf("%s: %s: step %s, %s tokens/s (%s per GPU), MFU %.1f%%, peak %.2f of %.2f GiB\n",
                best_label(r.rank_by), point_name(b).c_str(), secs(b.step_s).c_str(),
                reports::group_digits(b.tokens_per_s).c_str(), reports::group_digits(b.tokens_per_s_per_gpu).c_str(),
                b.mfu * 100, b.peak_memory_gib, b.capacity_gib);
  } else {
    size_t ok = 0;
    for (const auto& p : r.points) ok += p.computed && p.ok;
    out += ok ? "no point fits in the GPU's memory\n" : here ? "no point could be predicted\n" : "no point here\n";
  }
  if (r.given < r.points.size() && r.points[r.given].computed) {
    const SweepPoint& g = r.points[r.given];
    size_t place = 0;
    while (place < order.size() && order[place] != r.given) ++place;
    std::string where = strf("#%zu of %zu", place + 1, order.size());
    if (!g.ok) {
      out += strf("as given (%s): %s, refused: %s\n", point_name(g).c_str(), where.c_str(), first_error(g.error).c_str());
    } else if (!sweep_fits(g, r.memory_limit)) {
      out += strf("as given (%s): %s, does not fit (peak %.2f of %.2f GiB%s)\n", point_name(g).c_str(), where.c_str(),
                  g.peak_memory_gib, g.capacity_gib,
                  g.oom ? "" : (", over the " + limit_text(r.memory_limit) + " limit").c_str());
    } else if (best < r.points.size() && best != r.given) {
      const SweepPoint& b = r.points[best];
      out += strf("as given (%s): %s, step %s; %s: %s\n", point_name(g).c_str(), where.c_str(),
                  secs(g.step_s).c_str(), best_label(r.rank_by), distance(r.rank_by, b, g).substr(6).c_str());
      // Where the difference is: the critical rank's parts and the memory, as given -> best.
      auto delta = [&](const char* what, double from, double to) {
        return strf("%s %s -> %s", what, secs(from).c_str(), secs(to).c_str());
      };
      out += "  as given -> best: " + delta("compute", g.compute_s, b.compute_s) + ", " +
             delta("exposed comm", g.exposed_comm_s, b.exposed_comm_s) + ", " +
             delta("bubble", g.bubble_s, b.bubble_s) +
             strf(", peak memory %.2f -> %.2f GiB\n", g.peak_memory_gib, b.peak_memory_gib);
    } else {
      out += strf("as given (%s): %s, step %s: the best point\n", point_name(g).c_str(), where.c_str(),
                  secs(g.step_s).c_str());
    }
  }
  size_t refused = 0;
  for (const auto& p : r.points) refused += p.computed && !p.ok;
  if (refused) out += strf("%zu point(s) refused; `trainsim run` with the same --set values prints every error\n", refused);
  std::set<std::string> costs;
  collect_costs(r, &costs);
  out += costs_lines(costs, "a point's --set values");
  return out;
}

ordered_json sweep_json(const SweepResult& r) {
  ordered_json j;
  j["scenario"] = r.scenario;
  j["mode"] = r.fast ? "fast" : "full";
  j["rank_by"] = to_string(r.rank_by);
  ordered_json axes = ordered_json::array();
  for (const auto& a : r.axes) axes.push_back({{"key", a.key}, {"values", a.values}});
  j["axes"] = std::move(axes);
  j["overrides"] = r.overrides;
  j["notes"] = r.notes;
  j["key"] = r.key;
  if (r.shards > 1) {
    size_t here = 0;
    for (const auto& p : r.points) here += p.computed;
    j["shard"] = {{"index", r.shard}, {"count", r.shards}, {"points", here}, {"of", r.points.size()}};
  }
  const std::vector<size_t> order = sweep_ranking(r);
  std::vector<size_t> rank(r.points.size());
  for (size_t k = 0; k < order.size(); ++k) rank[order[k]] = k + 1;
  const size_t best = best_fit(r, order);
  j["best"] = best < r.points.size() ? ordered_json(best) : ordered_json(nullptr);
  j["given"] = r.given < r.points.size() ? ordered_json(r.given) : ordered_json(nullptr);
  ordered_json pts = ordered_json::array();
  for (size_t i = 0; i < r.points.size(); ++i) {
    const SweepPoint& p = r.points[i];
    if (!p.computed) continue;   // another shard's
    ordered_json q;
    q["index"] = i;
    q["rank"] = rank[i];
    ordered_json vals = ordered_json::object();
    for (const auto& o : p.set) {
      const size_t eq = o.find('=');
      vals[o.substr(0, eq)] = o.substr(eq + 1);
    }
    q["values"] = std::move(vals);
    q["status"] = status_of(r, p);
    q["error"] = p.error;
    auto num = [&](double v) { return p.ok ? json_number(v) : ordered_json(nullptr); };
    q["dp"] = p.dp > 0 ? ordered_json(p.dp) : ordered_json(nullptr);
    q["step_s"] = num(p.step_s);
    q["tokens_per_s"] = num(p.tokens_per_s);
    q["tokens_per_s_per_gpu"] = num(p.tokens_per_s_per_gpu);
    q["mfu"] = num(p.mfu);
    q["hfu"] = num(p.hfu);
    q["compute_s"] = num(p.compute_s);
    q["exposed_comm_s"] = num(p.exposed_comm_s);
    q["bubble_s"] = num(p.bubble_s);
    q["peak_memory_gib"] = num(p.peak_memory_gib);
    q["peak_rank"] = p.ok ? ordered_json(p.peak_rank) : ordered_json(nullptr);
    q["capacity_gib"] = num(p.capacity_gib);
    q["costs"] = p.ok ? ordered_json(p.costs) : ordered_json(nullptr);
    q["fingerprint"] = p.ok ? ordered_json(strf("%016llx", static_cast<unsigned long long>(p.fingerprint)))
                            : ordered_json(nullptr);
    if (p.ok && p.train_s > 0) q["train_days"] = json_number(p.train_s / 86400.0);   // only when asked
    if (p.ok && p.speed) q["speed_cost_s"] = json_number(p.speed_cost_s);             // the same
    pts.push_back(std::move(q));
  }
  j["points"] = std::move(pts);
  return j;
}


std::string sweep_csv(const SweepResult& r) {
  using reports::csv_field;
  using reports::csv_number;
  const std::vector<std::string> keys = axis_keys(r);
  bool train = false, speed = false;
  for (const auto& p : r.points) {
    train |= p.computed && p.ok && p.train_s > 0;
    speed |= p.computed && p.ok && p.speed;
  }
  std::vector<std::string> head = {"rank", "index"};
  head.insert(head.end(), keys.begin(), keys.end());
  for (const char* h : {"status", "dp", "step_s", "tokens_per_s", "tokens_per_s_per_gpu", "mfu", "hfu", "compute_s",
                        "exposed_comm_s", "bubble_s", "peak_memory_gib", "capacity_gib", "peak_rank"})
    head.push_back(h);
  if (speed) head.push_back("speed_cost_s");
  if (train) head.push_back("train_days");
  for (const char* h : {"costs", "fingerprint", "error"}) head.push_back(h);
  std::string out;
  auto line = [&](const std::vector<std::string>& fields) {
    for (size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + csv_field(fields[i]);
    out += "\r\n";
  };
  line(head);
  const std::vector<size_t> order = sweep_ranking(r);
  for (size_t k = 0; k < order.size(); ++k) {
    const SweepPoint& p = r.points[order[k]];
    std::vector<std::string> row = {std::to_string(k + 1), std::to_string(order[k])};
    for (const auto& key : keys) row.push_back(set_value(p, key));
    row.push_back(status_of(r, p));
    row.push_back(p.dp > 0 ? std::to_string(p.dp) : "");
    auto num = [&](double v) { row.push_back(p.ok ? csv_number(v) : ""); };
    for (double v : {p.step_s, p.tokens_per_s, p.tokens_per_s_per_gpu, p.mfu, p.hfu, p.compute_s, p.exposed_comm_s,
                     p.bubble_s, p.peak_memory_gib, p.capacity_gib})
      num(v);
    row.push_back(p.ok ? std::to_string(p.peak_rank) : "");
    if (speed) row.push_back(p.ok && p.speed ? csv_number(p.speed_cost_s) : "");
    if (train) row.push_back(p.ok && p.train_s > 0 ? csv_number(p.train_s / 86400.0) : "");
    row.push_back(p.ok ? p.costs : "");
    row.push_back(p.ok ? strf("%016llx", static_cast<unsigned long long>(p.fingerprint)) : "");
    row.push_back(p.ok ? "" : first_error(p.error));
    line(row);
  }
  return out;
}

SweepPointRecord sweep_point_row(const std::string& key, size_t index, size_t points, const std::string& scenario,
                                 const SweepPoint& p, const std::string& version, const std::string& machine) {
  SweepPointRecord x;
  x.sweep_key = key;
  x.point = static_cast<int64_t>(index);
  x.points = static_cast<int64_t>(points);
  x.scenario = scenario;
  x.set_json = nlohmann::json(p.set).dump();
  x.point_json = sweep_point_record(p).dump();
  x.version = version;
  x.machine = machine;
  return x;
}

Status store_sweep(const SweepResult& r, ResultsStore& store, const std::string& version, const std::string& machine) {
  std::vector<SweepPointRecord> recs;
  for (size_t i = 0; i < r.points.size(); ++i)
    if (r.points[i].computed)
      recs.push_back(sweep_point_row(r.key, i, r.points.size(), r.scenario, r.points[i], version, machine));
  return store.add_sweep_points(recs);
}

Status fill_sweep_from_stores(SweepResult* r, const std::vector<const ResultsStore*>& stores, const std::string& version) {
  std::set<std::string> versions;
  std::string names;
  for (const ResultsStore* s : stores) names += (names.empty() ? "" : ", ") + s->path();
  for (const ResultsStore* s : stores) {
    auto recs = s->sweep_points(r->key);
    if (!recs.ok()) return recs.status();
    for (const auto& x : recs.value()) {
      if (x.point < 0 || static_cast<size_t>(x.point) >= r->points.size() ||
          x.points != static_cast<int64_t>(r->points.size()))
        return Status::error(Error{s->path(), "/sweep_points/" + std::to_string(x.point), std::to_string(x.points) + " points",
                                   "a point of a sweep of " + std::to_string(r->points.size()) +
                                       " points under the same key (a damaged store?)"});
      SweepPoint& p = r->points[static_cast<size_t>(x.point)];
      if (p.computed) continue;   // an earlier store (or this run) has it
      auto j = nlohmann::json::parse(x.point_json, nullptr, false);
      const std::string where = s->path() + " (sweep " + r->key + ", point " + std::to_string(x.point) + ")";
      if (j.is_discarded()) return Status::error(Error{where, "", "point_json", "not JSON (a damaged store?)"});
      Status st = fill_sweep_point(j, where, &p);
      if (!st.ok()) return st;
      versions.insert(x.version);
    }
  }
  std::vector<size_t> missing;
  for (size_t i = 0; i < r->points.size(); ++i)
    if (!r->points[i].computed) missing.push_back(i);
  if (!missing.empty()) {
    std::string list;
    for (size_t k = 0; k < missing.size() && k < 12; ++k) list += (list.empty() ? "" : ", ") + std::to_string(missing[k]);
    if (missing.size() > 12) list += ", ... (" + std::to_string(missing.size()) + " in all)";
    const size_t have = r->points.size() - missing.size();
    return Status::error(Error{
        names, "/sweep_points", strf("%zu of %zu points", have, r->points.size()),
        "every point of this sweep (key " + r->key + "); missing: " + list +
            (have == 0 ? ". No store holds a point of it: give the shards' scenario, --vary, --set, --full and "
                         "--calibration exactly as they ran"
                       : ". Run the shards that compute them (--shard I/N --store FILE) and give their stores too")});
  }
  versions.erase(version);
  for (const auto& v : versions)
    r->notes.push_back("points computed by trainsim " + (v.empty() ? std::string("(version unknown)") : v) +
                       " (this binary: " + version + ")");
  return Status();
}

namespace {

// What the across report reads of each row, computed once: the layouts its search predicted and
// those that fit, its best point that fits (nullptr: none, or the row's search was refused), and
// the place of the scenario's own layout in its ranking (0: not among its layouts).
struct AcrossView {
  size_t layouts = 0, fit = 0;
  const SweepPoint* best = nullptr;
  size_t given_place = 0;
};
std::vector<AcrossView> across_views(const AcrossSearch& a) {
  std::vector<AcrossView> views(a.rows.size());
  for (size_t i = 0; i < a.rows.size(); ++i) {
    const AcrossSearch::Row& row = a.rows[i];
    if (!row.ok) continue;
    const SweepResult& r = row.result;
    AcrossView& v = views[i];
    for (const auto& p : r.points) {
      v.layouts += p.computed;
      v.fit += p.computed && sweep_fits(p, r.memory_limit);
    }
    const std::vector<size_t> order = sweep_ranking(r);
    const size_t b = best_fit(r, order);
    if (b < r.points.size()) v.best = &r.points[b];
    for (size_t k = 0; k < order.size() && r.given < r.points.size(); ++k)
      if (order[k] == r.given) v.given_place = k + 1;
  }
  return views;
}

// The GPUs of a point: its tokens/s over its tokens/s per GPU.
double point_gpus(const SweepPoint& p) {
  return p.tokens_per_s_per_gpu > 0 ? std::round(p.tokens_per_s / p.tokens_per_s_per_gpu) : 0;
}

// The row whose best point ranks first (sweep_better by the searches' rank_by), or rows.size().
size_t across_best_row(const AcrossSearch& a, const std::vector<AcrossView>& views) {
  size_t best = a.rows.size();
  for (size_t r = 0; r < a.rows.size(); ++r)
    if (views[r].best != nullptr &&
        (best == a.rows.size() || sweep_better(a.rows[r].result.rank_by, *views[r].best, *views[best].best)))
      best = r;
  return best;
}

// The keys the search varies (not the across ones): the best layout's column.
std::string layout_text(const SweepResult& r, const SweepPoint& p) {
  const std::vector<std::string> keys = axis_keys(r);
  const std::vector<std::string> names = titles(keys);
  std::string out;
  for (size_t k = 0; k < keys.size(); ++k) {
    const std::string& n = names[k];
    const std::string shown = n == "micro_batch" ? "mb" : n == "sequence_parallel" ? "sp" : n;   // the column is wide
    out += (out.empty() ? "" : " ") + shown + "=" + set_value(p, keys[k]);
  }
  return out;
}

// Every line of a row's error, without the "error: " prefixes, joined by " / ".
std::string all_errors(const std::string& e) {
  std::string out, line;
  std::istringstream in(e);
  while (std::getline(in, line)) {
    if (line.rfind("error: ", 0) == 0) line = line.substr(7);
    if (!line.empty()) out += (out.empty() ? "" : " / ") + line;
  }
  return out;
}

// Where the scenario's own layout is in a row's search: "#12 +8.1% step", "#40 OOM", "-" (not a layout).
std::string given_text(const AcrossSearch::Row& row, const AcrossView& v) {
  if (v.given_place == 0) return "-";
  const SweepResult& r = row.result;
  const SweepPoint& g = r.points[r.given];
  if (!g.ok) return strf("#%zu refused", v.given_place);
  if (!sweep_fits(g, r.memory_limit)) return strf("#%zu %s", v.given_place, g.oom ? "OOM" : "too big");
  if (v.best == nullptr || v.best == &g) return strf("#%zu best", v.given_place);
  return strf("#%zu %s", v.given_place, distance(r.rank_by, g, *v.best).substr(6).c_str());
}

}  // namespace

std::string format_search_across(const AcrossSearch& a) {
  std::string shape, out;
  for (const auto& ax : a.across) shape += (shape.empty() ? "" : " x ") + ax.key + " (" + std::to_string(ax.values.size()) + ")";
  const SweepResult* first = nullptr;
  for (const auto& row : a.rows)
    if (row.ok) {
      first = &row.result;
      break;
    }
  out += strf("trainsim search across %s: %s, %zu searches", shape.c_str(),
              first ? first->scenario.c_str() : "?", a.rows.size());
  if (first) {
    std::string keys;
    for (const auto& k : titles(axis_keys(*first))) keys += (keys.empty() ? "" : ",") + k;
    out += strf(" of %s; %s mode; best by %s", keys.c_str(), first->fast ? "fast" : "full", ranked_text(first->rank_by));
  }
  out += "\n";
  if (first && !first->overrides.empty()) {
    std::string o;
    for (const auto& v : first->overrides) {
      bool across_key = false;   // the row's own values are in its columns
      for (const auto& ax : a.across)
        for (const auto& k : ax.keys) across_key |= v.rfind(k + "=", 0) == 0;
      if (!across_key && v != "parallel.dp=null") o += (o.empty() ? "" : " ") + std::string("--set ") + v;
    }
    if (!o.empty()) out += "every search: " + o + "\n";
  }
  for (const auto& n : a.notes) out += "note: " + n + "\n";
  if (first && first->memory_limit < 1)
    out += "note: a layout fits when its peak memory is at most " + limit_text(first->memory_limit) +
           " of its GPU's (--memory-limit)\n";
  out += "\n";

  const std::vector<AcrossView> views = across_views(a);
  bool train = false;
  for (const auto& v : views)
    if (v.best != nullptr) train |= v.best->train_s > 0;
  std::vector<std::string> across_keys;
  for (const auto& ax : a.across) across_keys.insert(across_keys.end(), ax.keys.begin(), ax.keys.end());
  std::vector<std::string> head = titles(across_keys);
  std::vector<Align> align(head.size(), Align::kRight);
  for (const char* h : {"layouts", "fit", "best layout", "step", "tokens/s", "tokens/s/GPU", "MFU", "peak GiB",
                        "train days", "GPU-hours", "as given"}) {
    const std::string hs = h;
    if (!train && (hs == "train days" || hs == "GPU-hours")) continue;
    head.push_back(h);
    align.push_back(hs == "best layout" || hs == "as given" ? Align::kLeft : Align::kRight);
  }
  TextTable t(head, align);
  const size_t best_row = across_best_row(a, views);
  for (size_t r = 0; r < a.rows.size(); ++r) {
    const AcrossSearch::Row& row = a.rows[r];
    const AcrossView& v = views[r];
    std::string where;   // the row's values as --set would give them
    for (const auto& kv : row.set) where += (where.empty() ? "" : " ") + kv;
    if (!row.ok) {
      t.add_raw(where + ": search refused: " + all_errors(row.error));
      continue;
    }
    std::vector<std::string> cells;
    for (const auto& kv : row.set) cells.push_back(kv.substr(kv.find('=') + 1));
    cells.push_back(reports::group_digits(static_cast<double>(v.layouts)));
    cells.push_back(reports::group_digits(static_cast<double>(v.fit)));
    if (const SweepPoint* b = v.best; b == nullptr) {
      cells.push_back(v.fit == 0 && v.layouts > 0 ? "none fits" : "none");
      for (int i = 0; i < 5 + (train ? 2 : 0); ++i) cells.push_back("-");
    } else {
      cells.push_back(layout_text(row.result, *b) + (r == best_row ? " *" : ""));
      cells.push_back(secs(b->step_s));
      cells.push_back(reports::group_digits(b->tokens_per_s));
      cells.push_back(reports::group_digits(b->tokens_per_s_per_gpu));
      cells.push_back(strf("%.1f%%", b->mfu * 100));
      cells.push_back(strf("%.2f", b->peak_memory_gib));
      if (train) {
        cells.push_back(std::isinf(b->train_s) ? "never" : b->train_s > 0 ? strf("%.1f", b->train_s / 86400.0) : "-");
        cells.push_back(b->train_s > 0 && !std::isinf(b->train_s)
                            ? reports::group_digits(b->train_s / 3600.0 * point_gpus(*b))
                            : "-");
      }
    }
    cells.push_back(given_text(row, v));
    t.add(std::move(cells));
  }
  out += t.render("");
  out += "\n";
  if (best_row < a.rows.size()) {
    const AcrossSearch::Row& row = a.rows[best_row];
    const SweepPoint& b = *views[best_row].best;
    std::string where;
    for (const auto& kv : row.set) where += (where.empty() ? "" : " ") + kv;
    out += strf("* best row by %s: %s with %s: step %s, %s tokens/s (%s per GPU), MFU %.1f%%\n",
                to_string(row.result.rank_by), where.c_str(), layout_text(row.result, b).c_str(), secs(b.step_s).c_str(),
                reports::group_digits(b.tokens_per_s).c_str(), reports::group_digits(b.tokens_per_s_per_gpu).c_str(),
                b.mfu * 100);
  } else {
    out += "no row has a layout that fits\n";
  }
  out += "best layout: mb = training.micro_batch, sp = parallel.sequence_parallel; as given: the scenario's own layout "
         "in each row's search (its place, and how far it is from the row's best)\n";
  std::set<std::string> costs;
  for (const auto& row : a.rows) collect_costs(row.result, &costs);
  out += costs_lines(costs, "a row's and a layout's --set values");
  return out;
}

ordered_json search_across_json(const AcrossSearch& a) {
  ordered_json j;
  j["command"] = "search";
  ordered_json ax = ordered_json::array();
  for (const auto& x : a.across) ax.push_back({{"key", x.key}, {"values", x.values}});
  j["across"] = std::move(ax);
  j["notes"] = a.notes;
  const std::vector<AcrossView> views = across_views(a);
  ordered_json rows = ordered_json::array();
  for (size_t r = 0; r < a.rows.size(); ++r) {
    const AcrossSearch::Row& row = a.rows[r];
    const AcrossView& v = views[r];
    ordered_json o;
    ordered_json vals = ordered_json::object();
    for (const auto& kv : row.set) vals[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
    o["values"] = std::move(vals);
    o["status"] = row.ok ? "ok" : "invalid";
    o["error"] = row.ok ? "" : all_errors(row.error);
    o["layouts"] = v.layouts;
    o["fit"] = v.fit;
    if (const SweepPoint* b = v.best) {
      ordered_json bp = ordered_json(sweep_point_record(*b));
      bp["gpus"] = point_gpus(*b);
      bp["train_gpu_hours"] = b->train_s > 0 && !std::isinf(b->train_s) ? ordered_json(b->train_s / 3600.0 * point_gpus(*b))
                                                                         : ordered_json(nullptr);
      o["best"] = std::move(bp);
    } else {
      o["best"] = nullptr;
    }
    if (v.given_place > 0) {
      const SweepPoint& g = row.result.points[row.result.given];
      o["given"] = {{"place", v.given_place},
                    {"fits", sweep_fits(g, row.result.memory_limit)},
                    {"step_s", g.ok ? json_number(g.step_s) : ordered_json(nullptr)}};
    } else {
      o["given"] = nullptr;
    }
    rows.push_back(std::move(o));
  }
  j["rows"] = std::move(rows);
  const size_t best = across_best_row(a, views);
  j["best_row"] = best < a.rows.size() ? ordered_json(best) : ordered_json(nullptr);
  return j;
}

}  // namespace trainsim
