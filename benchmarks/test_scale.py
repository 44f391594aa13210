"""The scale curve of ``augment``: target rows x English rows x executor x faiss index.

    .venv/bin/python -m pytest benchmarks/test_scale.py -s          # the cells up to 100k rows
    XITE_SCALE_FULL=1 .venv/bin/python -m pytest benchmarks/test_scale.py -s   # and the 1M-row cells
    .venv/bin/python benchmarks/test_scale.py local:10000:10000:flat ray:1000000:10000:ivf   # chosen cells

Corpora are random word texts (6 words from a 20k-word vocabulary), generated once per size under
``$XITE_SCALE_DIR`` (default .benchmarks/scale). Every cell runs ``xite.augment`` with the model-free
``hashing`` encoder at d = 384 in a fresh subprocess with an empty embedding cache of its own, so
each figure includes encoding; the process tree's memory is sampled every 0.2 s (psutil), because
Ray's workers are separate processes. Reported per cell: wall seconds, target rows per second, the
retrieval seconds from the run's manifest (local executor), and peak memory as PSS (proportional
set size: a page shared by k processes counts 1/k in each, so the tree's sum counts Ray's shared
object store once): of the driver, and summed over the driver and every process it started.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCALE_DIR = Path(os.environ.get("XITE_SCALE_DIR", REPO / ".benchmarks" / "scale"))
FULL = os.environ.get("XITE_SCALE_FULL") == "1"
DIM = 384
WORDS, WORDS_PER_TEXT = 20_000, 6

TARGET_SIZES = (10_000, 100_000, 1_000_000)
SOURCE_SIZES = (10_000, 100_000)
RESULTS: list[dict] = []

CELL_SCRIPT = r"""
import json, sys, time
import xite
spec = json.loads(sys.argv[1])
start = time.perf_counter()
r = xite.augment(spec["source"], {"xx": spec["target"]}, encoder="hashing", encoder_options={"dim": %d},
                 retriever="faiss", retriever_options={"index": spec["index"]}, projector="lda",
                 out=spec["out"], progress=False, executor=spec["executor"], log=lambda m: print(m, file=sys.stderr))
print(json.dumps({"wall_s": time.perf_counter() - start, "timings": r.manifest["timings_s"],
                  "synthetic": r.manifest["counts"]["synthetic"]}))
""" % DIM


def corpus(kind: str, rows: int) -> Path:
    """A JSONL corpus of ``rows`` random word texts (labeled when kind is 'en'), made once."""
    path = SCALE_DIR / f"{kind}-{rows}.jsonl"
    if path.exists():
        return path
    SCALE_DIR.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(rows + (0 if kind == "en" else 1))
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab_rng = np.random.default_rng(0)
    vocab = ["".join(vocab_rng.choice(letters, size=n)) for n in vocab_rng.integers(3, 9, WORDS)]
    picks = rng.integers(0, WORDS, size=(rows, WORDS_PER_TEXT))
    labels = rng.integers(0, 2, rows)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for i in range(rows):
            row = {"text": " ".join(vocab[j] for j in picks[i])}
            if kind == "en":
                row["label"] = ("negative", "positive")[labels[i]]
            fh.write(json.dumps(row) + "\n")
    os.replace(tmp, path)
    return path


def run_cell(executor: str, n_target: int, n_source: int, index: str) -> dict:
    """One augment in a fresh process (fresh cache); wall time and peak memory of its process tree."""
    import psutil

    src, tgt = corpus("en", n_source), corpus("xx", n_target)
    work = Path(tempfile.mkdtemp(prefix="xite-scale-"))
    env = dict(os.environ, XITE_HOME=str(work / "home"), XITE_LOAD_PLUGINS="xite-hashing", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    spec = {"source": str(src), "target": str(tgt), "index": index, "executor": executor, "out": str(work / "run")}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CELL_SCRIPT, json.dumps(spec)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    driver = psutil.Process(proc.pid)
    peak_tree = peak_driver = peak_driver_rss = 0
    try:
        while proc.poll() is None:
            try:
                tree = [driver] + driver.children(recursive=True)
                pss = []
                for p in tree:
                    try:
                        pss.append(p.memory_full_info().pss)
                        if p is driver:
                            peak_driver_rss = max(peak_driver_rss, p.memory_info().rss)
                    except psutil.Error:
                        pass  # a worker that just exited
                peak_tree = max(peak_tree, sum(pss))
                peak_driver = max(peak_driver, pss[0] if pss else 0)
            except psutil.Error:
                pass
            time.sleep(0.3)
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"cell {executor} {n_target}x{n_source} {index} failed:\n{err[-3000:]}")
    report = json.loads(out.strip().splitlines()[-1])
    timings = report["timings"]
    cell = {
        "executor": executor, "target_rows": n_target, "source_rows": n_source, "index": index,
        "wall_s": round(time.perf_counter() - started, 1), "rows_per_s": round(n_target / (time.perf_counter() - started)),
        "retrieve_s": timings.get("retrieve"), "peak_driver_gib": round(peak_driver / 2**30, 2),
        "peak_driver_rss_gib": round(peak_driver_rss / 2**30, 2), "peak_tree_gib": round(peak_tree / 2**30, 2), "advice": "advice:" in err,
    }
    RESULTS.append(cell)
    with open(SCALE_DIR / "results.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(cell) + "\n")
    return cell


def table(cells: list[dict]) -> str:
    lines = ["| executor | target rows | English rows | index | wall s | target rows/s | retrieve s | peak driver PSS GiB | peak tree PSS GiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        lines.append(f"| {c['executor']} | {c['target_rows']:,} | {c['source_rows']:,} | {c['index']} | {c['wall_s']} | "
                     f"{c['rows_per_s']:,} | {c['retrieve_s'] if c['retrieve_s'] is not None else '(in stream)'} | "
                     f"{c['peak_driver_gib']} | {c['peak_tree_gib']} |")
    return "\n".join(lines)


def _cells():
    for executor in ("local", "ray"):
        for n_target in TARGET_SIZES:
            for n_source in SOURCE_SIZES:
                for index in ("flat", "ivf"):
                    marks = []
                    if n_target >= 1_000_000 and not FULL:
                        marks.append(pytest.mark.skip(reason="1M target rows: set XITE_SCALE_FULL=1"))
                    yield pytest.param(executor, n_target, n_source, index, marks=marks,
                                       id=f"{executor}-{n_target}x{n_source}-{index}")


@pytest.fixture(scope="module", autouse=True)
def print_table():
    yield
    if RESULTS:
        print("\n" + table(RESULTS))


@pytest.mark.parametrize("executor,n_target,n_source,index", list(_cells()))
def test_scale(executor, n_target, n_source, index):
    pytest.importorskip("psutil")
    if executor == "ray":
        pytest.importorskip("ray")
    cell = run_cell(executor, n_target, n_source, index)
    assert cell["wall_s"] > 0
    # The advice line appears exactly where the measured rule says IVF wins.
    from xite.pipeline import FLAT_ADVICE_PAIRS, IVF_QUERIES_PER_SQRT_SOURCE

    wins = n_source * n_target >= FLAT_ADVICE_PAIRS and n_target > IVF_QUERIES_PER_SQRT_SOURCE * n_source ** 0.5
    assert cell["advice"] == (index == "flat" and wins)


if __name__ == "__main__":
    done = []
    for arg in sys.argv[1:]:
        executor, n_target, n_source, index = arg.split(":")
        done.append(run_cell(executor, int(n_target), int(n_source), index))
        print(json.dumps(done[-1]), flush=True)
    print(table(done))
