// File: calibrate/torch_trace.h
// The parts of a torch.profiler Chrome trace (export_chrome_trace, or the tensorboard handler's
// *.pt.trace.json) that both readers of such traces need: the import into measurement lines
// (calibrate/import_torch_trace.h) and the comparison of a real run with the simulated timeline
// of one rank (scenarios/compare_trace.h).
//
//   auto t = parse_torch_trace(json_text, "rank0.pt.trace.json");
//   for (const TraceKernel& k : t.value()->kernels)
//     KernelClass c = classify_kernel(*t.value(), k);
//
// What is indexed ("ph": "X" events only):
//   cpu_op           -> ops, with their parent by time containment on the same thread;
//   cuda_runtime / cuda_driver launches -> by correlation: the launch time and External id;
//   kernel           -> kernels, each linked to its launching cpu op: kernel "correlation" ->
//                       the launch with that correlation -> its "External id" -> the cpu_op with
//                       that External id (the kernel's own "External id" when the launch is
//                       missing);
//   user_annotation / gpu_user_annotation named "ProfilerStep#N" -> steps (CPU span, and the GPU
//                       span when the trace has one).
// Times stay in the trace's unit, microseconds as doubles; a caller turns them into Time.
// Thread-safety: pure functions; a TorchTrace is immutable after parsing (its pointers point
// into its own `root`, so it is handed out behind a shared_ptr and never copied).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/status.h"

namespace trainsim {

struct TraceCpuOp {
  std::string name;
  const nlohmann::json* args = nullptr;   // "args" object or nullptr
  double ts = 0, end = 0;                 // us
  int parent = -1;                        // enclosing cpu op on the same thread
};

struct TraceKernel {
  std::string name;
  const nlohmann::json* args = nullptr;
  double ts = 0, dur = 0;                 // us, on the GPU
  double launch_ts = -1;                  // us, its cuda_runtime launch; -1 when not recorded
  int64_t device = 0, stream = 0;         // args "device" / "stream" (else the event's tid)
  int op = -1;                            // launching cpu op (index into ops), -1 when unknown
};

struct TraceStep {
  int64_t number = 0;                     // N of "ProfilerStep#N"
  double cpu_ts = 0, cpu_end = -1;        // CPU annotation span; cpu_end < 0: no CPU span
  double gpu_ts = 0, gpu_end = -1;        // gpu_user_annotation span; gpu_end < 0: none
};

struct TorchTrace {
  nlohmann::json root;
  std::vector<TraceCpuOp> ops;
  std::vector<TraceKernel> kernels;       // in trace order
  std::vector<TraceStep> steps;           // ascending step number
  std::map<int64_t, std::string> device_names;   // deviceProperties id -> name
  int gpus = 0;                           // entries in deviceProperties
  int64_t world_size = 0;                 // distributedInfo.world_size (0: absent)
  int64_t rank = -1;                      // distributedInfo.rank (-1: absent)
  std::string nccl_version;               // distributedInfo.nccl_version
  // op and its enclosing ops, innermost first (at most 16).
  std::vector<int> chain(int op) const;
};

// Error (naming `label`): text that is not JSON or lacks the "traceEvents" array.
Result<std::shared_ptr<const TorchTrace>> parse_torch_trace(const std::string& json_text,
                                                            const std::string& label);

enum class KernelClass : uint8_t { kUnknown, kGemm, kAttention, kNorm, kElementwise, kOptimizer,
                                   kEmbedding, kLoss, kComm };
const char* to_string(KernelClass c);   // "gemm", ..., "collective", "unknown"

// Kernel name -> class. Order matters: flash and fmha kernels carry "cutlass" in their template
// arguments, so attention is tested before GEMM; NCCL kernels ("ncclKernel_*",
// "ncclDevKernel_*") are kComm. Embedding ("embedding", "indexSelect") and loss ("nll_loss",
// "cross_entropy") kernel names are recognised too.
KernelClass classify_kernel_name(const std::string& kernel_name);

// The name first; a kernel whose name says nothing (a softmax, a generic reduction) takes the
// class of its launching op chain when that is an embedding (aten::embedding*) or a loss
// (aten::cross_entropy_loss, aten::nll_loss*, aten::_log_softmax*), innermost op first.
KernelClass classify_kernel(const TorchTrace& t, const TraceKernel& k);

// NCCL collective kind from record_param_comms' "Collective name" (when given) or the kernel
// name: "all-reduce", "all-gather", "reduce-scatter", "all-to-all", "broadcast", "send-recv";
// "" when neither says.
std::string nccl_kind(const std::string& collective_name, const std::string& kernel_name);

// Lenient readers of trace "args" values (numbers may be written as strings).
int64_t trace_json_int(const nlohmann::json& args, const char* key);
// `key` of obj as a number: 0 when absent, NaN when present but not a number.
double trace_json_num(const nlohmann::json& obj, const char* key);
std::string trace_json_str(const nlohmann::json& args, const char* key);

}  // namespace trainsim
