"""xite.train: heads on frozen embeddings, the model directory, and one-line errors."""

import json

import numpy as np
import pytest

import xite
from xite.cli import main
from xite.errors import XiteError
from xite.training import HeadOptions, fit_head, load_model
from helpers import EN, nli_files, sentiment_files, write_jsonl

pytestmark = pytest.mark.plugins("xite-hashing")  # the model-free encoder keeps these fast

FAST = dict(encoder="hashing", progress=False)


def _blobs(n=200, d=16, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, d)).astype(np.float32) + 3.0 * np.eye(d, dtype=np.float32)[y]
    return x, y


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_heads_learn_separable_data(head):
    x, y = _blobs()
    xd, yd = _blobs(seed=1)
    model = fit_head(x, y, ["a", "b"], HeadOptions(type=head, epochs=60, lr=0.02, batch_size=32), x_dev=xd, y_dev=yd)
    assert (model.predict(xd) == yd).mean() > 0.9
    assert 1 <= model.report.best_epoch <= model.report.epochs_run
    assert model.report.dev_accuracy == pytest.approx(max(model.report.history))
    np.testing.assert_allclose(model.predict_proba(xd).sum(1), 1.0, rtol=1e-5)


def test_inputs_are_l2_normalised_so_scale_does_not_matter():
    x, y = _blobs()
    a = fit_head(x, y, ["a", "b"], HeadOptions(epochs=3))
    assert np.array_equal(a.predict(x), a.predict(x * 1000.0))


def test_same_seed_same_model_and_early_stopping_uses_dev():
    x, y = _blobs()
    xd, yd = _blobs(seed=1)
    m1 = fit_head(x, y, ["a", "b"], HeadOptions(epochs=5, seed=3), x_dev=xd, y_dev=yd)
    m2 = fit_head(x, y, ["a", "b"], HeadOptions(epochs=5, seed=3), x_dev=xd, y_dev=yd)
    np.testing.assert_array_equal(m1.logits(xd), m2.logits(xd))
    # patience 0: training stops at the first epoch that does not beat the best so far
    m3 = fit_head(x, y, ["a", "b"], HeadOptions(epochs=50, patience=0, seed=3), x_dev=xd, y_dev=yd)
    assert m3.report.epochs_run < 50


def test_train_writes_model_dir_with_synthetic_run(tmp_path):
    files = sentiment_files(tmp_path)
    run = tmp_path / "run"
    xite.augment(files["en"], {"ko": files["ko"]}, out=run, projector="none", retriever="exact", **FAST)
    out = tmp_path / "model"
    model = xite.train(files["en"], [run], dev=files["en"], out=out, head="mlp", progress=False)
    cfg = json.loads((out / "config.json").read_text())
    assert (out / "head.safetensors").is_file()
    assert cfg["encoder"]["name"] == "hashing" and cfg["encoder"]["dim"] == 256  # from the run's manifest
    assert cfg["label_names"] == ["negative", "positive"] and cfg["head"]["type"] == "mlp"
    assert cfg["training"]["synthetic"][0]["rows"] == 5 and cfg["training"]["source"]["rows"] == len(EN)
    loaded = load_model(out)
    x = np.random.default_rng(0).normal(size=(4, 256)).astype(np.float32)
    np.testing.assert_allclose(loaded.logits(x), model.logits(x), rtol=1e-5, atol=1e-6)


def test_synthetic_run_from_another_encoder_is_refused(tmp_path):
    files = sentiment_files(tmp_path)
    run = tmp_path / "run64"
    xite.augment(files["en"], {"ko": files["ko"]}, out=run, projector="none", retriever="exact",
                 encoder_options={"dim": 64}, **FAST)
    with pytest.raises(XiteError, match="encoder hashing@1-d64"):
        xite.train(files["en"], [run], out=tmp_path / "m", encoder="hashing", progress=False)
    assert not (tmp_path / "m").exists()


def test_run_with_other_labels_or_shape_is_refused(tmp_path):
    files = sentiment_files(tmp_path)
    nli = nli_files(tmp_path)
    run = tmp_path / "nli_run"
    xite.augment(nli["en"], {"ko": nli["ko"]}, out=run, projector="none", retriever="exact", **FAST)
    with pytest.raises(XiteError, match="labels"):
        xite.train(files["en"], [run], out=tmp_path / "m", progress=False)


@pytest.mark.parametrize("case", ["other_encoder_run", "missing_run", "unknown_head", "dev_unknown_label"])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, case):
    files = sentiment_files(tmp_path)
    args = ["train", "--source", files["en"], "--out", tmp_path / "m", "--quiet", "--encoder", "hashing"]
    if case == "other_encoder_run":
        run = tmp_path / "run"
        xite.augment(files["en"], {"ko": files["ko"]}, out=run, projector="none", retriever="exact",
                     encoder_options={"dim": 32}, **FAST)
        args += ["--synthetic", run]
    elif case == "missing_run":
        args += ["--synthetic", tmp_path / "nope"]
    elif case == "unknown_head":
        args += ["--head", "tree"]
    else:
        bad = write_jsonl(tmp_path / "dev.jsonl", [{"text": "meh", "label": "neutral"}])
        args += ["--dev", bad]
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "m").exists()


def test_cli_train_then_evaluate(tmp_path, capsys):
    files = sentiment_files(tmp_path)
    test = write_jsonl(tmp_path / "test.jsonl", [{"text": t, "label": y} for t, y in EN[:6]])
    assert main(["train", "--source", str(files["en"]), "--dev", str(files["en"]), "--out", str(tmp_path / "m"),
                 "--encoder", "hashing", "--epochs", "5", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m"), "--test", f"en={test}", "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) == {"en"} and res["en"]["n"] == 6 and 0.0 <= res["en"]["accuracy"] <= 1.0
    assert main(["evaluate", str(tmp_path / "m"), "--test", f"en={test}", "--quiet"]) == 0
    assert "macro-F1" in capsys.readouterr().out
