"""The fine-tuned model directory: write it atomically, read it back, predict with it.

Layout::

    encoder/           save_pretrained of the fine-tuned encoder and its tokenizer
                       (plain ``transformers.AutoModel.from_pretrained`` loads it)
    head.safetensors   the linear head: ``weight`` [classes, d], ``bias`` [classes]
    config.json        format, encoder spec, pooling, prefix, max_length, labels, pairs flag,
                       every training option, input digests, history
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xite.errors import InputError, XiteError
from xite.finetuning.model import EncoderClassifier, Rows, is_pair_rows, parse_mix_at, row_count, run_batched

FORMAT = "xite-finetuned/1"
ENCODER_DIR = "encoder"
HEAD = "head.safetensors"
CONFIG = "config.json"


def is_finetuned_dir(path: str | Path) -> bool:
    """True when ``path`` is a directory whose config.json says it is a fine-tuned model."""
    cfg = Path(path) / CONFIG
    if not cfg.is_file():
        return False
    try:
        return json.loads(cfg.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return False


def _kind(pairs: bool) -> str:
    return "text pairs" if pairs else "single texts"


@dataclass
class FinetunedModel:
    """A fine-tuned encoder + head and what is needed to use it on new text."""

    module: EncoderClassifier
    label_names: list[str]
    pairs: bool
    encoder: dict = field(default_factory=dict)  # spec and name of the base encoder
    options: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)  # history, selection, input digests

    def _tokens(self, rows: Rows):
        if is_pair_rows(rows) != self.pairs:
            raise XiteError(f"the model takes {_kind(self.pairs)}; got {_kind(is_pair_rows(rows))}")
        return self.module.tokenize(rows)

    def logits(self, rows: Rows, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if row_count(rows) == 0:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        return run_batched(self.module, self._tokens(rows), self.module.logits, batch_size, progress)

    def predict_proba(self, rows: Rows, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        z = self.logits(rows, batch_size, progress)
        z = z - z.max(axis=1, keepdims=True) if len(z) else z
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True) if len(p) else p

    def predict(self, rows: Rows, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        return self.logits(rows, batch_size, progress).argmax(axis=1).astype(np.int64)

    def embed(self, rows: Rows, batch_size: int = 64, mix_at: str = "pooled", progress: bool = False) -> np.ndarray:
        """Pooled normalised embeddings (or the embeddings at ``mix_at``), float32 [n, d]."""
        parse_mix_at(mix_at, self.module.num_layers)
        if row_count(rows) == 0:
            return np.zeros((0, self.module.dim), dtype=np.float32)
        return run_batched(self.module, self._tokens(rows), lambda b: self.module.embed_at(b, mix_at), batch_size, progress,
                           label="embedding")

    def config(self) -> dict:
        m = self.module
        return {
            "format": FORMAT,
            "encoder": dict(self.encoder),
            "pooling": m.pooling,
            "prefix": m.prefix,
            "max_length": m.max_length,
            "dim": m.dim,
            "label_names": list(self.label_names),
            "pairs": self.pairs,
            "options": dict(self.options),
            "training": self.training,
        }

    def save(self, out: str | Path, overwrite: bool = False) -> Path:
        """Write the model directory atomically (temp dir, renamed into place)."""
        from xite.data.writers import atomic_output_dir

        out = Path(out)
        with atomic_output_dir(out, overwrite=overwrite) as tmp:
            write_model_files(self, Path(tmp))
        return out


def write_model_files(model: FinetunedModel, directory: Path) -> None:
    """The three entries of a model directory, into an existing (temporary) directory."""
    from safetensors.torch import save_file

    from xite.encoders._transformers import _quiet_transformers

    with _quiet_transformers():
        model.module.encoder.save_pretrained(str(directory / ENCODER_DIR))
        model.module.tokenizer.save_pretrained(str(directory / ENCODER_DIR))
    head = {k: v.detach().float().cpu().contiguous() for k, v in model.module.head.state_dict().items()}
    save_file(head, str(directory / HEAD))
    (directory / CONFIG).write_text(json.dumps(model.config(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def load_finetuned(path: str | Path, device: str = "cpu") -> FinetunedModel:
    """Read a fine-tuned model directory; anything missing or inconsistent is a one-line error."""
    from safetensors.torch import load_file

    from xite.encoders._transformers import load_model
    from xite.finetuning.model import resolve_device
    from xite.run_io import read_json_dir

    path = Path(path)
    cfg = read_json_dir(path, (CONFIG, HEAD, f"{ENCODER_DIR}/config.json"), CONFIG,
                        "an xite fine-tuned model directory (made by xite finetune)")
    if cfg.get("format") != FORMAT:
        raise InputError(path / CONFIG, f"format {cfg.get('format')!r} is not {FORMAT!r}", field="format")
    for key in ("label_names", "pooling", "max_length"):
        if key not in cfg:
            raise InputError(path / CONFIG, "missing key", field=key)
    dev = resolve_device(device)
    encoder, tokenizer = load_model(path / ENCODER_DIR, device=str(dev), spec=str(path / ENCODER_DIR))
    module = EncoderClassifier(encoder, tokenizer, len(cfg["label_names"]), pooling=cfg["pooling"],
                               prefix=cfg.get("prefix", ""), max_length=int(cfg["max_length"]))
    try:
        module.head.load_state_dict(load_file(str(path / HEAD)))
    except Exception as exc:  # safetensors / torch raise their own types
        raise InputError(path / HEAD, f"weights do not fit the config: {str(exc).splitlines()[0]}") from None
    module.to(dev)
    module.eval()
    return FinetunedModel(module, list(cfg["label_names"]), bool(cfg.get("pairs", False)), cfg.get("encoder", {}),
                          cfg.get("options", {}), cfg.get("training", {}))
