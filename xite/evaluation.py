"""``evaluate``: accuracy, macro-F1 and a confusion matrix per language."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from xite.errors import InputError, XiteError


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows: gold label; columns: predicted label."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def macro_f1_from_confusion(cm: np.ndarray) -> float:
    """Mean F1 over the classes that occur in gold or predictions (as sklearn's with labels seen);
    a class that is neither gold nor predicted says nothing about the classifier."""
    tp = np.diag(cm).astype(np.float64)
    gold = cm.sum(axis=1).astype(np.float64)
    pred = cm.sum(axis=0).astype(np.float64)
    present = (gold + pred) > 0
    denom = gold + pred
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1e-12), 0.0)
    return float(f1[present].mean()) if present.any() else 0.0


def metrics(y_true: np.ndarray, y_pred: np.ndarray, label_names: Sequence[str]) -> dict:
    """accuracy, macro_f1, per-class F1 and the confusion matrix, as plain JSON-able values."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} gold labels but {len(y_pred)} predictions")
    n = len(label_names)
    cm = confusion_matrix(y_true, y_pred, n)
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(axis=1) + cm.sum(axis=0)
    per_class = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_f1": macro_f1_from_confusion(cm),
        "f1": {name: float(v) for name, v in zip(label_names, per_class)},
        "confusion": cm.tolist(),
        "label_names": list(label_names),
    }


def evaluate(
    model: Any,
    tests: Mapping[str, str | Path] | Sequence[tuple[str, str | Path]],
    *,
    encoder: str | None = None,
    batch_size: int = 64,
    text_field: str | None = None,
    premise_field: str | None = None,
    hypothesis_field: str | None = None,
    label_field: str | None = None,
    progress: bool = True,
) -> dict[str, dict]:
    """Score a model directory (a head on frozen embeddings, or a fine-tuned encoder + head) or
    a loaded model (:class:`~xite.training.HeadModel`, :class:`~xite.finetuning.FinetunedModel`) on
    labeled test files.

    Returns ``{language: metrics}``. A head model's test files are encoded with the model's own
    encoder, a fine-tuned model's go through its encoder; naming another ``encoder`` is an error,
    as is a label the model never saw.
    """
    from xite.checks import check_batch_size, check_language
    from xite.data.readers import read_corpus
    from xite.prediction import load_classifier, model_encoder_spec, scorer

    batch_size = check_batch_size(batch_size)
    pairs = list(tests.items()) if isinstance(tests, Mapping) else list(tests)
    if not pairs:
        raise XiteError("give at least one test file (LANG=PATH)")
    langs = [check_language(str(lang), "test language") for lang, _ in pairs]
    twice = sorted({lang for lang in langs if langs.count(lang) > 1})
    if twice:
        # Results are keyed by language: a second file would silently replace the first.
        raise XiteError(f"test language {twice[0]!r} is given twice; give each language once")
    model = load_classifier(model) if isinstance(model, (str, Path)) else model
    spec = model_encoder_spec(model)
    if encoder is not None and encoder != spec:
        raise XiteError(f"the model was trained on {spec} embeddings; it cannot score {encoder} embeddings")
    score = scorer(model, batch_size=batch_size, progress=progress)
    fields = dict(text_field=text_field, premise_field=premise_field, hypothesis_field=hypothesis_field, label_field=label_field)
    results = {}
    for lang, path in pairs:
        corpus = read_corpus(path, labeled=True, **fields)
        if corpus.is_pair != model.pairs:
            kind = lambda p: "text pairs" if p else "single texts"  # noqa: E731
            raise InputError(corpus.path, f"holds {kind(corpus.is_pair)} but the model takes {kind(model.pairs)}")
        unknown = sorted(set(corpus.labels) - set(model.label_names))
        if unknown:
            line = corpus.line_numbers[corpus.labels.index(unknown[0])]
            raise InputError(corpus.path, f"label {unknown[0]!r} is not one the model knows ({', '.join(model.label_names)})",
                             line=line, field=corpus.label_field)
        y = corpus.encode_labels(model.label_names)
        predicted = score(corpus).argmax(axis=1).astype(np.int64)
        results[str(lang)] = {"path": str(path), **metrics(y, predicted, model.label_names)}
    return results
