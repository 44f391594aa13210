"""Retrieval throughput: every retriever on the same clustered data, with recall against exact.

    .venv/bin/python -m pytest benchmarks/test_retrieval.py --benchmark-columns=min,mean,rounds

Sizes mirror the real task: a 20k-row English bank of 384-d unit vectors, 5k target queries, k=5.
The printed table gives each retriever's time, its speed-up over exact search measured in the
same run, and recall@5 against exact search.
"""

from __future__ import annotations

import numpy as np
import pytest

from xite.retrievers.exact import ExactRetriever
from xite.retrievers.faiss_index import FaissRetriever

M, N, D, K = 20_000, 5_000, 384, 5
RESULTS: dict[str, dict] = {}


def _clustered(rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(200, D))
    x = centres[rng.integers(0, 200, rows)] + 0.7 * rng.normal(size=(rows, D))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


BANK, QUERIES = _clustered(M, 1), _clustered(N, 2)
RETRIEVERS = {
    "exact": lambda: ExactRetriever(),
    "faiss-flat": lambda: FaissRetriever(index="flat"),
    "faiss-ivf": lambda: FaissRetriever(index="ivf"),
    "faiss-hnsw": lambda: FaissRetriever(index="hnsw"),
}
try:  # the xite-hnsw plugin (plugins/xite-hnsw), beside faiss's HNSW when it is installed
    from xite_hnsw import HNSWRetriever
except ImportError:
    HNSWRetriever = None
if HNSWRetriever is not None:
    RETRIEVERS["usearch-hnsw (defaults)"] = lambda: HNSWRetriever()
    # faiss-hnsw's parameters (M 32, efSearch 64), for a like-for-like comparison.
    RETRIEVERS["usearch-hnsw (M 32, ef 64)"] = lambda: HNSWRetriever(connectivity=32, expansion_search=64)


@pytest.mark.parametrize("name", list(RETRIEVERS))
def test_search(benchmark, name):
    retriever = RETRIEVERS[name]()
    retriever.build(BANK)
    scores, ids = benchmark.pedantic(retriever.search, args=(QUERIES, K), rounds=3, iterations=1, warmup_rounds=1)
    RESULTS[name] = {"ids": ids, "time": benchmark.stats.stats.min}
    assert ids.shape == (N, K)


def test_print_table(capsys):
    if "exact" not in RESULTS:
        pytest.skip("run the whole file")
    exact = RESULTS["exact"]
    lines = [f"retrieval: bank {M} x {D}, {N} queries, k={K}", "| retriever | min time (s) | speed-up vs exact | recall@5 |", "|---|---|---|---|"]
    for name, res in RESULTS.items():
        recall = np.mean([len(set(a) & set(b)) / K for a, b in zip(res["ids"], exact["ids"])])
        lines.append(f"| {name} | {res['time']:.3f} | {exact['time'] / res['time']:.2f}x | {recall:.3f} |")
        if name == "faiss-flat":
            assert recall == 1.0, "a flat index must agree with exact search"
    with capsys.disabled():
        print("\n" + "\n".join(lines))
