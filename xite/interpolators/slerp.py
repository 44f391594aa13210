"""Spherical interpolation (beyond the paper) between the normalised projected target and source.

λ is the target's weight, as in the linear mode; the kernel falls back to linear interpolation of
the normalised vectors when they are (anti)parallel (see xite.ops.reference).
"""

from __future__ import annotations

import numpy as np

from xite.interpolators.base import Interpolator, check_count, check_lam


class SlerpInterpolator(Interpolator):
    name = "slerp"
    mode = "slerp"

    def __init__(self, lam: float = 0.5):
        self.lam = check_lam(lam)

    def coefficients(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.full(check_count(n), self.lam, dtype=np.float32)

    def config(self) -> dict:
        return {"lam": self.lam}
