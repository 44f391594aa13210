"""The projector contract (DESIGN §2.3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


@dataclass
class Projection:
    """``basis`` U (d x r, orthonormal columns) or None for the identity; ``mean`` μ or None;
    ``mode`` 'keep' (P(x) = μ + U Uᵀ (x − μ)) or 'remove' (P(x) = x − U Uᵀ (x − μ))."""

    basis: np.ndarray | None
    mean: np.ndarray | None = None
    mode: str = "keep"
    info: dict = field(default_factory=dict)

    @property
    def rank(self) -> int:
        return 0 if self.basis is None else int(self.basis.shape[1])


class Projector:
    name = "projector"

    def fit(self, x: np.ndarray, languages: Sequence[str]) -> Projection:
        raise NotImplementedError

    def config(self) -> dict:
        return {}
