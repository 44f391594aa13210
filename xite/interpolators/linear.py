"""Linear interpolation with one fixed λ (the paper's): z = λ·P(target) + (1 − λ)·source."""

from __future__ import annotations

import numpy as np

from xite.interpolators.base import Interpolator, check_count, check_lam


class LinearInterpolator(Interpolator):
    """z = λ·P(target) + (1 − λ)·source with one fixed λ.

    Options:
        lam: weight of the target row, in [0, 1] (0.5: the midpoint)
    """

    name = "linear"
    interp = "linear"

    def __init__(self, lam: float = 0.5):
        self.lam = check_lam(lam)

    def coefficients(self, n: int, rng: np.random.Generator) -> np.ndarray:
        # rng is unused: a fixed λ draws nothing, so results do not depend on the seed.
        return np.full(check_count(n), self.lam, dtype=np.float32)

    def config(self) -> dict:
        return {"lam": self.lam}
