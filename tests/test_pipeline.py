"""xite.augment end to end with real components (the model-free hashing encoder keeps most
tests fast; the e5-small tests use the real default encoder)."""

import hashlib
import json

import numpy as np
import pytest
from safetensors.numpy import load_file

import xite
from xite.errors import InputError, UnknownComponentError, XiteError
from xite.ops import reference
from helpers import AR, EN, KO, NLI_KO, nli_files, sentiment_files

pytestmark = pytest.mark.plugins("xite-hashing")  # the model-free encoder keeps these fast

FAST = dict(encoder="hashing", progress=False)


def run(tmp_path, **kw):
    files = sentiment_files(tmp_path)
    args = dict(FAST, targets={"ko": files["ko"], "ar": files["ar"]})
    args.update(kw)
    return xite.augment(files["en"], **args)


def test_in_memory_result_shapes_and_labels(tmp_path):
    r = run(tmp_path, per_target=3, interpolator="mixup", seed=1)
    n_targets = len(KO) + len(AR)
    assert r.embeddings.shape == (n_targets * 3, 256) and r.embeddings.dtype == np.float32
    assert r.label_names == ["negative", "positive"]
    assert set(r.labels.tolist()) <= {0, 1}
    assert r.languages.count("ko") == 3 * len(KO)
    assert ((r.lam >= 0) & (r.lam <= 1)).all() and len(set(r.lam.tolist())) > 1
    assert r.out_dir is None


def test_synthetic_rows_follow_the_formula(tmp_path):
    """z = lam * P(x_t) + (1 - lam) * x_s, recomputed from the cached embeddings by hand."""
    from xite.encoders.cache import EmbeddingCache, encode_cached
    from xite_hashing import HashingEncoder

    r = run(tmp_path, projector="pca", projector_options={"rank": 2}, interpolator_options={"lam": 0.3})
    enc = HashingEncoder()
    cache = EmbeddingCache(enc.cache_key)
    x_s = encode_cached(enc, cache, [t for t, _ in EN], progress=False)
    x_t = encode_cached(enc, cache, KO + AR, progress=False)
    # The basis of the run is not stored; refit it exactly as the pipeline does.
    from xite.projectors.pca import PCAProjector

    proj = PCAProjector(rank=2).fit(np.concatenate([x_s, x_t]), ["en"] * len(EN) + ["ko"] * len(KO) + ["ar"] * len(AR), source_language="en")
    u, mu = proj.basis, proj.mean
    p = mu + (x_t - mu) @ u @ u.T
    expected = 0.3 * p[r.target_index] + 0.7 * x_s[r.source_index]
    np.testing.assert_allclose(r.embeddings, expected, atol=1e-5)
    # and the source row is the nearest English neighbour of the target row
    sims = x_t @ x_s.T
    np.testing.assert_array_equal(r.source_index, sims.argmax(axis=1)[r.target_index])
    np.testing.assert_allclose(r.similarity, sims.max(axis=1)[r.target_index], atol=1e-5)


def test_exact_and_faiss_agree_on_every_neighbour(tmp_path):
    a = run(tmp_path, retriever="exact")
    b = run(tmp_path, retriever="faiss")
    np.testing.assert_array_equal(a.source_index, b.source_index)
    np.testing.assert_allclose(a.similarity, b.similarity, atol=1e-6)


def test_writes_run_dir_deterministically(tmp_path):
    out1, out2 = tmp_path / "run1", tmp_path / "run2"
    r1 = run(tmp_path, out=out1, seed=7, interpolator="mixup", per_target=2)
    r2 = run(tmp_path, out=out2, seed=7, interpolator="mixup", per_target=2)
    assert sorted(p.name for p in out1.iterdir()) == ["manifest.json", "pairs.jsonl", "synthetic.safetensors"]
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert digest(out1 / "synthetic.safetensors") == digest(out2 / "synthetic.safetensors")
    assert r2.manifest["cache"]["encoded"] == 0
    tensors = load_file(str(out1 / "synthetic.safetensors"))
    assert set(tensors) == {"embeddings", "labels", "lam", "target_index", "source_index", "similarity"}
    assert tensors["labels"].dtype == np.int64 and tensors["lam"].dtype == np.float32
    manifest = json.loads((out1 / "manifest.json").read_text())
    assert manifest["label_names"] == ["negative", "positive"]
    interp = manifest["components"]["interpolator"]
    assert (interp["name"], interp["package"], interp["options"]["alpha"]) == ("mixup", "xite", 0.4)
    assert manifest["encoder"]["name"] == "hashing" and manifest["encoder"]["package"] == "xite-hashing"
    assert manifest["source"]["digest"] == hashlib.sha256((tmp_path / "en.jsonl").read_bytes()).hexdigest()
    assert [t["language"] for t in manifest["targets"]] == ["ko", "ar"]
    assert manifest["counts"]["synthetic"] == 2 * (len(KO) + len(AR))
    lines = (out1 / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == manifest["counts"]["synthetic"]
    row = json.loads(lines[0])
    assert row["language"] == "ko" and row["target"] == KO[0] and row["label"] in ("negative", "positive")
    assert r1.manifest["seed"] == 7


def test_filters_reduce_rows_and_are_counted(tmp_path):
    r = run(tmp_path, adopter="top1", adopter_options={"min_sim": 0.99})
    assert r.manifest["counts"]["filtered"] == len(KO) + len(AR) - len(r.labels)
    assert len(r.labels) < len(KO) + len(AR)


def test_nli_pairs(tmp_path):
    files = nli_files(tmp_path)
    r = xite.augment(files["en"], {"ko": files["ko"]}, projector="lda", **FAST)
    assert r.embeddings.shape == (len(NLI_KO), 4 * 256)
    assert r.label_names == ["contradiction", "entailment", "neutral"]
    assert NLI_KO[0][0] in r.pairs[0]["target"] and NLI_KO[0][1] in r.pairs[0]["target"]


def test_fewer_than_two_labels(tmp_path):
    files = sentiment_files(tmp_path)
    one = tmp_path / "one.jsonl"
    one.write_text('{"text": "good", "label": "positive"}\n{"text": "fine", "label": "positive"}\n')
    with pytest.raises(InputError, match="at least two labels"):
        xite.augment(one, {"ko": files["ko"]}, **FAST)


def test_pairs_and_single_texts_do_not_mix(tmp_path):
    files = sentiment_files(tmp_path)
    nli = nli_files(tmp_path)
    with pytest.raises(InputError, match="pairs"):
        xite.augment(files["en"], {"ko": nli["ko"]}, **FAST)


def test_unknown_component_and_duplicate_language(tmp_path):
    files = sentiment_files(tmp_path)
    with pytest.raises(UnknownComponentError, match="registered retrievers"):
        xite.augment(files["en"], {"ko": files["ko"]}, retriever="annoy", **FAST)
    with pytest.raises(XiteError, match="twice"):
        xite.augment(files["en"], [("ko", files["ko"]), ("ko", files["ko"])], **FAST)


@pytest.mark.parametrize("interpolator", ["linear", "slerp"])
def test_kernel_path_equals_reference(tmp_path, interpolator):
    """augment's rows (through the compiled op) equal the pure-PyTorch reference computed on the
    same inputs: the refitted projection, the run's indices and λ."""
    import torch

    from xite.encoders.cache import EmbeddingCache, encode_cached
    from xite.ops import STATE
    from xite.projectors.pca import PCAProjector
    from xite_hashing import HashingEncoder

    if not STATE.loaded:
        pytest.skip(f"the compiled extension is not built: {STATE.reason}")
    r = run(tmp_path, projector="pca", projector_options={"rank": 3}, interpolator=interpolator,
            interpolator_options={"lam": 0.3})
    enc = HashingEncoder()
    cache = EmbeddingCache(enc.cache_key)
    x_s = encode_cached(enc, cache, [t for t, _ in EN], progress=False)
    x_t = encode_cached(enc, cache, KO + AR, progress=False)
    proj = PCAProjector(rank=3).fit(np.concatenate([x_s, x_t]), ["en"] * len(EN) + ["ko"] * len(KO) + ["ar"] * len(AR))
    expected = reference.project_interpolate(
        torch.from_numpy(x_t[r.target_index]), torch.from_numpy(x_s), torch.from_numpy(r.source_index),
        torch.from_numpy(r.lam), torch.from_numpy(proj.basis.astype(np.float32)), torch.from_numpy(proj.mean.astype(np.float32)),
        "keep", interpolator,
    ).numpy()
    assert len(r.embeddings) == len(KO) + len(AR)
    np.testing.assert_allclose(r.embeddings, expected, atol=2e-5)


@pytest.mark.slow
def test_demo_corpus_with_e5(tmp_path):
    from xite.demo import demo_paths

    paths = demo_paths()
    out = tmp_path / "demo"
    r = xite.augment(paths["en"], {k: v for k, v in paths.items() if k != "en"}, out=out, projector="lda", retriever="faiss", progress=False)
    assert r.manifest["projection"]["rank"] == 4  # en + 4 target languages
    assert r.embeddings.shape[1] == 384
    assert r.manifest["mean_similarity"] > 0.75
    assert (out / "synthetic.safetensors").exists()


def test_a_component_refusing_the_data_is_a_config_error(tmp_path):
    from xite.errors import ConfigError

    # en + ko gives LDA at most rank 1.
    files = sentiment_files(tmp_path)
    with pytest.raises(ConfigError, match="projector 'lda'.*maximum is 1"):
        xite.augment(files["en"], {"ko": files["ko"]}, projector_options={"rank": 3}, **FAST)


def test_flat_index_advice_where_ivf_was_measured_faster():
    from xite.pipeline import advise_index
    from xite.recipe import Recipe
    from xite.retrievers.faiss_index import FaissRetriever

    said = []
    rec = Recipe().override(components={"retriever": "faiss"}, options={})
    advise_index(rec, FaissRetriever(index="flat"), 10_000, 10_000, said.append)  # seconds either way
    advise_index(rec, FaissRetriever(index="flat"), 100_000, 10_000, said.append)  # flat beat ivf's training
    advise_index(rec, FaissRetriever(index="ivf"), 100_000, 100_000, said.append)
    assert said == []
    advise_index(rec, FaissRetriever(index="flat"), 100_000, 100_000, said.append)
    advise_index(rec, FaissRetriever(index="flat"), 10_000, 1_000_000, said.append)
    assert len(said) == 2 and all("retriever.index=ivf" in line for line in said)


def test_augment_warns_when_the_encoder_does_not_cover_a_target(tmp_path, monkeypatch):
    from xite_hashing import HashingEncoder

    monkeypatch.setattr(HashingEncoder, "languages", frozenset({"en", "ko"}), raising=False)
    said = []
    run(tmp_path, log=said.append)
    assert any(m.startswith("warning: encoder hashing does not cover ar") for m in said), said
    said.clear()
    monkeypatch.setattr(HashingEncoder, "languages", frozenset({"en", "ko", "ar"}), raising=False)
    run(tmp_path, log=said.append)
    assert not any("does not cover" in m for m in said)
