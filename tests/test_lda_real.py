"""LDA on real multilingual embeddings: the 1-D coordinate separates English from a target language."""

import json

import numpy as np
import pytest

from xite.encoders.cache import EmbeddingCache, encode_cached
from xite.projectors.lda import LDAProjector


def _texts(path, n):
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:n]]
    return [r["text"] for r in rows]


def _threshold_accuracy(train_coord, train_is_en, test_coord, test_is_en) -> float:
    """Fit the threshold (midpoint of the class means) on one half, score it on the other."""
    mid = (train_coord[train_is_en].mean() + train_coord[~train_is_en].mean()) / 2
    sign = 1 if train_coord[train_is_en].mean() > mid else -1
    return float(((sign * (test_coord - mid) > 0) == test_is_en).mean())


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["ko", "ar", "hi", "ur"])
def test_lda_coordinate_separates_english_from_target(e5, shared_data, lang):
    en = _texts(shared_data / "sentiment" / "en" / "train.jsonl", 200)
    tgt = _texts(shared_data / "sentiment" / lang / "unlabeled.jsonl", 200)
    cache = EmbeddingCache(e5.cache_key)
    x = np.concatenate([encode_cached(e5, cache, en, progress=False), encode_cached(e5, cache, tgt, progress=False)])
    is_en = np.array([True] * len(en) + [False] * len(tgt))
    fit = np.arange(len(x)) % 2 == 0
    proj = LDAProjector().fit(x[fit], ["en" if e else lang for e in is_en[fit]])
    assert proj.rank == 1 and "warning" in proj.info
    np.testing.assert_allclose(proj.basis.T @ proj.basis, np.eye(1), atol=1e-5)
    coord = x @ proj.basis[:, 0]
    acc = _threshold_accuracy(coord[fit], is_en[fit], coord[~fit], is_en[~fit])
    assert acc >= 0.97, f"en vs {lang}: held-out threshold accuracy {acc:.3f}"
