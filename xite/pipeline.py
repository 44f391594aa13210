"""``augment``: the XITE pipeline (DESIGN §1 steps 1-5), composing registered components.

encode (cached) -> retrieve top-k English neighbours -> adopt labels -> fit the language
projection -> interpolate (xite.ops.project_interpolate) -> optionally write the run directory.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

import xite
from xite import plugins
from xite.adopters.base import Adoption, AdoptionContext
from xite.data.readers import Corpus, encode_labels, label_set, read_corpus
from xite.encoders.cache import EmbeddingCache, encode_corpus
from xite.errors import ConfigError, InputError, XiteError


@dataclass
class ComponentSpec:
    """A component chosen by name, with its options (None values mean 'the default')."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class AugmentResult:
    """The synthetic set in memory (the same arrays ``synthetic.safetensors`` holds)."""

    embeddings: np.ndarray  # float32 [N, d]
    labels: np.ndarray  # int64 [N]
    lam: np.ndarray  # float32 [N]
    target_index: np.ndarray  # int64 [N], into the targets concatenated in manifest order
    source_index: np.ndarray  # int64 [N]
    similarity: np.ndarray  # float32 [N]
    languages: list[str]  # [N]
    label_names: list[str]
    manifest: dict
    pairs: list[dict]
    out_dir: Path | None = None

    def tensors(self) -> dict[str, np.ndarray]:
        return {
            "embeddings": self.embeddings,
            "labels": self.labels,
            "lam": self.lam,
            "target_index": self.target_index,
            "source_index": self.source_index,
            "similarity": self.similarity,
        }


@dataclass
class _Encoded:
    corpus: Corpus
    language: str
    x: np.ndarray


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)


@contextmanager
def _component_errors(kind: str, spec: "ComponentSpec") -> Iterator[None]:
    """A component's ValueError (a bad option for this data, e.g. an LDA rank above the number of
    languages - 1) is the user's to fix: report it as one line naming the component."""
    try:
        yield
    except ValueError as exc:
        raise ConfigError(f"{kind} '{spec.name}': {exc}") from exc


def _as_spec(value: str | ComponentSpec, options: Mapping[str, Any] | None) -> ComponentSpec:
    if isinstance(value, ComponentSpec):
        return value
    return ComponentSpec(value, dict(options or {}))


def _as_pairs(items: Mapping[str, Any] | Sequence[tuple[str, Any]] | None) -> list[tuple[str, Path]]:
    if not items:
        return []
    pairs = items.items() if isinstance(items, Mapping) else items
    return [(str(lang), Path(path)) for lang, path in pairs]


def augment(
    source: str | Path,
    targets: Mapping[str, str | Path] | Sequence[tuple[str, str | Path]],
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    encoder: str | ComponentSpec = "e5-small",
    retriever: str | ComponentSpec = "faiss",
    projector: str | ComponentSpec = "lda",
    interpolator: str | ComponentSpec = "linear",
    adopter: str | ComponentSpec = "top1",
    encoder_options: Mapping[str, Any] | None = None,
    retriever_options: Mapping[str, Any] | None = None,
    projector_options: Mapping[str, Any] | None = None,
    interpolator_options: Mapping[str, Any] | None = None,
    adopter_options: Mapping[str, Any] | None = None,
    extra_languages: Mapping[str, str | Path] | Sequence[tuple[str, str | Path]] | None = None,
    source_language: str = "en",
    per_target: int = 1,
    seed: int = 0,
    batch_size: int = 64,
    text_field: str | None = None,
    premise_field: str | None = None,
    hypothesis_field: str | None = None,
    label_field: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> AugmentResult:
    """Build synthetic labeled examples for the target languages from a labeled English corpus.

    Returns the synthetic set in memory; with ``out`` also writes ``synthetic.safetensors``,
    ``manifest.json`` and ``pairs.jsonl`` there, atomically (DESIGN §4).
    """
    say = log or (lambda _msg: None)
    timer = _Timer()
    target_list = _as_pairs(targets)
    extra_list = _as_pairs(extra_languages)
    _check_run_arguments(target_list, extra_list, source_language, per_target, out, overwrite)
    specs = {
        "encoder": _as_spec(encoder, encoder_options),
        "retriever": _as_spec(retriever, retriever_options),
        "projector": _as_spec(projector, projector_options),
        "interpolator": _as_spec(interpolator, interpolator_options),
        "adopter": _as_spec(adopter, adopter_options),
    }
    components = {kind: plugins.create(kind + "s", spec.name, spec.options) for kind, spec in specs.items()}

    fields = dict(text_field=text_field, premise_field=premise_field, hypothesis_field=hypothesis_field)
    with timer.stage("read"):
        src = read_corpus(source, labeled=True, label_field=label_field, **fields)
        tgts = [(lang, read_corpus(path, labeled=False, label_field=label_field, **fields)) for lang, path in target_list]
        extras = [(lang, read_corpus(path, labeled=None, label_field=label_field, **fields)) for lang, path in extra_list]
    label_names = _source_label_names(src, label_field)
    for _, corpus in tgts + extras:
        _check_same_shape(src, corpus)
    y_src = encode_labels(src.labels, label_names)

    enc = components["encoder"]
    cache = EmbeddingCache(enc.cache_key)
    with timer.stage("encode"):
        say(f"encoding with {enc.name} ({len(src) + sum(len(c) for _, c in tgts + extras)} rows, cached ones skipped)")
        encode = lambda corpus: encode_corpus(enc, cache, corpus, batch_size, progress)  # noqa: E731
        x_src = encode(src)
        enc_targets = [_Encoded(c, lang, encode(c)) for lang, c in tgts]
        enc_extras = [_Encoded(c, lang, encode(c)) for lang, c in extras]
    x_tgt = np.concatenate([e.x for e in enc_targets], axis=0)

    adopter_c = components["adopter"]
    with timer.stage("retrieve"), _component_errors("retriever", specs["retriever"]):
        retr = components["retriever"]
        retr.build(x_src)
        k = min(adopter_c.k, len(src))
        scores, ids = retr.search(x_tgt, k)
    with timer.stage("adopt"), _component_errors("adopter", specs["adopter"]):
        adoption = adopter_c.adopt(scores, ids, y_src, AdoptionContext(n_classes=len(label_names)))

    with timer.stage("project"), _component_errors("projector", specs["projector"]):
        x_fit, langs = _language_labeled(source_language, x_src, enc_targets + enc_extras)
        projection = components["projector"].fit(x_fit, langs, source_language=source_language)
    for warning in [projection.info.get("warning")] if projection.info.get("warning") else []:
        say(f"note: {warning}")

    with timer.stage("interpolate"), _component_errors("interpolator", specs["interpolator"]):
        rng = np.random.default_rng(seed)
        t_idx, s_idx, lam, sim, y = expand_kept(adoption, per_target, components["interpolator"], rng)
        z = interpolate(x_tgt, x_src, t_idx, s_idx, lam, projection, components["interpolator"].mode)

    languages = _row_languages(enc_targets, t_idx)
    pairs = _pair_rows(src, enc_targets, t_idx, s_idx, y, sim, lam, label_names, languages)
    manifest = _manifest(
        src, source_language, enc_targets, enc_extras, label_names, specs, components, projection,
        adoption, t_idx, y, sim, languages, per_target, seed, cache, timer,
    )
    result = AugmentResult(z, y, lam, t_idx, s_idx, sim, languages, label_names, manifest, pairs)
    if out is not None:
        with timer.stage("write"):
            from xite.run_io import write_run

            result.out_dir = write_run(result, Path(out), overwrite=overwrite)
        manifest["timings_s"] = dict(timer.seconds)
    return result


def _check_run_arguments(targets, extras, source_language, per_target, out, overwrite) -> None:
    if not targets:
        raise XiteError("give at least one target corpus (LANG=PATH)")
    seen = [source_language]
    for lang, _ in targets + extras:
        if lang in seen:
            raise XiteError(f"language '{lang}' is given twice (the source language is '{source_language}')")
        seen.append(lang)
    if per_target < 1:
        raise XiteError(f"--per-target must be >= 1, got {per_target}")
    if out is not None and Path(out).exists() and not overwrite:
        raise XiteError(f"output directory {out} exists; pass --overwrite to replace it")


def _source_label_names(src: Corpus, label_field: str | None) -> list[str]:
    names = label_set(src.labels)
    if len(names) < 2:
        field_name = label_field or src.fields.get("label", "label")
        raise InputError(src.path, f"the source needs at least two labels, found {names}", field=field_name)
    return names


def _check_same_shape(src: Corpus, other: Corpus) -> None:
    if src.is_pair != other.is_pair:
        kind = lambda c: "text pairs" if c.is_pair else "single texts"  # noqa: E731
        raise InputError(other.path, f"holds {kind(other)} but the source {src.path} holds {kind(src)}")


def _language_labeled(source_language: str, x_src: np.ndarray, others: list[_Encoded]) -> tuple[np.ndarray, list[str]]:
    x = np.concatenate([x_src] + [e.x for e in others], axis=0)
    langs = [source_language] * len(x_src)
    for e in others:
        langs += [e.language] * len(e.x)
    return x, langs


def expand_kept(adoption: Adoption, per_target: int, interpolator, rng: np.random.Generator):
    """Kept target rows, each repeated ``per_target`` times with its own λ."""
    kept = np.flatnonzero(adoption.keep)
    t_idx = np.repeat(kept, per_target).astype(np.int64)
    lam = np.asarray(interpolator.coefficients(len(t_idx), rng), dtype=np.float32)
    return (
        t_idx,
        adoption.source_index[t_idx].astype(np.int64),
        lam,
        adoption.similarity[t_idx].astype(np.float32),
        adoption.labels[t_idx].astype(np.int64),
    )


def interpolate(x_tgt, x_src, t_idx, s_idx, lam, projection, mode: str) -> np.ndarray:
    import torch

    from xite.ops import project_interpolate

    basis = None if projection.basis is None else torch.from_numpy(np.ascontiguousarray(projection.basis, dtype=np.float32))
    mean = None if projection.mean is None else torch.from_numpy(np.ascontiguousarray(projection.mean, dtype=np.float32))
    z = project_interpolate(
        torch.from_numpy(np.ascontiguousarray(x_tgt[t_idx])),
        torch.from_numpy(x_src),
        torch.from_numpy(s_idx),
        torch.from_numpy(lam),
        basis=basis,
        mean=mean,
        mode=projection.mode,
        interp=mode,
    )
    return z.numpy().astype(np.float32, copy=False)


def _row_languages(enc_targets: list[_Encoded], t_idx: np.ndarray) -> list[str]:
    per_row = [e.language for e in enc_targets for _ in range(len(e.x))]
    return [per_row[i] for i in t_idx]


def _pair_rows(src, enc_targets, t_idx, s_idx, y, sim, lam, label_names, languages) -> list[dict]:
    offsets = np.cumsum([0] + [len(e.x) for e in enc_targets])
    rows = []
    for n, (ti, si) in enumerate(zip(t_idx.tolist(), s_idx.tolist())):
        block = int(np.searchsorted(offsets, ti, side="right") - 1)
        corpus = enc_targets[block].corpus
        rows.append(
            {
                "language": languages[n],
                "target_index": ti,
                "target": corpus.texts_for_display(ti - int(offsets[block])),
                "source_index": si,
                "source": src.texts_for_display(si),
                "label": label_names[int(y[n])],
                "similarity": round(float(sim[n]), 6),
                "lam": round(float(lam[n]), 6),
            }
        )
    return rows


def _component_entry(kind: str, spec: ComponentSpec, component) -> dict:
    reg, _ = plugins.lookup(kind + "s", spec.name)
    return {"name": spec.name, "package": reg.package, "options": component.config()}


def _manifest(src, source_language, enc_targets, enc_extras, label_names, specs, components, projection,
              adoption, t_idx, y, sim, languages, per_target, seed, cache, timer) -> dict:
    from xite.ops import backend

    enc = components["encoder"]
    offsets = np.cumsum([0] + [len(e.x) for e in enc_targets])
    kept_rows = adoption.keep
    targets = []
    for i, e in enumerate(enc_targets):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        mine = np.array([lang == e.language for lang in languages], dtype=bool)
        targets.append(
            {
                "language": e.language,
                "path": str(e.corpus.path),
                "digest": e.corpus.digest,
                "rows": hi - lo,
                "offset": lo,
                "kept": int(kept_rows[lo:hi].sum()),
                "synthetic": int(mine.sum()),
                "label_distribution": _distribution(y[mine], label_names),
                "mean_similarity": round(float(sim[mine].mean()), 6) if mine.any() else None,
            }
        )
    return {
        "xite_version": xite.__version__,
        "format": "xite-run/1",
        "label_names": label_names,
        "pairs": src.is_pair,
        "source": {"language": source_language, "path": str(src.path), "digest": src.digest, "rows": len(src), "fields": src.fields},
        "targets": targets,
        "extra_languages": [
            {"language": e.language, "path": str(e.corpus.path), "digest": e.corpus.digest, "rows": len(e.x)} for e in enc_extras
        ],
        "encoder": {**enc.config(), "package": plugins.lookup("encoders", specs["encoder"].name)[0].package,
                    "spec": specs["encoder"].name},
        "components": {kind: _component_entry(kind, specs[kind], components[kind]) for kind in ("retriever", "projector", "interpolator", "adopter")},
        "projection": {"mode": projection.mode, "rank": projection.rank, "centred": projection.mean is not None,
                       "info": _jsonable(projection.info)},
        "seed": seed,
        "per_target": per_target,
        "counts": {
            "target_rows": int(len(adoption.keep)),
            "kept": int(adoption.keep.sum()),
            "filtered": int((~adoption.keep).sum()),
            "synthetic": int(len(t_idx)),
            "label_distribution": _distribution(y, label_names),
        },
        "mean_similarity": round(float(sim.mean()), 6) if len(sim) else None,
        "ops_backend": backend(),
        "cache": {"hits": cache.stats.hits, "encoded": cache.stats.encoded},
        "timings_s": dict(timer.seconds),
    }


def _distribution(y: np.ndarray, label_names: list[str]) -> dict[str, int]:
    counts = np.bincount(y, minlength=len(label_names)) if len(y) else np.zeros(len(label_names), dtype=int)
    return {name: int(c) for name, c in zip(label_names, counts)}


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
