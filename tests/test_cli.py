"""The CLI: composition, the summary, and one-line errors with exit code 2 and no output left."""

import json

import pytest

from helpers import run_cli, sentiment_files, write_jsonl

pytestmark = pytest.mark.plugins("xite-hashing")  # the model-free encoder keeps these fast

BASE = ["--encoder", "hashing", "--quiet"]



@pytest.fixture
def files(tmp_path):
    return sentiment_files(tmp_path)


def test_augment_writes_and_summarises(tmp_path, files, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(["augment", files["en"], "--target", f"ko={files['ko']}", "--target", f"ar={files['ar']}",
                               "--projector", "lda", "--retriever", "faiss", "--per-target", "2", "--out", out, *BASE], capsys)
    assert code == 0
    assert "rank 2" in stdout and "synthetic rows: 18" in stdout and str(out) in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["synthetic"] == 18
    assert manifest["components"]["retriever"]["options"]["index"] == "flat"


def test_generic_and_named_options(tmp_path, files, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(["augment", files["en"], "-t", f"ko={files['ko']}", "--projector", "pca", "--option", "projector.rank=2",
                            "--option", "projector.mode=remove", "--adopter", "vote", "--option", "adopter.k=3",
                            "--option", "encoder.dim=64", "--out", out, *BASE], capsys)
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["encoder"]["dim"] == 64
    assert manifest["projection"] ["mode"] == "remove" and manifest["projection"]["rank"] == 2
    assert manifest["components"]["adopter"]["options"]["k"] == 3


def test_plugins_lists_kind_name_package(capsys):
    code, stdout, _ = run_cli(["plugins"], capsys)
    assert code == 0
    assert "lda" in stdout and "hashing" in stdout and "xite-hashing" in stdout and "kernel backend" in stdout


def _bad(tmp_path, files):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    malformed = tmp_path / "bad.jsonl"
    malformed.write_text('{"text": "ok", "label": "positive"}\n{"text": "oops", "label": \n')
    nofield = write_jsonl(tmp_path / "nofield.jsonl", [{"text": "a", "label": "positive"}, {"body": "b", "label": "negative"}])
    labeled_target = write_jsonl(tmp_path / "lt.jsonl", [{"text": "좋다"}, {"text": "나쁘다", "label": "negative"}])
    one_label = write_jsonl(tmp_path / "one.jsonl", [{"text": "a", "label": "positive"}, {"text": "b", "label": "positive"}])
    ko = f"ko={files['ko']}"
    return {
        "missing file": ([tmp_path / "nope.jsonl", "-t", ko], "nope.jsonl"),
        "empty file": ([empty, "-t", ko], "empty.jsonl"),
        "malformed line": ([malformed, "-t", ko], "bad.jsonl:2"),
        "missing field": ([nofield, "-t", ko], "nofield.jsonl:2"),
        "label on unlabeled row": ([files["en"], "-t", f"ko={labeled_target}"], "lt.jsonl:2"),
        "one label": ([one_label, "-t", ko], "at least two labels"),
        "unknown component": ([files["en"], "-t", ko, "--projector", "ica"], "registered projectors"),
        "bad target spec": ([files["en"], "-t", "ko"], "LANG=PATH"),
    }


@pytest.mark.parametrize("case", ["missing file", "empty file", "malformed line", "missing field", "label on unlabeled row",
                                  "one label", "unknown component", "bad target spec"])
def test_bad_input_is_one_line_exit_2_no_output(tmp_path, files, capsys, case):
    args, expected = _bad(tmp_path, files)[case]
    out = tmp_path / "out"
    code, _, err = run_cli(["augment", *args, "--out", out, *BASE], capsys)
    assert code == 2
    assert expected in err
    assert "Traceback" not in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")], "no temp dir left"


def test_existing_output_is_refused_then_overwritten(tmp_path, files, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run_cli(["augment", files["en"], "-t", f"ko={files['ko']}", "--out", out, *BASE], capsys)
    assert code == 2 and "--overwrite" in err and (out / "keep.txt").exists()
    code, _, _ = run_cli(["augment", files["en"], "-t", f"ko={files['ko']}", "--out", out, "--overwrite", *BASE], capsys)
    assert code == 0 and not (out / "keep.txt").exists() and (out / "manifest.json").exists()


def test_ctrl_c_while_writing_leaves_nothing(tmp_path, files, capsys, monkeypatch):
    import xite.data.writers as writers

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(writers, "write_jsonl", interrupted)
    monkeypatch.setattr("xite.run_io.write_jsonl", interrupted)
    out = tmp_path / "out"
    code, _, err = run_cli(["augment", files["en"], "-t", f"ko={files['ko']}", "--out", out, *BASE], capsys)
    assert code == 130 and "interrupted" in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_precision_shorthand_is_checked_as_an_encoder_option(tmp_path, files, capsys):
    code, _, err = run_cli(["augment", files["en"], "-t", f"ko={files['ko']}", "--encoder", "e5-small", "--precision", "fp16",
                            "--out", tmp_path / "run", "--quiet"], capsys)
    assert code == 2 and "precision" in err and "fp16" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
