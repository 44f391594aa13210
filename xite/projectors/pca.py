"""PCA projector: the top-r principal components of the target-language rows.

Only rows whose language is not ``source_language`` are used, so the subspace describes the target
languages. The components are those of the centred target rows (sklearn PCA); ``center`` only
decides whether their mean μ is used by the projection: ``μ + U Uᵀ (x − μ)`` (keep) or
``x − U Uᵀ (x − μ)`` (remove) when True, ``U Uᵀ x`` / ``x − U Uᵀ x`` when False.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

from xite.errors import ConfigError

from xite.projectors.base import Projection, Projector, check_languages, check_mode, rows_per_language
from xite.errors import ConfigError


class PCAProjector(Projector):
    """The top principal components of the target-language rows.

    Options:
        rank: number of principal components kept
        mode: keep the target rows' main directions, or remove them
        center: project around the target rows' mean instead of the origin
    """

    name = "pca"

    def __init__(self, rank: int = 8, mode: Literal["keep", "remove"] = "keep", center: bool = True):
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
            raise ConfigError(f"rank must be an integer >= 1, got {rank!r}")
        self.rank = int(rank)
        self.mode = check_mode(mode)
        self.center = bool(center)

    def fit(self, x: np.ndarray, languages: Sequence[str], *, source_language: str = "en") -> Projection:
        x, langs = check_languages(x, languages)
        target = x[langs != source_language]
        if target.shape[0] == 0:
            raise ConfigError(f"PCA is fitted on the target rows, and every row is {source_language!r}")
        most = min(target.shape)
        if self.rank > most:
            raise ConfigError(
                f"PCA rank {self.rank} is too high for {target.shape[0]} target rows of dimension "
                f"{target.shape[1]}: the maximum is {most}"
            )
        pca = _fitted_pca(target, self.rank)
        info = {
            "rank": self.rank,
            "languages": sorted(set(langs[langs != source_language])),
            "rows_per_language": rows_per_language(langs[langs != source_language]),
            "explained_variance_ratio": [float(v) for v in pca.explained_variance_ratio_],
        }
        mean = pca.mean_.astype(np.float32) if self.center else None
        basis = np.ascontiguousarray(pca.components_.T, dtype=np.float32)
        return Projection(basis=basis, mean=mean, mode=self.mode, info=info)

    def config(self) -> dict:
        return {"rank": self.rank, "mode": self.mode, "center": self.center}


def _fitted_pca(target: np.ndarray, rank: int):
    from sklearn.decomposition import PCA

    # Deterministic solvers only (no randomized SVD): the covariance route is exact and fast when
    # rows outnumber dimensions, the full SVD otherwise.
    solver = "covariance_eigh" if target.shape[0] >= target.shape[1] else "full"
    return PCA(n_components=rank, svd_solver=solver).fit(target)
