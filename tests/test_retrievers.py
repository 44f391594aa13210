"""Every retriever against brute force (numpy), with real faiss and torch, as faiss's own tests do."""

from __future__ import annotations

import numpy as np
import pytest

from xite.errors import ConfigError
from xite.retrievers.exact import ExactRetriever
from xite.retrievers.faiss_index import FaissRetriever, default_nlist


def normalised(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def random_rows(n: int, d: int, seed: int) -> np.ndarray:
    return normalised(np.random.default_rng(seed).standard_normal((n, d)))


def clustered_rows(n: int, d: int, clusters: int, seed: int, spread: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d))
    return normalised(centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, d)))


def brute_force(queries: np.ndarray, source: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Descending score, equal scores by ascending id (stable sort): the documented tie rule."""
    scores = queries @ source.T
    ids = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, source.shape[0])]
    return np.take_along_axis(scores, ids, axis=1), ids


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def built(retriever, source):
    retriever.build(source)
    return retriever


EXACT_KINDS = [lambda: ExactRetriever(), lambda: ExactRetriever(block_size=7), lambda: FaissRetriever("flat")]


@pytest.fixture(scope="module")
def small():
    return random_rows(300, 32, seed=1), random_rows(50, 32, seed=2)


@pytest.mark.parametrize("make", EXACT_KINDS, ids=["exact", "exact-blocks", "faiss-flat"])
@pytest.mark.parametrize("k", [1, 5, 300])
def test_exact_retrievers_equal_brute_force(make, k, small):
    source, queries = small
    scores, ids = built(make(), source).search(queries, k)
    want_scores, want_ids = brute_force(queries, source, k)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)


@pytest.mark.parametrize("make", EXACT_KINDS, ids=["exact", "exact-blocks", "faiss-flat"])
def test_k_larger_than_corpus_is_clamped(make):
    source, queries = random_rows(6, 8, seed=3), random_rows(4, 8, seed=4)
    scores, ids = built(make(), source).search(queries, 10)
    assert scores.shape == ids.shape == (4, 6)
    np.testing.assert_array_equal(ids, brute_force(queries, source, 10)[1])


def test_exact_and_flat_agree_on_every_id():
    source, queries = random_rows(2000, 48, seed=5), random_rows(300, 48, seed=6)
    exact_scores, exact_ids = built(ExactRetriever(block_size=64), source).search(queries, 10)
    flat_scores, flat_ids = built(FaissRetriever(), source).search(queries, 10)
    np.testing.assert_array_equal(exact_ids, flat_ids)
    np.testing.assert_allclose(exact_scores, flat_scores, atol=1e-5)


@pytest.mark.parametrize("make", EXACT_KINDS, ids=["exact", "exact-blocks", "faiss-flat"])
@pytest.mark.parametrize("n_queries", [1, 30])  # faiss switches to BLAS above 20 queries
def test_ties_rank_by_ascending_id(make, n_queries):
    base = random_rows(10, 8, seed=7)
    # Row 3 duplicated at ids 0, 4 (itself), 11..15: seven exactly equal best scores.
    source = np.concatenate([base[[3]], base, np.repeat(base[[3]], 5, axis=0)])
    queries = np.repeat(base[[3]], n_queries, axis=0)
    retriever = built(make(), source)
    _, ids3 = retriever.search(queries, 3)
    _, ids9 = retriever.search(queries, 9)
    assert (ids3 == [0, 4, 11]).all()
    assert (ids9[:, :7] == [0, 4, 11, 12, 13, 14, 15]).all()


def test_ivf_with_every_list_probed_is_exact():
    source, queries = clustered_rows(5000, 32, 20, seed=8), clustered_rows(200, 32, 20, seed=9)
    retriever = FaissRetriever("ivf", nlist=16, nprobe=16)
    scores, ids = built(retriever, source).search(queries, 10)
    want_scores, want_ids = brute_force(queries, source, 10)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    assert retriever.config()["nlist"] == 16 and retriever.config()["nprobe"] == 16


@pytest.fixture(scope="module")
def large_clustered():
    rows = clustered_rows(21000, 64, 100, seed=10)
    source, queries = rows[:20000], rows[20000:]
    return source, queries, brute_force(queries, source, 10)[1]


@pytest.mark.parametrize("index", ["ivf", "hnsw"])
def test_approximate_recall_at_10_with_defaults(index, large_clustered):
    source, queries, truth = large_clustered
    retriever = built(FaissRetriever(index), source)
    scores, ids = retriever.search(queries, 10)
    assert recall(ids, truth) >= 0.9
    assert np.all(np.diff(scores, axis=1) <= 0)
    if index == "ivf":
        assert retriever.config()["nlist"] == default_nlist(20000) == 512


def test_default_nlist_respects_training_rows():
    assert default_nlist(1) == 1
    assert default_nlist(100) == 2  # 4*sqrt(100)=40, but only 100/39 lists can be trained
    assert default_nlist(1_000_000) == 4000


def test_small_corpus_ivf():
    source = random_rows(50, 16, seed=11)
    retriever = built(FaissRetriever("ivf"), source)
    assert retriever.config()["nlist"] == 1 and retriever.config()["nprobe"] == 1
    np.testing.assert_array_equal(retriever.search(source, 1)[1][:, 0], np.arange(50))
    with pytest.raises(ConfigError, match="nlist=64"):
        FaissRetriever("ivf", nlist=64).build(source)


def test_config_reports_effective_options():
    retriever = FaissRetriever("hnsw", hnsw_m=16, ef_search=32)
    built(retriever, random_rows(100, 8, seed=12))
    config = retriever.config()
    assert config["index"] == "hnsw" and config["hnsw_m"] == 16 and config["ef_search"] == 32
    assert config["gpu_used"] is False  # faiss-cpu


def test_search_before_build():
    for retriever in (ExactRetriever(), FaissRetriever()):
        with pytest.raises(RuntimeError, match="build"):
            retriever.search(random_rows(2, 4, seed=0), 1)


@pytest.mark.parametrize("make", [ExactRetriever, FaissRetriever], ids=["exact", "faiss"])
def test_bad_inputs(make):
    retriever = built(make(), random_rows(20, 8, seed=13))
    queries = random_rows(3, 8, seed=14)
    with pytest.raises(ValueError, match="float32"):
        retriever.search(queries.astype(np.float64), 1)
    with pytest.raises(ValueError, match="2-D"):
        retriever.search(queries[0], 1)
    with pytest.raises(ValueError, match="dimension 4"):
        retriever.search(queries[:, :4].copy(), 1)
    with pytest.raises(ValueError, match="NaN"):
        retriever.search(np.full((1, 8), np.nan, np.float32), 1)
    for k in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="k must"):
            retriever.search(queries, k)
    with pytest.raises(ValueError, match="empty"):
        make().build(np.zeros((0, 8), np.float32))
    # Non-contiguous input is accepted (copied), not an error.
    strided = np.asfortranarray(queries)
    np.testing.assert_array_equal(retriever.search(strided, 2)[1], retriever.search(queries, 2)[1])
    # No queries: empty results of the right shape.
    scores, ids = retriever.search(np.zeros((0, 8), np.float32), 2)
    assert scores.shape == ids.shape == (0, 2)


def test_bad_options():
    with pytest.raises(ValueError, match="index must be"):
        FaissRetriever("ivfpq")
    with pytest.raises(ValueError, match="gpu must be"):
        FaissRetriever(gpu="maybe")
    with pytest.raises(ValueError, match="nprobe"):
        FaissRetriever("ivf", nprobe=0)
    with pytest.raises(ValueError, match="block_size"):
        ExactRetriever(block_size=0)
    with pytest.raises(ConfigError, match="no GPU HNSW"):
        FaissRetriever("hnsw", gpu="yes")


def test_gpu_yes_without_gpu_is_an_error():
    import faiss

    if faiss.get_num_gpus() > 0:
        pytest.skip("faiss sees a GPU here")
    with pytest.raises(ConfigError, match="sees no GPU"):
        FaissRetriever(gpu="yes")


def test_ivf_short_results_are_searched_again_exactly():
    """k above the rows of the probed list: faiss pads with -1; the retriever refills exactly."""
    source, queries = clustered_rows(400, 16, 10, seed=15), clustered_rows(30, 16, 10, seed=16)
    retriever = built(FaissRetriever("ivf", nlist=12, nprobe=1), source)
    scores, ids = retriever.search(queries, 100)
    assert (ids >= 0).all()
    assert retriever.config()["queries_searched_wider"] > 0
    want_scores, want_ids = brute_force(queries, source, 100)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    assert retriever.config()["nprobe"] == 1  # restored after the wider search
    assert retriever.config()["notes"]  # 12 lists for 400 rows: fewer than 39 rows per list


def test_hnsw_returns_k_neighbours_for_every_query():
    source, queries = random_rows(500, 16, seed=17), random_rows(40, 16, seed=18)
    scores, ids = built(FaissRetriever("hnsw", ef_search=4), source).search(queries, 200)
    assert (ids >= 0).all() and scores.shape == (40, 200)
    assert all(len(set(row)) == 200 for row in ids)
