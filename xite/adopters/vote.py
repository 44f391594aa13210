"""``vote``: a similarity-weighted vote over the k nearest English examples (beyond the paper)."""

from __future__ import annotations

import numpy as np

from xite.adopters.base import Adopter, Adoption, AdoptionContext, neighbour_votes


class VoteAdopter(Adopter):
    """A similarity-weighted vote of the k nearest English examples.

    Options:
        k: neighbours that vote
        min_sim: drop target rows whose chosen neighbour's cosine is below this; default keep all
        min_margin: drop rows whose vote margin ((winner - runner-up) / total) is below this, in [0, 1]
        balance: keep equally many rows per adopted label (the most similar ones)
    """

    name = "vote"

    def __init__(self, k: int = 5, min_sim: float | None = None, min_margin: float | None = None, balance: bool = False):
        super().__init__(k=k, min_sim=min_sim, min_margin=min_margin, balance=balance)

    def vote(self, scores: np.ndarray, ids: np.ndarray, source_labels: np.ndarray, ctx: AdoptionContext) -> Adoption:
        votes = neighbour_votes(scores, ids, source_labels, ctx.n_classes)
        labels = votes.argmax(axis=1).astype(np.int64)
        return Adoption(
            labels=labels,
            source_index=_best_with_label(ids, source_labels, labels),
            similarity=_similarity_of(scores, ids, source_labels, labels),
            margin=vote_margin(votes),
            keep=np.ones(len(labels), dtype=bool),
        )


def vote_margin(votes: np.ndarray) -> np.ndarray:
    """(winner − runner-up) / total vote, in [0, 1]; 0 when nobody voted."""
    ordered = np.sort(votes, axis=1)[:, ::-1]
    runner_up = ordered[:, 1] if ordered.shape[1] > 1 else 0.0
    total = votes.sum(axis=1)
    return np.where(total > 0, (ordered[:, 0] - runner_up) / np.maximum(total, 1e-12), 0.0).astype(np.float32)


def _first_match(ids: np.ndarray, source_labels: np.ndarray, labels: np.ndarray) -> np.ndarray:
    # Neighbours are sorted by similarity, so the first one carrying the label is the closest.
    return (source_labels[ids] == labels[:, None]).argmax(axis=1)


def _best_with_label(ids: np.ndarray, source_labels: np.ndarray, labels: np.ndarray) -> np.ndarray:
    col = _first_match(ids, source_labels, labels)
    return ids[np.arange(len(ids)), col].astype(np.int64)


def _similarity_of(scores: np.ndarray, ids: np.ndarray, source_labels: np.ndarray, labels: np.ndarray) -> np.ndarray:
    col = _first_match(ids, source_labels, labels)
    return scores[np.arange(len(ids)), col].astype(np.float32)
