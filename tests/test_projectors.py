"""Projectors with real sklearn, checked against numpy and against the formulas of docs/method.md."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xite.ops.reference import project
from xite.errors import ConfigError
from xite.projectors.base import Projection
from xite.projectors.lda import RANK_ONE_WARNING, LDAProjector
from xite.projectors.none import NoneProjector
from xite.projectors.pca import PCAProjector


def languages_data(n_per_language: int, d: int, codes: list[str], seed: int, shift: float = 1.5):
    """Gaussian rows per language, each language shifted along its own random direction."""
    rng = np.random.default_rng(seed)
    rows, langs = [], []
    for i, code in enumerate(codes):
        direction = rng.standard_normal(d)
        direction /= np.linalg.norm(direction)
        rows.append(rng.standard_normal((n_per_language, d)) + (shift * i) * direction)
        langs += [code] * n_per_language
    return np.concatenate(rows).astype(np.float32), langs


def assert_orthonormal(basis: np.ndarray):
    assert basis.dtype == np.float32
    np.testing.assert_allclose(basis.T @ basis, np.eye(basis.shape[1]), atol=1e-5)


def test_lda_default_rank_is_languages_minus_one():
    x, langs = languages_data(100, 20, ["en", "ko", "ja", "zh"], seed=0)
    projection = LDAProjector().fit(x, langs, source_language="en")
    assert projection.basis.shape == (20, 3) and projection.rank == 3
    assert_orthonormal(projection.basis)
    assert projection.mean is None and projection.mode == "keep"
    info = projection.info
    assert info["rank"] == 3 and info["languages"] == ["en", "ja", "ko", "zh"]
    assert info["rows_per_language"] == {"en": 100, "ja": 100, "ko": 100, "zh": 100}
    assert len(info["explained_variance_ratio"]) == 3 and "warning" not in info


def test_lda_rank_one_warns_and_separates_languages():
    """Two languages shifted along a direction: the 1-D coordinate, thresholded, tells them apart."""
    x, langs = languages_data(1000, 32, ["en", "ko"], seed=1, shift=5.0)
    langs = np.asarray(langs)
    fit_rows = np.arange(len(langs)) % 2 == 0  # fit on half, measure on the other half
    projection = LDAProjector().fit(x[fit_rows], langs[fit_rows])
    assert projection.rank == 1 and projection.info["warning"] == RANK_ONE_WARNING
    assert_orthonormal(projection.basis)
    coordinate = x[~fit_rows] @ projection.basis[:, 0]
    is_ko = langs[~fit_rows] == "ko"
    assert best_threshold_accuracy(coordinate, is_ko) > 0.95


def best_threshold_accuracy(coordinate: np.ndarray, positive: np.ndarray) -> float:
    """Accuracy of the best split "positive iff coordinate > t" (or its mirror), over every t."""
    ordered = positive[np.argsort(coordinate, kind="stable")].astype(np.int64)
    # Splitting after the i-th smallest value: negatives at or below, positives above.
    below_negative = np.concatenate([[0], np.cumsum(1 - ordered)])
    above_positive = ordered.sum() - np.concatenate([[0], np.cumsum(ordered)])
    correct = (below_negative + above_positive) / ordered.size
    return float(max(correct.max(), (1 - correct).max()))


def test_lda_rank_errors():
    x, langs = languages_data(50, 10, ["en", "ko", "ja"], seed=2)
    with pytest.raises(ConfigError, match="maximum is 2.*add languages"):
        LDAProjector(rank=3).fit(x, langs)
    assert LDAProjector(rank=1).fit(x, langs).rank == 1
    with pytest.raises(ConfigError, match="at least 2 languages"):
        LDAProjector().fit(x, ["en"] * len(langs))
    with pytest.raises(ValueError, match="language tags"):
        LDAProjector().fit(x, langs[:-1])
    with pytest.raises(ValueError, match="rank"):
        LDAProjector(rank=0)
    with pytest.raises(ValueError, match="solver"):
        LDAProjector(solver="lsqr")


def test_lda_centre_is_mean_of_rows():
    x, langs = languages_data(60, 12, ["en", "ko"], seed=3)
    projection = LDAProjector(center=True, mode="remove").fit(x, langs)
    np.testing.assert_allclose(projection.mean, x.astype(np.float64).mean(axis=0), atol=1e-6)
    assert projection.mode == "remove"


def test_lda_subsampling_is_seeded_and_capped():
    x, langs = languages_data(200, 12, ["en", "ko"], seed=4)
    a = LDAProjector(max_rows_per_language=50, seed=7).fit(x, langs)
    b = LDAProjector(max_rows_per_language=50, seed=7).fit(x, langs)
    c = LDAProjector(max_rows_per_language=50, seed=8).fit(x, langs)
    assert a.info["rows_per_language"] == {"en": 50, "ko": 50}
    assert a.info["rows_per_language_available"] == {"en": 200, "ko": 200}
    np.testing.assert_array_equal(a.basis, b.basis)
    assert not np.array_equal(a.basis, c.basis)


def test_lda_eigen_solver_spans_the_same_subspace():
    x, langs = languages_data(200, 10, ["en", "ko", "ja"], seed=5)
    svd = LDAProjector().fit(x, langs).basis.astype(np.float64)
    eigen = LDAProjector(solver="eigen").fit(x, langs).basis.astype(np.float64)
    np.testing.assert_allclose(svd @ svd.T, eigen @ eigen.T, atol=1e-4)


def test_pca_matches_numpy_svd_of_centred_target_rows():
    x, langs = languages_data(150, 16, ["en", "ko", "ja"], seed=6)
    projection = PCAProjector(rank=4).fit(x, langs, source_language="en")
    target = x[np.asarray(langs) != "en"].astype(np.float64)
    mean = target.mean(axis=0)
    _, _, vt = np.linalg.svd(target - mean, full_matrices=False)
    assert_orthonormal(projection.basis)
    for i in range(4):
        got, want = projection.basis[:, i], vt[i]
        np.testing.assert_allclose(got * np.sign(got @ want), want, atol=1e-4)
    np.testing.assert_allclose(projection.mean, mean, atol=1e-5)
    assert projection.info["rows_per_language"] == {"ja": 150, "ko": 150}
    assert PCAProjector(rank=2, center=False).fit(x, langs).mean is None


def test_pca_uses_only_target_rows_and_checks_rank():
    x, langs = languages_data(10, 16, ["en", "ko"], seed=7)
    other = PCAProjector(rank=2).fit(x, langs, source_language="ko")  # "en" rows are then the target
    np.testing.assert_allclose(other.mean, x[:10].astype(np.float64).mean(axis=0), atol=1e-5)
    with pytest.raises(ConfigError, match="maximum is 10"):
        PCAProjector(rank=11).fit(x, langs)
    with pytest.raises(ConfigError, match="every row"):
        PCAProjector(rank=1).fit(x, ["en"] * 20)


def test_none_projector_is_identity():
    projection = NoneProjector().fit(np.ones((3, 4), np.float32), ["en", "ko", "ko"], source_language="en")
    assert projection.basis is None and projection.rank == 0
    x = torch.randn(5, 4)
    assert torch.equal(project(x, None, None, projection.mode), x)


@pytest.mark.parametrize("make", [LDAProjector, lambda **kw: PCAProjector(rank=2, **kw)], ids=["lda", "pca"])
def test_mode_must_be_keep_or_remove(make):
    with pytest.raises(ValueError, match="keep' or 'remove"):
        make(mode="drop")


def apply(projection: Projection, x: np.ndarray) -> np.ndarray:
    basis = torch.from_numpy(projection.basis)
    mean = None if projection.mean is None else torch.from_numpy(projection.mean)
    return project(torch.from_numpy(x), basis, mean, projection.mode).numpy()


@pytest.mark.parametrize("projector", ["lda", "pca"])
@pytest.mark.parametrize("mode", ["keep", "remove"])
@pytest.mark.parametrize("center", [False, True])
def test_projection_semantics_match_design_formulas(projector, mode, center):
    """P(x) = U Uᵀ x; μ + U Uᵀ (x − μ); x − U Uᵀ (x − μ), computed by hand in float64."""
    x, langs = languages_data(80, 12, ["en", "ko", "ja"], seed=8)
    make = LDAProjector if projector == "lda" else (lambda **kw: PCAProjector(rank=2, **kw))
    projection = make(mode=mode, center=center).fit(x, langs, source_language="en")
    u = projection.basis.astype(np.float64)
    mu = np.zeros(12) if projection.mean is None else projection.mean.astype(np.float64)
    assert (projection.mean is not None) == center
    t = x[80:].astype(np.float64)  # the target rows
    along = (t - mu) @ u @ u.T
    want = mu + along if mode == "keep" else t - along
    np.testing.assert_allclose(apply(projection, x[80:]), want, atol=1e-4)
    if mode == "keep":  # keeping twice is keeping once (a projection)
        once = apply(projection, x[80:])
        np.testing.assert_allclose(apply(projection, once), once, atol=1e-4)
