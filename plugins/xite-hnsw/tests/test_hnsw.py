"""The hnsw retriever against xite's exact retriever."""

import json
from pathlib import Path

import numpy as np
import pytest

from xite import plugins
from xite.errors import ConfigError
from xite.retrievers.exact import ExactRetriever
from xite_hnsw import HNSWRetriever

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def unit_rows(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def recall_at_1(bank, queries, retriever):
    exact = ExactRetriever()
    exact.build(bank)
    retriever.build(bank)
    _, truth = exact.search(queries, 1)
    _, found = retriever.search(queries, 1)
    return float((found[:, 0] == truth[:, 0]).mean())


def test_recall_on_random_vectors_at_default_parameters():
    rng = np.random.default_rng(0)
    bank, queries = unit_rows(rng, 10_000, 384), unit_rows(rng, 300, 384)
    assert recall_at_1(bank, queries, HNSWRetriever()) >= 0.99


def test_recall_on_real_sentence_embeddings():
    if not (SHARED_DATA / "sentiment").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    from xite.encoders.e5_small import E5SmallEncoder

    def texts(lang, n):
        path = SHARED_DATA / "sentiment" / lang / "train.jsonl"
        if not path.exists():
            path = SHARED_DATA / "sentiment" / lang / "unlabeled.jsonl"
        with path.open(encoding="utf-8") as f:
            return [json.loads(line)["text"] for _, line in zip(range(n), f)]

    enc = E5SmallEncoder()
    bank, queries = enc.encode(texts("en", 400), progress=False), enc.encode(texts("ko", 200), progress=False)
    assert recall_at_1(bank, queries, HNSWRetriever()) >= 0.99


def test_same_format_and_tie_rule_as_exact():
    rng = np.random.default_rng(1)
    bank = unit_rows(rng, 50, 16)
    bank[7] = bank[3]  # a tie: equal scores rank by ascending id
    queries = np.concatenate([bank[3:4], unit_rows(rng, 9, 16)])
    exact, hnsw = ExactRetriever(), HNSWRetriever()
    exact.build(bank)
    hnsw.build(bank)
    s_exact, i_exact = exact.search(queries, 5)
    s_hnsw, i_hnsw = hnsw.search(queries, 5)
    assert s_hnsw.dtype == np.float32 and i_hnsw.dtype == np.int64
    np.testing.assert_array_equal(i_hnsw, i_exact)
    np.testing.assert_allclose(s_hnsw, s_exact, atol=1e-6)
    assert list(i_hnsw[0, :2]) == [3, 7]
    # k beyond the corpus is clamped to its size, every id valid.
    scores, ids = hnsw.search(queries, 500)
    assert ids.shape == (10, 50) and ids.min() >= 0


def test_single_threaded_build_is_reproducible():
    rng = np.random.default_rng(2)
    bank, queries = unit_rows(rng, 2000, 32), unit_rows(rng, 100, 32)
    runs = []
    for _ in range(2):
        r = HNSWRetriever(expansion_search=16)
        r.build(bank)
        runs.append(r.search(queries, 5)[1])
    np.testing.assert_array_equal(runs[0], runs[1])


def test_bad_options_and_inputs_are_clear_errors():
    with pytest.raises(ConfigError, match="connectivity must be an integer >= 2"):
        HNSWRetriever(connectivity=1)
    with pytest.raises(ConfigError, match="dtype must be one of"):
        HNSWRetriever(dtype="f8")
    with pytest.raises(RuntimeError, match="call build"):
        HNSWRetriever().search(np.zeros((1, 4), np.float32), 1)
    r = HNSWRetriever()
    r.build(np.eye(4, dtype=np.float32))
    with pytest.raises(ValueError, match="dimension 3"):
        r.search(np.zeros((1, 3), np.float32), 1)


def test_registered_through_its_entry_point(monkeypatch):
    monkeypatch.setenv("XITE_LOAD_PLUGINS", "xite-hnsw")
    plugins.reset()
    try:
        r = plugins.create("retriever", "hnsw", {"expansion_search": "32", "dtype": "f16"})
        assert isinstance(r, HNSWRetriever) and r.expansion_search == 32 and r.dtype == "f16"
        with pytest.raises(ConfigError, match="retriever 'hnsw': option build_threads must be an int, got true"):
            plugins.create("retriever", "hnsw", {"build_threads": True})
    finally:
        plugins.reset()
