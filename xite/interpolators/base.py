"""The interpolator contract (DESIGN §2.4): the arithmetic itself runs in xite.ops."""

from __future__ import annotations

import numpy as np


class Interpolator:
    name = "interpolator"
    mode = "linear"  # or "slerp"

    def coefficients(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """λ for n synthetic rows, float32 [n], each in [0, 1] (weight of the target row)."""
        raise NotImplementedError

    def config(self) -> dict:
        return {}
