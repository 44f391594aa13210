"""``experiment --level encoder``: the paper's setting, the encoder itself fine-tuned.

Per seed, every arm runs the same number of optimizer steps on the same English sample:
- zero-shot-ft: English only (the baseline of this level; one model scores every language);
- the XITE arms of the config (``[arms.NAME]``: adopter, projector, interpolator), English and
  XITE batches interleaved from the first step;
- self-training: the target rows labelled by the zero-shot model of the seed, trained as labeled rows;
- adapt: from the zero-shot model of the seed, XITE batches with an English replay share;
- upper-bound: English + the target dev labels (a ceiling, not a method).
The XITE rows are made by the stages (:mod:`xite.stages`) on the encoder as loaded (the cached
vectors of the frozen encoder), the projection is fitted at the mixing point by the loop.
Target labels select nothing: English dev picks the checkpoint. Cells resume from cells.jsonl;
a cell interrupted mid-training resumes from its checkpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from xite import plugins, stages
from xite.errors import ConfigError, XiteError
from xite.experiments.resume import CELLS, append_cell, cell_key, read_cells
from xite.recipe import ComponentSpec, Recipe

BASELINE_ARMS = ("zero-shot-ft", "self-training", "adapt", "upper-bound")


@dataclass
class Rows:
    """Sampled rows of one split: texts or pairs, labels (None when unlabeled), digest."""

    rows: Any
    labels: np.ndarray | None
    digest: str
    x: np.ndarray | None = None  # the frozen encoder's vectors (for retrieval)

    def __len__(self) -> int:
        return len(self.rows[0]) if isinstance(self.rows, tuple) else len(self.rows)


@dataclass
class Arm:
    name: str
    label: str
    recipe: Recipe | None = None  # the XITE arms


def default_encoder_config() -> dict:
    import tomllib
    from importlib import resources

    return tomllib.loads(resources.files("xite.experiments").joinpath("encoder.toml").read_text(encoding="utf-8"))


def arms_of(cfg: Mapping) -> list[Arm]:
    exp = cfg["experiment"]
    arms = []
    for name, raw in cfg.get("arms", {}).items():
        if name in BASELINE_ARMS:
            raise ConfigError(f"arm {name!r}: that name belongs to a baseline arm")
        unknown = sorted(set(raw) - {"label", "adopter", "projector", "interpolator", "per_target"})
        if unknown:
            raise ConfigError(f"arm {name!r}: unknown key(s) {', '.join(unknown)}")
        rec = Recipe(
            encoder=ComponentSpec(exp["encoder"]), retriever=ComponentSpec(exp.get("retriever", "faiss")),
            adopter=ComponentSpec.parse(raw.get("adopter", "top1"), f"arms.{name}.adopter"),
            projector=ComponentSpec.parse(raw.get("projector", "lda"), f"arms.{name}.projector"),
            interpolator=ComponentSpec.parse(raw.get("interpolator", "linear"), f"arms.{name}.interpolator"),
            per_target=int(raw.get("per_target", 1)), source_language=exp.get("source_language", "en"),
        )
        arms.append(Arm(name, str(raw.get("label", name)), rec))
    if not arms:
        raise ConfigError("the encoder-level config lists no [arms.NAME]")
    rows_of = cfg.get("adapt", {}).get("rows_of")
    if rows_of not in [a.name for a in arms]:
        raise ConfigError(f"adapt.rows_of {rows_of!r} is not one of the arms: {', '.join(a.name for a in arms)}")
    return arms


# ---------------------------------------------------------------------------------------------
# Data


def load_rows(data: Path, task: str, cfg: Mapping, progress: bool, say) -> dict:
    """Every split, sampled to the budget; the frozen encoder's vectors for the rows that
    retrieval needs (English train, each target's unlabeled rows)."""
    from xite.data.readers import label_set, read_corpus
    from xite.encoders.cache import EmbeddingCache
    from xite.experiments.data import sample_rows

    exp, budget = cfg["experiment"], cfg["budget"]
    root = Path(data) / task
    src_lang, seed = exp.get("source_language", "en"), int(budget.get("sample_seed", 13))
    if not root.is_dir():
        raise XiteError(f"{root}: no such task directory (expected DATA/<task>/<lang>/*.jsonl)")

    def path(lang: str, split: str) -> Path:
        p = root / lang / f"{split}.jsonl"
        if not p.is_file():
            raise XiteError(f"{p}: missing (the experiment needs {src_lang} train/dev/test and <lang> unlabeled/dev/test)")
        return p

    enc = plugins.create("encoders", exp["encoder"], dict(exp.get("encoder_options", {})))
    cache = EmbeddingCache(enc.cache_key)
    train = read_corpus(path(src_lang, "train"), labeled=True)
    names = label_set(train.labels)

    def rows(corpus, labeled: bool, n: int, lang: str, encode: bool = False) -> Rows:
        c = sample_rows(corpus, n, seed)
        x = stages.encode(enc, cache, c, lang, progress=progress).x if encode else None
        return Rows(c.texts if not c.is_pair else c.pairs, c.encode_labels(names) if labeled else None, c.digest, x)

    say(f"loading {task}: English sample {budget['english_rows']}, {budget['target_rows']} target rows per language")
    out = {
        "label_names": names, "pairs": train.is_pair, "source_language": src_lang,
        "train": rows(train, True, int(budget["english_rows"]), src_lang, encode=True),
        "dev": rows(read_corpus(path(src_lang, "dev"), labeled=True), True, int(budget["dev_rows"]), src_lang),
        "test": rows(read_corpus(path(src_lang, "test"), labeled=True), True, int(budget["en_test_rows"]), src_lang),
        "targets": {},
        "encoder": {"name": enc.name, "version": enc.version, "spec": exp["encoder"]},
    }
    for lang in exp["languages"]:
        out["targets"][lang] = {
            "unlabeled": rows(read_corpus(path(lang, "unlabeled"), labeled=False), False, int(budget["target_rows"]), lang, encode=True),
            "dev": rows(read_corpus(path(lang, "dev"), labeled=True), True, 0, lang),
            "test": rows(read_corpus(path(lang, "test"), labeled=True), True, int(budget["test_rows"]), lang),
        }
    return out


# ---------------------------------------------------------------------------------------------
# Cells


def _labeled(rows: Rows, names: list[str]):
    from xite.finetuning.loop import LabeledRows

    texts, pairs = (None, rows.rows) if isinstance(rows.rows, tuple) else (list(rows.rows), None)
    return LabeledRows(texts, pairs, rows.labels, names, rows.digest)


def _joined(a: Rows, b: Rows, labels_b: np.ndarray) -> Rows:
    if isinstance(a.rows, tuple):
        joined = (list(a.rows[0]) + list(b.rows[0]), list(a.rows[1]) + list(b.rows[1]))
    else:
        joined = list(a.rows) + list(b.rows)
    return Rows(joined, np.concatenate([a.labels, labels_b]).astype(np.int64), f"{a.digest}+{b.digest}")


def _options(cfg: Mapping, seed: int, **extra):
    from xite.finetuning.loop import FinetuneOptions

    values = {**cfg.get("finetune", {}), "encoder": cfg["experiment"]["encoder"], "seed": int(seed),
              "max_steps": int(cfg["budget"]["steps"]), "eval_every_epoch": True, **extra}
    return FinetuneOptions.from_dict(values)


def _xite(data: dict, lang: str, arm: Arm):
    """The arm's XITE rows for one language: pairs from the frozen encoder's vectors (the encoder
    as loaded) through the stages, the projection through the arm's projector."""
    from xite.finetuning.loop import XiteSource
    from xite.finetuning.run import find_pairs, projection_fitter
    from xite.pipeline import create_components

    rec = arm.recipe
    parts = create_components(rec)
    unl = data["targets"][lang]["unlabeled"]
    pairs = find_pairs(parts, rec, data["train"].x, unl.x, data["train"].labels, len(data["label_names"]))
    return XiteSource(unl.rows, [lang] * len(unl), lambda _embed: pairs, projection_fitter(parts["projector"], rec),
                      source_language=rec.source_language, digest=unl.digest), len(pairs)


def _score(model, data: dict, langs: list[str]) -> dict:
    from xite.evaluation import metrics

    names = data["label_names"]
    out = {"test": {}}
    for lang in langs:
        t = data["targets"][lang]["test"]
        m = metrics(t.labels, model.predict(t.rows), names)
        out["test"][lang] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "confusion": m["confusion"]}
    en = data["test"]
    out["en_test"] = float((model.predict(en.rows) == en.labels).mean())
    out["en_dev"] = model.training.get("dev_accuracy")
    out["en_dev_before"] = model.training.get("dev_accuracy_before")
    return out


class EncoderGrid:
    """Runs and resumes the cells; keeps the zero-shot model of each seed on disk (self-training
    and adapt start from it) and removes every other model once it is scored."""

    def __init__(self, data: dict, cfg: dict, arms: list[Arm], out: Path, task: str, progress: bool, say):
        self.data, self.cfg, self.arms, self.out, self.task = data, cfg, arms, out, task
        self.progress, self.say = progress, say
        self.models = out / "models"
        self.done = read_cells(out / CELLS)
        # Seconds that the cell being run spent in earlier sessions (a training resumed from its
        # checkpoint): added to the cell's time so that it states the whole cost.
        self.earlier_seconds = 0.0

    def grid(self) -> list[tuple[str, str | None, int]]:
        langs = self.cfg["experiment"]["languages"]
        # The comparison the grid exists for comes first: zero-shot and the XITE arms, seed by
        # seed, then the other baselines. A grid stopped part-way has compared XITE with
        # zero-shot in every language over as many seeds as it could.
        seeds = self.cfg["experiment"]["seeds"]
        cells = []
        for seed in seeds:
            cells.append(("zero-shot-ft", None, seed))
            cells += [(a.name, lang, seed) for lang in langs for a in self.arms]
        for seed in seeds:
            cells += [(arm, lang, seed) for lang in langs for arm in ("self-training", "adapt", "upper-bound")]
        return cells

    def material(self, arm: str, lang: str | None, seed: int) -> dict:
        d = self.data
        by_name = {a.name: a for a in self.arms}
        rows_arm = by_name[self.cfg["adapt"]["rows_of"]] if arm == "adapt" else by_name.get(arm)
        return {
            "level": "encoder", "task": self.task, "arm": arm, "language": lang, "seed": seed, "encoder": d["encoder"],
            "budget": self.cfg["budget"], "finetune": self.cfg.get("finetune", {}),
            "recipe": rows_arm.recipe.to_dict() if rows_arm is not None else None,
            "resolved": _resolved(rows_arm.recipe) if rows_arm is not None else None,
            "adapt": self.cfg.get("adapt") if arm == "adapt" else None,
            "data": {"train": d["train"].digest, "dev": d["dev"].digest, "test": d["test"].digest,
                     **{f"{L}/{s}": r.digest for L, t in d["targets"].items() for s, r in t.items()}},
            "scored_languages": self.cfg["experiment"]["languages"] if lang is None else [lang],
        }

    def run(self, compute: bool = True) -> list[dict]:
        """Every cell of the grid, computed or reused; with ``compute=False`` only the finished
        ones (a summary of a grid stopped part-way)."""
        from xite.progress import grid_progress

        cells = []
        grid = self.grid()
        with grid_progress(self.progress, len(grid), "encoder grid") as advance:
            for arm, lang, seed in grid:
                key = cell_key(self.material(arm, lang, seed))
                if key in self.done:
                    cells.append({**self.done[key], "reused": True})
                    advance(f"{arm} {lang or 'all'} seed {seed} (cached)")
                    continue
                if not compute:
                    advance(f"{arm} {lang or 'all'} seed {seed} (not run)")
                    continue
                t, self.earlier_seconds = time.perf_counter(), 0.0
                cell = self.cell(arm, lang, seed)
                seconds = time.perf_counter() - t + self.earlier_seconds
                cell.update(key=key, method=arm, language=lang, seed=seed, seconds=round(seconds, 2))
                if self.earlier_seconds:
                    cell["seconds_before_resume"] = round(self.earlier_seconds, 2)
                append_cell(self.out / CELLS, cell)
                self.done[key] = cell
                cells.append(cell)
                advance(f"{arm} {lang or 'all'} seed {seed} ({cell['seconds']:.0f} s)")
                # A line per cell in logs too (the bar shows nothing when stderr is not a terminal).
                self.say(f"cell {len(cells)}/{len(grid)}: {arm} {lang or 'all'} seed {seed}: {cell['seconds']:.0f} s")
        return cells

    def train(self, *args, **kw):
        """``train_encoder`` for the cell being run, counting the seconds a resumed training spent
        before its resume."""
        from xite.finetuning.loop import train_encoder

        model = train_encoder(*args, resume=True, progress=self.progress, **kw)
        self.earlier_seconds += model.training["seconds_before_resume"]
        return model

    def zero_shot_dir(self, seed: int) -> Path:
        """The zero-shot model of this seed, trained again when it is not on disk (deterministic)."""
        path = self.models / f"zero-shot-ft-seed{seed}"
        if not (path / "config.json").is_file():
            d = self.data
            self.train(_labeled(d["train"], d["label_names"]), _labeled(d["dev"], d["label_names"]), None,
                       _options(self.cfg, seed), path)
        return path

    def cell(self, arm: str, lang: str | None, seed: int) -> dict:
        from xite.finetuning.modeldir import load_finetuned

        d, names = self.data, self.data["label_names"]
        english, dev = _labeled(d["train"], names), _labeled(d["dev"], names)
        if arm == "zero-shot-ft":
            model = load_finetuned(self.zero_shot_dir(seed))
            return {"models": {"scores": _score(model, d, self.cfg["experiment"]["languages"])}, "xite_rows": 0}
        path = self.models / f"{arm}-{lang}-seed{seed}"
        extra: dict[str, Any] = {}
        xite, init, n_xite = None, None, 0
        if arm == "self-training":
            zs = load_finetuned(self.zero_shot_dir(seed))
            unl = d["targets"][lang]["unlabeled"]
            english = _labeled(_joined(d["train"], unl, zs.predict(unl.rows)), names)
        elif arm == "upper-bound":
            english = _labeled(_joined(d["train"], d["targets"][lang]["dev"], d["targets"][lang]["dev"].labels), names)
        elif arm == "adapt":
            init = self.zero_shot_dir(seed)
            rows_arm = next(a for a in self.arms if a.name == self.cfg["adapt"]["rows_of"])
            xite, n_xite = _xite(d, lang, rows_arm)
            extra = {"schedule": "adapt", "replay": float(self.cfg["adapt"].get("replay", 0.25))}
        else:
            xite, n_xite = _xite(d, lang, next(a for a in self.arms if a.name == arm))
        # Only the zero-shot models are kept on disk (self-training and adapt start from them).
        model = self.train(english, dev, xite, _options(self.cfg, seed, **extra), path, init=init, save=False)
        scores = _score(model, d, [lang])
        return {"models": {"scores": scores}, "xite_rows": n_xite, "training_rows": len(english)}


def _resolved(rec: Recipe) -> dict:
    return {kind: plugins.create(kind + "s", rec.spec(kind).name, rec.spec(kind).options).config()
            for kind in ("adopter", "projector", "interpolator")}


# ---------------------------------------------------------------------------------------------
# Summary


def summarise_encoder(task: str, cfg: dict, arms: list[Arm], data: dict, cells: list[dict]) -> dict:
    from xite.experiments.summary import _mean_std

    langs = cfg["experiment"]["languages"]
    methods = ["zero-shot-ft"] + [a.name for a in arms] + ["self-training", "adapt", "upper-bound"]
    labels = {a.name: a.label for a in arms}
    table = {}
    for m in methods:
        per_lang = {}
        for lang in langs:
            mine = [c for c in cells if c["method"] == m and (c.get("language") in (lang, None))]
            scores = [c["models"]["scores"] for c in mine if lang in c["models"]["scores"]["test"]]
            per_lang[lang] = {
                "test_accuracy": _mean_std([s["test"][lang]["accuracy"] for s in scores]),
                "test_macro_f1": _mean_std([s["test"][lang]["macro_f1"] for s in scores]),
                "en_test_accuracy": _mean_std([s["en_test"] for s in scores]),
                "seconds": _mean_std([c["seconds"] for c in mine if lang in c["models"]["scores"]["test"]]),
            }
        table[m] = {"label": labels.get(m, m), "languages": per_lang}
    zs = table["zero-shot-ft"]["languages"]
    comparison = {}
    for a in arms:
        per = {}
        for lang in langs:
            r, z = table[a.name]["languages"][lang], zs[lang]
            if r["test_accuracy"]["mean"] is None or z["test_accuracy"]["mean"] is None:
                continue
            per[lang] = {"delta_accuracy": r["test_accuracy"]["mean"] - z["test_accuracy"]["mean"],
                         "delta_macro_f1": r["test_macro_f1"]["mean"] - z["test_macro_f1"]["mean"],
                         "delta_en_accuracy": r["en_test_accuracy"]["mean"] - z["en_test_accuracy"]["mean"]}
        comparison[a.name] = {"per_language": per, "cells_above_zero_shot": int(sum(v["delta_accuracy"] > 0 for v in per.values())),
                              "cells": len(per)}
    return {"level": "encoder", "task": task, "label_names": data["label_names"], "encoder": data["encoder"], "languages": langs,
            "seeds": cfg["experiment"]["seeds"], "config": cfg, "budget": cfg["budget"], "methods": table,
            "vs_zero_shot": comparison, "cells": len(cells)}


def _fmt(ms: dict) -> str:
    if not ms or ms.get("mean") is None:
        return "–"
    return f"{ms['mean'] * 100:.1f} ± {ms['std'] * 100:.1f} (n={ms['n']})"


def render_encoder_markdown(res: dict) -> str:
    langs, b = res["languages"], res["budget"]
    ft = res["config"].get("finetune", {})
    lines = [f"# xite experiment, encoder level: {res['task']} (en → {', '.join(langs)})", "",
             f"Encoder {res['encoder']['name']}@{res['encoder']['version']} fine-tuned; seeds {res['seeds']}. Budget: "
             f"{b['english_rows']} English rows, {b['target_rows']} target rows per language, {b['steps']} optimizer steps per arm "
             f"(batch {ft.get('batch_size')}, max length {ft.get('max_length')}), test on {b['test_rows']} rows per language and "
             f"{b['en_test_rows']} English rows; English dev ({b['dev_rows']} rows) selects the checkpoint. "
             "Numbers are percentages, mean ± std over seeds.", "",
             "| arm | " + " | ".join(f"{L} acc | {L} F1" for L in langs) + " | en test acc | s/cell |",
             "|---|" + "---|---|" * len(langs) + "---|---|"]
    for m, row in res["methods"].items():
        cells = " | ".join(f"{_fmt(row['languages'][L]['test_accuracy'])} | {_fmt(row['languages'][L]['test_macro_f1'])}" for L in langs)
        en = [row["languages"][L]["en_test_accuracy"]["mean"] for L in langs if row["languages"][L]["en_test_accuracy"]["mean"] is not None]
        sec = [row["languages"][L]["seconds"]["mean"] for L in langs if row["languages"][L]["seconds"]["mean"] is not None]
        lines.append(f"| {row['label']} | {cells} | {np.mean(en) * 100:.1f} | {np.mean(sec):.0f} |" if en else f"| {row['label']} | {cells} | – | – |")
    lines += ["", "## XITE arms − zero-shot fine-tuning (test accuracy, points)", "",
              "| arm | " + " | ".join(langs) + " | above zero-shot | max English drop |", "|---|" + "---|" * len(langs) + "---|---|"]
    for name, comp in res["vs_zero_shot"].items():
        per = comp["per_language"]
        deltas = " | ".join(f"{per[L]['delta_accuracy'] * 100:+.1f}" if L in per else "–" for L in langs)
        drop = max([-v["delta_en_accuracy"] * 100 for v in per.values()], default=float("nan"))
        lines.append(f"| {res['methods'][name]['label']} | {deltas} | {comp['cells_above_zero_shot']} of {comp['cells']} | {drop:.2f} |")
    t = res.get("timing_s", {})
    lines += ["", f"Cells: {t.get('cells_computed', 0) + t.get('cells_reused', 0)} of {t.get('cells_in_grid', '?')} in the grid "
              f"({t.get('cells_computed', '?')} computed by this run, {t.get('cells_reused', '?')} reused from cells.jsonl); "
              f"the cells took {t.get('cell_seconds', '?')} s of training and scoring; this run's wall time {t.get('total', '?')} s.", ""]
    return "\n".join(lines)


def encoder_experiment(data: str | Path, task: str, *, config: str | Path | Mapping | None = None, out: str | Path | None = None,
                       languages: list[str] | None = None, seeds: list[int] | None = None, progress: bool = True,
                       log: Callable[[str], None] | None = None, compute: bool = True) -> dict:
    """Run the encoder-level grid; write results.json and results.md to ``out``. With
    ``compute=False`` nothing is trained: the results summarise the cells already finished."""
    from xite.data.writers import atomic_write_text
    from xite.experiments.config import load_config_over
    import json

    say = log or (lambda _m: None)
    started = time.perf_counter()
    cfg = load_config_over(default_encoder_config(), config)
    if languages:
        cfg["experiment"]["languages"] = list(languages)
    if seeds:
        cfg["experiment"]["seeds"] = [int(s) for s in seeds]
    arms = arms_of(cfg)
    out = Path(out) if out is not None else Path(f"xite-experiment-{task}-encoder")
    data_ = load_rows(Path(data), task, cfg, progress, say)
    out.mkdir(parents=True, exist_ok=True)
    grid = EncoderGrid(data_, cfg, arms, out, task, progress, say)
    cells = grid.run(compute=compute)
    reused = sum(1 for c in cells if c.pop("reused", False))
    res = summarise_encoder(task, cfg, arms, data_, cells)
    res["timing_s"] = {"total": round(time.perf_counter() - started, 1), "cells_computed": len(cells) - reused, "cells_reused": reused,
                       "cells_in_grid": len(grid.grid()), "cell_seconds": round(sum(c["seconds"] for c in cells), 1)}
    atomic_write_text(out / "results.json", json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(out / "results.md", render_encoder_markdown(res))
    from xite.experiments import _report

    _report(out, say)
    return res
