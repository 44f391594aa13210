"""Exact top-k by inner product with torch: one matmul and one topk per block of queries.

Ties: equal scores are ranked by ascending source id, both in which ids make the top k and in
their order. torch.topk alone leaves ties unspecified, so rows where the k-th score is tied beyond
k are re-ranked with a stable sort. :class:`FaissRetriever` with the flat index follows the same
rule, so the two agree id for id (up to last-bit differences between the BLAS libraries, which
only matter for scores equal to within ~1e-7).

k larger than the corpus is clamped to the corpus size m: the result has min(k, m) columns.
"""

from __future__ import annotations

import numpy as np

from xite.retrievers.base import Retriever, check_k, check_query, check_source, sort_ties_by_id
from xite.errors import ConfigError

# A block of scores is [rows, m] float32; cap it at 256 MiB so a big corpus cannot exhaust memory
# when block_size queries meet millions of source rows.
MAX_BLOCK_ELEMENTS = 1 << 26


class ExactRetriever(Retriever):
    """Exact top-k by inner product (blocked torch matmul).

    Options:
        block_size: queries scored per matmul (bounds memory; results do not depend on it)
    """

    name = "exact"

    def __init__(self, block_size: int = 4096):
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
            raise ConfigError(f"block_size must be an integer >= 1, got {block_size!r}")
        self.block_size = int(block_size)
        self._source = None  # torch.Tensor [m, d] once built
        self._dim: int | None = None

    def build(self, x_source: np.ndarray) -> None:
        import torch

        x = check_source(x_source)
        # Copy: the index must not change if the caller later edits its array in place.
        self._source = torch.from_numpy(x.copy())
        self._dim = int(x.shape[1])

    def search(self, x_query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        q = check_query(x_query, self._dim, self.name)
        k = min(check_k(k), self._source.shape[0])
        scores = np.empty((q.shape[0], k), dtype=np.float32)
        ids = np.empty((q.shape[0], k), dtype=np.int64)
        rows = self._rows_per_block()
        with torch.inference_mode():
            for start in range(0, q.shape[0], rows):
                block = torch.from_numpy(q[start : start + rows]) @ self._source.T
                vals, idx = _topk_lowest_id_on_ties(block, k)
                scores[start : start + rows] = vals.numpy()
                ids[start : start + rows] = idx.numpy()
        return sort_ties_by_id(scores, ids)

    def config(self) -> dict:
        return {"block_size": self.block_size}

    def _rows_per_block(self) -> int:
        m = self._source.shape[0]
        return max(1, min(self.block_size, MAX_BLOCK_ELEMENTS // m))


def _topk_lowest_id_on_ties(block, k: int):
    """topk of each row, choosing the lowest ids when the k-th score is shared beyond k."""
    import torch

    vals, idx = torch.topk(block, k, dim=1, largest=True, sorted=True)
    tied = (block >= vals[:, -1:]).sum(dim=1) > k
    if bool(tied.any()):
        rows = tied.nonzero().squeeze(1)
        # A stable descending sort keeps equal scores in ascending id order.
        s_vals, s_idx = torch.sort(block[rows], dim=1, descending=True, stable=True)
        vals[rows] = s_vals[:, :k]
        idx[rows] = s_idx[:, :k]
    return vals, idx.to(torch.int64)
