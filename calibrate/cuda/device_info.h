// File: calibrate/cuda/device_info.h
// The "device" object of the calibrator's measurement lines (calibrate/FORMAT.md section 2),
// shared with trainsim_executor's output: GPU name, driver release (NVML loaded at run time if
// present, else "cuda X.Y" from cudaDriverGetVersion), CUDA runtime, NCCL and cuDNN versions of
// the loaded libraries, hostname, start time (UTC ISO) and the GPU count.
// Thread-safety: call from one thread (NVML is loaded and shut down inside).
#pragma once
#include <string>

namespace tscal {

// {"name": ..., "driver": ..., "cuda": ..., "nccl": ..., "cudnn": ..., "host": ..., "date": ..., "gpus": N}
std::string device_json(int device, int gpus);
// "13.0" from 13000.
std::string cuda_version_string(int v);
// Which optional libraries this binary was built with, for --version and --self-test.
std::string built_with();
// Checks that CUDA sees a device and that `device` is one of them; prints the error. Returns
// the program's exit code for it (0 fine, 3 no CUDA device, 2 no such --device) and, when
// `count` is given, the number of visible devices.
int check_device(int device, int* count = nullptr);

}  // namespace tscal
