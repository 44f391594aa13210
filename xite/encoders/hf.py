"""``hf:NAME_OR_PATH``: any transformers encoder, from the hub or a local directory."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from ..errors import ConfigError
from ._transformers import TransformersEncoder, _one_line, check_pooling

# Files whose change changes the vectors: they feed a local model's version digest.
_VERSIONED_SUFFIXES = (".json", ".safetensors", ".bin", ".model", ".txt")


def _looks_local(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~", ".\\")) or spec in (".", "..")


def resolve_local(spec: str) -> Path | None:
    """The local directory ``spec`` names, None for a hub name; ConfigError for a path that
    does not exist."""
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"hf:{spec}: not a model directory (expected a folder with config.json)")
        return path.resolve()
    if _looks_local(spec) or spec.count("/") > 1:
        raise ConfigError(f"hf:{spec}: no such model directory")
    return None


def local_digest(path: Path) -> str:
    """Digest of the names, sizes and mtimes of the files that determine the vectors (cheap:
    the weights are not read)."""
    h = hashlib.sha256()
    for file in sorted(path.iterdir()):
        if file.is_file() and file.suffix in _VERSIONED_SUFFIXES:
            st = file.stat()
            h.update(f"{file.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _options_digest(pooling: str, prefix: str, max_length: int) -> str:
    return hashlib.sha256(json.dumps([pooling, prefix, max_length]).encode()).hexdigest()[:8]


def _load_config(source: str | Path, spec: str):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(source))
    except Exception as exc:  # OSError (missing/offline), ValueError (unknown model type), ...
        raise ConfigError(f"hf:{spec}: cannot load the model config: {_one_line(exc)}") from exc


class HFEncoder(TransformersEncoder):
    """A transformers encoder named by hub id or local directory, mean or CLS pooling.

    Options:
        spec: hub model id or local model directory (the part after "hf:")
        pooling: how token states become one vector: mean over tokens or the first ([CLS]) token
        prefix: text put before every input (e.g. "passage: " for e5 models)
        max_length: tokens kept per text (longer texts are truncated)
        batch_size: texts per forward pass
        device: torch device to run on ("cpu", "cuda", "cuda:1"); default cpu
        threads: torch CPU threads (process-wide); default torch's own choice
        precision: fp32, or int8 (CTranslate2 int8 weights on the CPU: about 2-2.5x fp32 on a 2-core CPU, cosine >= 0.99 to fp32)
    """

    def __init__(
        self,
        spec: str,
        pooling: Literal["mean", "cls"] = "mean",
        prefix: str = "",
        max_length: int = 512,
        batch_size: int = 64,
        device: str | None = None,
        threads: int | None = None,
        precision: Literal["fp32", "int8"] = "fp32",
    ):
        check_pooling(pooling)
        super().__init__(prefix=prefix, pooling=pooling, max_length=max_length,
                         batch_size=batch_size, device=device, threads=threads, precision=precision)
        if not spec:
            raise ConfigError("hf: needs a model name or directory, e.g. hf:intfloat/multilingual-e5-small")
        self.spec = spec
        self.name = f"hf:{spec}"
        self.local_path = resolve_local(spec)
        config = _load_config(self._source(), spec)
        hidden = getattr(config, "hidden_size", None)
        if not isinstance(hidden, int):
            raise ConfigError(f"hf:{spec}: config has no hidden_size; is this a text encoder?")
        self.dim = hidden
        if self.precision == "int8":
            from .int8 import check_model_type

            check_model_type(config, self.name)
        self._config = config
        self.version = self._versioned(self._version(config))

    def _source(self) -> str | Path:
        return self.local_path if self.local_path is not None else self.spec

    def _model_config(self):
        return self._config

    def _version(self, config) -> str:
        # pooling/prefix/max_length change the vectors, so they belong in the cache key too.
        options = _options_digest(self.pooling, self.prefix, self.max_length)
        if self.local_path is not None:
            return f"local-{local_digest(self.local_path)}-{options}"
        commit = getattr(config, "_commit_hash", None)
        return f"{commit or 'unpinned'}-{options}"
