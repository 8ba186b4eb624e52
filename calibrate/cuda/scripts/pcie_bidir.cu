// Host-copy probe: d2h alone, h2d alone, both at once on two streams (pinned host memory).
#include <cuda_runtime.h>
#include <cstdio>
#include <vector>
#include <algorithm>
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { std::printf("%s: %s\n", #x, cudaGetErrorString(e)); return 1; } } while (0)
int main() {
  for (size_t mb : {64, 256, 1024}) {
    size_t b = mb << 20;
    void *d1, *d2, *h1, *h2;
    CK(cudaMalloc(&d1, b)); CK(cudaMalloc(&d2, b));
    CK(cudaHostAlloc(&h1, b, cudaHostAllocDefault)); CK(cudaHostAlloc(&h2, b, cudaHostAllocDefault));
    cudaStream_t s1, s2; CK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking)); CK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    cudaEvent_t a, z1, z2; cudaEventCreate(&a); cudaEventCreate(&z1); cudaEventCreate(&z2);
    auto run = [&](int mode) {  // 0 d2h, 1 h2d, 2 both
      std::vector<float> t;
      for (int i = 0; i < 12; ++i) {
        cudaEventRecord(a, s1);
        cudaStreamWaitEvent(s2, a, 0);
        if (mode != 1) cudaMemcpyAsync(h1, d1, b, cudaMemcpyDeviceToHost, s1);
        if (mode != 0) cudaMemcpyAsync(d2, h2, b, cudaMemcpyHostToDevice, s2);
        cudaEventRecord(z1, s1); cudaEventRecord(z2, s2);
        cudaDeviceSynchronize();
        float m1 = 0, m2 = 0; cudaEventElapsedTime(&m1, a, z1); cudaEventElapsedTime(&m2, a, z2);
        if (i >= 2) t.push_back(std::max(m1, m2));
      }
      std::sort(t.begin(), t.end());
      return t[t.size() / 2];
    };
    float d2h = run(0), h2d = run(1), both = run(2);
    std::printf("{\"bytes\": %zu, \"d2h_ms\": %.3f, \"h2d_ms\": %.3f, \"both_ms\": %.3f, \"d2h_GBps\": %.2f, \"h2d_GBps\": %.2f, \"both_GBps_each\": %.2f}\n",
                b, d2h, h2d, both, b / d2h / 1e6, b / h2d / 1e6, b / both / 1e6);
    cudaFree(d1); cudaFree(d2); cudaFreeHost(h1); cudaFreeHost(h2);
  }
  return 0;
}
