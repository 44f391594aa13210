"""The arithmetic of XITE behind one function, :func:`project_interpolate`.

The compiled ``xite::project_interpolate`` op (csrc/, loaded from ``xite._C``) takes the place of
the pure-PyTorch reference when the extension is built; the reference stays as the oracle and as
the fallback, announced by a one-line warning. :func:`backend` says which one runs.
"""

from __future__ import annotations

import torch

from xite.ops import _checks, reference
from xite.ops._library import STATE

__all__ = ["backend", "build_info", "project_interpolate", "reference"]


def project_interpolate(
    target: torch.Tensor,
    bank: torch.Tensor,
    index: torch.Tensor,
    lam: torch.Tensor | float,
    basis: torch.Tensor | None = None,
    mean: torch.Tensor | None = None,
    mode: str = "keep",
    interp: str = "linear",
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``out[i] = lam[i] * P(target[i]) + (1 - lam[i]) * bank[index[i]]`` (or slerp).

    target [n,d], bank [m,d], index int64 [n], lam a float, a 0-d tensor or [n], basis [d,r] or
    None, mean [d] or None, mode 'keep'|'remove'|'none' (r = 0 or no basis: P(x) = x),
    interp 'linear'|'slerp'. ``out``: an existing [n,d] tensor to write into (no allocation;
    no autograd, like torch's own out= arguments).

    Gradients flow to target, bank and lam. A basis or mean that requires grad is differentiated
    too, through the reference (the compiled op treats them as constants).
    """
    lam = _checks.as_lam(lam, target)
    problem = _checks.validate(target, bank, index, lam, basis, mean, mode, interp)
    inputs = (target, bank, index, lam, basis, mean)
    tracking = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs)
    if out is not None:
        _checks.check_out(out, problem, target, inputs)
        if tracking:
            raise RuntimeError(
                "xite.ops.project_interpolate: out= does not support autograd (an input requires grad)"
            )
    if _use_compiled(target, basis, mean, tracking):
        if out is not None:
            torch.ops.xite.project_interpolate_into(target, bank, index, lam, basis, mean, mode, interp, out=out)
            return out
        return torch.ops.xite.project_interpolate(target, bank, index, lam, basis, mean, mode, interp)
    return _reference(problem, target, bank, index, lam, basis, mean, interp, out)


def _use_compiled(target, basis, mean, tracking: bool) -> bool:
    if not STATE.loaded:
        return False
    if target.device.type == "cuda" and not STATE.info.get("cuda"):
        return False  # a CPU-only build: CUDA tensors go to the reference
    if target.device.type not in ("cpu", "cuda"):
        return False
    # The compiled op's autograd treats basis and mean as constants; the reference does not.
    return not (tracking and any(t is not None and t.requires_grad for t in (basis, mean)))


def _reference(problem, target, bank, index, lam, basis, mean, interp, out):
    _checks.check_index_bounds(index, problem.m)
    if problem.n == 0:
        result = target.new_empty((0, problem.d))
    else:
        ref_basis = basis if problem.mode != "none" else None
        ref_mode = problem.mode if ref_basis is not None else "keep"
        result = reference.project_interpolate(target, bank, index, lam, ref_basis, mean, ref_mode, interp)
    if out is not None:
        out.copy_(result)
        return out
    return result


def backend() -> str:
    """Which implementation is active, e.g. 'compiled (cpu, openmp, 2 threads)' or
    'reference (extension not built: ...)'."""
    if not STATE.loaded:
        return f"reference ({STATE.reason})"
    info = STATE.info
    parts = ["cpu"]
    if info.get("cuda"):
        parts.append(f"cuda {info.get('cuda_version')}")
    if info.get("openmp"):
        parts.append("openmp")
    parts.append(f"{torch.get_num_threads()} threads")
    return f"compiled ({', '.join(parts)})"


def build_info() -> dict:
    """How the active backend was built: xite._C.build_info() plus 'backend' and 'loaded'."""
    info = dict(STATE.info)
    info.update(loaded=STATE.loaded, backend=backend())
    if not STATE.loaded:
        info["reason"] = STATE.reason
    return info
