"""Recipes: one file holds a whole augment configuration; a run's manifest is a recipe that
reproduces the run byte for byte; command-line choices lie over a recipe."""

import json

import pytest

from xite.errors import ConfigError
from xite.recipe import ComponentSpec, Recipe, packaged_recipes
from helpers import run_cli, sentiment_files

pytestmark = pytest.mark.plugins("xite-hashing")

BASE = ["--encoder", "hashing", "--quiet"]



def test_toml_round_trip(tmp_path):
    rec = Recipe(adopter=ComponentSpec("vote", {"k": 5, "min_margin": 0.6, "balance": True}),
                 interpolator=ComponentSpec("mixup", {"alpha": 0.4}), seed=7, per_target=3)
    path = tmp_path / "r.toml"
    path.write_text(rec.to_toml())
    assert Recipe.from_file(path) == rec


@pytest.mark.parametrize("text, message", [
    ("sed = 1", "unknown key"),
    ("seed = -1", "seed must be an integer >= 0"),
    ("seed = true", "seed must be an integer"),
    ("per_target = 0", "per_target must be an integer >= 1"),
    ("[adopter]\nname = 'vote'\nk = 5", "unknown key"),
    ("adopter = 3", "a component is a name or a table"),
    ("seed = ", "not valid TOML"),
])
def test_bad_recipe_is_one_line_naming_the_file(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        Recipe.from_file(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value).strip()


def test_packaged_recipes_parse():
    names = packaged_recipes()
    assert {"paper", "vote-margin"} <= set(names)
    vm = Recipe.from_file("vote-margin")
    assert vm.adopter == ComponentSpec("vote", {"k": 5, "min_margin": 0.6})
    assert vm.interpolator.options["lam"] == 0.5


def test_manifest_reproduces_the_run_byte_for_byte(tmp_path, capsys):
    files = sentiment_files(tmp_path)
    first, second = tmp_path / "x", tmp_path / "y"
    code, _, err = run_cli(["augment", files["en"], "-t", f"ko={files['ko']}", "-t", f"ar={files['ar']}", "--projector", "pca",
                        "-O", "projector.rank=2", "--interpolator", "mixup", "-O", "interpolator.alpha=0.3", "--adopter", "vote",
                        "-O", "adopter.k=3", "--per-target", "2", "--seed", "5", "-O", "encoder.dim=128", "--out", first, *BASE], capsys)
    assert code == 0, err
    code, _, err = run_cli(["augment", files["en"], "-t", f"ko={files['ko']}", "-t", f"ar={files['ar']}",
                        "--config", first / "manifest.json", "--out", second, "--quiet"], capsys)
    assert code == 0, err
    for name in ("synthetic.safetensors", "pairs.jsonl"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    recipe = json.loads((second / "manifest.json").read_text())["recipe"]
    assert recipe["seed"] == 5 and recipe["per_target"] == 2 and recipe["encoder"] == {"name": "hashing", "options": {"dim": 128}}
    # The same seed with another recipe value gives other rows: the comparison above can fail.
    third = tmp_path / "z"
    code, _, err = run_cli(["augment", files["en"], "-t", f"ko={files['ko']}", "-t", f"ar={files['ar']}",
                        "--config", first / "manifest.json", "--seed", "6", "--out", third, "--quiet"], capsys)
    assert code == 0, err
    assert (first / "synthetic.safetensors").read_bytes() != (third / "synthetic.safetensors").read_bytes()


def test_command_line_lies_over_the_recipe(tmp_path, capsys):
    files = sentiment_files(tmp_path)
    out = tmp_path / "run"
    code, _, err = run_cli(["augment", files["en"], "-t", f"ko={files['ko']}", "-t", f"ar={files['ar']}", "--config", "vote-margin",
                        "--lam", "0.25", "--retriever", "exact", "--out", out, *BASE], capsys)
    assert code == 0, err
    recipe = json.loads((out / "manifest.json").read_text())["recipe"]
    assert recipe["encoder"]["name"] == "hashing" and recipe["retriever"]["name"] == "exact"
    assert recipe["adopter"] == {"name": "vote", "options": {"k": 5, "min_margin": 0.6}}
    assert recipe["interpolator"] == {"name": "linear", "options": {"lam": 0.25}}


def test_bad_option_syntax_is_one_line(tmp_path, capsys):
    files = sentiment_files(tmp_path)
    code, _, err = run_cli(["augment", files["en"], "-t", f"ko={files['ko']}", "-O", "projector=2", *BASE], capsys)
    assert code == 2 and "KIND.KEY=VALUE" in err
