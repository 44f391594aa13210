// CPU implementation of xite::project_interpolate, registered for the CPU key.
//
// Rows are split in chunks across at::parallel_for's threads (torch's own OpenMP pool,
// at::get_num_threads() of them); each thread runs the row kernels of kernels.h, or for r >= 8
// two small GEMMs per block of rows followed by the fused gather + interpolation pass. The float32
// row loop is compiled once per instruction set and picked at load time (GCC target_clones),
// because wheels cannot assume the build machine's -march: the projection (r dot products per
// row) gains from AVX2 FMA, the r = 0 path is memory-bound either way.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <vector>

#include "checks.h"
#include "kernels.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(XITE_NO_MULTIVERSION)
// AVX2+FMA or the x86-64 baseline. An AVX-512 clone measured no faster (GCC prefers 256-bit
// vectors there anyway) and slower on the memory-bound r = 0 path.
#define XITE_MULTIVERSION __attribute__((target_clones("arch=haswell", "default")))
#define XITE_MULTIVERSIONED 1
#else
#define XITE_MULTIVERSION
#define XITE_MULTIVERSIONED 0
#endif

namespace xite {
namespace cpu {

XITE_MULTIVERSION void rows_f32(const Args<float>& a, int64_t begin, int64_t end, float* scratch) {
  rows<float>(a, begin, end, scratch);
}

// float64 exists for gradcheck, not for speed: one generic build is enough.
void rows_f64(const Args<double>& a, int64_t begin, int64_t end, double* scratch) {
  rows<double>(a, begin, end, scratch);
}

inline void run_rows(const Args<float>& a, int64_t b, int64_t e, float* s) { rows_f32(a, b, e, s); }
inline void run_rows(const Args<double>& a, int64_t b, int64_t e, double* s) { rows_f64(a, b, e, s); }

// Fails with IndexError before anything is written, so a bad index never reads out of bounds.
void check_index_bounds(const at::Tensor& index, int64_t m) {
  const int64_t* idx = index.data_ptr<int64_t>();
  const int64_t n = index.size(0), s = index.stride(0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = idx[i * s];
    TORCH_CHECK_INDEX(v >= 0 && v < m, "xite::project_interpolate: index[", i, "] = ", v,
                      " is out of range for a bank of ", m, " rows");
  }
}

// Rows per chunk: ~256 KiB of output (the unit of work of one call of the row loop).
int64_t chunk_rows(int64_t d) { return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, d)); }

// Rows per GEMM block: along (rows × d) stays in L2.
constexpr int64_t kGemmBlockRows = 64;

#ifndef XITE_GEMM_MIN_RANK
#define XITE_GEMM_MIN_RANK 8
#endif

// From this rank on, linear rows are projected a block at a time by two small GEMMs (ATen's
// BLAS, single-threaded inside our threads) instead of per-row dot products: per row, the basis
// (r·d values, 196 KB at r = 64, d = 768) would otherwise stream from L2 twice.
constexpr int64_t kGemmMinRank = XITE_GEMM_MIN_RANK;

template <typename T>
bool use_gemm_blocks(const Args<T>& a) {
  return a.r >= kGemmMinRank && a.interp == Interp::Linear;
}

// Per-thread state of the GEMM path: coef [rows, r] and along = coef Uᵀ [rows, d].
template <typename T>
struct GemmBlock {
  at::Tensor u;     // [d, r] view of the basis (ut transposed back, no copy)
  at::Tensor mu_u;  // mean @ U, [r], or undefined
  at::Tensor coef, along;
};

template <typename T>
void gemm_rows(const Args<T>& a, GemmBlock<T>& g, int64_t begin, int64_t end) {
  const int64_t rows_here = end - begin;
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  const at::Tensor x = at::from_blob(const_cast<T*>(a.x + begin * a.x_stride), {rows_here, a.d}, {a.x_stride, 1}, opts);
  at::Tensor coef = g.coef.narrow(0, 0, rows_here);
  at::Tensor along = g.along.narrow(0, 0, rows_here);
  at::mm_out(coef, x, g.u);
  if (g.mu_u.defined()) coef.sub_(g.mu_u);  // Uᵀ(x − μ) = Uᵀx − Uᵀμ
  at::mm_out(along, coef, g.u.t());
  const T* along_ptr = along.const_data_ptr<T>();
  for (int64_t i = begin; i < end; ++i) {
    if (i + kPrefetchRowsAhead < end) {
      prefetch_row_start(a.bank + a.index[(i + kPrefetchRowsAhead) * a.index_stride] * a.bank_stride, a.d);
    }
    const T* xi = a.x + i * a.x_stride;
    const T* b = a.bank + a.index[i * a.index_stride] * a.bank_stride;
    lerp_projected_row(a, xi, along_ptr + (i - begin) * a.d, b, a.lam[i * a.lam_stride], a.out + i * a.out_stride);
  }
}

template <typename T>
void run_parallel(const Args<T>& a, int64_t n) {
  const bool gemm = use_gemm_blocks(a);
  const int64_t chunk = gemm ? kGemmBlockRows : chunk_rows(a.d);
  const int64_t chunks = (n + chunk - 1) / chunk;
  const size_t scratch_size = static_cast<size_t>(2 * a.d + a.r + 1);
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  at::Tensor u, mu_u;
  if (gemm) {
    u = at::from_blob(const_cast<T*>(a.ut), {a.r, a.d}, opts).t();
    if (a.mean != nullptr) mu_u = at::matmul(at::from_blob(const_cast<T*>(a.mean), {a.d}, opts), u);
  }
  // at::parallel_for hands each thread one contiguous run of chunks (measured a little faster
  // than dynamic scheduling, which interleaves the threads' memory streams), runs the BLAS calls
  // of the GEMM path single-threaded inside its region, falls back to one serial call when nested
  // in another parallel region, and rethrows an exception thrown by any thread after the region
  // (an exception escaping a raw `omp parallel` region is std::terminate). Every data-dependent
  // error (shapes, index bounds) is checked before this point; what can still throw here is ATen
  // itself (the per-thread buffers' allocation, mm_out), and that now reaches the caller as an error.
  at::parallel_for(0, chunks, /*grain_size=*/1, [&](int64_t first, int64_t last) {
    std::vector<T> scratch;
    GemmBlock<T> g;
    if (gemm) {
      g.u = u;
      g.mu_u = mu_u;
      g.coef = at::empty({chunk, a.r}, opts);
      g.along = at::empty({chunk, a.d}, opts);
    } else {
      scratch.resize(scratch_size);
    }
    for (int64_t c = first; c < last; ++c) {
      const int64_t begin = c * chunk, end = std::min(n, (c + 1) * chunk);
      if (gemm)
        gemm_rows(a, g, begin, end);
      else
        run_rows(a, begin, end, scratch.data());
    }
  });
}

template <typename T>
void launch(const Problem& p, const at::Tensor& x, const at::Tensor& bank, const at::Tensor& index,
            const at::Tensor& lam, const at::Tensor& ut, const at::Tensor& mean, at::Tensor& out) {
  Args<T> a;
  a.x = x.const_data_ptr<T>();
  a.x_stride = x.stride(0);
  a.bank = bank.const_data_ptr<T>();
  a.bank_stride = bank.stride(0);
  a.index = index.const_data_ptr<int64_t>();
  a.index_stride = index.stride(0);
  a.lam = lam.const_data_ptr<T>();
  a.lam_stride = p.lam_per_row ? lam.stride(0) : 0;
  a.ut = p.r > 0 ? ut.const_data_ptr<T>() : nullptr;
  a.mean = p.has_mean ? mean.const_data_ptr<T>() : nullptr;
  a.out = out.data_ptr<T>();
  a.out_stride = out.stride(0);
  a.d = p.d;
  a.r = p.r;
  a.mode = p.mode;
  a.interp = p.interp;
  run_parallel(a, p.n);
}

at::Tensor& project_interpolate_out_cpu(const at::Tensor& target, const at::Tensor& bank,
                                        const at::Tensor& index, const at::Tensor& lam,
                                        const std::optional<at::Tensor>& basis,
                                        const std::optional<at::Tensor>& mean, c10::string_view mode,
                                        c10::string_view interp, at::Tensor& out) {
  const Problem p = check_inputs(target, bank, index, lam, basis, mean, mode, interp);
  check_out(out, p, target,
            {&target, &bank, &index, &lam, basis ? &*basis : nullptr, mean ? &*mean : nullptr});
  if (p.n == 0) return out;
  check_index_bounds(index, p.m);
  if (p.d == 0) return out;

  const at::Tensor x = rows_contiguous(target);
  const at::Tensor bk = rows_contiguous(bank);
  // basis is small ([d, r]): transposing it once makes every inner loop unit-stride over d.
  const at::Tensor ut = p.r > 0 ? basis->t().contiguous() : at::Tensor();
  const at::Tensor mu = p.has_mean ? mean->contiguous() : at::Tensor();
  // The kernels write rows with unit stride; any other out layout goes through a temporary.
  at::Tensor dst = out.stride(1) == 1 ? out : at::empty({p.n, p.d}, out.options());

  AT_DISPATCH_FLOATING_TYPES(target.scalar_type(), "xite::project_interpolate (CPU)", [&] {
    launch<scalar_t>(p, x, bk, index, lam, ut, mu, dst);
  });
  if (!dst.is_same(out)) out.copy_(dst);
  return out;
}

// A fresh output of hundreds of MB costs more in page faults (one per 4 KiB page, each zeroing
// it) than the arithmetic. Asking for transparent huge pages before the first touch cuts the
// faults 512-fold where the kernel allows it (THP "madvise" or "always"); elsewhere it is a no-op.
void advise_huge_pages(const at::Tensor& t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t end = begin + t.nbytes();
  const uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1), last = end & ~(kHuge - 1);
  if (t.nbytes() >= (size_t(8) << 20) && last > first) {
    madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);  // advisory: errors ignored
  }
#else
  (void)t;
#endif
}

// The registered `_into` op returns nothing (see the schema in csrc/xite_ops.cpp).
void project_interpolate_into_cpu(const at::Tensor& target, const at::Tensor& bank, const at::Tensor& index,
                                 const at::Tensor& lam, const std::optional<at::Tensor>& basis,
                                 const std::optional<at::Tensor>& mean, c10::string_view mode,
                                 c10::string_view interp, at::Tensor& out) {
  project_interpolate_out_cpu(target, bank, index, lam, basis, mean, mode, interp, out);
}

at::Tensor project_interpolate_cpu(const at::Tensor& target, const at::Tensor& bank, const at::Tensor& index,
                                   const at::Tensor& lam, const std::optional<at::Tensor>& basis,
                                   const std::optional<at::Tensor>& mean, c10::string_view mode,
                                   c10::string_view interp) {
  const Problem p = check_inputs(target, bank, index, lam, basis, mean, mode, interp);
  at::Tensor out = at::empty({p.n, p.d}, target.options());
  advise_huge_pages(out);
  project_interpolate_out_cpu(target, bank, index, lam, basis, mean, mode, interp, out);
  return out;
}

bool multiversioned() { return XITE_MULTIVERSIONED; }

}  // namespace cpu
}  // namespace xite

TORCH_LIBRARY_IMPL(xite, CPU, m) {
  m.impl("project_interpolate", &xite::cpu::project_interpolate_cpu);
  m.impl("project_interpolate_into", &xite::cpu::project_interpolate_into_cpu);
}
