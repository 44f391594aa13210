// CUDA kernels of xite::project_interpolate. Header-light on purpose: see kernels.cuh.
//
// One block per output row (grid-stride over rows, so a grid sized to the device stays resident).
// Per row: coef = Uᵀ(x − mean) by block reductions (U from shared memory when it fits, or coef
// from the glue's GEMM; the shared-memory layout is kernels.cuh's SharedPlan), then one pass that
// gathers the bank row in place, forms P(x) on the fly and writes lam·P(x) + (1 − lam)·b. slerp
// adds one reduction pass (|p|², |b|², p·b) before the write. All arithmetic is float32 whatever
// the storage dtype.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cassert>

#include "kernels.cuh"

namespace xite {
namespace cuda {
namespace {

__device__ __forceinline__ float load(const float* p) { return __ldg(p); }
__device__ __forceinline__ float load(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float load(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// Sums vals[0..K) over the block; the totals land in result[0..K) for every thread to read.
// `scratch` holds kWarps * K floats. Ends with a barrier, so scratch/result may be reused after.
template <int K>
__device__ void block_sum(float (&vals)[K], float* scratch, float* result) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const float s = warp_sum(vals[k]);
    if (lane == 0) scratch[warp * K + k] = s;
  }
  __syncthreads();
  if (warp == 0) {
#pragma unroll
    for (int k = 0; k < K; ++k) {
      float s = lane < kWarps ? scratch[lane * K + k] : 0.f;
      s = warp_sum(s);
      if (lane == 0) result[k] = s;
    }
  }
  __syncthreads();
}

// Everything a block needs to know about the row it is working on.
template <typename T>
struct Row {
  const T* x;
  const T* b;
  T* o;
  float lam;
};

// The bounds check of index happens here, on the device, where the row is gathered: checking on
// the host would cost a device-to-host sync per call (and break CUDA-graph capture). A bad index
// stops the kernel with a device-side assert before its bank row is read; like an out-of-range
// index in torch's own CUDA indexing ops, it surfaces at the next synchronising call as
// "device-side assert triggered" and leaves the CUDA context unusable. __assert_fail is called
// directly, as torch's CUDA_KERNEL_ASSERT does, so the check stays in builds with NDEBUG.
template <typename T>
__device__ __forceinline__ Row<T> row_at(const KernelArgs& a, int64_t i) {
  const int64_t k = a.index[i * a.index_stride];
  if (k < 0 || k >= a.m) {
    __assert_fail("xite::project_interpolate: index out of range for the bank (0 <= index[i] < bank rows)",
                  __FILE__, static_cast<unsigned int>(__LINE__), __func__);
  }
  Row<T> row;
  row.x = static_cast<const T*>(a.x) + i * a.x_stride;
  row.b = static_cast<const T*>(a.bank) + k * a.bank_stride;
  row.o = static_cast<T*>(a.out) + i * a.out_stride;
  row.lam = load(static_cast<const T*>(a.lam) + i * a.lam_stride);
  return row;
}

// coef[k] = Σ_j U[j, k] (x[j] − mean[j]), kCoefChunk basis vectors per sweep over the row.
template <typename T>
__device__ void coefficients(const KernelArgs& a, const Row<T>& row, const float* ut, float* coef,
                             float* scratch) {
  const T* mean = static_cast<const T*>(a.mean);
  for (int64_t k0 = 0; k0 < a.r; k0 += kCoefChunk) {
    float acc[kCoefChunk];
#pragma unroll
    for (int k = 0; k < kCoefChunk; ++k) acc[k] = 0.f;
    for (int64_t j = threadIdx.x; j < a.d; j += blockDim.x) {
      const float v = load(row.x + j) - (mean ? load(mean + j) : 0.f);
#pragma unroll
      for (int k = 0; k < kCoefChunk; ++k) {
        if (k0 + k < a.r) acc[k] += ut[(k0 + k) * a.d + j] * v;
      }
    }
    block_sum<kCoefChunk>(acc, scratch, coef + k0);  // writes past r land in padding
  }
}

// P(x)[j], from the row's coefficients.
template <typename T>
__device__ __forceinline__ float projected(const KernelArgs& a, const Row<T>& row, const float* ut_f32,
                                           const T* ut_t, const float* coef, int64_t j) {
  const float xj = load(row.x + j);
  if (a.r == 0) return xj;
  float along = 0.f;
  for (int64_t k = 0; k < a.r; ++k) along += coef[k] * (ut_f32 ? ut_f32[k * a.d + j] : load(ut_t + k * a.d + j));
  if (a.mode == 1) return xj - along;
  const T* mean = static_cast<const T*>(a.mean);
  return along + (mean ? load(mean + j) : 0.f);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    project_interpolate_kernel(KernelArgs a, bool basis_in_shared, bool coef_in_shared) {
  extern __shared__ float smem[];
  // The layout of kernels.cuh's SharedPlan: [basis][coef][scratch][totals], each part only as
  // large as the plan says (the launch sizes the allocation from the same plan).
  float* ut_shared = smem;
  float* coef_shared = smem + (basis_in_shared ? a.r * a.d : 0);
  float* scratch = coef_shared + (coef_in_shared ? padded_rank(a.r) : 0);
  float* totals = scratch + kWarps * kCoefChunk;

  const T* ut_t = static_cast<const T*>(a.ut);
  if (basis_in_shared) {
    // Staged once per block and reused for every row the block handles.
    for (int64_t e = threadIdx.x; e < a.r * a.d; e += blockDim.x) ut_shared[e] = load(ut_t + e);
    __syncthreads();
  }
  const float* ut_f32 = basis_in_shared ? ut_shared : nullptr;

  for (int64_t i = blockIdx.x; i < a.n; i += gridDim.x) {
    const Row<T> row = row_at<T>(a, i);
    const float* coef = coef_shared;
    if (a.r > 0) {
      if (a.coef == nullptr) {
        coefficients<T>(a, row, ut_shared, coef_shared, scratch);  // only reached when staged
      } else if (coef_in_shared) {
        for (int64_t k = threadIdx.x; k < a.r; k += blockDim.x) coef_shared[k] = a.coef[i * a.r + k];
        __syncthreads();
      } else {
        coef = a.coef + i * a.r;  // too many to stage: every thread reads the same, cached, values
      }
    }
    float wp = row.lam, wb = 1.f - row.lam;
    if (a.interp == 1) {
      float sums[3] = {0.f, 0.f, 0.f};  // |p|², |b|², p·b
      for (int64_t j = threadIdx.x; j < a.d; j += blockDim.x) {
        const float p = projected<T>(a, row, ut_f32, ut_t, coef, j), b = load(row.b + j);
        sums[0] += p * p;
        sums[1] += b * b;
        sums[2] += p * b;
      }
      block_sum<3>(sums, scratch, totals);
      // As reference._slerp: clamped norms, clamped acos argument, small-angle fallback.
      const float np = fmaxf(sqrtf(totals[0]), 1e-12f), nb = fmaxf(sqrtf(totals[1]), 1e-12f);
      const float cosv = fminf(fmaxf(totals[2] / (np * nb), -1.f), 1.f);
      const float omega = acosf(fminf(fmaxf(cosv, -1.f + 1e-7f), 1.f - 1e-7f));
      const float s = sinf(omega);
      float wu = row.lam, wv = 1.f - row.lam;
      if (!(s < 1e-6f)) {
        wu = sinf(row.lam * omega) / s;
        wv = sinf((1.f - row.lam) * omega) / s;
      }
      wp = wu / np;
      wb = wv / nb;
    }
    for (int64_t j = threadIdx.x; j < a.d; j += blockDim.x) {
      const float p = projected<T>(a, row, ut_f32, ut_t, coef, j);
      store(row.o + j, wp * p + wb * load(row.b + j));
    }
    __syncthreads();  // coef and totals are rewritten by the next row
  }
}

template <typename T>
cudaError_t launch_typed(const KernelArgs& a, int num_sms, cudaStream_t stream) {
  // d == 0 still launches: the rows have nothing to write, but their indices are checked.
  if (a.n == 0) return cudaSuccess;
  const SharedPlan plan = shared_plan(a.r, a.d);
  // The glue follows the same plan: a GEMM's coef exactly when the basis is not staged.
  if ((a.r > 0 && a.coef == nullptr) != plan.basis) return cudaErrorInvalidValue;
  // Enough blocks to fill the device several times over; each block then walks its rows.
  const int64_t blocks = a.n < int64_t(num_sms) * 8 ? a.n : int64_t(num_sms) * 8;
  const size_t shared = static_cast<size_t>(plan.bytes);
  project_interpolate_kernel<T><<<static_cast<unsigned>(blocks), kThreads, shared, stream>>>(a, plan.basis, plan.coef);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_project_interpolate(const KernelArgs& args, DType dtype, int num_sms, cudaStream_t stream) {
  switch (dtype) {
    case DType::Float32:
      return launch_typed<float>(args, num_sms, stream);
    case DType::Float16:
      return launch_typed<__half>(args, num_sms, stream);
    case DType::BFloat16:
      return launch_typed<__nv_bfloat16>(args, num_sms, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace cuda
}  // namespace xite
