// File: sim/flow.h
// Flow-level network contention (the "flow" fidelity of ARCHITECTURE.md "Network"): directed
// links with capacities, flows over paths of links, and max-min fair rates recomputed only
// when something changes, and only where it changes. Knows nothing about GPUs or topologies:
// a caller (topologies/ routing, the replay) turns a collective into flows over link ids.
//
//   FlowNetwork net;
//   uint32_t up = net.add_link(Bandwidth::GBps(50));
//   Result<FlowId> f = net.start(Time::zero(), {up}, Bytes::MiB(64));
//   Time t = net.next_completion();                 // 64 MiB / 50 GB/s, rounded up to 1 ps
//   for (FlowId done : net.advance_to(t)) { ... }
//
// Model. A flow f has a path (distinct link ids), a size and an optional rate cap. Its rate
// r_f is the max-min fair allocation (progressive filling / water-filling): raise every rate
// together; a flow stops rising when one of its links is full or it reaches its cap. A flow
// moves at its rate until the next change. A flow finishes at its projected completion
//   done_f = t_change + transfer_time(ceil(remaining_f at t_change), r_f)
// set whenever its rate changes; rounding is up (bytes, then picoseconds), so a flow never
// finishes early, and two runs of the same calls give the same times bit for bit.
//
// Invariant (why incremental is exact). Consider the bipartite graph whose nodes are the
// links and the active flows, with an edge when a flow's path uses a link. Max-min rates of a
// connected component depend only on the capacities and flows of that component. Within it,
// flows are coupled only through saturated links: an allocation is max-min fair iff it is
// feasible and every flow is at its cap or has a bottleneck (a saturated link on which no
// flow is faster). settle() therefore re-solves the flows of the touched links plus every flow
// reachable from them through links saturated in the current allocation; on a link it only
// crosses, the other ("external") flows keep their rates and the solve gets the capacity they
// leave. The result is max-min fair unless the partial solve makes a crossed link the
// bottleneck of re-solved flows below an external flow's rate; then that link is expanded and
// the solve repeated, and after a second such failure the whole connected component is solved
// (the fallback). Every other rate, and projected completion, stays untouched.
//
// Laziness and batching. start(), cancel() and set_capacity() only record the touched links;
// the re-solve happens at the next query (next_completion(), rate(), advance_to()) or when
// time moves on. All changes at one instant (a collective's flows starting together, a batch
// of flows finishing together, the next collective starting at that same instant) are solved
// in one pass. A flow's remaining bytes are kept as (remaining at `last`, rate): progress is
// materialized only when its rate changes, so advance_to() never walks all flows.
//
// Complexity (A = flows re-solved, E = sum of their path lengths, L = their links,
// N = active flows):
//   start / cancel / set_capacity   O(path length) + an O(log N) heap update
//   settle (one per batch)          O(E + L log L) typically (BFS, water-filling with a lazy
//                                   heap of link fair shares; re-pushes add log terms)
//                                   + O(k (path + log N)) for the k flows whose rate changed
//   next_completion                 O(1) once settled (indexed heap of projected completions)
//   advance_to(t)                   O(c log N) for c completions, plus one settle per distinct
//                                   completion time in (now, t]
// Nothing is O(all flows) or O(all links) per event. Steady state is allocation-free: flow
// slots, their path vectors, per-link flow lists and the solver's scratch vectors are reused.
// Random pairs over a tree form one big component, but its core links usually have slack, so
// a re-solve stays small (sim/flow_bench.cpp: ~500 in flight, avg 9 flows re-solved instead of
// ~600). Worst case: a saturated core (all traffic bottlenecked on shared links) couples
// everything, and every event re-solves the component (plus the failed partial tries).
//
// Thread-safety: none. Queries settle pending changes, so they are not const.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <vector>

#include "sim/status.h"
#include "sim/units.h"

namespace trainsim {

// A flow's handle. `seq` is its start order (unique per network, never reused); `slot` is
// where it lives. Handles compare by start order.
struct FlowId {
  uint64_t seq = ~uint64_t{0};
  uint32_t slot = ~uint32_t{0};
  friend constexpr bool operator==(FlowId a, FlowId b) { return a.seq == b.seq; }
  friend constexpr auto operator<=>(FlowId a, FlowId b) { return a.seq <=> b.seq; }
};

struct FlowCompletion {
  FlowId id;
  Time at;
};

// Per-link accounting, for "hottest links" reports. Utilisation over [0, now] is
// bytes / (capacity * now).
struct LinkStats {
  double bytes = 0;   // bytes carried (sum over time of the rates of its flows)
  Time busy;          // time with a positive load
};

struct FlowNetworkStats {
  uint64_t flows_started = 0;
  uint64_t flows_finished = 0;
  uint64_t flows_cancelled = 0;
  uint64_t solves = 0;              // rate recomputations (one per settled batch)
  uint64_t flows_resolved = 0;      // sum over solves of the flows re-solved (final round)
  uint64_t links_resolved = 0;      // sum over solves of the links re-solved (final round)
  uint64_t rates_changed = 0;       // flows whose rate actually changed (and were rescheduled)
  uint64_t max_component_flows = 0; // largest component solved
  uint64_t peak_active_flows = 0;
};

class FlowNetwork {
 public:
  FlowNetwork() = default;
  // Copyable (finish_time_of() works on a copy); movable.

  // A directed link; returns its id (0, 1, 2, ... in call order).
  // REQUIRES: capacity >= 0 and finite (input validation is the topology's job).
  uint32_t add_link(Bandwidth capacity);
  size_t num_links() const { return links_.size(); }
  Bandwidth capacity(uint32_t link) const;

  // Degrade (or restore) a link from `now` on. Capacity 0 means failed: the flows on it stall
  // (rate 0, no projected completion) until the capacity comes back or they are cancelled and
  // restarted on another path; that case is applied AND returned as an error that names the
  // link and the stalled flows, so a caller can reroute. Error also for an unknown link or a
  // negative / non-finite capacity (then nothing changes).
  // REQUIRES: now >= the last time passed to this network; no flow overdue (see start()).
  Status set_capacity(Time now, uint32_t link, Bandwidth c);

  // Starts a flow of `size` bytes at `now` over `path` (link ids, each at most once).
  // Errors (nothing changes): unknown or repeated link, a link with capacity 0 ("failed"),
  // negative size, a cap <= 0, an empty path without a cap (its rate would be unbounded).
  // A flow of size 0 finishes at `now`.
  // REQUIRES: now >= the last time passed to this network, and no active flow's projected
  // completion is before `now` (call advance_to(now) first: completions at exactly `now` may
  // be handled before or after, with the same result).
  Result<FlowId> start(Time now, std::span<const uint32_t> path, Bytes size,
                       std::optional<Bandwidth> cap = std::nullopt);
  Result<FlowId> start(Time now, std::initializer_list<uint32_t> path, Bytes size,
                       std::optional<Bandwidth> cap = std::nullopt) {
    return start(now, std::span<const uint32_t>(path.begin(), path.size()), size, cap);
  }

  // Stops an active flow at `now` (its bytes so far count as carried). Error if `id` is not
  // active. Same REQUIRES as start().
  Status cancel(Time now, FlowId id);

  // Earliest projected completion over active flows; Time::max() when none (or all stalled).
  Time next_completion();

  // Moves time to t: repeatedly finishes the flows whose projected completion is the earliest
  // one <= t and re-solves their components (so a completion before t speeds up the others
  // correctly). Appends the finished flows to `done` in (finish time, start order) order; a
  // batch finishing at one instant is therefore ordered by id. REQUIRES: t >= last time seen.
  void advance_to(Time t, std::vector<FlowCompletion>* done);
  std::vector<FlowId> advance_to(Time t);

  bool active(FlowId id) const {
    return id.slot < flows_.size() && flows_[id.slot].active && flows_[id.slot].seq == id.seq;
  }
  // REQUIRES: active(id).
  Bandwidth rate(FlowId id);
  Time projected_completion(FlowId id);
  double remaining_bytes(FlowId id, Time now);  // REQUIRES: now >= last time seen
  size_t active_flows() const { return active_count_; }
  uint32_t flows_on_link(uint32_t link) const {
    return static_cast<uint32_t>(links_[link].flows.size());
  }

  const FlowNetworkStats& stats() const { return stats_; }
  // Bytes and busy time of `link` over [0, now]. REQUIRES: now >= last time seen.
  LinkStats link_stats(uint32_t link, Time now) const;
  // The k links that carried the most bytes by `now`, most first (ties: lower id first).
  std::vector<uint32_t> hottest_links(size_t k, Time now) const;

  // Capacity hints; optional.
  void reserve(size_t flows, size_t links);

 private:
  struct LinkEntry {
    uint32_t flow;  // slot
    uint32_t k;     // index of this link in the flow's path
  };
  struct Link {
    double cap = 0;
    std::vector<LinkEntry> flows;
    // accounting
    double load = 0;  // sum of the rates of its flows since `acc` (kept incrementally)
    Time acc;
    double bytes = 0;
    Time busy;
    // solver scratch
    uint32_t mark = 0;   // == epoch_: a link of a flow being re-solved
    uint32_t xmark = 0;  // == epoch_: expanded (all its flows are being re-solved)
    uint32_t n = 0;      // unfrozen flows
    double rc = 0;       // capacity not yet handed out
    double ext_max = 0;  // largest rate of its flows that are not being re-solved
  };
  struct Flow {
    uint64_t seq = 0;
    bool active = false;
    bool frozen = false;
    uint32_t mark = 0;
    uint32_t heap_pos = 0;
    std::vector<uint32_t> path;
    std::vector<uint32_t> pos;  // pos[k]: index of this flow in links_[path[k]].flows
    double remaining = 0;       // bytes left at `last`
    Time last;
    double rate = 0;            // bytes/s
    double new_rate = 0;
    double cap = 0;             // +inf when uncapped
    Time done = Time::max();    // projected completion
  };
  struct ShareKey {
    double share;
    uint32_t link;
  };

  void touch(Time now);  // moves now_ forward (settling first); checks nothing is overdue
  void settle();
  void water_fill();
  void add_to_solve(uint32_t slot);
  bool saturated(const Link& l) const { return l.load >= l.cap * (1 - 1e-7); }
  void freeze(uint32_t f, double r, uint32_t skip_link);
  void remove_flow(uint32_t slot);
  void account(Link& l, Time now);
  void reschedule(Flow& f, Time now);
  // Indexed min-heap of active flow slots by (done, seq).
  bool heap_less(uint32_t a, uint32_t b) const {
    const Flow& x = flows_[a];
    const Flow& y = flows_[b];
    return x.done < y.done || (x.done == y.done && x.seq < y.seq);
  }
  void heap_push(uint32_t slot);
  void heap_remove(uint32_t slot);
  void heap_fix(uint32_t slot);
  void heap_up(uint32_t i);
  void heap_down(uint32_t i);

  std::vector<Link> links_;
  std::vector<Flow> flows_;
  std::vector<uint32_t> free_slots_;
  std::vector<uint32_t> heap_;
  uint64_t next_seq_ = 0;
  size_t active_count_ = 0;
  Time now_;
  bool pending_ = false;
  std::vector<uint32_t> seed_links_;
  std::vector<uint32_t> seed_flows_;  // new flows with an empty path
  uint32_t epoch_ = 0;
  // solver scratch, reused
  std::vector<uint32_t> comp_links_;
  std::vector<uint32_t> comp_flows_;
  std::vector<uint32_t> capped_;
  std::vector<uint32_t> expand_;     // links whose flows all join the solve
  std::vector<uint32_t> violated_;
  bool expand_all_ = false;          // this solve grows to the whole connected component
  double partial_fail_ = 0;          // moving average of failed partial solves (0..1)   // links where the partial solve was not max-min fair
  std::vector<ShareKey> share_sorted_;
  std::vector<ShareKey> share_heap_;
  uint32_t unfrozen_ = 0;
  FlowNetworkStats stats_;
};

// What a caller asks to start: one flow of a set (typically one collective's flows).
struct FlowSpec {
  std::vector<uint32_t> path;
  Bytes size;
  std::optional<Bandwidth> cap;
};

// When the last of `flows`, all started at `now`, would finish if nothing else starts or is
// cancelled later: runs a copy of `net` (its active flows keep competing) forward. Error if a
// flow cannot start (see FlowNetwork::start) or would never finish (stalled). For tests and
// what-ifs; cost O(size of net) for the copy plus the completions until the set is done.
Result<Time> finish_time_of(const FlowNetwork& net, Time now, std::span<const FlowSpec> flows);

}  // namespace trainsim
