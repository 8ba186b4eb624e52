#include "sim/plan_export.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace trainsim {

namespace {

// The job-list spelling of calibrate/FORMAT.md section 1 (the executor reuses those readers).
const char* dtype_name(DType d) {
  switch (d) {
    case DType::kBF16: return "bf16";
    case DType::kFP16: return "fp16";
    case DType::kFP8: return "fp8";
    case DType::kFP32: return "fp32";
  }
  return "bf16";
}

const char* kind_name(TaskKind k) {
  switch (k) {
    case TaskKind::kCompute: return "compute";
    case TaskKind::kCollective: return "collective";
    case TaskKind::kSend: return "send";
    case TaskKind::kRecv: return "recv";
  }
  return "?";
}

void escape_into(std::string* o, const std::string& s) {
  o->push_back('"');
  for (char ch : s) {
    const unsigned char u = static_cast<unsigned char>(ch);
    if (ch == '"') *o += "\\\"";
    else if (ch == '\\') *o += "\\\\";
    else if (u < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", u);
      *o += b;
    } else {
      o->push_back(ch);
    }
  }
  o->push_back('"');
}

std::string quoted(const std::string& s) {
  std::string o;
  escape_into(&o, s);
  return o;
}

std::string i64(int64_t v) { return std::to_string(v); }

std::string exact_double(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

// Whole picoseconds as microseconds with 6 decimals (exact).
std::string us_of(Time t) {
  const int64_t ps = t.count_ps();
  char b[48];
  std::snprintf(b, sizeof b, "%s%" PRId64 ".%06" PRId64, ps < 0 ? "-" : "", (ps < 0 ? -ps : ps) / 1000000,
                (ps < 0 ? -ps : ps) % 1000000);
  return b;
}

}  // namespace

const char* plan_stream_name(uint8_t stream) {
  switch (stream) {
    case kStreamCompute: return "compute";
    case kStreamDp: return "dp";
    case kStreamP2p: return "p2p";
    case kStreamGather: return "gather";
    case kStreamCp: return "cp";
    case kStreamOffloadOut: return "offload-out";
    case kStreamOffloadIn: return "offload-in";
    case kStreamDpReplica: return "dp-replica";
    case kStreamEp: return "ep";
    case kStreamTp: return "tp";
  }
  return "?";
}

Result<std::string> export_plan_json(const Plan& plan, const PlanExportOptions& opts) {
  std::vector<uint32_t> ranks = opts.ranks;
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  if (ranks.empty()) return Status::error(Error{"", "--export-ranks", "", "no rank given; write e.g. 0 or 0,1"});
  Status bad;
  for (uint32_t r : ranks)
    if (r >= static_cast<uint32_t>(plan.num_ranks))
      bad.add(Error{"", "--export-ranks", std::to_string(r),
                    "no such rank; the plan has ranks 0.." + std::to_string(plan.num_ranks - 1)});
  if (!bad.ok()) return bad;

  std::string o;
  o.reserve(1 << 20);
  o += "{\n  \"format\": \"trainsim plan export\",\n  \"version\": " + std::to_string(kPlanExportVersion) + ",\n";
  o += "  \"scenario\": " + quoted(opts.scenario) + ",\n";
  o += "  \"costs\": " + quoted(opts.costs) + ",\n";
  if (opts.predicted_step_us >= 0) o += "  \"predicted_step_us\": " + exact_double(opts.predicted_step_us) + ",\n";
  o += "  \"num_ranks\": " + std::to_string(plan.num_ranks) + ",\n";
  o += "  \"streams\": [";
  for (int s = 0; s < kMaxStreams; ++s) o += std::string(s ? ", " : "") + quoted(plan_stream_name(static_cast<uint8_t>(s)));
  o += "],\n";

  // Ops: one line each, every field, indices as in the plan.
  o += "  \"ops\": [\n";
  for (size_t i = 0; i < plan.ops.size(); ++i) {
    const OpDesc& op = plan.ops[i];
    o += "    {\"name\": " + quoted(op.name) + ", \"class\": " + quoted(to_string(op.cls)) + ", \"dtype\": " +
         quoted(dtype_name(op.dtype)) + ", \"m\": " + i64(op.m) + ", \"n\": " + i64(op.n) + ", \"k\": " + i64(op.k) +
         ", \"batch\": " + i64(op.batch) + ", \"attn_batch\": " + i64(op.attn_batch) + ", \"heads\": " + i64(op.heads) +
         ", \"kv_heads\": " + i64(op.kv_heads) + ", \"seq_q\": " + i64(op.seq_q) + ", \"seq_kv\": " + i64(op.seq_kv) +
         ", \"head_dim\": " + i64(op.head_dim) + ", \"causal\": " + (op.causal ? "true" : "false") +
         ", \"backward\": " + (op.backward ? "true" : "false") + ", \"flops\": " + exact_double(op.flops.v) +
         ", \"bytes\": " + i64(op.bytes.count()) + ", \"coll\": " + quoted(to_string(op.coll)) +
         ", \"group\": " + std::to_string(op.group) +
         (op.dedup.fanout > 0 ? ", \"dedup\": {\"fanout\": " + std::to_string(op.dedup.fanout) + ", \"slots\": " +
                                    std::to_string(op.dedup.slots) + ", \"node_limit\": " +
                                    std::to_string(op.dedup.node_limit) + "}"
                              : std::string()) +
         "}";
    o += i + 1 < plan.ops.size() ? ",\n" : "\n";
  }
  o += "  ],\n";

  // Groups: the instances that hold an exported rank.
  o += "  \"groups\": [\n";
  for (size_t g = 0; g < plan.groups.size(); ++g) {
    const GroupTable& gt = plan.groups[g];
    std::vector<uint32_t> inst;
    for (uint32_t r : ranks) {
      const uint32_t i = r < gt.instance_of_rank.size() ? gt.instance_of_rank[r] : kNoDep;
      if (i != kNoDep) inst.push_back(i);
    }
    std::sort(inst.begin(), inst.end());
    inst.erase(std::unique(inst.begin(), inst.end()), inst.end());
    o += "    {\"index\": " + std::to_string(g) + ", \"name\": " + quoted(gt.name) + ", \"instances\": [";
    for (size_t j = 0; j < inst.size(); ++j) {
      o += std::string(j ? ", " : "") + "{\"instance\": " + std::to_string(inst[j]) + ", \"members\": [";
      for (uint32_t x = gt.member_offsets[inst[j]]; x < gt.member_offsets[inst[j] + 1]; ++x)
        o += std::string(x > gt.member_offsets[inst[j]] ? ", " : "") + std::to_string(gt.members[x]);
      o += "]}";
    }
    o += "]}";
    o += g + 1 < plan.groups.size() ? ",\n" : "\n";
  }
  o += "  ],\n";
  o += "  \"peers\": [";
  for (size_t p = 0; p < plan.peers.size(); ++p)
    o += std::string(p ? ", " : "") + "{\"index\": " + std::to_string(p) + ", \"name\": " + quoted(plan.peers[p].name) + "}";
  o += "],\n";

  // Ranks: their programs, one task a line.
  o += "  \"ranks\": [\n";
  for (size_t ri = 0; ri < ranks.size(); ++ri) {
    const uint32_t r = ranks[ri];
    const uint32_t pi = plan.program_of_rank[r];
    const Program& prog = plan.programs[pi];
    o += "    {\"rank\": " + std::to_string(r) + ", \"program\": " + std::to_string(pi) +
         ", \"program_name\": " + quoted(prog.name) + ",\n     \"group_instances\": [";
    for (size_t g = 0; g < plan.groups.size(); ++g) {
      const auto& iof = plan.groups[g].instance_of_rank;
      const uint32_t i = r < iof.size() ? iof[r] : kNoDep;
      o += std::string(g ? ", " : "") + (i == kNoDep ? std::string("-1") : std::to_string(i));
    }
    o += "],\n     \"peer_ranks\": [";
    for (size_t p = 0; p < plan.peers.size(); ++p) {
      const auto& pof = plan.peers[p].peer_of_rank;
      o += std::string(p ? ", " : "") + std::to_string(r < pof.size() ? pof[r] : -1);
    }
    o += "],\n     \"tasks\": [\n";
    for (size_t ti = 0; ti < prog.tasks.size(); ++ti) {
      const Task& t = prog.tasks[ti];
      o += "      {\"op\": " + std::to_string(t.op) + ", \"kind\": \"" + kind_name(t.kind) +
           "\", \"stream\": " + std::to_string(t.stream) + ", \"deps\": [";
      bool first = true;
      for (uint32_t d : t.dep) {
        if (d == kNoDep) continue;
        o += std::string(first ? "" : ", ") + std::to_string(d);
        first = false;
      }
      o += "], \"category\": \"" + std::string(to_string(t.category)) + "\", \"layer\": " +
           (t.layer == 0xffff ? std::string("-1") : std::to_string(t.layer)) +
           ", \"micro\": " + std::to_string(t.micro) + ", \"group\": " + std::to_string(t.group) +
           ", \"channel\": " + std::to_string(t.channel) + ", \"mem_alloc\": " + i64(t.mem_alloc) +
           ", \"mem_free\": " + i64(t.mem_free) + (t.mem_grads ? ", \"mem_grads\": true" : "") +
           ", \"dur_us\": " + us_of(t.dur) + "}";
      o += ti + 1 < prog.tasks.size() ? ",\n" : "\n";
    }
    o += "     ]}";
    o += ri + 1 < ranks.size() ? ",\n" : "\n";
  }
  o += "  ]\n}\n";
  return o;
}

}  // namespace trainsim
