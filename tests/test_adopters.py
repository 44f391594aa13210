"""Label adoption: top-1, similarity-weighted vote, filters and class balancing."""

import numpy as np
import pytest

from xite.adopters.base import AdoptionContext, balanced_mask
from xite.adopters.top1 import Top1Adopter
from xite.adopters.vote import VoteAdopter

SOURCE_LABELS = np.array([0, 1, 1, 0, 2], dtype=np.int64)
CTX = AdoptionContext(n_classes=3)


def test_top1_takes_the_first_neighbour():
    scores = np.array([[0.9], [0.4]], dtype=np.float32)
    ids = np.array([[1], [4]])
    a = Top1Adopter().adopt(scores, ids, SOURCE_LABELS, CTX)
    assert a.labels.tolist() == [1, 2]
    assert a.source_index.tolist() == [1, 4]
    assert a.similarity.tolist() == pytest.approx([0.9, 0.4])
    assert a.keep.all()


def test_min_sim_filters():
    scores = np.array([[0.9], [0.4]], dtype=np.float32)
    ids = np.array([[1], [4]])
    a = Top1Adopter(min_sim=0.5).adopt(scores, ids, SOURCE_LABELS, CTX)
    assert a.keep.tolist() == [True, False]
    assert a.stats == {"kept": 1, "filtered": 1}


def test_vote_is_similarity_weighted_and_picks_closest_winner():
    # Neighbours: 0 (label 0, .9), 1 (label 1, .8), 2 (label 1, .7): label 1 wins 1.5 to .9.
    scores = np.array([[0.9, 0.8, 0.7]], dtype=np.float32)
    ids = np.array([[0, 1, 2]])
    a = VoteAdopter(k=3).adopt(scores, ids, SOURCE_LABELS, CTX)
    assert a.labels.tolist() == [1]
    assert a.source_index.tolist() == [1]  # the most similar neighbour with the winning label
    assert a.similarity.tolist() == pytest.approx([0.8])
    assert a.margin.tolist() == pytest.approx([(1.5 - 0.9) / 2.4])


def test_vote_margin_filter():
    scores = np.array([[0.9, 0.8, 0.7], [0.9, 0.1, 0.1]], dtype=np.float32)
    ids = np.array([[0, 1, 2], [0, 3, 1]])
    a = VoteAdopter(k=3, min_margin=0.5).adopt(scores, ids, SOURCE_LABELS, CTX)
    assert a.labels.tolist() == [1, 0]
    assert a.keep.tolist() == [False, True]


def test_balance_keeps_most_confident_per_class():
    labels = np.array([0, 0, 0, 1, 1, 2])
    conf = np.array([0.1, 0.9, 0.5, 0.3, 0.8, 0.7])
    keep = np.ones(6, dtype=bool)
    mask = balanced_mask(labels, conf, keep, 3)
    assert mask.tolist() == [False, True, False, False, True, True]


def test_bad_options():
    from xite.errors import ConfigError

    with pytest.raises(ConfigError):
        VoteAdopter(k=0)
    with pytest.raises(ConfigError):
        VoteAdopter(min_margin=2.0)
    for bad in (2, -1.01, float("nan"), float("inf"), "high"):
        with pytest.raises(ConfigError, match="min_sim"):
            VoteAdopter(min_sim=bad)
