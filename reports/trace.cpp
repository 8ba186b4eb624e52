#include "reports/trace.h"

#include <algorithm>
#include <array>
#include <map>

#include "reports/text_table.h"
#include "sim/check.h"

namespace trainsim {
namespace {

using nlohmann::ordered_json;

constexpr uint16_t kNoLayer = 0xffff;

ordered_json metadata(const char* name, uint32_t pid, int64_t tid, ordered_json args) {
  ordered_json e;
  e["name"] = name;
  e["ph"] = "M";
  e["pid"] = pid;
  e["tid"] = tid;
  e["args"] = std::move(args);
  return e;
}

}  // namespace

const char* stream_name(uint8_t stream) {
  switch (stream) {
    case kStreamCompute: return "compute";
    case kStreamDp: return "dp-comm";
    case kStreamP2p: return "pp-send";
    case kStreamGather: return "gather";   // ZeRO-3 parameter gathers and SP re-gathers for weight gradients
    case kStreamCp: return "cp-ring";
    case kStreamOffloadOut: return "offload-d2h";
    case kStreamOffloadIn: return "offload-h2d";
    case kStreamDpReplica: return "dp-replica";
    case kStreamEp: return "ep-a2a";
    case kStreamTp: return "tp-overlap";
    default: return "stream";
  }
}

ordered_json chrome_trace(const Prediction& p) {
  ordered_json events = ordered_json::array();
  const Plan* plan = p.plan.get();
  SIM_CHECK(plan != nullptr || p.trace.empty(), "chrome_trace: %zu trace records but no plan",
            p.trace.size());

  // Which streams each traced rank used (std::map: ascending rank order).
  std::map<uint32_t, std::array<bool, kMaxStreams>> used;
  for (const TraceRecord& r : p.trace) {
    SIM_CHECK(r.rank < plan->program_of_rank.size(), "chrome_trace: rank %u of %zu", r.rank,
              plan->program_of_rank.size());
    const Program& prog = plan->programs[plan->program_of_rank[r.rank]];
    SIM_CHECK(r.task < prog.tasks.size(), "chrome_trace: rank %u task %u of %zu", r.rank, r.task,
              prog.tasks.size());
    const uint8_t stream = prog.tasks[r.task].stream;
    SIM_CHECK(stream < kMaxStreams, "chrome_trace: stream %u", (unsigned)stream);
    auto it = used.try_emplace(r.rank, std::array<bool, kMaxStreams>{}).first;
    it->second[stream] = true;
  }

  for (const auto& [rank, streams] : used) {
    const Program& prog = plan->programs[plan->program_of_rank[rank]];
    std::string pname = reports::strf("rank %u", rank);
    if (!prog.name.empty()) pname += " (" + prog.name + ")";
    events.push_back(metadata("process_name", rank, 0, {{"name", pname}}));
    events.push_back(metadata("process_sort_index", rank, 0, {{"sort_index", rank}}));
    for (int s = 0; s < kMaxStreams; ++s) {
      if (!streams[s]) continue;
      events.push_back(
          metadata("thread_name", rank, s, {{"name", stream_name(static_cast<uint8_t>(s))}}));
      events.push_back(metadata("thread_sort_index", rank, s, {{"sort_index", s}}));
    }
  }

  for (const TraceRecord& r : p.trace) {
    const Program& prog = plan->programs[plan->program_of_rank[r.rank]];
    const Task& task = prog.tasks[r.task];
    SIM_CHECK(task.op < plan->ops.size(), "chrome_trace: op %u of %zu", task.op,
              plan->ops.size());
    const OpDesc& op = plan->ops[task.op];
    std::string name = op.name;
    if (task.layer != kNoLayer) name += reports::strf(" L%u mb%u", (unsigned)task.layer, (unsigned)task.micro);
    ordered_json e;
    e["name"] = std::move(name);
    e["cat"] = to_string(task.category);
    e["ph"] = "X";
    e["ts"] = r.start.us_f();
    e["dur"] = (r.end - r.start).us_f();
    e["pid"] = r.rank;
    e["tid"] = task.stream;
    ordered_json args;
    args["class"] = to_string(op.cls);
    args["flops"] = op.flops.v;
    args["bytes"] = op.bytes.count();
    args["task"] = r.task;
    e["args"] = std::move(args);
    events.push_back(std::move(e));
  }

  ordered_json doc;
  doc["traceEvents"] = std::move(events);
  doc["displayTimeUnit"] = "ns";
  doc["otherData"] = {{"scenario", p.scenario.name},
                      {"fingerprint", reports::strf("%016llx", (unsigned long long)p.fingerprint)}};
  return doc;
}

}  // namespace trainsim
