"""The arithmetic of XITE behind one function, :func:`project_interpolate` (DESIGN §3).

The compiled ``xite::project_interpolate`` op takes the place of the pure-PyTorch reference
when the extension is built; the reference stays as the oracle.
"""

from __future__ import annotations

import torch

from xite.ops import reference

BACKEND = "reference"


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

    target [n,d], bank [m,d], index int64 [n], lam scalar or [n], basis [d,r] or None,
    mean [d] or None, mode 'keep'|'remove', interp 'linear'|'slerp'.
    """
    result = reference.project_interpolate(target, bank, index, lam, basis, mean, mode, interp)
    if out is not None:
        out.copy_(result)
        return out
    return result


def backend() -> str:
    """Which implementation is active: 'compiled (...)' or 'reference'."""
    return BACKEND
