// Row kernels of xite::project_interpolate on CPU.
//
// One pass over memory: each output row is computed from its target row and the bank row that
// index points at, read in place (the gathered rows are never materialised). Per row, the only
// temporaries are d + d + r values in a per-thread scratch buffer that stays in L1/L2 (the GEMM
// path for r >= 8 in project_interpolate_cpu.cpp uses a per-thread [64, d] block instead).
// Loops over d are written so the compiler vectorises them (`#pragma omp simd`); the caller
// compiles them once per instruction set (see project_interpolate_cpu.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "modes.h"

#if defined(__GNUC__)
#define XITE_INLINE inline __attribute__((always_inline))
#else
#define XITE_INLINE inline
#endif

namespace xite {
namespace cpu {

template <typename T>
struct Args {
  const T* x;  // target rows: x + i * x_stride
  int64_t x_stride;
  const T* bank;  // bank rows: bank + index[i] * bank_stride
  int64_t bank_stride;
  const int64_t* index;
  int64_t index_stride;
  const T* lam;  // lam[i * lam_stride]; lam_stride == 0 for a scalar lam
  int64_t lam_stride;
  const T* ut;    // basis transposed, [r, d] contiguous, so every loop over d is unit-stride
  const T* mean;  // [d] contiguous, or nullptr (uncentred)
  T* out;
  int64_t out_stride;
  int64_t d;
  int64_t r;
  Mode mode;
  Interp interp;
};

// Starts the bank row that a later iteration gathers: rows are picked at random, so each one
// begins with a cache and TLB miss. The first few lines are enough; the hardware prefetcher
// follows the rest of the row once it sees it streaming (measured: prefetching whole rows, or
// further ahead, is no faster; non-temporal stores for out were no faster either).
constexpr int64_t kPrefetchRowsAhead = 4;
constexpr int64_t kPrefetchBytes = 256;

template <typename T>
XITE_INLINE void prefetch_row_start(const T* row, int64_t d) {
  const char* p = reinterpret_cast<const char*>(row);
  const int64_t bytes = std::min<int64_t>(d * static_cast<int64_t>(sizeof(T)), kPrefetchBytes);
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 3);
}

// coef = Uᵀ src. Four basis vectors per sweep: four independent accumulators hide the FMA
// latency and each src element is loaded once for four products.
template <typename T>
XITE_INLINE void coefficients(const T* ut, const T* src, int64_t d, int64_t r, T* coef) {
  int64_t k = 0;
  for (; k + 4 <= r; k += 4) {
    const T* u0 = ut + k * d;
    const T* u1 = u0 + d;
    const T* u2 = u1 + d;
    const T* u3 = u2 + d;
    T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int64_t j = 0; j < d; ++j) {
      const T v = src[j];
      s0 += u0[j] * v;
      s1 += u1[j] * v;
      s2 += u2[j] * v;
      s3 += u3[j] * v;
    }
    coef[k] = s0;
    coef[k + 1] = s1;
    coef[k + 2] = s2;
    coef[k + 3] = s3;
  }
  for (; k < r; ++k) {
    const T* u = ut + k * d;
    T s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < d; ++j) s += u[j] * src[j];
    coef[k] = s;
  }
}

// along = U coef, accumulated four basis vectors per sweep over the L1-resident row.
template <typename T>
XITE_INLINE void reconstruct(const T* ut, const T* coef, int64_t d, int64_t r, T* along) {
  int64_t k = 0;
  {
    // The first sweep writes instead of accumulating, so along needs no zero fill.
    const T c0 = r > 0 ? coef[0] : T(0);
    const T* u0 = ut;
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) along[j] = c0 * u0[j];
    k = 1;
  }
  for (; k + 4 <= r; k += 4) {
    const T c0 = coef[k], c1 = coef[k + 1], c2 = coef[k + 2], c3 = coef[k + 3];
    const T* u0 = ut + k * d;
    const T* u1 = u0 + d;
    const T* u2 = u1 + d;
    const T* u3 = u2 + d;
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) along[j] += c0 * u0[j] + c1 * u1[j] + c2 * u2[j] + c3 * u3[j];
  }
  for (; k < r; ++k) {
    const T c = coef[k];
    const T* u = ut + k * d;
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) along[j] += c * u[j];
  }
}

// along = U Uᵀ (x − mean), the component of the (centred) row inside the subspace.
template <typename T>
XITE_INLINE void subspace_component(const Args<T>& a, const T* x, T* xc, T* coef, T* along) {
  const int64_t d = a.d;
  const T* src = x;
  if (a.mean != nullptr) {
    const T* mu = a.mean;
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) xc[j] = x[j] - mu[j];
    src = xc;
  }
  coefficients(a.ut, src, d, a.r, coef);
  reconstruct(a.ut, coef, d, a.r, along);
}

// P(x) from the subspace component, written over `along` (slerp needs P materialised per row).
template <typename T>
XITE_INLINE void projected_in_place(const Args<T>& a, const T* x, T* along) {
  const int64_t d = a.d;
  if (a.mode == Mode::Remove) {
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) along[j] = x[j] - along[j];
  } else if (a.mean != nullptr) {
    const T* mu = a.mean;
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) along[j] += mu[j];
  }
}

// o = lam * p + (1 - lam) * b, the reference's formula (same rounding order).
template <typename T>
XITE_INLINE void lerp_row(const T* p, const T* b, T lam, T* o, int64_t d) {
  const T w = T(1) - lam;
#pragma omp simd
  for (int64_t j = 0; j < d; ++j) o[j] = lam * p[j] + w * b[j];
}

// Linear interpolation with the projection folded into the final pass (no extra pass for P).
template <typename T>
XITE_INLINE void lerp_projected_row(const Args<T>& a, const T* x, const T* along, const T* b, T lam,
                                    T* o) {
  const int64_t d = a.d;
  const T w = T(1) - lam;
  if (a.mode == Mode::Remove) {
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) o[j] = lam * (x[j] - along[j]) + w * b[j];
  } else if (a.mean != nullptr) {
    const T* mu = a.mean;
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) o[j] = lam * (along[j] + mu[j]) + w * b[j];
  } else {
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) o[j] = lam * along[j] + w * b[j];
  }
}

// Spherical interpolation of the normalised rows, exactly as reference._slerp: the same clamps
// (norms >= 1e-12, acos argument within ±(1 − 1e-7)) and the same small-angle fallback.
template <typename T>
XITE_INLINE void slerp_row(const T* p, const T* b, T lam, T* o, int64_t d) {
  T pp = 0, bb = 0, pb = 0;
#pragma omp simd reduction(+ : pp, bb, pb)
  for (int64_t j = 0; j < d; ++j) {
    pp += p[j] * p[j];
    bb += b[j] * b[j];
    pb += p[j] * b[j];
  }
  const T tiny = T(1e-12);
  const T np = std::max(std::sqrt(pp), tiny);
  const T nb = std::max(std::sqrt(bb), tiny);
  T cos = std::clamp(pb / (np * nb), T(-1), T(1));
  const T omega = std::acos(std::clamp(cos, T(-1.0 + 1e-7), T(1.0 - 1e-7)));
  const T sin_omega = std::sin(omega);
  T wu = lam, wv = T(1) - lam;
  if (!(sin_omega < T(1e-6))) {
    wu = std::sin(lam * omega) / sin_omega;
    wv = std::sin((T(1) - lam) * omega) / sin_omega;
  }
  const T cu = wu / np, cv = wv / nb;
#pragma omp simd
  for (int64_t j = 0; j < d; ++j) o[j] = cu * p[j] + cv * b[j];
}

// Rows [begin, end). scratch holds 2 * d + r values (centred row, subspace component, coef).
template <typename T>
XITE_INLINE void rows(const Args<T>& a, int64_t begin, int64_t end, T* scratch) {
  const int64_t d = a.d;
  T* xc = scratch;
  T* along = scratch + d;
  T* coef = scratch + 2 * d;
  for (int64_t i = begin; i < end; ++i) {
    if (i + kPrefetchRowsAhead < end) {
      prefetch_row_start(a.bank + a.index[(i + kPrefetchRowsAhead) * a.index_stride] * a.bank_stride, d);
    }
    const T* x = a.x + i * a.x_stride;
    const T* b = a.bank + a.index[i * a.index_stride] * a.bank_stride;
    const T lam = a.lam[i * a.lam_stride];
    T* o = a.out + i * a.out_stride;
    if (a.r == 0) {
      if (a.interp == Interp::Linear)
        lerp_row(x, b, lam, o, d);
      else
        slerp_row(x, b, lam, o, d);
      continue;
    }
    subspace_component(a, x, xc, coef, along);
    if (a.interp == Interp::Linear) {
      lerp_projected_row(a, x, along, b, lam, o);
    } else {
      projected_in_place(a, x, along);
      slerp_row<T>(along, b, lam, o, d);
    }
  }
}

}  // namespace cpu
}  // namespace xite
