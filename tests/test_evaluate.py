"""xite.evaluate: metrics against sklearn, and one-line errors for bad model/test input."""

import numpy as np
import pytest

import xite
from xite.cli import main
from xite.errors import InputError, XiteError
from xite.evaluation import metrics
from helpers import EN, nli_files, sentiment_files, write_jsonl

pytestmark = pytest.mark.plugins("xite-hashing")  # the model-free encoder keeps these fast


def test_metrics_match_sklearn():
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    m = metrics(y, p, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert m["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert m["confusion"] == confusion_matrix(y, p, labels=[0, 1, 2]).tolist()


def test_macro_f1_on_an_imbalanced_set_exposes_a_one_class_predictor():
    y = np.array([0] * 24 + [1] * 76)
    m = metrics(y, np.ones_like(y), ["negative", "positive"])
    assert m["accuracy"] == pytest.approx(0.76)
    assert m["macro_f1"] < 0.45  # the negative class' F1 is 0


@pytest.fixture
def model_dir(tmp_path):
    files = sentiment_files(tmp_path)
    out = tmp_path / "model"
    xite.train(files["en"], dev=files["en"], out=out, encoder="hashing", head_options={"epochs": 5}, progress=False)
    return out


def test_evaluate_per_language(tmp_path, model_dir):
    a = write_jsonl(tmp_path / "a.jsonl", [{"text": t, "label": y} for t, y in EN])
    b = write_jsonl(tmp_path / "b.jsonl", [{"text": t, "label": y} for t, y in EN[:4]])
    res = xite.evaluate(model_dir, {"en": a, "xx": b}, progress=False)
    assert res["en"]["n"] == len(EN) and res["xx"]["n"] == 4
    assert np.array(res["en"]["confusion"]).sum() == len(EN)


def test_unknown_label_names_file_line_and_field(tmp_path, model_dir):
    bad = write_jsonl(tmp_path / "t.jsonl", [{"text": "ok", "label": "positive"}, {"text": "meh", "label": "neutral"}])
    with pytest.raises(InputError) as exc:
        xite.evaluate(model_dir, {"en": bad}, progress=False)
    assert exc.value.line == 2 and exc.value.field == "label" and "neutral" in str(exc.value)


def test_empty_test_file_and_pairs(tmp_path, model_dir):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        xite.evaluate(model_dir, {"en": empty}, progress=False)
    nli = nli_files(tmp_path)
    with pytest.raises(InputError, match="pairs"):
        xite.evaluate(model_dir, {"en": nli["en"]}, progress=False)


def test_model_from_another_encoder(tmp_path, model_dir):
    test = write_jsonl(tmp_path / "t.jsonl", [{"text": "ok", "label": "positive"}])
    with pytest.raises(XiteError, match="trained on hashing"):
        xite.evaluate(model_dir, {"en": test}, encoder="e5-small", progress=False)
    # a model dir whose recorded encoder version no longer matches the encoder's vectors
    import json

    cfg = json.loads((model_dir / "config.json").read_text())
    cfg["encoder"]["version"] = "0-old"
    (model_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(XiteError, match="encoder"):
        xite.evaluate(model_dir, {"en": test}, progress=False)


@pytest.mark.parametrize("case", ["not_a_model", "empty", "unknown_label", "other_encoder"])
def test_cli_bad_input_one_line_exit_2(tmp_path, model_dir, capsys, case):
    target = model_dir
    test = write_jsonl(tmp_path / "t.jsonl", [{"text": "ok", "label": "positive"}])
    extra = []
    if case == "not_a_model":
        target = tmp_path
    elif case == "empty":
        test = tmp_path / "e.jsonl"
        test.write_text("")
    elif case == "unknown_label":
        test = write_jsonl(tmp_path / "u.jsonl", [{"text": "ok", "label": "great"}])
    else:
        extra = ["--encoder", "e5-small"]
    code = main(["evaluate", str(target), "--test", f"en={test}", "--quiet"] + extra)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1, err
