// File: calibrate/cuda/plan_file.h
// Reads an exported plan (calibrate/FORMAT.md section 4, written by `trainsim run ...
// --export-plan FILE`) for trainsim_executor, with json_lite.h, and checks it: op indices in
// range, deps earlier than their task, streams 0..8, known kinds, group and peer indices in
// range; every problem named by its JSON path, all reported at once. Also maps a plan op to the
// calibrator's job (job_file.h) that runs it, and says what the executor does with each task.
// Header-only (no CUDA) so the self-test and the host unit tests use it without a GPU.
// Thread-safety: pure functions.
#pragma once
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "job_file.h"
#include "json_lite.h"

namespace tscal {

struct PlanOp {
  std::string name, cls, dtype, coll;
  int64_t m = 0, n = 0, k = 0, batch = 1;
  int64_t attn_batch = 0, heads = 0, kv_heads = 0, seq_q = 0, seq_kv = 0, head_dim = 0;
  bool causal = false, backward = false;
  double flops = 0;
  int64_t bytes = 0;
  int group = 0;
};

struct PlanTask {
  int op = 0;
  std::string kind;          // compute collective send recv
  int stream = 0;
  std::vector<int> deps;     // task indices of the same rank, each < this task's index
  std::string category;
  int layer = -1, micro = 0, group = 0, channel = 0;
  double dur_us = 0;         // the simulated duration (Task::dur)
};

struct PlanGroupInstance {
  int instance = 0;
  std::vector<int> members;
};

struct PlanGroup {
  std::string name;
  std::vector<PlanGroupInstance> instances;
  const PlanGroupInstance* find(int inst) const {
    for (const auto& i : instances)
      if (i.instance == inst) return &i;
    return nullptr;
  }
};

struct PlanRank {
  int rank = 0, program = 0;
  std::string program_name;
  std::vector<int> group_instances;  // per group kind; -1 = not a member
  std::vector<int> peer_ranks;       // per peer table; -1 = none
  std::vector<PlanTask> tasks;
};

struct PlanFile {
  int64_t version = 0;
  std::string scenario, costs;
  double predicted_step_us = -1;
  int64_t num_ranks = 0;
  std::vector<PlanOp> ops;
  std::vector<PlanGroup> groups;
  std::vector<std::string> peers;
  std::vector<PlanRank> ranks;
  const PlanRank* find_rank(int r) const {
    for (const auto& x : ranks)
      if (x.rank == r) return &x;
    return nullptr;
  }
};

inline constexpr int kPlanStreams = 10;

namespace plan_detail {

inline std::string str_of(detail::Ctx& c, const JsonValue& o, const std::string& path, const char* key) {
  const JsonValue* v = o.find(key);
  if (!v || v->type != JsonValue::Type::kString) {
    c.err(path + "/" + key, v ? std::string("is ") + v->type_name() + "; write a string" : "missing; write a string");
    return "";
  }
  return v->str;
}

inline int64_t int_of(detail::Ctx& c, const JsonValue& o, const std::string& path, const char* key, int64_t min_value) {
  int64_t x = 0;
  detail::get_int(c, o, path, key, &x, min_value);
  return x;
}

inline double num_of(detail::Ctx& c, const JsonValue& o, const std::string& path, const char* key) {
  const JsonValue* v = o.find(key);
  if (!v || v->type != JsonValue::Type::kNumber) {
    c.err(path + "/" + key, v ? std::string("is ") + v->type_name() + "; write a number" : "missing; write a number");
    return 0;
  }
  return v->num;
}

inline std::vector<int> ints_of(detail::Ctx& c, const JsonValue& o, const std::string& path, const char* key,
                                int64_t min_value) {
  std::vector<int> out;
  const JsonValue* v = o.find(key);
  if (!v || v->type != JsonValue::Type::kArray) {
    c.err(path + "/" + key, "missing or not an array; write an array of integers");
    return out;
  }
  for (size_t i = 0; i < v->arr.size(); ++i) {
    const JsonValue& e = v->arr[i];
    if (e.type != JsonValue::Type::kNumber || !e.is_integer || e.integer < min_value) {
      c.err(path + "/" + key + "/" + std::to_string(i), "write an integer >= " + std::to_string(min_value));
      continue;
    }
    out.push_back(static_cast<int>(e.integer));
  }
  return out;
}

inline const JsonValue* array_of(detail::Ctx& c, const JsonValue& o, const std::string& path, const char* key) {
  const JsonValue* v = o.find(key);
  if (!v || v->type != JsonValue::Type::kArray) {
    c.err(path + "/" + key, "missing or not an array");
    return nullptr;
  }
  return v;
}

}  // namespace plan_detail

// Parses the exported plan in `text` (read from `file`, for messages). Unknown keys are
// allowed (the format may grow); missing or mistyped ones are errors.
inline bool parse_plan(const std::string& text, const std::string& file, PlanFile* out,
                       std::vector<std::string>* errors) {
  using namespace plan_detail;
  detail::Ctx c{file, errors};
  const size_t before = errors->size();
  JsonValue root;
  std::string perr;
  JsonParser p(text);
  if (!p.parse(&root, &perr)) {
    errors->push_back("error: " + file + ": " + perr);
    return false;
  }
  if (root.type != JsonValue::Type::kObject) {
    c.err("/", std::string("top level is ") + root.type_name() + "; an exported plan is an object");
    return false;
  }
  const JsonValue* fmt = root.find("format");
  if (!fmt || fmt->type != JsonValue::Type::kString || fmt->str != "trainsim plan export") {
    c.err("/format", "not \"trainsim plan export\"; write the file with `trainsim run SCENARIO --export-plan FILE`");
    return false;
  }
  out->version = int_of(c, root, "", "version", 1);
  if (out->version != 1) c.err("/version", "= " + std::to_string(out->version) + "; this executor reads version 1");
  out->scenario = str_of(c, root, "", "scenario");
  out->costs = str_of(c, root, "", "costs");
  if (root.find("predicted_step_us")) out->predicted_step_us = num_of(c, root, "", "predicted_step_us");
  out->num_ranks = int_of(c, root, "", "num_ranks", 1);

  if (const JsonValue* ops = array_of(c, root, "", "ops")) {
    for (size_t i = 0; i < ops->arr.size(); ++i) {
      const JsonValue& o = ops->arr[i];
      const std::string path = "/ops/" + std::to_string(i);
      PlanOp op;
      if (o.type != JsonValue::Type::kObject) { c.err(path, "must be an object"); out->ops.push_back(op); continue; }
      op.name = str_of(c, o, path, "name");
      op.cls = str_of(c, o, path, "class");
      op.dtype = str_of(c, o, path, "dtype");
      op.coll = str_of(c, o, path, "coll");
      op.m = int_of(c, o, path, "m", 0);
      op.n = int_of(c, o, path, "n", 0);
      op.k = int_of(c, o, path, "k", 0);
      op.batch = int_of(c, o, path, "batch", 0);
      op.attn_batch = int_of(c, o, path, "attn_batch", 0);
      op.heads = int_of(c, o, path, "heads", 0);
      op.kv_heads = int_of(c, o, path, "kv_heads", 0);
      op.seq_q = int_of(c, o, path, "seq_q", 0);
      op.seq_kv = int_of(c, o, path, "seq_kv", 0);
      op.head_dim = int_of(c, o, path, "head_dim", 0);
      detail::get_bool(c, o, path, "causal", &op.causal);
      detail::get_bool(c, o, path, "backward", &op.backward);
      op.flops = num_of(c, o, path, "flops");
      op.bytes = int_of(c, o, path, "bytes", 0);
      op.group = static_cast<int>(int_of(c, o, path, "group", 0));
      out->ops.push_back(op);
    }
  }
  if (const JsonValue* gs = array_of(c, root, "", "groups")) {
    for (size_t g = 0; g < gs->arr.size(); ++g) {
      const JsonValue& o = gs->arr[g];
      const std::string path = "/groups/" + std::to_string(g);
      PlanGroup pg;
      if (o.type == JsonValue::Type::kObject) {
        pg.name = str_of(c, o, path, "name");
        if (const JsonValue* ins = array_of(c, o, path, "instances")) {
          for (size_t i = 0; i < ins->arr.size(); ++i) {
            const std::string ip = path + "/instances/" + std::to_string(i);
            if (ins->arr[i].type != JsonValue::Type::kObject) { c.err(ip, "must be an object"); continue; }
            PlanGroupInstance gi;
            gi.instance = static_cast<int>(int_of(c, ins->arr[i], ip, "instance", 0));
            gi.members = ints_of(c, ins->arr[i], ip, "members", 0);
            pg.instances.push_back(gi);
          }
        }
      } else {
        c.err(path, "must be an object");
      }
      out->groups.push_back(pg);
    }
  }
  if (const JsonValue* ps = array_of(c, root, "", "peers")) {
    for (size_t i = 0; i < ps->arr.size(); ++i) {
      const std::string path = "/peers/" + std::to_string(i);
      if (ps->arr[i].type != JsonValue::Type::kObject) { c.err(path, "must be an object"); continue; }
      out->peers.push_back(str_of(c, ps->arr[i], path, "name"));
    }
  }
  if (const JsonValue* rs = array_of(c, root, "", "ranks")) {
    for (size_t ri = 0; ri < rs->arr.size(); ++ri) {
      const JsonValue& o = rs->arr[ri];
      const std::string path = "/ranks/" + std::to_string(ri);
      if (o.type != JsonValue::Type::kObject) { c.err(path, "must be an object"); continue; }
      PlanRank pr;
      pr.rank = static_cast<int>(int_of(c, o, path, "rank", 0));
      pr.program = static_cast<int>(int_of(c, o, path, "program", 0));
      pr.program_name = str_of(c, o, path, "program_name");
      pr.group_instances = ints_of(c, o, path, "group_instances", -1);
      pr.peer_ranks = ints_of(c, o, path, "peer_ranks", -1);
      if (pr.group_instances.size() != out->groups.size())
        c.err(path + "/group_instances", "has " + std::to_string(pr.group_instances.size()) + " entries; /groups has " +
                                             std::to_string(out->groups.size()));
      if (pr.peer_ranks.size() != out->peers.size())
        c.err(path + "/peer_ranks", "has " + std::to_string(pr.peer_ranks.size()) + " entries; /peers has " +
                                        std::to_string(out->peers.size()));
      if (const JsonValue* ts = array_of(c, o, path, "tasks")) {
        pr.tasks.reserve(ts->arr.size());
        for (size_t ti = 0; ti < ts->arr.size(); ++ti) {
          const JsonValue& t = ts->arr[ti];
          const std::string tp = path + "/tasks/" + std::to_string(ti);
          if (t.type != JsonValue::Type::kObject) { c.err(tp, "must be an object"); continue; }
          PlanTask pt;
          pt.op = static_cast<int>(int_of(c, t, tp, "op", 0));
          if (pt.op >= static_cast<int>(out->ops.size()))
            c.err(tp + "/op", "= " + std::to_string(pt.op) + "; /ops has " + std::to_string(out->ops.size()) + " entries");
          pt.kind = str_of(c, t, tp, "kind");
          if (pt.kind != "compute" && pt.kind != "collective" && pt.kind != "send" && pt.kind != "recv")
            c.err(tp + "/kind", "= \"" + pt.kind + "\"; one of \"compute\", \"collective\", \"send\", \"recv\"");
          pt.stream = static_cast<int>(int_of(c, t, tp, "stream", 0));
          if (pt.stream >= kPlanStreams) c.err(tp + "/stream", "= " + std::to_string(pt.stream) + "; streams are 0..9");
          pt.deps = ints_of(c, t, tp, "deps", 0);
          for (int d : pt.deps)
            if (d >= static_cast<int>(ti))
              c.err(tp + "/deps", "names task " + std::to_string(d) + ", not an earlier task of the rank");
          pt.category = str_of(c, t, tp, "category");
          pt.layer = static_cast<int>(int_of(c, t, tp, "layer", -1));
          pt.micro = static_cast<int>(int_of(c, t, tp, "micro", 0));
          pt.group = static_cast<int>(int_of(c, t, tp, "group", 0));
          pt.channel = static_cast<int>(int_of(c, t, tp, "channel", 0));
          pt.dur_us = num_of(c, t, tp, "dur_us");
          if (pt.kind == "collective" && pt.group >= static_cast<int>(out->groups.size()))
            c.err(tp + "/group", "= " + std::to_string(pt.group) + "; /groups has " + std::to_string(out->groups.size()));
          if ((pt.kind == "send" || pt.kind == "recv") && pt.group >= static_cast<int>(out->peers.size()))
            c.err(tp + "/group", "= " + std::to_string(pt.group) + "; /peers has " + std::to_string(out->peers.size()));
          pr.tasks.push_back(std::move(pt));
        }
      }
      out->ranks.push_back(std::move(pr));
    }
  }
  if (out->ranks.empty() && errors->size() == before) c.err("/ranks", "is empty; export at least one rank");
  return errors->size() == before;
}

inline bool load_plan(const std::string& path, PlanFile* out, std::vector<std::string>* errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors->push_back("error: " + path + ": cannot open the exported plan (write it with `trainsim run SCENARIO --export-plan FILE`)");
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_plan(ss.str(), path, out, errors);
}

// The calibrator job that runs a compute op of the plan (the same mapping as calibrate/jobs.cpp
// job_for_op). Returns false, with *why, for ops nothing runs (offload copies are handled by
// the executor itself; a memory-bound op of 0 bytes).
inline bool job_for_plan_op(const PlanOp& op, int index, OpJob* j, std::string* why) {
  *j = OpJob{};
  j->path = "/ops/" + std::to_string(index);
  j->dtype = op.dtype;
  if (op.cls == "gemm") {
    j->cls = "gemm";
    j->m = op.m; j->n = op.n; j->k = op.k; j->batch = op.batch;
    if (j->m < 1 || j->n < 1 || j->k < 1 || j->batch < 1) { *why = "GEMM with an empty dimension"; return false; }
    return true;
  }
  if (op.cls == "attention") {
    j->cls = "attention";
    j->batch = op.attn_batch; j->heads = op.heads; j->kv_heads = op.kv_heads;
    j->seq_q = op.seq_q; j->seq_kv = op.seq_kv; j->head_dim = op.head_dim;
    j->causal = op.causal; j->backward = op.backward;
    if (j->batch < 1 || j->heads < 1 || j->kv_heads < 1 || j->seq_q < 1 || j->seq_kv < 1 || j->head_dim < 1 ||
        j->heads % j->kv_heads != 0) {
      *why = "attention shape the kernels cannot take (a zero field or heads % kv_heads != 0)";
      return false;
    }
    return true;
  }
  if (is_memory_bound_class(op.cls)) {
    j->cls = op.cls;
    j->name = op.name;
    j->bytes = op.bytes;
    if (op.bytes <= 0) { *why = "memory-bound op of 0 bytes"; return false; }
    return true;
  }
  *why = "class \"" + op.cls + "\" is not a compute op";
  return false;
}

// What the executor does with one task of rank `r`, running only the ranks in `here`:
// kRun (a compute op or an offload copy), or kDrop with *why. `drop_comm`: collectives whose
// group instance has members not run here are dropped (else kRefuse: they need NCCL over
// local GPUs, which this executor does not build yet).
enum class TaskAction { kRun, kDrop, kRefuse };

// What the executor does with task t of rank r when the ranks `here` run in this process (one
// GPU each). `local_comm`: this executor can run communication between the ranks here (built
// with NCCL); then a collective whose group instance has all its members here runs (NCCL
// communicator over their GPUs) and so does a send/recv whose peer is here. Otherwise:
//   - a collective over a group of size 1 is a no-op: dropped;
//   - a send/recv to a peer not run here: dropped (the peer's side of the plan is absent);
//   - a collective over a group with members not run here: refused, or dropped with drop_comm;
//   - communication between ranks here without local_comm: refused, or dropped with drop_comm.
inline TaskAction task_action(const PlanFile& pf, const PlanRank& r, const PlanTask& t, const std::vector<int>& here,
                              bool drop_comm, bool local_comm, std::string* why) {
  auto is_here = [&](int rank) {
    for (int h : here)
      if (h == rank) return true;
    return false;
  };
  const PlanOp& op = pf.ops[t.op];
  if (t.kind == "compute") return TaskAction::kRun;
  if (t.kind == "send" || t.kind == "recv") {
    const int peer = t.group < static_cast<int>(r.peer_ranks.size()) ? r.peer_ranks[t.group] : -1;
    const std::string table = t.group < static_cast<int>(pf.peers.size()) ? pf.peers[t.group] : "?";
    if (peer >= 0 && is_here(peer)) {
      if (local_comm) return TaskAction::kRun;
      *why = t.kind + (t.kind == "send" ? " to" : " from") + " local rank " + std::to_string(peer) + " (" + table +
             ") needs NCCL, which this executor was built without";
      return drop_comm ? TaskAction::kDrop : TaskAction::kRefuse;
    }
    *why = t.kind + (t.kind == "send" ? " to" : " from") + " peer rank " + std::to_string(peer) + " (" + table +
           "), not run here";
    return TaskAction::kDrop;
  }
  // collective
  const PlanGroup& g = pf.groups[t.group];
  const int inst = t.group < static_cast<int>(r.group_instances.size()) ? r.group_instances[t.group] : -1;
  const PlanGroupInstance* gi = inst >= 0 ? g.find(inst) : nullptr;
  const size_t size = gi ? gi->members.size() : 0;
  if (size <= 1) {
    *why = op.coll + " over group " + g.name + " of size " + std::to_string(size) + ": a no-op";
    return TaskAction::kDrop;
  }
  size_t local = 0;
  for (int m : gi->members) local += is_here(m);
  if (local == size && local_comm) return TaskAction::kRun;
  if (drop_comm) {
    *why = op.coll + " over group " + g.name + " of " + std::to_string(size) + " ranks, " + std::to_string(local) +
           " run here (--drop-comm)";
    return TaskAction::kDrop;
  }
  if (local == size)
    *why = op.coll + " over group " + g.name + " instance " + std::to_string(inst) + " of " + std::to_string(size) +
           " local ranks needs NCCL, which this executor was built without; pass --drop-comm to drop it (reported)";
  else
    *why = op.coll + " over group " + g.name + " instance " + std::to_string(inst) + " of " + std::to_string(size) +
           " ranks, " + std::to_string(local) + " of them run here: run all its members (--ranks, one GPU each), " +
           "or pass --drop-comm to drop such collectives (reported)";
  return TaskAction::kRefuse;
}

// The NCCL communicators the ranks `here` need (one GPU each), from their tasks that run:
// one per group instance with a collective that runs (members in ascending rank order; a
// member's index is its rank in the communicator), and one per ordered pair (sender, receiver)
// with a send/recv that runs (index 0 the sender, 1 the receiver). Each communicator carries
// the traffic of one instance or one direction only, so its operations come in the same order
// on every member when the plan's programs agree. Pure; no NCCL.
struct CommSpec {
  int group = -1;             // group kind (collectives), or -1 for a p2p pair
  int instance = -1;          // group instance (collectives), or the message channel (p2p)
  std::vector<int> members;   // ranks
  bool operator==(const CommSpec&) const = default;
};
// The communicator a communication task of rank r runs over (REQUIRES: task_action kRun).
inline CommSpec comm_spec_of(const PlanFile& pf, const PlanRank& r, const PlanTask& t) {
  if (t.kind == "collective") {
    const int inst = r.group_instances[t.group];
    return {t.group, inst, pf.groups[t.group].find(inst)->members};
  }
  // One communicator per direction and message channel: NCCL matches a pair's sends and
  // receives in posting order, the simulator per (receiver, channel) in FIFO order, and with two
  // chunks per rank (DualPipe, DualPipeV, ZB-V) one direction carries two channels whose
  // messages the two ranks post in different orders.
  const int peer = r.peer_ranks[t.group];
  return {-1, t.channel, t.kind == "send" ? std::vector<int>{r.rank, peer} : std::vector<int>{peer, r.rank}};
}
inline std::vector<CommSpec> comm_specs(const PlanFile& pf, const std::vector<int>& here,
                                        const std::vector<std::vector<TaskAction>>& actions) {
  std::vector<CommSpec> out;
  for (size_t k = 0; k < here.size(); ++k) {
    const PlanRank* r = pf.find_rank(here[k]);
    if (!r) continue;
    for (size_t i = 0; i < r->tasks.size(); ++i) {
      if (k >= actions.size() || i >= actions[k].size() || actions[k][i] != TaskAction::kRun) continue;
      const PlanTask& t = r->tasks[i];
      if (t.kind == "compute") continue;
      CommSpec c = comm_spec_of(pf, *r, t);
      if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(std::move(c));
    }
  }
  return out;
}

// Element counts of one collective per the nccl-tests convention of `bytes` (all-reduce /
// broadcast / send-recv: the buffer; all-gather: the output; reduce-scatter: the input;
// all-to-all: the per-rank buffer) over n ranks: 4-byte elements for fp32, else 2; bytes
// rounded down to whole elements per rank (at least one). No NCCL: nccl_ops.h adds the types.
struct CollCounts {
  int64_t esize = 2;
  int64_t total = 0, per_rank = 0;     // elements; total is a multiple of n
  int64_t send_elems = 0, recv_elems = 0;
  int64_t buffer_bytes() const { return (send_elems + recv_elems) * esize; }
};
inline CollCounts coll_counts(const std::string& kind, const std::string& dtype, int64_t bytes, int n) {
  CollCounts c;
  c.esize = dtype == "fp32" ? 4 : 2;
  c.total = std::max<int64_t>(bytes / (c.esize * n), 1) * n;
  c.per_rank = c.total / n;
  c.send_elems = kind == "all-gather" ? c.per_rank : c.total;
  c.recv_elems = kind == "reduce-scatter" ? c.per_rank : c.total;
  return c;
}

}  // namespace tscal
