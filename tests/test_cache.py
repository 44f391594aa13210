"""The embedding cache: a rerun encodes nothing twice; an interrupted run resumes."""

import numpy as np
import pytest

from xite.encoders import cache as cache_mod
from xite.encoders.base import Encoder, l2_normalise
from xite.encoders.cache import EmbeddingCache, encode_cached, encode_pairs_cached


class CountingEncoder(Encoder):
    name, version, dim = "counting", "1", 8

    def __init__(self):
        self.calls = []

    def encode(self, texts, batch_size=64, progress=True):
        self.calls.append(list(texts))
        rng = [np.random.default_rng(abs(hash(t)) % 2**32).normal(size=self.dim) for t in texts]
        return l2_normalise(np.array(rng, dtype=np.float32).reshape(len(texts), self.dim))


def test_second_run_encodes_nothing(tmp_path):
    enc = CountingEncoder()
    texts = ["a", "b", "c", "a"]
    first = encode_cached(enc, EmbeddingCache(enc.cache_key, root=tmp_path), texts)
    assert sum(len(c) for c in enc.calls) == 3  # "a" once
    fresh = EmbeddingCache(enc.cache_key, root=tmp_path)
    second = encode_cached(enc, fresh, texts)
    assert sum(len(c) for c in enc.calls) == 3
    assert fresh.stats.encoded == 0 and fresh.stats.hits == 4
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first[0], first[3])


def test_only_new_texts_are_encoded(tmp_path):
    enc = CountingEncoder()
    encode_cached(enc, EmbeddingCache(enc.cache_key, root=tmp_path), ["a", "b"])
    encode_cached(enc, EmbeddingCache(enc.cache_key, root=tmp_path), ["b", "c"])
    assert enc.calls == [["a", "b"], ["c"]]


def test_interrupted_encoding_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_mod, "CHUNK", 2)
    enc = CountingEncoder()
    calls = {"n": 0}

    def flaky(chunk):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return enc.encode(chunk)

    c = EmbeddingCache(enc.cache_key, root=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        c.encode(list("abcdef"), flaky, enc.dim)
    resumed = EmbeddingCache(enc.cache_key, root=tmp_path)
    resumed.encode(list("abcdef"), enc.encode, enc.dim)
    assert resumed.stats.hits == 4 and resumed.stats.encoded == 2


def test_pairs_reuse_single_text_embeddings(tmp_path):
    enc = CountingEncoder()
    c = EmbeddingCache(enc.cache_key, root=tmp_path)
    x = encode_pairs_cached(enc, c, ["p1", "p1"], ["h1", "h2"])
    assert x.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    assert sorted(t for call in enc.calls for t in call) == ["h1", "h2", "p1"]


def test_e5_pairs_are_cached_per_text():
    from xite.encoders.cache import _uses_default_pairs
    from xite.encoders.e5_small import E5SmallEncoder

    assert _uses_default_pairs(E5SmallEncoder())  # constructing loads no model
