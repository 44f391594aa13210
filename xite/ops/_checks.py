"""Argument checks for ``project_interpolate``, shared by both backends and the fake kernel.

They mirror csrc/cpu/checks.h one for one, with the same error types, so the compiled op and the
reference fail alike: TypeError for dtypes, ValueError for shapes, devices and options,
IndexError for index bounds. None of them reads tensor data except :func:`check_index_bounds`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MODES = ("keep", "remove", "none")
INTERPS = ("linear", "slerp")
CPU_DTYPES = (torch.float32, torch.float64)  # float64 exists for gradcheck
CUDA_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class Problem:
    n: int
    d: int
    m: int
    r: int  # 0: P(x) = x (no basis, an empty basis, or mode 'none')
    mode: str  # 'none' whenever r == 0
    interp: str


def as_lam(lam: torch.Tensor | float, target: torch.Tensor) -> torch.Tensor:
    """lam as the op takes it: a 0-d or [n] tensor of target's dtype on target's device.

    Accepts a Python number, a 0-d tensor, [n], [n, 1] or a one-element [1] (a scalar). The
    conversion is differentiable, so a lam that requires grad still gets its gradient.
    """
    if not isinstance(lam, torch.Tensor):
        if not isinstance(lam, (int, float)) or isinstance(lam, bool):
            raise TypeError(f"lam must be a float or a tensor, got {type(lam).__name__}")
        return torch.full((), float(lam), dtype=target.dtype, device=target.device)
    if not (lam.is_floating_point() or lam.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"lam must be a floating tensor, got {lam.dtype}")
    n = target.shape[0] if target.dim() >= 1 else 0
    if lam.dim() == 2 and lam.shape[1] == 1:
        lam = lam.reshape(-1)
    if lam.dim() == 1 and lam.shape[0] == 1 and n != 1:
        lam = lam.reshape(())
    if lam.device != target.device and lam.dim() == 0 and lam.device.type == "cpu":
        lam = lam.to(target.device)  # a CPU scalar is fine anywhere, as in torch's own ops
    if lam.dtype != target.dtype:
        lam = lam.to(target.dtype)
    return lam


def _same_dtype(t: torch.Tensor, target: torch.Tensor, name: str) -> None:
    if t.dtype != target.dtype:
        raise TypeError(f"xite::project_interpolate: {name} has dtype {t.dtype} but target has {target.dtype}")


def _same_device(t: torch.Tensor, target: torch.Tensor, name: str) -> None:
    if t.device != target.device:
        raise ValueError(
            f"xite::project_interpolate: {name} is on {t.device} but target is on {target.device}; "
            "move them to one device"
        )


def _check_target_dtype(target: torch.Tensor) -> None:
    allowed = CPU_DTYPES if target.device.type == "cpu" else CUDA_DTYPES
    if target.dtype not in allowed:
        raise TypeError(
            f"xite::project_interpolate: target dtype {target.dtype} is not supported on {target.device} "
            "(CPU: float32, float64; CUDA: float32, float16, bfloat16)"
        )


def validate(
    target: torch.Tensor,
    bank: torch.Tensor,
    index: torch.Tensor,
    lam: torch.Tensor,
    basis: torch.Tensor | None,
    mean: torch.Tensor | None,
    mode: str,
    interp: str,
) -> Problem:
    """Shapes, dtypes, devices and options; ``lam`` already through :func:`as_lam`."""
    if mode not in MODES:
        raise ValueError(f"xite::project_interpolate: mode must be 'keep', 'remove' or 'none', got {mode!r}")
    if interp not in INTERPS:
        raise ValueError(f"xite::project_interpolate: interp must be 'linear' or 'slerp', got {interp!r}")
    for name, t in (("target", target), ("bank", bank), ("index", index), ("lam", lam)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"xite::project_interpolate: {name} must be a tensor, got {type(t).__name__}")
    _check_target_dtype(target)
    _same_dtype(bank, target, "bank")
    _same_dtype(lam, target, "lam")
    if index.dtype != torch.int64:
        raise TypeError(f"xite::project_interpolate: index must be int64, got {index.dtype}")
    for name, t in (("bank", bank), ("index", index), ("lam", lam)):
        _same_device(t, target, name)
    if target.dim() != 2:
        raise ValueError(f"xite::project_interpolate: target must be [n, d], got shape {tuple(target.shape)}")
    n, d = target.shape
    if bank.dim() != 2 or bank.shape[1] != d:
        raise ValueError(f"xite::project_interpolate: bank must be [m, {d}] to match target, got shape {tuple(bank.shape)}")
    if index.dim() != 1 or index.shape[0] != n:
        raise ValueError(f"xite::project_interpolate: index must be [{n}], got shape {tuple(index.shape)}")
    if not (lam.dim() == 0 or (lam.dim() == 1 and lam.shape[0] == n)):
        raise ValueError(f"xite::project_interpolate: lam must be a scalar or [{n}], got shape {tuple(lam.shape)}")
    r = 0
    if basis is not None:
        _same_dtype(basis, target, "basis")
        _same_device(basis, target, "basis")
        if basis.dim() != 2 or basis.shape[0] != d:
            raise ValueError(f"xite::project_interpolate: basis must be [{d}, r], got shape {tuple(basis.shape)}")
        r = basis.shape[1]
        # Orthonormal columns in a d-dimensional space: at most d of them (as csrc/cpu/checks.h).
        if r > d:
            raise ValueError(
                f"xite::project_interpolate: basis must have at most d = {d} columns (an orthonormal basis "
                f"of the embedding space), got shape {tuple(basis.shape)}"
            )
    if mean is not None:
        _same_dtype(mean, target, "mean")
        _same_device(mean, target, "mean")
        if mean.dim() != 1 or mean.shape[0] != d:
            raise ValueError(f"xite::project_interpolate: mean must be [{d}], got shape {tuple(mean.shape)}")
    if mode == "none" or r == 0:
        mode, r = "none", 0
    return Problem(n=n, d=d, m=bank.shape[0], r=r, mode=mode, interp=interp)


def check_out(out: torch.Tensor, problem: Problem, target: torch.Tensor, inputs, *, memory: bool = True) -> None:
    """out's dtype, device and shape; with ``memory``, that it shares no storage with an input
    (off in the fake kernel, whose tensors have no storage)."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"xite::project_interpolate: out must be a tensor, got {type(out).__name__}")
    _same_dtype(out, target, "out")
    _same_device(out, target, "out")
    if tuple(out.shape) != (problem.n, problem.d):
        raise ValueError(
            f"xite::project_interpolate: out must be [{problem.n}, {problem.d}], got shape {tuple(out.shape)}"
        )
    if out.numel() == 0 or not memory:
        return
    # Rows of out are written while other rows of the inputs are read: no sharing allowed.
    out_storage = out.untyped_storage().data_ptr()
    for t in inputs:
        if t is not None and t.numel() > 0 and t.untyped_storage().data_ptr() == out_storage:
            raise ValueError("xite::project_interpolate: out shares memory with an input; pass a separate tensor")


def check_index_bounds(index: torch.Tensor, m: int) -> None:
    """IndexError naming the first bad position (reads index: one sync on CUDA)."""
    if index.numel() == 0:
        return
    bad = (index < 0) | (index >= m)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise IndexError(
            f"xite::project_interpolate: index[{i}] = {int(index[i])} is out of range for a bank of {m} rows"
        )
