"""Read a corpus file (JSON Lines, CSV, TSV, Parquet) into a :class:`~xite.data.schema.Corpus`.

Every problem with the file is an :class:`~xite.errors.InputError` that names the file, the
1-based line (the row number for Parquet) and the field, so the user can open the file and fix
it. No exception from ``json``, ``csv`` or ``pyarrow`` escapes as a raw traceback.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from xite.data.schema import Corpus, encode_labels, fingerprint, label_set  # noqa: F401  (re-exported)
from xite.errors import ConfigError, InputError, warn

# Extension -> format. ".json" is read as JSON Lines too: one object per line.
FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}

TEXT_FIELD = "text"
PAIR_FIELDS = (("premise", "hypothesis"), ("sentence1", "sentence2"))
LABEL_FIELDS = ("label", "gold_label")

# A row: its 1-based source line (row number for Parquet) and its fields.
Record = tuple[int, dict]


@dataclass
class _Parsed:
    """What a format reader found: the rows, and the header or schema when the format has one."""

    records: list[Record]
    columns: list[str] | None = None  # None: JSON Lines, where each row has its own keys
    header_line: int | None = None  # CSV/TSV: the header's line, for errors about columns


@dataclass(frozen=True)
class _FieldPlan:
    """Which source field plays which role, and whether labels are required, forbidden or free."""

    text: str | None
    premise: str | None
    hypothesis: str | None
    label: str
    labeled: bool | None

    @property
    def text_fields(self) -> tuple[str, ...]:
        return (self.text,) if self.text else (self.premise, self.hypothesis)


def read_corpus(
    path: str | os.PathLike,
    *,
    text_field: str | None = None,
    premise_field: str | None = None,
    hypothesis_field: str | None = None,
    label_field: str | None = None,
    labeled: bool | None = None,
) -> Corpus:
    """Read ``path`` (format chosen by its extension) into a :class:`Corpus`.

    Fields are detected when obvious: ``text``; else ``premise``/``hypothesis`` (or
    ``sentence1``/``sentence2``); label ``label`` (or ``gold_label``). Named fields override.
    ``labeled=True``: every row needs a non-empty label. ``labeled=False``: no row may carry one.
    ``labeled=None``: labels are read if present, but either every row has one or none does.
    ``label_field`` only names the field; ``labeled`` alone says whether labels are wanted, so the
    same options can be passed for the labeled source and the unlabeled targets.
    """
    _check_options(text_field, premise_field, hypothesis_field)
    path_str = str(path)
    fmt = _format_of(path_str)
    data = _read_bytes(path_str)
    parsed = _RECORD_READERS[fmt](path_str, data)
    if not parsed.records:
        raise InputError(path_str, _empty_message(parsed.columns))
    first_line, first_row = parsed.records[0]
    keys = parsed.columns if parsed.columns is not None else list(first_row)
    # Errors about which fields exist point at the header when there is one.
    fields_line = parsed.header_line if parsed.columns is not None else first_line
    plan = _plan_fields(
        path_str, keys, fields_line, text_field, premise_field, hypothesis_field, label_field, labeled
    )
    if parsed.columns is not None:
        _check_columns_exist(path_str, parsed, plan)
    corpus = _collect(path_str, parsed.records, plan)
    corpus.digest = hashlib.sha256(data).hexdigest()
    return corpus


# ---------------------------------------------------------------------------------------------
# Options, file access and format


def _check_options(text_field, premise_field, hypothesis_field) -> None:
    if text_field and (premise_field or hypothesis_field):
        raise ConfigError("name either a text field or premise/hypothesis fields, not both")


def _format_of(path: str) -> str:
    p = Path(path)
    # Existence first: "file not found" is the more useful message for a mistyped path.
    if not p.exists():
        raise InputError(path, "file not found")
    if p.is_dir():
        raise InputError(path, "is a directory, not a file")
    suffix = p.suffix.lower()
    if suffix not in FORMATS:
        supported = ", ".join(sorted(FORMATS))
        shown = f"'{suffix}'" if suffix else "(none)"
        raise InputError(path, f"unknown file extension {shown}; supported: {supported}")
    return FORMATS[suffix]


def _read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, not a file") from None
    except PermissionError:
        raise InputError(path, "cannot read file: permission denied") from None
    except OSError as e:
        raise InputError(path, f"cannot read file: {e.strerror or e}") from None


def _decode_utf8(path: str, data: bytes) -> str:
    """The file as text; a byte that is not UTF-8 is reported with its line."""
    # A leading byte-order mark (Excel writes one) is not part of the first field name.
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        bad = data[e.start]
        raise InputError(
            path, f"not valid UTF-8 (byte 0x{bad:02x} at column {column}); save the file as UTF-8", line
        ) from None


def _empty_message(columns: list[str] | None) -> str:
    if columns:
        return "no rows: the file has a header but no data"
    return "empty file: no rows"


# ---------------------------------------------------------------------------------------------
# Format readers: bytes -> _Parsed


def _jsonl_records(path: str, data: bytes) -> _Parsed:
    text = _decode_utf8(path, data)
    records: list[Record] = []
    # Split on "\n" only: JSON strings cannot hold a raw newline, so one line is one row, and
    # str.splitlines() would also split on U+2028 etc., which may legally appear inside strings.
    for lineno, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue  # blank lines (and a trailing newline) are not rows
        row = _parse_json_line(path, raw, lineno)
        records.append((lineno, row))
    return _Parsed(records)


def _parse_json_line(path: str, raw: str, lineno: int) -> dict:
    try:
        row = json.loads(raw)
    except json.JSONDecodeError as e:
        raise InputError(path, f"malformed JSON: {e.msg} (column {e.colno})", lineno) from None
    except (ValueError, RecursionError) as e:  # e.g. an integer too long, nesting too deep
        raise InputError(path, f"malformed JSON: {e}", lineno) from None
    if not isinstance(row, dict):
        hint = " (xite reads JSON Lines: one object per line)" if isinstance(row, list) else ""
        raise InputError(path, f"row is not a JSON object, got {_type_name(row)}{hint}", lineno)
    return row


def _csv_records(path: str, data: bytes) -> _Parsed:
    return _delimited_records(path, data, delimiter=",", quoting=csv.QUOTE_MINIMAL)


def _tsv_records(path: str, data: bytes) -> _Parsed:
    # TSV as IANA defines it: no quoting (a field cannot hold a tab or a newline). Real TSV
    # corpora (XNLI, KorNLI) hold unbalanced quote characters that CSV quoting would mangle.
    return _delimited_records(path, data, delimiter="\t", quoting=csv.QUOTE_NONE)


def _delimited_records(path: str, data: bytes, delimiter: str, quoting: int) -> _Parsed:
    text = _decode_utf8(path, data)
    # The default limit (128 KiB per field) would reject a long document with a csv.Error.
    csv.field_size_limit(2**31 - 1)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)
    header: list[str] | None = None
    header_line = 0
    records: list[Record] = []
    while True:
        start = reader.line_num + 1  # a quoted field may span lines: report where the row starts
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise InputError(path, f"malformed {_kind(delimiter)}: {e}", start) from None
        if not row:
            continue  # blank line
        if header is None:
            header, header_line = _check_header(path, row, start, delimiter), start
            continue
        if len(row) != len(header):
            raise InputError(path, _ragged_message(row, header, header_line, delimiter), start)
        records.append((start, dict(zip(header, row))))
    return _Parsed(records, header, header_line or None)


def _check_header(path: str, row: list[str], line: int, delimiter: str) -> list[str]:
    names = [name.strip() for name in row]
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not name:
            raise InputError(
                path,
                f"{_kind(delimiter)} header has an empty column name (column {position}); "
                "the first line must name the columns",
                line,
            )
        if name in seen:
            raise InputError(path, f"{_kind(delimiter)} header names column {name!r} twice", line)
        seen.add(name)
    return names


def _ragged_message(row: list[str], header: list[str], header_line: int, delimiter: str) -> str:
    message = f"row has {len(row)} fields but the header (line {header_line}) has {len(header)}"
    if delimiter == "\t" and len(row) > len(header):
        message += " (a text holding a tab?)"
    return message


def _kind(delimiter: str) -> str:
    return "TSV" if delimiter == "\t" else "CSV"


def _parquet_records(path: str, data: bytes) -> _Parsed:
    # pyarrow is imported here so that importing xite.data stays light.
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
        rows = table.to_pylist()
    except (pa.ArrowException, OSError, ValueError, TypeError) as e:
        raise InputError(path, f"cannot read Parquet: {e}") from None
    records = [(i, row) for i, row in enumerate(rows, start=1)]
    return _Parsed(records, list(table.column_names))


_RECORD_READERS = {
    "jsonl": _jsonl_records,
    "csv": _csv_records,
    "tsv": _tsv_records,
    "parquet": _parquet_records,
}


# ---------------------------------------------------------------------------------------------
# Field detection


def _plan_fields(
    path: str,
    keys: Sequence[str],
    first_line: int,
    text_field: str | None,
    premise_field: str | None,
    hypothesis_field: str | None,
    label_field: str | None,
    labeled: bool | None,
) -> _FieldPlan:
    text, premise, hypothesis = _plan_text_fields(path, keys, first_line, text_field, premise_field, hypothesis_field)
    label = label_field or _first_present(keys, LABEL_FIELDS) or LABEL_FIELDS[0]
    return _FieldPlan(text, premise, hypothesis, label, labeled)


def _plan_text_fields(path, keys, first_line, text_field, premise_field, hypothesis_field):
    if text_field:
        return text_field, None, None
    if premise_field or hypothesis_field:
        # One named, the other detected: fill it from the usual names that are present.
        premise = premise_field or _first_present(keys, [a for a, _ in PAIR_FIELDS]) or PAIR_FIELDS[0][0]
        hypothesis = hypothesis_field or _first_present(keys, [b for _, b in PAIR_FIELDS]) or PAIR_FIELDS[0][1]
        return None, premise, hypothesis
    if TEXT_FIELD in keys:
        return TEXT_FIELD, None, None
    for premise, hypothesis in PAIR_FIELDS:
        if premise in keys and hypothesis in keys:
            return None, premise, hypothesis
    found = ", ".join(repr(k) for k in keys) or "none"
    raise InputError(
        path,
        "no text field found: expected 'text', or 'premise' and 'hypothesis' "
        f"(or 'sentence1' and 'sentence2'); fields present: {found}. Name the field(s) to use",
        first_line,
    )


def _first_present(keys: Sequence[str], candidates: Sequence[str]) -> str | None:
    return next((c for c in candidates if c in keys), None)


def _check_columns_exist(path: str, parsed: _Parsed, plan: _FieldPlan) -> None:
    """With a header (CSV/TSV) or a schema (Parquet), a missing column is reported once, up front."""
    wanted = list(plan.text_fields)
    if plan.labeled:
        wanted.append(plan.label)
    line = parsed.header_line  # None for Parquet: the schema has no line
    for name in wanted:
        if name not in parsed.columns:
            present = ", ".join(repr(c) for c in parsed.columns)
            hint = "; the first line must be a header naming the columns" if line else ""
            raise InputError(path, f"missing field: no such column (columns: {present}){hint}", line, name)


# ---------------------------------------------------------------------------------------------
# Rows


def _collect(path: str, records: list[Record], plan: _FieldPlan) -> Corpus:
    columns: dict[str, list[str]] = {name: [] for name in plan.text_fields}
    labels: list[str] = []
    spellings: dict[str, Counter] = defaultdict(Counter)  # label -> how the file wrote it -> rows
    lines: list[int] = []
    first_label_line: int | None = None  # first row that has a label (labeled=None bookkeeping)
    first_bare_line: int | None = None  # first row that has none
    for line, row in records:
        for name in plan.text_fields:
            columns[name].append(_text_value(path, row, name, line))
        label = _label_value(path, row, plan.label, line)
        _check_label_presence(path, row, plan, label, line, first_label_line, first_bare_line)
        if label:
            labels.append(label)
            spellings[label][_spelling(row.get(plan.label))] += 1
            first_label_line = first_label_line or line
        else:
            first_bare_line = first_bare_line or line
        lines.append(line)
    has_labels = bool(labels)
    if has_labels:
        texts_by_row = list(zip(*(columns[name] for name in plan.text_fields)))
        _warn_about_labels(path, labels, spellings, texts_by_row, lines)
    fields = {role: getattr(plan, role) for role in ("text", "premise", "hypothesis") if getattr(plan, role)}
    fields["label"] = plan.label if has_labels else None
    texts = columns[plan.text] if plan.text else None
    pairs = None if plan.text else (columns[plan.premise], columns[plan.hypothesis])
    return Corpus(
        path=path,
        texts=texts,
        pairs=pairs,
        labels=labels if has_labels else None,
        fields=fields,
        line_numbers=lines,
    )


def _text_value(path: str, row: dict, name: str, line: int) -> str:
    if name not in row:
        raise InputError(path, "missing field", line, name)
    value = row[name]
    if value is None:
        raise InputError(path, "empty text (null)", line, name)
    if not isinstance(value, str):
        raise InputError(path, f"text must be a string, got {_type_name(value)}", line, name)
    if _is_blank(value):
        raise InputError(path, "empty text (only whitespace or invisible characters)", line, name)
    return value


# Characters that show nothing: whitespace, and format/control characters (zero-width space and
# joiners, word joiner, BOM, soft hyphen, bidi marks). A text of only these encodes to a vector of
# nothing, so it is not a row; a label of only these is no label.
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Zs", "Zl", "Zp"}


def _is_blank(value: str) -> bool:
    return all(ch.isspace() or unicodedata.category(ch) in _INVISIBLE_CATEGORIES for ch in value)


def _spelling(value: Any) -> str:
    """How the file wrote a label, for the notes below: numbers bare, strings quoted."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)


def _canonical_spellings(label: str) -> set[str]:
    # The spellings that are the label as it is: the string itself, or the integer it reads as.
    return {json.dumps(label, ensure_ascii=False)} | ({label} if label.lstrip("-").isdigit() else set())


def _warn_about_labels(path: str, labels: list[str], spellings: dict[str, Counter],
                       texts_by_row: list[tuple[str, ...]], lines: list[int]) -> None:
    """Tell the user whenever the label rules read the file differently from how it is written
    (docs/formats.md, "Inputs"): spellings merged into one label, labels that differ only in case
    (kept apart), and one text given two different labels (kept as given)."""
    changed = []
    for label, seen in spellings.items():
        if len(seen) > 1 or set(seen) - _canonical_spellings(label):
            shown = ", ".join(f"{s} ({n} row{'s' * (n != 1)})" for s, n in sorted(seen.items()))
            changed.append(f"{shown} -> {label!r}")
    if changed:
        warn(f"{path}: labels normalised (a label is its text, trimmed; 1, 1.0 and \"1\" are one label): " + "; ".join(changed))
    counts = Counter(labels)
    by_fold: dict[str, list[str]] = defaultdict(list)
    for label in counts:
        by_fold[label.casefold()].append(label)
    for group in by_fold.values():
        if len(group) > 1:
            shown = " and ".join(f"{g!r} ({counts[g]} row{'s' * (counts[g] != 1)})" for g in sorted(group))
            warn(f"{path}: labels {shown} differ only in case: kept as {len(group)} classes; fix the file if they are one")
    first: dict[tuple[str, ...], tuple[str, int]] = {}
    conflicts: dict[tuple[str, ...], tuple[int, int]] = {}
    for text, label, line in zip(texts_by_row, labels, lines):
        seen = first.setdefault(text, (label, line))
        if seen[0] != label and text not in conflicts:
            conflicts[text] = (seen[1], line)
    if conflicts:
        a, b = next(iter(conflicts.values()))
        n = len(conflicts)
        warn(f"{path}: {n} text{'s' * (n != 1)} appear{'s' * (n == 1)} with two different labels (first at lines {a} and {b}); "
             "kept as given")


def _label_value(path: str, row: dict, name: str, line: int) -> str:
    """The label as a string; "" when the row has none (absent, null or blank)."""
    value = row.get(name)
    if value is None:
        return ""
    if isinstance(value, bool):  # bool is an int subclass, but True is not a class name
        raise InputError(path, "label must be a string or an integer, got boolean", line, name)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # pandas turns an int column with gaps into floats
    if isinstance(value, str):
        return "" if _is_blank(value) else value.strip()
    raise InputError(path, f"label must be a string or an integer, got {_type_name(value)}", line, name)


def _check_label_presence(path, row, plan, label, line, first_label_line, first_bare_line) -> None:
    name = plan.label
    if plan.labeled is True and not label:
        reason = "missing field (the corpus must be labeled)" if name not in row else "empty label"
        raise InputError(path, reason, line, name)
    if plan.labeled is False and label:
        raise InputError(path, "row has a label but the corpus is meant to be unlabeled", line, name)
    if plan.labeled is None:
        if label and first_bare_line is not None:
            raise InputError(
                path, f"row has a label but line {first_bare_line} has none: label every row or none", line, name
            )
        if not label and first_label_line is not None:
            raise InputError(
                path, f"row has no label but line {first_label_line} has one: label every row or none", line, name
            )


def _type_name(value: Any) -> str:
    """The JSON name of a value's type, which is what a user sees in the file."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
