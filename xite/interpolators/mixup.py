"""Mixup: linear interpolation with λ ~ Beta(α, α) drawn per row from the caller's seeded rng."""

from __future__ import annotations

import math

import numpy as np

from xite.interpolators.base import Interpolator, check_count
from xite.errors import ConfigError


class MixupInterpolator(Interpolator):
    """Linear interpolation with λ ~ Beta(alpha, alpha) drawn per row.

    Options:
        alpha: Beta distribution parameter, > 0 (small: λ near 0 or 1; 1: uniform)
    """

    name = "mixup"
    interp = "linear"

    def __init__(self, alpha: float = 0.4):
        is_number = isinstance(alpha, (int, float, np.integer, np.floating)) and not isinstance(alpha, bool)
        if not is_number or not math.isfinite(alpha) or alpha <= 0:
            raise ConfigError(f"alpha must be a finite number > 0 (λ ~ Beta(alpha, alpha)), got {alpha!r}")
        self.alpha = float(alpha)

    def coefficients(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}"
            )
        lam = rng.beta(self.alpha, self.alpha, size=check_count(n)).astype(np.float32)
        # Beta draws lie in [0, 1]; the clip only guarantees the kernel's contract explicitly.
        return np.clip(lam, 0.0, 1.0)

    def config(self) -> dict:
        return {"alpha": self.alpha}
