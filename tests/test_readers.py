"""xite.data readers and schema: formats, field detection, label rules, and every input error."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from xite.data import Corpus, encode_labels, fingerprint, label_set, read_corpus
from xite.demo import demo_paths
from xite.errors import ConfigError, InputError

ROWS = [
    {"text": "a lovely film", "label": "positive"},
    {"text": "dull, \"slow\" and long", "label": "negative"},
    {"text": "좋은 영화였어요", "label": "positive"},
]


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def jsonl(rows) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write_delimited(path: Path, rows: list[dict], delimiter: str) -> Path:
    if delimiter == "\t":  # plain TSV: no quoting at all
        lines = ["\t".join(rows[0])] + ["\t".join(r.values()) for r in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_parquet(path: Path, columns: dict) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return path


def raises_input_error(path, *, line, field, match) -> pytest.ExceptionInfo:
    """Read ``path`` and check the InputError's file, line, field and reason."""
    with pytest.raises(InputError) as info:
        read_corpus(path)
    check_error(info.value, path, line=line, field=field, match=match)
    return info


def check_error(err: InputError, path, *, line, field, match) -> None:
    assert err.path == str(path)
    assert err.line == line, str(err)
    assert err.field == field, str(err)
    assert match in err.reason, str(err)
    where = f"{path}:{line}" if line is not None else f"{path}"
    assert str(err).startswith(where), str(err)
    if field is not None:
        assert f"field '{field}'" in str(err)


# --------------------------------------------------------------------------------------------
# Formats round-trip


@pytest.fixture
def same_rows_in_every_format(tmp_path):
    cols = {"text": [r["text"] for r in ROWS], "label": [r["label"] for r in ROWS]}
    return {
        "jsonl": write(tmp_path, "c.jsonl", jsonl(ROWS)),
        "json": write(tmp_path, "c.json", jsonl(ROWS)),
        "csv": write_delimited(tmp_path / "c.csv", ROWS, ","),
        "tsv": write_delimited(tmp_path / "c.tsv", ROWS, "\t"),
        "parquet": write_parquet(tmp_path / "c.parquet", cols),
    }


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "tsv", "parquet"])
def test_formats_round_trip(same_rows_in_every_format, fmt):
    path = same_rows_in_every_format[fmt]
    c = read_corpus(path)
    assert c.texts == [r["text"] for r in ROWS]
    assert c.labels == [r["label"] for r in ROWS]
    assert c.pairs is None and not c.is_pair and len(c) == 3
    assert c.fields == {"text": "text", "label": "label"}
    assert c.line_numbers == ([1, 2, 3] if fmt in ("jsonl", "json", "parquet") else [2, 3, 4])
    assert c.path == str(path)
    import hashlib

    assert c.digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_content_fingerprint_is_format_independent(same_rows_in_every_format):
    prints = {read_corpus(p).content_fingerprint() for p in same_rows_in_every_format.values()}
    digests = {read_corpus(p).digest for p in same_rows_in_every_format.values()}
    assert len(prints) == 1
    assert len(digests) == 4  # .jsonl and .json hold the same bytes


def test_extension_is_case_insensitive(tmp_path):
    assert len(read_corpus(write(tmp_path, "C.JSONL", jsonl(ROWS)))) == 3


def test_jsonl_blank_lines_skipped_and_lines_counted(tmp_path):
    path = write(tmp_path, "b.jsonl", "\n" + jsonl(ROWS[:1]) + "   \n\n" + jsonl(ROWS[1:2]) + "\n")
    c = read_corpus(path)
    assert len(c) == 2 and c.line_numbers == [2, 5]


def test_crlf_and_bom_are_tolerated(tmp_path):
    body = jsonl(ROWS).replace("\n", "\r\n")
    c = read_corpus(write(tmp_path, "w.jsonl", b"\xef\xbb\xbf" + body.encode("utf-8")))
    assert c.texts[0] == "a lovely film" and len(c) == 3
    csv_bytes = b"\xef\xbb\xbftext,label\r\nnice,positive\r\nbad,negative\r\n"
    c = read_corpus(write(tmp_path, "w.csv", csv_bytes))
    assert c.fields["text"] == "text" and c.texts == ["nice", "bad"] and c.line_numbers == [2, 3]


def test_csv_quoted_multiline_field_keeps_start_line(tmp_path):
    path = write(tmp_path, "m.csv", 'text,label\n"line one\nline two",positive\nplain,negative\n')
    c = read_corpus(path)
    assert c.texts == ["line one\nline two", "plain"]
    assert c.line_numbers == [2, 4]


def test_tsv_keeps_quote_characters(tmp_path):
    path = write(tmp_path, "q.tsv", 'text\tlabel\n"quoted" start and a stray " quote\tpositive\nplain\tnegative\n')
    c = read_corpus(path)
    assert c.texts[0] == '"quoted" start and a stray " quote'


def test_parquet_int_labels_become_strings(tmp_path):
    path = write_parquet(tmp_path / "i.parquet", {"text": ["a", "b", "c"], "label": [0, 1, 0]})
    assert read_corpus(path).labels == ["0", "1", "0"]


def test_int_labels_in_json_become_strings(tmp_path):
    path = write(tmp_path, "i.jsonl", jsonl([{"text": "a", "label": 1}, {"text": "b", "label": 0}]))
    c = read_corpus(path)
    assert c.labels == ["1", "0"] and label_set(c.labels) == ["0", "1"]


# --------------------------------------------------------------------------------------------
# Field detection


def test_premise_hypothesis_pairs_detected(tmp_path):
    rows = [{"premise": "p1", "hypothesis": "h1", "label": "entailment"}, {"premise": "p2", "hypothesis": "h2", "label": "neutral"}]
    c = read_corpus(write(tmp_path, "nli.jsonl", jsonl(rows)))
    assert c.is_pair and c.texts is None
    assert c.pairs == (["p1", "p2"], ["h1", "h2"])
    assert c.fields == {"premise": "premise", "hypothesis": "hypothesis", "label": "label"}
    assert c.texts_for_display(1) == "p2 ||| h2"


def test_sentence1_sentence2_gold_label_detected(tmp_path):
    path = write(tmp_path, "k.tsv", "sentence1\tsentence2\tgold_label\np\th\tcontradiction\n")
    c = read_corpus(path)
    assert c.pairs == (["p"], ["h"]) and c.labels == ["contradiction"]
    assert c.fields == {"premise": "sentence1", "hypothesis": "sentence2", "label": "gold_label"}


def test_text_wins_over_pair_fields(tmp_path):
    c = read_corpus(write(tmp_path, "t.jsonl", jsonl([{"text": "t", "premise": "p", "hypothesis": "h"}])))
    assert c.texts == ["t"] and not c.is_pair


def test_named_fields_override(tmp_path):
    rows = [{"body": "good", "text": "ignored", "stars": "5", "label": "x"}, {"body": "bad", "text": "no", "stars": "1", "label": "y"}]
    c = read_corpus(write(tmp_path, "n.jsonl", jsonl(rows)), text_field="body", label_field="stars")
    assert c.texts == ["good", "bad"] and c.labels == ["5", "1"]
    assert c.fields == {"text": "body", "label": "stars"}


def test_named_premise_fills_in_detected_hypothesis(tmp_path):
    rows = [{"ctx": "p", "hypothesis": "h"}]
    c = read_corpus(write(tmp_path, "p.jsonl", jsonl(rows)), premise_field="ctx")
    assert c.pairs == (["p"], ["h"]) and c.fields["premise"] == "ctx"


def test_text_and_pair_fields_together_is_config_error(tmp_path):
    with pytest.raises(ConfigError):
        read_corpus(write(tmp_path, "x.jsonl", jsonl(ROWS)), text_field="text", premise_field="p")


def test_no_text_field_lists_fields(tmp_path):
    path = write(tmp_path, "n.jsonl", "\n" + jsonl([{"body": "x", "label": "positive"}]))
    info = raises_input_error(path, line=2, field=None, match="no text field found")
    assert "'body'" in str(info.value) and "'label'" in str(info.value)


def test_named_field_missing_from_csv_header(tmp_path):
    path = write(tmp_path, "h.csv", "text,label\na,positive\n")
    with pytest.raises(InputError) as info:
        read_corpus(path, text_field="body")
    check_error(info.value, path, line=1, field="body", match="missing field")
    assert "'text', 'label'" in str(info.value)


def test_named_field_missing_from_parquet(tmp_path):
    path = write_parquet(tmp_path / "h.parquet", {"text": ["a"]})
    with pytest.raises(InputError) as info:
        read_corpus(path, labeled=True)
    check_error(info.value, path, line=None, field="label", match="missing field")


# --------------------------------------------------------------------------------------------
# Labeled / unlabeled rules


def test_labeled_none_reads_labels_when_present_and_none_when_absent(tmp_path):
    assert read_corpus(write(tmp_path, "l.jsonl", jsonl(ROWS))).labels == ["positive", "negative", "positive"]
    c = read_corpus(write(tmp_path, "u.jsonl", jsonl([{"text": "a"}, {"text": "b"}])))
    assert c.labels is None and c.fields == {"text": "text", "label": None} and not c.is_labeled


def test_labeled_true_requires_every_label(tmp_path):
    path = write(tmp_path, "m.jsonl", jsonl([{"text": "a", "label": "positive"}, {"text": "b"}]))
    with pytest.raises(InputError) as info:
        read_corpus(path, labeled=True)
    check_error(info.value, path, line=2, field="label", match="missing field")


def test_labeled_true_rejects_empty_label(tmp_path):
    path = write(tmp_path, "e.csv", "text,label\na,positive\nb,\n")
    with pytest.raises(InputError) as info:
        read_corpus(path, labeled=True)
    check_error(info.value, path, line=3, field="label", match="empty label")


def test_labeled_true_with_no_label_anywhere(tmp_path):
    path = write(tmp_path, "u.jsonl", jsonl([{"text": "a"}]))
    with pytest.raises(InputError) as info:
        read_corpus(path, labeled=True)
    check_error(info.value, path, line=1, field="label", match="must be labeled")


def test_labeled_false_rejects_a_label(tmp_path):
    path = write(tmp_path, "t.jsonl", jsonl([{"text": "좋다"}, {"text": "나쁘다", "label": "negative"}]))
    with pytest.raises(InputError) as info:
        read_corpus(path, labeled=False)
    check_error(info.value, path, line=2, field="label", match="row has a label but the corpus is meant to be unlabeled")


def test_labeled_false_with_named_label_field(tmp_path):
    path = write(tmp_path, "t.jsonl", jsonl([{"text": "a", "stars": 3}]))
    with pytest.raises(InputError) as info:
        read_corpus(path, labeled=False, label_field="stars")
    check_error(info.value, path, line=1, field="stars", match="meant to be unlabeled")
    # The same option on a file without that field is fine: it only names the field.
    ok = write(tmp_path, "ok.jsonl", jsonl([{"text": "a"}]))
    assert read_corpus(ok, labeled=False, label_field="stars").labels is None


def test_labeled_false_accepts_empty_label_column(tmp_path):
    path = write(tmp_path, "t.csv", "text,label\na,\nb,\n")
    assert read_corpus(path, labeled=False).labels is None
    assert read_corpus(path).labels is None


def test_mixed_labels_are_an_error(tmp_path):
    path = write(tmp_path, "m.jsonl", jsonl([{"text": "a"}, {"text": "b"}, {"text": "c", "label": "x"}]))
    info = raises_input_error(path, line=3, field="label", match="row has a label but line 1 has none")
    assert "every row or none" in str(info.value)
    path = write(tmp_path, "m2.jsonl", jsonl([{"text": "a", "label": "x"}, {"text": "b", "label": None}]))
    raises_input_error(path, line=2, field="label", match="row has no label but line 1 has one")


@pytest.mark.parametrize(
    "label, kind", [(True, "boolean"), (1.5, "number"), ([1], "array"), ({"a": 1}, "object")]
)
def test_bad_label_types(tmp_path, label, kind):
    path = write(tmp_path, "b.jsonl", jsonl([{"text": "a", "label": label}]))
    raises_input_error(path, line=1, field="label", match=f"label must be a string or an integer, got {kind}")


# --------------------------------------------------------------------------------------------
# File-level errors


def test_missing_file(tmp_path):
    raises_input_error(tmp_path / "nope.jsonl", line=None, field=None, match="file not found")


def test_directory(tmp_path):
    d = tmp_path / "dir.jsonl"
    d.mkdir()
    raises_input_error(d, line=None, field=None, match="is a directory")


def test_permission_denied(tmp_path, monkeypatch):
    path = write(tmp_path, "p.jsonl", jsonl(ROWS))

    # Tests may run as root, who can read anything: simulate the OS refusing.
    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    raises_input_error(path, line=None, field=None, match="permission denied")


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0, reason="root reads anything")
def test_permission_denied_for_real(tmp_path):
    path = write(tmp_path, "p.jsonl", jsonl(ROWS))
    path.chmod(0)
    try:
        raises_input_error(path, line=None, field=None, match="permission denied")
    finally:
        path.chmod(0o644)


def test_unknown_extension_lists_supported(tmp_path):
    path = write(tmp_path, "c.txt", "hello\n")
    info = raises_input_error(path, line=None, field=None, match="unknown file extension '.txt'")
    for ext in (".csv", ".json", ".jsonl", ".parquet", ".tsv"):
        assert ext in str(info.value)
    raises_input_error(write(tmp_path, "noext", "x"), line=None, field=None, match="(none)")


@pytest.mark.parametrize("name", ["e.jsonl", "e.csv", "e.tsv"])
def test_empty_file(tmp_path, name):
    raises_input_error(write(tmp_path, name, ""), line=None, field=None, match="empty file: no rows")


def test_blank_lines_only_is_empty(tmp_path):
    raises_input_error(write(tmp_path, "b.jsonl", "\n  \n\n"), line=None, field=None, match="empty file")


def test_csv_header_only_has_no_rows(tmp_path):
    raises_input_error(write(tmp_path, "h.csv", "text,label\n"), line=None, field=None, match="header but no data")


def test_parquet_without_rows(tmp_path):
    import pyarrow as pa

    path = write_parquet(tmp_path / "z.parquet", {"text": pa.array([], pa.string())})
    raises_input_error(path, line=None, field=None, match="no rows")


@pytest.mark.parametrize("name", ["u.jsonl", "u.csv"])
def test_not_utf8_names_the_line(tmp_path, name):
    head = "text,label\nok,positive\n" if name.endswith(".csv") else jsonl(ROWS[:2])
    data = head.encode("utf-8") + "caf\u00e9 bad,negative\n".encode("latin-1")
    raises_input_error(write(tmp_path, name, data), line=3, field=None, match="not valid UTF-8 (byte 0xe9 at column 4)")


def test_malformed_json_line(tmp_path):
    path = write(tmp_path, "bad.jsonl", '{"text": "ok", "label": "positive"}\n{"text": "oops", "label": \n')
    raises_input_error(path, line=2, field=None, match="malformed JSON")


@pytest.mark.parametrize("line, kind", [('["a", "b"]', "array"), ("42", "number"), ('"text"', "string"), ("null", "null")])
def test_row_not_an_object(tmp_path, line, kind):
    path = write(tmp_path, "r.jsonl", jsonl(ROWS[:1]) + line + "\n")
    raises_input_error(path, line=2, field=None, match=f"row is not a JSON object, got {kind}")


def test_json_array_file_gets_a_hint(tmp_path):
    path = write(tmp_path, "a.json", json.dumps(ROWS))
    info = raises_input_error(path, line=1, field=None, match="got array")
    assert "JSON Lines" in str(info.value)


def test_missing_text_field(tmp_path):
    path = write(tmp_path, "m.jsonl", jsonl([{"text": "a", "label": "positive"}, {"body": "b", "label": "negative"}]))
    info = raises_input_error(path, line=2, field="text", match="missing field")
    assert str(info.value) == f"{path}:2: field 'text': missing field"


def test_missing_hypothesis(tmp_path):
    path = write(tmp_path, "m.jsonl", jsonl([{"premise": "p", "hypothesis": "h"}, {"premise": "p2"}]))
    raises_input_error(path, line=2, field="hypothesis", match="missing field")


@pytest.mark.parametrize(
    "value, reason", [("", "empty text"), ("   \t ", "empty text"), (None, "empty text (null)"), (7, "got number"), (["a"], "got array")]
)
def test_bad_text_values(tmp_path, value, reason):
    path = write(tmp_path, "t.jsonl", jsonl([{"text": "fine"}, {"text": value}]))
    raises_input_error(path, line=2, field="text", match=reason)


def test_empty_text_in_csv(tmp_path):
    raises_input_error(write(tmp_path, "e.csv", "text,label\nok,positive\n,negative\n"), line=3, field="text", match="empty text")


def test_null_text_in_parquet_names_the_row(tmp_path):
    path = write_parquet(tmp_path / "n.parquet", {"text": ["a", "b", None]})
    raises_input_error(path, line=3, field="text", match="null")


def test_non_string_text_in_parquet(tmp_path):
    path = write_parquet(tmp_path / "n.parquet", {"text": [1, 2]})
    raises_input_error(path, line=1, field="text", match="text must be a string, got number")


def test_csv_without_header(tmp_path):
    path = write(tmp_path, "nh.csv", "a great film,positive\nawful,negative\n")
    info = raises_input_error(path, line=1, field=None, match="no text field found")
    assert "'a great film'" in str(info.value)
    with pytest.raises(InputError) as info:
        read_corpus(path, text_field="text")
    check_error(info.value, path, line=1, field="text", match="the first line must be a header")


def test_csv_header_with_empty_or_repeated_column(tmp_path):
    raises_input_error(write(tmp_path, "e.csv", "text,,label\na,b,c\n"), line=1, field=None, match="empty column name (column 2)")
    raises_input_error(write(tmp_path, "d.csv", "text,text\na,b\n"), line=1, field=None, match="column 'text' twice")


def test_csv_ragged_row(tmp_path):
    path = write(tmp_path, "r.csv", "text,label\nok,positive\ntoo,many,fields\n")
    raises_input_error(path, line=3, field=None, match="row has 3 fields but the header (line 1) has 2")
    path = write(tmp_path, "s.csv", 'text,label\n"two\nlines",positive\nshort\n')
    raises_input_error(path, line=4, field=None, match="row has 1 fields")


def test_tsv_ragged_row_hints_at_tab(tmp_path):
    path = write(tmp_path, "r.tsv", "text\tlabel\nhas\ta tab\tpositive\n")
    raises_input_error(path, line=2, field=None, match="a text holding a tab?")


def test_csv_malformed_quoting(tmp_path):
    path = write(tmp_path, "q.csv", 'text,label\nok,positive\n"bad"quote,negative\n')
    raises_input_error(path, line=3, field=None, match="malformed CSV")


def test_corrupt_parquet(tmp_path):
    raises_input_error(write(tmp_path, "c.parquet", b"PAR1 not really parquet"), line=None, field=None, match="cannot read Parquet")


def test_long_csv_field(tmp_path):
    long = "word " * 40_000  # over the csv module's default 128 KiB field limit
    c = read_corpus(write(tmp_path, "l.csv", f"text\n{long}\n"))
    assert len(c.texts[0]) == len(long)


# --------------------------------------------------------------------------------------------
# Labels, fingerprints, Corpus


def test_label_set_sorted_unique():
    assert label_set(["b", "a", "b", "c"]) == ["a", "b", "c"]


def test_encode_labels():
    y = encode_labels(["neg", "pos", "neg"], ["neg", "pos"])
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 0]


def test_encode_labels_unknown_names_the_line():
    with pytest.raises(InputError) as info:
        encode_labels(["a", "z"], ["a", "b"], path="t.jsonl", line_numbers=[4, 9])
    check_error(info.value, "t.jsonl", line=9, field="label", match="label 'z' is not one of the known labels: 'a', 'b'")
    with pytest.raises(InputError) as info:
        encode_labels(["a", "z"], ["a", "b"])
    assert info.value.line == 2


def test_corpus_encode_labels_uses_source_lines(tmp_path):
    path = write(tmp_path, "g.tsv", "sentence1\tsentence2\tgold_label\np\th\tentailment\n\np\th2\tmaybe\n")
    c = read_corpus(path)
    with pytest.raises(InputError) as info:
        c.encode_labels(["entailment", "neutral"])
    check_error(info.value, path, line=4, field="gold_label", match="'maybe'")


def test_fingerprint_keeps_boundaries_and_pairs():
    assert fingerprint(["ab"]) != fingerprint(["a", "b"])
    assert fingerprint([("a", "b")]) != fingerprint(["a", "b"])
    assert fingerprint(["x", "y"]) == fingerprint(iter(["x", "y"]))
    assert fingerprint(["x", "y"]) != fingerprint(["y", "x"])


def test_in_memory_corpus_defaults():
    c = Corpus(path="mem", texts=["a", "b"])
    assert c.line_numbers == [1, 2] and c.digest == fingerprint(["a", "b"]) and c.fields == {}
    p = Corpus(path="mem", pairs=(["p"], ["h"]), labels=["entailment"])
    assert p.is_pair and p.texts_for_display(0) == "p ||| h" and len(p) == 1
    with pytest.raises(ValueError):
        Corpus(path="mem")
    with pytest.raises(ValueError):
        Corpus(path="mem", texts=["a"], labels=["x", "y"])


def test_importing_xite_data_stays_light():
    code = "import sys, xite.data; print('pyarrow' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --------------------------------------------------------------------------------------------
# Real data and the demo corpus


def test_real_english_sentiment_train(shared_data):
    c = read_corpus(shared_data / "sentiment" / "en" / "train.jsonl", labeled=True)
    assert len(c) == 6909 and not c.is_pair
    assert label_set(c.labels) == ["negative", "positive"]
    assert Counter(c.labels) == {"negative": 3304, "positive": 3605}


def test_real_korean_nli_unlabeled(shared_data):
    c = read_corpus(shared_data / "nli" / "ko" / "unlabeled.jsonl", labeled=False)
    assert len(c) == 2995 and c.is_pair and c.labels is None
    assert all(c.pairs[0]) and all(c.pairs[1])


def test_demo_corpus():
    paths = demo_paths()
    assert set(paths) == {"en", "ko", "ar", "hi", "ur"}
    en = read_corpus(paths["en"], labeled=True)
    assert len(en) >= 60
    counts = Counter(en.labels)
    assert set(counts) == {"positive", "negative"} and counts["positive"] == counts["negative"]
    scripts = {"ko": ("\uac00", "\ud7a3"), "ar": ("\u0600", "\u06ff"), "hi": ("\u0900", "\u097f"), "ur": ("\u0600", "\u06ff")}
    for lang, (lo, hi) in scripts.items():
        c = read_corpus(paths[lang], labeled=False)
        assert len(c) >= 40 and c.labels is None
        assert len(set(c.texts)) == len(c.texts)
        assert all(any(lo <= ch <= hi for ch in t) for t in c.texts), f"{lang} text not in its script"
