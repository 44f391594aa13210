"""The encoder contract."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from xite.contracts import abstract


def l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def pair_features(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """SentEval pair features ``[u, v, |u - v|, u * v]``, L2-normalised (so cosine retrieval and
    heads see unit vectors, like single-text embeddings)."""
    return l2_normalise(np.concatenate([u, v, np.abs(u - v), u * v], axis=1))


def cache_key_for(name: str, version: str) -> str:
    """A directory name for an encoder's vectors: its name made file-system safe, @ version."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return f"{safe}@{version}"


class Encoder:
    """Base class for encoders.

    Subclasses set ``name``, ``version`` (changes whenever the vectors would change: it keys
    the embedding cache) and ``dim``, and implement :meth:`encode`. ``encode`` returns
    float32 ``[n, dim]`` rows of unit L2 norm. They may set ``languages`` to the codes they cover.
    """

    name: str = "encoder"
    version: str = "0"
    dim: int = 0
    # The language codes the model was trained on (ISO 639-1, lower case: "ko", "ar"), or None
    # when the encoder does not say. Callers warn about corpora in other languages.
    languages: frozenset[str] | None = None

    @abstract
    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = True) -> np.ndarray:
        raise NotImplementedError

    def encode_pairs(
        self, a: Sequence[str], b: Sequence[str], batch_size: int = 64, progress: bool = True
    ) -> np.ndarray:
        """One vector per text pair: ``[u, v, |u-v|, u*v]`` (dimension 4 * dim).

        Encoders that keep this default get their pairs cached per text (a premise shared by
        three hypotheses is encoded once); an override is cached per pair instead."""
        if len(a) != len(b):
            raise ValueError(f"encode_pairs needs as many first texts as second texts ({len(a)} != {len(b)})")
        u = self.encode(a, batch_size=batch_size, progress=progress)
        v = self.encode(b, batch_size=batch_size, progress=progress)
        return pair_features(u, v)

    @property
    def cache_key(self) -> str:
        """Identifies the vectors this encoder gives: the embedding cache's directory name."""
        return cache_key_for(self.name, self.version)

    def config(self) -> dict:
        return {"name": self.name, "version": self.version, "dim": self.dim}


def uncovered_languages(encoder: object, langs: Iterable[str]) -> list[str]:
    """The codes in ``langs`` that ``encoder`` does not declare it covers, in first-seen order.

    Empty when the encoder declares no ``languages`` (unknown is not "uncovered"). A regional code
    counts as covered when its primary language is ("zh-tw" by "zh", "pt_BR" by "pt").
    """
    covered = getattr(encoder, "languages", None)
    if covered is None:
        return []
    covered = {c.lower() for c in covered}
    missing: list[str] = []
    for lang in langs:
        code = str(lang).strip().lower().replace("_", "-")
        if code in covered or code.split("-")[0] in covered or lang in missing:
            continue
        missing.append(lang)
    return missing
