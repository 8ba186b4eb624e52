// File: calibrate/cuda/gemm_layout.h
// How trainsim_calibrator and trainsim_executor state a GEMM C(m x n) = A(m x k) B(k x n) to
// cuBLASLt (column-major): cuBLASLt wants every leading dimension a multiple of 16 bytes, and a
// ragged one (an MoE expert's token count as C's leading dimension) ran at ~100 TFLOP/s on an
// H100 where the aligned statement of the same product ran at ~700. Training stacks keep the
// token dimension out of the leading dimensions, so of the four statements the first whose
// leading dimensions are all aligned is used:
//   TN   C(m x n)   = A^T B, A stored k x m, B stored k x n        (ld k, k, m)
//   TN'  C^T(n x m) = B^T A, the operands swapped                  (ld k, k, n)
//   NT   C(m x n)   = A B^T, A stored m x k, B stored n x k        (ld m, n, m)
//   NT'  C^T(n x m) = B A^T                                         (ld n, m, n)
// fp8 allows the TN forms only (Hopper's fp8 kernels). When none is aligned: TN, aligned=false.
// Header-only, no CUDA: the unit tests check it without a GPU.
#pragma once
#include <cstdint>

namespace tscal {

struct GemmForm {
  const char* name = "TN";
  bool tn = true;      // cuBLAS op(A) = T, op(B) = N (else N, T)
  bool swap = false;   // cuBLAS computes C^T: its A is our B, its (M, N) = (n, m)
  int64_t lda = 0, ldb = 0, ldc = 0;
  bool aligned = true;
};

inline GemmForm choose_gemm_form(int64_t m, int64_t n, int64_t k, int64_t in_bytes, int64_t out_bytes, bool fp8) {
  const int64_t in_al = 16 / in_bytes, out_al = 16 / out_bytes;
  const GemmForm forms[4] = {{"TN", true, false, k, k, m, true},
                             {"TN'", true, true, k, k, n, true},
                             {"NT", false, false, m, n, m, true},
                             {"NT'", false, true, n, m, n, true}};
  for (int c = 0; c < (fp8 ? 2 : 4); ++c) {
    const GemmForm& f = forms[c];
    if (f.lda % in_al == 0 && f.ldb % in_al == 0 && f.ldc % out_al == 0) return f;
  }
  GemmForm f = forms[0];
  f.aligned = false;
  return f;
}

}  // namespace tscal
