"""``top1``: adopt the label of the single most similar English example (the paper's rule)."""

from __future__ import annotations

import numpy as np

from xite.adopters.base import Adopter, Adoption, AdoptionContext


class Top1Adopter(Adopter):
    """Adopt the label of the single most similar English example.

    Options:
        min_sim: drop target rows whose neighbour's cosine is below this; default keep all
        balance: keep equally many rows per adopted label (the most similar ones)
    """

    name = "top1"

    def __init__(self, min_sim: float | None = None, balance: bool = False):
        super().__init__(k=1, min_sim=min_sim, min_margin=None, balance=balance)

    def vote(self, scores: np.ndarray, ids: np.ndarray, source_labels: np.ndarray, ctx: AdoptionContext) -> Adoption:
        best = ids[:, 0].astype(np.int64)
        n = len(best)
        return Adoption(
            labels=source_labels[best].astype(np.int64),
            source_index=best,
            similarity=scores[:, 0].astype(np.float32),
            margin=np.ones(n, dtype=np.float32),  # one neighbour: no runner-up to be close to
            keep=np.ones(n, dtype=bool),
        )

    def config(self) -> dict:
        return {"min_sim": self.min_sim, "balance": self.balance}
