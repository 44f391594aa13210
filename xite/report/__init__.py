"""``xite report``: one self-contained HTML page (figures inline, no network) for an experiment
directory (``results.json``) or an augment run directory (``manifest.json`` + ``synthetic.safetensors``).

The page is rendered in memory and written atomically (temp file + rename): a failure leaves no
partial file, and an earlier report stays as it was.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from xite.errors import InputError, XiteError

REPORT = "report.html"
RESULTS = "results.json"

__all__ = ["write_report", "render_report", "detect", "REPORT"]


def detect(path: str | Path) -> str:
    """``"experiment"`` or ``"run"``; anything else is a one-line XiteError naming the path."""
    from xite.run_io import MANIFEST, SYNTHETIC

    p = Path(path)
    if not p.exists():
        raise XiteError(f"{p}: no such directory")
    if not p.is_dir():
        raise XiteError(f"{p}: not a directory (give an xite experiment or augment run directory)")
    if (p / RESULTS).is_file():
        return "experiment"
    if (p / MANIFEST).is_file() and (p / SYNTHETIC).is_file():
        return "run"
    raise XiteError(f"{p}: neither an xite experiment directory ({RESULTS}) nor an xite augment run directory "
                    f"({MANIFEST} and {SYNTHETIC})")


def render_report(path: str | Path, *, max_points: int = 2000, progress: bool = False,
                  log: Callable[[str], None] | None = None) -> str:
    """The report page of ``path`` as an HTML string."""
    p = Path(path)
    kind = detect(p)
    if kind == "experiment":
        from xite.report import experiment

        try:
            results = json.loads((p / RESULTS).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(p / RESULTS, f"unreadable {RESULTS}: {exc}") from None
        return experiment.build(p, results)
    from xite.report import run

    return run.build(p, max_points=max_points, progress=progress, log=log)


def write_report(path: str | Path, out: str | Path | None = None, *, max_points: int = 2000, progress: bool = False,
                 log: Callable[[str], None] | None = None) -> Path:
    """Write the report of an experiment or run directory to ``out`` (default ``DIR/report.html``)
    atomically, and return its path."""
    from xite.data.writers import atomic_write_text

    text = render_report(path, max_points=max_points, progress=progress, log=log)
    target = Path(out) if out is not None else Path(path) / REPORT
    if target.is_dir():
        raise XiteError(f"{target}: is a directory; give a file name for the report")
    try:
        atomic_write_text(target, text)
    except OSError as exc:
        raise XiteError(f"{target}: cannot write the report: {exc.strerror or exc}") from None
    return target
