"""predict on head-level model dirs (the hashing encoder: fast, offline) and its one-line errors."""

import json

import numpy as np
import pytest

import xite
from helpers import EN, sentiment_files, write_jsonl
from xite.errors import InputError, XiteError
from xite.evaluation import metrics
from xite.prediction import predict

pytestmark = pytest.mark.plugins("xite-hashing")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from conftest import select_plugins

    select_plugins("xite-hashing")
    tmp = tmp_path_factory.mktemp("predict")
    files = sentiment_files(tmp)
    out = tmp / "model"
    xite.train(files["en"], dev=files["en"], out=out, encoder="hashing", head_options={"epochs": 5}, progress=False)
    return out, files


def test_head_model_predict_agrees_with_evaluate_and_keeps_input_fields(tmp_path, model_dir):
    out, files = model_dir
    test = write_jsonl(tmp_path / "t.jsonl", [{"id": f"r{i}", "text": t, "label": y} for i, (t, y) in enumerate(EN)])
    rows = predict(out, test, out=tmp_path / "p.jsonl", progress=False)
    assert [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()] == rows
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(len(EN))]
    assert [r["gold_label"] for r in rows] == [y for _, y in EN]
    names = sorted({y for _, y in EN})
    predicted = np.asarray([names.index(r["label"]) for r in rows])
    gold = np.asarray([names.index(y) for _, y in EN])
    assert xite.evaluate(out, {"en": test}, progress=False)["en"]["confusion"] == metrics(gold, predicted, names)["confusion"]
    assert [r["label"] for r in predict(out, [t for t, _ in EN], progress=False)] == [r["label"] for r in rows]


def test_one_line_errors(tmp_path, model_dir):
    out, _ = model_dir
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    with pytest.raises(InputError, match="e.jsonl"):
        predict(out, empty, progress=False)
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"premise": "a", "hypothesis": "b"}])
    with pytest.raises(InputError, match="holds text pairs but the model takes single texts"):
        predict(out, pairs, progress=False)
    (tmp_path / "notamodel").mkdir()
    with pytest.raises(InputError, match="not an xite model directory"):
        predict(tmp_path / "notamodel", pairs, progress=False)
    with pytest.raises(InputError, match="no such model directory"):
        predict(tmp_path / "missing", pairs, progress=False)
    with pytest.raises(XiteError, match="no rows"):
        predict(out, [], progress=False)
