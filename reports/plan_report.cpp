#include "reports/plan_report.h"

#include <algorithm>
#include <array>

#include "models/spec.h"
#include "reports/text_table.h"
#include "sim/plan_export.h"
#include "topologies/placement.h"

namespace trainsim {
namespace {

using reports::Align;
using reports::gib2;
using reports::group_digits;
using reports::strf;
using reports::TextTable;

constexpr size_t kCats = static_cast<size_t>(Category::kCount);

// 1536 -> "1.50 KiB": bytes in the largest binary unit that keeps the number at least 1.
std::string bytes_text(int64_t b) {
  const double v = static_cast<double>(b);
  if (v >= 1024.0 * 1024 * 1024) return strf("%.2f GiB", v / (1024.0 * 1024 * 1024));
  if (v >= 1024.0 * 1024) return strf("%.2f MiB", v / (1024.0 * 1024));
  if (v >= 1024.0) return strf("%.2f KiB", v / 1024.0);
  return strf("%lld B", static_cast<long long>(b));
}

std::string flops_text(double f) {
  if (f >= 1e15) return strf("%.2f PFLOP", f / 1e15);
  if (f >= 1e12) return strf("%.2f TFLOP", f / 1e12);
  if (f >= 1e9) return strf("%.2f GFLOP", f / 1e9);
  return strf("%.0f FLOP", f);
}

struct ProgramRow {
  std::string name;
  std::vector<uint32_t> ranks;
  uint32_t tasks = 0, compute = 0, collectives = 0, sends = 0, recvs = 0;
  const Program* prog = nullptr;
};
struct GroupRow {
  std::string name;
  uint32_t instances = 0, min_size = 0, max_size = 0;
  bool member = false;   // the chosen rank is in one of its instances
  std::vector<uint32_t> members;
  int nodes = 0;
};
struct OpRow {
  uint32_t op = 0;
  uint32_t tasks = 0;
  Time total, each;
  bool same = true;   // every run of the op took `each`
};
struct Summary {
  std::vector<ProgramRow> programs;
  std::vector<GroupRow> groups;
  std::vector<std::pair<std::string, int32_t>> peers;
  uint64_t tasks = 0;
  const Program* prog = nullptr;
  std::array<uint32_t, kMaxStreams> stream_tasks{};
  std::array<Time, kMaxStreams> stream_busy{};
  std::array<uint32_t, kCats> cat_tasks{};
  std::array<Time, kCats> cat_busy{};
  std::vector<OpRow> ops;   // by total time, largest first
};

Result<Summary> summarize(const Prediction& p, const PlanReportOptions& o) {
  SIM_CHECK(p.plan != nullptr, "a prediction without its plan");
  const Plan& plan = *p.plan;
  if (o.rank >= static_cast<uint32_t>(plan.num_ranks))
    return Status::error(Error{"", "--rank", std::to_string(o.rank),
                               strf("no such rank; the plan has ranks 0-%d", plan.num_ranks - 1)});
  Summary s;
  s.programs.resize(plan.programs.size());
  for (size_t i = 0; i < plan.programs.size(); ++i) {
    ProgramRow& r = s.programs[i];
    const Program& prog = plan.programs[i];
    r.name = prog.name;
    r.prog = &prog;
    r.tasks = static_cast<uint32_t>(prog.tasks.size());
    s.tasks += prog.tasks.size();
    for (const Task& t : prog.tasks) {
      r.compute += t.kind == TaskKind::kCompute;
      r.collectives += t.kind == TaskKind::kCollective;
      r.sends += t.kind == TaskKind::kSend;
      r.recvs += t.kind == TaskKind::kRecv;
    }
  }
  for (int r = 0; r < plan.num_ranks; ++r) s.programs[plan.program_of_rank[r]].ranks.push_back(static_cast<uint32_t>(r));

  const int gpn = std::max(1, p.scenario.cluster.gpus_per_node);
  for (const GroupTable& g : plan.groups) {
    GroupRow row;
    row.name = g.name;
    row.instances = g.instances();
    row.min_size = row.instances ? g.size_of(0) : 0;
    for (uint32_t i = 0; i < row.instances; ++i) {
      row.min_size = std::min(row.min_size, g.size_of(i));
      row.max_size = std::max(row.max_size, g.size_of(i));
    }
    const uint32_t inst = g.instance_of_rank[o.rank];
    if (inst != kNoDep) {
      row.member = true;
      row.members.assign(g.members.begin() + g.member_offsets[inst], g.members.begin() + g.member_offsets[inst + 1]);
      row.nodes = shape_of(g, inst, gpn).nodes;
    }
    s.groups.push_back(std::move(row));
  }
  for (const PeerTable& t : plan.peers) s.peers.emplace_back(t.name, t.peer_of_rank[o.rank]);

  s.prog = &plan.programs[plan.program_of_rank[o.rank]];
  std::vector<OpRow> by_op(plan.ops.size());
  for (const Task& t : s.prog->tasks) {
    ++s.stream_tasks[t.stream];
    s.stream_busy[t.stream] += t.dur;
    ++s.cat_tasks[static_cast<size_t>(t.category)];
    s.cat_busy[static_cast<size_t>(t.category)] += t.dur;
    OpRow& r = by_op[t.op];
    if (r.tasks == 0) r.each = t.dur;
    else if (r.each != t.dur) r.same = false;
    r.op = t.op;
    ++r.tasks;
    r.total += t.dur;
  }
  for (const OpRow& r : by_op)
    if (r.tasks > 0) s.ops.push_back(r);
  std::stable_sort(s.ops.begin(), s.ops.end(), [](const OpRow& a, const OpRow& b) { return a.total > b.total; });
  return s;
}

// What an op computes or moves, in a line.
std::string op_what(const Plan& plan, const OpDesc& op) {
  switch (op.cls) {
    case OpClass::kGemm:
      return strf("%lld x %lld x %lld%s %s", (long long)op.m, (long long)op.n, (long long)op.k,
                  op.batch > 1 ? strf(" (x%lld)", (long long)op.batch).c_str() : "", to_string(op.dtype));
    case OpClass::kAttention:
      return strf("%lld x %lld heads (%lld kv), %lld x %lld tokens, head %lld%s%s", (long long)op.attn_batch,
                  (long long)op.heads, (long long)op.kv_heads, (long long)op.seq_q, (long long)op.seq_kv,
                  (long long)op.head_dim, op.causal ? ", causal" : "", op.backward ? ", backward" : "");
    case OpClass::kCollective: {
      const std::string group = op.group < plan.groups.size() ? plan.groups[op.group].name : "?";
      return strf("%s of %s over %s", to_string(op.coll), bytes_text(op.bytes.count()).c_str(), group.c_str());
    }
    case OpClass::kP2p: {
      const std::string peer = op.group < plan.peers.size() ? plan.peers[op.group].name : "?";
      return strf("%s to/from %s", bytes_text(op.bytes.count()).c_str(), peer.c_str());
    }
    default:
      return op.flops.v > 0 ? strf("%s of HBM traffic, %s", bytes_text(op.bytes.count()).c_str(), flops_text(op.flops.v).c_str())
                            : bytes_text(op.bytes.count()) + " of HBM traffic";
  }
}

const char* source_of(const Prediction& p, uint32_t op) {
  return op < p.op_sources.size() ? to_string(p.op_sources[op]) : "?";
}

}  // namespace

std::string rank_ranges(const std::vector<uint32_t>& ranks, size_t max_ranges) {
  std::string out;
  size_t n = 0;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (n++ == max_ranges) return out + ",...";
    if (!out.empty()) out += ",";
    out += ranks[i] == ranks[j] ? std::to_string(ranks[i]) : std::to_string(ranks[i]) + "-" + std::to_string(ranks[j]);
    i = j + 1;
  }
  return out;
}

Result<std::string> format_plan_summary(const Prediction& p, const PlanReportOptions& o) {
  Result<Summary> sr = summarize(p, o);
  if (!sr.ok()) return sr.status();
  const Summary& s = sr.value();
  const Plan& plan = *p.plan;
  std::string out = strf("trainsim plan: %s (%s)\n", p.scenario.name.c_str(), p.scenario.file.c_str());
  out += strf("ranks %s, programs %zu (identical ranks share one), distinct ops %zu, tasks %s, fast mode simulates %zu "
              "rank(s): %s\n",
              group_digits(plan.num_ranks).c_str(), plan.programs.size(), plan.ops.size(),
              group_digits(static_cast<double>(s.tasks)).c_str(), plan.representatives.size(),
              rank_ranges(plan.representatives).c_str());
  out += "durations: each task's bound cost (costs: " +
         (p.calibration.empty() ? std::string("embedded default") : "calibration database " + p.calibration) +
         "); the predicted step is " + format_time(p.step_time) + "\n";

  out += "\nprograms\n";
  TextTable pt({"program", "ranks", "", "tasks", "compute", "collectives", "sends", "recvs", "model FLOP",
                "static GiB (params/grads/optimizer/workspace)"},
               {Align::kLeft, Align::kRight, Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight,
                Align::kRight, Align::kRight, Align::kLeft});
  constexpr size_t kMaxPrograms = 32;
  for (size_t i = 0; i < s.programs.size(); ++i) {
    if (i == kMaxPrograms) {
      pt.add_raw(strf("... (%zu more programs)", s.programs.size() - kMaxPrograms));
      break;
    }
    const ProgramRow& r = s.programs[i];
    const MemoryStatic& m = r.prog->mem;
    pt.add({r.name, group_digits(static_cast<double>(r.ranks.size())), rank_ranges(r.ranks, 3),
            group_digits(r.tasks), group_digits(r.compute), group_digits(r.collectives), group_digits(r.sends),
            group_digits(r.recvs), flops_text(r.prog->model_flops.v),
            gib2(m.params.count()) + " / " + gib2(m.grads.count()) + " / " + gib2(m.optimizer.count()) + " / " +
                gib2(m.workspace.count())});
  }
  out += pt.render("  ");

  out += strf("\ngroups (members of rank %u's instance; nodes: rank / %d GPUs per node)\n", o.rank,
              std::max(1, p.scenario.cluster.gpus_per_node));
  TextTable gt({"group", "instances", "size", "rank's instance", "nodes"},
               {Align::kLeft, Align::kRight, Align::kRight, Align::kLeft, Align::kRight});
  for (const GroupRow& g : s.groups) {
    const std::string size = g.min_size == g.max_size ? std::to_string(g.min_size)
                                                      : std::to_string(g.min_size) + "-" + std::to_string(g.max_size);
    gt.add({g.name, group_digits(g.instances), size, g.member ? rank_ranges(g.members) : "(not a member)",
            g.member ? std::to_string(g.nodes) : ""});
  }
  out += gt.render("  ");
  for (const auto& [name, peer] : s.peers)
    out += strf("  peer %s: %s\n", name.c_str(), peer < 0 ? "none" : std::to_string(peer).c_str());

  out += strf("\nrank %u: program '%s', %s tasks\n", o.rank, s.prog->name.c_str(),
              group_digits(static_cast<double>(s.prog->tasks.size())).c_str());
  TextTable st({"stream", "tasks", "busy"}, {Align::kLeft, Align::kRight, Align::kRight});
  for (int i = 0; i < kMaxStreams; ++i)
    if (s.stream_tasks[i] > 0)
      st.add({plan_stream_name(static_cast<uint8_t>(i)), group_digits(s.stream_tasks[i]), format_time(s.stream_busy[i])});
  out += st.render("  ");
  TextTable ct({"category", "tasks", "busy"}, {Align::kLeft, Align::kRight, Align::kRight});
  for (size_t i = 0; i < kCats; ++i)
    if (s.cat_tasks[i] > 0)
      ct.add({to_string(static_cast<Category>(i)), group_digits(s.cat_tasks[i]), format_time(s.cat_busy[i])});
  out += ct.render("  ");
  out += "  (busy: the sum of the tasks' durations; streams overlap, so this is not the step's breakdown)\n";

  out += strf("\nops of rank %u by total time (%zu distinct)\n", o.rank, s.ops.size());
  TextTable ot({"op", "class", "what", "runs", "each", "total", "source"},
               {Align::kLeft, Align::kLeft, Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kLeft});
  const size_t shown = std::min(s.ops.size(), static_cast<size_t>(std::max(0, o.top_ops)));
  for (size_t i = 0; i < shown; ++i) {
    const OpRow& r = s.ops[i];
    const OpDesc& op = plan.ops[r.op];
    ot.add({op.name, to_string(op.cls), op_what(plan, op), group_digits(r.tasks), r.same ? format_time(r.each) : "varies",
            format_time(r.total), source_of(p, r.op)});
  }
  if (shown < s.ops.size()) ot.add_raw(strf("... %zu more ops (--top N shows more; --json has every op)", s.ops.size() - shown));
  out += ot.render("  ");
  return out;
}

Result<nlohmann::ordered_json> plan_summary_json(const Prediction& p, const PlanReportOptions& o) {
  using oj = nlohmann::ordered_json;
  Result<Summary> sr = summarize(p, o);
  if (!sr.ok()) return sr.status();
  const Summary& s = sr.value();
  const Plan& plan = *p.plan;
  oj j;
  j["kind"] = "plan";
  j["scenario"] = p.scenario.name;
  j["file"] = p.scenario.file;
  j["ranks"] = plan.num_ranks;
  j["programs_count"] = plan.programs.size();
  j["ops_count"] = plan.ops.size();
  j["tasks"] = s.tasks;
  j["representatives"] = plan.representatives;
  oj progs = oj::array();
  for (const ProgramRow& r : s.programs)
    progs.push_back({{"name", r.name},
                     {"ranks", rank_ranges(r.ranks, SIZE_MAX)},
                     {"rank_count", r.ranks.size()},
                     {"tasks", r.tasks},
                     {"compute", r.compute},
                     {"collectives", r.collectives},
                     {"sends", r.sends},
                     {"recvs", r.recvs},
                     {"model_flops", r.prog->model_flops.v},
                     {"hardware_flops", r.prog->hardware_flops.v},
                     {"params_bytes", r.prog->mem.params.count()},
                     {"grads_bytes", r.prog->mem.grads.count()},
                     {"optimizer_bytes", r.prog->mem.optimizer.count()},
                     {"workspace_bytes", r.prog->mem.workspace.count()}});
  j["programs"] = std::move(progs);
  oj groups = oj::array();
  for (const GroupRow& g : s.groups)
    groups.push_back({{"name", g.name},
                      {"instances", g.instances},
                      {"min_size", g.min_size},
                      {"max_size", g.max_size},
                      {"rank_instance", g.member},
                      {"members", g.members},
                      {"nodes", g.nodes}});
  j["groups"] = std::move(groups);
  oj peers = oj::array();
  for (const auto& [name, peer] : s.peers) peers.push_back({{"name", name}, {"peer", peer}});
  j["peers"] = std::move(peers);
  j["rank"] = o.rank;
  j["program"] = s.prog->name;
  oj streams = oj::array();
  for (int i = 0; i < kMaxStreams; ++i)
    if (s.stream_tasks[i] > 0)
      streams.push_back({{"stream", plan_stream_name(static_cast<uint8_t>(i))},
                         {"tasks", s.stream_tasks[i]},
                         {"busy_ps", s.stream_busy[i].count_ps()}});
  j["streams"] = std::move(streams);
  oj cats = oj::array();
  for (size_t i = 0; i < kCats; ++i)
    if (s.cat_tasks[i] > 0)
      cats.push_back({{"category", to_string(static_cast<Category>(i))},
                      {"tasks", s.cat_tasks[i]},
                      {"busy_ps", s.cat_busy[i].count_ps()}});
  j["categories"] = std::move(cats);
  oj ops = oj::array();
  for (const OpRow& r : s.ops) {
    const OpDesc& op = plan.ops[r.op];
    ops.push_back({{"op", r.op},
                   {"name", op.name},
                   {"class", to_string(op.cls)},
                   {"what", op_what(plan, op)},
                   {"tasks", r.tasks},
                   {"each_ps", r.same ? oj(r.each.count_ps()) : oj(nullptr)},
                   {"total_ps", r.total.count_ps()},
                   {"source", source_of(p, r.op)}});
  }
  j["ops"] = std::move(ops);
  return j;
}

}  // namespace trainsim
