#include "sim/flow.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

namespace trainsim {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kPsPerS = 1e12;
// Time::from_seconds accepts < ~9.2e6 s; a projected completion further away than this is
// treated as "never" (a rate so small the flow is effectively stalled).
constexpr double kMaxProjectionS = 9.0e6;
// A partial re-solve whose closure (flows reachable through saturated links) exceeds this is
// done as a whole-component solve right away.
constexpr size_t kPartialMaxFlows = 1024;

double seconds_between(Time a, Time b) {  // b - a, exact ps divided once
  return static_cast<double>((b - a).count_ps()) / kPsPerS;
}

// Whole bytes still to send. Remaining bytes are tracked in double; anything within a hair of
// a whole byte (1e-6 B, or 1e-12 relative) counts as that byte, so exact closed forms stay
// exact despite the last bit of rounding noise (being early by 1e-6 B is < 1 ps at any rate
// above 1 MB/s). Otherwise round up: never early.
int64_t bytes_left(double remaining) {
  const double slack = 1e-6 + remaining * 1e-12;
  const double r = remaining - slack;
  return r <= 0 ? 0 : static_cast<int64_t>(std::ceil(r));
}

std::string link_name(uint32_t l) { return "link " + std::to_string(l); }

}  // namespace

uint32_t FlowNetwork::add_link(Bandwidth capacity) {
  SIM_CHECK(capacity.Bps() >= 0 && std::isfinite(capacity.Bps()),
            "add_link: capacity must be finite and >= 0, got %g B/s", capacity.Bps());
  SIM_CHECK(links_.size() < 0xffffffffu, "too many links");
  Link l;
  l.cap = capacity.Bps();
  l.acc = now_;
  links_.push_back(std::move(l));
  return static_cast<uint32_t>(links_.size() - 1);
}

Bandwidth FlowNetwork::capacity(uint32_t link) const {
  SIM_CHECK(link < links_.size(), "unknown link %u", link);
  return Bandwidth::bytes_per_s(links_[link].cap);
}

void FlowNetwork::reserve(size_t flows, size_t links) {
  flows_.reserve(flows);
  heap_.reserve(flows);
  free_slots_.reserve(flows);
  comp_flows_.reserve(flows);
  capped_.reserve(flows);
  links_.reserve(links);
  comp_links_.reserve(links);
  seed_links_.reserve(links);
}

void FlowNetwork::touch(Time now) {
  SIM_CHECK(now >= now_, "flow network: time went back from %lld to %lld ps",
            (long long)now_.count_ps(), (long long)now.count_ps());
  if (now == now_) return;
  settle();
  SIM_CHECK(heap_.empty() || flows_[heap_[0]].done >= now,
            "flow network: flow %llu was due at %lld ps, before %lld ps; call advance_to() first",
            (unsigned long long)flows_[heap_[0]].seq, (long long)flows_[heap_[0]].done.count_ps(),
            (long long)now.count_ps());
  now_ = now;
}

Status FlowNetwork::set_capacity(Time now, uint32_t link, Bandwidth c) {
  if (link >= links_.size()) {
    return Status::error(Error{"", "", std::to_string(link),
                               "set_capacity: unknown link; the network has " +
                                   std::to_string(links_.size()) + " links"});
  }
  if (!(c.Bps() >= 0) || !std::isfinite(c.Bps())) {
    return Status::error(Error{"", link_name(link), std::to_string(c.Bps()),
                               "set_capacity: capacity must be finite and >= 0 (0 = failed)"});
  }
  touch(now);
  Link& l = links_[link];
  if (l.cap == c.Bps()) return Status{};
  l.cap = c.Bps();
  seed_links_.push_back(link);
  pending_ = true;
  if (l.cap == 0 && !l.flows.empty()) {
    std::string ids;
    for (size_t i = 0; i < l.flows.size() && i < 8; ++i) {
      ids += (i ? ", " : "") + std::to_string(flows_[l.flows[i].flow].seq);
    }
    if (l.flows.size() > 8) ids += ", ...";
    return Status::error(Error{
        "", link_name(link), "0",
        "link failed with " + std::to_string(l.flows.size()) + " active flow(s) on it (ids " +
            ids + "); they stall at rate 0 until the link is restored, or cancel and restart "
                  "them on another path"});
  }
  return Status{};
}

Result<FlowId> FlowNetwork::start(Time now, std::span<const uint32_t> path, Bytes size,
                                  std::optional<Bandwidth> cap) {
  Status st;
  if (size.count() < 0) {
    st.add(Error{"", "size", std::to_string(size.count()), "flow size must be >= 0 bytes"});
  }
  if (cap && !(cap->Bps() > 0)) {
    st.add(Error{"", "cap", std::to_string(cap->Bps()),
                 "a rate cap must be > 0 B/s; omit it for an uncapped flow"});
  }
  if (path.empty() && !cap) {
    st.add(Error{"", "path", "[]", "an empty path needs a rate cap (its rate is unbounded)"});
  }
  ++epoch_;  // marks links of this path, to find repeats
  for (uint32_t l : path) {
    if (l >= links_.size()) {
      st.add(Error{"", "path", std::to_string(l),
                   "unknown link; the network has " + std::to_string(links_.size()) + " links"});
      continue;
    }
    Link& lk = links_[l];
    if (lk.mark == epoch_) {
      st.add(Error{"", "path", std::to_string(l), "the path uses this link twice"});
      continue;
    }
    lk.mark = epoch_;
    if (lk.cap == 0) {
      st.add(Error{"", "path", std::to_string(l),
                   "link has failed (capacity 0); route the flow around it"});
    }
  }
  if (!st.ok()) return st;

  touch(now);
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    SIM_CHECK(flows_.size() < 0xffffffffu, "too many concurrent flows");
    slot = static_cast<uint32_t>(flows_.size());
    flows_.emplace_back();
  }
  Flow& f = flows_[slot];
  f.seq = next_seq_++;
  f.active = true;
  f.frozen = false;
  f.path.assign(path.begin(), path.end());
  f.pos.resize(path.size());
  f.remaining = static_cast<double>(size.count());
  f.last = now;
  f.rate = 0;
  f.new_rate = 0;
  f.cap = cap ? cap->Bps() : kInf;
  f.done = Time::max();  // until settled
  for (uint32_t k = 0; k < f.path.size(); ++k) {
    Link& l = links_[f.path[k]];
    f.pos[k] = static_cast<uint32_t>(l.flows.size());
    l.flows.push_back(LinkEntry{slot, k});
    seed_links_.push_back(f.path[k]);
  }
  if (f.path.empty()) seed_flows_.push_back(slot);
  heap_push(slot);
  pending_ = true;
  ++active_count_;
  ++stats_.flows_started;
  stats_.peak_active_flows = std::max<uint64_t>(stats_.peak_active_flows, active_count_);
  return FlowId{f.seq, slot};
}

Status FlowNetwork::cancel(Time now, FlowId id) {
  if (!active(id)) {
    return Status::error(Error{"", "", std::to_string(id.seq), "cancel: flow is not active"});
  }
  touch(now);
  heap_remove(id.slot);
  remove_flow(id.slot);
  pending_ = true;
  ++stats_.flows_cancelled;
  return Status{};
}

void FlowNetwork::remove_flow(uint32_t slot) {
  Flow& f = flows_[slot];
  for (uint32_t k = 0; k < f.path.size(); ++k) {
    const uint32_t lid = f.path[k];
    std::vector<LinkEntry>& v = links_[lid].flows;
    const uint32_t idx = f.pos[k];
    const LinkEntry last = v.back();
    v[idx] = last;
    flows_[last.flow].pos[last.k] = idx;
    v.pop_back();
    seed_links_.push_back(lid);
    Link& lk = links_[lid];
    account(lk, now_);
    lk.load = v.empty() ? 0.0 : lk.load - f.rate;  // exact 0 when idle: busy time stops
  }
  f.active = false;
  free_slots_.push_back(slot);
  --active_count_;
}

Time FlowNetwork::next_completion() {
  settle();
  return heap_.empty() ? Time::max() : flows_[heap_[0]].done;
}

Bandwidth FlowNetwork::rate(FlowId id) {
  SIM_CHECK(active(id), "rate: flow %llu is not active", (unsigned long long)id.seq);
  settle();
  return Bandwidth::bytes_per_s(flows_[id.slot].rate);
}

Time FlowNetwork::projected_completion(FlowId id) {
  SIM_CHECK(active(id), "projected_completion: flow %llu is not active",
            (unsigned long long)id.seq);
  settle();
  return flows_[id.slot].done;
}

double FlowNetwork::remaining_bytes(FlowId id, Time now) {
  SIM_CHECK(active(id), "remaining_bytes: flow %llu is not active", (unsigned long long)id.seq);
  SIM_CHECK(now >= now_, "remaining_bytes: time went back");
  settle();
  const Flow& f = flows_[id.slot];
  return std::max(0.0, f.remaining - f.rate * seconds_between(f.last, now));
}

void FlowNetwork::advance_to(Time t, std::vector<FlowCompletion>* done) {
  SIM_CHECK(t >= now_, "advance_to: time went back from %lld to %lld ps",
            (long long)now_.count_ps(), (long long)t.count_ps());
  settle();
  while (!heap_.empty()) {
    const Time tc = flows_[heap_[0]].done;
    if (tc > t) break;
    now_ = tc;
    while (!heap_.empty() && flows_[heap_[0]].done == tc) {
      const uint32_t slot = heap_[0];
      heap_remove(slot);
      done->push_back(FlowCompletion{FlowId{flows_[slot].seq, slot}, tc});
      remove_flow(slot);
      ++stats_.flows_finished;
    }
    pending_ = true;
    // The last batch (at t itself) stays pending: flows starting at t then join the same solve.
    if (tc == t) break;
    settle();
  }
  now_ = t;
}

std::vector<FlowId> FlowNetwork::advance_to(Time t) {
  std::vector<FlowCompletion> done;
  advance_to(t, &done);
  std::vector<FlowId> ids;
  ids.reserve(done.size());
  for (const FlowCompletion& c : done) ids.push_back(c.id);
  return ids;
}

void FlowNetwork::account(Link& l, Time now) {
  if (now > l.acc) {
    if (l.load > 0) {
      l.bytes += l.load * seconds_between(l.acc, now);
      l.busy += now - l.acc;
    }
    l.acc = now;
  }
}

LinkStats FlowNetwork::link_stats(uint32_t link, Time now) const {
  SIM_CHECK(link < links_.size(), "unknown link %u", link);
  SIM_CHECK(now >= now_, "link_stats: time went back");
  const Link& l = links_[link];
  LinkStats s{l.bytes, l.busy};
  if (now > l.acc && l.load > 0) {
    s.bytes += l.load * seconds_between(l.acc, now);
    s.busy += now - l.acc;
  }
  return s;
}

std::vector<uint32_t> FlowNetwork::hottest_links(size_t k, Time now) const {
  std::vector<std::pair<double, uint32_t>> v;
  v.reserve(links_.size());
  for (uint32_t i = 0; i < links_.size(); ++i) v.push_back({link_stats(i, now).bytes, i});
  k = std::min(k, v.size());
  auto hotter = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  std::partial_sort(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end(), hotter);
  std::vector<uint32_t> out;
  out.reserve(k);
  for (size_t i = 0; i < k; ++i) out.push_back(v[i].second);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Re-solving the touched components.

void FlowNetwork::settle() {
  if (!pending_) return;
  pending_ = false;
  const Time now = now_;
  ++epoch_;
  comp_links_.clear();
  comp_flows_.clear();
  expand_.clear();
  // Which flows to re-solve. Max-min rates couple flows only through saturated links: a flow's
  // rate is set by a saturated link on which it has the largest rate (its bottleneck) or by its
  // cap; a link with spare capacity constrains nobody. So start from the touched links (all
  // their flows join) and grow through links saturated in the current allocation (all their
  // flows join); a link that is only crossed keeps its other ("external") flows at their rates,
  // the solve gets its capacity minus theirs. The result is max-min fair for all flows unless
  // the partial solve makes such a crossed link the bottleneck of re-solved flows at a share
  // below an external flow's rate; water_fill() reports those links, and they are expanded and
  // the solve repeated (at worst up to the whole connected component, the old behaviour).
  // Order of discovery depends only on the call sequence (per-link lists in insertion/swap
  // order), so runs stay deterministic.
  for (uint32_t l : seed_links_) {
    Link& lk = links_[l];
    if (lk.mark != epoch_) {
      lk.mark = epoch_;
      comp_links_.push_back(l);
    }
    if (lk.xmark != epoch_) {
      lk.xmark = epoch_;
      expand_.push_back(l);
    }
  }
  for (uint32_t s : seed_flows_) {
    if (flows_[s].active) add_to_solve(s);
  }
  seed_links_.clear();
  seed_flows_.clear();
  size_t xi = 0;
  expand_all_ = false;
  for (;;) {
    for (; xi < expand_.size(); ++xi) {
      // add_to_solve() may grow expand_ but never touches a link's flow list.
      const std::vector<LinkEntry>& v = links_[expand_[xi]].flows;
      for (size_t j = 0; j < v.size(); ++j) add_to_solve(v[j].flow);
    }
    // Where partial solves keep failing (a saturated core couples everything) or the closure is
    // already large, a partial try would mostly be wasted: go to the whole component at once.
    if (!expand_all_ && (comp_flows_.size() > kPartialMaxFlows || partial_fail_ > 0.5)) {
      if (partial_fail_ > 0.5) partial_fail_ *= 0.99;  // decays: partial tries resume later
      expand_all_ = true;
      for (uint32_t l : comp_links_) {
        if (links_[l].xmark != epoch_) {
          links_[l].xmark = epoch_;
          expand_.push_back(l);
        }
      }
      continue;
    }
    violated_.clear();
    water_fill();
    if (!expand_all_) partial_fail_ = 0.9 * partial_fail_ + (violated_.empty() ? 0.0 : 0.1);
    if (violated_.empty()) break;
    // The partial solve failed: take the whole connected component, which is always max-min
    // fair (growing piecemeal would cost a solve per round).
    expand_all_ = true;
    for (uint32_t l : comp_links_) {
      if (links_[l].xmark != epoch_) {
        links_[l].xmark = epoch_;
        expand_.push_back(l);
      }
    }
  }
  ++stats_.solves;
  stats_.flows_resolved += comp_flows_.size();
  stats_.links_resolved += comp_links_.size();
  stats_.max_component_flows = std::max<uint64_t>(stats_.max_component_flows, comp_flows_.size());

  water_fill();
  for (uint32_t s : comp_flows_) {
    Flow& f = flows_[s];
    if (f.new_rate == f.rate) continue;  // unchanged: keep its projection exactly
    const double delta = f.new_rate - f.rate;
    for (uint32_t m : f.path) {
      Link& lk = links_[m];
      account(lk, now);
      lk.load += delta;
    }
    reschedule(f, now);
    ++stats_.rates_changed;
  }
}

void FlowNetwork::add_to_solve(uint32_t slot) {
  Flow& f = flows_[slot];
  if (f.mark == epoch_) return;
  f.mark = epoch_;
  comp_flows_.push_back(slot);
  for (uint32_t m : f.path) {
    Link& lk = links_[m];
    if (lk.mark != epoch_) {
      lk.mark = epoch_;
      comp_links_.push_back(m);
    }
    if (lk.xmark != epoch_ && (expand_all_ || saturated(lk))) {
      lk.xmark = epoch_;
      expand_.push_back(m);
    }
  }
}

void FlowNetwork::reschedule(Flow& f, Time now) {
  f.remaining = std::max(0.0, f.remaining - f.rate * seconds_between(f.last, now));
  f.last = now;
  f.rate = f.new_rate;
  Time done = Time::max();
  if (f.rate > 0) {
    const int64_t b = bytes_left(f.remaining);
    if (static_cast<double>(b) / f.rate < kMaxProjectionS) {
      done = now + transfer_time(Bytes{b}, Bandwidth::bytes_per_s(f.rate));
    }
  }
  if (done != f.done) {
    f.done = done;
    heap_fix(static_cast<uint32_t>(&f - flows_.data()));
  }
}

// Progressive filling on comp_flows_ / comp_links_. Every link holds a remaining capacity rc
// and a count n of flows not yet frozen; its fair share is rc / n. Repeatedly take the smallest
// of (the lowest fair share over links, the lowest cap over unfrozen capped flows): a cap
// freezes that one flow at its cap; a link freezes all its unfrozen flows at its share. Each
// freeze subtracts the rate from the flow's other links.
// A link's fair share never decreases while filling (a flow leaves it at a rate s <= the
// current minimum share <= rc/n, and (rc - s)/(n - 1) >= rc/n), so the share heap needs no
// decrease-key: an entry whose link's share has risen since it was pushed is re-pushed with the
// current share when it reaches the top (lazy increase-key). Keys are (share, link id). The
// solve is O(E + L log L + R log R) for E path entries, L links and R re-queued shares.
void FlowNetwork::water_fill() {
  // Initial shares sorted once (cheaper than a heap: most links are taken in this order); links
  // whose share rose go to a small min-heap. The next constraint is the smaller of the two heads.
  auto less = [](const ShareKey& a, const ShareKey& b) {
    return a.share < b.share || (a.share == b.share && a.link < b.link);
  };
  auto heap_cmp = [&less](const ShareKey& a, const ShareKey& b) { return less(b, a); };
  share_sorted_.clear();
  share_heap_.clear();
  for (uint32_t l : comp_links_) {
    Link& lk = links_[l];
    lk.ext_max = 0;
    if (lk.xmark == epoch_) {
      lk.rc = lk.cap;
      lk.n = static_cast<uint32_t>(lk.flows.size());
    } else {  // crossed only: its external flows keep their rates
      double ext = 0;
      uint32_t n = 0;
      for (const LinkEntry& e : lk.flows) {
        const Flow& g = flows_[e.flow];
        if (g.mark == epoch_) {
          ++n;
        } else {
          ext += g.rate;
          lk.ext_max = std::max(lk.ext_max, g.rate);
        }
      }
      lk.rc = std::max(0.0, lk.cap - ext);
      lk.n = n;
    }
    if (lk.n > 0) share_sorted_.push_back(ShareKey{lk.rc / lk.n, l});
  }
  std::sort(share_sorted_.begin(), share_sorted_.end(), less);
  size_t si = 0;
  capped_.clear();
  for (uint32_t s : comp_flows_) {
    Flow& f = flows_[s];
    f.frozen = false;
    if (f.cap < kInf) capped_.push_back(s);
  }
  std::sort(capped_.begin(), capped_.end(), [this](uint32_t a, uint32_t b) {
    const Flow& x = flows_[a];
    const Flow& y = flows_[b];
    return x.cap < y.cap || (x.cap == y.cap && x.seq < y.seq);
  });
  unfrozen_ = static_cast<uint32_t>(comp_flows_.size());
  size_t ci = 0;
  while (unfrozen_ > 0) {
    while (ci < capped_.size() && flows_[capped_[ci]].frozen) ++ci;
    // The smallest current share: drop links with no unfrozen flow, re-queue risen shares.
    bool from_heap = false;
    ShareKey top{kInf, ~0u};
    for (;;) {
      const bool have_s = si < share_sorted_.size();
      const bool have_h = !share_heap_.empty();
      if (!have_s && !have_h) break;
      from_heap = have_h && (!have_s || less(share_heap_.front(), share_sorted_[si]));
      const ShareKey k = from_heap ? share_heap_.front() : share_sorted_[si];
      const Link& lk = links_[k.link];
      const double cur = lk.n > 0 ? lk.rc / lk.n : 0;
      if (lk.n > 0 && cur == k.share) {
        top = k;
        break;
      }
      if (from_heap) {
        std::pop_heap(share_heap_.begin(), share_heap_.end(), heap_cmp);
        share_heap_.pop_back();
      } else {
        ++si;
      }
      if (lk.n > 0) {
        share_heap_.push_back(ShareKey{cur, k.link});
        std::push_heap(share_heap_.begin(), share_heap_.end(), heap_cmp);
      }
    }
    if (ci < capped_.size() && flows_[capped_[ci]].cap < top.share) {
      const uint32_t s = capped_[ci++];
      freeze(s, flows_[s].cap, ~0u);
      continue;
    }
    SIM_CHECK(top.link != ~0u, "water_fill: %u unfrozen flows but no constraint", unfrozen_);
    if (from_heap) {
      std::pop_heap(share_heap_.begin(), share_heap_.end(), heap_cmp);
      share_heap_.pop_back();
    } else {
      ++si;
    }
    const uint32_t l = top.link;
    const double s = top.share;
    // A crossed link becoming the bottleneck below an external flow's rate: that flow must
    // share it, so the partial solve is not max-min fair (settle() expands l and repeats).
    if (links_[l].ext_max > s) violated_.push_back(l);
    // Freezing flows of l changes no other entry of l's list (swap-removal happens only in
    // remove_flow), so iterating it is safe.
    for (const LinkEntry& e : links_[l].flows) {
      if (!flows_[e.flow].frozen) freeze(e.flow, s, l);
    }
    links_[l].n = 0;
  }
}

void FlowNetwork::freeze(uint32_t slot, double r, uint32_t skip_link) {
  Flow& f = flows_[slot];
  f.frozen = true;
  f.new_rate = r;
  --unfrozen_;
  for (uint32_t m : f.path) {
    if (m == skip_link) continue;
    Link& lk = links_[m];
    lk.rc = std::max(0.0, lk.rc - r);
    --lk.n;
  }
}

// ---------------------------------------------------------------------------------------------
// Indexed heap of projected completions.

void FlowNetwork::heap_push(uint32_t slot) {
  flows_[slot].heap_pos = static_cast<uint32_t>(heap_.size());
  heap_.push_back(slot);
  heap_up(flows_[slot].heap_pos);
}

void FlowNetwork::heap_remove(uint32_t slot) {
  const uint32_t i = flows_[slot].heap_pos;
  const uint32_t last = heap_.back();
  heap_.pop_back();
  if (last == slot) return;
  heap_[i] = last;
  flows_[last].heap_pos = i;
  heap_up(i);
  heap_down(flows_[last].heap_pos);
}

void FlowNetwork::heap_fix(uint32_t slot) {
  heap_up(flows_[slot].heap_pos);
  heap_down(flows_[slot].heap_pos);
}

void FlowNetwork::heap_up(uint32_t i) {
  const uint32_t s = heap_[i];
  while (i > 0) {
    const uint32_t p = (i - 1) / 2;
    if (!heap_less(s, heap_[p])) break;
    heap_[i] = heap_[p];
    flows_[heap_[i]].heap_pos = i;
    i = p;
  }
  heap_[i] = s;
  flows_[s].heap_pos = i;
}

void FlowNetwork::heap_down(uint32_t i) {
  const uint32_t n = static_cast<uint32_t>(heap_.size());
  const uint32_t s = heap_[i];
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && heap_less(heap_[c + 1], heap_[c])) ++c;
    if (!heap_less(heap_[c], s)) break;
    heap_[i] = heap_[c];
    flows_[heap_[i]].heap_pos = i;
    i = c;
  }
  heap_[i] = s;
  flows_[s].heap_pos = i;
}

// ---------------------------------------------------------------------------------------------

Result<Time> finish_time_of(const FlowNetwork& net, Time now, std::span<const FlowSpec> flows) {
  FlowNetwork copy = net;
  std::vector<FlowId> ids;
  ids.reserve(flows.size());
  Status st;
  for (size_t i = 0; i < flows.size(); ++i) {
    Result<FlowId> r = copy.start(now, flows[i].path, flows[i].size, flows[i].cap);
    if (!r.ok()) {
      for (Error e : r.status().errors()) {
        e.path = "flows[" + std::to_string(i) + "]/" + e.path;
        st.add(std::move(e));
      }
      continue;
    }
    ids.push_back(r.value());
  }
  if (!st.ok()) return st;
  Time last = now;
  size_t left = ids.size();
  std::vector<FlowCompletion> done;
  while (left > 0) {
    const Time t = copy.next_completion();
    if (t == Time::max()) {
      return Status::error(std::to_string(left) +
                           " flow(s) never finish: stalled on a link of capacity 0");
    }
    done.clear();
    copy.advance_to(t, &done);
    for (const FlowCompletion& c : done) {
      if (std::binary_search(ids.begin(), ids.end(), c.id)) {
        --left;
        last = c.at;
      }
    }
  }
  return last;
}

}  // namespace trainsim
