"""The ray executor writes the same synthetic rows as the local one, as shards, and every reader of
a run directory reads both layouts. Skipped when Ray is not installed (pip install 'xite[ray]')."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import xite
from xite.errors import ConfigError, InputError
from xite.run_io import iter_run_shards, read_run

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.plugins("xite-hashing")  # the model-free encoder keeps these fast

TENSORS = ("embeddings", "labels", "lam", "target_index", "source_index", "similarity")


@pytest.fixture(scope="module")
def local_ray():
    # One local Ray for the module: starting it costs more than the runs themselves. Its workers
    # inherit the environment now, so the plugin selection must be made before it starts.
    from conftest import select_plugins

    select_plugins("xite-hashing")
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def pairs_rows(run_dir):
    """pairs.jsonl of a single-file run, or the shards' pairs files concatenated in manifest order."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    names = [s["pairs"] for s in manifest["shards"]] if "shards" in manifest else ["pairs.jsonl"]
    return [json.loads(line) for name in names for line in (run_dir / name).read_text(encoding="utf-8").splitlines()]


def assert_same_rows(local_dir, ray_dir):
    local, sharded = read_run(local_dir), read_run(ray_dir)
    # Block order is preserved: the shards concatenate to the local arrays, row for row, bit for bit ...
    for name in TENSORS:
        assert sharded.tensors[name].dtype == local.tensors[name].dtype
        if name != "similarity":
            np.testing.assert_array_equal(sharded.tensors[name], local.tensors[name], err_msg=name)
    # ... except the cosine scores: faiss computes them with BLAS, whose float32 sums depend on how
    # many queries are searched at once (a block vs the whole corpus): they may differ in the last bit.
    np.testing.assert_allclose(sharded.tensors["similarity"], local.tensors["similarity"], rtol=0, atol=1e-6)
    ray_pairs, local_pairs = pairs_rows(ray_dir), pairs_rows(local_dir)
    assert len(ray_pairs) == len(local_pairs)
    for a, b in zip(ray_pairs, local_pairs):
        assert abs(a.pop("similarity") - b.pop("similarity")) <= 2e-6
        assert a == b
    return local, sharded


def test_demo_cli_ray_matches_local(tmp_path, local_ray):
    runner = CliRunner()
    common = ["augment", "--demo", "--encoder", "hashing", "--interpolator", "mixup", "--per-target", "2",
              "--seed", "3", "--projector", "lda", "-q"]
    from xite.cli import app

    res = runner.invoke(app, common + ["--out", str(tmp_path / "local")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, common + ["--out", str(tmp_path / "ray"), "--executor", "ray", "--ray-option", "block_rows=7"])
    assert res.exit_code == 0, res.output
    local, sharded = assert_same_rows(tmp_path / "local", tmp_path / "ray")

    info = sharded.info
    assert not (tmp_path / "ray" / "synthetic.safetensors").exists()
    assert len(info.shards) > 1 and sum(s["rows"] for s in info.shards) == len(local.tensors["labels"])
    assert info.executor["name"] == "ray" and info.executor["block_rows"] == 7
    # mixup λ really differs per row, so equality above is a test of the λ order, not of a constant
    assert len(set(sharded.tensors["lam"].tolist())) > 100
    # The manifest's per-language accounting is the local one.
    assert info.targets == local.info.targets and info.counts == local.info.counts
    assert info.projection == local.info.projection
    # Streaming readers see the same rows one shard at a time.
    parts = list(iter_run_shards(tmp_path / "ray"))
    assert len(parts) == len(info.shards)
    np.testing.assert_array_equal(np.concatenate([p["embeddings"] for p in parts]), local.tensors["embeddings"])


def test_real_ko_ar_vote_balance_ray_matches_local(tmp_path, shared_data, local_ray):
    """Class balancing needs every row's label: the ray executor adopts on the driver over all
    neighbours, so balance gives the local executor's rows too."""
    d = shared_data / "sentiment"
    kw = dict(encoder="hashing", adopter="vote", adopter_options={"k": 5, "balance": True}, projector="lda",
              interpolator="mixup", seed=7, progress=False)
    targets = {"ko": d / "ko" / "unlabeled.jsonl", "ar": d / "ar" / "unlabeled.jsonl"}
    local = xite.augment(d / "en" / "train.jsonl", targets, out=tmp_path / "local", **kw)
    result = xite.augment(d / "en" / "train.jsonl", targets, out=tmp_path / "ray", executor="ray",
                          ray_options={"block_rows": 1000}, **kw)
    _, sharded = assert_same_rows(tmp_path / "local", tmp_path / "ray")
    assert result.embeddings is None and result.out_dir == tmp_path / "ray"
    np.testing.assert_array_equal(result.lam, local.lam)
    counts = sharded.info.counts
    assert counts["filtered"] > 0  # balancing dropped rows, identically in both executors
    assert len(set(counts["label_distribution"].values())) == 1
    assert len(sharded.info.shards) == 5  # 3000 ko + 1780 ar rows in blocks of 1000


def test_projection_fitted_on_a_seeded_sample_and_shards_checked(tmp_path, local_ray):
    from xite.demo import demo_paths

    paths = demo_paths()
    targets = {lang: p for lang, p in paths.items() if lang != "en"}
    run_dir = tmp_path / "a"
    xite.augment(paths["en"], targets, out=run_dir, encoder="hashing", projector="lda", progress=False,
                 executor="ray", ray_options={"fit_sample": 20, "block_rows": 50})
    run = read_run(run_dir)
    # 20 of each target's 44 rows fit the basis; the English rows are all used, as locally
    assert run.info.projection["info"]["rows_per_language"] == {"en": 64, "ko": 20, "ar": 20, "hi": 20, "ur": 20}
    # every target row still becomes a synthetic row: the sample only fits the basis
    assert len(run.tensors["labels"]) == 4 * 44

    # A shard that disagrees with the manifest, or is missing, is a one-line error.
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["shards"][1]["rows"] += 1
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="the manifest says"):
        read_run(run_dir)
    (run_dir / manifest["shards"][0]["synthetic"]).unlink()
    with pytest.raises(InputError, match="missing"):
        read_run(run_dir)


def test_ray_refusals_are_one_line_errors(tmp_path):
    from xite.demo import demo_paths

    paths = demo_paths()
    with pytest.raises(ConfigError, match="give an output directory"):
        xite.augment(paths["en"], {"ko": paths["ko"]}, encoder="hashing", executor="ray", progress=False)
    with pytest.raises(ConfigError, match="unknown ray option"):
        xite.augment(paths["en"], {"ko": paths["ko"]}, encoder="hashing", executor="ray", out=tmp_path / "x",
                     ray_options={"blocks": 3}, progress=False)
    assert not (tmp_path / "x").exists()


def test_gpu_options_without_gpus_fail_before_any_work(tmp_path, local_ray):
    from xite.demo import demo_paths

    paths = demo_paths()
    with pytest.raises(ConfigError, match="has no GPUs"):
        xite.augment(paths["en"], {"ko": paths["ko"]}, encoder="hashing", executor="ray", out=tmp_path / "g",
                     ray_options={"num_gpus": 1}, progress=False)
    assert not (tmp_path / "g").exists()
