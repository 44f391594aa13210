"""xite.experiment: the grid on a tiny hand-written benchmark (hashing encoder), resume, and the
agreement adopter. One slow test runs train + evaluate with real e5 on a slice of the real data."""

import json
import random

import numpy as np
import pytest

import xite
from xite import plugins
from xite.adopters.base import AdoptionContext
from xite.cli import main
from xite.errors import ConfigError, XiteError
from helpers import write_jsonl

pytestmark = pytest.mark.plugins("xite-hashing")  # the model-free encoder keeps these fast

POS = ["good", "great", "wonderful", "loved", "excellent", "delightful"]
NEG = ["bad", "awful", "boring", "hated", "terrible", "dull"]
LABELS = ("positive", "negative")


def _text(rng, lang, label, i):
    return f"{lang} {rng.choice(POS if label == 'positive' else NEG)} film {i} {rng.choice(['indeed', 'really', 'so'])}"


def make_benchmark(root, langs=("ko", "ar")):
    rng = random.Random(0)
    for split, n in (("train", 40), ("dev", 12), ("test", 12)):
        write_jsonl_p(root / "sentiment" / "en" / f"{split}.jsonl",
                      [{"text": _text(rng, "en", LABELS[i % 2], i), "label": LABELS[i % 2]} for i in range(n)])
    for lang in langs:
        write_jsonl_p(root / "sentiment" / lang / "unlabeled.jsonl", [{"text": _text(rng, lang, LABELS[i % 2], i)} for i in range(16)])
        for split in ("dev", "test"):
            write_jsonl_p(root / "sentiment" / lang / f"{split}.jsonl",
                          [{"text": _text(rng, lang, LABELS[i % 2], i), "label": LABELS[i % 2]} for i in range(10)])
    return root


def write_jsonl_p(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_jsonl(path, rows)


CONFIG = {
    "experiment": {"encoder": "hashing", "languages": ["ko", "ar"], "seeds": [0, 1], "retriever": "exact", "recipe": "lda agree"},
    "head": {"epochs": 3},
    "variants": [
        {"name": "none mixup", "projector": "none", "interpolator": "mixup"},
        {"name": "lda agree", "projector": "lda", "adopter": {"name": "agree", "options": {"k": 3}}},
    ],
}


def test_grid_results_and_resume(tmp_path):
    data = make_benchmark(tmp_path / "data")
    out = tmp_path / "out"
    res = xite.experiment(data, "sentiment", config=CONFIG, out=out, progress=False)
    methods = ["zero-shot", "self-training", "upper-bound", "none mixup", "lda agree"]
    assert list(res["methods"]) == methods
    assert res["cells"] == 2 * len(methods)
    for m in methods:
        for lang in ("ko", "ar"):
            row = res["methods"][m]["languages"][lang]
            assert row["test_accuracy"]["n"] == 2 and 0 <= row["test_accuracy"]["mean"] <= 1
            assert row["test_macro_f1"]["mean"] is not None and row["en_test_accuracy"]["mean"] is not None
    agree = res["methods"]["lda agree"]["languages"]["ko"]
    assert 0 <= agree["pseudo_label_kept_dev"]["mean"] <= 1  # the dev diagnostic is reported
    assert res["recipe"]["name"] == "lda agree" and set(res["recipe"]["vs_zero_shot"]) == {"ko", "ar"}
    assert set(res["best_on_target_dev_reference"]) == {"ko", "ar"}
    md = (out / "results.md").read_text()
    assert "Recipe vs zero-shot" in md and "Pseudo-label accuracy on target dev" in md and "Reference only" in md
    assert json.loads((out / "results.json").read_text())["cells"] == 10
    lines = (out / "cells.jsonl").read_text().splitlines()
    assert len(lines) == 10

    # Resume: an interrupted last line is ignored and only that cell is recomputed.
    (out / "cells.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])
    again = xite.experiment(data, "sentiment", config=CONFIG, out=out, progress=False)
    assert again["methods"]["zero-shot"] == res["methods"]["zero-shot"]
    assert len((out / "cells.jsonl").read_text().splitlines()) == 11  # 9 reused + the cut line + 1 recomputed
    # A changed setting is not mistaken for a finished cell.
    changed = {**CONFIG, "head": {"epochs": 2}}
    xite.experiment(data, "sentiment", config=changed, out=out, seeds=[0], progress=False)
    assert len((out / "cells.jsonl").read_text().splitlines()) == 16


def test_experiment_bad_config_and_data(tmp_path):
    data = make_benchmark(tmp_path / "data")
    with pytest.raises(ConfigError, match="recipe"):
        xite.experiment(data, "sentiment", config={**CONFIG, "experiment": {**CONFIG["experiment"], "recipe": "nope"}},
                        out=tmp_path / "o", progress=False)
    with pytest.raises(XiteError, match="no such task"):
        xite.experiment(data, "nli", config=CONFIG, out=tmp_path / "o", progress=False)
    with pytest.raises(XiteError, match="missing"):
        xite.experiment(data, "sentiment", config=CONFIG, languages=["hi"], out=tmp_path / "o", progress=False)
    bad = tmp_path / "bad.toml"
    bad.write_text("[experiment\n")
    code = main(["experiment", "--data", str(data), "--task", "sentiment", "--config", str(bad), "--quiet"])
    assert code == 2


def test_cli_experiment_with_toml(tmp_path, capsys):
    data = make_benchmark(tmp_path / "data", langs=("ko",))
    cfg = tmp_path / "c.toml"
    cfg.write_text('[experiment]\nencoder = "hashing"\nlanguages = ["ko"]\nseeds = [0]\nrecipe = "lda+linear"\n'
                   '[head]\nepochs = 2\n[[variants]]\nname = "lda+linear"\n')
    out = tmp_path / "out"
    assert main(["experiment", "--data", str(data), "--task", "sentiment", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert "zero-shot" in capsys.readouterr().out
    assert (out / "results.json").is_file() and (out / "results.md").is_file()


def test_default_config_is_valid():
    from xite.experiments import load_config, variants_of

    cfg = load_config()
    names = [v.name for v in variants_of(cfg)]
    assert cfg["experiment"]["recipe"] in names and len(cfg["experiment"]["seeds"]) == 3
    assert {"none+linear", "pca+mixup", "lda+linear"} <= set(names)
    assert any(v.adopter.name == "agree" for v in variants_of(cfg))


def test_agree_keeps_only_rows_where_neighbour_and_classifier_agree():
    adopter = plugins.create("adopters", "agree", {})
    scores = np.array([[0.9], [0.8], [0.7]], dtype=np.float32)
    ids = np.array([[0], [1], [0]])
    source_labels = np.array([1, 0])
    probs = np.array([[0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    a = adopter.adopt(scores, ids, source_labels, AdoptionContext(n_classes=2, predictions=probs))
    assert a.labels.tolist() == [1, 0, 1]
    assert a.keep.tolist() == [True, False, False]
    strict = plugins.create("adopters", "agree", {"min_prob": 0.9})
    assert not strict.adopt(scores, ids, source_labels, AdoptionContext(2, probs)).keep.any()
    with pytest.raises(ConfigError, match="predictions"):
        adopter.adopt(scores, ids, source_labels, AdoptionContext(n_classes=2))


def test_agree_with_k_votes_and_balance():
    """Votes: row 0 -> 1, row 1 -> 0, row 2 -> 1, row 3 -> 0. The classifier agrees on rows 0-2
    only; balancing keeps one row per class, the more similar of the two label-1 rows (row 0)."""
    adopter = plugins.create("adopters", "agree", {"k": 3, "balance": True})
    scores = np.array([[0.9, 0.5, 0.4], [0.9, 0.5, 0.4], [0.8, 0.5, 0.4], [0.9, 0.5, 0.4]], dtype=np.float32)
    ids = np.array([[0, 0, 1], [1, 1, 0], [0, 0, 0], [1, 1, 1]])
    source_labels = np.array([1, 0])
    probs = np.array([[0.1, 0.9], [0.9, 0.1], [0.2, 0.8], [0.2, 0.8]])
    a = adopter.adopt(scores, ids, source_labels, AdoptionContext(2, probs))
    assert a.labels.tolist() == [1, 0, 1, 0]
    assert a.keep.tolist() == [True, True, False, False]


@pytest.mark.slow
def test_real_e5_train_and_evaluate_on_a_slice(tmp_path, shared_data, e5):
    """Real encoder, real text: a head on 400 English SST-2 rows beats chance on Korean NSMC."""
    def head(path, n):
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:n]]

    en = write_jsonl(tmp_path / "en.jsonl", head(shared_data / "sentiment/en/train.jsonl", 400))
    dev = write_jsonl(tmp_path / "dev.jsonl", head(shared_data / "sentiment/en/dev.jsonl", 100))
    ko = write_jsonl(tmp_path / "ko.jsonl", head(shared_data / "sentiment/ko/test.jsonl", 100))
    xite.train(en, dev=dev, out=tmp_path / "m", head_options={"epochs": 20}, progress=False)
    res = xite.evaluate(tmp_path / "m", {"ko": ko}, progress=False)
    assert res["ko"]["accuracy"] > 0.6
