"""The ``hnsw`` retriever: approximate top-k by inner product with a USearch HNSW graph.

Scores are recomputed exactly (float32 dot products) for the neighbours the graph finds, and
rows are ordered like xite's ``exact`` retriever (descending score, ties by ascending id), so when
the graph finds the true neighbours the result is the exact one, id for id.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pluggy

from xite.errors import ConfigError
from xite.retrievers.base import Retriever, check_k, check_query, check_source, sort_ties_by_id

hookimpl = pluggy.HookimplMarker("xite")

EXTRA_CANDIDATES = 8


def _check_count(option: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{option} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class HNSWRetriever(Retriever):
    """Approximate top-k by inner product with a USearch HNSW graph.

    The defaults favour recall: they find the true nearest neighbour of 99% or more of random
    queries among 10,000 random 384-d unit vectors, a worst case; sentence embeddings, which
    cluster, need far less expansion_search.

    Options:
        connectivity: links per node (HNSW's M); more makes the graph bigger, slower to build and more exact
        expansion_add: candidates kept while inserting (efConstruction)
        expansion_search: candidates kept while searching (ef); raised to k when k is larger
        build_threads: threads that insert rows; 1 (the default) builds the same graph on every run, more is faster
        search_threads: threads that answer queries; 0 means all cores (results do not depend on it)
        dtype: how the graph stores vectors: f32, or f16 / bf16 / i8 to save memory (scores stay exact)
    """

    name = "hnsw"

    def __init__(
        self,
        connectivity: int = 32,
        expansion_add: int = 200,
        expansion_search: int = 512,
        build_threads: int = 1,
        search_threads: int = 0,
        dtype: Literal["f32", "f16", "bf16", "i8"] = "f32",
    ):
        self.connectivity = _check_count("connectivity", connectivity, 2)
        self.expansion_add = _check_count("expansion_add", expansion_add, 1)
        self.expansion_search = _check_count("expansion_search", expansion_search, 1)
        self.build_threads = _check_count("build_threads", build_threads, 0)
        self.search_threads = _check_count("search_threads", search_threads, 0)
        if dtype not in ("f32", "f16", "bf16", "i8"):
            raise ConfigError(f"dtype must be one of f32, f16, bf16, i8; got {dtype!r}")
        self.dtype = dtype
        self._index = None
        self._source: np.ndarray | None = None
        self._refilled = 0

    def build(self, x_source: np.ndarray) -> None:
        from usearch.index import Index

        x = check_source(x_source)
        index = Index(
            ndim=x.shape[1],
            metric="ip",
            dtype=self.dtype,
            connectivity=self.connectivity,
            expansion_add=self.expansion_add,
            expansion_search=self.expansion_search,
        )
        index.add(np.arange(x.shape[0], dtype=np.uint64), x, threads=self.build_threads)
        self._index = index
        # Kept for exact scores; a copy, so that later edits of the caller's array change nothing.
        self._source = x.copy()
        self._refilled = 0

    @property
    def _dim(self) -> int | None:
        return None if self._source is None else int(self._source.shape[1])

    def search(self, x_query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = check_query(x_query, self._dim, self.name)
        k = min(check_k(k), self._source.shape[0])
        if q.shape[0] == 0:
            return np.empty((0, k), np.float32), np.empty((0, k), np.int64)
        # A few candidates beyond k, so that a score tied at the k-th place is settled by the
        # tie rule (lowest id), as the exact retriever does, rather than by graph order.
        fetch = min(k + EXTRA_CANDIDATES, self._source.shape[0])
        self._index.expansion_search = max(self.expansion_search, fetch)
        matches = self._index.search(q, fetch, threads=self.search_threads)
        ids = np.asarray(matches.keys).reshape(q.shape[0], -1)[:, :fetch].astype(np.int64)
        counts = np.asarray(matches.counts).reshape(-1)
        short = np.flatnonzero(counts < k)
        if short.size:
            # A graph search can come back with fewer than k rows; callers index the source with
            # every id, so those queries are answered by brute force instead.
            exact = self._index.search(q[short], fetch, threads=self.search_threads, exact=True)
            ids[short] = np.asarray(exact.keys).reshape(short.size, -1)[:, :fetch].astype(np.int64)
            counts[short] = np.asarray(exact.counts).reshape(-1)
            self._refilled += int(short.size)
        valid = np.arange(fetch)[None, :] < counts[:, None]
        ids = np.where(valid, ids, 0)
        scores = np.einsum("nd,nkd->nk", q, self._source[ids]).astype(np.float32, copy=False)
        # Empty slots sort last: the lowest score and an id above every real one.
        scores = np.where(valid, scores, np.float32(-np.inf))
        ids = np.where(valid, ids, np.iinfo(np.int64).max)
        scores, ids = sort_ties_by_id(scores, ids)
        return np.ascontiguousarray(scores[:, :k]), np.ascontiguousarray(ids[:, :k])

    def config(self) -> dict:
        options = {
            "connectivity": self.connectivity,
            "expansion_add": self.expansion_add,
            "expansion_search": self.expansion_search,
            "build_threads": self.build_threads,
            "search_threads": self.search_threads,
            "dtype": self.dtype,
        }
        if self._refilled:
            options["queries_searched_exactly"] = self._refilled
        return options


@hookimpl
def register_retrievers(register):
    register("hnsw", HNSWRetriever)
