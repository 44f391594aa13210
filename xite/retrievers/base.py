"""The retriever contract (DESIGN §2.2)."""

from __future__ import annotations

import numpy as np


class Retriever:
    """``build(X_source)`` then ``search(X_query, k) -> (scores [n,k] float32, ids [n,k] int64)``.

    Rows are L2-normalised, so inner product is cosine. Results are sorted by descending score.
    """

    name = "retriever"

    def build(self, x_source: np.ndarray) -> None:
        raise NotImplementedError

    def search(self, x_query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def config(self) -> dict:
        return {}
