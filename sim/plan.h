// File: sim/plan.h
// The plan: a program per class of identical ranks; the only thing the simulator and the real
// executor share (ARCHITECTURE.md). A program is a list of tasks; each task runs on one stream
// of its rank. Within a stream tasks run in list order, one at a time. A task may also wait
// for up to two earlier tasks of the same program (on any stream). Collectives rendezvous with
// the other members of their group instance; Send/Recv pass a message to a peer rank.
//
// Invariants (checked by Plan::finalize()):
//   - every dep index is < the task's own index (no cycles);
//   - every rank has a program; collectives name a group the rank belongs to;
//   - sends and receives of a channel pair up (same count on both sides).
// The plan knows nothing about GPUs: op descriptors carry shapes, FLOPs and bytes, and a cost
// binding pass (calibrate/) fills Task::dur before replay.
// Thread-safety: immutable after finalize(); replays may share one plan.
#pragma once
#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "sim/dtype.h"
#include "sim/status.h"
#include "sim/units.h"

namespace trainsim {

inline constexpr int kMaxStreams = 10;
inline constexpr int kMaxChannels = 4;         // Send/Recv message channels per rank
// Stream roles used by the compiler (the engine only needs the indices).
inline constexpr uint8_t kStreamCompute = 0;   // kernels and blocking (TP) collectives
inline constexpr uint8_t kStreamDp = 1;        // gradient reduction / ZeRO reduce-scatter
inline constexpr uint8_t kStreamP2p = 2;       // pipeline sends
inline constexpr uint8_t kStreamGather = 3;    // ZeRO-3 parameter all-gather (prefetch); SP re-gathers of a weight gradient's input
inline constexpr uint8_t kStreamCp = 4;        // ring-attention KV passing (context parallelism)
inline constexpr uint8_t kStreamOffloadOut = 5;  // activation copies to host (device -> host)
inline constexpr uint8_t kStreamOffloadIn = 6;   // activation copies back (host -> device)
inline constexpr uint8_t kStreamDpReplica = 7;   // HSDP replica all-reduce (PyTorch FSDP2's all-reduce stream)
inline constexpr uint8_t kStreamEp = 8;          // MoE dispatch/combine all-to-all beside compute (parallel.ep_overlap)
inline constexpr uint8_t kStreamTp = 9;          // TP ring steps beside their GEMMs (parallel.tp_overlap)
inline constexpr uint32_t kNoDep = 0xffffffffu;

enum class TaskKind : uint8_t { kCompute, kCollective, kSend, kRecv };
enum class OpClass : uint8_t { kGemm, kAttention, kElementwise, kNorm, kEmbedding, kLoss,
                               kOptimizer, kCollective, kP2p, kOffload };
// kSendRecv: a ring shift over the group: every member sends `bytes` to the next member and
// receives as much from the previous one, all at once (ring attention's KV passing; priced as
// one p2p message over the group's slowest span, like nccl-tests sendrecv_perf).
enum class CollKind : uint8_t { kAllReduce, kAllGather, kReduceScatter, kAllToAll, kBroadcast, kSendRecv };
// A deduplicated all-to-all (collectives.h dedup_alltoall_time): every item of a member's send
// buffer goes to `fanout` distinct destination slots out of `slots` spread evenly over the
// group's nodes; an item crosses to each remote node it needs once and is forwarded inside the
// node (DeepEP-style MoE dispatch: items = tokens, slots = experts, fanout = top-k). node_limit
// M > 0: the slots of each item lie on M nodes chosen at random (DeepSeek-V3 node-limited
// routing). fanout == 0: a plain (direct) all-to-all.
struct A2aDedup {
  int32_t fanout = 0;
  int32_t slots = 0;
  int32_t node_limit = 0;
  friend bool operator==(const A2aDedup&, const A2aDedup&) = default;
};

// What a task's time counts as in the breakdown.
enum class Category : uint8_t { kCompute, kRecompute, kOptimizer, kTpComm, kDpComm, kPpComm,
                                kCpComm, kEpComm, kOffload, kCount };
enum class CostSource : uint8_t { kMeasured, kInterpolated, kFitted, kDefault };

const char* to_string(OpClass);
const char* to_string(CollKind);
const char* to_string(Category);
const char* to_string(CostSource);
// The sources joined with "+" in enum order ("measured+default"); `if_empty` for none.
std::string join_sources(const std::set<CostSource>& sources, const char* if_empty);
inline bool is_comm(Category c) {
  return c == Category::kTpComm || c == Category::kDpComm || c == Category::kPpComm || c == Category::kCpComm ||
         c == Category::kEpComm || c == Category::kOffload;
}

// What an op computes, shared by every task that runs it (dedup by Plan::intern_op).
struct OpDesc {
  std::string name;           // class-level name, e.g. "mlp.fc1.fwd" (no layer index)
  OpClass cls = OpClass::kGemm;
  DType dtype = DType::kBF16;
  // GEMM: (m x k) * (k x n), `batch` independent products.
  int64_t m = 0, n = 0, k = 0, batch = 1;
  // Attention (flash-style): batch*heads problems of seq_q x seq_kv with head_dim.
  int64_t attn_batch = 0, heads = 0, kv_heads = 0, seq_q = 0, seq_kv = 0, head_dim = 0;
  bool causal = false;
  bool backward = false;
  Flops flops;                // arithmetic work of one execution (hardware FLOPs)
  Bytes bytes;                // HBM traffic (compute ops) or buffer size per rank (comm ops,
                              // NCCL convention: all-gather output, reduce-scatter input)
  CollKind coll = CollKind::kAllReduce;
  uint8_t group = 0;          // comm ops: index into Plan::groups (collective) or Plan::peers (p2p)
  A2aDedup dedup;             // all-to-all only: fanout > 0 prices it deduplicated across nodes
  uint64_t hash() const;      // of every field; equal ops hash equal
  bool same_as(const OpDesc& o) const;  // field-by-field identity (interning)
};

struct Task {
  Time dur;                   // filled by cost binding (comm: transfer time; compute: kernel time)
  int64_t mem_alloc = 0;      // bytes allocated when the task starts
  int64_t mem_free = 0;       // bytes released when the task ends
  uint32_t op = 0;            // index into Plan::ops
  uint32_t dep[2] = {kNoDep, kNoDep};
  uint16_t layer = 0;         // for traces: global layer index (0xffff = none)
  uint16_t micro = 0;         // for traces: micro-batch index
  TaskKind kind = TaskKind::kCompute;
  uint8_t stream = kStreamCompute;
  Category category = Category::kCompute;
  uint8_t channel = 0;        // Send/Recv: message channel (0 = forward activations, 1 = backward grads); < kMaxChannels
  uint8_t group = 0;          // Collective: Plan::groups index; Send/Recv: Plan::peers index
  // 1: mem_alloc is gradient memory that a PyTorch loop allocates during the backward (held to
  // the step's end); the replay reports the part of its peak that is gradients (RankStats).
  uint8_t mem_grads = 0;
};
static_assert(sizeof(Task) == 48, "Task: the replay reads one per event; keep it in 48 bytes");

struct MemoryStatic {         // bytes held for the whole step on a rank
  Bytes params, grads, optimizer, workspace;
  Bytes total() const { return params + grads + optimizer + workspace; }
};

struct Program {
  std::string name;           // e.g. "stage 3"
  std::vector<Task> tasks;    // in issue order
  MemoryStatic mem;
  Flops model_flops;          // per step on one rank of this class, without recomputation
  Flops hardware_flops;       // per step, with recomputation
  // Derived by Plan::finalize():
  std::array<std::vector<uint32_t>, kMaxStreams> stream_tasks;
  std::vector<uint32_t> pos_in_stream;
  std::array<uint32_t, kMaxChannels> recvs_on_channel{};   // receives the program posts per channel
  // A bit per task (task i: word i / 64, bit i % 64), set where a task on another stream
  // depends on it (the replay's compute chains stop there).
  std::vector<uint64_t> cross_stream_deps;
  // Whether compute that collectives slow runs on a stream other than the compute stream (a
  // compute task not of category offload): then a collective's time matters to it.
  bool compute_off_stream = false;
};

// A kind of group (tp, dp, ...): which instance each rank belongs to and the members of each.
struct GroupTable {
  std::string name;
  std::vector<uint32_t> instance_of_rank;   // size num_ranks; kNoDep if not a member
  std::vector<uint32_t> member_offsets;     // CSR over instances; size instances+1
  std::vector<uint32_t> members;            // ranks, ascending within an instance
  // Its collectives move data on copy engines and hold no SMs: compute beside them is not
  // slowed (ReplayOptions::comm_sm_share). The TP overlap's ring steps (parallel.tp_overlap).
  bool copy_engine = false;
  uint32_t instances() const { return static_cast<uint32_t>(member_offsets.size()) - 1; }
  uint32_t size_of(uint32_t inst) const { return member_offsets[inst + 1] - member_offsets[inst]; }
};

// A kind of point-to-point partner (pp_next, pp_prev): the peer rank of each rank, or -1.
struct PeerTable {
  std::string name;
  std::vector<int32_t> peer_of_rank;
};

struct Plan {
  int num_ranks = 0;
  std::vector<OpDesc> ops;
  std::vector<Program> programs;
  std::vector<uint32_t> program_of_rank;   // size num_ranks
  std::vector<GroupTable> groups;
  std::vector<PeerTable> peers;
  // Ranks simulated by fast mode: one per class of identical ranks whose peers are also
  // representatives (for a dense job: tp=0, cp=0, dp=0 of every pipeline stage).
  std::vector<uint32_t> representatives;

  uint32_t intern_op(const OpDesc& op);    // returns the index of an identical op or appends
  uint32_t intern_op(OpDesc&& op);         // the same, moved in when it is appended
  // Checks the invariants above and derives per-program stream tables.
  Status finalize();

 private:
  template <class Op>
  uint32_t intern(Op&& op);
  // intern_op's index: open addressing with linear probing over the ops' hashes, at most half
  // full (op_slot_ kEmptySlot = free). Ops sharing a hash sit in one probe run.
  static constexpr uint32_t kEmptySlot = 0xffffffffu;
  std::vector<uint64_t> op_hash_;
  std::vector<uint32_t> op_slot_;
  void grow_op_index();
};

}  // namespace trainsim
