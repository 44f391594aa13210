// The boundary between xite's CUDA kernels and their torch glue.
//
// project_interpolate_kernels.cu includes only this header and CUDA's own, so nvcc compiles the
// real kernel source on any machine with the CUDA toolkit, whatever torch build is installed
// (csrc/cuda_check.sh). project_interpolate_cuda.cu holds the torch side: checks, streams,
// dtype dispatch and the TORCH_LIBRARY_IMPL registration for the CUDA key.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace xite {
namespace cuda {

enum class DType : int { Float32 = 0, Float16 = 1, BFloat16 = 2 };

constexpr int kThreads = 256;  // threads per block
constexpr int kWarps = kThreads / 32;
constexpr int kCoefChunk = 8;  // basis vectors reduced together (registers per thread)

// Dynamic shared memory a block may use without opting in through cudaFuncSetAttribute: 48 KiB on
// every architecture the extension targets.
constexpr int64_t kMaxSharedBytes = 48 * 1024;

// What a block keeps in shared memory, in this order (float32 each):
//   basis   [r, d], when it fits: the kernel then computes each row's coefficients itself; else
//           the glue computes coef = (x − mean) @ basis with one GEMM and the kernel reads that
//   coef    [r rounded up to kCoefChunk], the row's coefficients, when they fit; else the kernel
//           reads them from the GEMM's output in global memory
//   scratch [kWarps * kCoefChunk], for block reductions
//   totals  [3], slerp's |p|², |b|², p·b
// `bytes` counts every one of them, so a launch never asks for more than kMaxSharedBytes.
struct SharedPlan {
  bool basis;
  bool coef;
  int64_t bytes;
};

__host__ __device__ inline int64_t padded_rank(int64_t r) {
  return (r + kCoefChunk - 1) / kCoefChunk * kCoefChunk;
}

inline SharedPlan shared_plan(int64_t r, int64_t d) {
  constexpr int64_t f = static_cast<int64_t>(sizeof(float));
  const int64_t fixed = (int64_t(kWarps) * kCoefChunk + 3) * f;
  const int64_t coef = padded_rank(r) * f, basis = r * d * f;
  if (r > 0 && basis + coef + fixed <= kMaxSharedBytes) return {true, true, basis + coef + fixed};
  if (coef + fixed <= kMaxSharedBytes) return {false, true, coef + fixed};
  return {false, false, fixed};
}

struct KernelArgs {
  const void* x;  // target rows (dtype), x + i * x_stride
  int64_t x_stride;
  const void* bank;  // bank rows (dtype), bank + index[i] * bank_stride
  int64_t bank_stride;
  const int64_t* index;  // checked on the device: 0 <= index[i] < m, else a device-side assert
  int64_t index_stride;
  int64_t m;  // bank rows
  const void* lam;  // lam[i * lam_stride] (dtype); lam_stride == 0 for a scalar
  int64_t lam_stride;
  const void* ut;    // basis transposed, [r, d] contiguous (dtype); null when r == 0
  const void* mean;  // [d] contiguous (dtype) or null
  const float* coef;  // [n, r] float32 from the glue's GEMM, or null: the kernel computes it
  void* out;
  int64_t out_stride;
  int64_t n;
  int64_t d;
  int64_t r;
  int mode;    // 0 keep, 1 remove, 2 none (matches xite::Mode)
  int interp;  // 0 linear, 1 slerp (matches xite::Interp)
};

// Enqueues the kernel on `stream`; returns the launch error, if any.
cudaError_t launch_project_interpolate(const KernelArgs& args, DType dtype, int num_sms, cudaStream_t stream);

}  // namespace cuda
}  // namespace xite
