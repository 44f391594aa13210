"""The projector contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from xite.contracts import abstract
from xite.errors import ConfigError


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

    @abstract
    def fit(self, x: np.ndarray, languages: Sequence[str], *, source_language: str = "en") -> Projection:
        """Fit on rows ``x`` [N, d] tagged with ``languages`` (one code per row).

        ``source_language`` names the labeled (English) rows; projectors that fit only on the
        target rows (pca) use it, others may ignore it.
        """
        raise NotImplementedError

    def config(self) -> dict:
        return {}


MODES = ("keep", "remove")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"mode must be 'keep' or 'remove', got {mode!r}")
    return mode


def check_languages(x: np.ndarray, languages: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Validate a fit's input; return x as float64 (for stable statistics) and languages as an array."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"embeddings must be a non-empty 2-D array [rows, dim], got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"embeddings must be floating point, got {x.dtype}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or infinite values")
    langs = np.asarray([str(lang) for lang in languages], dtype=object)
    if langs.shape[0] != x.shape[0]:
        raise ValueError(f"got {langs.shape[0]} language tags for {x.shape[0]} embedding rows")
    return x.astype(np.float64, copy=False), langs


def rows_per_language(langs: np.ndarray) -> dict[str, int]:
    names, counts = np.unique(langs.astype(str), return_counts=True)
    return {str(n): int(c) for n, c in zip(names, counts)}
