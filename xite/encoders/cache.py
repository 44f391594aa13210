"""On-disk embedding cache: a rerun encodes nothing twice.

Layout: ``$XITE_HOME/embeddings/<encoder cache key>/`` holds shards written as the encoding goes
(``<id>.keys.npy``: uint8 [k, 32] sha256 digests of the texts; ``<id>.vecs.npy``: float32 [k, d];
``<id>.shard.json``: the shard's index entry, the size and sha256 of both files). A shard is
written atomically after each chunk, so an interrupted encoding resumes where it stopped. No
pickle: ``np.load(allow_pickle=False)``.

The cache never trusts its files: a shard that does not match its index entry (truncated, zeroed,
garbled) or its layout (wrong width, non-finite values) is reported, renamed ``*.bad`` and its
rows encoded again; shards written before index entries existed get the layout checks. An encoder
that returns NaN or infinite values is refused before anything is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from xite.checks import check_batch_size
from xite.encoders.base import Encoder, pair_features
from xite.errors import XiteError, warn
from xite.paths import xite_home
from xite.progress import progress_bar

CHUNK = 1024  # texts per shard: the most an interruption can lose, and the progress step


def _file_digest(path: Path) -> tuple[int, str]:
    with open(path, "rb") as fh:
        return os.fstat(fh.fileno()).st_size, hashlib.file_digest(fh, "sha256").hexdigest()


def text_digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


@dataclass
class CacheStats:
    hits: int = 0
    encoded: int = 0


SHARD_FORMAT = "xite-cache-shard/1"


class _BadShard(Exception):
    """A shard whose files do not hold what its index entry (or the layout) says."""


class EmbeddingCache:
    def __init__(self, encoder_key: str, root: Path | None = None, encoder_name: str | None = None):
        self.dir = (root or xite_home() / "embeddings") / encoder_key
        self.encoder_name = encoder_name or encoder_key
        self.stats = CacheStats()
        self._index: dict[bytes, tuple[int, int]] | None = None
        self._shards: list[np.ndarray] = []
        self._dim: int | None = None

    def _load_index(self, dim: int | None = None) -> dict[bytes, tuple[int, int]]:
        if self._index is not None:
            return self._index
        self._index, self._shards = {}, []
        if self.dir.is_dir():
            for keys_path in sorted(self.dir.glob("*.keys.npy")):
                stem = keys_path.name[: -len(".keys.npy")]
                vecs_path = self.dir / f"{stem}.vecs.npy"
                if not vecs_path.exists():
                    continue  # an interrupted write: the keys file is written last, so skip
                try:
                    keys, vecs = self._read_shard(stem, dim)
                except _BadShard as exc:
                    self._set_aside(stem, str(exc))
                    continue
                self._add_shard(keys, vecs)
        return self._index

    def _read_shard(self, stem: str, dim: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Check a shard against its index entry (sizes and sha256 of both files) and its layout
        (keys uint8 [k, 32], vectors float32 [k, dim], finite); a shard written before index
        entries existed gets the layout checks only."""
        keys_path, vecs_path = self.dir / f"{stem}.keys.npy", self.dir / f"{stem}.vecs.npy"
        entry_path = self.dir / f"{stem}.shard.json"
        try:
            if entry_path.exists():
                entry = json.loads(entry_path.read_text(encoding="utf-8"))
                if not isinstance(entry, dict) or entry.get("format") != SHARD_FORMAT:
                    raise _BadShard("its index entry is not a shard entry")
                for path, role in ((keys_path, "keys"), (vecs_path, "vecs")):
                    size, digest = _file_digest(path)
                    if size != entry.get(f"{role}_bytes") or digest != entry.get(f"{role}_sha256"):
                        raise _BadShard(f"{path.name} does not match its recorded size and checksum")
            keys = np.load(keys_path, allow_pickle=False)
            vecs = np.load(vecs_path, mmap_mode="r", allow_pickle=False)
        except _BadShard:
            raise
        except (OSError, ValueError, EOFError, UnicodeDecodeError) as exc:  # truncated, garbled, empty
            raise _BadShard(f"unreadable ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else 'empty'})") from None
        if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != 32:
            raise _BadShard(f"keys have shape {keys.shape} and type {keys.dtype}, expected uint8 [rows, 32]")
        if vecs.dtype != np.float32 or vecs.ndim != 2 or vecs.shape[0] != keys.shape[0]:
            raise _BadShard(f"vectors have shape {vecs.shape} and type {vecs.dtype}, expected float32 [{keys.shape[0]}, dim]")
        if dim is not None and vecs.shape[1] != dim:
            raise _BadShard(f"vectors are {vecs.shape[1]}-dimensional, the encoder's are {dim}")
        if not np.isfinite(vecs).all():
            raise _BadShard("vectors hold NaN or infinite values")
        return keys, vecs

    def _set_aside(self, stem: str, reason: str) -> None:
        """Rename a damaged shard's files to ``*.bad`` (kept for inspection, never read again);
        its rows are then missing from the index, so they are encoded again."""
        for suffix in (".keys.npy", ".vecs.npy", ".shard.json"):
            path = self.dir / f"{stem}{suffix}"
            with contextlib.suppress(FileNotFoundError):
                os.replace(path, path.with_name(path.name + ".bad"))
        warn(f"embedding cache {self.dir}: shard {stem} is damaged ({reason}); set aside as *.bad, its rows will be encoded again")

    def _add_shard(self, keys: np.ndarray, vecs: np.ndarray) -> None:
        shard = len(self._shards)
        self._shards.append(vecs)
        for row, key in enumerate(keys):
            self._index.setdefault(key.tobytes(), (shard, row))

    def _write_shard(self, keys: list[bytes], vecs: np.ndarray) -> None:
        stem = self.dir / uuid.uuid4().hex
        key_arr = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)
        written: list[Path] = []
        tmp: Path | None = None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            # Vectors first, keys next, the index entry (sizes and checksums) last: a shard counts
            # once its keys file exists, and is verified against its entry when it has one.
            entry: dict = {"format": SHARD_FORMAT, "rows": len(keys), "dim": int(vecs.shape[1])}
            for suffix, role, arr in ((".vecs.npy", "vecs", vecs), (".keys.npy", "keys", key_arr)):
                tmp = Path(f"{stem}{suffix}.tmp")
                with open(tmp, "wb") as fh:
                    np.save(fh, arr, allow_pickle=False)
                os.replace(tmp, f"{stem}{suffix}")
                tmp = None
                written.append(Path(f"{stem}{suffix}"))
                entry[f"{role}_bytes"], entry[f"{role}_sha256"] = _file_digest(Path(f"{stem}{suffix}"))
            tmp = Path(f"{stem}.shard.json.tmp")
            tmp.write_text(json.dumps(entry), encoding="utf-8")
            os.replace(tmp, f"{stem}.shard.json")
            tmp = None
        except OSError as exc:
            # A full disk or a read-only XITE_HOME: leave no .tmp and no half shard behind.
            for path in ([tmp] if tmp is not None else []) + written:
                with contextlib.suppress(OSError):
                    path.unlink()
            raise XiteError(f"cannot write the embedding cache in {self.dir}: {exc.strerror or exc}"
                            f"{f' ({exc.filename})' if exc.filename else ''}") from None
        self._add_shard(key_arr, vecs)

    def encode(
        self,
        texts: Sequence[str],
        encode_fn: Callable[[list[str]], np.ndarray],
        dim: int,
        progress: bool = False,
        label: str = "encoding",
        encoder_name: str | None = None,
    ) -> np.ndarray:
        """Embeddings of ``texts``, encoding (in chunks, each saved) only what is not cached.
        With ``progress``, one bar runs over every text still to encode."""
        if encoder_name:
            self.encoder_name = encoder_name
        index = self._load_index(dim)
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
                vecs = self._checked(encode_fn([t for _, t in chunk]), len(chunk), dim)
                self._write_shard([d for d, _ in chunk], vecs)
                self.stats.encoded += len(chunk)
                if bar is not None:
                    bar.advance(task, len(chunk))
        return self._gather(digests, dim)

    def _checked(self, vecs, rows: int, dim: int) -> np.ndarray:
        """What the encoder returned, refused before it reaches the cache when it is not
        [rows, dim] finite numbers: a NaN written once would be served to every later run."""
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        if vecs.shape != (rows, dim):
            raise XiteError(f"encoder {self.encoder_name} returned vectors of shape {vecs.shape} for {rows} texts, "
                            f"expected ({rows}, {dim}); nothing was cached")
        if not np.isfinite(vecs).all():
            bad = int((~np.isfinite(vecs).all(axis=1)).sum())
            raise XiteError(f"encoder {self.encoder_name} returned NaN or infinite values for {bad} of {rows} texts "
                            "(check its options, e.g. the batch size); nothing was cached")
        return vecs

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
    batch_size = check_batch_size(batch_size)
    return cache.encode(
        list(texts),
        lambda chunk: encoder.encode(chunk, batch_size=batch_size, progress=False),
        encoder.dim,
        progress=progress,
        label=f"encoding {encoder.name}",
        encoder_name=encoder.name,
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
    batch_size = check_batch_size(batch_size)
    vecs = pair_cache.encode(keys, encode_fn, 4 * encoder.dim, progress=progress, label=f"encoding {encoder.name} pairs",
                             encoder_name=encoder.name)
    cache.stats.hits += pair_cache.stats.hits
    cache.stats.encoded += pair_cache.stats.encoded
    return vecs


def encode_corpus(enc: Encoder, cache: EmbeddingCache, corpus, batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """Embeddings of a read corpus (single texts or pairs), through the cache."""
    if corpus.is_pair:
        a, b = corpus.pairs
        return encode_pairs_cached(enc, cache, a, b, batch_size, progress)
    return encode_cached(enc, cache, corpus.texts, batch_size, progress)
