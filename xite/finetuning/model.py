"""A transformers encoder plus a linear head, and the XITE mix inside it.

The encoder's own modules do the work (``embeddings``, ``encoder.layer[i]``), so mixing after
layer L runs exactly the layers a plain forward would run, with the same attention-mask
construction transformers uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from xite.encoders._transformers import check_pooling, effective_max_length, pool
from xite.errors import ConfigError

# Single texts, or (first texts, second texts) for pair tasks (NLI), cross-encoded as one sequence.
Rows = Sequence[str] | tuple[Sequence[str], Sequence[str]]


def is_pair_rows(rows) -> bool:
    return isinstance(rows, tuple) and len(rows) == 2 and not isinstance(rows[0], str)


def row_count(rows) -> int:
    return len(rows[0]) if is_pair_rows(rows) else len(rows)


def take_rows(rows, index) -> Rows:
    """The rows at ``index`` (any int sequence), keeping the single/pair shape."""
    if is_pair_rows(rows):
        return ([rows[0][i] for i in index], [rows[1][i] for i in index])
    return [rows[i] for i in index]


def parse_mix_at(mix_at: str, num_layers: int | None = None) -> int | None:
    """None for 'pooled', else the layer L of 'layer:L' (0 = the embedding layer's output)."""
    if mix_at == "pooled":
        return None
    layer = None
    if isinstance(mix_at, str) and mix_at.startswith("layer:"):
        try:
            layer = int(mix_at[len("layer:"):])
        except ValueError:
            layer = None
    if layer is None or layer < 0:
        raise ConfigError(f"option mix_at must be 'pooled' or 'layer:L' with L >= 0; got {mix_at!r}")
    if num_layers is not None and layer > num_layers:
        raise ConfigError(f"option mix_at: {mix_at!r} is past the encoder's last layer ({num_layers})")
    return layer


@dataclass
class Batch:
    """Padded token ids of some rows, on one device."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


@dataclass
class TorchProjection:
    """A :class:`~xite.projectors.base.Projection` as tensors on the training device."""

    basis: torch.Tensor | None
    mean: torch.Tensor | None
    mode: str

    @classmethod
    def from_projection(cls, projection, dim: int, device) -> "TorchProjection | None":
        if projection is None or (projection.basis is None and projection.mean is None):
            return None
        basis = None if projection.basis is None else torch.as_tensor(np.asarray(projection.basis, dtype=np.float32), device=device)
        mean = None if projection.mean is None else torch.as_tensor(np.asarray(projection.mean, dtype=np.float32), device=device)
        if basis is not None and (basis.ndim != 2 or basis.shape[0] != dim):
            raise ConfigError(f"the projection's basis has shape {tuple(basis.shape)}; the mixing point has {dim} dimensions")
        if mean is not None and tuple(mean.shape) != (dim,):
            raise ConfigError(f"the projection's mean has shape {tuple(mean.shape)}; the mixing point has {dim} dimensions")
        return cls(basis, mean, projection.mode)


class EncoderClassifier(nn.Module):
    """``head(normalise(pool(encoder(tokens))))``.

    The head L2-normalises its input, as xite's frozen-embedding heads do: an interpolated vector
    is shorter than a unit vector, and the head should score its direction, not its length.
    """

    def __init__(self, encoder, tokenizer, n_classes: int, *, pooling: str = "mean", prefix: str = "", max_length: int = 128):
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.pooling = check_pooling(pooling)
        self.prefix = prefix
        self.max_length = effective_max_length(tokenizer, max_length)
        self.dim = int(encoder.config.hidden_size)
        self.head = nn.Linear(self.dim, n_classes)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    @property
    def num_layers(self) -> int:
        return int(self.encoder.config.num_hidden_layers)

    # -- tokens -------------------------------------------------------------------------------

    def tokenize(self, rows: Rows) -> list[tuple[list[int], list[int]]]:
        """(input ids, token type ids) per row, unpadded; pairs become one cross-encoded sequence.
        The prefix goes on the first text only: it tells e5 what kind of text the sequence is."""
        if is_pair_rows(rows):
            first = [self.prefix + t for t in rows[0]]
            enc = self.tokenizer(first, list(rows[1]), truncation="longest_first", max_length=self.max_length,
                                 padding=False, return_attention_mask=False, return_token_type_ids=True)
        else:
            if isinstance(rows, str):
                raise TypeError("rows must be a sequence of texts or a (first, second) pair of sequences, not a str")
            enc = self.tokenizer([self.prefix + t for t in rows], truncation=True, max_length=self.max_length,
                                 padding=False, return_attention_mask=False, return_token_type_ids=True)
        return list(zip(enc["input_ids"], enc["token_type_ids"]))

    def collate(self, tokens: Sequence[tuple[list[int], list[int]]]) -> Batch:
        width = max(len(ids) for ids, _ in tokens)
        n = len(tokens)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        types = torch.zeros((n, width), dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for row, (ids, tt) in enumerate(tokens):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            types[row, : len(tt)] = torch.tensor(tt, dtype=torch.long)
            mask[row, : len(ids)] = 1
        device = self.device
        return Batch(input_ids.to(device), mask.to(device), types.to(device))

    def batch(self, rows: Rows) -> Batch:
        return self.collate(self.tokenize(rows))

    # -- plain path ---------------------------------------------------------------------------

    def _pooled(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(pool(hidden, mask, self.pooling).float(), dim=-1)

    def embed(self, batch: Batch) -> torch.Tensor:
        """[B, d] pooled, L2-normalised embeddings."""
        out = self.encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask, token_type_ids=batch.token_type_ids)
        return self._pooled(out.last_hidden_state, batch.attention_mask)

    def classify(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.head(F.normalize(embeddings.float(), dim=-1))

    def logits(self, batch: Batch) -> torch.Tensor:
        return self.classify(self.embed(batch))

    # -- layer access (BertModel-like encoders) ------------------------------------------------

    def _layers(self):
        layers = getattr(getattr(self.encoder, "encoder", None), "layer", None)
        if getattr(self.encoder, "embeddings", None) is None or layers is None:
            raise ConfigError(f"mix_at 'layer:L' needs a BERT-like encoder (embeddings + encoder.layer); "
                              f"{type(self.encoder).__name__} has no such modules: use mix_at 'pooled'")
        return layers

    def _attention_bias(self, hidden: torch.Tensor, mask: torch.Tensor):
        # The same construction BertModel.forward uses, so sdpa/eager/flash all get what they expect.
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=self.encoder.config, inputs_embeds=hidden, attention_mask=mask)

    def _hidden_after(self, batch: Batch, layer: int) -> torch.Tensor:
        layers = self._layers()
        hidden = self.encoder.embeddings(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids)
        if layer > 0:
            bias = self._attention_bias(hidden, batch.attention_mask)
            for module in layers[:layer]:
                hidden = module(hidden, bias)
        return hidden

    def _finish_from(self, hidden: torch.Tensor, mask: torch.Tensor, layer: int) -> torch.Tensor:
        layers = self._layers()
        if layer < len(layers):
            bias = self._attention_bias(hidden, mask)
            for module in layers[layer:]:
                hidden = module(hidden, bias)
        return self._pooled(hidden, mask)

    def embed_at(self, batch: Batch, mix_at: str) -> torch.Tensor:
        """The embedding at the mixing point, to fit a projection there: the pooled normalised
        embedding, or the mean of the token states after layer L (unnormalised, on the same scale
        as the token vectors the projection is applied to)."""
        layer = parse_mix_at(mix_at, self.num_layers)
        if layer is None:
            return self.embed(batch)
        hidden = self._hidden_after(batch, layer)
        return pool(hidden, batch.attention_mask, "mean").float()

    # -- the XITE mix ---------------------------------------------------------------------------

    def mixed_logits(self, target: Batch, source: Batch, lam: torch.Tensor | float,
                     projection: TorchProjection | None = None, mix_at: str = "pooled") -> torch.Tensor:
        """Logits of ``lam * P(target) + (1 - lam) * source``, row i with row i, mixed at the
        pooled embedding or token-wise after layer L. Gradients reach both inputs' encoder paths."""
        n = len(target)
        if len(source) != n:
            raise ValueError(f"mixed_logits needs as many source rows as target rows ({len(source)} != {n})")
        lam_t = torch.as_tensor(lam, dtype=torch.float32, device=self.device)
        if lam_t.ndim == 0:
            lam_t = lam_t.expand(n)
        layer = parse_mix_at(mix_at, self.num_layers)
        if layer is None:
            mixed = self._mix(self.embed(target), self.embed(source), lam_t, projection)
            return self.classify(mixed)
        h_t = self._hidden_after(target, layer)
        h_s = self._hidden_after(source, layer)
        width = max(h_t.shape[1], h_s.shape[1])
        h_t, m_t = _pad_to(h_t, target.attention_mask, width)
        h_s, m_s = _pad_to(h_s, source.attention_mask, width)
        d = h_t.shape[-1]
        mixed = self._mix(h_t.reshape(n * width, d), h_s.reshape(n * width, d), lam_t.repeat_interleave(width), projection)
        mixed = mixed.reshape(n, width, d).to(h_t.dtype)
        # The union of both masks, except that a side with weight 0 contributes no tokens: at
        # lam = 1 its positions would hold nothing but padding, so the mixed row is then exactly
        # the target row (and at lam = 0 the source row).
        lam_col = lam_t.unsqueeze(1)
        mask = ((m_t.bool() & (lam_col > 0)) | (m_s.bool() & (lam_col < 1))).long()
        return self.classify(self._finish_from(mixed, mask, layer))

    def _mix(self, target: torch.Tensor, bank: torch.Tensor, lam: torch.Tensor, projection: TorchProjection | None) -> torch.Tensor:
        from xite.ops import project_interpolate

        index = torch.arange(target.shape[0], device=target.device)
        basis = mean = None
        mode = "keep"
        if projection is not None:
            basis, mean, mode = projection.basis, projection.mean, projection.mode
        # fp32 even under bf16 autocast: the projection is a small matmul whose rounding would
        # otherwise leak into every mixed vector.
        with torch.autocast(device_type=target.device.type, enabled=False):
            return project_interpolate(target.float(), bank.float(), index, lam.float(), basis, mean, mode)


def _pad_to(hidden: torch.Tensor, mask: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    extra = width - hidden.shape[1]
    if extra == 0:
        return hidden, mask
    return F.pad(hidden, (0, 0, 0, extra)), F.pad(mask, (0, extra))


def resolve_device(device: str) -> torch.device:
    """'auto' (CUDA when torch sees a GPU, else CPU), 'cpu' or 'cuda[:N]'."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" or device.startswith("cuda"):
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"option device: {device!r} asked for, but torch sees no CUDA device")
        return torch.device(device)
    raise ConfigError(f"option device must be 'auto', 'cpu' or 'cuda[:N]'; got {device!r}")


def autocast(device: torch.device):
    """bf16 autocast on CUDA; CPU runs stay in fp32 (CPU bf16 matmuls are slower, not faster)."""
    import contextlib

    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def run_batched(module: EncoderClassifier, tokens: Sequence[tuple[list[int], list[int]]], fn, batch_size: int = 64,
                progress: bool = False, label: str = "predicting") -> np.ndarray:
    """``fn(batch) -> [b, k]`` over all rows, without gradients and in eval mode, batched by
    length (longest first, little padding), rows returned in input order as float32 numpy."""
    from xite.progress import progress_bar

    order = np.argsort([-len(ids) for ids, _ in tokens], kind="stable")
    parts: list[np.ndarray] = []
    was_training = module.training
    module.eval()
    try:
        with progress_bar(progress and len(tokens) > batch_size, label) as bar, torch.no_grad(), autocast(module.device):
            task = bar.add_task(label, total=len(tokens)) if bar is not None else None
            for start in range(0, len(tokens), batch_size):
                rows = order[start : start + batch_size]
                parts.append(fn(module.collate([tokens[i] for i in rows])).float().cpu().numpy())
                if bar is not None:
                    bar.advance(task, len(rows))
    finally:
        module.train(was_training)
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    out = np.empty((len(tokens), parts[0].shape[1]), dtype=np.float32)
    out[order] = np.concatenate(parts)
    return out
