"""``experiment``: the protocol that measures XITE on a benchmark directory.

For one task (``DATA/<task>/<lang>/{train,dev,test,unlabeled}.jsonl``), over several seeds:
- zero-shot: a head trained on English only;
- XITE variants (projector x interpolator x label adoption, from the config);
- self-training: target rows pseudo-labelled by the zero-shot model;
- upper bound: English + the target dev labels (a ceiling to read against, not a method);
each scored on every target test set (accuracy, macro-F1) and on English test (forgetting).

The package: ``config`` (the grid's TOML), ``data`` (every corpus encoded once), ``grid`` (the
cells, composed from :mod:`xite.stages`), ``resume`` (cells.jsonl and the cell key), ``summary``
(results.json / results.md).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Mapping

from xite.errors import ConfigError
from xite.experiments.config import BASELINES, Variant, default_config, load_config, variants_of
from xite.experiments.data import TaskData, load_task, sample_rows
from xite.experiments.resume import CELLS
from xite.experiments.summary import ALL, render_markdown, summarise, write_results

__all__ = ["experiment", "load_config", "default_config", "variants_of", "summarise", "render_markdown",
           "load_task", "sample_rows", "TaskData", "Variant", "BASELINES", "ALL", "CELLS"]


def experiment(
    data: str | Path,
    task: str,
    *,
    config: str | Path | Mapping | None = None,
    out: str | Path | None = None,
    languages: list[str] | None = None,
    seeds: list[int] | None = None,
    level: str = "head",
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    compute: bool = True,
) -> dict:
    """Run the grid for ``task`` on ``data``; write ``results.json`` and ``results.md`` to ``out``.

    ``level`` "head" trains heads on the frozen encoder; "encoder" fine-tunes the encoder itself
    (:mod:`xite.experiments.encoder_level`). Returns the results dict (the content of
    results.json). Cells already in ``out/cells.jsonl`` with the same settings are reused, so
    rerunning an interrupted experiment continues it.
    """
    from xite.experiments.grid import prepare, run_grid

    if level == "encoder":
        from xite.experiments.encoder_level import encoder_experiment

        return encoder_experiment(data, task, config=config, out=out, languages=languages, seeds=seeds, progress=progress, log=log,
                                  compute=compute)
    if level != "head":
        raise ConfigError(f"level must be 'head' or 'encoder', got {level!r}")
    if not compute:
        raise ConfigError("summarising finished cells only (compute=False) is for --level encoder; the head grid is fast to rerun")

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
    check_settings(cfg, out, [data, config if isinstance(config, (str, Path)) else None])

    t0 = time.perf_counter()
    # Everything that can fail on the user's input runs before the output folder exists.
    data_ = load_task(Path(data), task, langs, cfg, progress, say)
    encode_s = time.perf_counter() - t0
    shared = prepare(data_, cfg, langs, variants, say)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with torch_threads(int(cfg["experiment"].get("train_threads", 1))):
            cells = run_grid(shared, cfg, variants, out, progress)
    except BaseException:
        if created:
            _remove_if_nothing_done(out)
        raise
    results = summarise(data_, cfg, variants, cells)
    reused = sum(1 for c in cells if c.get("reused"))
    for c in cells:
        c.pop("reused", None)
    results["timing_s"] = {"encode_and_load": round(encode_s, 2), "total": round(time.perf_counter() - started, 2),
                           "cells_computed": len(cells) - reused, "cells_reused": reused}
    write_results(out, results)
    _report(out, say)
    return results


def _report(out: Path, say) -> None:
    """The HTML report next to results.md (plots before tables)."""
    from xite.report import write_report

    say(f"report: {write_report(out)}")


def check_settings(cfg: Mapping, out: Path, inputs: list) -> None:
    """The settings every level shares, checked before anything is read or written."""
    from xite.checks import check_batch_size, check_language, check_output_not_input

    exp = cfg["experiment"]
    languages = exp.get("languages")
    if not isinstance(languages, list) or not languages:
        raise ConfigError(f"experiment.languages must be a non-empty list of language codes, got {languages!r}")
    for lang in languages:
        check_language(lang, "experiment.languages")
    if len(set(languages)) != len(languages):
        raise ConfigError(f"experiment.languages lists a language twice: {languages}")
    check_language(exp.get("source_language", "en"), "experiment.source_language")
    check_batch_size(exp.get("batch_size", 64), "experiment.batch_size")
    check_output_not_input(out, inputs)


def _remove_if_nothing_done(out: Path) -> None:
    """A run that failed before finishing one cell leaves no folder behind; one that finished
    cells keeps them (cells.jsonl) so that a rerun resumes."""
    cells = out / CELLS
    if cells.is_file() and cells.stat().st_size == 0:
        cells.unlink()
    try:
        out.rmdir()
    except OSError:
        pass  # not empty: finished cells (or the user's files) stay


class torch_threads:
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
