#include "calibrate/jobs.h"

#include <set>

#include "models/catalog.h"
#include "models/memory.h"
#include "models/spec.h"

namespace trainsim {

namespace {

const char* class_name(OpClass c) {
  switch (c) {
    case OpClass::kGemm: return "gemm";
    case OpClass::kAttention: return "attention";
    case OpClass::kNorm: return "norm";
    case OpClass::kElementwise: return "elementwise";
    case OpClass::kEmbedding: return "embedding";
    case OpClass::kLoss: return "loss";
    case OpClass::kOptimizer: return "optimizer";
    default: return "";
  }
}

void add_unique(std::vector<nlohmann::ordered_json>* v, std::set<std::string>* seen, nlohmann::ordered_json j) {
  if (j.is_null()) return;
  if (seen->insert(j.dump()).second) v->push_back(std::move(j));
}

}  // namespace

nlohmann::ordered_json job_for_op(const OpDesc& op, int group_size) {
  nlohmann::ordered_json j;
  switch (op.cls) {
    case OpClass::kGemm:
      j["class"] = "gemm";
      j["dtype"] = to_string(op.dtype);
      j["m"] = op.m;
      j["n"] = op.n;
      j["k"] = op.k;
      j["batch"] = op.batch;
      return j;
    case OpClass::kAttention:
      j["class"] = "attention";
      j["dtype"] = to_string(op.dtype);
      j["batch"] = op.attn_batch;
      j["heads"] = op.heads;
      j["kv_heads"] = op.kv_heads;
      j["seq_q"] = op.seq_q;
      j["seq_kv"] = op.seq_kv;
      j["head_dim"] = op.head_dim;
      j["causal"] = op.causal;
      j["backward"] = op.backward;
      return j;
    case OpClass::kCollective:
      if (group_size <= 1) return nullptr;
      if (op.coll == CollKind::kSendRecv) group_size = 2;   // a ring shift is priced as one send-recv pair
      j["kind"] = to_string(op.coll);
      j["dtype"] = "bf16";
      j["bytes"] = op.bytes.count();
      j["group_size"] = group_size;
      return j;
    case OpClass::kP2p:
      j["kind"] = "send-recv";
      j["dtype"] = "bf16";
      j["bytes"] = op.bytes.count();
      j["group_size"] = 2;
      return j;
    case OpClass::kOffload:   // a host copy; the direction is the name's suffix (.d2h / .h2d)
      if (op.bytes.count() <= 0) return nullptr;
      j["class"] = "offload";
      j["name"] = op.name;
      j["bytes"] = op.bytes.count();
      return j;
    default:
      if (op.bytes.count() <= 0 || class_name(op.cls)[0] == '\0') return nullptr;
      j["class"] = class_name(op.cls);
      j["name"] = op.name;
      j["bytes"] = op.bytes.count();
      return j;
  }
}

void add_plan_jobs(const Plan& plan, JobList* jobs) {
  std::set<std::string> seen_ops, seen_coll;
  for (const auto& j : jobs->ops) seen_ops.insert(j.dump());
  for (const auto& j : jobs->collectives) seen_coll.insert(j.dump());
  std::vector<int> group_size(plan.groups.size(), 1);
  for (size_t g = 0; g < plan.groups.size(); ++g) {
    int biggest = 1;
    for (uint32_t i = 0; i < plan.groups[g].instances(); ++i)
      biggest = std::max<int>(biggest, static_cast<int>(plan.groups[g].size_of(i)));
    group_size[g] = biggest;
  }
  for (const OpDesc& op : plan.ops) {
    if (op.cls == OpClass::kCollective) {
      add_unique(&jobs->collectives, &seen_coll, job_for_op(op, op.group < group_size.size() ? group_size[op.group] : 1));
    } else if (op.cls == OpClass::kP2p) {
      add_unique(&jobs->collectives, &seen_coll, job_for_op(op, 2));
    } else {
      add_unique(&jobs->ops, &seen_ops, job_for_op(op, 1));
    }
  }
}

JobList sweep_jobs(bool fp8) {
  JobList jobs;
  std::set<std::string> seen_ops, seen_coll;
  std::vector<DType> dtypes = {DType::kBF16};
  if (fp8) dtypes.push_back(DType::kFP8);
  for (const auto& cm : model_catalog()) {
    const ModelSpec& m = cm.spec;
    const int64_t h = m.hidden, f = m.ffn_hidden;
    const int64_t hd = m.head_dim > 0 ? m.head_dim : m.hidden / m.heads;
    const int64_t q = int64_t{m.heads} * hd, kv = int64_t{m.kv_heads > 0 ? m.kv_heads : m.heads} * hd;
    const int64_t f1 = (m.activation == Activation::kSwiglu ? 2 : 1) * f;
    for (int tp : {1, 2, 4, 8}) {
      if (m.heads % tp != 0) continue;
      for (int64_t tokens : {2048, 4096, 8192}) {
        for (DType dt : dtypes) {
          // The layer's GEMMs forward (m = tokens) and their weight gradients (k = tokens).
          const int64_t shapes[][3] = {{tokens, (q + 2 * kv) / tp, h}, {tokens, h, q / tp},
                                       {tokens, f1 / tp, h},         {tokens, h, f / tp},
                                       {h, (q + 2 * kv) / tp, tokens}, {q / tp, h, tokens},
                                       {h, f1 / tp, tokens},           {f / tp, h, tokens}};
          for (const auto& s : shapes) {
            nlohmann::ordered_json j;
            j["class"] = "gemm";
            j["dtype"] = to_string(dt);
            j["m"] = s[0];
            j["n"] = s[1];
            j["k"] = s[2];
            j["batch"] = 1;
            add_unique(&jobs.ops, &seen_ops, j);
          }
        }
      }
    }
  }
  for (int64_t seq : {2048, 4096, 8192, 16384, 32768}) {
    for (bool bwd : {false, true}) {
      nlohmann::ordered_json j;
      j["class"] = "attention";
      j["dtype"] = "bf16";
      j["batch"] = 1;
      j["heads"] = 32;
      j["kv_heads"] = 8;
      j["seq_q"] = seq;
      j["seq_kv"] = seq;
      j["head_dim"] = 128;
      j["causal"] = true;
      j["backward"] = bwd;
      add_unique(&jobs.ops, &seen_ops, j);
    }
  }
  for (int64_t bytes = int64_t{1} << 20; bytes <= int64_t{4} << 30; bytes *= 4) {
    for (const char* cls : {"norm", "elementwise", "optimizer"}) {
      nlohmann::ordered_json j;
      j["class"] = cls;
      j["name"] = std::string(cls) + ".sweep";
      j["bytes"] = bytes;
      add_unique(&jobs.ops, &seen_ops, j);
    }
  }
  for (int64_t bytes = int64_t{1} << 20; bytes <= int64_t{4} << 30; bytes *= 4) {
    for (const char* name : {"offload.sweep.d2h", "offload.sweep.h2d"}) {
      nlohmann::ordered_json j;
      j["class"] = "offload";
      j["name"] = name;
      j["bytes"] = bytes;
      add_unique(&jobs.ops, &seen_ops, j);
    }
  }
  for (const char* kind : {"all-reduce", "all-gather", "reduce-scatter", "all-to-all", "broadcast", "send-recv"}) {
    for (int g : {2, 4, 8}) {
      if (std::string(kind) == "send-recv" && g != 2) continue;
      for (int64_t bytes = 1024; bytes <= int64_t{4} << 30; bytes *= 4) {
        nlohmann::ordered_json j;
        j["kind"] = kind;
        j["dtype"] = "bf16";
        j["bytes"] = bytes;
        j["group_size"] = g;
        add_unique(&jobs.collectives, &seen_coll, j);
      }
    }
  }
  return jobs;
}

nlohmann::ordered_json JobList::to_json() const {
  nlohmann::ordered_json j;
  j["version"] = 1;
  j["warmup"] = warmup;
  j["runs"] = runs;
  j["ops"] = ops;
  j["collectives"] = collectives;
  return j;
}

}  // namespace trainsim
