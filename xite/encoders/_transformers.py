"""Shared machinery for encoders backed by a ``transformers`` model (``e5-small``, ``hf:``).

torch/transformers are imported inside functions so that registering these encoder classes
(``xite plugins``, the CLI's start-up) stays cheap.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from ..progress import progress_bar
from .base import Encoder, l2_normalise

POOLINGS = ("mean", "cls")


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")
    return pooling


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' per-load weight progress bar and load report; xite reports what
    matters itself (see _drop_untrained_pooler / load_model)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _drop_untrained_pooler(model, missing: set[str]) -> set[str]:
    """Encoders saved without a pooler (e5-small) get a randomly initialised one from AutoModel:
    xite never uses it, so remove it rather than compute it on every batch."""
    pooler_keys = {k for k in missing if k.startswith("pooler.")}
    if pooler_keys and getattr(model, "pooler", None) is not None:
        model.pooler = None
        return missing - pooler_keys
    return missing


def load_model(source: str | Path, device: str = "cpu", spec: str | None = None):
    """(model, tokenizer) from a hub name or local directory, in eval mode on ``device``.
    Anything that keeps the model from loading becomes a one-line ConfigError naming the spec."""
    from transformers import AutoModel, AutoTokenizer

    label = spec or str(source)
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(source))
            model, info = AutoModel.from_pretrained(str(source), output_loading_info=True)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError, ...
        raise ConfigError(f"{label}: cannot load the model: {_one_line(exc)}") from exc
    missing = _drop_untrained_pooler(model, set(info.get("missing_keys", ())))
    if missing:
        warnings.warn(
            f"{label}: {len(missing)} weights are not in the checkpoint and were randomly "
            f"initialised (e.g. {sorted(missing)[0]}); its embeddings will be noise there",
            stacklevel=2,
        )
    model.to(device)
    model.eval()
    return model, tokenizer


def _tokenize(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids (with special tokens, truncated), unpadded: batches are padded after sorting."""
    return tokenizer(
        texts,
        add_special_tokens=True,
        truncation=True,
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=False,
    )["input_ids"]


def _pad(batch: list[list[int]], pad_id: int):
    import torch

    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[row, : len(ids)] = 1
    return input_ids, mask


def pool(hidden, mask, pooling: str):
    """Mean over real tokens (attention_mask), or the first token's state."""
    if pooling == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def effective_max_length(tokenizer, max_length: int) -> int:
    """Never ask for more tokens than the tokenizer says the model takes."""
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return min(max_length, limit)
    return max_length


def encode_texts(
    model,
    tokenizer,
    texts: Sequence[str],
    *,
    prefix: str,
    pooling: str,
    max_length: int,
    batch_size: int,
    device: str,
    progress: bool = False,
    label: str = "encoding",
) -> np.ndarray:
    """float32 [n, hidden] unit-norm embeddings, in the order of ``texts``.

    Texts are tokenized once, sorted by token count (longest first, so a too-large batch fails
    at once) and batched, so batches carry little padding; rows are put back in input order.
    """
    import torch

    if isinstance(texts, str):
        raise TypeError("encode() takes a sequence of texts, not a single str")
    dim = model.config.hidden_size
    if len(texts) == 0:
        return np.zeros((0, dim), dtype=np.float32)
    ids = _tokenize(tokenizer, [prefix + t for t in texts], effective_max_length(tokenizer, max_length))
    order = np.argsort([-len(x) for x in ids], kind="stable")
    out = np.empty((len(texts), dim), dtype=np.float32)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    n_batches = (len(texts) + batch_size - 1) // batch_size
    with progress_bar(progress and n_batches > 1, label) as bar, torch.inference_mode():
        task = bar.add_task(label, total=len(texts)) if bar is not None else None
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            input_ids, mask = _pad([ids[i] for i in rows], pad_id)
            input_ids, mask = input_ids.to(device), mask.to(device)
            hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            out[rows] = pool(hidden, mask, pooling).float().cpu().numpy()
            if bar is not None:
                bar.advance(task, len(rows))
    return l2_normalise(out)


class TransformersEncoder(Encoder):
    """An encoder over a transformers model, loaded on first use.

    Subclasses provide :meth:`_source` (hub name or local directory). ``model`` and ``tokenizer``
    are public so that a fine-tuning step can train the very model this encoder uses.
    """

    def __init__(
        self,
        *,
        prefix: str = "",
        pooling: str = "mean",
        max_length: int = 512,
        batch_size: int = 64,
        device: str | None = None,
        threads: int | None = None,
    ):
        self.prefix = prefix
        self.pooling = check_pooling(pooling)
        if max_length < 2:
            raise ConfigError(f"max_length must be at least 2; got {max_length}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be positive; got {batch_size}")
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device or "cpu"
        self.threads = threads
        self._model = None
        self._tokenizer = None

    def _source(self) -> str | Path:
        raise NotImplementedError

    def _load(self) -> None:
        if self._model is not None:
            return
        if self.threads:
            import torch

            torch.set_num_threads(int(self.threads))  # process-wide: torch has no per-model knob
        self._model, self._tokenizer = load_model(self._source(), device=self.device, spec=self.name)

    @property
    def model(self):
        self._load()
        return self._model

    @property
    def tokenizer(self):
        self._load()
        return self._tokenizer

    def encode(self, texts: Sequence[str], batch_size: int | None = None, progress: bool = True) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not a single str")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return encode_texts(
            self.model,
            self.tokenizer,
            list(texts),
            prefix=self.prefix,
            pooling=self.pooling,
            max_length=self.max_length,
            batch_size=batch_size or self.batch_size,
            device=self.device,
            progress=progress,
            label=f"encoding {self.name}",
        )

    def config(self) -> dict:
        cfg = super().config()
        cfg.update(pooling=self.pooling, prefix=self.prefix, max_length=self.max_length)
        return cfg
