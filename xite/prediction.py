"""``predict``: labels and class probabilities from a model directory, for new rows.

Both kinds of model directory work: a head on frozen embeddings (``xite train``: the rows are
encoded with the model's encoder, through the embedding cache) and a fine-tuned encoder + head
(``xite.finetuning``: the rows go through the fine-tuned encoder itself).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from xite.errors import InputError, XiteError

CONFIG = "config.json"


def _kind(pairs: bool) -> str:
    return "text pairs" if pairs else "single texts"


def load_classifier(path: str | Path, device: str = "cpu"):
    """A :class:`~xite.training.HeadModel` or a :class:`~xite.finetuning.FinetunedModel`, whichever
    ``path`` holds; anything else is a one-line InputError."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(path, "no such model directory" if not path.exists() else "not a model directory (a file)")
    if not (path / CONFIG).is_file():
        raise InputError(path / CONFIG, "missing: not an xite model directory (made by xite train or fine-tuning)")
    try:
        fmt = json.loads((path / CONFIG).read_text(encoding="utf-8")).get("format")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise InputError(path / CONFIG, f"unreadable {CONFIG}: {exc}") from None
    from xite.finetuning.modeldir import FORMAT

    if fmt == FORMAT:
        from xite.finetuning.modeldir import load_finetuned

        return load_finetuned(path, device=device)
    from xite.training import load_model

    return load_model(path)


def check_rows_fit(model, corpus) -> None:
    if corpus.is_pair != bool(model.pairs):
        raise InputError(corpus.path, f"holds {_kind(corpus.is_pair)} but the model takes {_kind(bool(model.pairs))}")


def scorer(model, *, batch_size: int = 64, progress: bool = True) -> Callable[[Any], np.ndarray]:
    """``score(corpus) -> probabilities [n, classes]`` for a loaded model of either kind.
    For a head model the encoder is built (and checked against the model) once, here."""
    from xite.finetuning.modeldir import FinetunedModel

    if isinstance(model, FinetunedModel):
        def score_finetuned(corpus) -> np.ndarray:
            check_rows_fit(model, corpus)
            rows = corpus.texts if corpus.texts is not None else corpus.pairs
            return model.predict_proba(rows, batch_size=batch_size, progress=progress)

        return score_finetuned

    from xite import plugins
    from xite.encoders.cache import EmbeddingCache, encode_corpus
    from xite.training import check_same_encoder, encoder_identity

    spec = model.encoder.get("spec") or model.encoder.get("name")
    if not spec:
        raise XiteError("the model's config names no encoder")
    enc = plugins.create("encoders", spec, dict(model.encoder.get("options") or {}))
    check_same_encoder(encoder_identity(enc, spec), model.encoder, "the model")
    cache = EmbeddingCache(enc.cache_key)

    def score_head(corpus) -> np.ndarray:
        check_rows_fit(model, corpus)
        return model.predict_proba(encode_corpus(enc, cache, corpus, batch_size, progress))

    return score_head


def model_encoder_spec(model) -> str | None:
    return model.encoder.get("spec") or model.encoder.get("name")


def predict(
    model_dir: str | Path,
    rows_or_path: str | os.PathLike | Sequence[str] | tuple[Sequence[str], Sequence[str]],
    *,
    out: str | Path | None = None,
    batch_size: int = 64,
    text_field: str | None = None,
    premise_field: str | None = None,
    hypothesis_field: str | None = None,
    label_field: str | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> list[dict]:
    """One dict per row: the row's input fields, ``label`` (predicted) and ``probabilities``
    ``{label name: p}``. A gold label in the input (``label_field``, default ``label``) is kept
    as ``gold_label``. ``rows_or_path``: a JSONL/CSV/TSV/Parquet file, a list of texts, or a
    ``(first texts, second texts)`` pair of lists. With ``out`` the rows are also written there
    as JSON Lines, atomically."""
    from xite.data.readers import read_corpus
    from xite.data.schema import Corpus

    model = load_classifier(model_dir, device=device)
    if isinstance(rows_or_path, (str, os.PathLike)):
        corpus = read_corpus(rows_or_path, text_field=text_field, premise_field=premise_field,
                             hypothesis_field=hypothesis_field, label_field=label_field, labeled=None)
        inputs = _input_fields(corpus)
    else:
        corpus = _in_memory(rows_or_path)
        inputs = [dict(zip(("premise", "hypothesis"), p)) for p in zip(*corpus.pairs)] if corpus.is_pair \
            else [{"text": t} for t in corpus.texts]
    if len(corpus) == 0:
        raise XiteError("no rows to predict")
    probs = scorer(model, batch_size=batch_size, progress=progress)(corpus)
    names = list(model.label_names)
    rows = []
    for fields, p in zip(inputs, probs):
        row = dict(fields)
        if "label" in row:
            row["gold_label"] = row.pop("label")
        row["label"] = names[int(np.argmax(p))]
        row["probabilities"] = {name: float(v) for name, v in zip(names, p)}
        rows.append(row)
    if out is not None:
        from xite.data.writers import write_jsonl

        write_jsonl(out, rows)
    return rows


def _in_memory(rows) -> "Corpus":  # noqa: F821
    from xite.data.schema import Corpus
    from xite.finetuning.model import is_pair_rows

    if isinstance(rows, str):
        raise TypeError("predict() takes a file path, a list of texts or a (first, second) pair of lists; got a str that is not a path")
    if is_pair_rows(rows):
        return Corpus(path="<rows>", pairs=(list(rows[0]), list(rows[1])))
    return Corpus(path="<rows>", texts=list(rows))


def _input_fields(corpus) -> list[dict]:
    """Every field of each row as the file has it (ids and other columns included), matched to
    the corpus rows by source line."""
    from xite.data import readers
    from xite.data.writers import _json_default

    data = readers._read_bytes(corpus.path)
    records = dict(readers._RECORD_READERS[readers._format_of(corpus.path)](corpus.path, data).records)
    # Parquet values may be numpy scalars; make every row plain JSON now.
    return [json.loads(json.dumps(records[line], default=_json_default)) for line in corpus.line_numbers]
