"""The experiment's results: per method and language, mean ± std over seeds; the recipe against
zero-shot; results.json and results.md (written atomically)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xite.experiments.config import BASELINES, Variant

ALL = "all"


def _mean_std(values: list[float]) -> dict:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "std": None, "n": 0}
    arr = np.asarray(vals, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, "n": len(arr)}


def _collect(cells: list[dict], method: str, model: str, fn) -> dict:
    return _mean_std([fn(c["models"][model]) for c in cells if c["method"] == method and model in c["models"]])


def summarise(data, cfg: dict, variants: list[Variant], cells: list[dict]) -> dict:
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


def write_results(out: Path, results: dict) -> None:
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
