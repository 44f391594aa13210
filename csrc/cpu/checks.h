// Argument checks shared by the CPU and CUDA implementations of xite::project_interpolate.
//
// The op is callable directly through torch.ops.xite, so every check that guards memory safety
// lives in C++, even though xite/ops/_checks.py runs the same checks first with the same error
// types (TypeError for dtypes, ValueError for shapes/devices/options), so both backends fail the
// same way. Index bounds need the index values: the CPU path checks them before its parallel
// region (IndexError), the CUDA kernel as it gathers each row (a device-side assert, so that the
// host never waits for the device).
#pragma once

#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>
#include <c10/util/string_view.h>

#include <optional>
#include <string>

#include "modes.h"

namespace xite {


inline Mode parse_mode(c10::string_view s) {
  if (s == "keep") return Mode::Keep;
  if (s == "remove") return Mode::Remove;
  if (s == "none") return Mode::None;
  TORCH_CHECK_VALUE(false, "xite::project_interpolate: mode must be 'keep', 'remove' or 'none', got '",
                    std::string(s), "'");
}

inline Interp parse_interp(c10::string_view s) {
  if (s == "linear") return Interp::Linear;
  if (s == "slerp") return Interp::Slerp;
  TORCH_CHECK_VALUE(false, "xite::project_interpolate: interp must be 'linear' or 'slerp', got '",
                    std::string(s), "'");
}

// The validated problem: sizes and the effective projection. r == 0 means P(x) = x (no basis,
// an empty basis, or mode 'none'), as in xite/ops/reference.py.
struct Problem {
  int64_t n = 0, d = 0, m = 0, r = 0;
  Mode mode = Mode::None;
  Interp interp = Interp::Linear;
  bool lam_per_row = false;
  bool has_mean = false;
};

inline void check_same_device(const at::Tensor& t, const at::Tensor& target, const char* name) {
  TORCH_CHECK_VALUE(t.device() == target.device(), "xite::project_interpolate: ", name, " is on ",
                    t.device(), " but target is on ", target.device(), "; move them to one device");
}

inline void check_same_dtype(const at::Tensor& t, const at::Tensor& target, const char* name) {
  TORCH_CHECK_TYPE(t.scalar_type() == target.scalar_type(), "xite::project_interpolate: ", name,
                   " has dtype ", t.scalar_type(), " but target has ", target.scalar_type());
}

inline bool dtype_supported(at::ScalarType t, c10::DeviceType dev) {
  if (t == at::kFloat) return true;
  if (dev == c10::DeviceType::CPU) return t == at::kDouble;  // float64 for gradcheck
  return t == at::kHalf || t == at::kBFloat16;
}

inline Problem check_inputs(const at::Tensor& target, const at::Tensor& bank, const at::Tensor& index,
                            const at::Tensor& lam, const std::optional<at::Tensor>& basis,
                            const std::optional<at::Tensor>& mean, c10::string_view mode,
                            c10::string_view interp) {
  Problem p;
  p.mode = parse_mode(mode);
  p.interp = parse_interp(interp);
  const auto dev = target.device().type();
  TORCH_CHECK_TYPE(dtype_supported(target.scalar_type(), dev), "xite::project_interpolate: target dtype ",
                   target.scalar_type(), " is not supported on ", target.device(),
                   " (CPU: float32, float64; CUDA: float32, float16, bfloat16)");
  check_same_dtype(bank, target, "bank");
  check_same_dtype(lam, target, "lam");
  TORCH_CHECK_TYPE(index.scalar_type() == at::kLong, "xite::project_interpolate: index must be int64, got ",
                   index.scalar_type());
  check_same_device(bank, target, "bank");
  check_same_device(index, target, "index");
  check_same_device(lam, target, "lam");

  TORCH_CHECK_VALUE(target.dim() == 2, "xite::project_interpolate: target must be [n, d], got shape ",
                    target.sizes());
  p.n = target.size(0);
  p.d = target.size(1);
  TORCH_CHECK_VALUE(bank.dim() == 2 && bank.size(1) == p.d, "xite::project_interpolate: bank must be [m, ",
                    p.d, "] to match target, got shape ", bank.sizes());
  p.m = bank.size(0);
  TORCH_CHECK_VALUE(index.dim() == 1 && index.size(0) == p.n, "xite::project_interpolate: index must be [",
                    p.n, "], got shape ", index.sizes());
  TORCH_CHECK_VALUE(lam.dim() == 0 || (lam.dim() == 1 && lam.size(0) == p.n),
                    "xite::project_interpolate: lam must be a scalar or [", p.n, "], got shape ", lam.sizes());
  p.lam_per_row = lam.dim() == 1;

  if (basis.has_value()) {
    const auto& u = *basis;
    check_same_dtype(u, target, "basis");
    check_same_device(u, target, "basis");
    TORCH_CHECK_VALUE(u.dim() == 2 && u.size(0) == p.d, "xite::project_interpolate: basis must be [", p.d,
                      ", r], got shape ", u.sizes());
    p.r = u.size(1);
    // A projector's basis has orthonormal columns, and a d-dimensional space has at most d of
    // them: r > d is a mix-up of the basis' two dimensions (or of two models), not a subspace.
    TORCH_CHECK_VALUE(p.r <= p.d, "xite::project_interpolate: basis must have at most d = ", p.d,
                      " columns (an orthonormal basis of the embedding space), got shape ", u.sizes());
  }
  if (mean.has_value()) {
    const auto& mu = *mean;
    check_same_dtype(mu, target, "mean");
    check_same_device(mu, target, "mean");
    TORCH_CHECK_VALUE(mu.dim() == 1 && mu.size(0) == p.d, "xite::project_interpolate: mean must be [", p.d,
                      "], got shape ", mu.sizes());
  }
  // No basis, an empty basis or mode 'none' all mean P(x) = x (the reference's convention).
  if (p.mode == Mode::None || p.r == 0) {
    p.mode = Mode::None;
    p.r = 0;
  }
  p.has_mean = p.r > 0 && mean.has_value();
  return p;
}

inline void check_out(const at::Tensor& out, const Problem& p, const at::Tensor& target,
                      std::initializer_list<const at::Tensor*> inputs) {
  check_same_dtype(out, target, "out");
  check_same_device(out, target, "out");
  TORCH_CHECK_VALUE(out.dim() == 2 && out.size(0) == p.n && out.size(1) == p.d,
                    "xite::project_interpolate: out must be [", p.n, ", ", p.d, "], got shape ", out.sizes());
  // Row i of out may be written while another row reads bank/target: no aliasing allowed.
  at::assert_no_internal_overlap(out);
  for (const at::Tensor* t : inputs) {
    if (t != nullptr && t->defined()) at::assert_no_overlap(out, *t);
  }
}

// A view whose rows are contiguous (unit stride along d) is used as is, with its row stride;
// anything else is copied once so the kernels never read out of bounds.
inline at::Tensor rows_contiguous(const at::Tensor& t) {
  if (t.stride(1) == 1) return t;
  return t.contiguous();  // (also fine when d == 1: only column 0 is ever read)
}

}  // namespace xite
