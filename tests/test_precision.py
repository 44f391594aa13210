"""The encoders' precision option: int8 (CTranslate2) against fp32 (transformers), cache keys,
bad values, the CTranslate2 weight mapping, and length-sorted batching."""

import numpy as np
import pytest

from xite.errors import ConfigError


def cosine_rows(a, b):
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def mixed_sentences(shared_data, per_language: int) -> list[str]:
    from xite.data.readers import read_corpus

    texts = []
    for lang in ("en", "ko", "ar", "hi", "ur"):
        name = "train.jsonl" if lang == "en" else "unlabeled.jsonl"
        texts += read_corpus(shared_data / "sentiment" / lang / name).texts[:per_language]
    return texts


@pytest.fixture(scope="module")
def e5_int8():
    from xite.encoders.e5_small import E5SmallEncoder

    return E5SmallEncoder(precision="int8")


@pytest.mark.slow
def test_int8_matches_fp32_on_every_real_sentence(e5, e5_int8, shared_data):
    texts = mixed_sentences(shared_data, 20)
    fp32 = e5.encode(texts, progress=False)
    int8 = e5_int8.encode(texts, progress=False)
    assert int8.dtype == np.float32 and int8.shape == (100, 384)
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    cos = cosine_rows(fp32, int8)
    assert cos.min() >= 0.99, (texts[int(cos.argmin())], float(cos.min()))
    assert cos.min() < 1 - 1e-6  # really computed in int8, not the fp32 model again


def test_cache_key_and_config_carry_the_precision():
    from xite.encoders.e5_small import E5SmallEncoder

    fp32, int8 = E5SmallEncoder(), E5SmallEncoder(precision="int8")
    assert fp32.cache_key != int8.cache_key and "int8" in int8.cache_key
    assert (fp32.config()["precision"], int8.config()["precision"]) == ("fp32", "int8")
    assert E5SmallEncoder(max_length=128, precision="int8").cache_key not in (int8.cache_key, fp32.cache_key)


@pytest.mark.slow
def test_hf_cache_key_differs_by_precision(e5):
    from xite.encoders.hf import HFEncoder

    fp32 = HFEncoder(str(e5.model_dir), prefix="passage: ")
    int8 = HFEncoder(str(e5.model_dir), prefix="passage: ", precision="int8")
    assert fp32.cache_key != int8.cache_key and int8.config()["precision"] == "int8"


def test_bad_precision_is_a_clear_error():
    from xite.encoders.e5_small import E5SmallEncoder
    from xite.encoders.hf import HFEncoder

    with pytest.raises(ConfigError, match=r"precision must be one of fp32, int8; got 'fp16'"):
        E5SmallEncoder(precision="fp16")
    with pytest.raises(ConfigError, match="precision"):
        HFEncoder("/whatever", precision="int4")
    with pytest.raises(ConfigError, match="CPU"):
        E5SmallEncoder(precision="int8", device="cuda")


def test_int8_refuses_unsupported_architectures(tmp_path):
    from transformers import DistilBertConfig

    from xite.encoders.hf import HFEncoder

    DistilBertConfig(vocab_size=50, dim=32, n_layers=1, n_heads=2, hidden_dim=64).save_pretrained(tmp_path)
    HFEncoder(str(tmp_path))  # fp32 takes any encoder
    with pytest.raises(ConfigError, match="int8 supports bert, xlm-roberta.*'distilbert'"):
        HFEncoder(str(tmp_path), precision="int8")


@pytest.mark.parametrize("arch", ["bert", "xlm-roberta"])
def test_ctranslate2_weight_mapping_is_exact_in_float32(arch, tmp_path):
    """The spec built from a model's weights computes the same hidden states as transformers
    (float32 in both, so only the mapping is tested), positions and padding included."""
    import ctranslate2
    import torch
    from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

    from xite.encoders.int8 import encoder_spec

    torch.manual_seed(0)
    sizes = dict(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=64, max_position_embeddings=40, pad_token_id=1)
    model = (BertModel(BertConfig(**sizes), add_pooling_layer=False) if arch == "bert"
             else XLMRobertaModel(XLMRobertaConfig(**sizes), add_pooling_layer=False)).eval()
    spec = encoder_spec(model, [f"t{i}" for i in range(50)])  # shorter vocabulary: padded
    spec.validate()
    spec.save(str(tmp_path))
    engine = ctranslate2.Encoder(str(tmp_path), device="cpu", compute_type="float32")

    batch = [[0, 5, 9, 17, 33, 2], [0, 44, 2]]
    ours = np.asarray(engine.forward_batch(batch).last_hidden_state)
    ids = torch.tensor([batch[0], batch[1] + [1, 1, 1]])
    mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    with torch.inference_mode():
        ref = model(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    np.testing.assert_allclose(ours[0], ref[0], atol=1e-4)
    np.testing.assert_allclose(ours[1, :3], ref[1, :3], atol=1e-4)


def test_length_sorted_batches_respect_rows_and_tokens():
    from xite.encoders._transformers import length_sorted_batches

    lengths = [5, 300, 12, 12, 7, 100, 1, 40, 12, 3]
    batches = length_sorted_batches(lengths, batch_size=3, max_tokens=256)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    for rows in batches:
        assert len(rows) <= 3
        assert len(rows) == 1 or len(rows) * max(lengths[i] for i in rows) <= 256
    assert [len(b) for b in batches] == [1, 2, 3, 3, 1]  # 300 alone, 100+40, then by rows


def test_precision_reaches_the_encoder_through_component_options():
    """How a run or an experiment config (encoder_options = {precision = "int8"}) selects it."""
    from xite import plugins

    enc = plugins.create("encoders", "e5-small", {"precision": "int8"})
    assert enc.precision == "int8" and enc.config()["precision"] == "int8"
