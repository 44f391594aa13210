// Torch glue of the CUDA implementation of xite::project_interpolate, registered for the CUDA key:
// argument checks (shared with the CPU path), device guard and stream, the GEMM for a basis too
// large for shared memory, and the launch of the kernels in project_interpolate_kernels.cu.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../cpu/checks.h"
#include "kernels.cuh"

namespace xite {
namespace cuda {
namespace {

DType kernel_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return DType::Float32;
    case at::kHalf:
      return DType::Float16;
    case at::kBFloat16:
      return DType::BFloat16;
    default:
      TORCH_CHECK_TYPE(false, "xite::project_interpolate: dtype ", t, " is not supported on CUDA");
  }
}

int sm_count(const at::Tensor& t) {
  int count = 0;
  cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, t.get_device());
  return count > 0 ? count : 1;
}

}  // namespace

at::Tensor& project_interpolate_out_cuda(const at::Tensor& target, const at::Tensor& bank,
                                         const at::Tensor& index, const at::Tensor& lam,
                                         const std::optional<at::Tensor>& basis,
                                         const std::optional<at::Tensor>& mean, c10::string_view mode,
                                         c10::string_view interp, at::Tensor& out) {
  const Problem p = check_inputs(target, bank, index, lam, basis, mean, mode, interp);
  check_out(out, p, target,
            {&target, &bank, &index, &lam, basis ? &*basis : nullptr, mean ? &*mean : nullptr});
  if (p.n == 0) return out;
  const c10::cuda::CUDAGuard guard(target.device());
  // No host-side bounds check of index (it would sync the host with the device on every call and
  // make the op uncapturable in a CUDA graph): the kernel checks each index as it gathers the row,
  // and a bad one is a device-side assert (see row_at in project_interpolate_kernels.cu).

  const at::Tensor x = rows_contiguous(target);
  const at::Tensor bk = rows_contiguous(bank);
  const at::Tensor ut = p.r > 0 ? basis->t().contiguous() : at::Tensor();
  const at::Tensor mu = p.has_mean ? mean->contiguous() : at::Tensor();
  // A basis too large for shared memory: coef = (x − mean) @ basis by one GEMM (float32, [n, r]),
  // the kernel then fuses reconstruction, gather and interpolation in its single pass.
  // The mean is subtracted first (x·U − μ·U cancels when |μ| dominates |x − μ|, as it does for
  // embeddings that share a large common component), in float32 whatever the storage dtype (half
  // x minus float32 μ promotes), and the GEMM runs in full float32: NoTF32Guard overrides
  // torch.backends.cuda.matmul.allow_tf32 / set_float32_matmul_precision for this thread only,
  // until the end of the scope, so other threads' matmuls keep the global setting.
  at::Tensor coef;
  if (p.r > 0 && !shared_plan(p.r, p.d).basis) {
    const at::Tensor centred = p.has_mean ? at::sub(x, mu.to(at::kFloat)) : x.to(at::kFloat);
    const at::NoTF32Guard full_float32;
    coef = at::matmul(centred, basis->to(at::kFloat));
  }
  at::Tensor dst = out.stride(1) == 1 ? out : at::empty({p.n, p.d}, out.options());

  KernelArgs a{};
  a.x = x.const_data_ptr();
  a.x_stride = x.stride(0);
  a.bank = bk.const_data_ptr();
  a.bank_stride = bk.stride(0);
  a.index = index.const_data_ptr<int64_t>();
  a.index_stride = index.stride(0);
  a.m = p.m;
  a.lam = lam.const_data_ptr();
  a.lam_stride = p.lam_per_row ? lam.stride(0) : 0;
  a.ut = p.r > 0 ? ut.const_data_ptr() : nullptr;
  a.mean = p.has_mean ? mu.const_data_ptr() : nullptr;
  a.coef = coef.defined() ? coef.const_data_ptr<float>() : nullptr;
  a.out = dst.data_ptr();
  a.out_stride = dst.stride(0);
  a.n = p.n;
  a.d = p.d;
  a.r = p.r;
  a.mode = static_cast<int>(p.mode);
  a.interp = static_cast<int>(p.interp);
  const cudaError_t err = launch_project_interpolate(a, kernel_dtype(target.scalar_type()), sm_count(target),
                                                     c10::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, "xite::project_interpolate: CUDA launch failed: ", cudaGetErrorString(err));
  if (!dst.is_same(out)) out.copy_(dst);
  return out;
}

// The registered `_into` op returns nothing (see the schema in csrc/xite_ops.cpp).
void project_interpolate_into_cuda(const at::Tensor& target, const at::Tensor& bank, const at::Tensor& index,
                                 const at::Tensor& lam, const std::optional<at::Tensor>& basis,
                                 const std::optional<at::Tensor>& mean, c10::string_view mode,
                                 c10::string_view interp, at::Tensor& out) {
  project_interpolate_out_cuda(target, bank, index, lam, basis, mean, mode, interp, out);
}

at::Tensor project_interpolate_cuda(const at::Tensor& target, const at::Tensor& bank, const at::Tensor& index,
                                    const at::Tensor& lam, const std::optional<at::Tensor>& basis,
                                    const std::optional<at::Tensor>& mean, c10::string_view mode,
                                    c10::string_view interp) {
  const Problem p = check_inputs(target, bank, index, lam, basis, mean, mode, interp);
  at::Tensor out = at::empty({p.n, p.d}, target.options());
  project_interpolate_out_cuda(target, bank, index, lam, basis, mean, mode, interp, out);
  return out;
}

}  // namespace cuda
}  // namespace xite

TORCH_LIBRARY_IMPL(xite, CUDA, m) {
  m.impl("project_interpolate", &xite::cuda::project_interpolate_cuda);
  m.impl("project_interpolate_into", &xite::cuda::project_interpolate_into_cuda);
}
