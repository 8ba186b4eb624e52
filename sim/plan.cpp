#include "sim/plan.h"

#include "sim/prefault.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

namespace trainsim {

const char* to_string(OpClass c) {
  switch (c) {
    case OpClass::kGemm: return "gemm";
    case OpClass::kAttention: return "attention";
    case OpClass::kElementwise: return "elementwise";
    case OpClass::kNorm: return "norm";
    case OpClass::kEmbedding: return "embedding";
    case OpClass::kLoss: return "loss";
    case OpClass::kOptimizer: return "optimizer";
    case OpClass::kCollective: return "collective";
    case OpClass::kP2p: return "p2p";
    case OpClass::kOffload: return "offload";
  }
  return "?";
}

const char* to_string(CollKind c) {
  switch (c) {
    case CollKind::kAllReduce: return "all-reduce";
    case CollKind::kAllGather: return "all-gather";
    case CollKind::kReduceScatter: return "reduce-scatter";
    case CollKind::kAllToAll: return "all-to-all";
    case CollKind::kBroadcast: return "broadcast";
    case CollKind::kSendRecv: return "send-recv";
  }
  return "?";
}

const char* to_string(Category c) {
  switch (c) {
    case Category::kCompute: return "compute";
    case Category::kRecompute: return "recompute";
    case Category::kOptimizer: return "optimizer";
    case Category::kTpComm: return "tp-comm";
    case Category::kDpComm: return "dp-comm";
    case Category::kPpComm: return "pp-comm";
    case Category::kCpComm: return "cp-comm";
    case Category::kEpComm: return "ep-comm";
    case Category::kOffload: return "offload";
    case Category::kCount: break;
  }
  return "?";
}

const char* to_string(CostSource s) {
  switch (s) {
    case CostSource::kMeasured: return "measured";
    case CostSource::kInterpolated: return "interpolated";
    case CostSource::kFitted: return "fitted";
    case CostSource::kDefault: return "default";
  }
  return "?";
}

std::string join_sources(const std::set<CostSource>& sources, const char* if_empty) {
  std::string out;
  for (CostSource c : sources) out += (out.empty() ? "" : "+") + std::string(to_string(c));
  return out.empty() ? if_empty : out;
}

namespace {
inline void mix(uint64_t& h, uint64_t v) {
  h = (h ^ v) * 0x100000001B3ull;
  h ^= h >> 32;
}
}  // namespace

uint64_t OpDesc::hash() const {
  uint64_t h = 0xcbf29ce484222325ull ^ name.size();
  for (size_t i = 0; i < name.size(); i += 8) {  // eight bytes a step
    uint64_t w = 0;
    std::memcpy(&w, name.data() + i, std::min<size_t>(8, name.size() - i));
    mix(h, w);
  }
  for (int64_t v : {m, n, k, batch, attn_batch, heads, kv_heads, seq_q, seq_kv, head_dim, bytes.count()})
    mix(h, static_cast<uint64_t>(v));
  uint64_t fl;
  static_assert(sizeof(fl) == sizeof(flops.v));
  std::memcpy(&fl, &flops.v, sizeof fl);
  mix(h, fl);
  mix(h, (static_cast<uint64_t>(cls) << 32) | (static_cast<uint64_t>(dtype) << 24) |
             (static_cast<uint64_t>(coll) << 16) | (static_cast<uint64_t>(group) << 8) |
             (causal ? 2u : 0u) | (backward ? 1u : 0u));
  if (dedup.fanout > 0) {   // mixed only when set, so plain ops hash as before
    mix(h, static_cast<uint64_t>(dedup.fanout));
    mix(h, (static_cast<uint64_t>(static_cast<uint32_t>(dedup.slots)) << 32) |
               static_cast<uint32_t>(dedup.node_limit));
  }
  return h;
}

bool OpDesc::same_as(const OpDesc& o) const {
  return name == o.name && cls == o.cls && dtype == o.dtype && m == o.m && n == o.n && k == o.k &&
         batch == o.batch && attn_batch == o.attn_batch && heads == o.heads && kv_heads == o.kv_heads &&
         seq_q == o.seq_q && seq_kv == o.seq_kv && head_dim == o.head_dim && causal == o.causal &&
         backward == o.backward && flops.v == o.flops.v && bytes == o.bytes && coll == o.coll &&
         group == o.group && dedup == o.dedup;
}

void Plan::grow_op_index() {
  const size_t cap = std::max<size_t>(64, op_slot_.size() * 2);
  std::vector<uint64_t> hashes(cap, 0);
  std::vector<uint32_t> slots(cap, kEmptySlot);
  const size_t mask = cap - 1;
  for (size_t j = 0; j < op_slot_.size(); ++j) {
    if (op_slot_[j] == kEmptySlot) continue;
    size_t i = op_hash_[j] & mask;
    while (slots[i] != kEmptySlot) i = (i + 1) & mask;
    hashes[i] = op_hash_[j];
    slots[i] = op_slot_[j];
  }
  op_hash_.swap(hashes);
  op_slot_.swap(slots);
}

// Both overloads: an identical op's index, else `op` appended (copied, or moved in).
template <class Op>
uint32_t Plan::intern(Op&& op) {
  if (2 * (ops.size() + 1) > op_slot_.size()) grow_op_index();
  const uint64_t h = op.hash();
  const size_t mask = op_slot_.size() - 1;
  size_t i = h & mask;
  for (; op_slot_[i] != kEmptySlot; i = (i + 1) & mask)
    if (op_hash_[i] == h && ops[op_slot_[i]].same_as(op)) return op_slot_[i];
  const uint32_t id = static_cast<uint32_t>(ops.size());
  ops.push_back(std::forward<Op>(op));
  op_hash_[i] = h;
  op_slot_[i] = id;
  return id;
}

uint32_t Plan::intern_op(const OpDesc& op) { return intern(op); }
uint32_t Plan::intern_op(OpDesc&& op) { return intern(std::move(op)); }

Status Plan::finalize() {
  Status st;
  if (num_ranks <= 0) st.add(Error{"", "", "", "plan has no ranks"});
  if (program_of_rank.size() != static_cast<size_t>(num_ranks))
    st.add(Error{"", "", "", "plan: program_of_rank has " + std::to_string(program_of_rank.size()) +
                                 " entries for " + std::to_string(num_ranks) + " ranks"});
  if (!st.ok()) return st;
  for (uint32_t p : program_of_rank)
    if (p >= programs.size()) return Status::error("plan: a rank names a program that does not exist");
  for (auto& g : groups)
    if (g.instance_of_rank.size() != static_cast<size_t>(num_ranks))
      return Status::error("plan: group table '" + g.name + "' does not cover every rank");
  for (auto& pr : peers)
    if (pr.peer_of_rank.size() != static_cast<size_t>(num_ranks))
      return Status::error("plan: peer table '" + pr.name + "' does not cover every rank");

  // Per program: one pass checks every task (the first bad one is reported), numbers each
  // task within its stream (pos_in_stream) and notes the groups its collectives use; a second
  // writes the stream tables, exactly sized, from a byte per task kept by the first
  // (programs run to hundreds of thousands of tasks).
  std::vector<std::vector<uint32_t>> used(programs.size());
  std::vector<uint8_t> seen(groups.size());
  std::vector<uint8_t> stream_of;
  const size_t nops = ops.size(), ngroups = groups.size(), npeers = peers.size();
  for (size_t pi = 0; pi < programs.size(); ++pi) {
    Program& prog = programs[pi];
    const uint32_t n = static_cast<uint32_t>(prog.tasks.size());
    const Task* tasks = prog.tasks.data();
    std::array<uint32_t, kMaxStreams> count{};
    std::array<uint32_t, kMaxChannels> recvs{};
    uint32_t compute_count = 0;
    std::fill(seen.begin(), seen.end(), 0);
    stream_of.resize(n);
    // Fresh pages are mapped in one call each (sim/prefault.h): a page fault per 4 KiB costs
    // more than filling the tables.
    prog.pos_in_stream.clear();
    reserve_prefaulted(prog.pos_in_stream, n);
    prog.pos_in_stream.resize(n);
    uint32_t* pos = prog.pos_in_stream.data();
    prog.cross_stream_deps.assign(n / 64 + 1, 0);
    uint64_t* xdep = prog.cross_stream_deps.data();
    bool off_stream = false;
    for (uint32_t i = 0; i < n; ++i) {
      const Task& t = tasks[i];
      if (t.stream >= kMaxStreams)
        return Status::error("plan: program '" + prog.name + "' task " + std::to_string(i) + " uses stream " +
                             std::to_string(t.stream));
      for (uint32_t d : t.dep)
        if (d != kNoDep) {
          if (d >= i)
            return Status::error("plan: program '" + prog.name + "' task " + std::to_string(i) +
                                 " depends on a later task " + std::to_string(d));
          if (stream_of[d] != t.stream) xdep[d >> 6] |= uint64_t{1} << (d & 63);
        }
      if (t.op >= nops)
        return Status::error("plan: program '" + prog.name + "' task " + std::to_string(i) + " names no op");
      if (t.kind == TaskKind::kCollective) {
        if (t.group >= ngroups)
          return Status::error("plan: collective in '" + prog.name + "' names group " + std::to_string(t.group));
        if (!seen[t.group]) {
          seen[t.group] = 1;
          used[pi].push_back(t.group);
        }
      }
      if (t.kind == TaskKind::kSend || t.kind == TaskKind::kRecv) {
        if (t.group >= npeers)
          return Status::error("plan: p2p in '" + prog.name + "' names peer table " + std::to_string(t.group));
        if (t.channel >= kMaxChannels)
          return Status::error("plan: p2p in '" + prog.name + "' task " + std::to_string(i) + " uses channel " +
                               std::to_string(t.channel) + " (at most " + std::to_string(kMaxChannels) + ")");
        if (t.kind == TaskKind::kRecv) ++recvs[t.channel];
      }
      // Most tasks are on the compute stream: its counter lives in a register, so the tasks do
      // not wait on each other's increment of count[] in memory.
      off_stream |= t.stream != kStreamCompute && t.kind == TaskKind::kCompute && t.category != Category::kOffload;
      pos[i] = t.stream == kStreamCompute ? compute_count++ : count[t.stream]++;
      stream_of[i] = t.stream;
    }
    count[kStreamCompute] = compute_count;
    prog.compute_off_stream = off_stream;
    prog.recvs_on_channel = recvs;
    std::array<uint32_t*, kMaxStreams> out{};
    for (int s = 0; s < kMaxStreams; ++s) {
      prog.stream_tasks[s].clear();
      reserve_prefaulted(prog.stream_tasks[s], count[s]);
      prog.stream_tasks[s].resize(count[s]);
      out[s] = prog.stream_tasks[s].data();
    }
    for (uint32_t i = 0; i < n; ++i) out[stream_of[i]][pos[i]] = i;
  }
  // Every rank a collective runs on must be a member of the named group.
  for (int r = 0; r < num_ranks; ++r)
    for (uint32_t g : used[program_of_rank[r]])
      if (groups[g].instance_of_rank[r] == kNoDep)
        return Status::error("plan: rank " + std::to_string(r) + " runs a collective of group '" +
                             groups[g].name + "' but is not a member");
  return st;
}

}  // namespace trainsim
