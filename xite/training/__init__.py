"""``train``: a classifier head on frozen embeddings of English + synthetic rows.

A model directory holds ``head.safetensors`` (the torch weights) and ``config.json`` (format,
encoder name/version/dim and its options, label names, whether inputs are text pairs, the head's
options and how training went). The encoder identity is what lets ``evaluate`` refuse a model
that was trained on vectors from another encoder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from xite.errors import InputError, XiteError
from xite.training.heads import FitReport, HeadOptions, fit_module, predict_logits

MODEL_FORMAT = "xite-head/1"
WEIGHTS = "head.safetensors"
CONFIG = "config.json"

__all__ = ["HeadModel", "HeadOptions", "fit_head", "load_model", "train", "encoder_identity"]


def encoder_identity(enc, spec: str, options: Mapping[str, Any] | None = None) -> dict:
    """What a model (or a run) must agree on with the encoder that feeds it."""
    return {"name": enc.name, "version": enc.version, "dim": int(enc.dim), "spec": spec, "options": dict(options or {})}


@dataclass
class HeadModel:
    """A trained head plus what is needed to use it safely on new text."""

    module: Any
    options: HeadOptions
    label_names: list[str]
    input_dim: int
    encoder: dict = field(default_factory=dict)
    pairs: bool = False
    report: FitReport | None = None
    training: dict = field(default_factory=dict)

    def logits(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise XiteError(f"the model expects {self.input_dim}-dimensional embeddings, got shape {tuple(x.shape)}")
        return predict_logits(self.module, x)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.logits(x).argmax(axis=1).astype(np.int64)

    def config(self) -> dict:
        rep = self.report
        return {
            "format": MODEL_FORMAT,
            "encoder": self.encoder,
            "input_dim": self.input_dim,
            "label_names": list(self.label_names),
            "pairs": self.pairs,
            "head": self.options.to_dict(),
            "fit": None if rep is None else {"best_epoch": rep.best_epoch, "epochs_run": rep.epochs_run,
                                             "dev_accuracy": rep.dev_accuracy, "dev_history": rep.history},
            "training": self.training,
        }

    def save(self, out: str | Path, overwrite: bool = False) -> Path:
        """Write the model directory atomically (temp dir, then rename)."""
        from safetensors.torch import save_file

        from xite.data.writers import atomic_output_dir

        out = Path(out)
        with atomic_output_dir(out, overwrite=overwrite) as tmp:
            state = {k: v.detach().contiguous() for k, v in self.module.state_dict().items()}
            save_file(state, str(Path(tmp) / WEIGHTS))
            (Path(tmp) / CONFIG).write_text(json.dumps(self.config(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return out


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    label_names: Sequence[str],
    options: HeadOptions | None = None,
    *,
    x_dev: np.ndarray | None = None,
    y_dev: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    encoder: dict | None = None,
    pairs: bool = False,
    training: dict | None = None,
) -> HeadModel:
    """Train a head on embeddings in memory (the experiment's and ``train``'s shared core)."""
    options = options or HeadOptions()
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    if len(x) == 0:
        raise XiteError("no training rows")
    module, report = fit_module(x, y, len(label_names), options, x_dev, y_dev, sample_weight)
    return HeadModel(module, options, list(label_names), int(x.shape[1]), dict(encoder or {}), pairs, report, dict(training or {}))


def load_model(path: str | Path) -> HeadModel:
    """Read a model directory; anything missing or inconsistent is a one-line error."""
    from safetensors.torch import load_file

    from xite.training.heads import build_module

    from xite.run_io import read_json_dir

    path = Path(path)
    cfg = read_json_dir(path, (CONFIG, WEIGHTS), CONFIG, "an xite model directory (made by `xite train`)")
    options = _check_config(path / CONFIG, cfg)
    module = build_module(options, int(cfg["input_dim"]), len(cfg["label_names"]))
    try:
        state = load_file(str(path / WEIGHTS))
        module.load_state_dict(state)
    except Exception as exc:  # safetensors / torch raise their own types
        raise InputError(path / WEIGHTS, f"weights do not fit the config: {str(exc).splitlines()[0]}") from None
    for name, tensor in state.items():
        if not tensor.is_floating_point() or not bool(tensor.isfinite().all()):
            # A head with NaN weights predicts one class for everything, and evaluate would score it.
            raise InputError(path / WEIGHTS, "holds NaN, infinite or non-float values", field=name)
    module.eval()
    return HeadModel(module, options, list(cfg["label_names"]), int(cfg["input_dim"]), cfg.get("encoder", {}),
                     bool(cfg.get("pairs", False)), None, cfg.get("training", {}))


# config.json's schema: every key and its JSON type. A key missing or of another type, or one this
# version does not know (a file from a newer xite, or edited by hand), is a one-line error.
_CONFIG_KEYS = {"format": str, "encoder": dict, "input_dim": int, "label_names": list, "pairs": bool,
                "head": dict, "fit": (dict, type(None)), "training": dict}


def _check_config(path: Path, cfg: Any) -> HeadOptions:
    from dataclasses import fields as dataclass_fields

    from xite.errors import ConfigError

    if not isinstance(cfg, dict):
        raise InputError(path, f"must be a JSON object, got {type(cfg).__name__}")
    if cfg.get("format") != MODEL_FORMAT:
        raise InputError(path, f"format {cfg.get('format')!r} is not {MODEL_FORMAT!r}", field="format")
    for key, typ in _CONFIG_KEYS.items():
        if key not in cfg:
            raise InputError(path, "missing key", field=key)
        if isinstance(cfg[key], bool) and typ is int or not isinstance(cfg[key], typ):
            raise InputError(path, f"has the wrong type ({type(cfg[key]).__name__})", field=key)
    unknown = sorted(set(cfg) - set(_CONFIG_KEYS))
    if unknown:
        raise InputError(path, f"unexpected key(s) {', '.join(unknown)}", field=unknown[0])
    if cfg["input_dim"] < 1:
        raise InputError(path, f"must be >= 1, got {cfg['input_dim']}", field="input_dim")
    names = cfg["label_names"]
    if len(names) < 2 or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise InputError(path, "must list two or more distinct label names (strings)", field="label_names")
    known = {f.name for f in dataclass_fields(HeadOptions)}
    extra = sorted(set(cfg["head"]) - known)
    if extra:
        raise InputError(path, f"unknown head option(s) {', '.join(extra)}", field="head")
    try:
        return HeadOptions(**cfg["head"])
    except ConfigError as exc:
        raise InputError(path, str(exc), field="head") from None


def check_same_encoder(expected: dict, actual: dict, what: str) -> None:
    """Vectors from two encoders (or two versions of one) live in different spaces."""
    keys = ("name", "version", "dim")
    if any(expected.get(k) != actual.get(k) for k in keys):
        show = lambda e: f"{e.get('name')}@{e.get('version')} (dim {e.get('dim')})"  # noqa: E731
        raise XiteError(f"{what} was made with encoder {show(actual)}, but this uses {show(expected)}: encode everything with one encoder")


def train(
    source: str | Path,
    synthetic: Sequence[str | Path] = (),
    *,
    dev: str | Path | None = None,
    head: str = "linear",
    head_options: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    encoder: str | None = None,
    encoder_options: Mapping[str, Any] | None = None,
    seed: int = 0,
    batch_size: int = 64,
    text_field: str | None = None,
    premise_field: str | None = None,
    hypothesis_field: str | None = None,
    label_field: str | None = None,
    progress: bool = True,
) -> HeadModel:
    """Train a head on the English ``source`` plus the synthetic rows of ``xite augment`` runs.

    ``dev`` (English, labeled) drives early stopping; without it the last epoch is kept.
    The encoder defaults to the one the synthetic runs were made with (else e5-small).
    """
    from xite import plugins
    from xite.checks import check_batch_size, check_output_not_input
    from xite.data.readers import label_set, read_corpus
    from xite.encoders.cache import EmbeddingCache
    from xite.encoders.cache import encode_corpus
    from xite.run_io import read_run

    batch_size = check_batch_size(batch_size)
    # Options first: a bad learning rate is refused before anything is read or encoded.
    options = HeadOptions(**{**dict(head_options or {}), "type": head, "seed": seed})
    check_output_not_input(out, [source, dev, *synthetic])
    if out is not None and Path(out).exists() and not overwrite:
        raise XiteError(f"output directory {out} exists; pass --overwrite to replace it")
    runs = [read_run(p) for p in synthetic]
    spec, encoder_options = _encoder_choice(encoder, encoder_options, runs)
    enc = plugins.create("encoders", spec, encoder_options)
    identity = encoder_identity(enc, spec, encoder_options)
    for run in runs:
        check_same_encoder(identity, run.manifest["encoder"], f"synthetic run {run.path}")

    fields = dict(text_field=text_field, premise_field=premise_field, hypothesis_field=hypothesis_field, label_field=label_field)
    src = read_corpus(source, labeled=True, **fields)
    label_names = label_set(src.labels)
    if len(label_names) < 2:
        raise InputError(src.path, f"training needs at least two labels, found {label_names}", field=src.label_field)
    for run in runs:
        _check_run_fits(run, label_names, src.is_pair)
    cache = EmbeddingCache(enc.cache_key)
    x_parts = [encode_corpus(enc, cache, src, batch_size, progress)]
    y_parts = [src.encode_labels(label_names)]
    for run in runs:
        x_parts.append(np.asarray(run.tensors["embeddings"], dtype=np.float32))
        y_parts.append(np.asarray(run.tensors["labels"], dtype=np.int64))
        if x_parts[-1].shape[1] != x_parts[0].shape[1]:
            raise InputError(run.path, f"embeddings are {x_parts[-1].shape[1]}-dimensional, the source's {x_parts[0].shape[1]}")
    x_dev = y_dev = None
    if dev is not None:
        dev_c = read_corpus(dev, labeled=True, **fields)
        _check_pairs(dev_c, src.is_pair)
        y_dev = dev_c.encode_labels(label_names)
        x_dev = encode_corpus(enc, cache, dev_c, batch_size, progress)
    training = {
        "source": {"path": str(src.path), "digest": src.digest, "rows": len(src)},
        "synthetic": [{"path": str(r.path), "rows": int(len(r.tensors["labels"]))} for r in runs],
        "dev": None if dev is None else {"path": str(dev), "rows": int(len(y_dev))},
    }
    model = fit_head(np.concatenate(x_parts), np.concatenate(y_parts), label_names, options, x_dev=x_dev, y_dev=y_dev,
                     encoder=identity, pairs=src.is_pair, training=training)
    if out is not None:
        model.save(out, overwrite=overwrite)
    return model


def _encoder_choice(encoder: str | None, options: Mapping[str, Any] | None, runs) -> tuple[str, dict]:
    """The encoder named, else the one the synthetic runs were made with (with the options they
    were made with, so a run made with ``--option encoder.dim=128`` is read by a model that
    agrees), else e5-small."""
    if encoder is not None:
        return encoder, dict(options or {})
    if runs:
        spec = runs[0].info.recipe.encoder
        return spec.name, {**spec.options, **dict(options or {})}
    return "e5-small", dict(options or {})


def _check_run_fits(run, label_names: list[str], pairs: bool) -> None:
    if list(run.label_names) != list(label_names):
        raise InputError(run.path / "manifest.json", f"labels {run.label_names} differ from the source's {label_names}", field="label_names")
    if bool(run.manifest.get("pairs", False)) != pairs:
        raise InputError(run.path / "manifest.json", "holds text pairs and the source single texts (or the reverse)", field="pairs")


def _check_pairs(corpus, pairs: bool) -> None:
    if corpus.is_pair != pairs:
        kind = lambda p: "text pairs" if p else "single texts"  # noqa: E731
        raise InputError(corpus.path, f"holds {kind(corpus.is_pair)} but the model takes {kind(pairs)}")
