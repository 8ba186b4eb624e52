// File: calibrate/cuda/main.cpp
// trainsim_calibrator: reads a job list (calibrate/FORMAT.md section 1), measures each op and
// collective on this machine's GPUs, and writes one measurement JSON line per point (section 2).
//
//   trainsim_calibrator --jobs JOBS.json [--out FILE.jsonl] [--device N] [--gpus N] [--no-cupti]
//   trainsim_calibrator --self-test --jobs JOBS.json     # parse only; needs no GPU
//   trainsim_calibrator --check-attention [--device N]   # cuDNN SDPA vs own kernels
//   trainsim_calibrator --version
//
// Exit codes: 0 done (skipped jobs are reported on stderr as "skip: PATH: why"); 1 a CUDA or
// library call failed (--check-attention: a case over tolerance); 2 bad arguments or job list;
// 3 no CUDA device.
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <string>

#include <cuda_runtime.h>

#include "calibrator.h"
#include "check.h"
#include "device_info.h"
#include "job_file.h"


namespace {

constexpr const char* kVersion = "0.1.0";

int usage(const char* msg) {
  if (msg) std::fprintf(stderr, "error: %s\n", msg);
  std::fprintf(stderr,
               "usage: trainsim_calibrator --jobs JOBS.json [--out FILE.jsonl] [--device N] [--gpus N] [--no-cupti]\n"
               "       trainsim_calibrator --self-test --jobs JOBS.json\n"
               "       trainsim_calibrator --check-attention [--device N]\n"
               "       trainsim_calibrator --version\n");
  return 2;
}

bool parse_int(const char* s, int* out) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (!s[0] || *end || v < 0 || v > 1 << 20) return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string jobs_path, out_path;
  int device = 0, gpus = -1;
  bool self_test = false, cupti = true, check_attention = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&](const char* what) -> const char* {
      if (i + 1 >= argc) { usage((a + " needs " + what).c_str()); std::exit(2); }
      return argv[++i];
    };
    if (a == "--jobs") jobs_path = next("a file");
    else if (a == "--out") out_path = next("a file");
    else if (a == "--device") { if (!parse_int(next("a number"), &device)) return usage("--device: not a number"); }
    else if (a == "--gpus") { if (!parse_int(next("a number"), &gpus) || gpus < 1) return usage("--gpus: a number >= 1"); }
    else if (a == "--self-test") self_test = true;
    else if (a == "--check-attention") check_attention = true;
    else if (a == "--no-cupti") cupti = false;
    else if (a == "--version") {
      std::printf("trainsim_calibrator %s (built with CUDA %d.%d; %s)\n", kVersion, CUDART_VERSION / 1000,
                  (CUDART_VERSION % 1000) / 10, tscal::built_with().c_str());
      return 0;
    } else if (a == "--help" || a == "-h") { usage(nullptr); return 0; }
    else return usage(("unknown argument " + a).c_str());
  }
  if (check_attention) {
    int count = 0;
    const cudaError_t ce = cudaGetDeviceCount(&count);
    if (ce != cudaSuccess || count == 0) {
      std::fprintf(stderr, "error: no CUDA device (cudaGetDeviceCount: %s)\n",
                   ce != cudaSuccess ? cudaGetErrorString(ce) : "0 devices");
      return 3;
    }
    if (device >= count) {
      std::fprintf(stderr, "error: --device %d: only %d CUDA device(s) visible\n", device, count);
      return 2;
    }
    return tscal::check_attention(device);
  }
  if (jobs_path.empty()) return usage("--jobs is required");

  tscal::JobFile jobs;
  std::vector<std::string> errors;
  if (!tscal::load_jobs(jobs_path, &jobs, &errors)) {
    for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.c_str());
    return 2;
  }
  if (self_test) {
    std::map<std::string, int> ops, colls;
    for (const auto& o : jobs.ops) ++ops[o.cls];
    for (const auto& c : jobs.colls) ++colls[c.kind];
    std::printf("self-test: %s: version 1, warmup %lld, runs %lld\n", jobs_path.c_str(), (long long)jobs.warmup,
                (long long)jobs.runs);
    std::printf("ops: %zu\n", jobs.ops.size());
    for (const auto& [k, n] : ops) std::printf("  %-14s %d\n", k.c_str(), n);
    std::printf("collectives: %zu\n", jobs.colls.size());
    for (const auto& [k, n] : colls) std::printf("  %-14s %d\n", k.c_str(), n);
    std::printf("built with: %s\n", tscal::built_with().c_str());
    return 0;
  }

  int count = 0;
  const cudaError_t ce = cudaGetDeviceCount(&count);
  if (ce != cudaSuccess || count == 0) {
    std::fprintf(stderr, "error: no CUDA device (cudaGetDeviceCount: %s)\n",
                 ce != cudaSuccess ? cudaGetErrorString(ce) : "0 devices");
    return 3;
  }
  if (device >= count) {
    std::fprintf(stderr, "error: --device %d: only %d CUDA device(s) visible\n", device, count);
    return 2;
  }
  if (gpus < 0) gpus = count;
  if (gpus > count) {
    std::fprintf(stderr, "error: --gpus %d: only %d CUDA device(s) visible\n", gpus, count);
    return 2;
  }

  cudaDeviceProp prop{};
  TS_CUDA(cudaGetDeviceProperties(&prop, device));
  const std::string dev = tscal::device_json(device, gpus);
  const char* dev_json = dev.c_str();

  FILE* out = stdout;
  if (!out_path.empty()) {
    out = std::fopen(out_path.c_str(), "w");
    if (!out) {
      std::fprintf(stderr, "error: %s: cannot open for writing: %s\n", out_path.c_str(), std::strerror(errno));
      return 2;
    }
  }
  std::fprintf(stderr, "trainsim_calibrator: %s (cc %d.%d), %d GPU(s); %zu ops, %zu collectives\n", prop.name, prop.major,
               prop.minor, gpus, jobs.ops.size(), jobs.colls.size());

  tscal::Options opt;
  opt.warmup = static_cast<int>(jobs.warmup);
  opt.runs = static_cast<int>(jobs.runs);
  opt.cupti = cupti;
  opt.kernel_runs = std::min(opt.runs, 20);
  int measured = 0, skipped = 0;
  for (const auto& j : jobs.ops) {
    TS_CUDA(cudaSetDevice(device));
    tscal::Timing t;
    std::string source;
    bool ok;
    if (j.cls == "gemm") ok = tscal::measure_gemm(j, opt, device, &t, &source);
    else if (j.cls == "attention") ok = tscal::measure_attention(j, opt, device, &t, &source);
    else ok = tscal::measure_memory_bound(j, opt, device, &t, &source);
    if (!ok) { ++skipped; continue; }
    std::string kernel;
    if (t.kernel_us >= 0) {
      char b[64];
      std::snprintf(b, sizeof b, ", \"kernel_us\": %.3f", t.kernel_us);
      kernel = b;
    }
    std::fprintf(out, "{\"kind\": \"op\", \"device\": %s, \"op\": %s, \"time_us\": %.3f, \"min_us\": %.3f, \"runs\": %d%s, \"source\": \"%s\"}\n",
                 dev_json, tscal::op_json(j).c_str(), t.median_us, t.min_us, t.runs, kernel.c_str(),
                 tscal::json_escape(source).c_str());
    std::fflush(out);
    ++measured;
  }
  for (const auto& j : jobs.colls) {
    TS_CUDA(cudaSetDevice(0));
    tscal::CollResult r;
    std::string source;
    if (!tscal::measure_collective(j, opt, gpus, &r, &source)) { ++skipped; continue; }
    std::fprintf(out, "{\"kind\": \"collective\", \"device\": %s, \"coll\": %s, \"time_us\": %.3f, \"algbw_GBps\": %.3f, "
                      "\"busbw_GBps\": %.3f, \"runs\": %d, \"source\": \"%s\"}\n",
                 dev_json, tscal::coll_json(j, static_cast<int>(j.group_size), 1).c_str(), r.time_us, r.algbw_GBps,
                 r.busbw_GBps, r.runs, tscal::json_escape(source).c_str());
    std::fflush(out);
    ++measured;
  }
  tscal::collectives_shutdown();
  if (out != stdout) std::fclose(out);
  std::fprintf(stderr, "trainsim_calibrator: %d measured, %d skipped\n", measured, skipped);
  return 0;
}
