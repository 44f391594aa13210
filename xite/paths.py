"""Where xite keeps its files: $XITE_HOME (default ~/.cache/xite)."""

from __future__ import annotations

import os
from pathlib import Path


def xite_home() -> Path:
    home = os.environ.get("XITE_HOME")
    path = Path(home).expanduser() if home else Path.home() / ".cache" / "xite"
    path.mkdir(parents=True, exist_ok=True)
    return path
