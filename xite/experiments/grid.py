"""The grid of cells (method x seed), each built from the stages in :mod:`xite.stages`.

Retrieval runs once per run (the deepest ``k`` any variant needs), each distinct projector is
fitted once, and only the cheap steps (adoption, expansion, interpolation, head training) run per
cell. Model selection (early stopping) uses English dev only. Target dev labels are used for three
declared things only: the pseudo-label accuracy diagnostic, the upper bound, and the "best on dev"
reference.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from xite import plugins, stages
from xite.experiments.config import BASELINES, Variant
from xite.experiments.data import TaskData
from xite.experiments.resume import CELLS, append_cell, cell_key, read_cells
from xite.experiments.summary import ALL
from xite.progress import grid_progress


@dataclass
class Shared:
    """What every cell of one run reuses: data, neighbours, projections, zero-shot models."""

    data: TaskData
    cfg: dict
    languages: list[str]
    retriever: dict  # the retriever as configured (name + resolved options)
    unlabeled: dict[str, stages.Neighbours]
    dev: dict[str, stages.Neighbours]
    projections: dict[str, Any]
    zero_shot: dict[int, Any] = field(default_factory=dict)


def _resolved(kind: str, spec) -> dict:
    """A component's name and every option it ends up with (defaults included): a changed
    default changes the key, so no stale cell survives it."""
    component = plugins.create(kind + "s", spec.name, spec.options)
    return {"name": spec.name, "options": component.config()}


def prepare(data: TaskData, cfg: dict, langs: list[str], variants: list[Variant], say) -> Shared:
    exp = cfg["experiment"]
    x_src = data.source["train"].x
    retriever_spec = {"name": exp["retriever"], "options": dict(exp.get("retriever_options", {}))}
    retriever = plugins.create("retrievers", retriever_spec["name"], retriever_spec["options"])
    k = max(plugins.create("adopters", v.adopter.name, v.adopter.options).k for v in variants)
    index = stages.build_index(retriever, retriever_spec["name"], x_src)
    search = lambda x: stages.retrieve(index, retriever_spec["name"], x, k, len(x_src))  # noqa: E731
    unl = {lang: search(data.targets[lang]["unlabeled"].x) for lang in langs}
    dev = {lang: search(data.targets[lang]["dev"].x) for lang in langs}
    # One projection per distinct projector, fitted on English + every target language's
    # unlabeled rows: the language subspace is richer with more languages (LDA rank <= L-1).
    src = stages.Encoded(data.source_language, None, x_src)
    others = [stages.Encoded(lang, None, data.targets[lang]["unlabeled"].x) for lang in langs]
    projections = {}
    for v in variants:
        key = json.dumps(v.projector.to_dict(), sort_keys=True)
        if key not in projections:
            say(f"fitting projector {v.projector.name} {v.projector.options}")
            proj = plugins.create("projectors", v.projector.name, v.projector.options)
            projections[key] = stages.fit_projection(proj, v.projector.name, src, others)
    return Shared(data, cfg, langs, {"name": retriever_spec["name"], "options": retriever.config()}, unl, dev, projections)


def key_material(shared: Shared, method: str, seed: int, variant: Variant | None) -> dict:
    """Everything a cell's numbers depend on: the data, and every stage as configured."""
    exp = shared.cfg["experiment"]
    data = shared.data
    stages_cfg = None
    if variant is not None:
        stages_cfg = {kind: _resolved(kind, getattr(variant, kind)) for kind in ("projector", "interpolator", "adopter")}
        stages_cfg["weight"] = variant.weight
    return {
        "task": data.task, "encoder": data.encoder, "method": method, "seed": seed, "variant": None if variant is None else variant.name,
        "stages": stages_cfg, "retriever": shared.retriever, "head": shared.cfg.get("head", {}),
        "languages": exp["languages"], "per_target": exp.get("per_target", 1),
        # The projector is fitted on English + every language of the run.
        "projector_fit_languages": [data.source_language] + list(exp["languages"]),
        "source_sample": [exp.get("max_source_rows"), exp.get("source_sample_seed", 13)],
        "data": {k: s.digest for k, s in data.source.items()} | {f"{lang}/{k}": s.digest for lang, d in data.targets.items() for k, s in d.items()},
    }


def run_grid(shared: Shared, cfg: dict, variants: list[Variant], out: Path, progress: bool) -> list[dict]:
    grid = [(m, s) for s in cfg["experiment"]["seeds"] for m in list(BASELINES) + [v.name for v in variants]]
    by_name = {v.name: v for v in variants}
    done = read_cells(out / CELLS)
    cells = []
    with grid_progress(progress, len(grid)) as advance:
        for method, seed in grid:
            key = cell_key(key_material(shared, method, seed, by_name.get(method)))
            if key in done:
                cells.append({**done[key], "reused": True})
                advance(f"{method} seed {seed} (cached)")
                continue
            t = time.perf_counter()
            cell = run_cell(shared, method, seed, by_name.get(method))
            cell.update(key=key, method=method, seed=seed, seconds=round(time.perf_counter() - t, 3))
            append_cell(out / CELLS, cell)
            cells.append(cell)
            advance(f"{method} seed {seed}")
    return cells


def _head_options(cfg: Mapping, seed: int):
    from xite.training.heads import HeadOptions

    return HeadOptions(**{**cfg.get("head", {}), "seed": int(seed)})


def _fit(shared: Shared, seed: int, extra_x: list[np.ndarray], extra_y: list[np.ndarray], weight: float = 1.0):
    from xite.training import fit_head

    src = shared.data.source
    x = np.concatenate([src["train"].x] + extra_x)
    y = np.concatenate([src["train"].y] + extra_y)
    w = None
    if weight != 1.0:
        w = np.ones(len(y), dtype=np.float32)
        w[len(src["train"].y):] = weight
    return fit_head(x, y, shared.data.label_names, _head_options(shared.cfg, seed), x_dev=src["dev"].x, y_dev=src["dev"].y,
                    sample_weight=w)


def _score(shared: Shared, model, langs: list[str], extra: dict | None = None) -> dict:
    from xite.evaluation import metrics

    names = shared.data.label_names
    out = {"test": {}, "dev": {}, **(extra or {})}
    for lang in langs:
        t = shared.data.targets[lang]
        m = metrics(t["test"].y, model.predict(t["test"].x), names)
        out["test"][lang] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "confusion": m["confusion"]}
        out["dev"][lang] = float((model.predict(t["dev"].x) == t["dev"].y).mean())
    en = shared.data.source["test"]
    out["en_test"] = float((model.predict(en.x) == en.y).mean())
    out["en_dev"] = model.report.dev_accuracy if model.report else None
    return out


def zero_shot(shared: Shared, seed: int):
    """The English-only model of this seed (refitted after a resume: training is deterministic)."""
    if seed not in shared.zero_shot:
        shared.zero_shot[seed] = _fit(shared, seed, [], [])
    return shared.zero_shot[seed]


def run_cell(shared: Shared, method: str, seed: int, variant: Variant | None) -> dict:
    targets = shared.data.targets
    if method == "zero-shot":
        scored = _score(shared, zero_shot(shared, seed), shared.languages)
        return {"models": {lang: scored for lang in shared.languages + [ALL]}}
    if method == "self-training":
        zs = zero_shot(shared, seed)
        rows = {lang: (targets[lang]["unlabeled"].x, zs.predict(targets[lang]["unlabeled"].x)) for lang in shared.languages}
        return {"models": _per_language_models(shared, seed, rows)}
    if method == "upper-bound":
        rows = {lang: (targets[lang]["dev"].x, targets[lang]["dev"].y) for lang in shared.languages}
        return {"models": _per_language_models(shared, seed, rows)}
    return _xite_cell(shared, seed, variant)


def _per_language_models(shared: Shared, seed: int, rows: dict[str, tuple[np.ndarray, np.ndarray]], weight: float = 1.0) -> dict:
    """One model per language (English + that language's rows) and one with every language's."""
    models = {}
    for lang, (x, y) in rows.items():
        models[lang] = _score(shared, _fit(shared, seed, [x], [y], weight), [lang], {"added_rows": int(len(y))})
    xs, ys = [r[0] for r in rows.values()], [r[1] for r in rows.values()]
    models[ALL] = _score(shared, _fit(shared, seed, xs, ys, weight), shared.languages, {"added_rows": int(sum(len(y) for y in ys))})
    return models


def _adopt(shared: Shared, variant: Variant, lang: str, split: str, seed: int):
    adopter = plugins.create("adopters", variant.adopter.name, variant.adopter.options)
    neighbours = (shared.unlabeled if split == "unlabeled" else shared.dev)[lang]
    # Adoption runs per language, so class balancing and agreement are judged within a language.
    probs = zero_shot(shared, seed).predict_proba(shared.data.targets[lang][split].x)
    return stages.adopt(adopter, variant.adopter.name, neighbours, shared.data.source["train"].y,
                        len(shared.data.label_names), predictions=probs)


def _xite_cell(shared: Shared, seed: int, variant: Variant) -> dict:
    projection = shared.projections[json.dumps(variant.projector.to_dict(), sort_keys=True)]
    interp = plugins.create("interpolators", variant.interpolator.name, variant.interpolator.options)
    rng = np.random.default_rng(seed)
    per_target = int(shared.cfg["experiment"].get("per_target", 1))
    rows, pseudo = {}, {}
    x_src = shared.data.source["train"].x
    for lang in shared.languages:
        t = shared.data.targets[lang]
        adoption = _adopt(shared, variant, lang, "unlabeled", seed)
        expansion = stages.expand(adoption, per_target, interp, variant.interpolator.name, rng)
        z = stages.interpolate(t["unlabeled"].x, x_src, expansion, projection, interp.interp)
        rows[lang] = (z, expansion.labels)
        pseudo[lang] = pseudo_label_quality(_adopt(shared, variant, lang, "dev", seed), t["dev"].y)
    return {"models": _per_language_models(shared, seed, rows, variant.weight), "pseudo_labels_dev": pseudo,
            "projection_rank": projection.rank}


def pseudo_label_quality(adoption, gold: np.ndarray) -> dict:
    """Diagnostic only: how often the adopted label of a target dev row is its gold label."""
    keep = adoption.keep
    correct = adoption.labels == gold
    return {"accuracy_kept": float(correct[keep].mean()) if keep.any() else None,
            "accuracy_all": float(correct.mean()), "kept": float(keep.mean())}
