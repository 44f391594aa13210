"""xite report: the HTML page of an experiment directory and of an augment run directory.

Fixtures are built here: a tiny experiment and a tiny run with the hashing plugin encoder, and an
encoder-level results.json written by hand."""

import json
import random
import re
import shutil
from html.parser import HTMLParser

import pytest

import xite
from xite.cli import main
from xite.errors import InputError, XiteError
from xite.report import write_report
from helpers import sentiment_files, write_jsonl

pytestmark = pytest.mark.plugins("xite-hashing")

LABELS = ("positive", "negative")
WORDS = {"positive": ["good", "great", "loved", "excellent"], "negative": ["bad", "awful", "hated", "dull"]}


class Page(HTMLParser):
    """What the tests look at: element ids, figures (and whether they hold an svg), table cell
    texts by table id, every URL-bearing attribute, and the tags used."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.ids, self.tags, self.urls, self.figures, self.tables = [], set(), [], {}, {}
        self._figure, self._table, self._row, self._cell = None, None, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if "id" in a:
            self.ids.append(a["id"])
        for name in ("src", "href", "xlink:href", "action", "poster", "data"):
            if name in a:
                self.urls.append(a[name] or "")
        if tag == "figure":
            self._figure = a.get("id")
            self.figures[self._figure] = False
        elif tag == "svg" and self._figure:
            self.figures[self._figure] = True
        elif tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "figure":
            self._figure = None
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def rows(self, table_id: str) -> dict[str, list[str]]:
        """Body rows keyed by their first cell."""
        return {r[0]: r[1:] for r in self.tables[table_id][1:]}


def assert_self_contained(text: str, page: Page) -> None:
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    for url in page.urls:
        assert url.startswith("#") or url.startswith("data:"), url
    for url in re.findall(r"url\(\s*['\"]?([^)'\"]*)", text):
        assert url.startswith("#") or url.startswith("data:"), url
    assert not re.search(r"(src|href)\s*=\s*['\"]?\s*(https?:)?//", text)
    assert "http://" not in text and "https://" not in text  # the fixtures hold no URLs, so none may appear
    assert "Content-Security-Policy" in text
    assert len(page.ids) == len(set(page.ids)), "ids must be unique across the inline SVGs"


def pct(entry):
    return f"{entry['mean'] * 100:.1f} ± {entry['std'] * 100:.1f}"


# ---------------------------------------------------------------------------------------------
# Fixtures


def _text(rng, lang, label, i):
    return f"{lang} {rng.choice(WORDS[label])} film {i} {rng.choice(['indeed', 'really', 'so'])}"


def _benchmark(root):
    rng = random.Random(1)
    for split, n in (("train", 32), ("dev", 10), ("test", 10)):
        p = root / "sentiment" / "en" / f"{split}.jsonl"
        p.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(p, [{"text": _text(rng, "en", LABELS[i % 2], i), "label": LABELS[i % 2]} for i in range(n)])
    for lang in ("ko", "ar"):
        d = root / "sentiment" / lang
        d.mkdir(parents=True, exist_ok=True)
        write_jsonl(d / "unlabeled.jsonl", [{"text": _text(rng, lang, LABELS[i % 2], i)} for i in range(14)])
        for split in ("dev", "test"):
            write_jsonl(d / f"{split}.jsonl", [{"text": _text(rng, lang, LABELS[i % 2], i), "label": LABELS[i % 2]} for i in range(8)])
    return root


@pytest.fixture(scope="module")
def experiment_dir(tmp_path_factory):
    from conftest import select_plugins

    select_plugins("xite-hashing")
    root = tmp_path_factory.mktemp("exp")
    config = {
        "experiment": {"encoder": "hashing", "languages": ["ko", "ar"], "seeds": [0, 1], "retriever": "exact", "recipe": "lda vote"},
        "head": {"epochs": 3},
        "variants": [
            {"name": "none+linear", "projector": "none"},
            {"name": "lda vote", "projector": "lda", "adopter": {"name": "vote", "options": {"k": 3, "min_margin": 0.3}}},
        ],
    }
    out = root / "out"
    xite.experiment(_benchmark(root / "data"), "sentiment", config=config, out=out, progress=False)
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from conftest import select_plugins

    select_plugins("xite-hashing")
    root = tmp_path_factory.mktemp("run")
    files = sentiment_files(root)
    out = root / "run"
    xite.augment(files["en"], {"ko": files["ko"], "ar": files["ar"]}, encoder="hashing", retriever="exact", projector="lda",
                 interpolator="mixup", out=out, progress=False)
    return out


# ---------------------------------------------------------------------------------------------
# Experiment directories


def test_experiment_report_is_self_contained_with_every_figure(experiment_dir):
    path = write_report(experiment_dir)
    assert path == experiment_dir / "report.html"
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    assert_self_contained(text, page)
    expected = {"fig-delta-heatmap", "fig-accuracy-ko", "fig-accuracy-ar", "fig-pseudo-labels"}
    assert expected <= set(page.figures)
    assert all(page.figures[f] for f in expected), "each figure holds an inline svg"
    assert "<image" in text or "<path" in text


def test_experiment_tables_match_results_json(experiment_dir):
    results = json.loads((experiment_dir / "results.json").read_text())
    page = Page(write_report(experiment_dir, experiment_dir / "r.html").read_text(encoding="utf-8"))
    methods = results["methods"]
    assert set(page.rows("tab-accuracy-ko")) == set(methods) == {"zero-shot", "self-training", "upper-bound", "none+linear", "lda vote"}
    for lang in ("ko", "ar"):
        rows = page.rows(f"tab-accuracy-{lang}")
        zs = methods["zero-shot"]["languages"][lang]
        for m, row in methods.items():
            r = row["languages"][lang]
            acc, f1, d_acc, en, d_en, dev = rows[m]
            assert acc == pct(r["test_accuracy"]) and f1 == pct(r["test_macro_f1"])
            assert en == pct(r["en_test_accuracy"]) and dev == pct(r["dev_accuracy"])
            assert d_acc == f"{(r['test_accuracy']['mean'] - zs['test_accuracy']['mean']) * 100:+.1f}"
            assert d_en == f"{(r['en_test_accuracy']['mean'] - zs['en_test_accuracy']['mean']) * 100:+.1f}"
    pseudo = page.rows("tab-pseudo-labels")
    for m in ("none+linear", "lda vote"):
        for lang, cell in zip(("ko", "ar"), pseudo[m]):
            r = methods[m]["languages"][lang]
            assert cell == f"{pct(r['pseudo_label_accuracy_dev'])} ({r['pseudo_label_kept_dev']['mean'] * 100:.0f}%)"
    assert "zero-shot" not in pseudo  # baselines adopt no labels
    recipe = page.rows("tab-recipe")
    for lang, c in results["recipe"]["vs_zero_shot"].items():
        assert recipe[lang][:3] == [f"{c['zero_shot_accuracy'] * 100:.1f}", f"{c['recipe_accuracy'] * 100:.1f}", f"{c['delta_accuracy'] * 100:+.1f}"]
    allm = page.rows("tab-all-model")
    for m, row in methods.items():
        assert allm[m][0] == pct(row["languages"]["ko"]["all_model_test_accuracy"])
        assert allm[m][-1] == pct(row["all_model_en_test_accuracy"])


def _encoder_level_results():
    def ms(mean, std):
        return {"mean": mean, "std": std, "n": 3}

    def lang(acc, en, pl=None):
        row = {"test_accuracy": ms(acc, 0.01), "test_macro_f1": ms(acc - 0.02, 0.015), "en_test_accuracy": ms(en, 0.004)}
        if pl:
            row["pseudo_label_accuracy_dev"], row["pseudo_label_kept_dev"] = ms(pl[0], 0.02), ms(pl[1], 0.0)
        return row

    return {
        "level": "encoder", "task": "nli", "languages": ["hi"], "seeds": [0, 1, 2],
        "encoder": {"name": "e5-small", "version": "v1"},
        "methods": {
            "zero-shot": {"languages": {"hi": lang(0.58, 0.66)}},
            "fine-tune en": {"languages": {"hi": lang(0.61, 0.71)}},
            "fine-tune en + xite": {"languages": {"hi": lang(0.633, 0.702, (0.7, 0.45))}},
        },
    }


@pytest.fixture
def encoder_level_dir(tmp_path):
    exp = tmp_path / "enc"
    exp.mkdir()
    (exp / "results.json").write_text(json.dumps(_encoder_level_results()))
    return exp


def test_encoder_level_results_are_reported_generically(encoder_level_dir):
    text = write_report(encoder_level_dir).read_text(encoding="utf-8")
    page = Page(text)
    assert_self_contained(text, page)
    assert "encoder level" in text
    assert {"fig-delta-heatmap", "fig-accuracy-hi", "fig-pseudo-labels"} <= set(page.figures)
    rows = page.rows("tab-accuracy-hi")
    assert rows["fine-tune en + xite"][:4] == ["63.3 ± 1.0", "61.3 ± 1.5", "+5.3", "70.2 ± 0.4"]
    assert rows["fine-tune en"][2] == "+3.0"
    assert page.rows("tab-pseudo-labels")["fine-tune en + xite"] == ["70.0 ± 2.0 (45%)"]
    assert "tab-recipe" not in page.tables and "tab-all-model" not in page.tables  # absent from these results


# ---------------------------------------------------------------------------------------------
# Run directories


def test_run_report_maps_reencoded_rows_and_reproduces_the_basis(run_dir, tmp_path):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    text = write_report(run_dir, tmp_path / "run.html").read_text(encoding="utf-8")
    page = Page(text)
    assert_self_contained(text, page)
    expected = {"fig-embedding-map", "fig-language-separation", "fig-similarity", "fig-lambda", "fig-labels"}
    assert expected <= set(page.figures) and all(page.figures[f] for f in expected)
    assert "note-reencode" not in page.ids
    # The refitted LDA recomputes the stored synthetic rows: the basis shown is the run's.
    diff = re.search(r"to within max \|Δ\| = ([0-9][0-9.e+-]*[0-9])", text)
    assert diff and float(diff.group(1)) < 1e-4
    inputs = {r[0]: r for r in page.tables["tab-inputs"][1:]}
    assert inputs["en"][4] == manifest["source"]["digest"]
    for t in manifest["targets"]:
        assert inputs[t["language"]][4] == t["digest"]
    labels = page.rows("tab-labels")
    names = manifest["label_names"]
    for t in manifest["targets"]:
        assert labels[f"{t['language']} (synthetic)"] == [str(t["label_distribution"][n]) for n in names] + [str(t["synthetic"])]
    assert labels["en (source, gold)"][-1] == str(manifest["source"]["rows"])
    sep = page.rows("tab-separation")
    assert set(sep) == {"en", "ko", "ar", "synthetic"}
    comps = page.rows("tab-components")
    assert comps["projector"][0] == "lda" and comps["interpolator"][0] == "mixup" and comps["encoder"][0] == "hashing"
    assert set(page.rows("tab-timings")) >= set(manifest["timings_s"])


def test_run_report_without_the_encoder_or_with_a_changed_corpus_plots_synthetic_rows_only(run_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["encoder"]["spec"] = "no-such-encoder"
    (broken / "manifest.json").write_text(json.dumps(manifest))
    text = write_report(broken).read_text(encoding="utf-8")
    page = Page(text)
    assert_self_contained(text, page)
    assert "fig-embedding-map" in page.figures and page.figures["fig-embedding-map"]
    assert "fig-language-separation" not in page.figures
    assert {"note-reencode", "note-separation"} <= set(page.ids)
    assert "Synthetic rows only: the run&#x27;s encoder &#x27;no-such-encoder&#x27; cannot be built here" in text
    assert {"fig-similarity", "fig-lambda", "fig-labels"} <= set(page.figures)

    changed = tmp_path / "changed"
    shutil.copytree(run_dir, changed)
    manifest = json.loads((changed / "manifest.json").read_text())
    ko = tmp_path / "ko-edited.jsonl"
    ko.write_text('{"text": "다른 문장"}\n', encoding="utf-8")
    manifest["targets"][0]["path"] = str(ko)
    (changed / "manifest.json").write_text(json.dumps(manifest))
    page = Page(write_report(changed).read_text(encoding="utf-8"))
    assert "note-reencode" in page.ids and "fig-language-separation" not in page.figures
    assert "changed since the run" in page_text(changed)


def page_text(directory):
    return (directory / "report.html").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Writing and errors


def test_report_is_written_atomically(encoder_level_dir, tmp_path, monkeypatch):
    from xite.report import figures

    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "report.html"
    out.write_text("earlier report")

    def boom(*args, **kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(figures, "accuracy_panels", boom)
    with pytest.raises(RuntimeError):
        write_report(encoder_level_dir, out)
    assert out.read_text() == "earlier report"
    fresh = folder / "fresh.html"
    with pytest.raises(RuntimeError):
        write_report(encoder_level_dir, fresh)
    assert sorted(p.name for p in folder.iterdir()) == ["report.html"]
    monkeypatch.undo()

    # A failure while the file is being put in place leaves neither a partial file nor a temp file.
    import xite.data.writers as writers

    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers.os, "replace", refuse)
    with pytest.raises(XiteError, match="cannot write the report: No space left"):
        write_report(encoder_level_dir, fresh)
    assert sorted(p.name for p in folder.iterdir()) == ["report.html"]
    assert out.read_text() == "earlier report"
    monkeypatch.undo()
    assert "fig-accuracy-hi" in Page(write_report(encoder_level_dir, fresh).read_text(encoding="utf-8")).figures


def test_bad_directories_are_one_line_errors(tmp_path, capsys):
    missing = tmp_path / "nope"
    with pytest.raises(XiteError, match=re.escape(str(missing))):
        write_report(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(XiteError, match=re.escape(str(empty)) + ": neither an xite experiment directory"):
        write_report(empty)
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    with pytest.raises(XiteError, match="not a directory"):
        write_report(a_file)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text("{not json")
    with pytest.raises(InputError, match=re.escape(str(bad / "results.json"))):
        write_report(bad)
    (bad / "results.json").write_text(json.dumps({"methods": {"zero-shot": {"acc": 1}}}))
    with pytest.raises(InputError, match="per-language"):
        write_report(bad)
    half_run = tmp_path / "run"
    half_run.mkdir()
    (half_run / "manifest.json").write_text("{}")
    (half_run / "synthetic.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(InputError, match="synthetic.safetensors"):
        write_report(half_run)
    capsys.readouterr()
    for target in (missing, empty, bad):
        assert main(["report", str(target), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and str(target) in err.replace("\n", "")
    assert not (empty / "report.html").exists() and not (bad / "report.html").exists()


def test_cli_report(encoder_level_dir, tmp_path, capsys):
    out = tmp_path / "sub" / "x.html"
    assert main(["report", str(encoder_level_dir), "--out", str(out), "--quiet"]) == 0
    assert str(out) in capsys.readouterr().out
    assert "fig-accuracy-hi" in Page(out.read_text(encoding="utf-8")).figures
