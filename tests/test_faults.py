"""Faults a user can cause or meet, by class: each ends in a clean exit (2 with one line, or 0 with a
warning line where that is the rule), with no traceback, no partial output and inputs untouched."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from faults import AUG, BASE, EN, KO, assert_no_leftovers, assert_refused, fault, lines, run_cli, snapshot, write_jsonl

pytestmark = pytest.mark.plugins("xite-hashing")


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """data/ (the inputs), home/ (XITE_HOME), and room for outputs beside them."""
    data = tmp_path / "data"
    home = tmp_path / "home"
    monkeypatch.setenv("XITE_HOME", str(home))
    en = write_jsonl(data / "en.jsonl", [{"text": t, "label": y} for t, y in EN])
    ko = write_jsonl(data / "ko.jsonl", [{"text": t} for t in KO])

    class W:
        pass

    w = W()
    w.root, w.data, w.home, w.en, w.ko = tmp_path, data, home, en, ko
    w.augment = lambda out, *more: ["augment", en, "-t", f"ko={ko}", "--out", out, *AUG, *more]
    return w


def _run(ws, capsys, out=None):
    """A finished augment run (for train/evaluate cases)."""
    out = out or ws.root / "run"
    code, _, err = run_cli(ws.augment(out), capsys)
    assert code == 0, err
    return out


def _model(ws, capsys):
    out = ws.root / "model"
    code, _, err = run_cli(["train", "--source", ws.en, "--encoder", "hashing", "--out", out, "--quiet", "--epochs", "2"], capsys)
    assert code == 0, err
    return out


# ---------------------------------------------------------------------------------------------
# lost data: an output never replaces an input


@fault("lost-data")
@pytest.mark.parametrize("where", ["data folder", "parent of data", "source file", "XITE_HOME", "parent of XITE_HOME"])
def test_overwrite_never_deletes_inputs(ws, capsys, where):
    _run(ws, capsys, ws.root / "warm")  # XITE_HOME now holds a cache worth losing
    out = {"data folder": ws.data, "parent of data": ws.root, "source file": ws.en, "XITE_HOME": ws.home,
           "parent of XITE_HOME": ws.root}[where]
    before = snapshot(ws.root)
    code, _, err = run_cli(ws.augment(out, "--overwrite"), capsys)
    assert_refused(code, err, "never replaces an input")
    assert_no_leftovers(ws.root, before, ws.home)


@fault("lost-data")
def test_train_never_replaces_the_run_it_reads(ws, capsys):
    run = _run(ws, capsys)
    before = snapshot(ws.root)
    code, _, err = run_cli(["train", "--source", ws.en, "--synthetic", run, "--out", run, "--overwrite", "--quiet"], capsys)
    assert_refused(code, err, "never replaces an input")
    assert_no_leftovers(ws.root, before, ws.home)


@fault("lost-data")
def test_train_never_replaces_the_folder_of_its_source(ws, capsys):
    before = snapshot(ws.root)
    code, _, err = run_cli(["train", "--source", ws.en, "--encoder", "hashing", "--out", ws.data, "--overwrite", "-q"], capsys)
    assert_refused(code, err, "never replaces an input")
    assert_no_leftovers(ws.root, before, ws.home)


@fault("lost-data")
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_encoder_returning_non_finite_values_caches_nothing(ws, capsys, monkeypatch, bad):
    import xite_hashing

    monkeypatch.setattr(xite_hashing.HashingEncoder, "encode",
                        lambda self, texts, batch_size=64, progress=True: np.full((len(texts), self.dim), bad, np.float32))
    before = snapshot(ws.root)
    code, _, err = run_cli(ws.augment(ws.root / "out"), capsys)
    assert_refused(code, err, "encoder hashing returned NaN or infinite values")
    after = snapshot(ws.root)
    assert not [p for p in after if p.endswith(".npy") or p.endswith(".tmp")], "no vectors cached"
    assert {k: v for k, v in after.items() if not k.startswith(str(ws.home))} == before


# ---------------------------------------------------------------------------------------------
# the embedding cache does not trust its files


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbled":
        path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8)))
    elif how == "zeroed":  # same size, same header: only the checksum can tell
        path.write_bytes(data[:128] + bytes(len(data) - 128))
    elif how == "wrong width":
        rows = np.load(path).shape[0]
        np.save(path, np.ones((rows, 3), np.float32))
    elif how == "nan":
        arr = np.load(path)
        arr[0, 0] = np.nan
        np.save(path, arr)


@fault("cache-integrity")
@pytest.mark.parametrize("legacy", [False, True], ids=["indexed", "legacy"])
@pytest.mark.parametrize("target,how", [("vecs", "truncated"), ("vecs", "empty"), ("vecs", "garbled"), ("vecs", "zeroed"),
                                        ("vecs", "wrong width"), ("vecs", "nan"), ("keys", "truncated"), ("keys", "garbled"),
                                        ("shard", "garbled")])
def test_damaged_shard_is_set_aside_and_recomputed(ws, capsys, target, how, legacy):
    clean = _run(ws, capsys, ws.root / "clean")
    cache = next(ws.home.glob("embeddings/*"))
    if legacy:  # a cache written before shards had index entries: layout checks only
        if target == "shard" or how == "zeroed":
            pytest.skip("without an index entry there is no checksum to compare")
        for entry in cache.glob("*.shard.json"):
            entry.unlink()
    victim = sorted(cache.glob(f"*.{target}.{'json' if target == 'shard' else 'npy'}"))[0]
    _damage(victim, how)
    before = snapshot(ws.data)
    code, _, err = run_cli(ws.augment(ws.root / "again"), capsys)
    assert code == 0, err
    assert "Traceback" not in err
    assert len(lines(err)) == 1 and lines(err)[0].startswith("warning:") and "set aside" in err, err
    assert list(cache.glob("*.bad")), "the damaged shard is kept aside for inspection"
    # Recomputed rows give exactly the neighbours (and output) of the clean run.
    assert (ws.root / "again" / "synthetic.safetensors").read_bytes() == (clean / "synthetic.safetensors").read_bytes()
    assert snapshot(ws.data) == before
    code, _, err = run_cli(ws.augment(ws.root / "third"), capsys)
    assert code == 0 and lines(err) == [], "the cache is whole again"


@fault("cache-integrity")
def test_empty_cache_file_is_not_an_interrupt(ws, capsys):
    _run(ws, capsys, ws.root / "warm")
    cache = next(ws.home.glob("embeddings/*"))
    for p in cache.glob("*.keys.npy"):
        p.write_bytes(b"")  # np.load raises EOFError here, which Click used to turn into "Abort"
    code, _, err = run_cli(ws.augment(ws.root / "again"), capsys)
    assert code == 0 and "interrupted" not in err and "set aside" in err


# ---------------------------------------------------------------------------------------------
# filesystem faults


@fault("filesystem")
def test_out_under_a_file(ws, capsys):
    blocker = ws.root / "blocker"
    blocker.write_text("a file, not a folder")
    before = snapshot(ws.root)
    code, _, err = run_cli(ws.augment(blocker / "run"), capsys)
    assert_refused(code, err, str(blocker))
    assert_no_leftovers(ws.root, before, ws.home)


@fault("filesystem")
def test_out_parent_not_writable(ws, capsys, monkeypatch):
    import tempfile

    def denied(*_a, **_k):  # the tests run as root, where chmod cannot make a folder unwritable
        raise PermissionError(errno.EACCES, "Permission denied", str(ws.root / ".run.tmp"))

    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    before = snapshot(ws.root)
    code, _, err = run_cli(ws.augment(ws.root / "run"), capsys)
    assert_refused(code, err, "Permission denied", str(ws.root / "run"))
    assert_no_leftovers(ws.root, before, ws.home)


@fault("filesystem")
def test_xite_home_is_a_file(ws, capsys, monkeypatch):
    ws.home.write_text("not a folder")
    before = snapshot(ws.root)
    code, _, err = run_cli(ws.augment(ws.root / "run"), capsys)
    assert_refused(code, err, "XITE_HOME", str(ws.home))
    assert_no_leftovers(ws.root, before, ws.home)


def _failing_open(err_no: int, after: int = 100):
    """open() whose files take ``after`` bytes and then fail like a full (or read-only) disk."""
    import builtins

    class Failing:
        def __init__(self, fh):
            self.fh, self.left = fh, after

        def write(self, data):
            if len(data) > self.left:
                self.fh.write(bytes(data[: self.left]))
                raise OSError(err_no, __import__("os").strerror(err_no), self.fh.name)
            self.left -= len(data)
            return self.fh.write(data)

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()
            return False

    def fake_open(file, mode="r", *a, **k):
        fh = builtins.open(file, mode, *a, **k)
        return Failing(fh) if "w" in mode else fh

    return fake_open


@fault("filesystem")
@pytest.mark.parametrize("err_no", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_cache_write_fails(ws, capsys, monkeypatch, err_no):
    import os

    import xite.encoders.cache as cache_mod

    monkeypatch.setattr(cache_mod, "open", _failing_open(err_no), raising=False)
    before = snapshot(ws.data)
    code, _, err = run_cli(ws.augment(ws.root / "run"), capsys)
    assert_refused(code, err, "embedding cache", os.strerror(err_no))
    assert not [p for p in ws.home.rglob("*") if p.is_file()], "no .tmp or half shard left in the cache"
    assert not (ws.root / "run").exists()
    assert snapshot(ws.data) == before


@fault("filesystem")
def test_disk_full_while_writing_the_run(ws, capsys, monkeypatch):
    import os

    _run(ws, capsys, ws.root / "warm")
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *a, **k: _wrap(real_fdopen(fd, mode, *a, **k), mode))
    before = snapshot(ws.root)
    code, _, err = run_cli(ws.augment(ws.root / "run"), capsys)
    assert_refused(code, err, "No space left on device")
    assert_no_leftovers(ws.root, before, ws.home)


def _wrap(fh, mode):
    if "w" not in mode:
        return fh

    class Full:
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device", fh.name if isinstance(fh.name, str) else None)

        def __getattr__(self, name):
            return getattr(fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            fh.close()
            return False

    return Full()


# ---------------------------------------------------------------------------------------------
# model and run directories are checked, not trusted


def _edit_json(path: Path, change) -> None:
    cfg = json.loads(path.read_text())
    cfg = change(cfg)
    path.write_text(json.dumps(cfg))


MODEL_EDITS = {
    "missing key": lambda c: {k: v for k, v in c.items() if k != "input_dim"},
    "unexpected key": lambda c: {**c, "surprise": 1},
    "wrong type": lambda c: {**c, "input_dim": "256"},
    "head unknown option": lambda c: {**c, "head": {**c["head"], "layers": 3}},
    "head lr not finite": lambda c: {**c, "head": {**c["head"], "lr": float("nan")}},
    "one label": lambda c: {**c, "label_names": ["positive"]},
    "not an object": lambda c: [c],
    "labels not strings": lambda c: {**c, "label_names": [1, 2]},
}


@fault("trusted-dirs")
@pytest.mark.parametrize("edit", sorted(MODEL_EDITS))
def test_bad_model_config(ws, capsys, edit):
    model = _model(ws, capsys)
    _edit_json(model / "config.json", MODEL_EDITS[edit])
    before = snapshot(ws.root)
    code, _, err = run_cli(["evaluate", model, "--test", f"en={ws.en}", "-q"], capsys)
    assert_refused(code, err, "config.json")
    assert_no_leftovers(ws.root, before, ws.home)


@fault("trusted-dirs")
@pytest.mark.parametrize("how", ["garbled", "nan", "truncated"])
def test_bad_head_weights(ws, capsys, how):
    from safetensors.torch import load_file, save_file

    model = _model(ws, capsys)
    weights = model / "head.safetensors"
    if how == "nan":
        state = load_file(str(weights))
        state["weight"][0, 0] = float("nan")
        save_file(state, str(weights))
    else:
        _damage(weights, how)
    before = snapshot(ws.root)
    code, _, err = run_cli(["evaluate", model, "--test", f"en={ws.en}", "-q"], capsys)
    assert_refused(code, err, "head.safetensors")
    assert_no_leftovers(ws.root, before, ws.home)


MANIFEST_EDITS = {
    "not an object": lambda m: [m],
    "targets entry a list": lambda m: {**m, "targets": [["ko"]]},
    "targets entry missing rows": lambda m: {**m, "targets": [{k: v for k, v in m["targets"][0].items() if k != "rows"}]},
    "encoder dim a string": lambda m: {**m, "encoder": {**m["encoder"], "dim": "256"}},
    "source a list": lambda m: {**m, "source": []},
    "extra_languages entry a string": lambda m: {**m, "extra_languages": ["ar"]},
    "recipe a list": lambda m: {**m, "recipe": []},
    "old manifest, bad components": lambda m: {**{k: v for k, v in m.items() if k != "recipe"},
                                               "components": {**m["components"], "retriever": ["exact"]}},
}


@fault("trusted-dirs")
@pytest.mark.parametrize("edit", sorted(MANIFEST_EDITS))
def test_bad_run_manifest(ws, capsys, edit):
    run = _run(ws, capsys)
    _edit_json(run / "manifest.json", MANIFEST_EDITS[edit])
    before = snapshot(ws.root)
    code, _, err = run_cli(["train", "--source", ws.en, "--synthetic", run, "--out", ws.root / "model", "-q"], capsys)
    assert_refused(code, err, "manifest.json")
    assert_no_leftovers(ws.root, before, ws.home)


# ---------------------------------------------------------------------------------------------
# experiment


def _task(ws, *, missing: str | None = None) -> Path:
    root = ws.root / "bench"
    files = {"en/train": [{"text": t, "label": y} for t, y in EN], "en/dev": [{"text": t, "label": y} for t, y in EN[:4] + EN[-4:]],
             "en/test": [{"text": t, "label": y} for t, y in EN], "ko/unlabeled": [{"text": t} for t in KO],
             "ko/dev": [{"text": KO[0], "label": "positive"}, {"text": KO[1], "label": "negative"}],
             "ko/test": [{"text": KO[2], "label": "positive"}, {"text": KO[3], "label": "negative"}]}
    for name, rows in files.items():
        if name != missing:
            write_jsonl(root / "senti" / f"{name}.jsonl", rows)
    return root


@fault("experiment")
@pytest.mark.parametrize("case", ["missing test file", "bad language", "unknown task", "language twice", "batch size 0"])
def test_experiment_failing_early_leaves_no_folder(ws, capsys, case):
    data = _task(ws, missing="ko/test" if case == "missing test file" else None)
    cfg = ws.root / "exp.toml"
    batch = "batch_size = 0\n" if case == "batch size 0" else ""
    cfg.write_text(f'[experiment]\nencoder = "hashing"\nseeds = [0]\n{batch}')
    langs = {"bad language": ["-l", "zz-Klingon!"], "language twice": ["-l", "ko", "-l", "ko"]}.get(case, ["-l", "ko"])
    out = ws.root / "exp"
    before = snapshot(ws.root)
    code, _, err = run_cli(["experiment", "--data", data, "--task", "nope" if case == "unknown task" else "senti",
                            "--config", cfg, "--out", out, *langs, "-q"], capsys)
    assert_refused(code, err)
    assert_no_leftovers(ws.root, before, ws.home)


@fault("experiment")
def test_experiment_out_never_holds_its_data(ws, capsys):
    data = _task(ws)
    cfg = ws.root / "exp.toml"
    cfg.write_text('[experiment]\nencoder = "hashing"\nseeds = [0]\n')
    before = snapshot(ws.root)
    code, _, err = run_cli(["experiment", "--data", data, "--task", "senti", "--config", cfg, "--out", ws.root, "-l", "ko", "-q"], capsys)
    assert_refused(code, err, "never replaces an input")
    assert_no_leftovers(ws.root, before, ws.home)


# ---------------------------------------------------------------------------------------------
# options


AUGMENT_OPTIONS = {
    "min_sim 2": (["--option", "adopter.min_sim=2"], "min_sim"),
    "min_sim nan": (["--option", "adopter.min_sim=nan"], "min_sim"),
    "min_sim NaN (JSON)": (["--option", "adopter.min_sim=NaN"], "min_sim"),
    "min_sim -1.5": (["--option", "adopter.min_sim=-1.5"], "min_sim"),
    "min_sim text": (["--option", "adopter.min_sim=high"], "min_sim"),
    "min_margin 2": (["--adopter", "vote", "--option", "adopter.min_margin=2"], "min_margin"),
    "k 0": (["--adopter", "vote", "--option", "adopter.k=0"], "k must be"),
    "k text": (["--adopter", "vote", "--option", "adopter.k=many"], "k must be"),
    "balance text": (["--option", "adopter.balance=maybe"], "balance"),
    "batch size 0": (["--batch-size", "0"], "batch size"),
    "batch size -1": (["--batch-size", "-1"], "batch size"),
    "option without kind": (["--option", "min_sim=0.5"], "KIND.KEY=VALUE"),
    "source language blank": (["--source-language", " "], "language code"),
    "source language klingon": (["--source-language", "zz-Klingon!"], "language code"),
}


@fault("options")
@pytest.mark.parametrize("case", sorted(AUGMENT_OPTIONS))
def test_augment_option_refused(ws, capsys, case):
    extra, expected = AUGMENT_OPTIONS[case]
    before = snapshot(ws.root)
    code, _, err = run_cli(ws.augment(ws.root / "run", *extra), capsys)
    assert_refused(code, err, expected)
    assert_no_leftovers(ws.root, before, ws.home)


@fault("options")
@pytest.mark.parametrize("lang", [" ", "", "zz-Klingon!", "k o", "english", "1x", "ko_KR"])
@pytest.mark.parametrize("flag", ["--target", "--extra-language"])
def test_language_codes_are_checked(ws, capsys, lang, flag):
    before = snapshot(ws.root)
    args = ["augment", ws.en, "--out", ws.root / "run", *AUG]
    args += ["-t", f"{lang}={ws.ko}"] if flag == "--target" else ["-t", f"ko={ws.ko}", "--extra-language", f"{lang}={ws.ko}"]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "Traceback" not in err and ("language" in err or "LANG=PATH" in err), err
    assert_no_leftovers(ws.root, before, ws.home)


TRAIN_OPTIONS = {
    "lr nan": ["--lr", "nan"], "lr inf": ["--lr", "inf"], "lr 0": ["--lr", "0"], "lr negative": ["--lr", "-1"],
    "epochs 0": ["--epochs", "0"], "patience -1": ["--patience", "-1"], "hidden 0": ["--head", "mlp", "--hidden", "0"],
    "batch size 0": ["--batch-size", "0"], "batch size -3": ["--batch-size", "-3"], "head unknown": ["--head", "tree"],
}


@fault("options")
@pytest.mark.parametrize("case", sorted(TRAIN_OPTIONS))
def test_train_option_refused(ws, capsys, case):
    before = snapshot(ws.root)
    code, _, err = run_cli(["train", "--source", ws.en, "--encoder", "hashing", "--out", ws.root / "model", "-q",
                            *TRAIN_OPTIONS[case]], capsys)
    assert_refused(code, err)
    assert_no_leftovers(ws.root, before, ws.home)


@fault("options")
@pytest.mark.parametrize("case", ["same language twice", "batch size 0", "bad language"])
def test_evaluate_option_refused(ws, capsys, case):
    model = _model(ws, capsys)
    other = write_jsonl(ws.data / "en2.jsonl", [{"text": t, "label": y} for t, y in EN[:4]])
    args = {"same language twice": ["--test", f"ko={ws.en}", "--test", f"ko={other}"],
            "batch size 0": ["--test", f"en={ws.en}", "--batch-size", "0"],
            "bad language": ["--test", f" ={ws.en}"]}[case]
    before = snapshot(ws.root)
    code, _, err = run_cli(["evaluate", model, *args, "-q"], capsys)
    assert_refused(code, err)
    assert_no_leftovers(ws.root, before, ws.home)


# ---------------------------------------------------------------------------------------------
# labels: the rules of docs/formats.md, said out loud


LABEL_CASES = {
    "numbers and strings merge": ([1, "1", 1.0, 1, 0, "0", 0, 0], "labels normalised"),
    "padded strings": ([" positive", "positive", "positive", "positive", "negative", "negative", "negative", "negative"],
                       "labels normalised"),
    "case variants": (["Positive", "positive", "positive", "positive", "negative", "negative", "negative", "negative"],
                      "differ only in case"),
}


@fault("labels")
@pytest.mark.parametrize("case", sorted(LABEL_CASES))
def test_label_rules_warn(ws, capsys, case):
    labels, expected = LABEL_CASES[case]
    src = write_jsonl(ws.data / "src.jsonl", [{"text": t, "label": y} for (t, _), y in zip(EN, labels)])
    before = snapshot(ws.data)
    code, _, err = run_cli(["augment", src, "-t", f"ko={ws.ko}", "--out", ws.root / "run", *AUG], capsys)
    assert code == 0, err
    assert "Traceback" not in err and len(lines(err)) == 1 and lines(err)[0].startswith("warning:") and expected in err, err
    assert snapshot(ws.data) == before
    names = json.loads((ws.root / "run" / "manifest.json").read_text())["label_names"]
    assert names == sorted({str(int(y)) if isinstance(y, (int, float)) else y.strip() for y in labels})


@fault("labels")
def test_conflicting_duplicates_warn_with_count(ws, capsys):
    rows = [{"text": t, "label": y} for t, y in EN] + [{"text": EN[0][0], "label": "negative"}, {"text": EN[4][0], "label": "positive"}]
    src = write_jsonl(ws.data / "src.jsonl", rows)
    code, _, err = run_cli(["augment", src, "-t", f"ko={ws.ko}", "--out", ws.root / "run", *AUG], capsys)
    assert code == 0 and len(lines(err)) == 1 and "2 texts appear with two different labels" in err and "lines 1 and 9" in err, err


@fault("labels")
@pytest.mark.parametrize("text", ["\u200b", "\u200b\u200c\u200d", " \u2060 ", "\ufeff", "\t\u00a0\u3000", "\u00ad"])
@pytest.mark.parametrize("where", ["source", "target"])
def test_invisible_text_is_an_error_naming_file_and_line(ws, capsys, text, where):
    if where == "source":
        path = write_jsonl(ws.data / "src.jsonl", [{"text": t, "label": y} for t, y in EN] + [{"text": text, "label": "positive"}])
        args = ["augment", path, "-t", f"ko={ws.ko}"]
    else:
        path = write_jsonl(ws.data / "tgt.jsonl", [{"text": KO[0]}, {"text": text}])
        args = ["augment", ws.en, "-t", f"ko={path}"]
    before = snapshot(ws.root)
    code, _, err = run_cli([*args, "--out", ws.root / "run", *AUG], capsys)
    line = len(EN) + 1 if where == "source" else 2
    assert_refused(code, err, f"{path.name}:{line}", "empty text")
    assert_no_leftovers(ws.root, before, ws.home)
