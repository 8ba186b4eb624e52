#include "sim/flow_bench.h"

#include <chrono>
#include <cmath>
#include <random>

#include "sim/event_queue.h"
#include "sim/flow.h"
#include "sim/flow_driver.h"

namespace trainsim {
namespace {

constexpr int kLeaves = 100;
constexpr int kHostsPerLeaf = 48;
constexpr int kSpines = 2;
constexpr int kHosts = kLeaves * kHostsPerLeaf;
constexpr double kHostBw = 50e9;
constexpr double kOversub = 2.0;

struct Tree {
  FlowNetwork net;
  std::vector<uint32_t> up, down;          // per host
  std::vector<uint32_t> leaf_up, spine_dn; // [leaf * kSpines + spine]
  Tree() {
    net.reserve(1 << 16, 10'000);
    for (int h = 0; h < kHosts; ++h) {
      up.push_back(net.add_link(Bandwidth::bytes_per_s(kHostBw)));
      down.push_back(net.add_link(Bandwidth::bytes_per_s(kHostBw)));
    }
    const double uplink = kHostsPerLeaf * kHostBw / (kSpines * kOversub);
    for (int l = 0; l < kLeaves; ++l) {
      for (int s = 0; s < kSpines; ++s) {
        leaf_up.push_back(net.add_link(Bandwidth::bytes_per_s(uplink)));
        spine_dn.push_back(net.add_link(Bandwidth::bytes_per_s(uplink)));
      }
    }
  }
  void route(int src, int dst, std::vector<uint32_t>* path) const {
    path->clear();
    const int ls = src / kHostsPerLeaf, ld = dst / kHostsPerLeaf;
    path->push_back(up[src]);
    if (ls != ld) {
      const int s = static_cast<int>((static_cast<uint64_t>(src) * 0x9E3779B97F4A7C15ull ^
                                      static_cast<uint64_t>(dst)) % kSpines);
      path->push_back(leaf_up[ls * kSpines + s]);
      path->push_back(spine_dn[ld * kSpines + s]);
    }
    path->push_back(down[dst]);
  }
};

double unit(std::mt19937_64& r) { return static_cast<double>(r() >> 11) * 0x1.0p-53; }
int pick(std::mt19937_64& r, int n) { return static_cast<int>(r() % static_cast<uint64_t>(n)); }

struct Start {       // one start event: `count` flows from flow index `first`
  uint32_t first, count;
};

}  // namespace

std::vector<FlowBenchCase> flow_bench_cases() {
  std::vector<FlowBenchCase> v;
  FlowBenchCase c;
  c.name = "random pairs, ~50 in flight";
  c.target_concurrency = 50;
  v.push_back(c);
  c.name = "random pairs, ~500 in flight";
  c.target_concurrency = 500;
  v.push_back(c);
  c.name = "random pairs, ~2000 in flight";
  c.target_concurrency = 2000;
  v.push_back(c);
  c.name = "8-rings in one leaf, ~2000";
  c.kind = FlowBenchCase::Kind::kRings;
  c.same_leaf = true;
  v.push_back(c);
  c.name = "8-rings scattered, ~500";
  c.same_leaf = false;
  c.target_concurrency = 500;
  v.push_back(c);
  return v;
}

FlowBenchRow run_flow_bench_case(const FlowBenchCase& c) {
  Tree tree;
  std::mt19937_64 rng(c.seed);
  // Generate every flow first (not timed): sizes log-uniform in [64 KiB, 64 MiB].
  std::vector<FlowSpec> specs;
  std::vector<Start> starts;
  std::vector<Time> start_at;
  specs.reserve(static_cast<size_t>(c.flows));
  const double lo = std::log(64.0 * 1024), hi = std::log(64.0 * 1024 * 1024);
  const double mean_size = (std::exp(hi) - std::exp(lo)) / (hi - lo);
  const double mean_dur_s = mean_size / kHostBw;
  const int group = c.kind == FlowBenchCase::Kind::kRings ? c.ring_size : 1;
  // Arrival rate of groups so that ~target flows would be in flight at host speed.
  const double groups_per_s = c.target_concurrency / (mean_dur_s * group);
  double t_s = 0;
  while (static_cast<int>(specs.size()) < c.flows) {
    t_s += -std::log(1.0 - unit(rng)) / groups_per_s;
    const Time at = Time::from_seconds(t_s);
    const uint32_t first = static_cast<uint32_t>(specs.size());
    if (c.kind == FlowBenchCase::Kind::kRandom) {
      const int src = pick(rng, kHosts);
      int dst = pick(rng, kHosts - 1);
      if (dst >= src) ++dst;
      FlowSpec f;
      tree.route(src, dst, &f.path);
      f.size = Bytes{static_cast<int64_t>(std::exp(lo + (hi - lo) * unit(rng)))};
      specs.push_back(std::move(f));
    } else {
      std::vector<int> members;
      const int leaf = pick(rng, kLeaves);
      while (static_cast<int>(members.size()) < c.ring_size) {
        const int h = c.same_leaf ? leaf * kHostsPerLeaf + pick(rng, kHostsPerLeaf)
                                  : pick(rng, kHosts);
        bool dup = false;
        for (int m : members) dup = dup || m == h;
        if (!dup) members.push_back(h);
      }
      // Ring all-reduce: each edge carries 2(p-1)/p of the buffer.
      const double buf = std::exp(lo + (hi - lo) * unit(rng));
      const int p = c.ring_size;
      for (int i = 0; i < p; ++i) {
        FlowSpec f;
        tree.route(members[i], members[(i + 1) % p], &f.path);
        f.size = Bytes{static_cast<int64_t>(2.0 * (p - 1) / p * buf)};
        specs.push_back(std::move(f));
      }
    }
    starts.push_back(Start{first, static_cast<uint32_t>(specs.size()) - first});
    start_at.push_back(at);
  }

  constexpr uint8_t kEvStart = 1, kEvFlow = 2;
  EventQueue q;
  q.reserve(starts.size() + 16);
  for (uint32_t i = 0; i < starts.size(); ++i) q.push(start_at[i], 0, kEvStart, i, 0);
  FlowEventDriver drv(tree.net, q, /*phase=*/0, kEvFlow);
  std::vector<FlowCompletion> done;
  done.reserve(1024);
  uint64_t events = 0, finished = 0;
  Time last = Time::zero();

  const auto t0 = std::chrono::steady_clock::now();
  while (!q.empty()) {
    const Event e = q.pop();
    ++events;
    if (e.type == kEvStart) {
      const Start& s = starts[e.a];
      for (uint32_t k = s.first; k < s.first + s.count; ++k) {
        Result<FlowId> r = tree.net.start(e.when, specs[k].path, specs[k].size);
        SIM_CHECK(r.ok(), "flow_bench: start failed: %s", r.status().to_string().c_str());
      }
      drv.sync();
    } else {
      done.clear();
      if (drv.on_event(e, &done)) {
        finished += done.size();
        if (!done.empty()) last = done.back().at;
      }
    }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  SIM_CHECK(finished == specs.size(), "flow_bench: %llu of %zu flows finished",
            (unsigned long long)finished, specs.size());

  const FlowNetworkStats& st = tree.net.stats();
  FlowBenchRow row;
  row.name = c.name;
  row.links = tree.net.num_links();
  row.flows = specs.size();
  row.events = events;
  row.wall_s = wall;
  row.flows_per_s = wall > 0 ? static_cast<double>(specs.size()) / wall : 0;
  row.solves = st.solves;
  row.flows_resolved = st.flows_resolved;
  row.rates_changed = st.rates_changed;
  row.max_component = st.max_component_flows;
  row.peak_active = st.peak_active_flows;
  row.simulated = last;
  return row;
}

std::vector<FlowBenchRow> flow_benchmark(std::FILE* out, const std::string& only) {
  std::vector<FlowBenchRow> rows;
  std::fprintf(out,
               "flow network: 2-level tree, %d hosts, 10,000 links, 2:1 oversubscribed; "
               "one core, wall excludes generation\n",
               kHosts);
  std::fprintf(out, "%-30s %8s %8s %9s %11s %9s %10s %9s %10s %7s %12s\n", "case", "flows",
               "events", "wall s", "flows/s", "solves", "avg comp", "max comp", "rates chg",
               "peak", "simulated");
  for (const FlowBenchCase& c : flow_bench_cases()) {
    if (!only.empty() && c.name.find(only) == std::string::npos) continue;
    FlowBenchRow r = run_flow_bench_case(c);
    std::fprintf(out, "%-30s %8llu %8llu %9.3f %11.0f %9llu %10.1f %9llu %10llu %7llu %12s\n",
                 r.name.c_str(), (unsigned long long)r.flows, (unsigned long long)r.events,
                 r.wall_s, r.flows_per_s, (unsigned long long)r.solves,
                 r.solves ? static_cast<double>(r.flows_resolved) / r.solves : 0.0,
                 (unsigned long long)r.max_component, (unsigned long long)r.rates_changed,
                 (unsigned long long)r.peak_active, format_time(r.simulated).c_str());
    std::fflush(out);
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace trainsim
