"""The label-adoption contract: from retrieved neighbours to pseudo-labels.

An adopter turns, for each target row, its top-k English neighbours (scores, ids) into
- a label (the English label it adopts),
- the source row to interpolate with (the most similar neighbour carrying that label),
- a similarity (cosine of that neighbour) and a confidence (vote margin), and
- whether the row is kept (filters: minimum similarity, minimum margin, class balance).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xite.contracts import abstract
from xite.errors import ConfigError


@dataclass
class Adoption:
    labels: np.ndarray  # int64 [n]
    source_index: np.ndarray  # int64 [n]
    similarity: np.ndarray  # float32 [n]
    margin: np.ndarray  # float32 [n], in [0, 1]: share of the winning label's vote over the runner-up's
    keep: np.ndarray  # bool [n]
    stats: dict = field(default_factory=dict)


@dataclass
class AdoptionContext:
    """What an adopter may use beyond the neighbours. ``predictions`` are a classifier's
    probabilities for the target rows [n, C] (for agreement filtering), when one is given."""

    n_classes: int
    predictions: np.ndarray | None = None


class Adopter:
    """Base: subclasses implement :meth:`vote`; filters and balancing are shared."""

    name = "adopter"
    k: int = 1  # neighbours each target row needs from the retriever

    def __init__(self, k: int = 1, min_sim: float | None = None, min_margin: float | None = None, balance: bool = False):
        from xite.checks import check_finite
        from xite.errors import ConfigError

        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be an integer >= 1, got {k!r}")
        # Similarities are cosines: a threshold outside [-1, 1] (or NaN) keeps no row, or every
        # row, and the run would be written with no word about it.
        if min_sim is not None:
            min_sim = check_finite(min_sim, "min_sim", low=-1.0, high=1.0)
        if min_margin is not None:
            min_margin = check_finite(min_margin, "min_margin", low=0.0, high=1.0)
        if not isinstance(balance, bool):
            raise ConfigError(f"balance must be true or false, got {balance!r}")
        self.k = int(k)
        self.min_sim = min_sim
        self.min_margin = min_margin
        self.balance = bool(balance)

    @abstract
    def vote(self, scores: np.ndarray, ids: np.ndarray, source_labels: np.ndarray, ctx: AdoptionContext) -> Adoption:
        raise NotImplementedError

    def adopt(self, scores: np.ndarray, ids: np.ndarray, source_labels: np.ndarray, ctx: AdoptionContext) -> Adoption:
        adoption = self.vote(scores, ids, source_labels, ctx)
        keep = adoption.keep.copy()
        if self.min_sim is not None:
            keep &= adoption.similarity >= self.min_sim
        if self.min_margin is not None:
            keep &= adoption.margin >= self.min_margin
        if self.balance:
            keep &= balanced_mask(adoption.labels, adoption.similarity, keep, ctx.n_classes)
        adoption.keep = keep
        adoption.stats.update(kept=int(keep.sum()), filtered=int((~keep).sum()))
        return adoption

    def config(self) -> dict:
        return {"k": self.k, "min_sim": self.min_sim, "min_margin": self.min_margin, "balance": self.balance}


def balanced_mask(labels: np.ndarray, confidence: np.ndarray, keep: np.ndarray, n_classes: int) -> np.ndarray:
    """Keep, per class, the most confident rows up to the size of the smallest represented class,
    so that pseudo-labels do not amplify the classifier's favourite class."""
    counts = [int((keep & (labels == c)).sum()) for c in range(n_classes)]
    present = [c for c in counts if c > 0]
    if not present:
        return keep
    quota = min(present)
    mask = np.zeros_like(keep)
    for c in range(n_classes):
        rows = np.flatnonzero(keep & (labels == c))
        best = rows[np.argsort(-confidence[rows], kind="stable")[:quota]]
        mask[best] = True
    return mask


def neighbour_votes(scores: np.ndarray, ids: np.ndarray, source_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Similarity-weighted votes [n, C]: each neighbour adds max(similarity, 0) to its label."""
    n, k = ids.shape
    votes = np.zeros((n, n_classes), dtype=np.float64)
    weights = np.clip(scores, 0.0, None).astype(np.float64)
    labels = source_labels[ids]
    for j in range(k):
        np.add.at(votes, (np.arange(n), labels[:, j]), weights[:, j])
    return votes
