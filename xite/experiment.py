"""``experiment``: the protocol that measures XITE on a benchmark directory (DESIGN §1.6-1.7).

For one task (``DATA/<task>/<lang>/{train,dev,test,unlabeled}.jsonl``), over several seeds:
- zero-shot: a head trained on English only;
- XITE variants (projector x interpolator x label adoption, from the config);
- self-training: target rows pseudo-labelled by the zero-shot model;
- upper bound: English + the target dev labels (a ceiling to read against, not a method);
each scored on every target test set (accuracy, macro-F1) and on English test (forgetting).

Every corpus is encoded once (through the embedding cache); retrieval runs once, each projection is
fitted once, and only the cheap steps (adoption, interpolation, head training) run per cell.
Model selection (early stopping) uses English dev only. Target dev labels are used for three
declared things only: the pseudo-label accuracy diagnostic, the upper bound, and the
"best on dev" reference; the fixed recipe is named in the config.
Completed cells are appended to ``cells.jsonl`` as they finish, so an interrupted run resumes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from xite.errors import ConfigError, XiteError

DEFAULT_CONFIG = "experiment_default.toml"
CELLS = "cells.jsonl"
BASELINES = ("zero-shot", "self-training", "upper-bound")
ALL = "all"


# ---------------------------------------------------------------------------------------------
# Configuration


@dataclass
class Spec:
    name: str
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "options": dict(self.options)}


@dataclass
class Variant:
    name: str
    projector: Spec
    interpolator: Spec
    adopter: Spec
    weight: float = 1.0  # training weight of each synthetic row (English rows weigh 1)

    def to_dict(self) -> dict:
        d = {"name": self.name, "projector": self.projector.to_dict(), "interpolator": self.interpolator.to_dict(),
             "adopter": self.adopter.to_dict()}
        if self.weight != 1.0:  # only when set, so cells of unweighted variants keep their keys
            d["weight"] = self.weight
        return d


def default_config() -> dict:
    text = resources.files("xite").joinpath(DEFAULT_CONFIG).read_text(encoding="utf-8")
    return tomllib.loads(text)


def load_config(config: str | Path | Mapping | None = None) -> dict:
    """The default config, with a TOML file's (or a dict's) keys merged over it."""
    cfg = default_config()
    if config is None:
        return cfg
    if isinstance(config, Mapping):
        user = copy.deepcopy(dict(config))
    else:
        path = Path(config)
        try:
            user = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return _merge(cfg, user)


def _merge(base: dict, over: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)  # lists (variants, seeds) replace, they do not append
    return out


def _spec(value: Any, default: Mapping, shared: Mapping) -> Spec:
    if value is None:
        return Spec(default["name"], dict(default.get("options", {})))
    if isinstance(value, str):
        return Spec(value, dict(shared.get(value, {})))
    if isinstance(value, Mapping) and "name" in value:
        return Spec(value["name"], {**shared.get(value["name"], {}), **dict(value.get("options", {}))})
    raise ConfigError(f"a component must be a name or a table with 'name' (and 'options'), got {value!r}")


def variants_of(cfg: Mapping) -> list[Variant]:
    defaults, shared = cfg.get("defaults", {}), cfg.get("component_options", {})
    out, seen = [], set()
    for raw in cfg.get("variants", []):
        name = raw.get("name")
        if not name or name in seen or name in BASELINES:
            raise ConfigError(f"every variant needs a unique name (not a baseline's), got {name!r}")
        seen.add(name)
        weight = float(raw.get("weight", 1.0))
        if not weight > 0:
            raise ConfigError(f"variant {name!r}: weight must be > 0, got {weight}")
        out.append(Variant(name, *(_spec(raw.get(kind), defaults[kind], shared) for kind in ("projector", "interpolator", "adopter")), weight))
    if not out:
        raise ConfigError("the config lists no [[variants]]")
    return out


# ---------------------------------------------------------------------------------------------
# Data: every corpus encoded once


@dataclass
class Split:
    x: np.ndarray
    y: np.ndarray | None
    digest: str


@dataclass
class TaskData:
    task: str
    label_names: list[str]
    pairs: bool
    source: dict[str, Split]  # train / dev / test
    targets: dict[str, dict[str, Split]]  # lang -> unlabeled / dev / test
    encoder: dict


def load_task(data: Path, task: str, languages: list[str], cfg: Mapping, progress: bool, say: Callable[[str], None]) -> TaskData:
    from xite import plugins
    from xite.data.readers import label_set, read_corpus
    from xite.encoders.cache import EmbeddingCache
    from xite.encoders.cache import encode_corpus
    from xite.train import encoder_identity

    exp = cfg["experiment"]
    root = Path(data) / task
    src_lang = exp["source_language"]
    if not root.is_dir():
        raise XiteError(f"{root}: no such task directory (expected DATA/<task>/<lang>/*.jsonl)")
    enc_spec, enc_opts = exp["encoder"], dict(exp.get("encoder_options", {}))
    enc = plugins.create("encoders", enc_spec, enc_opts)
    cache = EmbeddingCache(enc.cache_key)
    batch = int(exp.get("batch_size", 64))

    def load(lang: str, split: str, labeled: bool | None, names: list[str] | None):
        path = root / lang / f"{split}.jsonl"
        if not path.is_file():
            raise XiteError(f"{path}: missing (the experiment needs {src_lang} train/dev/test and <lang> unlabeled/dev/test)")
        corpus = read_corpus(path, labeled=labeled)
        return corpus, Split(encode_corpus(enc, cache, corpus, batch, progress), None if names is None else corpus.encode_labels(names), corpus.digest)

    say(f"encoding {task} with {enc.name} (cached rows are not encoded again)")
    train_c = read_corpus(root / src_lang / "train.jsonl", labeled=True)
    names = label_set(train_c.labels)
    train_c = sample_rows(train_c, int(exp.get("max_source_rows") or 0), int(exp.get("source_sample_seed", 13)))
    source = {"train": Split(encode_corpus(enc, cache, train_c, batch, progress), train_c.encode_labels(names), train_c.digest)}
    source.update({split: load(src_lang, split, True, names)[1] for split in ("dev", "test")})
    targets = {}
    for lang in languages:
        targets[lang] = {
            "unlabeled": load(lang, "unlabeled", False, None)[1],
            "dev": load(lang, "dev", True, names)[1],
            "test": load(lang, "test", True, names)[1],
        }
    return TaskData(task, names, train_c.is_pair, source, targets, encoder_identity(enc, enc_spec, enc_opts))


def sample_rows(corpus, n: int, seed: int):
    """At most ``n`` rows of ``corpus`` (0: all), a seeded sample in file order. The sample for a
    smaller ``n`` is a subset of the one for a larger ``n`` (a prefix of one permutation), so an
    embedding cache filled for one size serves every smaller one."""
    from xite.data.schema import Corpus

    if n <= 0 or n >= len(corpus):
        return corpus
    keep = np.sort(np.random.default_rng(seed).permutation(len(corpus))[:n])
    pick = lambda seq: [seq[i] for i in keep]  # noqa: E731
    texts = None if corpus.texts is None else pick(corpus.texts)
    pairs = None if corpus.pairs is None else (pick(corpus.pairs[0]), pick(corpus.pairs[1]))
    sub = Corpus(corpus.path, texts=texts, pairs=pairs, labels=pick(corpus.labels), fields=dict(corpus.fields),
                 line_numbers=pick(corpus.line_numbers))
    sub.digest = f"{corpus.digest}:sample{n}@{seed}"
    return sub


# ---------------------------------------------------------------------------------------------
# The grid


@dataclass
class _Shared:
    """What every cell of one run reuses: data, neighbours, projections."""

    data: TaskData
    cfg: dict
    languages: list[str]
    unl_search: dict[str, tuple[np.ndarray, np.ndarray]]
    dev_search: dict[str, tuple[np.ndarray, np.ndarray]]
    projections: dict[str, Any]
    zero_shot: dict[int, Any] = field(default_factory=dict)


def experiment(
    data: str | Path,
    task: str,
    *,
    config: str | Path | Mapping | None = None,
    out: str | Path | None = None,
    languages: list[str] | None = None,
    seeds: list[int] | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Run the grid for ``task`` on ``data``; write ``results.json`` and ``results.md`` to ``out``.

    Returns the results dict (the content of results.json). Cells already in ``out/cells.jsonl``
    with the same settings are reused, so rerunning an interrupted experiment continues it.
    """
    say = log or (lambda _m: None)
    started = time.perf_counter()
    cfg = load_config(config)
    if languages:
        cfg["experiment"]["languages"] = list(languages)
    if seeds:
        cfg["experiment"]["seeds"] = [int(s) for s in seeds]
    variants = variants_of(cfg)
    recipe = cfg["experiment"].get("recipe")
    if recipe not in [v.name for v in variants]:
        raise ConfigError(f"recipe {recipe!r} is not one of the variants: {', '.join(v.name for v in variants)}")
    langs = list(cfg["experiment"]["languages"])
    out = Path(out) if out is not None else Path(f"xite-experiment-{task}")
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    data_ = load_task(Path(data), task, langs, cfg, progress, say)
    encode_s = time.perf_counter() - t0
    shared = _prepare(data_, cfg, langs, variants, say)
    with _torch_threads(int(cfg["experiment"].get("train_threads", 1))):
        cells = _run_grid(shared, data_, cfg, variants, out, progress)
    results = summarise(data_, cfg, variants, cells)
    reused = sum(1 for c in cells if c.get("reused"))
    for c in cells:
        c.pop("reused", None)
    results["timing_s"] = {"encode_and_load": round(encode_s, 2), "total": round(time.perf_counter() - started, 2),
                           "cells_computed": len(cells) - reused, "cells_reused": reused}
    _write_results(out, results)
    return results


def _run_grid(shared: "_Shared", data_: TaskData, cfg: dict, variants: list[Variant], out: Path, progress: bool) -> list[dict]:
    grid = [(m, s) for s in cfg["experiment"]["seeds"] for m in list(BASELINES) + [v.name for v in variants]]
    by_name = {v.name: v for v in variants}
    done = _read_cells(out / CELLS)
    cells = []
    with _progress_bar(progress, len(grid)) as advance:
        for method, seed in grid:
            key = _cell_key(data_, cfg, method, seed, by_name.get(method))
            if key in done:
                cells.append({**done[key], "reused": True})
                advance(f"{method} seed {seed} (cached)")
                continue
            t = time.perf_counter()
            cell = _run_cell(shared, method, seed, by_name.get(method))
            cell.update(key=key, method=method, seed=seed, seconds=round(time.perf_counter() - t, 3))
            _append_cell(out / CELLS, cell)
            cells.append(cell)
            advance(f"{method} seed {seed}")
    return cells


class _torch_threads:
    """Small heads train fastest on one thread (and leave the other cores to other work);
    the encoder's own thread setting is restored afterwards."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        import torch

        self.before = torch.get_num_threads()
        if self.n > 0:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.before)
        return False


def _prepare(data: TaskData, cfg: dict, langs: list[str], variants: list[Variant], say) -> _Shared:
    from xite import plugins

    exp = cfg["experiment"]
    x_src = data.source["train"].x
    k = max(plugins.create("adopters", v.adopter.name, v.adopter.options).k for v in variants)
    retr = plugins.create("retrievers", exp["retriever"], dict(exp.get("retriever_options", {})))
    retr.build(x_src)
    k = min(k, len(x_src))
    unl = {lang: retr.search(data.targets[lang]["unlabeled"].x, k) for lang in langs}
    dev = {lang: retr.search(data.targets[lang]["dev"].x, k) for lang in langs}
    # One projection per distinct projector, fitted on English + every target language's
    # unlabeled rows: the language subspace is richer with more languages (LDA rank <= L-1).
    x_fit = np.concatenate([x_src] + [data.targets[lang]["unlabeled"].x for lang in langs])
    fit_langs = [exp["source_language"]] * len(x_src) + [lang for lang in langs for _ in range(len(data.targets[lang]["unlabeled"].x))]
    projections = {}
    for v in variants:
        key = json.dumps(v.projector.to_dict(), sort_keys=True)
        if key not in projections:
            say(f"fitting projector {v.projector.name} {v.projector.options}")
            proj = plugins.create("projectors", v.projector.name, v.projector.options)
            projections[key] = proj.fit(x_fit, fit_langs, source_language=exp["source_language"])
    return _Shared(data, cfg, langs, unl, dev, projections)


def _head_options(cfg: Mapping, seed: int):
    from xite.train.heads import HeadOptions

    return HeadOptions(**{**cfg.get("head", {}), "seed": int(seed)})


def _fit(shared: _Shared, seed: int, extra_x: list[np.ndarray], extra_y: list[np.ndarray], weight: float = 1.0):
    from xite.train import fit_head

    src = shared.data.source
    x = np.concatenate([src["train"].x] + extra_x)
    y = np.concatenate([src["train"].y] + extra_y)
    w = None
    if weight != 1.0:
        w = np.ones(len(y), dtype=np.float32)
        w[len(src["train"].y):] = weight
    return fit_head(x, y, shared.data.label_names, _head_options(shared.cfg, seed), x_dev=src["dev"].x, y_dev=src["dev"].y,
                    sample_weight=w)


def _score(shared: _Shared, model, langs: list[str], extra: dict | None = None) -> dict:
    from xite.evaluate import metrics

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


def _zero_shot(shared: _Shared, seed: int):
    """The English-only model of this seed (refitted after a resume: training is deterministic)."""
    if seed not in shared.zero_shot:
        shared.zero_shot[seed] = _fit(shared, seed, [], [])
    return shared.zero_shot[seed]


def _run_cell(shared: _Shared, method: str, seed: int, variant: Variant | None) -> dict:
    if method == "zero-shot":
        model = _zero_shot(shared, seed)
        scored = _score(shared, model, shared.languages)
        return {"models": {lang: scored for lang in shared.languages + [ALL]}}
    if method == "self-training":
        zs = _zero_shot(shared, seed)
        rows = {lang: (shared.data.targets[lang]["unlabeled"].x, zs.predict(shared.data.targets[lang]["unlabeled"].x)) for lang in shared.languages}
        return {"models": _per_language_models(shared, seed, rows)}
    if method == "upper-bound":
        rows = {lang: (shared.data.targets[lang]["dev"].x, shared.data.targets[lang]["dev"].y) for lang in shared.languages}
        return {"models": _per_language_models(shared, seed, rows)}
    return _xite_cell(shared, seed, variant)


def _per_language_models(shared: _Shared, seed: int, rows: dict[str, tuple[np.ndarray, np.ndarray]], weight: float = 1.0) -> dict:
    """One model per language (English + that language's rows) and one with every language's."""
    models = {}
    for lang, (x, y) in rows.items():
        models[lang] = _score(shared, _fit(shared, seed, [x], [y], weight), [lang], {"added_rows": int(len(y))})
    xs, ys = [r[0] for r in rows.values()], [r[1] for r in rows.values()]
    models[ALL] = _score(shared, _fit(shared, seed, xs, ys, weight), shared.languages, {"added_rows": int(sum(len(y) for y in ys))})
    return models


def _adopt(shared: _Shared, variant: Variant, lang: str, split: str, seed: int):
    from xite import plugins
    from xite.adopters.base import AdoptionContext

    adopter = plugins.create("adopters", variant.adopter.name, variant.adopter.options)
    scores, ids = (shared.unl_search if split == "unlabeled" else shared.dev_search)[lang]
    # Adoption runs per language, so class balancing and agreement are judged within a language.
    probs = _zero_shot(shared, seed).predict_proba(shared.data.targets[lang][split].x)
    ctx = AdoptionContext(n_classes=len(shared.data.label_names), predictions=probs)
    return adopter.adopt(scores[:, : adopter.k], ids[:, : adopter.k], shared.data.source["train"].y, ctx)


def _xite_cell(shared: _Shared, seed: int, variant: Variant) -> dict:
    from xite import plugins
    from xite.pipeline import expand_kept, interpolate

    projection = shared.projections[json.dumps(variant.projector.to_dict(), sort_keys=True)]
    interp = plugins.create("interpolators", variant.interpolator.name, variant.interpolator.options)
    rng = np.random.default_rng(seed)
    per_target = int(shared.cfg["experiment"].get("per_target", 1))
    rows, pseudo = {}, {}
    x_src = shared.data.source["train"].x
    for lang in shared.languages:
        t = shared.data.targets[lang]
        adoption = _adopt(shared, variant, lang, "unlabeled", seed)
        t_idx, s_idx, lam, _sim, y = expand_kept(adoption, per_target, interp, rng)
        z = interpolate(t["unlabeled"].x, x_src, t_idx, s_idx, lam, projection, interp.mode) if len(t_idx) else np.zeros((0, x_src.shape[1]), np.float32)
        rows[lang] = (z, y)
        pseudo[lang] = _pseudo_label_quality(_adopt(shared, variant, lang, "dev", seed), t["dev"].y)
    return {"models": _per_language_models(shared, seed, rows, variant.weight), "pseudo_labels_dev": pseudo,
            "projection_rank": projection.rank}


def _pseudo_label_quality(adoption, gold: np.ndarray) -> dict:
    """Diagnostic only: how often the adopted label of a target dev row is its gold label."""
    keep = adoption.keep
    correct = adoption.labels == gold
    return {"accuracy_kept": float(correct[keep].mean()) if keep.any() else None,
            "accuracy_all": float(correct.mean()), "kept": float(keep.mean())}


# ---------------------------------------------------------------------------------------------
# Resume


def _cell_key(data: TaskData, cfg: dict, method: str, seed: int, variant: Variant | None) -> str:
    """Everything a cell's numbers depend on; a changed setting recomputes the cell."""
    exp = cfg["experiment"]
    material = {
        "task": data.task, "encoder": data.encoder, "method": method, "seed": seed,
        "variant": None if variant is None else variant.to_dict(), "head": cfg.get("head", {}),
        "languages": exp["languages"], "retriever": exp["retriever"], "per_target": exp.get("per_target", 1),
        "source_sample": [exp.get("max_source_rows"), exp.get("source_sample_seed", 13)],
        "projector_fit": sorted({json.dumps(v, sort_keys=True) for v in [variant.projector.to_dict()]}) if variant else None,
        "data": {k: s.digest for k, s in data.source.items()} | {f"{lang}/{k}": s.digest for lang, d in data.targets.items() for k, s in d.items()},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _read_cells(path: Path) -> dict[str, dict]:
    done = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                cell = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by an interruption: that cell is simply rerun
            done[cell.get("key")] = cell
    return done


def _append_cell(path: Path, cell: dict) -> None:
    import os

    # A line cut short by an interruption has no newline: start a fresh line after it.
    cut = path.is_file() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(("\n" if cut else "") + json.dumps(cell, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


class _progress_bar:
    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total = enabled, total

    def __enter__(self):
        if not self.enabled:
            return lambda _desc: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("[bold]grid[/bold] {task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self.bar.start()
        task = self.bar.add_task("", total=self.total)
        return lambda desc: self.bar.update(task, advance=1, description=desc)

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()
        return False


# ---------------------------------------------------------------------------------------------
# Summary


def _mean_std(values: list[float]) -> dict:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "std": None, "n": 0}
    arr = np.asarray(vals, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, "n": len(arr)}


def _collect(cells: list[dict], method: str, model: str, fn) -> dict:
    return _mean_std([fn(c["models"][model]) for c in cells if c["method"] == method and model in c["models"]])


def summarise(data: TaskData, cfg: dict, variants: list[Variant], cells: list[dict]) -> dict:
    langs = list(cfg["experiment"]["languages"])
    methods = list(BASELINES) + [v.name for v in variants]
    table: dict[str, dict] = {}
    for m in methods:
        per_lang = {}
        for lang in langs:
            per_lang[lang] = {
                "test_accuracy": _collect(cells, m, lang, lambda r, L=lang: r["test"][L]["accuracy"]),
                "test_macro_f1": _collect(cells, m, lang, lambda r, L=lang: r["test"][L]["macro_f1"]),
                "dev_accuracy": _collect(cells, m, lang, lambda r, L=lang: r["dev"][L]),
                "en_test_accuracy": _collect(cells, m, lang, lambda r: r["en_test"]),
                "all_model_test_accuracy": _collect(cells, m, ALL, lambda r, L=lang: r["test"][L]["accuracy"]),
                "all_model_test_macro_f1": _collect(cells, m, ALL, lambda r, L=lang: r["test"][L]["macro_f1"]),
            }
            pl = [c["pseudo_labels_dev"][lang] for c in cells if c["method"] == m and "pseudo_labels_dev" in c]
            if pl:
                per_lang[lang]["pseudo_label_accuracy_dev"] = _mean_std([p["accuracy_kept"] for p in pl])
                per_lang[lang]["pseudo_label_kept_dev"] = _mean_std([p["kept"] for p in pl])
        table[m] = {"languages": per_lang, "all_model_en_test_accuracy": _collect(cells, m, ALL, lambda r: r["en_test"])}
    recipe = cfg["experiment"]["recipe"]
    zs = table["zero-shot"]["languages"]
    comparison = {}
    for lang in langs:
        r, z = table[recipe]["languages"][lang], zs[lang]
        comparison[lang] = {
            "zero_shot_accuracy": z["test_accuracy"]["mean"], "recipe_accuracy": r["test_accuracy"]["mean"],
            "delta_accuracy": r["test_accuracy"]["mean"] - z["test_accuracy"]["mean"],
            "zero_shot_macro_f1": z["test_macro_f1"]["mean"], "recipe_macro_f1": r["test_macro_f1"]["mean"],
            "delta_macro_f1": r["test_macro_f1"]["mean"] - z["test_macro_f1"]["mean"],
            "delta_en_accuracy": r["en_test_accuracy"]["mean"] - z["en_test_accuracy"]["mean"],
            "zero_shot_dev_accuracy": z["dev_accuracy"]["mean"],
        }
    best_on_dev = {}
    for lang in langs:
        name = max((v.name for v in variants), key=lambda n: table[n]["languages"][lang]["dev_accuracy"]["mean"] or -1)
        row = table[name]["languages"][lang]
        best_on_dev[lang] = {"variant": name, "dev_accuracy": row["dev_accuracy"]["mean"],
                             "test_accuracy": row["test_accuracy"], "test_macro_f1": row["test_macro_f1"]}
    mean_dev = {v.name: float(np.mean([table[v.name]["languages"][L]["dev_accuracy"]["mean"] for L in langs])) for v in variants}
    return {
        "task": data.task,
        "label_names": data.label_names,
        "encoder": data.encoder,
        "languages": langs,
        "seeds": cfg["experiment"]["seeds"],
        "config": cfg,
        "recipe": {"name": recipe, "chosen_by": cfg["experiment"].get("recipe_note") or "named in the config (not by target test labels)", "vs_zero_shot": comparison,
                   "cells_above_zero_shot": int(sum(c["delta_accuracy"] > 0 for c in comparison.values())),
                   "max_english_drop": float(-min(c["delta_en_accuracy"] for c in comparison.values()))},
        "variant_mean_target_dev_accuracy": mean_dev,
        "best_on_target_dev_reference": best_on_dev,
        "methods": table,
        "cells": len(cells),
    }


def _write_results(out: Path, results: dict) -> None:
    from xite.data.writers import atomic_write_text

    atomic_write_text(out / "results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(out / "results.md", render_markdown(results))


def _fmt(ms: dict | None, scale: float = 100.0) -> str:
    if not ms or ms.get("mean") is None:
        return "–"
    return f"{ms['mean'] * scale:.1f} ± {ms['std'] * scale:.1f}"


def render_markdown(results: dict) -> str:
    langs, recipe = results["languages"], results["recipe"]["name"]
    methods = results["methods"]
    enc = results["encoder"]
    lines = [
        f"# xite experiment: {results['task']} (en → {', '.join(langs)})",
        "",
        f"Encoder {enc['name']}@{enc['version']} (frozen), {results['config']['head']['type']} head, "
        f"seeds {results['seeds']}; numbers are percentages, mean ± std over seeds. Early stopping on English dev only.",
        f"Fixed recipe: **{recipe}** ({results['recipe']['chosen_by']}). "
        f"Recipe above zero-shot (test accuracy) in {results['recipe']['cells_above_zero_shot']} of {len(langs)} languages; "
        f"largest English test drop {results['recipe']['max_english_drop'] * 100:.2f} points.",
        "",
        "## Target test accuracy / macro-F1 (one model per language: English + that language's rows)",
        "",
        "| method | " + " | ".join(f"{L} acc | {L} F1" for L in langs) + " | en test acc |",
        "|---|" + "---|---|" * len(langs) + "---|",
    ]
    for m, row in methods.items():
        cells = " | ".join(f"{_fmt(row['languages'][L]['test_accuracy'])} | {_fmt(row['languages'][L]['test_macro_f1'])}" for L in langs)
        en = np.mean([row["languages"][L]["en_test_accuracy"]["mean"] for L in langs]) * 100
        label = f"**{m}** (recipe)" if m == recipe else m
        lines.append(f"| {label} | {cells} | {en:.1f} |")
    lines += ["", "## Recipe vs zero-shot (test; Δ in points)", "",
              "| language | zero-shot acc | recipe acc | Δ acc | zero-shot F1 | recipe F1 | Δ F1 | Δ en acc |", "|---|---|---|---|---|---|---|---|"]
    for L, c in results["recipe"]["vs_zero_shot"].items():
        lines.append(f"| {L} | {c['zero_shot_accuracy']*100:.1f} | {c['recipe_accuracy']*100:.1f} | {c['delta_accuracy']*100:+.1f} | "
                     f"{c['zero_shot_macro_f1']*100:.1f} | {c['recipe_macro_f1']*100:.1f} | {c['delta_macro_f1']*100:+.1f} | {c['delta_en_accuracy']*100:+.2f} |")
    lines += ["", "## Pseudo-label accuracy on target dev (diagnostic only; kept share in brackets)", "",
              "| label source | " + " | ".join(langs) + " |", "|---|" + "---|" * len(langs)]
    zs = methods["zero-shot"]["languages"]
    lines.append("| zero-shot classifier (dev accuracy) | " + " | ".join(_fmt(zs[L]["dev_accuracy"]) for L in langs) + " |")
    for m, row in methods.items():
        if "pseudo_label_accuracy_dev" not in row["languages"][langs[0]]:
            continue
        lines.append(f"| {m} | " + " | ".join(
            f"{_fmt(row['languages'][L]['pseudo_label_accuracy_dev'])} ({row['languages'][L]['pseudo_label_kept_dev']['mean']*100:.0f}%)" for L in langs) + " |")
    lines += ["", "## Reference only: per-language best XITE variant on target dev (selected with target dev labels)", "",
              "| language | variant | dev acc | test acc | test F1 |", "|---|---|---|---|---|"]
    for L, b in results["best_on_target_dev_reference"].items():
        lines.append(f"| {L} | {b['variant']} | {b['dev_accuracy']*100:.1f} | {_fmt(b['test_accuracy'])} | {_fmt(b['test_macro_f1'])} |")
    lines += ["", "## One model on English + every language's rows (\"all\")", "",
              "| method | " + " | ".join(f"{L} acc | {L} F1" for L in langs) + " | en test acc |", "|---|" + "---|---|" * len(langs) + "---|"]
    for m, row in methods.items():
        cells = " | ".join(f"{_fmt(row['languages'][L]['all_model_test_accuracy'])} | {_fmt(row['languages'][L]['all_model_test_macro_f1'])}" for L in langs)
        lines.append(f"| {m} | {cells} | {_fmt(row['all_model_en_test_accuracy'])} |")
    t = results.get("timing_s", {})
    lines += ["", f"Wall time of this run: {t.get('total', '?')} s (loading + encoding {t.get('encode_and_load', '?')} s; "
              f"{t.get('cells_computed', '?')} cells computed, {t.get('cells_reused', '?')} reused from cells.jsonl).", ""]
    return "\n".join(lines)
