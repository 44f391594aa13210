"""The XITE steps as stage functions over small typed values.

    read_inputs -> encode -> build_index / retrieve -> adopt -> fit_projection -> expand -> interpolate

Each stage takes what the one before it returned and the component that does the work; none of
them reads files the others read or keeps state between calls. ``augment`` (xite.pipeline),
``experiment`` (xite.experiments) and ``finetune`` (xite.finetuning) compose them; no step exists
anywhere else.

A component is called inside :func:`xite.plugins.blame`, the same rule as its construction: a
ConfigError it raises stays the one-line error it is, anything else keeps its traceback and
gains a note naming the component and the package to report the bug to.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from xite.adopters.base import Adoption, AdoptionContext
from xite.data.readers import Corpus, encode_labels, label_set, read_corpus
from xite.errors import InputError, XiteError
from xite.plugins import blame
from xite.projectors.base import Projection

__all__ = [
    "Fields", "Inputs", "Encoded", "Neighbours", "Expansion", "Synthetic",
    "read_inputs", "encode", "build_index", "retrieve", "adopt", "fit_projection",
    "expand", "interpolate", "synthesize", "row_languages",
]


# ---------------------------------------------------------------------------------------------
# Values passed between stages


@dataclass(frozen=True)
class Fields:
    """Which columns hold the text(s) and the label, when they are not the usual names."""

    text_field: str | None = None
    premise_field: str | None = None
    hypothesis_field: str | None = None
    label_field: str | None = None

    def reader_kwargs(self) -> dict:
        return dict(text_field=self.text_field, premise_field=self.premise_field,
                    hypothesis_field=self.hypothesis_field, label_field=self.label_field)


@dataclass
class Inputs:
    """The read corpora: labeled source, unlabeled targets, extra (projection-only) languages."""

    source: Corpus
    source_language: str
    targets: list[tuple[str, Corpus]]
    extras: list[tuple[str, Corpus]]
    label_names: list[str]
    source_labels: np.ndarray  # int64 [n_source], indices into label_names


@dataclass
class Encoded:
    """One corpus, its language and its embeddings (float32 [rows, dim], unit rows)."""

    language: str
    corpus: Corpus
    x: np.ndarray


@dataclass
class Neighbours:
    """Top-k source rows of each query: cosine scores and ids, best first, [queries, k]."""

    scores: np.ndarray
    ids: np.ndarray

    def top(self, k: int) -> "Neighbours":
        return Neighbours(self.scores[:, :k], self.ids[:, :k])


@dataclass
class Expansion:
    """The kept target rows, each repeated ``per_target`` times with its own λ: one entry per
    synthetic row."""

    target_index: np.ndarray  # int64, into the targets concatenated in order
    source_index: np.ndarray  # int64, into the source rows
    lam: np.ndarray  # float32, weight of the target row
    similarity: np.ndarray  # float32
    labels: np.ndarray  # int64, adopted labels

    def __len__(self) -> int:
        return int(len(self.target_index))


@dataclass
class Synthetic:
    """Synthetic labeled rows: the embeddings and where each came from."""

    embeddings: np.ndarray  # float32 [N, d]
    expansion: Expansion
    languages: list[str]  # [N]


# ---------------------------------------------------------------------------------------------
# Stages


def read_inputs(source: str | Path, targets: Sequence[tuple[str, Path]], extras: Sequence[tuple[str, Path]] = (),
                *, fields: Fields = Fields(), source_language: str = "en") -> Inputs:
    """Read the labeled source and the unlabeled corpora; they must all be single texts or all
    pairs, and the source needs two labels or more."""
    check_languages(source_language, targets, extras)
    kw = fields.reader_kwargs()
    src = read_corpus(source, labeled=True, **kw)
    tgts = [(lang, read_corpus(path, labeled=False, **kw)) for lang, path in targets]
    more = [(lang, read_corpus(path, labeled=None, **kw)) for lang, path in extras]
    names = label_set(src.labels)
    if len(names) < 2:
        field_name = fields.label_field or src.fields.get("label", "label")
        raise InputError(src.path, f"the source needs at least two labels, found {names}", field=field_name)
    for _, corpus in tgts + more:
        _check_same_shape(src, corpus)
    return Inputs(src, source_language, tgts, more, names, encode_labels(src.labels, names))


def check_languages(source_language: str, targets: Sequence[tuple[str, Any]], extras: Sequence[tuple[str, Any]] = ()) -> None:
    if not targets:
        raise XiteError("give at least one target corpus (LANG=PATH)")
    seen = [source_language]
    for lang, _ in list(targets) + list(extras):
        if lang in seen:
            raise XiteError(f"language '{lang}' is given twice (the source language is '{source_language}')")
        seen.append(lang)


def _check_same_shape(src: Corpus, other: Corpus) -> None:
    if src.is_pair != other.is_pair:
        kind = lambda c: "text pairs" if c.is_pair else "single texts"  # noqa: E731
        raise InputError(other.path, f"holds {kind(other)} but the source {src.path} holds {kind(src)}")


def encode(encoder, cache, corpus: Corpus, language: str, *, batch_size: int = 64, progress: bool = True) -> Encoded:
    """Embeddings of a corpus through the embedding cache (single texts or pairs)."""
    from xite.encoders.cache import encode_corpus

    with blame("encoder", encoder.name):
        x = encode_corpus(encoder, cache, corpus, batch_size, progress)
    return Encoded(language, corpus, x)


def build_index(retriever, spec_name: str, x_source: np.ndarray):
    """Index the source rows once; :func:`retrieve` then searches any number of query sets."""
    with blame("retriever", spec_name):
        retriever.build(x_source)
    return retriever


def retrieve(index, spec_name: str, queries: np.ndarray, k: int, n_source: int) -> Neighbours:
    """Top-``k`` source rows of each query (``k`` capped at the number of source rows)."""
    with blame("retriever", spec_name):
        scores, ids = index.search(queries, min(int(k), int(n_source)))
    return Neighbours(np.asarray(scores), np.asarray(ids))


def adopt(adopter, spec_name: str, neighbours: Neighbours, source_labels: np.ndarray, n_classes: int,
          predictions: np.ndarray | None = None) -> Adoption:
    """Each query's pseudo-label, the source row to interpolate with, and whether it is kept.
    Uses the adopter's own ``k`` of the neighbours (the index may have been searched deeper)."""
    ctx = AdoptionContext(n_classes=n_classes, predictions=predictions)
    top = neighbours.top(adopter.k)
    with blame("adopter", spec_name):
        return adopter.adopt(top.scores, top.ids, source_labels, ctx)


def fit_projection(projector, spec_name: str, source: Encoded, others: Sequence[Encoded]) -> Projection:
    """Fit the language subspace on the source rows and every other language's rows."""
    x = np.concatenate([source.x] + [e.x for e in others], axis=0)
    langs = [source.language] * len(source.x)
    for e in others:
        langs += [e.language] * len(e.x)
    with blame("projector", spec_name):
        return projector.fit(x, langs, source_language=source.language)


def expand(adoption: Adoption, per_target: int, interpolator, spec_name: str, rng: np.random.Generator) -> Expansion:
    """Kept target rows, each repeated ``per_target`` times with its own λ."""
    kept = np.flatnonzero(adoption.keep)
    t_idx = np.repeat(kept, per_target).astype(np.int64)
    with blame("interpolator", spec_name):
        lam = np.asarray(interpolator.coefficients(len(t_idx), rng), dtype=np.float32)
    return Expansion(
        t_idx,
        adoption.source_index[t_idx].astype(np.int64),
        lam,
        adoption.similarity[t_idx].astype(np.float32),
        adoption.labels[t_idx].astype(np.int64),
    )


def interpolate(x_target: np.ndarray, x_source: np.ndarray, expansion: Expansion, projection: Projection, interp: str,
                *, device: str = "cpu") -> np.ndarray:
    """z = λ P(x_t) + (1 − λ) x_s for every synthetic row, through ``xite.ops.project_interpolate``
    (the compiled kernel; CUDA when ``device`` is a GPU)."""
    import torch

    from xite.ops import project_interpolate

    if len(expansion) == 0:
        return np.zeros((0, x_source.shape[1]), dtype=np.float32)
    dev = torch.device(device)
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(dev)  # noqa: E731
    z = project_interpolate(
        as_tensor(x_target[expansion.target_index]),
        as_tensor(x_source),
        torch.from_numpy(expansion.source_index).to(dev),
        torch.from_numpy(expansion.lam).to(dev),
        basis=None if projection.basis is None else as_tensor(projection.basis),
        mean=None if projection.mean is None else as_tensor(projection.mean),
        mode=projection.mode,
        interp=interp,
    )
    return z.cpu().numpy().astype(np.float32, copy=False)


def row_languages(targets: Sequence[Encoded], target_index: np.ndarray) -> list[str]:
    """The language of each synthetic row (targets concatenated in order)."""
    per_row = np.concatenate([np.full(len(e.x), i, dtype=np.int64) for i, e in enumerate(targets)]) if targets else np.zeros(0, np.int64)
    names = [e.language for e in targets]
    return [names[i] for i in per_row[target_index].tolist()]


def synthesize(targets: Sequence[Encoded], x_target: np.ndarray, x_source: np.ndarray, adoption: Adoption,
               projection: Projection, interpolator, spec_name: str, *, per_target: int, seed: int,
               device: str = "cpu") -> Synthetic:
    """expand + interpolate, seeded: the same seed gives the same rows."""
    rng = np.random.default_rng(seed)
    expansion = expand(adoption, per_target, interpolator, spec_name, rng)
    with blame("interpolator", spec_name):
        z = interpolate(x_target, x_source, expansion, projection, interpolator.interp, device=device)
    return Synthetic(z, expansion, row_languages(targets, expansion.target_index))


@dataclass
class Timer:
    """Wall seconds per stage, for the manifest."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        import time

        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)
