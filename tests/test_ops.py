"""xite.ops.project_interpolate against the reference, the oracle.

The compiled op is checked against xite.ops.reference on a grid of shapes and options, by
torch.library.opcheck, by gradcheck and gradgradcheck in float64, on non-contiguous inputs and on
the error cases; the reference itself is checked against a hand-computed example. The grid and
opcheck run on every device present (the CUDA cases are skipped, and say so, without a GPU);
csrc/cuda_check.sh's skip path is checked too.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import xite.ops as ops
from xite.ops import reference

COMPILED = ops.build_info()["loaded"]
needs_compiled = pytest.mark.skipif(not COMPILED, reason=f"extension not loaded: {ops.backend()}")
HAS_CUDA = torch.cuda.is_available()
CUDA_KERNEL = HAS_CUDA and COMPILED and bool(ops.build_info().get("cuda"))
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")
needs_cuda_kernel = pytest.mark.skipif(
    not CUDA_KERNEL, reason="needs a CUDA device and the extension built with CUDA"
)
# The public function on every device (on CUDA it is the CUDA kernel where the extension has it);
# the compiled op itself on every device it has a kernel for.
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]
KERNEL_DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda_kernel)]
REPO = Path(__file__).resolve().parents[1]


def make_inputs(n, d, r, *, m=None, centred=True, lam_kind="vector", dtype=torch.float32, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    m = m if m is not None else max(1, n // 2 + 3)
    target = torch.randn(n, d, generator=g, dtype=torch.float64)
    bank = torch.randn(m, d, generator=g, dtype=torch.float64)
    index = torch.randint(0, m, (n,), generator=g)
    lam = torch.rand(n, generator=g, dtype=torch.float64) if lam_kind == "vector" else torch.tensor(0.3, dtype=torch.float64)
    basis = torch.randn(d, r, generator=g, dtype=torch.float64)
    if 0 < r <= d:
        basis = torch.linalg.qr(basis)[0]  # a projector's orthonormal basis
    else:
        basis = basis / math.sqrt(max(d, 1))
    mean = torch.randn(d, generator=g, dtype=torch.float64) if centred else None
    cast = lambda t: None if t is None else t.to(dtype=dtype if t.is_floating_point() else t.dtype, device=device)
    return tuple(cast(t) for t in (target, bank, index, lam, basis, mean))


def expected(target, bank, index, lam, basis, mean, mode, interp):
    """The reference, computed in float64 (its 'none' mode ignores the basis)."""
    up = lambda t: None if t is None else (t.double() if t.is_floating_point() else t)
    out = reference.project_interpolate(
        up(target).cpu(), up(bank).cpu(), index.cpu(), up(lam).cpu(),
        None if mode == "none" or basis is None else up(basis).cpu(),
        None if mean is None else up(mean).cpu(), "keep" if mode == "none" else mode, interp,
    )
    return out


def well_conditioned_rows(target, bank, index, lam, basis, mean, mode):
    """Rows where slerp is defined to within float32 rounding.

    Near-antiparallel rows are not: the reference clamps acos's argument to ±(1 − 1e-7), so there
    the weights are ~1/sin(Ω) ≈ 2000 and the last bit of Ω decides the result (they are covered by
    test_slerp_parallel_and_zero_rows with exact inputs). Rows with P(x) ≈ 0 have no direction.
    """
    up = lambda t: None if t is None else t.double().cpu()
    p = reference.project(up(target), None if mode == "none" else up(basis), up(mean), "keep" if mode == "none" else mode)
    b = up(bank)[index.cpu()]
    cos = torch.nn.functional.cosine_similarity(p, b, dim=1, eps=1e-30)
    return (cos > -0.999) & (p.norm(dim=1) > 1e-4)


def tolerance(dtype, d, r):
    if dtype == torch.float64:
        return dict(rtol=1e-10, atol=1e-10)
    if dtype == torch.float32:
        return dict(rtol=1e-5, atol=2e-5 * (1 + math.sqrt(r)))
    return dict(rtol=2e-2, atol=3e-2 * (1 + math.sqrt(r)))  # float16/bfloat16 storage


# ---- the reference against a hand-computed example --------------------------------------------


def test_reference_hand_computed():
    basis = torch.tensor([[1.0], [0.0]])  # the subspace is the first axis
    target = torch.tensor([[2.0, 3.0]])
    bank = torch.tensor([[0.0, 0.0], [10.0, 20.0]])
    index = torch.tensor([1])
    lam = 0.25
    def run(**kw):
        return reference.project_interpolate(target, bank, index, lam, **kw)
    # keep, uncentred: P(x) = (2, 0); 0.25·(2, 0) + 0.75·(10, 20) = (8, 15)
    assert torch.allclose(run(basis=basis, mode="keep"), torch.tensor([[8.0, 15.0]]))
    # remove: P(x) = (0, 3); 0.25·(0, 3) + 0.75·(10, 20) = (7.5, 15.75)
    assert torch.allclose(run(basis=basis, mode="remove"), torch.tensor([[7.5, 15.75]]))
    # keep, centred on μ = (1, 1): P(x) = μ + (1, 0) = (2, 1); → (8, 15.25)
    assert torch.allclose(run(basis=basis, mean=torch.ones(2), mode="keep"), torch.tensor([[8.0, 15.25]]))
    # no basis: P(x) = x; → (8, 15.75)
    assert torch.allclose(run(), torch.tensor([[8.0, 15.75]]))
    # slerp of orthogonal directions at λ = 0.5 lands half way on the unit circle, lengths ignored
    p, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    half = math.sqrt(0.5)
    out = reference.project_interpolate(p, b, torch.tensor([0]), 0.5, interp="slerp")
    assert torch.allclose(out, torch.tensor([[half, half]]))
    # slerp of parallel rows falls back to the linear blend of the unit vectors
    out = reference.project_interpolate(p, torch.tensor([[5.0, 0.0]]), torch.tensor([0]), 0.3, interp="slerp")
    assert torch.allclose(out, torch.tensor([[1.0, 0.0]]), atol=1e-6)


@pytest.mark.parametrize("interp", ["linear", "slerp"])
def test_public_function_hand_computed(interp):
    basis = torch.tensor([[1.0], [0.0]])
    target, bank, index = torch.tensor([[2.0, 3.0]]), torch.tensor([[0.0, 0.0], [10.0, 20.0]]), torch.tensor([1])
    got = ops.project_interpolate(target, bank, index, 0.25, basis, None, "keep", interp)
    want = reference.project_interpolate(target, bank, index, 0.25, basis, None, "keep", interp)
    assert torch.allclose(got, want)
    if interp == "linear":
        assert torch.allclose(got, torch.tensor([[8.0, 15.0]]))


# ---- the grid against the reference ------------------------------------------------------------


# Every (d, r) with r <= d (a basis has at most d columns; r > d is an error, see
# test_rank_above_dim); r = d included. On CUDA, (384, 64) and (768, 64) take the GEMM path (basis
# too large for shared memory), the others stage the basis.
DIM_RANKS = [(d, r) for d in (1, 3, 384, 768) for r in (0, 1, 3, 8, 64) if r <= d and (r != 3 or d == 3)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("lam_kind", ["scalar", "vector"])
@pytest.mark.parametrize("interp", ["linear", "slerp"])
@pytest.mark.parametrize("mode", ["keep", "remove", "none"])
@pytest.mark.parametrize("d,r", DIM_RANKS)
@pytest.mark.parametrize("n", [0, 1, 7, 1000])
def test_matches_reference_float32(n, d, r, mode, interp, lam_kind, device):
    centred = (n + d + r) % 2 == 1  # half the cases centred, spread over the grid
    args = make_inputs(n, d, r, centred=centred, lam_kind=lam_kind, seed=n * 1000 + d + r, device=device)
    got = ops.project_interpolate(*args, mode=mode, interp=interp)
    assert got.shape == (n, d) and got.dtype == torch.float32 and got.device.type == device
    got = got.cpu()
    want = expected(*args, mode, interp)
    if interp == "slerp":
        keep = well_conditioned_rows(*args, mode)
        got, want = got[keep], want[keep]
    torch.testing.assert_close(got.double(), want, **tolerance(torch.float32, d, r))


@pytest.mark.parametrize("interp", ["linear", "slerp"])
@pytest.mark.parametrize("mode", ["keep", "remove", "none"])
@pytest.mark.parametrize("n,d,r", [(7, 3, 1), (33, 384, 8), (20, 768, 64)])
def test_matches_reference_float64(n, d, r, mode, interp):
    args = make_inputs(n, d, r, dtype=torch.float64, seed=d)
    got = ops.project_interpolate(*args, mode=mode, interp=interp)
    torch.testing.assert_close(got, expected(*args, mode, interp), **tolerance(torch.float64, d, r))


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("interp", ["linear", "slerp"])
@pytest.mark.parametrize("r", [0, 8, 64])
def test_cuda_dtypes(dtype, interp, r):
    args = make_inputs(500, 768, r, dtype=dtype, device="cuda", seed=r)
    got = ops.project_interpolate(*args, mode="keep", interp=interp)
    assert got.dtype == dtype and got.device.type == "cuda"
    torch.testing.assert_close(got.double().cpu(), expected(*args, "keep", interp), **tolerance(dtype, 768, r))


def test_slerp_parallel_and_zero_rows():
    """The small-angle clamp and the zero-norm clamp behave as in the reference."""
    target = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    bank = torch.tensor([[2.0, 4.0, 6.0], [1.0, 1.0, 1.0], [-1.0, 0.0, 0.0]])
    index = torch.tensor([0, 1, 2])
    for lam in (0.0, 0.3, 1.0):
        got = ops.project_interpolate(target, bank, index, lam, interp="slerp")
        want = reference.project_interpolate(target, bank, index, lam, interp="slerp")
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_extreme_lam_values():
    args = make_inputs(50, 384, 8)
    for lam in (0.0, 1.0, -0.5, 1.5):
        got = ops.project_interpolate(*args[:3], lam, *args[4:], mode="remove")
        torch.testing.assert_close(got.double(), expected(*args[:3], torch.tensor(lam), *args[4:], "remove", "linear"),
                                   rtol=1e-5, atol=1e-4)


# ---- layouts, out=, n = 0 -----------------------------------------------------------------------


def test_non_contiguous_inputs():
    n, d, r, m = 40, 96, 8, 30
    target, bank, index, lam, basis, mean = make_inputs(n, d, r, m=m)
    want = expected(target, bank, index, lam, basis, mean, "keep", "linear")
    wide = torch.zeros(n, 2 * d)
    wide[:, 5 : 5 + d] = target  # a column slice: rows strided, unit column stride
    bank_t = bank.t().contiguous().t()  # column-major: no unit stride along d
    index_s = torch.stack([index, index]).t().reshape(-1)[::2]  # stride 2
    lam_s = torch.stack([lam, lam], 1)[:, 1]  # stride 2
    basis_f = basis.t().contiguous().t()
    mean_s = torch.stack([mean, mean], 1)[:, 0]
    assert not any(t.is_contiguous() for t in (wide[:, 5 : 5 + d], bank_t, index_s, lam_s, basis_f, mean_s))
    got = ops.project_interpolate(wide[:, 5 : 5 + d], bank_t, index_s, lam_s, basis_f, mean_s)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)
    # transposed target and an expanded (stride-0) bank row
    got = ops.project_interpolate(target.t().contiguous().t(), bank[:1].expand(m, d), index, lam, basis, mean)
    want = expected(target, bank[:1].expand(m, d).contiguous(), index, lam, basis, mean, "keep", "linear")
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("interp", ["linear", "slerp"])
def test_out_argument(interp):
    args = make_inputs(64, 384, 8)
    want = ops.project_interpolate(*args, interp=interp)
    out = torch.full((64, 384), float("nan"))
    got = ops.project_interpolate(*args, interp=interp, out=out)
    assert got is out
    torch.testing.assert_close(out, want)
    out_t = torch.empty(384, 64).t()  # non-contiguous out
    ops.project_interpolate(*args, interp=interp, out=out_t)
    torch.testing.assert_close(out_t, want)


def test_out_rejects_autograd_and_aliasing():
    target, bank, index, lam, basis, mean = make_inputs(8, 16, 2)
    with pytest.raises(RuntimeError, match="autograd"):
        ops.project_interpolate(target.requires_grad_(), bank, index, lam, out=torch.empty(8, 16))
    target = target.detach()
    with pytest.raises(ValueError, match="shares memory"):
        ops.project_interpolate(target, bank, index, lam, out=target)
    with pytest.raises(ValueError, match=r"out must be \[8, 16\]"):
        ops.project_interpolate(target, bank, index, lam, out=torch.empty(8, 15))


@pytest.mark.parametrize("interp", ["linear", "slerp"])
def test_empty(interp):
    out = ops.project_interpolate(torch.empty(0, 5), torch.randn(3, 5), torch.empty(0, dtype=torch.long), 0.5,
                                  torch.randn(5, 2), interp=interp)
    assert out.shape == (0, 5)
    out = ops.project_interpolate(torch.empty(0, 5), torch.empty(0, 5), torch.empty(0, dtype=torch.long),
                                  torch.empty(0))
    assert out.shape == (0, 5)


def test_lam_forms():
    target, bank, index, lam, basis, mean = make_inputs(6, 4, 1)
    base = ops.project_interpolate(target, bank, index, 0.4, basis, mean)
    for form in (torch.tensor(0.4), torch.tensor([0.4]), torch.full((6,), 0.4), torch.full((6, 1), 0.4),
                 torch.tensor(0.4, dtype=torch.float64)):
        torch.testing.assert_close(ops.project_interpolate(target, bank, index, form, basis, mean), base)


# ---- errors, not crashes ------------------------------------------------------------------------


def _call(backend, *args, **kw):
    if backend == "op":
        lam = args[3]
        lam = torch.tensor(lam) if not isinstance(lam, torch.Tensor) else lam
        names = {"mode": "projection", "interp": "interpolation"}  # the schema's argument names
        kw = {names.get(k, k): v for k, v in kw.items()}
        return torch.ops.xite.project_interpolate(*args[:3], lam, *args[4:], **kw)
    return ops.project_interpolate(*args, **kw)


BACKENDS = ["public"] + (["op"] if COMPILED else [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_index_out_of_range(backend):
    target, bank, index, lam, basis, mean = make_inputs(10, 8, 2, m=5)
    for bad in (5, -1, 10**9):
        idx = index.clone()
        idx[7] = bad
        with pytest.raises(IndexError, match="out of range"):
            _call(backend, target, bank, idx, lam, basis, mean)
    with pytest.raises(IndexError):
        _call(backend, target, bank[:0], index, lam, basis, mean)


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_dtypes(backend):
    target, bank, index, lam, basis, mean = make_inputs(10, 8, 2)
    cases = [
        (target, bank.double(), index, lam, basis, mean),
        (target, bank, index.int(), lam, basis, mean),
        (target, bank, index.float(), lam, basis, mean),
        (target.half(), bank.half(), index, lam.half(), basis.half(), mean.half()),  # no float16 on CPU
        (target.long(), bank.long(), index, lam, basis, mean),
        (target, bank, index, lam, basis.double(), mean),
        (target, bank, index, lam, basis, mean.double()),
    ]
    if backend == "op":
        cases.append((target, bank, index, lam.double(), basis, mean))
    for case in cases:
        with pytest.raises(TypeError, match="dtype|int64"):
            _call(backend, *case)


@pytest.mark.parametrize("backend", BACKENDS)
def test_shape_mismatch(backend):
    target, bank, index, lam, basis, mean = make_inputs(10, 8, 2)
    cases = [
        (target[0], bank, index, lam, basis, mean),
        (target, bank[:, :7], index, lam, basis, mean),
        (target, bank, index[:9], lam, basis, mean),
        (target, bank, index.reshape(2, 5), lam, basis, mean),
        (target, bank, index, lam[:9], basis, mean),
        (target, bank, index, torch.rand(10, 2), basis, mean),
        (target, bank, index, lam, basis[:7], mean),
        (target, bank, index, lam, basis[:, 0], mean),
        (target, bank, index, lam, basis, mean[:7]),
    ]
    for case in cases:
        with pytest.raises(ValueError, match="must be"):
            _call(backend, *case)
    for kw in (dict(mode="project"), dict(interp="cubic")):
        with pytest.raises(ValueError, match="must be"):
            _call(backend, target, bank, index, lam, basis, mean, **kw)


@pytest.mark.parametrize("mode", ["keep", "none"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_rank_above_dim(backend, mode):
    """A basis [d, r] with r > d has more columns than any orthonormal basis of R^d: a ValueError
    from the C++ checks and from the Python ones (public function, reference, fake kernel) alike,
    whatever the mode."""
    target, bank, index, lam, _, mean = make_inputs(10, 8, 0)
    basis = torch.randn(8, 9)
    with pytest.raises(ValueError, match=r"basis must have at most d = 8 columns.*8, 9"):
        _call(backend, target, bank, index, lam, basis, mean, mode=mode)
    square = torch.linalg.qr(torch.randn(8, 8))[0]  # r == d is a basis (P = I for keep)
    got = _call(backend, target, bank, index, lam, square, mean, mode=mode)
    torch.testing.assert_close(got.double(), expected(target, bank, index, lam, square, mean, mode, "linear"),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_device_mismatch(backend):
    other = "cuda" if torch.cuda.is_available() else "meta"
    target, bank, index, lam, basis, mean = make_inputs(10, 8, 2)
    for i in (1, 2, 4, 5):
        args = [target, bank, index, lam, basis, mean]
        args[i] = args[i].to(other)
        with pytest.raises((ValueError, RuntimeError), match="device|on "):
            _call(backend, *args)


# ---- CUDA: no host sync, device-side index check, full float32, shared memory ----------------------


@needs_cuda_kernel
@pytest.mark.parametrize("interp", ["linear", "slerp"])
@pytest.mark.parametrize("r", [0, 8, 64])  # 64 at d = 384: the basis is too large to stage (GEMM path)
def test_cuda_graph_capture(r, interp):
    """The op never syncs the host (no .item(), no host-side index check): a sync while a stream
    is capturing is an error, so capture succeeds only without one; replay gives the result."""
    n, d = 300, 384
    args = make_inputs(n, d, r, device="cuda", seed=r)
    out = torch.full((n, d), float("nan"), device="cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up (cuBLAS handle, workspace) outside the capture
        ops.project_interpolate(*args, interp=interp, out=out)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        ops.project_interpolate(*args, interp=interp, out=out)
    out.fill_(float("nan"))
    graph.replay()
    torch.cuda.synchronize()
    got, want = out.double().cpu(), expected(*args, "keep", interp)
    if interp == "slerp":
        keep = well_conditioned_rows(*args, "keep")
        got, want = got[keep], want[keep]
    torch.testing.assert_close(got, want, **tolerance(torch.float32, d, r))


@needs_cuda_kernel
def test_cuda_index_out_of_range_is_a_device_side_assert():
    """On CUDA the index is checked by the kernel, not the host: the call returns, and the bad index
    surfaces at the next sync as a device-side assert (in a subprocess: it poisons the context)."""
    code = textwrap.dedent(
        """
        import torch
        import xite.ops  # registers the op
        t, b = torch.randn(4, 8, device="cuda"), torch.randn(3, 8, device="cuda")
        idx = torch.tensor([0, 1, 3, 2], device="cuda")  # 3 is out of range for 3 bank rows
        torch.ops.xite.project_interpolate(t, b, idx, torch.tensor(0.5, device="cuda"))
        print("returned", flush=True)
        torch.cuda.synchronize()
        print("no error", flush=True)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    # (the kernel's own assert message may land on stdout or stderr, depending on the driver)
    assert "returned" in result.stdout and "no error" not in result.stdout, (result.stdout, result.stderr)
    assert result.returncode != 0 and "device-side assert" in result.stderr, result.stderr


@needs_cuda_kernel
@pytest.mark.parametrize("centred", [False, True])
def test_cuda_large_basis_is_full_float32_under_tf32(centred):
    """The GEMM path (basis too large for shared memory) projects x − μ in float32 even when the
    global TF32 switch is on. TF32 keeps 10 mantissa bits (~5e-4 relative): its error on these
    outputs is ~1e-4..1e-3, far outside the tolerance; and with a large common component μ, x·U −
    μ·U would cancel (~1e-2 here) where (x − μ)·U does not."""
    n, d, r = 256, 768, 64
    target, bank, index, lam, basis, mean = make_inputs(n, d, r, centred=True, device="cuda", seed=7)
    if centred:
        mean = mean * 100
        target = target + mean  # x − μ stays O(1), x and μ are O(100)
    else:
        mean = None
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        got = ops.project_interpolate(target, bank, index, lam, basis, mean, mode="keep")
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    want = expected(target, bank, index, lam, basis, mean, "keep", "linear")
    torch.testing.assert_close(got.double().cpu(), want, rtol=1e-5, atol=5e-5)


# Around the 48 KiB shared-memory budget, counting every buffer (basis, coefficients, reduction
# scratch, slerp totals): r*d = 12208 floats stage the basis (49,132 bytes in all); 12280 would
# have fitted a count of the basis alone but not the total, so it takes the GEMM path; r = d =
# 12224 has more coefficients than fit, so the kernel reads them from global memory.
@needs_cuda_kernel
@pytest.mark.parametrize("interp", ["linear", "slerp"])
@pytest.mark.parametrize("n,d,r", [(64, 1526, 8), (64, 1535, 8), (3, 12224, 12224)])
def test_cuda_shared_memory_budget(n, d, r, interp):
    g = torch.Generator().manual_seed(d)
    target, bank = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    index, lam = torch.randint(0, n, (n,), generator=g), torch.rand(n, generator=g)
    basis = torch.randn(d, r, generator=g) / math.sqrt(d)  # not orthonormal: the arithmetic is the same
    mean = torch.randn(d, generator=g)
    args = [t.cuda() for t in (target, bank, index, lam, basis, mean)]
    got = ops.project_interpolate(*args, mode="remove", interp=interp)
    want = expected(target, bank, index, lam, basis, mean, "remove", interp)
    got = got.double().cpu()
    if interp == "slerp":
        keep = well_conditioned_rows(target, bank, index, lam, basis, mean, "remove")
        got, want = got[keep], want[keep]
    torch.testing.assert_close(got, want, **tolerance(torch.float32, d, r))


# ---- torch.library and autograd ------------------------------------------------------------------


@needs_compiled
@pytest.mark.parametrize("device", KERNEL_DEVICES)
@pytest.mark.parametrize("interp", ["linear", "slerp"])
@pytest.mark.parametrize("mode,r,centred", [("keep", 3, True), ("remove", 2, False), ("none", 0, False)])
@pytest.mark.parametrize("lam_kind", ["scalar", "vector"])
def test_opcheck(interp, mode, r, centred, lam_kind, device):
    dtype = torch.float64 if device == "cpu" else torch.float32  # the CUDA kernel has no float64
    target, bank, index, lam, basis, mean = make_inputs(9, 6, r, m=4, centred=centred, lam_kind=lam_kind,
                                                        dtype=dtype, device=device)
    target.requires_grad_()
    bank.requires_grad_()
    lam.requires_grad_()
    args = (target, bank, index, lam, basis, mean, mode, interp)
    torch.library.opcheck(torch.ops.xite.project_interpolate.default, args)
    torch.library.opcheck(torch.ops.xite.project_interpolate_into.default,
                          tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args),
                          {"out": torch.empty(9, 6, dtype=dtype, device=device)})


@pytest.mark.parametrize("lam_kind", ["scalar", "vector"])
@pytest.mark.parametrize("interp", ["linear", "slerp"])
@pytest.mark.parametrize("mode", ["keep", "remove", "none"])
def test_gradcheck_and_gradgradcheck_float64(mode, interp, lam_kind):
    """First and second derivatives, both interpolations: the reference's slerp is smooth away from
    (anti)parallel and zero rows, and the op's slerp backward keeps its graph under create_graph."""
    target, bank, index, lam, basis, mean = make_inputs(7, 5, 2, m=3, lam_kind=lam_kind, dtype=torch.float64)
    index[:3] = 1  # repeated rows: the bank gradient must accumulate (index_add)
    fn = lambda t, b, l: ops.project_interpolate(t, b, index, l, basis, mean, mode, interp)
    inputs = tuple(x.clone().requires_grad_() for x in (target, bank, lam))
    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


@needs_compiled
def test_gradients_match_reference():
    target, bank, index, lam, basis, mean = make_inputs(50, 32, 4, m=10, dtype=torch.float64)
    for interp in ("linear", "slerp"):
        grads = []
        for f in (ops.project_interpolate, reference.project_interpolate):
            leaves = [x.clone().requires_grad_() for x in (target, bank, lam)]
            out = f(leaves[0], leaves[1], index, leaves[2], basis, mean, "remove", interp)
            (out * torch.linspace(-1, 1, 32, dtype=torch.float64)).sum().backward()
            grads.append([leaf.grad for leaf in leaves])
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b)


@needs_compiled
def test_basis_and_mean_gradients():
    """The op has no gradient for basis/mean: it says so; the public function uses the reference."""
    target, bank, index, lam, basis, mean = make_inputs(7, 5, 2, m=3, dtype=torch.float64)
    basis = basis.clone().requires_grad_()
    out = torch.ops.xite.project_interpolate(target, bank, index, lam, basis, mean)
    with pytest.raises(RuntimeError, match="no gradient for basis or mean"):
        out.sum().backward()
    fn = lambda u, mu: ops.project_interpolate(target, bank, index, lam, u, mu)
    assert torch.autograd.gradcheck(fn, (basis, mean.clone().requires_grad_()))


@needs_compiled
def test_torch_compile():
    args = make_inputs(32, 64, 4)
    fn = lambda t, b, i, l, u, mu: ops.project_interpolate(t, b, i, l, u, mu, "keep", "slerp")
    compiled = torch.compile(fn, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(*args), fn(*args))


# ---- csrc/cuda_check.sh without nvcc ---------------------------------------------------------------


def _cuda_check(**env):
    """csrc/cuda_check.sh with XITE_NVCC=none (as if nvcc were nowhere; PATH alone cannot hide the
    /usr/local/cuda fallback) and without the caller's XITE_REQUIRE_NVCC (CI sets it)."""
    full = {k: v for k, v in os.environ.items() if k != "XITE_REQUIRE_NVCC"}
    full.update({"XITE_NVCC": "none", "PY": sys.executable, **env})
    return subprocess.run(["bash", str(REPO / "csrc" / "cuda_check.sh")], capture_output=True, text=True,
                          env=full, timeout=60)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_cuda_check_skips_without_nvcc():
    result = _cuda_check()
    assert (result.returncode, result.stdout, result.stderr) == (0, "cuda-check: skipped (nvcc not found)\n", "")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_cuda_check_fails_without_nvcc_when_required():
    result = _cuda_check(XITE_REQUIRE_NVCC="1")
    assert result.returncode == 1 and result.stdout == ""
    assert "nvcc not found" in result.stderr and "XITE_REQUIRE_NVCC=1" in result.stderr
    result = _cuda_check(XITE_NVCC="/nonexistent/nvcc")  # a path that is not nvcc: an error, never a skip
    assert result.returncode == 1 and "/nonexistent/nvcc" in result.stderr


# ---- loading and the fallback --------------------------------------------------------------------


def test_backend_reports():
    name = ops.backend()
    info = ops.build_info()
    assert name == info["backend"]
    if COMPILED:
        assert name.startswith("compiled (cpu") and "threads" in name
        assert {"openmp", "cuda", "torch_version"} <= set(info)
        assert info["torch_version"] == torch.__version__.split("+")[0]
    else:
        assert name.startswith("reference (")


def test_fallback_warns_once_and_matches():
    code = textwrap.dedent(
        """
        import sys, warnings
        sys.modules["xite._C"] = None  # as if the extension were not built
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import xite.ops as ops
        import torch
        msgs = [str(w.message) for w in caught if "xite" in str(w.message)]
        assert len(msgs) == 1 and "\\n" not in msgs[0], msgs
        assert ops.backend().startswith("reference (extension not built"), ops.backend()
        out = ops.project_interpolate(torch.ones(2, 3), torch.zeros(4, 3), torch.tensor([0, 3]), 0.25)
        assert torch.allclose(out, torch.full((2, 3), 0.25))
        print("ok")
        """
    )
    env = dict(os.environ, PYTHONWARNINGS="default")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
