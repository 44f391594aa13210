"""`xite experiment --level encoder` on a tiny benchmark with a tiny random BERT built here: every
arm runs, cells resume, and `--summarise` reports a grid stopped part-way without training."""

import json

import numpy as np

import xite
from helpers import write_jsonl
from test_finetune import NEG, NEG_T, POS, POS_T, _sentences, tiny_dir  # noqa: F401  (the fixture)

NAMES = ["negative", "positive"]


def _benchmark(root):
    rng = np.random.default_rng(0)
    for lang in ("en", "xx"):
        (root / "sentiment" / lang).mkdir(parents=True)

    def labeled(path, n, pos, neg):
        texts, labels = _sentences(rng, n, pos, neg)
        return write_jsonl(path, [{"text": t, "label": NAMES[1 - y]} for t, y in zip(texts, labels)])

    for split, n in (("train", 40), ("dev", 12), ("test", 12)):
        labeled(root / "sentiment" / "en" / f"{split}.jsonl", n, POS, NEG)
    for split, n in (("dev", 10), ("test", 12)):
        labeled(root / "sentiment" / "xx" / f"{split}.jsonl", n, POS_T, NEG_T)
    texts, _ = _sentences(rng, 16, POS_T, NEG_T)
    write_jsonl(root / "sentiment" / "xx" / "unlabeled.jsonl", [{"text": t} for t in texts])
    return root


def _config(tiny, seeds):
    return {"experiment": {"encoder": f"hf:{tiny}", "retriever": "exact", "languages": ["xx"], "seeds": seeds},
            "budget": {"english_rows": 40, "target_rows": 16, "dev_rows": 12, "test_rows": 12, "en_test_rows": 12, "steps": 2},
            "finetune": {"batch_size": 4, "max_length": 16, "train_layers": 1, "device": "cpu", "lr_encoder": 1e-3}}


def test_every_arm_runs_then_resumes_and_summarises(tmp_path, tiny_dir):  # noqa: F811
    data, out = _benchmark(tmp_path / "data"), tmp_path / "out"
    res = xite.experiment(data, "sentiment", config=_config(tiny_dir, [0]), out=out, level="encoder", progress=False)
    methods = res["methods"]
    assert list(methods) == ["zero-shot-ft", "xite-paper", "xite-best", "self-training", "adapt", "upper-bound"]
    for name, row in methods.items():
        assert row["languages"]["xx"]["test_accuracy"]["n"] == 1, name
    assert res["timing_s"]["cells_computed"] == 6 and len((out / "cells.jsonl").read_text().splitlines()) == 6
    assert (out / "results.md").is_file() and (out / "report.html").is_file()
    assert list((out / "models").iterdir()) == [out / "models" / "zero-shot-ft-seed0"]  # only the zero-shot model is kept

    again = xite.experiment(data, "sentiment", config=_config(tiny_dir, [0]), out=out, level="encoder", progress=False)
    assert again["timing_s"]["cells_reused"] == 6 and again["timing_s"]["cells_computed"] == 0
    assert again["methods"] == methods

    # Seed 1 was never run: --summarise trains nothing and reports seed 0's cells.
    partial = xite.experiment(data, "sentiment", config=_config(tiny_dir, [0, 1]), out=out, level="encoder", progress=False,
                              compute=False)
    assert partial["timing_s"]["cells_in_grid"] == 12 and partial["timing_s"]["cells_computed"] == 0
    assert partial["methods"]["xite-paper"]["languages"]["xx"]["test_accuracy"] == methods["xite-paper"]["languages"]["xx"]["test_accuracy"]
    assert len((out / "cells.jsonl").read_text().splitlines()) == 6


def test_the_grid_puts_zero_shot_and_xite_arms_of_every_seed_first(tmp_path, tiny_dir):  # noqa: F811
    from xite.experiments.encoder_level import EncoderGrid, arms_of, default_encoder_config
    from xite.experiments.config import merge

    cfg = merge(default_encoder_config(), {"experiment": {"seeds": [0, 1], "languages": ["ko", "ar"]}})
    grid = EncoderGrid({}, cfg, arms_of(cfg), tmp_path, "sentiment", False, print).grid()
    first_baseline = min(i for i, (arm, _, _) in enumerate(grid) if arm in ("self-training", "adapt", "upper-bound"))
    assert all(arm in ("zero-shot-ft", "xite-paper", "xite-best") for arm, _, _ in grid[:first_baseline])
    assert first_baseline == 2 * (1 + 2 * 2) and len(grid) == 2 * (1 + 2 * 5)
    assert json.dumps(grid[0]) == json.dumps(["zero-shot-ft", None, 0])


def test_a_cell_interrupted_mid_training_resumes_and_states_its_whole_time(tmp_path, tiny_dir, monkeypatch):  # noqa: F811
    import pytest

    import xite.finetuning.loop as loop

    data, out = _benchmark(tmp_path / "data"), tmp_path / "out"
    cfg = _config(tiny_dir, [0])
    cfg["finetune"]["checkpoint_every"] = 1
    real = loop.train_encoder
    interrupted = []

    def stop_xite_paper_once(*args, **kw):
        if "xite-paper" in str(args[4]) and not interrupted:
            def log(event):
                if event["event"] == "step" and event["step"] == 2:
                    interrupted.append(True)
                    raise KeyboardInterrupt
            kw["log"] = log
        return real(*args, **kw)

    monkeypatch.setattr(loop, "train_encoder", stop_xite_paper_once)
    with pytest.raises(KeyboardInterrupt):
        xite.experiment(data, "sentiment", config=cfg, out=out, level="encoder", progress=False)
    assert interrupted and (out / "models" / "xite-paper-xx-seed0" / "checkpoint" / "state.pt").is_file()
    xite.experiment(data, "sentiment", config=cfg, out=out, level="encoder", progress=False)
    cells = {c["method"]: c for c in map(json.loads, (out / "cells.jsonl").read_text().splitlines())}
    assert set(cells) == {"zero-shot-ft", "xite-paper", "xite-best", "self-training", "adapt", "upper-bound"}
    earlier = cells["xite-paper"]["seconds_before_resume"]
    assert earlier > 0 and cells["xite-paper"]["seconds"] > earlier
    assert all("seconds_before_resume" not in c for m, c in cells.items() if m != "xite-paper")
