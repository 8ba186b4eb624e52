// File: calibrate/cuda/device_info.cpp
#include "device_info.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

#include <cuda_runtime.h>

#include "check.h"
#include "job_file.h"

#ifdef TRAINSIM_HAVE_CUDNN
#include <cudnn.h>
#endif
#ifdef TRAINSIM_HAVE_NCCL
#include <nccl.h>
#endif

namespace tscal {

namespace {

[[maybe_unused]] std::string version3(int v) {  // 22809 -> "2.28.9", 91900 -> "9.19.0"
  char b[32];
  std::snprintf(b, sizeof b, "%d.%d.%d", v / 10000, (v % 10000) / 100, v % 100);
  return b;
}
std::string cuda_version(int v) {  // 13000 -> "13.0"
  char b[32];
  std::snprintf(b, sizeof b, "%d.%d", v / 1000, (v % 1000) / 10);
  return b;
}

std::string nccl_version() {
#ifdef TRAINSIM_HAVE_NCCL
  int v = 0;
  TS_NCCL(ncclGetVersion(&v));
  return version3(v);
#else
  return "";
#endif
}
std::string cudnn_version() {
#ifdef TRAINSIM_HAVE_CUDNN
  return version3(static_cast<int>(cudnnGetVersion()));
#else
  return "";
#endif
}

// The driver release ("550.54.15") from NVML, loaded at run time so that the program does not
// depend on it; else the CUDA version the driver supports ("cuda 12.4").
std::string driver_version() {
  if (void* h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL)) {
    using InitFn = int (*)();
    using GetFn = int (*)(char*, unsigned);
    auto init = reinterpret_cast<InitFn>(dlsym(h, "nvmlInit_v2"));
    auto get = reinterpret_cast<GetFn>(dlsym(h, "nvmlSystemGetDriverVersion"));
    auto shut = reinterpret_cast<InitFn>(dlsym(h, "nvmlShutdown"));
    char buf[96] = {0};
    if (init && get && init() == 0) {
      const bool ok = get(buf, sizeof buf) == 0;
      if (shut) shut();
      if (ok && buf[0]) return buf;
    }
  }
  int v = 0;
  TS_CUDA(cudaDriverGetVersion(&v));
  return "cuda " + cuda_version(v);
}

std::string iso_date_utc() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

std::string hostname() {
  char b[256] = {0};
  if (gethostname(b, sizeof b - 1) != 0) return "";
  return b;
}

}  // namespace

std::string built_with() {
  std::string s = "cublasLt";
#ifdef TRAINSIM_HAVE_CUDNN
  s += ", cudnn (fused SDPA for attention; own kernels where cuDNN rejects the graph)";
#else
  s += ", no cudnn";
#endif
#ifdef TRAINSIM_HAVE_NCCL
  s += ", nccl";
#else
  s += ", no nccl (collectives skipped)";
#endif
#ifdef TRAINSIM_HAVE_CUPTI
  s += ", cupti";
#else
  s += ", no cupti (no kernel_us)";
#endif
  return s;
}


std::string cuda_version_string(int v) { return cuda_version(v); }

std::string device_json(int device, int gpus) {
  cudaDeviceProp prop{};
  TS_CUDA(cudaGetDeviceProperties(&prop, device));
  int rt = 0;
  TS_CUDA(cudaRuntimeGetVersion(&rt));
  char b[1024];
  std::snprintf(b, sizeof b,
                "{\"name\": \"%s\", \"driver\": \"%s\", \"cuda\": \"%s\", \"nccl\": \"%s\", \"cudnn\": \"%s\", "
                "\"host\": \"%s\", \"date\": \"%s\", \"gpus\": %d}",
                json_escape(prop.name).c_str(), json_escape(driver_version()).c_str(), cuda_version(rt).c_str(),
                nccl_version().c_str(), cudnn_version().c_str(), json_escape(hostname()).c_str(), iso_date_utc().c_str(),
                gpus);
  return b;
}

int check_device(int device, int* count) {
  int n = 0;
  const cudaError_t ce = cudaGetDeviceCount(&n);
  if (count) *count = ce == cudaSuccess ? n : 0;
  if (ce != cudaSuccess || n == 0) {
    std::fprintf(stderr, "error: no CUDA device (cudaGetDeviceCount: %s)\n",
                 ce != cudaSuccess ? cudaGetErrorString(ce) : "0 devices");
    return 3;
  }
  if (device >= n) {
    std::fprintf(stderr, "error: --device %d: only %d CUDA device(s) visible\n", device, n);
    return 2;
  }
  return 0;
}

}  // namespace tscal
