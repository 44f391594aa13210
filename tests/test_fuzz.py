"""Property-based fuzzing (Hypothesis): whatever bytes, rows, options or labels a user gives, xite
answers with a valid result or its own one-line error type, never another exception."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faults import fault
from xite.errors import ConfigError, InputError, XiteError, XiteWarning

pytestmark = pytest.mark.plugins("xite-hashing")

# Each property runs this many examples; the total is reported with the fault suite's count.
EXAMPLES = 150
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _read(tmp_path, name: str, data: bytes, **kw):
    from xite.data.readers import read_corpus

    path = tmp_path / name
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XiteWarning)  # notes are allowed; errors are what we check
        return read_corpus(path, **kw)


def _assert_valid(corpus, labeled) -> None:
    """A corpus the rest of xite can trust: rows, no blank text, labels as the rules say."""
    from xite.data.readers import _is_blank

    assert len(corpus) > 0
    texts = corpus.texts if corpus.texts is not None else corpus.pairs[0] + corpus.pairs[1]
    assert all(isinstance(t, str) and not _is_blank(t) for t in texts)
    if labeled is True:
        assert corpus.labels is not None and len(corpus.labels) == len(corpus)
    if labeled is False:
        assert corpus.labels is None
    for label in corpus.labels or []:
        assert isinstance(label, str) and label == label.strip() and not _is_blank(label)


# ---------------------------------------------------------------------------------------------
# readers


@fault("readers")
@FUZZ
@given(data=st.binary(max_size=400), ext=st.sampled_from(["jsonl", "csv", "tsv", "parquet", "json"]),
       labeled=st.sampled_from([True, False, None]))
def test_random_bytes(tmp_path, data, ext, labeled):
    try:
        corpus = _read(tmp_path, f"f.{ext}", data, labeled=labeled)
    except InputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(tmp_path))
        return
    _assert_valid(corpus, labeled)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                     max_leaves=6)
_ROW = st.dictionaries(st.sampled_from(["text", "label", "premise", "hypothesis", "other"]), _JSON, max_size=4)


@fault("readers")
@FUZZ
@given(rows=st.lists(_ROW | _JSON, max_size=8), labeled=st.sampled_from([True, False, None]))
def test_random_jsonl(tmp_path, rows, labeled):
    data = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode("utf-8")
    try:
        corpus = _read(tmp_path, "f.jsonl", data, labeled=labeled)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    _assert_valid(corpus, labeled)


_CELL = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=10)


@fault("readers")
@FUZZ
@given(header=st.lists(st.sampled_from(["text", "label", "premise", "hypothesis", "x", ""]), min_size=1, max_size=4),
       rows=st.lists(st.lists(_CELL, min_size=0, max_size=5), max_size=6), ext=st.sampled_from(["csv", "tsv"]))
def test_random_delimited(tmp_path, header, rows, ext):
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="," if ext == "csv" else "\t")
    for row in [header, *rows]:
        writer.writerow(row)
    try:
        corpus = _read(tmp_path, f"f.{ext}", buf.getvalue().encode("utf-8"), labeled=None)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    _assert_valid(corpus, None)


# ---------------------------------------------------------------------------------------------
# label rules


_LABEL = (st.integers(-3, 3) | st.sampled_from([0.0, 1.0, 2.0, -1.0])
          | st.sampled_from(["1", "0", " 1", "pos", "Pos", "POS", " pos ", "neg", "\u200b", "", "  "]))


@fault("labels")
@FUZZ
@given(labels=st.lists(_LABEL, min_size=1, max_size=12), texts=st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=12, max_size=12))
def test_label_rules(tmp_path, labels, texts):
    """Labels are trimmed strings; 1, 1.0 and "1" are one label; a merge, a case variant or a text
    with two labels is always said in a warning, and nothing else is."""
    rows = [{"text": t, "label": y} for t, y in zip(texts, labels)]
    path = tmp_path / "l.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    from xite.data.readers import read_corpus

    def expected(y):
        if isinstance(y, float):
            return str(int(y))
        return str(y).strip().replace("\u200b", "")

    want = [expected(y) for y in labels]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            corpus = read_corpus(path, labeled=True)
        except InputError as exc:
            assert "" in want and "empty label" in str(exc)  # blank and invisible labels are no label
            return
    assert corpus.labels == want
    notes = " ".join(str(w.message) for w in caught if issubclass(w.category, XiteWarning))
    spellings: dict[str, set] = {}
    for y, w in zip(labels, want):
        spellings.setdefault(w, set()).add(json.dumps(y))
    merged = any(len(s) > 1 or any(sp not in (json.dumps(w), w) for sp in s) for w, s in spellings.items())
    assert ("labels normalised" in notes) == merged
    folded = {}
    for w in set(want):
        folded.setdefault(w.casefold(), set()).add(w)
    assert ("differ only in case" in notes) == any(len(v) > 1 for v in folded.values())
    by_text: dict[str, set] = {}
    for t, w in zip(texts, want):
        by_text.setdefault(t, set()).add(w)
    assert ("two different labels" in notes) == any(len(v) > 1 for v in by_text.values())


# ---------------------------------------------------------------------------------------------
# options


@fault("options")
@FUZZ
@given(raw=st.text(max_size=20), kind=st.sampled_from(["adopter", "retriever", "projector", "interpolator", "encoder", "bogus", ""]),
       key=st.sampled_from(["min_sim", "min_margin", "k", "balance", "rank", "lam", "alpha", "mode", "index", "dim", "nope"]))
def test_option_values(raw, kind, key):
    """``--option KIND.KEY=VALUE`` with any VALUE: parsed, then the component is built or refused
    with a ConfigError (or a usage error for a malformed option), never anything else."""
    import typer

    from xite import plugins
    from xite.cli import _generic_options

    names = {"adopter": "vote", "retriever": "exact", "projector": "lda", "interpolator": "mixup", "encoder": "hashing"}
    try:
        parsed = _generic_options([f"{kind}.{key}={raw}"])
    except typer.BadParameter:
        assert kind not in names
        return
    try:
        plugins.create(kind + "s", names[kind], parsed[kind])
    except XiteError:
        pass
    if kind == "adopter" and key == "min_sim":
        try:
            value = float(json.loads(raw))
        except (ValueError, TypeError):
            value = float("nan")
        if not (math.isfinite(value) and -1 <= value <= 1):
            with pytest.raises(ConfigError):
                plugins.create("adopters", "vote", parsed["adopter"])


@fault("options")
@FUZZ
@given(code=st.text(max_size=14))
def test_language_rule(code):
    from xite.checks import check_language

    ok = re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", code) is not None
    if ok:
        assert check_language(code) == code
    else:
        with pytest.raises(ConfigError):
            check_language(code)


@fault("options")
@FUZZ
@given(lr=st.floats(allow_nan=True, allow_infinity=True), epochs=st.integers(-2, 3), dropout=st.floats(-1, 2))
def test_head_options(lr, epochs, dropout):
    from xite.training.heads import HeadOptions

    valid = math.isfinite(lr) and lr > 0 and epochs >= 1 and 0 <= dropout < 1
    if valid:
        HeadOptions(lr=lr, epochs=epochs, dropout=dropout)
    else:
        with pytest.raises(ConfigError):
            HeadOptions(lr=lr, epochs=epochs, dropout=dropout)
