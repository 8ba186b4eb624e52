// File: calibrate/cuda/op_runner.h
// One compute op made ready to run on this GPU: device buffers allocated and filled with random
// values (never zeros), cuBLASLt descriptors built and an algorithm picked, cuDNN SDPA graphs
// built (own kernels where cuDNN cannot take the graph). run() queues one execution on a
// caller's stream, so the same code serves the calibrator's timing harness (ops.cpp: many
// runs on one stream, rotating input sets) and the plan executor (executor.cpp: each op once
// per step, on the stream the plan names). What each class runs is the table of README.md.
// Memory: a runner owns its buffers, or takes consecutive slices of a caller's Arena (the
// executor's shared-buffer mode, where every op aliases one region: the values are
// meaningless but the kernels and their traffic are the same).
// Thread-safety: a runner is used by one host thread; run() on two streams at once is allowed
// (outputs race, harmless for timing).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "calibrator.h"
#include "job_file.h"

namespace tscal {

// A caller's device region that runners carve their buffers from (256-byte aligned slices).
struct Arena {
  char* base = nullptr;
  int64_t size = 0;
  int64_t used = 0;
};

class OpRunner {
 public:
  virtual ~OpRunner() = default;
  // Queues one execution on s; `i` picks the input set (i % sets()) and, for Adam, the step.
  virtual void run(cudaStream_t s, int i) = 0;
  int sets() const { return sets_; }
  const std::string& source() const { return source_; }  // the measurement line's "source"

 protected:
  // Device memory of `bytes`: from the arena when one was given, else owned by the runner.
  void* alloc(int64_t bytes);
  int sets_ = 1;
  std::string source_;
  Arena* arena_ = nullptr;

 private:
  std::vector<std::unique_ptr<DeviceBuffer>> owned_;
};

// Device bytes one input set of j needs (the part rotated over when sets > 1), and the bytes
// needed once (cuBLASLt workspace, scales, a norm's weight row). cuDNN's own workspace is not
// counted (cudnn_sdpa.h allocates it). Needs no GPU.
int64_t runner_set_bytes(const OpJob& j);
int64_t runner_fixed_bytes(const OpJob& j);
inline int64_t runner_bytes(const OpJob& j, int sets) {
  return runner_set_bytes(j) * sets + runner_fixed_bytes(j) + 256 * 16;  // slack for slice alignment
}

// Builds the runner of op j with `sets` input sets (>= 1), filling inputs on stream s (and,
// for GEMMs, trying the heuristic's candidates once each on s). Returns nullptr with *why when
// the op cannot run here (unsupported dtype on this GPU, no cuBLASLt algorithm, shape beyond the
// kernels, ...). *note is set (else cleared) when the runner falls back, e.g. to the own
// attention kernels because cuDNN cannot take the graph. CUDA/library errors exit(1) (check.h).
std::unique_ptr<OpRunner> make_runner(const OpJob& j, int device, int sets, Arena* arena, cudaStream_t s,
                                      std::string* why, std::string* note);

}  // namespace tscal
