// File: calibrate/import_torch_trace.h
// Imports the Chrome-trace JSON that torch.profiler exports (export_chrome_trace, or the
// tensorboard handler's *.pt.trace.json) into measurement lines (calibrate/FORMAT.md section 2):
// "op" lines for GEMM, attention, norm, elementwise and optimizer kernels, "collective" lines
// for NCCL kernels whose message size the trace records.
//
//   TraceImportStats st;
//   auto lines = import_torch_trace(json_text, "run3/rank0.pt.trace.json", {}, &st);
//
// The trace is read and kernels are classified by calibrate/torch_trace.h (shared with
// `trainsim compare-trace`): classify_kernel_name() on the kernel name alone.
// How a kernel gets its shape: kernel "correlation" -> the cuda_runtime launch with the same
// correlation -> its "External id" -> the cpu_op with that External id (the innermost aten op
// that launched it; the kernel's own "External id" when the launch is missing). When that op
// does not give a shape, its enclosing cpu_ops on the same thread (by time containment) are
// tried, innermost first. Shapes need a trace recorded with record_shapes=True.
//   - GEMM: aten::mm [m,k][k,n]; aten::addmm (bias, [m,k], [k,n]); aten::linear ([..,k],
//     [n,k]: m = product of leading dims); aten::matmul; aten::bmm / aten::baddbmm (batch);
//     aten::_scaled_mm (fp8). dtype from the first matrix's "Input type".
//   - attention: aten::scaled_dot_product_attention and aten::_scaled_dot_product_{flash,
//     efficient,cudnn}_attention[_backward] ([batch, heads, seq, head_dim]); flash_attn's
//     ops ([batch, seq, heads, head_dim]). causal from "Concrete Inputs" when recorded.
//     FIXME: causal defaults to false when the trace has no Concrete Inputs.
//   - norm / elementwise / optimizer / embedding / loss: bytes = 2 x sum of the op's tensor inputs x element size
//     (read + write). An ESTIMATE: a binary op writes one tensor, not two; TensorList inputs of
//     optimizer ops are taken as fp32. op "name" is the aten op (e.g. "aten::native_layer_norm").
//   - collectives ("ncclKernel_*" / "ncclDevKernel_*"): size from "In msg nelems" / "Out msg
//     nelems" and "dtype" on the kernel or an enclosing "record_param_comms" op (all-gather:
//     output bytes, others: input bytes, as nccl-tests); group_size from "Group size" (else the
//     trace's distributedInfo.world_size). per_node = min(group_size, GPUs in
//     deviceProperties), nodes = ceil(group_size / per_node): an assumption (ranks packed by
//     node) since a trace does not say where its peers ran. busbw from algbw with nccl-tests'
//     factors. Without a size the kernel is skipped (skipped_no_shape, comm_no_size).
// Kernels of one op instance and one class are summed (a flash backward is three kernels, a
// split-K GEMM two); instances with identical ops are then merged into one line: time_us the
// median, min_us the minimum, runs the count. Lines come in order of first appearance.
// Errors: text that is not JSON or lacks "traceEvents" (names the label and what was expected).
// Thread-safety: pure function.
#pragma once
#include <string>
#include <vector>

#include "calibrate/import_nccl_tests.h"   // ImportDeviceHint
#include "sim/status.h"

namespace trainsim {

struct TraceImportStats {
  int kernels = 0;            // GPU kernel events in the trace
  int mapped = 0;             // kernels that went into an output line
  int skipped_no_shape = 0;   // class known, no shape / size found
  int skipped_unknown = 0;    // name matches no op class (copies, reductions, softmax, ...)
  int comm_no_size = 0;       // of skipped_no_shape: NCCL kernels without a message size
};

Result<std::vector<std::string>> import_torch_trace(const std::string& json_text,
                                                    const std::string& label,
                                                    const ImportDeviceHint& hint,
                                                    TraceImportStats* stats = nullptr);

}  // namespace trainsim
