"""Where xite keeps its files: $XITE_HOME (default ~/.cache/xite)."""

from __future__ import annotations

import os
from pathlib import Path

from xite.errors import XiteError


def xite_home_path() -> Path:
    """$XITE_HOME as configured, without creating it."""
    home = os.environ.get("XITE_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "xite"


def xite_home() -> Path:
    path = xite_home_path()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # A file in the way, a read-only parent: say which setting to change, not a traceback.
        raise XiteError(f"XITE_HOME {path}: cannot use it as xite's folder: {exc.strerror or exc}") from None
    if not path.is_dir():
        raise XiteError(f"XITE_HOME {path}: is not a directory")
    return path
