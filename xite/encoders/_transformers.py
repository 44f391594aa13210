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
from .base import Encoder, cache_key_for, l2_normalise

POOLINGS = ("mean", "cls")
# fp32: the transformers model itself. int8: the same weights run by CTranslate2 with int8
# matrix products (see xite.encoders.int8); its vectors differ slightly, so it has its own cache key.
PRECISIONS = ("fp32", "int8")
# Longest first, a batch takes rows until rows x its longest row reaches this many tokens (always
# at least one row). Without it, batches of a fixed 64 rows padded 2,000 real sentences (en, ko,
# ar, hi, ur) by 45% extra tokens, the few very long texts dragging whole batches to their width;
# with 2,048 by 4% (8,192: 13%), and a long text's attention scores stay small.
DEFAULT_MAX_TOKENS = 2048


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")
    return pooling


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    return precision


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


def load_tokenizer(source: str | Path, spec: str | None = None):
    """The tokenizer alone: the int8 path never needs the fp32 model in memory."""
    from transformers import AutoTokenizer

    try:
        with _quiet_transformers():
            return AutoTokenizer.from_pretrained(str(source))
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError, ...
        raise ConfigError(f"{spec or source}: cannot load the tokenizer: {_one_line(exc)}") from exc


def load_model(source: str | Path, device: str = "cpu", spec: str | None = None):
    """(model, tokenizer) from a hub name or local directory, in eval mode on ``device``.
    Anything that keeps the model from loading becomes a one-line ConfigError naming the spec."""
    from transformers import AutoModel

    label = spec or str(source)
    tokenizer = load_tokenizer(source, label)
    try:
        with _quiet_transformers():
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


def length_mask(lengths: Sequence[int]):
    """[rows, longest] attention mask: 1 on each row's first lengths[row] positions."""
    import torch

    lengths = torch.as_tensor(lengths, dtype=torch.long)
    return (torch.arange(int(lengths.max()))[None, :] < lengths[:, None]).long()


def _pad(batch: list[list[int]], pad_id: int):
    import torch

    mask = length_mask([len(ids) for ids in batch])
    input_ids = torch.full(mask.shape, pad_id, dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
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


def length_sorted_batches(lengths: Sequence[int], batch_size: int, max_tokens: int) -> list[np.ndarray]:
    """Row indices in batches, longest texts first (a too-large batch fails at once, and each
    batch holds texts of similar length, so padding is small). A batch has at most
    ``batch_size`` rows and at most ``max_tokens`` tokens once padded (but always one row)."""
    order = np.argsort([-n for n in lengths], kind="stable")
    batches, start = [], 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        rows = max(1, min(batch_size, max_tokens // longest))
        batches.append(order[start : start + rows])
        start += rows
    return batches


def torch_forward(model, pad_id: int, pooling: str, device: str):
    """batch of token id lists -> pooled float32 [rows, hidden] through a transformers model."""
    import torch

    def forward(batch: list[list[int]]) -> np.ndarray:
        input_ids, mask = _pad(batch, pad_id)
        input_ids, mask = input_ids.to(device), mask.to(device)
        with torch.inference_mode():
            hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            return pool(hidden, mask, pooling).float().cpu().numpy()

    return forward


def encode_ids(
    forward,
    ids: list[list[int]],
    dim: int,
    *,
    batch_size: int,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    progress: bool = False,
    label: str = "encoding",
) -> np.ndarray:
    """Unit-norm float32 [n, dim] rows for tokenized texts, in input order, running
    ``forward(batch) -> [rows, dim]`` over length-sorted batches."""
    out = np.empty((len(ids), dim), dtype=np.float32)
    batches = length_sorted_batches([len(x) for x in ids], batch_size, max_tokens)
    with progress_bar(progress and len(batches) > 1, label) as bar:
        task = bar.add_task(label, total=len(ids)) if bar is not None else None
        for rows in batches:
            out[rows] = forward([ids[i] for i in rows])
            if bar is not None:
                bar.advance(task, len(rows))
    return l2_normalise(out)


def tokenize_for_encoding(tokenizer, texts: Sequence[str], prefix: str, max_length: int) -> list[list[int]]:
    if isinstance(texts, str):
        raise TypeError("encode() takes a sequence of texts, not a single str")
    if len(texts) == 0:
        return []
    return _tokenize(tokenizer, [prefix + t for t in texts], effective_max_length(tokenizer, max_length))


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
    """float32 [n, hidden] unit-norm embeddings of ``texts`` through a transformers model.

    Texts are tokenized once, sorted by token count and batched (:func:`length_sorted_batches`),
    so batches carry little padding; rows are put back in input order.
    """
    ids = tokenize_for_encoding(tokenizer, texts, prefix, max_length)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    forward = torch_forward(model, pad_id, pooling, device)
    return encode_ids(forward, ids, model.config.hidden_size, batch_size=batch_size,
                      progress=progress, label=label)


class TransformersEncoder(Encoder):
    """An encoder over a transformers model, loaded on first use.

    Subclasses provide :meth:`_source` (hub name or local directory) and set ``version`` through
    :meth:`_versioned`. ``model`` and ``tokenizer`` are public so that a fine-tuning step can train
    the very model this encoder uses; ``model`` is the fp32 model whatever the precision.
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
        precision: str = "fp32",
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
        self.precision = check_precision(precision)
        if self.precision == "int8":
            if self.device != "cpu":
                raise ConfigError(f"precision int8 runs on the CPU; got device {self.device!r}")
            from .int8 import require_ctranslate2

            require_ctranslate2()  # a missing package is said now, not after loading a model
        self._model = None
        self._tokenizer = None
        self._int8_forward = None

    def _source(self) -> str | Path:
        raise NotImplementedError

    def _versioned(self, fp32_version: str) -> str:
        """The cache version for this precision: int8 vectors differ slightly from fp32 ones,
        so the two must never share cache entries."""
        self._fp32_version = fp32_version
        if self.precision == "int8":
            from .int8 import ENGINE

            return f"{fp32_version}+int8-{ENGINE}"
        return fp32_version

    def _set_threads(self) -> None:
        if self.threads:
            import torch

            torch.set_num_threads(int(self.threads))  # process-wide: torch has no per-model knob

    def _load(self) -> None:
        if self._model is not None:
            return
        self._set_threads()
        self._model, self._tokenizer = load_model(self._source(), device=self.device, spec=self.name)

    @property
    def model(self):
        self._load()
        return self._model

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self._source(), self.name)
        return self._tokenizer

    def _fp32_for_int8(self):
        """(model, tokenizer) to build the int8 model from; a model loaded only for that is not
        kept (the int8 path exists to run without it)."""
        if self._model is not None:
            return self._model, self.tokenizer
        return load_model(self._source(), device="cpu", spec=self.name)

    def _forward(self):
        if self.precision == "fp32":
            pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
            return torch_forward(self.model, pad_id, self.pooling, self.device)
        if self._int8_forward is None:
            import torch

            from .int8 import check_model_type, ct2_forward, ensure_int8_model

            check_model_type(self._model_config(), self.name)
            fp32_key = cache_key_for(self.name, self._fp32_version)
            model_dir = ensure_int8_model(fp32_key, self._fp32_for_int8)
            self._set_threads()
            # The same thread count torch uses: its default is one per physical core.
            threads = int(self.threads or torch.get_num_threads())
            self._int8_forward = ct2_forward(model_dir, self.pooling, threads)
        return self._int8_forward

    def _model_config(self):
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(str(self._source()))

    def encode(self, texts: Sequence[str], batch_size: int | None = None, progress: bool = True) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not a single str")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = tokenize_for_encoding(self.tokenizer, texts, self.prefix, self.max_length)
        return encode_ids(self._forward(), ids, self.dim, batch_size=batch_size or self.batch_size,
                          progress=progress, label=f"encoding {self.name}")

    def config(self) -> dict:
        cfg = super().config()
        cfg.update(pooling=self.pooling, prefix=self.prefix, max_length=self.max_length,
                   precision=self.precision)
        return cfg
