"""The ``hashing`` encoder: signed feature hashing of character n-grams, L2-normalised."""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np
import pluggy

from xite.encoders.base import Encoder, l2_normalise
from xite.errors import ConfigError

hookimpl = pluggy.HookimplMarker("xite")


class HashingEncoder(Encoder):
    """Signed feature hashing of character n-grams: no model, instant, a baseline.

    Options:
        dim: vector dimension (number of hash buckets)
        ngram_min: shortest character n-gram hashed
        ngram_max: longest character n-gram hashed
    """

    name = "hashing"
    version = "1"

    def __init__(self, dim: int = 256, ngram_min: int = 2, ngram_max: int = 4):
        if dim < 1 or ngram_min < 1 or ngram_max < ngram_min:
            raise ConfigError(f"need dim >= 1 and 1 <= ngram_min <= ngram_max, got dim={dim}, ngram_min={ngram_min}, ngram_max={ngram_max}")
        self.dim = int(dim)
        self.ngrams = (int(ngram_min), int(ngram_max))
        # The options change the vectors, so they are part of the cache key.
        self.version = f"1-d{self.dim}-n{ngram_min}-{ngram_max}"

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        padded = f" {text.lower()} "
        for n in range(self.ngrams[0], self.ngrams[1] + 1):
            for i in range(max(len(padded) - n + 1, 0)):
                h = zlib.crc32(padded[i : i + n].encode("utf-8"))
                # One hash gives both the bucket and the sign, so collisions cancel on average.
                vec[h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
        return vec

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = True) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.stack([self._vector(t) for t in texts]))

    def config(self) -> dict:
        return {**super().config(), "ngram_min": self.ngrams[0], "ngram_max": self.ngrams[1]}


@hookimpl
def register_encoders(register):
    register("hashing", HashingEncoder)
