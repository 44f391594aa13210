"""Resuming: finished cells are appended to ``cells.jsonl`` under a key derived from everything
their numbers depend on, so a rerun reuses them and a changed setting recomputes them."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

CELLS = "cells.jsonl"


def cell_key(material: dict) -> str:
    """A stable digest of a cell's whole resolved configuration."""
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:24]


def read_cells(path: Path) -> dict[str, dict]:
    done = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                cell = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by an interruption: that cell is simply rerun
            if isinstance(cell, dict) and "key" in cell:
                done[cell["key"]] = cell
    return done


def append_cell(path: Path, cell: dict) -> None:
    # A line cut short by an interruption has no newline: start a fresh line after it.
    cut = path.is_file() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(("\n" if cut else "") + json.dumps(cell, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
