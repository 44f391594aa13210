"""Interpolators: λ ranges, seeding, the Beta distribution, option errors."""

from __future__ import annotations

import numpy as np
import pytest

from xite.interpolators.linear import LinearInterpolator
from xite.interpolators.mixup import MixupInterpolator
from xite.interpolators.slerp import SlerpInterpolator


@pytest.mark.parametrize("make, mode", [(LinearInterpolator, "linear"), (SlerpInterpolator, "slerp")])
@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_fixed_lambda(make, mode, lam):
    interpolator = make(lam)
    got = interpolator.coefficients(7, np.random.default_rng(0))
    assert got.dtype == np.float32 and got.shape == (7,)
    np.testing.assert_array_equal(got, np.float32(lam))
    assert interpolator.interp == mode and interpolator.config() == {"lam": lam}


def test_defaults_and_names():
    assert LinearInterpolator().lam == 0.5 and SlerpInterpolator().lam == 0.5
    assert MixupInterpolator().alpha == 0.4 and MixupInterpolator().interp == "linear"
    assert [c.name for c in (LinearInterpolator, MixupInterpolator, SlerpInterpolator)] == ["linear", "mixup", "slerp"]


def test_mixup_in_range_and_reproducible():
    interpolator = MixupInterpolator(alpha=0.4)
    a = interpolator.coefficients(1000, np.random.default_rng(42))
    b = interpolator.coefficients(1000, np.random.default_rng(42))
    c = interpolator.coefficients(1000, np.random.default_rng(43))
    assert a.dtype == np.float32 and a.shape == (1000,)
    assert np.all((a >= 0) & (a <= 1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(np.unique(a)) > 900  # one draw per row


@pytest.mark.parametrize("alpha", [0.2, 0.4, 2.0])
def test_mixup_is_beta_alpha_alpha(alpha):
    lam = MixupInterpolator(alpha).coefficients(50_000, np.random.default_rng(1)).astype(np.float64)
    assert abs(lam.mean() - 0.5) < 0.01
    want_var = 1 / (4 * (2 * alpha + 1))  # variance of Beta(α, α)
    assert abs(lam.var() - want_var) < 0.01


def test_zero_rows():
    for interpolator in (LinearInterpolator(), MixupInterpolator(), SlerpInterpolator()):
        got = interpolator.coefficients(0, np.random.default_rng(0))
        assert got.shape == (0,) and got.dtype == np.float32


@pytest.mark.parametrize("lam", [-0.1, 1.1, float("nan"), "0.5", True])
def test_bad_lambda(lam):
    for make in (LinearInterpolator, SlerpInterpolator):
        with pytest.raises(ValueError, match="lam must"):
            make(lam)


@pytest.mark.parametrize("alpha", [0, -1, float("inf"), float("nan")])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha must"):
        MixupInterpolator(alpha)


def test_bad_count_and_rng():
    with pytest.raises(ValueError, match="n must"):
        LinearInterpolator().coefficients(-1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="n must"):
        MixupInterpolator().coefficients(2.5, np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        MixupInterpolator().coefficients(3, np.random.RandomState(0))
