"""The ``lsar`` projector: a low-rank language subspace from the languages' mean embeddings.

LSAR (Xie, Zhao, Yu and Li, "Discovering Low-rank Subspaces for Language-agnostic Multilingual
Representations", EMNLP 2022). With M = [m_1 … m_L] the mean embedding of each language:

1. μ = mean of the columns; the top-r left singular vectors of M − μ1ᵀ give a rank-r
   approximation M' = μ1ᵀ + U' Γ'ᵀ of M;
2. μ* = v / ‖v‖² with v = (M'ᵀ)⁺ 1: the point of the languages' affine hull nearest the origin,
   so that every m'_l − μ* is orthogonal to μ* (the language-agnostic part);
3. U = the top-r left singular vectors of M' − μ*1ᵀ: the language-specific subspace.

``remove`` gives x − U Uᵀ x (language-neutral vectors, the paper's use); ``keep`` gives U Uᵀ x,
the language-rich part (what XITE projects target rows into).
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import pluggy

from xite.errors import ConfigError
from xite.projectors.base import Projection, Projector, check_languages, rows_per_language

hookimpl = pluggy.HookimplMarker("xite")


def language_means(x: np.ndarray, langs: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(languages in sorted order, their mean embeddings as the columns of a [d, L] matrix)."""
    names = sorted(set(langs.tolist()))
    return names, np.stack([x[langs == lang].mean(axis=0) for lang in names], axis=1)


def lsar_subspace(means: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(U [d, r], singular values of the language-specific part [min(d, L)], μ* [d]) of a [d, L]
    matrix of language means."""
    d, n_langs = means.shape
    mu = means.mean(axis=1, keepdims=True)
    u, s, vt = np.linalg.svd(means - mu, full_matrices=False)
    approx = mu + (u[:, :rank] * s[:rank]) @ vt[:rank]
    v = np.linalg.pinv(approx.T) @ np.ones(n_langs)
    agnostic = v / max(float(v @ v), 1e-300)
    u2, s2, _ = np.linalg.svd(approx - agnostic[:, None], full_matrices=False)
    return np.ascontiguousarray(u2[:, :rank], dtype=np.float32), s2, agnostic


class LSARProjector(Projector):
    """Low-rank language subspace from the languages' mean embeddings (Xie et al., 2022).

    Options:
        rank: dimensions of the language subspace; default languages - 1 (the most the means span)
        mode: remove the language-specific part (language-neutral vectors) or keep only it
    """

    name = "lsar"

    def __init__(self, rank: int | None = None, mode: Literal["keep", "remove"] = "remove"):
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1):
            raise ConfigError(f"rank must be an integer >= 1 or none (languages - 1), got {rank!r}")
        if mode not in ("keep", "remove"):
            raise ConfigError(f"mode must be 'keep' or 'remove', got {mode!r}")
        self.rank = None if rank is None else int(rank)
        self.mode = mode

    def fit(self, x: np.ndarray, languages: Sequence[str], *, source_language: str = "en") -> Projection:
        x, langs = check_languages(x, languages)
        names, means = language_means(x, langs)
        most = len(names) - 1
        if most < 1:
            raise ConfigError(f"LSAR needs rows of at least 2 languages, got {len(names)} ({', '.join(names)})")
        rank = most if self.rank is None else self.rank
        if rank > most:
            raise ConfigError(
                f"LSAR rank {rank} is too high: {len(names)} languages span at most {most} "
                f"direction(s) (languages - 1); lower the rank or add languages"
            )
        basis, singular, _ = lsar_subspace(means, rank)
        info = {
            "rank": rank,
            "languages": names,
            "rows_per_language": rows_per_language(langs),
            "singular_values": [float(v) for v in singular[:most]],
        }
        # No mean: the language-agnostic part is orthogonal to the basis, so centring on it would
        # change nothing.
        return Projection(basis=basis, mean=None, mode=self.mode, info=info)

    def config(self) -> dict:
        return {"rank": self.rank, "mode": self.mode}


@hookimpl
def register_projectors(register):
    register("lsar", LSARProjector)


@hookimpl
def register_commands(app):
    from xite_lsar.inspect import lsar_inspect

    app.command("lsar-inspect")(lsar_inspect)
