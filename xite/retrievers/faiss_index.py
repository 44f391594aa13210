"""Top-k by inner product with a faiss index: exact (flat) or approximate (IVF, HNSW), CPU or GPU.

- ``flat``: IndexFlatIP, exact. Ties rank by ascending source id, like :class:`ExactRetriever`
  (faiss already keeps the lowest ids at the k-th score; their order is fixed here).
- ``ivf``: IndexIVFFlat, inner product, k-means on the source (seeded). ``nlist`` defaults to
  about 4·sqrt(m), capped at m/39 so that each list gets the 39 training points faiss asks for;
  ``nprobe`` lists are searched per query (nprobe = nlist is exact).
- ``hnsw``: IndexHNSWFlat(d, hnsw_m, inner product) with efConstruction / efSearch. Its level
  generator uses faiss's fixed internal seed; ``seed`` only affects IVF training.

GPU: with ``gpu`` "auto" (default) or "yes" and a faiss build that sees GPUs, flat and IVF indexes
are cloned to every GPU after they are trained and filled on the CPU (training there is seeded and
reproducible). HNSW has no faiss GPU version: "auto" keeps it on the CPU, "yes" is an error, as is
"yes" without a GPU. On a GPU faiss can return at most 2048 neighbours per query.

k larger than the corpus is clamped to the corpus size m: the result has min(k, m) columns. An
approximate index can find fewer than k neighbours for a query (IVF: the probed lists hold fewer
rows). Those queries are searched again, wider: IVF probes every list (exact; on a GPU at most
2048 lists), HNSW uses efSearch = max(4·ef_search, 4·k); ``config()["queries_searched_wider"]``
counts them. Only if that still falls short (HNSW, in theory) does id -1 with score -3.4e38
(faiss's convention) remain, at the end of the row.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from xite.errors import ConfigError

from xite.retrievers.base import Retriever, check_k, check_query, check_source, sort_ties_by_id
from xite.errors import ConfigError

INDEXES = ("flat", "ivf", "hnsw")
GPU_CHOICES = ("auto", "yes", "no")
MIN_POINTS_PER_LIST = 39  # below this faiss's k-means warns that the centroids are unreliable
GPU_MAX_K = 2048  # faiss GPU selection limit for k and nprobe


class FaissRetriever(Retriever):
    """Top-k by inner product with a faiss index (module docstring: indexes, GPU, missing rows).

    Options:
        index: flat (exact), ivf (inverted lists) or hnsw (graph)
        nlist: ivf: number of lists; default about 4*sqrt(rows), at most rows/39
        nprobe: ivf: lists searched per query (nprobe = nlist is exact)
        hnsw_m: hnsw: links per node
        ef_search: hnsw: candidates kept while searching (more is slower and more exact)
        ef_construction: hnsw: candidates kept while building
        gpu: auto (use GPUs when faiss sees them), yes (insist) or no
        seed: seed of ivf's k-means training
    """

    name = "faiss"

    def __init__(
        self,
        index: Literal["flat", "ivf", "hnsw"] = "flat",
        nlist: int | None = None,
        nprobe: int = 8,
        hnsw_m: int = 32,
        ef_search: int = 64,
        ef_construction: int = 80,
        gpu: Literal["auto", "yes", "no"] = "auto",
        seed: int = 0,
    ):
        if index not in INDEXES:
            raise ConfigError(f"index must be one of {', '.join(INDEXES)}; got {index!r}")
        if gpu not in GPU_CHOICES:
            raise ConfigError(f"gpu must be one of {', '.join(GPU_CHOICES)}; got {gpu!r}")
        if nlist is not None:
            _check_positive("nlist", nlist)
        for option, value in (("nprobe", nprobe), ("hnsw_m", hnsw_m), ("ef_search", ef_search),
                              ("ef_construction", ef_construction)):
            _check_positive(option, value)
        self.index_type = index
        self.nlist = None if nlist is None else int(nlist)
        self.nprobe = int(nprobe)
        self.hnsw_m = int(hnsw_m)
        self.ef_search = int(ef_search)
        self.ef_construction = int(ef_construction)
        self.gpu = gpu
        self.seed = int(seed)
        # Fail before the caller spends minutes encoding, not at build time.
        if gpu == "yes":
            self._check_gpu_possible()
        self._index = None
        self._dim: int | None = None
        self._effective: dict = {}

    # -- building ---------------------------------------------------------------------------

    def build(self, x_source: np.ndarray) -> None:
        x = check_source(x_source)
        self._effective = {"notes": []}
        index = self._new_cpu_index(x)
        index.add(x)
        self._index = self._maybe_to_gpu(index)
        self._dim = int(x.shape[1])

    def _new_cpu_index(self, x: np.ndarray):
        import faiss

        d = x.shape[1]
        if self.index_type == "flat":
            return faiss.IndexFlatIP(d)
        if self.index_type == "hnsw":
            index = faiss.IndexHNSWFlat(d, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
            return index
        return self._trained_ivf(x)

    def _trained_ivf(self, x: np.ndarray):
        import faiss

        nlist = self._choose_nlist(x.shape[0])
        quantizer = faiss.IndexFlatIP(x.shape[1])
        index = faiss.IndexIVFFlat(quantizer, x.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = self.seed
        index.train(x)
        index.nprobe = min(self.nprobe, nlist)
        self._effective.update(nlist=nlist, nprobe=int(index.nprobe))
        if index.nprobe < self.nprobe:
            self._effective["notes"].append(f"nprobe {self.nprobe} reduced to nlist={nlist}")
        return index

    def _choose_nlist(self, m: int) -> int:
        if self.nlist is not None:
            if self.nlist > m:
                raise ConfigError(
                    f"ivf: nlist={self.nlist} lists need at least as many source rows, the source "
                    f"has {m}; use a smaller nlist, leave it unset, or use index='flat'"
                )
            if self.nlist * MIN_POINTS_PER_LIST > m:
                self._effective["notes"].append(
                    f"nlist={self.nlist} leaves fewer than {MIN_POINTS_PER_LIST} training rows per "
                    f"list (m={m}); the centroids may be poor"
                )
            return self.nlist
        nlist = default_nlist(m)
        self._effective["notes"].append(f"nlist={nlist} chosen for m={m} (4*sqrt(m), at most m/39)")
        return nlist

    # -- GPU --------------------------------------------------------------------------------

    def _check_gpu_possible(self) -> None:
        import faiss

        if self.index_type == "hnsw":
            raise ConfigError(
                "gpu='yes': faiss has no GPU HNSW index; use index='flat' or 'ivf', or gpu='auto'"
            )
        if faiss.get_num_gpus() == 0:
            raise ConfigError(
                "gpu='yes' but faiss sees no GPU (is faiss-gpu installed and a CUDA device visible?); "
                "use gpu='auto' or 'no'"
            )

    def _maybe_to_gpu(self, index):
        import faiss

        wants = self.gpu != "no" and faiss.get_num_gpus() > 0
        if wants and self.index_type == "hnsw":
            self._effective["notes"].append("hnsw has no faiss GPU version: searching on the CPU")
            wants = False
        self._effective["gpu_used"] = bool(wants)
        if not wants:
            return index
        if self.index_type == "ivf" and index.nprobe > GPU_MAX_K:
            raise ConfigError(f"on a GPU faiss allows nprobe <= {GPU_MAX_K}, got {index.nprobe}")
        # Replicas (not shards): every GPU holds the whole index, the cloner copies nprobe.
        return faiss.index_cpu_to_all_gpus(index)

    # -- searching --------------------------------------------------------------------------

    def search(self, x_query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = check_query(x_query, self._dim, self.name)
        k = min(check_k(k), int(self._index.ntotal))
        if self._effective.get("gpu_used") and k > GPU_MAX_K:
            raise ConfigError(f"on a GPU faiss returns at most k={GPU_MAX_K} neighbours, asked for {k}")
        if q.shape[0] == 0:
            return np.empty((0, k), np.float32), np.empty((0, k), np.int64)
        scores, ids = self._index.search(q, k)
        scores, ids = self._refill_missing(q, k, scores, ids)
        return sort_ties_by_id(scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False))

    def _refill_missing(self, q: np.ndarray, k: int, scores: np.ndarray, ids: np.ndarray):
        """Search again, wider, for the queries an approximate index left short of k neighbours.

        Callers index the source with these ids, where -1 would silently mean the last row. IVF
        then probes every list (exact; at most 2048 on a GPU); HNSW raises efSearch (almost always
        enough).
        """
        short = np.flatnonzero((ids < 0).any(axis=1))
        if short.size == 0 or self.index_type == "flat":
            return scores, ids
        scores, ids = scores.copy(), ids.copy()
        scores[short], ids[short] = self._search_wider(q[short], k)
        counted = self._effective.get("queries_searched_wider", 0)
        self._effective["queries_searched_wider"] = counted + int(short.size)
        return scores, ids

    def _search_wider(self, q: np.ndarray, k: int):
        import faiss

        on_gpu = self._effective.get("gpu_used")
        space = faiss.GpuParameterSpace() if on_gpu else faiss.ParameterSpace()
        if self.index_type == "ivf":
            nlist = self._effective["nlist"]
            name, wide, normal = "nprobe", min(nlist, GPU_MAX_K) if on_gpu else nlist, self._effective["nprobe"]
        else:
            name, wide, normal = "efSearch", max(4 * self.ef_search, 4 * k), self.ef_search
        space.set_index_parameter(self._index, name, wide)
        try:
            return self._index.search(q, k)
        finally:
            space.set_index_parameter(self._index, name, normal)

    def config(self) -> dict:
        options = {
            "index": self.index_type,
            "gpu": self.gpu,
            "seed": self.seed,
        }
        if self.index_type == "ivf":
            options.update(nlist=self.nlist, nprobe=self.nprobe)
        if self.index_type == "hnsw":
            options.update(hnsw_m=self.hnsw_m, ef_search=self.ef_search, ef_construction=self.ef_construction)
        # After build: the values actually used (chosen nlist, clamped nprobe, GPU or not).
        options.update({key: value for key, value in self._effective.items() if key != "notes"})
        if self._effective.get("notes"):
            options["notes"] = list(self._effective["notes"])
        return options


def default_nlist(m: int) -> int:
    """About 4·sqrt(m) lists, but never fewer than 39 training rows per list, and at least 1."""
    return max(1, min(int(round(4 * math.sqrt(m))), m // MIN_POINTS_PER_LIST))


def _check_positive(option: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{option} must be an integer >= 1, got {value!r}")
