// File: topologies/hardware.h
// The hardware catalog (topologies/data/gpus.json, embedded in the binary) and the cluster a
// scenario runs on. Every figure in the catalog names its source in the data file.
// Units: FLOP/s per GPU (dense, no sparsity), bytes, bytes/s. NVLink bandwidth is per GPU, per
// direction; NIC bandwidth is per GPU, per direction.
// Thread-safety: catalog() parses once on first use (function-local static) and is then immutable.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "models/spec.h"
#include "sim/status.h"
#include "sim/units.h"

namespace trainsim {

struct GpuSpec {
  std::string name;                 // "H100-SXM-80GB"
  FlopRate peak_bf16;               // dense tensor-core peak
  FlopRate peak_fp16;
  FlopRate peak_fp8;                // 0 when the GPU has no fp8 tensor cores
  FlopRate peak_fp32;               // non-tensor-core fp32 (elementwise, optimizer)
  Bytes hbm_capacity;
  Bandwidth hbm_bandwidth;
  Bandwidth nvlink_bandwidth;       // per GPU, per direction (NVSwitch port bandwidth)
  Bandwidth nic_bandwidth;          // default scale-out NIC bandwidth per GPU, per direction
  Bandwidth pcie_bandwidth;         // host link per GPU, per direction (activation offload)
  int gpus_per_node = 8;            // usual node size (HGX/DGX)
  int sms = 0;                      // streaming multiprocessors
  double tdp_w = 0;                 // board power the peaks are specified at
  double power_limit_w = 0;         // power limit the part runs at (< tdp_w: power-capped)
  std::string source;               // where the figures come from
  // The family whose embedded kernel efficiencies price it ("ampere", "hopper", "blackwell";
  // calibrate/data/defaults.json): the catalog's from the name (gpu_family_of_name), a custom
  // GPU's from the catalog GPU it is based on.
  std::string family;
  std::string base;                 // a custom GPU (a scenario's own): the catalog GPU it starts from; "" otherwise
  FlopRate peak(DType d) const;
};

// The kernel-efficiency family a GPU name belongs to: A100/A800 "ampere", H100/H800/H200
// "hopper", B100/B200 "blackwell", anything else "hopper".
std::string gpu_family_of_name(const std::string& name);

// All GPUs of the catalog, by name. Error only if the embedded data is malformed (a bug).
const std::map<std::string, GpuSpec>& gpu_catalog();
// Looks a GPU up by name (exact, case-insensitive); the error lists the accepted names.
Result<GpuSpec> find_gpu(const std::string& name);

enum class ScaleOut : uint8_t { kInfiniBand, kRoCE, kOmniPath };
const char* to_string(ScaleOut);

struct ClusterSpec {
  GpuSpec gpu;
  int gpus = 0;
  int gpus_per_node = 8;
  ScaleOut scale_out = ScaleOut::kInfiniBand;
  Bandwidth nic_bandwidth;          // per GPU, per direction; defaults to gpu.nic_bandwidth
  Bandwidth nvlink_bandwidth;       // per GPU, per direction; defaults to gpu.nvlink_bandwidth
  Bandwidth pcie_bandwidth;         // host link per GPU, per direction; defaults to gpu.pcie_bandwidth
  int nodes() const { return gpus / gpus_per_node; }
};

}  // namespace trainsim
