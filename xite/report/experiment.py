"""The report page of an experiment directory (``results.json`` of ``xite experiment``).

Methods are read generically from ``results["methods"]``: the baselines by name (zero-shot,
self-training, upper-bound), the recipe from ``results["recipe"]``, everything else an arm
(a XITE variant, or an encoder-level arm when ``results["level"] == "encoder"``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from xite.errors import InputError
from xite.report import figures as F
from xite.report.html import Cell, Page, esc, figure, json_block, note, pct, signed, table

BASELINE_KINDS = ("zero-shot", "self-training", "upper-bound")
REFERENCE = "zero-shot"
PANELS = [("test_accuracy", "target test accuracy"), ("test_macro_f1", "target test macro-F1"),
          ("en_test_accuracy", "English test accuracy (forgetting)")]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(text))


def check_results(results: object, where: Path) -> None:
    """The keys every page section relies on; anything else is optional."""
    if not isinstance(results, dict):
        raise InputError(where, "not an xite experiment results object")
    methods = results.get("methods")
    if not isinstance(methods, dict) or not methods:
        raise InputError(where, "missing or empty", field="methods")
    for name, row in methods.items():
        if not isinstance(row, dict) or not isinstance(row.get("languages"), dict):
            raise InputError(where, f"method {name!r} has no per-language results", field="languages")


def languages_of(results: dict) -> list[str]:
    langs = results.get("languages")
    if isinstance(langs, list) and langs:
        return [str(lang) for lang in langs]
    seen: list[str] = []
    for row in results["methods"].values():
        seen += [lang for lang in row["languages"] if lang not in seen]
    return seen


def _entry(row: dict, lang: str, key: str) -> dict | None:
    value = row["languages"].get(lang, {}).get(key)
    return value if isinstance(value, dict) else None


def _mean(row: dict, lang: str, key: str) -> float | None:
    e = _entry(row, lang, key)
    return None if e is None else e.get("mean")


def _kind(name: str, recipe: str | None) -> str:
    if name == recipe:
        return "recipe"
    return name if name in BASELINE_KINDS else "arm"


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def build(path: Path, results: dict) -> str:
    check_results(results, path / "results.json")
    methods: dict = results["methods"]
    langs = languages_of(results)
    recipe = (results.get("recipe") or {}).get("name")
    level = results.get("level", "head")
    reference = REFERENCE if REFERENCE in methods else next(iter(methods))
    enc = results.get("encoder") or {}
    cfg = results.get("config") or {}
    head = (cfg.get("head") or {}).get("type")

    title = f"xite experiment: {results.get('task', path.name)}"
    meta = [
        f"directory <code>{esc(path)}</code>; target languages {esc(', '.join(langs))}; seeds {esc(results.get('seeds', '?'))}; "
        f"{esc(results.get('cells', '?'))} cells",
        f"encoder {esc(enc.get('name', '?'))}@{esc(enc.get('version', '?'))}"
        + (f" ({esc(enc.get('spec'))})" if enc.get("spec") and enc.get("spec") != enc.get("name") else "")
        + ("; encoder level: arms fine-tune the encoder" if level == "encoder" else "; frozen encoder")
        + (f", {esc(head)} head" if head else ""),
        "Numbers are percentages, mean ± std over seeds (error bars: the std). Early stopping and model selection use English dev only.",
    ]
    if recipe:
        meta.append(f"Fixed recipe: <b>{esc(recipe)}</b> ({esc((results.get('recipe') or {}).get('chosen_by', ''))}).")
    page = Page(title)
    _overview(page, results, methods, langs, recipe, reference)
    _per_language(page, methods, langs, recipe, reference)
    _all_model(page, methods, langs, recipe)
    _pseudo_labels(page, results, methods, langs, reference)
    _configuration(page, results)
    return page.render(meta)


def _overview(page: Page, results, methods, langs, recipe, reference) -> None:
    parts = page.section("sec-overview", "Overview")
    others = [m for m in methods if m != reference]
    cols = langs + ["en (mean)"]
    values = np.full((len(others), len(cols)), np.nan)
    for i, m in enumerate(others):
        for j, lang in enumerate(langs):
            d = _delta(_mean(methods[m], lang, "test_accuracy"), _mean(methods[reference], lang, "test_accuracy"))
            values[i, j] = np.nan if d is None else 100 * d
        en = [_delta(_mean(methods[m], lang, "en_test_accuracy"), _mean(methods[reference], lang, "en_test_accuracy")) for lang in langs]
        en = [d for d in en if d is not None]
        values[i, -1] = 100 * float(np.mean(en)) if en else np.nan
    if others:
        svg = F.delta_heatmap("fig-delta-heatmap", others, cols, values, recipe)
        parts.append(figure("fig-delta-heatmap", svg,
                            f"Target test accuracy minus {esc(reference)}'s, in points, per language (blue: better); the last column is "
                            "the English test accuracy change averaged over the per-language models (forgetting)."))
    vs = (results.get("recipe") or {}).get("vs_zero_shot")
    if recipe and isinstance(vs, dict) and vs:
        rows = []
        for lang, c in vs.items():
            rows.append([lang, Cell(_p1(c.get("zero_shot_accuracy")), "num"), Cell(_p1(c.get("recipe_accuracy")), "num"),
                         signed(c.get("delta_accuracy")), Cell(_p1(c.get("zero_shot_macro_f1")), "num"),
                         Cell(_p1(c.get("recipe_macro_f1")), "num"), signed(c.get("delta_macro_f1")),
                         signed(c.get("delta_en_accuracy"), digits=2)])
        parts.append(f"<h3>Recipe ({esc(recipe)}) vs zero-shot, test</h3>")
        parts.append(table("tab-recipe", ["language", "zero-shot acc", "recipe acc", "Δ acc", "zero-shot F1", "recipe F1", "Δ F1", "Δ en acc"], rows))
        r = results["recipe"]
        if "cells_above_zero_shot" in r:
            parts.append(f"<p>Recipe above zero-shot (test accuracy) in {esc(r['cells_above_zero_shot'])} of {len(vs)} languages; "
                         f"largest English test drop {100 * float(r.get('max_english_drop', 0.0)):.2f} points.</p>")


def _p1(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _per_language(page: Page, methods, langs, recipe, reference) -> None:
    parts = page.section("sec-languages", "Per language")
    parts.append(f"<p>One model per language (English + that language's rows). The dashed line is {esc(reference)}; "
                 "English test accuracy beside the target scores shows forgetting at a glance.</p>")
    for lang in langs:
        rows = []
        for m, row in methods.items():
            r = F.MethodRow(m, _kind(m, recipe))
            for key, _ in PANELS:
                e = _entry(row, lang, key)
                if e is not None:
                    r.values[key] = (e.get("mean"), e.get("std"))
            rows.append(r)
        fid = f"fig-accuracy-{slug(lang)}"
        parts.append(f"<h3>{esc(lang)}</h3>")
        parts.append(figure(fid, F.accuracy_panels(fid, rows, PANELS, reference),
                            f"{esc(lang)}: target test accuracy and macro-F1, and English test accuracy of the same models; "
                            "points are means over seeds, bars ± one std."))
        ref = methods[reference]
        trs, classes = [], []
        for m, row in methods.items():
            trs.append([m, Cell(pct(_entry(row, lang, "test_accuracy")), "num"), Cell(pct(_entry(row, lang, "test_macro_f1")), "num"),
                        signed(_delta(_mean(row, lang, "test_accuracy"), _mean(ref, lang, "test_accuracy"))),
                        Cell(pct(_entry(row, lang, "en_test_accuracy")), "num"),
                        signed(_delta(_mean(row, lang, "en_test_accuracy"), _mean(ref, lang, "en_test_accuracy"))),
                        Cell(pct(_entry(row, lang, "dev_accuracy")), "num")])
            classes.append("recipe" if m == recipe else "")
        parts.append(table(f"tab-accuracy-{slug(lang)}", ["method", "test acc", "test macro-F1", f"Δ acc vs {reference}", "en test acc",
                                                          "Δ en acc", "target dev acc"], trs, classes))


def _all_model(page: Page, methods, langs, recipe) -> None:
    if not any(_entry(row, lang, "all_model_test_accuracy") for row in methods.values() for lang in langs):
        return
    parts = page.section("sec-all-model", "One model for all languages")
    parts.append("<p>English + every language's rows in one model, scored on each language's test set.</p>")
    rows, classes = [], []
    for m, row in methods.items():
        cells: list = [m]
        for lang in langs:
            cells += [Cell(pct(_entry(row, lang, "all_model_test_accuracy")), "num"), Cell(pct(_entry(row, lang, "all_model_test_macro_f1")), "num")]
        cells.append(Cell(pct(row.get("all_model_en_test_accuracy")), "num"))
        rows.append(cells)
        classes.append("recipe" if m == recipe else "")
    header = ["method"] + [h for lang in langs for h in (f"{lang} acc", f"{lang} F1")] + ["en test acc"]
    parts.append(table("tab-all-model", header, rows, classes))


def _adopter_names(results: dict) -> dict[str, str]:
    """Variant name -> its label adopter with options, from the config when it has one."""
    cfg = results.get("config") or {}
    default = (cfg.get("defaults") or {}).get("adopter") or {}
    shared = cfg.get("component_options") or {}
    out = {}
    for v in cfg.get("variants") or []:
        if not isinstance(v, dict) or "name" not in v:
            continue
        a = v.get("adopter", default)
        if isinstance(a, str):
            name, opts = a, dict(shared.get(a, {}))
        elif isinstance(a, dict):
            name = a.get("name", "?")
            opts = {**shared.get(name, {}), **(a.get("options") or {})}
        else:
            continue
        detail = ", ".join(f"{k}={val}" for k, val in sorted(opts.items()))
        out[v["name"]] = f"{name}({detail})" if detail else name
    return out


def _pseudo_labels(page: Page, results, methods, langs, reference) -> None:
    parts = page.section("sec-pseudo-labels", "Pseudo-labels: precision against coverage")
    with_pl = [m for m, row in methods.items() if any(_entry(row, lang, "pseudo_label_kept_dev") for lang in langs)]
    if not with_pl:
        parts.append(note("No method in this experiment reports pseudo-label diagnostics."))
        return
    # Variants that adopt labels the same way have the same numbers: one point (and legend entry) each.
    groups: dict[tuple, list[str]] = {}
    for m in with_pl:
        sig = tuple((lang, *(None if v is None else round(v, 9) for v in (_mean(methods[m], lang, "pseudo_label_kept_dev"),
                                                                         _mean(methods[m], lang, "pseudo_label_accuracy_dev")))) for lang in langs)
        groups.setdefault(sig, []).append(m)
    adopters = _adopter_names(results)
    plotted = []
    for names in groups.values():
        row = methods[names[0]]
        pts = {}
        for lang in langs:
            k, a = _entry(row, lang, "pseudo_label_kept_dev"), _entry(row, lang, "pseudo_label_accuracy_dev")
            if k and a and k.get("mean") is not None and a.get("mean") is not None:
                pts[lang] = (k["mean"], k.get("std") or 0.0, a["mean"], a.get("std") or 0.0)
        by_adopter: dict[str, list[str]] = {}
        for n in names:
            by_adopter.setdefault(adopters.get(n, ""), []).append(n)
        label = "; ".join((f"{a}: " if a else "") + ", ".join(ns) for a, ns in by_adopter.items())
        plotted.append(F.PseudoGroup(label, pts))
    classifier = {lang: _mean(methods[reference], lang, "dev_accuracy") for lang in langs}
    parts.append(figure("fig-pseudo-labels", F.pseudo_label_tradeoff("fig-pseudo-labels", langs, plotted, classifier),
                        "Accuracy of the adopted labels on the target dev rows each adopter keeps, against the share it keeps "
                        f"(a diagnostic on target dev labels; it selects nothing). The dashed line and the point at 100% are the "
                        f"{esc(reference)} classifier's own dev accuracy. Methods that adopt labels identically share a point."))
    rows = []
    for m in with_pl:
        rows.append([m] + [Cell(f"{pct(_entry(methods[m], lang, 'pseudo_label_accuracy_dev'))} ({_kept(methods[m], lang)})", "num") for lang in langs])
    rows.append([f"{reference} classifier (dev accuracy, all rows)"] + [Cell(pct(_entry(methods[reference], lang, "dev_accuracy")), "num") for lang in langs])
    parts.append(table("tab-pseudo-labels", ["method (accuracy on kept rows, kept share)"] + langs, rows))


def _kept(row: dict, lang: str) -> str:
    k = _mean(row, lang, "pseudo_label_kept_dev")
    return "–" if k is None else f"{100 * k:.0f}%"


def _configuration(page: Page, results: dict) -> None:
    parts = page.section("sec-config", "Configuration")
    cfg = results.get("config") or {}
    exp = cfg.get("experiment") or {}
    if exp:
        parts.append(table("tab-settings", ["setting", "value"], [[k, _compact(v)] for k, v in exp.items()]))
    variants = [v for v in cfg.get("variants") or [] if isinstance(v, dict)]
    if variants:
        rows = [[v.get("name", "?"), _compact(v.get("projector", "(default)")), _compact(v.get("interpolator", "(default)")),
                 _compact(v.get("adopter", "(default)")), _compact(v.get("weight", 1.0))] for v in variants]
        parts.append(table("tab-variants", ["variant", "projector", "interpolator", "adopter", "weight"], rows))
    timing = results.get("timing_s")
    if isinstance(timing, dict):
        parts.append(table("tab-timing", ["timing", "value"], [[k, v] for k, v in timing.items()]))
    if cfg:
        parts.append(json_block(cfg, "full configuration (JSON)"))
    enc = results.get("encoder")
    if enc:
        parts.append(json_block(enc, "encoder identity (JSON)"))


def _compact(value) -> str:
    if isinstance(value, dict):
        if set(value) <= {"name", "options"} and "name" in value:
            opts = value.get("options") or {}
            return value["name"] + (f" ({', '.join(f'{k}={v}' for k, v in opts.items())})" if opts else "")
        return ", ".join(f"{k}={_compact(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_compact(v) for v in value)
    return str(value)
