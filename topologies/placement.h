// File: topologies/placement.h
// Rank placement: which (tp, cp, dp, pp) coordinates each rank has, which node it runs on, and
// the communication groups and pipeline peers that follow (as sim/plan.h tables).
//
// Ranks are mixed-radix numbers over the axes of ParallelSpec::order, innermost first. The
// default "tp-cp-dp-pp" is Megatron's order: tp varies fastest, so a TP group of size <=
// gpus_per_node is a run of consecutive ranks on one node. Ranks are laid on GPUs in order:
// node_of(rank) = rank / gpus_per_node, the same arithmetic as ClusterGraph::node_of; no graph
// is needed, and a Placement holds O(1) state whatever the rank count.
//
//   auto pl = Placement::make(parallel, 8).value();
//   GroupTable tp = make_group_table(pl, {Axis::kTp}, "tp");        // ranks differing only in tp
//   GroupTable dp = make_group_table(pl, {Axis::kDp, Axis::kCp}, "dp_cp");
//   PeerTable next = make_pp_peer_table(pl, +1, "pp_next");
//   GroupShape s = worst_shape(dp, 8);                               // for sim/collectives.h
//
// Group instances are numbered in the order of their smallest member; members are ascending.
// Table builders are O(ranks) time and memory.
// ep is not an axis: the MoE groups (EP along DP, or folded over a stage's positions in rank
// order) are built by models/compiler.cpp from these coordinates.
// Thread-safety: Placement is an immutable value; the free functions are pure.
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "models/spec.h"
#include "sim/check.h"
#include "sim/collectives.h"
#include "sim/plan.h"
#include "sim/status.h"

namespace trainsim {

enum class Axis : uint8_t { kTp = 0, kCp = 1, kDp = 2, kPp = 3 };
inline constexpr int kNumAxes = 4;
const char* to_string(Axis);   // "tp", "cp", "dp", "pp"

class Placement {
 public:
  // Errors (all at once): a bad order string (names the value and lists the accepted form),
  // an axis size < 1, gpus_per_node < 1, more than 2^31 ranks.
  static Result<Placement> make(const ParallelSpec& p, int gpus_per_node);

  int num_ranks() const { return num_ranks_; }
  int gpus_per_node() const { return gpus_per_node_; }
  int size(Axis a) const { return size_[idx(a)]; }
  // Distance in ranks between neighbours along an axis (product of the inner axes' sizes).
  int stride(Axis a) const { return stride_[idx(a)]; }
  // Axes innermost first, as parsed from the order string.
  const std::array<Axis, kNumAxes>& order() const { return order_; }
  std::string order_string() const;   // "tp-cp-dp-pp"

  // REQUIRES: rank < num_ranks().
  int coord(uint32_t rank, Axis a) const {
    return static_cast<int>((rank / static_cast<uint32_t>(stride_[idx(a)])) %
                            static_cast<uint32_t>(size_[idx(a)]));
  }
  std::array<int, kNumAxes> coords(uint32_t rank) const;   // indexed tp, cp, dp, pp
  // REQUIRES: 0 <= coords[a] < size(a) for every axis; coords indexed tp, cp, dp, pp.
  uint32_t rank_of(std::array<int, kNumAxes> coords) const;
  int node_of(uint32_t rank) const { return static_cast<int>(rank / static_cast<uint32_t>(gpus_per_node_)); }
  // Calls f(rank, coords) for every rank in ascending order, coords indexed tp, cp, dp, pp as
  // coords(rank) returns them; counted like an odometer rather than divided out of each rank
  // (tables over 16,384 ranks otherwise spend most of their time dividing).
  template <class F>
  void for_each_rank(F&& f) const {
    std::array<int, kNumAxes> c{};
    const uint32_t n = static_cast<uint32_t>(num_ranks_);
    for (uint32_t r = 0; r < n; ++r) {
      f(r, static_cast<const std::array<int, kNumAxes>&>(c));
      for (Axis a : order_) {   // innermost first: rank = sum of coords * strides
        if (++c[idx(a)] < size_[idx(a)]) break;
        c[idx(a)] = 0;
      }
    }
  }

 private:
  static constexpr int idx(Axis a) { return static_cast<int>(a); }
  std::array<Axis, kNumAxes> order_{Axis::kTp, Axis::kCp, Axis::kDp, Axis::kPp};
  std::array<int, kNumAxes> size_{1, 1, 1, 1};     // indexed by Axis
  std::array<int, kNumAxes> stride_{1, 1, 1, 1};   // indexed by Axis
  int num_ranks_ = 1;
  int gpus_per_node_ = 1;
};

// The instances are the sets of ranks that differ only in the coordinates of `axes` (every
// rank is a member of exactly one instance). Empty `axes`: one singleton instance per rank.
GroupTable make_group_table(const Placement& pl, std::initializer_list<Axis> axes,
                            std::string name);
// The instances of `key(rank, coords)` in [0, num_keys) (kNoDep: not a member), numbered in the
// order of their lowest rank, members ascending; O(ranks + num_keys). The builders above use it;
// the compiler's MoE groups key ranks by their expert-parallel coordinates.
template <class Key>
GroupTable make_keyed_group_table(const Placement& pl, std::string name, uint32_t num_keys, Key&& key) {
  const uint32_t n = static_cast<uint32_t>(pl.num_ranks());
  GroupTable t;
  t.name = std::move(name);
  t.instance_of_rank.assign(n, kNoDep);
  std::vector<uint32_t> remap(num_keys, kNoDep);   // key -> compact instance index
  std::vector<uint32_t> count;
  pl.for_each_rank([&](uint32_t r, const std::array<int, kNumAxes>& c) {
    const uint32_t k = key(r, c);
    if (k == kNoDep) return;
    SIM_CHECK(k < num_keys, "%s: key %u of %u", t.name.c_str(), k, num_keys);
    if (remap[k] == kNoDep) {   // ranks ascend: first seen = lowest member
      remap[k] = static_cast<uint32_t>(count.size());
      count.push_back(0);
    }
    t.instance_of_rank[r] = remap[k];
    ++count[remap[k]];
  });
  t.member_offsets.assign(count.size() + 1, 0);
  for (size_t i = 0; i < count.size(); ++i) t.member_offsets[i + 1] = t.member_offsets[i] + count[i];
  t.members.resize(t.member_offsets.back());
  std::vector<uint32_t> fill(t.member_offsets.begin(), t.member_offsets.end() - 1);
  for (uint32_t r = 0; r < n; ++r) {   // ascending ranks -> ascending members per instance
    const uint32_t inst = t.instance_of_rank[r];
    if (inst != kNoDep) t.members[fill[inst]++] = r;
  }
  return t;
}
// Like make_group_table, restricted to the ranks whose coordinate on `axis` is one of `values`
// (others get instance kNoDep). E.g. the tied-embedding group: axes {kPp}, axis kPp,
// values {0, pp-1}. Values out of range are ignored; duplicates are harmless.
GroupTable make_restricted_group_table(const Placement& pl, std::initializer_list<Axis> axes,
                                       Axis axis, const std::vector<int>& values,
                                       std::string name);
// peer_of_rank[r] = the rank with r's coordinates and pp + delta; -1 beyond the ends, unless
// `wrap` (pp taken modulo the pipeline size, as interleaved schedules need between the last
// and first stage).
PeerTable make_pp_peer_table(const Placement& pl, int delta, std::string name, bool wrap = false);

// Size, the most members on one node, and distinct nodes of one instance (node = rank /
// gpus_per_node). REQUIRES: instance < t.instances(), gpus_per_node >= 1.
GroupShape shape_of(const GroupTable& t, uint32_t instance, int gpus_per_node);
// The shape of the instance spanning the most nodes (ties: the fewest per_node, then the
// smallest instance index). For Megatron-style layouts all instances have the same shape.
// REQUIRES: t has at least one instance.
GroupShape worst_shape(const GroupTable& t, int gpus_per_node);

}  // namespace trainsim
