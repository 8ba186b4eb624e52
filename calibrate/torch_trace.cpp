#include "calibrate/torch_trace.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "sim/text.h"

namespace trainsim {

namespace {

using Json = nlohmann::json;

// "ProfilerStep#12" -> 12; -1 when the name is not a profiler step.
int64_t step_number(const std::string& name) {
  static const std::string kPrefix = "ProfilerStep#";
  if (name.rfind(kPrefix, 0) != 0 || name.size() == kPrefix.size()) return -1;
  int64_t n = 0;
  for (size_t i = kPrefix.size(); i < name.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
    n = n * 10 + (name[i] - '0');
    if (n > (int64_t{1} << 40)) return -1;
  }
  return n;
}

}  // namespace

int64_t trace_json_int(const Json& args, const char* key) {
  auto it = args.find(key);
  if (it == args.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number()) {   // in range before the conversion (out of range it is undefined)
    const double v = it->get<double>();
    return std::isfinite(v) && v > -9.2e18 && v < 9.2e18 ? static_cast<int64_t>(v) : 0;
  }
  if (it->is_string()) {
    try {
      return std::stoll(it->get<std::string>());
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

double trace_json_num(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return 0;
  if (!it->is_number()) return std::numeric_limits<double>::quiet_NaN();
  return it->get<double>();
}

std::string trace_json_str(const Json& args, const char* key) {
  auto it = args.find(key);
  return it != args.end() && it->is_string() ? it->get<std::string>() : "";
}

std::vector<int> TorchTrace::chain(int op) const {
  std::vector<int> c;
  for (int i = op; i >= 0 && i < static_cast<int>(ops.size()) && c.size() < 16; i = ops[i].parent) c.push_back(i);
  return c;
}

Result<std::shared_ptr<const TorchTrace>> parse_torch_trace(const std::string& json_text, const std::string& label) {
  auto t = std::make_shared<TorchTrace>();
  t->root = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  const Json& root = t->root;
  if (root.is_discarded() || !root.is_object()) {
    // gzip's magic bytes: the traces under calibrate/data/h100/traces are committed compressed.
    if (json_text.size() >= 2 && static_cast<unsigned char>(json_text[0]) == 0x1f &&
        static_cast<unsigned char>(json_text[1]) == 0x8b)
      return Status::error(Error{label, "", "gzip-compressed data",
                                 "a gzip file; expected the Chrome-trace JSON itself: decompress it first "
                                 "(zcat FILE > trace.json)"});
    return Status::error(Error{label, "", "", "not JSON; expected the Chrome-trace object that "
                                              "torch.profiler's export_chrome_trace writes"});
  }
  auto te = root.find("traceEvents");
  if (te == root.end() || !te->is_array())
    return Status::error(Error{label, "/traceEvents", "",
                               "missing; expected an array of trace events (torch.profiler Chrome trace)"});

  if (auto dp = root.find("deviceProperties"); dp != root.end() && dp->is_array()) {
    t->gpus = static_cast<int>(dp->size());
    for (size_t i = 0; i < dp->size(); ++i) {
      const Json& d = (*dp)[i];
      if (!d.is_object()) continue;
      const int64_t id = d.contains("id") ? trace_json_int(d, "id") : static_cast<int64_t>(i);
      t->device_names[id] = trace_json_str(d, "name");
    }
  }
  if (auto di = root.find("distributedInfo"); di != root.end() && di->is_object()) {
    t->nccl_version = trace_json_str(*di, "nccl_version");
    t->world_size = trace_json_int(*di, "world_size");
    if (di->contains("rank")) t->rank = trace_json_int(*di, "rank");
  }

  std::vector<std::pair<std::string, std::string>> op_thread;   // (pid, tid) as text
  std::unordered_map<int64_t, int> op_of_ext;
  struct Launch {
    int64_t ext = -1;
    double ts = -1;
  };
  std::unordered_map<int64_t, Launch> launch_of_corr;
  std::map<int64_t, TraceStep> steps;
  for (const Json& e : *te) {
    if (!e.is_object() || trace_json_str(e, "ph") != "X") continue;
    const std::string cat = trace_json_str(e, "cat");
    if (cat.empty()) continue;
    auto ait = e.find("args");
    const Json* args = ait != e.end() && ait->is_object() ? &*ait : nullptr;
    // "ts" and "dur" as numbers; a trace that spells them otherwise is not one the profiler
    // wrote: such an event is left out.
    const double ts = trace_json_num(e, "ts"), dur = trace_json_num(e, "dur");
    if (!std::isfinite(ts) || !std::isfinite(dur)) continue;
    if (cat == "cpu_op") {
      if (args && args->contains("External id"))
        op_of_ext.emplace(trace_json_int(*args, "External id"), static_cast<int>(t->ops.size()));
      t->ops.push_back(TraceCpuOp{trace_json_str(e, "name"), args, ts, ts + dur, -1});
      op_thread.emplace_back(e.contains("pid") ? e["pid"].dump() : "", e.contains("tid") ? e["tid"].dump() : "");
    } else if (cat == "cuda_runtime" || cat == "cuda_driver") {
      if (args && args->contains("correlation")) {
        Launch& l = launch_of_corr[trace_json_int(*args, "correlation")];
        if (args->contains("External id")) l.ext = trace_json_int(*args, "External id");
        l.ts = ts;
      }
    } else if (cat == "kernel") {
      TraceKernel k;
      k.name = trace_json_str(e, "name");
      k.args = args;
      k.ts = ts;
      k.dur = dur;
      k.device = args && args->contains("device") ? trace_json_int(*args, "device")
                                                  : (e.contains("pid") && e["pid"].is_number_integer() ? e["pid"].get<int64_t>() : 0);
      k.stream = args && args->contains("stream") ? trace_json_int(*args, "stream")
                                                  : (e.contains("tid") && e["tid"].is_number_integer() ? e["tid"].get<int64_t>() : 0);
      t->kernels.push_back(std::move(k));
    } else if (cat == "user_annotation" || cat == "gpu_user_annotation") {
      const int64_t n = step_number(trace_json_str(e, "name"));
      if (n < 0 || !e.contains("dur")) continue;   // no duration: the trace ended inside the step
      TraceStep& s = steps[n];
      s.number = n;
      if (cat == "user_annotation") {
        s.cpu_ts = ts;
        s.cpu_end = ts + dur;
      } else {
        s.gpu_ts = ts;
        s.gpu_end = ts + dur;
      }
    }
  }
  for (auto& [n, s] : steps) t->steps.push_back(s);

  // Parents by time containment per thread.
  {
    std::map<std::pair<std::string, std::string>, std::vector<int>> by_thread;
    for (int i = 0; i < static_cast<int>(t->ops.size()); ++i) by_thread[op_thread[i]].push_back(i);
    auto& ops = t->ops;
    for (auto& [thread, idx] : by_thread) {
      std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
        if (ops[a].ts != ops[b].ts) return ops[a].ts < ops[b].ts;
        return ops[a].end > ops[b].end;
      });
      std::vector<int> stack;
      for (int i : idx) {
        // 1 ns slack: exported timestamps are rounded, a child may end a hair after its parent.
        while (!stack.empty() && ops[stack.back()].end + 1e-3 < ops[i].end) stack.pop_back();
        if (!stack.empty()) ops[i].parent = stack.back();
        stack.push_back(i);
      }
    }
  }

  // Kernel -> launch -> launching op.
  for (TraceKernel& k : t->kernels) {
    if (!k.args) continue;
    int64_t ext = -1;
    if (k.args->contains("correlation")) {
      auto it = launch_of_corr.find(trace_json_int(*k.args, "correlation"));
      if (it != launch_of_corr.end()) {
        ext = it->second.ext;
        k.launch_ts = it->second.ts;
      }
    }
    if (ext < 0 && k.args->contains("External id")) ext = trace_json_int(*k.args, "External id");
    if (auto it = op_of_ext.find(ext); it != op_of_ext.end()) k.op = it->second;
  }
  return std::shared_ptr<const TorchTrace>(std::move(t));
}

const char* to_string(KernelClass c) {
  switch (c) {
    case KernelClass::kGemm: return "gemm";
    case KernelClass::kAttention: return "attention";
    case KernelClass::kNorm: return "norm";
    case KernelClass::kElementwise: return "elementwise";
    case KernelClass::kOptimizer: return "optimizer";
    case KernelClass::kEmbedding: return "embedding";
    case KernelClass::kLoss: return "loss";
    case KernelClass::kComm: return "collective";
    case KernelClass::kUnknown: break;
  }
  return "unknown";
}

KernelClass classify_kernel_name(const std::string& name) {
  const std::string n = to_lower(name);
  if (contains(n, "ncclkernel_") || contains(n, "nccldevkernel_")) return KernelClass::kComm;
  if (contains(n, "flash_fwd") || contains(n, "flash_bwd") || contains(n, "fmha") || contains(n, "cudnn_generated_fort_native_sdpa") ||
      contains(n, "scaled_dot_product"))
    return KernelClass::kAttention;
  if (contains(n, "layer_norm") || contains(n, "layernorm") || contains(n, "rms_norm") || contains(n, "rmsnorm"))
    return KernelClass::kNorm;
  if (contains(n, "multi_tensor_apply") || contains(n, "adam")) return KernelClass::kOptimizer;
  if (contains(n, "nll_loss") || contains(n, "cross_entropy")) return KernelClass::kLoss;
  if (contains(n, "embedding") || contains(n, "indexselect")) return KernelClass::kEmbedding;
  if (contains(n, "gemm") || contains(n, "cutlass") || contains(n, "sm90_xmma") || contains(n, "cublaslt") || contains(n, "nvjet"))
    return KernelClass::kGemm;
  if (contains(n, "elementwise_kernel") || contains(n, "gelu") || contains(n, "silu")) return KernelClass::kElementwise;
  // fp8 casts (the plan's `<gemm>.fp8cast.*` elementwise ops): Transformer Engine's cast /
  // cast-transpose / quantize kernels and the amax reductions of dynamic scaling.
  if (contains(n, "cast_transpose") || contains(n, "quantize") || contains(n, "amax")) return KernelClass::kElementwise;
  return KernelClass::kUnknown;
}

KernelClass classify_kernel(const TorchTrace& t, const TraceKernel& k) {
  const KernelClass c = classify_kernel_name(k.name);
  if (c != KernelClass::kUnknown || k.op < 0) return c;
  for (int i : t.chain(k.op)) {
    const std::string& op = t.ops[i].name;
    if (op.rfind("aten::embedding", 0) == 0) return KernelClass::kEmbedding;
    if (op == "aten::cross_entropy_loss" || op.rfind("aten::nll_loss", 0) == 0 ||
        op.rfind("aten::_log_softmax", 0) == 0 || op == "aten::log_softmax")
      return KernelClass::kLoss;
  }
  return KernelClass::kUnknown;
}

std::string nccl_kind(const std::string& collective_name, const std::string& kernel_name) {
  const std::string c = to_lower(collective_name);
  if (!c.empty()) {
    if (contains(c, "allreduce") || contains(c, "all_reduce")) return "all-reduce";
    if (contains(c, "allgather") || contains(c, "all_gather")) return "all-gather";
    if (contains(c, "reduce_scatter") || contains(c, "reducescatter")) return "reduce-scatter";
    if (contains(c, "all_to_all") || contains(c, "alltoall")) return "all-to-all";
    if (contains(c, "broadcast")) return "broadcast";
    if (contains(c, "send") || contains(c, "recv")) return "send-recv";
  }
  const std::string k = to_lower(kernel_name);
  if (contains(k, "allreduce")) return "all-reduce";
  if (contains(k, "allgather")) return "all-gather";
  if (contains(k, "reducescatter")) return "reduce-scatter";
  if (contains(k, "alltoall")) return "all-to-all";
  if (contains(k, "broadcast")) return "broadcast";
  if (contains(k, "sendrecv") || contains(k, "send") || contains(k, "recv")) return "send-recv";
  return "";
}

}  // namespace trainsim
