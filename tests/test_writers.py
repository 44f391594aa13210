"""xite.data.writers: outputs appear whole or not at all."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from xite.data import read_corpus
from xite.data.writers import atomic_output_dir, atomic_write_bytes, atomic_write_text, write_jsonl
from xite.errors import XiteError


def entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_success_renames_into_place(tmp_path):
    out = tmp_path / "run"
    with atomic_output_dir(out) as tmp:
        assert tmp.parent == tmp_path and tmp.is_dir()
        assert tmp.name.startswith(f".run.tmp-{os.getpid()}-")
        assert not out.exists()  # nothing visible until the block succeeds
        (tmp / "a.txt").write_text("hello")
    assert (out / "a.txt").read_text() == "hello"
    assert entries(tmp_path) == ["run"]


def test_output_dir_is_not_private(tmp_path):
    with atomic_output_dir(tmp_path / "run"):
        pass
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o777 & ~mask


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_exception_leaves_nothing(tmp_path, exc):
    out = tmp_path / "run"
    with pytest.raises(exc):
        with atomic_output_dir(out) as tmp:
            (tmp / "half.txt").write_text("partial")
            raise exc()
    assert entries(tmp_path) == []


def test_exception_removes_parents_it_created(tmp_path):
    out = tmp_path / "a" / "b" / "run"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output_dir(out):
            raise KeyboardInterrupt
    assert entries(tmp_path) == []


def test_creates_missing_parents_on_success(tmp_path):
    out = tmp_path / "a" / "b" / "run"
    with atomic_output_dir(out) as tmp:
        (tmp / "x").write_text("1")
    assert (out / "x").read_text() == "1"


def test_refuses_existing_dir(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(XiteError, match=r"output directory .*run exists; pass --overwrite"):
        with atomic_output_dir(out):
            pytest.fail("body must not run")
    assert (out / "keep.txt").read_text() == "mine"
    assert entries(tmp_path) == ["run"]


def test_refuses_dir_created_while_working(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(XiteError, match="exists"):
        with atomic_output_dir(out) as tmp:
            (tmp / "new.txt").write_text("new")
            out.mkdir()  # another process got there first
    assert entries(out) == [] and entries(tmp_path) == ["run"]


def test_overwrite_replaces(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with atomic_output_dir(out, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (out / "old.txt").exists()  # the old output stays until the new one is complete
    assert entries(out) == ["new.txt"]
    assert entries(tmp_path) == ["run"]


def test_overwrite_keeps_old_output_on_failure(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output_dir(out, overwrite=True) as tmp:
            (tmp / "new.txt").write_text("new")
            raise KeyboardInterrupt
    assert entries(out) == ["old.txt"]
    assert entries(tmp_path) == ["run"]


def test_overwrite_without_existing_target(tmp_path):
    with atomic_output_dir(tmp_path / "run", overwrite=True) as tmp:
        (tmp / "x").write_text("1")
    assert entries(tmp_path / "run") == ["x"]


def test_overwrite_refuses_a_file(tmp_path):
    out = tmp_path / "run"
    out.write_text("not a dir")
    with pytest.raises(XiteError, match="not a directory"):
        with atomic_output_dir(out, overwrite=True):
            pass
    assert out.read_text() == "not a dir"


def test_atomic_write_bytes_and_text(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    atomic_write_text(path, "안녕\n")
    assert path.read_bytes() == "안녕\n".encode("utf-8")
    assert entries(path.parent) == ["f.bin"]
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_write_jsonl_round_trips(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [{"text": "좋은 영화", "label": "positive", "sim": np.float32(0.5), "idx": np.int64(3), "v": np.arange(2)}]
    assert write_jsonl(path, rows) == 1
    raw = path.read_text(encoding="utf-8")
    assert "좋은 영화" in raw and raw.endswith("\n")  # ensure_ascii=False
    assert json.loads(raw) == {"text": "좋은 영화", "label": "positive", "sim": 0.5, "idx": 3, "v": [0, 1]}
    assert read_corpus(path).texts == ["좋은 영화"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_write_jsonl_failure_keeps_old_file(tmp_path, exc):
    path = tmp_path / "pairs.jsonl"
    path.write_text("old\n")

    def rows():
        yield {"a": 1}
        raise exc()

    with pytest.raises(exc):
        write_jsonl(path, rows())
    assert path.read_text() == "old\n"
    assert entries(tmp_path) == ["pairs.jsonl"]


def test_write_jsonl_unserialisable_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        write_jsonl(tmp_path / "x.jsonl", [{"a": object()}])
    assert entries(tmp_path) == []
