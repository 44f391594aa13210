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

// basis (transposed, [r, d]) is staged in shared memory when it fits in this much; above it the
// glue computes coef = (x − mean) @ basis with one GEMM and the kernel only reconstructs.
constexpr int64_t kMaxBasisSharedBytes = 40 * 1024;

inline bool basis_fits_shared(int64_t r, int64_t d) {
  return r * d * static_cast<int64_t>(sizeof(float)) <= kMaxBasisSharedBytes;
}

struct KernelArgs {
  const void* x;  // target rows (dtype), x + i * x_stride
  int64_t x_stride;
  const void* bank;  // bank rows (dtype), bank + index[i] * bank_stride
  int64_t bank_stride;
  const int64_t* index;
  int64_t index_stride;
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
