"""``augment``: the XITE augmentation, composed from the stages in :mod:`xite.stages`.

read -> encode (cached) -> retrieve -> adopt -> fit the projection -> expand + interpolate
-> optionally write the run directory (synthetic.safetensors, manifest.json, pairs.jsonl).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from xite import plugins, stages
from xite.checks import check_batch_size, check_language, check_output_not_input
from xite.recipe import KINDS, ComponentSpec, Recipe
from xite.run_io import RunManifest, build_manifest
from xite.stages import Fields
from xite.errors import XiteError


@dataclass
class AugmentResult:
    """The synthetic set in memory (the same arrays ``synthetic.safetensors`` holds)."""

    embeddings: np.ndarray | None  # float32 [N, d]; None under the ray executor (the rows are in the shards)
    labels: np.ndarray  # int64 [N]
    lam: np.ndarray  # float32 [N]
    target_index: np.ndarray  # int64 [N], into the targets concatenated in manifest order
    source_index: np.ndarray  # int64 [N]
    similarity: np.ndarray  # float32 [N]
    languages: list[str]  # [N]
    label_names: list[str]
    run_manifest: RunManifest
    pairs: list[dict]
    out_dir: Path | None = None

    @property
    def manifest(self) -> dict:
        return self.run_manifest.to_dict()

    def tensors(self) -> dict[str, np.ndarray]:
        return {
            "embeddings": self.embeddings,
            "labels": self.labels,
            "lam": self.lam,
            "target_index": self.target_index,
            "source_index": self.source_index,
            "similarity": self.similarity,
        }


def make_recipe(recipe: Recipe | str | Path | Mapping | None = None, **choices: Any) -> Recipe:
    """A recipe from a Recipe, a file (TOML or a run's manifest.json), a dict, or nothing
    (the defaults), with keyword choices laid over it: ``projector="pca"``,
    ``projector_options={"rank": 2}``, ``seed=1``, ``per_target=2``, ``source_language="en"``."""
    if recipe is None:
        base = Recipe()
    elif isinstance(recipe, Recipe):
        base = recipe
    elif isinstance(recipe, Mapping):
        base = Recipe.from_dict(recipe)
    else:
        base = Recipe.from_file(recipe)
    names: dict[str, str | None] = {}
    options: dict[str, dict] = {}
    for kind in KINDS:
        value = choices.pop(kind, None)
        if isinstance(value, ComponentSpec):
            names[kind], options[kind] = value.name, dict(value.options)
        else:
            names[kind] = value
        extra = choices.pop(f"{kind}_options", None)
        if extra:
            options.setdefault(kind, {}).update(extra)
    scalars = {k: choices.pop(k) for k in ("seed", "per_target", "source_language") if k in choices}
    if choices:
        raise TypeError(f"unknown augment argument(s): {', '.join(sorted(choices))}")
    return base.override(components=names, options=options, **scalars)


def as_lang_paths(items: Mapping[str, Any] | Sequence[tuple[str, Any]] | None) -> list[tuple[str, Path]]:
    """LANG=PATH choices as a list of (language, Path), from a mapping or a sequence of pairs."""
    if not items:
        return []
    pairs = items.items() if isinstance(items, Mapping) else items
    return [(check_language(str(lang), "language"), Path(path)) for lang, path in pairs]


def create_components(recipe: Recipe) -> dict[str, Any]:
    """Every component of the recipe, built with its options (bad options: one-line errors)."""
    return {kind: plugins.create(kind + "s", recipe.spec(kind).name, recipe.spec(kind).options) for kind in KINDS}


def augment(
    source: str | Path,
    targets: Mapping[str, str | Path] | Sequence[tuple[str, str | Path]],
    recipe: Recipe | str | Path | Mapping | None = None,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    extra_languages: Mapping[str, str | Path] | Sequence[tuple[str, str | Path]] | None = None,
    fields: Fields = Fields(),
    batch_size: int = 64,
    device: str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    ray_options: Mapping[str, Any] | None = None,
    **choices: Any,
) -> AugmentResult:
    """Build synthetic labeled examples for the target languages from a labeled English corpus.

    ``recipe`` (a :class:`~xite.recipe.Recipe`, a recipe file, a run's manifest.json, or a dict)
    chooses the components; keyword ``choices`` override it (``encoder="hashing"``,
    ``adopter_options={"k": 5}``, ``seed=1``; see :func:`make_recipe`). Returns the synthetic set
    in memory; with ``out`` also writes the run directory atomically.

    ``executor="ray"`` runs the same stages as a Ray Data stream over blocks of target rows
    (:mod:`xite.ray_executor`; ``ray_address`` joins a cluster, ``ray_options`` sizes the blocks and
    actor pools). It needs ``out`` and writes the rows as shards; the result then holds every
    per-row array except ``embeddings`` (None) and ``pairs`` (empty).
    """
    say = log or (lambda _msg: None)
    if executor not in EXECUTORS:
        raise XiteError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    rec = make_recipe(recipe, **choices)
    target_list, extra_list = as_lang_paths(targets), as_lang_paths(extra_languages)
    stages.check_languages(rec.source_language, target_list, extra_list)
    batch_size = check_batch_size(batch_size)
    check_output_not_input(out, [source, *(p for _, p in target_list + extra_list),
                                 recipe if isinstance(recipe, (str, Path)) and Path(recipe).exists() else None])
    if out is not None and Path(out).exists() and not overwrite:
        raise XiteError(f"output directory {out} exists; pass --overwrite to replace it")
    parts = create_components(rec)
    if executor == "ray":
        from xite.ray_executor import augment_ray

        return augment_ray(rec, parts, source, target_list, extra_list, out=out, overwrite=overwrite, fields=fields,
                           batch_size=batch_size, device=device, progress=progress, say=say, address=ray_address,
                           options=ray_options)
    timer = stages.Timer()

    with timer.stage("read"):
        inputs = stages.read_inputs(source, target_list, extra_list, fields=fields, source_language=rec.source_language)
    _warn_uncovered(parts["encoder"], [lang for lang, _ in target_list + extra_list], say)
    advise_index(rec, parts["retriever"], len(inputs.source), sum(len(c) for _, c in inputs.targets), say)

    from xite.encoders.cache import EmbeddingCache

    enc = parts["encoder"]
    cache = EmbeddingCache(enc.cache_key)
    with timer.stage("encode"):
        n_rows = len(inputs.source) + sum(len(c) for _, c in inputs.targets + inputs.extras)
        say(f"encoding with {enc.name} ({n_rows} rows, cached ones skipped)")
        encode = lambda corpus, lang: stages.encode(enc, cache, corpus, lang, batch_size=batch_size, progress=progress)  # noqa: E731
        src = encode(inputs.source, rec.source_language)
        tgts = [encode(c, lang) for lang, c in inputs.targets]
        extras = [encode(c, lang) for lang, c in inputs.extras]
    x_tgt = np.concatenate([e.x for e in tgts], axis=0)

    with timer.stage("retrieve"):
        index = stages.build_index(parts["retriever"], rec.retriever.name, src.x)
        neighbours = stages.retrieve(index, rec.retriever.name, x_tgt, parts["adopter"].k, len(src.x))
    with timer.stage("adopt"):
        adoption = stages.adopt(parts["adopter"], rec.adopter.name, neighbours, inputs.source_labels, len(inputs.label_names))
    with timer.stage("project"):
        projection = stages.fit_projection(parts["projector"], rec.projector.name, src, tgts + extras)
    if projection.info.get("warning"):
        say(f"note: {projection.info['warning']}")
    with timer.stage("interpolate"):
        synthetic = stages.synthesize(tgts, x_tgt, src.x, adoption, projection, parts["interpolator"], rec.interpolator.name,
                                      per_target=rec.per_target, seed=rec.seed, device=device)

    ex = synthetic.expansion
    pairs = pair_rows(src, tgts, ex, synthetic.languages, inputs.label_names)
    manifest = build_manifest(rec, inputs, src, tgts, extras, parts, projection, adoption, synthetic, cache, timer)
    result = AugmentResult(synthetic.embeddings, ex.labels, ex.lam, ex.target_index, ex.source_index, ex.similarity,
                           synthetic.languages, inputs.label_names, manifest, pairs)
    if out is not None:
        from xite.run_io import write_run

        with timer.stage("write"):
            result.out_dir = write_run(result, Path(out), overwrite=overwrite)
        manifest.timings_s = dict(timer.seconds)
    return result


EXECUTORS = ("local", "ray")
# From benchmarks/test_scale.py (README, "Scale"). A flat search costs n_target x n_source inner
# products (11-24 s per 1e9 pairs at d = 384 on the loaded 2-core VM); IVF pays k-means training
# (~n_source^1.5) and then probes a few lists per query. Measured: 10k targets x 100k English rows,
# flat 23 s vs ivf 36 s (training dominates); 100k x 10k, flat 24 s vs ivf 7 s; 100k x 100k, flat
# 108 s vs ivf 40 s. So IVF wins once the target has more than ~50·sqrt(n_source) rows, and below
# ~1e9 pairs the search takes seconds either way: not worth a line.
FLAT_ADVICE_PAIRS = 1_000_000_000
IVF_QUERIES_PER_SQRT_SOURCE = 50


def advise_index(rec: Recipe, retriever, n_source: int, n_target: int, say: Callable[[str], None]) -> None:
    """Say when an exact (flat) faiss search is the wrong default for the corpora's sizes."""
    if rec.retriever.name != "faiss" or getattr(retriever, "index_type", None) != "flat":
        return
    if n_source * n_target >= FLAT_ADVICE_PAIRS and n_target > IVF_QUERIES_PER_SQRT_SOURCE * n_source ** 0.5:
        say(f"advice: a flat (exact) index compares {n_target} target rows with all {n_source} English rows; "
            f"an IVF index (--option retriever.index=ivf) is several times faster here at near-exact recall")


def _warn_uncovered(encoder, languages: list[str], say: Callable[[str], None]) -> None:
    """Encoders may declare the languages they were trained on; say when a target is outside."""
    from xite.encoders.base import uncovered_languages

    missing = uncovered_languages(encoder, languages)
    if missing:
        say(f"warning: encoder {encoder.name} does not cover {', '.join(missing)}: its vectors there are unreliable")


def pair_rows(src: stages.Encoded, tgts: Sequence[stages.Encoded], ex: stages.Expansion, languages: list[str],
              label_names: list[str]) -> list[dict]:
    """One readable row per synthetic example: target text, source text, label, similarity, λ."""
    offsets = np.cumsum([0] + [len(e.x) for e in tgts])
    rows = []
    for n, (ti, si) in enumerate(zip(ex.target_index.tolist(), ex.source_index.tolist())):
        block = int(np.searchsorted(offsets, ti, side="right") - 1)
        rows.append(
            {
                "language": languages[n],
                "target_index": ti,
                "target": tgts[block].corpus.texts_for_display(ti - int(offsets[block])),
                "source_index": si,
                "source": src.corpus.texts_for_display(si),
                "label": label_names[int(ex.labels[n])],
                "similarity": round(float(ex.similarity[n]), 6),
                "lam": round(float(ex.lam[n]), 6),
            }
        )
    return rows
