"""`xite finetune` as a user runs it: the recipe's components make the XITE rows through the
stages, `--pairs` reads an augment run, `evaluate` and `predict` read the model directory. A tiny
random BERT built here stands in for e5-small (offline, seconds)."""

import json

import numpy as np
import pytest

from helpers import run_cli, write_jsonl
from test_finetune import NEG, NEG_T, POS, POS_T, _sentences, tiny_dir  # noqa: F401  (the fixture)

FAST = ["--max-steps", "3", "--batch-size", "8", "--max-length", "32", "--device", "cpu", "--quiet",
        "--lr-encoder", "1e-3", "--lr-head", "1e-2"]



@pytest.fixture
def corpora(tmp_path):
    rng = np.random.default_rng(0)
    texts, labels = _sentences(rng, 40, POS, NEG)
    names = ["positive", "negative"]
    en = write_jsonl(tmp_path / "en.jsonl", [{"text": t, "label": names[y]} for t, y in zip(texts, labels)])
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"text": t, "label": names[y]} for t, y in zip(texts[:16], labels[:16])])
    tt, ty = _sentences(rng, 24, POS_T, NEG_T)
    xx = write_jsonl(tmp_path / "xx.jsonl", [{"text": t} for t in tt])
    # A third "language": the target words with the source's filler words doubled.
    yy = write_jsonl(tmp_path / "yy.jsonl", [{"text": t + " " + t.split()[0] + " so so"} for t in tt])
    test = write_jsonl(tmp_path / "test.jsonl", [{"text": t, "label": names[y]} for t, y in zip(tt, ty)])
    return {"en": en, "dev": dev, "xx": xx, "yy": yy, "test": test}


def test_finetune_with_targets_then_evaluate_and_predict_agree(tmp_path, corpora, tiny_dir, capsys):  # noqa: F811
    out = tmp_path / "model"
    code, stdout, err = run_cli(["finetune", corpora["en"], "-t", f"xx={corpora['xx']}", "-t", f"yy={corpora['yy']}",
                             "--encoder", f"hf:{tiny_dir}", "--projector", "lda", "--adopter", "vote", "-O", "adopter.k=3",
                             "--lam", "0.3", "--dev", corpora["dev"], "--out", out, *FAST], capsys)
    assert code == 0, err
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["training"]["rows"]["xite"] == 48  # 24 rows per language, top-3 vote keeps every row
    assert cfg["training"]["steps"] == 3 and cfg["training"]["projection"]["rank"] == 2  # lda over 3 languages
    from transformers import AutoModel

    AutoModel.from_pretrained(str(out / "encoder"))  # plain transformers reads the encoder
    code, stdout, err = run_cli(["evaluate", out, "--test", f"xx={corpora['test']}", "--json", "--quiet"], capsys)
    assert code == 0, err
    confusion = json.loads(stdout)["xx"]["confusion"]
    code, _, err = run_cli(["predict", out, corpora["test"], "--out", tmp_path / "pred.jsonl", "--quiet"], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    gold = [row["gold_label"] for row in rows]
    pred = [row["label"] for row in rows]
    names = ["negative", "positive"]
    recounted = [[sum(1 for g, p in zip(gold, pred) if g == a and p == b) for b in names] for a in names]
    assert recounted == confusion
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in rows)


def test_pairs_from_an_augment_run_are_used_as_they_are(tmp_path, corpora, tiny_dir, capsys):  # noqa: F811
    run = tmp_path / "run"
    code, _, err = run_cli(["augment", corpora["en"], "-t", f"xx={corpora['xx']}", "--encoder", f"hf:{tiny_dir}", "--projector",
                        "none", "--adopter", "vote", "-O", "adopter.k=3", "-O", "adopter.min_margin=0.5", "--out", run, "--quiet"], capsys)
    assert code == 0, err
    kept = json.loads((run / "manifest.json").read_text())["counts"]["synthetic"]
    out = tmp_path / "model"
    code, _, err = run_cli(["finetune", corpora["en"], "-t", f"xx={corpora['xx']}", "--pairs", run, "--encoder", f"hf:{tiny_dir}",
                        "--projector", "none", "--out", out, *FAST], capsys)
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["training"]["rows"]["xite"] == kept
    # The run was made from xx, not yy: refused, naming the manifest.
    code, _, err = run_cli(["finetune", corpora["en"], "-t", f"yy={corpora['yy']}", "--pairs", run, "--encoder", f"hf:{tiny_dir}",
                        "--out", tmp_path / "m2", *FAST], capsys)
    assert code == 2 and "manifest.json" in err and "target" in err and not (tmp_path / "m2").exists()


def test_plain_fine_tuning_and_one_line_errors(tmp_path, corpora, tiny_dir, capsys):  # noqa: F811
    out = tmp_path / "zs"
    code, _, err = run_cli(["finetune", corpora["en"], "--encoder", f"hf:{tiny_dir}", "--out", out, *FAST], capsys)
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["training"]["rows"]["xite"] == 0
    code, _, err = run_cli(["finetune", corpora["en"], "--pairs", tmp_path, "--encoder", f"hf:{tiny_dir}", "--out", tmp_path / "x", *FAST], capsys)
    assert code == 2 and "--pairs needs the --target" in err
    code, _, err = run_cli(["finetune", corpora["en"], "--encoder", f"hf:{tiny_dir}", "--mix-at", "layer:9", "-t", f"xx={corpora['xx']}",
                        "--out", tmp_path / "y", *FAST], capsys)
    assert code == 2 and "mix_at" in err and not (tmp_path / "y").exists()
