// File: topologies/placement.cpp
#include "topologies/placement.h"

#include <algorithm>
#include <numeric>
#include <sstream>

namespace trainsim {
namespace {

constexpr const char* kAxisNames[kNumAxes] = {"tp", "cp", "dp", "pp"};
constexpr const char* kOrderHint =
    "expected the four axes tp, cp, dp, pp, each once, separated by '-', innermost first "
    "(default \"tp-cp-dp-pp\", Megatron's order)";

bool parse_axis(const std::string& s, Axis* out) {
  for (int i = 0; i < kNumAxes; ++i) {
    if (s == kAxisNames[i]) {
      *out = static_cast<Axis>(i);
      return true;
    }
  }
  return false;
}

// Shared by the restricted and unrestricted builders. `keep(rank, coords)` selects members.
// Identity: `keep` accepts every rank (unrestricted tables), which allows the identity fast path.
template <bool Identity, typename Keep>
GroupTable build_groups(const Placement& pl, std::initializer_list<Axis> axes, std::string name,
                        Keep keep) {
  bool in_group[kNumAxes] = {false, false, false, false};
  for (Axis a : axes) in_group[static_cast<int>(a)] = true;
  // Instance key: mixed radix over the non-group axes, in placement order (innermost first).
  // This orders instances by their smallest member, since ranks use the same order.
  std::array<uint32_t, kNumAxes> key_stride{};
  uint32_t num_keys = 1;
  for (Axis a : pl.order()) {
    if (in_group[static_cast<int>(a)]) continue;
    key_stride[static_cast<int>(a)] = num_keys;
    num_keys *= static_cast<uint32_t>(pl.size(a));
  }
  const uint32_t n = static_cast<uint32_t>(pl.num_ranks());
  GroupTable t;
  t.name = std::move(name);
  if (Identity && num_keys == n) {
    // Every group axis has size 1: each rank is its own instance and the key is the rank
    // itself (the same strides), so the table is the identity (most tables of a tp=1, cp=1 job).
    t.instance_of_rank.resize(n);
    std::iota(t.instance_of_rank.begin(), t.instance_of_rank.end(), 0u);
    t.members = t.instance_of_rank;
    t.member_offsets.resize(n + 1);
    std::iota(t.member_offsets.begin(), t.member_offsets.end(), 0u);
    return t;
  }
  return make_keyed_group_table(pl, std::move(t.name), num_keys,
                                [&](uint32_t r, const std::array<int, kNumAxes>& c) {
                                  if (!keep(r, c)) return kNoDep;
                                  uint32_t key = 0;   // key_stride is 0 on the group's own axes
                                  for (int a = 0; a < kNumAxes; ++a) key += static_cast<uint32_t>(c[a]) * key_stride[a];
                                  return key;
                                });
}

}  // namespace

const char* to_string(Axis a) {
  int i = static_cast<int>(a);
  return i >= 0 && i < kNumAxes ? kAxisNames[i] : "?";
}

Result<Placement> Placement::make(const ParallelSpec& p, int gpus_per_node) {
  Status st;
  Placement pl;
  // Order: exactly the four axes, '-'-separated.
  std::vector<std::string> parts;
  {
    std::string cur;
    for (char c : p.order) {
      if (c == '-') {
        parts.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    parts.push_back(cur);
  }
  bool seen[kNumAxes] = {false, false, false, false};
  bool order_ok = parts.size() == kNumAxes;
  for (size_t i = 0; order_ok && i < parts.size(); ++i) {
    Axis a;
    if (!parse_axis(parts[i], &a) || seen[static_cast<int>(a)]) {
      order_ok = false;
      break;
    }
    seen[static_cast<int>(a)] = true;
    pl.order_[i] = a;
  }
  if (!order_ok) st.add(Error{"", "/parallel/order", p.order, kOrderHint});

  const int sizes[kNumAxes] = {p.tp, p.cp, p.dp, p.pp};
  for (int i = 0; i < kNumAxes; ++i) {
    if (sizes[i] < 1) {
      st.add(Error{"", std::string("/parallel/") + kAxisNames[i], std::to_string(sizes[i]),
                   "must be >= 1"});
    }
    pl.size_[i] = sizes[i];
  }
  if (gpus_per_node < 1) {
    st.add(Error{"", "/cluster/gpus_per_node", std::to_string(gpus_per_node), "must be >= 1"});
  }
  if (!st.ok()) return st;

  int64_t stride = 1;
  for (Axis a : pl.order_) {
    pl.stride_[idx(a)] = static_cast<int>(std::min<int64_t>(stride, INT32_MAX));
    stride *= pl.size_[idx(a)];
    if (stride > (int64_t{1} << 31)) break;
  }
  if (stride > (int64_t{1} << 31)) {
    return Status::error(Error{"", "/parallel", "",
                               "tp*cp*dp*pp exceeds 2^31 ranks; reduce the parallel sizes"});
  }
  pl.num_ranks_ = static_cast<int>(stride);
  pl.gpus_per_node_ = gpus_per_node;
  return pl;
}

std::string Placement::order_string() const {
  std::string s;
  for (Axis a : order_) {
    if (!s.empty()) s += '-';
    s += to_string(a);
  }
  return s;
}

std::array<int, kNumAxes> Placement::coords(uint32_t rank) const {
  SIM_CHECK(rank < static_cast<uint32_t>(num_ranks_), "coords(%u): %d ranks", rank, num_ranks_);
  std::array<int, kNumAxes> c{};
  for (int a = 0; a < kNumAxes; ++a) c[a] = coord(rank, static_cast<Axis>(a));
  return c;
}

uint32_t Placement::rank_of(std::array<int, kNumAxes> c) const {
  uint32_t r = 0;
  for (int a = 0; a < kNumAxes; ++a) {
    SIM_CHECK(c[a] >= 0 && c[a] < size_[a], "rank_of: %s coordinate %d out of [0, %d)",
              kAxisNames[a], c[a], size_[a]);
    r += static_cast<uint32_t>(c[a]) * static_cast<uint32_t>(stride_[a]);
  }
  return r;
}

GroupTable make_group_table(const Placement& pl, std::initializer_list<Axis> axes,
                            std::string name) {
  return build_groups<true>(pl, axes, std::move(name), [](uint32_t, const std::array<int, kNumAxes>&) { return true; });
}

GroupTable make_restricted_group_table(const Placement& pl, std::initializer_list<Axis> axes,
                                       Axis axis, const std::vector<int>& values,
                                       std::string name) {
  std::vector<char> allowed(static_cast<size_t>(pl.size(axis)), 0);
  for (int v : values) {
    if (v >= 0 && v < pl.size(axis)) allowed[static_cast<size_t>(v)] = 1;
  }
  return build_groups<false>(pl, axes, std::move(name), [&](uint32_t, const std::array<int, kNumAxes>& c) {
    return allowed[static_cast<size_t>(c[static_cast<int>(axis)])] != 0;
  });
}

PeerTable make_pp_peer_table(const Placement& pl, int delta, std::string name, bool wrap) {
  PeerTable t;
  t.name = std::move(name);
  const uint32_t n = static_cast<uint32_t>(pl.num_ranks());
  const int pp = pl.size(Axis::kPp);
  const int64_t stride = pl.stride(Axis::kPp);
  t.peer_of_rank.assign(n, -1);
  pl.for_each_rank([&](uint32_t r, const std::array<int, kNumAxes>& c) {
    const int s = c[static_cast<int>(Axis::kPp)];
    int target = s + delta;
    if (wrap) {
      target = ((target % pp) + pp) % pp;
    } else if (target < 0 || target >= pp) {
      return;
    }
    t.peer_of_rank[r] = static_cast<int32_t>(static_cast<int64_t>(r) + (target - s) * stride);
  });
  return t;
}

namespace {

// shape_of without its checks. node = member / gpn, as a shift when gpn is a power of two
// (worst_shape visits every rank of every group: a division each was most of its time).
inline GroupShape shape_in(const GroupTable& t, uint32_t instance, uint32_t gpn, bool pow2, int shift) {
  GroupShape s;
  s.size = static_cast<int>(t.size_of(instance));
  s.per_node = 0;
  s.nodes = 0;
  uint32_t prev_node = 0;
  int run = 0;
  // Members are ascending, so members of one node are contiguous.
  for (uint32_t i = t.member_offsets[instance]; i < t.member_offsets[instance + 1]; ++i) {
    uint32_t node = pow2 ? t.members[i] >> shift : t.members[i] / gpn;
    if (run == 0 || node != prev_node) {
      ++s.nodes;
      run = 0;
      prev_node = node;
    }
    ++run;
    s.per_node = std::max(s.per_node, run);
  }
  if (s.size == 0) s = GroupShape{0, 0, 0};
  return s;
}

}  // namespace

GroupShape shape_of(const GroupTable& t, uint32_t instance, int gpus_per_node) {
  SIM_CHECK(instance < t.instances(), "shape_of: instance %u of %u in %s", instance,
            t.instances(), t.name.c_str());
  SIM_CHECK(gpus_per_node >= 1, "shape_of: gpus_per_node=%d", gpus_per_node);
  const uint32_t gpn = static_cast<uint32_t>(gpus_per_node);
  return shape_in(t, instance, gpn, (gpn & (gpn - 1)) == 0, __builtin_ctz(gpn));
}

GroupShape worst_shape(const GroupTable& t, int gpus_per_node) {
  SIM_CHECK(t.instances() >= 1, "worst_shape: %s has no instances", t.name.c_str());
  SIM_CHECK(gpus_per_node >= 1, "worst_shape: gpus_per_node=%d", gpus_per_node);
  const uint32_t gpn = static_cast<uint32_t>(gpus_per_node);
  const bool pow2 = (gpn & (gpn - 1)) == 0;
  const int shift = __builtin_ctz(gpn);
  GroupShape worst = shape_in(t, 0, gpn, pow2, shift);
  for (uint32_t i = 1; i < t.instances(); ++i) {
    GroupShape s = shape_in(t, i, gpn, pow2, shift);
    if (s.nodes > worst.nodes || (s.nodes == worst.nodes && s.per_node < worst.per_node)) worst = s;
  }
  return worst;
}

}  // namespace trainsim
