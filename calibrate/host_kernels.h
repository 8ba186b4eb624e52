// File: calibrate/host_kernels.h
// Real CPU kernels for the compute ops of a plan (verify mode's host executor, and what
// `trainsim calibrate --host` times). Each op runs the work its OpDesc describes:
//   gemm         Eigen float (m x k) * (k x n), `batch` products (one operand set, reused);
//   attention    real scaled-dot-product attention per (batch, head): QK^T, softmax, PV, in
//                blocks of 64 queries; a causal block only reads the keys it may see (so, as in
//                a flash kernel, the masked half is not computed); GQA heads share K/V;
//                backward recomputes P and forms dV, dP, dS, dQ, dK (FlashAttention-2 order);
//   norm         RMSNorm over rows of 256 (forward: x -> y; backward: x, dy -> dx);
//   elementwise  forward out = a * silu(b); backward out = a * silu'(b);
//   embedding    row gather (forward) / row scatter-add (backward), rows of 256;
//   loss         softmax cross-entropy over rows of 1024 (forward: loss; backward: dlogits);
//   optimizer    Adam (beta 0.9/0.999, eps 1e-8) on float p, g, m, v;
//   offload      a copy of the bytes (host memory to host memory).
// Sizes: the plan counts bf16 bytes (2 B per element). The host runs the same element counts
// in float (4 B), so it moves twice the plan's bytes; the calibration times these very kernels,
// so predictions and measurements rest on the same code. Memory-bound ops take their element
// counts from OpDesc::bytes / 2 split over their operands (norm fwd: 2 operands, bwd: 3;
// elementwise: 3; embedding: 2; loss: 2; optimizer: bytes / 34 parameters, the compiler's
// Adam convention of 34 B per parameter; offload: 2).
// Numerics stay finite across repeated runs (inputs drawn once from a fixed LCG, outputs never
// fed back except Adam, which is stable); denormals are flushed (set_flush_denormals()).
// Thread-safety: a HostKernel is used by one thread at a time; distinct kernels are independent.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sim/plan.h"
#include "sim/status.h"

namespace trainsim {

class HostKernel {
 public:
  virtual ~HostKernel() = default;
  virtual void run() = 0;
  // Bytes of host memory the kernel holds.
  virtual int64_t footprint() const = 0;
};

// Allocates and fills the buffers of one compute op (not a collective or p2p op).
// Error: the op would need more than `max_bytes` of host memory (names the op and the size),
// or its class has no host kernel.
Result<std::unique_ptr<HostKernel>> make_host_kernel(const OpDesc& op, int64_t max_bytes);

// Host bytes make_host_kernel would allocate for `op` (0 for comm ops).
int64_t host_kernel_footprint(const OpDesc& op);

// Sets flush-to-zero / denormals-are-zero for the calling thread (x86; no-op elsewhere).
void set_flush_denormals();

// Element count of a comm op's float buffer: the plan's bf16 elements, bytes / 2 (at least 1).
int64_t comm_elements(const OpDesc& op);

}  // namespace trainsim
