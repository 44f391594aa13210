"""Classifier heads on frozen embeddings (the "head" level): linear or MLP, in torch.

Inputs are L2-normalised inside the head: a StandardScaler + logistic head collapsed to one class
on Arabic e5 embeddings (0.52) where the same head on unit vectors scored 0.72, because the
per-dimension scales differ between languages. Early stopping watches English dev accuracy only;
target labels never select a model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

HEAD_TYPES = ("linear", "mlp")


@dataclass
class HeadOptions:
    """How a head is built and trained. Every field is recorded in the model's config.json."""

    type: str = "linear"
    hidden: int = 256  # mlp only
    dropout: float = 0.1  # mlp only
    epochs: int = 25
    patience: int = 3  # epochs without an English-dev improvement before stopping
    lr: float = 1e-2
    weight_decay: float = 1e-4
    batch_size: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        from xite.checks import check_finite
        from xite.errors import ConfigError

        if self.type not in HEAD_TYPES:
            raise ConfigError(f"unknown head {self.type!r}; choose one of: {', '.join(HEAD_TYPES)}")
        # The same checks for the CLI, the API and a model's config.json: NaN compares false with
        # everything, so each number is checked for finiteness before its range.
        for name, low in (("hidden", 1), ("epochs", 1), ("batch_size", 1), ("patience", 0), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"head option {name} must be an integer >= {low}, got {value!r}")
        self.lr = check_finite(self.lr, "head option lr", low=0.0, low_open=True)
        self.weight_decay = check_finite(self.weight_decay, "head option weight_decay", low=0.0)
        self.dropout = check_finite(self.dropout, "head option dropout", low=0.0)
        if self.dropout >= 1:
            raise ConfigError(f"head option dropout must be < 1, got {self.dropout!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FitReport:
    best_epoch: int
    epochs_run: int
    dev_accuracy: float | None
    history: list[float] = field(default_factory=list)


def l2_normalise_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def build_module(options: HeadOptions, dim: int, n_classes: int):
    import torch.nn as nn

    if options.type == "linear":
        return nn.Linear(dim, n_classes)
    return nn.Sequential(
        nn.Linear(dim, options.hidden), nn.GELU(), nn.Dropout(options.dropout), nn.Linear(options.hidden, n_classes)
    )


def predict_logits(module, x: np.ndarray, batch: int = 8192) -> np.ndarray:
    import torch

    module.eval()
    outs = []
    with torch.no_grad():
        for lo in range(0, len(x), batch):
            outs.append(module(torch.from_numpy(l2_normalise_rows(x[lo : lo + batch]))).numpy())
    return np.concatenate(outs, axis=0) if outs else np.zeros((0, 0), dtype=np.float32)


def fit_module(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    options: HeadOptions,
    x_dev: np.ndarray | None = None,
    y_dev: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
):
    """Train a head with AdamW on mini-batches; keep the epoch with the best English dev accuracy
    (without a dev set: the last epoch). Deterministic for a given ``options.seed``."""
    import torch

    torch.manual_seed(options.seed)
    gen = torch.Generator().manual_seed(options.seed)
    module = build_module(options, x.shape[1], n_classes)
    opt = torch.optim.AdamW(module.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    xt = torch.from_numpy(l2_normalise_rows(x))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    wt = None if sample_weight is None else torch.from_numpy(np.asarray(sample_weight, dtype=np.float32))
    best_state, best_acc, best_epoch, history, stale = None, -1.0, 0, [], 0
    epoch = 0
    for epoch in range(1, options.epochs + 1):
        _one_epoch(module, opt, xt, yt, wt, options.batch_size, gen)
        if x_dev is None:
            continue
        acc = float((predict_logits(module, x_dev).argmax(1) == y_dev).mean())
        history.append(round(acc, 6))
        if acc > best_acc:
            best_acc, best_epoch, stale = acc, epoch, 0
            best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            stale += 1
            if stale > options.patience:
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    else:
        best_epoch = epoch
    module.eval()
    return module, FitReport(best_epoch, epoch, None if x_dev is None else best_acc, history)


def _one_epoch(module, opt, xt, yt, wt, batch_size: int, gen) -> None:
    import torch
    import torch.nn.functional as F

    module.train()
    order = torch.randperm(len(xt), generator=gen)
    for lo in range(0, len(xt), batch_size):
        idx = order[lo : lo + batch_size]
        logits = module(xt[idx])
        if wt is None:
            loss = F.cross_entropy(logits, yt[idx])
        else:
            w = wt[idx]
            loss = (F.cross_entropy(logits, yt[idx], reduction="none") * w).sum() / w.sum().clamp_min(1e-12)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
