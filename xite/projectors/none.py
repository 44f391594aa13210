"""The identity projector: P(x) = x (no language subspace)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from xite.projectors.base import Projection, Projector


class NoneProjector(Projector):
    """The identity: P(x) = x. No options."""

    name = "none"

    def fit(self, x: np.ndarray, languages: Sequence[str], *, source_language: str = "en") -> Projection:
        return Projection(basis=None, mean=None, mode="keep", info={"rank": 0})

    def config(self) -> dict:
        return {}
