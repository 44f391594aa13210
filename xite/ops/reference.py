"""Pure-PyTorch reference of ``xite::project_interpolate``: the oracle for every test.

    out[i] = lam[i] * P(target[i]) + (1 - lam[i]) * bank[index[i]]             (interp "linear")
    P(x)   = mean + basis @ (basis.T @ (x - mean))     mode "keep"   (mean = 0 when not given)
           = x - basis @ (basis.T @ (x - mean))        mode "remove"
           = x                                         mode "none", no basis, or r = 0
    slerp: u = P(target[i]) / |.|, v = bank[index[i]] / |.|, Ω = angle(u, v),
           out[i] = sin(lam Ω)/sin Ω · u + sin((1-lam) Ω)/sin Ω · v   (lam weighs the target,
           as in the linear mode); where sin Ω < 1e-6 it falls back to lam·u + (1-lam)·v.
"""

from __future__ import annotations

import torch

SLERP_EPS = 1e-6


def project(target: torch.Tensor, basis: torch.Tensor | None, mean: torch.Tensor | None, mode: str) -> torch.Tensor:
    # An empty basis means "no projection" (not "project onto nothing", which would give the mean):
    # r = 0 is how a projector says it has nothing to keep or remove.
    if mode == "none" or basis is None or basis.shape[1] == 0:
        return target
    centred = target - mean if mean is not None else target
    along = (centred @ basis) @ basis.T
    if mode == "keep":
        return along + mean if mean is not None else along
    if mode == "remove":
        return target - along
    raise ValueError(f"mode must be 'keep', 'remove' or 'none', got {mode!r}")


def project_interpolate(
    target: torch.Tensor,
    bank: torch.Tensor,
    index: torch.Tensor,
    lam: torch.Tensor | float,
    basis: torch.Tensor | None = None,
    mean: torch.Tensor | None = None,
    mode: str = "keep",
    interp: str = "linear",
) -> torch.Tensor:
    p = project(target, basis, mean, mode)
    b = bank.index_select(0, index)
    lam_t = torch.as_tensor(lam, dtype=target.dtype, device=target.device)
    lam_col = lam_t.reshape(-1, 1) if lam_t.dim() == 1 else lam_t
    if interp == "linear":
        return lam_col * p + (1 - lam_col) * b
    if interp == "slerp":
        return _slerp(p, b, lam_col)
    raise ValueError(f"interp must be 'linear' or 'slerp', got {interp!r}")


def _slerp(p: torch.Tensor, b: torch.Tensor, lam_col: torch.Tensor) -> torch.Tensor:
    u = p / p.norm(dim=1, keepdim=True).clamp_min(1e-12)
    v = b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cos = (u * v).sum(dim=1, keepdim=True).clamp(-1.0, 1.0)
    # Clamp inside acos's open domain so gradients stay finite at (anti)parallel rows.
    omega = torch.acos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    sin_omega = torch.sin(omega)
    small = sin_omega < SLERP_EPS
    safe_sin = torch.where(small, torch.ones_like(sin_omega), sin_omega)
    wu = torch.where(small, lam_col.expand_as(omega), torch.sin(lam_col * omega) / safe_sin)
    wv = torch.where(small, (1 - lam_col).expand_as(omega), torch.sin((1 - lam_col) * omega) / safe_sin)
    return wu * u + wv * v
