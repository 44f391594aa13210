"""The retriever contract."""

from __future__ import annotations

import numpy as np

from xite.contracts import abstract


class Retriever:
    """``build(X_source)`` then ``search(X_query, k) -> (scores [n,k] float32, ids [n,k] int64)``.

    Rows are L2-normalised, so inner product is cosine. Results are sorted by descending score.
    """

    name = "retriever"

    @abstract
    def build(self, x_source: np.ndarray) -> None:
        raise NotImplementedError

    @abstract
    def search(self, x_query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def config(self) -> dict:
        return {}


# Shared input checks: every retriever must reject the same bad inputs with the same messages,
# so that swapping retrievers never changes which mistakes are caught.


def check_matrix(x: np.ndarray, what: str) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32 matrix, or raise ValueError naming ``what``.

    Only contiguity is repaired (a copy, harmless); a wrong dtype is an error rather than a silent
    cast, because float64 embeddings usually mean the caller skipped the normalisation step too.
    """
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{what} must be a numpy array, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{what} must be 2-D [rows, dim], got shape {x.shape}")
    if x.dtype != np.float32:
        raise ValueError(f"{what} must be float32, got {x.dtype} (cast with .astype(np.float32))")
    if x.shape[1] == 0:
        raise ValueError(f"{what} has dimension 0")
    if not np.isfinite(x).all():
        raise ValueError(f"{what} contains NaN or infinite values")
    return np.ascontiguousarray(x)


def check_source(x: np.ndarray) -> np.ndarray:
    x = check_matrix(x, "source embeddings")
    if x.shape[0] == 0:
        raise ValueError("source embeddings are empty: nothing to retrieve from")
    return x


def check_query(x: np.ndarray, dim: int | None, retriever: str) -> np.ndarray:
    if dim is None:
        raise RuntimeError(f"{retriever} retriever: call build(x_source) before search()")
    x = check_matrix(x, "query embeddings")
    if x.shape[1] != dim:
        raise ValueError(f"query embeddings have dimension {x.shape[1]}, the source had {dim}")
    return x


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    return int(k)


def sort_ties_by_id(scores: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order each row by descending score, equal scores by ascending id (the documented tie rule).

    Missing neighbours (id -1, the lowest score) stay at the end.
    """
    order = np.lexsort((ids, -scores), axis=-1)
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)
