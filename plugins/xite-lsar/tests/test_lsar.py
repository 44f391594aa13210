"""The lsar projector on embeddings with known language directions, and its command."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from xite import plugins
from xite.demo import demo_paths
from xite.errors import ConfigError
from xite_lsar import LSARProjector, lsar_subspace


def synthetic(rng, n_langs=4, rows=300, d=64):
    """Rows = shared meaning + one offset per language (the directions LSAR must find)."""
    offsets = rng.standard_normal((n_langs, d)) * 2.0
    common = rng.standard_normal(d) * 3.0  # a large direction every language shares
    x, langs = [], []
    for i in range(n_langs):
        x.append(common + offsets[i] + rng.standard_normal((rows, d)) * 0.5)
        langs += [f"l{i}"] * rows
    return np.concatenate(x).astype(np.float32), langs, offsets


def language_means(x, langs):
    langs = np.asarray(langs)
    return np.stack([x[langs == lang].mean(axis=0) for lang in sorted(set(langs))])


def test_remove_makes_the_language_means_coincide_and_keep_is_the_rest():
    rng = np.random.default_rng(0)
    x, langs, _ = synthetic(rng)
    means = language_means(x, langs)
    spread = np.linalg.norm(means - means.mean(axis=0), axis=1).mean()
    proj = LSARProjector(mode="remove").fit(x, langs)
    u = proj.basis
    assert proj.rank == 3 and proj.mode == "remove" and proj.mean is None
    np.testing.assert_allclose(u.T @ u, np.eye(3), atol=1e-5)
    removed = x - (x @ u) @ u.T
    kept = (x @ u) @ u.T
    removed_means = language_means(removed, langs)
    # The language identity is gone from the neutral vectors ...
    assert np.linalg.norm(removed_means - removed_means.mean(axis=0), axis=1).mean() < 1e-3 * spread
    # ... and the kept part carries all of it.
    kept_means = language_means(kept, langs)
    np.testing.assert_allclose(kept_means - kept_means.mean(axis=0), means - means.mean(axis=0), atol=1e-3 * spread)


def test_subspace_is_orthogonal_to_the_language_agnostic_component():
    rng = np.random.default_rng(1)
    x, langs, _ = synthetic(rng, n_langs=5)
    means = language_means(x, langs).T.astype(np.float64)
    # At full rank (languages - 1) the low-rank step reproduces the means exactly.
    basis, singular, agnostic = lsar_subspace(means, 4)
    assert basis.shape == (64, 4) and np.all(np.diff(singular) <= 1e-9)
    # μ* is the point of the means' affine hull nearest the origin: each mean projects onto it
    # by |μ*|², so the language-specific parts m_l - μ* are orthogonal to it ...
    np.testing.assert_allclose(means.T @ agnostic, agnostic @ agnostic, rtol=1e-6)
    # ... and so is the subspace they span.
    assert abs(basis.T @ agnostic).max() < 1e-4 * np.linalg.norm(agnostic)


def test_rank_and_mode_are_checked():
    rng = np.random.default_rng(2)
    x, langs, _ = synthetic(rng, n_langs=3)
    with pytest.raises(ConfigError, match="rank 3 is too high: 3 languages span at most 2"):
        LSARProjector(rank=3).fit(x, langs)
    with pytest.raises(ConfigError, match="at least 2 languages"):
        LSARProjector().fit(x[:10], ["en"] * 10)
    with pytest.raises(ConfigError, match="mode must be"):
        LSARProjector(mode="drop")
    with pytest.raises(ConfigError, match="rank must be"):
        LSARProjector(rank=0)


@pytest.fixture
def only_this_plugin(monkeypatch):
    monkeypatch.setenv("XITE_LOAD_PLUGINS", "xite-lsar")
    plugins.reset()
    yield
    plugins.reset()


def test_registered_with_its_command(only_this_plugin):
    proj = plugins.create("projector", "lsar", {"rank": "1", "mode": "keep"})
    assert isinstance(proj, LSARProjector) and proj.rank == 1 and proj.mode == "keep"
    with pytest.raises(ConfigError, match="projector 'lsar': option mode must be one of 'keep', 'remove', got 'both'"):
        plugins.create("projector", "lsar", {"mode": "both"})


def test_lsar_inspect_prints_singular_values_per_rank():
    paths = demo_paths()
    env = {**os.environ, "XITE_LOAD_PLUGINS": "xite-lsar"}
    args = [f"{lang}={paths[lang]}" for lang in ("en", "ko", "ar")]
    run = subprocess.run([sys.executable, "-m", "xite.cli", "lsar-inspect", *args, "--max-rows", "40", "-q"],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    rows = re.findall(r"^\s+(\d)\s+([\d.]+)\s+([\d.]+)%\s+([\d.]+)%$", run.stdout, flags=re.M)
    assert [r[0] for r in rows] == ["1", "2"], run.stdout
    assert float(rows[0][1]) >= float(rows[1][1]) > 0
    assert float(rows[-1][3]) == pytest.approx(100.0)
    assert "en 40, ko 40" in run.stdout and "ar 40" in run.stdout


def test_lsar_inspect_needs_two_languages():
    env = {**os.environ, "XITE_LOAD_PLUGINS": "xite-lsar"}
    run = subprocess.run([sys.executable, "-m", "xite.cli", "lsar-inspect", f"en={demo_paths()['en']}"],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 2 and "at least two different languages" in run.stderr
