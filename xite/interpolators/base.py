"""The interpolator contract: the arithmetic itself runs in xite.ops."""

from __future__ import annotations

import numpy as np

from xite.contracts import abstract
from xite.errors import ConfigError


class Interpolator:
    name = "interpolator"
    interp = "linear"  # the op's interpolation: "linear" or "slerp"

    @abstract
    def coefficients(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """λ for n synthetic rows, float32 [n], each in [0, 1] (weight of the target row)."""
        raise NotImplementedError

    def config(self) -> dict:
        return {}


def check_count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    return int(n)


def check_lam(lam: float) -> float:
    """λ is the weight of the target row: a number in [0, 1]."""
    is_number = isinstance(lam, (int, float, np.integer, np.floating)) and not isinstance(lam, bool)
    if not is_number or not 0.0 <= lam <= 1.0:
        raise ConfigError(f"lam must be a number in [0, 1] (the weight of the target row), got {lam!r}")
    return float(lam)
