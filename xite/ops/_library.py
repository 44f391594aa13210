"""Loads the compiled library ``xite._C`` and registers the Python halves of the op.

Importing ``xite._C`` registers ``torch.ops.xite.project_interpolate`` (schema and CPU/CUDA
kernels, csrc/). This module adds what torch.library expects from Python: a fake kernel for
torch.compile and the autograd formula. When the library cannot be loaded, :data:`STATE` says why
and xite.ops runs the reference instead.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import torch

from xite.ops import _checks, reference

OP_NAME = "xite::project_interpolate"


@dataclass
class LibraryState:
    loaded: bool
    reason: str = ""  # why the reference is active, when it is
    info: dict = field(default_factory=dict)  # xite._C.build_info()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _load() -> LibraryState:
    if os.environ.get("XITE_OPS_BACKEND", "").strip().lower() == "reference":
        return LibraryState(False, "XITE_OPS_BACKEND=reference")
    try:
        from xite import _C  # noqa: PLC0415 - loading the library is the point
    except Exception as exc:  # ImportError, OSError (ABI/torch mismatch), anything from init
        reason = f"extension not built: {_first_line(exc)}"
        warnings.warn(f"xite: compiled kernels unavailable ({reason}); using the pure-PyTorch reference",
                      RuntimeWarning, stacklevel=3)
        return LibraryState(False, reason)
    return LibraryState(True, info=dict(_C.build_info()))


# ---- torch.compile: output shape and dtype without running anything -----------------------------


# The schema's names are `projection`/`interpolation`: torch.compile's dispatch helpers take a
# `mode` argument of their own.
def _fake(target, bank, index, lam, basis=None, mean=None, projection="keep", interpolation="linear"):
    problem = _checks.validate(target, bank, index, lam, basis, mean, projection, interpolation)
    return target.new_empty((problem.n, problem.d))


def _fake_into(target, bank, index, lam, basis=None, mean=None, projection="keep", interpolation="linear", *, out):
    problem = _checks.validate(target, bank, index, lam, basis, mean, projection, interpolation)
    _checks.check_out(out, problem, target, (target, bank, index, lam, basis, mean), memory=False)


# ---- autograd -----------------------------------------------------------------------------------
# Gradients for target, bank and lam. basis and mean are fitted by a projector, not learned: the
# formula has no gradient for them and refuses to run rather than leave them silently at zero
# (xite.ops.project_interpolate routes such calls to the reference, which differentiates all).


def _setup_context(ctx, inputs, output):
    target, bank, index, lam, basis, mean, mode, interp = inputs
    ctx.save_for_backward(target, bank, index, lam, basis, mean)
    problem = _checks.validate(target, bank, index, lam, basis, mean, mode, interp)
    ctx.mode = problem.mode
    ctx.interp = interp


def _project_adjoint(g, basis, mode):
    """Pᵀ g for the linear part of P (symmetric: U Uᵀ or I − U Uᵀ; the mean only shifts)."""
    if mode == "none":
        return g
    along = (g @ basis) @ basis.T
    return along if mode == "keep" else g - along


def _linear_backward(ctx, grad, target, bank, index, lam, basis, mean):
    lam_col = lam.reshape(-1, 1) if lam.dim() == 1 else lam
    g_target = g_bank = g_lam = None
    if ctx.needs_input_grad[0]:
        g_target = _project_adjoint(grad * lam_col, basis, ctx.mode)
    if ctx.needs_input_grad[1]:
        g_bank = torch.zeros_like(bank).index_add_(0, index, grad * (1 - lam_col))
    if ctx.needs_input_grad[3]:
        p = _project(target, basis, mean, ctx.mode)
        per_row = (grad * (p - bank.index_select(0, index))).sum(dim=1)
        g_lam = per_row if lam.dim() == 1 else per_row.sum()
    return g_target, g_bank, g_lam


def _slerp_backward(ctx, grad, target, bank, index, lam, basis, mean):
    """Differentiates the reference (the oracle) by recomputation: slerp's Jacobian is long.

    Autograd runs a backward with grad mode on exactly when it builds a graph of it (double
    backward, create_graph=True). Then the recomputation starts from the saved inputs themselves
    and keeps its graph, so the gradients returned are differentiable in turn (gradgradcheck);
    otherwise it starts from detached copies and the graph is dropped.
    """
    wanted = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[3]]
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        leaves = [t if create_graph and w else t.detach().requires_grad_(w)
                  for t, w in zip((target, bank, lam), wanted)]
        t_, b_, l_ = leaves
        u = basis if ctx.mode != "none" else None
        p = _project(t_, u, mean, ctx.mode)
        out = reference._slerp(p, b_.index_select(0, index), l_.reshape(-1, 1) if l_.dim() == 1 else l_)
        inputs = [leaf for leaf, w in zip(leaves, wanted) if w]
        grads = iter(torch.autograd.grad(out, inputs, grad, create_graph=create_graph) if inputs else ())
    return tuple(next(grads) if w else None for w in wanted)


def _project(target, basis, mean, mode):
    return target if mode == "none" else reference.project(target, basis, mean, mode)


def _backward(ctx, grad):
    target, bank, index, lam, basis, mean = ctx.saved_tensors
    # torch leaves trailing None arguments out of needs_input_grad (basis given, mean None: 5
    # entries), so pad it before asking about basis and mean.
    needs = tuple(ctx.needs_input_grad) + (False,) * 6
    if needs[4] or needs[5]:
        raise RuntimeError(
            "xite::project_interpolate has no gradient for basis or mean; detach them, or call "
            "xite.ops.project_interpolate, which differentiates them through the reference"
        )
    backward = _slerp_backward if ctx.interp == "slerp" else _linear_backward
    g_target, g_bank, g_lam = backward(ctx, grad, target, bank, index, lam, basis, mean)
    return g_target, g_bank, None, g_lam, None, None, None, None


def _register() -> None:
    torch.library.register_fake(OP_NAME)(_fake)
    torch.library.register_fake(OP_NAME + "_into")(_fake_into)
    torch.library.register_autograd(OP_NAME, _backward, setup_context=_setup_context)


STATE = _load()
if STATE.loaded:
    _register()
