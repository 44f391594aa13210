"""The ``st:NAME_OR_PATH`` encoder: a sentence-transformers model as a xite encoder.

The model runs as sentence-transformers composes it (``modules.json``: Transformer, Pooling,
Dense, Normalize, ...), so its own pooling and normalisation apply, and so do the prompts saved in
its ``config_sentence_transformers.json`` (its default prompt unless ``prompt``/``prompt_name``
is given). Rows are L2-normalised at the end, as xite's encoder contract requires; for a model
that ends in a Normalize module that changes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pluggy

from xite.encoders.base import Encoder, l2_normalise
from xite.errors import ConfigError

hookimpl = pluggy.HookimplMarker("xite")

# Files whose change changes the vectors (weights, configs, tokenizer); they key the cache.
_VERSIONED_SUFFIXES = (".json", ".safetensors", ".bin", ".model", ".txt", ".pt")


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def files_digest(path: Path) -> str:
    """Digest of the names, sizes and mtimes of a model directory's files, subfolders included
    (a sentence-transformers model keeps its pooling config in ``1_Pooling/``); weights are not read."""
    h = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _VERSIONED_SUFFIXES):
        st = file.stat()
        h.update(f"{file.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _quiet_loading():
    """No per-load weight progress bar or prompt notice on the terminal of an xite command: the
    effective prompt is in the run's manifest (``config()``)."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    st_logger = logging.getLogger("sentence_transformers")
    level = st_logger.level
    hf_logging.disable_progress_bar()
    st_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        st_logger.setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()


class STEncoder(Encoder):
    """A sentence-transformers model, named by hub id or local directory (``st:NAME_OR_PATH``).

    Options:
        spec: hub model id or local model directory (the part after "st:")
        prompt: text put before every input, e.g. "passage: " for e5 models; default the model's own default prompt
        prompt_name: name of one of the prompts saved with the model (config_sentence_transformers.json)
        batch_size: texts per forward pass
        device: torch device ("cpu", "cuda", "cuda:1"); default cpu
        local_files_only: never contact the hub, even for a hub id (use the local cache only)
    """

    def __init__(
        self,
        spec: str,
        prompt: str | None = None,
        prompt_name: str | None = None,
        batch_size: int = 64,
        device: str | None = None,
        local_files_only: bool = False,
    ):
        if not spec:
            raise ConfigError("st: needs a model name or directory, e.g. st:sentence-transformers/LaBSE")
        if prompt is not None and prompt_name is not None:
            raise ConfigError("give prompt or prompt_name, not both")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.spec = spec
        self.name = f"st:{spec}"
        self.prompt = prompt
        self.prompt_name = prompt_name
        self.batch_size = batch_size
        self.device = device or "cpu"
        local = Path(spec).expanduser()
        self.local_path = local.resolve() if local.is_dir() else None
        if self.local_path is None and (spec.startswith(("/", "./", "../", "~")) or spec.count("/") > 1):
            raise ConfigError(f"st:{spec}: no such model directory")
        self.model = self._load(local_files_only)
        if prompt_name is not None and prompt_name not in self.model.prompts:
            known = ", ".join(sorted(self.model.prompts)) or "none"
            raise ConfigError(f"st:{spec}: the model has no prompt named {prompt_name!r}; its prompts: {known}")
        dim = getattr(self.model, "get_embedding_dimension", self.model.get_sentence_embedding_dimension)()
        if not isinstance(dim, int):
            raise ConfigError(f"st:{spec}: the model does not say its embedding dimension; is it a sentence encoder?")
        self.dim = dim
        self.version = self._version()

    def _load(self, local_files_only: bool):
        from sentence_transformers import SentenceTransformer

        source = str(self.local_path) if self.local_path is not None else self.spec
        try:
            with _quiet_loading():
                return SentenceTransformer(source, device=self.device, local_files_only=local_files_only)
        except Exception as exc:  # OSError (missing, offline), ValueError (not a model), ...
            raise ConfigError(f"st:{self.spec}: cannot load the model: {_one_line(exc)}") from exc

    def effective_prompt(self) -> str:
        """The text actually put before every input ("" for none)."""
        if self.prompt is not None:
            return self.prompt
        name = self.prompt_name or self.model.default_prompt_name
        return self.model.prompts.get(name, "") if name else ""

    def _version(self) -> str:
        # The prompt changes the vectors, so it belongs in the cache key with the model files.
        options = hashlib.sha256(json.dumps([self.effective_prompt()]).encode()).hexdigest()[:8]
        if self.local_path is not None:
            return f"local-{files_digest(self.local_path)}-{options}"
        return f"hub-{self.spec}-{options}"

    def encode(self, texts: Sequence[str], batch_size: int | None = None, progress: bool = True) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not a single str")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            prompt=self.effective_prompt(),
            batch_size=batch_size or self.batch_size,
            show_progress_bar=False,  # xite's embedding cache shows one bar over all texts
            convert_to_numpy=True,
        )
        return l2_normalise(np.asarray(vectors, dtype=np.float32))

    def config(self) -> dict:
        return {**super().config(), "prompt": self.effective_prompt(), "spec": self.spec}


@hookimpl
def register_encoders(register):
    register("st:", STEncoder)  # a prefix: st:NAME_OR_PATH
