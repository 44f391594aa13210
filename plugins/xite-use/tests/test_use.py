"""use-m3 through xite's public API: the real model, offline."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from xite import plugins
from xite.encoders.base import uncovered_languages
from xite.errors import ConfigError
from xite_use import USEEncoder


@pytest.fixture(scope="module")
def encoder():
    return USEEncoder()


@pytest.fixture
def only_this_plugin(monkeypatch):
    monkeypatch.setenv("XITE_LOAD_PLUGINS", "xite-use")
    plugins.reset()
    yield
    plugins.reset()


def test_vectors_are_512d_unit_rows_and_translations_are_close(encoder):
    texts = ["The movie was wonderful.", "영화가 정말 훌륭했다.", "كان الفيلم رائعا.", "Stock prices fell sharply today."]
    x = encoder.encode(texts)
    assert x.shape == (4, 512) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    sims = x @ x.T
    # Korean and Arabic translations of the English sentence are nearer to it than an unrelated one.
    assert sims[0, 1] > sims[0, 3] + 0.2 and sims[0, 2] > sims[0, 3] + 0.2


def test_batching_does_not_change_the_vectors(encoder):
    texts = [f"sentence number {i} about cats" for i in range(10)]
    np.testing.assert_allclose(encoder.encode(texts, batch_size=3), encoder.encode(texts, batch_size=64), atol=1e-5)
    assert encoder.encode([]).shape == (0, 512)


def test_declares_its_languages():
    assert uncovered_languages(USEEncoder(), ["ko", "ar", "hi", "ur", "zh-TW"]) == ["hi", "ur"]


def test_denoise_changes_the_cache_key():
    assert USEEncoder(denoise=True).cache_key != USEEncoder().cache_key


def test_registered_through_its_entry_point(only_this_plugin):
    enc = plugins.create("encoder", "use-m3", {"batch_size": "8"})
    assert isinstance(enc, USEEncoder) and enc.batch_size == 8
    assert plugins.lookup("encoder", "use-m3")[0].package == "xite-use"
    with pytest.raises(ConfigError, match="encoder 'use-m3': option threads must be an int, got 'many'"):
        plugins.create("encoder", "use-m3", {"threads": "many"})


def test_xite_plugins_lists_it():
    env = {**os.environ, "XITE_LOAD_PLUGINS": "xite-use", "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-m", "xite.cli", "plugins"], capture_output=True, text=True,
                         env=env, check=True).stdout
    assert re.search(r"encoder\s*│\s*use-m3\s*│\s*xite-use\s*│\s*0\.1\.0", out), out
