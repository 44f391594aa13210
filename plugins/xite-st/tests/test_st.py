"""st: on xite's own e5-small, wrapped as a sentence-transformers model (offline)."""

import numpy as np
import pytest

from xite import plugins
from xite.encoders.e5_small import E5SmallEncoder
from xite.encoders.hf import HFEncoder
from xite.errors import ConfigError, UnknownComponentError
from xite_st import STEncoder

TEXTS = [
    "The movie was wonderful.",
    "영화가 정말 훌륭했다.",
    "كان الفيلم رائعا ولكن النهاية كانت طويلة جدا.",
    "Stock prices fell sharply today after the announcement.",
    "ok",
]


def _modules():
    try:  # sentence-transformers >= 5.2 moved the modules
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Normalize, Pooling, Transformer
    return Transformer, Pooling, Normalize


def save_st_model(e5_dir, out, pooling="mean", normalize=True, prompts=None, default_prompt_name=None):
    from sentence_transformers import SentenceTransformer

    Transformer, Pooling, Normalize = _modules()
    word = Transformer(str(e5_dir), max_seq_length=512)
    dim = getattr(word, "get_embedding_dimension", word.get_word_embedding_dimension)()
    modules = [word, Pooling(dim, pooling_mode=pooling)]
    if normalize:
        modules.append(Normalize())
    SentenceTransformer(modules=modules, prompts=prompts, default_prompt_name=default_prompt_name, device="cpu").save(str(out))
    return out


@pytest.fixture(scope="module")
def e5():
    return E5SmallEncoder()


@pytest.fixture(scope="module")
def e5_vectors(e5):
    return e5.encode(TEXTS, progress=False)


@pytest.fixture(scope="module")
def st_dir(e5, tmp_path_factory):
    return save_st_model(e5.model_dir, tmp_path_factory.mktemp("st") / "e5-st")


def cosines(a, b):
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_matches_xites_e5_small_with_the_prompt_option(st_dir, e5_vectors):
    enc = STEncoder(str(st_dir), prompt="passage: ")
    x = enc.encode(TEXTS)
    assert x.shape == (5, 384) and x.dtype == np.float32 and enc.dim == 384
    assert cosines(x, e5_vectors).min() >= 0.999
    # Without the prefix the vectors are measurably different: the option is really applied.
    assert cosines(STEncoder(str(st_dir)).encode(TEXTS), e5_vectors).min() < 0.999


def test_uses_the_models_own_default_prompt(e5, e5_vectors, tmp_path):
    path = save_st_model(e5.model_dir, tmp_path / "e5-prompted", prompts={"passage": "passage: ", "query": "query: "},
                         default_prompt_name="passage")
    enc = STEncoder(str(path))
    assert enc.effective_prompt() == "passage: "
    assert cosines(enc.encode(TEXTS), e5_vectors).min() >= 0.999
    assert STEncoder(str(path), prompt_name="query").effective_prompt() == "query: "
    with pytest.raises(ConfigError, match="no prompt named 'doc'; its prompts: .*passage, query"):
        STEncoder(str(path), prompt_name="doc")


def test_honours_the_models_pooling(e5, tmp_path):
    # A CLS-pooled, unnormalised save: the vectors must be xite's hf: encoder with CLS pooling.
    path = save_st_model(e5.model_dir, tmp_path / "e5-cls", pooling="cls", normalize=False)
    x = STEncoder(str(path), prompt="passage: ").encode(TEXTS)
    reference = HFEncoder(str(e5.model_dir), pooling="cls", prefix="passage: ").encode(TEXTS, progress=False)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert cosines(x, reference).min() >= 0.999


def test_prompt_and_model_files_key_the_cache(st_dir):
    assert STEncoder(str(st_dir), prompt="passage: ").cache_key != STEncoder(str(st_dir)).cache_key
    assert STEncoder(str(st_dir)).cache_key == STEncoder(str(st_dir)).cache_key


def test_bad_specs_are_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such model directory"):
        STEncoder(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="cannot load the model"):
        STEncoder(str(tmp_path / "empty"))


def test_registered_as_a_prefix(st_dir, monkeypatch):
    monkeypatch.setenv("XITE_LOAD_PLUGINS", "xite-st")
    plugins.reset()
    try:
        enc = plugins.create("encoders", f"st:{st_dir}", {"prompt": "passage: ", "batch_size": "2"})
        assert isinstance(enc, STEncoder) and enc.batch_size == 2 and enc.name == f"st:{st_dir}"
        monkeypatch.setenv("XITE_LOAD_PLUGINS", "")
        plugins.reset()
        with pytest.raises(UnknownComponentError, match="unknown encoder 'st:x'"):
            plugins.create("encoders", "st:x")
    finally:
        plugins.reset()
