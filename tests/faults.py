"""Shared harness of the fault suites (tests/test_faults.py, tests/test_fuzz.py).

Every CLI case runs ``xite.cli.main`` in-process against files in its own tmp dir and its own
XITE_HOME, with the model-free ``hashing`` encoder, and checks the promise a user relies on:
the exit code, one line on stderr and no traceback, no partial output, inputs untouched.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from xite.cli import main

# The projector "none" keeps the LDA rank note (a progress note, wrapped) out of stderr.
BASE = ["--encoder", "hashing", "--quiet"]
AUG = [*BASE, "--projector", "none"]
EN = [("the film was wonderful and moving", "positive"), ("a delightful, charming story", "positive"),
      ("great acting and a clever script", "positive"), ("i loved every minute of it", "positive"),
      ("a boring, tedious mess", "negative"), ("the plot made no sense at all", "negative"),
      ("terrible acting and a dull script", "negative"), ("i hated every minute of it", "negative")]
KO = ["영화가 정말 훌륭하고 감동적이었다", "지루하고 엉망인 영화", "음식이 신선하고 맛있었다", "최고의 연기와 각본"]

# The classes the outside tester reported; each case of the suites is marked with one.
CLASSES = ("lost-data", "cache-integrity", "filesystem", "trusted-dirs", "experiment", "options", "labels", "readers")


def fault(cls: str):
    assert cls in CLASSES, cls
    return pytest.mark.fault(cls)


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file under ``roots`` with its sha256 (and every folder): a before/after picture."""
    seen: dict[str, str] = {}
    for root in roots:
        if not root.exists():
            continue
        for p in sorted([root, *root.rglob("*")]):
            seen[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return seen


def run_cli(args, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# Progress notes a command prints while it works (``encoding with ...``); not what the checks count.
NOTES = ("encoding with ", "encoding ")


def lines(err: str) -> list[str]:
    """stderr's lines that tell the user something went wrong or was changed."""
    return [line for line in err.splitlines() if line.strip() and not line.startswith(NOTES)]


def assert_refused(code: int, err: str, *expected: str) -> None:
    """Exit code 2 and exactly one line on stderr, no traceback; ``expected`` texts in it."""
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(lines(err)) == 1, err
    assert lines(err)[0].startswith("error:"), err
    for text in expected:
        assert text in err, (text, err)


def assert_no_leftovers(root: Path, before: dict[str, str], cache: Path | None = None) -> None:
    """Nothing under ``root`` changed: no partial output, no temp file, inputs byte-identical.
    Under ``cache`` (XITE_HOME) whole shards may have been added (encoding done before the
    failure is kept, by design), but no temporary file and nothing changed or removed."""
    after = snapshot(root)
    if cache is not None:
        assert not [p for p in after if p.startswith(str(cache)) and p.endswith(".tmp")], "no .tmp left in the cache"
        after = {k: v for k, v in after.items() if not (k.startswith(str(cache)) and k not in before)}
    assert after == before, {"added": sorted(set(after) - set(before)), "removed": sorted(set(before) - set(after)),
                             "changed": sorted(k for k in set(after) & set(before) if after[k] != before[k])}
