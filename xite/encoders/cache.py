"""On-disk embedding cache: a rerun encodes nothing twice.

Layout: ``$XITE_HOME/embeddings/<encoder cache key>/`` holds shards written as the encoding goes
(``<id>.keys.npy``: uint8 [k, 32] sha256 digests of the texts; ``<id>.vecs.npy``: float32 [k, d]).
A shard is written atomically after each chunk, so an interrupted encoding resumes where it
stopped. No pickle: ``np.load(allow_pickle=False)``.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from xite.encoders.base import Encoder, pair_features
from xite.paths import xite_home
from xite.progress import progress_bar

CHUNK = 1024  # texts per shard: the most an interruption can lose, and the progress step


def text_digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


@dataclass
class CacheStats:
    hits: int = 0
    encoded: int = 0


class EmbeddingCache:
    def __init__(self, encoder_key: str, root: Path | None = None):
        self.dir = (root or xite_home() / "embeddings") / encoder_key
        self.stats = CacheStats()
        self._index: dict[bytes, tuple[int, int]] | None = None
        self._shards: list[np.ndarray] = []

    def _load_index(self) -> dict[bytes, tuple[int, int]]:
        if self._index is not None:
            return self._index
        self._index, self._shards = {}, []
        if self.dir.is_dir():
            for keys_path in sorted(self.dir.glob("*.keys.npy")):
                vecs_path = keys_path.with_name(keys_path.name.replace(".keys.npy", ".vecs.npy"))
                if not vecs_path.exists():
                    continue  # an interrupted write: the keys file is written last, so skip
                self._add_shard(np.load(keys_path, allow_pickle=False), np.load(vecs_path, mmap_mode="r", allow_pickle=False))
        return self._index

    def _add_shard(self, keys: np.ndarray, vecs: np.ndarray) -> None:
        shard = len(self._shards)
        self._shards.append(vecs)
        for row, key in enumerate(keys):
            self._index.setdefault(key.tobytes(), (shard, row))

    def _write_shard(self, keys: list[bytes], vecs: np.ndarray) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        stem = self.dir / uuid.uuid4().hex
        key_arr = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)
        # Vectors first, keys last: a shard counts only once its keys file exists.
        for suffix, arr in ((".vecs.npy", vecs), (".keys.npy", key_arr)):
            tmp = Path(f"{stem}{suffix}.tmp")
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
            os.replace(tmp, f"{stem}{suffix}")
        self._add_shard(key_arr, vecs)

    def encode(
        self,
        texts: Sequence[str],
        encode_fn: Callable[[list[str]], np.ndarray],
        dim: int,
        progress: bool = False,
        label: str = "encoding",
    ) -> np.ndarray:
        """Embeddings of ``texts``, encoding (in chunks, each saved) only what is not cached.
        With ``progress``, one bar runs over every text still to encode."""
        index = self._load_index()
        digests = [text_digest(t) for t in texts]
        missing: dict[bytes, str] = {}
        for d, t in zip(digests, texts):
            if d not in index and d not in missing:
                missing[d] = t
        self.stats.hits += len(texts) - len(missing)
        todo = list(missing.items())
        with progress_bar(progress and len(todo) > 0, label) as bar:
            task = bar.add_task(label, total=len(todo)) if bar is not None else None
            for start in range(0, len(todo), CHUNK):
                chunk = todo[start : start + CHUNK]
                vecs = np.ascontiguousarray(encode_fn([t for _, t in chunk]), dtype=np.float32)
                self._write_shard([d for d, _ in chunk], vecs)
                self.stats.encoded += len(chunk)
                if bar is not None:
                    bar.advance(task, len(chunk))
        return self._gather(digests, dim)

    def _gather(self, digests: list[bytes], dim: int) -> np.ndarray:
        out = np.empty((len(digests), dim), dtype=np.float32)
        for i, d in enumerate(digests):
            shard, row = self._index[d]
            out[i] = self._shards[shard][row]
        return out


def _uses_default_pairs(encoder: Encoder) -> bool:
    return type(encoder).encode_pairs is Encoder.encode_pairs


def encode_cached(encoder: Encoder, cache: EmbeddingCache, texts: Sequence[str], batch_size: int = 64, progress: bool = True) -> np.ndarray:
    # The cache draws one bar over all new texts; the encoder's own per-chunk bar stays off.
    return cache.encode(
        list(texts),
        lambda chunk: encoder.encode(chunk, batch_size=batch_size, progress=False),
        encoder.dim,
        progress=progress,
        label=f"encoding {encoder.name}",
    )


def encode_pairs_cached(encoder: Encoder, cache: EmbeddingCache, a: Sequence[str], b: Sequence[str], batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """Pairs through the cache: per text when the encoder uses the default pair features, else
    per pair (keyed by both texts)."""
    if _uses_default_pairs(encoder):
        # Encode premises and hypotheses in one stream, so the chunks and progress are shared.
        both = encode_cached(encoder, cache, list(a) + list(b), batch_size, progress)
        return pair_features(both[: len(a)], both[len(a) :])
    keys = [f"{x}\u0000{y}" for x, y in zip(a, b)]
    lookup = dict(zip(keys, zip(a, b)))

    def encode_fn(chunk: list[str]) -> np.ndarray:
        pa, pb = zip(*(lookup[k] for k in chunk))
        return encoder.encode_pairs(list(pa), list(pb), batch_size=batch_size, progress=False)

    pair_cache = EmbeddingCache(cache.dir.name + "-pairs", root=cache.dir.parent)
    vecs = pair_cache.encode(keys, encode_fn, 4 * encoder.dim, progress=progress, label=f"encoding {encoder.name} pairs")
    cache.stats.hits += pair_cache.stats.hits
    cache.stats.encoded += pair_cache.stats.encoded
    return vecs


def encode_corpus(enc: Encoder, cache: EmbeddingCache, corpus, batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """Embeddings of a read corpus (single texts or pairs), through the cache."""
    if corpus.is_pair:
        a, b = corpus.pairs
        return encode_pairs_cached(enc, cache, a, b, batch_size, progress)
    return encode_cached(enc, cache, corpus.texts, batch_size, progress)
